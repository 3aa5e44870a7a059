//! Each sandbox's network: a veth pair whose host end holds `.1` and whose jail end holds `.2` of a /30
//! from a bounded pool, a default route via the host end, no IPv6, no DNS — and firewall rules so that the
//! only thing a sandbox can reach is the egress-proxy port on its own host-side address (invariant 2).
//!
//! The rules are one nftables table per gateway instance (`inet gigmcp_<instance>`), written once at
//! start-up for every slot of the pool, so starting a sandbox changes no rule: packets arriving on a
//! sandbox interface pass only if (interface, source, destination) is that slot's triple and the port is
//! the proxy's; anything else from or to a sandbox interface — other ports, other sandboxes, forwarding,
//! IPv6, a spoofed source — is dropped. Interface names carry the instance (`g<instance>h<slot>`), so
//! instances never touch each other's interfaces or rules, and a restart after a crash removes only its own
//! leftovers.

use std::net::Ipv4Addr;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkUnspec, LinkVeth, RouteMessageBuilder};
use thiserror::Error;

use crate::sys_unsafe::enter_net_namespace_of;

#[derive(Debug, Error)]
pub enum NetError {
    #[error("invalid GIG_SANDBOX_CIDR {0:?}: give an IPv4 network with a prefix of /8 to /30, like 10.88.0.0/16")]
    Cidr(String),
    #[error("GIG_SANDBOX_CIDR {pool} overlaps the host route {route} (dev {dev}); choose a range no host route uses")]
    Overlap { pool: String, route: String, dev: String },
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("cannot install the sandbox firewall with nft: {0}")]
    Firewall(String),
    #[error("cannot configure the sandbox's network namespace: {0}")]
    Namespace(std::io::Error),
}

fn netlink(e: impl std::fmt::Display) -> NetError {
    NetError::Netlink(e.to_string())
}

/// The sandbox address pool: /30 networks carved from one IPv4 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    base: u32,
    prefix: u8,
}

impl Pool {
    pub fn parse(text: &str) -> Result<Self, NetError> {
        let bad = || NetError::Cidr(text.to_owned());
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Self {
            base: u32::from(addr) & mask,
            prefix,
        })
    }

    /// How many sandboxes fit: one /30 each, never past the end of the range.
    pub fn capacity(&self) -> usize {
        1usize << (30 - self.prefix)
    }

    /// (host end, sandbox end) of a slot.
    pub fn addresses(&self, slot: usize) -> (Ipv4Addr, Ipv4Addr) {
        assert!(slot < self.capacity(), "slot {slot} outside the pool");
        let network = self.base + (slot as u32) * 4;
        (Ipv4Addr::from(network + 1), Ipv4Addr::from(network + 2))
    }

    fn contains_overlap(&self, addr: Ipv4Addr, prefix: u8) -> bool {
        let shorter = prefix.min(self.prefix);
        let mask = if shorter == 0 { 0 } else { u32::MAX << (32 - shorter) };
        (u32::from(addr) & mask) == (self.base & mask)
    }
}

impl std::fmt::Display for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// The host side of every sandbox network of one gateway instance.
pub struct Network {
    instance: String,
    pool: Pool,
    slots: usize,
    proxy_port: u16,
    handle: rtnetlink::Handle,
}

