//! Gig'MCP's integration tests, one binary (wasmtime's `tests/all` pattern): each module a path through the
//! gateway, run against the real `gigmcp` binary, real sandboxes, real MCP clients and servers, a real OpenID
//! provider. Test support lives in the `gigmcp-testkit` crate; what needs the gateway's own crates (reading the
//! audit log as the API does) is here.

mod aggregation;
mod api;
mod catalog;
mod cli;
mod conformance;
mod credentials;
mod egress;
mod endpoint;
mod isolation;
mod lifecycle;
mod mcp_filter;
mod metrics;
mod oauth;
mod oidc;
mod placeholders;
mod plugins;
mod plugins_cli;
mod python_sdk;
mod runtimes;
mod schemathesis;
mod state;
mod toolpack;
mod vault;

/// The audit events of the log of record that `filter` selects (as `GET /api/audit` does), waiting
/// (bounded) until `until` holds of them: the audit writer is asynchronous.
pub fn audit_until(
    gateway: &gigmcp_testkit::TestGateway,
    filter: &gigmcp_store::audit::AuditFilter,
    until: impl Fn(&[gigmcp_types::audit::AuditEvent]) -> bool,
) -> Vec<gigmcp_types::audit::AuditEvent> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let store = gigmcp_store::Store::open(&gateway.dir.path().join("gigmcp.db")).unwrap();
        let events = store.audit_search(filter, None, 500).unwrap();
        if until(&events) || std::time::Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
