//! The streamable-HTTP transport: every message is a POST whose response is a JSON reply or an event stream
//! (resumed with `Last-Event-ID` when it ends early), a GET stream carries what the server sends outside any
//! request, and a DELETE ends the session when the connection is dropped.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Conn, Transport, UpstreamError, UpstreamEvent};
use crate::sse::SseReader;
use gigmcp_types::names::ServerName;
use gigmcp_types::sync::lock;

/// How often an event stream that ended before its reply is resumed before the request fails.
const MAX_RESUMPTIONS: u32 = 10;
/// The longest wait before resuming, whatever `retry:` the server asked for.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

pub(super) struct HttpTransport {
    client: reqwest::Client,
    pub(super) url: String,
    session_id: Mutex<Option<String>>,
    protocol_version: Mutex<Option<String>>,
}

impl HttpTransport {
    /// Adds the session's headers (`Mcp-Session-Id`, `MCP-Protocol-Version`) once the server gave them.
    fn with_session(&self, mut request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(id) = lock(&self.session_id).as_deref() {
            request = request.header("mcp-session-id", id);
        }
        if let Some(version) = lock(&self.protocol_version).as_deref() {
            request = request.header("mcp-protocol-version", version);
        }
        request
    }

    fn post(&self, message: &Value) -> reqwest::RequestBuilder {
        let request = self
            .client
            .post(&self.url)
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(message.to_string());
        self.with_session(request)
    }

    /// A GET for the session's standalone stream, or for resuming a stream after `last_event`.
    fn get_stream(&self, last_event: Option<&str>) -> reqwest::RequestBuilder {
        let request = self
            .client
            .get(&self.url)
            .header(http::header::ACCEPT, "text/event-stream");
        let mut request = self.with_session(request);
        if let Some(last) = last_event {
            request = request.header("last-event-id", last);
        }
        request
    }

    /// Ends the upstream HTTP session (a DELETE, sent in the background), if the server opened one.
    pub(super) fn end_session(&self) {
        if let Some(id) = lock(&self.session_id).clone() {
            let request = self.client.delete(&self.url).header("mcp-session-id", id);
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = request.send().await;
                });
            }
        }
    }
}

impl Conn {
    pub(super) async fn start_http(
        server: ServerName,
        client: reqwest::Client,
        url: String,
        events: mpsc::UnboundedSender<UpstreamEvent>,
    ) -> Result<Arc<Self>, UpstreamError> {
        let conn = Arc::new(Self::new(
            server,
            Transport::Http(HttpTransport {
                client,
                url,
                session_id: Mutex::new(None),
                protocol_version: Mutex::new(None),
            }),
            events,
        ));
        conn.handshake().await?;
        if let Transport::Http(http) = &conn.transport {
            *lock(&http.protocol_version) = conn.init()["protocolVersion"].as_str().map(str::to_owned);
            tokio::spawn(listen_http(Arc::downgrade(&conn)));
        }
        Ok(conn)
    }

    /// POSTs one message. A request's reply is read in a task of its own (it may stream for a long time);
    /// anything else only needs the server to accept it.
    pub(super) async fn send_http(self: &Arc<Self>, http: &HttpTransport, message: Value, request_id: Option<u64>) {
        let request = http.post(&message);
        if let Some(id) = request_id {
            let weak = Arc::downgrade(self);
            tokio::spawn(async move {
                let outcome = match request.send().await {
                    Ok(response) => read_http_response(&weak, response, Some(id)).await,
                    Err(e) => Err(e.to_string()),
                };
                if let (Err(detail), Some(conn)) = (outcome, weak.upgrade()) {
                    conn.fail_pending(id, &detail);
                }
            });
        } else {
            match request.send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(server = %self.server, status = %response.status(), "upstream refused a message")
                }
                Err(e) => {
                    tracing::warn!(server = %self.server, "cannot send to upstream: {e}")
                }
            }
        }
    }

    /// [`HttpTransport::get_stream`] of this connection (`None` if it is not an HTTP one).
    fn get_stream(&self, last_event: Option<&str>) -> Option<reqwest::RequestBuilder> {
        let Transport::Http(http) = &self.transport else {
            return None;
        };
        Some(http.get_stream(last_event))
    }
}

