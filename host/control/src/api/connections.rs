//! `/api/oauth/apps` (admins set up one OAuth app per vendor) and `/api/connections` (every user connects
//! their own accounts; admins also the operator's, used by profiles without an owner).
//!
//! A connection is made through the browser: `GET /api/connections/{vendor}/start` signs the flow (state,
//! PKCE verifier, who connects, the scopes, where to return) into a short-lived cookie scoped to
//! `/api/connections` and redirects to the provider; the provider redirects to
//! `GET /api/connections/callback`, which checks, in this order: the cookie (missing, altered, expired),
//! the provider's `error`, the `state`; then the broker exchanges the code. The cookie is cleared whatever
//! happens. No response ever carries a token or a client secret.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::{Body, PathParams, Query};
use crate::oidc::flow::{FlowError, FlowKey, ReturnTo};
use crate::oidc::redirect;
use crate::session::cookie;
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_oauth::{BrokerError, SecretInput};
use gigmcp_store::oauth::StoredApp;
use gigmcp_types::audit::{NewAuditEvent, Outcome};
use gigmcp_types::oauth::{App, AuthStyle, Connection, ConnectionState, DEFAULT_EXPIRES_IN, Owner, Vendor};
use gigmcp_types::sync::now_secs;

/// The cookie carrying a connection's flow from start to callback.
pub const CONNECT_COOKIE: &str = "gigmcp_connect_flow";
/// What the flow cookie's signature is for (the login flow's key signs it, for this purpose only).
const PURPOSE: &str = "connection flow v1";

