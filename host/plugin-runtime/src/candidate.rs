//! Examining a component before it is stored, and checking a configuration before it is saved: the
//! operations behind `gigmcp plugin add` and `gigmcp plugin config` (and, later, the REST API). Nothing is
//! written unless every check passed.

use std::sync::Arc;

use serde_json::Value;

use crate::limits::{CallFailure, LoadError};
use crate::runtime::{Runtime, describe};
use crate::schema::Schema;
use crate::since_v0_1_0 as v0_1_0;
use crate::since_v0_1_0::WorldPre;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;

#[derive(Debug, thiserror::Error)]
pub enum CandidateError {
    #[error(
        "the file's sha256 is {actual}, not the expected {expected}: refusing it (was it tampered with, or is it \
         another build?)"
    )]
    HashMismatch {
        expected: ComponentHash,
        actual: ComponentHash,
    },
    #[error("refusing the plugin: {0}")]
    Load(#[from] LoadError),
    #[error(
        "refusing the plugin: it exports no gigmcp:plugin world (its exports: {0}); build it with \
         gigmcp-plugin-sdk and one kind feature"
    )]
    NoWorld(String),
    #[error("refusing the plugin: it exports the hooks of several kinds ({0}); a plugin implements one world")]
    SeveralWorlds(String),
    #[error(
        "refusing the plugin: it was built for gigmcp:plugin@{found}; this gateway supports @{supported}. Rebuild \
         it against a supported gigmcp-plugin-sdk"
    )]
    UnsupportedVersion { found: String, supported: &'static str },
    #[error("refusing the plugin: it is a {found} plugin, not a {expected} one")]
    KindMismatch { expected: PluginKind, found: PluginKind },
    #[error("refusing the plugin: its configuration schema is unusable: {0}")]
    BadSchema(String),
    #[error("the configuration is not JSON: {0}")]
    ConfigNotJson(String),
    #[error("the configuration does not match the plugin's schema:\n  {}", .0.join("\n  "))]
    InvalidConfig(Vec<String>),
    #[error("the plugin refused the configuration: {0}")]
    ConfigRefused(String),
    #[error("the plugin could not be run: {0}")]
    Call(CallFailure),
}

/// A component that passed every load check: its kind, what it imports and exports, and its schema.
pub struct Candidate {
    pub sha256: ComponentHash,
    pub kind: PluginKind,
    pub wit_version: &'static str,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub config_schema: String,
    schema: Schema,
    pub(crate) pre: WorldPre,
}

impl Candidate {
    /// Compiles the component, finds its world, refuses imports outside WASI and the world, checks its exports
    /// and reads its configuration schema. `expected_sha256` (`--sha256`) is checked before anything else.
    pub async fn examine(
        runtime: &Arc<Runtime>,
        bytes: Vec<u8>,
        expected_sha256: Option<ComponentHash>,
        expected_kind: Option<PluginKind>,
    ) -> Result<Self, CandidateError> {
        let sha256 = ComponentHash::of(&bytes);
        if let Some(expected) = expected_sha256
            && expected != sha256
        {
            return Err(CandidateError::HashMismatch {
                expected,
                actual: sha256,
            });
        }
        let compiled = {
            let runtime = runtime.clone();
            tokio::task::spawn_blocking(move || runtime.compile(&sha256, &bytes))
                .await
                .map_err(|e| LoadError::Engine(e.to_string()))??
        };
        let (imports, exports) = describe(runtime.engine(), &compiled);
        let kind = kind_of(&exports)?;
        if let Some(expected) = expected_kind
            && expected != kind
        {
            return Err(CandidateError::KindMismatch { expected, found: kind });
        }
        let pre = runtime.prepare(kind, &compiled)?;
        let mut instance = runtime
            .instantiate(&pre, Arc::from("(being added)"))
            .await
            .map_err(CandidateError::Call)?;
        let config_schema = runtime
            .config_schema(&mut instance)
            .await
            .map_err(CandidateError::Call)?;
        let schema = Schema::parse(&config_schema).map_err(|e| CandidateError::BadSchema(e.0))?;
        Ok(Self {
            sha256,
            kind,
            wit_version: v0_1_0::WIT_VERSION,
            imports,
            exports,
            config_schema,
            schema,
            pre,
        })
    }

    /// Checks a configuration against the schema, then has a fresh instance `init` with it. Returns the
    /// configuration in its canonical form.
    pub async fn check_config(&self, runtime: &Runtime, config: &str) -> Result<String, CandidateError> {
        check_config(runtime, &self.pre, &self.schema, config).await
    }

    #[cfg(feature = "harness")]
    pub(crate) fn into_prepared(self) -> WorldPre {
        self.pre
    }
}

/// Checks a configuration for a prepared plugin whose schema is `schema_text`.
pub(crate) async fn check_config(
    runtime: &Runtime,
    pre: &WorldPre,
    schema: &Schema,
    config: &str,
) -> Result<String, CandidateError> {
    let value: Value = serde_json::from_str(config).map_err(|e| CandidateError::ConfigNotJson(e.to_string()))?;
    schema.validate(&value).map_err(CandidateError::InvalidConfig)?;
    let canonical = value.to_string();
    let mut instance = runtime
        .instantiate(pre, Arc::from("(being configured)"))
        .await
        .map_err(CandidateError::Call)?;
    match runtime.init(&mut instance, &canonical).await {
        Ok(_) => Ok(canonical),
        Err(CallFailure::InitRefused(reason)) => Err(CandidateError::ConfigRefused(reason)),
        Err(other) => Err(CandidateError::Call(other)),
    }
}

/// The kind a component implements, from the hook interface it exports.
fn kind_of(exports: &[String]) -> Result<PluginKind, CandidateError> {
    let mut found = Vec::new();
    for export in exports {
        let Some(rest) = export.strip_prefix(v0_1_0::PACKAGE).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if let Some(kind) = PluginKind::ALL
            .into_iter()
            .find(|k| v0_1_0::hook_interface(*k) == interface)
        {
            if version != v0_1_0::WIT_VERSION {
                return Err(CandidateError::UnsupportedVersion {
                    found: version.to_owned(),
                    supported: v0_1_0::WIT_VERSION,
                });
            }
            found.push(kind);
        }
    }
    match found.as_slice() {
        [kind] => Ok(*kind),
        [] => Err(CandidateError::NoWorld(exports.join(", "))),
        several => Err(CandidateError::SeveralWorlds(
            several.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_from_the_exported_hook_interface() {
        let exports = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            kind_of(&exports(&["gigmcp:plugin/lifecycle@0.1.0", "gigmcp:plugin/mcp@0.1.0"])).unwrap(),
            PluginKind::McpFilter
        );
        assert!(matches!(
            kind_of(&exports(&["wasi:cli/run@0.2.6"])),
            Err(CandidateError::NoWorld(_))
        ));
        assert!(matches!(
            kind_of(&exports(&["gigmcp:plugin/egress@0.9.0"])),
            Err(CandidateError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            kind_of(&exports(&["gigmcp:plugin/egress@0.1.0", "gigmcp:plugin/audit@0.1.0"])),
            Err(CandidateError::SeveralWorlds(_))
        ));
    }
}
