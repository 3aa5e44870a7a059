//! Per-minute counts of tool calls, by profile, server and deciding plugin: what the dashboard charts. Each
//! `mcp.tool_call` audit event adds to its minute's row in the same transaction that appends the event, so
//! the counts and the log of record never disagree. Bounded: rows older than [`RETENTION_MINUTES`] are
//! removed as new ones are written, so there are at most that many minutes times the (profile, server,
//! plugin) combinations in use.

use rusqlite::{Transaction, params, params_from_iter};

use crate::{Store, StoreError};
use gigmcp_types::audit::{NewAuditEvent, Outcome};

/// Eight days of minutes: a week and a day's margin.
pub const RETENTION_MINUTES: i64 = 8 * 24 * 60;

/// Adds one appended tool-call event to its minute (other kinds are not counted).
pub(crate) fn count(tx: &Transaction<'_>, time_ms: i64, event: &NewAuditEvent) -> Result<(), StoreError> {
    if event.kind != "mcp.tool_call" {
        return Ok(());
    }
    let minute = time_ms.div_euclid(60_000);
    let denied = event.outcome == Outcome::Deny;
    let failed = matches!(event.outcome, Outcome::Error | Outcome::ToolError);
    // The plugin that decided a denial (several, comma-separated, when a list was filtered by more than one).
    let plugin = if denied {
        event.detail.get("plugin").and_then(|p| p.as_str()).unwrap_or("")
    } else {
        ""
    };
    let latency_us = event
        .detail
        .get("duration_ms")
        .and_then(|d| d.as_f64())
        .map_or(0, |ms| (ms * 1000.0).max(0.0) as i64);
    tx.execute(
        "INSERT INTO metrics_minute (minute, profile, server, plugin, calls, denials, errors, latency_us_sum,
             latency_us_max)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?7)
         ON CONFLICT (minute, profile, server, plugin) DO UPDATE SET calls = calls + 1,
             denials = denials + ?5, errors = errors + ?6, latency_us_sum = latency_us_sum + ?7,
             latency_us_max = MAX(latency_us_max, ?7)",
        params![
            minute,
            event.profile.as_deref().unwrap_or(""),
            event.server.as_deref().unwrap_or(""),
            plugin,
            denied as i64,
            failed as i64,
            latency_us
        ],
    )?;
    Ok(())
}

/// Drops minutes past the retention (cheap: `minute` leads the primary key).
pub(crate) fn prune(tx: &Transaction<'_>, now_ms: i64) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM metrics_minute WHERE minute < ?1",
        [now_ms.div_euclid(60_000) - RETENTION_MINUTES],
    )?;
    Ok(())
}

/// Which calls to count; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct MetricsFilter {
    pub profile: Option<String>,
    pub server: Option<String>,
    /// The plugin that decided a denial (only denials have one).
    pub plugin: Option<String>,
    /// Only these profiles (a user's view); `None`: all.
    pub profiles_in: Option<Vec<String>>,
}

/// One step of a series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// The step's start, milliseconds since the epoch.
    pub start_ms: i64,
    pub calls: i64,
    pub denials: i64,
    pub errors: i64,
    pub latency_us_sum: i64,
    pub latency_us_max: i64,
}

