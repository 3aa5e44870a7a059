//! Lists across servers, and the routing table they fill: one page of a list spans consecutive servers
//! (gateway cursors name a server and its own cursor), each server's page passes the mcp-filter plugins first,
//! and a name or URI not in the table triggers one refresh of the lists before it is refused.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Session;
use crate::aggregate::{Cursor, ListKind};
use crate::jsonrpc;
use crate::runtime::Slot;
use crate::upstream::Reply;
use gigmcp_plugin_runtime::ResponseDecision;
use gigmcp_types::policy::McpResponse;
use gigmcp_types::server::ServerSpec;
use gigmcp_types::sync::lock;

/// Pages walked when refreshing the routing table (or filling one page), at most.
const MAX_REFRESH_PAGES: usize = 1000;
/// Items after which a page that spans servers ends (the rest follows with a cursor).
const MAX_PAGE_ITEMS: usize = 1000;
/// What hid a catalog tool that is off for the profile (`gigmcp profile tools`), where plugins are named.
const PROFILE_TOOLS: &str = "profile-tools";

/// Names mcp-filter plugins removed from one page of a server's list, and which plugins changed the page.
#[derive(Debug, Default)]
struct HiddenNames {
    names: Vec<String>,
    by: Vec<String>,
}

/// The `name`s of a list result's items.
fn item_names(result: &Value, kind: ListKind) -> Vec<String> {
    result
        .get(kind.field())
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Session {
    /// One page of a list across all servers. A gateway cursor names a server and that server's cursor;
    /// servers without the list are skipped, and a client never gets an empty page with a cursor.
    pub(super) async fn list(&self, id: Value, kind: ListKind, params: Option<&Value>) -> Value {
        let cursor = match params.and_then(|p| p.get("cursor")) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => match Cursor::decode(text) {
                Some(c) => Some(c),
                None => return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "invalid cursor"),
            },
            Some(_) => {
                return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "cursor must be a string");
            }
        };
        let slots = self.runtime.slots();
        let (mut index, mut upstream_cursor) = match cursor {
            None => (0, None),
            Some(Cursor { s, c }) => match slots.iter().position(|slot| slot.def.name.as_str() == s) {
                Some(index) => (index, c),
                None => {
                    return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "invalid cursor: that server is gone");
                }
            },
        };
        // Consecutive servers' lists go into one page, so a client that never follows cursors still sees
        // every server that does not paginate; a server that paginates ends the page with its own cursor.
        let mut items = Vec::new();
        for _ in 0..MAX_REFRESH_PAGES {
            let Some(slot) = slots.get(index) else { break };
            let (page, next, hidden) = self
                .upstream_page(slot, kind, upstream_cursor.take())
                .await
                .unwrap_or_default();
            let (admitted, collisions) = {
                let mut routes = lock(&self.runtime.routes);
                routes.hide(kind, &slot.def.name, &slot.def.prefix, &hidden.names, &hidden.by);
                routes.admit_page(kind, &slot.def.name, &slot.def.prefix, page)
            };
            for c in collisions {
                tracing::error!(
                    profile = %self.runtime.slug, server = %slot.def.name,
                    "hiding {:?}: server {} already exposes that name; change a prefix", c.name, c.holder
                );
            }
            items.extend(admitted);
            let next_cursor = match next {
                Some(next) if items.is_empty() => {
                    upstream_cursor = Some(next); // an empty page with more to come: take the next one now
                    continue;
                }
                Some(next) => Some(Cursor {
                    s: slot.def.name.to_string(),
                    c: Some(next),
                }),
                None => {
                    index += 1;
                    slots
                        .get(index)
                        .filter(|_| items.len() >= MAX_PAGE_ITEMS)
                        .map(|n| Cursor {
                            s: n.def.name.to_string(),
                            c: None,
                        })
                }
            };
            if let Some(next) = next_cursor {
                return jsonrpc::result(id, json!({ kind.field(): items, "nextCursor": next.encode() }));
            }
        }
        jsonrpc::result(id, json!({ kind.field(): items }))
    }

    /// One page of one server's list: its items and its next cursor. `None` when the server has no such list
    /// or failed (logged; one broken server does not hide the others).
    async fn upstream_page(
        &self,
        slot: &Slot,
        kind: ListKind,
        cursor: Option<Value>,
    ) -> Option<(Vec<Value>, Option<Value>, HiddenNames)> {
        let conn = match self.conn(slot).await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::error!(profile = %self.runtime.slug, server = %slot.def.name, "cannot start: {e}");
                return None;
            }
        };
        if !conn.has_capability(kind.capability()) {
            return None;
        }
        let params = cursor.map(|c| json!({ "cursor": c }));
        // Nothing records this request's id, so nothing cancels it.
        let Reply::Message(mut reply) = conn.request(kind.method(), params, None).reply().await else {
            return None;
        };
        let Some(result) = reply.get_mut("result") else {
            tracing::warn!(server = %slot.def.name, "{} failed: {}", kind.method(), reply["error"]);
            return None;
        };
        // Each server's page passes the mcp-filter plugins before aggregation, under the server's own names,
        // so what a plugin hides never reaches the routing table or the client. What was hidden, and by whom,
        // is remembered so a call to it is audited as the plugins' denial.
        let mut hidden = HiddenNames::default();
        if let Some((set, ctx)) = self.filter(&Value::Null) {
            let before = item_names(result, kind);
            let response = McpResponse {
                server: slot.def.name.to_string(),
                method: kind.method().to_owned(),
                name: None,
                result: result.take(),
            };
            match set.filter_response(&ctx, response).await {
                ResponseDecision::Pass {
                    result: passed,
                    modified_by,
                } => {
                    *result = passed;
                    if !modified_by.is_empty() {
                        let after = item_names(result, kind);
                        hidden.names = before.into_iter().filter(|n| !after.contains(n)).collect();
                        hidden.by = modified_by;
                    }
                }
                ResponseDecision::Deny(reason) => {
                    tracing::warn!(server = %slot.def.name, "{} denied by plugin: {}", kind.method(), reason.message);
                    return None;
                }
            }
        }
        let mut items = result
            .get(kind.field())
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // A catalog entry's tools that are off for this profile (its copy of the definition says which) are
        // hidden whatever the server lists: a static binary lists them all.
        if let (ListKind::Tools, ServerSpec::Toolpack { toolpack, .. }) = (kind, &slot.def.spec) {
            let off: Vec<&str> = toolpack
                .tools
                .iter()
                .filter(|t| !t.default)
                .map(|t| t.name.as_str())
                .collect();
            items.retain(|item| {
                let name = item.get("name").and_then(Value::as_str).unwrap_or("");
                if off.contains(&name) {
                    hidden.names.push(name.to_owned());
                    return false;
                }
                true
            });
            if !hidden.names.is_empty() && !hidden.by.iter().any(|b| b == PROFILE_TOOLS) {
                hidden.by.push(PROFILE_TOOLS.to_owned());
            }
        }
        let next = result.get("nextCursor").filter(|c| !c.is_null()).cloned();
        Some((items, next, hidden))
    }

    /// Walks every page of a list so the routing table knows every name.
    async fn refresh(&self, kind: ListKind) {
        let mut cursor: Option<Value> = None;
        for _ in 0..MAX_REFRESH_PAGES {
            let params = cursor.take().map(|c| json!({ "cursor": c }));
            let reply = self.list(Value::Null, kind, params.as_ref()).await;
            match reply["result"].get("nextCursor") {
                Some(next) => cursor = Some(next.clone()),
                None => return,
            }
        }
    }

    pub(super) async fn route_name(&self, kind: ListKind, exposed: &str) -> Option<(Arc<Slot>, String)> {
        let resolve = || lock(&self.runtime.routes).resolve_name(kind, exposed);
        let (server, name) = match resolve() {
            Some(found) => found,
            None => {
                self.refresh(kind).await;
                resolve()?
            }
        };
        Some((self.runtime.slot(&server)?, name))
    }

    pub(super) async fn route_uri(&self, uri: &str) -> Option<Arc<Slot>> {
        let resolve = || lock(&self.runtime.routes).resolve_uri(uri);
        let server = match resolve() {
            Some(found) => found,
            None => {
                self.refresh(ListKind::Resources).await;
                self.refresh(ListKind::ResourceTemplates).await;
                resolve()?
            }
        };
        self.runtime.slot(&server)
    }
}
