//! `gigmcp mcp-echo`: a built-in stdio MCP server with one tool, `echo`, that returns its `message`.
//!
//! It is the demo server and the benchmark's upstream, so it is small and synchronous: one line in, one
//! line out, no async runtime to start (it starts in a sandbox on a client's first request).

use std::io::{BufRead, Write};

use serde_json::{Value, json};

pub fn run() -> std::io::Result<()> {
    // What a server's log shows of it (stderr is the MCP stdio transport's place for logs).
    eprintln!(
        "gigmcp-echo {}: ready, one JSON-RPC message per line on stdin",
        env!("CARGO_PKG_VERSION")
    );
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    let mut line = String::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(reply) = handle_line(&line) {
            serde_json::to_writer(&mut stdout, &reply)?;
            stdout.write_all(b"\n")?;
            stdout.flush()?;
        }
    }
}

/// The reply to one JSON-RPC line, if it needs one.
pub fn handle_line(line: &str) -> Option<Value> {
    let message: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return Some(error(Value::Null, -32700, &format!("parse error: {e}"))),
    };
    let id = message.get("id").cloned();
    let method = message.get("method").and_then(Value::as_str);
    let (Some(id), Some(method)) = (id, method) else {
        return None; // a notification or a response: nothing to answer
    };
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    let result = match method {
        "initialize" => {
            let asked = params.get("protocolVersion").and_then(Value::as_str).unwrap_or("");
            let version = gigmcp_types::mcp::negotiate(asked);
            json!({
                "protocolVersion": version,
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "gigmcp-echo", "version": env!("CARGO_PKG_VERSION")},
            })
        }
        "ping" => json!({}),
        "tools/list" => json!({"tools": [{
            "name": "echo",
            "description": "Returns the message it is given.",
            "inputSchema": {
                "type": "object",
                "properties": {"message": {"type": "string", "description": "The text to return."}},
                "required": ["message"],
            },
        }]}),
        "tools/call" => match call_echo(&params) {
            Ok(result) => result,
            Err(message) => return Some(error(id, -32602, &message)),
        },
        _ => return Some(error(id, -32601, &format!("method not found: {method}"))),
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn call_echo(params: &Value) -> Result<Value, String> {
    let name = params.get("name").and_then(Value::as_str).unwrap_or("");
    if name != "echo" {
        return Err(format!("unknown tool: {name}"));
    }
    let message = params
        .get("arguments")
        .and_then(|a| a.get("message"))
        .and_then(Value::as_str)
        .ok_or("echo needs a string argument \"message\"")?;
    Ok(json!({"content": [{"type": "text", "text": message}], "isError": false}))
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_returns_its_message() {
        let reply = handle_line(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}"#,
        )
        .unwrap();
        assert_eq!(reply["id"], 7);
        assert_eq!(reply["result"]["content"][0]["text"], "hi");
    }

    #[test]
    fn bad_input_gets_errors_and_notifications_get_nothing() {
        assert_eq!(handle_line("{nope").unwrap()["error"]["code"], -32700);
        assert_eq!(
            handle_line(r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#).unwrap()["error"]["code"],
            -32601
        );
        assert_eq!(
            handle_line(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#).unwrap()["error"]
                ["code"],
            -32602
        );
        assert!(handle_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_none());
    }

    #[test]
    fn initialize_negotiates_the_version() {
        let reply =
            handle_line(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#)
                .unwrap();
        assert_eq!(reply["result"]["protocolVersion"], "2025-06-18");
        let reply =
            handle_line(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"1999"}}"#)
                .unwrap();
        assert_eq!(reply["result"]["protocolVersion"], "2025-11-25");
    }
}