impl Store {
    /// The counts from `since_ms` (inclusive) to `until_ms` (exclusive) in steps of `step_minutes`, oldest
    /// first; steps without calls are left out.
    pub fn tool_call_series(
        &self,
        filter: &MetricsFilter,
        since_ms: i64,
        until_ms: i64,
        step_minutes: i64,
    ) -> Result<Vec<Point>, StoreError> {
        let step = step_minutes.max(1);
        let mut sql = String::from(
            "SELECT (minute / ?1) * ?1, SUM(calls), SUM(denials), SUM(errors), SUM(latency_us_sum),
                 MAX(latency_us_max)
             FROM metrics_minute WHERE minute >= ?2 AND minute < ?3",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![
            step.into(),
            since_ms.div_euclid(60_000).into(),
            (until_ms + 59_999).div_euclid(60_000).into(),
        ];
        for (column, value) in [
            ("profile", &filter.profile),
            ("server", &filter.server),
            ("plugin", &filter.plugin),
        ] {
            if let Some(value) = value {
                args.push(value.clone().into());
                sql.push_str(&format!(" AND {column} = ?{}", args.len()));
            }
        }
        if let Some(profiles) = &filter.profiles_in {
            let start = args.len();
            args.extend(profiles.iter().map(|p| p.clone().into()));
            let marks: Vec<String> = (start + 1..=args.len()).map(|i| format!("?{i}")).collect();
            sql.push_str(&format!(" AND profile IN ({})", marks.join(",")));
            if profiles.is_empty() {
                sql.push_str(" AND 0");
            }
        }
        sql.push_str(" GROUP BY 1 ORDER BY 1");
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            Ok(Point {
                start_ms: r.get::<_, i64>(0)? * 60_000,
                calls: r.get(1)?,
                denials: r.get(2)?,
                errors: r.get(3)?,
                latency_us_sum: r.get(4)?,
                latency_us_max: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(profile: &str, outcome: Outcome, detail: serde_json::Value) -> NewAuditEvent {
        NewAuditEvent {
            kind: "mcp.tool_call".into(),
            actor: "profile:x".into(),
            profile: Some(profile.into()),
            server: Some("echo".into()),
            outcome,
            detail,
        }
    }

    #[test]
    fn tool_calls_are_counted_per_minute_with_their_denials_and_latency() {
        let (_dir, store) = crate::test_store();
        store
            .audit_append(&[
                call("a", Outcome::Ok, json!({"duration_ms": 2.0})),
                call("a", Outcome::Ok, json!({"duration_ms": 4.0})),
                call("a", Outcome::Deny, json!({"duration_ms": 0.5, "plugin": "tool-filter"})),
                call("b", Outcome::ToolError, json!({"duration_ms": 1.0})),
                NewAuditEvent {
                    kind: "api.profile.create".into(),
                    ..call("a", Outcome::Ok, json!({}))
                },
            ])
            .unwrap();
        let now = gigmcp_types::sync::now_ms();
        let all = store
            .tool_call_series(&MetricsFilter::default(), now - 120_000, now + 60_000, 1)
            .unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        let p = &all[0];
        assert_eq!((p.calls, p.denials, p.errors), (4, 1, 1));
        assert_eq!((p.latency_us_sum, p.latency_us_max), (7500, 4000));
        assert!(p.start_ms <= now && now - p.start_ms < 60_000);

        let only = |filter: MetricsFilter| {
            store
                .tool_call_series(&filter, now - 120_000, now + 60_000, 60)
                .unwrap()
                .first()
                .map(|p| p.calls)
        };
        let f = MetricsFilter::default;
        assert_eq!(
            only(MetricsFilter {
                profile: Some("a".into()),
                ..f()
            }),
            Some(3)
        );
        assert_eq!(
            only(MetricsFilter {
                plugin: Some("tool-filter".into()),
                ..f()
            }),
            Some(1)
        );
        assert_eq!(
            only(MetricsFilter {
                profiles_in: Some(vec!["b".into()]),
                ..f()
            }),
            Some(1)
        );
        assert_eq!(
            only(MetricsFilter {
                profiles_in: Some(vec![]),
                ..f()
            }),
            None
        );
        assert_eq!(
            only(MetricsFilter {
                server: Some("other".into()),
                ..f()
            }),
            None
        );
        // Outside the window: nothing.
        assert!(
            store
                .tool_call_series(&f(), now + 120_000, now + 180_000, 1)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn minutes_past_the_retention_are_dropped_as_new_ones_are_written() {
        let (_dir, store) = crate::test_store();
        let now = gigmcp_types::sync::now_ms();
        let old_minute = now.div_euclid(60_000) - RETENTION_MINUTES - 5;
        store
            .lock()
            .execute(
                "INSERT INTO metrics_minute VALUES (?1, 'a', 'echo', '', 1, 0, 0, 0, 0)",
                [old_minute],
            )
            .unwrap();
        store.audit_append(&[call("a", Outcome::Ok, json!({}))]).unwrap();
        let rows: i64 = store
            .lock()
            .query_row("SELECT COUNT(*) FROM metrics_minute", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1, "only the new minute is left");
    }
}
