//! Runs a stdio server in a bubblewrap jail with a network namespace of its own.
//!
//! This module knows bubblewrap, namespaces, cgroups and firewall rules, and nothing of MCP. See README.md
//! beside this file for what was decided and why. In short, per sandbox:
//! - bubblewrap runs as the sandbox's own host uid (from `GIG_SANDBOX_UID_BASE` on), unprivileged on the
//!   host, with new user, pid, network, ipc, uts and cgroup namespaces; the server runs as uid 1000 inside
//!   with no capability at all (bounding set included), `no_new_privs`, and the seccomp filter of
//!   `seccomp.rs`; nested user namespaces are disabled;
//! - rlimits and a cgroup bound its processes and memory;
//! - the gateway, from outside, gives its network namespace one end of a veth pair before it runs
//!   (`--block-fd` holds it until then); the firewall lets it reach only the egress-proxy port of its own
//!   host-side address.
//!
//! Depends only on the vocabulary (`gigmcp-types`); must never depend on egress, mcp or anything above them:
//! the egress proxy is reached through the `EgressPort` trait, and a built-in server is just a subcommand of
//! the gateway's own binary (`Program::SelfSubcommand`). The one crate besides the plugin runtime with `unsafe`
//! code, confined to `sys_unsafe.rs`.

pub mod jail;
pub mod limits;
pub mod net;
pub mod reach;
mod seccomp;
pub mod state;
mod sys_unsafe;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;

use gigmcp_types::server::Limits;
pub use jail::{Launch, Program};
use limits::Cgroup;
use net::{NetError, Network, Pool};
use state::{StateError, StateStore};
use sys_unsafe::Rlimits;

/// The uid a server has inside its jail; on the host it is the sandbox's own uid.
const JAIL_UID: u32 = 1000;
/// How long bubblewrap may take to report the jail's pid.
const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("bubblewrap (bwrap) is not installed: install it with `apt-get install bubblewrap`")]
    NoBwrap,
    #[error("{0}")]
    Reach(String),
    #[error("cannot start the sandbox: {0}")]
    Spawn(std::io::Error),
    #[error("all {0} sandboxes are in use (GIG_MAX_SANDBOXES); stop a server or raise the limit")]
    Exhausted(usize),
    #[error("cannot build the seccomp filter: {0}")]
    Seccomp(String),
    #[error("cannot set up the sandbox's cgroup ({0}); the gateway needs write access to /sys/fs/cgroup")]
    Cgroup(std::io::Error),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot start the egress proxy for the sandbox: {0}")]
    Egress(std::io::Error),
    #[error(
        "the sandbox uid range {first}..{last} holds the host user {user} (uid {uid}); \
         set GIG_SANDBOX_UID_BASE to a range no account uses"
    )]
    UidInUse {
        first: u32,
        last: u32,
        user: String,
        uid: u32,
    },
}

/// Whom a sandbox runs for: what the egress proxy attributes its traffic to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub server: gigmcp_types::names::ServerName,
    pub profile: Option<gigmcp_types::names::ProfileSlug>,
}

/// The egress proxy, as the launcher sees it: something that serves a sandbox on its host-side address
/// while the sandbox lives. The egress module implements it; this module knows nothing of HTTP.
pub trait EgressPort: Send + Sync {
    /// Starts serving the jail at `jail` on `at` (its host-side address and the proxy port) for `tenant`.
    /// Serving stops when the returned value is dropped, which happens when the sandbox ends and before
    /// its slot can be reused, so a reused address is never attributed to the previous server.
    fn open(
        self: Arc<Self>,
        at: SocketAddrV4,
        jail: Ipv4Addr,
        tenant: Tenant,
    ) -> std::io::Result<Box<dyn std::any::Any + Send + Sync>>;
    /// The CA certificate file (PEM) jails trust.
    fn ca_file(&self) -> &Path;
}