impl Network {
    /// Removes this instance's leftovers, checks the pool against the host's routes and installs the rules.
    pub async fn start(instance: &str, pool: Pool, slots: usize, proxy_port: u16) -> Result<Self, NetError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(netlink)?;
        tokio::spawn(connection);
        let network = Self {
            instance: instance.to_owned(),
            pool,
            slots,
            proxy_port,
            handle,
        };
        // A dump races with other processes changing links or routes at the same moment, and the kernel
        // then answers EBUSY: such a dump is simply taken again.
        let mut attempt = 0;
        loop {
            let outcome = async {
                network.remove_links().await?;
                network.check_routes().await
            }
            .await;
            match outcome {
                Err(NetError::Netlink(e)) if attempt < 10 && e.contains("busy") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                }
                other => break other?,
            }
        }
        network.install_rules().await?;
        Ok(network)
    }

    pub fn host_interface(&self, slot: usize) -> String {
        format!("g{}h{slot}", self.instance)
    }

    fn jail_interface(&self, slot: usize) -> String {
        format!("g{}s{slot}", self.instance)
    }

    fn interface_prefix(&self) -> String {
        format!("g{}h", self.instance)
    }

    fn table(&self) -> String {
        format!("gigmcp_{}", self.instance)
    }

    async fn remove_links(&self) -> Result<(), NetError> {
        let prefix = format!("g{}", self.instance);
        let mut links = self.handle.link().get().execute();
        let mut stale = Vec::new();
        while let Some(link) = links.try_next().await.map_err(netlink)? {
            let name = link.attributes.iter().find_map(|a| match a {
                rtnetlink::packet_route::link::LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            });
            if name.is_some_and(|n| n.starts_with(&prefix)) {
                stale.push(link.header.index);
            }
        }
        for index in stale {
            let _ = self.handle.link().del(index).execute().await;
        }
        Ok(())
    }

    async fn check_routes(&self) -> Result<(), NetError> {
        use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
        let mut routes = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut names = std::collections::HashMap::new();
        let mut links = self.handle.link().get().execute();
        while let Some(link) = links.try_next().await.map_err(netlink)? {
            for a in &link.attributes {
                if let rtnetlink::packet_route::link::LinkAttribute::IfName(n) = a {
                    names.insert(link.header.index, n.clone());
                }
            }
        }
        while let Some(route) = routes.try_next().await.map_err(netlink)? {
            let prefix = route.header.destination_prefix_length;
            if prefix == 0 || route.header.table != 254 {
                continue; // the default route and other tables' routes say nothing of where the pool is
            }
            let Some(destination) = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => Some(*d),
                _ => None,
            }) else {
                continue;
            };
            if self.pool.contains_overlap(destination, prefix) {
                let dev = route
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Oif(i) => names.get(i).cloned(),
                        _ => None,
                    })
                    .unwrap_or_else(|| "?".into());
                return Err(NetError::Overlap {
                    pool: self.pool.to_string(),
                    route: format!("{destination}/{prefix}"),
                    dev,
                });
            }
        }
        Ok(())
    }

    fn ruleset(&self) -> String {
        let table = self.table();
        let prefix = self.interface_prefix();
        let elements: Vec<String> = (0..self.slots)
            .map(|slot| {
                let (host, jail) = self.pool.addresses(slot);
                format!("\"{}\" . {jail} . {host}", self.host_interface(slot))
            })
            .collect();
        format!(
            "table inet {table} {{
  set sandboxes {{
    type ifname . ipv4_addr . ipv4_addr
    elements = {{ {elements} }}
  }}
  chain input {{
    type filter hook input priority filter - 10; policy accept;
    iifname \"{prefix}*\" jump from_sandbox
  }}
  chain from_sandbox {{
    meta nfproto ipv4 iifname . ip saddr . ip daddr @sandboxes tcp dport {port} accept
    counter drop
  }}
  chain forward {{
    type filter hook forward priority filter - 10; policy accept;
    iifname \"{prefix}*\" counter drop
    oifname \"{prefix}*\" counter drop
  }}
}}
",
            elements = elements.join(", "),
            port = self.proxy_port,
        )
    }

    async fn install_rules(&self) -> Result<(), NetError> {
        let _ = nft(&format!("delete table inet {}\n", self.table())).await;
        nft(&self.ruleset()).await
    }

    /// Gives the jail of `pid` its end of the slot's veth pair, configured, with IPv6 off on both ends.
    pub async fn attach(&self, slot: usize, pid: u32) -> Result<(), NetError> {
        let (host_ip, jail_ip) = self.pool.addresses(slot);
        let (host_if, jail_if) = (self.host_interface(slot), self.jail_interface(slot));
        // A previous sandbox of this slot may still be tearing down.
        if let Ok(index) = self.index_of(&host_if).await {
            let _ = self.handle.link().del(index).execute().await;
        }
        // IPv6 is turned off in the jail's namespace before its end arrives.
        let inside = open_inside(pid).await?;
        // The jail's end is created directly in the jail's namespace: moving an existing interface between
        // namespaces costs the kernel tens of milliseconds, creating it there about one.
        let jail_end = rtnetlink::LinkMessageBuilder::<LinkUnspec>::new()
            .name(jail_if.clone())
            .mtu(LINK_MTU)
            .setns_by_pid(pid)
            .build();
        let pair = LinkVeth::new(&host_if, &jail_if)
            .mtu(LINK_MTU)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(jail_end)))
            .build();
        self.handle.link().add(pair).execute().await.map_err(netlink)?;
        let host_index = self.index_of(&host_if).await?;
        disable_ipv6(&host_if);
        self.handle
            .address()
            .add(host_index, host_ip.into(), 30)
            .execute()
            .await
            .map_err(netlink)?;
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(host_index).up().build())
            .execute()
            .await
            .map_err(netlink)?;
        configure_inside(&inside, &jail_if, jail_ip, host_ip).await
    }

    async fn index_of(&self, name: &str) -> Result<u32, NetError> {
        let mut links = self.handle.link().get().match_name(name.to_owned()).execute();
        match links.try_next().await.map_err(netlink)? {
            Some(link) => Ok(link.header.index),
            None => Err(NetError::Netlink(format!("no interface {name}"))),
        }
    }

    /// Removes the rules and the interfaces of this instance.
    pub async fn shutdown(&self) {
        let _ = nft(&format!("delete table inet {}\n", self.table())).await;
        let _ = self.remove_links().await;
    }
}