impl From<BrokerError> for ApiError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::Input(e) => ApiError::bad_request(e.to_string()),
            BrokerError::Unsafe(m) => ApiError::bad_request(m),
            e @ BrokerError::NoApp(_) => ApiError::not_found(e.to_string()),
            BrokerError::Provider(m) => ApiError::new(StatusCode::BAD_GATEWAY, "provider_failed", m),
            e => ApiError::internal(e),
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct AppView {
    pub vendor: String,
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: Option<String>,
    pub client_id: String,
    /// Scopes asked for on every connection, besides those installed servers need.
    pub scopes: Vec<String>,
    /// A public client (PKCE, no client secret).
    pub pkce: bool,
    /// Extra authorization parameters.
    pub params: BTreeMap<String, String>,
    /// `basic` or `post`.
    pub auth_style: AuthStyle,
    pub scope_separator: String,
    pub require_refresh_token: bool,
    pub default_expires_in: u64,
    /// Whether a client secret is stored (it is never shown).
    pub has_secret: bool,
    /// The installed servers with an oauth2 credential of this vendor.
    pub servers: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutApp {
    /// The provider's authorization endpoint (https, a public host).
    pub authorize_url: String,
    /// The provider's token endpoint (https, a public host).
    pub token_url: String,
    /// RFC 7009 revocation endpoint, used when a connection is removed.
    pub revoke_url: Option<String>,
    pub client_id: String,
    /// The client secret; absent or empty keeps the stored one. Never shown again.
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A public client: PKCE without a client secret.
    #[serde(default)]
    pub pkce: bool,
    /// Extra authorization parameters (`{"audience": "api.atlassian.com"}`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// How the client authenticates at the token endpoint (default basic).
    pub auth_style: Option<AuthStyle>,
    /// `" "` (default) or `","`.
    pub scope_separator: Option<String>,
    /// Refuse a connection without a refresh token (default true).
    pub require_refresh_token: Option<bool>,
    /// Seconds an access token is taken to live when the provider does not say (default 3600).
    pub default_expires_in: Option<u64>,
}

#[derive(Serialize, JsonSchema)]
pub struct ConnectionView {
    pub vendor: String,
    /// The user id, or `operator`.
    pub owner: String,
    pub scopes: Vec<String>,
    /// Unix seconds when the current access token expires (it is refreshed before).
    pub expires_at: i64,
    /// Whether the provider gave a refresh token.
    pub refreshable: bool,
    /// `ok`, or `needs-reconnect` (connect again).
    pub state: ConnectionState,
    /// Why, when not ok.
    pub detail: Option<String>,
    pub connected_at: i64,
    pub refreshed_at: Option<i64>,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsQuery {
    /// `me` (default), `operator` or `all` (admins).
    pub owner: Option<String>,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct OwnerQuery {
    /// `operator`: the operator's connection (admins), used by profiles without an owner.
    #[serde(rename = "as")]
    pub as_owner: Option<String>,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// The server the connection is for: where the browser returns.
    pub server: Option<String>,
    /// Where to return instead (a path on this gateway).
    pub return_to: Option<String>,
    /// `operator`: connect the operator's account (admins).
    #[serde(rename = "as")]
    pub as_owner: Option<String>,
}

fn app_view(stored: StoredApp, servers: Vec<String>) -> AppView {
    let app = stored.app;
    AppView {
        vendor: app.vendor.to_string(),
        authorize_url: app.authorize_url,
        token_url: app.token_url,
        revoke_url: app.revoke_url,
        client_id: app.client_id,
        scopes: app.scopes,
        pkce: app.pkce,
        params: app.params.into_iter().collect(),
        auth_style: app.auth_style,
        scope_separator: app.scope_separator,
        require_refresh_token: app.require_refresh_token,
        default_expires_in: app.default_expires_in,
        has_secret: stored.has_secret,
        servers,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

pub fn connection_view(c: Connection) -> ConnectionView {
    ConnectionView {
        vendor: c.vendor.to_string(),
        owner: c.owner.key(),
        scopes: c.scopes,
        expires_at: c.expires_at,
        refreshable: c.refreshable,
        state: c.state,
        detail: c.detail,
        connected_at: c.connected_at,
        refreshed_at: c.refreshed_at,
    }
}

fn vendor(text: &str) -> Result<Vendor, ApiError> {
    Vendor::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// The caller's own connection, or (`as=operator`, admins only) the operator's.
fn owner(caller: &Caller, as_owner: Option<&str>) -> Result<Owner, ApiError> {
    match as_owner {
        None | Some("me") => Ok(Owner::User(caller.user)),
        Some("operator") => {
            caller.require_admin()?;
            Ok(Owner::Operator)
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "as={other:?}: give `operator` (admins) or nothing for your own connection"
        ))),
    }
}

/// `GET /api/oauth/redirect-uri`.
#[derive(Serialize, JsonSchema)]
pub struct RedirectUri {
    /// The callback to register at a provider for this gateway's OAuth apps (from GIG_PUBLIC_URL).
    pub redirect_uri: String,
}

pub async fn redirect_uri(State(state): State<Arc<ControlState>>, _caller: Caller) -> Json<RedirectUri> {
    Json(RedirectUri {
        redirect_uri: callback_url(&state),
    })
}

// ---- apps

pub async fn list_apps(
    State(state): State<Arc<ControlState>>,
    _caller: Caller,
) -> Result<Json<Vec<AppView>>, ApiError> {
    blocking(&state, move |state| {
        let apps = state.oauth.apps()?;
        apps.into_iter()
            .map(|stored| {
                let servers = state.oauth.servers_needing(&stored.app.vendor)?;
                Ok(app_view(stored, servers))
            })
            .collect::<Result<Vec<_>, ApiError>>()
            .map(Json)
    })
    .await
}

pub async fn get_app(
    State(state): State<Arc<ControlState>>,
    _caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<Json<AppView>, ApiError> {
    let vendor = vendor(&name)?;
    blocking(&state, move |state| {
        let stored = state.oauth.app(&vendor)?;
        let servers = state.oauth.servers_needing(&vendor)?;
        Ok(Json(app_view(stored, servers)))
    })
    .await
}

pub async fn put_app(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Body(body): Body<PutApp>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let vendor = vendor(&name)?;
    let app = App {
        vendor: vendor.clone(),
        authorize_url: body.authorize_url,
        token_url: body.token_url,
        revoke_url: body.revoke_url.filter(|u| !u.is_empty()),
        client_id: body.client_id,
        scopes: body.scopes,
        pkce: body.pkce,
        params: body.params.into_iter().collect(),
        auth_style: body.auth_style.unwrap_or(AuthStyle::Basic),
        scope_separator: body.scope_separator.unwrap_or_else(|| " ".into()),
        require_refresh_token: body.require_refresh_token.unwrap_or(true),
        default_expires_in: body.default_expires_in.unwrap_or(DEFAULT_EXPIRES_IN),
    };
    let secret = match body.client_secret.filter(|s| !s.is_empty()) {
        Some(text) => SecretInput::Set(
            gigmcp_types::credential::secret_from_input(zeroize::Zeroizing::new(text.into_bytes()))
                .map_err(|e| ApiError::bad_request(format!("client_secret: {e}")))?,
        ),
        None => SecretInput::Keep,
    };
    let actor = caller.actor();
    blocking(&state, move |state| {
        let created = state.oauth.put_app(&actor, &app, secret)?;
        let stored = state.oauth.app(&vendor)?;
        let servers = state.oauth.servers_needing(&vendor)?;
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        Ok((status, Json(app_view(stored, servers))).into_response())
    })
    .await
}

pub async fn delete_app(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let vendor = vendor(&name)?;
    let actor = caller.actor();
    blocking(&state, move |state| {
        if state.oauth.delete_app(&actor, &vendor)? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::not_found(format!("no OAuth app for vendor {vendor}")))
        }
    })
    .await
}

// ---- connections

pub async fn list(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(query): Query<ConnectionsQuery>,
) -> Result<Json<Vec<ConnectionView>>, ApiError> {
    let owner = match query.owner.as_deref() {
        None | Some("me") => Some(Owner::User(caller.user)),
        Some("operator") => {
            caller.require_admin()?;
            Some(Owner::Operator)
        }
        Some("all") => {
            caller.require_admin()?;
            None
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "owner={other:?}: give me, operator or all"
            )));
        }
    };
    blocking(&state, move |state| {
        Ok(Json(
            state
                .oauth
                .connections(owner)?
                .into_iter()
                .map(connection_view)
                .collect(),
        ))
    })
    .await
}

