//! `header-injector`: where a credential goes in an outbound request.
//!
//! By default a credential replaces its placeholder where the server put it: the host finds placeholders in
//! header values and query parameters and says which credential each stands for, and this plugin sets that
//! header or parameter to the same value with the secret in the placeholder's place. Rules add headers for a
//! credential on requests to some hosts (`Authorization: Bearer {secret}` for `api.github.com`). Only granted
//! credentials are placed: the host grants a credential only for the hosts it is bound to, and substitutes the
//! secret itself, after this plugin returned.

use std::collections::HashMap;

use gigmcp_plugin_sdk::hosts::HostPattern;
use gigmcp_plugin_sdk::prelude::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "yes")]
    replace_placeholders: bool,
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

fn yes() -> bool {
    true
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleConfig {
    credential: String,
    hosts: Vec<String>,
    header: String,
    template: String,
}

struct Rule {
    credential: String,
    hosts: Vec<HostPattern>,
    header: String,
    /// The template split at `{secret}`: literal, secret, literal, secret, ...
    pieces: Vec<String>,
}

pub struct HeaderInjector {
    replace_placeholders: bool,
    rules: Vec<Rule>,
}

impl Plugin for HeaderInjector {
    type Config = Config;
    const CONFIG_SCHEMA: &'static str = include_str!("../schema.json");

    fn new(config: Config) -> Result<Self, PluginError> {
        let invalid = |m: String| PluginError::new("invalid-config", m);
        let mut rules = Vec::new();
        for (i, rule) in config.rules.into_iter().enumerate() {
            let hosts = rule
                .hosts
                .iter()
                .map(|h| HostPattern::parse(h).map_err(|e| invalid(format!("rules[{i}].hosts: {e}"))))
                .collect::<Result<_, _>>()?;
            if !rule.template.contains("{secret}") {
                return Err(invalid(format!("rules[{i}].template has no {{secret}}")));
            }
            if rule
                .header
                .bytes()
                .any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            {
                return Err(invalid(format!(
                    "rules[{i}].header {:?} is not a header name",
                    rule.header
                )));
            }
            rules.push(Rule {
                credential: rule.credential,
                hosts,
                header: rule.header.to_ascii_lowercase(),
                pieces: rule.template.split("{secret}").map(str::to_owned).collect(),
            });
        }
        Ok(Self {
            replace_placeholders: config.replace_placeholders,
            rules,
        })
    }
}

impl CredentialInjector for HeaderInjector {
    fn inject(
        &self,
        _ctx: &CallContext,
        request: &OutboundRequest,
        grants: Vec<Grant>,
    ) -> Result<Vec<RequestOp>, PluginError> {
        let granted: HashMap<&str, &Secret> = grants.iter().map(|g| (g.credential.as_str(), &g.secret)).collect();
        let mut ops = Vec::new();
        if self.replace_placeholders {
            for site in &request.placeholders {
                let Some(secret) = granted.get(site.credential.as_str()) else {
                    continue;
                };
                let value = Template::new()
                    .literal(site.before.clone())
                    .secret(secret)
                    .literal(site.after.clone());
                ops.push(match &site.location {
                    PlaceholderLocation::Header(name) => RequestOp::set_header(name.clone(), value),
                    PlaceholderLocation::Query(name) => RequestOp::set_query(name.clone(), value),
                });
            }
        }
        for rule in &self.rules {
            let Some(secret) = granted.get(rule.credential.as_str()) else {
                continue;
            };
            if !rule.hosts.iter().any(|h| h.matches(&request.host)) {
                continue;
            }
            let mut value = Template::new();
            for (i, piece) in rule.pieces.iter().enumerate() {
                if i > 0 {
                    value = value.secret(secret);
                }
                value = value.literal(piece.clone());
            }
            ops.push(RequestOp::set_header(rule.header.clone(), value));
        }
        Ok(ops)
    }
}

gigmcp_plugin_sdk::export_plugin!(HeaderInjector);
