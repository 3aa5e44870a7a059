//! OpenID Connect login: `GET /auth/login`, `GET /auth/callback`, `POST /auth/logout`.
//!
//! The path of a login reads straight through `callback`: the signed flow cookie is checked (signature, expiry),
//! the provider's `state` is compared with the cookie's, the code is exchanged with the cookie's PKCE verifier,
//! the ID token is verified (signature against the provider's keys, issuer, audience, expiry, and the cookie's
//! nonce), its claims go to the `auth-mapper` plugins, which decide the role and the profiles granted, the user
//! (keyed by issuer and subject) is written and a session made. Any failure answers with the step that failed
//! and changes nothing: no user row, no session. Every outcome is an `auth.login` audit event.
//!
//! The flow state (state, nonce, PKCE verifier, expiry) lives in a cookie signed with HMAC-SHA256 under a key
//! kept in the vault ([`SecretKind::OidcFlowKey`]): it survives restarts and is shared by every gateway on the
//! same database, so a login may start on one gateway and come back to another. See README.md in this folder.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthType, AuthorizationCode, ClaimsVerificationError, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IdTokenFields, IssuerUrl, LogoutProviderMetadata, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl, RequestTokenError,
    Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::session::cookie;
use crate::{ApiError, ControlState};
use flow::{Flow, FlowError, FlowKey, ReturnTo, same_secret};
use gigmcp_store::users::NewUser;
use gigmcp_types::audit::{NewAuditEvent, Outcome};
use gigmcp_types::policy::{AuthOutcome, CallContext, Identity};
use gigmcp_types::user::Role;

pub(crate) mod flow;
use gigmcp_types::report::error_chain;
use gigmcp_vault::{Vault, VaultError};

/// The OpenID Connect client (`GIG_OIDC_*`). The client secret never appears in `Debug` output.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer exactly as given: discovery requires the provider to state the same string.
    pub issuer: String,
    pub client_id: String,
    /// None: a public client (PKCE only).
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: the gateway's `/auth/callback` as the browser reaches it.
    pub redirect_url: url::Url,
    /// How long a login may take from `/auth/login` to the callback (`GIG_OIDC_FLOW_TTL`, default 10 min).
    pub flow_ttl: std::time::Duration,
    /// Scopes asked for besides `openid` (`GIG_OIDC_SCOPES`, space or comma separated; default
    /// `profile email`).
    pub scopes: Vec<String>,
    /// PEM certificates trusted for the provider besides the public roots (`GIG_OIDC_CA_FILE`): a provider
    /// with a certificate of a private CA.
    pub extra_roots_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "<redacted>"))
            .field("redirect_url", &self.redirect_url.as_str())
            .field("flow_ttl", &self.flow_ttl)
            .field("scopes", &self.scopes)
            .field("extra_roots_pem", &self.extra_roots_pem.as_ref().map(|p| p.len()))
            .finish()
    }
}

pub use flow::FLOW_COOKIE;

/// Discovery is retried after 1 s, 2 s, 4 s … up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// Once discovery succeeded, it is repeated this often so that rotated signing keys are picked up; a failed
/// refresh keeps what the last success found.
const REFRESH: Duration = Duration::from_secs(15 * 60);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// An ID token whose signature the known keys do not verify makes the gateway fetch the keys again, at most
/// this often.
const MIN_KEY_REFRESH: Duration = Duration::from_secs(10);

// ---- the openidconnect client, typed for claims the gateway does not know in advance

/// Every claim of the ID token beyond the standard ones (`groups`, `roles`, a provider's own…), kept as JSON
/// so the auth-mapper plugins see what the provider said.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type OidcIdTokenFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcTokenResponse = StandardTokenResponse<OidcIdTokenFields, CoreTokenType>;
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    OidcTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovery fields the crate does not read itself: RFC 9207's flag (the provider names itself in its answers
/// to the browser, which defeats mix-up attacks) and RP-Initiated Logout's endpoint (through
/// `LogoutProviderMetadata`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct IssuerInAnswers {
    authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for IssuerInAnswers {}

type Metadata = ProviderMetadata<
    LogoutProviderMetadata<IssuerInAnswers>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// What discovery found: a client for the provider, and where its users log out.
