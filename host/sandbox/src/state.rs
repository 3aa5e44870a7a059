//! A server's persistent, writable directory: one per (server, profile), mounted read-write at `/state` in
//! its jail, its `HOME` and working directory, surviving restarts of the sandbox and of the gateway.
//!
//! Layout: the state root (`GIG_STATE_DIR`, default `$GIG_DATA_DIR/state`, private to root) holds
//! `<server>/<profile>.ext4` (`0600`), a sparse file with an ext4 filesystem of the size limit. The gateway
//! mounts it (loop device, `nosuid,nodev,noatime,discard`) on `<server>/<profile>/` under the instance's run
//! directory (`/run/gigmcp/<instance>/state`, `0711` down to each mount point), and its root is the sandbox
//! uid's, `0700`: a sandbox uid can pass through to its own state and enter no other.
//! - **The limit is a filesystem's size:** a server that fills its state gets ENOSPC from its own
//!   filesystem, never the host's disk; the file takes on the host only what is written (deleted files are
//!   given back through `discard`), and a server cannot hard-link a host file into it (another filesystem).
//! - **Ownership follows the slot:** sandboxes run as the uid of whichever slot they get, so the tree is
//!   given to that uid each time a sandbox starts with it (`lchown`, never following a link).
//! - **Handed over by descriptor:** bubblewrap binds the mounted directory from an `O_PATH` descriptor the
//!   gateway opened (`--bind-fd`). bwrap still resolves it to its path and looks that up as the sandbox's
//!   uid: that is why mount points live under the run directory (see `reach.rs`), not in the data
//!   directory, which may be closed to other users.
//! - **Where loop mounts are impossible** (no `mkfs.ext4`, no `/dev/loop-control`, no right to mount: some
//!   containers), states are plain directories `<server>/<profile>/` of the state root, which must then be
//!   reachable by sandbox uids, and the gateway says at start-up that their size is not enforced, and why.
//!
//! The gateway mounts a state the first time a sandbox needs it and keeps it mounted until it stops; the
//! CLI unmounts (lazily) before it removes one.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use thiserror::Error;

use crate::reach::run;

pub use gigmcp_types::server::StateDir;

/// Where a server's state appears inside its jail.
pub const STATE_PATH: &str = "/state";

#[derive(Debug, Error)]
pub enum StateError {
    #[error("state directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "sandboxes cannot reach their state directories under {root}: {blocked} is not traversable by other \
         users; run `chmod o+x {blocked}` or set GIG_STATE_DIR to a directory they can reach"
    )]
    Unreachable { root: String, blocked: String },
    #[error("cannot {action} the state of {server}/{profile}: {detail}")]
    Command {
        action: &'static str,
        server: String,
        profile: String,
        detail: String,
    },
}

