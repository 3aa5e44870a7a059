//! Floor 2's endpoint: the least an MCP server over streamable HTTP can do. It parses no JSON: `initialize`
//! gets a fixed result and a fixed session id, notifications get 202, DELETE gets 200, and any other request
//! gets a fixed `tools/call` result into which the request's id and message are copied (found by a byte
//! search), so that the load generator's checks apply to it as to every other target.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The endpoint ends by itself after this long, whatever happens to the process that started it.
const LIFETIME: Duration = Duration::from_secs(30 * 60);

pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
        stdout.flush()?;
    }
    let accept = async {
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(handle))
                    .await;
            });
        }
    };
    tokio::select! {
        r = accept => r,
        _ = tokio::time::sleep(LIFETIME) => Ok(()),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The value after `"key":` (spaces allowed), up to the next `,` or `}`: the request id, verbatim.
fn raw_field<'a>(body: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = find(body, key)? + key.len();
    let rest = &body[at..];
    let start = rest.iter().position(|b| !b.is_ascii_whitespace() && *b != b':')?;
    let rest = &rest[start..];
    let end = rest.iter().position(|b| *b == b',' || *b == b'}')?;
    Some(rest[..end].trim_ascii())
}

/// The string after `"message":"`, up to the next quote (the load generator's messages need no escapes).
fn message(body: &[u8]) -> Option<&[u8]> {
    let key = b"\"message\":\"";
    let at = find(body, key)? + key.len();
    let end = body[at..].iter().position(|b| *b == b'"')?;
    Some(&body[at..at + end])
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::DELETE {
        return Ok(Response::new(Full::new(Bytes::new())));
    }
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(json(StatusCode::BAD_REQUEST, Vec::new())),
    };
    let Some(id) = raw_field(&body, b"\"id\"") else {
        let mut accepted = Response::new(Full::new(Bytes::new()));
        *accepted.status_mut() = StatusCode::ACCEPTED;
        return Ok(accepted);
    };
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id);
    if find(&body, b"\"initialize\"").is_some() {
        out.extend_from_slice(
            b",\"result\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{\"tools\":{}},\
              \"serverInfo\":{\"name\":\"canned\",\"version\":\"0\"}}}",
        );
        let mut response = json(StatusCode::OK, out);
        response
            .headers_mut()
            .insert("mcp-session-id", HeaderValue::from_static("canned-session"));
        return Ok(response);
    }
    out.extend_from_slice(b",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"");
    out.extend_from_slice(message(&body).unwrap_or(b"canned"));
    out.extend_from_slice(b"\"}],\"isError\":false}}");
    Ok(json(StatusCode::OK, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_without_parsing() {
        let body = br#"{"jsonrpc":"2.0","id":4294967297,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x-w0-n1"}}}"#;
        assert_eq!(raw_field(body, b"\"id\""), Some(&b"4294967297"[..]));
        assert_eq!(message(body), Some(&b"x-w0-n1"[..]));
        assert_eq!(
            raw_field(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, b"\"id\""),
            None
        );
        assert_eq!(raw_field(br#"{"id" : 7}"#, b"\"id\""), Some(&b"7"[..]));
    }
}