struct Provider {
    client: OidcClient,
    end_session: Option<EndSessionUrl>,
    /// The issuer the provider's answers to the browser must name (`iss`), when it declares that it names one.
    answers_name: Option<String>,
}

#[derive(Debug, Error)]
pub enum OidcError {
    #[error("cannot read or create the OIDC flow-signing key in the vault: {0}")]
    Vault(#[from] VaultError),
    #[error("the OIDC flow-signing key in the vault is not 32 bytes; delete it (it is recreated at start-up)")]
    BadKey,
    #[error("cannot make the HTTP client for the identity provider: {0}")]
    Http(String),
}

/// The OpenID Connect client of the control plane. Discovery runs in the background until it succeeds
/// (`ready` says why it has not); logins are refused with that reason meanwhile.
pub struct Oidc {
    settings: OidcSettings,
    flow_key: FlowKey,
    http: reqwest::Client,
    provider: RwLock<Result<Arc<Provider>, String>>,
    /// `Secure` on the flow cookie: the public URL is https.
    secure_cookies: bool,
    /// Where the provider sends users back after logging out: the public URL's root.
    post_logout_redirect: url::Url,
    last_key_refresh: Mutex<Option<Instant>>,
}

impl Oidc {
    /// Reads (or, on a new database, creates) the flow-signing key, and starts discovery in the background on
    /// the current tokio runtime.
    pub fn start(settings: OidcSettings, vault: &Vault, public_url: &url::Url) -> Result<Arc<Self>, OidcError> {
        let flow_key = FlowKey::load_or_create(vault)?;
        let mut http = reqwest::Client::builder()
            // openidconnect's advice: never follow redirects from the provider (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT);
        if let Some(pem) = &settings.extra_roots_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| OidcError::Http(e.to_string()))? {
                http = http.add_root_certificate(certificate);
            }
        }
        let http = http.build().map_err(|e| OidcError::Http(e.to_string()))?;
        let oidc = Arc::new(Self {
            provider: RwLock::new(Err(format!(
                "OIDC discovery of {} has not completed yet",
                settings.issuer
            ))),
            settings,
            flow_key,
            http,
            secure_cookies: public_url.scheme() == "https",
            post_logout_redirect: public_url.join("/").unwrap_or_else(|_| public_url.clone()),
            last_key_refresh: Mutex::new(None),
        });
        tokio::spawn(oidc.clone().discover_until_ready());
        Ok(oidc)
    }

    /// `Err(reason)` while discovery has not succeeded yet: the API answers 503 with the reason.
    pub fn ready(&self) -> Result<(), String> {
        self.provider().map(|_| ())
    }

    fn provider(&self) -> Result<Arc<Provider>, String> {
        self.provider.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_provider(&self, value: Result<Arc<Provider>, String>) {
        *self.provider.write().unwrap_or_else(|e| e.into_inner()) = value;
    }

    async fn discover_until_ready(self: Arc<Self>) {
        let issuer = self.settings.issuer.clone();
        let mut delay = Duration::from_secs(1);
        let mut attempt: u32 = 1;
        loop {
            match self.discover().await {
                Ok(provider) => {
                    self.set_provider(Ok(Arc::new(provider)));
                    tracing::info!(%issuer, attempt, "OIDC discovery succeeded: logins through {issuer} are open");
                    break;
                }
                Err(reason) => {
                    tracing::warn!(
                        %issuer,
                        attempt,
                        retry_in_secs = delay.as_secs(),
                        "OIDC discovery failed: {reason}; the API answers 503 until it succeeds (MCP endpoints are \
                         not affected)"
                    );
                    self.set_provider(Err(format!(
                        "the identity provider is not reachable yet: OIDC discovery of {issuer} failed (attempt \
                         {attempt}): {reason}; retrying"
                    )));
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
            attempt += 1;
        }
        // Keys rotate: discover again now and then; a failed refresh keeps the last good answer.
        loop {
            tokio::time::sleep(REFRESH).await;
            match self.discover().await {
                Ok(provider) => self.set_provider(Ok(Arc::new(provider))),
                Err(reason) => tracing::warn!(%issuer, "OIDC refresh failed, keeping the last discovery: {reason}"),
            }
        }
    }

    /// Discovery again now, for keys the provider rotated in, at most once per [`MIN_KEY_REFRESH`]; the new
    /// provider if it succeeded.
    async fn refresh_keys(&self) -> Option<Arc<Provider>> {
        {
            let mut last = self.last_key_refresh.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < MIN_KEY_REFRESH) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match self.discover().await {
            Ok(provider) => {
                let provider = Arc::new(provider);
                self.set_provider(Ok(provider.clone()));
                tracing::info!(issuer = %self.settings.issuer, "OIDC keys refreshed: an ID token was signed with a key not seen before");
                Some(provider)
            }
            Err(reason) => {
                tracing::warn!(issuer = %self.settings.issuer, "OIDC key refresh failed: {reason}");
                None
            }
        }
    }

    async fn discover(&self) -> Result<Provider, String> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| error_chain(&e))?;
        let extra = metadata.additional_metadata();
        let end_session = extra.end_session_endpoint.clone();
        let answers_name = (extra.additional_metadata.authorization_response_iss_parameter_supported == Some(true))
            .then(|| metadata.issuer().as_str().to_owned());
        // Basic authentication unless the provider says it only takes the secret in the body.
        let auth_type = match metadata.token_endpoint_auth_methods_supported() {
            Some(methods)
                if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                    && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
            {
                AuthType::RequestBody
            }
            _ => AuthType::BasicAuth,
        };
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::from_url(self.settings.redirect_url.clone()))
        .set_auth_type(auth_type);
        Ok(Provider {
            client,
            end_session,
            answers_name,
        })
    }

    /// `Set-Cookie` for a login's flow state; only `/auth/callback` (the redirect URL's path) receives it.
    fn flow_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let cookie = format!(
            "{FLOW_COOKIE}={value}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
            self.settings.redirect_url.path()
        );
        // The value is base64url and the path came from a parsed URL: always a valid header.
        HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("gigmcp_oidc_flow=; Max-Age=0"))
    }
}

