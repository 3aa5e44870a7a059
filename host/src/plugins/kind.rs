//! The five plugin kinds: one WIT world each.

use std::fmt;

use serde::{Deserialize, Serialize};

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

    /// The interface the world exports besides `lifecycle` (the hooks).
    pub fn hook_interface(self) -> &'static str {
        match self {
            PluginKind::EgressPolicy => "egress",
            PluginKind::CredentialInjector => "credentials",
            PluginKind::AuthMapper => "auth",
            PluginKind::AuditSink => "audit",
            PluginKind::McpFilter => "mcp",
        }
    }

    /// The `gigmcp:plugin` interfaces the world imports (besides WASI, which every component may import and
    /// which is linked to deny-all implementations).
    pub fn imported_interfaces(self) -> &'static [&'static str] {
        match self {
            PluginKind::CredentialInjector => &["types", "log", "clock", "secrets"],
            _ => &["types", "log", "clock"],
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
