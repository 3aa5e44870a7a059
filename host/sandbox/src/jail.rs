//! The bubblewrap command line of a jail: namespaces, an empty environment, a private `/proc`, `/dev` and
//! `/tmp`, read-only system directories, and nothing else of the host but the server's own command and the
//! mounts the operator granted.

use std::path::Path;

use gigmcp_types::server::{Limits, Mount};

use crate::reach::HostView;

/// Where the gateway's own binary appears inside a jail running a built-in server.
const BUILTIN_PATH: &str = "/run/gigmcp/gigmcp";

/// What to run in a jail.
pub struct Launch<'a> {
    pub program: Program<'a>,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub mounts: &'a [Mount],
    /// Memory and process limits; the gateway's defaults when `None`.
    pub limits: Option<Limits>,
}

pub enum Program<'a> {
    /// A program of the host, by absolute path (mounted read-only).
    Path(&'a str),
    /// The gateway's own binary with this subcommand first (a built-in server): the sandbox knows no server
    /// model, only what to run.
    SelfSubcommand(&'static str),
}

/// Where the egress proxy's CA certificate appears inside a jail.
pub const EGRESS_CA_PATH: &str = "/etc/gigmcp/egress-ca.pem";

/// What makes a jail's HTTP clients use the egress proxy and trust its CA: the proxy variables every
/// runtime reads (curl, Python, Go; Node 22+ with `NODE_USE_ENV_PROXY`), `NO_PROXY` empty so nothing
/// bypasses it (nothing else is reachable anyway), and the CA file mounted read-only and named by the
/// variables of OpenSSL, Node, requests and curl. Set after the server's own `--env`, so they win.
pub fn egress_args(proxy: std::net::SocketAddrV4, ca_file: &Path) -> Vec<String> {
    let url = format!("http://{proxy}");
    let mut args = vec!["--ro-bind".into(), ca_file.display().to_string(), EGRESS_CA_PATH.into()];
    let vars = [
        ("HTTPS_PROXY", url.as_str()),
        ("https_proxy", &url),
        ("HTTP_PROXY", &url),
        ("http_proxy", &url),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
        ("NODE_USE_ENV_PROXY", "1"),
        ("SSL_CERT_FILE", EGRESS_CA_PATH),
        ("NODE_EXTRA_CA_CERTS", EGRESS_CA_PATH),
        ("REQUESTS_CA_BUNDLE", EGRESS_CA_PATH),
        ("CURL_CA_BUNDLE", EGRESS_CA_PATH),
    ];
    for (key, value) in vars {
        args.extend(["--setenv".into(), key.into(), value.into()]);
    }
    args
}

/// The bubblewrap arguments for a jail (the caller adds the user-namespace and control options). With
/// `state` (an open directory), it is bound read-write at [`crate::state::STATE_PATH`], which is then the
/// server's `HOME` and working directory; without, both are the jail's private `/tmp`.
pub fn bwrap_args(view: &HostView, launch: &Launch<'_>, state: Option<std::os::fd::RawFd>) -> Vec<String> {
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
        Program::SelfSubcommand(_) => {
            args.extend([
                "--ro-bind".into(),
                view.self_exe.path().display().to_string(),
                BUILTIN_PATH.into(),
            ]);
            BUILTIN_PATH.to_owned()
        }
        Program::Path(path) => {
            if !path.starts_with("/usr/") {
                args.extend(["--ro-bind".into(), view.source(Path::new(path)), path.to_string()]);
            }
            path.to_string()
        }
    };
    for mount in launch.mounts {
        let flag = if mount.writable { "--bind" } else { "--ro-bind" };
        args.extend([
            flag.into(),
            view.source(&mount.host),
            mount.sandbox.display().to_string(),
        ]);
    }
    let home = match state {
        Some(fd) => {
            args.extend(["--bind-fd".into(), fd.to_string(), crate::state::STATE_PATH.into()]);
            crate::state::STATE_PATH
        }
        None => "/tmp",
    };
    let defaults = [("PATH", "/usr/local/bin:/usr/bin:/bin"), ("HOME", home)];
    for (key, value) in defaults {
        if !launch.env.iter().any(|(k, _)| k == key) {
            args.extend(["--setenv".into(), key.into(), value.into()]);
        }
    }
    for (key, value) in launch.env {
        args.extend(["--setenv".into(), key.clone(), value.clone()]);
    }
    args.extend(["--chdir".into(), home.into(), "--".into(), program]);
    if let Program::SelfSubcommand(subcommand) = launch.program {
        args.push(subcommand.into());
    }
    args.extend(launch.args.iter().cloned());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe() -> HostView {
        HostView {
            self_exe: crate::reach::Exposed::direct("/opt/gigmcp/bin/gigmcp".into()),
            dirs: Vec::new(),
        }
    }

    #[test]
    fn jail_unshares_everything_and_clears_the_environment() {
        let args = bwrap_args(
            &exe(),
            &Launch {
                program: Program::SelfSubcommand("mcp-echo"),
                args: &[],
                env: &[("A".into(), "b".into())],
                mounts: &[],
                limits: None,
            },
            None,
        );
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
        let joined = bwrap_args(
            &exe(),
            &Launch {
                program: Program::Path("/usr/bin/node"),
                args: &["/a/index.js".into()],
                env: &[],
                mounts: &mounts,
                limits: None,
            },
            None,
        )
        .join(" ");
        assert!(joined.contains("--ro-bind /srv/a /a"));
        assert!(joined.contains("--bind /srv/b /b"));
        assert!(joined.ends_with("-- /usr/bin/node /a/index.js"));
    }

    #[test]
    fn a_state_is_home_and_working_directory() {
        let launch = Launch {
            program: Program::Path("/usr/bin/node"),
            args: &[],
            env: &[],
            mounts: &[],
            limits: None,
        };
        let joined = bwrap_args(&exe(), &launch, Some(7)).join(" ");
        assert!(joined.contains("--bind-fd 7 /state"), "{joined}");
        assert!(joined.contains("--setenv HOME /state"), "{joined}");
        assert!(joined.contains("--chdir /state --"), "{joined}");
        let joined = bwrap_args(&exe(), &launch, None).join(" ");
        assert!(
            joined.contains("--setenv HOME /tmp") && joined.contains("--chdir /tmp --"),
            "{joined}"
        );
        assert!(!joined.contains("/state"), "{joined}");
    }
}
