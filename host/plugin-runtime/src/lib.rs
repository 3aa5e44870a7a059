//! The WebAssembly plugin runtime: sandboxed components that decide egress, inject credentials, map logins,
//! route audit events and filter MCP traffic. See README.md beside `src/` for what was decided and why.
//!
//! Owns: the wasmtime engine and its limits (`runtime`), the compiled-artifact cache (`artifacts`), the one
//! adapter per WIT version (`since_v0_1_0`), examining a component before it is stored (`candidate`), loaded
//! plugins with their instance pools and statistics (`loaded`), and combining the answers of every bound plugin
//! (`dispatch`, whose [`PluginHost`] is what the rest of the gateway calls). With the `harness` feature, a
//! native test harness for plugin authors.
//!
//! Must never depend on the store or on any crate above it: a plugin author's test harness needs only this
//! crate and `gigmcp-types`. Loading what the database says is `gigmcp-plugins`'s job.

pub mod artifacts;
pub mod call;
pub mod candidate;
pub mod dispatch;
#[cfg(feature = "harness")]
pub mod guest_build;
#[cfg(feature = "harness")]
pub mod harness;
mod host_state;
pub mod limits;
pub mod loaded;
mod redact;
pub mod runtime;
pub mod schema;
pub mod since_v0_1_0;

pub use candidate::{Candidate, CandidateError};
pub use dispatch::{Active, Chain, PluginHost, PluginSet, RequestDecision, ResponseDecision};
pub use limits::{CallFailure, Limits, LoadError, Usage};
pub use loaded::QUARANTINE_AFTER;
pub use runtime::Runtime;
