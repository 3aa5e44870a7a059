//! `/api/plugins`: admins only. Upload (the component as the raw body), inspect, configure, enable and
//! disable, bind in order, unbind, roll back, remove, and the running gateway's metrics. Every change goes
//! through the same checks as `gigmcp plugin …` ([`crate::plugins::manage`], [`crate::ops`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{Body, IfMatch, Page, PageQuery, PathParams, Query, Tagged, raw_body};
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_ops::{Actor, Ops, OpsError};
use gigmcp_plugin_runtime::harness::Harness;
use gigmcp_plugins::dry_run::dry_run;
use gigmcp_plugins::manage;
use gigmcp_plugins::manage::AddPlugin;
use gigmcp_plugins::manage::ManageError;
use gigmcp_store::plugins::{Added, PluginRecord};
use gigmcp_types::names::PluginName;
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::plugin::PluginStats;

#[derive(Serialize, JsonSchema)]
pub struct PluginView {
    pub name: String,
    /// egress-policy, credential-injector, auth-mapper, audit-sink or mcp-filter.
    pub kind: String,
    pub enabled: bool,
    /// Shipped with the gateway.
    pub builtin: bool,
    pub sha256: String,
    pub wit_version: String,
    /// The current configuration.
    pub config: Value,
    pub bindings: Vec<BindingView>,
}

#[derive(Serialize, JsonSchema)]
pub struct BindingView {
    /// The profile it is bound to; absent when global.
    pub profile: Option<String>,
    pub order: i64,
}

#[derive(Serialize, JsonSchema)]
pub struct PluginDetail {
    #[serde(flatten)]
    pub plugin: PluginView,
    /// The JSON Schema its configuration must match.
    pub config_schema: Value,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    /// Newest first.
    pub revisions: Vec<RevisionView>,
    /// The entity tag of its current revision (also its `ETag`): send it as `If-Match` when configuring it, so
    /// a change made meanwhile is not undone.
    pub etag: String,
}

#[derive(Serialize, JsonSchema)]
pub struct RevisionView {
    pub id: i64,
    pub sha256: String,
    pub config: Value,
    /// What made it: added, config, default.
    pub note: String,
    pub current: bool,
    pub created_at: i64,
}

#[derive(Serialize, JsonSchema)]
pub struct MetricsView {
    pub calls: u64,
    pub failures: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub quarantined: bool,
    pub last_error: Option<String>,
    /// Audit events an audit sink lost (beyond its queue, or failing after retries).
    pub lost_events: u64,
    pub updated_at: i64,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The plugin's name (a new version when it exists).
    pub name: String,
    /// Refuse the component unless it is of this kind.
    pub kind: Option<String>,
    /// Refuse the component unless its sha256 is this (hex).
    pub sha256: Option<String>,
}

/// A dry run: one hook of the plugin's current component on a sample input.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCall {
    /// The hook's input, one shape per kind (sdk/README.md): an egress-policy takes `server`, `host`, `port`
    /// (and `method`, `path`, `declared`); an mcp-filter `server`, `method`, `name` and either `params` (a
    /// request) or `result` (a response); a credential-injector `server`, `method`, `host`, `port`, `path`
    /// (and `header_names`, `placeholders`, `grants`); an auth-mapper `issuer`, `subject`, `claims`; an
    /// audit-sink `events`.
    pub call: serde_json::Map<String, Value>,
    /// The configuration to run it with (default: the current one): try a change before saving it.
    pub config: Option<Value>,
    /// The profile the call is made for.
    pub profile: Option<String>,
}

