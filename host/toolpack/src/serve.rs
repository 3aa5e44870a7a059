//! The engine's MCP server on stdin/stdout: `initialize`, `ping`, `tools/list` and `tools/call`, each call one
//! HTTPS request through the jail's egress proxy (`HTTPS_PROXY`, trusting `SSL_CERT_FILE`), answered as a
//! tool result. Calls run concurrently; replies are written one JSON line each, in completion order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use gigmcp_catalog::egress;
use gigmcp_catalog::toolspec::SpecTool;

use crate::config::{EngineConfig, Settings};
use crate::request::{self, HttpRequest};
use crate::response::{self, MAX_BODY, Response};
use gigmcp_types::report::error_chain;

/// One call's whole time, redirects included.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REDIRECTS: usize = 5;

/// Reads the configuration at `config_path` and the environment, then serves until stdin closes.
pub fn run(config_path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(config_path).map_err(|e| format!("cannot read {config_path}: {e}"))?;
    let config: EngineConfig =
        serde_json::from_str(&text).map_err(|e| format!("{config_path} is not a toolpack configuration: {e}"))?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Arc::new(Settings::from_parts(config, &env));
    let client = client(&env)?;
    eprintln!(
        "gigmcp-toolpack {}: serving {}@{} ({} of {} tools)",
        env!("CARGO_PKG_VERSION"),
        settings.config.manifest.name,
        settings.config.manifest.version,
        settings.enabled.len(),
        settings.config.toolspec.tools.len()
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(serve(settings, client))
}

/// Through the proxy the jail names, trusting its CA; redirects are followed here, not by the client.
fn client(env: &HashMap<String, String>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(proxy) = env.get("HTTPS_PROXY").filter(|p| !p.is_empty()) {
        builder = builder.proxy(reqwest::Proxy::https(proxy).map_err(|e| format!("HTTPS_PROXY: {e}"))?);
    }
    if let Some(file) = env.get("SSL_CERT_FILE") {
        let pem = std::fs::read(file).map_err(|e| format!("cannot read SSL_CERT_FILE {file}: {e}"))?;
        for certificate in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("SSL_CERT_FILE: {e}"))? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

async fn serve(settings: Arc<Settings>, client: reqwest::Client) -> Result<(), String> {
    let (replies, mut outgoing) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(reply) = outgoing.recv().await {
            let mut line = serde_json::to_vec(&reply).unwrap_or_default();
            line.push(b'\n');
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(message) => message,
            Err(e) => {
                let _ = replies.send(error(Value::Null, -32700, &format!("parse error: {e}")));
                continue;
            }
        };
        let (Some(id), Some(method)) = (
            message.get("id").cloned(),
            message.get("method").and_then(Value::as_str),
        ) else {
            continue; // a notification or a response: nothing to answer
        };
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        match method {
            "tools/call" => {
                let (settings, client, replies) = (settings.clone(), client.clone(), replies.clone());
                tokio::spawn(async move {
                    let reply = match call(&settings, &client, &params).await {
                        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                        Err(message) => error(id, -32602, &message),
                    };
                    let _ = replies.send(reply);
                });
            }
            other => {
                let _ = replies.send(answer(&settings, id, other, &params));
            }
        }
    }
    drop(replies);
    let _ = writer.await;
    Ok(())
}

fn answer(settings: &Settings, id: Value, method: &str, params: &Value) -> Value {
    let result = match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
            let version = gigmcp_types::mcp::negotiate(asked);
            let manifest = &settings.config.manifest;
            json!({
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {
                    "name": format!("gigmcp-toolpack/{}", manifest.name),
                    "title": manifest.display_name,
                    "version": manifest.version,
                },
            })
        }
        "ping" => json!({}),
        "tools/list" => json!({"tools": enabled_tools(settings).map(crate::schema::mcp_tool).collect::<Vec<_>>()}),
        _ => return error(id, -32601, &format!("method not found: {method}")),
    };
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn enabled_tools(settings: &Settings) -> impl Iterator<Item = &SpecTool> {
    settings
        .config
        .toolspec
        .tools
        .iter()
        .filter(|t| settings.enabled.contains(&t.name))
}