/// A mount tool's failure on the state of (`server`, `profile`).
fn failed<'a>(action: &'static str, server: &'a str, profile: &'a str) -> impl FnOnce(String) -> StateError + 'a {
    move |detail| StateError::Command {
        action,
        server: server.into(),
        profile: profile.into(),
        detail,
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The state directories of a data directory.
#[derive(Debug)]
pub struct StateStore {
    root: PathBuf,
    /// Where images are mounted (under the instance's run directory).
    mounts: PathBuf,
    /// `Err(reason)` when sizes cannot be enforced on this host.
    enforced: Result<(), String>,
    /// One preparation at a time: two sandboxes of one (server, profile) must never mount it twice.
    busy: Mutex<()>,
}

impl StateStore {
    /// The states under `root`, mounted under `mounts`; checks whether this host can enforce their sizes
    /// (nothing is created yet).
    pub fn new(root: PathBuf, mounts: PathBuf) -> Self {
        Self {
            enforced: loop_mounts_available(),
            root,
            mounts,
            busy: Mutex::new(()),
        }
    }

    /// Creates the directories states live in and checks that a sandbox uid can pass through every
    /// directory down to where bubblewrap finds them: the mount points, or the plain directories where
    /// sizes are not enforced.
    pub fn check_reachable(&self) -> Result<(), StateError> {
        let (bound_from, blocked) = if self.enforced.is_ok() {
            private_dir_all(&self.root)?;
            crate::reach::passable_dir(&self.mounts).map_err(io(&self.mounts))?;
            (&self.mounts, crate::reach::blocked_for_others(&self.mounts))
        } else {
            crate::reach::passable_dir(&self.root).map_err(io(&self.root))?;
            (&self.root, crate::reach::blocked_for_others(&self.root))
        };
        match blocked.map_err(io(bound_from))? {
            None => Ok(()),
            Some(blocked) => Err(StateError::Unreachable {
                root: bound_from.display().to_string(),
                blocked: blocked.display().to_string(),
            }),
        }
    }

    /// Why sizes are not enforced, if they are not.
    pub fn unenforced_reason(&self) -> Option<&str> {
        self.enforced.as_ref().err().map(String::as_str)
    }

    fn image(&self, server: &str, profile: &str) -> PathBuf {
        self.root.join(server).join(format!("{profile}.ext4"))
    }

    /// Where a state is bound from: its image's mount point, or its plain directory.
    fn mount_point(&self, server: &str, profile: &str) -> PathBuf {
        match self.enforced {
            Ok(()) => self.mounts.join(server).join(profile),
            Err(_) => self.root.join(server).join(profile),
        }
    }

    /// Makes the state of (`server`, `profile`) ready for a sandbox running as host `uid`: created with a
    /// filesystem of `size` bytes if it does not exist (an existing one keeps its size), mounted, given to
    /// `uid`. Returns an `O_PATH` descriptor of its root for bubblewrap's `--bind-fd`. Blocking.
    pub fn prepare(&self, server: &str, profile: &str, size: u64, uid: u32) -> Result<OwnedFd, StateError> {
        let _busy = gigmcp_types::sync::lock(&self.busy);
        let mount_point = self.mount_point(server, profile);
        if let Some(parent) = mount_point.parent() {
            crate::reach::passable_dir(parent).map_err(io(parent))?;
        }
        private_dir(&mount_point)?;
        if self.enforced.is_ok() {
            private_dir_all(&self.root.join(server))?;
            let image = self.image(server, profile);
            if !image.exists() {
                make_filesystem(&image, size).map_err(failed("create", server, profile))?;
            }
            if !is_mounted(&mount_point) {
                run(Command::new("mount")
                    .args(["-t", "ext4", "-o", "loop,nosuid,nodev,noatime,discard"])
                    .arg(&image)
                    .arg(&mount_point))
                .map_err(failed("mount", server, profile))?;
                // mkfs's lost+found is root's and of no use to a server: its HOME starts empty.
                let _ = std::fs::remove_dir(mount_point.join("lost+found"));
            }
        }
        give_to(&mount_point, uid)?;
        std::fs::set_permissions(&mount_point, std::fs::Permissions::from_mode(0o700)).map_err(io(&mount_point))?;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&mount_point)
            .map(OwnedFd::from)
            .map_err(io(&mount_point))
    }

    /// Every state directory, or those of one server.
    pub fn list(&self, server: Option<&str>) -> Vec<StateDir> {
        let mut found = Vec::new();
        let servers: Vec<String> = match server {
            Some(s) => vec![s.to_owned()],
            None => names_in(&self.root, true),
        };
        for server in servers {
            let dir = self.root.join(&server);
            let profiles: Vec<String> = match self.enforced {
                Ok(()) => names_in(&dir, false)
                    .into_iter()
                    .filter_map(|f| f.strip_suffix(".ext4").map(str::to_owned))
                    .collect(),
                Err(_) => names_in(&dir, true),
            };
            for profile in profiles {
                let mount_point = self.mount_point(&server, &profile);
                let state = match self.enforced {
                    Ok(()) => {
                        let image = self.image(&server, &profile);
                        let Ok(meta) = std::fs::metadata(&image) else { continue };
                        StateDir {
                            server: server.clone(),
                            profile,
                            path: image,
                            limit_bytes: Some(meta.len()),
                            disk_bytes: meta.blocks() * 512,
                        }
                    }
                    Err(_) => StateDir {
                        disk_bytes: disk_usage(&mount_point),
                        server: server.clone(),
                        profile,
                        path: mount_point,
                        limit_bytes: None,
                    },
                };
                found.push(state);
            }
        }
        found
    }

    /// Whether the server wrote anything into this state that a removal would lose (also when that cannot
    /// be read). An unmounted image is mounted read-only for the look.
    pub fn holds_data(&self, state: &StateDir) -> bool {
        let mount_point = self.mount_point(&state.server, &state.profile);
        let empty = match self.enforced {
            Ok(()) => image_is_empty(&state.path, &mount_point),
            Err(_) => Some(is_empty(&mount_point)),
        };
        empty != Some(true)
    }

    /// Removes the state of `server` for `profile`, or for every profile: unmounted (lazily: a sandbox
    /// still running with it keeps its view until it ends), then deleted. Returns what was removed.
    pub fn remove(&self, server: &str, profile: Option<&str>) -> Result<Vec<StateDir>, StateError> {
        let _busy = gigmcp_types::sync::lock(&self.busy);
        let states: Vec<StateDir> = self
            .list(Some(server))
            .into_iter()
            .filter(|s| profile.is_none_or(|p| p == s.profile))
            .collect();
        for state in &states {
            let mount_point = self.mount_point(server, &state.profile);
            if is_mounted(&mount_point) {
                run(Command::new("umount").arg("-l").arg(&mount_point)).map_err(failed(
                    "unmount",
                    server,
                    &state.profile,
                ))?;
            }
            if mount_point.exists() {
                std::fs::remove_dir_all(&mount_point).map_err(io(&mount_point))?;
            }
            let image = self.image(server, &state.profile);
            if image.exists() {
                std::fs::remove_file(&image).map_err(io(&image))?;
            }
        }
        let _ = std::fs::remove_dir(self.root.join(server));
        let _ = std::fs::remove_dir(self.mounts.join(server));
        Ok(states)
    }

    /// Unmounts every state (when the gateway stops; its sandboxes have ended).
    pub fn unmount_all(&self) {
        let _busy = gigmcp_types::sync::lock(&self.busy);
        for point in mounts_under(&self.mounts) {
            if let Err(e) = run(Command::new("umount").arg("-l").arg(&point)) {
                tracing::warn!(path = %point.display(), "cannot unmount a state directory: {e}");
            }
        }
    }
}

