//! A real `gigmcp serve` on loopback (or in a network namespace) with a data directory of its own, and the
//! real CLI against the same database.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::netns::Netns;
use crate::paths::*;

/// Starts `gigmcp serve` and waits until it listens: (process, address, its log as it grows).
fn spawn_serve(
    netns: Option<&Netns>,
    dir: &std::path::Path,
    extra_env: &[(String, String)],
) -> Result<(Child, String, Arc<Mutex<String>>), String> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut cmd = ns.command();
            cmd.arg(gigmcp_bin());
            cmd
        }
        None => Command::new(gigmcp_bin()),
    };
    cmd.arg("serve")
        .env("GIG_DATA_DIR", dir)
        .env("GIG_MASTER_KEY", MASTER_KEY)
        .env("GIG_LISTEN", "127.0.0.1:0")
        .env("GIG_LOG", "info,gigmcp=debug")
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start gigmcp serve");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                // The address alone (a JSON log line goes on after it).
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                let _ = tx.send(addr);
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => Ok((child, addr, log)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let text = log.lock().unwrap().clone();
            Err(text)
        }
    }
}

/// Starts the gateway; a start that fails is reported (its log on stderr) and tried once more, since a
/// start on this shared machine can lose a race with another test's teardown of the same kernel objects.
/// Two failures in a row fail the test.
fn spawn_serve_retrying(
    netns: Option<&Netns>,
    dir: &std::path::Path,
    extra_env: &[(String, String)],
) -> (Child, String, Arc<Mutex<String>>) {
    match spawn_serve(netns, dir, extra_env) {
        Ok(started) => started,
        Err(first) => {
            eprintln!("gigmcp serve did not start; trying once more. Its log:\n{first}");
            std::thread::sleep(Duration::from_millis(500));
            spawn_serve(netns, dir, extra_env)
                .unwrap_or_else(|second| panic!("gigmcp serve did not start, twice:\n{first}\n---\n{second}"))
        }
    }
}

/// Sandbox settings of their own for each test gateway, so that tests running in parallel never share
/// interfaces, addresses, firewall tables or uids.
pub fn isolation_env() -> Vec<(String, String)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let instance = {
        let mut v = (pid % 1000) * 40 + n % 40;
        let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut s = String::from("t");
        for _ in 0..3 {
            s.push(digits[(v % 36) as usize] as char);
            v /= 36;
        }
        s
    };
    vec![
        ("GIG_INSTANCE".into(), instance),
        (
            "GIG_SANDBOX_CIDR".into(),
            format!("10.{}.{}.0/24", 100 + pid % 100, n % 256),
        ),
        (
            "GIG_SANDBOX_UID_BASE".into(),
            (1_000_000 + (pid % 1000) * 10_000 + (n % 100) * 100).to_string(),
        ),
        ("GIG_MAX_SANDBOXES".into(), "32".into()),
        // Compiled default plugins are shared by the test gateways (one master key): compiled once per run.
        (
            "GIG_PLUGIN_CACHE_DIR".into(),
            repo_root()
                .join("target/test-gateway-plugin-cache")
                .display()
                .to_string(),
        ),
    ]
}

pub struct TestGateway {
    pub dir: tempfile::TempDir,
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
    extra_env: Vec<(String, String)>,
}

