//! Gig'MCP: a security-first gateway for MCP servers. See DESIGN.md at the repository's root of the
//! shared design, and the README.md of each subsystem folder for what it decided.

pub mod cli;
pub mod config;
pub mod control;
pub mod echo;
pub mod egress;
pub mod mcp;
pub mod names;
pub mod ops;
pub mod plugins;
pub mod registry;
pub mod sandbox;
pub mod servers;
pub mod store;
pub mod token;
pub mod vault;