fn now_secs() -> u64 {
    gigmcp_types::sync::now_secs().max(0) as u64
}

// ---- routes

/// `GET /auth/login`, `GET /auth/callback`, `POST /auth/logout`.
pub fn routes() -> Router<Arc<ControlState>> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
}

fn configured(state: &ControlState) -> Result<&Arc<Oidc>, ApiError> {
    state.oidc.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "no identity provider is configured (GIG_OIDC_ISSUER and the rest are unset); an operator can log in \
             with a link from `gigmcp admin login-link`",
        )
    })
}

fn not_ready(reason: String) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "oidc_unavailable", reason)
}

/// A 303 to `location` setting `cookies`, never cached.
pub(crate) fn redirect(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Starts a login: a fresh state, nonce and PKCE verifier go into the signed flow cookie, and the browser to
/// the provider's authorization endpoint. `?return_to=<path>` says where to go once logged in (default `/`).
async fn login(State(state): State<Arc<ControlState>>, RawQuery(query): RawQuery) -> Response {
    let oidc = match configured(&state) {
        Ok(oidc) => oidc,
        Err(e) => return e.into_response(),
    };
    let mut return_to = ReturnTo::parse("/").expect("/ is a path");
    for (key, value) in url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()) {
        if key != "return_to" {
            continue;
        }
        match ReturnTo::parse(&value) {
            Some(path) => return_to = path,
            None => {
                return ApiError::bad_request(
                    "return_to must be a path on this gateway, like /profiles (not another site, at most 512 bytes)",
                )
                .into_response();
            }
        }
    }
    let provider = match oidc.provider() {
        Ok(provider) => provider,
        Err(reason) => return not_ready(reason).into_response(),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = provider
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in &oidc.settings.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, csrf, nonce) = request.url();
    let ttl = oidc.settings.flow_ttl.as_secs();
    let flow = Flow {
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        expires_at: now_secs() + ttl,
        return_to: return_to.into_string(),
    };
    let cookie = oidc.flow_cookie(&oidc.flow_key.sign(&flow), ttl);
    redirect(url.as_str(), vec![cookie])
}

