//! A profile's runtime: its servers, the routing table, and its client sessions.
//!
//! One runtime per profile, made on the profile's first request. A stdio server is one process shared by
//! the profile's sessions (a profile is one principal); a `per-session` server and every HTTP upstream get
//! one upstream session per client session. Starting a server is coalesced: concurrent first uses wait for
//! one start.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::aggregate::{ListKind, Routes};
use crate::client::Client;
use crate::jsonrpc;
use crate::upstream::{Conn, Reply, UpstreamEvent};
use gigmcp_sandbox::Launcher;
use gigmcp_store::ProfileConfig;
use gigmcp_types::ids::ProfileId;
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::server::{ServerDef, ServerSpec};
use gigmcp_types::sync::lock;

/// What every runtime shares: how to start servers.
pub struct Deps {
    pub launcher: Launcher,
    pub http: reqwest::Client,
    /// A server unused this long is stopped; it starts again on next use.
    pub idle_timeout: Duration,
    /// The policy plugins (`None` where no plugin runs, as when the CLI probes a server's names).
    pub plugins: Option<Arc<gigmcp_plugin_runtime::PluginHost>>,
    /// Where credentials' placeholders are found for a server's environment (`None`: no credentials).
    pub store: Option<Arc<gigmcp_store::Store>>,
    /// The audit log of record (`None` where nothing is audited, as when the CLI probes a server's names).
    pub audit: Option<gigmcp_audit::AuditLog>,
    /// Where sandboxes' stderr and the gateway's lines about them are kept.
    pub logs: Arc<crate::logs::ServerLogs>,
}

/// The credential placeholders a server gets in its environment when it serves `profile`.
async fn placeholders(
    deps: &Deps,
    server: &ServerName,
    profile: &ProfileSlug,
) -> Result<Vec<(String, String)>, String> {
    let Some(store) = deps.store.clone() else {
        return Ok(Vec::new());
    };
    let (server, profile) = (server.clone(), profile.clone());
    tokio::task::spawn_blocking(move || gigmcp_vault::placeholder_env(&store, &server, Some(&profile)))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read the server's credentials: {e}"))
}

/// A slot for one upstream connection, started on first use; concurrent first uses wait for one start.
#[derive(Default)]
pub struct ConnCell {
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    /// Why the last start failed, while it has not started since.
    last_error: Mutex<Option<String>>,
    crashes: Mutex<Crashes>,
}

/// Crash accounting for restarts with exponential backoff.
#[derive(Default)]
struct Crashes {
    /// Crashes in a row (a server that ran a minute counts from zero again).
    recent: u32,
    total: u32,
    /// No start before this moment.
    down_until: Option<Instant>,
    /// The connection whose end was counted last.
    last_crashed: Option<u64>,
}

/// A server that ran this long before crashing starts its backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The wait before restarting after the `n`th crash in a row: 1 s, 2 s, 4 s … up to a minute.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(MAX_BACKOFF)
}

impl ConnCell {
    pub async fn get_or_start(
        &self,
        def: &ServerDef,
        deps: &Deps,
        events: &mpsc::UnboundedSender<UpstreamEvent>,
        profile: &ProfileSlug,
    ) -> Result<Arc<Conn>, String> {
        let mut guard = self.conn.lock().await;
        match guard.as_ref() {
            Some(conn) if !conn.is_closed() => return Ok(conn.clone()),
            Some(_) => {
                self.note_crash(&mut guard);
            }
            None => {}
        }
        if let Some(until) = lock(&self.crashes).down_until
            && Instant::now() < until
        {
            let wait = until.saturating_duration_since(Instant::now()).as_secs_f32();
            let message = format!("server {} crashed; it restarts in {wait:.0} s", def.name);
            *lock(&self.last_error) = Some(message.clone());
            return Err(message);
        }
        let placeholders = placeholders(deps, &def.name, profile).await?;
        match Conn::start(
            def,
            &deps.launcher,
            &deps.http,
            events.clone(),
            &placeholders,
            Some(profile),
            &deps.logs,
        )
        .await
        {
            Ok(conn) => {
                tracing::info!(server = %def.name, "server started");
                gigmcp_metrics::global().inc(
                    "gigmcp_sandbox_starts_total",
                    "Server processes started (each in its sandbox), by server.",
                    &[("server", def.name.as_str())],
                );
                *lock(&self.last_error) = None;
                *guard = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                let message = e.to_string();
                *lock(&self.last_error) = Some(message.clone());
                Err(message)
            }
        }
    }

