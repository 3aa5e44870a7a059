//! The gateway's live state: profile runtimes, client sessions, and the watcher that applies CLI edits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::runtime::{Deps, Runtime};
use crate::session::Session;
use gigmcp_store::{Store, StoreError};
use gigmcp_types::ids::ProfileId;
use gigmcp_types::sync::{lock, now_secs};

/// How often the database is checked for edits made by the CLI.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// A client session unused for this long is closed.
const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The status file: what a running gateway reports for `gigmcp server status`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// Seconds since the epoch; a file older than a few seconds means no gateway is running.
    pub updated_at: u64,
    pub gateway_pid: u32,
    pub sandboxes: Vec<gigmcp_types::server::SandboxStatus>,
}

pub struct Gateway {
    pub store: Arc<Store>,
    /// Where the gateway reports its running sandboxes for `gigmcp server status`.
    status_file: Option<std::path::PathBuf>,
    deps: Arc<Deps>,
    runtimes: Mutex<HashMap<ProfileId, Arc<Runtime>>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Gateway {
    pub fn new(store: Arc<Store>, deps: Deps, status_file: Option<std::path::PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            store,
            status_file,
            deps: Arc::new(deps),
            runtimes: Mutex::default(),
            sessions: Mutex::default(),
        })
    }

    /// The runtime of a profile, made on first use (making one starts nothing).
    pub fn runtime(&self, profile: ProfileId) -> Result<Arc<Runtime>, StoreError> {
        if let Some(runtime) = lock(&self.runtimes).get(&profile) {
            return Ok(runtime.clone());
        }
        let config = self
            .store
            .profile_configs()?
            .into_iter()
            .find(|p| p.id == profile)
            .ok_or_else(|| StoreError::Corrupt("profile vanished".into()))?;
        let mut runtimes = lock(&self.runtimes);
        Ok(runtimes
            .entry(profile)
            .or_insert_with(|| Runtime::new(&config, self.deps.clone()))
            .clone())
    }

    /// Runs one request on a profile exactly as a client session would (the same servers, mcp-filter plugins
    /// and audit), in a session of its own that ends with the request: the dashboard's tool playground.
    /// `actor` is who the audit log names (`user:<id>`). Gives the JSON-RPC reply (`result` or `error`).
    pub async fn one_request(
        &self,
        profile: ProfileId,
        actor: String,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        let runtime = self.runtime(profile)?;
        let session = Session::with_actor(
            runtime,
            crate::LATEST_PROTOCOL_VERSION.to_owned(),
            serde_json::json!({}),
            actor,
        );
        // Nothing is related to the request but its reply: a server's requests to the client (sampling,
        // elicitation) find no one, as the session declares no capability for them.
        let (related, _unrelated) = tokio::sync::mpsc::unbounded_channel();
        let mut body = serde_json::Map::new();
        body.insert("params".into(), params);
        let reply = session
            .handle_request(serde_json::json!(1), method, body, crate::upstream::Origin { related })
            .await;
        session.runtime.remove_session(&session.id);
        Ok(match reply {
            crate::upstream::Reply::Message(message) => message,
            crate::upstream::Reply::Cancelled => crate::jsonrpc::error(
                serde_json::json!(1),
                crate::jsonrpc::INTERNAL_ERROR,
                "the request was cancelled",
            ),
        })
    }

    /// The tools of a profile that mcp-filter plugins hid from its last listed tools: exposed name, server,
    /// the server's own name and the plugins that changed the list. Empty while the profile has not run.
    pub fn hidden_tools(&self, profile: ProfileId) -> Vec<(String, crate::aggregate::Hidden)> {
        match lock(&self.runtimes).get(&profile) {
            Some(runtime) => lock(&runtime.routes).all_hidden(crate::aggregate::ListKind::Tools),
            None => Vec::new(),
        }
    }

    pub fn add_session(&self, session: Arc<Session>) {
        lock(&self.sessions).insert(session.id.clone(), session);
    }

    /// A session of this profile; another profile's session is as unknown as a made-up id.
    pub fn session(&self, profile: ProfileId, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(id).filter(|s| s.profile == profile).cloned()
    }

    pub fn remove_session(&self, id: &str) -> Option<Arc<Session>> {
        let session = lock(&self.sessions).remove(id)?;
        session.runtime.remove_session(id);
        Some(session)
    }

    /// Ends every client session (their streams close).
    pub fn close_sessions(&self) {
        let sessions: Vec<Arc<Session>> = lock(&self.sessions).drain().map(|(_, s)| s).collect();
        for session in &sessions {
            session.runtime.remove_session(&session.id);
        }
    }

    /// Ends every session and server, then removes the sandboxes' firewall rules and interfaces.
    pub async fn shutdown(&self) {
        self.close_sessions();
        let runtimes: Vec<Arc<Runtime>> = lock(&self.runtimes).drain().map(|(_, r)| r).collect();
        drop(runtimes);
        self.deps.launcher.shutdown().await;
    }

    /// Restarts a server wherever it runs now: its shared processes with nothing in flight are stopped and
    /// start again on next use. Returns how many were stopped.
    /// Every server's log.
    pub fn logs(&self) -> &Arc<crate::logs::ServerLogs> {
        &self.deps.logs
    }

    pub fn restart_server(&self, server: &gigmcp_types::names::ServerName) -> usize {
        let runtimes: Vec<Arc<Runtime>> = lock(&self.runtimes).values().cloned().collect();
        let mut stopped = 0;
        for runtime in runtimes {
            if let Some(slot) = runtime.slot(server)
                && slot.shared.stop_if_idle(Duration::ZERO)
            {
                tracing::info!(profile = %runtime.slug, server = %server, "server restarted");
                stopped += 1;
            }
        }
        stopped
    }

    /// The running sandboxes of every profile (what `gigmcp server status` shows).
    pub fn sandbox_statuses(&self) -> Vec<gigmcp_types::server::SandboxStatus> {
        let runtimes: Vec<Arc<Runtime>> = lock(&self.runtimes).values().cloned().collect();
        runtimes.iter().flat_map(|r| r.sandbox_statuses()).collect()
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Applies edits to profiles: a deleted profile's runtime and sessions end; an edited one is reconfigured.
    fn apply_changes(&self) -> Result<(), StoreError> {
        let configs = self.store.profile_configs()?;
        let runtimes: Vec<Arc<Runtime>> = lock(&self.runtimes).values().cloned().collect();
        for runtime in runtimes {
            match configs.iter().find(|c| c.id == runtime.profile) {
                Some(config) if config.servers != runtime.servers() => runtime.reconfigure(config),
                Some(_) => {}
                None => self.tear_down(runtime.profile),
            }
        }
        Ok(())
    }

    /// Writes the running sandboxes to the status file (atomically: write, then rename).
    pub async fn write_status(&self, runtimes: &[Arc<Runtime>]) {
        let Some(path) = self.status_file.clone() else { return };
        let sandboxes: Vec<_> = runtimes.iter().flat_map(|r| r.sandbox_statuses()).collect();
        let status = Status {
            updated_at: u64::try_from(now_secs()).unwrap_or(0),
            gateway_pid: std::process::id(),
            sandboxes,
        };
        let written = tokio::task::spawn_blocking(move || {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&status)?)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if let Ok(Err(e)) = written {
            tracing::warn!("cannot write the status file: {e}");
        }
    }

    fn tear_down(&self, profile: ProfileId) {
        let Some(runtime) = lock(&self.runtimes).remove(&profile) else {
            return;
        };
        lock(&self.sessions).retain(|_, s| s.profile != profile);
        tracing::info!(profile = %runtime.slug, "profile deleted; its servers and sessions are gone");
    }

    fn expire_idle_sessions(&self) {
        let expired: Vec<String> = lock(&self.sessions)
            .values()
            .filter(|s| s.last_active().elapsed() > SESSION_IDLE_TIMEOUT)
            .map(|s| s.id.clone())
            .collect();
        for id in expired {
            self.remove_session(&id);
        }
    }

    /// Watches the database for edits made by the CLI and applies them within a second.
    pub async fn watch(self: Arc<Self>) {
        let mut seen = self.store.data_version().ok();
        let mut ticks: u64 = 0;
        loop {
            tokio::time::sleep(WATCH_INTERVAL).await;
            ticks += 1;
            if ticks.is_multiple_of(240) {
                self.expire_idle_sessions();
            }
            if ticks.is_multiple_of(4) {
                let runtimes: Vec<Arc<Runtime>> = lock(&self.runtimes).values().cloned().collect();
                for runtime in &runtimes {
                    runtime.stop_idle_servers(self.deps.idle_timeout);
                }
                self.write_status(&runtimes).await;
            }
            let gateway = self.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let version = gateway.store.data_version()?;
                if Some(version) != seen {
                    gateway.apply_changes()?;
                }
                Ok::<_, StoreError>(version)
            })
            .await;
            match outcome {
                Ok(Ok(version)) => seen = Some(version),
                Ok(Err(e)) => tracing::error!("cannot read profile changes: {e}"),
                Err(e) => tracing::error!("profile watcher failed: {e}"),
            }
        }
    }
}
