//! The REST API under `/api`: JSON in and out, strictly decoded (an unknown field is named in the error),
//! bounded bodies, one error envelope, keyset pagination for lists. Every route is declared once in
//! [`api`], which yields both the router and the OpenAPI document.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use http::request::Parts;
use http::{StatusCode, header};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::openapi::{Api, Operation};
use super::{ApiError, Caller, ControlState};
use crate::plugins::hooks::ProfileAccess;
use crate::store::users::{Role, User};

/// The API's route table.
pub fn api() -> Api {
    Api::default()
        .route(
            Operation::get("/api/openapi.json", "openapi", "meta", "This document (OpenAPI 3.1)")
                .returns::<serde_json::Value>(200),
            get(openapi),
        )
        .route(
            Operation::get("/api/me", "getMe", "me", "The logged-in user").returns::<UserView>(200),
            get(me),
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

async fn openapi() -> Response {
    Json(api().document()).into_response()
}

async fn me(State(state): State<Arc<ControlState>>, caller: Caller) -> Result<Json<UserView>, ApiError> {
    let user = super::blocking(&state, move |state| {
        state.store.user(caller.user).map_err(ApiError::internal)
    })
    .await?
    .ok_or_else(ApiError::unauthenticated)?;
    Ok(Json(UserView::from(user)))
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
        serde_json::from_slice(&bytes)
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
