//! The sandbox part of `make bench`: how long a client waits for its first tool reply when its session gets
//! a fresh sandbox, against bubblewrap alone measured in the same run, and what an idle sandbox costs in
//! memory.
//!
//! A dedicated `gigmcp serve` holds one profile whose echo server is `--per-session`, so every new MCP
//! session starts its own sandbox on `initialize`. One cold start is `initialize`, `notifications/initialized`
//! and a checked `tools/call`, timed from just before `initialize` is written to the parsed tool reply; the
//! session then ends with DELETE and the next start waits until the sandbox's processes are gone. Each round
//! also times three baselines, in a rotating order so that the machine's changing conditions fall on all four
//! alike: bare `bwrap … /bin/true` as root, the same with `--unshare-user` as an unprivileged uid, and the
//! echo server itself in a jail of the same shape (no network, cgroup or seccomp) answering the same
//! handshake and call over stdio.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::client::{HttpSession, HttpTarget};
use crate::driver::{Caller, check};
use crate::gateway;
use crate::procs::{self, Proc};
use crate::stdio::EchoProcess;

/// The baseline's bubblewrap options, before the program (`/bin/true`).
pub const BASELINE_ARGS: [&str; 18] = [
    "--unshare-all",
    "--die-with-parent",
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
];

/// Where the jailed-echo baseline sees the gigmcp binary (where the gateway puts it for built-in servers).
const JAILED_EXE: &str = "/run/gigmcp/gigmcp";

/// How long the sandboxes of one start may take to go once their session is deleted.
pub const TEARDOWN_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct Plan {
    /// Measured rounds: each times one cold start and each baseline once.
    pub starts: usize,
    /// Rounds before those, not recorded.
    pub warmup: usize,
    /// Sandboxes held idle at once for the memory measurement (0: not measured).
    pub idle: usize,
    /// Times the memory measurement is repeated (the median is reported).
    pub memory_cycles: usize,
    /// How long the idle sandboxes are left alone before their memory is read.
    pub idle_wait: Duration,
    /// The gateway's sandbox settings (`GIG_INSTANCE`, `GIG_SANDBOX_CIDR`, …), the same as below.
    pub env: Vec<(&'static str, String)>,
    pub instance: String,
    pub cidr: String,
    pub uid_base: u32,
    pub max_sandboxes: usize,
    /// Rest before each measurement, once the previous one's processes and network namespace are gone.
    pub pause: Duration,
    /// The most one start (or one baseline) may take.
    pub timeout: Duration,
    /// The most the whole part may take.
    pub budget: Duration,
}

impl Plan {
    /// Sandboxes the gateway can run at once: the cap, never more than the address pool's /30s.
    pub fn slots(&self) -> Result<usize, String> {
        let prefix: u32 = self
            .cidr
            .split_once('/')
            .and_then(|(_, p)| p.parse().ok())
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("--sandbox-cidr {:?} is not an IPv4 range of /8 to /30", self.cidr))?;
        Ok(self.max_sandboxes.min(1 << (30 - prefix)))
    }

    /// The host uids the gateway's sandboxes run as (the last one is its name-probing uid).
    pub fn sandbox_uids(&self) -> RangeInclusive<u32> {
        let slots = self.slots().unwrap_or(self.max_sandboxes) as u32;
        self.uid_base..=self.uid_base + slots
    }

    /// The unprivileged uid of the baselines: just past the gateway's range.
    pub fn baseline_uid(&self) -> u32 {
        self.sandbox_uids().end() + 1
    }
}

/// One cold start through the gateway, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Start {
    /// From just before `initialize` is written to the parsed `tools/call` reply.
    pub total: u64,
    /// `initialize` (the gateway starts the sandbox and does the server's own handshake before answering).
    pub initialize: u64,
    pub initialized: u64,
    pub call: u64,
}

