//! `tool-filter`: which tools a profile may call and see, how large arguments and results may be, and
//! redaction of secret-looking strings in results.
//!
//! Patterns are `server/tool` with `*` matching any run of characters (`github/*`, `*/delete_*`), against the
//! server's name and the tool's name as that server knows it. A tool passes if it matches an `allow` pattern
//! (or `allow` is empty) and no `deny` pattern, both globally and in its profile's rules. Denied tools are
//! refused on `tools/call` and removed from `tools/list`, so clients never see them.

use std::collections::HashMap;

use gigmcp_plugin_sdk::json::pointer_token;
use gigmcp_plugin_sdk::prelude::*;
use serde_json::Value;

mod secrets;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    profiles: HashMap<String, Rules>,
    max_argument_bytes: Option<usize>,
    max_result_bytes: Option<usize>,
    #[serde(default = "yes")]
    redact_secrets: bool,
}

fn yes() -> bool {
    true
}

#[derive(serde::Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

impl Rules {
    fn passes(&self, qualified: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|p| glob(p, qualified)))
            && !self.deny.iter().any(|p| glob(p, qualified))
    }
}

/// `*` matches any run of characters (including none); everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().expect("split yields at least one part");
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

pub struct ToolFilter {
    global: Rules,
    profiles: HashMap<String, Rules>,
    max_argument_bytes: Option<usize>,
    max_result_bytes: Option<usize>,
    redact_secrets: bool,
}

impl ToolFilter {
    fn tool_passes(&self, ctx: &CallContext, server: &str, tool: &str) -> bool {
        let qualified = format!("{server}/{tool}");
        self.global.passes(&qualified)
            && ctx
                .profile
                .as_ref()
                .and_then(|p| self.profiles.get(p))
                .is_none_or(|rules| rules.passes(&qualified))
    }
}

impl Plugin for ToolFilter {
    type Config = Config;
    const CONFIG_SCHEMA: &'static str = include_str!("../schema.json");

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Self {
            global: Rules {
                allow: config.allow,
                deny: config.deny,
            },
            profiles: config.profiles,
            max_argument_bytes: config.max_argument_bytes,
            max_result_bytes: config.max_result_bytes,
            redact_secrets: config.redact_secrets,
        })
    }
}

impl McpFilter for ToolFilter {
    fn on_request(&self, ctx: &CallContext, request: &McpRequest) -> RequestAction {
        if request.method != "tools/call" {
            return RequestAction::Allow;
        }
        let Some(tool) = &request.name else {
            return RequestAction::Allow;
        };
        if !self.tool_passes(ctx, &request.server, tool) {
            return RequestAction::deny(
                "tool-denied",
                format!("the tool {tool} of server {} is not allowed here", request.server),
            );
        }
        if let Some(max) = self.max_argument_bytes {
            let size = serde_json::from_str::<Value>(&request.params)
                .ok()
                .and_then(|p| p.get("arguments").map(|a| a.to_string().len()))
                .unwrap_or(0);
            if size > max {
                return RequestAction::deny(
                    "arguments-too-large",
                    format!("the arguments are {size} bytes; at most {max} are allowed"),
                );
            }
        }
        RequestAction::Allow
    }

    fn on_response(&self, ctx: &CallContext, response: &McpResponse) -> ResponseAction {
        match response.method.as_str() {
            "tools/list" => self.hide_denied_tools(ctx, response),
            "tools/call" => {
                if let Some(max) = self.max_result_bytes
                    && response.payload.len() > max
                {
                    return ResponseAction::deny(
                        "result-too-large",
                        format!(
                            "the result is {} bytes; at most {max} are allowed",
                            response.payload.len()
                        ),
                    );
                }
                self.redact(response)
            }
            _ if self.redact_secrets => self.redact(response),
            _ => ResponseAction::Pass,
        }
    }
}

impl ToolFilter {
    fn hide_denied_tools(&self, ctx: &CallContext, response: &McpResponse) -> ResponseAction {
        let Ok(result) = serde_json::from_str::<Value>(&response.payload) else {
            return ResponseAction::Pass;
        };
        let Some(tools) = result.get("tools").and_then(Value::as_array) else {
            return ResponseAction::Pass;
        };
        let hidden: Vec<Redaction> = tools
            .iter()
            .enumerate()
            .filter(|(_, tool)| {
                let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                !self.tool_passes(ctx, &response.server, name)
            })
            .map(|(i, _)| Redaction::remove(format!("/tools/{i}")))
            .collect();
        if hidden.is_empty() {
            ResponseAction::Pass
        } else {
            ResponseAction::Redact(hidden)
        }
    }

    fn redact(&self, response: &McpResponse) -> ResponseAction {
        // Most results hold nothing secret-looking: look at the text before parsing it.
        if !self.redact_secrets || !secrets::may_contain(&response.payload) {
            return ResponseAction::Pass;
        }
        let Ok(result) = serde_json::from_str::<Value>(&response.payload) else {
            return ResponseAction::Pass;
        };
        let mut redactions = Vec::new();
        collect(&result, &mut String::new(), &mut redactions);
        if redactions.is_empty() {
            ResponseAction::Pass
        } else {
            ResponseAction::Redact(redactions)
        }
    }
}

/// Every string in `value` with a secret in it, as a replacement of that string.
fn collect(value: &Value, at: &mut String, out: &mut Vec<Redaction>) {
    match value {
        Value::String(text) => {
            if let Some(clean) = secrets::redact(text) {
                out.push(Redaction::replace_with_text(at.clone(), &clean));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                collect(item, at, out);
                at.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let len = at.len();
                at.push('/');
                at.push_str(&pointer_token(key));
                collect(item, at, out);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

gigmcp_plugin_sdk::export_plugin!(ToolFilter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("github/*", "github/create_issue"));
        assert!(glob("*/delete_*", "fs/delete_file"));
        assert!(!glob("*/delete_*", "fs/read_file"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("*", ""));
    }

    #[test]
    fn profile_rules_narrow_global_ones() {
        let config: Config =
            serde_json::from_str(r#"{"deny":["*/delete_*"],"profiles":{"team":{"allow":["fs/*"]}}}"#).unwrap();
        let filter = ToolFilter::new(config).unwrap();
        let team = CallContext {
            request_id: "r".into(),
            profile: Some("team".into()),
        };
        let other = CallContext {
            request_id: "r".into(),
            profile: Some("other".into()),
        };
        assert!(filter.tool_passes(&team, "fs", "read"));
        assert!(!filter.tool_passes(&team, "fs", "delete_x"));
        assert!(!filter.tool_passes(&team, "github", "issue"));
        assert!(filter.tool_passes(&other, "github", "issue"));
    }
}