pub async fn disconnect(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Query(query): Query<OwnerQuery>,
) -> Result<StatusCode, ApiError> {
    let vendor = vendor(&name)?;
    let owner = owner(&caller, query.as_owner.as_deref())?;
    if caller.viewing.is_some() {
        return Err(ApiError::forbidden("viewing as another user is read-only"));
    }
    let (deleted, _) = state.oauth.disconnect(&caller.actor(), owner, &vendor).await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no {vendor} account is connected for {owner}"
        )))
    }
}

/// A connection in progress, as the flow cookie carries it.
#[derive(Serialize, Deserialize)]
struct ConnectFlow {
    state: String,
    verifier: String,
    vendor: String,
    /// A user id, or `operator`.
    owner: String,
    /// The user who started it (who must finish it).
    user: i64,
    scopes: Vec<String>,
    redirect_uri: String,
    return_to: String,
    expires_at: i64,
}

fn flow_cookie(state: &ControlState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{CONNECT_COOKIE}={value}; Path=/api/connections; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(
        "gigmcp_connect_flow=; Path=/api/connections; Max-Age=0",
    ))
}

fn callback_url(state: &ControlState) -> String {
    let mut url = state.public_url.clone();
    url.set_path("/api/connections/callback");
    url.set_query(None);
    url.to_string()
}

fn flow_key(state: &ControlState) -> Result<FlowKey, ApiError> {
    FlowKey::load_or_create(&state.vault).map_err(ApiError::internal)
}

/// Starts connecting the caller's account (or the operator's) of a vendor: to the provider.
pub async fn start(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(name): PathParams<String>,
    Query(query): Query<StartQuery>,
) -> Result<Response, ApiError> {
    let vendor = vendor(&name)?;
    let owner = owner(&caller, query.as_owner.as_deref())?;
    if caller.viewing.is_some() {
        return Err(ApiError::forbidden("viewing as another user is read-only"));
    }
    let return_to = match (&query.return_to, &query.server) {
        (Some(path), _) => ReturnTo::parse(path)
            .ok_or_else(|| ApiError::bad_request("return_to must be a path on this gateway, like /connections"))?
            .into_string(),
        (None, Some(server)) => {
            let server = gigmcp_types::names::ServerName::parse(server)?;
            format!("/servers/{server}")
        }
        (None, None) => "/connections".to_owned(),
    };
    let actor = caller.actor();
    let user = caller.user.0;
    blocking(&state, move |state| {
        let ttl = state.connect_flow_ttl.as_secs() as i64;
        let stored = state.oauth.app(&vendor)?;
        let scopes = state.oauth.scopes_for(&stored.app)?;
        let redirect_uri = callback_url(state);
        let (flow_state, verifier) = (gigmcp_oauth::flow::random_token(), gigmcp_oauth::flow::random_token());
        let url = gigmcp_oauth::flow::authorization_url(&stored.app, &redirect_uri, &flow_state, &verifier, &scopes)
            .map_err(|e| ApiError::internal(format!("the {vendor} app's authorize URL: {e}")))?;
        let flow = ConnectFlow {
            state: flow_state,
            verifier,
            vendor: vendor.to_string(),
            owner: owner.key(),
            user,
            scopes: scopes.clone(),
            redirect_uri,
            return_to,
            expires_at: now_secs() + ttl,
        };
        let cookie = flow_cookie(state, &flow_key(state)?.sign_for(PURPOSE, &flow), ttl);
        state.audit.record(NewAuditEvent {
            kind: "oauth.connect_start".into(),
            actor,
            profile: None,
            server: None,
            outcome: Outcome::Ok,
            detail: json!({"vendor": vendor.as_str(), "owner": flow.owner, "scopes": scopes}),
        });
        Ok(redirect(url.as_str(), vec![cookie]))
    })
    .await
}

