//! Installing an entry of the official MCP Registry's `server.json` format (`server add --server-json`): its
//! npm or PyPI package run over stdio in a sandbox, or its streamable-HTTP remote, as the server input the
//! CLI and the API already share ([`ServerInput`]).
//!
//! - A package's version must be exact (no range, no `latest`); its registry the default one. Its
//!   `runtimeHint` and runtime arguments are ignored (the gateway runs node or python itself); its package
//!   arguments become argv elements, never a shell line.
//! - Environment variables: a value or default becomes the server's environment (the operator's `--env`
//!   wins); a required one without either must be given with `--env`; `choices` are enforced. A secret one
//!   becomes a credential to define: the format does not say which header, hosts or format it goes in, so the
//!   install names the `credential set` command to run, and the jail gets only its placeholder.
//! - The format declares no egress: the operator gives `--egress`.
//! - What cannot be installed here is named: OCI images, MCPB bundles, NuGet, Cargo and Go packages, packages
//!   that serve HTTP themselves, SSE remotes, remote URL templates and remote headers.

use serde::Deserialize;

use crate::{OpsError, ServerInput};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerJson {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub version: String,
    #[serde(default)]
    pub packages: Vec<Package>,
    #[serde(default)]
    pub remotes: Vec<Remote>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub registry_type: String,
    #[serde(default)]
    pub identifier: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub registry_base_url: Option<String>,
    pub transport: Transport,
    #[serde(default)]
    pub package_arguments: Vec<Argument>,
    #[serde(default)]
    pub environment_variables: Vec<Variable>,
}

#[derive(Debug, Deserialize)]
pub struct Transport {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remote {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    #[serde(default)]
    pub headers: Vec<Variable>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub is_required: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variable {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub is_required: bool,
    #[serde(default)]
    pub is_secret: bool,
    #[serde(default)]
    pub choices: Vec<String>,
}

/// The server to define, and the secrets the operator still has to set as credentials.
#[derive(Debug)]
pub struct Plan {
    pub input: ServerInput,
    /// Environment variables the server reads a secret from: each needs `credential set … --env-name`.
    pub secrets: Vec<Variable>,
    /// What the entry offers that this gateway does not install (for the operator to read).
    pub skipped: Vec<String>,
}

const NPM_REGISTRY: &str = "https://registry.npmjs.org";
const PYPI_REGISTRY: &str = "https://pypi.org";

impl ServerJson {
    pub fn parse(text: &str) -> Result<Self, OpsError> {
        serde_json::from_str(text).map_err(|e| OpsError::Invalid(format!("not a server.json: {e}")))
    }

