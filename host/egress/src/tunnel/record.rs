//! A request's audit record: filled in along the request's path, recorded once, when the response body
//! ends or is dropped, or when the request is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::json;

use crate::{Caller, Proxy};
use gigmcp_types::audit::{NewAuditEvent, Outcome};

/// What one request's audit event says; recorded when the response body ends (or the request is refused).
pub(super) struct RequestRecord {
    pub(super) proxy: Arc<Proxy>,
    pub(super) caller: Arc<Caller>,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) method: String,
    pub(super) path: String,
    pub(super) status: u16,
    pub(super) decision: &'static str,
    pub(super) code: Option<&'static str>,
    pub(super) reason: Option<String>,
    pub(super) plugin: Option<String>,
    pub(super) injected: Vec<String>,
    /// The connected accounts whose tokens went in: credential, vendor and owner (never a token).
    pub(super) accounts: Vec<serde_json::Value>,
    pub(super) bytes_up: Arc<AtomicU64>,
    pub(super) bytes_down: u64,
    pub(super) started: Instant,
}

impl RequestRecord {
    pub(super) fn record(&self) {
        self.proxy.record_after_yield(NewAuditEvent {
            kind: "egress.request".into(),
            actor: format!("server:{}", self.caller.tenant.server),
            profile: self.caller.tenant.profile.as_ref().map(|p| p.to_string()),
            server: Some(self.caller.tenant.server.to_string()),
            outcome: match self.decision {
                "allow" => Outcome::Ok,
                "deny" => Outcome::Deny,
                _ => Outcome::Error,
            },
            detail: json!({
                "host": self.host,
                "port": self.port,
                "method": self.method,
                "path": self.path,
                "status": self.status,
                "bytes_up": self.bytes_up.load(Ordering::Relaxed),
                "bytes_down": self.bytes_down,
                "decision": self.decision,
                "code": self.code,
                "reason": self.reason,
                "plugin": self.plugin,
                "credentials": self.injected,
                "accounts": self.accounts,
                "duration_ms": self.started.elapsed().as_millis() as u64,
            }),
        });
    }
}
