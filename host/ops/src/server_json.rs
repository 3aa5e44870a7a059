//! Installing an entry of the official MCP Registry's `server.json` format (`server add --server-json`): its
//! npm or PyPI package run over stdio in a sandbox, or its streamable-HTTP remote, as the server input the
//! CLI and the API already share ([`ServerInput`]).
//!
//! - A package's version must be exact (no range, no `latest`); its registry the default one. Its
//!   `runtimeHint` and runtime arguments are ignored (the gateway runs node or python itself); its package
//!   arguments become argv elements, never a shell line.
//! - Environment variables: a value or default becomes the server's environment (the operator's `--env`
//!   wins); a required one without either must be given with `--env`; `choices` are enforced. A secret one
//!   becomes a credential definition: the format does not say which hosts, header or format it goes in, so
//!   the operator says it (`--secret NAME=hosts[;header[;format]]`, else the install is refused); the jail
//!   gets only its placeholder, in that variable, and the credential's hosts join the server's egress.
//! - The format declares no other egress: the operator gives `--egress`.
//! - A remote's `{variables}` are given with `--var name=value`.
//! - What cannot be installed here is named: OCI images, MCPB bundles, NuGet, Cargo and Go packages, packages
//!   that serve HTTP themselves, SSE remotes and remote headers.

use serde::Deserialize;

use crate::{OpsError, ServerInput};
use gigmcp_types::credential::CredentialName;
use gigmcp_types::server::CredentialDef;

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
    pub value_hint: Option<String>,
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
    /// The secrets' credential definitions (also in `input`): each needs `credential set` with its secret.
    pub secrets: Vec<CredentialDef>,
    /// What the entry offers that this gateway does not install (for the operator to read).
    pub skipped: Vec<String>,
}

const NPM_REGISTRY: &str = "https://registry.npmjs.org";
const PYPI_REGISTRY: &str = "https://pypi.org";

impl ServerJson {
    /// Parses and checks the schema's rules a gateway relies on (2025-12-11).
    pub fn parse(text: &str) -> Result<Self, OpsError> {
        let entry: Self =
            serde_json::from_str(text).map_err(|e| OpsError::Invalid(format!("not a server.json: {e}")))?;
        let invalid = |why: String| Err(OpsError::Invalid(format!("server.json: {why}")));
        let name_ok = (3..=200).contains(&entry.name.len())
            && entry.name.split_once('/').is_some_and(|(namespace, name)| {
                !namespace.is_empty()
                    && !name.is_empty()
                    && namespace
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            });
        if !name_ok {
            return invalid(format!(
                "name {:?} must be namespace/name (reverse DNS, like io.github.user/weather), 3 to 200 characters",
                entry.name
            ));
        }
        if !(1..=100).contains(&entry.description.chars().count()) {
            return invalid("description must have 1 to 100 characters".into());
        }
        if entry.version.is_empty() || entry.version.len() > 255 {
            return invalid("version must have 1 to 255 characters".into());
        }
        for package in &entry.packages {
            for argument in &package.package_arguments {
                if argument.kind == "positional" && argument.value.is_none() && argument.value_hint.is_none() {
                    return invalid(format!(
                        "package {}: a positional argument needs a value or a valueHint",
                        package.identifier
                    ));
                }
            }
        }
        Ok(entry)
    }

