//! The audit log of record, and copies of it routed by audit-sink plugins to exporters.
//!
//! Every event is written to SQLite by the host (`record` never blocks the caller: a writer task batches the
//! inserts). A forwarder follows the log (events the CLI wrote too) and hands each bound audit sink its own
//! queue of events; the sink's deliveries go to the exporters: `stdout` (one JSON line per event),
//! `file:<name>` (`<data_dir>/audit/<name>.jsonl`) and `webhook:<name>` (an HTTPS endpoint registered with
//! `gigmcp plugin webhook add`, POSTed a JSON array, retried). A sink that fails never blocks anything: its
//! batch is retried with backoff; events beyond the bounded queue, or still failing after the retries, are
//! counted as lost on the sink's statistics (`gigmcp plugin inspect`) and logged. The log of record loses
//! nothing. The forwarder saves how far every sink has been served, so copies pending when the gateway stops
//! are delivered after it restarts (at least once: a batch in flight at the stop may be delivered twice).
//!
//! The one writer of audit events: every recorder (egress, mcp, ops, control, the CLI through `write_now`)
//! hands its events here. Depends on the vocabulary, the store and the plugin runtime; must never depend on
//! the data plane (egress, mcp), ops, control or the binary.

#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use gigmcp_plugin_runtime::PluginHost;
use gigmcp_plugin_runtime::loaded::LoadedPlugin;
use gigmcp_store::{Store, StoreError};
use gigmcp_types::audit::AuditEvent;
use gigmcp_types::audit::NewAuditEvent;
use gigmcp_types::ids::PluginId;
use gigmcp_types::policy::Delivery;

/// Events waiting for one sink, at most.
const SINK_QUEUE: usize = 10_000;
/// Events per call of a sink.
const BATCH: usize = 256;
/// Attempts per batch before its events count as lost.
const ATTEMPTS: u32 = 5;
const TICK: Duration = Duration::from_millis(250);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Writes audit events to the log of record. Cheap to clone; `record` never blocks.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::UnboundedSender<NewAuditEvent>,
}

impl AuditLog {
    /// Starts the writer and the forwarder on the current tokio runtime.
    pub fn start(store: Arc<Store>, plugins: Arc<PluginHost>, data_dir: PathBuf) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        // Resume where the last run stopped (copies not yet delivered then are delivered now, perhaps twice);
        // on a fresh database, from now.
        let cursor = match store.audit_forwarded_through() {
            Ok(Some(id)) => id,
            _ => store.audit_events_max_id().unwrap_or(0),
        };
        tokio::spawn(write_events(store.clone(), rx));
        let forwarder = Forwarder {
            store: store.clone(),
            plugins,
            exporters: Exporters {
                store,
                data_dir,
                http: reqwest::Client::builder()
                    .timeout(WEBHOOK_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default(),
            },
            cursor,
            saved: None,
            queues: HashMap::new(),
        };
        tokio::spawn(forwarder.run());
        Self { tx }
    }

    /// Records an event in the log of record (and, through the sinks, its copies), and counts it in the
    /// operator's metrics.
    pub fn record(&self, event: NewAuditEvent) {
        count(&event);
        if self.tx.send(event).is_err() {
            gigmcp_metrics::global().inc(
                "gigmcp_audit_events_dropped_total",
                "Audit events that could not be recorded (the writer had stopped).",
                &[],
            );
            tracing::error!("the audit writer has stopped; an audit event was not recorded");
        }
    }
}

