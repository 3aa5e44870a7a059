//! What a server is: how to reach it (a sandboxed stdio process, a built-in, or a streamable-HTTP URL) and
//! the prefix its names are exposed under.
//!
//! Invariant 7: a server's command, mounts, environment and URL are powers over the host, so only the
//! operator (this CLI) and, later, admins define them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::names::{Prefix, ServerName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDef {
    pub name: ServerName,
    pub prefix: Prefix,
    /// One process per client session instead of one per profile, for servers that keep per-client state.
    pub per_session: bool,
    pub spec: ServerSpec,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase", deny_unknown_fields)]
pub enum ServerSpec {
    /// A process speaking MCP on stdin/stdout, run in a sandbox.
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        mounts: Vec<Mount>,
        /// Memory and process limits of its sandbox; the gateway's defaults when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<Limits>,
        /// The npm or PyPI package it was installed from, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<Box<Installed>>,
        /// The hosts it declares it needs to reach (`--egress`), given to the `egress-allowlist` plugin.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        egress: Vec<String>,
        /// Credentials it declared at install (a server.json's secrets), defined but without a secret yet.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        credentials: Vec<CredentialDef>,
    },
    /// A server built into the gateway binary, run in a sandbox like any other stdio server.
    Builtin {
        builtin: Builtin,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<Limits>,
        /// The hosts it declares it needs to reach (`--egress`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        egress: Vec<String>,
    },
    /// A toolpack of the signed catalog: the gateway's own engine (`gigmcp mcp-toolpack`) serving the entry's
    /// toolspec in a sandbox, its configuration file mounted read-only.
    Toolpack {
        toolpack: Box<Toolpack>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limits: Option<Limits>,
        /// The hosts it may reach: the manifest's egress list (plus a `--base-url` host).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        egress: Vec<String>,
    },
    /// A streamable-HTTP MCP server.
    Http { url: String },
}

/// Where the configuration of a toolpack's engine appears inside its jail.
pub const TOOLPACK_CONFIG_PATH: &str = "/etc/gigmcp/toolpack.json";

/// A catalog entry installed as a toolpack: what was installed, what was consented to, and what the engine
/// reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolpack {
    /// The catalog entry's name and version.
    pub entry: String,
    pub version: String,
    /// The image digest the index pins for it (identifies the entry; a toolpack runs no image).
    pub digest: String,
    /// The manifest's `RuntimeHash`: what runs and where it may connect.
    pub runtime_hash: String,
    /// The `RuntimeHash` the operator consented to. The server does not start while it differs from
    /// `runtime_hash` (an upgrade that changed egress, credentials or tools waits for `server consent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_hash: Option<String>,
    /// The per-install base URL (`--base-url`) for tenant hosts, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The engine's configuration (manifest, toolspec, base URL), written at install, content-addressed.
    pub config: PathBuf,
    /// For a static-binary entry: the entrypoint pulled from its image, run instead of the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// The configuration consented to, while an upgrade waits for consent (what `server consent` compares).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_config: Option<PathBuf>,
    /// The credentials the entry declares, defined at install: the operator supplies only the secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialDef>,
    /// Every tool, and whether it is exposed by default (the others are enabled per profile).
    pub tools: Vec<ToolpackTool>,
}

impl Toolpack {
    pub fn consented(&self) -> bool {
        self.consented_hash.as_deref() == Some(self.runtime_hash.as_str())
    }

    /// The tools that are on: in a profile's copy of the definition, its switches are applied already
    /// (`Store::profile_configs`), so these are the tools that profile may use.
    pub fn enabled_tools(&self) -> Vec<String> {
        self.tools
            .iter()
            .filter(|t| t.default)
            .map(|t| t.name.clone())
            .collect()
    }
}

/// A credential a server declares when it is installed (from a catalog manifest, or a server.json secret with
/// where it may go): `credential set <server> <id>` then needs only the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialDef {
    /// The credential's name (a manifest's credential id).
    pub id: String,
    /// `api_key`, `basic`, `oauth2`…
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vendor: String,
    pub header: String,
    /// With `{secret}` where the secret goes.
    pub format: String,
    /// The hosts it may be sent to, in the credentials' host grammar.
    pub hosts: Vec<String>,
    /// The variable carrying its placeholder into the jail.
    pub env: String,
    /// An oauth2 credential's scopes: asked for when its vendor's account is connected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolpackTool {
    pub name: String,
    pub default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    Echo,
}