    /// The connection if it is running, without starting it.
    pub fn running(&self) -> Option<Arc<Conn>> {
        self.conn
            .try_lock()
            .ok()
            .and_then(|g| g.clone())
            .filter(|c| !c.is_closed())
    }

    /// Why the server could not be started last time, if it could not.
    pub fn start_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// Counts the end of the current connection as a crash and sets the backoff before the next start.
    fn note_crash(&self, guard: &mut Option<Arc<Conn>>) -> (Duration, u32) {
        let Some(conn) = guard.take() else {
            return (Duration::ZERO, 0);
        };
        gigmcp_metrics::global().inc(
            "gigmcp_sandbox_crashes_total",
            "Server processes that ended without being stopped by the gateway, by server.",
            &[("server", conn.server.as_str())],
        );
        let mut crashes = lock(&self.crashes);
        crashes.recent = if conn.uptime() >= HEALTHY_RUN {
            1
        } else {
            crashes.recent + 1
        };
        crashes.total += 1;
        crashes.last_crashed = Some(conn.id);
        let wait = backoff(crashes.recent);
        crashes.down_until = Some(Instant::now() + wait);
        (wait, crashes.recent)
    }

    /// Records that connection `conn` ended. Returns the wait before a restart and the crashes in a row if
    /// that was a crash of the current connection; `None` if it had been stopped on purpose (idle, profile
    /// edited) or replaced.
    pub async fn crashed(&self, conn: u64) -> Option<(Duration, u32)> {
        let mut guard = self.conn.lock().await;
        if guard.as_ref().is_some_and(|c| c.id == conn) {
            return Some(self.note_crash(&mut guard));
        }
        // A request may have found it dead first and counted it already.
        let crashes = lock(&self.crashes);
        (crashes.last_crashed == Some(conn)).then(|| {
            let wait = crashes
                .down_until
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or_default();
            (wait, crashes.recent)
        })
    }

    /// How often it crashed since the gateway started.
    pub fn crash_count(&self) -> u32 {
        lock(&self.crashes).total
    }

    /// Stops the connection if it has been idle for `idle` (it starts again on next use).
    pub fn stop_if_idle(&self, idle: Duration) -> bool {
        let Ok(mut guard) = self.conn.try_lock() else {
            return false;
        };
        if guard.as_ref().is_some_and(|c| c.is_idle(idle)) {
            *guard = None;
            return true;
        }
        false
    }
}

/// One server of a profile.
pub struct Slot {
    pub def: ServerDef,
    /// The shared process, for servers that are shared by the profile's sessions.
    pub shared: ConnCell,
}

impl Slot {
    /// Whether each client session gets its own upstream session.
    pub fn is_per_session(&self) -> bool {
        self.def.per_session || matches!(self.def.spec, ServerSpec::Http { .. })
    }
}

pub struct Runtime {
    pub profile: ProfileId,
    pub slug: ProfileSlug,
    pub deps: Arc<Deps>,
    slots: RwLock<Arc<Vec<Arc<Slot>>>>,
    pub routes: Mutex<Routes>,
    sessions: Mutex<HashMap<String, Weak<dyn Client>>>,
    /// Which client sessions are subscribed to each resource of a shared server. The server itself is
    /// subscribed once, while at least one session is.
    subscriptions: Mutex<HashMap<(ServerName, String), HashSet<String>>>,
    pub events: mpsc::UnboundedSender<UpstreamEvent>,
}

