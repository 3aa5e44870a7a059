//! What `gigmcp server add` and `POST /api/servers` are given, turned into a server definition by one piece of
//! code: every part is checked first (bad input changes nothing and installs nothing), then an npm or PyPI
//! package, if one is named, is installed (the slow part: it blocks, so the API runs it off the runtime).

use std::collections::BTreeMap;
use std::path::Path;

use crate::OpsError;
use gigmcp_types::names::{Prefix, ServerName};
use gigmcp_types::server as servers;
use gigmcp_types::server::Limits;
use gigmcp_types::server::{Builtin, ServerDef, ServerSpec};

/// A server as its front end received it, nothing checked yet.
#[derive(Debug, Clone, Default)]
pub struct ServerInput {
    pub name: String,
    pub prefix: Option<String>,
    pub per_session: bool,
    /// Exactly one of these five says what the server is.
    pub command: Option<String>,
    pub builtin: Option<String>,
    pub url: Option<String>,
    pub npm: Option<String>,
    pub pypi: Option<String>,
    /// With npm or pypi: the package's executable to run, and the interpreter.
    pub bin: Option<String>,
    pub runtime: Option<String>,
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// `HOST[:SANDBOX][:rw]`.
    pub mounts: Vec<String>,
    pub memory: Option<String>,
    pub pids: Option<u64>,
    /// The size of its persistent state directory, like `256m`.
    pub state_size: Option<String>,
    /// Hosts (patterns) it may reach through the egress proxy.
    pub egress: Vec<String>,
    /// Credentials it declares (a server.json's secrets, with where they may go), for a stdio server.
    pub credentials: Vec<gigmcp_types::server::CredentialDef>,
}

/// A definition, and what was installed for it (to be removed if the definition is not stored after all).
pub struct Defined {
    pub def: ServerDef,
    pub installed: Option<gigmcp_types::server::Installed>,
}

impl Defined {
    /// Removes what was installed for a definition that was not stored.
    pub fn discard(self) {
        if let Some(installed) = self.installed {
            let _ = std::fs::remove_dir_all(installed.dir);
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> OpsError {
    OpsError::Invalid(e.to_string())
}

/// The host's Node.js, resolved (the sandbox sees it only under /usr).
fn host_node() -> Result<String, OpsError> {
    for candidate in ["/usr/bin/node", "/usr/local/bin/node"] {
        if Path::new(candidate).is_file() {
            return std::fs::canonicalize(candidate)
                .map(|p| p.display().to_string())
                .map_err(|e| OpsError::Internal(format!("{candidate}: {e}")));
        }
    }
    Err(OpsError::Invalid(
        "Node.js is not installed on this host; install it, or give a runtime (the path to node)".into(),
    ))
}

impl ServerInput {
    /// Checks everything, then installs the npm or PyPI package the input names, if any, into
    /// `servers_dir`. `taken` says whether a server of that name exists (checked before installing, so a
    /// clash never touches the existing server's files).
    pub fn define(
        self,
        default_limits: Limits,
        servers_dir: &Path,
        taken: impl FnOnce(&ServerName) -> bool,
    ) -> Result<Defined, OpsError> {
        let name = ServerName::parse(&self.name)?;
        let prefix = Prefix::parse(self.prefix.as_deref().unwrap_or(name.as_str()))?;
        let kinds = [&self.command, &self.builtin, &self.url, &self.npm, &self.pypi];
        if kinds.iter().filter(|k| k.is_some()).count() != 1 {
            return Err(OpsError::Invalid(
                "give exactly one of command, builtin, url, npm and pypi".into(),
            ));
        }
        let packaged = self.npm.is_some() || self.pypi.is_some();
        if !packaged && (self.bin.is_some() || self.runtime.is_some()) {
            return Err(OpsError::Invalid(
                "bin and runtime apply only to npm and pypi servers".into(),
            ));
        }
        let limits = crate::sandbox_limits(
            self.memory.as_deref(),
            self.pids,
            self.state_size.as_deref(),
            default_limits,
        )?;
        let egress = servers::parse_egress(&self.egress.join(",")).map_err(invalid)?;
        let env: BTreeMap<String, String> = self
            .env
            .iter()
            .map(|e| servers::parse_env(e))
            .collect::<Result<_, _>>()
            .map_err(invalid)?;
        let mut mounts: Vec<servers::Mount> = self
            .mounts
            .iter()
            .map(|m| servers::parse_mount(m))
            .collect::<Result<_, _>>()
            .map_err(invalid)?;
        let sandboxed_only =
            limits.is_some() || !egress.is_empty() || !self.args.is_empty() || !env.is_empty() || !mounts.is_empty();
        if self.url.is_some() && sandboxed_only {
            return Err(OpsError::Invalid(
                "a streamable-HTTP server is not sandboxed: args, env, mounts, memory, pids, state size and egress do not apply"
                    .into(),
            ));
        }
        if self.builtin.is_some() && (!self.args.is_empty() || !env.is_empty() || !mounts.is_empty()) {
            return Err(OpsError::Invalid(
                "a built-in server takes no args, env or mounts".into(),
            ));
        }
        // Checked before anything is installed: the runtime, and that the name is free.
        let runtime = match (&self.npm, &self.pypi, &self.runtime) {
            (_, _, Some(r)) => Some(servers::parse_command(r).map_err(invalid)?),
            (Some(_), _, None) => Some(host_node()?),
            (None, Some(_), None) => Some("/usr/bin/python3".to_owned()),
            _ => None,
        };
        if taken(&name) {
            return Err(OpsError::Conflict(format!("a server named {name} already exists")));
        }

        let (spec, installed) = if let Some(url) = self.url {
            (
                ServerSpec::Http {
                    url: servers::parse_url(&url).map_err(invalid)?,
                },
                None,
            )
        } else if let Some(builtin) = self.builtin {
            (
                ServerSpec::Builtin {
                    builtin: Builtin::parse(&builtin).map_err(invalid)?,
                    limits,
                    egress,
                },
                None,
            )
        } else if let Some(command) = self.command {
            (
                ServerSpec::Stdio {
                    command: servers::parse_command(&command).map_err(invalid)?,
                    args: self.args,
                    env,
                    mounts,
                    limits,
                    package: None,
                    egress,
                    credentials: self.credentials,
                },
                None,
            )
        } else {
            let runtime = runtime.unwrap_or_default();
            let bin = self.bin.as_deref();
            let install = match (&self.npm, &self.pypi) {
                (Some(spec), _) => crate::registry::install_npm(servers_dir, name.as_str(), spec, bin, &runtime),
                (None, Some(spec)) => crate::registry::install_pypi(servers_dir, name.as_str(), spec, bin, &runtime),
                (None, None) => unreachable!("one kind was given"),
            }
            .map_err(invalid)?;
            let dir = install.installed.dir.display().to_string();
            let own_mount = match servers::parse_mount(&dir) {
                Ok(mount) => mount,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&install.installed.dir);
                    return Err(invalid(e));
                }
            };
            mounts.insert(0, own_mount);
            let mut args = install.args;
            args.extend(self.args);
            let installed = install.installed.clone();
            (
                ServerSpec::Stdio {
                    command: install.command,
                    args,
                    env,
                    mounts,
                    limits,
                    package: Some(Box::new(install.installed)),
                    egress,
                    credentials: self.credentials,
                },
                Some(installed),
            )
        };
        Ok(Defined {
            def: ServerDef {
                name,
                prefix,
                per_session: self.per_session,
                spec,
            },
            installed,
        })
    }
}