/// The metrics an audit event stands for: tool calls (by profile, server and outcome, with their latency),
/// denials (by what was denied and the plugin that denied it), egress requests and bytes, refused tunnels.
fn count(event: &NewAuditEvent) {
    let metrics = gigmcp_metrics::global();
    let profile = event.profile.as_deref().unwrap_or("");
    let server = event.server.as_deref().unwrap_or("");
    let outcome = event.outcome.as_str();
    if event.outcome == gigmcp_types::audit::Outcome::Deny {
        let plugin = event.detail.get("plugin").and_then(|p| p.as_str()).unwrap_or("");
        metrics.inc(
            "gigmcp_denials_total",
            "Requests refused by policy or a check of the gateway, by event kind and deciding plugin.",
            &[
                ("kind", &event.kind),
                ("profile", profile),
                ("server", server),
                ("plugin", plugin),
            ],
        );
    }
    match event.kind.as_str() {
        "mcp.tool_call" => {
            metrics.inc(
                "gigmcp_tool_calls_total",
                "Tool calls through the gateway, by profile, server and outcome (ok, deny, error, tool_error).",
                &[("profile", profile), ("server", server), ("outcome", outcome)],
            );
            if let Some(ms) = event.detail.get("duration_ms").and_then(|d| d.as_f64()) {
                metrics.observe(
                    "gigmcp_tool_call_duration_seconds",
                    "How long tool calls took at the gateway, policy included, by profile and server.",
                    &[("profile", profile), ("server", server)],
                    ms / 1000.0,
                );
            }
        }
        "egress.request" => {
            let decision = event.detail.get("decision").and_then(|d| d.as_str()).unwrap_or("");
            metrics.inc(
                "gigmcp_egress_requests_total",
                "HTTP requests from sandboxes through the egress proxy, by server and decision (allow, deny, error).",
                &[("server", server), ("decision", decision)],
            );
            for (direction, field) in [("up", "bytes_up"), ("down", "bytes_down")] {
                if let Some(bytes) = event.detail.get(field).and_then(|b| b.as_u64()) {
                    metrics.add(
                        "gigmcp_egress_bytes_total",
                        "Body bytes through the egress proxy, by server and direction (up: to the upstream).",
                        &[("server", server), ("direction", direction)],
                        bytes as f64,
                    );
                }
            }
        }
        "egress.connect" => metrics.inc(
            "gigmcp_egress_connects_refused_total",
            "Tunnels the egress proxy refused to open, by server.",
            &[("server", server)],
        ),
        _ => {}
    }
}

/// Writes one event to the log of record at once, for a process with no running gateway (the CLI); a running
/// gateway's forwarder delivers its copies to the sinks. Every event, whoever records it, reaches the log of
/// record through this crate: [`AuditLog::record`] or this.
pub fn write_now(store: &Store, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
    let mut written = store.audit_append(&[event])?;
    written
        .pop()
        .ok_or_else(|| StoreError::Corrupt("the audit log wrote no event".into()))
}

async fn write_events(store: Arc<Store>, mut rx: mpsc::UnboundedReceiver<NewAuditEvent>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let events = std::mem::take(&mut batch);
        let store = store.clone();
        let written = tokio::task::spawn_blocking(move || store.audit_append(&events)).await;
        match written {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("cannot write audit events to the log of record: {e}"),
            Err(e) => tracing::error!("the audit writer failed: {e}"),
        }
    }
}

/// One sink's pending events and retry state.
#[derive(Default)]
struct SinkQueue {
    events: VecDeque<AuditEvent>,
    attempts: u32,
    not_before: Option<Instant>,
}

struct Forwarder {
    store: Arc<Store>,
    plugins: Arc<PluginHost>,
    exporters: Exporters,
    /// The newest event read from the log.
    cursor: i64,
    /// What was last saved as delivered to every sink.
    saved: Option<i64>,
    queues: HashMap<PluginId, SinkQueue>,
}

impl Forwarder {
    async fn run(mut self) {
        let mut interval = tokio::time::interval(TICK);
        loop {
            interval.tick().await;
            self.tick().await;
        }
    }

    async fn tick(&mut self) {
        let sinks = self.plugins.audit_sinks();
        self.queues.retain(|id, _| sinks.iter().any(|s| s.id == *id));
        let store = self.store.clone();
        let cursor = self.cursor;
        let new = tokio::task::spawn_blocking(move || store.audit_events(cursor, SINK_QUEUE))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        if let Some(last) = new.last() {
            self.cursor = last.id;
        }
        for sink in &sinks {
            let queue = self.queues.entry(sink.id).or_default();
            queue.events.extend(new.iter().cloned());
            let overflow = queue.events.len().saturating_sub(SINK_QUEUE);
            if overflow > 0 {
                queue.events.drain(..overflow);
                lose(sink, overflow, "its queue is full");
            }
        }
        for sink in &sinks {
            self.drain(sink).await;
        }
        self.save_progress().await;
    }

