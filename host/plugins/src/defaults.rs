//! The plugins the gateway ships with (`plugins/`, built and embedded by the `gigmcp-default-plugins` crate), installed and bound
//! globally on first start so the gateway is secure out of the box: egress only to declared hosts,
//! credentials only where their placeholder was, logins mapped by a roles claim, every tool call filtered for
//! secret-looking strings. They are ordinary plugins: an operator can configure, replace, disable or remove
//! them, and one removed is not installed again.

use std::sync::Arc;

use gigmcp_plugin_runtime::candidate::{Candidate, CandidateError};
use gigmcp_plugin_runtime::runtime::Runtime;
use gigmcp_store::Store;
use gigmcp_store::plugins::{NewRevision, PluginStoreError};
use gigmcp_types::names::PluginName;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;

/// The binding position of the defaults: operators' plugins bound at lower positions run before them.
pub const DEFAULT_POSITION: i64 = 100;

/// The components a gateway ships with, as (name, bytes): `gigmcp_default_plugins::COMPONENTS` in the binary,
/// anything else in tests. Passed in, so this crate never rebuilds when a default plugin changes.
pub type Defaults = &'static [(&'static str, &'static [u8])];

#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    #[error("default plugin {name}: {source}")]
    Invalid { name: String, source: CandidateError },
    #[error("default plugins: {0}")]
    Store(#[from] PluginStoreError),
}

/// Installs the defaults never installed before, and updates those still at a default revision to the
/// component this gateway embeds (keeping their configuration). Returns the names installed or updated.
pub async fn install(runtime: &Arc<Runtime>, store: &Store, defaults: Defaults) -> Result<Vec<String>, DefaultsError> {
    let installed = store.plugin_defaults_installed()?;
    let mut changed = Vec::new();
    for (name, bytes) in defaults {
        let plugin = PluginName::parse(name).expect("default plugin names are valid");
        let sha256 = ComponentHash::of(bytes);
        let existing = match store.plugin(&plugin) {
            Ok(record) => Some(record),
            Err(PluginStoreError::NoPlugin(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let config = match (&existing, installed.iter().any(|n| n == name)) {
            (None, false) => "{}".to_owned(),
            (Some(record), true)
                if record.builtin && record.revision.note == "default" && record.revision.sha256 != sha256 =>
            {
                record.revision.config.clone()
            }
            _ => continue,
        };
        let invalid = |source| DefaultsError::Invalid {
            name: name.to_string(),
            source,
        };
        let candidate = Candidate::examine(runtime, bytes.to_vec(), None, None)
            .await
            .map_err(invalid)?;
        let config = match candidate.check_config(runtime, &config).await {
            Ok(config) => config,
            Err(e) if existing.is_some() => {
                tracing::warn!(
                    plugin = name,
                    "not updating the default plugin: its configuration no longer fits: {e}"
                );
                continue;
            }
            Err(e) => return Err(invalid(e)),
        };
        store.plugin_add(
            &plugin,
            candidate.kind,
            true,
            &NewRevision {
                sha256,
                bytes,
                wit_version: candidate.wit_version,
                config: &config,
                config_schema: &candidate.config_schema,
                imports: &candidate.imports,
                exports: &candidate.exports,
                note: "default",
            },
        )?;
        if existing.is_none() {
            store.plugin_bind(&plugin, None, DEFAULT_POSITION)?;
        }
        store.mark_plugin_default_installed(&plugin, &sha256)?;
        tracing::info!(plugin = name, kind = %candidate.kind, "installed the default plugin");
        changed.push(name.to_string());
    }
    Ok(changed)
}

/// The kind each default has, for documentation and tests.
pub fn kind_of(name: &str) -> Option<PluginKind> {
    Some(match name {
        "egress-allowlist" => PluginKind::EgressPolicy,
        "header-injector" => PluginKind::CredentialInjector,
        "claims-mapper" => PluginKind::AuthMapper,
        "audit-router" => PluginKind::AuditSink,
        "tool-filter" => PluginKind::McpFilter,
        _ => return None,
    })
}
