//! Installing servers published on npm and PyPI, at `server add` time, with the host's npm and pip.
//!
//! - Into `GIG_SERVERS_DIR` (default `$GIG_DATA_DIR/servers`), one directory per `<name>@<version>`,
//!   world-readable (it is public package code) so that sandbox uids can run it read-only.
//! - Install scripts never run: npm with `--ignore-scripts`, and a package whose tree declares install
//!   scripts is refused (it would not work without them); pip with wheels only (`--only-binary :all:`), so
//!   no `setup.py` runs.
//! - The installer's environment is the operator's minus every `GIG_*` variable: no gateway secret reaches
//!   a package manager. (Registry and certificate settings are kept: they are how this host reaches the
//!   registries.)
//! - Integrity: npm's `sha512` integrity of every package and pip's `sha256` of every wheel are recorded in
//!   `gigmcp-install.json` beside the install, and the main package's in the server's definition.

use std::path::{Path, PathBuf};
use std::process::Command;

use gigmcp_types::server::Installed;
use serde_json::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("invalid {what} {spec:?}: write it as {form}")]
    Spec {
        what: &'static str,
        spec: String,
        form: &'static str,
    },
    #[error("{tool} is not installed on this host: {source}")]
    Tool { tool: &'static str, source: std::io::Error },
    #[error("{tool} failed to install {package}: {detail}")]
    Failed {
        tool: &'static str,
        package: String,
        detail: String,
    },
    #[error(
        "{package} needs install scripts ({scripts}); Gig'MCP installs with scripts off, so it cannot run this package"
    )]
    NeedsScripts { package: String, scripts: String },
    #[error("{package} has no executable {wanted}; it has: {available}")]
    NoBin {
        package: String,
        wanted: String,
        available: String,
    },
    #[error("no published version of {package} matches {wanted:?} (or there is no such package)")]
    NoMatch { package: String, wanted: String },
    #[error("{0} is already installed; remove the server that uses it first")]
    Exists(String),
    #[error("install I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// An installed server, ready to become a stdio server definition.
pub struct Install {
    pub installed: Installed,
    /// The program to run and its first arguments.
    pub command: String,
    pub args: Vec<String>,
}

/// The installers' environment: the operator's, minus every gateway variable.
fn installer_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIG_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(tool: &'static str, package: &str, cmd: &mut Command) -> Result<(), InstallError> {
    run_output(tool, package, cmd).map(drop)
}

/// Runs an installer, returning its standard output; its standard error's last lines make the error.
fn run_output(tool: &'static str, package: &str, cmd: &mut Command) -> Result<Vec<u8>, InstallError> {
    let out = cmd.output().map_err(|source| InstallError::Tool { tool, source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = detail.len().saturating_sub(8);
        return Err(InstallError::Failed {
            tool,
            package: package.to_owned(),
            detail: detail[start..].join("\n"),
        });
    }
    Ok(out.stdout)
}

/// Writes `bytes` to `path` under `servers_dir` atomically (a partial file, then a rename), where sandbox uids
/// can read it: the file with `mode`, every directory from `servers_dir` down to it 0755.
pub(crate) fn write_public(servers_dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(servers_dir);
    std::fs::create_dir_all(dir)?;
    for ancestor in dir.ancestors().take_while(|a| a.starts_with(servers_dir)) {
        std::fs::set_permissions(ancestor, std::fs::Permissions::from_mode(0o755))?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".{}.partial", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&partial, path)
}

fn prepare_dir(servers_dir: &Path, name: &str, version: &str) -> Result<PathBuf, InstallError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(servers_dir)?;
    std::fs::set_permissions(servers_dir, std::fs::Permissions::from_mode(0o755))?;
    let dir = servers_dir.join(format!("{name}@{version}"));
    if dir.exists() {
        return Err(InstallError::Exists(dir.display().to_string()));
    }
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// Runs an installer in a fresh `<server>@<version>` directory, opens the result up to sandbox uids, and
/// removes the directory again if anything failed: a refused install leaves nothing behind.
fn install_into(
    servers_dir: &Path,
    server: &str,
    version: &str,
    install: impl FnOnce(&Path) -> Result<Install, InstallError>,
) -> Result<Install, InstallError> {
    let dir = prepare_dir(servers_dir, server, version)?;
    let outcome = install(&dir).and_then(|done| {
        open_up(&dir)?;
        Ok(done)
    });
    if outcome.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    outcome
}

/// Makes everything under `dir` readable (and directories traversable) by sandbox uids.
fn open_up(dir: &Path) -> Result<(), InstallError> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode();
        let wanted = if meta.is_dir() || mode & 0o100 != 0 {
            mode | 0o755
        } else {
            mode | 0o644
        };
        if wanted != mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted & 0o7777))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}

