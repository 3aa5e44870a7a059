//! `/api/profiles/{slug}/tools`: the dashboard's tool playground. It lists the tools a profile's clients see
//! and calls one through the profile's real pipeline — its servers in their sandboxes, its mcp-filter plugins,
//! the audit log — as the logged-in user instead of with the profile's token. Whoever may see a profile may use
//! it here, as they could with its token; the audit event names the user (`user:<id>`), not the token.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::api::profiles::lookup;
use crate::api::{Body, PathParams};
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_types::ids::ProfileId;

/// A tool as the profile's clients see it.
#[derive(Serialize, JsonSchema)]
pub struct ToolView {
    /// The name clients call it by (the server's prefix, `_`, the server's own name).
    pub name: String,
    /// The server that serves it.
    pub server: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The tool's JSON Schema for its arguments, as the server gave it (anything: the playground must cope).
    pub input_schema: Value,
    /// Empty for a tool clients see. For a tool an mcp-filter plugin removed from the list: the plugins that
    /// changed the list (a call to it is refused and audited as their denial). Hidden tools come last and
    /// have no title, description or schema (the plugin removed them).
    pub hidden_by: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct ToolList {
    pub items: Vec<ToolView>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallTool {
    /// The tool's name as listed.
    pub name: String,
    /// Its arguments (an object; absent means `{}`).
    #[serde(default)]
    pub arguments: Option<Map<String, Value>>,
}

/// What an MCP client would have received: the tool's result, or the JSON-RPC error (a policy denial is
/// code -32001 with the deciding plugin in `error.data.plugin`).
#[derive(Serialize, JsonSchema)]
pub struct ToolCallView {
    /// The tool's result (`content`, `isError`, …), as the server gave it after the plugins; absent on an error.
    pub result: Option<Value>,
    /// The JSON-RPC error (`code`, `message`, `data`); absent when the tool answered.
    pub error: Option<Value>,
}

/// The profile (404 unless the caller may see it) and the servers' prefixes, longest first.
async fn profile_of(
    state: &Arc<ControlState>,
    caller: Caller,
    slug: String,
) -> Result<(ProfileId, Vec<(String, String)>), ApiError> {
    blocking(state, move |state| {
        let (profile, _) = lookup(&state.store, &caller, &slug)?;
        let mut prefixes: Vec<(String, String)> = state
            .store
            .profile_config(&profile.slug)
            .map_err(ApiError::internal)?
            .servers
            .into_iter()
            .map(|def| (format!("{}_", def.prefix), def.name.to_string()))
            .collect();
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok((profile.id, prefixes))
    })
    .await
}

async fn request(
    state: &ControlState,
    profile: ProfileId,
    caller: &Caller,
    method: &'static str,
    params: Value,
) -> Result<Value, ApiError> {
    state
        .running
        .request(profile, format!("user:{}", caller.user), method, params)
        .await
        .map_err(ApiError::internal)
}

pub async fn list(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
) -> Result<Json<ToolList>, ApiError> {
    let (profile, prefixes) = profile_of(&state, caller.clone(), slug).await?;
    let mut items = Vec::new();
    let mut cursor: Option<Value> = None;
    // A profile's list is one page today; follow cursors anyway, boundedly.
    for _ in 0..64 {
        let params = match &cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let reply = request(&state, profile, &caller, "tools/list", params).await?;
        if let Some(error) = reply.get("error") {
            return Err(ApiError::new(
                http::StatusCode::BAD_GATEWAY,
                "upstream",
                format!("listing the profile's tools failed: {error}"),
            ));
        }
        let result = reply.get("result").cloned().unwrap_or_default();
        for tool in result.get("tools").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            let text = |key: &str| tool.get(key).and_then(Value::as_str).map(str::to_owned);
            items.push(ToolView {
                server: prefixes
                    .iter()
                    .find(|(prefix, _)| name.starts_with(prefix.as_str()))
                    .map(|(_, server)| server.clone()),
                name: name.to_owned(),
                title: text("title"),
                description: text("description"),
                input_schema: tool.get("inputSchema").cloned().unwrap_or_else(|| json!({})),
                hidden_by: Vec::new(),
            });
        }
        cursor = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
        if cursor.is_none() {
            break;
        }
    }
    for hidden in state.running.hidden_tools(profile) {
        if items.iter().any(|t| t.name == hidden.exposed) {
            continue; // listed again since (a rule changed)
        }
        items.push(ToolView {
            name: hidden.exposed,
            server: Some(hidden.server),
            title: None,
            description: None,
            input_schema: json!({}),
            hidden_by: hidden.by,
        });
    }
    Ok(Json(ToolList { items }))
}

pub async fn call(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
    Body(body): Body<CallTool>,
) -> Result<Json<ToolCallView>, ApiError> {
    if body.name.is_empty() || body.name.len() > 256 {
        return Err(ApiError::bad_request(
            "name: give the tool's name as listed (1 to 256 characters)",
        ));
    }
    let (profile, _) = profile_of(&state, caller.clone(), slug).await?;
    let params = json!({"name": body.name, "arguments": body.arguments.unwrap_or_default()});
    let reply = request(&state, profile, &caller, "tools/call", params).await?;
    Ok(Json(ToolCallView {
        result: reply.get("result").cloned(),
        error: reply.get("error").cloned(),
    }))
}
