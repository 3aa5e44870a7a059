//! The dashboard: the single-page app built from `web/` served on the gateway's own listener, at every path
//! outside `/api`, `/mcp` and `/auth`.
//!
//! Rules (docs/DESIGN.md, "The dashboard"):
//! - A file of the build is served as it is; content-hashed files under `/assets/` are cached for a year
//!   (`immutable`), everything else must be revalidated (`no-cache`).
//! - Any other `GET` that asks for HTML gets `index.html`: the app routes `/profiles/<slug>` itself, so a
//!   shared link works.
//! - Every HTML response carries a strict Content-Security-Policy: scripts, styles and connections from this
//!   origin only, no inline code, no framing. The build has no inline script or style, so nothing is relaxed.
//! - A binary built without the dashboard (no Node on the build machine) serves a page saying how to build it.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};

use crate::{ApiError, ControlState};

/// The policy on every HTML response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// Where the dashboard's files come from.
#[derive(Clone, Debug)]
pub enum WebFiles {
    /// Compiled into the binary (`gigmcp_dashboard::FILES`), sorted by URL path.
    Embedded(&'static [(&'static str, &'static [u8])]),
    /// Read from a directory at every request (`GIG_WEB_DIR`: working on the dashboard without rebuilding
    /// the gateway).
    Directory(PathBuf),
}

impl WebFiles {
    /// The file at a URL path (`/index.html`, `/assets/index-1a2b.js`), if the build has it.
    async fn get(&self, path: &str) -> Option<Bytes> {
        if !servable(path) {
            return None;
        }
        match self {
            WebFiles::Embedded(files) => files
                .binary_search_by(|(name, _)| (*name).cmp(path))
                .ok()
                .map(|i| Bytes::from_static(files[i].1)),
            WebFiles::Directory(dir) => {
                let file = dir.join(path.trim_start_matches('/'));
                // A directory, a missing file or an unreadable one: not a file of the build.
                tokio::fs::read(file).await.ok().map(Bytes::from)
            }
        }
    }
}

/// A path the dashboard may serve: `/`-separated names of `A-Z a-z 0-9 . _ -` that do not start with a dot,
/// so no `..`, no hidden file and nothing a file system could read as something else.
fn servable(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    rest.split('/').all(|part| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// Paths the dashboard never answers for with a page: an unknown API, MCP or login path is a JSON 404.
fn reserved(path: &str) -> bool {
    ["/api", "/mcp", "/auth"]
        .iter()
        .any(|prefix| path == *prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')))
}

/// The router's fallback: every request no route of the API, MCP or login matched.
pub async fn serve(State(state): State<Arc<ControlState>>, request: Request) -> Response {
    let path = request.uri().path();
    if reserved(path) {
        return ApiError::not_found(format!(
            "no route for {path}; the API's routes are in /api/openapi.json"
        ))
        .into_response();
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on the dashboard's pages", request.method()),
        )
        .into_response();
    }
    let head = request.method() == Method::HEAD;
    if path != "/"
        && path != "/index.html"
        && let Some(body) = state.web.get(path).await
    {
        let cache = if path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return file(content_type(path), cache, body, head);
    }
    if path.starts_with("/assets/") || !wants_html(request.headers()) {
        return (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            "not found\n",
        )
            .into_response();
    }
    match state.web.get("/index.html").await {
        Some(body) => file("text/html; charset=utf-8", "no-cache", body, head),
        None => file(
            "text/html; charset=utf-8",
            "no-cache",
            Bytes::from_static(NOT_BUILT.as_bytes()),
            head,
        ),
    }
}

/// Whether a request is a page load (a browser asks for `text/html`), not a script's fetch of a missing file.
fn wants_html(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"))
}

fn file(content_type: &'static str, cache: &'static str, body: Bytes, head: bool) -> Response {
    let mut response = if head {
        let length = body.len();
        let mut response = ().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        response
    } else {
        body.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The page of a binary built without the dashboard.
const NOT_BUILT: &str = "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Gig'MCP: dashboard not built</title></head>
<body>
<h1>Gig'MCP</h1>
<p>This gateway was built without its dashboard (building it needs Node.js 20.19 or newer).</p>
<p>Build it and then the gateway: <code>make web</code>, then <code>cargo build -p gigmcp</code>
(<code>make run</code> does both).</p>
<p>Everything the dashboard does is also in the REST API (<a href=\"/api/openapi.json\">/api/openapi.json</a>)
and in the <code>gigmcp</code> command.</p>
</body>
</html>
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_servable() {
        assert!(servable("/index.html"));
        assert!(servable("/assets/index-Bx1_a.js"));
        for path in [
            "",
            "index.html",
            "/",
            "/assets/",
            "/../etc/passwd",
            "/assets/../../x",
            "/.env",
            "/assets//x.js",
            "/a%2e%2e/x",
            "/a\\b",
        ] {
            assert!(!servable(path), "{path:?} must not be servable");
        }
    }

    #[test]
    fn api_mcp_and_auth_paths_are_reserved() {
        for path in ["/api", "/api/x", "/mcp/p/demo", "/auth", "/auth/login"] {
            assert!(reserved(path), "{path}");
        }
        for path in ["/", "/apis", "/profiles/api", "/authors", "/mcpx"] {
            assert!(!reserved(path), "{path}");
        }
    }
}
