//! Browser sessions, the CSRF check, and single-use login links.
//!
//! A session is a random token in an HttpOnly cookie (`gigmcp_session`, SameSite=Lax, Secure when the public
//! URL is https); the store keeps only its SHA-256 (invariant 6). Cookies ride along on cross-site requests
//! that SameSite=Lax still allows (top-level GET navigations), so every state-changing request must also
//! prove it comes from the gateway's own origin ([`same_origin`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::json;

use crate::{ApiError, ControlState};
use gigmcp_store::users::{LOGIN_LINK_ISSUER, NewUser, User, WebSession};
use gigmcp_store::{Store, StoreError};
use gigmcp_types::audit::{NewAuditEvent, Outcome};
use gigmcp_types::ids::UserId;
use gigmcp_types::token::{NewToken, TokenHash};
use gigmcp_types::user::ProfileAccess;
use gigmcp_types::user::Role;

pub const COOKIE_NAME: &str = "gigmcp_session";
/// How long a login link printed by `gigmcp admin login-link` stays valid.
pub const LOGIN_LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// The value of a `Set-Cookie` header.
pub type SetCookie = HeaderValue;

/// Makes, finds and ends web sessions.
pub struct Sessions {
    store: Arc<Store>,
    ttl: Duration,
    secure: bool,
}

use gigmcp_types::sync::now_secs as now;

impl Sessions {
    /// `secure`: the public URL is https, so cookies are marked `Secure`.
    pub fn new(store: Arc<Store>, ttl: Duration, secure: bool) -> Self {
        Self { store, ttl, secure }
    }

    /// Starts a session for the user; returns the `Set-Cookie` value that carries it.
    pub fn create(&self, user: UserId) -> Result<SetCookie, StoreError> {
        let token = NewToken::generate();
        let ttl = self.ttl.as_secs() as i64;
        self.store.create_web_session(&token.hash(), user, now() + ttl)?;
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={ttl}{secure}",
            token.reveal()
        );
        HeaderValue::from_str(&cookie).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The `Set-Cookie` value that removes the session cookie from the browser.
    pub fn clear_cookie(&self) -> SetCookie {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
        ))
        .unwrap_or(HeaderValue::from_static("gigmcp_session=; Path=/; Max-Age=0"))
    }

    /// Ends the caller's session; `false` when the request carried none (or an unknown one).
    pub fn end(&self, headers: &HeaderMap) -> Result<bool, StoreError> {
        match session_token(headers) {
            Some(hash) => self.store.delete_web_session(&hash),
            None => Ok(false),
        }
    }

    /// The user of the caller's session, if it is valid.
    pub fn user(&self, headers: &HeaderMap) -> Result<Option<User>, StoreError> {
        Ok(self.session(headers)?.map(|s| s.user))
    }

    /// The caller's session, if it is valid: its user, and whom it views as.
    pub fn session(&self, headers: &HeaderMap) -> Result<Option<WebSession>, StoreError> {
        match session_token(headers) {
            Some(hash) => self.store.web_session(&hash),
            None => Ok(None),
        }
    }

    /// Makes the caller's session view as `user` until `until` (Unix seconds), or (`None`) stop.
    pub fn set_view_as(&self, headers: &HeaderMap, view_as: Option<(UserId, i64)>) -> Result<bool, StoreError> {
        match session_token(headers) {
            Some(hash) => self.store.set_session_view_as(&hash, view_as),
            None => Ok(false),
        }
    }
}

/// The hash of the session token in the request's cookies.
fn session_token(headers: &HeaderMap) -> Option<TokenHash> {
    cookie(headers, COOKIE_NAME).map(|value| TokenHash::of(value.trim()))
}

/// The value of cookie `name` in the request, if any.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// CSRF protection for state-changing requests: the `Origin` must be the public URL's origin; a request
/// without `Origin` passes only with `Sec-Fetch-Site: same-origin`. Anything else (no header at all, another
/// site, `null`) is refused.
pub fn same_origin(headers: &HeaderMap, state: &ControlState) -> bool {
    origin_allowed(headers, &state.public_url)
}

/// [`same_origin`] for a public URL.
pub fn origin_allowed(headers: &HeaderMap, public_url: &url::Url) -> bool {
    let expected = public_url.origin().ascii_serialization();
    match headers.get(header::ORIGIN) {
        Some(origin) => origin.to_str().is_ok_and(|o| o == expected),
        None => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("same-origin")),
    }
}

/// The logged-in user of an API request. Without a valid session the request gets 401. While an admin views
/// as someone else, the caller is that user, and `viewing` says who looks and until when.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub role: Role,
    /// The profiles the auth-mapper granted beyond the user's own.
    pub profiles: ProfileAccess,
    pub viewing: Option<Viewing>,
}

/// An admin viewing the dashboard as the caller: read-only.
#[derive(Debug, Clone)]
pub struct Viewing {
    pub admin: User,
    /// Unix seconds.
    pub until: i64,
}

/// The one change a session that views as someone may make: stopping.
pub const STOP_VIEWING: &str = "/api/me/view-as";

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The actor of audit events this caller causes.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user)
    }

    /// Refuses non-admins (servers and plugins are powers over the host: invariant 7).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("only admins may do this"))
        }
    }
}

