//! Memory and process-count limits per sandbox, through cgroups: v2 where the host has the unified
//! hierarchy, else the v1 `memory` and `pids` controllers. Exceeding the memory limit gets the sandbox's
//! processes killed by the kernel's OOM killer inside that cgroup; the pids limit makes `fork` fail. Neither
//! touches the gateway or other sandboxes. Rlimits (set by the spawner) are a further bound.

use gigmcp_types::server::Limits;
use std::io;
use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// One sandbox's cgroup(s), removed when dropped (once its processes are gone).
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
}

fn is_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

impl Cgroup {
    /// Creates `<root>/gigmcp-<instance>/<name>` with the limits applied.
    pub fn create(instance: &str, name: &str, limits: Limits) -> io::Result<Self> {
        let group = format!("gigmcp-{instance}");
        if is_v2() {
            let parent = Path::new(CGROUP_ROOT).join(&group);
            std::fs::create_dir_all(&parent)?;
            // Controllers must be enabled in every ancestor's subtree_control to be usable below it.
            for dir in [Path::new(CGROUP_ROOT), parent.as_path()] {
                let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids");
            }
            let dir = parent.join(name);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("memory.max"), limits.memory_bytes.to_string())?;
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            std::fs::write(dir.join("pids.max"), limits.pids.to_string())?;
            return Ok(Self { dirs: vec![dir] });
        }
        let memory = Path::new(CGROUP_ROOT).join("memory").join(&group).join(name);
        let pids = Path::new(CGROUP_ROOT).join("pids").join(&group).join(name);
        std::fs::create_dir_all(&memory)?;
        std::fs::create_dir_all(&pids)?;
        let cgroup = Self {
            dirs: vec![memory.clone(), pids.clone()],
        };
        std::fs::write(memory.join("memory.limit_in_bytes"), limits.memory_bytes.to_string())?;
        // Without this the limit could be dodged into swap where swap accounting is on.
        let _ = std::fs::write(
            memory.join("memory.memsw.limit_in_bytes"),
            limits.memory_bytes.to_string(),
        );
        std::fs::write(pids.join("pids.max"), limits.pids.to_string())?;
        Ok(cgroup)
    }

    /// Files that move the process writing `0` into them into this cgroup: `tasks` of each v1 controller (a
    /// single-threaded process moves itself cheaply there, without the whole-process lock `cgroup.procs`
    /// takes), or v2's `cgroup.procs`. Opened here, written by the child between fork and exec.
    pub fn join_files(&self) -> io::Result<Vec<std::fs::File>> {
        let file = if is_v2() { "cgroup.procs" } else { "tasks" };
        self.dirs
            .iter()
            .map(|d| std::fs::OpenOptions::new().write(true).open(d.join(file)))
            .collect()
    }

    /// Memory in use now, in bytes.
    pub fn memory_usage(&self) -> Option<u64> {
        ["memory.current", "memory.usage_in_bytes"].iter().find_map(|file| {
            self.dirs
                .iter()
                .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
                .and_then(|s| s.trim().parse().ok())
        })
    }

    /// Whether the kernel killed something in this cgroup for exceeding the memory limit.
    pub fn oom_killed(&self) -> bool {
        self.dirs.iter().any(|d| {
            let events = std::fs::read_to_string(d.join("memory.events"))
                .or_else(|_| std::fs::read_to_string(d.join("memory.oom_control")))
                .unwrap_or_default();
            events
                .lines()
                .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
        })
    }

    /// Removes the cgroup directories; fails while processes remain.
    pub fn remove(&self) -> io::Result<()> {
        for dir in &self.dirs {
            match std::fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Removes what a crashed gateway of this instance left behind.
/// Why this gateway cannot make cgroups (a container whose `/sys/fs/cgroup` is read-only, say), if it cannot:
/// tried once at start-up with the instance's parent group(s), which are kept.
pub fn unavailable_reason(instance: &str) -> Option<String> {
    let group = format!("gigmcp-{instance}");
    let parents = if is_v2() {
        vec![Path::new(CGROUP_ROOT).join(&group)]
    } else {
        vec![
            Path::new(CGROUP_ROOT).join("memory").join(&group),
            Path::new(CGROUP_ROOT).join("pids").join(&group),
        ]
    };
    for parent in parents {
        if let Err(e) = std::fs::create_dir_all(&parent) {
            return Some(format!("cannot create {} ({e})", parent.display()));
        }
    }
    None
}

pub fn remove_stale(instance: &str) {
    let group = format!("gigmcp-{instance}");
    let parents = [
        Path::new(CGROUP_ROOT).join(&group),
        Path::new(CGROUP_ROOT).join("memory").join(&group),
        Path::new(CGROUP_ROOT).join("pids").join(&group),
    ];
    for parent in parents {
        if let Ok(entries) = std::fs::read_dir(&parent) {
            for entry in entries.flatten() {
                if entry.path().is_dir() {
                    let _ = std::fs::remove_dir(entry.path());
                }
            }
        }
    }
}

/// Removes this instance's cgroups, its parent groups included (at shutdown).
pub fn remove_all(instance: &str) {
    remove_stale(instance);
    let group = format!("gigmcp-{instance}");
    for parent in [
        Path::new(CGROUP_ROOT).join(&group),
        Path::new(CGROUP_ROOT).join("memory").join(&group),
        Path::new(CGROUP_ROOT).join("pids").join(&group),
    ] {
        let _ = std::fs::remove_dir(parent);
    }
}
