//! Loading what the database says into the running gateway, and keeping it current.
//!
//! `reload` reads the enabled plugins and their bindings, loads what changed (a new revision, or a new
//! generation after `enable`), keeps what did not (with its warm instances), and swaps the whole set at once.
//! A component that fails to load in the gateway (its stored bytes do not match their hash, say) keeps the
//! plugin's previous revision running if there is one; otherwise the plugin is bound but unavailable, which
//! fails closed for policy kinds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::path::Path;

use crate::defaults;
use crate::defaults::{Defaults, DefaultsError};
use gigmcp_plugin_runtime::artifacts::{ArtifactCache, CacheKey};
use gigmcp_plugin_runtime::dispatch::{Active, Chain, PluginHost};
use gigmcp_plugin_runtime::loaded::{LoadKey, LoadedPlugin};
use gigmcp_plugin_runtime::since_v0_1_0::WorldPre;
use gigmcp_plugin_runtime::{Limits, LoadError, Runtime};
use gigmcp_store::Store;
use gigmcp_store::plugins::{PluginRecord, PluginStoreError};
use gigmcp_types::ids::PluginId;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::secret::MasterKey;

/// What a reload did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    pub kept: usize,
    pub failed: Vec<(String, String)>,
}

/// Why the plugin host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Runtime(#[from] LoadError),
    #[error("{0}")]
    Defaults(#[from] DefaultsError),
    #[error("{0}")]
    Store(#[from] PluginStoreError),
}

/// The plugin host of a running gateway: compiled components cached in `cache_dir` (authenticated with
/// a key derived from the master key, so a cache shared between gateways of one key is safe), the default
/// plugins installed on first start, and every enabled plugin loaded. Follow the database with `watch`
/// (or call `reload`).
pub async fn start(
    store: &Store,
    cache_dir: &Path,
    master_key: &MasterKey,
    defaults: Defaults,
) -> Result<Arc<PluginHost>, StartError> {
    let cache = ArtifactCache::on_disk(cache_dir.to_path_buf(), CacheKey::derive(master_key));
    let runtime = Runtime::new(cache, Limits::default())?;
    defaults::install(&runtime, store, defaults).await?;
    let host = Arc::new(PluginHost::new(runtime));
    reload(&host, store).await?;
    Ok(host)
}

/// Brings the loaded plugins in line with the database. Cheap when nothing changed; compiles new
/// components off the async runtime.
pub async fn reload(host: &PluginHost, store: &Store) -> Result<ReloadReport, PluginStoreError> {
    let records = store.plugins()?;
    let bindings = store.plugin_bindings()?;
    let current = host.active();
    let mut report = ReloadReport::default();
    let mut plugins: HashMap<PluginId, Arc<LoadedPlugin>> = HashMap::new();
    for record in records.into_iter().filter(|r| r.enabled) {
        let key = LoadKey {
            revision: record.revision.id,
            generation: record.generation,
        };
        let previous = current.plugins.get(&record.id);
        if let Some(previous) = previous.filter(|p| p.key == key) {
            plugins.insert(record.id, previous.clone());
            report.kept += 1;
            continue;
        }
        let state = load_component(&host.runtime, store, &record).await;
        match (&state, previous) {
            (Err(error), Some(previous)) if previous.is_ready() => {
                tracing::error!(
                    plugin = %record.name,
                    "cannot load the plugin's current revision; keeping the previous one running: {error}"
                );
                report.failed.push((record.name.to_string(), error.clone()));
                plugins.insert(record.id, previous.clone());
                continue;
            }
            (Err(error), _) => {
                tracing::error!(plugin = %record.name, "cannot load the plugin; its calls fail closed: {error}");
                report.failed.push((record.name.to_string(), error.clone()));
            }
            (Ok(_), _) => report.loaded.push(record.name.to_string()),
        }
        let loaded = LoadedPlugin::new(
            host.runtime.clone(),
            record.id,
            record.name.clone(),
            record.kind,
            key,
            record.revision.sha256,
            record.revision.config.clone(),
            state,
        );
        plugins.insert(record.id, Arc::new(loaded));
    }
    let mut chains: HashMap<PluginKind, Chain> = HashMap::new();
    for binding in bindings {
        let Some(plugin) = plugins.get(&binding.plugin) else {
            continue; // disabled
        };
        let chain = chains.entry(plugin.kind).or_default();
        match binding.profile {
            None => chain.global.push(plugin.clone()),
            Some(profile) => chain.profiles.entry(profile).or_default().push(plugin.clone()),
        }
    }
    let in_use: Vec<ComponentHash> = plugins.values().map(|p| p.sha256).collect();
    host.swap(Active { plugins, chains });
    host.runtime.forget_unused(&in_use);
    if !report.loaded.is_empty() || !report.failed.is_empty() {
        tracing::info!(
            loaded = ?report.loaded,
            kept = report.kept,
            failed = report.failed.len(),
            "plugins reloaded"
        );
    }
    Ok(report)
}

/// Writes the plugins' call counts, latencies and quarantine state for `plugin inspect`.
pub fn flush_stats(host: &PluginHost, store: &Store) -> Result<(), PluginStoreError> {
    let stats: Vec<_> = host.loaded().iter().map(|p| (p.id, p.stats())).collect();
    if stats.is_empty() {
        return Ok(());
    }
    store.write_plugin_stats(&stats)
}

/// Keeps the plugins current while the gateway runs: reloads within 250 ms of a CLI change (polling
/// SQLite's `data_version`) and writes statistics every few seconds. Runs until the task is dropped.
pub async fn watch(host: Arc<PluginHost>, store: Arc<Store>) {
    let mut version = store.data_version().ok();
    let mut ticks: u32 = 0;
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    loop {
        interval.tick().await;
        ticks = ticks.wrapping_add(1);
        let now = store.data_version().ok();
        if now != version {
            version = now;
            if let Err(e) = reload(&host, &store).await {
                tracing::error!("cannot reload plugins: {e}");
            }
        }
        if ticks.is_multiple_of(8)
            && let Err(e) = flush_stats(&host, &store)
        {
            tracing::warn!("cannot write plugin statistics: {e}");
        }
    }
}

/// Reads a revision's component from the store, checks its hash, compiles and prepares it.
async fn load_component(runtime: &Arc<Runtime>, store: &Store, record: &PluginRecord) -> Result<WorldPre, String> {
    let sha256 = record.revision.sha256;
    let bytes = store.plugin_blob(&sha256).map_err(|e| e.to_string())?;
    // Invariant: the gateway runs only the component an operator added. Bytes changed in the database after
    // `plugin add` no longer match their content address and are refused.
    if ComponentHash::of(&bytes) != sha256 {
        return Err(format!(
            "the stored component does not match its sha256 {sha256}; it was modified after it was added: add the \
             plugin again"
        ));
    }
    let kind = record.kind;
    let runtime = runtime.clone();
    tokio::task::spawn_blocking(move || {
        let component = runtime.compile(&sha256, &bytes)?;
        runtime.prepare(kind, &component)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}