/// MCP log levels, most verbose first.
pub const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

pub fn log_level_index(level: &str) -> Option<usize> {
    LOG_LEVELS.iter().position(|l| *l == level)
}

impl Runtime {
    pub fn new(config: &ProfileConfig, deps: Arc<Deps>) -> Arc<Self> {
        let (events, rx) = mpsc::unbounded_channel();
        let runtime = Arc::new(Self {
            profile: config.id,
            slug: config.slug.clone(),
            deps,
            slots: RwLock::new(Arc::new(
                config.servers.iter().cloned().map(|d| Arc::new(new_slot(d))).collect(),
            )),
            routes: Mutex::default(),
            sessions: Mutex::default(),
            subscriptions: Mutex::default(),
            events,
        });
        tokio::spawn(handle_events(Arc::downgrade(&runtime), None, rx));
        runtime
    }

    pub fn slots(&self) -> Arc<Vec<Arc<Slot>>> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn servers(&self) -> Vec<ServerDef> {
        self.slots().iter().map(|s| s.def.clone()).collect()
    }

    pub fn slot(&self, name: &ServerName) -> Option<Arc<Slot>> {
        self.slots().iter().find(|s| &s.def.name == name).cloned()
    }

    pub fn add_session(&self, id: &str, session: Weak<dyn Client>) {
        lock(&self.sessions).insert(id.to_owned(), session);
    }

    /// Forgets a session that ended, unsubscribing shared servers from what only it was subscribed to.
    pub fn remove_session(&self, id: &str) {
        lock(&self.sessions).remove(id);
        let orphaned: Vec<(ServerName, String)> = {
            let mut subscriptions = lock(&self.subscriptions);
            let mut orphaned = Vec::new();
            subscriptions.retain(|key, sessions| {
                if sessions.remove(id) && sessions.is_empty() {
                    orphaned.push(key.clone());
                }
                !sessions.is_empty()
            });
            orphaned
        };
        for (server, uri) in orphaned {
            let Some(conn) = self.slot(&server).and_then(|s| s.shared.running()) else {
                continue;
            };
            tokio::spawn(async move {
                let params = serde_json::json!({ "uri": uri });
                let _ = conn.request("resources/unsubscribe", Some(params), None).reply().await;
            });
        }
    }

    /// Records a session's subscription; true if it is the first for that resource (subscribe upstream).
    pub fn subscribe(&self, server: &ServerName, uri: &str, session: &str) -> bool {
        let mut subscriptions = lock(&self.subscriptions);
        let sessions = subscriptions.entry((server.clone(), uri.to_owned())).or_default();
        sessions.insert(session.to_owned()) && sessions.len() == 1
    }

    /// Drops a session's subscription; true if it was the last for that resource (unsubscribe upstream).
    pub fn unsubscribe(&self, server: &ServerName, uri: &str, session: &str) -> bool {
        let mut subscriptions = lock(&self.subscriptions);
        let key = (server.clone(), uri.to_owned());
        let Some(sessions) = subscriptions.get_mut(&key) else {
            return false;
        };
        let last = sessions.remove(session) && sessions.is_empty();
        if sessions.is_empty() {
            subscriptions.remove(&key);
        }
        last
    }

    fn is_subscribed(&self, server: &ServerName, uri: &str, session: &str) -> bool {
        lock(&self.subscriptions)
            .get(&(server.clone(), uri.to_owned()))
            .is_some_and(|s| s.contains(session))
    }

    /// The level a shared server logs at: the most verbose any session asked for.
    pub fn most_verbose_log_level(&self) -> Option<usize> {
        self.sessions().iter().filter_map(|s| s.log_level()).min()
    }