/// What a dry run gave. Nothing it answered was acted on.
#[derive(Serialize, JsonSchema)]
pub struct TestResult {
    pub kind: String,
    /// The hook's answer, as `gigmcp plugin test` prints it; absent when the call failed.
    pub answer: Option<String>,
    /// Why the call gave no answer (a trap, a limit, a malformed answer): for a policy kind, a denial.
    pub failure: Option<String>,
    pub fuel: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub elapsed_us: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Configure {
    /// The new configuration (checked against the plugin's schema and by the plugin itself).
    pub config: Value,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bind {
    /// Bind to this profile only; absent: globally.
    pub profile: Option<String>,
    /// Plugins of a kind are asked in ascending order; absent: after the last binding of that scope.
    pub order: Option<i64>,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UnbindQuery {
    /// Unbind from this profile; absent: the global binding.
    pub profile: Option<String>,
}

fn ops<'a>(state: &'a ControlState, caller: &Caller) -> Ops<'a> {
    Ops {
        store: &state.store,
        actor: Actor::User(caller.user),
        audit: Some(&state.audit),
    }
}

fn parse_name(name: &str) -> Result<PluginName, ApiError> {
    PluginName::parse(name).map_err(|_| ApiError::not_found(format!("no plugin named {name:?}")))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn view(state: &ControlState, record: &PluginRecord) -> Result<PluginView, ApiError> {
    let bindings = state
        .store
        .plugin_bindings()
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|b| b.plugin == record.id)
        .map(|b| BindingView {
            profile: b.profile.map(|p| p.to_string()),
            order: b.position,
        })
        .collect();
    Ok(PluginView {
        name: record.name.to_string(),
        kind: record.kind.to_string(),
        enabled: record.enabled,
        builtin: record.builtin,
        sha256: record.revision.sha256.to_hex(),
        wit_version: record.revision.wit_version.clone(),
        config: json_of(&record.revision.config),
        bindings,
    })
}

fn detail(state: &ControlState, name: &PluginName) -> Result<PluginDetail, ApiError> {
    let record = state.store.plugin(name).map_err(OpsError::from)?;
    let revisions = state
        .store
        .plugin_revisions(name)
        .map_err(OpsError::from)?
        .into_iter()
        .map(|r| RevisionView {
            id: r.id.0,
            sha256: r.sha256.to_hex(),
            config: json_of(&r.config),
            note: r.note.clone(),
            current: r.id == record.revision.id,
            created_at: r.created_at,
        })
        .collect();
    Ok(PluginDetail {
        config_schema: json_of(&record.revision.config_schema),
        imports: record.revision.imports.clone(),
        exports: record.revision.exports.clone(),
        plugin: view(state, &record)?,
        revisions,
        etag: gigmcp_types::etag::plugin_revision(record.revision.id.0),
    })
}

pub async fn list(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<PluginView>>, ApiError> {
    caller.require_admin()?;
    let limit = page.limit()?;
    blocking(&state, move |state| {
        let after = page.after.unwrap_or_default();
        let views = state
            .store
            .plugins()
            .map_err(OpsError::from)?
            .iter()
            .filter(|p| p.name.as_str() > after.as_str())
            .take(limit + 1)
            .map(|p| view(state, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(Page::cut(views, limit, |p| p.name.clone())))
    })
    .await
}

pub async fn inspect(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Tagged<PluginDetail>, ApiError> {
    caller.require_admin()?;
    let name = parse_name(&name)?;
    blocking(&state, move |state| tagged(state, &name)).await
}

/// A plugin as it is now, with its entity tag.
fn tagged(state: &ControlState, name: &PluginName) -> Result<Tagged<PluginDetail>, ApiError> {
    let detail = detail(state, name)?;
    Ok(Tagged(detail.etag.clone(), detail))
}

pub async fn upload(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Result<(StatusCode, Json<PluginDetail>), ApiError> {
    caller.require_admin()?;
    let name = PluginName::parse(&query.name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let kind = query
        .kind
        .as_deref()
        .map(|k| PluginKind::parse(k).ok_or_else(|| ApiError::bad_request(format!("unknown plugin kind {k:?}"))))
        .transpose()?;
    let expected_sha256 = query
        .sha256
        .as_deref()
        .map(|h| ComponentHash::parse_hex(h).ok_or_else(|| ApiError::bad_request("sha256 must be 64 hex characters")))
        .transpose()?;
    let bytes = raw_body(request, &()).await?.to_vec();
    if bytes.is_empty() {
        return Err(ApiError::bad_request("send the component (.wasm) as the request body"));
    }
    let runtime = state.plugins.runtime.clone();
    let outcome = manage::add(
        &runtime,
        &state.store,
        AddPlugin {
            name: name.clone(),
            bytes,
            expected_sha256,
            kind,
            config: None,
        },
    )
    .await
    .map_err(OpsError::from)?;
    let created = matches!(outcome.added, Added::Created(_));
    ops(&state, &caller).record_plugin(
        "add",
        &name,
        json!({"kind": outcome.kind, "sha256": outcome.sha256.to_hex(), "config": outcome.config}),
    );
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    blocking(&state, move |state| Ok((status, Json(detail(state, &name)?)))).await
}

pub async fn configure(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    IfMatch(if_match): IfMatch,
    Body(body): Body<Configure>,
) -> Result<Tagged<PluginDetail>, ApiError> {
    caller.require_admin()?;
    let name = parse_name(&name)?;
    let runtime = state.plugins.runtime.clone();
    let config = manage::configure(
        &runtime,
        &state.store,
        &name,
        &body.config.to_string(),
        if_match.as_deref(),
    )
    .await
    .map_err(OpsError::from)?;
    ops(&state, &caller).record_plugin("config", &name, json!({"config": config}));
    blocking(&state, move |state| tagged(state, &name)).await
}

pub async fn test(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Body(body): Body<TestCall>,
) -> Result<Json<TestResult>, ApiError> {
    caller.require_admin()?;
    let name = parse_name(&name)?;
    let profile = profile_of(body.profile.as_deref())?;
    let (record, bytes) = blocking(&state, move |state| {
        let record = state.store.plugin(&name).map_err(OpsError::from)?;
        let bytes = state
            .store
            .plugin_blob(&record.revision.sha256)
            .map_err(OpsError::from)?;
        Ok((record, bytes))
    })
    .await?;
    let config = match &body.config {
        Some(config) => config.to_string(),
        None => record.revision.config.clone(),
    };
    let harness = Harness::load(&state.plugins.runtime, bytes, &config)
        .await
        .map_err(|e| OpsError::from(ManageError::Candidate(e)))?;
    let run = dry_run(&harness, &Value::Object(body.call), profile)
        .await
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let kind = run.kind.to_string();
    Ok(Json(match run.answer {
        Ok((answer, usage)) => TestResult {
            kind,
            answer: Some(answer),
            failure: None,
            fuel: Some(usage.fuel),
            memory_bytes: Some(usage.memory_bytes as u64),
            elapsed_us: Some(usage.elapsed.as_micros() as u64),
        },
        Err(failure) => TestResult {
            kind,
            answer: None,
            failure: Some(failure.to_string()),
            fuel: None,
            memory_bytes: None,
            elapsed_us: None,
        },
    }))
}

/// Applies an admin's change to a plugin; answers with the plugin as it is now.
async fn change<F>(
    state: Arc<ControlState>,
    caller: Caller,
    name: String,
    apply: F,
) -> Result<Json<PluginDetail>, ApiError>
where
    F: FnOnce(&Ops<'_>, &PluginName) -> Result<(), ApiError> + Send + 'static,
{
    caller.require_admin()?;
    let name = parse_name(&name)?;
    blocking(&state, move |state| {
        apply(&ops(state, &caller), &name)?;
        Ok(Json(detail(state, &name)?))
    })
    .await
}

fn profile_of(slug: Option<&str>) -> Result<Option<ProfileSlug>, ApiError> {
    Ok(slug.map(ProfileSlug::parse).transpose()?)
}

pub async fn set_enabled(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Body(body): Body<Enabled>,
) -> Result<Json<PluginDetail>, ApiError> {
    change(state, caller, name, move |ops, name| {
        Ok(ops.plugin_set_enabled(name, body.enabled)?)
    })
    .await
}

pub async fn bind(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Body(body): Body<Bind>,
) -> Result<Json<PluginDetail>, ApiError> {
    change(state, caller, name, move |ops, name| {
        let profile = profile_of(body.profile.as_deref())?;
        ops.plugin_bind(name, profile.as_ref(), body.order)?;
        Ok(())
    })
    .await
}

pub async fn unbind(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Query(query): Query<UnbindQuery>,
) -> Result<Json<PluginDetail>, ApiError> {
    change(state, caller, name, move |ops, name| {
        let profile = profile_of(query.profile.as_deref())?;
        Ok(ops.plugin_unbind(name, profile.as_ref())?)
    })
    .await
}

pub async fn rollback(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<PluginDetail>, ApiError> {
    change(state, caller, name, |ops, name| {
        ops.plugin_rollback(name).map(|_| ()).map_err(ApiError::from)
    })
    .await
}

pub async fn remove(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let name = parse_name(&name)?;
    blocking(&state, move |state| {
        ops(state, &caller).plugin_remove(&name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn metrics(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<MetricsView>, ApiError> {
    caller.require_admin()?;
    let name = parse_name(&name)?;
    blocking(&state, move |state| {
        let record = state.store.plugin(&name).map_err(OpsError::from)?;
        let stats: PluginStats = state
            .store
            .plugin_stats(record.id)
            .map_err(OpsError::from)?
            .unwrap_or_default();
        Ok(Json(MetricsView {
            calls: stats.calls,
            failures: stats.failures,
            p50_us: stats.p50_us,
            p99_us: stats.p99_us,
            quarantined: stats.quarantined,
            last_error: stats.last_error,
            lost_events: stats.lost_events,
            updated_at: stats.updated_at,
        }))
    })
    .await
}

#[derive(Serialize, JsonSchema)]
pub struct WebhookView {
    /// Audit sinks deliver to it as `webhook:<name>`.
    pub name: String,
    pub url: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// https://…, or http:// to a loopback address.
    pub url: String,
}

pub async fn webhooks(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<WebhookView>>, ApiError> {
    caller.require_admin()?;
    let limit = page.limit()?;
    blocking(&state, move |state| {
        let after = page.after.unwrap_or_default();
        let views: Vec<WebhookView> = state
            .store
            .audit_webhooks()
            .map_err(OpsError::from)?
            .into_iter()
            .filter(|(name, _)| name.as_str() > after.as_str())
            .take(limit + 1)
            .map(|(name, url)| WebhookView { name, url })
            .collect();
        Ok(Json(Page::cut(views, limit, |w| w.name.clone())))
    })
    .await
}

pub async fn set_webhook(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Body(body): Body<SetWebhook>,
) -> Result<Json<WebhookView>, ApiError> {
    caller.require_admin()?;
    let name = PluginName::parse(&name)?;
    blocking(&state, move |state| {
        let url = ops(state, &caller).set_webhook(&name, &body.url)?;
        Ok(Json(WebhookView {
            name: name.to_string(),
            url,
        }))
    })
    .await
}

pub async fn remove_webhook(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let name = PluginName::parse(&name).map_err(|_| ApiError::not_found(format!("no webhook named {name:?}")))?;
    blocking(&state, move |state| {
        ops(state, &caller).remove_webhook(&name)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
