//! The audit log of record in SQLite: appending (for the one writer, `gigmcp-audit`), the forwarding cursor of
//! the audit sinks, their webhooks, and searching (the REST API's `/api/audit`).

use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params, params_from_iter};

use crate::{Store, StoreError, now};
use gigmcp_types::audit::{AuditEvent, NewAuditEvent, Outcome};
use gigmcp_types::names::PluginName;

/// Which events to return; every given field must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// An exact kind, or a prefix ending in `*` (`api.*`).
    pub kind: Option<String>,
    pub profile: Option<String>,
    pub server: Option<String>,
    /// The event's outcome.
    pub decision: Option<Outcome>,
    /// Milliseconds since the epoch, inclusive.
    pub since_ms: Option<i64>,
    /// Milliseconds since the epoch, exclusive.
    pub until_ms: Option<i64>,
    /// Only events of these profiles (a user's view); `None`: all.
    pub profiles_in: Option<Vec<String>>,
}

impl Store {
    /// Appends events to the audit log of record; returns them with their ids and times.
    pub fn audit_append(&self, events: &[NewAuditEvent]) -> Result<Vec<AuditEvent>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let time_ms = gigmcp_types::sync::now_ms();
        let mut written = Vec::with_capacity(events.len());
        crate::metrics::prune(&tx, time_ms)?;
        for e in events {
            crate::metrics::count(&tx, time_ms, e)?;
            tx.execute(
                "INSERT INTO audit_events (time_ms, kind, actor, profile, server, outcome, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    time_ms,
                    e.kind,
                    e.actor,
                    e.profile,
                    e.server,
                    e.outcome.as_str(),
                    e.detail.to_string()
                ],
            )?;
            written.push(AuditEvent {
                id: tx.last_insert_rowid(),
                time_ms,
                kind: e.kind.clone(),
                actor: e.actor.clone(),
                profile: e.profile.clone(),
                server: e.server.clone(),
                outcome: e.outcome,
                detail: e.detail.clone(),
            });
        }
        tx.commit()?;
        Ok(written)
    }

    /// The id of the last audit event every sink has been given (None before the first forwarding).
    pub fn audit_forwarded_through(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT delivered_through FROM audit_forwarding WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_audit_forwarded_through(&self, id: i64) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO audit_forwarding (id, delivered_through) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET delivered_through = ?1",
            [id],
        )?;
        Ok(())
    }

    /// The id of the newest audit event (0 if there is none).
    pub fn audit_events_max_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .lock()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM audit_events", [], |r| r.get(0))?)
    }

    /// Audit events with an id above `after`, oldest first.
    pub fn audit_events(&self, after: i64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT id, time_ms, kind, actor, profile, server, outcome, detail FROM audit_events
             WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], audit_row)?;
        rows.map(|row| decode_audit_row(row?)).collect()
    }

    pub fn audit_webhook_set(&self, name: &PluginName, url: &str) -> Result<(), StoreError> {
        self.lock().execute(
            "INSERT INTO audit_webhooks (name, url, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET url = ?2",
            params![name.as_str(), url, now()],
        )?;
        Ok(())
    }

    pub fn audit_webhook_remove(&self, name: &PluginName) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .execute("DELETE FROM audit_webhooks WHERE name = ?1", [name.as_str()])?
            > 0)
    }

    pub fn audit_webhooks(&self) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT name, url FROM audit_webhooks ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

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
        let decision = filter.decision.map(|o| o.as_str().to_owned());
        for (column, value) in [
            ("profile", &filter.profile),
            ("server", &filter.server),
            ("outcome", &decision),
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
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
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

fn decode_audit_row(row: AuditRow) -> Result<AuditEvent, StoreError> {
    let (id, time_ms, kind, actor, profile, server, outcome, detail) = row;
    Ok(AuditEvent {
        id,
        time_ms,
        kind,
        actor,
        profile,
        server,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("audit event {id}: unknown outcome {outcome:?}")))?,
        detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(format!("audit event {id}: {e}")))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store as store;

    #[test]
    fn audit_events_are_appended_in_order() {
        let (_dir, store) = store();
        let event = |kind: &str| NewAuditEvent {
            kind: kind.into(),
            actor: "operator".into(),
            profile: None,
            server: None,
            outcome: Outcome::Ok,
            detail: serde_json::json!({"n": 1}),
        };
        let written = store.audit_append(&[event("a"), event("b")]).unwrap();
        assert!(written[0].id < written[1].id);
        let read = store.audit_events(written[0].id, 10).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].kind, "b");
    }

    #[test]
    fn a_search_by_decision_finds_that_outcome_only() {
        let (_dir, store) = store();
        let event = |kind: &str, outcome| NewAuditEvent {
            kind: kind.into(),
            actor: "server:s".into(),
            profile: None,
            server: None,
            outcome,
            detail: serde_json::json!({}),
        };
        store
            .audit_append(&[
                event("egress.request", Outcome::Deny),
                event("egress.request", Outcome::Error),
                event("mcp.tool_call", Outcome::Deny),
                event("mcp.tool_call", Outcome::Ok),
            ])
            .unwrap();
        let filter = AuditFilter {
            decision: Some(Outcome::Deny),
            ..AuditFilter::default()
        };
        let found: Vec<(String, Outcome)> = store
            .audit_search(&filter, None, 10)
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.outcome))
            .collect();
        assert_eq!(
            found,
            [
                ("mcp.tool_call".to_owned(), Outcome::Deny),
                ("egress.request".to_owned(), Outcome::Deny)
            ]
        );
    }
}
