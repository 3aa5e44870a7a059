//! MCP's data plane: the endpoint of each profile (`/mcp/p/{slug}`), the client sessions on it, the sessions
//! with upstream servers, and the aggregation between them. See `README.md` beside this file for what was
//! decided and why.
//!
//! Owns: the streamable-HTTP endpoint and its checks (`endpoint`), the gateway's live state and the watcher
//! that applies CLI edits (`gateway`), a profile's runtime with its servers, routes and subscriptions
//! (`runtime`), list merging, cursors and the routing table (`aggregate`), and, private to the crate, client
//! sessions (`session`), upstream connections over stdio or HTTP (`upstream`), JSON-RPC messages (`jsonrpc`)
//! and the event-stream reader (`sse`). The runtime reaches sessions only through the `Client` trait
//! (`client`), so the two modules do not depend on each other.
//!
//! May depend on the vocabulary (types), the store, the vault, the sandbox, the plugin runtime and the audit
//! log; must never depend on the egress proxy, ops, the control API or the binary, which sit above it.

#![forbid(unsafe_code)]

pub mod aggregate;
mod client;
pub mod endpoint;
pub mod gateway;
mod jsonrpc;
pub mod logs;
pub mod runtime;
mod session;
mod sse;
mod upstream;

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
