//! Audit events: what the one writer stores and what audit-sink plugins receive.

use serde::Serialize;
use serde_json::Value;

/// An event as stored, with its id and time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub time_ms: i64,
    pub kind: String,
    pub actor: String,
    pub profile: Option<String>,
    pub server: Option<String>,
    pub outcome: String,
    pub detail: Value,
}

/// An audit event before it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub kind: String,
    pub actor: String,
    pub profile: Option<String>,
    pub server: Option<String>,
    pub outcome: String,
    pub detail: Value,
}
