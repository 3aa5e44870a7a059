//! A client session on a profile's endpoint: what one MCP client sees, and how each of its requests reaches
//! the right server. Lists and routing are in `list`, what reaches the client outside a reply in `outbox`,
//! the audit of tool calls in `audit`.
//!
//! The client's request ids stay in this session: upstream, every request gets the connection's own id, and
//! the reply gets the client's id back here. A server→client request is given an id of this session
//! (`gig-<n>`), so that the client's answer finds its way back to the server and the server's own id.

mod audit;
mod list;
mod outbox;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use self::audit::{CallRoute, argument_shape};
use self::outbox::Outbox;
use crate::aggregate::{ListKind, merge_initialize};
use crate::client::Client;
use crate::jsonrpc;
use crate::jsonrpc::id_key;
use crate::runtime::{ConnCell, Runtime, Slot, handle_events, log_level_index};
use crate::upstream::{Conn, Origin, Reply, UpstreamEvent};
use gigmcp_plugin_runtime::{PluginSet, RequestDecision, ResponseDecision};
use gigmcp_types::ids::ProfileId;
use gigmcp_types::names::ServerName;
use gigmcp_types::policy::{CallContext, DenyReason, McpRequest, McpResponse};
use gigmcp_types::sync::lock;
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

/// MCP's "resource not found".
const RESOURCE_NOT_FOUND: i64 = -32002;