impl ServerSpec {
    /// The hosts the server declares (`--egress`); a remote HTTP server declares none (it is not sandboxed).
    pub fn egress(&self) -> &[String] {
        match self {
            Self::Stdio { egress, .. } | Self::Builtin { egress, .. } | Self::Toolpack { egress, .. } => egress,
            Self::Http { .. } => &[],
        }
    }

    /// The credentials the server declared at install (a catalog manifest's, a server.json's secrets).
    pub fn credential_definitions(&self) -> &[CredentialDef] {
        match self {
            Self::Toolpack { toolpack, .. } => &toolpack.credentials,
            Self::Stdio { credentials, .. } => credentials,
            Self::Builtin { .. } | Self::Http { .. } => &[],
        }
    }

    /// Its oauth2 credentials of `vendor`: connected accounts of that vendor.
    pub fn account_credentials<'a>(&'a self, vendor: &'a str) -> impl Iterator<Item = &'a CredentialDef> + 'a {
        self.credential_definitions()
            .iter()
            .filter(move |c| c.kind == "oauth2" && c.vendor == vendor)
    }
}

impl ServerSpec {
    /// How it is reached and what runs, for listings: (`stdio`, `builtin`, `toolpack` or `http`; the command,
    /// built-in, catalog entry or URL).
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            Self::Stdio { command, args, .. } => {
                ("stdio", format!("{command} {}", args.join(" ")).trim_end().to_owned())
            }
            Self::Builtin { builtin, .. } => ("builtin", format!("built-in {}", builtin.subcommand())),
            Self::Toolpack { toolpack, .. } => {
                let consent = if toolpack.consented() {
                    ""
                } else {
                    " (waits for consent)"
                };
                let base = toolpack
                    .base_url
                    .as_deref()
                    .map(|u| format!(" at {u}"))
                    .unwrap_or_default();
                (
                    "toolpack",
                    format!("catalog {}@{}{base}{consent}", toolpack.entry, toolpack.version),
                )
            }
            Self::Http { url } => ("http", url.clone()),
        }
    }
}

impl Builtin {
    pub fn parse(value: &str) -> Result<Self, SpecError> {
        match value {
            "echo" => Ok(Self::Echo),
            other => Err(SpecError::UnknownBuiltin(other.to_owned())),
        }
    }

    /// The `gigmcp` subcommand that serves it.
    pub fn subcommand(self) -> &'static str {
        match self {
            Self::Echo => "mcp-echo",
        }
    }
}

/// A host path made visible inside the sandbox, read-only unless `writable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub host: PathBuf,
    pub sandbox: PathBuf,
    #[serde(default)]
    pub writable: bool,
}

#[derive(Debug, Error)]
pub enum SpecError {
    #[error("unknown built-in server {0:?}; the built-ins are: echo")]
    UnknownBuiltin(String),
    #[error("invalid --env {0:?}: write it as NAME=value, NAME made of A-Z, a-z, 0-9 and '_'")]
    Env(String),
    #[error("invalid --mount {0:?}: write HOST_PATH[:SANDBOX_PATH][:rw] with absolute paths")]
    Mount(String),
    #[error("mount source {0} does not exist")]
    MountMissing(String),
    #[error("invalid --url {0:?}: give an absolute http:// or https:// URL")]
    Url(String),
    #[error("invalid --command {0:?}: give an absolute path to an executable")]
    Command(String),
    #[error("stored server definition is corrupt: {0}")]
    Stored(String),
    #[error(
        "invalid --egress {0:?}: {1}; write host, host:port or host:* (a host may be *.domain for one label, \
         **.domain for any depth)"
    )]
    Egress(String, String),
    #[error("server {0} is a remote HTTP server: it does not run behind the egress proxy, so it has no egress list")]
    EgressOnRemote(String),
    #[error(
        "server {0} is a catalog toolpack: its egress is its manifest's, consented to at install; install another \
         version (or another --base-url) to change it"
    )]
    EgressOfToolpack(String),
}

