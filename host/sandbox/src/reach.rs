//! What bubblewrap must reach on the host. bwrap runs as the sandbox's own uid and looks every bind source
//! up by its path (even `--bind-fd`'s, resolved back to one), so each directory on the way must be
//! traversable by other users. The gateway's data directory (often under `/root`, which is `0700`) need
//! not be: what a jail binds from it is exposed under the instance's run directory,
//! `/run/gigmcp/<instance>` (`0711`: passable, not listable) — the states' mount points (`state.rs`) and,
//! when its own path is out of reach, the `gigmcp` binary that runs built-in servers (bound read-only).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The instance's run directory.
pub fn run_dir(instance: &str) -> PathBuf {
    Path::new("/run/gigmcp").join(instance)
}

/// The first directory on the way to `path` that other users cannot pass through, if any.
pub fn blocked_for_others(path: &Path) -> std::io::Result<Option<PathBuf>> {
    let path = std::fs::canonicalize(path)?;
    let mut current = PathBuf::from("/");
    for part in path.components().skip(1) {
        current.push(part);
        let meta = std::fs::metadata(&current)?;
        if meta.is_dir() && meta.mode() & 0o001 == 0 {
            return Ok(Some(current));
        }
    }
    Ok(None)
}

/// Creates `path` and its missing parents as root's `0711` directories (existing ones keep their mode,
/// except `path` itself).
pub fn passable_dir(path: &Path) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut at = path;
    while !at.exists() {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    for dir in missing.iter().rev() {
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?,
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711))
}

/// Runs a mount tool with a fixed `PATH`; its standard error is the error.
pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").output();
    match out {
        Err(e) => Err(e.to_string()),
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()),
    }
}

/// A host path as bubblewrap reaches it: the path itself when sandbox uids can pass to it, else a
/// read-only bind of it at `<run dir>/<label>-<pid>.<n>`, removed again when this is dropped.
#[derive(Debug)]
pub struct Exposed {
    source: PathBuf,
    path: PathBuf,
    bound: bool,
}

impl Exposed {
    /// `source` as it is, for a caller that knows it is reachable (and tests).
    pub fn direct(source: PathBuf) -> Self {
        Self {
            path: source.clone(),
            source,
            bound: false,
        }
    }

    /// Exposes a file or directory (the directory's later contents included: a bind shows them live).
    pub fn expose(source: PathBuf, run_dir: &Path, label: &str) -> Result<Self, String> {
        let blocked = blocked_for_others(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        let Some(blocked) = blocked else {
            return Ok(Self::direct(source));
        };
        let unreachable = |why: String| {
            format!(
                "sandboxes cannot reach {} ({} is not traversable by other users) and it could not be bound \
                 under {}: {why}; run `chmod o+x {}`",
                source.display(),
                blocked.display(),
                run_dir.display(),
                blocked.display()
            )
        };
        passable_dir(run_dir).map_err(|e| unreachable(e.to_string()))?;
        remove_stale(run_dir);
        // A name of its own (a gateway exposes its binary once for its jails and again for each probe's
        // launcher), made fresh: never an existing file, which could be a bind of the binary itself.
        static EXPOSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = EXPOSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = run_dir.join(format!("{label}-{}.{n}", std::process::id()));
        let made = match source.is_dir() {
            true => std::fs::create_dir(&path),
            false => std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map(drop),
        };
        made.map_err(|e| unreachable(e.to_string()))?;
        let bound = run(Command::new("mount").arg("--bind").arg(&source).arg(&path)).and_then(|()| {
            run(Command::new("mount")
                .args(["-o", "remount,bind,ro,nosuid,nodev"])
                .arg(&path))
        });
        if let Err(e) = bound {
            let _ = run(Command::new("umount").arg(&path));
            let _ = remove_file_or_dir(&path);
            return Err(unreachable(e));
        }
        Ok(Self {
            source,
            path,
            bound: true,
        })
    }

    /// Where bubblewrap finds it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where bubblewrap finds `host`, if `host` is this or under it.
    fn translate(&self, host: &Path) -> Option<PathBuf> {
        let rest = host.strip_prefix(&self.source).ok()?;
        Some(if rest.as_os_str().is_empty() {
            self.path.clone()
        } else {
            self.path.join(rest)
        })
    }
}

impl Drop for Exposed {
    fn drop(&mut self) {
        if self.bound {
            let _ = run(Command::new("umount").arg("-l").arg(&self.path));
            let _ = remove_file_or_dir(&self.path);
        }
    }
}

fn remove_file_or_dir(path: &Path) -> std::io::Result<()> {
    match path.is_dir() {
        true => std::fs::remove_dir(path),
        false => std::fs::remove_file(path),
    }
}

/// Where bubblewrap finds what a jail binds from the host: the gateway's binary (for built-in servers) and
/// the installs of npm and PyPI servers, each exposed if out of reach; other paths as they are.
#[derive(Debug)]
pub struct HostView {
    pub self_exe: Exposed,
    pub dirs: Vec<Exposed>,
}

impl HostView {
    /// Exposes the running binary and `dirs` (created if missing) under `run_dir`.
    pub fn expose(run_dir: &Path, dirs: &[PathBuf]) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the gateway's own binary: {e}"))?;
        let self_exe = Exposed::expose(exe, run_dir, "gigmcp")?;
        let dirs = dirs
            .iter()
            .map(|d| {
                // Created now if missing, so installs made while the gateway runs are seen through the bind.
                std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
                let label = d
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Exposed::expose(d.clone(), run_dir, &label)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { self_exe, dirs })
    }