/// Memory per idle sandbox, in bytes, from one cycle (or the median of several).
#[derive(Clone, Copy, Debug, Default)]
pub struct IdleMemory {
    /// Processes running as sandbox uids, per sandbox.
    pub processes: f64,
    pub rss: f64,
    pub pss: f64,
    pub uss: f64,
    /// `gigmcp server status` (the sandbox's cgroup), per sandbox it listed.
    pub cgroup: Option<f64>,
    /// Change of the gateway's own PSS (negative when the sandboxes take over a share of the pages of the
    /// gigmcp binary, which the echo servers run too).
    pub gateway_pss: f64,
    /// Growth of the gateway's anonymous memory (its state per session and sandbox).
    pub gateway_anon: f64,
    /// Growth of SUnreclaim + KernelStack + PageTables + Percpu.
    pub kernel: f64,
    /// Drop of MemAvailable.
    pub available: f64,
}

pub struct MemoryResult {
    pub sandboxes: usize,
    pub cycles: Vec<IdleMemory>,
    /// Sandboxes `gigmcp server status` listed, per cycle.
    pub status_listed: Vec<usize>,
}

impl IdleMemory {
    /// What one more idle sandbox costs the machine, as far as these figures see: its processes' PSS, the
    /// change of the gateway's PSS (the pages the sandboxes now share with it move out of its PSS into
    /// theirs, so the sum counts them once), and the kernel's growth.
    pub fn total(&self) -> f64 {
        self.pss + self.gateway_pss + self.kernel
    }
}

impl MemoryResult {
    /// The median over cycles of one figure, and the range it came from.
    pub fn figure(&self, f: impl Fn(&IdleMemory) -> Option<f64>) -> Option<(f64, f64, f64)> {
        let mut v: Vec<f64> = self.cycles.iter().filter_map(f).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some((v[(v.len() - 1) / 2], v[0], v[v.len() - 1]))
    }
}

pub struct ColdResult {
    pub plan: Plan,
    pub gateway: Vec<Start>,
    /// Spawn to exit of the baselines, nanoseconds.
    pub bare: Vec<u64>,
    pub userns: Vec<u64>,
    /// Spawn of the jailed echo server to its tool reply, nanoseconds.
    pub jailed: Vec<u64>,
    /// DELETE sent to the last process of the session's sandbox gone, nanoseconds.
    pub teardown: Vec<u64>,
    /// DELETE sent to the sandbox's veth pair gone (the kernel frees the network namespace asynchronously,
    /// after its processes), nanoseconds.
    pub net_teardown: Vec<u64>,
    /// Processes of each measured sandbox.
    pub processes: Vec<usize>,
    /// Replies (and sandboxes) checked, baselines included.
    pub checked: u64,
    pub failures: u64,
    pub errors: Vec<String>,
    pub setup_error: Option<String>,
    pub memory: Option<MemoryResult>,
    pub notes: Vec<String>,
    pub took: Duration,
    pub bwrap: PathBuf,
    pub bwrap_version: String,
}

impl ColdResult {
    fn new(plan: Plan) -> Self {
        Self {
            plan,
            gateway: Vec::new(),
            bare: Vec::new(),
            userns: Vec::new(),
            jailed: Vec::new(),
            teardown: Vec::new(),
            net_teardown: Vec::new(),
            processes: Vec::new(),
            checked: 0,
            failures: 0,
            errors: Vec::new(),
            setup_error: None,
            memory: None,
            notes: Vec::new(),
            took: Duration::ZERO,
            bwrap: PathBuf::from("bwrap"),
            bwrap_version: "unknown".into(),
        }
    }

    pub fn passed(&self) -> bool {
        self.setup_error.is_none() && self.failures == 0 && (self.plan.starts == 0 || !self.gateway.is_empty())
    }

    fn error(&mut self, e: String) {
        self.failures += 1;
        if self.errors.len() < 8 {
            self.errors.push(e);
        }
    }

    /// Records the outcome of one checked step.
    fn outcome<T>(&mut self, what: &str, outcome: Result<T, String>) -> Option<T> {
        self.checked += 1;
        match outcome {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(format!("{what}: {e}"));
                None
            }
        }
    }
}

/// Nearest-rank quantile of samples in nanoseconds.
pub fn quantile(samples: &[u64], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(Duration::from_nanos(sorted[rank - 1]))
}

fn find_bwrap() -> Option<PathBuf> {
    ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn passwd_holds(uids: &RangeInclusive<u32>) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        let uid: u32 = fields.get(2)?.parse().ok()?;
        uids.contains(&uid).then(|| format!("{} (uid {uid})", fields[0]))
    })
}

