//! One MCP session with an upstream server: a sandboxed stdio process, or a streamable-HTTP server.
//!
//! The gateway is the client here. Every request it sends upstream gets an id of its own (a counter of this
//! connection), so ids chosen by different downstream clients can never meet upstream; the reply is matched
//! by that id and handed back to whoever asked, who restores the client's id. Progress tokens are rewritten
//! the same way. Messages the server sends on its own are classified here: replies and progress go to the
//! request they belong to, server→client requests to the client session whose request is in flight, and
//! everything else to the connection's owner (the profile runtime or, for a per-session server, the session).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::jsonrpc;
use crate::jsonrpc::Message;
use crate::sse::SseReader;
use crate::{GATEWAY_CLIENT_CAPABILITIES, LATEST_PROTOCOL_VERSION};
use gigmcp_sandbox::{Launch, Launcher, Program, Sandbox, SandboxError};
use gigmcp_types::names::ServerName;
use gigmcp_types::server::SandboxStatus;
use gigmcp_types::server::{ServerDef, ServerSpec};

/// How long a server may take to answer `initialize` (npm servers can be slow to load).
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of a server's stderr kept for error reports.
const STDERR_TAIL_LINES: usize = 20;
/// The longest line a stdio server may write.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

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

struct Pending {
    reply: oneshot::Sender<Value>,
    origin: Option<Origin>,
    progress_token: Option<Value>,
}

enum Transport {
    Stdio {
        writer: mpsc::Sender<Vec<u8>>,
        sandbox: Mutex<Option<Sandbox>>,
    },
    Http(HttpTransport),
}

struct HttpTransport {
    client: reqwest::Client,
    url: String,
    session_id: Mutex<Option<String>>,
    protocol_version: Mutex<Option<String>>,
}

