//! The policy hooks' vocabulary in the gateway's own types, independent of any WIT version. The egress proxy,
//! the MCP session and the control plane speak these; the plugin runtime's WIT adapter converts them to and
//! from the plugin interface.

use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::audit::AuditEvent;
use crate::names::ProfileSlug;
use crate::user::ProfileAccess;

/// What every hook is told about the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// Correlates the plugin's log lines with the gateway's.
    pub request_id: String,
    /// The tenant. Instances are never shared between tenants: each profile gets its own.
    pub profile: Option<ProfileSlug>,
}

impl CallContext {
    pub fn new(request_id: impl Into<String>, profile: Option<ProfileSlug>) -> Self {
        Self {
            request_id: request_id.into(),
            profile,
        }
    }
}

/// Why something was refused: what the client and the audit log read. `plugin` names the plugin that
/// decided (or failed), when one did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenyReason {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    pub code: String,
    pub message: String,
}

impl DenyReason {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            plugin: None,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn by(mut self, plugin: &str) -> Self {
        self.plugin = Some(plugin.to_owned());
        self
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.plugin {
            Some(plugin) => write!(f, "{} ({}, plugin {plugin})", self.message, self.code),
            None => write!(f, "{} ({})", self.message, self.code),
        }
    }
}

// ---- egress-policy

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequestLine {
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRequest {
    pub server: String,
    pub host: String,
    pub port: u16,
    pub http: Option<HttpRequestLine>,
    /// The server's declared egress hosts.
    pub declared: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressDecision {
    Allow { cache_ttl_secs: Option<u32> },
    Deny(DenyReason),
}

// ---- credential-injector

/// The host's handle of a secret. A plugin holds it only as a resource it cannot read; the egress proxy
/// resolves it to plaintext after the plugin returned, and only for the hosts the secret is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretHandle(pub String);

/// A credential this request may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub credential: String,
    pub handle: SecretHandle,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceholderLocation {
    Header(String),
    Query(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderSite {
    pub credential: String,
    pub location: PlaceholderLocation,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub server: String,
    pub method: String,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub header_names: Vec<String>,
    pub placeholders: Vec<PlaceholderSite>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Literal(String),
    Secret(SecretHandle),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOp {
    SetHeader { name: String, value: Vec<TemplatePart> },
    RemoveHeader(String),
    SetQuery { name: String, value: Vec<TemplatePart> },
}

// ---- auth-mapper

#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    pub claims: Value,
    /// A hash of the token, never the token.
    pub token_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub roles: Vec<String>,
    pub profiles: ProfileAccess,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Principal(Principal),
    Unauthenticated(DenyReason),
    Forbidden(DenyReason),
}

// ---- audit-sink

/// A copy of an event for one destination, as a sink routed it (the destination is checked by the host).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub destination: String,
    pub event: AuditEvent,
}

// ---- mcp-filter

#[derive(Debug, Clone, PartialEq)]
pub struct McpRequest {
    pub server: String,
    pub method: String,
    /// The tool's or prompt's name as the server knows it.
    pub name: Option<String>,
    pub params: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct McpResponse {
    pub server: String,
    pub method: String,
    pub name: Option<String>,
    pub result: Value,
}

/// One plugin's answer to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestAction {
    Allow,
    Deny(DenyReason),
    Rewrite(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RedactAction {
    Remove,
    Replace(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redaction {
    pub pointer: String,
    pub action: RedactAction,
}

/// One plugin's answer to a response.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseAction {
    Pass,
    Redact(Vec<Redaction>),
    Replace(Value),
    Deny(DenyReason),
}
