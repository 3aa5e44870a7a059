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
//! - The build has a gzip copy (`<file>.gz`, made by web/vite.config.ts) of every text file worth it; a client
//!   that accepts gzip gets that copy (`Content-Encoding: gzip`), compressed once at build time, never per request.

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
    let gzip = accepts_gzip(request.headers());
    if path != "/" && path != "/index.html" {
        let cache = if path.starts_with("/assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        if let Some(response) = build_file(&state.web, path, gzip, content_type(path), cache, head).await {
            return response;
        }
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
    let html = "text/html; charset=utf-8";
    match build_file(&state.web, "/index.html", gzip, html, "no-cache", head).await {
        Some(page) => page,
        None => file(
            "text/html; charset=utf-8",
            "no-cache",
            Bytes::from_static(NOT_BUILT.as_bytes()),
            head,
        ),
    }
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not with `q=0`).
fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// The build's file at `path` (`None`: the build has none): its gzip copy when there is one and the client
/// takes gzip, else the file itself; only the one sent is read. A file that has a copy says the answer
/// depends on `Accept-Encoding`.
async fn build_file(
    web: &WebFiles,
    path: &str,
    gzip: bool,
    content_type: &'static str,
    cache: &'static str,
    head: bool,
) -> Option<Response> {
    let copy = web.get(&format!("{path}.gz")).await;
    let has_copy = copy.is_some();
    let mut response = match copy.filter(|_| gzip) {
        Some(copy) => {
            let mut response = file(content_type, cache, copy, head);
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        None => file(content_type, cache, web.get(path).await?, head),
    };
    if has_copy {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    Some(response)
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
    fn gzip_is_taken_unless_refused() {
        let accepts = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("br;q=1.0, gzip;q=0.8"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&http::HeaderMap::new()));
    }

    #[tokio::test]
    async fn a_file_with_a_gzip_copy_is_served_compressed_to_who_takes_it() {
        static FILES: &[(&str, &[u8])] = &[
            ("/assets/app-1.js", b"console.log(1)"),
            ("/assets/app-1.js.gz", b"\x1f\x8bcompressed"),
            ("/assets/small-1.js", b"1"),
        ];
        let web = WebFiles::Embedded(FILES);
        let js = content_type("/assets/app-1.js");
        let served = |path, gzip| build_file(&web, path, gzip, js, "no-cache", false);
        let gz = served("/assets/app-1.js", true).await.unwrap();
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz.headers()[header::VARY], "accept-encoding");
        assert_eq!(gz.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        let body = axum::body::to_bytes(gz.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"\x1f\x8bcompressed");
        let identity = served("/assets/app-1.js", false).await.unwrap();
        assert!(identity.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(identity.headers()[header::VARY], "accept-encoding");
        let body = axum::body::to_bytes(identity.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"console.log(1)");
        // Without a copy: as it is, not varying.
        let small = served("/assets/small-1.js", true).await.unwrap();
        assert!(small.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(small.headers().get(header::VARY).is_none());
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
