//! The REST API under `/api`: JSON in and out, strictly decoded (an unknown field is named in the error),
//! bounded bodies, one error envelope, keyset pagination for lists. Every route is declared once in
//! [`api`], which yields both the router and the OpenAPI document.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch, post, put};
use bytes::Bytes;
use http::request::Parts;
use http::{StatusCode, header};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::openapi::{Api, Operation};
use crate::{ApiError, Caller, ControlState};
use gigmcp_store::users::User;
use gigmcp_types::user::ProfileAccess;
use gigmcp_types::user::Role;

pub mod audit;
pub mod catalog;
pub mod connections;
pub mod credentials;
pub mod metrics;
pub mod plugins;
pub mod profiles;
pub mod servers;
pub mod tools;
pub mod users;

/// The API's route table.
pub fn api() -> Api {
    use Operation as Op;
    Api::default()
        .route(
            Op::get("/api/openapi.json", "openapi", "meta", "This document (OpenAPI 3.1)")
                .public()
                .returns::<serde_json::Value>(200),
            get(openapi),
        )
        .route(
            Op::get(
                "/api/health",
                "getHealth",
                "meta",
                "Whether the gateway answers, and its version (no login needed: for health checks)",
            )
            .public()
            .returns::<Health>(200),
            get(health),
        )
        .route(
            Op::get(
                "/api/login-options",
                "getLoginOptions",
                "meta",
                "How to log in to this gateway (no login needed: the dashboard's login page asks it)",
            )
            .public()
            .returns::<LoginOptions>(200),
            get(login_options),
        )
        .route(
            Op::get("/api/me", "getMe", "me", "The logged-in user (or whom an admin views as)")
                .returns::<MeView>(200)
                .link("getUser", "id", "$response.body#/id"),
            get(me),
        )
        // profiles
        .route(
            Op::get(
                "/api/profiles",
                "listProfiles",
                "profiles",
                "The profiles the caller can see",
            )
            .query::<PageQuery>()
            .returns::<Page<profiles::ProfileView>>(200),
            get(profiles::list),
        )
        .route(
            Op::post(
                "/api/profiles",
                "createProfile",
                "profiles",
                "Create a profile owned by the caller; its token is shown once",
            )
            .body::<profiles::CreateProfile>()
            .returns::<profiles::CreatedProfile>(201)
            .link("getProfile", "slug", "$response.body#/profile/slug")
            .link("renameProfile", "slug", "$response.body#/profile/slug")
            .link("setProfileServers", "slug", "$response.body#/profile/slug")
            .link("rotateProfileToken", "slug", "$response.body#/profile/slug")
            .link("deleteProfile", "slug", "$response.body#/profile/slug"),
            post(profiles::create),
        )
        .route(
            Op::get("/api/profiles/{slug}", "getProfile", "profiles", "A profile")
                .returns::<profiles::ProfileView>(200)
                .etag(),
            get(profiles::get),
        )
        .route(
            Op::patch(
                "/api/profiles/{slug}",
                "renameProfile",
                "profiles",
                "Change a profile's display name",
            )
            .body::<profiles::RenameProfile>()
            .returns::<profiles::ProfileView>(200),
            patch(profiles::rename),
        )
        .route(
            Op::delete(
                "/api/profiles/{slug}",
                "deleteProfile",
                "profiles",
                "Delete a profile; its clients are disconnected (its servers' state only with delete_state)",
            )
            .query::<RemoveQuery>()
            .no_content(),
            delete(profiles::delete),
        )
        .route(
            Op::put(
                "/api/profiles/{slug}/servers",
                "setProfileServers",
                "profiles",
                "Set the servers a profile serves, in order (refused on a name collision)",
            )
            .body::<profiles::SetServers>()
            .returns::<profiles::ProfileView>(200)
            .if_match(),
            put(profiles::set_servers),
        )
        .route(
            Op::post(
                "/api/profiles/{slug}/token",
                "rotateProfileToken",
                "profiles",
                "Replace a profile's token; the old one stops working at once",
            )
            .returns::<profiles::NewTokenView>(200),
            post(profiles::rotate_token),
        )
        .route(
            Op::get(
                "/api/profiles/{slug}/tools",
                "listProfileTools",
                "profiles",
                "The tools the profile's clients see (its servers are started to list them)",
            )
            .returns::<tools::ToolList>(200),
            get(tools::list),
        )
        .route(
            Op::post(
                "/api/profiles/{slug}/tools/call",
                "callProfileTool",
                "profiles",
                "Call a tool through the profile's pipeline (servers, plugins, audit) as the logged-in user",
            )
            .body::<tools::CallTool>()
            .returns::<tools::ToolCallView>(200),
            post(tools::call),
        )
        // servers
        .route(
            Op::get(
                "/api/servers",
                "listServers",
                "servers",
                "Servers, with their running sandboxes",
            )
            .query::<PageQuery>()
            .returns::<Page<servers::ServerView>>(200),
            get(servers::list),
        )
        .route(
            Op::get(
                "/api/catalog",
                "listCatalog",
                "catalog",
                "The signed catalog's entries (their latest versions)",
            )
            .returns::<catalog::CatalogView>(200),
            get(catalog::list),
        )
        .route(
            Op::get(
                "/api/catalog/{name}",
                "getCatalogEntry",
                "catalog",
                "One catalog entry: what it runs, where it connects, its credential and tools",
            )
            .query::<catalog::EntryQuery>()
            .returns::<catalog::CatalogEntryDetail>(200),
            get(catalog::get),
        )
        .route(
            Op::post(
                "/api/servers/{name}/consent",
                "consentServer",
                "servers",
                "Consent to the runtime a catalog toolpack was upgraded to (admins)",
            )
            .returns::<servers::Consented>(200),
            post(servers::consent),
        )
        .route(
            Op::get(
                "/api/profiles/{slug}/tool-switches",
                "listToolSwitches",
                "profiles",
                "The catalog tools of the profile's toolpacks, on or off",
            )
            .returns::<Vec<gigmcp_ops::install::ProfileTool>>(200),
            get(profiles::tools_switches),
        )
        .route(
            Op::post(
                "/api/profiles/{slug}/tool-switches",
                "switchTool",
                "profiles",
                "Turn a catalog tool on or off for the profile",
            )
            .body::<profiles::SwitchTool>()
            .returns::<Vec<gigmcp_ops::install::ProfileTool>>(200),
            post(profiles::switch_tool),
        )
        .route(
            Op::post("/api/servers", "addServer", "servers", "Define a server (admins)")
                .body::<servers::CreateServer>()
                .returns::<servers::ServerView>(201)
                .link("getServer", "name", "$response.body#/name")
                .link("restartServer", "name", "$response.body#/name")
                .link("updateServer", "name", "$response.body#/name")
                .link("removeServer", "name", "$response.body#/name"),
            post(servers::create),
        )
        .route(
            Op::get(
                "/api/servers/{name}",
                "getServer",
                "servers",
                "A server, with its running sandboxes",
            )
            .returns::<servers::ServerView>(200),
            get(servers::get),
        )
        .route(
            Op::patch(
                "/api/servers/{name}",
                "updateServer",
                "servers",
                "Replace the hosts a server may reach through the egress proxy (admins)",
            )
            .body::<servers::UpdateServer>()
            .returns::<servers::ServerView>(200),
            patch(servers::update),
        )
        .route(
            Op::delete(
                "/api/servers/{name}",
                "removeServer",
                "servers",
                "Remove a server that no profile uses, its state only with delete_state (admins)",
            )
            .query::<RemoveQuery>()
            .no_content(),
            delete(servers::delete),
        )
        .route(
            Op::post(
                "/api/servers/{name}/restart",
                "restartServer",
                "servers",
                "Restart a server's idle processes (admins)",
            )
            .returns::<servers::Restarted>(200),
            post(servers::restart),
        )
        .route(
            Op::get(
                "/api/servers/{name}/logs",
                "getServerLogs",
                "servers",
                "A server's recent stderr and the gateway's lines about its sandboxes (admins)",
            )
            .query::<servers::LogsQuery>()
            .returns::<servers::ServerLog>(200),
            get(servers::logs),
        )
        .route(
            Op::get(
                "/api/servers/{name}/logs/follow",
                "followServerLogs",
                "servers",
                "A server's log as it is written (admins)",
            )
            .query::<servers::LogsQuery>()
            .event_stream(
                "Server-sent events: the lines kept, then each new one, as `line` events whose data is a LogLine \
                 (JSON) and whose id is its seq; resumes after Last-Event-ID. A stream ends after 5 minutes (an \
                 EventSource reconnects).",
            ),
            get(servers::follow_logs),
        )
        // metrics
        .route(
            Op::get(
                "/api/metrics/tool-calls",
                "toolCallSeries",
                "metrics",
                "Tool calls, denials, errors and latency over time (per minute, kept 8 days), by profile, server and plugin",
            )
            .query::<metrics::SeriesQuery>()
            .returns::<metrics::Series>(200),
            get(metrics::tool_calls),
        )
        // credentials
        .route(
            Op::get(
                "/api/credentials",
                "listCredentials",
                "credentials",
                "Credentials: metadata only, never a secret",
            )
            .query::<credentials::CredentialQuery>()
            .returns::<Page<credentials::CredentialView>>(200),
            get(credentials::list),
        )
        .route(
            Op::put(
                "/api/credentials",
                "setCredential",
                "credentials",
                "Create or replace a credential (write-only secret)",
            )
            .body::<credentials::SetCredential>()
            .returns::<credentials::CredentialView>(200)
            .link("deleteCredential", "server", "$response.body#/server")
            .link("deleteCredential", "name", "$response.body#/name"),
            put(credentials::set),
        )
        .route(
            Op::delete(
                "/api/credentials/{server}/{name}",
                "deleteCredential",
                "credentials",
                "Delete a credential and its secret",
            )
            .query::<credentials::ScopeQuery>()
            .no_content(),
            delete(credentials::delete),
        )
        // plugins
        .route(
            Op::get("/api/plugins", "listPlugins", "plugins", "Policy plugins (admins)")
                .query::<PageQuery>()
                .returns::<Page<plugins::PluginView>>(200),
            get(plugins::list),
        )
        .route(
            Op::post(
                "/api/plugins",
                "uploadPlugin",
                "plugins",
                "Upload a component (.wasm) as a new plugin or a new version (admins)",
            )
            .query::<plugins::UploadQuery>()
            .binary_body()
            .returns::<plugins::PluginDetail>(201),
            post(plugins::upload),
        )
        .route(
            Op::get(
                "/api/plugins/{name}",
                "inspectPlugin",
                "plugins",
                "A plugin: schema, imports, exports, revisions (admins)",
            )
            .returns::<plugins::PluginDetail>(200)
            .etag(),
            get(plugins::inspect),
        )
        .route(
            Op::delete(
                "/api/plugins/{name}",
                "removePlugin",
                "plugins",
                "Remove a plugin (admins)",
            )
            .no_content(),
            delete(plugins::remove),
        )
        .route(
            Op::post(
                "/api/plugins/{name}/test",
                "testPlugin",
                "plugins",
                "Run one hook of a plugin on a sample input, as `gigmcp plugin test` does: a dry run, nothing acted on (admins)",
            )
            .body::<plugins::TestCall>()
            .returns::<plugins::TestResult>(200),
            post(plugins::test),
        )
        .route(
            Op::put(
                "/api/plugins/{name}/config",
                "configurePlugin",
                "plugins",
                "Configure a plugin (admins)",
            )
            .body::<plugins::Configure>()
            .returns::<plugins::PluginDetail>(200)
            .if_match(),
            put(plugins::configure),
        )
        .route(
            Op::put(
                "/api/plugins/{name}/enabled",
                "enablePlugin",
                "plugins",
                "Enable or disable a plugin (admins)",
            )
            .body::<plugins::Enabled>()
            .returns::<plugins::PluginDetail>(200),
            put(plugins::set_enabled),
        )
        .route(
            Op::post(
                "/api/plugins/{name}/bindings",
                "bindPlugin",
                "plugins",
                "Bind a plugin globally or to a profile, in order (admins)",
            )
            .body::<plugins::Bind>()
            .returns::<plugins::PluginDetail>(200),
            post(plugins::bind),
        )
        .route(
            Op::delete(
                "/api/plugins/{name}/bindings",
                "unbindPlugin",
                "plugins",
                "Unbind a plugin (admins)",
            )
            .query::<plugins::UnbindQuery>()
            .returns::<plugins::PluginDetail>(200),
            delete(plugins::unbind),
        )
        .route(
            Op::post(
                "/api/plugins/{name}/rollback",
                "rollbackPlugin",
                "plugins",
                "Go back to a plugin's previous revision (admins)",
            )
            .returns::<plugins::PluginDetail>(200),
            post(plugins::rollback),
        )
        .route(
            Op::get(
                "/api/plugins/{name}/metrics",
                "pluginMetrics",
                "plugins",
                "A plugin's calls, failures and latency (admins)",
            )
            .returns::<plugins::MetricsView>(200),
            get(plugins::metrics),
        )
        // webhooks audit sinks deliver to
        .route(
            Op::get(
                "/api/webhooks",
                "listWebhooks",
                "plugins",
                "Webhooks audit sinks may deliver to (admins)",
            )
            .query::<PageQuery>()
            .returns::<Page<plugins::WebhookView>>(200),
            get(plugins::webhooks),
        )
        .route(
            Op::put(
                "/api/webhooks/{name}",
                "setWebhook",
                "plugins",
                "Register or re-point the webhook audit sinks reach as webhook:<name> (admins)",
            )
            .body::<plugins::SetWebhook>()
            .returns::<plugins::WebhookView>(200)
            .link("removeWebhook", "name", "$response.body#/name"),
            put(plugins::set_webhook),
        )
        .route(
            Op::delete(
                "/api/webhooks/{name}",
                "removeWebhook",
                "plugins",
                "Remove a webhook (admins)",
            )
            .no_content(),
            delete(plugins::remove_webhook),
        )
        // connected accounts
        .route(
            Op::get(
                "/api/oauth/apps",
                "listOAuthApps",
                "connections",
                "The OAuth apps set up, one per vendor (no secrets)",
            )
            .returns::<Vec<connections::AppView>>(200),
            get(connections::list_apps),
        )
        .route(
            Op::get(
                "/api/oauth/redirect-uri",
                "getOAuthRedirectUri",
                "connections",
                "The redirect URI to register at providers for this gateway's OAuth apps",
            )
            .returns::<connections::RedirectUri>(200),
            get(connections::redirect_uri),
        )
        .route(
            Op::get("/api/oauth/apps/{vendor}", "getOAuthApp", "connections", "A vendor's OAuth app")
                .returns::<connections::AppView>(200),
            get(connections::get_app),
        )
        .route(
            Op::put(
                "/api/oauth/apps/{vendor}",
                "setOAuthApp",
                "connections",
                "Set up or change a vendor's OAuth app (admins; the client secret is write-only)",
            )
            .body::<connections::PutApp>()
            .returns::<connections::AppView>(200)
            .link("getOAuthApp", "vendor", "$response.body#/vendor"),
            put(connections::put_app),
        )
        .route(
            Op::delete(
                "/api/oauth/apps/{vendor}",
                "deleteOAuthApp",
                "connections",
                "Remove a vendor's OAuth app and its client secret (admins)",
            )
            .no_content(),
            delete(connections::delete_app),
        )
        .route(
            Op::get(
                "/api/connections",
                "listConnections",
                "connections",
                "Connected accounts: the caller's, or (admins) the operator's or everyone's; never a token",
            )
            .query::<connections::ConnectionsQuery>()
            .returns::<Vec<connections::ConnectionView>>(200),
            get(connections::list),
        )
        .route(
            Op::get(
                "/api/connections/callback",
                "connectionCallback",
                "connections",
                "Where the provider sends the browser back: finishes the connection",
            )
            .redirects("to the page the connection was started from"),
            get(connections::callback),
        )
        .route(
            Op::get(
                "/api/connections/{vendor}/start",
                "startConnection",
                "connections",
                "Connect an account of a vendor: sends the browser to the provider",
            )
            .query::<connections::StartQuery>()
            .redirects("to the provider's authorization page"),
            get(connections::start),
        )
        .route(
            Op::delete(
                "/api/connections/{vendor}",
                "disconnect",
                "connections",
                "Disconnect an account (revoked at the provider when it can be)",
            )
            .query::<connections::OwnerQuery>()
            .no_content(),
            delete(connections::disconnect),
        )
        // audit
        .route(
            Op::get("/api/audit", "listAudit", "audit", "The audit log, newest first")
                .query::<audit::AuditQuery>()
                .returns::<Page<audit::AuditEventView>>(200),
            get(audit::list),
        )
        // users
        .route(
            Op::get("/api/users", "listUsers", "users", "Users (admins)")
                .query::<PageQuery>()
                .returns::<Page<UserView>>(200),
            get(users::list),
        )
        .route(
            Op::get("/api/users/{id}", "getUser", "users", "A user (admins)").returns::<UserView>(200),
            get(users::get),
        )
        .route(
            Op::patch(
                "/api/users/{id}",
                "updateUser",
                "users",
                "Change a user's role until their next login (admins)",
            )
            .body::<users::UpdateUser>()
            .returns::<UserView>(200),
            patch(users::update),
        )
        .route(
            Op::delete("/api/users/{id}", "deleteUser", "users", "Delete a user (admins)").no_content(),
            delete(users::delete),
        )
        .route(
            Op::post(
                "/api/users/{id}/view-as",
                "viewAsUser",
                "users",
                "See the dashboard as this user, read-only, for at most an hour (admins; audited)",
            )
            .body::<users::ViewAs>()
            .returns::<MeView>(200),
            post(users::view_as),
        )
        .route(
            Op::delete(
                "/api/me/view-as",
                "stopViewingAs",
                "me",
                "Stop viewing as another user (audited)",
            )
            .no_content(),
            delete(users::stop_viewing),
        )
}