/// Waits until none of `procs` runs (zombies count as gone); gives how long that took.
async fn wait_gone(procs: &[Proc], limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let left = procs.iter().filter(|p| p.alive()).count();
        if left == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            return Err(format!("{left} sandbox process(es) still running after {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until no process runs as one of `uids`.
async fn wait_no_process(uids: &RangeInclusive<u32>, limit: Duration) -> Result<(), String> {
    let procs = procs::with_uids(uids);
    wait_gone(&procs, limit).await.map(|_| ())
}

pub async fn run(gigmcp: &Path, workdir: &Path, plan: Plan) -> ColdResult {
    let clock = Instant::now();
    let deadline = clock + plan.budget;
    let mut result = ColdResult::new(plan.clone());
    if let Err(e) = preflight(&plan, &mut result).await {
        result.setup_error = Some(e);
        result.took = clock.elapsed();
        return result;
    }
    eprintln!("[bench] cold: starting a gateway with a per-session echo server");
    let spec = gateway::Spec {
        name: "cold",
        profile: "cold",
        per_session: true,
        env: plan.env.clone(),
        upstream: None,
    };
    let mut gw = match gateway::start(gigmcp, workdir, spec).await {
        Ok(gw) => gw,
        Err(e) => {
            result.setup_error = Some(format!("{e:#}"));
            result.took = clock.elapsed();
            return result;
        }
    };
    starts(&mut result, &gw.target, gigmcp, deadline).await;
    if plan.idle > 0 && plan.memory_cycles > 0 && result.failures == 0 {
        memory(&mut result, &gw, gigmcp, deadline).await;
    }
    procs::terminate(&mut gw.child, Duration::from_secs(10)).await;
    if let Err(e) = wait_no_process(&plan.sandbox_uids(), TEARDOWN_LIMIT).await {
        result.error(format!("after the gateway stopped: {e}"));
    }
    if !result.passed() {
        result
            .notes
            .push(format!("{} ends with:\n{}", gw.log.display(), gateway::tail(&gw.log)));
    }
    result.took = clock.elapsed();
    result
}

/// Checks what the part needs: bubblewrap, free uids, no sandbox of an earlier run still around.
async fn preflight(plan: &Plan, result: &mut ColdResult) -> Result<(), String> {
    let slots = plan.slots()?;
    if plan.idle > slots {
        return Err(format!(
            "--idle-sandboxes {} is more than the {slots} sandboxes the gateway may run",
            plan.idle
        ));
    }
    result.bwrap = find_bwrap().ok_or("bubblewrap (bwrap) is not installed")?;
    result.bwrap_version = tokio::process::Command::new(&result.bwrap)
        .arg("--version")
        .output()
        .await
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let uids = plan.sandbox_uids();
    let all = *uids.start()..=plan.baseline_uid();
    if let Some(user) = passwd_holds(&all) {
        return Err(format!(
            "the uids {}..={} hold the account {user}: choose another --sandbox-uid-base",
            all.start(),
            all.end()
        ));
    }
    // The `tools/call` part's gateway, stopped just before, may still be ending its sandbox.
    if let Err(e) = wait_no_process(&all, TEARDOWN_LIMIT).await {
        return Err(format!(
            "{e} as uids {}..={} (another run?); choose another --sandbox-uid-base",
            all.start(),
            all.end()
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Bare,
    Userns,
    Jailed,
    Gateway,
}

const KINDS: [Kind; 4] = [Kind::Bare, Kind::Userns, Kind::Jailed, Kind::Gateway];

/// The order of the kinds in a round: a balanced Latin square (Williams design) over every four rounds, so
/// that each kind runs first, second, third and fourth equally often, and follows each other kind equally
/// often (whatever one leaves behind falls on the others alike).
fn order(round: usize) -> [Kind; 4] {
    const FIRST: [usize; 4] = [0, 1, 3, 2];
    FIRST.map(|k| KINDS[(k + round) % KINDS.len()])
}

/// Whether one of the gateway's sandbox interfaces still exists on the host.
fn sandbox_links(instance: &str) -> bool {
    let prefix = format!("g{instance}");
    std::fs::read_dir("/sys/class/net").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
    })
}

/// Waits until the gateway's sandbox interfaces are gone (their namespace freed); gives how long it took.
async fn wait_links_gone(instance: &str, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while sandbox_links(instance) {
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Some(started.elapsed())
}

/// Before a measurement: no process of any sandbox or baseline, no sandbox interface, then a rest, so
/// that no measurement pays for the kernel's clean-up of the one before.
async fn settle(plan: &Plan) -> Result<(), String> {
    wait_no_process(&(*plan.sandbox_uids().start()..=plan.baseline_uid()), TEARDOWN_LIMIT).await?;
    if wait_links_gone(&plan.instance, TEARDOWN_LIMIT).await.is_none() {
        return Err(format!("sandbox interfaces still present after {TEARDOWN_LIMIT:?}"));
    }
    tokio::time::sleep(plan.pause).await;
    Ok(())
}

async fn starts(result: &mut ColdResult, target: &Arc<HttpTarget>, gigmcp: &Path, deadline: Instant) {
    let plan = result.plan.clone();
    let uids = plan.sandbox_uids();
    let bwrap = result.bwrap.clone();
    let rounds = plan.warmup + plan.starts;
    for round in 0..rounds {
        if Instant::now() > deadline {
            result.error(format!(
                "the sandbox part took over {:?}; stopped at round {round}",
                plan.budget
            ));
            return;
        }
        if result.failures >= 5 {
            return;
        }
        let record = round >= plan.warmup;
        if round % 10 == 0 {
            eprintln!("[bench] cold: round {}/{rounds}", round + 1);
        }
        for kind in order(round) {
            if let Err(e) = settle(&plan).await {
                result.error(format!("round {round}: before {kind:?}: {e}"));
                return;
            }
            match kind {
                Kind::Bare | Kind::Userns => {
                    let uid = matches!(kind, Kind::Userns).then(|| plan.baseline_uid());
                    let outcome = bwrap_true(&bwrap, uid, plan.timeout).await;
                    if let Some(ns) = result.outcome(&format!("round {round}: bwrap {kind:?}"), outcome)
                        && record
                    {
                        if uid.is_some() {
                            result.userns.push(ns);
                        } else {
                            result.bare.push(ns);
                        }
                    }
                }
                Kind::Jailed => {
                    let outcome = jailed_echo(&bwrap, gigmcp, plan.baseline_uid(), round, plan.timeout).await;
                    if let Some(ns) = result.outcome(&format!("round {round}: jailed echo"), outcome)
                        && record
                    {
                        result.jailed.push(ns);
                    }
                }
                Kind::Gateway => {
                    let outcome = cold_start(target, &uids, &plan.instance, round, plan.timeout).await;
                    if let Some((start, teardown, processes)) =
                        result.outcome(&format!("round {round}: cold start"), outcome)
                        && record
                    {
                        result.gateway.push(start);
                        result.teardown.push(teardown.processes);
                        if let Some(net) = teardown.network {
                            result.net_teardown.push(net);
                        }
                        result.processes.push(processes);
                    }
                }
            }
        }
    }
}

/// `bwrap <baseline> /bin/true` from spawn to exit; with a uid, also `--unshare-user` and run as that uid.
async fn bwrap_true(bwrap: &Path, uid: Option<u32>, timeout: Duration) -> Result<u64, String> {
    use std::os::unix::process::CommandExt;
    let pid = Arc::new(AtomicU32::new(0));
    let spawned = pid.clone();
    let bwrap = bwrap.to_owned();
    let run = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(&bwrap);
        command.args(BASELINE_ARGS);
        if let Some(uid) = uid {
            command.arg("--unshare-user").uid(uid).gid(uid);
        }
        command
            .arg("/bin/true")
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| format!("cannot start bwrap: {e}"))?;
        spawned.store(child.id(), Ordering::Relaxed);
        let status = child.wait().map_err(|e| e.to_string())?;
        let took = started.elapsed();
        if !status.success() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            return Err(format!("bwrap exited with {status}: {}", stderr.trim()));
        }
        Ok(took.as_nanos() as u64)
    });
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Err(format!("baseline task failed: {e}")),
        Err(_) => {
            let pid = pid.load(Ordering::Relaxed);
            if pid != 0 {
                let _ = tokio::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .await;
            }
            Err(format!("bwrap /bin/true did not exit within {timeout:?}"))
        }
    }
}

