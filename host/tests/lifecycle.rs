//! Sandbox lifecycle: nothing outlives the gateway, the sandbox cap is a clear error.

mod common;

use std::time::{Duration, Instant};

use common::{RawClient, TestGateway};
use serde_json::json;

#[tokio::test]
async fn no_sandbox_process_survives_kill_9_of_the_gateway() {
    let mut gateway = TestGateway::start();
    let token = gateway.create_profile("team");
    gateway.add_echo("one", None);
    common::add_probe(&gateway, "probe");
    gateway.cli_ok(&["profile", "add-server", "team", "one"]);
    gateway.cli_ok(&["profile", "add-server", "team", "probe"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let running = gateway.sandbox_processes();
    assert!(running.len() >= 2, "sandboxes not running: {running:?}");
    gateway.kill9();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = gateway.sandbox_processes();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sandbox processes survived the gateway: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_sandbox_cap_is_a_clear_error_and_the_rest_keeps_working() {
    let gateway = TestGateway::start_with(&[("GIG_MAX_SANDBOXES", "1")]);
    let token = gateway.create_profile("team");
    gateway.add_echo("one", None);
    gateway.add_echo("two", None);
    gateway.cli_ok(&["profile", "add-server", "team", "one"]);
    gateway.cli_ok(&["profile", "add-server", "team", "two"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let mut outcomes = Vec::new();
    for (id, tool) in ["one_echo", "two_echo"].iter().enumerate() {
        let reply = client
            .call(
                json!(id),
                "tools/call",
                json!({"name": tool, "arguments": {"message": "hi"}}),
            )
            .await;
        outcomes.push(reply);
    }
    let served = outcomes
        .iter()
        .filter(|r| r["result"]["content"][0]["text"] == "hi")
        .count();
    assert_eq!(served, 1, "{outcomes:?}");
    let refused = outcomes
        .iter()
        .find(|r| r.get("error").is_some())
        .expect("one server could not start");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains("GIG_MAX_SANDBOXES"), "{message}");
}
