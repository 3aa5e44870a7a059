//! MCP clients for tests: the official Python SDK's scripts in tests/clients, and a bare-bones raw client for
//! the protocol edge cases an SDK would never send.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::netns::Netns;
use crate::paths::*;

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

/// Runs tool calls in one session of the Python SDK client (`call_tools.py`), from `netns` when given, listing
/// the tools first with `list_tools`; returns the client's `data`: `results` (`tool`, `text`, `is_error` or
/// `error`, one per call) and, when listed, `tools` (`name`, `description`, `inputSchema`).
pub fn call_tools_in(
    netns: Option<&Netns>,
    url: &str,
    token: &str,
    calls: &[(&str, Value)],
    list_tools: bool,
) -> Value {
    run_calls(
        netns,
        url,
        token,
        calls,
        if list_tools { &["--list-tools"] } else { &[] },
    )
}

/// Like `call_tools_in`, with every call sent at once in the one session (the results in the order given).
pub fn call_tools_at_once_in(netns: Option<&Netns>, url: &str, token: &str, calls: &[(&str, Value)]) -> Value {
    run_calls(netns, url, token, calls, &["--at-once"])
}

fn run_calls(netns: Option<&Netns>, url: &str, token: &str, calls: &[(&str, Value)], flags: &[&str]) -> Value {
    let plan: Vec<Value> = calls
        .iter()
        .map(|(tool, args)| json!({"tool": tool, "arguments": args}))
        .collect();
    let plan = serde_json::to_string(&plan).unwrap();
    let mut args = vec![
        "--url",
        url,
        "--token",
        token,
        "--calls",
        &plan,
        "--timeout",
        "150",
        "--request-timeout",
        "60",
    ];
    args.extend_from_slice(flags);
    let (ok, stdout, stderr) = run_python_client_in(netns, "call_tools.py", &args);
    assert!(ok, "client failed\n{stdout}\n{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    out["data"].clone()
}

/// The `error.code` of the REST API's error envelope, or `<none>` when the body has none.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
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
