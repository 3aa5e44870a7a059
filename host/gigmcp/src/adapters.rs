//! The binary's adapters between crates that must not know each other: the MCP data plane (`gigmcp-mcp`)
//! answers the questions ops and the control plane ask through traits of their own (`ServerProbe`,
//! `RunningServers`, `ServerStates`), so a change in the data plane rebuilds neither of them.

use std::sync::Arc;

use gigmcp_control::RunningServers;
use gigmcp_mcp::aggregate::ListKind;
use gigmcp_mcp::gateway::Gateway;
use gigmcp_mcp::logs::ServerLogs;
use gigmcp_mcp::runtime::{Deps, probe_names};
use gigmcp_ops::{NameKind, ProbeError, ServerProbe, ServerStates};
use gigmcp_sandbox::Launcher;
use gigmcp_sandbox::state::StateStore;
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::server::{LogLine, SandboxStatus, ServerDef, StateDir};

/// Lists servers' names by starting each on its own, sandboxed as when serving, on a runtime of its own;
/// what they write on stderr goes to `logs` (the gateway's, when it is the gateway that probes).
pub struct SandboxProbe {
    pub settings: gigmcp_sandbox::Settings,
    pub logs: Arc<ServerLogs>,
}

impl ServerProbe for SandboxProbe {
    fn names(&self, servers: &[ServerDef]) -> Vec<Result<Vec<(NameKind, String)>, ProbeError>> {
        let failed = |e: String| servers.iter().map(|_| Err(ProbeError(e.clone()))).collect();
        let launcher = match Launcher::offline(self.settings.clone()) {
            Ok(launcher) => launcher,
            Err(e) => return failed(format!("cannot start its sandbox: {e}")),
        };
        let deps = Deps {
            launcher,
            http: reqwest::Client::new(),
            idle_timeout: std::time::Duration::MAX,
            plugins: None,
            store: None,
            audit: None,
            logs: self.logs.clone(),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => return failed(format!("cannot start a runtime to list it: {e}")),
        };
        let listed = runtime.block_on(async {
            let probes = servers.iter().map(|def| probe_names(def, &deps));
            futures_util::future::join_all(probes).await
        });
        listed
            .into_iter()
            .map(|names| {
                names.map_err(|e| ProbeError(e.to_string())).map(|names| {
                    names
                        .into_iter()
                        .filter_map(|(kind, name)| match kind {
                            ListKind::Tools => Some((NameKind::Tool, name)),
                            ListKind::Prompts => Some((NameKind::Prompt, name)),
                            _ => None,
                        })
                        .collect()
                })
            })
            .collect()
    }
}

/// The running gateway, for the control plane.
pub struct Running(pub Arc<Gateway>);

impl RunningServers for Running {
    fn sandbox_statuses(&self) -> Vec<SandboxStatus> {
        self.0.sandbox_statuses()
    }

    fn restart_server(&self, server: &ServerName) -> usize {
        self.0.restart_server(server)
    }

    fn server_logs(&self, server: &ServerName, after: Option<u64>) -> Vec<LogLine> {
        self.0.logs().lines(server, after)
    }

    fn follow_server_logs(
        &self,
        server: &ServerName,
        after: Option<u64>,
    ) -> (Vec<LogLine>, tokio::sync::broadcast::Receiver<LogLine>) {
        self.0.logs().follow(server, after)
    }

    fn hidden_tools(&self, profile: gigmcp_types::ids::ProfileId) -> Vec<gigmcp_control::HiddenTool> {
        self.0
            .hidden_tools(profile)
            .into_iter()
            .map(|(exposed, hidden)| gigmcp_control::HiddenTool {
                exposed,
                server: hidden.server.to_string(),
                by: hidden.by,
            })
            .collect()
    }

    fn forget_server_logs(&self, server: &ServerName) {
        self.0.logs().forget(server)
    }

    fn request(
        &self,
        profile: gigmcp_types::ids::ProfileId,
        actor: String,
        method: &'static str,
        params: serde_json::Value,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<serde_json::Value, String>> + Send + '_>> {
        Box::pin(async move {
            self.0
                .one_request(profile, actor, method, params)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Servers' state directories: the gateway's own store (one lock for its sandboxes and the API's removals),
/// or one the CLI opens on the same directory.
pub struct States(pub Arc<StateStore>);

impl ServerStates for States {
    fn list(&self, server: &ServerName) -> Vec<StateDir> {
        self.0.list(Some(server.as_str()))
    }

    fn holds_data(&self, state: &StateDir) -> bool {
        self.0.holds_data(state)
    }

    fn remove(&self, server: &ServerName, profile: Option<&ProfileSlug>) -> Result<(), String> {
        self.0
            .remove(server.as_str(), profile.map(ProfileSlug::as_str))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