/// The echo server in a jail shaped like the gateway's (same namespaces, uid drop, mounts of /usr, /proc,
/// /dev, /tmp and the binary; no network set-up, cgroup, seccomp or rlimits), started by this process and
/// driven over stdio: spawn to the checked reply of the same handshake and call.
async fn jailed_echo(bwrap: &Path, gigmcp: &Path, uid: u32, round: usize, timeout: Duration) -> Result<u64, String> {
    let mut command = tokio::process::Command::new(bwrap);
    command
        .args([
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--die-with-parent",
        ])
        .args(["--new-session", "--clearenv", "--uid", "1000", "--gid", "1000"])
        .args([
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--ro-bind",
            "/usr",
            "/usr",
        ])
        .args(["--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib"])
        .args(["--symlink", "usr/lib64", "/lib64", "--ro-bind"])
        .arg(gigmcp)
        .args([JAILED_EXE, "--setenv", "PATH", "/usr/bin", "--setenv", "HOME", "/tmp"])
        .args(["--chdir", "/tmp", "--", JAILED_EXE, "mcp-echo"])
        .env_clear()
        .uid(uid)
        .gid(uid);
    let started = Instant::now();
    let work = async {
        let process = EchoProcess::spawn(command, "the jailed echo server").await?;
        let mut caller = process.caller();
        let message = format!("jail-n{round}");
        let reply = caller.call(1, &message).await;
        let took = started.elapsed();
        process.stop().await;
        check(&reply?, 1, &message)?;
        Ok::<_, String>(took.as_nanos() as u64)
    };
    let outcome = tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| Err(format!("no reply within {timeout:?}")));
    // Killing bwrap ends the jail; the next measurement starts once it is gone.
    wait_no_process(&(uid..=uid), TEARDOWN_LIMIT).await?;
    outcome
}