/// The provider's answer, from the query string. Parsed by hand rather than with axum's `Query`, so a
/// malformed or repeated parameter is a refused login (audited, in the error envelope), not a bare 400.
#[derive(Debug, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// RFC 9207: the provider that answered.
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackQuery {
    fn parse(query: Option<&str>) -> Result<Self, Refused> {
        let mut parsed = Self::default();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match key.as_ref() {
                "code" => &mut parsed.code,
                "state" => &mut parsed.state,
                "iss" => &mut parsed.iss,
                "error" => &mut parsed.error,
                "error_description" => &mut parsed.error_description,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(refused(
                    StatusCode::BAD_REQUEST,
                    "malformed_answer",
                    format!("the provider's answer repeats the parameter {key}"),
                ));
            }
        }
        Ok(parsed)
    }
}

/// Why a login failed: the response and the audit event's reason.
struct Refused {
    error: ApiError,
    issuer: Option<String>,
    subject: Option<String>,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            issuer: None,
            subject: None,
        }
    }
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refused {
    ApiError::new(status, code, message).into()
}

/// Finishes a login. The flow cookie is cleared whatever happens: a flow is used once.
async fn callback(State(state): State<Arc<ControlState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let oidc = match configured(&state) {
        Ok(oidc) => oidc.clone(),
        Err(e) => return e.into_response(),
    };
    let clear_flow = oidc.flow_cookie("", 0);
    let login = match CallbackQuery::parse(query.as_deref()) {
        Ok(query) => complete_login(&state, &oidc, &headers, query).await,
        Err(refusal) => Err(refusal),
    };
    match login {
        // Checked at /auth/login and signed into the flow: a path on this gateway.
        Ok((session_cookie, return_to)) => redirect(&return_to, vec![clear_flow, session_cookie]),
        Err(refusal) => {
            let Refused { error, issuer, subject } = refusal;
            tracing::warn!(
                code = error.code,
                issuer = issuer.as_deref().unwrap_or("-"),
                subject = subject.as_deref().unwrap_or("-"),
                "login refused: {}",
                error.message
            );
            state.audit.record(NewAuditEvent {
                kind: "auth.login".into(),
                actor: "anonymous".into(),
                profile: None,
                server: None,
                outcome: if error.status.is_server_error() {
                    Outcome::Error
                } else {
                    Outcome::Deny
                },
                detail: json!({
                    "method": "oidc",
                    "code": error.code,
                    "reason": error.message,
                    "issuer": issuer,
                    "subject": subject,
                }),
            });
            let mut response = error.into_response();
            response.headers_mut().append(header::SET_COOKIE, clear_flow);
            response
        }
    }
}

