//! The mcp-filter hooks on the tool-call path, with the default `tool-filter` plugin through a real
//! gateway: a profile's denied tools are hidden from `tools/list` and refused on `tools/call`, secrets are
//! redacted from results, and a configuration change takes effect without a restart.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, TestGateway};
use serde_json::json;

/// Every tool name, following the gateway's cursors (a page holds one server's page).
async fn tool_names(client: &RawClient) -> Vec<String> {
    let mut names = Vec::new();
    let mut params = json!({});
    for page in 0..20 {
        let reply = client.call(json!(format!("list-{page}")), "tools/list", params).await;
        for tool in reply["result"]["tools"].as_array().unwrap() {
            names.push(tool["name"].as_str().unwrap().to_owned());
        }
        match reply["result"].get("nextCursor") {
            Some(cursor) => params = json!({ "cursor": cursor }),
            None => break,
        }
    }
    names
}

#[tokio::test]
async fn the_tool_filter_hides_refuses_and_redacts_on_the_live_path() {
    let gateway = TestGateway::start();
    let token = gateway.create_profile("team");
    gateway.add_echo("echo", None);
    gateway.add_echo("other", None);
    gateway.cli_ok(&["profile", "add-server", "team", "echo"]);
    gateway.cli_ok(&["profile", "add-server", "team", "other"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let all = tool_names(&client).await;
    assert_eq!(all, ["echo_echo", "other_echo"]);
    // Servers that do not paginate share one page: a client that never follows cursors sees them all.
    let first = client.call(json!("first"), "tools/list", json!({})).await;
    assert_eq!(first["result"]["tools"].as_array().unwrap().len(), 2, "{first}");
    assert!(first["result"].get("nextCursor").is_none(), "{first}");

    // Secret-looking strings in results are redacted by the default configuration.
    let secret = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    let reply = client
        .call(
            json!(2),
            "tools/call",
            json!({"name": "echo_echo", "arguments": {"message": format!("token {secret}")}}),
        )
        .await;
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(!text.contains(secret), "a secret passed through: {text}");
    assert!(text.contains("REDACTED"), "{text}");

    // Deny the other server's tools for this profile, while the gateway runs.
    gateway.cli_ok(&[
        "plugin",
        "config",
        "tool-filter",
        r#"{"profiles": {"team": {"deny": ["other/*"]}}}"#,
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names = tool_names(&client).await;
        if names == ["echo_echo"] {
            break;
        }
        assert!(Instant::now() < deadline, "the denied tool is still listed: {names:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refused = client
        .call(
            json!(4),
            "tools/call",
            json!({"name": "other_echo", "arguments": {"message": "hi"}}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32001, "{refused}");
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("tool-filter"),
        "{refused}"
    );
    let allowed = client
        .call(
            json!(5),
            "tools/call",
            json!({"name": "echo_echo", "arguments": {"message": "still here"}}),
        )
        .await;
    assert_eq!(allowed["result"]["content"][0]["text"], "still here", "{allowed}");
}