/// One cold start through the gateway: a new session's `initialize`, `notifications/initialized` and a
/// checked `tools/call`; then checks that a fresh sandbox answered, ends the session and waits for the
/// sandbox to go. Gives the timings, the teardown times and the sandbox's process count.
async fn cold_start(
    target: &Arc<HttpTarget>,
    uids: &RangeInclusive<u32>,
    instance: &str,
    round: usize,
    timeout: Duration,
) -> Result<(Start, Teardown, usize), String> {
    // No sandbox runs before the start: whatever runs as a sandbox uid after it is this session's.
    wait_no_process(uids, TEARDOWN_LIMIT).await?;
    let (start, mut session) = tokio::time::timeout(timeout, timed_session(target.clone(), round))
        .await
        .map_err(|_| format!("no reply within {timeout:?}"))??;
    let sandbox = procs::with_uids(uids);
    if sandbox.is_empty() {
        let _ = session.delete().await;
        return Err("the reply came, but no sandbox process runs".into());
    }
    let deleted = Instant::now();
    let status = tokio::time::timeout(timeout, session.delete())
        .await
        .map_err(|_| format!("DELETE not answered within {timeout:?}"))??;
    if !status.is_success() {
        return Err(format!("DELETE: HTTP {status}"));
    }
    wait_gone(&sandbox, TEARDOWN_LIMIT)
        .await
        .map_err(|e| format!("after DELETE: {e}"))?;
    let processes = deleted.elapsed().as_nanos() as u64;
    let network = wait_links_gone(instance, TEARDOWN_LIMIT)
        .await
        .map(|_| deleted.elapsed().as_nanos() as u64);
    Ok((start, Teardown { processes, network }, sandbox.len()))
}

/// How long a sandbox took to go after DELETE, nanoseconds.
struct Teardown {
    processes: u64,
    /// Until its veth pair was gone; `None` if that took over the limit.
    network: Option<u64>,
}

