//! What the engine reads: one JSON file the installer writes (taken from the signed index) and the gateway
//! mounts read-only into the jail, plus two variables the gateway sets.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use gigmcp_catalog::{Manifest, ToolSpec};

/// The engine's configuration file (`/etc/gigmcp/toolpack.json` in the jail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub manifest: Manifest,
    pub toolspec: ToolSpec,
    /// The per-install base URL (`https://<host>`) that replaces the toolspec's for tenant-hosted APIs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Where each credential's placeholder goes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<AuthHeader>,
}

/// One credential as the engine sends it: `header: format` with `{token}` replaced by the placeholder the
/// jail holds in `env`. The egress proxy swaps the placeholder for the secret, for the credential's hosts
/// only; the engine never sees a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthHeader {
    pub id: String,
    pub header: String,
    pub format: String,
    pub env: String,
}

/// The variable naming the tools this profile may use (comma separated); without it, the manifest's
/// default tools.
pub const TOOLS_ENV: &str = "GIG_TOOLPACK_TOOLS";
/// The variable naming the server, for the hints of error results.
pub const SERVER_ENV: &str = "GIG_TOOLPACK_SERVER";

/// The configuration and the environment, read once at start.
pub struct Settings {
    pub config: EngineConfig,
    /// The tools exposed, in the toolspec's order.
    pub enabled: Vec<String>,
    pub server: String,
    /// Placeholder by credential id, for the credentials whose variable is set.
    pub placeholders: HashMap<String, String>,
}

impl Settings {
    pub fn from_parts(config: EngineConfig, env: &HashMap<String, String>) -> Self {
        let enabled = match env.get(TOOLS_ENV) {
            Some(list) => {
                let wanted: Vec<&str> = list.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
                config
                    .toolspec
                    .tools
                    .iter()
                    .filter(|t| wanted.contains(&t.name.as_str()))
                    .map(|t| t.name.clone())
                    .collect()
            }
            None => config
                .toolspec
                .tools
                .iter()
                .filter(|t| config.manifest.tools.iter().any(|m| m.name == t.name && m.default))
                .map(|t| t.name.clone())
                .collect(),
        };
        let placeholders = config
            .auth
            .iter()
            .filter_map(|a| env.get(&a.env).map(|v| (a.id.clone(), v.clone())))
            .collect();
        Self {
            server: env
                .get(SERVER_ENV)
                .cloned()
                .unwrap_or_else(|| config.manifest.name.clone()),
            enabled,
            placeholders,
            config,
        }
    }
}
