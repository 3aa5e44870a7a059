//! The audit event of a tool call: who called which tool of which server, how long it took, how it ended, and
//! the *shape* of its arguments, never their values.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{DENIED_BY_POLICY, Session};
use crate::aggregate::Hidden;
use crate::upstream::Reply;
use gigmcp_types::audit::Outcome;
use gigmcp_types::names::ServerName;

/// Where a tool or prompt call went, for its audit event: resolved once, by the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallRoute {
    /// Forwarded to `server`, which knows the tool as `name`.
    Routed { server: ServerName, name: String },
    /// A policy plugin hid it: the client is told it is unknown; the audit log records the plugins' denial.
    Hidden(Hidden),
    /// No server has it (or the call was malformed).
    Unknown,
}

/// The shape of a tool call's arguments: key names and value types, no values. Deep or wide structures are
/// cut short (`"…"`), so an event stays small whatever a client sends.
pub(super) fn argument_shape(value: &Value, depth: usize) -> Value {
    const MAX_DEPTH: usize = 4;
    const MAX_KEYS: usize = 32;
    match value {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("boolean"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        _ if depth >= MAX_DEPTH => json!("…"),
        Value::Array(items) => match items.first() {
            None => json!([]),
            Some(first) => json!([argument_shape(first, depth + 1)]),
        },
        Value::Object(map) => {
            let mut shape: Map<String, Value> = map
                .iter()
                .take(MAX_KEYS)
                .map(|(k, v)| (k.chars().take(64).collect(), argument_shape(v, depth + 1)))
                .collect();
            if map.len() > MAX_KEYS {
                shape.insert("…".into(), json!(map.len() - MAX_KEYS));
            }
            Value::Object(shape)
        }
    }
}

impl Session {
    /// Records a tool call in the audit log: who (the profile's token or the playground's user, and this
    /// session), which server and
    /// tool, how long it took, its outcome, and the *shape* of its arguments — never their values, which
    /// may hold anything a user typed.
    pub(super) fn audit_tool_call(
        &self,
        exposed: Option<&str>,
        arguments: Option<Value>,
        reply: &Reply,
        route: &CallRoute,
        took: Duration,
    ) {
        let Some(audit) = self.runtime.deps.audit.as_ref() else {
            return;
        };
        // A call the client cancelled has no reply: neither an error nor a result.
        let reply = match reply {
            Reply::Message(message) => Some(message),
            Reply::Cancelled => None,
        };
        let error = reply.and_then(|r| r.get("error"));
        let outcome = match (route, error, reply.and_then(|r| r.get("result"))) {
            (CallRoute::Hidden(_), _, _) => Outcome::Deny,
            (_, Some(error), _) if error.get("code").and_then(Value::as_i64) == Some(DENIED_BY_POLICY) => Outcome::Deny,
            (_, Some(_), _) => Outcome::Error,
            (_, None, Some(result)) if result.get("isError").and_then(Value::as_bool) == Some(true) => {
                Outcome::ToolError
            }
            _ => Outcome::Ok,
        };
        let (server, upstream_tool) = match route {
            CallRoute::Routed { server, name } => (Some(server), Some(name)),
            CallRoute::Hidden(hidden) => (Some(&hidden.server), Some(&hidden.name)),
            CallRoute::Unknown => (None, None),
        };
        let mut detail = json!({
            "session": self.id,
            "tool": exposed,
            "upstream_tool": upstream_tool,
            "duration_ms": took.as_secs_f64() * 1000.0,
            "arguments": arguments,
        });
        if let Some(error) = error {
            detail["error"] = json!({"code": error.get("code"), "data": error.get("data")});
        }
        if let CallRoute::Hidden(hidden) = route {
            // The plugins that removed the tool from the server's list: the client was told it is unknown.
            detail["code"] = json!("hidden-by-policy");
            detail["plugin"] = json!(hidden.by.join(","));
        } else if let Some(plugin) = reply.and_then(|r| r.pointer("/error/data/plugin")) {
            detail["plugin"] = plugin.clone();
        }
        audit.record(gigmcp_types::audit::NewAuditEvent {
            kind: "mcp.tool_call".into(),
            actor: self.actor.clone(),
            profile: Some(self.runtime.slug.to_string()),
            server: server.map(ServerName::to_string),
            outcome,
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_audit_keeps_the_shape_of_arguments_never_their_values() {
        let args =
            json!({"query": "secret-value-123", "limit": 5, "tags": ["a", "b"], "opts": {"deep": true}, "x": null});
        let shape = argument_shape(&args, 0);
        assert_eq!(
            shape,
            json!({"query": "string", "limit": "number", "tags": ["string"], "opts": {"deep": "boolean"}, "x": "null"})
        );
        assert!(!shape.to_string().contains("secret-value-123"));
        let deep = json!({"a": {"b": {"c": {"d": {"e": "v"}}}}});
        assert_eq!(argument_shape(&deep, 0), json!({"a": {"b": {"c": {"d": "…"}}}}));
    }
}
