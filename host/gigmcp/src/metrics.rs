//! `GIG_METRICS_LISTEN`: `/metrics` in the Prometheus text format, on a listener of its own (off by default),
//! so that it is never served with the API by accident. The counters are the registry's
//! (`gigmcp-metrics`: tool calls, denials, egress, sandbox starts and crashes, plugin calls, failures and
//! fuel, dropped audit events); the gauges are read at each scrape (sandboxes running and their memory,
//! quarantined plugins).

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use gigmcp_control::RunningServers;
use gigmcp_metrics::{render_counter, render_gauge};
use gigmcp_plugin_runtime::PluginHost;

pub struct Sources {
    pub running: Arc<dyn RunningServers>,
    pub plugins: Arc<PluginHost>,
}

/// The text a scrape gets.
pub fn render(sources: &Sources) -> String {
    let mut out = String::new();
    gigmcp_metrics::global().render(&mut out);
    let statuses = sources.running.sandbox_statuses();
    let mut running: std::collections::BTreeMap<(String, String), (f64, f64, f64)> = Default::default();
    for status in &statuses {
        let entry = running
            .entry((status.server.clone(), status.profile.clone()))
            .or_default();
        entry.0 += 1.0;
        entry.1 += status.memory_bytes.unwrap_or(0) as f64;
        entry.2 += f64::from(status.restarts);
    }
    let by = |f: fn(&(f64, f64, f64)) -> f64| -> Vec<(Vec<(&'static str, String)>, f64)> {
        running
            .iter()
            .map(|((server, profile), v)| (vec![("server", server.clone()), ("profile", profile.clone())], f(v)))
            .collect()
    };
    render_gauge(
        &mut out,
        "gigmcp_sandboxes_running",
        "Sandboxes running now, by server and profile.",
        &by(|v| v.0),
    );
    render_gauge(
        &mut out,
        "gigmcp_sandbox_memory_bytes",
        "Memory the running sandboxes use now (their cgroups), by server and profile.",
        &by(|v| v.1),
    );
    let loaded = sources.plugins.loaded();
    render_gauge(
        &mut out,
        "gigmcp_plugin_quarantined",
        "1 for a plugin quarantined after consecutive failures (its calls fail closed), else 0.",
        &loaded
            .iter()
            .map(|p| {
                (
                    vec![("plugin", p.name.to_string())],
                    if p.is_quarantined() { 1.0 } else { 0.0 },
                )
            })
            .collect::<Vec<_>>(),
    );
    render_counter(
        &mut out,
        "gigmcp_plugin_lost_events_total",
        "Events an audit-sink plugin's queue dropped, by plugin.",
        &loaded
            .iter()
            .map(|p| (vec![("plugin", p.name.to_string())], p.stats().lost_events as f64))
            .collect::<Vec<_>>(),
    );
    out
}

/// Serves `/metrics` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, sources: Sources) {
    let sources = Arc::new(sources);
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let sources = sources.clone();
            async move {
                let body = tokio::task::spawn_blocking(move || render(&sources))
                    .await
                    .unwrap_or_default();
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    body,
                )
                    .into_response()
            }
        }),
    );
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("the metrics listener stopped: {e}");
    }
}
