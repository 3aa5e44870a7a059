//! A client session on a profile's endpoint: what one MCP client sees, and how each of its messages reaches
//! the right server.
//!
//! The client's request ids stay in this session: upstream, every request gets the connection's own id, and
//! the reply gets the client's id back here. A server→client request is given an id of this session
//! (`gig-<n>`), so that the client's answer finds its way back to the server and the server's own id.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::aggregate::{Cursor, Hidden, ListKind, merge_initialize};
use crate::client::Client;
use crate::jsonrpc;
use crate::jsonrpc::id_key;
use crate::runtime::{ConnCell, Runtime, Slot, handle_events, log_level_index};
use crate::upstream::{Conn, Origin, Outbound, UpstreamEvent};
use gigmcp_plugin_runtime::{PluginSet, RequestDecision, ResponseDecision};
use gigmcp_types::audit::Outcome;
use gigmcp_types::ids::ProfileId;
use gigmcp_types::names::ServerName;
use gigmcp_types::policy::{CallContext, DenyReason, McpRequest, McpResponse};
use gigmcp_types::token::random_id;

/// The JSON-RPC error for a request a plugin refused: MCP has no code for policy, so one of the
/// implementation-defined server errors, with the plugin's code and name in `data`.
pub const DENIED_BY_POLICY: i64 = -32001;

fn denied(id: Value, reason: &DenyReason) -> Value {
    let plugin = reason.plugin.as_deref().unwrap_or("a plugin");
    let mut reply = jsonrpc::error(id, DENIED_BY_POLICY, format!("denied by {plugin}: {}", reason.message));
    reply["error"]["data"] = json!({"code": reason.code, "plugin": reason.plugin});
    reply
}

/// The tool's or prompt's name as the server knows it, for the methods that name one.
fn upstream_name(method: &str, params: Option<&Value>) -> Option<String> {
    matches!(method, "tools/call" | "prompts/get")
        .then(|| params?.get("name")?.as_str().map(str::to_owned))
        .flatten()
}

/// The shape of a tool call's arguments: key names and value types, no values. Deep or wide structures are
/// cut short (`"…"`), so an event stays small whatever a client sends.
pub fn argument_shape(value: &Value, depth: usize) -> Value {
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

/// Messages kept for a client that has no GET stream open; beyond this the oldest are dropped.
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

/// Where a tool or prompt call went, for its audit event: resolved once, by the call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CallRoute {
    /// Forwarded to `server`, which knows the tool as `name`.
    Routed { server: ServerName, name: String },
    /// A policy plugin hid it: the client is told it is unknown; the audit log records the plugins' denial.
    Hidden(Hidden),
    /// No server has it (or the call was malformed).
    Unknown,
}

const BACKLOG_LIMIT: usize = 1000;
/// MCP's "resource not found".
const RESOURCE_NOT_FOUND: i64 = -32002;
/// Pages walked when refreshing the routing table (or filling one page), at most.
const MAX_REFRESH_PAGES: usize = 1000;
/// Items after which a page that spans servers ends (the rest follows with a cursor).
const MAX_PAGE_ITEMS: usize = 1000;

pub struct Session {
    pub id: String,
    pub profile: ProfileId,
    pub runtime: Arc<Runtime>,
    pub protocol_version: String,
    client_capabilities: Value,
    own: Mutex<HashMap<ServerName, Arc<ConnCell>>>,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    inflight: Mutex<HashMap<String, (Arc<Conn>, u64)>>,
    outgoing: Mutex<HashMap<String, (Arc<Conn>, Value)>>,
    next_outgoing: AtomicU64,
    stream: Mutex<Option<mpsc::UnboundedSender<Value>>>,
    backlog: Mutex<VecDeque<Value>>,
    last_active: Mutex<Instant>,
    /// The level this client asked for with `logging/setLevel` (index into `LOG_LEVELS`).
    log_level: Mutex<Option<usize>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes an in-flight entry when the request ends, however it ends.
struct InflightGuard<'a> {
    session: &'a Session,
    key: String,
    upstream_id: u64,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        let mut inflight = lock(&self.session.inflight);
        if inflight.get(&self.key).is_some_and(|(_, id)| *id == self.upstream_id) {
            inflight.remove(&self.key);
        }
    }
}

