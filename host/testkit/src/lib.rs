//! Test support for Gig'MCP's integration tests (`host/gigmcp/tests/all`): real parts, split by role.
//!
//! - `paths`: the repository, the `gigmcp` binary under test, the installed test dependencies;
//! - `gateway`: `TestGateway`, a real `gigmcp serve` with its own data directory, and its CLI;
//! - `clients`: the Python SDK client scripts and `RawClient`, a bare-bones MCP client;
//! - `processes`: ports, `Guard` (a child killed on drop), `server-everything`, the conformance fixture, Node 22;
//! - `netns`: network namespaces for gateways without an uplink and the hosts "outside";
//! - `upstream`: the test HTTPS upstream and the test CA its certificate comes from.
//!
//! Outside the layers of `host/`: only tests depend on it, and it depends on no gateway crate (it drives the
//! binary and speaks HTTP, as a user would).

#![forbid(unsafe_code)]
#![allow(dead_code)]

pub mod clients;
pub mod gateway;
pub mod netns;
pub mod paths;
pub mod processes;
pub mod upstream;

pub use clients::*;
pub use gateway::*;
pub use netns::*;
pub use paths::*;
pub use processes::*;
pub use upstream::*;