    pub fn sessions(&self) -> Vec<Arc<dyn Client>> {
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.strong_count() > 0);
        sessions.values().filter_map(Weak::upgrade).collect()
    }

    /// Applies an edited profile: servers that stayed keep running, removed ones stop, added ones start on
    /// first use, and every client is told its lists changed.
    pub fn reconfigure(&self, config: &ProfileConfig) {
        let old = self.slots();
        let slots: Vec<Arc<Slot>> = config
            .servers
            .iter()
            .map(|def| {
                old.iter()
                    .find(|s| &s.def == def)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(new_slot(def.clone())))
            })
            .collect();
        for gone in old.iter().filter(|s| !slots.iter().any(|n| Arc::ptr_eq(n, s))) {
            lock(&self.routes).forget_server(&gone.def.name);
            for session in self.sessions() {
                session.drop_server(&gone.def.name);
            }
        }
        *self.slots.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(slots);
        lock(&self.routes).clear();
        self.notify_lists_changed();
        tracing::info!(profile = %self.slug, "profile changed; clients notified");
    }

    /// Tells every client session that the tool, prompt and resource lists changed.
    pub fn notify_lists_changed(&self) {
        for session in self.sessions() {
            for method in [
                "notifications/tools/list_changed",
                "notifications/prompts/list_changed",
                "notifications/resources/list_changed",
            ] {
                session.push(jsonrpc::notification(method, None));
            }
        }
    }

    /// The running sandboxes of this profile.
    pub fn sandbox_statuses(&self) -> Vec<gigmcp_types::server::SandboxStatus> {
        let mut out = Vec::new();
        for slot in self.slots().iter() {
            if let Some(mut status) = slot.shared.running().and_then(|c| c.sandbox_status()) {
                status.profile = self.slug.to_string();
                status.restarts = slot.shared.crash_count();
                out.push(status);
            }
        }
        for session in self.sessions() {
            for mut status in session.sandbox_statuses() {
                status.profile = self.slug.to_string();
                status.per_session = true;
                out.push(status);
            }
        }
        out
    }

    /// Stops shared servers nobody used for `idle`; they start again on next use.
    pub fn stop_idle_servers(&self, idle: Duration) {
        for slot in self.slots().iter() {
            if slot.shared.stop_if_idle(idle) {
                tracing::info!(profile = %self.slug, server = %slot.def.name, "stopped an idle server");
            }
        }
        for session in self.sessions() {
            session.stop_idle_servers(idle);
        }
    }
}

fn new_slot(def: ServerDef) -> Slot {
    Slot {
        def,
        shared: ConnCell::default(),
    }
}

