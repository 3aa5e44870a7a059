//! The toolpack engine (`gigmcp mcp-toolpack`): a catalog entry's toolspec served as MCP tools over stdio,
//! each tool call one HTTPS request to the vendor's API through the jail's egress proxy.
//!
//! It runs inside the server's sandbox like any stdio server and reads one read-only file the installer wrote
//! from the signed index ([`config::EngineConfig`]). The credential's header carries only the placeholder
//! the jail holds; the egress proxy puts the secret in, for the credential's hosts only (invariant 1).

pub mod config;
pub mod request;
pub mod response;
pub mod schema;
pub mod serve;

pub use serve::run;

/// A toolspec param, for the unit tests.
#[cfg(test)]
fn test_param(name: &str, location: &str, kind: &str, required: bool) -> gigmcp_catalog::toolspec::SpecParam {
    gigmcp_catalog::toolspec::SpecParam {
        name: name.into(),
        location: location.into(),
        kind: kind.into(),
        required,
        description: format!("about {name}"),
    }
}