/// Parses an `--egress` list (comma separated; empty clears it) into canonical rules with the same grammar as the
/// `egress-allowlist` plugin and credentials' hosts: `host`, `host:port` or `host:*`, the host exact, `*.domain`
/// (one label) or `**.domain` (any depth), an IPv6 address in brackets. Duplicates are dropped; order is kept.
pub fn parse_egress(text: &str) -> Result<Vec<String>, SpecError> {
    let mut rules: Vec<String> = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rule = parse_egress_rule(item).map_err(|why| SpecError::Egress(item.to_owned(), why))?;
        if !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    Ok(rules)
}

/// One rule: a host pattern in the one grammar (`gigmcp_hostpattern`), then nothing, `:port` or `:*`.
fn parse_egress_rule(text: &str) -> Result<String, String> {
    let (host, port) = gigmcp_hostpattern::split_host_port(text).ok_or("an unclosed `[`")?;
    let host = gigmcp_hostpattern::HostPattern::parse(host).map_err(|e| e.to_string())?;
    match port {
        None => Ok(host.to_string()),
        Some("*") => Ok(format!("{host}:*")),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && p == n.to_string() => Ok(format!("{host}:{n}")),
            _ => Err(format!("{p:?} is not a port")),
        },
    }
}

pub fn parse_env(pair: &str) -> Result<(String, String), SpecError> {
    let (key, value) = pair.split_once('=').ok_or_else(|| SpecError::Env(pair.to_owned()))?;
    let key_ok = !key.is_empty()
        && !key.as_bytes()[0].is_ascii_digit()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !key_ok {
        return Err(SpecError::Env(pair.to_owned()));
    }
    Ok((key.to_owned(), value.to_owned()))
}

pub fn parse_mount(text: &str) -> Result<Mount, SpecError> {
    let bad = || SpecError::Mount(text.to_owned());
    let mut parts: Vec<&str> = text.split(':').collect();
    let writable = match parts.last() {
        Some(&"rw") if parts.len() > 1 => {
            parts.pop();
            true
        }
        Some(&"ro") if parts.len() > 1 => {
            parts.pop();
            false
        }
        _ => false,
    };
    let (host, sandbox) = match parts.as_slice() {
        [host] => (*host, *host),
        [host, sandbox] => (*host, *sandbox),
        _ => return Err(bad()),
    };
    if !host.starts_with('/') || !sandbox.starts_with('/') || host.contains("/../") || sandbox.contains("..") {
        return Err(bad());
    }
    if !std::path::Path::new(host).exists() {
        return Err(SpecError::MountMissing(host.to_owned()));
    }
    Ok(Mount {
        host: host.into(),
        sandbox: sandbox.into(),
        writable,
    })
}

pub fn parse_url(text: &str) -> Result<String, SpecError> {
    let url = url::Url::parse(text).map_err(|_| SpecError::Url(text.to_owned()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(SpecError::Url(text.to_owned()));
    }
    Ok(url.to_string())
}

pub fn parse_command(text: &str) -> Result<String, SpecError> {
    let path = std::path::Path::new(text);
    if !path.is_absolute() || !path.is_file() {
        return Err(SpecError::Command(text.to_owned()));
    }
    Ok(text.to_owned())
}

/// Memory and process-count limits of a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub memory_bytes: u64,
    pub pids: u64,
    /// The size of its persistent state directory (`--state-size`); definitions older than state
    /// directories have the default.
    #[serde(default = "default_state_bytes")]
    pub state_bytes: u64,
}

/// A sandbox's state directory when neither the server nor the gateway (`GIG_SANDBOX_STATE_SIZE`) says.
pub const DEFAULT_STATE_BYTES: u64 = 256 << 20;
/// The smallest state directory: its filesystem needs room for a journal and inodes.
pub const MIN_STATE_BYTES: u64 = 4 << 20;

fn default_state_bytes() -> u64 {
    DEFAULT_STATE_BYTES
}

/// What was installed: enough to run it and to audit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    pub registry: String,
    pub package: String,
    pub version: String,
    /// The main package's integrity hash as the registry gives it.
    pub integrity: String,
    pub dir: PathBuf,
}