/// How sandboxes are made: from the gateway's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Names this gateway's interfaces, firewall table and cgroups (1–4 of a-z, 0-9).
    pub instance: String,
    pub pool: Pool,
    pub max_sandboxes: usize,
    /// Sandbox `n` runs as host uid `uid_base + n`; `uid_base + max_sandboxes` is for name probes.
    pub uid_base: u32,
    pub proxy_port: u16,
    pub default_limits: Limits,
    /// Where servers' persistent state directories live (`state.rs`).
    pub state_root: PathBuf,
    /// Where npm and PyPI servers are installed (exposed to bubblewrap if out of reach, `reach.rs`).
    pub servers_dir: PathBuf,
}

impl Settings {
    /// Where this instance exposes to bubblewrap what it binds from paths sandbox uids cannot reach.
    pub fn run_dir(&self) -> PathBuf {
        reach::run_dir(&self.instance)
    }

    /// The servers' state directories of this instance.
    pub fn state_store(&self) -> StateStore {
        StateStore::new(self.state_root.clone(), self.run_dir().join("state"))
    }

    /// How many sandboxes can run at once: the configured cap, never more than the pool holds.
    pub fn slots(&self) -> usize {
        self.max_sandboxes.min(self.pool.capacity())
    }

    fn check_uids(&self) -> Result<(), SandboxError> {
        let first = self.uid_base;
        let last = self.uid_base + self.slots() as u32;
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if let (Some(user), Some(uid)) = (fields.first(), fields.get(2).and_then(|u| u.parse::<u32>().ok()))
                && (first..=last).contains(&uid)
            {
                return Err(SandboxError::UidInUse {
                    first,
                    last,
                    user: user.to_string(),
                    uid,
                });
            }
        }
        Ok(())
    }
}

/// Which slots (address pair and uid) are taken.
struct Slots {
    taken: Mutex<Vec<bool>>,
}

impl Slots {
    fn acquire(self: &Arc<Self>) -> Result<Lease, SandboxError> {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let slot = taken
            .iter()
            .position(|t| !*t)
            .ok_or(SandboxError::Exhausted(taken.len()))?;
        taken[slot] = true;
        Ok(Lease {
            slots: self.clone(),
            slot,
        })
    }

    fn in_use(&self) -> usize {
        self.taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|t| **t)
            .count()
    }
}

/// A slot held by a running (or tearing-down) sandbox; released when dropped.
struct Lease {
    slots: Arc<Slots>,
    slot: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.slots.taken.lock().unwrap_or_else(|p| p.into_inner())[self.slot] = false;
    }
}

/// Starts sandboxes.
pub struct Launcher {
    bwrap: PathBuf,
    /// Where bubblewrap finds the gateway's binary and the servers' installs.
    view: Arc<reach::HostView>,
    settings: Settings,
    /// `None`: jails get no network at all (used by the CLI to probe a server's names).
    network: Option<Arc<Network>>,
    slots: Arc<Slots>,
    seccomp: Arc<Vec<Vec<u8>>>,
    /// The egress proxy that serves each networked jail, once the gateway started it.
    egress: Option<Arc<dyn EgressPort>>,
    /// Servers' state directories: only the gateway's (networked) jails get one.
    state: Option<Arc<StateStore>>,
    /// Whether sandboxes get cgroups (memory and process-count limits); not where `/sys/fs/cgroup` cannot be
    /// written, which start-up says.
    cgroups: bool,
}

/// A running jail. Dropping it kills the whole process tree and then frees its cgroup and slot.
pub struct Sandbox {
    pub child: Option<tokio::process::Child>,
    /// The jail's address, where the egress proxy will recognise it.
    pub address: Option<Ipv4Addr>,
    pub uid: u32,
    pub pid: Option<u32>,
    /// The jail's first process (pid 1 of its pid namespace), once bubblewrap reported it, as a pidfd.
    jail: Option<OwnedFd>,
    cgroup: Option<Cgroup>,
    /// The egress proxy serving this jail; dropped (serving ends) with the sandbox, before the slot is free.
    egress: Option<Box<dyn std::any::Any + Send + Sync>>,
    lease: Option<Lease>,
}