/// Connects, then times `initialize`, `notifications/initialized` and a checked `tools/call`.
async fn timed_session(target: Arc<HttpTarget>, n: usize) -> Result<(Start, HttpSession), String> {
    let mut session = HttpSession::connect(target).await?;
    let message = format!("cold-n{n}");
    let t0 = Instant::now();
    session.initialize().await?;
    let t1 = Instant::now();
    session.initialized().await?;
    let t2 = Instant::now();
    let reply = session.call(1, &message).await?;
    let t3 = Instant::now();
    check(&reply, 1, &message)?;
    let ns = |a: Instant, b: Instant| (b - a).as_nanos() as u64;
    let start = Start {
        total: ns(t0, t3),
        initialize: ns(t0, t1),
        initialized: ns(t1, t2),
        call: ns(t2, t3),
    };
    Ok((start, session))
}

/// The machine's memory at one moment (medians of a few readings).
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    available: f64,
    kernel: f64,
    gateway_pss: f64,
    gateway_anon: f64,
}

async fn sample(gateway_pid: Option<u32>) -> Sample {
    let mut readings = Vec::new();
    for i in 0..5 {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let info = procs::meminfo();
        let field = |k: &str| info.get(k).copied().unwrap_or(0) as f64;
        let gateway = gateway_pid.and_then(procs::memory_of).unwrap_or_default();
        readings.push(Sample {
            available: field("MemAvailable"),
            kernel: field("SUnreclaim") + field("KernelStack") + field("PageTables") + field("Percpu"),
            gateway_pss: gateway.pss as f64,
            gateway_anon: gateway.anon as f64,
        });
    }
    let median = |f: fn(&Sample) -> f64| {
        let mut v: Vec<f64> = readings.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Sample {
        available: median(|s| s.available),
        kernel: median(|s| s.kernel),
        gateway_pss: median(|s| s.gateway_pss),
        gateway_anon: median(|s| s.gateway_anon),
    }
}

/// The sandboxes `gigmcp server status` lists as per-session, and their memory summed (bytes).
fn parse_status(text: &str) -> (usize, f64) {
    let mut listed = 0;
    let mut bytes = 0.0;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 9 || words[2] != "session" {
            continue;
        }
        let (value, unit) = (words[words.len() - 2], words[words.len() - 1]);
        let factor = match unit {
            "KiB" => 1024.0,
            "MiB" => 1048576.0,
            "GiB" => 1073741824.0,
            _ => continue,
        };
        if let Ok(v) = value.parse::<f64>() {
            listed += 1;
            bytes += v * factor;
        }
    }
    (listed, bytes)
}

