//! An HTTP response as an MCP `CallToolResult`: JSON passed through as text, long text cut on a character
//! boundary with a marker, images as image content, other binaries described, `Link` surfaced for paging,
//! non-2xx an error result with the status (and, for 401/403, what to set or connect).

use base64::Engine;
use serde_json::{Value, json};

/// The most body read from an upstream.
pub const MAX_BODY: usize = 10 << 20;
/// The most text put in a result.
pub const MAX_TEXT: usize = 100 << 10;
/// The largest image returned as image content.
pub const MAX_IMAGE: usize = 1 << 20;

pub struct Response<'a> {
    pub status: u16,
    pub reason: &'a str,
    pub content_type: &'a str,
    pub link: Option<&'a str>,
    /// At most [`MAX_BODY`] bytes of it.
    pub body: &'a [u8],
    /// Its whole length, when more was sent than read.
    pub total: usize,
    /// For 401 and 403: what the operator or user should do.
    pub auth_hint: Option<String>,
}

pub fn result(response: &Response<'_>) -> Value {
    let ok = (200..300).contains(&response.status);
    let media = response
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mut content = Vec::new();
    if ok && media.starts_with("image/") && response.body.len() <= MAX_IMAGE && response.total == response.body.len() {
        content.push(json!({
            "type": "image",
            "data": base64::engine::general_purpose::STANDARD.encode(response.body),
            "mimeType": media,
        }));
    } else {
        let head = if ok {
            String::new()
        } else {
            format!("HTTP {} {}", response.status, response.reason)
        };
        let body = if response.body.is_empty() {
            String::new()
        } else if is_text(&media) || !ok {
            truncate(&String::from_utf8_lossy(response.body), response.total)
        } else {
            format!("binary response omitted: {media}, {} bytes", response.total)
        };
        let text = match (head.is_empty(), body.is_empty()) {
            (true, true) => format!("HTTP {}", response.status),
            (true, false) => body,
            (false, true) => head,
            (false, false) => format!("{head}\n{body}"),
        };
        let text = match (&response.auth_hint, response.status) {
            (Some(hint), 401 | 403) => format!("{text}\n{hint}"),
            _ => text,
        };
        content.push(json!({"type": "text", "text": text}));
    }
    if let Some(link) = response.link {
        content.push(json!({"type": "text", "text": format!("Link: {link}")}));
    }
    json!({"content": content, "isError": !ok})
}

fn is_text(media: &str) -> bool {
    media.is_empty()
        || media.starts_with("text/")
        || media.ends_with("json")
        || media.ends_with("+json")
        || media.ends_with("xml")
        || media == "application/x-www-form-urlencoded"
        || media == "application/javascript"
}

/// At most [`MAX_TEXT`] bytes, cut on a character boundary, with a marker saying how much was returned.
fn truncate(text: &str, total: usize) -> String {
    let total = total.max(text.len());
    if text.len() <= MAX_TEXT && total == text.len() {
        return text.to_owned();
    }
    let mut end = MAX_TEXT.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n…[truncated: returned {end} of {total} bytes]", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, content_type: &str, body: &[u8]) -> Value {
        result(&Response {
            status,
            reason: "Reason",
            content_type,
            link: None,
            body,
            total: body.len(),
            auth_hint: Some("set the credential".into()),
        })
    }

    #[test]
    fn json_passes_through_and_errors_carry_the_status() {
        let ok = response(200, "application/json; charset=utf-8", br#"{"a":1.50}"#);
        assert_eq!(ok["content"][0]["text"], r#"{"a":1.50}"#);
        assert_eq!(ok["isError"], false);
        let missing = response(404, "application/json", br#"{"error":"no"}"#);
        assert_eq!(missing["isError"], true);
        assert_eq!(missing["content"][0]["text"], "HTTP 404 Reason\n{\"error\":\"no\"}");
        let denied = response(401, "text/plain", b"");
        assert_eq!(denied["content"][0]["text"], "HTTP 401 Reason\nset the credential");
        assert_eq!(response(204, "", b"")["content"][0]["text"], "HTTP 204");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_with_a_marker() {
        let body = "é".repeat(MAX_TEXT);
        let text = response(200, "text/plain", body.as_bytes())["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            text.ends_with(&format!("…[truncated: returned {MAX_TEXT} of {} bytes]", 2 * MAX_TEXT)),
            "{}",
            &text[text.len() - 60..]
        );
    }

    #[test]
    fn images_binaries_and_links() {
        let image = response(200, "image/png", b"\x89PNG");
        assert_eq!(image["content"][0]["type"], "image");
        assert_eq!(image["content"][0]["mimeType"], "image/png");
        let binary = response(200, "application/pdf", b"%PDF");
        assert_eq!(
            binary["content"][0]["text"],
            "binary response omitted: application/pdf, 4 bytes"
        );
        let linked = result(&Response {
            status: 200,
            reason: "OK",
            content_type: "application/json",
            link: Some("<https://x/next>; rel=\"next\""),
            body: b"[]",
            total: 2,
            auth_hint: None,
        });
        assert_eq!(linked["content"][1]["text"], "Link: <https://x/next>; rel=\"next\"");
    }
}