/// The steps of a login's return, in order; returns the session cookie.
async fn complete_login(
    state: &Arc<ControlState>,
    oidc: &Oidc,
    headers: &HeaderMap,
    query: CallbackQuery,
) -> Result<(HeaderValue, String), Refused> {
    // 1. The flow this browser started, unaltered and in time.
    let cookie = cookie(headers, FLOW_COOKIE).filter(|c| !c.is_empty()).ok_or_else(|| {
        refused(
            StatusCode::BAD_REQUEST,
            "no_login_in_progress",
            "no login is in progress in this browser (the flow cookie is missing or expired); start at /auth/login",
        )
    })?;
    let flow = oidc.flow_key.verify(cookie, now_secs()).map_err(|e| {
        let code = match e {
            FlowError::Expired => "flow_expired",
            FlowError::BadSignature => "flow_tampered",
            FlowError::Malformed => "flow_malformed",
        };
        refused(StatusCode::BAD_REQUEST, code, e.to_string())
    })?;
    // 2. The answer is to this flow's request (CSRF on the redirect).
    let returned_state = query.state.as_deref().unwrap_or("");
    if !same_secret(returned_state, &flow.state) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "state_mismatch",
            "the provider's answer does not belong to the login this browser started (state mismatch); start again \
             at /auth/login",
        ));
    }
    // 3. The provider may have refused.
    if let Some(error) = query.error {
        let detail = query.error_description.map(|d| format!(" ({d})")).unwrap_or_default();
        return Err(refused(
            StatusCode::FORBIDDEN,
            "provider_refused",
            format!("the identity provider refused the login: {error}{detail}"),
        ));
    }
    let code = query.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        refused(
            StatusCode::BAD_REQUEST,
            "missing_code",
            "the provider's answer carries neither a code nor an error",
        )
    })?;
    let provider = oidc.provider().map_err(not_ready)?;
    // 4. The answer comes from our provider (RFC 9207, when it declares that it says so): a code another
    // provider issued is never sent to ours.
    if let Some(expected) = &provider.answers_name
        && query.iss.as_deref() != Some(expected.as_str())
    {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "issuer_mismatch",
            format!(
                "the answer names issuer {:?}, not {expected}: it does not come from this gateway's identity provider",
                query.iss.as_deref().unwrap_or("(none)")
            ),
        ));
    }
    // 5. The code, exchanged with the verifier only this flow knows (PKCE).
    let exchange = provider
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            refused(
                StatusCode::BAD_GATEWAY,
                "provider_misconfigured",
                format!("the provider has no token endpoint: {e}"),
            )
        })?;
    let tokens = exchange
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
        .request_async(&oidc.http)
        .await
        .map_err(|e| match &e {
            RequestTokenError::ServerResponse(answer) => refused(
                StatusCode::FORBIDDEN,
                "code_refused",
                format!("the identity provider refused the code: {answer}"),
            ),
            _ => refused(
                StatusCode::BAD_GATEWAY,
                "token_exchange_failed",
                format!(
                    "the code could not be exchanged at the identity provider: {}",
                    error_chain(&e)
                ),
            ),
        })?;
    // 6. The ID token: signed by the provider, for this client, this flow (nonce), still valid.
    let id_token = tokens.id_token().ok_or_else(|| {
        refused(
            StatusCode::BAD_GATEWAY,
            "no_id_token",
            "the identity provider answered without an ID token",
        )
    })?;
    let nonce = Nonce::new(flow.nonce.clone());
    let mut provider = provider;
    let mut verified = id_token.claims(&provider.client.id_token_verifier(), &nonce);
    // A signature that the discovered keys do not verify may be made with a key the provider rotated in
    // since: look at its keys again (rate-limited) and verify once more.
    if matches!(verified, Err(ClaimsVerificationError::SignatureVerification(_)))
        && let Some(fresh) = oidc.refresh_keys().await
    {
        provider = fresh;
        verified = id_token.claims(&provider.client.id_token_verifier(), &nonce);
    }
    let claims = verified.map_err(|e| {
        refused(
            StatusCode::UNAUTHORIZED,
            "id_token_invalid",
            format!("the ID token was not accepted: {}", error_chain(&e)),
        )
    })?;
    let issuer = claims.issuer().as_str().to_owned();
    let subject = claims.subject().as_str().to_owned();
    let with_who = |error: ApiError| Refused {
        error,
        issuer: Some(issuer.clone()),
        subject: Some(subject.clone()),
    };
    // 7. The userinfo endpoint's claims too, when the provider has one: some release roles and groups only
    // there. Its subject must be the ID token's; where both state a claim, the ID token's wins.
    let mut all_claims = serde_json::Map::new();
    if let Ok(request) = provider
        .client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
    {
        let info: UserInfoClaims<OtherClaims, CoreGenderClaim> =
            request.request_async(&oidc.http).await.map_err(|e| {
                with_who(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "userinfo_failed",
                    format!("the identity provider's userinfo endpoint failed: {}", error_chain(&e)),
                ))
            })?;
        if let Ok(Value::Object(map)) = serde_json::to_value(&info) {
            all_claims.extend(map);
        }
    }
    if let Ok(Value::Object(map)) = serde_json::to_value(claims) {
        all_claims.extend(map);
    }
    let claims_json = Value::Object(all_claims);
    // 8. The auth-mapper plugins decide who this is to the gateway.
    let identity = Identity {
        issuer: issuer.clone(),
        subject: subject.clone(),
        claims: claims_json.clone(),
        token_fingerprint: hex::encode(Sha256::digest(id_token.to_string().as_bytes())),
    };
    let request_id = hex::encode(rand::random::<[u8; 8]>());
    let principal = match state
        .plugins
        .map_identity(&CallContext::new(request_id, None), &identity)
        .await
    {
        AuthOutcome::Principal(principal) => principal,
        AuthOutcome::Unauthenticated(reason) => {
            return Err(with_who(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "not_recognised",
                format!("the login was not recognised: {reason}"),
            )));
        }
        AuthOutcome::Forbidden(reason) => {
            return Err(with_who(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_allowed",
                format!("the login is not allowed: {reason}"),
            )));
        }
    };
    let role = if principal.roles.iter().any(|r| r == "admin") {
        Role::Admin
    } else {
        Role::User
    };
    let text = |name: &str| claims_json.get(name).and_then(Value::as_str).map(str::to_owned);
    let user = NewUser {
        issuer: issuer.clone(),
        subject: subject.clone(),
        name: text("name").or_else(|| text("preferred_username")),
        email: text("email"),
        role,
        profiles: principal.profiles.clone(),
    };
    // 9. The user (refreshed role and grant) and a new session; a session this browser still had ends, so a
    // login never leaves an older token alive beside the new one.
    let control = state.clone();
    let headers = headers.clone();
    let (user_id, session_cookie) = tokio::task::spawn_blocking(move || {
        let id = control.store.upsert_user(&user)?;
        control.sessions.end(&headers)?;
        Ok::<_, gigmcp_store::StoreError>((id, control.sessions.create(id)?))
    })
    .await
    .map_err(ApiError::internal)
    .and_then(|r| r.map_err(ApiError::internal))
    .map_err(with_who)?;
    tracing::info!(user = %user_id, %issuer, %subject, role = role.as_str(), "login");
    state.audit.record(NewAuditEvent {
        kind: "auth.login".into(),
        actor: format!("user:{user_id}"),
        profile: None,
        server: None,
        outcome: Outcome::Ok,
        detail: json!({
            "method": "oidc",
            "issuer": issuer,
            "subject": subject,
            "role": role.as_str(),
            "mapped_user": principal.user,
        }),
    });
    // Signed at /auth/login after it was checked; checked again all the same, it is a redirect target.
    let return_to = ReturnTo::parse(&flow.return_to).map_or_else(|| "/".to_owned(), ReturnTo::into_string);
    Ok((session_cookie, return_to))
}

