//! One MCP session with an upstream server: a sandboxed stdio process (`stdio`), or a streamable-HTTP server
//! (`http`). This file holds what both share: the connection, its requests in flight and the matching of
//! what the server sends to them.
//!
//! The gateway is the client here. Every request it sends upstream gets an id of its own (a counter of this
//! connection), so ids chosen by different downstream clients can never meet upstream; the reply is matched
//! by that id and handed back to whoever asked, who restores the client's id. Progress tokens are rewritten
//! the same way. Messages the server sends on its own are classified here: replies and progress go to the
//! request they belong to, server→client requests to the client session whose request is in flight, and
//! everything else to the connection's owner (the profile runtime or, for a per-session server, the session).

mod http;
mod stdio;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use self::http::HttpTransport;
use self::stdio::StdioTransport;
use crate::jsonrpc;
use crate::jsonrpc::Message;
use crate::logs::{LogSink, ServerLogs};
use crate::{GATEWAY_CLIENT_CAPABILITIES, LATEST_PROTOCOL_VERSION};
use gigmcp_sandbox::{Launch, Launcher, Program, SandboxError};
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::server::SandboxStatus;
use gigmcp_types::server::{Mount, ServerDef, ServerSpec, TOOLPACK_CONFIG_PATH};
use gigmcp_types::sync::lock;

/// Lines of a server's stderr quoted in an error report.
const STDERR_REPORT_LINES: usize = 20;

/// How long a server may take to answer `initialize` (npm servers can be slow to load).
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum UpstreamError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("server {server} did not answer initialize within {INITIALIZE_TIMEOUT:?}{stderr}")]
    InitTimeout { server: ServerName, stderr: String },
    #[error("server {server} failed to initialize: {detail}{stderr}")]
    Init {
        server: ServerName,
        detail: String,
        stderr: String,
    },
    #[error(
        "server {server} was upgraded to a catalog version that changes what it runs or where it connects; it \
         starts again once an admin consents (`gigmcp server consent {server}`)"
    )]
    NeedsConsent { server: ServerName },
    #[error("server {server}: cannot reach {url}: {detail}")]
    Http {
        server: ServerName,
        url: String,
        detail: String,
    },
}

/// A message for the client on the stream of the request that caused it.
#[derive(Debug)]
pub enum Outbound {
    /// Ready to send as is (progress, logs and other notifications related to the request).
    Message(Value),
    /// A server→client request: the client session must give it an id of its own first.
    ServerRequest { conn: Arc<Conn>, message: Value },
}

/// Who a request came from: where messages related to it go.
#[derive(Clone, Debug)]
pub struct Origin {
    pub related: mpsc::UnboundedSender<Outbound>,
}

/// Messages the owner of a connection handles.
#[derive(Debug)]
pub enum UpstreamEvent {
    /// A notification not tied to any request in flight (list changes, logs, resource updates).
    Notification { server: ServerName, message: Value },
    /// A server→client request with no request of the client in flight to attach it to.
    ServerRequest { conn: Arc<Conn>, message: Value },
    /// The connection ended (process exit, HTTP session gone).
    Closed {
        server: ServerName,
        conn: u64,
        reason: String,
        stderr: String,
    },
}

/// How a request sent upstream ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A whole JSON-RPC response object. Its id is the upstream one until the caller restores the client's.
    /// Transport problems (the server died, an HTTP error) come back as JSON-RPC errors, never as a failure.
    Message(Value),
    /// The client cancelled the request: no reply is due to it (MCP).
    Cancelled,
}

impl From<Value> for Reply {
    fn from(message: Value) -> Self {
        Self::Message(message)
    }
}

/// A request started on a connection, with its upstream id known before it is sent: the caller records the id
/// (to translate the client's `notifications/cancelled`), then sends it and waits with [`Pending::reply`].
#[must_use = "a request is sent only when its reply is awaited"]
#[derive(Debug)]
pub struct Pending {
    conn: Arc<Conn>,
    id: u64,
    /// The request, until it is sent.
    message: Option<Value>,
    reply: oneshot::Receiver<Reply>,
}

