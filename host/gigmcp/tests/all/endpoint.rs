//! The MCP endpoint's edges, through a real gateway on loopback with the built-in echo server in bubblewrap.
//! Needs bubblewrap (installed by `make test`).

use gigmcp_testkit::{RawClient, TestGateway};
use serde_json::{Value, json};

fn demo(gateway: &TestGateway) -> RawClient {
    let token = gateway.create_profile("demo");
    gateway.add_echo("echo", None);
    gateway.cli_ok(&["profile", "add-server", "demo", "echo"]);
    RawClient::new(gateway.url("demo"), token)
}

#[tokio::test]
async fn tools_are_prefixed_and_calls_reach_the_sandboxed_server() {
    let gateway = TestGateway::start();
    let mut client = demo(&gateway);
    let init = client.initialize().await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "gigmcp");
    let tools = client.call(json!(1), "tools/list", json!({})).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo_echo"]);
    let reply = client
        .call(
            json!("a"),
            "tools/call",
            json!({"name": "echo_echo", "arguments": {"message": "hi"}}),
        )
        .await;
    assert_eq!(reply["result"]["content"][0]["text"], "hi");
    let reply = client
        .call(json!(2), "tools/call", json!({"name": "echo", "arguments": {}}))
        .await;
    assert_eq!(reply["error"]["code"], -32602, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown tool: echo")
    );
}

#[tokio::test]
async fn missing_or_wrong_token_and_unknown_profile_look_the_same() {
    let gateway = TestGateway::start();
    let client = demo(&gateway);
    let body = json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string();
    let no_token = client
        .http
        .post(&client.url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let wrong = RawClient::new(client.url.clone(), "gig_wrong".into());
    let wrong = wrong.post(body.clone()).send().await.unwrap();
    let other = RawClient::new(gateway.url("nope"), client.token.clone());
    let other = other.post(body.clone()).send().await.unwrap();
    let invalid_slug = RawClient::new(gateway.url("Not_A_Slug"), client.token.clone());
    let invalid_slug = invalid_slug.post(body).send().await.unwrap();
    let mut bodies = Vec::new();
    for response in [no_token, wrong, other, invalid_slug] {
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        bodies.push(response.text().await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

#[tokio::test]
async fn a_rotated_token_is_refused_on_its_next_request() {
    let gateway = TestGateway::start();
    let mut client = demo(&gateway);
    client.initialize().await;
    assert!(client.call(json!(1), "ping", json!({})).await.get("result").is_some());
    let out = gateway.cli_ok(&["profile", "token", "rotate", "demo"]);
    let new_token = out
        .split_whitespace()
        .find(|w| w.starts_with("gig_"))
        .unwrap()
        .to_owned();
    let refused = client
        .post(json!({"jsonrpc":"2.0","id":2,"method":"ping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    client.token = new_token;
    assert!(client.call(json!(3), "ping", json!({})).await.get("result").is_some());
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let gateway = TestGateway::start_with(&[("GIG_MAX_BODY_BYTES", "4096")]);
    let mut client = demo(&gateway);
    client.initialize().await;

    let response = client.post("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);

    let response = client.post("[]").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);

    let big = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo_echo",
        "arguments":{"message":"x".repeat(5000)}}});
    let response = client.post(big.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 413);

    let mut stranger = RawClient::new(client.url.clone(), client.token.clone());
    stranger.session = Some("0123456789abcdef0123456789abcdef".into());
    let response = stranger
        .post(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    stranger.session = None;
    let response = stranger
        .post(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "a request without a session must be refused");

    let response = client
        .post(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string())
        .header("mcp-protocol-version", "1999-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let reply = client.call(json!(9), "tools/list", json!({"cursor": "garbage"})).await;
    assert_eq!(reply["error"]["code"], -32602);
}

#[tokio::test]
async fn origin_is_checked_against_dns_rebinding() {
    let gateway = TestGateway::start_with(&[("GIG_PUBLIC_URL", "https://mcp.example.test")]);
    let client = demo(&gateway);
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}})
    .to_string();
    for (origin, status) in [
        ("http://evil.example", 403),
        ("http://localhost.evil.example", 403),
        ("http://localhost:6274", 200),
        ("http://127.0.0.1:3000", 200),
        ("https://mcp.example.test", 200),
    ] {
        let response = client.post(init.clone()).header("origin", origin).send().await.unwrap();
        assert_eq!(response.status(), status, "{origin}");
    }
}

#[tokio::test]
async fn deleting_a_session_ends_it() {
    let gateway = TestGateway::start();
    let mut client = demo(&gateway);
    client.initialize().await;
    let response = client
        .http
        .delete(&client.url)
        .bearer_auth(&client.token)
        .header("mcp-session-id", client.session.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .post(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn two_clients_with_the_same_ids_each_get_their_own_results() {
    let gateway = TestGateway::start();
    let mut a = demo(&gateway);
    let mut b = RawClient::new(a.url.clone(), a.token.clone());
    a.initialize().await;
    b.initialize().await;
    let calls = (0..40).map(|i| {
        let (client, who) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
        async move {
            let id = json!(i / 2);
            let message = format!("{who}-{i}");
            let reply = client
                .call(
                    id.clone(),
                    "tools/call",
                    json!({"name":"echo_echo","arguments":{"message": message}}),
                )
                .await;
            assert_eq!(reply["id"], id);
            assert_eq!(reply["result"]["content"][0]["text"], message);
        }
    });
    futures_util::future::join_all(calls).await;
}

#[tokio::test]
async fn fifty_concurrent_sessions_all_complete() {
    let gateway = TestGateway::start();
    let client = demo(&gateway);
    let sessions = (0..50).map(|n| {
        let mut c = RawClient::new(client.url.clone(), client.token.clone());
        async move {
            c.initialize().await;
            for i in 0..4 {
                let message = format!("s{n}-{i}");
                let reply = c
                    .call(
                        json!(i),
                        "tools/call",
                        json!({"name":"echo_echo","arguments":{"message": message}}),
                    )
                    .await;
                assert_eq!(reply["result"]["content"][0]["text"], message, "{reply}");
            }
        }
    });
    futures_util::future::join_all(sessions).await;
}

/// A 2025-11-25 server may close a reply stream before the reply and expect the client to resume it with
/// `Last-Event-ID` (the fixture's `test_reconnection` does): the gateway resumes it for the client.
#[tokio::test]
async fn an_upstream_reply_stream_closed_early_is_resumed() {
    let (_fixture, fixture_url) = gigmcp_testkit::start_conformance_fixture();
    let gateway = TestGateway::start();
    let token = gateway.create_profile("conf");
    gateway.cli_ok(&["server", "add", "fixture", "--url", &fixture_url, "--prefix", ""]);
    gateway.cli_ok(&["profile", "add-server", "conf", "fixture"]);
    let mut client = RawClient::new(gateway.url("conf"), token);
    client.initialize().await;
    let reply = client
        .call(
            json!(1),
            "tools/call",
            json!({"name": "test_reconnection", "arguments": {}}),
        )
        .await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "Reconnection test completed",
        "{reply}"
    );
}
