//! The stdio transport: a sandboxed process that reads one JSON-RPC message per line on stdin and writes one
//! per line on stdout; its stderr goes to the server's log (crate::logs), whose last lines error reports
//! quote.

use std::sync::{Arc, Mutex, Weak};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::{Conn, Transport, UpstreamError, UpstreamEvent};
use crate::logs::ServerLogs;
use gigmcp_sandbox::{Launch, Launcher, Sandbox};
use gigmcp_types::names::ServerName;

/// The longest line a stdio server may write.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

pub(super) struct StdioTransport {
    /// Lines for the server's stdin, written in order by a task of their own.
    writer: mpsc::Sender<Vec<u8>>,
    pub(super) sandbox: Mutex<Option<Sandbox>>,
}

impl StdioTransport {
    pub(super) fn new(writer: mpsc::Sender<Vec<u8>>, sandbox: Option<Sandbox>) -> Self {
        Self {
            writer,
            sandbox: Mutex::new(sandbox),
        }
    }

    /// Writes one message as a line; false if the server's stdin is closed.
    pub(super) async fn write(&self, message: &Value) -> bool {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.writer.send(line).await.is_ok()
    }
}

impl Conn {
    pub(super) async fn start_stdio(
        server: ServerName,
        launcher: &Launcher,
        launch: &Launch<'_>,
        tenant: Option<&gigmcp_sandbox::Tenant>,
        events: mpsc::UnboundedSender<UpstreamEvent>,
        logs: &ServerLogs,
    ) -> Result<Arc<Self>, UpstreamError> {
        let mut sandbox = launcher.spawn_for(launch, tenant).await?;
        let started = format!(
            "started: pid {}, uid {}{}",
            sandbox.pid.map_or_else(|| "?".to_string(), |p| p.to_string()),
            sandbox.uid,
            sandbox.address.map(|a| format!(", address {a}")).unwrap_or_default()
        );
        let child = sandbox.child.as_mut().expect("a new sandbox has its process");
        let (stdin, stdout, stderr) = match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => unreachable!("the launcher pipes all three streams"),
        };
        let (writer, mut write_rx) = mpsc::channel::<Vec<u8>>(1024);
        let mut conn = Self::new(
            server,
            Transport::Stdio(StdioTransport::new(writer, Some(sandbox))),
            events,
        );
        let log = Arc::new(logs.sink(&conn.server, tenant.and_then(|t| t.profile.as_ref()), conn.id));
        log.gateway(&started);
        conn.log = Some(log.clone());
        let conn = Arc::new(conn);
        tokio::spawn(async move {
            let mut stdin = stdin;
            while let Some(line) = write_rx.recv().await {
                if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });
        let name = conn.server.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(server = %name, "stderr: {line}");
                log.stderr(&line);
            }
        });
        let weak = Arc::downgrade(&conn);
        tokio::spawn(read_stdio(weak, stdout));
        if let Err(e) = conn.handshake().await {
            if let Some(log) = &conn.log {
                log.gateway(&format!("failed to start: {e}"));
            }
            return Err(e);
        }
        Ok(conn)
    }
}

async fn read_stdio(conn: Weak<Conn>, stdout: tokio::process::ChildStdout) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    let reason = loop {
        line.clear();
        match (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) => break "the server exited".to_string(),
            Ok(_) if line.len() > MAX_LINE_BYTES => {
                break "the server wrote a line over 16 MiB".to_string();
            }
            Ok(_) => {}
            Err(e) => break format!("reading the server's output failed: {e}"),
        }
        let Some(conn) = conn.upgrade() else { return };
        match serde_json::from_slice::<Value>(&line) {
            Ok(value) => conn.on_message(value, None),
            Err(_) if line.iter().all(u8::is_ascii_whitespace) => {}
            Err(e) => {
                tracing::warn!(server = %conn.server, "ignoring a line that is not JSON: {e}")
            }
        }
    };
    if let Some(conn) = conn.upgrade() {
        conn.shut(reason);
    }
}