impl FromRequestParts<Arc<ControlState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ControlState>) -> Result<Self, Self::Rejection> {
        let headers = parts.headers.clone();
        let session = crate::blocking(state, move |state| {
            state.sessions.session(&headers).map_err(ApiError::internal)
        })
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
        let Some(view_as) = session.view_as else {
            let user = session.user;
            return Ok(Caller {
                user: user.id,
                role: user.role,
                profiles: user.profiles,
                viewing: None,
            });
        };
        // Viewing as someone is read-only: only reading, and stopping, go through.
        let reads = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !reads && parts.uri.path() != STOP_VIEWING {
            let who = view_as.user.name.as_deref().unwrap_or(&view_as.user.subject);
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "read_only",
                format!("you are viewing as {who}, read-only: stop viewing as them to make changes"),
            ));
        }
        let user = view_as.user;
        Ok(Caller {
            user: user.id,
            role: user.role,
            profiles: user.profiles,
            viewing: Some(Viewing {
                admin: session.user,
                until: view_as.until,
            }),
        })
    }
}

/// `GET /auth/link/{token}`.
pub fn routes() -> Router<Arc<ControlState>> {
    Router::new().route("/auth/link/{token}", get(use_login_link))
}

/// Makes a single-use login link for `subject` with `role`, valid [`LOGIN_LINK_TTL`]; returns its URL. The
/// link's token is shown only in that URL; the store keeps its hash.
pub fn create_login_link(
    store: &Store,
    public_url: &url::Url,
    subject: &str,
    role: Role,
) -> Result<String, StoreError> {
    let token = NewToken::generate();
    store.create_login_link(&token.hash(), now() + LOGIN_LINK_TTL.as_secs() as i64, subject, role)?;
    let mut url = public_url.clone();
    url.set_path(&format!("/auth/link/{}", token.reveal()));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.to_string())
}

/// Uses a login link: the first use before expiry starts a session and goes to `/`; any other use is 404.
async fn use_login_link(State(state): State<Arc<ControlState>>, Path(token): Path<String>) -> Response {
    let outcome = crate::blocking(&state, move |state| {
        let Some((subject, role)) = state
            .store
            .consume_login_link(&TokenHash::of(&token))
            .map_err(ApiError::internal)?
        else {
            return Ok(None);
        };
        let user = state
            .store
            .upsert_user(&NewUser {
                issuer: LOGIN_LINK_ISSUER.to_owned(),
                subject: subject.clone(),
                name: Some(subject.clone()),
                email: None,
                role,
                profiles: ProfileAccess::Only(Vec::new()),
            })
            .map_err(ApiError::internal)?;
        let cookie = state.sessions.create(user).map_err(ApiError::internal)?;
        state.audit.record(NewAuditEvent {
            kind: "auth.login_link".into(),
            actor: format!("user:{user}"),
            profile: None,
            server: None,
            outcome: Outcome::Ok,
            detail: json!({"subject": subject, "role": role.as_str()}),
        });
        Ok(Some(cookie))
    })
    .await;
    match outcome {
        Ok(Some(cookie)) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, HeaderValue::from_static("/")),
            ],
        )
            .into_response(),
        Ok(None) => {
            state.audit.record(NewAuditEvent {
                kind: "auth.login_link".into(),
                actor: "anonymous".into(),
                profile: None,
                server: None,
                outcome: Outcome::Deny,
                detail: json!({"reason": "unknown, used or expired link"}),
            });
            ApiError::not_found(
                "this login link is unknown, already used or expired; make a new one with `gigmcp admin login-link`",
            )
            .into_response()
        }
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn csrf_check_wants_the_public_origin_or_a_same_origin_fetch() {
        let url = url::Url::parse("https://mcp.example.com/some/path").unwrap();
        assert!(origin_allowed(&headers(&[("origin", "https://mcp.example.com")]), &url));
        for refused in [
            vec![],
            vec![("origin", "https://evil.example")],
            vec![("origin", "http://mcp.example.com")],
            vec![("origin", "https://mcp.example.com:8443")],
            vec![("origin", "null")],
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![("origin", "https://evil.example"), ("sec-fetch-site", "same-origin")],
        ] {
            assert!(!origin_allowed(&headers(&refused), &url), "{refused:?} passed");
        }
        assert!(origin_allowed(&headers(&[("sec-fetch-site", "same-origin")]), &url));
    }

    #[test]
    fn a_session_cookie_is_httponly_lax_secure_on_https_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db.sqlite")).unwrap());
        let user = store
            .upsert_user(&NewUser {
                issuer: "test".into(),
                subject: "u".into(),
                name: None,
                email: None,
                role: Role::User,
                profiles: ProfileAccess::Only(Vec::new()),
            })
            .unwrap();
        for secure in [true, false] {
            let sessions = Sessions::new(store.clone(), Duration::from_secs(3600), secure);
            let cookie = sessions.create(user).unwrap();
            let cookie = cookie.to_str().unwrap().to_owned();
            for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
                assert!(cookie.contains(attribute), "{cookie}");
            }
            assert_eq!(cookie.contains("Secure"), secure, "{cookie}");
            let request = headers(&[("cookie", cookie.split(';').next().unwrap())]);
            assert_eq!(sessions.user(&request).unwrap().unwrap().id, user);
            assert!(sessions.end(&request).unwrap());
            assert!(sessions.user(&request).unwrap().is_none());
            assert!(!sessions.end(&request).unwrap());
            assert!(sessions.clear_cookie().to_str().unwrap().contains("Max-Age=0"));
        }
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; gigmcp_session=tok; b=2")]);
        assert_eq!(session_token(&map), Some(TokenHash::of("tok")));
        assert_eq!(session_token(&headers(&[("cookie", "gigmcp_session_x=tok")])), None);
    }
}