/// Handles what upstream connections report. `only`: the session that owns per-session connections; for
/// shared connections every session of the runtime hears of it.
pub async fn handle_events(
    runtime: Weak<Runtime>,
    only: Option<Weak<dyn Client>>,
    mut rx: mpsc::UnboundedReceiver<UpstreamEvent>,
) {
    while let Some(event) = rx.recv().await {
        let Some(runtime) = runtime.upgrade() else {
            return;
        };
        let audience: Vec<Arc<dyn Client>> = match &only {
            Some(session) => match session.upgrade() {
                Some(s) => vec![s],
                None => return,
            },
            None => runtime.sessions(),
        };
        match event {
            UpstreamEvent::Notification { server, message } => {
                let method = message.get("method").and_then(Value::as_str).unwrap_or_default();
                // A shared server's list changed: its routes are re-learned. A per-session server's change is
                // that one session's business: the routing table is the profile's, and clearing it there
                // would make other sessions' calls to the same server miss while they are resolved.
                if method.ends_with("/list_changed") && method != "notifications/roots/list_changed" && only.is_none() {
                    lock(&runtime.routes).forget_server(&server);
                }
                let params = &message["params"];
                for session in &audience {
                    let wanted = match method {
                        // A shared server's resource updates go to the sessions subscribed to that resource.
                        "notifications/resources/updated" if only.is_none() => {
                            let uri = params["uri"].as_str().unwrap_or_default();
                            runtime.is_subscribed(&server, uri, session.id())
                        }
                        // Logs go to sessions whose level lets them through.
                        "notifications/message" => {
                            let level = params["level"].as_str().and_then(log_level_index).unwrap_or(0);
                            session.log_level().is_none_or(|wanted| level >= wanted)
                        }
                        _ => true,
                    };
                    if wanted {
                        session.push(message.clone());
                    }
                }
            }
            UpstreamEvent::ServerRequest { conn, message } => {
                // No request of a client is in flight on that server: the most recently active session asks.
                let target = audience.iter().max_by_key(|s| s.last_active());
                match target {
                    Some(session) => session.push_server_request(conn, message),
                    None => {
                        if let Some(id) = message.get("id").cloned() {
                            conn.notify(jsonrpc::error(id, jsonrpc::INTERNAL_ERROR, "no client is connected"))
                                .await;
                        }
                    }
                }
            }
            UpstreamEvent::Closed {
                server,
                conn,
                reason,
                stderr,
            } => {
                if only.is_some() {
                    // A per-session server starts again on its session's next use.
                    tracing::warn!(profile = %runtime.slug, %server, "server stopped: {reason}{stderr}");
                    continue;
                }
                let Some(slot) = runtime.slot(&server) else { continue };
                let Some((wait, in_a_row)) = slot.shared.crashed(conn).await else {
                    continue; // stopped on purpose (idle, profile edited), or already replaced
                };
                if in_a_row >= 3 {
                    tracing::error!(
                        profile = %runtime.slug, %server,
                        "server keeps crashing ({in_a_row} times in a row): {reason}{stderr}"
                    );
                } else {
                    tracing::warn!(profile = %runtime.slug, %server, "server crashed: {reason}{stderr}");
                }
                // Its tools are hidden while it is down; clients hear of it now and again when it is back.
                lock(&runtime.routes).forget_server(&server);
                runtime.notify_lists_changed();
                tokio::spawn(restart_after(Arc::downgrade(&runtime), server, wait));
            }
        }
    }
}

/// Starts a crashed shared server again once its backoff has passed, and tells clients it is back.
async fn restart_after(runtime: Weak<Runtime>, server: ServerName, wait: Duration) {
    tokio::time::sleep(wait).await;
    let Some(runtime) = runtime.upgrade() else { return };
    let Some(slot) = runtime.slot(&server) else { return };
    match slot
        .shared
        .get_or_start(&slot.def, &runtime.deps, &runtime.events, &runtime.slug)
        .await
    {
        Ok(_) => {
            tracing::info!(profile = %runtime.slug, %server, "server restarted");
            runtime.notify_lists_changed();
        }
        Err(e) => tracing::warn!(profile = %runtime.slug, %server, "restart failed: {e}"),
    }
}

/// Starts a server on its own and lists every tool and prompt name it has (for refusing collisions when a
/// profile is edited).
pub async fn probe_names(def: &ServerDef, deps: &Deps) -> Result<Vec<(ListKind, String)>, String> {
    let (events, _rx) = mpsc::unbounded_channel();
    let conn = Conn::start(def, &deps.launcher, &deps.http, events, &[], None, &deps.logs)
        .await
        .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for kind in [ListKind::Tools, ListKind::Prompts] {
        if !conn.has_capability(kind.capability()) {
            continue;
        }
        let mut cursor: Option<Value> = None;
        for _ in 0..1000 {
            let params = cursor.take().map(|c| serde_json::json!({ "cursor": c }));
            let Reply::Message(reply) = conn.request(kind.method(), params, None).reply().await else {
                return Err(format!("{} was cancelled", kind.method())); // nothing here cancels
            };
            let Some(result) = reply.get("result") else {
                return Err(format!("{} failed: {}", kind.method(), reply["error"]));
            };
            for item in result.get(kind.field()).and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = item.get("name").and_then(Value::as_str) {
                    names.push((kind, name.to_owned()));
                }
            }
            match result.get("nextCursor").filter(|c| !c.is_null()) {
                Some(next) => cursor = Some(next.clone()),
                None => break,
            }
        }
    }
    Ok(names)
}