async fn memory(result: &mut ColdResult, gw: &gateway::Gateway, gigmcp: &Path, deadline: Instant) {
    let plan = result.plan.clone();
    let uids = plan.sandbox_uids();
    let n = plan.idle;
    let gateway_pid = gw.child.id();
    let mut memory = MemoryResult {
        sandboxes: n,
        cycles: Vec::new(),
        status_listed: Vec::new(),
    };
    for cycle in 0..plan.memory_cycles {
        if Instant::now() > deadline {
            result.error(format!(
                "the sandbox part took over {:?}; memory cycle {cycle} not run",
                plan.budget
            ));
            break;
        }
        eprintln!(
            "[bench] cold: memory cycle {}/{}: {n} idle sandboxes",
            cycle + 1,
            plan.memory_cycles
        );
        if let Err(e) = settle(&plan).await {
            result.error(format!("memory cycle {cycle}: {e}"));
            break;
        }
        // Let what the last teardown left to the kernel (namespaces are freed asynchronously) settle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = sample(gateway_pid).await;
        let mut sessions = Vec::new();
        for i in 0..n {
            let opened = tokio::time::timeout(plan.timeout, timed_session(gw.target.clone(), 10_000 * (cycle + 1) + i))
                .await
                .unwrap_or_else(|_| Err(format!("no reply within {:?}", plan.timeout)));
            if let Some((_, session)) = result.outcome(&format!("memory cycle {cycle}: session {i}"), opened) {
                sessions.push(session);
            }
        }
        let complete = sessions.len() == n;
        if complete {
            tokio::time::sleep(plan.idle_wait).await;
            let after = sample(gateway_pid).await;
            let sandbox = procs::with_uids(&uids);
            let mut total = procs::Memory::default();
            for p in &sandbox {
                total += procs::memory_of(p.pid).unwrap_or_default();
            }
            let status = gateway::cli(gigmcp, &gw.data, &["server", "status"]).await;
            let (listed, cgroup) = status.as_deref().map_or((0, 0.0), parse_status);
            let per = |v: f64| v / n as f64;
            memory.status_listed.push(listed);
            memory.cycles.push(IdleMemory {
                processes: per(sandbox.len() as f64),
                rss: per(total.rss as f64),
                pss: per(total.pss as f64),
                uss: per(total.uss as f64),
                cgroup: (listed > 0).then(|| cgroup / listed as f64),
                gateway_pss: per(after.gateway_pss - before.gateway_pss),
                gateway_anon: per(after.gateway_anon - before.gateway_anon),
                kernel: per(after.kernel - before.kernel),
                available: per(before.available - after.available),
            });
        }
        for mut session in sessions {
            let _ = tokio::time::timeout(plan.timeout, session.delete()).await;
        }
        if !complete {
            break;
        }
    }
    if let Err(e) = wait_no_process(&uids, TEARDOWN_LIMIT).await {
        result.error(format!("after the memory cycles: {e}"));
    }
    if !memory.cycles.is_empty() {
        result.memory = Some(memory);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_summed() {
        let text = "SERVER               PROFILE          MODE          PID ADDRESS           UPTIME RESTARTS     MEMORY\n\
                    echo                 cold             session     12345 10.89.0.2             2s        0     3.5 MiB\n\
                    echo                 cold             session     12346 10.89.0.6             2s        0     4.5 MiB\n\
                    other                cold             profile     12347 10.89.0.10            9s        0     9.0 MiB\n\
                    echo                 cold             session     12348 -                     1s        0          -\n";
        let (listed, bytes) = parse_status(text);
        assert_eq!(listed, 2);
        assert_eq!(bytes, 8.0 * 1048576.0);
    }

    #[test]
    fn the_uid_ranges_follow_the_pool() {
        let plan = Plan {
            env: Vec::new(),
            starts: 1,
            warmup: 0,
            idle: 1,
            memory_cycles: 1,
            idle_wait: Duration::ZERO,
            instance: "bnch".into(),
            cidr: "10.89.0.0/24".into(),
            uid_base: 3_000_000,
            max_sandboxes: 64,
            pause: Duration::ZERO,
            timeout: Duration::from_secs(1),
            budget: Duration::from_secs(1),
        };
        assert_eq!(plan.slots(), Ok(64));
        assert_eq!(plan.sandbox_uids(), 3_000_000..=3_000_064);
        assert_eq!(plan.baseline_uid(), 3_000_065);
        let small = Plan {
            cidr: "10.89.0.0/28".into(),
            ..plan.clone()
        };
        assert_eq!(small.slots(), Ok(4));
        assert!(
            Plan {
                cidr: "10.89.0.0".into(),
                ..plan
            }
            .slots()
            .is_err()
        );
    }

    #[test]
    fn every_kind_takes_every_place_and_follows_every_other_equally_often() {
        let index = |k: Kind| {
            KINDS
                .iter()
                .position(|x| std::mem::discriminant(x) == std::mem::discriminant(&k))
        };
        let mut places = [[0; 4]; 4];
        let mut follows = [[0; 4]; 4];
        for round in 0..4 {
            let kinds = order(round).map(|k| index(k).unwrap());
            for (place, k) in kinds.iter().enumerate() {
                places[*k][place] += 1;
            }
            for pair in kinds.windows(2) {
                follows[pair[0]][pair[1]] += 1;
            }
        }
        assert_eq!(places, [[1; 4]; 4]);
        for (a, row) in follows.iter().enumerate() {
            for (b, n) in row.iter().enumerate() {
                assert_eq!(*n, usize::from(a != b), "{a} then {b}");
            }
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=50).rev().collect();
        assert_eq!(quantile(&v, 0.5), Some(Duration::from_nanos(25)));
        assert_eq!(quantile(&v, 0.99), Some(Duration::from_nanos(50)));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
