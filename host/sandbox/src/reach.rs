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

/// The `gigmcp` binary as bubblewrap reaches it: its own path when sandbox uids can pass to it, else a
/// read-only bind of it at `<run dir>/gigmcp-<pid>`, removed again when this is dropped.
#[derive(Debug)]
pub struct SelfExe {
    path: PathBuf,
    bound: bool,
}

impl SelfExe {
    pub fn expose(run_dir: &Path) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the gateway's own binary: {e}"))?;
        Self::expose_path(exe, run_dir)
    }

    fn expose_path(exe: PathBuf, run_dir: &Path) -> Result<Self, String> {
        let blocked = blocked_for_others(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
        let Some(blocked) = blocked else {
            return Ok(Self {
                path: exe,
                bound: false,
            });
        };
        let unreachable = |why: String| {
            format!(
                "sandboxes cannot reach {} ({} is not traversable by other users) and it could not be bound \
                 under {}: {why}; run `chmod o+x {}`",
                exe.display(),
                blocked.display(),
                run_dir.display(),
                blocked.display()
            )
        };
        passable_dir(run_dir).map_err(|e| unreachable(e.to_string()))?;
        remove_stale(run_dir);
        let path = run_dir.join(format!("gigmcp-{}", std::process::id()));
        std::fs::write(&path, b"").map_err(|e| unreachable(e.to_string()))?;
        let bound = run(Command::new("mount").arg("--bind").arg(&exe).arg(&path)).and_then(|()| {
            run(Command::new("mount")
                .args(["-o", "remount,bind,ro,nosuid,nodev"])
                .arg(&path))
        });
        if let Err(e) = bound {
            let _ = run(Command::new("umount").arg(&path));
            let _ = std::fs::remove_file(&path);
            return Err(unreachable(e));
        }
        Ok(Self { path, bound: true })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SelfExe {
    fn drop(&mut self) {
        if self.bound {
            let _ = run(Command::new("umount").arg("-l").arg(&self.path));
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the binds of processes that are gone (a gateway killed with SIGKILL).
fn remove_stale(run_dir: &Path) {
    for entry in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("gigmcp-").and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(Command::new("umount").arg("-l").arg(entry.path()));
            let _ = std::fs::remove_file(entry.path());
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

    /// Needs root (as `make test` runs): a binary in a closed directory is bound where others reach it.
    #[test]
    fn a_binary_out_of_reach_is_bound_into_the_run_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let exe = dir.path().join("gigmcp");
        std::fs::write(&exe, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(run_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let exposed = SelfExe::expose_path(exe.clone(), &run_dir.path().join("i")).unwrap();
        assert!(exposed.path().starts_with(run_dir.path()));
        assert_eq!(blocked_for_others(exposed.path()).unwrap(), None);
        assert_eq!(std::fs::read(exposed.path()).unwrap(), b"#!/bin/sh\n");
        let path = exposed.path().to_path_buf();
        drop(exposed);
        assert!(!path.exists());
        // A reachable binary is used where it is.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        assert_eq!(SelfExe::expose_path(exe.clone(), run_dir.path()).unwrap().path(), exe);
    }
}