/// Ends the caller's session (any session, with or without an identity provider), then sends the browser to
/// the provider's end-session endpoint when it has one, else to `/`. State-changing, so same-origin only.
///
/// A script (`Accept: application/json`) gets `200 {"redirect": <url>}` instead of the 303: `fetch` cannot read
/// a redirect to another origin, and the page has to navigate there itself.
async fn logout(State(state): State<Arc<ControlState>>, headers: HeaderMap) -> Response {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if !crate::same_origin(&headers, &state) {
        return ApiError::forbidden(
            "cross-site request refused: logging out needs an Origin (or Sec-Fetch-Site) of this gateway",
        )
        .into_response();
    }
    let control = state.clone();
    let ended = tokio::task::spawn_blocking(move || {
        let user = control.sessions.user(&headers)?;
        Ok::<_, gigmcp_store::StoreError>((user, control.sessions.end(&headers)?))
    })
    .await;
    let user = match ended {
        Ok(Ok((user, true))) => user,
        Ok(Ok((_, false))) => None,
        Ok(Err(e)) => return ApiError::internal(e).into_response(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    if let Some(user) = user {
        state.audit.record(NewAuditEvent {
            kind: "auth.logout".into(),
            actor: format!("user:{}", user.id),
            profile: None,
            server: None,
            outcome: Outcome::Ok,
            detail: json!({"issuer": user.issuer, "subject": user.subject}),
        });
    }
    let location = state
        .oidc
        .as_ref()
        .and_then(|oidc| Some((oidc, oidc.provider().ok()?)))
        .and_then(|(oidc, provider)| {
            let endpoint = provider.end_session.clone()?;
            Some(
                LogoutRequest::from(endpoint)
                    .set_client_id(ClientId::new(oidc.settings.client_id.clone()))
                    .set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(oidc.post_logout_redirect.clone()))
                    .http_get_url()
                    .to_string(),
            )
        })
        .unwrap_or_else(|| "/".to_owned());
    if wants_json {
        let mut response = axum::Json(json!({ "redirect": location })).into_response();
        let headers = response.headers_mut();
        headers.append(header::SET_COOKIE, state.sessions.clear_cookie());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    }
    redirect(&location, vec![state.sessions.clear_cookie()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_beyond_the_standard_ones_are_kept() {
        let claims: OtherClaims = serde_json::from_str(r#"{"groups":["ops"],"x":{"y":1}}"#).unwrap();
        let back = serde_json::to_value(&claims).unwrap();
        assert_eq!(back, json!({"groups":["ops"],"x":{"y":1}}));
    }
}
