//! The gateway's vocabulary: the names, ids and data models every other crate speaks, with no behaviour that
//! needs a database, a sandbox, a network or a WebAssembly engine.
//!
//! Owns: validated names (`names`), row ids (`ids`), tokens (`token`), the server model (`server`), plugin kinds
//! and component hashes (`plugin`), the policy hooks' vocabulary (`policy`), users' roles (`user`), audit events
//! and their outcomes (`audit`), the credential model with its host patterns and reserved headers
//! (`credential`), secrets as data and the master key (`secret`), and small helpers (`sync`, `time`).
//!
//! Must never depend on another crate of the workspace: it is the bottom of the graph (docs/DESIGN.md).

#![forbid(unsafe_code)]

pub mod audit;
pub mod credential;
pub mod etag;
pub mod ids;
pub mod mcp;
pub mod names;
pub mod oauth;
pub mod plugin;
pub mod policy;
pub mod report;
pub mod secret;
pub mod server;
pub mod sync;
pub mod time;
pub mod token;
pub mod user;
