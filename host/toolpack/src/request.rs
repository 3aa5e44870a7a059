//! A tool call as one HTTP request: arguments checked against the params' types before anything is sent,
//! then the URL (path placeholders, query), headers and body built exactly as documented in
//! docs/catalog.md ("The toolpack engine").

use serde_json::{Map, Value};

use gigmcp_catalog::toolspec::{SpecTool, ToolSpec, is_reserved_header};

use crate::config::Settings;
use crate::schema::properties;

/// What to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// `https://host/path?query`.
    pub url: String,
    /// In order; the credential's header last.
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Why a call was refused before any request: the text of an `isError` result.
pub type Refusal = String;

/// The base URL of a tool: its own, else the per-install one, else the toolspec's. A per-install base URL also
/// replaces a tool's own when that names the toolspec's host.
pub fn base_url<'a>(spec: &'a ToolSpec, tool: &'a SpecTool, install: Option<&'a str>) -> &'a str {
    match (tool.base_url.as_str(), install) {
        ("", Some(install)) => install,
        ("", None) => &spec.base_url,
        (own, Some(install)) if own == spec.base_url => install,
        (own, _) => own,
    }
}

/// Host names that only stand for a tenant's own host (`yourcompany.zendesk.com`, `myorg.my.salesforce.com`):
/// a tool that would call one needs a `--base-url`.
pub fn is_placeholder_host(host: &str) -> bool {
    let first = host.split('.').next().unwrap_or("");
    first.starts_with("your") || matches!(first, "myorg" | "instance" | "institution" | "account" | "org")
}

pub fn build(settings: &Settings, tool: &SpecTool, arguments: &Map<String, Value>) -> Result<HttpRequest, Refusal> {
    let config = &settings.config;
    let properties = properties(tool);
    // Unknown arguments, missing required ones and wrong types, all before any request.
    for name in arguments.keys() {
        if !properties.iter().any(|p| p.name == *name) {
            let known: Vec<&str> = properties.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "unknown argument {name:?}; this tool takes: {}",
                known.join(", ")
            ));
        }
    }
    let mut values = Vec::new();
    for property in &properties {
        match arguments.get(&property.name).filter(|v| !v.is_null()) {
            Some(value) => {
                check_type(&property.param.kind, value)
                    .map_err(|expected| format!("argument {:?} must be {expected}", property.name))?;
                values.push((property.param, value));
            }
            None if property.param.required => {
                return Err(format!("argument {:?} is required", property.name));
            }
            None => {}
        }
    }

    let base = base_url(&config.toolspec, tool, config.base_url.as_deref());
    let host = base.strip_prefix("https://").unwrap_or(base);
    if config.base_url.is_none() && is_placeholder_host(host) {
        return Err(format!(
            "{host} only stands for your own tenant's host: install the server with --base-url \
             https://<your host> (gigmcp server add {} --catalog {} --base-url …)",
            settings.server, config.manifest.name
        ));
    }
    let mut path = String::new();
    let mut rest = tool.path.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        path.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        let value = values
            .iter()
            .find(|(p, _)| p.location == "path" && p.name == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("argument {name:?} is required"))?;
        path.push_str(&path_value(name, value)?);
        rest = &rest[close + 1..];
    }
    path.push_str(rest);

    let query: Vec<(String, String)> = form_pairs(values.iter().filter(|(p, _)| p.location == "query"));
    let mut url = format!("{base}{path}");
    if !query.is_empty() {
        url.push('?');
        url.push_str(&encode_form(&query));
    }

    let mut headers = vec![
        ("Accept".to_owned(), "application/json".to_owned()),
        (
            "User-Agent".to_owned(),
            format!("gigmcp-toolpack/{}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    for (param, value) in values.iter().filter(|(p, _)| p.location == "header") {
        if is_reserved_header(&param.name) || config.auth.iter().any(|a| a.header.eq_ignore_ascii_case(&param.name)) {
            return Err(format!(
                "argument {:?} may not set the header {}",
                param.name, param.name
            ));
        }
        let text = match value {
            Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(", "),
            other => scalar_text(other),
        };
        if text.chars().any(|c| c.is_control()) {
            return Err(format!(
                "argument {:?} holds a control character a header cannot carry",
                param.name
            ));
        }
        headers.push((param.name.clone(), text));
    }

    let body_params: Vec<_> = values.iter().filter(|(p, _)| p.location == "body").collect();
    let declares_body = tool.params.iter().any(|p| p.location == "body");
    let body = if declares_body {
        Some(if tool.encoding == "form" {
            Body {
                content_type: "application/x-www-form-urlencoded",
                bytes: encode_form(&form_pairs(body_params.into_iter())).into_bytes(),
            }
        } else {
            let mut object = Map::new();
            for (param, value) in body_params {
                object.insert(param.name.clone(), (*value).clone());
            }
            Body {
                content_type: "application/json",
                bytes: serde_json::to_vec(&object).unwrap_or_default(),
            }
        })
    } else {
        None
    };

    for auth in &config.auth {
        let Some(placeholder) = settings.placeholders.get(&auth.id) else {
            return Err(format!(
                "the credential {id} of server {server} is not set: an operator sets it with \
                 `printf %s \"$SECRET\" | gigmcp credential set {server} {id}`",
                id = auth.id,
                server = settings.server
            ));
        };
        headers.push((auth.header.clone(), auth.format.replace("{token}", placeholder)));
    }

    Ok(HttpRequest {
        method: tool.method.clone(),
        url,
        headers,
        body,
    })
}

/// `None` when the value has the param's type, else what was expected.
fn check_type(kind: &str, value: &Value) -> Result<(), &'static str> {
    let ok = match kind {
        "string" => value.is_string(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "true or false",
        "object" => "an object",
        _ => "an array",
    })
}

