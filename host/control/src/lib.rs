//! The control plane: browser sessions, the REST API under `/api`, its OpenAPI document, and the login
//! routes (`/auth/*`). See README.md beside `src/` for what was decided and why.
//!
//! Depends on ops (every change goes through it) and the crates below it; must never depend on egress or the
//! binary. It is given its settings (`Settings`) by the binary and never reads the environment.

#![forbid(unsafe_code)]

pub mod api;
pub mod dashboard;
pub mod oidc;
pub mod openapi;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode, header};
use serde_json::json;

use gigmcp_audit::AuditLog;
use gigmcp_plugin_runtime::PluginHost;
use gigmcp_store::Store;
use gigmcp_vault::Vault;

pub use session::{Caller, Sessions, same_origin};

/// The running gateway as the control plane sees it: live sandboxes and restarts. Implemented over the MCP
/// data plane by the binary, so this crate does not depend on it.
pub trait RunningServers: Send + Sync {
    /// Every running sandbox of every profile.
    fn sandbox_statuses(&self) -> Vec<gigmcp_types::server::SandboxStatus>;
    /// Stops a server's idle shared processes in every profile (they start again on next use); returns how
    /// many were stopped.
    fn restart_server(&self, server: &gigmcp_types::names::ServerName) -> usize;
    /// The lines kept of a server's log numbered above `after` (all with `None`), oldest first.
    fn server_logs(
        &self,
        server: &gigmcp_types::names::ServerName,
        after: Option<u64>,
    ) -> Vec<gigmcp_types::server::LogLine>;
    /// The same, and every line written from then on.
    fn follow_server_logs(
        &self,
        server: &gigmcp_types::names::ServerName,
        after: Option<u64>,
    ) -> (
        Vec<gigmcp_types::server::LogLine>,
        tokio::sync::broadcast::Receiver<gigmcp_types::server::LogLine>,
    );
    /// The tools of a profile that mcp-filter plugins hid from its last listed tools.
    fn hidden_tools(&self, profile: gigmcp_types::ids::ProfileId) -> Vec<HiddenTool>;
    /// Drops a removed server's log.
    fn forget_server_logs(&self, server: &gigmcp_types::names::ServerName);
    /// Runs one MCP request on a profile as a client session would (its servers, plugins and audit), with
    /// `actor` named in the audit log; gives the JSON-RPC reply.
    fn request(
        &self,
        profile: gigmcp_types::ids::ProfileId,
        actor: String,
        method: &'static str,
        params: serde_json::Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<serde_json::Value, String>> + Send + '_>>;
}

/// A tool a policy plugin hid from a profile's list.
#[derive(Debug, Clone)]
pub struct HiddenTool {
    /// The name clients would call it by.
    pub exposed: String,
    pub server: String,
    /// The plugins that changed the list it was removed from.
    pub by: Vec<String>,
}

/// What the control plane is given by the binary besides its settings.
pub struct Parts {
    pub plugins: Arc<PluginHost>,
    pub audit: AuditLog,
    pub running: Arc<dyn RunningServers>,
    /// Lists servers' names when the API edits a profile (collisions are refused as the CLI refuses them).
    pub probe: Arc<dyn gigmcp_ops::ServerProbe>,
    /// Servers' state directories, removed with a server or profile when the caller confirms it.
    pub states: Arc<dyn gigmcp_ops::ServerStates>,
    /// The signed catalog (`GIG_REGISTRY_*`).
    pub catalog: Arc<gigmcp_ops::catalog::Catalog>,
    /// How static-binary catalog entries are pulled (`GIG_OCI_*`).
    pub oci: gigmcp_ops::oci::OciSettings,
    /// Connected accounts: OAuth apps, the flow's exchange, connections.
    pub oauth: Arc<gigmcp_oauth::Broker>,
}

/// What every control route shares.
pub struct ControlState {
    /// A connection of the control plane's own: the gateway notices its commits (PRAGMA data_version moves
    /// only for other connections) and applies them as it does the CLI's.
    pub store: Arc<Store>,
    pub vault: Arc<Vault>,
    pub plugins: Arc<PluginHost>,
    pub audit: AuditLog,
    /// `GIG_PUBLIC_URL`, or `http://<GIG_LISTEN>`.
    pub public_url: url::Url,
    pub sessions: Sessions,
    pub oidc: Option<Arc<oidc::Oidc>>,
    /// The running gateway: live server status and restarts.
    pub running: Arc<dyn RunningServers>,
    /// Lists servers' names when a profile is edited (as the CLI does, in sandboxes).
    pub probe: Arc<dyn gigmcp_ops::ServerProbe>,
    /// Servers' state directories.
    pub states: Arc<dyn gigmcp_ops::ServerStates>,
    /// The largest API request body accepted.
    pub max_body_bytes: usize,
    /// A sandboxed server's limits when the API gives none.
    pub default_limits: gigmcp_types::server::Limits,
    /// Where npm and PyPI servers are installed (`GIG_SERVERS_DIR`).
    pub servers_dir: std::path::PathBuf,
    /// The dashboard's files.
    pub web: dashboard::WebFiles,
    /// The signed catalog (`GIG_REGISTRY_*`).
    pub catalog: Arc<gigmcp_ops::catalog::Catalog>,
    /// How static-binary catalog entries are pulled (`GIG_OCI_*`).
    pub oci: gigmcp_ops::oci::OciSettings,
    /// Connected accounts: OAuth apps, the flow's exchange, connections.
    pub oauth: Arc<gigmcp_oauth::Broker>,
    /// How long a connection's flow may take at the provider (`GIG_CONNECT_FLOW_TTL`).
    pub connect_flow_ttl: std::time::Duration,
}

/// The one error shape of the API: `{"error":{"code","message"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in first: no valid session cookie (gigmcp_session) was sent",
        )
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!("control plane: {message}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the gateway's log says more",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// The control plane's routes, to merge with the MCP endpoint's.
pub fn router(state: Arc<ControlState>) -> Router {
    let api = api::routes()
        .layer(middleware::from_fn_with_state(state.clone(), guard_api))
        .layer(axum::extract::DefaultBodyLimit::max(state.max_body_bytes));
    Router::new()
        .merge(api)
        .merge(session::routes())
        .merge(oidc::routes())
        .fallback(dashboard::serve)
        .with_state(state)
}

/// Before any API handler: answers 503 while the identity provider is not ready, and refuses a
/// state-changing request that does not come from the gateway's own origin (CSRF).
async fn guard_api(State(state): State<Arc<ControlState>>, request: Request, next: Next) -> Response {
    if let Some(oidc) = &state.oidc
        && !api::PUBLIC_ROUTES.contains(&request.uri().path())
        && let Err(reason) = oidc.ready()
    {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the identity provider is not ready: {reason}"),
        )
        .into_response();
    }
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !same_origin(request.headers(), &state) {
        return ApiError::forbidden(format!(
            "cross-site request refused: a state-changing request must carry Origin: {}",
            state.public_url.origin().ascii_serialization()
        ))
        .into_response();
    }
    let method = request.method().clone();
    let response = next.run(request).await;
    // axum answers a known path with an unsupported method with an empty 405: give it the API's envelope.
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let mut refused = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed here; see /api/openapi.json"),
        )
        .into_response();
        if let Some(allow) = response.headers().get(header::ALLOW) {
            refused.headers_mut().insert(header::ALLOW, allow.clone());
        }
        return refused;
    }
    response
}

