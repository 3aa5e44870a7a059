//! Test harness: a real `gigmcp serve` on loopback with its own data directory, the real CLI against the
//! same database, a minimal raw MCP client for protocol edge cases, and the official Python SDK clients.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const MASTER_KEY: &str = "6a1f0c5e3b2d4f7a8c9e0b1d2f3a4c5e6b7d8f9a0c1e2b3d4f5a6c7e8b9d0f1a";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/gigmcp/ is inside the repository")
        .to_path_buf()
}

pub fn gigmcp_bin() -> &'static str {
    env!("CARGO_BIN_EXE_gigmcp")
}

/// The test dependencies `scripts/test-deps.sh` installs (`make test` runs it first).
pub fn test_deps_path(relative: &str) -> PathBuf {
    let path = repo_root().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `make test` (or scripts/test-deps.sh) to install the test dependencies",
        path.display()
    );
    path
}

pub fn venv_python() -> PathBuf {
    test_deps_path(".test-deps/venv/bin/python")
}

pub fn node_modules() -> PathBuf {
    test_deps_path("tests/deps/node_modules")
}

pub fn everything_js() -> PathBuf {
    test_deps_path("tests/deps/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

pub fn node_bin() -> String {
    let out = Command::new("sh").args(["-c", "command -v node"]).output().unwrap();
    let path = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!path.is_empty(), "node is not installed");
    std::fs::canonicalize(&path).unwrap().display().to_string()
}

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
                let _ = tx.send(rest.trim().to_owned());
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
    /// The audit events of the log of record that `filter` selects (as `GET /api/audit` does), waiting
    /// (bounded) until `until` holds of them: the audit writer is asynchronous.
    pub fn audit_until(
        &self,
        filter: &gigmcp_store::audit::AuditFilter,
        until: impl Fn(&[gigmcp_types::audit::AuditEvent]) -> bool,
    ) -> Vec<gigmcp_types::audit::AuditEvent> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let store = gigmcp_store::Store::open(&self.dir.path().join("gigmcp.db")).unwrap();
            let events = store.audit_search(filter, None, 500).unwrap();
            if until(&events) || std::time::Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(extra_env: &[(&str, &str)]) -> Self {
        Self::start_in(None, extra_env)
    }

    /// Starts the gateway inside a network namespace, when given one.
    pub fn start_in(netns: Option<&Netns>, extra_env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
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

    /// Starts the gateway again on the same data directory and settings (after `stop` or `kill9`).
    pub fn restart(&mut self) {
        let (child, addr, log) = spawn_serve_retrying(None, self.dir.path(), &self.extra_env);
        self.child = child;
        self.addr = addr;
        self.log = log;
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
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "gigmcp {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the CLI and returns its stdout, failing the test with its stderr if it fails.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "gigmcp {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
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

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- gateway log ----\n{}", self.log());
        }
    }
}

/// Runs a Python SDK client script from tests/clients with a time limit; returns (success, stdout, stderr).
pub fn run_python_client(script: &str, args: &[&str]) -> (bool, String, String) {
    run_python_client_in(None, script, args)
}

/// The same, from inside a network namespace when given one.
pub fn run_python_client_in(netns: Option<&Netns>, script: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = match netns {
        Some(ns) => {
            let mut cmd = ns.command();
            cmd.arg(venv_python());
            cmd
        }
        None => Command::new(venv_python()),
    };
    let mut child = cmd
        .arg(repo_root().join("tests/clients").join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

/// A bare-bones MCP client over streamable HTTP, for the cases an SDK would never send.
pub struct RawClient {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
    pub session: Option<String>,
}

impl RawClient {
    pub fn new(url: String, token: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            url,
            token,
            session: None,
        }
    }

    pub fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        req
    }

    pub async fn initialize(&mut self) -> Value {
        let response = self
            .post(
                json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                    "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        self.session = Some(response.headers()["mcp-session-id"].to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        self.post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string())
            .send()
            .await
            .unwrap();
        body
    }

    /// Sends a request and returns every message of its reply (one for JSON, several for an event stream).
    pub async fn request(&self, id: Value, method: &str, params: Value) -> Vec<Value> {
        let response = self
            .post(json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
        let is_sse = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream");
        let text = response.text().await.unwrap();
        if !is_sse {
            return vec![serde_json::from_str(&text).unwrap()];
        }
        text.split("\n\n")
            .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    }

    pub async fn call(&self, id: Value, method: &str, params: Value) -> Value {
        self.request(id.clone(), method, params)
            .await
            .into_iter()
            .find(|m| m.get("id") == Some(&id) && (m.get("result").is_some() || m.get("error").is_some()))
            .expect("a reply")
    }
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `server-everything` over streamable HTTP on a loopback port; returns its MCP URL.
pub fn start_everything_http() -> (Guard, String) {
    let port = free_port();
    let child = Command::new(node_bin())
        .arg("--require")
        .arg(repo_root().join("tests/support/loopback-only.cjs"))
        .arg(everything_js())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server-everything (HTTP) did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, format!("http://127.0.0.1:{port}/mcp"))
}

impl RawClient {
    /// Opens the session's GET stream; its messages arrive on the returned channel.
    pub async fn open_stream(&self) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
        use futures_util::StreamExt;
        let response = self
            .http
            .get(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", self.session.clone().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buffer = String::new();
            let mut body = response.bytes_stream();
            while let Some(Ok(chunk)) = body.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: "))
                        && tx.send(serde_json::from_str(data).unwrap()).is_err()
                    {
                        return;
                    }
                }
            }
        });
        rx
    }

    pub async fn end(&self) {
        let response = self
            .http
            .delete(&self.url)
            .bearer_auth(&self.token)
            .header("mcp-session-id", self.session.clone().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// The next message on a stream with the given method, skipping others; `None` after `wait`.
pub async fn next_with_method(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
    method: &str,
    wait: Duration,
) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) if m["method"] == method => return Some(m),
            Ok(Some(_)) => continue,
            _ => return None,
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

/// The conformance fixture server (tests/conformance/fixture_server.mjs, Node 22) on a free loopback port;
/// returns its MCP URL.
pub fn start_conformance_fixture() -> (Guard, String) {
    start_node22(&repo_root().join("tests/conformance/fixture_server.mjs"), &["0"])
}

/// Runs a script with Node 22 (from tests/deps) and waits for the "listening on <url>" line it prints on
/// standard output; returns the process and the URL.
pub fn start_node22(script: &std::path::Path, args: &[&str]) -> (Guard, String) {
    let node = test_deps_path("tests/deps/node_modules/.bin/node");
    let mut child = Command::new(node)
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{} did not start", script.display()));
    (guard, url)
}

/// A network namespace made by the test (a test host, or a machine with no uplink), deleted when dropped.
pub struct Netns {
    pub name: String,
}

/// Runs a command, failing the test with its output if it fails.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("gt{tag}{}x{n}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    /// A command that runs its program in this network namespace (only: unlike `ip netns exec`, which also
    /// remounts /sys and so hides the cgroup hierarchy, `nsenter --net` changes nothing else).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.name)).arg("--");
        cmd
    }

    /// Runs a program inside the namespace in the background.
    pub fn spawn(&self, args: &[&str]) -> Guard {
        let child = self
            .command()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Guard(child)
    }
}

