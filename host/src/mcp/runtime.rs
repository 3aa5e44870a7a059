//! A profile's runtime: its servers, the routing table, and its client sessions.
//!
//! One runtime per profile, made on the profile's first request. A stdio server is one process shared by
//! the profile's sessions (a profile is one principal); a `per-session` server and every HTTP upstream get
//! one upstream session per client session. Starting a server is coalesced: concurrent first uses wait for
//! one start.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, Weak};

use serde_json::Value;
use tokio::sync::mpsc;

use super::aggregate::{ListKind, Routes};
use super::jsonrpc;
use super::session::Session;
use super::upstream::{Conn, UpstreamEvent};
use crate::names::{ProfileSlug, ServerName};
use crate::sandbox::Launcher;
use crate::servers::{ServerDef, ServerSpec};
use crate::store::{ProfileConfig, ProfileId};

/// What every runtime shares: how to start servers.
pub struct Deps {
    pub launcher: Launcher,
    pub http: reqwest::Client,
}

/// A slot for one upstream connection, started on first use; concurrent first uses wait for one start.
#[derive(Default)]
pub struct ConnCell {
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    /// Why the last start failed, while it has not started since.
    last_error: Mutex<Option<String>>,
}

impl ConnCell {
    pub async fn get_or_start(
        &self,
        def: &ServerDef,
        deps: &Deps,
        events: &mpsc::UnboundedSender<UpstreamEvent>,
    ) -> Result<Arc<Conn>, String> {
        let mut guard = self.conn.lock().await;
        if let Some(conn) = guard.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        match Conn::start(def, &deps.launcher, &deps.http, events.clone()).await {
            Ok(conn) => {
                tracing::info!(server = %def.name, "server started");
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
        self.conn.try_lock().ok().and_then(|g| g.clone()).filter(|c| !c.is_closed())
    }

    /// Why the server could not be started last time, if it could not.
    pub fn start_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
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
    sessions: Mutex<HashMap<String, Weak<Session>>>,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    pub fn add_session(&self, session: &Arc<Session>) {
        lock(&self.sessions).insert(session.id.clone(), Arc::downgrade(session));
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
                conn.request(conn.next_request_id(), "resources/unsubscribe", Some(params), None)
                    .await;
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

    pub fn sessions(&self) -> Vec<Arc<Session>> {
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
        for session in self.sessions() {
            for method in [
                "notifications/tools/list_changed",
                "notifications/prompts/list_changed",
                "notifications/resources/list_changed",
            ] {
                session.push(jsonrpc::notification(method, None));
            }
        }
        tracing::info!(profile = %self.slug, "profile changed; clients notified");
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
    only: Option<Weak<Session>>,
    mut rx: mpsc::UnboundedReceiver<UpstreamEvent>,
) {
    while let Some(event) = rx.recv().await {
        let Some(runtime) = runtime.upgrade() else {
            return;
        };
        let audience: Vec<Arc<Session>> = match &only {
            Some(session) => match session.upgrade() {
                Some(s) => vec![s],
                None => return,
            },
            None => runtime.sessions(),
        };
        match event {
            UpstreamEvent::Notification { server, message } => {
                let method = message.get("method").and_then(Value::as_str).unwrap_or_default();
                if method.ends_with("/list_changed") && method != "notifications/roots/list_changed" {
                    lock(&runtime.routes).forget_server(&server);
                }
                let params = &message["params"];
                for session in &audience {
                    let wanted = match method {
                        // A shared server's resource updates go to the sessions subscribed to that resource.
                        "notifications/resources/updated" if only.is_none() => {
                            let uri = params["uri"].as_str().unwrap_or_default();
                            runtime.is_subscribed(&server, uri, &session.id)
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
            UpstreamEvent::Closed { server, reason } => {
                tracing::warn!(profile = %runtime.slug, %server, "server stopped: {reason}");
            }
        }
    }
}

/// Starts a server on its own and lists every tool and prompt name it has (for refusing collisions when a
/// profile is edited).
pub async fn probe_names(def: &ServerDef, deps: &Deps) -> Result<Vec<(ListKind, String)>, String> {
    let (events, _rx) = mpsc::unbounded_channel();
    let conn = Conn::start(def, &deps.launcher, &deps.http, events)
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
            let reply = conn.request(conn.next_request_id(), kind.method(), params, None).await;
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