    /// The server input for this entry: its first npm or PyPI stdio package, else its first streamable-HTTP
    /// remote. `base` holds the operator's `--env NAME=value` settings, name, egress and limits; `secrets` the
    /// `--secret NAME=hosts[;header[;format]]` of the entry's secrets; `vars` the `--var name=value` of a
    /// remote's URL template.
    pub fn plan(&self, mut base: ServerInput, secrets: &[String], vars: &[String]) -> Result<Plan, OpsError> {
        let mut skipped = Vec::new();
        for package in &self.packages {
            match (package.registry_type.as_str(), package.transport.kind.as_str()) {
                ("npm" | "pypi", "stdio") => return self.package_plan(package, base, secrets, skipped),
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
            let url = match substitute(&remote.url, vars) {
                Ok(url) => url,
                Err(why) => {
                    skipped.push(format!("remote {}: {why}", remote.url));
                    continue;
                }
            };
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
            if !url.starts_with("https://") || url::Url::parse(&url).is_err() {
                skipped.push(format!("remote {}: {url} is not an https URL", remote.url));
                continue;
            }
            if !base.egress.is_empty() || !base.env.is_empty() {
                return Err(OpsError::Invalid(
                    "--egress and --env do not apply to a remote server (it is not sandboxed)".into(),
                ));
            }
            base.url = Some(url);
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

    fn package_plan(
        &self,
        package: &Package,
        mut base: ServerInput,
        secrets_given: &[String],
        skipped: Vec<String>,
    ) -> Result<Plan, OpsError> {
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
                let definition = secret_definition(variable, secrets_given)?;
                for host in &definition.hosts {
                    if !base.egress.contains(host) {
                        base.egress.push(host.clone());
                    }
                }
                secrets.push(definition);
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
        base.credentials = secrets.clone();
        Ok(Plan {
            input: base,
            secrets,
            skipped,
        })
    }
}

/// A secret variable's credential definition, from the operator's `--secret NAME=hosts[;header[;format]]`.
fn secret_definition(variable: &Variable, given: &[String]) -> Result<CredentialDef, OpsError> {
    let refuse = || {
        OpsError::Invalid(format!(
            "the secret {name} ({}) needs to be told where it may be sent: --secret \
             {name}=<hosts>[;<header>[;<format>]], like --secret {name}='api.example.com;Authorization;Bearer {{secret}}'",
            if variable.description.is_empty() {
                "no description"
            } else {
                &variable.description
            },
            name = variable.name
        ))
    };
    let spec = given
        .iter()
        .find_map(|g| {
            g.split_once('=')
                .filter(|(name, _)| *name == variable.name)
                .map(|(_, v)| v)
        })
        .ok_or_else(refuse)?;
    let mut parts = spec.splitn(3, ';');
    let hosts: Vec<String> = parts
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    let header = parts
        .next()
        .filter(|h| !h.is_empty())
        .unwrap_or("Authorization")
        .to_owned();
    let format = parts
        .next()
        .filter(|f| !f.is_empty())
        .unwrap_or("Bearer {secret}")
        .to_owned();
    let name =
        CredentialName::parse(&variable.name.to_ascii_lowercase()).map_err(|e| OpsError::Invalid(e.to_string()))?;
    // The same checks as `credential set`, now, so that a bad definition installs nothing.
    let spec = crate::credential_spec(&crate::CredentialInput {
        server: "check",
        profile: None,
        name: name.as_str(),
        hosts: &hosts.join(","),
        header: &header,
        format: &format,
        env_name: Some(&variable.name),
    })?;
    Ok(CredentialDef {
        id: name.as_str().to_owned(),
        kind: "secret".into(),
        vendor: String::new(),
        scopes: Vec::new(),
        header: spec.header.to_string(),
        format: spec.format.to_string(),
        hosts,
        env: variable.name.clone(),
    })
}

/// `{name}` in a URL template replaced by its `--var name=value`.
fn substitute(template: &str, vars: &[String]) -> Result<String, String> {
    let mut url = template.to_owned();
    while let Some(open) = url.find('{') {
        let close = url[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or("an unclosed { in the URL")?;
        let name = url[open + 1..close].to_owned();
        let value = vars
            .iter()
            .find_map(|v| v.split_once('=').filter(|(n, _)| *n == name).map(|(_, v)| v.to_owned()))
            .ok_or_else(|| format!("its URL needs {{{name}}}: give it with --var {name}=…"))?;
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err(format!("--var {name}: use letters, digits, '-', '.' and '_'"));
        }
        url.replace_range(open..=close, &value);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: &str, env: &[&str]) -> Result<Plan, OpsError> {
        plan_with(json, env, &["WEATHER_API_KEY=api.weather.test"], &[])
    }

    fn plan_with(json: &str, env: &[&str], secrets: &[&str], vars: &[&str]) -> Result<Plan, OpsError> {
        let base = ServerInput {
            name: "weather".into(),
            env: env.iter().map(|e| e.to_string()).collect(),
            ..ServerInput::default()
        };
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ServerJson::parse(json)?.plan(base, &owned(secrets), &owned(vars))
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
        assert_eq!(plan.secrets[0].id, "weather_api_key");
        assert_eq!(plan.secrets[0].env, "WEATHER_API_KEY");
        assert_eq!(plan.secrets[0].hosts, ["api.weather.test"]);
        assert_eq!(
            (plan.secrets[0].header.as_str(), plan.secrets[0].format.as_str()),
            ("Authorization", "Bearer {secret}")
        );
        assert_eq!(plan.input.credentials, plan.secrets);
        assert_eq!(
            plan.input.egress,
            ["api.weather.test"],
            "the secret's hosts are reachable"
        );
        let error = plan_with(NPM, &["REGION=eu"], &[], &[]).unwrap_err().to_string();
        assert!(
            error.contains("the secret WEATHER_API_KEY (API key) needs to be told where it may be sent"),
            "{error}"
        );
        let custom = plan_with(
            NPM,
            &["REGION=eu"],
            &["WEATHER_API_KEY=api.weather.test;X-Api-Key;{secret}"],
            &[],
        );
        assert_eq!(custom.unwrap().secrets[0].header, "X-Api-Key");
        let error = plan_with(
            NPM,
            &["REGION=eu"],
            &["WEATHER_API_KEY=api.weather.test;Host;{secret}"],
            &[],
        );
        assert!(error.unwrap_err().to_string().contains("Host"));
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
        let none = r#"{"name": "a/b", "description": "x", "version": "1.0.0", "packages": [{"registryType": "mcpb", "identifier": "https://x/y.mcpb",
            "transport": {"type": "stdio"}}], "remotes": [{"type": "sse", "url": "https://x/sse"}]}"#;
        let error = plan(none, &[]).unwrap_err().to_string();
        assert!(error.contains("mcpb packages are not installable here"), "{error}");
        assert!(error.contains("only streamable-http remotes"), "{error}");
        assert!(plan("{}", &[]).unwrap_err().to_string().contains("not a server.json"));
    }

