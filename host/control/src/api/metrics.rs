//! `/api/metrics/tool-calls`: tool calls, denials, errors and latency over time, by profile, server and the
//! plugin that denied (kept per minute for 8 days: `gigmcp_store::metrics`). Admins see every profile; a
//! user the profiles they can see.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::Query;
use crate::api::profiles::visible_slugs;
use crate::{ApiError, Caller, ControlState, blocking};
use gigmcp_store::metrics::{MetricsFilter, RETENTION_MINUTES};

/// 9999-12-31T23:59:59.999Z in milliseconds since the epoch.
const LAST_MS: i64 = 253_402_300_799_999;

/// The most steps one answer has.
const MAX_POINTS: i64 = 1440;

#[derive(Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// From this time (milliseconds since the epoch; default: an hour before `until`).
    #[schemars(range(min = 0, max = LAST_MS))]
    pub since: Option<i64>,
    /// Until this time (milliseconds since the epoch, exclusive; default: now).
    #[schemars(range(min = 0, max = LAST_MS))]
    pub until: Option<i64>,
    /// Seconds per step: a multiple of 60 (default 60). At most 1440 steps per answer.
    #[schemars(range(min = 60, max = 86400))]
    pub step: Option<i64>,
    pub profile: Option<String>,
    pub server: Option<String>,
    /// Only denials this plugin decided.
    pub plugin: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct Series {
    /// The first step's start (milliseconds since the epoch, a whole minute).
    pub since: i64,
    pub step_ms: i64,
    /// One per step, oldest first, steps without calls included (zeros).
    pub points: Vec<SeriesPoint>,
}

#[derive(Serialize, JsonSchema, Default)]
pub struct SeriesPoint {
    /// The step's start (milliseconds since the epoch).
    pub t: i64,
    pub calls: i64,
    pub denials: i64,
    /// Calls that failed (the server's or the gateway's error, or the tool's own `isError`).
    pub errors: i64,
    /// Mean latency of the step's calls, microseconds (0 without calls).
    pub latency_avg_us: i64,
    pub latency_max_us: i64,
}

pub async fn tool_calls(
    State(state): State<Arc<ControlState>>,
    caller: Caller,
    Query(query): Query<SeriesQuery>,
) -> Result<Json<Series>, ApiError> {
    let step_s = query.step.unwrap_or(60);
    if !(60..=86_400).contains(&step_s) || step_s % 60 != 0 {
        return Err(ApiError::bad_request(format!(
            "step must be a multiple of 60 seconds from 60 to 86400, not {step_s}"
        )));
    }
    let step_ms = step_s * 1000;
    let until = query.until.unwrap_or_else(gigmcp_types::sync::now_ms);
    let since = query.since.unwrap_or(until.saturating_sub(3_600_000));
    // Times from 1970 to the year 9999, so nothing below can overflow.
    for (name, t) in [("since", since), ("until", until)] {
        if !(0..=LAST_MS).contains(&t) {
            return Err(ApiError::bad_request(format!(
                "{name} must be milliseconds since 1970, up to the year 9999, not {t}"
            )));
        }
    }
    if since >= until {
        return Err(ApiError::bad_request("since must be before until"));
    }
    if until - since > RETENTION_MINUTES * 60_000 {
        return Err(ApiError::bad_request(format!(
            "at most {} days at a time (that is how long the counts are kept)",
            RETENTION_MINUTES / 1440
        )));
    }
    // Steps are aligned to whole steps since the epoch, so the same query always cuts the same way.
    let first = since.div_euclid(step_ms) * step_ms;
    let steps = (until - first + step_ms - 1) / step_ms;
    if steps > MAX_POINTS {
        return Err(ApiError::bad_request(format!(
            "{steps} steps asked for; at most {MAX_POINTS}: choose a larger step"
        )));
    }
    blocking(&state, move |state| {
        let profiles_in = visible_slugs(state, &caller)?;
        let filter = MetricsFilter {
            profile: query.profile,
            server: query.server,
            plugin: query.plugin,
            profiles_in,
        };
        let counted = state
            .store
            .tool_call_series(&filter, first, first + steps * step_ms, step_s / 60)
            .map_err(ApiError::internal)?;
        let mut points: Vec<SeriesPoint> = (0..steps)
            .map(|i| SeriesPoint {
                t: first + i * step_ms,
                ..SeriesPoint::default()
            })
            .collect();
        for c in counted {
            let Some(point) = usize::try_from((c.start_ms - first).div_euclid(step_ms))
                .ok()
                .and_then(|i| points.get_mut(i))
            else {
                continue;
            };
            point.calls = c.calls;
            point.denials = c.denials;
            point.errors = c.errors;
            point.latency_avg_us = if c.calls > 0 { c.latency_us_sum / c.calls } else { 0 };
            point.latency_max_us = c.latency_us_max;
        }
        Ok(Json(Series {
            since: first,
            step_ms,
            points,
        }))
    })
    .await
}
