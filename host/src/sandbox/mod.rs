//! Runs a stdio server in a bubblewrap jail.
//!
//! This module knows bubblewrap and nothing of MCP. The jail has new user, pid, network, ipc, uts and cgroup
//! namespaces (`--unshare-all`: no network at all), an empty environment plus what the server is given,
//! a private `/proc`, `/dev` and `/tmp`, and read-only system directories; nothing else of the host is
//! visible but the server's own command and the mounts the operator granted. A server is never started as a
//! bare child of the gateway.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use thiserror::Error;

use crate::servers::{Builtin, Mount};

/// Where the gateway's own binary appears inside a jail running a built-in server.
const BUILTIN_PATH: &str = "/run/gigmcp/gigmcp";

#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("bubblewrap (bwrap) is not installed: install it with `apt-get install bubblewrap`")]
    NoBwrap,
    #[error("cannot find the gigmcp binary to run a built-in server: {0}")]
    SelfExe(std::io::Error),
    #[error("cannot start the sandbox: {0}")]
    Spawn(std::io::Error),
}

/// What to run in a jail.
pub struct Launch<'a> {
    pub program: Program<'a>,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub mounts: &'a [Mount],
}

pub enum Program<'a> {
    Path(&'a str),
    Builtin(Builtin),
}

/// Finds bubblewrap and the gateway binary once.
#[derive(Debug, Clone)]
pub struct Launcher {
    bwrap: PathBuf,
    self_exe: PathBuf,
}

impl Launcher {
    pub fn new() -> Result<Self, SandboxError> {
        let bwrap = ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or(SandboxError::NoBwrap)?;
        let self_exe = std::env::current_exe().map_err(SandboxError::SelfExe)?;
        Ok(Self { bwrap, self_exe })
    }

    /// The jailed process with piped stdio, killed when dropped.
    pub fn spawn(&self, launch: &Launch<'_>) -> Result<tokio::process::Child, SandboxError> {
        let mut cmd = tokio::process::Command::new(&self.bwrap);
        cmd.args(self.bwrap_args(launch))
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // `--die-with-parent` follows the thread that spawned bwrap. This runs on a runtime worker thread,
        // which lives as long as the gateway; never call it from a blocking-pool thread, which exits when idle.
        cmd.spawn().map_err(SandboxError::Spawn)
    }

    fn bwrap_args(&self, launch: &Launch<'_>) -> Vec<String> {
        let mut args: Vec<String> = [
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--ro-bind",
            "/usr",
            "/usr",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Merged-/usr systems link these into /usr; others have real directories.
        for dir in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            let path = Path::new(dir);
            match std::fs::read_link(path) {
                Ok(target) => args.extend(["--symlink".into(), target.display().to_string(), dir.into()]),
                Err(_) if path.is_dir() => args.extend(["--ro-bind".into(), dir.into(), dir.into()]),
                Err(_) => {}
            }
        }
        // Read-only runtime files: the dynamic linker cache, alternatives links, CA certificates, time zone.
        for file in [
            "/etc/ld.so.cache",
            "/etc/alternatives",
            "/etc/ssl",
            "/etc/ca-certificates",
            "/etc/localtime",
        ] {
            args.extend(["--ro-bind-try".into(), file.into(), file.into()]);
        }
        let program = match &launch.program {
            Program::Builtin(_) => {
                args.extend([
                    "--ro-bind".into(),
                    self.self_exe.display().to_string(),
                    BUILTIN_PATH.into(),
                ]);
                BUILTIN_PATH.to_owned()
            }
            Program::Path(path) => {
                if !path.starts_with("/usr/") {
                    args.extend(["--ro-bind".into(), path.to_string(), path.to_string()]);
                }
                path.to_string()
            }
        };
        for mount in launch.mounts {
            let flag = if mount.writable { "--bind" } else { "--ro-bind" };
            args.extend([
                flag.into(),
                mount.host.display().to_string(),
                mount.sandbox.display().to_string(),
            ]);
        }
        let defaults = [("PATH", "/usr/local/bin:/usr/bin:/bin"), ("HOME", "/tmp")];
        for (key, value) in defaults {
            if !launch.env.iter().any(|(k, _)| k == key) {
                args.extend(["--setenv".into(), key.into(), value.into()]);
            }
        }
        for (key, value) in launch.env {
            args.extend(["--setenv".into(), key.clone(), value.clone()]);
        }
        args.extend(["--chdir".into(), "/tmp".into(), "--".into(), program]);
        if let Program::Builtin(builtin) = launch.program {
            args.push(builtin.subcommand().into());
        }
        args.extend(launch.args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launcher() -> Launcher {
        Launcher {
            bwrap: "/usr/bin/bwrap".into(),
            self_exe: "/opt/gigmcp/bin/gigmcp".into(),
        }
    }

    #[test]
    fn jail_unshares_everything_and_clears_the_environment() {
        let args = launcher().bwrap_args(&Launch {
            program: Program::Builtin(Builtin::Echo),
            args: &[],
            env: &[("A".into(), "b".into())],
            mounts: &[],
        });
        let joined = args.join(" ");
        for flag in ["--unshare-all", "--die-with-parent", "--new-session", "--clearenv"] {
            assert!(args.iter().any(|a| a == flag), "{flag} missing: {joined}");
        }
        assert!(joined.contains("--ro-bind /opt/gigmcp/bin/gigmcp /run/gigmcp/gigmcp"));
        assert!(joined.ends_with("-- /run/gigmcp/gigmcp mcp-echo"), "{joined}");
        assert!(joined.contains("--setenv A b"));
        assert!(!joined.contains("--share-net"));
    }

    #[test]
    fn mounts_are_read_only_unless_writable() {
        let mounts = [
            Mount {
                host: "/srv/a".into(),
                sandbox: "/a".into(),
                writable: false,
            },
            Mount {
                host: "/srv/b".into(),
                sandbox: "/b".into(),
                writable: true,
            },
        ];
        let joined = launcher()
            .bwrap_args(&Launch {
                program: Program::Path("/usr/bin/node"),
                args: &["/a/index.js".into()],
                env: &[],
                mounts: &mounts,
            })
            .join(" ");
        assert!(joined.contains("--ro-bind /srv/a /a"));
        assert!(joined.contains("--bind /srv/b /b"));
        assert!(joined.ends_with("-- /usr/bin/node /a/index.js"));
    }
}