impl Session {
    pub fn new(runtime: Arc<Runtime>, protocol_version: String, client_capabilities: Value) -> Arc<Self> {
        let (events, rx) = mpsc::unbounded_channel();
        let session = Arc::new(Self {
            id: random_id(),
            profile: runtime.profile,
            runtime: runtime.clone(),
            protocol_version,
            client_capabilities,
            own: Mutex::default(),
            events,
            inflight: Mutex::default(),
            outgoing: Mutex::default(),
            next_outgoing: AtomicU64::new(1),
            stream: Mutex::default(),
            backlog: Mutex::default(),
            last_active: Mutex::new(Instant::now()),
            log_level: Mutex::default(),
        });
        let client: Weak<dyn Client> = Arc::downgrade(&session) as Weak<dyn Client>;
        tokio::spawn(handle_events(Arc::downgrade(&runtime), Some(client.clone()), rx));
        runtime.add_session(&session.id, client);
        session
    }

    pub fn touch(&self) {
        *lock(&self.last_active) = Instant::now();
    }

    pub fn last_active(&self) -> Instant {
        *lock(&self.last_active)
    }

    pub fn log_level(&self) -> Option<usize> {
        *lock(&self.log_level)
    }

    /// The connection this session uses for a server, started if need be.
    async fn conn(&self, slot: &Slot) -> Result<Arc<Conn>, String> {
        let deps = &self.runtime.deps;
        if slot.is_per_session() {
            let cell = lock(&self.own).entry(slot.def.name.clone()).or_default().clone();
            cell.get_or_start(&slot.def, deps, &self.events, &self.runtime.slug)
                .await
        } else {
            slot.shared
                .get_or_start(&slot.def, deps, &self.runtime.events, &self.runtime.slug)
                .await
        }
    }

    /// For a name no running server exposes: the server that would have exposed it under its prefix but
    /// could not be started, and why. Only used to explain an error, never to route.
    fn unavailable_server_for(&self, exposed: &str) -> Option<String> {
        let own = lock(&self.own);
        self.runtime.slots().iter().find_map(|slot| {
            let prefix = slot.def.prefix.as_str();
            let candidate = prefix.is_empty() || exposed.strip_prefix(prefix)?.starts_with('_');
            let error = if slot.is_per_session() {
                own.get(&slot.def.name)?.start_error()
            } else {
                slot.shared.start_error()
            }?;
            candidate.then(|| format!("server {} is not available: {error}", slot.def.name))
        })
    }

    /// Connections of this session that are running now, without starting any.
    fn running_conns(&self) -> Vec<Arc<Conn>> {
        let own = lock(&self.own);
        self.runtime
            .slots()
            .iter()
            .filter_map(|slot| {
                if slot.is_per_session() {
                    own.get(&slot.def.name).and_then(|c| c.running())
                } else {
                    slot.shared.running()
                }
            })
            .collect()
    }

    /// The sandboxes of this session's own servers.
    pub fn sandbox_statuses(&self) -> Vec<gigmcp_types::server::SandboxStatus> {
        lock(&self.own)
            .values()
            .filter_map(|cell| {
                let mut status = cell.running()?.sandbox_status()?;
                status.restarts = cell.crash_count();
                Some(status)
            })
            .collect()
    }

    /// Stops this session's own servers that nobody used for `idle`.
    pub fn stop_idle_servers(&self, idle: Duration) {
        for cell in lock(&self.own).values() {
            cell.stop_if_idle(idle);
        }
    }

    /// Stops this session's own connection to a server that left the profile.
    pub fn drop_server(&self, name: &ServerName) {
        lock(&self.own).remove(name);
    }

    /// The gateway's answer to `initialize`: every server is started (in parallel) so that the capabilities
    /// advertised are the ones the servers really have.
    pub async fn initialize_result(&self) -> Value {
        let slots = self.runtime.slots();
        let starts = slots
            .iter()
            .map(|slot| async move { (slot.def.name.clone(), self.conn(slot).await) });
        let mut inits = Vec::new();
        for (name, outcome) in futures_util::future::join_all(starts).await {
            match outcome {
                Ok(conn) => inits.push((name, conn.init())),
                Err(e) => {
                    tracing::error!(profile = %self.runtime.slug, server = %name, "cannot start: {e}")
                }
            }
        }
        merge_initialize(&self.protocol_version, &inits)
    }