    /// Saves the id through which every sink has had every event, so a restart resumes there.
    async fn save_progress(&mut self) {
        let pending = self
            .queues
            .values()
            .filter_map(|q| q.events.front())
            .map(|e| e.id - 1)
            .min();
        let through = pending.unwrap_or(self.cursor);
        if self.saved == Some(through) {
            return;
        }
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.set_audit_forwarded_through(through)).await {
            Ok(Ok(())) => self.saved = Some(through),
            Ok(Err(e)) => tracing::warn!("cannot save the audit forwarding position: {e}"),
            Err(e) => tracing::warn!("cannot save the audit forwarding position: {e}"),
        }
    }

    /// Routes the sink's pending events, a batch at a time, until they are done or a batch fails.
    async fn drain(&mut self, sink: &Arc<LoadedPlugin>) {
        let Some(queue) = self.queues.get_mut(&sink.id) else {
            return;
        };
        if queue.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        while !queue.events.is_empty() {
            let n = queue.events.len().min(BATCH);
            let batch: Vec<AuditEvent> = queue.events.iter().take(n).cloned().collect();
            let routed = self.plugins.route_audit(sink, &batch).await;
            let error = match routed {
                Ok(Ok(deliveries)) => {
                    self.exporters.deliver(sink, deliveries).await;
                    queue.events.drain(..n);
                    queue.attempts = 0;
                    queue.not_before = None;
                    continue;
                }
                Ok(Err(reason)) => reason.to_string(),
                Err(failure) => failure.to_string(),
            };
            queue.attempts += 1;
            if queue.attempts >= ATTEMPTS {
                queue.events.drain(..n);
                queue.attempts = 0;
                lose(sink, n, &format!("it failed {ATTEMPTS} times: {error}"));
            } else {
                let backoff = TICK * 2u32.pow(queue.attempts);
                queue.not_before = Some(Instant::now() + backoff);
                tracing::warn!(plugin = %sink.name, "audit sink failed; retrying in {backoff:?}: {error}");
                return;
            }
        }
    }
}

fn lose(sink: &LoadedPlugin, n: usize, why: &str) {
    sink.add_lost_events(n as u64);
    tracing::error!(
        plugin = %sink.name,
        lost = n,
        "audit copies lost for this sink because {why}; the log of record still has them"
    );
}

/// Where copies go.
struct Exporters {
    store: Arc<Store>,
    data_dir: PathBuf,
    http: reqwest::Client,
}

/// An exporter, parsed from a sink's destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Destination {
    Stdout,
    File(String),
    Webhook(String),
}

fn exporter_name(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    valid.then(|| name.to_owned())
}

impl Destination {
    fn parse(text: &str) -> Option<Self> {
        if text == "stdout" {
            return Some(Destination::Stdout);
        }
        if let Some(name) = text.strip_prefix("file:") {
            return exporter_name(name).map(Destination::File);
        }
        text.strip_prefix("webhook:")
            .and_then(exporter_name)
            .map(Destination::Webhook)
    }
}

impl Exporters {
    async fn deliver(&self, sink: &LoadedPlugin, deliveries: Vec<Delivery>) {
        let mut by_destination: HashMap<Destination, Vec<AuditEvent>> = HashMap::new();
        for delivery in deliveries {
            match Destination::parse(&delivery.destination) {
                Some(destination) => by_destination.entry(destination).or_default().push(delivery.event),
                None => lose(sink, 1, &format!("{:?} is not an exporter", delivery.destination)),
            }
        }
        for (destination, events) in by_destination {
            let n = events.len();
            if let Err(e) = self.export(&destination, &events).await {
                lose(sink, n, &format!("exporting to {destination:?} failed: {e}"));
            }
        }
    }