fn write_record(dir: &Path, record: &Value) -> Result<(), InstallError> {
    std::fs::write(
        dir.join("gigmcp-install.json"),
        serde_json::to_vec_pretty(record).unwrap_or_default(),
    )?;
    Ok(())
}

/// What an npm or PyPI spec asks for: an exact version, or one to resolve at install time (a range, a
/// dist-tag, or nothing: the latest).
#[derive(Debug, PartialEq, Eq)]
enum Wanted<'a> {
    Exact(&'a str),
    Resolve(&'a str),
}

/// `1.2.3`, `1.2.3-rc.1`, `1.2.3+build`: a version npm installs as is.
fn is_exact_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let rest_ok = version[core.len()..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && rest_ok
}

/// Splits `<package>[@<version, range or tag>]`, checking the package name and that nothing in it can be
/// read as an option by npm.
fn npm_spec(spec: &str) -> Option<(&str, Wanted<'_>)> {
    let (package, wanted) = match spec.rfind('@').filter(|i| *i > 0) {
        Some(at) => (&spec[..at], &spec[at + 1..]),
        None => (spec, ""),
    };
    let name_ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with(['.', '_', '-'])
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    };
    let package_ok = match package.strip_prefix('@') {
        Some(scoped) => scoped
            .split_once('/')
            .is_some_and(|(scope, name)| name_ok(scope) && name_ok(name)),
        None => name_ok(package),
    };
    if !package_ok || (spec.len() > package.len() && wanted.is_empty()) || wanted.starts_with('-') {
        return None;
    }
    if is_exact_semver(wanted) {
        return Some((package, Wanted::Exact(wanted)));
    }
    let range_ok = wanted
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".^~<>=*|+- ".contains(c));
    range_ok.then_some((package, Wanted::Resolve(wanted)))
}

/// Orders exact semver versions (pre-releases before their release; build metadata ignored).
fn semver_key(version: &str) -> (Vec<u64>, bool, String) {
    let version = version.split('+').next().unwrap_or_default();
    let (core, pre) = version.split_once('-').unwrap_or((version, ""));
    let numbers = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    (numbers, pre.is_empty(), pre.to_owned())
}

