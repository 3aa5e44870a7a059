//! Plugin management: what the database says about plugins, brought into the running gateway.
//!
//! Owns: adding and configuring plugins (`manage`), installing the default plugins handed to it (`defaults`),
//! and loading, reloading and watching the enabled plugins and their bindings (`load`).
//!
//! Depends on the store and the plugin runtime; must never depend on the data plane (egress, mcp) or anything
//! above it.

#![forbid(unsafe_code)]

pub mod defaults;
pub mod dry_run;
mod load;
pub mod manage;

pub use load::{ReloadReport, StartError, flush_stats, reload, start, watch};