/// Reads one HTTP response from the server: a JSON message, or an event stream of messages. An event
/// stream that ends before the reply of its request came is resumed with `Last-Event-ID` (2025-11-25
/// servers close streams on purpose and let clients poll), as long as the server gave its events ids.
async fn read_http_response(
    conn: &Weak<Conn>,
    response: reqwest::Response,
    related_to: Option<u64>,
) -> Result<(), String> {
    let status = response.status();
    if let (Some(conn), Some(id)) = (conn.upgrade(), response.headers().get("mcp-session-id"))
        && let (Transport::Http(http), Ok(id)) = (&conn.transport, id.to_str())
    {
        let mut current = lock(&http.session_id);
        if current.is_none() {
            *current = Some(id.to_owned());
        }
    }
    if status == reqwest::StatusCode::ACCEPTED {
        return Ok(());
    }
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let excerpt: String = body.chars().take(300).collect();
        return Err(format!("HTTP {status}: {excerpt}"));
    }
    if !is_event_stream(&response) {
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON reply: {e}"))?;
        if let Some(conn) = conn.upgrade() {
            conn.on_message(value, related_to);
        }
        return Ok(());
    }
    let mut reader = SseReader::default();
    read_events(conn, response, &mut reader, related_to).await?;
    let Some(id) = related_to else { return Ok(()) };
    for _ in 0..MAX_RESUMPTIONS {
        let waiting = conn.upgrade().is_some_and(|c| lock(&c.pending).contains_key(&id));
        let Some(last_event) = reader.last_event_id().map(str::to_owned).filter(|_| waiting) else {
            break;
        };
        tokio::time::sleep(reader.retry().unwrap_or(Duration::from_secs(1)).min(MAX_RETRY_WAIT)).await;
        let Some(request) = conn.upgrade().and_then(|c| c.get_stream(Some(&last_event))) else {
            return Ok(());
        };
        match request.send().await {
            Ok(response) if response.status().is_success() && is_event_stream(&response) => {
                read_events(conn, response, &mut reader, related_to).await?;
            }
            Ok(response) => return Err(format!("resuming the response stream: HTTP {}", response.status())),
            Err(e) => return Err(format!("resuming the response stream: {e}")),
        }
    }
    // A request whose reply never came fails now rather than hanging.
    if let Some(conn) = conn.upgrade() {
        conn.fail_pending(id, "the response stream ended without a reply");
    }
    Ok(())
}

fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"))
}

/// Reads an event stream until it ends, handing each message to the connection.
async fn read_events(
    conn: &Weak<Conn>,
    response: reqwest::Response,
    reader: &mut SseReader,
    related_to: Option<u64>,
) -> Result<(), String> {
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        for data in reader.feed(&chunk)? {
            let Some(conn) = conn.upgrade() else {
                return Ok(());
            };
            match serde_json::from_str::<Value>(&data) {
                Ok(value) => conn.on_message(value, related_to),
                Err(e) => tracing::warn!(server = %conn.server, "ignoring an event that is not JSON: {e}"),
            }
        }
    }
    Ok(())
}

/// Keeps a GET stream open for messages the server sends outside any request, reopening it (resuming
/// after the last event seen) when the server closes it. Servers that offer none answer 405, which ends
/// this; so does the connection ending.
async fn listen_http(conn: Weak<Conn>) {
    let mut reader = SseReader::default();
    let mut failures = 0u32;
    while failures < 5 {
        let Some(request) = conn
            .upgrade()
            .filter(|c| !c.is_closed())
            .and_then(|c| c.get_stream(reader.last_event_id()))
        else {
            return;
        };
        match request.send().await {
            Ok(response) if response.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED => return,
            Ok(response) if response.status().is_success() && is_event_stream(&response) => {
                failures = 0;
                if let Err(e) = read_events(&conn, response, &mut reader, None).await {
                    tracing::debug!("upstream GET stream ended: {e}");
                    failures += 1;
                }
            }
            Ok(_) | Err(_) => failures += 1,
        }
        let wait = reader.retry().unwrap_or(Duration::from_secs(1)).min(MAX_RETRY_WAIT);
        tokio::time::sleep(wait * (failures + 1)).await;
    }
}