/// The newest version of `package` that `wanted` (a range or dist-tag; empty: the latest) names, as npm
/// resolves it.
fn resolve_npm(package: &str, wanted: &str, spec: &str) -> Result<String, InstallError> {
    let no_match = || InstallError::NoMatch {
        package: package.to_owned(),
        wanted: if wanted.is_empty() {
            "latest".into()
        } else {
            wanted.to_owned()
        },
    };
    let query = if wanted.is_empty() {
        package.to_owned()
    } else {
        format!("{package}@{wanted}")
    };
    let out = installer_command("npm")
        .args(["view", "--json", &query, "version"])
        .output()
        .map_err(|source| InstallError::Tool { tool: "npm", source })?;
    let answer = serde_json::from_slice::<Value>(&out.stdout);
    if !out.status.success() {
        // npm says what went wrong as JSON on its standard output (E404: no such package or no match).
        let error = answer.as_ref().map(|a| &a["error"]).unwrap_or(&Value::Null);
        if error["code"] == "E404" {
            return Err(no_match());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(InstallError::Failed {
            tool: "npm",
            package: spec.to_owned(),
            detail: error["summary"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| stderr.lines().last().unwrap_or_default().to_owned()),
        });
    }
    let versions = match answer {
        Ok(Value::String(one)) => vec![one],
        Ok(Value::Array(many)) => many.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    versions
        .into_iter()
        .filter(|v| is_exact_semver(v))
        .max_by_key(|v| semver_key(v))
        .ok_or_else(|| InstallError::NoMatch {
            package: package.to_owned(),
            wanted: if wanted.is_empty() {
                "latest".into()
            } else {
                wanted.to_owned()
            },
        })
}

/// Installs `<package>[@<version>]` from npm and finds the executable to run with `node` (`runtime`). A
/// range, a dist-tag or no version is resolved first (`npm view`) to the exact version that is installed
/// and recorded.
pub fn install_npm(
    servers_dir: &Path,
    server: &str,
    spec: &str,
    bin: Option<&str>,
    runtime: &str,
) -> Result<Install, InstallError> {
    let (package, wanted) = npm_spec(spec).ok_or_else(|| InstallError::Spec {
        what: "--npm package",
        spec: spec.to_owned(),
        form: "<package>[@<version or range>], like @modelcontextprotocol/server-filesystem@2026.8.31",
    })?;
    let resolved;
    let version = match wanted {
        Wanted::Exact(version) => version,
        Wanted::Resolve(wanted) => {
            resolved = resolve_npm(package, wanted, spec)?;
            &resolved
        }
    };
    let spec = &format!("{package}@{version}");
    install_into(servers_dir, server, version, |dir| {
        run(
            "npm",
            spec,
            installer_command("npm")
                .args([
                    "install",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--omit=dev",
                    "--no-save",
                ])
                .args(["--prefix"])
                .arg(dir)
                .arg(spec),
        )?;
        let lock: Value = serde_json::from_slice(&std::fs::read(dir.join("node_modules/.package-lock.json"))?)
            .map_err(|e| InstallError::Failed {
                tool: "npm",
                package: spec.to_owned(),
                detail: format!("unreadable lockfile: {e}"),
            })?;
        let packages = lock["packages"].as_object().cloned().unwrap_or_default();
        let scripted: Vec<String> = packages
            .iter()
            .filter(|(_, p)| p["hasInstallScript"] == Value::Bool(true))
            .map(|(path, _)| path.trim_start_matches("node_modules/").to_owned())
            .collect();
        if !scripted.is_empty() {
            return Err(InstallError::NeedsScripts {
                package: spec.to_owned(),
                scripts: format!("install scripts in {}", scripted.join(", ")),
            });
        }
        let main_key = format!("node_modules/{package}");
        let integrity = packages
            .get(&main_key)
            .and_then(|p| p["integrity"].as_str())
            .unwrap_or_default()
            .to_owned();
        let package_dir = dir.join(&main_key);
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(package_dir.join("package.json"))?).unwrap_or_default();
        let bins: Vec<(String, String)> = match &manifest["bin"] {
            Value::String(path) => vec![(package.rsplit('/').next().unwrap_or(package).to_owned(), path.clone())],
            Value::Object(map) => map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect(),
            _ => Vec::new(),
        };
        let chosen = match bin {
            Some(wanted) => bins.iter().find(|(name, _)| name == wanted),
            None => bins.first(),
        }
        .ok_or_else(|| InstallError::NoBin {
            package: spec.to_owned(),
            wanted: bin.unwrap_or("(any)").to_owned(),
            available: if bins.is_empty() {
                "none".into()
            } else {
                bins.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
            },
        })?;
        let script = package_dir.join(&chosen.1);
        let hashes: serde_json::Map<String, Value> = packages
            .iter()
            .filter_map(|(k, p)| Some((k.clone(), p["integrity"].as_str()?.into())))
            .collect();
        write_record(
            dir,
            &serde_json::json!({"registry": "npm", "package": package, "version": version, "integrity": hashes}),
        )?;
        Ok(Install {
            installed: Installed {
                registry: "npm".into(),
                package: package.to_owned(),
                version: version.to_owned(),
                integrity,
                dir: dir.to_path_buf(),
            },
            command: runtime.to_owned(),
            args: vec![script.display().to_string()],
        })
    })
}

/// Splits `<package>[<version specifiers>]` (`==1.2`, `>=1,<2`, `~=1.4`, or none: the latest).
fn pypi_spec(spec: &str) -> Option<(&str, Wanted<'_>)> {
    let at = spec.find(['=', '<', '>', '!', '~']).unwrap_or(spec.len());
    let (package, wanted) = (&spec[..at], &spec[at..]);
    let package_ok = !package.is_empty()
        && package.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && package.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !package_ok {
        return None;
    }
    if let Some(version) = wanted.strip_prefix("==").filter(|v| !v.contains(['*', ','])) {
        let exact = !version.is_empty()
            && version.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+!".contains(c));
        return exact.then_some((package, Wanted::Exact(version)));
    }
    let clauses_ok = wanted.split(',').all(|clause| {
        let clause = clause.trim();
        let version = clause.trim_start_matches(['=', '<', '>', '!', '~']);
        let operator = &clause[..clause.len() - version.len()];
        ["<", "<=", ">", ">=", "!=", "~=", "=="].contains(&operator)
            && !version.is_empty()
            && version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-+*!".contains(c))
    });
    (wanted.is_empty() || clauses_ok).then_some((package, Wanted::Resolve(wanted)))
}

/// The newest version of `package` matching `wanted` that has a wheel for `runtime`, as pip resolves it: a
/// dry run in a throwaway virtual environment of that interpreter (the system's may have no pip).
fn resolve_pypi(servers_dir: &Path, runtime: &str, spec: &str, package: &str) -> Result<String, InstallError> {
    std::fs::create_dir_all(servers_dir)?;
    let scratch = servers_dir.join(format!(".resolve-{}-{package}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = (|| {
        run(
            "python venv",
            spec,
            installer_command(runtime).args(["-m", "venv"]).arg(&scratch),
        )?;
        let report = run_output(
            "pip",
            spec,
            installer_command(&scratch.join("bin/pip").display().to_string()).args([
                "install",
                "--dry-run",
                "--quiet",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--no-input",
                "--report",
                "-",
                spec,
            ]),
        )?;
        let report: Value = serde_json::from_slice(&report).unwrap_or_default();
        report["install"][0]["metadata"]["version"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| InstallError::NoMatch {
                package: package.to_owned(),
                wanted: spec[package.len()..].to_owned(),
            })
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Installs `<package>[==<version>]` from PyPI (wheels only) into a virtual environment of `runtime`, and
/// finds its console script. Specifiers other than one exact version (or none: the latest) are resolved
/// first, to the exact version that is installed and recorded.
pub fn install_pypi(
    servers_dir: &Path,
    server: &str,
    spec: &str,
    bin: Option<&str>,
    runtime: &str,
) -> Result<Install, InstallError> {
    let (package, wanted) = pypi_spec(spec).ok_or_else(|| InstallError::Spec {
        what: "--pypi package",
        spec: spec.to_owned(),
        form: "<package>[<version specifiers>], like mcp-server-time==2026.10.19 or mcp-server-time>=2026",
    })?;
    let resolved;
    let version = match wanted {
        Wanted::Exact(version) => version,
        Wanted::Resolve(_) => {
            resolved = resolve_pypi(servers_dir, runtime, spec, package)?;
            &resolved
        }
    };
    let spec = &format!("{package}=={version}");
    install_into(servers_dir, server, version, |dir| {
        let venv = dir.join("venv");
        run(
            "python venv",
            spec,
            installer_command(runtime).args(["-m", "venv"]).arg(&venv),
        )?;
        let report = dir.join("pip-report.json");
        run(
            "pip",
            spec,
            installer_command(&venv.join("bin/pip").display().to_string())
                .args(["install", "--quiet", "--only-binary", ":all:", "--no-input", "--report"])
                .arg(&report)
                .arg(spec),
        )?;
        let report: Value = serde_json::from_slice(&std::fs::read(&report)?).unwrap_or_default();
        let mut hashes = serde_json::Map::new();
        let mut integrity = String::new();
        for item in report["install"].as_array().into_iter().flatten() {
            let name = item["metadata"]["name"].as_str().unwrap_or_default();
            let hash = item["download_info"]["archive_info"]["hashes"]["sha256"]
                .as_str()
                .map(|h| format!("sha256-{h}"))
                .unwrap_or_default();
            if name.eq_ignore_ascii_case(package) || name.replace('_', "-").eq_ignore_ascii_case(package) {
                integrity = hash.clone();
            }
            hashes.insert(name.to_owned(), hash.into());
        }
        write_record(
            dir,
            &serde_json::json!({"registry": "pypi", "package": package, "version": version, "integrity": hashes}),
        )?;
        let script_name = bin.unwrap_or(package);
        let script = venv.join("bin").join(script_name);
        if !script.is_file() {
            let available: Vec<String> = std::fs::read_dir(venv.join("bin"))?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with("python") && !n.starts_with("pip") && !n.starts_with("activate"))
                .collect();
            return Err(InstallError::NoBin {
                package: spec.to_owned(),
                wanted: script_name.to_owned(),
                available: available.join(", "),
            });
        }
        Ok(Install {
            installed: Installed {
                registry: "pypi".into(),
                package: package.to_owned(),
                version: version.to_owned(),
                integrity,
                dir: dir.to_path_buf(),
            },
            command: script.display().to_string(),
            args: Vec::new(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_specs_are_exact_or_resolved_and_malformed_ones_are_refused() {
        use Wanted::{Exact, Resolve};
        assert_eq!(npm_spec("left-pad@1.3.0"), Some(("left-pad", Exact("1.3.0"))));
        assert_eq!(
            npm_spec("@scope/pkg@1.0.0-rc.1"),
            Some(("@scope/pkg", Exact("1.0.0-rc.1")))
        );
        assert_eq!(npm_spec("left-pad"), Some(("left-pad", Resolve(""))));
        assert_eq!(npm_spec("@scope/pkg"), Some(("@scope/pkg", Resolve(""))));
        assert_eq!(npm_spec("left-pad@latest"), Some(("left-pad", Resolve("latest"))));
        assert_eq!(npm_spec("left-pad@^1.0.0"), Some(("left-pad", Resolve("^1.0.0"))));
        assert_eq!(npm_spec("left-pad@>=1 <2"), Some(("left-pad", Resolve(">=1 <2"))));
        assert_eq!(npm_spec("left-pad@1.3"), Some(("left-pad", Resolve("1.3"))));
        assert_eq!(
            pypi_spec("mcp-server-time==2026.10.19"),
            Some(("mcp-server-time", Exact("2026.10.19")))
        );
        assert_eq!(pypi_spec("mcp-server-time"), Some(("mcp-server-time", Resolve(""))));
        assert_eq!(
            pypi_spec("mcp_server.time>=1,<2"),
            Some(("mcp_server.time", Resolve(">=1,<2")))
        );
        assert_eq!(pypi_spec("x~=1.4"), Some(("x", Resolve("~=1.4"))));
        assert_eq!(pypi_spec("x==1.*"), Some(("x", Resolve("==1.*"))));

        let dir = tempfile::tempdir().unwrap();
        for spec in [
            "left-pad@",
            "@scope",
            "@scope/",
            "-left-pad",
            "left-pad@--registry=x",
            "left-pad@1.0.0; rm -rf /",
            "Left Pad",
            "../x@1.0.0",
        ] {
            assert!(
                matches!(
                    install_npm(dir.path(), "s", spec, None, "/usr/bin/node"),
                    Err(InstallError::Spec { .. })
                ),
                "{spec}"
            );
        }
        for spec in [
            "",
            "mcp-server-time==",
            "mcp-server-time=>1",
            "mcp-server-time>=",
            "x==1; rm -rf /",
            "-r requirements.txt",
            "x @ file:///etc",
            "x[extra]",
        ] {
            assert!(
                matches!(
                    install_pypi(dir.path(), "s", spec, None, "/usr/bin/python3"),
                    Err(InstallError::Spec { .. })
                ),
                "{spec}"
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "a refused spec wrote something"
        );
    }

    #[test]
    fn the_newest_matching_version_wins() {
        let mut versions = vec!["1.10.0", "1.9.3", "2.0.0-rc.1", "1.10.0-beta", "2.0.0", "0.9.0"];
        versions.sort_by_key(|v| semver_key(v));
        assert_eq!(
            versions,
            ["0.9.0", "1.9.3", "1.10.0-beta", "1.10.0", "2.0.0-rc.1", "2.0.0"]
        );
        assert!(is_exact_semver("2026.8.31") && !is_exact_semver("latest") && !is_exact_semver("1.2"));
    }
}