/// A netlink handle whose socket lives in the jail's network namespace.
async fn open_inside(pid: u32) -> Result<rtnetlink::Handle, NetError> {
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A thread of its own enters the namespace; the socket it opens stays there after the thread ends.
    std::thread::spawn(move || {
        let result = enter_net_namespace_of(pid).and_then(|()| {
            // IPv6 off for every interface of the jail, before its veth end arrives.
            for key in ["all", "default"] {
                std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "1")?;
            }
            let _guard = runtime.enter();
            rtnetlink::new_connection()
        });
        let _ = tx.send(result);
    });
    let (connection, handle, _) = rx
        .await
        .map_err(|_| NetError::Namespace(std::io::Error::other("namespace thread died")))?
        .map_err(NetError::Namespace)?;
    tokio::spawn(connection);
    Ok(handle)
}

async fn configure_inside(
    handle: &rtnetlink::Handle,
    jail_if: &str,
    jail_ip: Ipv4Addr,
    host_ip: Ipv4Addr,
) -> Result<(), NetError> {
    // Only the jail's own end: bubblewrap brings up the jail's loopback itself, and touching it from here
    // races with that (bwrap then fails to start).
    let mut links = handle.link().get().execute();
    let mut jail_index = None;
    while let Some(link) = links.try_next().await.map_err(netlink)? {
        let named = link
            .attributes
            .iter()
            .any(|a| matches!(a, rtnetlink::packet_route::link::LinkAttribute::IfName(n) if n == jail_if));
        if named {
            jail_index = Some(link.header.index);
        }
    }
    let jail_index = jail_index.ok_or_else(|| NetError::Netlink(format!("{jail_if} did not arrive in the jail")))?;
    handle
        .address()
        .add(jail_index, jail_ip.into(), 30)
        .execute()
        .await
        .map_err(netlink)?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(jail_index).up().build())
        .execute()
        .await
        .map_err(netlink)?;
    handle
        .route()
        .add(RouteMessageBuilder::<Ipv4Addr>::new().gateway(host_ip).build())
        .execute()
        .await
        .map_err(netlink)?;
    Ok(())
}

/// The veth pair carries only the jail's traffic to the egress proxy on this machine: like loopback, it
/// needs no Ethernet-sized packets, and the largest MTU makes a download through the proxy cost the kernel
/// about a fortieth of the packets.
const LINK_MTU: u32 = 65535;

fn disable_ipv6(interface: &str) {
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{interface}/disable_ipv6"), "1");
}

async fn nft(script: &str) -> Result<(), NetError> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| NetError::Firewall(format!("{e} (install nftables)")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| NetError::Firewall(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| NetError::Firewall(e.to_string()))?;
    if !out.status.success() {
        return Err(NetError::Firewall(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_slots_never_leave_the_range() {
        let pool = Pool::parse("10.88.0.0/16").unwrap();
        assert_eq!(pool.capacity(), 16384);
        assert_eq!(
            pool.addresses(0),
            ("10.88.0.1".parse().unwrap(), "10.88.0.2".parse().unwrap())
        );
        assert_eq!(
            pool.addresses(16383),
            ("10.88.255.253".parse().unwrap(), "10.88.255.254".parse().unwrap())
        );
        let small = Pool::parse("192.168.7.8/30").unwrap();
        assert_eq!(small.capacity(), 1);
        assert_eq!(small.addresses(0).0, "192.168.7.9".parse::<Ipv4Addr>().unwrap());
        for bad in ["10.88.0.0", "10.88.0.0/31", "10.88.0.0/7", "x/16", "10.88.0.0/abc"] {
            assert!(Pool::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    #[should_panic(expected = "outside the pool")]
    fn a_slot_past_the_end_is_refused() {
        Pool::parse("10.88.0.0/29").unwrap().addresses(2);
    }

    #[test]
    fn overlap_is_detected_both_ways() {
        let pool = Pool::parse("10.88.0.0/16").unwrap();
        assert!(pool.contains_overlap("10.88.5.0".parse().unwrap(), 24));
        assert!(pool.contains_overlap("10.0.0.0".parse().unwrap(), 8));
        assert!(!pool.contains_overlap("10.89.0.0".parse().unwrap(), 16));
        assert!(!pool.contains_overlap("192.168.0.0".parse().unwrap(), 16));
    }
}