impl TestGateway {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra_env: &[(&str, &str)]) -> Self {
        Self::start_in(None, extra_env)
    }

    /// Starts the gateway inside a network namespace, when given one.
    pub fn start_in(netns: Option<&Netns>, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // Private, as a data directory should be (and as a checkout under /root is): what sandboxes need of
        // it reaches them through the gateway's run directory.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let given: Vec<(String, String)> = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut extra_env: Vec<(String, String)> = isolation_env()
            .into_iter()
            .filter(|(k, _)| !given.iter().any(|(g, _)| g == k))
            .collect();
        extra_env.extend(given);
        let (child, addr, log) = spawn_serve_retrying(netns, dir.path(), &extra_env);
        Self {
            dir,
            child,
            addr,
            log,
            extra_env,
        }
    }

    /// Starts the gateway again on the same data directory and settings, stopping it first if it still runs
    /// (after `kill9` there is nothing to stop).
    pub fn restart(&mut self) {
        self.stop();
        let (child, addr, log) = spawn_serve_retrying(None, self.dir.path(), &self.extra_env);
        self.child = child;
        self.addr = addr;
        self.log = log;
    }

    /// The instance's run directory (`/run/gigmcp/<GIG_INSTANCE>`), where its servers' states are mounted.
    pub fn run_dir(&self) -> Option<std::path::PathBuf> {
        Some(std::path::Path::new("/run/gigmcp").join(self.setting("GIG_INSTANCE")?))
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gateway's own setting for a variable it was started with.
    pub fn setting(&self, name: &str) -> Option<String> {
        self.extra_env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Pids of processes running as a sandbox uid of this gateway.
    pub fn sandbox_processes(&self) -> Vec<u32> {
        let base: u32 = self.setting("GIG_SANDBOX_UID_BASE").unwrap().parse().unwrap();
        let slots: u32 = self.setting("GIG_MAX_SANDBOXES").unwrap().parse().unwrap();
        let out = Command::new("ps").args(["-eo", "pid=,uid="]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?.parse::<u32>().ok()?, f.next()?.parse::<u32>().ok()?))
            })
            .filter(|(_, uid)| (base..=base + slots).contains(uid))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Kills the gateway outright (SIGKILL): no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, slug: &str) -> String {
        format!("http://{}/mcp/p/{slug}", self.addr)
    }

    /// Runs the CLI against this gateway's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(gigmcp_bin())
            .args(args)
            .env("GIG_DATA_DIR", self.dir.path())
            .env("GIG_MASTER_KEY", MASTER_KEY)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    /// Runs the CLI with `input` on its standard input (secrets are read only from there); returns its stdout,
    /// failing the test with its stderr if it fails.
    pub fn cli_with_input(&self, args: &[&str], input: &str) -> String {
        let out = self.cli_with_input_output(args, input);
        assert!(
            out.status.success(),
            "gigmcp {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a CLI command with `input` on standard input that must fail; gives its standard error.
    pub fn cli_with_input_error(&self, args: &[&str], input: &str) -> String {
        let out = self.cli_with_input_output(args, input);
        assert!(
            !out.status.success(),
            "gigmcp {} succeeded: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn cli_with_input_output(&self, args: &[&str], input: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(gigmcp_bin())
            .args(args)
            .env("GIG_DATA_DIR", self.dir.path())
            .env("GIG_MASTER_KEY", MASTER_KEY)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "gigmcp {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A session of the control plane from a single-use login link (the API's own tests cover sessions):
    /// its `gigmcp_session=…` cookie. `http` must not follow redirects.
    pub async fn admin_cookie(&self, http: &reqwest::Client) -> String {
        let printed = self.cli_ok(&["admin", "login-link"]);
        let url = printed.trim();
        let path = &url[url.find("/auth/link/").expect("a login URL")..];
        let response = http.get(format!("http://{}{path}", self.addr)).send().await.unwrap();
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
        set_cookie.split(';').next().unwrap().to_owned()
    }

    /// Creates a profile and returns its token.
    pub fn create_profile(&self, slug: &str) -> String {
        let out = self.cli_ok(&["profile", "create", slug]);
        out.lines()
            .find_map(|l| l.split_whitespace().find(|w| w.starts_with("gig_")))
            .expect("token printed")
            .to_owned()
    }

    pub fn add_echo(&self, name: &str, prefix: Option<&str>) {
        let mut args = vec!["server", "add", name, "--builtin", "echo"];
        if let Some(p) = prefix {
            args.extend(["--prefix", p]);
        }
        self.cli_ok(&args);
    }

    pub fn add_everything(&self, name: &str) {
        let js = everything_js();
        let modules = node_modules();
        let node = node_bin();
        let mount = modules.display().to_string();
        self.cli_ok(&[
            "server",
            "add",
            name,
            "--command",
            &node,
            "--arg",
            js.to_str().unwrap(),
            "--arg",
            "stdio",
            "--mount",
            &mount,
        ]);
    }
}

impl TestGateway {
    /// Stops the gateway as an operator would (SIGTERM: it removes its firewall rules, interfaces and
    /// cgroups), killing it if it takes too long.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The mount points under `dir` (from /proc/self/mountinfo; test paths need no unescaping).
pub fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| std::path::Path::new(point).starts_with(dir))
        .map(str::to_owned)
        .collect()
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.stop();
        // A gateway killed outright leaves its servers' state filesystems mounted in its run directory:
        // unmounted here, so its loop devices are freed.
        if let Some(run_dir) = self.run_dir() {
            for point in mounts_under(&run_dir) {
                let _ = Command::new("umount").args(["-l", &point]).status();
            }
            let _ = std::fs::remove_dir_all(run_dir);
        }
        if std::thread::panicking() {
            eprintln!("---- gateway log ----\n{}", self.log());
        }
    }
}

/// Adds the deterministic probe server (tests/support/probe-server.js) as a stdio server.
pub fn add_probe(gateway: &TestGateway, name: &str) {
    let support = repo_root().join("tests/support");
    let script = support.join("probe-server.js");
    gateway.cli_ok(&[
        "server",
        "add",
        name,
        "--command",
        &node_bin(),
        "--arg",
        script.to_str().unwrap(),
        "--mount",
        support.to_str().unwrap(),
    ]);
}
