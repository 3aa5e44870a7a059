//! What the gateway's own MCP servers (the built-in echo, the toolpack engine) say about protocol versions.

/// The protocol versions the built-in servers speak, newest first.
pub const SERVER_PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The version to answer `initialize` with: the one asked for if spoken, else the newest.
pub fn negotiate(asked: &str) -> &'static str {
    SERVER_PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .copied()
        .unwrap_or(SERVER_PROTOCOL_VERSIONS[0])
}
