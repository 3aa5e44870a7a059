//! The one host-pattern grammar of Gig'MCP, shared by the gateway (a server's egress list, a credential's hosts)
//! and the plugin SDK (the `egress-allowlist` plugin's rules), so the same text means the same hosts everywhere.
//!
//! - `api.example.com`: exactly that host (an IPv4 or IPv6 literal is an exact host too);
//! - `*.example.com`: exactly one label before `example.com` (`api.example.com`, not `a.b.example.com`);
//! - `**.example.com`: one label or more before `example.com` (`api.example.com` and `a.b.example.com`).
//!
//! The apex (`example.com`) is never implied, a wildcard is only ever the whole first label, and the domain after
//! it has at least two labels (`*.com` is refused). Hosts compare case-insensitively, without a trailing dot.
//! Ports are not part of a host pattern: each caller adds its own port syntax.
//!
//! Depends on nothing, and must never: it is compiled into WebAssembly plugins.

#![forbid(unsafe_code)]

use std::fmt;

/// How many labels a wildcard stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Depth {
    /// `*.`: exactly one label.
    OneLabel,
    /// `**.`: one label or more.
    AnyDepth,
}

/// A parsed host pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    Wildcard { depth: Depth, domain: String },
}

/// Why a host pattern was refused: the message says how to write it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

impl HostPattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let trimmed = text.trim();
        if trimmed.starts_with('[') || trimmed.ends_with(']') {
            // Brackets enclose an IPv6 address and nothing else.
            let inner = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
            return match inner.map(str::parse::<std::net::Ipv6Addr>) {
                Some(Ok(ip)) => Ok(Self::Exact(ip.to_string())),
                _ => Err(PatternError(format!("{text:?}: brackets enclose an IPv6 address"))),
            };
        }
        let host = normalize(text);
        if host.is_empty() {
            return Err(PatternError(format!("{text:?} has no host")));
        }
        let (depth, rest) = if let Some(rest) = host.strip_prefix("**.") {
            (Some(Depth::AnyDepth), rest)
        } else if let Some(rest) = host.strip_prefix("*.") {
            (Some(Depth::OneLabel), rest)
        } else {
            (None, host.as_str())
        };
        if rest.contains('*') {
            return Err(PatternError(format!(
                "{text:?}: a wildcard is allowed only as the whole first label: `*.example.com` (one label) or \
                 `**.example.com` (any depth)"
            )));
        }
        match depth {
            None => match rest.parse::<std::net::IpAddr>() {
                // An address in its canonical form, so `[0:0::1]` and `[::1]` are one pattern.
                Ok(ip) => Ok(Self::Exact(ip.to_string())),
                Err(_) if is_dns_name(rest) => Ok(Self::Exact(rest.to_owned())),
                Err(_) => Err(PatternError(format!("{text:?} is not a host name or IP address"))),
            },
            Some(depth) => {
                if !is_dns_name(rest) || !rest.contains('.') {
                    return Err(PatternError(format!(
                        "{text:?}: a wildcard needs a domain of at least two labels after it (`*.example.com`)"
                    )));
                }
                Ok(Self::Wildcard {
                    depth,
                    domain: rest.to_owned(),
                })
            }
        }
    }

    /// Whether `host` (as a client wrote it: any case, maybe a trailing dot) is one this pattern allows.
    pub fn matches(&self, host: &str) -> bool {
        let host = normalize(host);
        match self {
            Self::Exact(exact) => {
                &host == exact
                    || matches!(
                        (host.parse::<std::net::IpAddr>(), exact.parse::<std::net::IpAddr>()),
                        (Ok(a), Ok(b)) if a == b
                    )
            }
            Self::Wildcard { depth, domain } => {
                let Some(labels) = host
                    .strip_suffix(domain.as_str())
                    .and_then(|rest| rest.strip_suffix('.'))
                else {
                    return false;
                };
                !labels.is_empty()
                    && labels.split('.').all(|label| !label.is_empty())
                    && match depth {
                        Depth::OneLabel => !labels.contains('.'),
                        Depth::AnyDepth => true,
                    }
            }
        }
    }

    pub fn is_wildcard(&self) -> bool {
        matches!(self, Self::Wildcard { .. })
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(host) if host.contains(':') => write!(f, "[{host}]"),
            Self::Exact(host) => f.write_str(host),
            Self::Wildcard {
                depth: Depth::OneLabel,
                domain,
            } => write!(f, "*.{domain}"),
            Self::Wildcard {
                depth: Depth::AnyDepth,
                domain,
            } => write!(f, "**.{domain}"),
        }
    }
}

/// Lower case, no surrounding space, no trailing dot, no brackets around an IPv6 literal.
pub fn normalize(host: &str) -> String {
    let host = host.trim().trim_end_matches('.');
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.to_ascii_lowercase()
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` split in two (an IPv6 host keeps its brackets); a bare IPv6
/// address (several colons) has no port.
pub fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, after) = text.split_at(end + 1);
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match text.matches(':').count() {
        0 => Some((text, None)),
        1 => text.split_once(':').map(|(h, p)| (h, Some(p))),
        _ => Some((text, None)),
    }
}

/// A DNS host name (RFC 1123): labels of 1 to 63 characters from a-z, 0-9 and '-', not starting or ending with
/// '-', 253 characters at most, whose last label is not all digits (that would be a malformed IP address).
fn is_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    (1..=253).contains(&name.len())
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        && !labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_star_is_one_label_and_never_the_apex() {
        let p = HostPattern::parse("*.Example.com.").unwrap();
        assert_eq!(p.to_string(), "*.example.com");
        assert!(p.matches("api.example.com"));
        assert!(p.matches("API.EXAMPLE.COM."));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("a.b.example.com"));
        assert!(!p.matches("evilexample.com"));
        assert!(!p.matches(".example.com"));
    }

    #[test]
    fn two_stars_are_any_depth_and_never_the_apex() {
        let p = HostPattern::parse("**.example.com").unwrap();
        assert_eq!(p.to_string(), "**.example.com");
        assert!(p.matches("api.example.com"));
        assert!(p.matches("a.b.example.com"));
        assert!(!p.matches("example.com"));
        assert!(!p.matches("evilexample.com"));
        assert!(!p.matches("a..example.com"));
    }

    #[test]
    fn exact_hosts_and_addresses() {
        let p = HostPattern::parse("API.github.com").unwrap();
        assert!(p.matches("api.github.com"));
        assert!(!p.matches("evil.api.github.com"));
        assert_eq!(HostPattern::parse("[::1]").unwrap().to_string(), "[::1]");
        assert_eq!(
            HostPattern::parse("[0:0::1]").unwrap(),
            HostPattern::parse("::1").unwrap()
        );
        assert!(HostPattern::parse("::1").unwrap().matches("[::1]"));
        assert!(HostPattern::parse("10.0.0.1").unwrap().matches("10.0.0.1"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "*",
            "*.",
            "**.",
            "*.com",
            "**.com",
            "a.*.com",
            "*x.com",
            "***.example.com",
            "*.*.example.com",
            "ex ample.com",
            "-a.com",
            "a..com",
            "a_b.com",
            "1.2.3",
            "256.1.1.1",
            "[nope]",
            "[::1",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ports_split_off() {
        assert_eq!(split_host_port("a.com:443"), Some(("a.com", Some("443"))));
        assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", Some("80"))));
        assert_eq!(split_host_port("::1"), Some(("::1", None)));
        assert_eq!(split_host_port("a.com"), Some(("a.com", None)));
    }
}
