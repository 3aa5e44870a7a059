//! The egress proxy's configuration, parsed once at start-up: `GIG_EGRESS_EXTRA_CA`, `GIG_EGRESS_RESOLVE`,
//! `GIG_EGRESS_ALLOW_ADDRS`, `GIG_EGRESS_MAX_TUNNELS` (and `GIG_PROXY_PORT`, shared with the sandbox firewall).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::guard::Cidr;

pub const DEFAULT_MAX_TUNNELS: usize = 64;

#[derive(Debug, Clone)]
pub struct EgressSettings {
    /// Where the proxy listens on each sandbox's host-side address.
    pub port: u16,
    /// Extra roots trusted for upstreams besides the public (webpki) ones.
    pub extra_roots: Vec<CertificateDer<'static>>,
    pub resolve: Resolve,
    /// Addresses the dial guard lets through.
    pub allow_addrs: Vec<Cidr>,
    /// Tunnels open at once per sandbox.
    pub max_tunnels: usize,
}

impl EgressSettings {
    /// The defaults: no extra roots, the system resolver, no exception to the guard, 64 tunnels.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            extra_roots: Vec::new(),
            resolve: Resolve::default(),
            allow_addrs: Vec::new(),
            max_tunnels: DEFAULT_MAX_TUNNELS,
        }
    }
}

/// Fixed name resolution, like curl's `--resolve`: `host=addr` for any port, `host:port=addr` for one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolve(HashMap<(String, Option<u16>), IpAddr>);

impl Resolve {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, addr) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not host=address"))?;
            let addr = addr.trim();
            let addr: IpAddr = addr
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| format!("{pair:?}: {addr:?} is not an IP address"))?;
            let (host, port) = match name.trim().rsplit_once(':') {
                Some((h, p)) => (
                    h,
                    Some(
                        p.parse::<u16>()
                            .ok()
                            .filter(|p| *p != 0)
                            .ok_or_else(|| format!("{pair:?}: {p:?} is not a port"))?,
                    ),
                ),
                None => (name.trim(), None),
            };
            let host = normalize_host(host);
            let valid = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            if !valid {
                return Err(format!("{pair:?}: {host:?} is not a host name"));
            }
            map.insert((host, port), addr);
        }
        Ok(Self(map))
    }

    /// The fixed address of `host:port`, if one was given (a `host:port` entry wins over `host`).
    pub fn lookup(&self, host: &str, port: u16) -> Option<IpAddr> {
        let host = normalize_host(host);
        self.0
            .get(&(host.clone(), Some(port)))
            .or_else(|| self.0.get(&(host, None)))
            .copied()
    }
}

/// Lower case, without a trailing dot: how host names are compared everywhere in the proxy.
pub fn normalize_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

pub fn parse_allow_addrs(text: &str) -> Result<Vec<Cidr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(Cidr::parse)
        .collect()
}

pub fn parse_max_tunnels(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=100_000).contains(n))
        .ok_or_else(|| format!("{text:?} is not a number from 1 to 100000"))
}

/// Reads the certificates of a PEM file; a file without one is an error.
pub fn read_extra_roots(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not a PEM file of certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Where the CA certificate a jail trusts is written, under the data directory.
pub fn ca_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("egress-ca.pem")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_pairs_parse_like_curl() {
        let r = Resolve::parse("api.test.example=198.51.100.2, API.other.:8443=[::1],x=10.0.0.1").unwrap();
        assert_eq!(r.lookup("api.test.example", 443), Some("198.51.100.2".parse().unwrap()));
        assert_eq!(r.lookup("Api.Test.Example.", 1), Some("198.51.100.2".parse().unwrap()));
        assert_eq!(r.lookup("api.other", 8443), Some("::1".parse().unwrap()));
        assert_eq!(r.lookup("api.other", 443), None);
        assert_eq!(r.lookup("nowhere", 443), None);
        assert!(Resolve::parse("").unwrap().lookup("x", 1).is_none());
        for bad in [
            "noequals",
            "h=notanip",
            "h:0=1.2.3.4",
            "h:x=1.2.3.4",
            "=1.2.3.4",
            "a b=1.2.3.4",
        ] {
            assert!(Resolve::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn max_tunnels_and_cidr_lists_parse() {
        assert_eq!(parse_max_tunnels("2").unwrap(), 2);
        assert!(parse_max_tunnels("0").is_err());
        assert!(parse_max_tunnels("many").is_err());
        assert_eq!(parse_allow_addrs("198.51.100.2/32, 10.0.0.0/8").unwrap().len(), 2);
        assert!(parse_allow_addrs("198.51.100.2/40").is_err());
    }
}