impl Pending {
    /// The request's id on this connection: what a cancellation names.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends the request and waits for how it ends. Never fails: transport problems come back as JSON-RPC
    /// errors.
    pub async fn reply(mut self) -> Reply {
        let conn = self.conn.clone();
        let id = self.id;
        // Cancelled, or failed by the connection closing, before it was sent: it is not sent at all.
        if let Ok(reply) = self.reply.try_recv() {
            self.message = None;
            return reply;
        }
        if conn.is_closed() {
            return Reply::Message(conn.closed_error(id)); // dropping `self` forgets the request
        }
        if let Some(message) = self.message.take() {
            conn.send(message, Some(id)).await;
        }
        (&mut self.reply)
            .await
            .unwrap_or_else(|_| Reply::Message(conn.closed_error(id)))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // A request never sent: nothing will answer it.
        if self.message.is_some() {
            lock(&self.conn.pending).remove(&self.id);
        }
    }
}

/// What a request in flight waits with: where its reply goes, and where messages related to it go.
struct Waiter {
    reply: oneshot::Sender<Reply>,
    origin: Option<Origin>,
    progress_token: Option<Value>,
}

enum Transport {
    Stdio(StdioTransport),
    Http(HttpTransport),
}

pub struct Conn {
    /// Unique in this gateway: tells one connection to a server from the one that replaced it.
    pub id: u64,
    pub server: ServerName,
    started: Instant,
    last_used: Mutex<Instant>,
    /// The server's `initialize` result.
    init: Mutex<Value>,
    transport: Transport,
    pending: Mutex<HashMap<u64, Waiter>>,
    next_id: AtomicU64,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    closed: AtomicBool,
    /// A sandboxed server's end of its log (an HTTP server has no sandbox and no stderr).
    log: Option<Arc<LogSink>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Starts the server and completes the MCP handshake.
    /// `placeholders`: credential placeholders for the server's environment (`VAR`, placeholder); the real
    /// secrets never enter the sandbox (invariant 1). `profile`: whom a sandboxed server runs for, what the
    /// egress proxy attributes its outbound traffic to (`None`: a probe, which has no network).
    pub async fn start(
        def: &ServerDef,
        launcher: &Launcher,
        http: &reqwest::Client,
        events: mpsc::UnboundedSender<UpstreamEvent>,
        placeholders: &[(String, String)],
        profile: Option<&ProfileSlug>,
        logs: &ServerLogs,
    ) -> Result<Arc<Self>, UpstreamError> {
        let tenant = profile.map(|p| gigmcp_sandbox::Tenant {
            server: def.name.clone(),
            profile: Some(p.clone()),
        });
        let tenant = tenant.as_ref();
        match &def.spec {
            ServerSpec::Stdio {
                command,
                args,
                env,
                mounts,
                limits,
                ..
            } => {
                let env: Vec<(String, String)> = env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .chain(placeholders.iter().cloned())
                    .collect();
                let launch = Launch {
                    program: Program::Path(command),
                    args,
                    env: &env,
                    mounts,
                    limits: *limits,
                };
                Self::start_stdio(def.name.clone(), launcher, &launch, tenant, events, logs).await
            }
            ServerSpec::Builtin { builtin, limits, .. } => {
                let launch = Launch {
                    program: Program::SelfSubcommand(builtin.subcommand()),
                    args: &[],
                    env: placeholders,
                    mounts: &[],
                    limits: *limits,
                };
                Self::start_stdio(def.name.clone(), launcher, &launch, tenant, events, logs).await
            }
            ServerSpec::Toolpack { toolpack, limits, .. } => {
                // Consent is the runtime hash: an upgrade that changed what runs or where it connects waits.
                if !toolpack.consented() {
                    return Err(UpstreamError::NeedsConsent {
                        server: def.name.clone(),
                    });
                }
                // A static-binary entry runs its own entrypoint, with the original's one variable naming the
                // placeholder of its (first) credential.
                if let Some(binary) = &toolpack.binary {
                    let command = binary.display().to_string();
                    let env: Vec<(String, String)> = placeholders
                        .iter()
                        .cloned()
                        .chain(
                            placeholders
                                .first()
                                .map(|(_, p)| ("GIG_PLACEHOLDER".to_owned(), p.clone())),
                        )
                        .collect();
                    let launch = Launch {
                        program: Program::Path(&command),
                        args: &[],
                        env: &env,
                        mounts: &[],
                        limits: *limits,
                    };
                    return Self::start_stdio(def.name.clone(), launcher, &launch, tenant, events, logs).await;
                }
                let mounts = [Mount {
                    host: toolpack.config.clone(),
                    sandbox: TOOLPACK_CONFIG_PATH.into(),
                    writable: false,
                }];
                // The tools this profile may use (its copy of the definition has its switches applied).
                let tools = toolpack.enabled_tools().join(",");
                let env: Vec<(String, String)> = placeholders
                    .iter()
                    .cloned()
                    .chain([
                        (gigmcp_toolpack::config::SERVER_ENV.to_owned(), def.name.to_string()),
                        (gigmcp_toolpack::config::TOOLS_ENV.to_owned(), tools),
                    ])
                    .collect();
                let launch = Launch {
                    program: Program::SelfSubcommand("mcp-toolpack"),
                    args: &[],
                    env: &env,
                    mounts: &mounts,
                    limits: *limits,
                };
                Self::start_stdio(def.name.clone(), launcher, &launch, tenant, events, logs).await
            }
            ServerSpec::Http { url } => Self::start_http(def.name.clone(), http.clone(), url.clone(), events).await,
        }
    }