/// Whether this host can give every state a filesystem of its own.
fn loop_mounts_available() -> Result<(), String> {
    if !Path::new("/dev/loop-control").exists() {
        return Err("this host has no loop devices (/dev/loop-control)".into());
    }
    for (tool, package) in [("mkfs.ext4", "e2fsprogs"), ("mount", "mount")] {
        let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|dir| Path::new(dir).join(tool).is_file());
        if !found {
            return Err(format!("{tool} is not installed (apt-get install {package})"));
        }
    }
    // Mounting needs CAP_SYS_ADMIN in the host's namespace.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    if effective & CAP_SYS_ADMIN == 0 {
        return Err("the gateway may not mount filesystems (it lacks CAP_SYS_ADMIN)".into());
    }
    Ok(())
}

/// `path` and its missing parents, the last one private to root.
fn private_dir_all(path: &Path) -> Result<(), StateError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    private_dir(path)
}

fn private_dir(path: &Path) -> Result<(), StateError> {
    match std::fs::create_dir(path) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io(path)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// A sparse file of `size` bytes holding a fresh ext4 (no reserved blocks, a small journal), written under
/// another name first so a failure leaves no half-made state.
fn make_filesystem(image: &Path, size: u64) -> Result<(), String> {
    let partial = image.with_extension("ext4.partial");
    let made = (|| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| e.to_string())?;
        file.set_len(size).map_err(|e| e.to_string())?;
        drop(file);
        let journal = if size >= 64 << 20 { "size=4" } else { "size=1" };
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0", "-L", "gigmcp-state", "-J", journal])
            .args(["-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1"])
            .arg(&partial))?;
        std::fs::rename(&partial, image).map_err(|e| e.to_string())
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    made
}

/// Gives every file of the tree at `root` to `uid` (and its group), never following a symbolic link.
fn give_to(root: &Path, uid: u32) -> Result<(), StateError> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        if meta.uid() != uid || meta.gid() != uid {
            std::os::unix::fs::lchown(&path, Some(uid), Some(uid)).map_err(io(&path))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(io(&path))? {
                stack.push(entry.map_err(io(&path))?.path());
            }
        }
    }
    Ok(())
}

