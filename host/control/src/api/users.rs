//! `/api/users`: admins only. A user's role is decided again at their next login (by the auth-mapper
//! plugins); deleting a user ends their sessions and gives their profiles to the operator (no owner).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::api::{Body, Page, PageQuery, PathParams, Query, UserView};
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_ops::{Actor, Ops};
use gigmcp_types::ids::UserId;
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