    /// The server input for this entry: its first npm or PyPI stdio package, else its first streamable-HTTP
    /// remote. `env` are the operator's `NAME=value` settings; the rest of `base` (name, egress, limits) is
    /// kept.
    pub fn plan(&self, mut base: ServerInput) -> Result<Plan, OpsError> {
        let mut skipped = Vec::new();
        for package in &self.packages {
            match (package.registry_type.as_str(), package.transport.kind.as_str()) {
                ("npm" | "pypi", "stdio") => return self.package_plan(package, base, skipped),
                ("npm" | "pypi", other) => skipped.push(format!(
                    "package {} ({}): it serves {other} itself; only stdio packages run here",
                    package.identifier, package.registry_type
                )),
                (other, _) => skipped.push(format!(
                    "package {} ({other}): {other} packages are not installable here (npm and PyPI are)",
                    package.identifier
                )),
            }
        }
        for remote in &self.remotes {
            if remote.kind != "streamable-http" {
                skipped.push(format!(
                    "remote {} ({}): only streamable-http remotes are supported",
                    remote.url, remote.kind
                ));
                continue;
            }
            if remote.url.contains('{') {
                skipped.push(format!(
                    "remote {}: URL template variables are not supported yet",
                    remote.url
                ));
                continue;
            }
            if !remote.headers.is_empty() {
                skipped.push(format!(
                    "remote {}: it needs headers ({}), which remote servers cannot be given yet",
                    remote.url,
                    remote
                        .headers
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                continue;
            }
            if !remote.url.starts_with("https://") {
                skipped.push(format!("remote {}: not an https URL", remote.url));
                continue;
            }
            if !base.egress.is_empty() || !base.env.is_empty() {
                return Err(OpsError::Invalid(
                    "--egress and --env do not apply to a remote server (it is not sandboxed)".into(),
                ));
            }
            base.url = Some(remote.url.clone());
            return Ok(Plan {
                input: base,
                secrets: Vec::new(),
                skipped,
            });
        }
        Err(OpsError::Invalid(format!(
            "{} {} has nothing this gateway can install: {}",
            self.name,
            self.version,
            if skipped.is_empty() {
                "it lists no packages and no remotes".to_owned()
            } else {
                skipped.join("; ")
            }
        )))
    }

    fn package_plan(&self, package: &Package, mut base: ServerInput, skipped: Vec<String>) -> Result<Plan, OpsError> {
        let refuse = |why: String| Err(OpsError::Invalid(format!("package {}: {why}", package.identifier)));
        let version = package.version.as_deref().unwrap_or("");
        let exact = !version.is_empty()
            && version != "latest"
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
            && !version.ends_with(".x");
        if !exact {
            return refuse(format!("its version {version:?} is not an exact version"));
        }
        let default_registry = if package.registry_type == "npm" {
            NPM_REGISTRY
        } else {
            PYPI_REGISTRY
        };
        if let Some(url) = &package.registry_base_url
            && url.trim_end_matches('/') != default_registry
        {
            return refuse(format!("it comes from {url}; only {default_registry} is used here"));
        }
        if package.identifier.is_empty() {
            return refuse("it has no identifier".into());
        }
        for argument in &package.package_arguments {
            let value = argument.value.clone().or(argument.default.clone());
            match (argument.kind.as_str(), &argument.name, value) {
                ("positional", _, Some(value)) => base.args.push(value),
                ("named", Some(name), Some(value)) => base.args.extend([name.clone(), value]),
                ("named", Some(name), None) if !argument.is_required => base.args.push(name.clone()),
                (_, _, None) if !argument.is_required => {}
                (kind, name, _) => {
                    return refuse(format!(
                        "its {kind} argument {} needs a value the format does not give",
                        name.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        let given: Vec<String> = base
            .env
            .iter()
            .filter_map(|pair| pair.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        let mut secrets = Vec::new();
        for variable in &package.environment_variables {
            if let Some(pair) = base
                .env
                .iter()
                .find(|p| p.split_once('=').is_some_and(|(k, _)| k == variable.name))
                && !variable.choices.is_empty()
            {
                let value = pair.split_once('=').map(|(_, v)| v).unwrap_or_default();
                if !variable.choices.iter().any(|c| c == value) {
                    return refuse(format!(
                        "{} must be one of {}",
                        variable.name,
                        variable.choices.join(", ")
                    ));
                }
            }
            if given.contains(&variable.name) {
                continue;
            }
            if variable.is_secret {
                secrets.push(Variable {
                    name: variable.name.clone(),
                    description: variable.description.clone(),
                    value: None,
                    default: None,
                    is_required: variable.is_required,
                    is_secret: true,
                    choices: Vec::new(),
                });
                continue;
            }
            match variable.value.clone().or(variable.default.clone()) {
                Some(value) => base.env.push(format!("{}={value}", variable.name)),
                None if variable.is_required => {
                    return refuse(format!(
                        "it needs {} ({}): give it with --env {}=…",
                        variable.name, variable.description, variable.name
                    ));
                }
                None => {}
            }
        }
        match package.registry_type.as_str() {
            "npm" => base.npm = Some(format!("{}@{version}", package.identifier)),
            _ => base.pypi = Some(format!("{}=={version}", package.identifier)),
        }
        Ok(Plan {
            input: base,
            secrets,
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str, env: &[&str]) -> Result<Plan, OpsError> {
        let base = ServerInput {
            name: "weather".into(),
            env: env.iter().map(|e| e.to_string()).collect(),
            ..ServerInput::default()
        };
        ServerJson::parse(json)?.plan(base)
    }

    const NPM: &str = r#"{
      "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
      "name": "io.github.example/weather", "description": "Weather", "version": "1.2.0",
      "packages": [
        {"registryType": "oci", "identifier": "ghcr.io/example/weather:1.2.0", "transport": {"type": "stdio"}},
        {"registryType": "npm", "identifier": "@example/weather", "version": "1.2.0", "runtimeHint": "npx",
         "transport": {"type": "stdio"},
         "packageArguments": [{"type": "positional", "value": "serve"}, {"type": "named", "name": "--units", "default": "metric"}],
         "environmentVariables": [
           {"name": "WEATHER_API_KEY", "isSecret": true, "isRequired": true, "description": "API key"},
           {"name": "LOG_LEVEL", "default": "info", "choices": ["info", "debug"]},
           {"name": "REGION", "isRequired": true, "description": "Region"}
         ]}
      ],
      "_meta": {"io.modelcontextprotocol.registry/publisher-provided": {"x": 1}}
    }"#;

    #[test]
    fn an_npm_package_becomes_a_pinned_install_with_args_env_and_secrets_named() {
        let plan = plan(NPM, &["REGION=eu"]).unwrap();
        assert_eq!(plan.input.npm.as_deref(), Some("@example/weather@1.2.0"));
        assert_eq!(plan.input.args, ["serve", "--units", "metric"]);
        assert_eq!(plan.input.env, ["REGION=eu", "LOG_LEVEL=info"]);
        assert_eq!(plan.secrets.len(), 1);
        assert_eq!(plan.secrets[0].name, "WEATHER_API_KEY");
        assert!(
            plan.skipped[0].contains("oci packages are not installable here"),
            "{:?}",
            plan.skipped
        );
    }

    #[test]
    fn refusals_name_what_is_missing_or_wrong() {
        let error = plan(NPM, &[]).unwrap_err().to_string();
        assert!(
            error.contains("it needs REGION (Region): give it with --env REGION=…"),
            "{error}"
        );
        let error = plan(NPM, &["REGION=eu", "LOG_LEVEL=loud"]).unwrap_err().to_string();
        assert!(error.contains("LOG_LEVEL must be one of info, debug"), "{error}");
        let ranged = NPM.replace(
            r#""version": "1.2.0", "runtimeHint""#,
            r#""version": "^1.2.0", "runtimeHint""#,
        );
        assert!(
            plan(&ranged, &["REGION=eu"])
                .unwrap_err()
                .to_string()
                .contains("not an exact version")
        );
        let latest = NPM.replace(
            r#""version": "1.2.0", "runtimeHint""#,
            r#""version": "latest", "runtimeHint""#,
        );
        assert!(
            plan(&latest, &["REGION=eu"])
                .unwrap_err()
                .to_string()
                .contains("not an exact version")
        );
        let mirrored = NPM.replace(
            r#""runtimeHint""#,
            r#""registryBaseUrl": "https://npm.example.test", "runtimeHint""#,
        );
        assert!(
            plan(&mirrored, &["REGION=eu"])
                .unwrap_err()
                .to_string()
                .contains("only https://registry.npmjs.org")
        );
        let none = r#"{"name": "a/b", "version": "1.0.0", "packages": [{"registryType": "mcpb", "identifier": "https://x/y.mcpb",
            "transport": {"type": "stdio"}}], "remotes": [{"type": "sse", "url": "https://x/sse"}]}"#;
        let error = plan(none, &[]).unwrap_err().to_string();
        assert!(error.contains("mcpb packages are not installable here"), "{error}");
        assert!(error.contains("only streamable-http remotes"), "{error}");
        assert!(plan("{}", &[]).unwrap_err().to_string().contains("not a server.json"));
    }

    #[test]
    fn a_streamable_http_remote_becomes_a_remote_server() {
        let json = r#"{"name": "a/b", "version": "1.0.0", "remotes": [
            {"type": "streamable-http", "url": "https://{tenant}.example.test/mcp"},
            {"type": "streamable-http", "url": "https://mcp.example.test/mcp"}]}"#;
        let plan = plan(json, &[]).unwrap();
        assert_eq!(plan.input.url.as_deref(), Some("https://mcp.example.test/mcp"));
        assert!(plan.skipped[0].contains("template variables"), "{:?}", plan.skipped);
    }
}
