//! `/api/users`: admins only. A user's role is decided again at their next login (by the auth-mapper
//! plugins); deleting a user ends their sessions and gives their profiles to the operator (no owner).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::api::{Body, MeView, Page, PageQuery, PathParams, Query, UserView};
use crate::session::Viewing;
use crate::{ApiError, Caller, ControlState, blocking};
use axum::http::HeaderMap;
use gigmcp_ops::{Actor, Ops};
use gigmcp_types::ids::UserId;
use gigmcp_types::sync::now_secs;
use gigmcp_types::user::Role;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub role: Role,
}

fn ops<'a>(state: &'a ControlState, caller: &Caller) -> Ops<'a> {
    Ops {
        store: &state.store,
        actor: Actor::User(caller.user),
        audit: Some(&state.audit),
    }
}

fn view(state: &ControlState, id: UserId) -> Result<UserView, ApiError> {
    let user = state
        .store
        .user(id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))?;
    Ok(UserView::from(user))
}

/// How long to view as the user.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewAs {
    /// 1 to 60 (the default).
    #[schemars(range(min = 1, max = 60))]
    pub minutes: Option<u32>,
}

/// The longest view as someone else.
const MAX_VIEW_MINUTES: u32 = 60;

pub async fn view_as(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    Body(body): Body<ViewAs>,
) -> Result<Json<MeView>, ApiError> {
    caller.require_admin()?;
    let id = parse_id(&id)?;
    let minutes = body.minutes.unwrap_or(MAX_VIEW_MINUTES);
    if !(1..=MAX_VIEW_MINUTES).contains(&minutes) {
        return Err(ApiError::bad_request(format!(
            "minutes must be from 1 to {MAX_VIEW_MINUTES}, not {minutes}"
        )));
    }
    if id == caller.user {
        return Err(ApiError::conflict("you cannot view as yourself"));
    }
    blocking(&state, move |state| {
        let user = state
            .store
            .user(id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(format!("no user {id}")))?;
        let admin = state
            .store
            .user(caller.user)
            .map_err(ApiError::internal)?
            .ok_or_else(ApiError::unauthenticated)?;
        let until = now_secs() + i64::from(minutes) * 60;
        if !state
            .sessions
            .set_view_as(&headers, Some((id, until)))
            .map_err(ApiError::internal)?
        {
            return Err(ApiError::unauthenticated());
        }
        ops(state, &caller).record("user.view_as", None, None, json!({"user": id.0, "until": until}));
        Ok(Json(MeView::new(user, Some(Viewing { admin, until }))))
    })
    .await
}

pub async fn stop_viewing(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let Some(viewing) = caller.viewing.clone() else {
        return Err(ApiError::conflict("you are not viewing as anyone"));
    };
    blocking(&state, move |state| {
        state.sessions.set_view_as(&headers, None).map_err(ApiError::internal)?;
        // The admin stops: the event is theirs.
        let ops = Ops {
            store: &state.store,
            actor: Actor::User(viewing.admin.id),
            audit: Some(&state.audit),
        };
        ops.record("user.view_as_end", None, None, json!({"user": caller.user.0}));
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

fn parse_id(id: &str) -> Result<UserId, ApiError> {
    id.parse::<i64>()
        .map(UserId)
        .map_err(|_| ApiError::not_found(format!("no user {id:?}")))
}

pub async fn list(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<UserView>>, ApiError> {
    caller.require_admin()?;
    let limit = page.limit()?;
    let after = match page.after.as_deref() {
        None => 0,
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid after {text:?}: give the next of a previous page")))?,
    };
    blocking(&state, move |state| {
        let users = state.store.list_users(after, limit + 1).map_err(ApiError::internal)?;
        let views = users.into_iter().map(UserView::from).collect();
        Ok(Json(Page::cut(views, limit, |u| u.id.to_string())))
    })
    .await
}

pub async fn get(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<UserView>, ApiError> {
    caller.require_admin()?;
    let id = parse_id(&id)?;
    blocking(&state, move |state| Ok(Json(view(state, id)?))).await
}

pub async fn update(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
    Body(body): Body<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    caller.require_admin()?;
    let id = parse_id(&id)?;
    if id == caller.user {
        // A lone admin must not lock everyone out; another admin can change it.
        return Err(ApiError::conflict("you cannot change your own role"));
    }
    blocking(&state, move |state| {
        if !state.store.set_user_role(id, body.role).map_err(ApiError::internal)? {
            return Err(ApiError::not_found(format!("no user {id}")));
        }
        ops(state, &caller).record("user.update", None, None, json!({"user": id.0, "role": body.role}));
        Ok(Json(view(state, id)?))
    })
    .await
}

pub async fn delete(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = parse_id(&id)?;
    if id == caller.user {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    blocking(&state, move |state| {
        if !state.store.delete_user(id).map_err(ApiError::internal)? {
            return Err(ApiError::not_found(format!("no user {id}")));
        }
        ops(state, &caller).record("user.delete", None, None, json!({"user": id.0}));
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
