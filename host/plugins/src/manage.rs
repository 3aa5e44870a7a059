//! Adding and configuring plugins in the database: a component is examined by the plugin runtime
//! (`Candidate`), then stored as a new plugin or the next revision of one.

use std::sync::Arc;

use gigmcp_plugin_runtime::{Candidate, CandidateError, Runtime};
use gigmcp_store::Store;
use gigmcp_store::plugins::{Added, NewRevision, PluginStoreError};
use gigmcp_types::names::PluginName;
use gigmcp_types::plugin::{ComponentHash, PluginKind};

/// Why a plugin could not be added or configured.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error(transparent)]
    Candidate(#[from] CandidateError),
    #[error("{0}")]
    Store(#[from] PluginStoreError),
}

/// `plugin add`: what to add.
pub struct AddPlugin {
    pub name: PluginName,
    pub bytes: Vec<u8>,
    /// `--sha256`: refuse the file unless it has this hash.
    pub expected_sha256: Option<ComponentHash>,
    /// `--kind`: refuse the file unless it is of this kind.
    pub kind: Option<PluginKind>,
    /// `--config`: the configuration; by default the plugin's current one (for a new version) or `{}`.
    pub config: Option<String>,
}

/// What `plugin add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOutcome {
    pub kind: PluginKind,
    pub sha256: ComponentHash,
    pub added: Added,
    pub config: String,
}

/// Examines a component, checks its configuration, and stores it as a new plugin or as the next revision of
/// the plugin of that name. A new plugin is enabled and unbound; a new revision keeps the plugin's bindings,
/// so a running gateway swaps it in atomically.
pub async fn add(runtime: &Arc<Runtime>, store: &Store, add: AddPlugin) -> Result<AddOutcome, ManageError> {
    let candidate = Candidate::examine(runtime, add.bytes.clone(), add.expected_sha256, add.kind).await?;
    let existing = match store.plugin(&add.name) {
        Ok(record) => Some(record),
        Err(PluginStoreError::NoPlugin(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(record) = &existing
        && record.kind != candidate.kind
    {
        return Err(PluginStoreError::KindChanged {
            name: add.name.clone(),
            existing: record.kind,
            new: candidate.kind,
        }
        .into());
    }
    let config = match (&add.config, &existing) {
        (Some(config), _) => config.clone(),
        (None, Some(record)) => record.revision.config.clone(),
        (None, None) => "{}".to_owned(),
    };
    let config = candidate.check_config(runtime, &config).await?;
    let added = store.plugin_add(
        &add.name,
        candidate.kind,
        false,
        &NewRevision {
            sha256: candidate.sha256,
            bytes: &add.bytes,
            wit_version: candidate.wit_version,
            config: &config,
            config_schema: &candidate.config_schema,
            imports: &candidate.imports,
            exports: &candidate.exports,
            note: "added",
        },
    )?;
    Ok(AddOutcome {
        kind: candidate.kind,
        sha256: candidate.sha256,
        added,
        config,
    })
}

/// `plugin config`: checks the configuration against the schema and with a fresh instance's `init`, then
/// stores it as a new revision. A refused configuration changes nothing. `if_match`: see
/// [`Store::plugin_set_config`] (a configuration checked against one revision is never stored over another).
pub async fn configure(
    runtime: &Arc<Runtime>,
    store: &Store,
    name: &PluginName,
    config: &str,
    if_match: Option<&str>,
) -> Result<String, ManageError> {
    let record = store.plugin(name)?;
    let bytes = store.plugin_blob(&record.revision.sha256)?;
    let candidate = Candidate::examine(runtime, bytes, Some(record.revision.sha256), Some(record.kind)).await?;
    let config = candidate.check_config(runtime, config).await?;
    store.plugin_set_config(name, &config, if_match)?;
    Ok(config)
}
