//! The downstream endpoint: MCP over streamable HTTP at `/mcp/p/{slug}` (2025-03-26, 2025-06-18, 2025-11-25).
//!
//! Every request is checked in the same order: `Origin` (DNS-rebinding protection), the profile's bearer
//! token, the body's size, the JSON, then the session. A request's reply is plain JSON unless the server
//! sends something related to it first (progress, a sampling request): then the reply becomes an event
//! stream carrying those messages and, last, the reply.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::gateway::Gateway;
use crate::jsonrpc;
use crate::jsonrpc::Message;
use crate::session::Session;
use crate::upstream::{Origin, Outbound, Reply};
use crate::{SUPPORTED_PROTOCOL_VERSIONS, negotiate_version};
use gigmcp_types::ids::ProfileId;
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::token::TokenHash;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

pub struct Endpoint {
    pub gateway: Arc<Gateway>,
    /// The browser origin of `GIG_PUBLIC_URL`, if set; loopback origins always pass.
    pub public_origin: Option<String>,
    pub max_body_bytes: usize,
}

pub fn router(endpoint: Arc<Endpoint>) -> Router {
    Router::new()
        .route("/mcp/p/{slug}", get(open_stream).post(post).delete(end_session))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(endpoint)
}

/// An HTTP-level refusal, with a JSON-RPC error body a client can show.
struct Refusal {
    status: StatusCode,
    code: i64,
    message: String,
}

fn refuse(status: StatusCode, code: i64, message: &str) -> Refusal {
    Refusal {
        status,
        code,
        message: message.to_owned(),
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = jsonrpc::error(Value::Null, self.code, self.message);
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gigmcp\""),
            );
        }
        response
    }
}

fn json_response(status: StatusCode, body: &Value, session: Option<&str>) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if let Some(id) = session.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(SESSION_HEADER, id);
    }
    response
}