pub struct Conn {
    /// Unique in this gateway: tells one connection to a server from the one that replaced it.
    pub id: u64,
    pub server: ServerName,
    started: std::time::Instant,
    last_used: Mutex<std::time::Instant>,
    /// The server's `initialize` result.
    init: Mutex<Value>,
    transport: Transport,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    events: mpsc::UnboundedSender<UpstreamEvent>,
    closed: AtomicBool,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        profile: Option<&gigmcp_types::names::ProfileSlug>,
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
                Self::start_stdio(def.name.clone(), launcher, &launch, tenant, events).await
            }
            ServerSpec::Builtin { builtin, limits, .. } => {
                let launch = Launch {
                    program: Program::SelfSubcommand(builtin.subcommand()),
                    args: &[],
                    env: placeholders,
                    mounts: &[],
                    limits: *limits,
                };
                Self::start_stdio(def.name.clone(), launcher, &launch, tenant, events).await
            }
            ServerSpec::Http { url } => Self::start_http(def.name.clone(), http.clone(), url.clone(), events).await,
        }
    }

    fn new(server: ServerName, transport: Transport, events: mpsc::UnboundedSender<UpstreamEvent>) -> Self {
        static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
            server,
            started: std::time::Instant::now(),
            last_used: Mutex::new(std::time::Instant::now()),
            init: Mutex::new(Value::Null),
            transport,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            events,
            closed: AtomicBool::new(false),
            stderr_tail: Arc::default(),
        }
    }

    async fn start_stdio(
        server: ServerName,
        launcher: &Launcher,
        launch: &Launch<'_>,
        tenant: Option<&gigmcp_sandbox::Tenant>,
        events: mpsc::UnboundedSender<UpstreamEvent>,
    ) -> Result<Arc<Self>, UpstreamError> {
        let mut sandbox = launcher.spawn_for(launch, tenant).await?;
        let child = sandbox.child.as_mut().expect("a new sandbox has its process");
        let (stdin, stdout, stderr) = match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => unreachable!("the launcher pipes all three streams"),
        };
        let (writer, mut write_rx) = mpsc::channel::<Vec<u8>>(1024);
        let conn = Arc::new(Self::new(
            server,
            Transport::Stdio {
                writer,
                sandbox: Mutex::new(Some(sandbox)),
            },
            events,
        ));
        tokio::spawn(async move {
            let mut stdin = stdin;
            while let Some(line) = write_rx.recv().await {
                if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let tail = conn.stderr_tail.clone();
        let name = conn.server.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(server = %name, "stderr: {line}");
                let mut tail = lock(&tail);
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        let weak = Arc::downgrade(&conn);
        tokio::spawn(read_stdio(weak, stdout));
        conn.handshake().await?;
        Ok(conn)
    }

    async fn start_http(
        server: ServerName,
        client: reqwest::Client,
        url: String,
        events: mpsc::UnboundedSender<UpstreamEvent>,
    ) -> Result<Arc<Self>, UpstreamError> {
        let conn = Arc::new(Self::new(
            server,
            Transport::Http(HttpTransport {
                client,
                url,
                session_id: Mutex::new(None),
                protocol_version: Mutex::new(None),
            }),
            events,
        ));
        conn.handshake().await?;
        if let Transport::Http(http) = &conn.transport {
            *lock(&http.protocol_version) = conn.init()["protocolVersion"].as_str().map(str::to_owned);
            tokio::spawn(listen_http(Arc::downgrade(&conn)));
        }
        Ok(conn)
    }

    async fn handshake(self: &Arc<Self>) -> Result<(), UpstreamError> {
        let params = json!({
            "protocolVersion": LATEST_PROTOCOL_VERSION,
            "capabilities": GATEWAY_CLIENT_CAPABILITIES.clone(),
            "clientInfo": {"name": "gigmcp", "version": env!("CARGO_PKG_VERSION")},
        });
        let id = self.next_request_id();
        let reply = tokio::time::timeout(INITIALIZE_TIMEOUT, self.request(id, "initialize", Some(params), None))
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
            Transport::Stdio { sandbox, .. } => lock(sandbox).as_ref().map(|s| SandboxStatus {
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

    fn stderr_report(&self) -> String {
        let tail = lock(&self.stderr_tail);
        if tail.is_empty() {
            String::new()
        } else {
            format!(
                "; its last stderr lines:\n{}",
                tail.iter().cloned().collect::<Vec<_>>().join("\n")
            )
        }
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends a request with an id from [`next_request_id`](Self::next_request_id) and waits for its reply
    /// (a whole JSON-RPC response object, its id the upstream one), or `Null` if the client cancelled it.
    /// Never fails: transport problems come back as JSON-RPC errors.
    pub async fn request(
        self: &Arc<Self>,
        id: u64,
        method: &str,
        params: Option<Value>,
        origin: Option<Origin>,
    ) -> Value {
        let mut params = params;
        // The client's progress token is replaced by this request's own id, so tokens of different clients
        // never meet upstream; the client's token is restored on the way back.
        let progress_token = params
            .as_mut()
            .and_then(|p| p.get_mut("_meta"))
            .and_then(Value::as_object_mut)
            .and_then(|meta| meta.insert("progressToken".into(), json!(id)).map(|old| (meta, old)))
            .map(|(_, old)| old);
        *lock(&self.last_used) = std::time::Instant::now();
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&self.pending).insert(
            id,
            Pending {
                reply: reply_tx,
                origin,
                progress_token,
            },
        );
        if self.is_closed() {
            lock(&self.pending).remove(&id);
            return self.closed_error(id);
        }
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(message, Some(id)).await;
        reply_rx.await.unwrap_or_else(|_| self.closed_error(id))
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

    /// Abandons a request the client cancelled: its waiter is released at once with `Null` (no reply is
    /// due), and the server is told to stop.
    pub async fn cancel(self: &Arc<Self>, id: u64, reason: Option<Value>) {
        let Some(pending) = lock(&self.pending).remove(&id) else {
            return;
        };
        // The client gets no reply to a request it cancelled (MCP): `Null` tells the waiter to send none.
        let _ = pending.reply.send(Value::Null);
        let mut params = json!({"requestId": id});
        if let Some(reason) = reason {
            params["reason"] = reason;
        }
        self.notify(jsonrpc::notification("notifications/cancelled", Some(params)))
            .await;
    }

    async fn send(self: &Arc<Self>, message: Value, request_id: Option<u64>) {
        match &self.transport {
            Transport::Stdio { writer, .. } => {
                let mut line = message.to_string().into_bytes();
                line.push(b'\n');
                if writer.send(line).await.is_err() {
                    self.shut("the server's stdin is closed".into());
                }
            }
            Transport::Http(http) => {
                let request = http.post(&message);
                if let Some(id) = request_id {
                    // A request's reply may stream for a long time: read it in its own task.
                    let weak = Arc::downgrade(self);
                    tokio::spawn(async move {
                        let outcome = match request.send().await {
                            Ok(response) => read_http_response(&weak, response, Some(id)).await,
                            Err(e) => Err(e.to_string()),
                        };
                        if let (Err(detail), Some(conn)) = (outcome, weak.upgrade()) {
                            conn.fail_pending(id, &detail);
                        }
                    });
                } else {
                    match request.send().await {
                        Ok(response) if response.status().is_success() => {}
                        Ok(response) => {
                            tracing::warn!(server = %self.server, status = %response.status(), "upstream refused a message")
                        }
                        Err(e) => {
                            tracing::warn!(server = %self.server, "cannot send to upstream: {e}")
                        }
                    }
                }
            }
        }
    }

    fn fail_pending(&self, id: u64, detail: &str) {
        if let Some(pending) = lock(&self.pending).remove(&id) {
            let message = format!("server {}: {detail}", self.server);
            let _ = pending
                .reply
                .send(jsonrpc::error(json!(id), jsonrpc::INTERNAL_ERROR, message));
        }
    }

    /// Marks the connection dead and fails everything in flight.
    fn shut(&self, reason: String) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let pending: Vec<(u64, Pending)> = lock(&self.pending).drain().collect();
        for (id, p) in pending {
            let _ = p.reply.send(self.closed_error(id));
        }
        tracing::warn!(server = %self.server, "upstream closed: {reason}");
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
                    Some(p) => {
                        let _ = p.reply.send(Value::Object(body));
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
                    let origin = lock(&self.pending).get(&id).and_then(|p| p.origin.clone());
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
            .and_then(|p| p.origin.clone())
            .or_else(|| {
                pending
                    .iter()
                    .filter(|(_, p)| p.origin.is_some())
                    .max_by_key(|(id, _)| **id)
                    .and_then(|(_, p)| p.origin.clone())
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
        let Some(p) = pending.get(&id) else {
            return; // progress for a request that already finished or was cancelled
        };
        let (Some(token), Some(origin)) = (&p.progress_token, &p.origin) else {
            return;
        };
        params.insert("progressToken".into(), token.clone());
        let _ = origin.related.send(Outbound::Message(Value::Object(body)));
    }
}

impl HttpTransport {
    fn post(&self, message: &Value) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(&self.url)
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(message.to_string());
        if let Some(id) = lock(&self.session_id).as_deref() {
            request = request.header("mcp-session-id", id);
        }
        if let Some(version) = lock(&self.protocol_version).as_deref() {
            request = request.header("mcp-protocol-version", version);
        }
        request
    }
}

async fn read_stdio(conn: Weak<Conn>, stdout: tokio::process::ChildStdout) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    let reason = loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => break "the server exited".to_string(),
            Ok(_) if line.len() > MAX_LINE_BYTES => {
                break "the server wrote a line over 16 MiB".to_string();
            }
            Ok(_) => {}
            Err(e) => break format!("reading the server's output failed: {e}"),
        }
        let Some(conn) = conn.upgrade() else { return };
        match serde_json::from_slice::<Value>(&line) {
            Ok(value) => conn.on_message(value, None),
            Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
            Err(e) => {
                tracing::warn!(server = %conn.server, "ignoring a line that is not JSON: {e}")
            }
        }
    };
    if let Some(conn) = conn.upgrade() {
        conn.shut(reason);
    }
}

/// How often an event stream that ended before its reply is resumed before the request fails.
const MAX_RESUMPTIONS: u32 = 10;
/// The longest wait before resuming, whatever `retry:` the server asked for.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// Reads one HTTP response from the server: a JSON message, or an event stream of messages. An event
/// stream that ends before the reply of its request came is resumed with `Last-Event-ID` (2025-11-25
/// servers close streams on purpose and let clients poll), as long as the server gave its events ids.
async fn read_http_response(
    conn: &Weak<Conn>,
    response: reqwest::Response,
    related_to: Option<u64>,
) -> Result<(), String> {
    let status = response.status();
    if let (Some(conn), Some(id)) = (conn.upgrade(), response.headers().get("mcp-session-id"))
        && let (Transport::Http(http), Ok(id)) = (&conn.transport, id.to_str())
    {
        let mut current = lock(&http.session_id);
        if current.is_none() {
            *current = Some(id.to_owned());
        }
    }
    if status == reqwest::StatusCode::ACCEPTED {
        return Ok(());
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let excerpt: String = body.chars().take(300).collect();
        return Err(format!("HTTP {status}: {excerpt}"));
    }
    if !is_event_stream(&response) {
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON reply: {e}"))?;
        if let Some(conn) = conn.upgrade() {
            conn.on_message(value, related_to);
        }
        return Ok(());
    }
    let mut reader = SseReader::default();
    read_events(conn, response, &mut reader, related_to).await?;
    let Some(id) = related_to else { return Ok(()) };
    for _ in 0..MAX_RESUMPTIONS {
        let waiting = conn.upgrade().is_some_and(|c| lock(&c.pending).contains_key(&id));
        let Some(last_event) = reader.last_event_id().map(str::to_owned).filter(|_| waiting) else {
            break;
        };
        tokio::time::sleep(reader.retry().unwrap_or(Duration::from_secs(1)).min(MAX_RETRY_WAIT)).await;
        let Some(request) = conn.upgrade().and_then(|c| c.get_stream(Some(&last_event))) else {
            return Ok(());
        };
        match request.send().await {
            Ok(response) if response.status().is_success() && is_event_stream(&response) => {
                read_events(conn, response, &mut reader, related_to).await?;
            }
            Ok(response) => return Err(format!("resuming the response stream: HTTP {}", response.status())),
            Err(e) => return Err(format!("resuming the response stream: {e}")),
        }
    }
    // A request whose reply never came fails now rather than hanging.
    if let Some(conn) = conn.upgrade() {
        conn.fail_pending(id, "the response stream ended without a reply");
    }
    Ok(())
}

fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Reads an event stream until it ends, handing each message to the connection.
async fn read_events(
    conn: &Weak<Conn>,
    response: reqwest::Response,
    reader: &mut SseReader,
    related_to: Option<u64>,
) -> Result<(), String> {
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        for data in reader.feed(&chunk)? {
            let Some(conn) = conn.upgrade() else {
                return Ok(());
            };
            match serde_json::from_str::<Value>(&data) {
                Ok(value) => conn.on_message(value, related_to),
                Err(e) => tracing::warn!(server = %conn.server, "ignoring an event that is not JSON: {e}"),
            }
        }
    }
    Ok(())
}

impl Conn {
    /// A GET for the session's standalone stream, or for resuming a stream after `last_event`.
    fn get_stream(&self, last_event: Option<&str>) -> Option<reqwest::RequestBuilder> {
        let Transport::Http(http) = &self.transport else {
            return None;
        };
        let mut request = http
            .client
            .get(&http.url)
            .header(http::header::ACCEPT, "text/event-stream");
        if let Some(id) = lock(&http.session_id).as_deref() {
            request = request.header("mcp-session-id", id);
        }
        if let Some(version) = lock(&http.protocol_version).as_deref() {
            request = request.header("mcp-protocol-version", version);
        }
        if let Some(last) = last_event {
            request = request.header("last-event-id", last);
        }
        Some(request)
    }
}

/// Keeps a GET stream open for messages the server sends outside any request, reopening it (resuming
/// after the last event seen) when the server closes it. Servers that offer none answer 405, which ends
/// this; so does the connection ending.
async fn listen_http(conn: Weak<Conn>) {
    let mut reader = SseReader::default();
    let mut failures = 0u32;
    while failures < 5 {
        let Some(request) = conn
            .upgrade()
            .filter(|c| !c.is_closed())
            .and_then(|c| c.get_stream(reader.last_event_id()))
        else {
            return;
        };
        match request.send().await {
            Ok(response) if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => return,
            Ok(response) if response.status().is_success() && is_event_stream(&response) => {
                failures = 0;
                if let Err(e) = read_events(&conn, response, &mut reader, None).await {
                    tracing::debug!("upstream GET stream ended: {e}");
                    failures += 1;
                }
            }
            Ok(_) | Err(_) => failures += 1,
        }
        let wait = reader.retry().unwrap_or(Duration::from_secs(1)).min(MAX_RETRY_WAIT);
        tokio::time::sleep(wait * (failures + 1)).await;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the upstream HTTP session; a stdio server's process is killed with its handle.
        if let Transport::Http(http) = &self.transport
            && let Some(id) = lock(&http.session_id).clone()
        {
            let request = http.client.delete(&http.url).header("mcp-session-id", id);
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = request.send().await;
                });
            }
        }
    }
}