    #[test]
    fn a_streamable_http_remote_becomes_a_remote_server() {
        let json = r#"{"name": "a/b", "description": "x", "version": "1.0.0", "remotes": [
            {"type": "sse", "url": "https://mcp.example.test/sse"},
            {"type": "streamable-http", "url": "https://{tenant}.example.test/mcp"}]}"#;
        let plan = plan_with(json, &[], &[], &["tenant=acme"]).unwrap();
        assert_eq!(plan.input.url.as_deref(), Some("https://acme.example.test/mcp"));
        assert!(
            plan.skipped[0].contains("only streamable-http remotes"),
            "{:?}",
            plan.skipped
        );
        let error = plan_with(json, &[], &[], &[]).unwrap_err().to_string();
        assert!(
            error.contains("its URL needs {tenant}: give it with --var tenant=…"),
            "{error}"
        );
        let error = plan_with(json, &[], &[], &["tenant=a/b"]).unwrap_err().to_string();
        assert!(error.contains("--var tenant"), "{error}");
    }

    #[test]
    fn the_schema_rules_are_checked() {
        let ok = r#"{"name": "io.github.user/weather", "description": "Weather", "version": "1.0.0"}"#;
        assert!(ServerJson::parse(ok).is_ok());
        for (bad, needle) in [
            (
                r#"{"name": "weather", "description": "x", "version": "1"}"#,
                "namespace/name",
            ),
            (
                r#"{"name": "a b/c", "description": "x", "version": "1"}"#,
                "namespace/name",
            ),
            (r#"{"name": "a/b", "description": "", "version": "1"}"#, "description"),
            (r#"{"name": "a/b", "version": "1"}"#, "description"),
            (r#"{"name": "a/b", "description": "x", "version": ""}"#, "version"),
        ] {
            let error = ServerJson::parse(bad).unwrap_err().to_string();
            assert!(error.contains(needle), "{bad}: {error}");
        }
        let long = format!(
            r#"{{"name": "a/b", "description": "{}", "version": "1"}}"#,
            "x".repeat(101)
        );
        assert!(ServerJson::parse(&long).unwrap_err().to_string().contains("1 to 100"));
        let positional = r#"{"name": "a/b", "description": "x", "version": "1", "packages": [{"registryType": "npm",
            "identifier": "p", "version": "1.0.0", "transport": {"type": "stdio"},
            "packageArguments": [{"type": "positional"}]}]}"#;
        assert!(
            ServerJson::parse(positional)
                .unwrap_err()
                .to_string()
                .contains("value or a valueHint")
        );
    }
}
