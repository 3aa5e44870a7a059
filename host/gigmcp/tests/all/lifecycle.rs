//! Sandbox lifecycle: nothing outlives the gateway, the sandbox cap is a clear error.

use std::time::{Duration, Instant};

use gigmcp_testkit::{RawClient, TestGateway};
use serde_json::json;

#[tokio::test]
async fn no_sandbox_process_survives_kill_9_of_the_gateway() {
    let mut gateway = TestGateway::start();
    let token = gateway.create_profile("team");
    gateway.add_echo("one", None);
    gigmcp_testkit::add_probe(&gateway, "probe");
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
    // The crash left its firewall table (and perhaps cgroups) behind: a new start clears them and serves.
    let table = format!("gigmcp_{}", gateway.setting("GIG_INSTANCE").unwrap());
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&tables.stdout).contains(&table),
        "no leftover to clear"
    );
    gateway.restart();
    client.url = gateway.url("team");
    client.initialize().await;
    let reply = client
        .call(
            json!(1),
            "tools/call",
            json!({"name": "one_echo", "arguments": {"message": "again"}}),
        )
        .await;
    assert_eq!(reply["result"]["content"][0]["text"], "again", "{reply}");
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let count = String::from_utf8_lossy(&tables.stdout)
        .matches(&format!("{table}\n"))
        .count();
    assert_eq!(count, 1, "the firewall table was duplicated");
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

#[tokio::test]
async fn idle_servers_are_stopped_and_start_again_on_next_use() {
    let gateway = TestGateway::start_with(&[("GIG_IDLE_TIMEOUT", "2")]);
    let token = gateway.create_profile("team");
    gateway.add_echo("echo", None);
    gateway.cli_ok(&["profile", "add-server", "team", "echo"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    assert!(!gateway.sandbox_processes().is_empty());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !gateway.sandbox_processes().is_empty() {
        assert!(Instant::now() < deadline, "the idle server was not stopped");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reply = client
        .call(
            json!(1),
            "tools/call",
            json!({"name": "echo_echo", "arguments": {"message": "back"}}),
        )
        .await;
    assert_eq!(reply["result"]["content"][0]["text"], "back", "{reply}");
    assert!(gateway.log().contains("stopped an idle server"));
}

#[tokio::test]
async fn a_crashed_server_is_hidden_restarted_with_backoff_and_reported() {
    let gateway = TestGateway::start();
    let token = gateway.create_profile("team");
    gigmcp_testkit::add_probe(&gateway, "probe");
    gateway.cli_ok(&["profile", "add-server", "team", "probe"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let mut stream = client.open_stream().await;
    let crash = json!({"name": "probe_crash", "arguments": {}});
    let state = json!({"name": "probe_state", "arguments": {}});
    for round in 0..3 {
        let reply = client.call(json!(round * 2), "tools/call", crash.clone()).await;
        assert!(reply.get("error").is_some(), "the crash call got a result: {reply}");
        // Hidden while down, then back: clients hear of both.
        for when in ["down", "back"] {
            let note = gigmcp_testkit::next_with_method(
                &mut stream,
                "notifications/tools/list_changed",
                Duration::from_secs(20),
            )
            .await;
            assert!(
                note.is_some(),
                "no list_changed when the server went {when} (round {round})"
            );
        }
        let reply = client.call(json!(round * 2 + 1), "tools/call", state.clone()).await;
        assert!(reply.get("result").is_some(), "the server did not come back: {reply}");
    }
    let log = gateway.log();
    assert!(log.contains("keeps crashing (3 times in a row)"), "{log}");
    assert!(
        log.contains("probe: crashing on request"),
        "the report lacks the server's stderr:\n{log}"
    );
}

#[tokio::test]
async fn server_status_lists_the_running_sandboxes() {
    let gateway = TestGateway::start();
    let idle = gateway.cli_ok(&["server", "status"]);
    assert!(idle.contains("no sandbox running"), "{idle}");
    let token = gateway.create_profile("team");
    gateway.add_echo("echo", None);
    gateway.cli_ok(&["profile", "add-server", "team", "echo"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    // The sandbox table follows the table of state directories.
    let sandbox_row = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("echo") && l.split_whitespace().nth(2) == Some("profile"))
            .map(str::to_owned)
    };
    let row = loop {
        let status = gateway.cli_ok(&["server", "status"]);
        if let Some(row) = sandbox_row(&status) {
            break row;
        }
        assert!(Instant::now() < deadline, "status never showed the server:\n{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let fields: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(fields[1], "team", "{row}");
    assert!(fields[3].parse::<u32>().is_ok(), "no pid: {row}");
    assert!(fields[4].starts_with("10."), "no sandbox address: {row}");
    assert!(row.contains("MiB"), "no memory figure: {row}");
}
