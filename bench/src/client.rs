//! The streamable-HTTP side of the load generator: one MCP session per worker, on its own kept-alive
//! HTTP/1.1 connection (hyper's connection-level client: no pool, no locks). The connection is driven by the
//! worker's own task, only while a call is in flight, so a call costs no hand-off between tasks.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::driver::Caller;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// The version the load generator asks for; every target supports it.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// An MCP endpoint and the name its echo tool has there.
#[derive(Debug)]
pub struct HttpTarget {
    pub addr: SocketAddr,
    pub path: String,
    pub bearer: Option<String>,
    pub tool: String,
}

pub struct HttpSession {
    target: Arc<HttpTarget>,
    sender: http1::SendRequest<Full<Bytes>>,
    conn: Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
    conn_ended: bool,
    host: HeaderValue,
    auth: Option<HeaderValue>,
    session: Option<HeaderValue>,
    version: Option<HeaderValue>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl HttpSession {
    /// Connects, then `initialize` and `notifications/initialized`.
    pub async fn open(target: Arc<HttpTarget>) -> Result<Self, String> {
        let mut session = Self::connect(target).await?;
        session.initialize().await?;
        session.initialized().await?;
        Ok(session)
    }

    /// Opens the session's connection (no request yet).
    pub async fn connect(target: Arc<HttpTarget>) -> Result<Self, String> {
        let stream = TcpStream::connect(target.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", target.addr))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        let host = HeaderValue::from_str(&target.addr.to_string()).map_err(|e| e.to_string())?;
        let auth = match &target.bearer {
            Some(token) => Some(HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Self {
            target,
            sender,
            conn: Box::pin(conn),
            conn_ended: false,
            host,
            auth,
            session: None,
            version: None,
        })
    }

    /// `initialize`: the session's id and protocol version come from its reply.
    pub async fn initialize(&mut self) -> Result<(), String> {
        let init = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"gigmcp-bench","version":"{}"}}}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let reply = self.exchange(Method::POST, Some(init)).await?;
        if reply.status != StatusCode::OK {
            return Err(format!(
                "initialize: HTTP {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ));
        }
        self.session = reply.headers.get(SESSION_HEADER).cloned();
        if self.session.is_none() {
            return Err("initialize: no Mcp-Session-Id in the response".into());
        }
        let message = response_for(&reply, 0)?;
        let version = message
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("initialize: no protocolVersion in {message}"))?;
        self.version = Some(HeaderValue::from_str(version).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// `notifications/initialized`.
    pub async fn initialized(&mut self) -> Result<(), String> {
        let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned();
        let reply = self.exchange(Method::POST, Some(note)).await?;
        if !reply.status.is_success() {
            return Err(format!("notifications/initialized: HTTP {}", reply.status));
        }
        Ok(())
    }

    /// Ends the session with DELETE; gives the HTTP status.
    pub async fn delete(&mut self) -> Result<StatusCode, String> {
        Ok(self.exchange(Method::DELETE, None).await?.status)
    }

    /// One HTTP exchange on this session's connection, the whole body read.
    async fn exchange(&mut self, method: Method, body: Option<String>) -> Result<Reply, String> {
        if self.conn_ended {
            return Err("the connection has ended".into());
        }
        let mut request = Request::builder()
            .method(method)
            .uri(self.target.path.as_str())
            .header(HOST, self.host.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"));
        if body.is_some() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        if let Some(session) = &self.session {
            request = request.header(SESSION_HEADER, session.clone());
        }
        if let Some(version) = &self.version {
            request = request.header(VERSION_HEADER, version.clone());
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let Self { sender, conn, .. } = self;
        let work = async {
            sender.ready().await.map_err(|e| format!("connection not ready: {e}"))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("HTTP request: {e}"))?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| format!("HTTP body: {e}"))?.to_bytes();
            Ok::<_, String>(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::select! {
            biased;
            reply = work => reply,
            ended = conn.as_mut() => {
                self.conn_ended = true;
                Err(match ended {
                    Ok(()) => "the server closed the connection".to_owned(),
                    Err(e) => format!("connection: {e}"),
                })
            }
        }
    }
}

/// The JSON-RPC response with `id` in a reply: a JSON body, or one event of an event stream.
fn response_for(reply: &Reply, id: u64) -> Result<Value, String> {
    let is_stream = reply
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_stream {
        return serde_json::from_slice(&reply.body).map_err(|e| {
            format!(
                "reply is not JSON ({e}): {}",
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
            )
        });
    }
    let text = std::str::from_utf8(&reply.body).map_err(|e| format!("event stream is not UTF-8: {e}"))?;
    // Events end at a blank line; an event's data is its `data:` lines joined by newlines.
    let mut data = String::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).peekable();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        }
        let event_ends = line.is_empty() || lines.peek().is_none();
        if event_ends && !data.is_empty() {
            if let Ok(message) = serde_json::from_str::<Value>(&data)
                && message.get("id").and_then(Value::as_u64) == Some(id)
                && (message.get("result").is_some() || message.get("error").is_some())
            {
                return Ok(message);
            }
            data.clear();
        }
    }
    Err(format!(
        "no response with id {id} in the event stream: {}",
        &text[..text.len().min(300)]
    ))
}

impl HttpSession {
    /// One `tools/call` of `name` with `arguments` (JSON): the whole JSON-RPC reply.
    pub async fn call_tool(&mut self, id: u64, name: &str, arguments: &str) -> Result<Value, String> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}","arguments":{arguments}}}}}"#
        );
        let reply = self.exchange(Method::POST, Some(body)).await?;
        if reply.status != StatusCode::OK {
            return Err(format!("HTTP {}", reply.status));
        }
        response_for(&reply, id)
    }
}

impl Caller for HttpSession {
    async fn call(&mut self, id: u64, message: &str) -> Result<Value, String> {
        // Messages are made of [A-Za-z0-9-]: nothing to escape.
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{}","arguments":{{"message":"{message}"}}}}}}"#,
            self.target.tool
        );
        let reply = self.exchange(Method::POST, Some(body)).await?;
        if reply.status != StatusCode::OK {
            return Err(format!(
                "HTTP {}: {}",
                reply.status,
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
            ));
        }
        response_for(&reply, id)
    }

    async fn close(mut self) {
        let _ = self.delete().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(content_type: &'static str, body: &str) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        Reply {
            status: StatusCode::OK,
            headers,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn json_and_event_stream_replies_are_read() {
        let json = reply("application/json", r#"{"jsonrpc":"2.0","id":3,"result":{}}"#);
        assert_eq!(response_for(&json, 3).unwrap()["id"], 3);
        let stream = reply(
            "text/event-stream",
            "event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n\
             id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\n\
             data: \"id\":3,\"result\":{\"ok\":true}}\n\n",
        );
        assert_eq!(response_for(&stream, 3).unwrap()["result"]["ok"], true);
        assert!(response_for(&stream, 4).is_err(), "no reply with that id");
        let unterminated = reply(
            "text/event-stream",
            "data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}",
        );
        assert!(response_for(&unterminated, 5).is_ok());
    }
}
