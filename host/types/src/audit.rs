//! Audit events: what the one writer stores and what audit-sink plugins receive, with the one vocabulary of
//! outcomes every recorder uses (MCP, egress, auth and API events alike).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happened, in the same words whichever part of the gateway recorded it: `GET /api/audit?decision=deny`
/// finds every denial, an MCP tool call refused by a policy plugin as well as an egress request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed, and done.
    Ok,
    /// Refused: by a policy plugin, a check of the gateway (a domain-fronting request, a bad login), or an
    /// operator's rule. The event's detail names who refused and why.
    Deny,
    /// Not done because something failed: an upstream that did not answer (502), an identity provider error,
    /// a server that crashed.
    Error,
    /// A tool ran and reported an error of its own (`isError`): the gateway did its part.
    ToolError,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Deny, Outcome::Error, Outcome::ToolError];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Deny => "deny",
            Outcome::Error => "error",
            Outcome::ToolError => "tool_error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// An event as stored, with its id and time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub time_ms: i64,
    pub kind: String,
    pub actor: String,
    pub profile: Option<String>,
    pub server: Option<String>,
    pub outcome: Outcome,
    pub detail: Value,
}

/// An audit event before it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub kind: String,
    pub actor: String,
    pub profile: Option<String>,
    pub server: Option<String>,
    pub outcome: Outcome,
    pub detail: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_back_what_they_write() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str());
        }
        for old in ["denied", "refused", "created", "allow", ""] {
            assert_eq!(Outcome::parse(old), None, "{old:?}");
        }
    }
}
