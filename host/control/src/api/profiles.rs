//! `/api/profiles`: a user's own profiles (made through the API) and those the auth-mapper granted them;
//! admins see all, including the operator's (made with the CLI, no owner). Another user's profile is a 404,
//! never a 403, so its existence does not leak. A granted profile can be read; only its owner or an admin
//! changes it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::{Body, IfMatch, Page, PageQuery, PathParams, Query, RemoveQuery, Tagged};
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_ops::{Actor, Ops};
use gigmcp_store::{Profile, Store};
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::user::ProfileAccess;

#[derive(Serialize, JsonSchema)]
pub struct ProfileView {
    pub slug: String,
    pub name: String,
    /// The owner's user id; absent for profiles made with the CLI.
    pub owner: Option<i64>,
    pub created_at: i64,
    /// The servers it serves, in order.
    pub servers: Vec<String>,
    /// The entity tag of its servers (also the `ETag` of the profile): send it as `If-Match` when setting them,
    /// so a change made meanwhile is not undone.
    pub servers_etag: String,
    /// Its MCP endpoint.
    pub endpoint: String,
}

#[derive(Serialize, JsonSchema)]
pub struct CreatedProfile {
    pub profile: ProfileView,
    /// The profile's bearer token: shown this once only.
    pub token: String,
}

