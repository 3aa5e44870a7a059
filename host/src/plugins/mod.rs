//! Policy plugins: sandboxed WebAssembly components that decide egress, inject credentials, map logins,
//! route audit events and filter MCP traffic. See README.md in this folder for what was decided and why.
//!
//! The surface the rest of the gateway uses is [`PluginHost`]: hooks per kind (`egress_decide`,
//! `inject_credentials`, `map_identity`, `filter_request`, `filter_response`), `reload` and `watch` to follow
//! the database.

pub mod artifacts;
pub mod audit;
pub mod cli;
pub mod defaults;
mod dispatch;
mod guest_build;
pub mod harness;
pub mod hooks;
mod kind;
mod load;
mod loaded;
pub mod manage;
pub mod names;
mod redact;
pub mod runtime;
pub mod schema;
mod v0_1_0;

pub use dispatch::{PluginHost, PluginSet, RequestDecision, ResponseDecision};
pub use kind::PluginKind;
pub use load::{ReloadReport, StartError};
pub use loaded::QUARANTINE_AFTER;
