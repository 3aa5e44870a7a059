//! The dial guard: an upstream is dialed only on a resolved address outside the ranges a sandbox must never
//! reach through the proxy (loopback, private, link-local, CGNAT, multicast, unspecified, broadcast, cloud
//! metadata, IPv6 ULA and link-local, and IPv4 addresses mapped or translated into IPv6), unless the operator
//! listed it in `GIG_EGRESS_ALLOW_ADDRS`. The check is on the address, after resolution, so a name that
//! resolves to 127.0.0.1 is refused like 127.0.0.1 itself.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address range in CIDR notation (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{p:?} is not a prefix length of 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = (prefix / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// Why an address may not be dialed, or `None` when it may.
pub fn forbidden(ip: IpAddr, allowed: &[Cidr]) -> Option<&'static str> {
    if allowed.iter().any(|c| c.contains(ip)) {
        return None;
    }
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        return Some("a cloud metadata address");
    }
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_broadcast() {
        Some("the broadcast address")
    } else if ip.is_multicast() || a >= 240 {
        Some("a multicast or reserved address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_private() {
        Some("a private address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a carrier-grade NAT address")
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        Some("an IETF protocol assignment address")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("a benchmarking address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // AWS's IPv6 metadata endpoint.
    if ip == "fd00:ec2::254".parse::<Ipv6Addr>().expect("a valid literal") {
        return Some("a cloud metadata address");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4).or(Some("an IPv4-mapped IPv6 address"));
    }
    let segments = ip.segments();
    // IPv4-compatible (::a.b.c.d, deprecated), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed an IPv4
    // address that a translator may dial: judged by that address.
    let compatible = segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified();
    let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let embedded = if compatible || nat64 {
        Some(Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32))
    } else if segments[0] == 0x2002 {
        Some(Ipv4Addr::from(((segments[1] as u32) << 16) | segments[2] as u32))
    } else {
        None
    };
    if let Some(v4) = embedded
        && let Some(why) = forbidden_v4(v4)
    {
        return Some(why);
    }
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        Some("a link-local address")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("a unique local (private) address")
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        Some("a documentation address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        forbidden(text.parse().unwrap(), &[]).is_some()
    }

    #[test]
    fn the_guard_refuses_every_internal_range() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:8.8.8.8",
            "64:ff9b::a00:1",
            "2002:7f00:1::1",
        ] {
            assert!(refused(ip), "{ip} was not refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert!(!refused(ip), "{ip} was refused");
        }
    }

    #[test]
    fn allowed_ranges_override_the_guard() {
        let allowed = [
            Cidr::parse("198.51.100.2/32").unwrap(),
            Cidr::parse("10.1.0.0/16").unwrap(),
        ];
        assert!(forbidden("10.1.2.3".parse().unwrap(), &allowed).is_none());
        assert!(forbidden("10.2.0.1".parse().unwrap(), &allowed).is_some());
        assert!(forbidden("198.51.100.2".parse().unwrap(), &allowed).is_none());
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert!(
            Cidr::parse("10.1.2.3/12")
                .unwrap()
                .contains("10.15.0.1".parse().unwrap())
        );
        assert!(
            !Cidr::parse("10.1.2.3/12")
                .unwrap()
                .contains("10.16.0.1".parse().unwrap())
        );
        assert!(Cidr::parse("fd00::/8").unwrap().contains("fdff::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x/8", "10.0.0/8", "::/129", "10.0.0.0/-1"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
