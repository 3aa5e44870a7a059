//! The mcp-filter hooks on the tool-call path, with the default `tool-filter` plugin through a real
//! gateway: a profile's denied tools are hidden from `tools/list` and refused on `tools/call`, secrets are
//! redacted from results, and a configuration change takes effect without a restart.

use std::time::{Duration, Instant};

use gigmcp_testkit::{RawClient, TestGateway};
use serde_json::json;

use crate::audit_until;

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

/// A gateway with profile `team` serving two echo servers, `echo` and `other`; returns it and the token.
fn team_of_two_echo_servers() -> (TestGateway, String) {
    let gateway = TestGateway::start();
    let token = gateway.create_profile("team");
    gateway.add_echo("echo", None);
    gateway.add_echo("other", None);
    gateway.cli_ok(&["profile", "add-server", "team", "echo"]);
    gateway.cli_ok(&["profile", "add-server", "team", "other"]);
    (gateway, token)
}

#[tokio::test]
async fn the_tool_filter_hides_refuses_and_redacts_on_the_live_path() {
    let (gateway, token) = team_of_two_echo_servers();
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

/// A tool a policy plugin hides from the lists is unknown to a client that lists after the policy applies;
/// calling it anyway is audited as a denial naming that plugin (not as a plain error), and `decision=deny`
/// finds it.
#[tokio::test]
async fn a_call_to_a_tool_a_plugin_hides_is_audited_as_its_denial() {
    let (mut gateway, token) = team_of_two_echo_servers();
    gateway.cli_ok(&[
        "plugin",
        "config",
        "tool-filter",
        r#"{"profiles": {"team": {"deny": ["other/*"]}}}"#,
    ]);
    // A restart loads the configuration before anything is served, so the profile's routing table never
    // learned the tool: a client that lists finds it hidden from the start.
    gateway.restart();
    let mut client = RawClient::new(gateway.url("team"), token.clone());
    client.initialize().await;
    assert_eq!(tool_names(&client).await, ["echo_echo"]);
    let reply = client
        .call(
            json!("hidden"),
            "tools/call",
            json!({"name": "other_echo", "arguments": {"message": "hi"}}),
        )
        .await;
    // The client learns nothing about the hidden tool: it is unknown, as a tool that does not exist.
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(
        reply["error"]["message"].as_str().unwrap().contains("unknown tool"),
        "{reply}"
    );

    let filter = gigmcp_store::audit::AuditFilter {
        kind: Some("mcp.tool_call".into()),
        decision: Some(gigmcp_types::audit::Outcome::Deny),
        ..Default::default()
    };
    let denials = audit_until(&gateway, &filter, |events| !events.is_empty());
    let denial = denials
        .iter()
        .find(|e| e.detail["tool"] == "other_echo")
        .unwrap_or_else(|| panic!("the hidden tool's call is not audited as a denial: {denials:?}"));
    assert_eq!(denial.detail["plugin"], "tool-filter", "{denial:?}");
    assert_eq!(denial.detail["code"], "hidden-by-policy", "{denial:?}");
    assert_eq!(denial.server.as_deref(), Some("other"), "{denial:?}");
}
