//! MCP: the downstream endpoint, client sessions, upstream sessions and the aggregation between them.
//! See `README.md` beside this file for what was decided and why.

pub mod aggregate;
mod client;
pub mod endpoint;
pub mod gateway;
pub mod jsonrpc;
pub mod runtime;
pub mod session;
mod sse;
pub mod upstream;

use std::sync::LazyLock;

use serde_json::{Value, json};

/// Protocol versions the endpoint speaks, newest first.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
pub const LATEST_PROTOCOL_VERSION: &str = SUPPORTED_PROTOCOL_VERSIONS[0];

/// What the gateway declares to servers: it relays sampling, elicitation and roots to its clients.
pub static GATEWAY_CLIENT_CAPABILITIES: LazyLock<Value> =
    LazyLock::new(|| json!({"sampling": {}, "elicitation": {}, "roots": {"listChanged": true}}));

/// The version to answer a client's `initialize` with: its own if supported, else the newest.
pub fn negotiate_version(asked: &str) -> &'static str {
    SUPPORTED_PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .copied()
        .unwrap_or(LATEST_PROTOCOL_VERSION)
}