    /// Answers one client request, or gives `Null` when the client cancelled it (no reply is due).
    /// Messages related to it (progress, server→client requests) go to `origin` while it runs.
    pub async fn handle_request(&self, id: Value, method: &str, body: Map<String, Value>, origin: Origin) -> Value {
        self.touch();
        let params = body.get("params").cloned();
        if let Some(kind) = ListKind::from_method(method) {
            return self.list(id, kind, params.as_ref()).await;
        }
        match method {
            "ping" => jsonrpc::result(id, json!({})),
            "initialize" => jsonrpc::error(id, jsonrpc::INVALID_REQUEST, "this session is already initialized"),
            "tools/call" => {
                let started = Instant::now();
                let arguments = params
                    .as_ref()
                    .and_then(|p| p.get("arguments"))
                    .map(|a| argument_shape(a, 0));
                let exposed = params
                    .as_ref()
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let (reply, route) = self.call_named(id, ListKind::Tools, method, params, origin).await;
                self.audit_tool_call(exposed.as_deref(), arguments, &reply, &route, started.elapsed());
                reply
            }
            "prompts/get" => self.call_named(id, ListKind::Prompts, method, params, origin).await.0,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                self.call_by_uri(id, method, params, origin).await
            }
            "completion/complete" => self.complete(id, params, origin).await,
            "logging/setLevel" => self.set_log_level(id, params, origin).await,
            _ => self.forward_unmodelled(id, method, params, origin).await,
        }
    }

    /// Records a tool call in the audit log: who (the profile's token and this session), which server and
    /// tool, how long it took, its outcome, and the *shape* of its arguments — never their values, which
    /// may hold anything a user typed.
    fn audit_tool_call(
        &self,
        exposed: Option<&str>,
        arguments: Option<Value>,
        reply: &Value,
        route: &CallRoute,
        took: Duration,
    ) {
        let Some(audit) = self.runtime.deps.audit.as_ref() else {
            return;
        };
        let outcome = match (route, reply.get("error"), reply.get("result")) {
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
        if let Some(error) = reply.get("error") {
            detail["error"] = json!({"code": error.get("code"), "data": error.get("data")});
        }
        if let CallRoute::Hidden(hidden) = route {
            // The plugins that removed the tool from the server's list: the client was told it is unknown.
            detail["code"] = json!("hidden-by-policy");
            detail["plugin"] = json!(hidden.by.join(","));
        } else if let Some(plugin) = reply.pointer("/error/data/plugin") {
            detail["plugin"] = plugin.clone();
        }
        audit.record(gigmcp_types::audit::NewAuditEvent {
            kind: "mcp.tool_call".into(),
            actor: format!("profile:{}", self.runtime.slug),
            profile: Some(self.runtime.slug.to_string()),
            server: server.map(ServerName::to_string),
            outcome,
            detail,
        });
    }

    /// Sends a request to one server and gives the reply the client's id back.
    async fn forward(
        &self,
        conn: &Arc<Conn>,
        id: &Value,
        method: &str,
        params: Option<Value>,
        origin: &Origin,
    ) -> Value {
        // The mcp-filter plugins see the request as the server will (its own tool name) and may deny or
        // rewrite it, then see the result; the same plugin versions judge both.
        let filter = self.filter(id);
        let params = match &filter {
            Some((set, ctx)) => {
                let request = McpRequest {
                    server: conn.server.to_string(),
                    method: method.to_owned(),
                    name: upstream_name(method, params.as_ref()),
                    params: params.clone().unwrap_or(Value::Null),
                };
                match set.filter_request(ctx, request).await {
                    RequestDecision::Allow { params, .. } => Some(params).filter(|p| !p.is_null()),
                    RequestDecision::Deny(reason) => return denied(id.clone(), &reason),
                }
            }
            None => params,
        };
        let name = upstream_name(method, params.as_ref());
        let upstream_id = conn.next_request_id();
        let key = id_key(id);
        lock(&self.inflight).insert(key.clone(), (conn.clone(), upstream_id));
        let _guard = InflightGuard {
            session: self,
            key,
            upstream_id,
        };
        let mut reply = conn.request(upstream_id, method, params, Some(origin.clone())).await;
        if let (Some((set, ctx)), Some(result)) = (&filter, reply.get_mut("result")) {
            let response = McpResponse {
                server: conn.server.to_string(),
                method: method.to_owned(),
                name,
                result: result.take(),
            };
            match set.filter_response(ctx, response).await {
                ResponseDecision::Pass { result: passed, .. } => *result = passed,
                ResponseDecision::Deny(reason) => return denied(id.clone(), &reason),
            }
        }
        if let Value::Object(body) = &mut reply {
            body.insert("id".into(), id.clone());
        }
        reply
    }

    /// The mcp-filter plugins bound for this profile now, if any, with the context of request `id`.
    fn filter(&self, id: &Value) -> Option<(PluginSet, CallContext)> {
        let plugins = self.runtime.deps.plugins.as_ref()?;
        let set = plugins.current();
        let profile = Some(self.runtime.slug.clone());
        if !set.filters_mcp(&profile) {
            return None;
        }
        Some((set, CallContext::new(format!("{}/{}", self.id, id_key(id)), profile)))
    }

    /// One page of a list across all servers. A gateway cursor names a server and that server's cursor;
    /// servers without the list are skipped, and a client never gets an empty page with a cursor.
    async fn list(&self, id: Value, kind: ListKind, params: Option<&Value>) -> Value {
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
        let mut reply = conn.request(conn.next_request_id(), kind.method(), params, None).await;
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
        let items = result
            .get(kind.field())
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
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

    async fn route_name(&self, kind: ListKind, exposed: &str) -> Option<(Arc<Slot>, String)> {
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

    async fn route_uri(&self, uri: &str) -> Option<Arc<Slot>> {
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

    /// A tools/call or prompts/get: routed by its exposed name, returned with the route it took (the audit
    /// event reuses it instead of resolving the name again).
    async fn call_named(
        &self,
        id: Value,
        kind: ListKind,
        method: &str,
        params: Option<Value>,
        origin: Origin,
    ) -> (Value, CallRoute) {
        let Some(mut params) = params.filter(Value::is_object) else {
            let reply = jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params must be an object");
            return (reply, CallRoute::Unknown);
        };
        let Some(exposed) = params.get("name").and_then(Value::as_str).map(str::to_owned) else {
            let reply = jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params.name must be a string");
            return (reply, CallRoute::Unknown);
        };
        let what = if kind == ListKind::Tools { "tool" } else { "prompt" };
        let Some((slot, name)) = self.route_name(kind, &exposed).await else {
            if let Some(message) = self.unavailable_server_for(&exposed) {
                return (jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, message), CallRoute::Unknown);
            }
            // Unknown to the client either way: a hidden tool is not revealed by a different answer.
            let reply = jsonrpc::error(id, jsonrpc::INVALID_PARAMS, format!("unknown {what}: {exposed}"));
            let hidden = lock(&self.runtime.routes).hidden(kind, &exposed).cloned();
            return (reply, hidden.map_or(CallRoute::Unknown, CallRoute::Hidden));
        };
        let route = CallRoute::Routed {
            server: slot.def.name.clone(),
            name: name.clone(),
        };
        let conn = match self.conn(&slot).await {
            Ok(conn) => conn,
            Err(e) => return (jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, e), route),
        };
        params["name"] = Value::String(name);
        (self.forward(&conn, &id, method, Some(params), &origin).await, route)
    }

    async fn call_by_uri(&self, id: Value, method: &str, params: Option<Value>, origin: Origin) -> Value {
        let Some(uri) = params
            .as_ref()
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params.uri must be a string");
        };
        if let Some(slot) = self.route_uri(&uri).await {
            let conn = match self.conn(&slot).await {
                Ok(conn) => conn,
                Err(e) => return jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, e),
            };
            if slot.is_per_session() {
                return self.forward(&conn, &id, method, params, &origin).await;
            }
            // A shared server is subscribed once for all the sessions that want a resource.
            let server = &slot.def.name;
            return match method {
                "resources/subscribe" => {
                    if !self.runtime.subscribe(server, &uri, &self.id) {
                        return jsonrpc::result(id, json!({}));
                    }
                    let reply = self.forward(&conn, &id, method, params, &origin).await;
                    if reply.get("result").is_none() {
                        self.runtime.unsubscribe(server, &uri, &self.id);
                    }
                    reply
                }
                "resources/unsubscribe" => {
                    if !self.runtime.unsubscribe(server, &uri, &self.id) {
                        return jsonrpc::result(id, json!({}));
                    }
                    self.forward(&conn, &id, method, params, &origin).await
                }
                _ => self.forward(&conn, &id, method, params, &origin).await,
            };
        }
        // No server listed the URI or a template for it: ask the servers that have resources, in order.
        let mut last = None;
        for slot in self.runtime.slots().iter() {
            let Ok(conn) = self.conn(slot).await else {
                continue;
            };
            if !conn.has_capability("resources") {
                continue;
            }
            let reply = self.forward(&conn, &id, method, params.clone(), &origin).await;
            if reply.is_null() || reply.get("result").is_some() {
                return reply;
            }
            last = Some(reply);
        }
        last.unwrap_or_else(|| jsonrpc::error(id, RESOURCE_NOT_FOUND, format!("resource not found: {uri}")))
    }

    async fn complete(&self, id: Value, params: Option<Value>, origin: Origin) -> Value {
        let Some(mut params) = params.filter(Value::is_object) else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params must be an object");
        };
        let reference = &params["ref"];
        let slot = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let Some(exposed) = reference.get("name").and_then(Value::as_str).map(str::to_owned) else {
                    return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "ref.name must be a string");
                };
                match self.route_name(ListKind::Prompts, &exposed).await {
                    Some((slot, name)) => {
                        params["ref"]["name"] = Value::String(name);
                        slot
                    }
                    None => {
                        return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, format!("unknown prompt: {exposed}"));
                    }
                }
            }
            Some("ref/resource") => {
                let Some(uri) = reference.get("uri").and_then(Value::as_str).map(str::to_owned) else {
                    return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "ref.uri must be a string");
                };
                match self.route_uri(&uri).await {
                    Some(slot) => slot,
                    None => {
                        return jsonrpc::error(id, RESOURCE_NOT_FOUND, format!("resource not found: {uri}"));
                    }
                }
            }
            _ => {
                return jsonrpc::error(
                    id,
                    jsonrpc::INVALID_PARAMS,
                    "ref.type must be ref/prompt or ref/resource",
                );
            }
        };
        match self.conn(&slot).await {
            Ok(conn) => {
                self.forward(&conn, &id, "completion/complete", Some(params), &origin)
                    .await
            }
            Err(e) => jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, e),
        }
    }

    /// Sets this session's log level. A server of this session alone gets that level; a shared server gets
    /// the most verbose level any of its sessions asked for, and the gateway filters what each receives.
    async fn set_log_level(&self, id: Value, params: Option<Value>, origin: Origin) -> Value {
        let Some(level) = params.as_ref().and_then(|p| p.get("level")).and_then(Value::as_str) else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params.level must be a string");
        };
        let Some(index) = log_level_index(level) else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, format!("unknown log level: {level}"));
        };
        *lock(&self.log_level) = Some(index);
        let shared_level = self.runtime.most_verbose_log_level().unwrap_or(index);
        for slot in self.runtime.slots().iter() {
            let Ok(conn) = self.conn(slot).await else { continue };
            if !conn.has_capability("logging") {
                continue;
            }
            let level = if slot.is_per_session() { index } else { shared_level };
            let params = json!({ "level": crate::runtime::LOG_LEVELS[level] });
            let reply = self
                .forward(&conn, &id, "logging/setLevel", Some(params), &origin)
                .await;
            if let Some(error) = reply.get("error") {
                tracing::warn!(server = %slot.def.name, "logging/setLevel failed: {error}");
            }
        }
        jsonrpc::result(id, json!({}))
    }

    /// A method the gateway does not model goes to the first server that knows it.
    async fn forward_unmodelled(&self, id: Value, method: &str, params: Option<Value>, origin: Origin) -> Value {
        for slot in self.runtime.slots().iter() {
            let Ok(conn) = self.conn(slot).await else {
                continue;
            };
            let reply = self.forward(&conn, &id, method, params.clone(), &origin).await;
            if reply["error"]["code"] != json!(jsonrpc::METHOD_NOT_FOUND) {
                return reply;
            }
        }
        jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, format!("method not found: {method}"))
    }

    /// A notification from the client.
    pub async fn handle_notification(&self, method: &str, body: Map<String, Value>) {
        self.touch();
        match method {
            "notifications/initialized" => {}
            "notifications/cancelled" => {
                let params = body.get("params");
                let Some(request_id) = params.and_then(|p| p.get("requestId")) else {
                    return;
                };
                let entry = lock(&self.inflight).get(&id_key(request_id)).cloned();
                if let Some((conn, upstream_id)) = entry {
                    let reason = params.and_then(|p| p.get("reason")).cloned();
                    conn.cancel(upstream_id, reason).await;
                }
            }
            "notifications/roots/list_changed" => {
                for conn in self.running_conns() {
                    conn.notify(jsonrpc::notification(method, None)).await;
                }
            }
            other => tracing::debug!(session = %self.id, "ignoring client notification {other}"),
        }
    }

    /// The client's answer to a server→client request: back to the server, with the server's id.
    pub async fn handle_response(&self, id: &Value, mut body: Map<String, Value>) {
        self.touch();
        let Some((conn, upstream_id)) = lock(&self.outgoing).remove(&id_key(id)) else {
            tracing::debug!(session = %self.id, "response to an unknown request {id}");
            return;
        };
        body.insert("id".into(), upstream_id);
        conn.notify(Value::Object(body)).await;
    }

    /// Gives a server→client request an id of this session and remembers where the answer goes. `None` when
    /// the client did not declare the capability the request needs: the server gets an error at once.
    pub fn register_server_request(&self, conn: Arc<Conn>, mut message: Value) -> Option<Value> {
        let upstream_id = message.get("id").cloned().unwrap_or(Value::Null);
        let method = message.get("method").and_then(Value::as_str).unwrap_or_default();
        let needed = match method {
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            "roots/list" => Some("roots"),
            _ => None,
        };
        if let Some(capability) = needed
            && self.client_capabilities.get(capability).is_none_or(Value::is_null)
        {
            let error = jsonrpc::error(
                upstream_id,
                jsonrpc::METHOD_NOT_FOUND,
                format!("the client does not support {method}"),
            );
            tokio::spawn(async move { conn.notify(error).await });
            return None;
        }
        let id = format!("gig-{}", self.next_outgoing.fetch_add(1, Ordering::Relaxed));
        lock(&self.outgoing).insert(id_key(&json!(id)), (conn, upstream_id));
        message["id"] = Value::String(id);
        Some(message)
    }

    /// A message related to a request, ready for the client: server→client requests get an id of this
    /// session first (`None` when one was answered at once, for lack of the client's capability).
    pub fn deliverable(&self, out: Outbound) -> Option<Value> {
        match out {
            Outbound::Message(message) => Some(message),
            Outbound::ServerRequest { conn, message } => self.register_server_request(conn, message),
        }
    }

    /// A server→client request with no request in flight to carry it: sent on the GET stream.
    pub fn push_server_request(&self, conn: Arc<Conn>, message: Value) {
        if let Some(message) = self.register_server_request(conn, message) {
            self.push(message);
        }
    }

    /// Sends a message on the client's GET stream, or keeps it until one is opened.
    pub fn push(&self, message: Value) {
        let mut stream = lock(&self.stream);
        if let Some(tx) = stream.as_ref() {
            if let Err(e) = tx.send(message) {
                *stream = None;
                self.keep(e.0);
            }
        } else {
            self.keep(message);
        }
    }

    fn keep(&self, message: Value) {
        let mut backlog = lock(&self.backlog);
        if backlog.len() == BACKLOG_LIMIT {
            backlog.pop_front();
            tracing::warn!(session = %self.id, "client has no stream open; dropped its oldest queued message");
        }
        backlog.push_back(message);
    }

    /// Opens the GET stream (replacing any earlier one); messages kept meanwhile come first.
    pub fn open_stream(&self) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut stream = lock(&self.stream);
        for message in lock(&self.backlog).drain(..) {
            let _ = tx.send(message);
        }
        *stream = Some(tx);
        rx
    }
}

impl Client for Session {
    fn id(&self) -> &str {
        &self.id
    }

    fn push(&self, message: Value) {
        Session::push(self, message)
    }

    fn push_server_request(&self, conn: Arc<Conn>, message: Value) {
        Session::push_server_request(self, conn, message)
    }

    fn log_level(&self) -> Option<usize> {
        Session::log_level(self)
    }

    fn last_active(&self) -> Instant {
        Session::last_active(self)
    }

    fn drop_server(&self, name: &ServerName) {
        Session::drop_server(self, name)
    }

    fn sandbox_statuses(&self) -> Vec<gigmcp_types::server::SandboxStatus> {
        Session::sandbox_statuses(self)
    }

    fn stop_idle_servers(&self, idle: Duration) {
        Session::stop_idle_servers(self, idle)
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