/// The API's routes; anything else under `/api` is a JSON 404.
pub fn routes() -> axum::Router<Arc<ControlState>> {
    api()
        .router()
        .route("/api", any(unknown_route))
        .route("/api/{*rest}", any(unknown_route))
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("no such API route; see /api/openapi.json")
}

/// The document as the dashboard's sources hold it (`web/src/api/openapi.json`): pretty-printed, so a change
/// to the API shows as a readable diff there.
pub fn document_text() -> String {
    serde_json::to_string_pretty(&api().document()).expect("a JSON value serializes")
}

/// The document is made once: it depends on the code only.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let document = DOCUMENT.get_or_init(|| Bytes::from(api().document().to_string()));
    ([(header::CONTENT_TYPE, "application/json")], document.clone()).into_response()
}

/// Routes that answer without a session and while the identity provider is not ready: health checks must
/// see a starting gateway as up, and the login page must be able to say that the provider is not ready.
pub const PUBLIC_ROUTES: &[&str] = &["/api/health", "/api/login-options", "/api/openapi.json"];

/// `GET /api/health`.
#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// Always `ok`: a gateway that answers is up.
    pub status: &'static str,
    /// The gateway's version.
    pub version: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /api/login-options`: the ways to log in.
#[derive(Serialize, JsonSchema)]
pub struct LoginOptions {
    /// The identity provider, when one is configured (`GIG_OIDC_ISSUER`).
    pub oidc: Option<OidcOption>,
    /// The operator's command that prints a single-use login link (works with or without a provider).
    pub login_link_command: &'static str,
}

#[derive(Serialize, JsonSchema)]
pub struct OidcOption {
    /// Where a browser goes to log in (a full-page navigation; add `?return_to=<path>`).
    pub login_url: &'static str,
    /// Whether the provider's discovery succeeded; logins fail until it has.
    pub ready: bool,
    /// Why it is not ready.
    pub reason: Option<String>,
}

async fn login_options(State(state): State<Arc<ControlState>>) -> Json<LoginOptions> {
    Json(LoginOptions {
        oidc: state.oidc.as_ref().map(|oidc| {
            let reason = oidc.ready().err();
            OidcOption {
                login_url: "/auth/login",
                ready: reason.is_none(),
                reason,
            }
        }),
        login_link_command: "gigmcp admin login-link",
    })
}

async fn me(State(state): State<Arc<ControlState>>, caller: Caller) -> Result<Json<MeView>, ApiError> {
    let viewing = caller.viewing.clone();
    let user = crate::blocking(&state, move |state| {
        state.store.user(caller.user).map_err(ApiError::internal)
    })
    .await?
    .ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(MeView::new(user, viewing)))
}

/// The logged-in user, or whom an admin views as.
#[derive(Serialize, JsonSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    /// Present while an admin views the dashboard as this user: read-only, until `until`.
    pub view_as: Option<ViewAsView>,
}

#[derive(Serialize, JsonSchema)]
pub struct ViewAsView {
    /// The admin who looks.
    pub admin_id: i64,
    pub admin_name: String,
    /// When the view ends by itself (Unix seconds).
    pub until: i64,
}

impl MeView {
    pub fn new(user: User, viewing: Option<crate::session::Viewing>) -> Self {
        Self {
            user: UserView::from(user),
            view_as: viewing.map(|v| ViewAsView {
                admin_id: v.admin.id.0,
                admin_name: v.admin.name.clone().unwrap_or_else(|| v.admin.subject.clone()),
                until: v.until,
            }),
        }
    }
}

/// A user as the API shows it.
#[derive(Serialize, JsonSchema)]
pub struct UserView {
    pub id: i64,
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Role,
    /// The profiles the auth-mapper granted beyond the user's own: `"all"` or a list of slugs.
    pub profiles: AccessView,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum AccessView {
    /// Always `"all"`.
    All(AllProfiles),
    Only(Vec<String>),
}

#[derive(Serialize, JsonSchema)]
pub enum AllProfiles {
    #[serde(rename = "all")]
    All,
}

impl From<&ProfileAccess> for AccessView {
    fn from(access: &ProfileAccess) -> Self {
        match access {
            ProfileAccess::All => AccessView::All(AllProfiles::All),
            ProfileAccess::Only(slugs) => AccessView::Only(slugs.clone()),
        }
    }
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            id: user.id.0,
            profiles: AccessView::from(&user.profiles),
            issuer: user.issuer,
            subject: user.subject,
            name: user.name,
            email: user.email,
            role: user.role,
            created_at: user.created_at,
            last_login_at: user.last_login_at,
        }
    }
}

// ---- extractors: every rejection is the API's error envelope

/// A strictly decoded JSON body (`Content-Type: application/json`).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = raw_body(request, state).await?;
        // Every body the API takes is a JSON object (as its schema says): serde alone would also take a struct
        // written as an array of its fields.
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::bad_request("invalid request body: send a JSON object"));
        }
        serde_json::from_value(value)
            .map(Body)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
    }
}

/// The request body's bytes, bounded by the API's body limit.
pub async fn raw_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than GIG_MAX_BODY_BYTES allows",
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {}", e.body_text()))
        }
    })
}

/// A JSON response with the object's entity tag in `ETag`.
pub struct Tagged<T>(pub String, pub T);

impl<T: Serialize> IntoResponse for Tagged<T> {
    fn into_response(self) -> Response {
        match http::HeaderValue::from_str(&self.0) {
            Ok(tag) => ([(header::ETAG, tag)], Json(self.1)).into_response(),
            Err(_) => ApiError::internal(format!("an entity tag is not a header value: {:?}", self.0)).into_response(),
        }
    }
}

/// The request's `If-Match` header, if it has one.
pub struct IfMatch(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            Some(value) => value
                .to_str()
                .map(|v| IfMatch(Some(v.to_owned())))
                .map_err(|_| ApiError::bad_request("If-Match must be entity tags in ASCII, like \"rev-12\"")),
        }
    }
}

/// Strictly decoded query parameters.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {}", e.body_text())))
    }
}

/// Path parameters.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParams(p.0))
            .map_err(|e| ApiError::bad_request(format!("invalid path: {}", e.body_text())))
    }
}

// ---- pagination

/// `?delete_state=true`: a removal that would delete servers' state directories goes ahead (without it,
/// such a removal is refused with 409 naming them).
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Confirms that the state directories the removal orphans are deleted with it.
    pub delete_state: Option<bool>,
}

/// `?limit=&after=`: at most `limit` items (default 50, at most 500) after the key `after`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// At most this many items (1–500, default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(50),
            Some(n @ 1..=500) => Ok(n as usize),
            Some(n) => Err(ApiError::bad_request(format!(
                "limit {n} is out of range: give 1 to 500"
            ))),
        }
    }
}

/// One page of a list; `next` is the `after` of the following page, absent on the last.
#[derive(Serialize, JsonSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// Cuts a page from items sorted by key, all above the `after` key: `limit` items, and `next` when more
    /// remain.
    pub fn cut(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(key) } else { None };
        Page { items, next }
    }
}
