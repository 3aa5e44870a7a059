//! What a profile's runtime needs of a client session, as a trait: the runtime fans upstream events out to its
//! sessions and asks them about their per-session servers, while a session asks the runtime for routes and
//! shared servers. With the trait, the runtime names no session type and the two modules do not depend on
//! each other (`Session` implements it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gigmcp_types::names::ServerName;
use gigmcp_types::server::SandboxStatus;
use serde_json::Value;

use crate::upstream::Conn;

/// A client session as its profile's runtime sees it.
pub trait Client: Send + Sync {
    /// The session's id (`Mcp-Session-Id`).
    fn id(&self) -> &str;
    /// Queues a message for the client (a notification, or a response to a server→client request).
    fn push(&self, message: Value);
    /// Forwards a server→client request, which the session gives an id of its own.
    fn push_server_request(&self, conn: Arc<Conn>, message: Value);
    /// The most verbose log level the client asked for, as an index into `LOG_LEVELS`.
    fn log_level(&self) -> Option<usize>;
    /// When the client last sent anything.
    fn last_active(&self) -> Instant;
    /// Stops the session's own process of a server that left the profile.
    fn drop_server(&self, name: &ServerName);
    /// The sandboxes of the session's per-session servers.
    fn sandbox_statuses(&self) -> Vec<SandboxStatus>;
    /// Stops the session's per-session servers unused for `idle`.
    fn stop_idle_servers(&self, idle: Duration);
}
