//! `/api/audit`: the audit log of record, newest first. Admins see every event; a user the events of the
//! profiles they can see.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::profiles::visible_slugs;
use crate::api::{Page, Query};
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_store::audit::AuditFilter;
use gigmcp_types::audit::Outcome;

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// An exact kind (`mcp.tool_call`), or a prefix ending in `*` (`api.*`).
    pub kind: Option<String>,
    pub profile: Option<String>,
    pub server: Option<String>,
    /// The outcome: `ok`, `deny`, `error` or `tool_error` (the same words for MCP, egress, auth and API
    /// events).
    pub decision: Option<Outcome>,
    /// From this time (milliseconds since the epoch, inclusive).
    pub since: Option<i64>,
    /// Until this time (milliseconds since the epoch, exclusive).
    pub until: Option<i64>,
    /// At most this many items (1–500, default 50).
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct AuditEventView {
    pub id: i64,
    pub time_ms: i64,
    pub kind: String,
    /// `user:<id>`, `operator`, `profile:<slug>`, ….
    pub actor: String,
    pub profile: Option<String>,
    pub server: Option<String>,
    pub outcome: Outcome,
    pub detail: Value,
}

pub async fn list(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Page<AuditEventView>>, ApiError> {
    let limit = crate::api::PageQuery {
        limit: query.limit,
        after: None,
    }
    .limit()?;
    let before =
        match query.after.as_deref() {
            None => None,
            Some(text) => Some(text.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("invalid after {text:?}: give the next of a previous page"))
            })?),
        };
    blocking(&state, move |state| {
        let profiles_in = visible_slugs(state, &caller)?;
        let filter = AuditFilter {
            kind: query.kind,
            profile: query.profile,
            server: query.server,
            decision: query.decision,
            since_ms: query.since,
            until_ms: query.until,
            profiles_in,
        };
        let events = state
            .store
            .audit_search(&filter, before, limit + 1)
            .map_err(ApiError::internal)?;
        let views = events
            .into_iter()
            .map(|e| AuditEventView {
                id: e.id,
                time_ms: e.time_ms,
                kind: e.kind,
                actor: e.actor,
                profile: e.profile,
                server: e.server,
                outcome: e.outcome,
                detail: e.detail,
            })
            .collect();
        Ok(Json(Page::cut(views, limit, |e| e.id.to_string())))
    })
    .await
}