    /// The bind source bubblewrap is given for `host`.
    pub fn source(&self, host: &Path) -> String {
        self.dirs
            .iter()
            .find_map(|d| d.translate(host))
            .unwrap_or_else(|| host.to_path_buf())
            .display()
            .to_string()
    }
}

/// Removes the binds of processes that are gone (a gateway killed with SIGKILL).
fn remove_stale(run_dir: &Path) {
    for entry in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .rsplit_once('-')
            .and_then(|(_, p)| p.split('.').next()?.parse::<u32>().ok());
        let Some(pid) = pid else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(Command::new("umount").arg("-l").arg(entry.path()));
            let _ = remove_file_or_dir(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_closed_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("a/b");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path().join("a"), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(blocked_for_others(&inner).unwrap(), Some(dir.path().join("a")));
        std::fs::set_permissions(dir.path().join("a"), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(blocked_for_others(&inner).unwrap(), None);
        passable_dir(&dir.path().join("a/b/c/d")).unwrap();
        let mode = std::fs::metadata(dir.path().join("a/b/c")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o711);
    }

    /// Needs root (as `make test` runs): a binary and a directory in a closed directory are bound where
    /// others reach them, and bind sources under the directory are translated.
    #[test]
    fn paths_out_of_reach_are_bound_into_the_run_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let exe = dir.path().join("gigmcp");
        std::fs::write(&exe, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let servers = dir.path().join("servers");
        std::fs::create_dir_all(servers.join("time@1.0")).unwrap();
        let run_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let run_dir = run_dir.path().join("i");
        let exposed = Exposed::expose(exe.clone(), &run_dir, "gigmcp").unwrap();
        assert!(exposed.path().starts_with(&run_dir));
        // Exposed again while the first lives (a probe's launcher in the gateway): a bind of its own.
        let again = Exposed::expose(exe.clone(), &run_dir, "gigmcp").unwrap();
        assert_ne!(again.path(), exposed.path());
        drop(again);
        assert_eq!(std::fs::read(&exe).unwrap(), b"#!/bin/sh\n");
        assert_eq!(blocked_for_others(exposed.path()).unwrap(), None);
        assert_eq!(std::fs::read(exposed.path()).unwrap(), b"#!/bin/sh\n");
        let view = HostView {
            self_exe: exposed,
            dirs: vec![Exposed::expose(servers.clone(), &run_dir, "servers").unwrap()],
        };
        let source = view.source(&servers.join("time@1.0"));
        assert!(source.starts_with(&run_dir.display().to_string()), "{source}");
        assert!(Path::new(&source).is_dir(), "{source}");
        // Installed after the bind: seen through it.
        std::fs::create_dir(servers.join("mem@2.0")).unwrap();
        assert!(Path::new(&view.source(&servers.join("mem@2.0"))).is_dir());
        assert_eq!(view.source(Path::new("/usr/bin/node")), "/usr/bin/node");
        let bound: Vec<PathBuf> = vec![view.self_exe.path().into(), view.dirs[0].path().into()];
        drop(view);
        assert!(bound.iter().all(|p| !p.exists()), "{bound:?}");
        // A reachable path is used where it is.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(Exposed::expose(exe.clone(), &run_dir, "gigmcp").unwrap().path(), exe);
    }
}