    async fn export(&self, destination: &Destination, events: &[AuditEvent]) -> Result<(), String> {
        match destination {
            Destination::Stdout => {
                let mut out = std::io::stdout().lock();
                for event in events {
                    let line = serde_json::to_string(event).map_err(|e| e.to_string())?;
                    writeln!(out, "{line}").map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Destination::File(name) => {
                let dir = self.data_dir.join("audit");
                let path = dir.join(format!("{name}.jsonl"));
                let mut text = String::new();
                for event in events {
                    text.push_str(&serde_json::to_string(event).map_err(|e| e.to_string())?);
                    text.push('\n');
                }
                tokio::task::spawn_blocking(move || append_private(&dir, &path, text.as_bytes()))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())
            }
            Destination::Webhook(name) => {
                let url = self
                    .webhook_url(name)
                    .await
                    .ok_or_else(|| format!("no webhook named {name}; add it with `gigmcp plugin webhook add`"))?;
                let mut last = String::new();
                for attempt in 0..3u32 {
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(500) * 2u32.pow(attempt - 1)).await;
                    }
                    match self.http.post(&url).json(events).send().await {
                        Ok(response) if response.status().is_success() => return Ok(()),
                        Ok(response) => last = format!("the webhook answered {}", response.status()),
                        Err(e) => last = format!("the webhook is unreachable: {e}"),
                    }
                }
                Err(last)
            }
        }
    }

    /// The registered webhook's URL (read per delivery, so `gigmcp plugin webhook add` applies at once).
    async fn webhook_url(&self, name: &str) -> Option<String> {
        let store = self.store.clone();
        let hooks = tokio::task::spawn_blocking(move || store.audit_webhooks())
            .await
            .ok()?
            .ok()?;
        hooks.into_iter().find(|(n, _)| n == name).map(|(_, url)| url)
    }
}

/// Appends to a file only the gateway's user can read.
fn append_private(dir: &std::path::Path, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// Checks a webhook URL before it is registered: HTTPS, or HTTP to a loopback address (a collector on the
/// gateway's own host). Audit copies never go to plaintext endpoints across a network.
pub fn check_webhook_url(text: &str) -> Result<String, WebhookUrlError> {
    let url = url::Url::parse(text).map_err(|e| WebhookUrlError::NotAUrl(text.to_owned(), e.to_string()))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url.to_string()),
        "http" if loopback => Ok(url.to_string()),
        _ => Err(WebhookUrlError::Plaintext(text.to_owned())),
    }
}

/// A webhook URL refused before it is registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    #[error("{0:?} is not a URL: {1}")]
    NotAUrl(String, String),
    #[error("{0:?}: a webhook must be https:// (or http:// to a loopback address)")]
    Plaintext(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_events_count_requests_bytes_and_refused_tunnels() {
        let event = |kind: &str, outcome, detail| NewAuditEvent {
            kind: kind.into(),
            actor: "server:metered".into(),
            profile: Some("p".into()),
            server: Some("metered".into()),
            outcome,
            detail,
        };
        count(&event(
            "egress.request",
            gigmcp_types::audit::Outcome::Ok,
            serde_json::json!({"decision": "allow", "bytes_up": 10, "bytes_down": 300}),
        ));
        count(&event(
            "egress.request",
            gigmcp_types::audit::Outcome::Ok,
            serde_json::json!({"decision": "allow", "bytes_up": 5, "bytes_down": 0}),
        ));
        count(&event(
            "egress.connect",
            gigmcp_types::audit::Outcome::Deny,
            serde_json::json!({"plugin": "egress-allowlist"}),
        ));
        let mut out = String::new();
        gigmcp_metrics::global().render(&mut out);
        for line in [
            r#"gigmcp_egress_requests_total{server="metered",decision="allow"} 2"#,
            r#"gigmcp_egress_bytes_total{server="metered",direction="up"} 15"#,
            r#"gigmcp_egress_bytes_total{server="metered",direction="down"} 300"#,
            r#"gigmcp_egress_connects_refused_total{server="metered"} 1"#,
            r#"gigmcp_denials_total{kind="egress.connect",profile="p",server="metered",plugin="egress-allowlist"} 1"#,
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in:\n{out}");
        }
    }

    #[test]
    fn destinations_are_exporters_by_name() {
        assert_eq!(Destination::parse("stdout"), Some(Destination::Stdout));
        assert_eq!(
            Destination::parse("file:denials"),
            Some(Destination::File("denials".into()))
        );
        assert_eq!(
            Destination::parse("webhook:siem"),
            Some(Destination::Webhook("siem".into()))
        );
        for bad in ["file:../etc/passwd", "file:", "https://x", "webhook:A", "stderr"] {
            assert_eq!(Destination::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn webhooks_are_https_or_loopback() {
        assert!(check_webhook_url("https://siem.example.com/in").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:9000/in").is_ok());
        assert!(check_webhook_url("http://siem.example.com/in").is_err());
        assert!(check_webhook_url("ftp://x").is_err());
    }
}