pub struct Session {
    pub id: String,
    pub profile: ProfileId,
    pub runtime: Arc<Runtime>,
    pub protocol_version: String,
    client_capabilities: Value,
    own: Mutex<HashMap<ServerName, Arc<ConnCell>>>,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    /// The client's requests forwarded upstream, by the client's id: the connection and the upstream id, for
    /// translating the client's `notifications/cancelled`.
    inflight: Mutex<HashMap<String, (Arc<Conn>, u64)>>,
    outbox: Outbox,
    last_active: Mutex<Instant>,
    /// The level this client asked for with `logging/setLevel` (index into `LOG_LEVELS`).
    log_level: Mutex<Option<usize>>,
    /// Who the audit log names for this session's tool calls: `profile:<slug>` (the profile's token) for a
    /// client of the endpoint, `user:<id>` for the dashboard's playground.
    actor: String,
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
        let actor = format!("profile:{}", runtime.slug);
        Self::with_actor(runtime, protocol_version, client_capabilities, actor)
    }

    /// A session whose tool calls the audit log attributes to `actor` rather than to the profile's token.
    pub fn with_actor(
        runtime: Arc<Runtime>,
        protocol_version: String,
        client_capabilities: Value,
        actor: String,
    ) -> Arc<Self> {
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
            outbox: Outbox::default(),
            last_active: Mutex::new(Instant::now()),
            log_level: Mutex::default(),
            actor,
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

    /// Answers one client request, or gives [`Reply::Cancelled`] when the client cancelled it (no reply is due).
    /// Messages related to it (progress, server→client requests) go to `origin` while it runs.
    pub async fn handle_request(&self, id: Value, method: &str, body: Map<String, Value>, origin: Origin) -> Reply {
        self.touch();
        let params = body.get("params").cloned();
        if let Some(kind) = ListKind::from_method(method) {
            return self.list(id, kind, params.as_ref()).await.into();
        }
        match method {
            "ping" => jsonrpc::result(id, json!({})).into(),
            "initialize" => jsonrpc::error(id, jsonrpc::INVALID_REQUEST, "this session is already initialized").into(),
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
            "logging/setLevel" => self.set_log_level(id, params, origin).await.into(),
            _ => self.forward_unmodelled(id, method, params, origin).await,
        }
    }

    /// Sends a request to one server and gives the reply the client's id back. The request's upstream id is
    /// recorded while it runs, so that the client's `notifications/cancelled` reaches the server.
    async fn forward(
        &self,
        conn: &Arc<Conn>,
        id: &Value,
        method: &str,
        params: Option<Value>,
        origin: &Origin,
    ) -> Reply {
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
                    RequestDecision::Deny(reason) => return denied(id.clone(), &reason).into(),
                }
            }
            None => params,
        };
        let name = upstream_name(method, params.as_ref());
        let pending = conn.request(method, params, Some(origin.clone()));
        let key = id_key(id);
        lock(&self.inflight).insert(key.clone(), (conn.clone(), pending.id()));
        let _guard = InflightGuard {
            session: self,
            key,
            upstream_id: pending.id(),
        };
        let Reply::Message(mut reply) = pending.reply().await else {
            return Reply::Cancelled;
        };
        if let (Some((set, ctx)), Some(result)) = (&filter, reply.get_mut("result")) {
            let response = McpResponse {
                server: conn.server.to_string(),
                method: method.to_owned(),
                name,
                result: result.take(),
            };
            match set.filter_response(ctx, response).await {
                ResponseDecision::Pass { result: passed, .. } => *result = passed,
                ResponseDecision::Deny(reason) => return denied(id.clone(), &reason).into(),
            }
        }
        if let Value::Object(body) = &mut reply {
            body.insert("id".into(), id.clone());
        }
        Reply::Message(reply)
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

    /// A tools/call or prompts/get: routed by its exposed name, returned with the route it took (the audit
    /// event reuses it instead of resolving the name again).
    async fn call_named(
        &self,
        id: Value,
        kind: ListKind,
        method: &str,
        params: Option<Value>,
        origin: Origin,
    ) -> (Reply, CallRoute) {
        let Some(mut params) = params.filter(Value::is_object) else {
            let reply = jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params must be an object");
            return (reply.into(), CallRoute::Unknown);
        };
        let Some(exposed) = params.get("name").and_then(Value::as_str).map(str::to_owned) else {
            let reply = jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params.name must be a string");
            return (reply.into(), CallRoute::Unknown);
        };
        let what = if kind == ListKind::Tools { "tool" } else { "prompt" };
        let Some((slot, name)) = self.route_name(kind, &exposed).await else {
            if let Some(message) = self.unavailable_server_for(&exposed) {
                return (
                    jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, message).into(),
                    CallRoute::Unknown,
                );
            }
            // Unknown to the client either way: a hidden tool is not revealed by a different answer.
            let reply = jsonrpc::error(id, jsonrpc::INVALID_PARAMS, format!("unknown {what}: {exposed}"));
            let hidden = lock(&self.runtime.routes).hidden(kind, &exposed).cloned();
            return (reply.into(), hidden.map_or(CallRoute::Unknown, CallRoute::Hidden));
        };
        let route = CallRoute::Routed {
            server: slot.def.name.clone(),
            name: name.clone(),
        };
        let conn = match self.conn(&slot).await {
            Ok(conn) => conn,
            Err(e) => return (jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, e).into(), route),
        };
        params["name"] = Value::String(name);
        (self.forward(&conn, &id, method, Some(params), &origin).await, route)
    }

    async fn call_by_uri(&self, id: Value, method: &str, params: Option<Value>, origin: Origin) -> Reply {
        let Some(uri) = params
            .as_ref()
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params.uri must be a string").into();
        };
        if let Some(slot) = self.route_uri(&uri).await {
            let conn = match self.conn(&slot).await {
                Ok(conn) => conn,
                Err(e) => return jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, e).into(),
            };
            if slot.is_per_session() {
                return self.forward(&conn, &id, method, params, &origin).await;
            }
            // A shared server is subscribed once for all the sessions that want a resource.
            let server = &slot.def.name;
            return match method {
                "resources/subscribe" => {
                    if !self.runtime.subscribe(server, &uri, &self.id) {
                        return jsonrpc::result(id, json!({})).into();
                    }
                    let reply = self.forward(&conn, &id, method, params, &origin).await;
                    if !matches!(&reply, Reply::Message(m) if m.get("result").is_some()) {
                        self.runtime.unsubscribe(server, &uri, &self.id);
                    }
                    reply
                }
                "resources/unsubscribe" => {
                    if !self.runtime.unsubscribe(server, &uri, &self.id) {
                        return jsonrpc::result(id, json!({})).into();
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
            match self.forward(&conn, &id, method, params.clone(), &origin).await {
                Reply::Message(reply) if reply.get("result").is_none() => last = Some(reply),
                reply => return reply,
            }
        }
        last.unwrap_or_else(|| jsonrpc::error(id, RESOURCE_NOT_FOUND, format!("resource not found: {uri}")))
            .into()
    }

    async fn complete(&self, id: Value, params: Option<Value>, origin: Origin) -> Reply {
        let Some(mut params) = params.filter(Value::is_object) else {
            return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params must be an object").into();
        };
        let reference = &params["ref"];
        let slot = match reference.get("type").and_then(Value::as_str) {
            Some("ref/prompt") => {
                let Some(exposed) = reference.get("name").and_then(Value::as_str).map(str::to_owned) else {
                    return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "ref.name must be a string").into();
                };
                match self.route_name(ListKind::Prompts, &exposed).await {
                    Some((slot, name)) => {
                        params["ref"]["name"] = Value::String(name);
                        slot
                    }
                    None => {
                        return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, format!("unknown prompt: {exposed}"))
                            .into();
                    }
                }
            }
            Some("ref/resource") => {
                let Some(uri) = reference.get("uri").and_then(Value::as_str).map(str::to_owned) else {
                    return jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "ref.uri must be a string").into();
                };
                match self.route_uri(&uri).await {
                    Some(slot) => slot,
                    None => {
                        return jsonrpc::error(id, RESOURCE_NOT_FOUND, format!("resource not found: {uri}")).into();
                    }
                }
            }
            _ => {
                return jsonrpc::error(
                    id,
                    jsonrpc::INVALID_PARAMS,
                    "ref.type must be ref/prompt or ref/resource",
                )
                .into();
            }
        };
        match self.conn(&slot).await {
            Ok(conn) => {
                self.forward(&conn, &id, "completion/complete", Some(params), &origin)
                    .await
            }
            Err(e) => jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, e).into(),
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
            // A cancelled setLevel still gets its reply: the level is already this session's.
            let reply = self
                .forward(&conn, &id, "logging/setLevel", Some(params), &origin)
                .await;
            if let Reply::Message(reply) = reply
                && let Some(error) = reply.get("error")
            {
                tracing::warn!(server = %slot.def.name, "logging/setLevel failed: {error}");
            }
        }
        jsonrpc::result(id, json!({}))
    }

    /// A method the gateway does not model goes to the first server that knows it.
    async fn forward_unmodelled(&self, id: Value, method: &str, params: Option<Value>, origin: Origin) -> Reply {
        for slot in self.runtime.slots().iter() {
            let Ok(conn) = self.conn(slot).await else {
                continue;
            };
            match self.forward(&conn, &id, method, params.clone(), &origin).await {
                Reply::Message(reply) if reply["error"]["code"] == json!(jsonrpc::METHOD_NOT_FOUND) => {}
                reply => return reply,
            }
        }
        jsonrpc::error(id, jsonrpc::METHOD_NOT_FOUND, format!("method not found: {method}")).into()
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
