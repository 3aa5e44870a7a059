//! `/api/credentials`: write-only secrets. A secret goes in once and never comes back out; lists show
//! metadata. Admins manage every credential; a user only those scoped to a profile they own (server-wide
//! credentials apply to every profile, so they are an admin's).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::api::profiles::{lookup, lookup_writable};
use crate::api::{Body, Page, PathParams, Query};
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_ops::{Actor, CredentialInput, Ops, credential_spec};
use gigmcp_types::credential::{Credential, CredentialName, secret_from_input};
use gigmcp_types::names::{ProfileSlug, ServerName};

#[derive(Serialize, JsonSchema)]
pub struct CredentialView {
    pub server: String,
    /// The profile it is scoped to; absent when server-wide.
    pub profile: Option<String>,
    pub name: String,
    pub hosts: String,
    pub header: String,
    pub format: String,
    /// The variable the server finds the placeholder in.
    pub env_name: String,
    /// The placeholder, shortened.
    pub placeholder: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetCredential {
    pub server: String,
    /// Scope it to one profile (it then replaces the server-wide credential of the same name there).
    pub profile: Option<String>,
    pub name: String,
    /// Hosts the secret may be sent to, comma separated: api.example.com, *.example.com, with an optional :port.
    pub hosts: String,
    /// The header the secret goes into (default Authorization).
    pub header: Option<String>,
    /// The header's value, with {secret} where the secret goes (default `Bearer {secret}`).
    pub format: Option<String>,
    /// The variable the server finds the placeholder in (default: the name upper-cased, with _TOKEN).
    pub env_name: Option<String>,
    /// The secret. Never shown again.
    pub secret: String,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CredentialQuery {
    /// Only this server's credentials.
    pub server: Option<String>,
    /// Only the credentials scoped to this profile.
    pub profile: Option<String>,
    /// At most this many items (1–500, default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    /// Delete the profile's own credential rather than the server-wide one.
    pub profile: Option<String>,
}

fn view(c: &Credential) -> CredentialView {
    CredentialView {
        server: c.spec.server.to_string(),
        profile: c.spec.profile.as_ref().map(|p| p.to_string()),
        name: c.spec.name.as_str().to_owned(),
        hosts: c.spec.hosts.to_string(),
        header: c.spec.header.as_str().to_owned(),
        format: c.spec.format.as_str().to_owned(),
        env_name: c.spec.env_name.as_str().to_owned(),
        placeholder: c.placeholder.shown(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// Keyset order: server, profile ("" for server-wide), name.
fn key(c: &CredentialView) -> String {
    format!("{}/{}/{}", c.server, c.profile.as_deref().unwrap_or(""), c.name)
}

fn ops<'a>(state: &'a ControlState, caller: &Caller) -> Ops<'a> {
    Ops {
        store: &state.store,
        actor: Actor::User(caller.user),
        audit: Some(&state.audit),
    }
}

/// A user may only touch credentials of a profile they own; admins any.
fn check_scope(state: &ControlState, caller: &Caller, profile: Option<&str>) -> Result<(), ApiError> {
    match profile {
        None if caller.is_admin() => Ok(()),
        None => Err(ApiError::forbidden(
            "server-wide credentials are managed by admins; give the profile the credential is for",
        )),
        Some(slug) => lookup_writable(&state.store, caller, slug).map(|_| ()),
    }
}

pub async fn list(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(query): Query<CredentialQuery>,
) -> Result<Json<Page<CredentialView>>, ApiError> {
    let limit = crate::api::PageQuery {
        limit: query.limit,
        after: None,
    }
    .limit()?;
    blocking(&state, move |state| {
        let server = query
            .server
            .as_deref()
            .map(|s| ServerName::parse(s).map_err(|_| ApiError::not_found(format!("no server named {s:?}"))))
            .transpose()?;
        if let Some(server) = &server {
            state
                .store
                .server(server)
                .map_err(|e| ApiError::from(gigmcp_ops::OpsError::from(e)))?;
        }
        let profile = match query.profile.as_deref() {
            Some(slug) => Some(lookup(&state.store, &caller, slug)?.0.slug),
            None => None,
        };
        let after = query.after.unwrap_or_default();
        let mut views: Vec<CredentialView> = state
            .store
            .credentials(server.as_ref(), profile.as_ref())
            .map_err(ApiError::internal)?
            .iter()
            .filter(|c| match &c.spec.profile {
                _ if caller.is_admin() => true,
                None => false,
                Some(slug) => lookup(&state.store, &caller, slug.as_str()).is_ok_and(|(_, w)| w),
            })
            .map(view)
            .filter(|v| key(v) > after)
            .collect();
        views.sort_by_key(key);
        views.truncate(limit + 1);
        Ok(Json(Page::cut(views, limit, key)))
    })
    .await
}

pub async fn set(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Body(body): Body<SetCredential>,
) -> Result<Json<CredentialView>, ApiError> {
    let spec = credential_spec(&CredentialInput {
        server: &body.server,
        profile: body.profile.as_deref(),
        name: &body.name,
        hosts: &body.hosts,
        header: body.header.as_deref().unwrap_or("Authorization"),
        format: body.format.as_deref().unwrap_or("Bearer {secret}"),
        env_name: body.env_name.as_deref(),
    })?;
    let secret = secret_from_input(Zeroizing::new(body.secret.into_bytes()))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    blocking(&state, move |state| {
        check_scope(state, &caller, spec.profile.as_ref().map(ProfileSlug::as_str))?;
        let (credential, _) = ops(state, &caller).set_credential(&state.vault, &spec, &secret)?;
        Ok(Json(view(&credential)))
    })
    .await
}

pub async fn delete(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams((server, name)): PathParams<(String, String)>,
    Query(scope): Query<ScopeQuery>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::not_found(format!("no credential {name:?} of server {server:?}"));
    let server_name = ServerName::parse(&server).map_err(|_| not_found())?;
    let credential = CredentialName::parse(&name).map_err(|_| not_found())?;
    blocking(&state, move |state| {
        check_scope(state, &caller, scope.profile.as_deref())?;
        let profile = scope.profile.as_deref().map(ProfileSlug::parse).transpose()?;
        ops(state, &caller).delete_credential(&server_name, profile.as_ref(), &credential)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