#[derive(Serialize, JsonSchema)]
pub struct NewTokenView {
    /// The new bearer token (shown this once only); the old one no longer works.
    pub token: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProfile {
    /// 1–63 characters from a-z, 0-9 and '-', starting with a letter or digit.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9-]{0,62}$"))]
    pub slug: String,
    /// A display name.
    #[serde(default)]
    pub name: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameProfile {
    pub name: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetServers {
    /// Server names, in the order their tools are listed.
    pub servers: Vec<String>,
    /// Confirms that the state directories of servers this leaves out are deleted (otherwise 409).
    #[serde(default)]
    pub delete_state: bool,
}

/// May the caller see this profile?
pub fn visible(caller: &Caller, profile: &Profile) -> bool {
    caller.is_admin()
        || (profile.owner.is_some() && profile.owner == Some(caller.user))
        || match &caller.profiles {
            ProfileAccess::All => true,
            ProfileAccess::Only(slugs) => slugs.iter().any(|s| s == profile.slug.as_str()),
        }
}

/// The slugs of the profiles the caller can see, for filtering what is recorded about profiles (audit events,
/// metrics); `None` for admins, who see all.
pub fn visible_slugs(state: &ControlState, caller: &Caller) -> Result<Option<Vec<String>>, ApiError> {
    if caller.is_admin() {
        return Ok(None);
    }
    let profiles = state.store.list_profiles().map_err(ApiError::internal)?;
    Ok(Some(
        profiles
            .iter()
            .filter(|p| visible(caller, p))
            .map(|p| p.slug.to_string())
            .collect(),
    ))
}

/// May the caller change this profile?
pub fn writable(caller: &Caller, profile: &Profile) -> bool {
    caller.is_admin() || (profile.owner.is_some() && profile.owner == Some(caller.user))
}

fn not_found(slug: &str) -> ApiError {
    ApiError::not_found(format!("no profile named {slug:?}"))
}

/// The profile if the caller may see it (else 404), and whether they may change it.
pub fn lookup(store: &Store, caller: &Caller, slug: &str) -> Result<(Profile, bool), ApiError> {
    let parsed = ProfileSlug::parse(slug).map_err(|_| not_found(slug))?;
    let profile = match store.profile(&parsed) {
        Ok(p) => p,
        Err(gigmcp_store::StoreError::NoProfile(_)) => return Err(not_found(slug)),
        Err(e) => return Err(ApiError::internal(e)),
    };
    if !visible(caller, &profile) {
        return Err(not_found(slug));
    }
    let writable = writable(caller, &profile);
    Ok((profile, writable))
}

/// The profile if the caller may change it: 404 when they cannot see it, 403 when they may only read it.
pub fn lookup_writable(store: &Store, caller: &Caller, slug: &str) -> Result<Profile, ApiError> {
    let (profile, writable) = lookup(store, caller, slug)?;
    if !writable {
        return Err(ApiError::forbidden(format!(
            "profile {slug} was granted to you to use; only its owner or an admin may change it"
        )));
    }
    Ok(profile)
}

fn view(state: &ControlState, profile: Profile) -> Result<ProfileView, ApiError> {
    let servers: Vec<_> = state
        .store
        .profile_config(&profile.slug)
        .map_err(ApiError::internal)?
        .servers
        .into_iter()
        .map(|s| s.name)
        .collect();
    let servers_etag = gigmcp_types::etag::profile_servers(&servers);
    let servers = servers.iter().map(ToString::to_string).collect();
    let mut endpoint = state.public_url.clone();
    endpoint.set_path(&format!("/mcp/p/{}", profile.slug));
    Ok(ProfileView {
        endpoint: endpoint.to_string(),
        slug: profile.slug.to_string(),
        name: profile.name,
        owner: profile.owner.map(|o| o.0),
        created_at: profile.created_at,
        servers,
        servers_etag,
    })
}

fn ops<'a>(state: &'a ControlState, caller: &Caller) -> Ops<'a> {
    Ops {
        store: &state.store,
        actor: Actor::User(caller.user),
        audit: Some(&state.audit),
    }
}

pub async fn list(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<ProfileView>>, ApiError> {
    let limit = page.limit()?;
    blocking(&state, move |state| {
        let after = page.after.unwrap_or_default();
        let profiles: Vec<Profile> = state
            .store
            .list_profiles()
            .map_err(ApiError::internal)?
            .into_iter()
            .filter(|p| p.slug.as_str() > after.as_str() && visible(&caller, p))
            .take(limit + 1)
            .collect();
        let views = profiles
            .into_iter()
            .map(|p| view(state, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Json(Page::cut(views, limit, |p| p.slug.clone())))
    })
    .await
}

pub async fn create(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Body(body): Body<CreateProfile>,
) -> Result<(StatusCode, Json<CreatedProfile>), ApiError> {
    let slug = ProfileSlug::parse(&body.slug)?;
    blocking(&state, move |state| {
        let (profile, token) = ops(state, &caller).create_profile(&slug, &body.name, Some(caller.user))?;
        Ok((
            StatusCode::CREATED,
            Json(CreatedProfile {
                profile: view(state, profile)?,
                token: token.reveal().to_owned(),
            }),
        ))
    })
    .await
}

pub async fn get(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
) -> Result<Tagged<ProfileView>, ApiError> {
    blocking(&state, move |state| {
        let (profile, _) = lookup(&state.store, &caller, &slug)?;
        let view = view(state, profile)?;
        Ok(Tagged(view.servers_etag.clone(), view))
    })
    .await
}

pub async fn rename(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
    Body(body): Body<RenameProfile>,
) -> Result<Json<ProfileView>, ApiError> {
    blocking(&state, move |state| {
        let profile = lookup_writable(&state.store, &caller, &slug)?;
        ops(state, &caller).rename_profile(&profile.slug, &body.name)?;
        let profile = state.store.profile(&profile.slug).map_err(ApiError::internal)?;
        Ok(Json(view(state, profile)?))
    })
    .await
}

pub async fn delete(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
    Query(query): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    blocking(&state, move |state| {
        let profile = lookup_writable(&state.store, &caller, &slug)?;
        ops(state, &caller).delete_profile(
            &profile.slug,
            state.states.as_ref(),
            query.delete_state.unwrap_or(false),
        )?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn set_servers(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
    IfMatch(if_match): IfMatch,
    Body(body): Body<SetServers>,
) -> Result<Tagged<ProfileView>, ApiError> {
    let servers = body
        .servers
        .iter()
        .map(|s| ServerName::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    blocking(&state, move |state| {
        let profile = lookup_writable(&state.store, &caller, &slug)?;
        ops(state, &caller).set_profile_servers(
            &profile.slug,
            &servers,
            state.probe.as_ref(),
            state.states.as_ref(),
            body.delete_state,
            if_match.as_deref(),
        )?;
        let view = view(state, profile)?;
        Ok(Tagged(view.servers_etag.clone(), view))
    })
    .await
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchTool {
    /// `<server>/<tool>`: a tool of a catalog toolpack the profile serves.
    pub tool: String,
    /// On or off for this profile; `null`: back to the entry's default.
    pub enabled: Option<bool>,
}

/// The catalog tools of a profile's toolpacks, on or off.
pub async fn tools_switches(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
) -> Result<Json<Vec<gigmcp_ops::install::ProfileTool>>, ApiError> {
    blocking(&state, move |state| {
        let (profile, _) = lookup(&state.store, &caller, &slug)?;
        Ok(Json(ops(state, &caller).profile_tools(&profile.slug)?))
    })
    .await
}

/// Turns a catalog tool on or off for a profile (its owner or an admin).
pub async fn switch_tool(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
    Body(body): Body<SwitchTool>,
) -> Result<Json<Vec<gigmcp_ops::install::ProfileTool>>, ApiError> {
    blocking(&state, move |state| {
        let profile = lookup_writable(&state.store, &caller, &slug)?;
        let ops = ops(state, &caller);
        ops.switch_tool(&profile.slug, &body.tool, body.enabled)?;
        Ok(Json(ops.profile_tools(&profile.slug)?))
    })
    .await
}

pub async fn rotate_token(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(slug): PathParams<String>,
) -> Result<Json<NewTokenView>, ApiError> {
    blocking(&state, move |state| {
        let profile = lookup_writable(&state.store, &caller, &slug)?;
        let token = ops(state, &caller).rotate_token(&profile.slug)?;
        Ok(Json(NewTokenView {
            token: token.reveal().to_owned(),
        }))
    })
    .await
}
