//! A native test harness for plugins: loads a built component under the production runtime and limits (the
//! very code the gateway runs, not a copy) and calls its hooks one at a time, reporting what each call cost
//! (fuel, memory, time). Plugin authors use it from a native test crate that depends on `gigmcp`
//! (`sdk/README.md`); the gateway's own tests use it for the default and hostile plugins.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::artifacts::{ArtifactCache, CacheKey};
use crate::call::Hook;
use crate::candidate::{Candidate, CandidateError};
use crate::guest_build;
use crate::limits::{CallFailure, Limits, LoadError, Usage};
use crate::loaded::{LoadKey, LoadedPlugin};
use crate::runtime::Runtime;
use gigmcp_types::audit::AuditEvent;
use gigmcp_types::ids::{PluginId, RevisionId};
use gigmcp_types::names::PluginName;
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::plugin::PluginStats;
use gigmcp_types::policy::{
    AuthOutcome, CallContext, Delivery, DenyReason, EgressDecision, EgressRequest, Grant, Identity, McpRequest,
    McpResponse, OutboundRequest, RequestAction, RequestOp, ResponseAction,
};
use gigmcp_types::secret::MasterKey;

/// One plugin, loaded with a configuration, ready to be called.
pub struct Harness {
    runtime: Arc<Runtime>,
    plugin: LoadedPlugin,
    pub kind: PluginKind,
    pub config_schema: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// A hook's answer with what the call cost.
pub type Measured<T> = Result<(T, Usage), CallFailure>;

impl Harness {
    /// A runtime with the production limits and an in-memory compile cache.
    pub fn runtime() -> Result<Arc<Runtime>, LoadError> {
        Runtime::new(ArtifactCache::in_memory(), Limits::default())
    }

    /// A runtime whose compiled components are cached in `dir` (authenticated with a key derived from
    /// `key`), so that several test binaries compile each component once.
    pub fn cached_runtime(dir: &Path, key: &MasterKey, limits: Limits) -> Result<Arc<Runtime>, LoadError> {
        Runtime::new(ArtifactCache::on_disk(dir.to_path_buf(), CacheKey::derive(key)), limits)
    }

    /// Loads `bytes` (any kind) and initialises it with `config`, refusing it as `gigmcp plugin add` would.
    pub async fn load(runtime: &Arc<Runtime>, bytes: Vec<u8>, config: &str) -> Result<Self, CandidateError> {
        let candidate = Candidate::examine(runtime, bytes, None, None).await?;
        let config = candidate.check_config(runtime, config).await?;
        let (kind, sha256) = (candidate.kind, candidate.sha256);
        let (config_schema, imports, exports) = (
            candidate.config_schema.clone(),
            candidate.imports.clone(),
            candidate.exports.clone(),
        );
        let plugin = LoadedPlugin::new(
            runtime.clone(),
            PluginId(0),
            PluginName::parse("under-test").expect("valid name"),
            kind,
            LoadKey {
                revision: RevisionId(0),
                generation: 0,
            },
            sha256,
            config,
            Ok(candidate.into_prepared()),
        );
        Ok(Self {
            runtime: runtime.clone(),
            plugin,
            kind,
            config_schema,
            imports,
            exports,
        })
    }

    pub fn runtime_of(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Calls, failures, latency percentiles and quarantine, as `plugin inspect` shows them.
    pub fn stats(&self) -> PluginStats {
        self.plugin.stats()
    }

    pub async fn egress(&self, ctx: &CallContext, request: &EgressRequest) -> Measured<EgressDecision> {
        self.plugin
            .call_measured(&ctx.profile, Hook::Egress { ctx, request })
            .await
            .and_then(|(a, u)| Ok((a.egress()?, u)))
    }

    pub async fn inject(
        &self,
        ctx: &CallContext,
        request: &OutboundRequest,
        grants: &[Grant],
    ) -> Measured<Result<Vec<RequestOp>, DenyReason>> {
        self.plugin
            .call_measured(&ctx.profile, Hook::Inject { ctx, request, grants })
            .await
            .and_then(|(a, u)| Ok((a.inject()?, u)))
    }

    pub async fn map_identity(&self, ctx: &CallContext, identity: &Identity) -> Measured<AuthOutcome> {
        self.plugin
            .call_measured(&ctx.profile, Hook::MapIdentity { ctx, identity })
            .await
            .and_then(|(a, u)| Ok((a.map_identity()?, u)))
    }

    pub async fn route(&self, events: &[AuditEvent]) -> Measured<Result<Vec<Delivery>, DenyReason>> {
        self.plugin
            .call_measured(&None, Hook::Route { events })
            .await
            .and_then(|(a, u)| Ok((a.route()?, u)))
    }

    pub async fn on_request(&self, ctx: &CallContext, request: &McpRequest) -> Measured<RequestAction> {
        self.plugin
            .call_measured(&ctx.profile, Hook::OnRequest { ctx, request })
            .await
            .and_then(|(a, u)| Ok((a.on_request()?, u)))
    }

    pub async fn on_response(&self, ctx: &CallContext, response: &McpResponse) -> Measured<ResponseAction> {
        self.plugin
            .call_measured(&ctx.profile, Hook::OnResponse { ctx, response })
            .await
            .and_then(|(a, u)| Ok((a.on_response()?, u)))
    }
}

/// The repository's root (for building its plugins in tests).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/plugin-runtime/ is inside the repository")
        .to_path_buf()
}

/// Builds a package of the repository's `plugins/` workspace (the defaults and `plugins/testing/*`) for
/// wasm32-wasip2 into `target/plugins`, and returns the component's bytes. Cargo serialises concurrent builds.
pub fn build_repo_plugin(package: &str) -> Result<Vec<u8>, guest_build::BuildError> {
    let root = repo_root();
    let path = guest_build::build(&root.join("plugins"), package, &root.join("target").join("plugins"))?;
    std::fs::read(&path).map_err(|source| guest_build::BuildError::Read { path, source })
}
