//! Helper processes: free loopback ports, children killed on drop, `server-everything` over HTTP, the
//! conformance fixture and scripts under Node 22.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::paths::*;

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

/// The conformance fixture server (tests/conformance/fixture_server.mjs, Node 22) on a free loopback port;
/// returns its MCP URL.
pub fn start_conformance_fixture() -> (Guard, String) {
    start_node22(&repo_root().join("tests/conformance/fixture_server.mjs"), &["0"])
}

/// Runs a script with Node 22 (from tests/deps) and waits for the "listening on <url>" line it prints on
/// standard output; returns the process and the URL.
pub fn start_node22(script: &std::path::Path, args: &[&str]) -> (Guard, String) {
    let node = node22_dir().join("bin/node");
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
