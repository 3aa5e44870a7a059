//! `audit-router`: copies of audit events to the gateway's exporters, by kind and outcome, with fields
//! redacted. The gateway has already written every event to its audit log of record; this only decides which
//! copies go where (`stdout`, `file:<name>`, `webhook:<name>`).

use gigmcp_plugin_sdk::json;
use gigmcp_plugin_sdk::prelude::*;
use serde_json::Value;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    routes: Vec<Route>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    destination: String,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    outcomes: Vec<String>,
    #[serde(default)]
    redact: Vec<String>,
}

impl Route {
    fn matches(&self, event: &AuditEvent) -> bool {
        let kind_ok = self.kinds.is_empty()
            || self.kinds.iter().any(|k| match k.strip_suffix('*') {
                Some(prefix) => event.kind.starts_with(prefix),
                None => *k == event.kind,
            });
        kind_ok && (self.outcomes.is_empty() || self.outcomes.contains(&event.outcome))
    }

    fn redacted(&self, event: &AuditEvent) -> AuditEvent {
        let mut copy = event.clone();
        if self.redact.is_empty() {
            return copy;
        }
        let mut detail: Value = serde_json::from_str(&copy.detail).unwrap_or(Value::Null);
        for pointer in &self.redact {
            match pointer.as_str() {
                "/actor" => copy.actor = "[redacted]".into(),
                "/profile" => copy.profile = None,
                "/server" => copy.server = None,
                "/detail" => detail = Value::Object(Default::default()),
                p => {
                    if let Some(inner) = p.strip_prefix("/detail") {
                        json::remove(&mut detail, inner);
                    }
                }
            }
        }
        copy.detail = detail.to_string();
        copy
    }
}

pub struct AuditRouter {
    routes: Vec<Route>,
}

impl Plugin for AuditRouter {
    type Config = Config;
    const CONFIG_SCHEMA: &'static str = include_str!("../schema.json");

    fn new(config: Config) -> Result<Self, PluginError> {
        for (i, route) in config.routes.iter().enumerate() {
            let d = route.destination.as_str();
            let named = |prefix: &str| {
                d.strip_prefix(prefix).is_some_and(|n| {
                    !n.is_empty()
                        && n.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                })
            };
            if d != "stdout" && !named("file:") && !named("webhook:") {
                return Err(PluginError::new(
                    "invalid-config",
                    format!(
                        "routes[{i}].destination {d:?}: use stdout, file:<name> or webhook:<name> (names: a-z, 0-9, -)"
                    ),
                ));
            }
            for p in &route.redact {
                if json::tokens(p).is_none() {
                    return Err(PluginError::new(
                        "invalid-config",
                        format!("routes[{i}].redact: {p:?} is not a JSON pointer"),
                    ));
                }
            }
        }
        Ok(Self { routes: config.routes })
    }
}

impl AuditSink for AuditRouter {
    fn route(&self, events: Vec<AuditEvent>) -> Result<Vec<Delivery>, PluginError> {
        let mut deliveries = Vec::new();
        for event in &events {
            for route in self.routes.iter().filter(|r| r.matches(event)) {
                deliveries.push(Delivery {
                    destination: route.destination.clone(),
                    event: route.redacted(event),
                });
            }
        }
        Ok(deliveries)
    }
}

gigmcp_plugin_sdk::export_plugin!(AuditRouter);
