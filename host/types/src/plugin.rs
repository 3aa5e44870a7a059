//! Plugins as the gateway names them: the five kinds (one WIT world each), a component's identity (its sha256)
//! and the running gateway's counters.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::Digest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    EgressPolicy,
    CredentialInjector,
    AuthMapper,
    AuditSink,
    McpFilter,
}

impl PluginKind {
    pub const ALL: [PluginKind; 5] = [
        PluginKind::EgressPolicy,
        PluginKind::CredentialInjector,
        PluginKind::AuthMapper,
        PluginKind::AuditSink,
        PluginKind::McpFilter,
    ];

    /// The world's name in `wit/`, which is also how operators name the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::EgressPolicy => "egress-policy",
            PluginKind::CredentialInjector => "credential-injector",
            PluginKind::AuthMapper => "auth-mapper",
            PluginKind::AuditSink => "audit-sink",
            PluginKind::McpFilter => "mcp-filter",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Policy kinds fail closed: a plugin that traps, times out or returns garbage denies. An audit sink
    /// that fails never blocks anything.
    pub fn fails_closed(self) -> bool {
        self != PluginKind::AuditSink
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The sha256 of a plugin's component bytes: its identity, in the store and in the cache.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentHash(pub [u8; 32]);

impl ComponentHash {
    pub fn of(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    pub fn parse_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text.trim()).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for ComponentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.to_hex())
    }
}

impl fmt::Debug for ComponentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComponentHash({})", self.to_hex())
    }
}

/// The running gateway's counters for one plugin, for `plugin inspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginStats {
    pub revision: i64,
    pub calls: u64,
    pub failures: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub quarantined: bool,
    pub last_error: Option<String>,
    pub lost_events: u64,
    pub updated_at: i64,
}