/// A path value: strings percent-encoded as a path segment, except that `/` is kept when no segment is empty,
/// `.` or `..` (values like `properties/1234` name sub-resources; traversal to other endpoints is refused).
fn path_value(name: &str, value: &Value) -> Result<String, Refusal> {
    let text = scalar_text(value);
    if text.is_empty() {
        return Err(format!("argument {name:?} may not be empty (it is part of the path)"));
    }
    let segments: Vec<&str> = text.split('/').collect();
    if segments.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return Err(format!(
            "argument {name:?} may not contain an empty, `.` or `..` path segment (it is part of the path)"
        ));
    }
    Ok(segments.iter().map(|s| encode_segment(s)).collect::<Vec<_>>().join("/"))
}

/// RFC 3986 path-segment encoding: everything but `A-Za-z0-9-._~!$&'()*+,;=:@` becomes `%XX`.
fn encode_segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Strings as they are, booleans `true`/`false`, numbers in decimal, objects and arrays as compact JSON.
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Query or form pairs: arrays repeat their key (elements as scalars, objects as JSON), sorted by key (stable
/// for repeated keys) as Go's `url.Values.Encode` does.
fn form_pairs<'a>(
    values: impl Iterator<Item = &'a (&'a gigmcp_catalog::toolspec::SpecParam, &'a Value)>,
) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (param, value) in values {
        match value {
            Value::Array(items) => pairs.extend(items.iter().map(|item| (param.name.clone(), scalar_text(item)))),
            other => pairs.push((param.name.clone(), scalar_text(other))),
        }
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
}