/// The provider's answer, from the query string: each parameter once.
#[derive(Default)]
struct Answer {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn parse_answer(query: Option<&str>) -> Result<Answer, ApiError> {
    let mut answer = Answer::default();
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut answer.code,
            "state" => &mut answer.state,
            "error" => &mut answer.error,
            "error_description" => &mut answer.error_description,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(ApiError::bad_request(format!("the provider's answer repeats {key}")));
        }
    }
    Ok(answer)
}

/// Finishes a connection; the flow cookie is cleared whatever happens (a flow is used once).
pub async fn callback(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let clear = flow_cookie(&state, "", 0);
    match finish(&state, &caller, &headers, query.as_deref()).await {
        Ok(return_to) => redirect(&return_to, vec![clear]),
        Err((error, vendor)) => {
            tracing::warn!(code = error.code, "connection refused: {}", error.message);
            state.audit.record(NewAuditEvent {
                kind: "oauth.connect".into(),
                actor: caller.actor(),
                profile: None,
                server: None,
                outcome: if error.status.is_server_error() {
                    Outcome::Error
                } else {
                    Outcome::Deny
                },
                detail: json!({"vendor": vendor, "code": error.code, "reason": error.message}),
            });
            let mut response = error.into_response();
            response.headers_mut().append(header::SET_COOKIE, clear);
            response
        }
    }
}

/// The callback's steps, in order; returns where the browser goes.
async fn finish(
    state: &Arc<ControlState>,
    caller: &Caller,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, (ApiError, Option<String>)> {
    let bare = |e: ApiError| (e, None);
    // 1. The flow this browser started, unaltered and in time.
    let cookie = cookie(headers, CONNECT_COOKIE).filter(|c| !c.is_empty()).ok_or_else(|| {
        bare(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_connection_in_progress",
            "no connection is in progress in this browser (its flow cookie is missing or expired); start again from \
             Connected accounts",
        ))
    })?;
    let key = flow_key(state).map_err(bare)?;
    let flow: ConnectFlow = key.verify_for(PURPOSE, cookie).map_err(|e| {
        let code = match e {
            FlowError::BadSignature => "flow_forged",
            _ => "flow_malformed",
        };
        bare(ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            "the connection's flow cookie was altered or is malformed; start again from Connected accounts",
        ))
    })?;
    let vendor_name = Some(flow.vendor.clone());
    let fail = |e: ApiError| (e, vendor_name.clone());
    if now_secs() >= flow.expires_at {
        return Err(fail(ApiError::new(
            StatusCode::BAD_REQUEST,
            "flow_expired",
            "the connection took too long at the provider (GIG_CONNECT_FLOW_TTL); start again from Connected accounts",
        )));
    }
    if flow.user != caller.user.0 {
        return Err(fail(ApiError::new(
            StatusCode::BAD_REQUEST,
            "flow_of_another_user",
            "this connection was started by another user of this browser; start again from Connected accounts",
        )));
    }
    let answer = parse_answer(query).map_err(fail)?;
    // 2. The provider's refusal (the user cancelled, or the app is misconfigured): nothing to exchange.
    if let Some(error) = answer.error {
        return Err(fail(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "provider_refused",
            format!(
                "the provider did not grant access: {error}{}",
                answer.error_description.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        )));
    }
    // 3. The answer belongs to this flow.
    let given = answer.state.unwrap_or_default();
    if !constant_time_eq(given.as_bytes(), flow.state.as_bytes()) {
        return Err(fail(ApiError::new(
            StatusCode::BAD_REQUEST,
            "state_mismatch",
            "the provider's answer does not belong to the connection this browser started; start again",
        )));
    }
    let code = answer.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        fail(ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_code",
            "the provider's answer carries no authorization code",
        ))
    })?;
    let vendor = Vendor::parse(&flow.vendor).map_err(|e| fail(ApiError::bad_request(e.to_string())))?;
    let owner = Owner::parse(&flow.owner).ok_or_else(|| fail(ApiError::bad_request("the flow names no owner")))?;
    // 4. The exchange: the broker stores the connection (and audits it).
    state
        .oauth
        .connect(
            &caller.actor(),
            owner,
            &vendor,
            gigmcp_oauth::Exchange {
                code: &code,
                verifier: &flow.verifier,
                redirect_uri: &flow.redirect_uri,
                requested: &flow.scopes,
            },
        )
        .await
        .map_err(|e| fail(e.into()))?;
    Ok(flow.return_to)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