/// A `tools/call`: a JSON-RPC error only for a tool that does not exist here; everything else, refusals
/// included, is a tool result (`isError` for failures), as MCP asks of tool execution errors.
async fn call(settings: &Settings, client: &reqwest::Client, params: &Value) -> Result<Value, String> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    let tool = enabled_tools(settings)
        .find(|t| t.name == name)
        .ok_or_else(|| format!("unknown tool: {name}"))?;
    let empty = serde_json::Map::new();
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(arguments)) => arguments,
        Some(_) => return Ok(failure("the arguments must be an object")),
    };
    let request = match request::build(settings, tool, arguments) {
        Ok(request) => request,
        Err(refusal) => return Ok(failure(&refusal)),
    };
    let host = url::Url::parse(&request.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let result = match tokio::time::timeout(CALL_TIMEOUT, execute(settings, client, request)).await {
        Ok(Ok(result)) => result,
        Ok(Err(reason)) => failure(&format!("request failed: {reason}")),
        Err(_) => failure(&format!(
            "request failed: no answer within {} s",
            CALL_TIMEOUT.as_secs()
        )),
    };
    // Never argument values, bodies or the placeholder: the tool, where, and how it went.
    eprintln!(
        "call {} {} {host}{} -> {}",
        tool.name,
        tool.method,
        tool.path,
        if result["isError"] == true { "error" } else { "ok" }
    );
    Ok(result)
}

fn failure(text: &str) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": true})
}

/// Sends the request, following at most 5 redirects to https URLs on the manifest's egress list (the
/// credential's header dropped when the host changes), and maps the answer.
async fn execute(settings: &Settings, client: &reqwest::Client, mut request: HttpRequest) -> Result<Value, String> {
    let egress = &settings.config.manifest.entitlements.egress;
    for _ in 0..=MAX_REDIRECTS {
        let response = send(client, &request).await?;
        let status = response.status();
        if status.is_redirection()
            && let Some(location) = response.headers().get(http::header::LOCATION)
        {
            let location = location
                .to_str()
                .map_err(|_| "a redirect with an unreadable Location".to_owned())?;
            let next = url::Url::parse(&request.url)
                .and_then(|current| current.join(location))
                .map_err(|_| format!("a redirect to an invalid URL {location:?}"))?;
            let host = next.host_str().unwrap_or("").to_owned();
            if next.scheme() != "https" || !egress::allows(egress, &host) {
                return Err(format!(
                    "the API redirected to {next}, which is not an https URL on this server's egress list; not followed"
                ));
            }
            let previous_host = url::Url::parse(&request.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned));
            if previous_host.as_deref() != Some(host.as_str()) {
                let auth: Vec<&str> = settings.config.auth.iter().map(|a| a.header.as_str()).collect();
                request
                    .headers
                    .retain(|(name, _)| !auth.iter().any(|a| a.eq_ignore_ascii_case(name)));
            }
            if status == http::StatusCode::SEE_OTHER
                || (matches!(status.as_u16(), 301 | 302) && request.method == "POST")
            {
                request.method = "GET".into();
                request.body = None;
            }
            request.url = next.to_string();
            continue;
        }
        return Ok(read(settings, response).await);
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

async fn send(client: &reqwest::Client, request: &HttpRequest) -> Result<reqwest::Response, String> {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut builder = client.request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    builder = match &request.body {
        Some(body) => builder
            .header(http::header::CONTENT_TYPE, body.content_type)
            .body(body.bytes.clone()),
        None if matches!(request.method.as_str(), "POST" | "PUT" | "PATCH") => {
            builder.header(http::header::CONTENT_LENGTH, "0")
        }
        None => builder,
    };
    builder.send().await.map_err(|e| error_chain(&e))
}

async fn read(settings: &Settings, response: reqwest::Response) -> Value {
    let status = response.status();
    let header = |name: http::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(http::header::CONTENT_TYPE).unwrap_or_default();
    let link = header(http::header::LINK);
    let declared: Option<usize> = header(http::header::CONTENT_LENGTH).and_then(|l| l.parse().ok());
    let mut body = Vec::new();
    let mut total = 0;
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        total += chunk.len();
        let room = MAX_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if total > MAX_BODY {
            total = declared.unwrap_or(total).max(total);
            break;
        }
    }
    response::result(&Response {
        status: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        content_type: &content_type,
        link: link.as_deref(),
        body: &body,
        total,
        auth_hint: auth_hint(settings),
    })
}

/// What to do about a 401 or 403: which credential to set, or which account to connect.
fn auth_hint(settings: &Settings) -> Option<String> {
    let credential = settings.config.manifest.credentials.first()?;
    Some(if credential.kind == "oauth2" {
        format!(
            "The API refused the {} account's token: reconnect the {} account, or check that the credential {} \
             of server {} is set.",
            credential.vendor, credential.vendor, credential.id, settings.server
        )
    } else {
        format!(
            "The API refused the credential {id}: check it, and set it again with `printf %s \"$SECRET\" | \
             gigmcp credential set {server} {id}`.",
            id = credential.id,
            server = settings.server
        )
    })
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}