/// Runs store work off the async runtime.
pub async fn blocking<T, F>(state: &Arc<ControlState>, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&ControlState) -> Result<T, ApiError> + Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(ApiError::internal)?
}

/// What the control plane is configured with (the binary builds it from the environment).
pub struct Settings {
    pub db_path: std::path::PathBuf,
    pub servers_dir: std::path::PathBuf,
    /// The URL the control plane is reached at (`GIG_PUBLIC_URL`, or the listener's).
    pub public_url: url::Url,
    /// How long a web session lasts.
    pub session_ttl: std::time::Duration,
    /// How long a connection's flow may take at the provider.
    pub connect_flow_ttl: std::time::Duration,
    /// The identity provider, when one is configured.
    pub oidc: Option<oidc::OidcSettings>,
    /// The largest request body the API accepts.
    pub max_body_bytes: usize,
    /// A sandboxed server's limits when a definition gives none.
    pub default_limits: gigmcp_types::server::Limits,
    /// The dashboard's files (embedded, or `GIG_WEB_DIR`).
    pub web: dashboard::WebFiles,
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] gigmcp_store::StoreError),
    #[error(transparent)]
    Vault(#[from] gigmcp_vault::VaultError),
    #[error(transparent)]
    Oidc(#[from] oidc::OidcError),
}

impl ControlState {
    /// The control plane of a gateway: its own database connection (see `store`), the vault opened on it,
    /// and sessions configured from `GIG_PUBLIC_URL` and `GIG_SESSION_TTL`.
    pub fn new(
        config: &Settings,
        master_key: &gigmcp_types::secret::MasterKey,
        bound: std::net::SocketAddr,
        parts: Parts,
    ) -> Result<Arc<Self>, StartError> {
        let store = Arc::new(Store::open(&config.db_path)?);
        let vault = Arc::new(Vault::open(store.clone(), master_key)?);
        let mut public_url = config.public_url.clone();
        // Without GIG_PUBLIC_URL the URL is the listener's; with port 0, the port it was given.
        if public_url.port() == Some(0) {
            let _ = public_url.set_port(Some(bound.port()));
        }
        let secure = public_url.scheme() == "https";
        // Discovery starts in the background; the API answers 503 until it succeeds.
        let oidc = match &config.oidc {
            Some(settings) => Some(oidc::Oidc::start(settings.clone(), &vault, &public_url)?),
            None => None,
        };
        Ok(Arc::new(Self {
            sessions: Sessions::new(store.clone(), config.session_ttl, secure),
            store,
            vault,
            plugins: parts.plugins,
            audit: parts.audit,
            public_url,
            oidc,
            running: parts.running,
            probe: parts.probe,
            states: parts.states,
            oauth: parts.oauth,
            connect_flow_ttl: config.connect_flow_ttl,
            max_body_bytes: config.max_body_bytes,
            default_limits: config.default_limits,
            servers_dir: config.servers_dir.clone(),
            web: config.web.clone(),
            catalog: parts.catalog,
            oci: parts.oci,
        }))
    }
}

impl From<gigmcp_ops::OpsError> for ApiError {
    fn from(e: gigmcp_ops::OpsError) -> Self {
        use gigmcp_ops::OpsError;
        match e {
            OpsError::Invalid(m) => ApiError::bad_request(m),
            OpsError::NotFound(m) => ApiError::not_found(m),
            OpsError::Conflict(m) => ApiError::conflict(m),
            OpsError::Internal(m) => ApiError::internal(m),
            OpsError::Stale(m) => ApiError::new(StatusCode::PRECONDITION_FAILED, "stale", m),
        }
    }
}

impl From<gigmcp_types::names::NameError> for ApiError {
    fn from(e: gigmcp_types::names::NameError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}