/// A server's persistent state directory for one profile (mounted at `/state` in its sandboxes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateDir {
    pub server: String,
    pub profile: String,
    /// Its image (or, where sizes are not enforced, its plain directory) on the host.
    pub path: PathBuf,
    /// Its size limit; `None` when this host cannot enforce one (a plain directory).
    pub limit_bytes: Option<u64>,
    /// What it takes on the host's disk.
    pub disk_bytes: u64,
}

/// One running sandbox, as the status file reports it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SandboxStatus {
    pub server: String,
    pub profile: String,
    pub per_session: bool,
    pub pid: Option<u32>,
    pub uid: u32,
    pub address: Option<String>,
    pub uptime_s: u64,
    pub restarts: u32,
    pub memory_bytes: Option<u64>,
}

/// One line of a server's log: a line one of its sandboxes wrote on stderr, or an event of the gateway's
/// about that sandbox (started, closed, stopped).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct LogLine {
    /// Grows by one with each line of this server, across its sandboxes and restarts, since the gateway
    /// started: what a follower resumes after.
    pub seq: u64,
    /// When it was written (Unix time, milliseconds).
    pub at_ms: u64,
    /// The profile the sandbox serves; empty for a probe (the server started alone to list its names when
    /// it was added or a profile was edited).
    pub profile: String,
    /// The sandbox it came from (a new one each time the server starts).
    pub sandbox: u64,
    pub stream: LogStream,
    /// The line, without its newline; a longer line is cut at 2 KiB and ends with `…`.
    pub text: String,
}

/// Where a [`LogLine`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The server's standard error.
    Stderr,
    /// The gateway, about the sandbox.
    Gateway,
}

/// Parses sizes like `512m`, `1g`, `1048576`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text.as_str(), ""),
    };
    let n: u64 = digits.parse().ok()?;
    let factor = match unit {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_must_name_a_variable() {
        assert_eq!(parse_env("A_1=x=y").unwrap(), ("A_1".into(), "x=y".into()));
        assert!(parse_env("1A=x").is_err());
        assert!(parse_env("noequals").is_err());
        assert!(parse_env("A-B=x").is_err());
    }

    #[test]
    fn mounts_are_absolute_and_read_only_by_default() {
        let m = parse_mount("/tmp").unwrap();
        assert!(!m.writable);
        assert_eq!(m.sandbox, PathBuf::from("/tmp"));
        let m = parse_mount("/tmp:/data:rw").unwrap();
        assert!(m.writable);
        assert_eq!(m.sandbox, PathBuf::from("/data"));
        assert!(parse_mount("tmp").is_err());
        assert!(parse_mount("/tmp:/a/../etc").is_err());
        assert!(matches!(parse_mount("/no/such/dir/x"), Err(SpecError::MountMissing(_))));
    }

    #[test]
    fn urls_must_be_http() {
        assert!(parse_url("http://127.0.0.1:9/mcp").is_ok());
        assert!(parse_url("file:///etc/passwd").is_err());
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn egress_lists_follow_the_allowlist_rules() {
        assert_eq!(
            parse_egress(" API.example.com., *.github.com:*, h:8443 ,[::1]:443,api.example.com").unwrap(),
            ["api.example.com", "*.github.com:*", "h:8443", "[::1]:443"]
        );
        assert!(parse_egress("").unwrap().is_empty());
        assert_eq!(parse_egress("**.example.com:*").unwrap(), ["**.example.com:*"]);
        for bad in [
            "a.*.com", "*.", "h:0", "h:99999", "h:x", "[zz]", "bad host", "*", "*.com",
        ] {
            assert!(matches!(parse_egress(bad), Err(SpecError::Egress(..))), "{bad}");
        }
    }

    #[test]
    fn old_specs_without_egress_still_decode() {
        let spec: ServerSpec = serde_json::from_str(r#"{"transport":"builtin","builtin":"echo"}"#).unwrap();
        assert!(spec.egress().is_empty());
        assert!(!serde_json::to_string(&spec).unwrap().contains("egress"));
    }

    #[test]
    fn specs_round_trip_through_json() {
        let spec = ServerSpec::Builtin {
            builtin: Builtin::Echo,
            limits: None,
            egress: vec!["api.example.com".into()],
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<ServerSpec>(&json).unwrap(), spec);
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("12x"), None);
        assert_eq!(parse_size(""), None);
    }
}
