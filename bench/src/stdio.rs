//! Floor 1: the load generator speaking MCP over stdio (newline-delimited JSON-RPC) to `gigmcp mcp-echo`,
//! started directly (no sandbox). Concurrency is requests in flight on the one pipe: each worker writes its
//! line under a lock, and one reader task hands each reply to the worker waiting for its id.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;

use crate::client::PROTOCOL_VERSION;
use crate::driver::Caller;

struct Pipe {
    stdin: tokio::sync::Mutex<ChildStdin>,
    /// Replies awaited, by id; `None` once the server's stdout has ended.
    pending: Mutex<Option<HashMap<u64, oneshot::Sender<Value>>>>,
}

pub struct EchoProcess {
    child: Child,
    pipe: Arc<Pipe>,
}

#[derive(Clone)]
pub struct StdioCaller {
    pipe: Arc<Pipe>,
}

impl EchoProcess {
    /// Starts the echo server (`gigmcp mcp-echo`, or `upstream`'s command line) and completes the MCP
    /// handshake.
    pub async fn start(gigmcp: &Path, upstream: Option<&str>) -> Result<Self, String> {
        match upstream {
            Some(line) => {
                let mut words = line.split_whitespace();
                let mut command = Command::new(words.next().unwrap_or_default());
                command.args(words);
                Self::spawn(command, line).await
            }
            None => {
                let mut command = Command::new(gigmcp);
                command.arg("mcp-echo");
                Self::spawn(command, &format!("{} mcp-echo", gigmcp.display())).await
            }
        }
    }

    /// Starts an echo server with `command` (its pipes are set here) and completes the MCP handshake.
    pub async fn spawn(mut command: Command, what: &str) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {what}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the echo server's pipes are missing".into());
        };
        let pipe = Arc::new(Pipe {
            stdin: tokio::sync::Mutex::new(stdin),
            pending: Mutex::new(Some(HashMap::new())),
        });
        let reader = pipe.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::with_capacity(64 * 1024, stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(message) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let Some(id) = message.get("id").and_then(Value::as_u64) else {
                    continue;
                };
                let waiter = reader.pending.lock().unwrap().as_mut().and_then(|p| p.remove(&id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(message);
                }
            }
            // Dropping the waiters fails the calls in flight.
            reader.pending.lock().unwrap().take();
        });
        let process = Self { child, pipe };
        let mut caller = process.caller();
        let init = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"gigmcp-bench","version":"{}"}}}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let reply = tokio::time::timeout(Duration::from_secs(10), caller.request(0, init))
            .await
            .map_err(|_| "the echo server did not answer initialize".to_owned())??;
        if reply.pointer("/result/protocolVersion").is_none() {
            return Err(format!("initialize failed: {reply}"));
        }
        caller
            .write(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned())
            .await?;
        Ok(process)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn caller(&self) -> StdioCaller {
        StdioCaller {
            pipe: self.pipe.clone(),
        }
    }

    /// Ends the server (it keeps no state worth a graceful end).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl StdioCaller {
    async fn write(&self, mut line: String) -> Result<(), String> {
        line.push('\n');
        let mut stdin = self.pipe.stdin.lock().await;
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("write to the echo server: {e}"))
    }

    async fn request(&mut self, id: u64, line: String) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        match self.pipe.pending.lock().unwrap().as_mut() {
            Some(pending) => pending.insert(id, tx),
            None => return Err("the echo server has exited".into()),
        };
        if let Err(e) = self.write(line).await {
            if let Some(p) = self.pipe.pending.lock().unwrap().as_mut() {
                p.remove(&id);
            }
            return Err(e);
        }
        rx.await.map_err(|_| "the echo server has exited".to_owned())
    }
}

impl Caller for StdioCaller {
    async fn call(&mut self, id: u64, message: &str) -> Result<Value, String> {
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"{message}"}}}}}}"#
        );
        self.request(id, line).await
    }

    async fn close(self) {}
}