/// The directories (or files, without their `.ext4`) directly in `dir`, sorted; names only.
fn names_in(dir: &Path, dirs: bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() == dirs))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Whether `root` holds nothing (mkfs's `lost+found` aside).
fn is_empty(root: &Path) -> bool {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .all(|entry| entry.file_name() == "lost+found")
}

/// Whether a state's filesystem holds nothing: read where it is mounted, or else from a read-only mount of
/// its image made for the purpose (`None` if that fails).
fn image_is_empty(image: &Path, mount_point: &Path) -> Option<bool> {
    if is_mounted(mount_point) {
        return Some(is_empty(mount_point));
    }
    let look = tempfile_dir(image)?;
    let empty = run(Command::new("mount")
        .args(["-t", "ext4", "-o", "loop,ro,noload,nosuid,nodev,noexec"])
        .arg(image)
        .arg(&look))
    .ok()
    .map(|()| {
        let empty = is_empty(&look);
        let _ = run(Command::new("umount").arg(&look));
        empty
    });
    let _ = std::fs::remove_dir(&look);
    empty
}

/// A fresh private directory beside `image`, to mount it on for a look.
fn tempfile_dir(image: &Path) -> Option<PathBuf> {
    let dir = image.with_extension(format!("look-{}", std::process::id()));
    std::fs::create_dir(&dir).ok()?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok()?;
    Some(dir)
}

/// Bytes a plain directory tree takes on disk.
fn disk_usage(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        total += meta.blocks() * 512;
        if meta.is_dir() {
            stack.extend(
                std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    total
}

/// The mount points of this mount namespace (from `/proc/self/mountinfo`, octal escapes decoded).
fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_mountinfo(field)))
        .collect()
}

fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_mounted(path: &Path) -> bool {
    mount_points().iter().any(|p| p == path)
}

fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|p| p.starts_with(root) && p != root)
        .collect();
    points.sort();
    points.dedup();
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/data/my\040dir/a"), "/data/my dir/a");
        assert_eq!(unescape_mountinfo(r"/a\134b"), r"/a\b");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/bad\09"), r"/bad\09");
    }

    /// Needs root and loop devices (as `make test` runs): a state is a filesystem of its size, mounted once
    /// however often it is prepared, given to the uid of each sandbox, and gone after `remove`.
    #[test]
    fn mount_points_sandboxes_cannot_reach_are_named_and_the_data_may_stay_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let store = StateStore::new(data.join("state"), run.join("i/state"));
        if let Some(reason) = store.unenforced_reason() {
            panic!("this test needs loop mounts: {reason}");
        }
        let err = store.check_reachable().unwrap_err().to_string();
        assert!(err.contains(&format!("chmod o+x {}", run.display())), "{err}");
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o711)).unwrap();
        store.check_reachable().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&run.join("i/state")), 0o711);
        assert_eq!(mode(&data.join("state")), 0o700);
    }

    /// Needs root and loop devices (as `make test` runs): a state is a filesystem of its size, mounted once
    /// however often it is prepared, given to the uid of each sandbox, and gone after `remove`.
    #[test]
    fn a_state_is_a_filesystem_of_its_size() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let store = StateStore::new(dir.path().join("data/state"), dir.path().join("run/state"));
        store.check_reachable().unwrap();
        if let Some(reason) = store.unenforced_reason() {
            panic!("this test needs loop mounts: {reason}");
        }
        let fd = store.prepare("mem", "team", 8 << 20, 200_001).unwrap();
        drop(fd);
        let point = dir.path().join("run/state/mem/team");
        assert!(is_mounted(&point));
        assert_eq!(std::fs::metadata(&point).unwrap().uid(), 200_001);
        std::fs::write(point.join("kept"), "x").unwrap();
        std::os::unix::fs::lchown(point.join("kept"), Some(200_001), Some(200_001)).unwrap();
        // Prepared again for another slot: not mounted twice, everything given to the new uid.
        store.prepare("mem", "team", 64 << 20, 200_002).unwrap();
        assert_eq!(mounts_under(&store.mounts).len(), 1);
        assert_eq!(std::fs::metadata(point.join("kept")).unwrap().uid(), 200_002);
        // Full at its size, whoever writes.
        let big = vec![0u8; 16 << 20];
        let err = std::fs::write(point.join("big"), &big).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        let listed = store.list(None);
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].path, dir.path().join("data/state/mem/team.ext4"));
        assert_eq!(listed[0].limit_bytes, Some(8 << 20), "an existing state kept its size");
        assert!(listed[0].disk_bytes <= 9 << 20, "{listed:?}");
        assert!(store.holds_data(&listed[0]));
        // Read from the image while unmounted too.
        store.unmount_all();
        assert!(!is_mounted(&point));
        assert!(store.holds_data(&store.list(None)[0]));
        let removed = store.remove("mem", None).unwrap();
        assert_eq!(removed.len(), 1);
        assert!(!dir.path().join("data/state/mem").exists());
        assert!(!dir.path().join("run/state/mem").exists());
        assert!(store.list(None).is_empty());
    }
}