fn sse_response(rx: mpsc::UnboundedReceiver<Value>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let message = rx.recv().await?;
        let event = Bytes::from(format!("event: message\ndata: {message}\n\n"));
        Some((Ok::<_, Infallible>(event), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn is_loopback_origin(origin: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(origin) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Endpoint {
    /// Origin check, then the bearer token. An unknown profile and a wrong token look the same.
    fn admit(&self, slug: &str, headers: &HeaderMap) -> Result<ProfileId, Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or_default();
            let allowed = is_loopback_origin(origin) || self.public_origin.as_deref() == Some(origin);
            if !allowed {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    jsonrpc::INVALID_REQUEST,
                    "Origin not allowed",
                ));
            }
        }
        let unauthorized = || {
            refuse(
                StatusCode::UNAUTHORIZED,
                jsonrpc::INVALID_REQUEST,
                "a valid profile token is required: Authorization: Bearer gig_…",
            )
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(unauthorized)?;
        let slug = ProfileSlug::parse(slug).map_err(|_| unauthorized())?;
        match self.gateway.store.authenticate(&slug, &TokenHash::of(token)) {
            Ok(Some(profile)) => Ok(profile),
            Ok(None) => Err(unauthorized()),
            Err(e) => {
                tracing::error!("token check failed: {e}");
                Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    jsonrpc::INTERNAL_ERROR,
                    "storage unavailable",
                ))
            }
        }
    }

    fn session(&self, profile: ProfileId, headers: &HeaderMap) -> Result<Arc<Session>, Refusal> {
        let Some(id) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()) else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                jsonrpc::INVALID_REQUEST,
                "Mcp-Session-Id header is required (send initialize first)",
            ));
        };
        if let Some(version) = headers.get(VERSION_HEADER) {
            let version = version.to_str().unwrap_or_default();
            if !SUPPORTED_PROTOCOL_VERSIONS.contains(&version) {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    jsonrpc::INVALID_REQUEST,
                    &format!("unsupported MCP-Protocol-Version {version:?}"),
                ));
            }
        }
        self.gateway
            .session(profile, id)
            .ok_or_else(|| refuse(StatusCode::NOT_FOUND, jsonrpc::INVALID_REQUEST, "session not found"))
    }
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream") || v.contains("*/*"))
}

async fn post(
    State(endpoint): State<Arc<Endpoint>>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let profile = match endpoint.admit(&slug, &headers) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            jsonrpc::INVALID_REQUEST,
            &format!("request body over {} bytes", endpoint.max_body_bytes),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > endpoint.max_body_bytes) {
        return too_large().into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(body, endpoint.max_body_bytes).await else {
        return too_large().into_response();
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let body = jsonrpc::error(Value::Null, jsonrpc::PARSE_ERROR, format!("parse error: {e}"));
            return json_response(StatusCode::BAD_REQUEST, &body, None);
        }
    };
    let message = match Message::classify(value) {
        Ok(m) => m,
        Err(e) => {
            let body = jsonrpc::error(Value::Null, jsonrpc::INVALID_REQUEST, format!("invalid request: {e}"));
            return json_response(StatusCode::BAD_REQUEST, &body, None);
        }
    };
    if let Message::Request { id, method, body } = &message
        && method == "initialize"
    {
        return initialize(&endpoint, profile, id.clone(), body).await;
    }
    let session = match endpoint.session(profile, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match message {
        Message::Request { id, method, body } => {
            request(session, id, method, body, accepts_event_stream(&headers)).await
        }
        Message::Notification { method, body } => {
            session.handle_notification(&method, body).await;
            StatusCode::ACCEPTED.into_response()
        }
        Message::Response { id, body } => {
            session.handle_response(&id, body).await;
            StatusCode::ACCEPTED.into_response()
        }
    }
}

async fn initialize(endpoint: &Endpoint, profile: ProfileId, id: Value, body: &Map<String, Value>) -> Response {
    let params = body.get("params").cloned().unwrap_or(Value::Null);
    let Some(asked) = params.get("protocolVersion").and_then(Value::as_str) else {
        let body = jsonrpc::error(id, jsonrpc::INVALID_PARAMS, "params.protocolVersion must be a string");
        return json_response(StatusCode::OK, &body, None);
    };
    let runtime = match endpoint.gateway.runtime(profile) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot load profile: {e}");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                jsonrpc::INTERNAL_ERROR,
                "storage unavailable",
            )
            .into_response();
        }
    };
    let capabilities = params.get("capabilities").cloned().unwrap_or_else(|| json!({}));
    let session = Session::new(runtime, negotiate_version(asked).to_owned(), capabilities);
    let result = session.initialize_result().await;
    endpoint.gateway.add_session(session.clone());
    tracing::info!(profile = %session.runtime.slug, session = %session.id, "client session started");
    json_response(StatusCode::OK, &jsonrpc::result(id, result), Some(&session.id))
}

/// Runs one client request. Its reply is JSON, unless something related to it comes first: then an event
/// stream that ends with the reply. Clients that cannot take a stream get related messages on their GET
/// stream instead.
async fn request(session: Arc<Session>, id: Value, method: String, body: Map<String, Value>, sse: bool) -> Response {
    let (related, mut related_rx) = mpsc::unbounded_channel::<Outbound>();
    let origin = Origin { related };
    let worker = session.clone();
    let mut reply = Box::pin(async move { worker.handle_request(id, &method, body, origin).await });
    let first = loop {
        tokio::select! {
            biased;
            Some(out) = related_rx.recv() => {
                let Some(message) = session.deliverable(out) else { continue };
                if sse {
                    break message;
                }
                session.push(message);
            }
            reply = &mut reply => {
                return match reply {
                    Reply::Message(reply) => json_response(StatusCode::OK, &reply, None),
                    Reply::Cancelled => {
                        let (events, events_rx) = mpsc::unbounded_channel();
                        tokio::spawn(linger(events));
                        sse_response(events_rx)
                    }
                };
            }
        }
    };
    let (events, events_rx) = mpsc::unbounded_channel::<Value>();
    let _ = events.send(first);
    let stream_session = session.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                Some(out) = related_rx.recv() => {
                    if let Some(message) = stream_session.deliverable(out)
                        && let Err(e) = events.send(message)
                    {
                        // The client closed the stream: what is still related goes to its GET stream.
                        stream_session.push(e.0);
                    }
                }
                reply = &mut reply => {
                    while let Ok(out) = related_rx.try_recv() {
                        if let Some(message) = stream_session.deliverable(out) {
                            let _ = events.send(message);
                        }
                    }
                    match reply {
                        Reply::Message(reply) => {
                            let _ = events.send(reply);
                        }
                        Reply::Cancelled => linger(events).await,
                    }
                    return;
                }
            }
        }
    });
    sse_response(events_rx)
}

/// How long the stream of a cancelled request stays open at most.
const CANCELLED_STREAM_LINGER: std::time::Duration = std::time::Duration::from_secs(300);

/// Keeps the stream of a cancelled request open, without a reply (none is due), until the client closes it.
/// Closing it first would read as "the stream ended without a response" to clients.
async fn linger(events: mpsc::UnboundedSender<Value>) {
    let _ = tokio::time::timeout(CANCELLED_STREAM_LINGER, events.closed()).await;
}

async fn open_stream(State(endpoint): State<Arc<Endpoint>>, Path(slug): Path<String>, headers: HeaderMap) -> Response {
    let profile = match endpoint.admit(&slug, &headers) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let session = match endpoint.session(profile, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if !accepts_event_stream(&headers) {
        return refuse(
            StatusCode::NOT_ACCEPTABLE,
            jsonrpc::INVALID_REQUEST,
            "the GET stream needs Accept: text/event-stream",
        )
        .into_response();
    }
    session.touch();
    sse_response(session.open_stream())
}

async fn end_session(State(endpoint): State<Arc<Endpoint>>, Path(slug): Path<String>, headers: HeaderMap) -> Response {
    let profile = match endpoint.admit(&slug, &headers) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let session = match endpoint.session(profile, &headers) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    endpoint.gateway.remove_session(&session.id);
    tracing::info!(profile = %session.runtime.slug, session = %session.id, "client session ended");
    StatusCode::OK.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_are_recognised() {
        for ok in [
            "http://localhost:3000",
            "http://127.0.0.1",
            "https://[::1]:8080",
            "http://127.8.9.1",
        ] {
            assert!(is_loopback_origin(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "null",
            "http://10.0.0.1",
        ] {
            assert!(!is_loopback_origin(bad), "{bad}");
        }
    }
}