/// `application/x-www-form-urlencoded`: space as `+`, everything but `A-Za-z0-9-._~` (and `*`) percent-encoded.
fn encode_form(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{AuthHeader, EngineConfig};
    use serde_json::json;

    fn settings(tools: Vec<SpecTool>, base_url: Option<&str>) -> Settings {
        let config = EngineConfig {
            manifest: gigmcp_catalog::Manifest {
                name: "demo".into(),
                ..Default::default()
            },
            toolspec: ToolSpec {
                base_url: "https://api.toolpack.test".into(),
                tools,
                ..Default::default()
            },
            base_url: base_url.map(str::to_owned),
            auth: vec![AuthHeader {
                id: "key".into(),
                header: "Authorization".into(),
                format: "Basic {token}".into(),
                env: "KEY_TOKEN".into(),
            }],
        };
        let env: HashMap<String, String> = [("KEY_TOKEN".to_owned(), "gigph_x".to_owned())].into();
        Settings::from_parts(config, &env)
    }

    fn history() -> SpecTool {
        SpecTool {
            name: "get_channel_history".into(),
            description: "History.".into(),
            method: "GET".into(),
            path: "/channels/{channel}/messages".into(),
            params: vec![
                crate::test_param("channel", "path", "string", true),
                crate::test_param("limit", "query", "integer", false),
                crate::test_param("direction", "query", "string", false),
            ],
            ..Default::default()
        }
    }

    fn call(settings: &Settings, tool: &SpecTool, args: Value) -> Result<HttpRequest, Refusal> {
        build(settings, tool, args.as_object().unwrap())
    }

    #[test]
    fn a_get_has_the_exact_path_sorted_query_and_credential_header() {
        let tool = history();
        let s = settings(vec![tool.clone()], None);
        let request = call(
            &s,
            &tool,
            json!({"channel": "a b", "limit": 5, "direction": "forwards"}),
        )
        .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.url,
            "https://api.toolpack.test/channels/a%20b/messages?direction=forwards&limit=5"
        );
        assert_eq!(request.body, None);
        assert_eq!(request.headers[0], ("Accept".into(), "application/json".into()));
        assert!(request.headers[1].1.starts_with("gigmcp-toolpack/"));
        assert_eq!(request.headers[2], ("Authorization".into(), "Basic gigph_x".into()));
    }

    #[test]
    fn path_values_keep_segments_and_refuse_traversal() {
        let tool = history();
        let s = settings(vec![tool.clone()], None);
        let url = |channel: &str| call(&s, &tool, json!({"channel": channel})).map(|r| r.url);
        assert_eq!(
            url("properties/1234").unwrap(),
            "https://api.toolpack.test/channels/properties/1234/messages"
        );
        assert_eq!(
            url("a%?#b").unwrap(),
            "https://api.toolpack.test/channels/a%25%3F%23b/messages"
        );
        for bad in ["a/../b", "..", "a//b", "", "./x"] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arguments_are_checked_before_anything_is_sent() {
        let tool = history();
        let s = settings(vec![tool.clone()], None);
        for (args, needle) in [
            (json!({"channel": "x", "nope": 1}), "unknown argument \"nope\""),
            (json!({"limit": 5}), "argument \"channel\" is required"),
            (json!({"channel": "x", "limit": 5.5}), "\"limit\" must be an integer"),
            (json!({"channel": "x", "limit": "5"}), "\"limit\" must be an integer"),
            (json!({"channel": 7}), "\"channel\" must be a string"),
        ] {
            let error = call(&s, &tool, args).unwrap_err();
            assert!(error.contains(needle), "{needle}: {error}");
        }
        assert!(
            call(&s, &tool, json!({"channel": "x", "limit": null})).is_ok(),
            "null is absent"
        );
    }

    #[test]
    fn json_bodies_follow_the_params_and_omit_absent_ones() {
        let tool = SpecTool {
            name: "publish".into(),
            method: "POST".into(),
            path: "/channels/{channel}/messages".into(),
            params: vec![
                crate::test_param("channel", "path", "string", true),
                crate::test_param("name", "body", "string", false),
                crate::test_param("data", "body", "string", false),
            ],
            ..Default::default()
        };
        let s = settings(vec![tool.clone()], None);
        let request = call(&s, &tool, json!({"channel": "x", "data": "d", "name": "e"})).unwrap();
        let body = request.body.unwrap();
        assert_eq!(body.content_type, "application/json");
        assert_eq!(String::from_utf8(body.bytes).unwrap(), r#"{"name":"e","data":"d"}"#);
        let request = call(&s, &tool, json!({"channel": "x"})).unwrap();
        assert_eq!(request.body.unwrap().bytes, b"{}");
    }

    #[test]
    fn forms_arrays_objects_and_headers() {
        let tool = SpecTool {
            name: "create".into(),
            method: "POST".into(),
            path: "/tasks".into(),
            encoding: "form".into(),
            params: vec![
                crate::test_param("title", "body", "string", true),
                crate::test_param("labels", "body", "array", false),
                crate::test_param("meta", "body", "object", false),
                crate::test_param("estimate", "body", "number", false),
                crate::test_param("done", "body", "boolean", false),
                crate::test_param("X-Workspace-Id", "header", "string", false),
                crate::test_param("status", "query", "array", false),
            ],
            ..Default::default()
        };
        let s = settings(vec![tool.clone()], None);
        let request = call(
            &s,
            &tool,
            json!({"title": "a b&c", "labels": ["x", "y"], "meta": {"k": 1}, "estimate": 1.5, "done": true,
                   "X-Workspace-Id": "w1", "status": ["open", "done"]}),
        )
        .unwrap();
        assert_eq!(request.url, "https://api.toolpack.test/tasks?status=open&status=done");
        let body = request.body.unwrap();
        assert_eq!(body.content_type, "application/x-www-form-urlencoded");
        assert_eq!(
            String::from_utf8(body.bytes).unwrap(),
            "done=true&estimate=1.5&labels=x&labels=y&meta=%7B%22k%22%3A1%7D&title=a+b%26c"
        );
        assert!(request.headers.contains(&("X-Workspace-Id".into(), "w1".into())));
    }

    #[test]
    fn sanitized_names_are_sent_under_their_wire_names() {
        let tool = SpecTool {
            name: "list".into(),
            method: "GET".into(),
            path: "/tasks".into(),
            params: vec![
                crate::test_param("filters[search]", "query", "string", false),
                crate::test_param("on", "query", "string", false),
            ],
            ..Default::default()
        };
        let s = settings(vec![tool.clone()], None);
        let request = call(&s, &tool, json!({"filters_search": "x y", "on": "2026-01-01"})).unwrap();
        assert_eq!(
            request.url,
            "https://api.toolpack.test/tasks?filters%5Bsearch%5D=x+y&on=2026-01-01"
        );
    }

    #[test]
    fn placeholder_hosts_need_a_base_url_which_then_replaces_the_specs() {
        let mut tool = history();
        tool.params.truncate(1);
        let mut s = settings(vec![tool.clone()], None);
        s.config.toolspec.base_url = "https://yourcompany.helpdesk.test".into();
        let error = call(&s, &tool, json!({"channel": "x"})).unwrap_err();
        assert!(error.contains("--base-url"), "{error}");
        s.config.base_url = Some("https://acme.helpdesk.test".into());
        let request = call(&s, &tool, json!({"channel": "x"})).unwrap();
        assert_eq!(request.url, "https://acme.helpdesk.test/channels/x/messages");
    }

    #[test]
    fn a_missing_credential_is_named_with_how_to_set_it() {
        let tool = history();
        let mut s = settings(vec![tool.clone()], None);
        s.placeholders.clear();
        let error = call(&s, &tool, json!({"channel": "x"})).unwrap_err();
        assert!(error.contains("gigmcp credential set demo key"), "{error}");
    }
}