impl Sandbox {
    pub fn memory_usage(&self) -> Option<u64> {
        self.cgroup.as_ref().and_then(Cgroup::memory_usage)
    }

    pub fn oom_killed(&self) -> bool {
        self.cgroup.as_ref().is_some_and(Cgroup::oom_killed)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        // The jail's pid 1 is killed first, which ends its whole pid namespace at once: relying on
        // --die-with-parent alone left a jail behind when bubblewrap was killed while the jail still waited
        // on --block-fd (a start that failed half-way). Through a pidfd, so a reused pid is never hit.
        if let Some(jail) = &self.jail {
            sys_unsafe::pidfd_kill(jail);
        }
        let _ = child.start_kill();
        let cgroup = self.cgroup.take();
        let lease = self.lease.take();
        let cleanup = async move {
            let _ = child.wait().await;
            if let Some(cgroup) = cgroup {
                for _ in 0..50 {
                    if cgroup.remove().is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            drop(lease);
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(cleanup);
        }
    }
}

fn find_bwrap() -> Result<PathBuf, SandboxError> {
    ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(SandboxError::NoBwrap)
}

impl Launcher {
    fn build(settings: Settings, network: Option<Arc<Network>>) -> Result<Self, SandboxError> {
        settings.check_uids()?;
        let seccomp = seccomp::programs()
            .map_err(|e| SandboxError::Seccomp(e.to_string()))?
            .iter()
            .map(seccomp::to_bytes)
            .collect();
        let slots = Arc::new(Slots {
            taken: Mutex::new(vec![false; settings.slots()]),
        });
        Ok(Self {
            bwrap: find_bwrap()?,
            view: Arc::new(
                reach::HostView::expose(&settings.run_dir(), std::slice::from_ref(&settings.servers_dir))
                    .map_err(SandboxError::Reach)?,
            ),
            settings,
            network,
            slots,
            seccomp: Arc::new(seccomp),
            egress: None,
            state: None,
            cgroups: true,
        })
    }

    /// The gateway's launcher: removes this instance's leftovers, checks the pool, installs the firewall.
    pub async fn start(settings: Settings) -> Result<Self, SandboxError> {
        limits::remove_stale(&settings.instance);
        let network = Network::start(&settings.instance, settings.pool, settings.slots(), settings.proxy_port).await?;
        let state = settings.state_store();
        state.check_reachable()?;
        if let Some(reason) = state.unenforced_reason() {
            tracing::warn!(
                "servers' state directories are plain directories without a size limit: {reason}; \
                 --state-size is not enforced"
            );
        }
        let cgroups = match limits::unavailable_reason(&settings.instance) {
            None => true,
            Some(reason) => {
                tracing::warn!(
                    "sandboxes' memory and process-count limits (--memory, --pids) are not enforced: {reason}; \
                     the gateway needs write access to /sys/fs/cgroup for them (in a container: a writable \
                     cgroup mount); each sandbox's rlimits still apply"
                );
                false
            }
        };
        let mut launcher = Self::build(settings, Some(Arc::new(network)))?;
        launcher.state = Some(Arc::new(state));
        launcher.cgroups = cgroups;
        Ok(launcher)
    }

    /// A launcher whose jails have no network (for probing a server's names from the CLI).
    pub fn offline(settings: Settings) -> Result<Self, SandboxError> {
        Self::build(settings, None)
    }

    /// Makes every later networked jail use `egress`: its proxy variables point at the jail's host-side
    /// address, its CA is trusted inside, and the proxy serves it there while it runs.
    pub fn set_egress(&mut self, egress: Arc<dyn EgressPort>) {
        self.egress = Some(egress);
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn running(&self) -> usize {
        self.slots.in_use()
    }

    /// Removes the firewall rules, interfaces and cgroups, once the sandboxes (which end with their handles)
    /// are gone.
    pub async fn shutdown(&self) {
        for _ in 0..100 {
            if self.running() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(network) = &self.network {
            network.shutdown().await;
            limits::remove_all(&self.settings.instance);
        }
        if let Some(state) = self.state.clone() {
            let _ = tokio::task::spawn_blocking(move || state.unmount_all()).await;
        }
    }

    /// The state directories, in a gateway's launcher.
    pub fn state(&self) -> Option<Arc<StateStore>> {
        self.state.clone()
    }

    /// Starts `launch` in a new jail, its network configured before the server runs.
    pub async fn spawn(&self, launch: &Launch<'_>) -> Result<Sandbox, SandboxError> {
        self.spawn_for(launch, None).await
    }

    /// Starts `launch` for `tenant`: with an egress proxy set, the jail's outbound HTTP(S) goes through it,
    /// attributed to `tenant`.
    pub async fn spawn_for(&self, launch: &Launch<'_>, tenant: Option<&Tenant>) -> Result<Sandbox, SandboxError> {
        let lease = match &self.network {
            Some(_) => Some(self.slots.acquire()?),
            None => None,
        };
        let slot = lease.as_ref().map(|l| l.slot);
        let uid = self.settings.uid_base + slot.unwrap_or(self.settings.slots()) as u32;
        let limits = launch.limits.unwrap_or(self.settings.default_limits);

        let (info_read, info_write) = std::io::pipe().map_err(SandboxError::Spawn)?;
        let (block_read, mut block_write) = std::io::pipe().map_err(SandboxError::Spawn)?;
        let mut filters: Vec<OwnedFd> = Vec::new();
        for program in self.seccomp.iter() {
            let (read, mut write) = std::io::pipe().map_err(SandboxError::Spawn)?;
            write.write_all(program).map_err(SandboxError::Spawn)?;
            filters.push(read.into());
        }
        let info_write: OwnedFd = info_write.into();
        let block_read: OwnedFd = block_read.into();
        // A profile's sandbox gets the state of its (server, profile); probes and profile-less ones none.
        let state_fd = match (&self.state, tenant.and_then(|t| Some((&t.server, t.profile.as_ref()?)))) {
            (Some(state), Some((server, profile))) => {
                let (state, server, profile) = (state.clone(), server.to_string(), profile.to_string());
                let size = limits.state_bytes;
                Some(
                    tokio::task::spawn_blocking(move || state.prepare(&server, &profile, size, uid))
                        .await
                        .map_err(|e| SandboxError::Spawn(std::io::Error::other(e)))??,
                )
            }
            _ => None,
        };
        let mut args = jail::bwrap_args(&self.view, launch, state_fd.as_ref().map(AsRawFd::as_raw_fd));
        let egress = match (&self.egress, slot, tenant) {
            (Some(egress), Some(slot), Some(tenant)) => {
                let (host_ip, jail_ip) = self.settings.pool.addresses(slot);
                let proxy = SocketAddrV4::new(host_ip, self.settings.proxy_port);
                // Before `--chdir`, which bwrap_args puts right before the command: after the server's env.
                let at = args.iter().position(|a| a == "--chdir").unwrap_or(args.len());
                args.splice(at..at, jail::egress_args(proxy, egress.ca_file()));
                Some((egress.clone(), proxy, jail_ip, tenant.clone()))
            }
            _ => None,
        };
        let mut control = vec![
            "--unshare-user".to_owned(),
            "--disable-userns".into(),
            "--uid".into(),
            JAIL_UID.to_string(),
            "--gid".into(),
            JAIL_UID.to_string(),
            "--info-fd".into(),
            info_write.as_raw_fd().to_string(),
            "--block-fd".into(),
            block_read.as_raw_fd().to_string(),
        ];
        for fd in &filters {
            control.extend(["--add-seccomp-fd".into(), fd.as_raw_fd().to_string()]);
        }
        args.splice(0..0, control);

        // The cgroup exists before bwrap does: the child joins it before it executes anything.
        let cgroup = match slot.filter(|_| self.cgroups) {
            Some(slot) => Some(
                Cgroup::create(&self.settings.instance, &format!("s{slot}"), limits).map_err(SandboxError::Cgroup)?,
            ),
            None => None,
        };
        let join_files = match &cgroup {
            Some(cgroup) => cgroup.join_files().map_err(SandboxError::Cgroup)?,
            None => Vec::new(),
        };
        let mut cmd = tokio::process::Command::new(&self.bwrap);
        cmd.args(&args)
            .env_clear()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let inherited = [&info_write, &block_read]
            .into_iter()
            .chain(filters.iter())
            .chain(state_fd.iter())
            .map(|fd| fd.as_raw_fd())
            .collect();
        sys_unsafe::prepare_child(
            &mut cmd,
            inherited,
            Rlimits {
                nproc: limits.pids,
                nofile: 4096,
            },
            join_files.iter().map(|f| f.as_raw_fd()).collect(),
            uid,
        );
        // `--die-with-parent` follows the thread that spawned bwrap: this runs on a runtime worker thread,
        // which lives as long as the gateway (never on a blocking-pool thread, which exits when idle).
        let child = cmd.spawn().map_err(SandboxError::Spawn)?;
        drop((info_write, block_read, filters, join_files, state_fd));
        let mut sandbox = Sandbox {
            pid: child.id(),
            child: Some(child),
            address: None,
            uid,
            jail: None,
            cgroup,
            egress: None,
            lease,
        };
        let jail_pid = read_jail_pid(info_read).await?;
        // Taken while the jail is certainly alive: it waits on --block-fd, and bubblewrap, its parent, is ours.
        sandbox.jail = Some(sys_unsafe::pidfd_open(jail_pid).map_err(SandboxError::Spawn)?);
        if let (Some(network), Some(slot)) = (&self.network, slot) {
            network.attach(slot, jail_pid).await?;
            sandbox.address = Some(self.settings.pool.addresses(slot).1);
        }
        // The proxy listens once the host-side address exists, before the server runs.
        if let Some((egress, proxy, jail_ip, tenant)) = egress {
            // The previous sandbox of this slot closed its listener when it ended, but the task holding it
            // may not have been dropped yet: a busy address is retried briefly.
            let mut tries = 0;
            let opened = loop {
                match egress.clone().open(proxy, jail_ip, tenant.clone()) {
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 50 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    opened => break opened,
                }
            };
            sandbox.egress = Some(opened.map_err(SandboxError::Egress)?);
        }
        // Released: the jail goes on to run the server.
        block_write.write_all(b"1").map_err(SandboxError::Spawn)?;
        Ok(sandbox)
    }
}

/// The pid of the jail's first process, as bubblewrap reports it on `--info-fd`.
async fn read_jail_pid(info: std::io::PipeReader) -> Result<u32, SandboxError> {
    let read = tokio::task::spawn_blocking(move || {
        let mut info = info;
        let mut text = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = info.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            text.extend_from_slice(&chunk[..n]);
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) {
                return Ok(value);
            }
        }
        Err(std::io::Error::other(format!(
            "bubblewrap exited before starting the jail: {}",
            String::from_utf8_lossy(&text)
        )))
    });
    let value = tokio::time::timeout(START_TIMEOUT, read)
        .await
        .map_err(|_| SandboxError::Spawn(std::io::Error::other("bubblewrap did not start the jail in time")))?
        .map_err(|e| SandboxError::Spawn(std::io::Error::other(e)))?
        .map_err(SandboxError::Spawn)?;
    value["child-pid"]
        .as_u64()
        .map(|pid| pid as u32)
        .ok_or_else(|| SandboxError::Spawn(std::io::Error::other("bubblewrap reported no child pid")))
}