    fn new(server: ServerName, transport: Transport, events: mpsc::UnboundedSender<UpstreamEvent>) -> Self {
        static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
            server,
            started: Instant::now(),
            last_used: Mutex::new(Instant::now()),
            init: Mutex::new(Value::Null),
            transport,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            events,
            closed: AtomicBool::new(false),
            log: None,
        }
    }

    async fn handshake(self: &Arc<Self>) -> Result<(), UpstreamError> {
        let params = json!({
            "protocolVersion": LATEST_PROTOCOL_VERSION,
            "capabilities": GATEWAY_CLIENT_CAPABILITIES.clone(),
            "clientInfo": {"name": "gigmcp", "version": env!("CARGO_PKG_VERSION")},
        });
        let request = self.request("initialize", Some(params), None);
        let reply = tokio::time::timeout(INITIALIZE_TIMEOUT, request.reply())
            .await
            .map_err(|_| UpstreamError::InitTimeout {
                server: self.server.clone(),
                stderr: self.stderr_report(),
            })?;
        let init_error = |detail: String| UpstreamError::Init {
            server: self.server.clone(),
            detail,
            stderr: self.stderr_report(),
        };
        // Nothing records the id of `initialize`, so nothing can cancel it.
        let Reply::Message(reply) = reply else {
            return Err(init_error("initialize was cancelled".into()));
        };
        let result = match reply.get("result") {
            Some(Value::Object(result)) => Value::Object(result.clone()),
            _ => {
                let detail = reply
                    .get("error")
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| reply.to_string());
                if let Transport::Http(http) = &self.transport {
                    return Err(UpstreamError::Http {
                        server: self.server.clone(),
                        url: http.url.clone(),
                        detail,
                    });
                }
                return Err(init_error(detail));
            }
        };
        if !result.get("protocolVersion").is_some_and(Value::is_string) {
            return Err(init_error("initialize result has no protocolVersion".into()));
        }
        *lock(&self.init) = result;
        self.notify(jsonrpc::notification("notifications/initialized", None))
            .await;
        Ok(())
    }

    /// The server's `initialize` result.
    pub fn init(&self) -> Value {
        lock(&self.init).clone()
    }

    /// Whether the server declared a capability (`tools`, `prompts`, `resources`, `logging`, `completions`).
    pub fn has_capability(&self, name: &str) -> bool {
        lock(&self.init)["capabilities"].get(name).is_some_and(|c| !c.is_null())
    }

    /// What `gigmcp server status` shows of a running stdio server's sandbox.
    pub fn sandbox_status(&self) -> Option<SandboxStatus> {
        match &self.transport {
            Transport::Stdio(stdio) => lock(&stdio.sandbox).as_ref().map(|s| SandboxStatus {
                server: self.server.to_string(),
                pid: s.pid,
                uid: s.uid,
                address: s.address.map(|a| a.to_string()),
                uptime_s: self.uptime().as_secs(),
                memory_bytes: s.memory_usage(),
                profile: String::new(),
                per_session: false,
                restarts: 0,
            }),
            Transport::Http(_) => None,
        }
    }

    /// Unused for `idle` and nothing in flight.
    pub fn is_idle(&self, idle: Duration) -> bool {
        lock(&self.last_used).elapsed() >= idle && lock(&self.pending).is_empty()
    }

    /// How long it has been running.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The server's last stderr lines (from its log), for an error report.
    fn stderr_report(&self) -> String {
        let tail = self
            .log
            .as_ref()
            .map(|log| log.last_stderr(STDERR_REPORT_LINES))
            .unwrap_or_default();
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its last stderr lines:\n{}", tail.join("\n"))
        }
    }

    /// Starts a request: it gets this connection's next id, which also replaces the client's progress token
    /// (restored on the way back), so ids and tokens of different clients never meet upstream. Nothing is
    /// sent until [`Pending::reply`] is awaited, so the caller can record the id for cancellation first.
    pub fn request(self: &Arc<Self>, method: &str, params: Option<Value>, origin: Option<Origin>) -> Pending {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut params = params;
        let progress_token = params
            .as_mut()
            .and_then(|p| p.get_mut("_meta"))
            .and_then(Value::as_object_mut)
            .and_then(|meta| meta.insert("progressToken".into(), json!(id)).map(|old| (meta, old)))
            .map(|(_, old)| old);
        *lock(&self.last_used) = Instant::now();
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&self.pending).insert(
            id,
            Waiter {
                reply: reply_tx,
                origin,
                progress_token,
            },
        );
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        Pending {
            conn: self.clone(),
            id,
            message: Some(message),
            reply: reply_rx,
        }
    }

    fn closed_error(&self, id: u64) -> Value {
        jsonrpc::error(
            json!(id),
            jsonrpc::INTERNAL_ERROR,
            format!("server {} is not running{}", self.server, self.stderr_report()),
        )
    }

    /// Sends a notification (or a response to a server→client request).
    pub async fn notify(self: &Arc<Self>, message: Value) {
        self.send(message, None).await;
    }

    /// Abandons a request the client cancelled: its waiter is released at once with [`Reply::Cancelled`] (no
    /// reply is due), and the server is told to stop.
    pub async fn cancel(self: &Arc<Self>, id: u64, reason: Option<Value>) {
        let Some(waiter) = lock(&self.pending).remove(&id) else {
            return;
        };
        let _ = waiter.reply.send(Reply::Cancelled);
        let mut params = json!({"requestId": id});
        if let Some(reason) = reason {
            params["reason"] = reason;
        }
        self.notify(jsonrpc::notification("notifications/cancelled", Some(params)))
            .await;
    }

    /// Sends one message. `request_id`: the id of the request it is, whose reply the transport reads.
    async fn send(self: &Arc<Self>, message: Value, request_id: Option<u64>) {
        match &self.transport {
            Transport::Stdio(stdio) => {
                if !stdio.write(&message).await {
                    self.shut("the server's stdin is closed".into());
                }
            }
            Transport::Http(http) => self.send_http(http, message, request_id).await,
        }
    }

    fn fail_pending(&self, id: u64, detail: &str) {
        if let Some(waiter) = lock(&self.pending).remove(&id) {
            let message = format!("server {}: {detail}", self.server);
            let _ = waiter.reply.send(Reply::Message(jsonrpc::error(
                json!(id),
                jsonrpc::INTERNAL_ERROR,
                message,
            )));
        }
    }

    /// Marks the connection dead and fails everything in flight.
    fn shut(&self, reason: String) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let pending: Vec<(u64, Waiter)> = lock(&self.pending).drain().collect();
        for (id, waiter) in pending {
            let _ = waiter.reply.send(Reply::Message(self.closed_error(id)));
        }
        tracing::warn!(server = %self.server, "upstream closed: {reason}");
        if let Some(log) = &self.log {
            log.gateway(&format!("closed: {reason}"));
        }
        let _ = self.events.send(UpstreamEvent::Closed {
            server: self.server.clone(),
            conn: self.id,
            reason,
            stderr: self.stderr_report(),
        });
    }

    /// Routes one message from the server. `related_to`: the request whose HTTP response stream carried it.
    fn on_message(self: &Arc<Self>, value: Value, related_to: Option<u64>) {
        let message = match Message::classify(value) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(server = %self.server, "ignoring an invalid message from the server: {e}");
                return;
            }
        };
        match message {
            Message::Response { id, body } => {
                let entry = id.as_u64().and_then(|id| lock(&self.pending).remove(&id));
                match entry {
                    Some(waiter) => {
                        let _ = waiter.reply.send(Reply::Message(Value::Object(body)));
                    }
                    None => {
                        tracing::debug!(server = %self.server, "reply to an unknown or cancelled request {id}")
                    }
                }
            }
            Message::Request { body, .. } => {
                let origin = self.origin_for_request(&body, related_to);
                let mut outbound = Outbound::ServerRequest {
                    conn: self.clone(),
                    message: Value::Object(body),
                };
                if let Some(origin) = origin {
                    match origin.related.send(outbound) {
                        Ok(()) => return,
                        Err(e) => outbound = e.0,
                    }
                }
                if let Outbound::ServerRequest { conn, message } = outbound {
                    let _ = self.events.send(UpstreamEvent::ServerRequest { conn, message });
                }
            }
            Message::Notification { method, mut body } => {
                if method == "notifications/progress" {
                    self.route_progress(body);
                    return;
                }
                if let Some(id) = related_to {
                    let origin = lock(&self.pending).get(&id).and_then(|w| w.origin.clone());
                    if let Some(origin) = origin {
                        match origin.related.send(Outbound::Message(Value::Object(body))) {
                            Ok(()) => return,
                            Err(e) => match e.0 {
                                Outbound::Message(Value::Object(b)) => body = b,
                                _ => return,
                            },
                        }
                    }
                }
                let _ = self.events.send(UpstreamEvent::Notification {
                    server: self.server.clone(),
                    message: Value::Object(body),
                });
            }
        }
    }

    /// The request a server→client request belongs to: named by its progress token, carried on that
    /// request's response stream, or else the most recent request in flight.
    fn origin_for_request(&self, body: &Map<String, Value>, related_to: Option<u64>) -> Option<Origin> {
        let pending = lock(&self.pending);
        let by_token = body
            .get("params")
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get("progressToken"))
            .and_then(Value::as_u64);
        by_token
            .or(related_to)
            .and_then(|id| pending.get(&id))
            .and_then(|w| w.origin.clone())
            .or_else(|| {
                pending
                    .iter()
                    .filter(|(_, w)| w.origin.is_some())
                    .max_by_key(|(id, _)| **id)
                    .and_then(|(_, w)| w.origin.clone())
            })
    }

    fn route_progress(&self, mut body: Map<String, Value>) {
        let Some(params) = body.get_mut("params").and_then(Value::as_object_mut) else {
            return;
        };
        let Some(id) = params.get("progressToken").and_then(Value::as_u64) else {
            return;
        };
        let pending = lock(&self.pending);
        let Some(waiter) = pending.get(&id) else {
            return; // progress for a request that already finished or was cancelled
        };
        let (Some(token), Some(origin)) = (&waiter.progress_token, &waiter.origin) else {
            return;
        };
        params.insert("progressToken".into(), token.clone());
        let _ = origin.related.send(Outbound::Message(Value::Object(body)));
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the upstream HTTP session; a stdio server's process is killed with its handle.
        if let Transport::Http(http) = &self.transport {
            http.end_session();
        }
        if let Some(log) = &self.log {
            if !self.is_closed() {
                log.gateway("stopped by the gateway (idle, restarted, its profile changed, or it failed to start)");
            }
            log.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection over a stdio transport with no process behind it: what it writes comes out of the receiver.
    fn conn() -> (Arc<Conn>, mpsc::Receiver<Vec<u8>>) {
        let (writer, written) = mpsc::channel(16);
        let (events, _) = mpsc::unbounded_channel();
        let server = ServerName::parse("test").expect("a valid name");
        let transport = Transport::Stdio(StdioTransport::new(writer, None));
        (Arc::new(Conn::new(server, transport, events)), written)
    }

    async fn next_message(written: &mut mpsc::Receiver<Vec<u8>>) -> Value {
        let line = written.recv().await.expect("a message was written");
        serde_json::from_slice(&line).expect("a JSON line")
    }

    #[tokio::test]
    async fn a_reply_is_matched_by_the_connections_own_id() {
        let (conn, mut written) = conn();
        let first = conn.request("tools/list", None, None);
        let second = conn.request("tools/list", None, None);
        assert_ne!(first.id(), second.id());
        let id = second.id();
        let waiting = tokio::spawn(second.reply());
        let sent = next_message(&mut written).await;
        assert_eq!(sent["id"], json!(id));
        conn.on_message(json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}}), None);
        let Reply::Message(reply) = waiting.await.expect("the task ends") else {
            panic!("a reply was expected");
        };
        assert_eq!(reply["result"], json!({"tools": []}));
        drop(first);
        assert!(lock(&conn.pending).is_empty(), "a request dropped unsent is forgotten");
    }

    #[tokio::test]
    async fn a_cancelled_request_ends_cancelled_and_the_server_is_told() {
        let (conn, mut written) = conn();
        let params = json!({"name": "slow", "_meta": {"progressToken": "client-token"}});
        let pending = conn.request("tools/call", Some(params), None);
        let id = pending.id();
        let waiting = tokio::spawn(pending.reply());
        let sent = next_message(&mut written).await;
        assert_eq!(
            sent["params"]["_meta"]["progressToken"],
            json!(id),
            "the token is the upstream id"
        );
        conn.cancel(id, Some(json!("user"))).await;
        assert_eq!(waiting.await.expect("the task ends"), Reply::Cancelled);
        let cancelled = next_message(&mut written).await;
        assert_eq!(cancelled["method"], "notifications/cancelled");
        assert_eq!(cancelled["params"], json!({"requestId": id, "reason": "user"}));
        // A late reply from the server is dropped.
        conn.on_message(json!({"jsonrpc": "2.0", "id": id, "result": {}}), None);
        assert!(lock(&conn.pending).is_empty());
    }

    #[tokio::test]
    async fn a_request_cancelled_before_it_is_sent_is_never_sent() {
        let (conn, mut written) = conn();
        let pending = conn.request("tools/call", None, None);
        conn.cancel(pending.id(), None).await;
        let cancelled = next_message(&mut written).await;
        assert_eq!(cancelled["method"], "notifications/cancelled");
        assert_eq!(pending.reply().await, Reply::Cancelled);
        assert!(written.try_recv().is_err(), "the request itself was not written");
    }

    #[tokio::test]
    async fn a_closed_connection_fails_its_requests_with_an_error() {
        let (conn, written) = conn();
        drop(written);
        let reply = conn.request("tools/list", None, None).reply();
        let Reply::Message(reply) = reply.await else {
            panic!("an error reply was expected");
        };
        assert_eq!(reply["error"]["code"], json!(jsonrpc::INTERNAL_ERROR));
        assert!(conn.is_closed());
    }
}