/// A gateway's namespace linked by a veth only to an "outside" namespace: the gateway's side is
/// 198.51.100.1 with its default route via the outside's 198.51.100.2 (a documentation address that exists
/// only in the test's namespaces). Returns (gateway side, outside).
pub fn linked_to_outside(gw_tag: &str, outside_tag: &str) -> (Netns, Netns) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static LINKS: AtomicU32 = AtomicU32::new(0);
    let gw = Netns::new(gw_tag);
    let outside = Netns::new(outside_tag);
    let n = LINKS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}x{n}", std::process::id() % 100_000);
    let (a, b) = (format!("tva{tag}"), format!("tvb{tag}"));
    run(&[
        "ip",
        "link",
        "add",
        &a,
        "netns",
        &gw.name,
        "type",
        "veth",
        "peer",
        "name",
        &b,
        "netns",
        &outside.name,
    ]);
    run(&["ip", "-n", &gw.name, "addr", "add", "198.51.100.1/24", "dev", &a]);
    run(&["ip", "-n", &outside.name, "addr", "add", "198.51.100.2/24", "dev", &b]);
    run(&["ip", "-n", &gw.name, "link", "set", &a, "up"]);
    run(&["ip", "-n", &outside.name, "link", "set", &b, "up"]);
    run(&["ip", "-n", &gw.name, "route", "add", "default", "via", "198.51.100.2"]);
    (gw, outside)
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
