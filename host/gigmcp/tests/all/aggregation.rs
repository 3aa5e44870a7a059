//! How a shared stdio server serves several clients of a profile: subscriptions counted, resource updates
//! only to subscribers, log levels merged upstream and filtered per client.

use std::time::Duration;

use gigmcp_testkit::{RawClient, TestGateway, add_probe, next_with_method};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(700);

async fn two_clients(gateway: &TestGateway) -> (RawClient, RawClient) {
    let token = gateway.create_profile("team");
    add_probe(gateway, "probe");
    gateway.cli_ok(&["profile", "add-server", "team", "probe"]);
    let mut a = RawClient::new(gateway.url("team"), token.clone());
    let mut b = RawClient::new(gateway.url("team"), token);
    a.initialize().await;
    b.initialize().await;
    (a, b)
}

async fn probe_state(client: &RawClient) -> Value {
    let reply = client
        .call(
            json!("state"),
            "tools/call",
            json!({"name": "probe_state", "arguments": {}}),
        )
        .await;
    serde_json::from_str(reply["result"]["content"][0]["text"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn shared_server_is_subscribed_once_and_updates_reach_only_subscribers() {
    let gateway = TestGateway::start();
    let (a, b) = two_clients(&gateway).await;
    let (mut a_stream, mut b_stream) = (a.open_stream().await, b.open_stream().await);
    for (client, id) in [(&a, 1), (&b, 2)] {
        let reply = client
            .call(json!(id), "resources/subscribe", json!({"uri": "probe://a"}))
            .await;
        assert!(reply.get("result").is_some(), "{reply}");
    }
    assert_eq!(probe_state(&a).await["calls"], json!(["subscribe probe://a"]));

    let update = json!({"name": "probe_update", "arguments": {"uri": "probe://a"}});
    a.call(json!(3), "tools/call", update.clone()).await;
    for stream in [&mut a_stream, &mut b_stream] {
        let note = next_with_method(stream, "notifications/resources/updated", WAIT).await;
        assert_eq!(note.expect("update delivered")["params"]["uri"], "probe://a");
    }

    a.call(json!(4), "resources/unsubscribe", json!({"uri": "probe://a"}))
        .await;
    assert_eq!(
        probe_state(&a).await["calls"],
        json!(["subscribe probe://a"]),
        "b still subscribed"
    );
    a.call(json!(5), "tools/call", update).await;
    assert!(
        next_with_method(&mut b_stream, "notifications/resources/updated", WAIT)
            .await
            .is_some()
    );
    assert!(
        next_with_method(&mut a_stream, "notifications/resources/updated", QUIET)
            .await
            .is_none(),
        "an unsubscribed client got an update"
    );

    b.call(json!(6), "resources/subscribe", json!({"uri": "probe://b"}))
        .await;
    b.end().await;
    let mut calls = Vec::new();
    for _ in 0..50 {
        calls = probe_state(&a).await["calls"].as_array().unwrap().clone();
        if calls.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut tail: Vec<&str> = calls[2..].iter().map(|c| c.as_str().unwrap()).collect();
    tail.sort();
    assert_eq!(calls[1], "subscribe probe://b");
    assert_eq!(tail, ["unsubscribe probe://a", "unsubscribe probe://b"], "{calls:?}");
}

#[tokio::test]
async fn log_level_upstream_is_the_most_verbose_and_each_client_gets_its_own() {
    let gateway = TestGateway::start();
    let (a, b) = two_clients(&gateway).await;
    let (mut a_stream, mut b_stream) = (a.open_stream().await, b.open_stream().await);
    a.call(json!(1), "logging/setLevel", json!({"level": "error"})).await;
    assert_eq!(probe_state(&a).await["logLevel"], "error");
    b.call(json!(2), "logging/setLevel", json!({"level": "debug"})).await;
    assert_eq!(probe_state(&a).await["logLevel"], "debug");
    let reply = a.call(json!(3), "logging/setLevel", json!({"level": "loud"})).await;
    assert_eq!(reply["error"]["code"], -32602);

    let log = |level: &str| json!({"name": "probe_log", "arguments": {"level": level, "message": level}});
    a.call(json!(4), "tools/call", log("info")).await;
    a.call(json!(5), "tools/call", log("critical")).await;
    let first_b = next_with_method(&mut b_stream, "notifications/message", WAIT)
        .await
        .unwrap();
    assert_eq!(first_b["params"]["level"], "info");
    let first_a = next_with_method(&mut a_stream, "notifications/message", WAIT)
        .await
        .unwrap();
    assert_eq!(
        first_a["params"]["level"], "critical",
        "a client at level error got an info log"
    );
}
