//! `egress-allowlist`: a sandboxed server may reach a host only if a rule allows it.
//!
//! Rules are `host`, `host:port` or `host:*`, in the gateway's one host-pattern grammar: a host is exact
//! (`api.github.com`), a one-label wildcard (`*.example.com` matches `api.example.com`, not `example.com` and
//! not `a.b.example.com`) or an any-depth wildcard (`**.example.com` matches both, never `example.com`). A rule without a port allows the `default_ports` (443).
//! A server's own declared hosts (`gigmcp server add --egress`) are rules for that server unless
//! `use_declared` is false; `allow` applies to every server and `servers` to the one named.

use std::collections::HashMap;

use gigmcp_plugin_sdk::hosts::{HostPattern, split_host_port};
use gigmcp_plugin_sdk::prelude::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    servers: HashMap<String, Vec<String>>,
    #[serde(default = "yes")]
    use_declared: bool,
    #[serde(default = "https_port")]
    default_ports: Vec<u16>,
    #[serde(default = "one_minute")]
    cache_ttl_secs: u32,
}

fn yes() -> bool {
    true
}
fn https_port() -> Vec<u16> {
    vec![443]
}
fn one_minute() -> u32 {
    60
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ports {
    Default,
    One(u16),
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    host: HostPattern,
    ports: Ports,
}

impl Rule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (host, port) = split_host_port(text).ok_or_else(|| format!("{text:?} is not host[:port]"))?;
        let pattern = HostPattern::parse(host).map_err(|e| e.to_string())?;
        let ports = match port {
            None => Ports::Default,
            Some("*") => Ports::Any,
            Some(p) => Ports::One(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("{text:?}: {p:?} is not a port"))?,
            ),
        };
        Ok(Self { host: pattern, ports })
    }

    fn matches(&self, host: &str, port: u16, default_ports: &[u16]) -> bool {
        self.host.matches(host)
            && match self.ports {
                Ports::Default => default_ports.contains(&port),
                Ports::One(p) => p == port,
                Ports::Any => true,
            }
    }
}

pub struct EgressAllowlist {
    allow: Vec<Rule>,
    servers: HashMap<String, Vec<Rule>>,
    use_declared: bool,
    default_ports: Vec<u16>,
    cache_ttl_secs: u32,
}

fn parse_rules(rules: &[String], at: &str) -> Result<Vec<Rule>, PluginError> {
    rules
        .iter()
        .map(|r| Rule::parse(r).map_err(|e| PluginError::new("invalid-config", format!("{at}: {e}"))))
        .collect()
}

impl Plugin for EgressAllowlist {
    type Config = Config;
    const CONFIG_SCHEMA: &'static str = include_str!("../schema.json");

    fn new(config: Config) -> Result<Self, PluginError> {
        let allow = parse_rules(&config.allow, "allow")?;
        let mut servers = HashMap::new();
        for (server, rules) in &config.servers {
            servers.insert(server.clone(), parse_rules(rules, &format!("servers.{server}"))?);
        }
        Ok(Self {
            allow,
            servers,
            use_declared: config.use_declared,
            default_ports: config.default_ports,
            cache_ttl_secs: config.cache_ttl_secs,
        })
    }
}

impl EgressPolicy for EgressAllowlist {
    fn decide(&self, _ctx: &CallContext, request: &EgressRequest) -> EgressDecision {
        let (host, port) = (request.host.as_str(), request.port);
        let matches = |rule: &Rule| rule.matches(host, port, &self.default_ports);
        let declared = self.use_declared
            && request
                .declared
                .iter()
                .filter_map(|text| Rule::parse(text).ok())
                .any(|rule| matches(&rule));
        let allowed = declared
            || self.allow.iter().any(matches)
            || self
                .servers
                .get(&request.server)
                .is_some_and(|rules| rules.iter().any(matches));
        if allowed {
            EgressDecision::allow().cached_for(self.cache_ttl_secs)
        } else {
            EgressDecision::deny(
                "host-not-allowed",
                format!(
                    "server {} may not reach {host}:{port}: declare it with `gigmcp server add --egress` or \
                     allow it in the egress-allowlist plugin's configuration",
                    request.server
                ),
            )
        }
    }
}

gigmcp_plugin_sdk::export_plugin!(EgressAllowlist);

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(rule: &str, host: &str, port: u16) -> bool {
        Rule::parse(rule).unwrap().matches(host, port, &[443])
    }

    #[test]
    fn wildcards_cover_exactly_one_label_and_never_the_apex() {
        assert!(matches("*.example.com", "api.example.com", 443));
        assert!(!matches("*.example.com", "example.com", 443));
        assert!(!matches("*.example.com", "a.b.example.com", 443));
        assert!(!matches("*.example.com", "evilexample.com", 443));
        assert!(!matches("*.example.com", "api.example.com.evil.net", 443));
        assert!(matches("**.example.com", "a.b.example.com", 443));
        assert!(!matches("**.example.com", "example.com", 443));
    }

    #[test]
    fn ports_default_to_https_unless_given() {
        assert!(matches("example.com", "example.com", 443));
        assert!(!matches("example.com", "example.com", 80));
        assert!(matches("example.com:8443", "example.com", 8443));
        assert!(!matches("example.com:8443", "example.com", 443));
        assert!(matches("example.com:*", "example.com", 22));
        assert!(matches("[::1]:8080", "::1", 8080));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in ["", "*", "a.*.com", "example.com:0", "example.com:http", "*."] {
            assert!(Rule::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
