//! Searching the audit log of record (the REST API's `/api/audit`).

use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;

use crate::{Store, StoreError};
use gigmcp_types::audit::AuditEvent;

/// Which events to return; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// An exact kind, or a prefix ending in `*` (`api.*`).
    pub kind: Option<String>,
    pub profile: Option<String>,
    pub server: Option<String>,
    /// The event's outcome: `ok`, `allow`, `deny`, `error`, ….
    pub decision: Option<String>,
    /// Milliseconds since the epoch, inclusive.
    pub since_ms: Option<i64>,
    /// Milliseconds since the epoch, exclusive.
    pub until_ms: Option<i64>,
    /// Only events of these profiles (a user's view); `None`: all.
    pub profiles_in: Option<Vec<String>>,
}

impl Store {
    /// Events matching the filter, newest first, with an id below `before` (keyset pagination).
    pub fn audit_search(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = String::from(
            "SELECT id, time_ms, kind, actor, profile, server, outcome, detail FROM audit_events WHERE 1 = 1",
        );
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(kind) = &filter.kind {
            match kind.strip_suffix('*') {
                Some(prefix) => {
                    sql.push_str(" AND substr(kind, 1, length(?)) = ?");
                    args.push(SqlValue::Text(prefix.to_owned()));
                    args.push(SqlValue::Text(prefix.to_owned()));
                }
                None => {
                    sql.push_str(" AND kind = ?");
                    args.push(SqlValue::Text(kind.clone()));
                }
            }
        }
        for (column, value) in [
            ("profile", &filter.profile),
            ("server", &filter.server),
            ("outcome", &filter.decision),
        ] {
            if let Some(value) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                args.push(SqlValue::Text(value.clone()));
            }
        }
        if let Some(since) = filter.since_ms {
            sql.push_str(" AND time_ms >= ?");
            args.push(SqlValue::Integer(since));
        }
        if let Some(until) = filter.until_ms {
            sql.push_str(" AND time_ms < ?");
            args.push(SqlValue::Integer(until));
        }
        if let Some(before) = before {
            sql.push_str(" AND id < ?");
            args.push(SqlValue::Integer(before));
        }
        if let Some(profiles) = &filter.profiles_in {
            if profiles.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(" AND profile IN (");
            sql.push_str(&vec!["?"; profiles.len()].join(", "));
            sql.push(')');
            args.extend(profiles.iter().map(|p| SqlValue::Text(p.clone())));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(SqlValue::Integer(limit as i64));
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args), audit_row)?;
        rows.map(|row| decode_audit_row(row?)).collect()
    }
}

type AuditRow = (i64, i64, String, String, Option<String>, Option<String>, String, String);

/// The columns `id, time_ms, kind, actor, profile, server, outcome, detail` of `audit_events`.
pub(super) fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

pub(super) fn decode_audit_row(row: AuditRow) -> Result<AuditEvent, StoreError> {
    let (id, time_ms, kind, actor, profile, server, outcome, detail) = row;
    Ok(AuditEvent {
        id,
        time_ms,
        kind,
        actor,
        profile,
        server,
        outcome,
        detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(format!("audit event {id}: {e}")))?,
    })
}
