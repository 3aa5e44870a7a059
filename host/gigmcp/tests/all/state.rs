//! Servers keep state: server-memory (npm) writes its knowledge graph to `/state`, a read-write directory of
//! its own per (server, profile) that survives the gateway's restart, is empty for another profile, holds no
//! more than `--state-size`, and goes only with `--delete-state`. Needs the npm registry (as `make test` does)
//! and root (loop-mounted images).

use gigmcp_testkit::{RawClient, TestGateway, mounts_under};
use serde_json::{Value, json};

fn text(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn client(gateway: &TestGateway, slug: &str, token: &str) -> RawClient {
    let mut client = RawClient::new(gateway.url(slug), token.to_owned());
    client.initialize().await;
    client
}

async fn read_graph(client: &RawClient) -> String {
    let reply = client
        .call(
            json!(90),
            "tools/call",
            json!({"name": "mem_read_graph", "arguments": {}}),
        )
        .await;
    assert!(reply["result"]["isError"] != json!(true), "{reply}");
    text(&reply)
}

async fn create_entity(client: &RawClient, id: u64, name: &str, observation: &str) -> Value {
    client
        .call(
            json!(id),
            "tools/call",
            json!({"name": "mem_create_entities", "arguments": {"entities": [
                {"name": name, "entityType": "person", "observations": [observation]}
            ]}}),
        )
        .await
}

#[tokio::test]
async fn a_server_keeps_its_state_per_profile_within_its_limit() {
    let (mut gateway, _servers) = crate::runtimes::gateway();
    let team = gateway.create_profile("team");
    let other = gateway.create_profile("other");
    // server-memory keeps its graph beside its script unless told where: in the state directory.
    gateway.cli_ok(&[
        "server",
        "add",
        "mem",
        "--npm",
        "@modelcontextprotocol/server-memory@2026.8.31",
        "--env",
        "MEMORY_FILE_PATH=/state/memory.jsonl",
        "--state-size",
        "4m",
    ]);
    gateway.cli_ok(&["profile", "add-server", "team", "mem"]);
    gateway.cli_ok(&["profile", "add-server", "other", "mem"]);

    let written = create_entity(&client(&gateway, "team", &team).await, 1, "Ada", "writes programs").await;
    assert!(written["result"]["isError"] != json!(true), "{written}");

    // A restart of the gateway (and so of every sandbox) keeps the graph.
    gateway.restart();
    let team_client = client(&gateway, "team", &team).await;
    let graph = read_graph(&team_client).await;
    assert!(graph.contains("Ada") && graph.contains("writes programs"), "{graph}");
    // Another profile's sandbox of the same server has a state of its own, empty.
    let graph = read_graph(&client(&gateway, "other", &other).await).await;
    assert!(
        !graph.contains("Ada"),
        "the other profile sees the team's graph: {graph}"
    );

    let status = gateway.cli_ok(&["server", "status"]);
    for slug in ["team", "other"] {
        let row = status
            .lines()
            .find(|l| l.starts_with("mem ") && l.split_whitespace().nth(1) == Some(slug))
            .unwrap_or_else(|| panic!("no state row for mem/{slug}: {status}"));
        assert!(row.contains("4.0 MiB"), "{row}");
    }

    // The limit holds: the server gets "no space left on device", the host's disk is not filled.
    let image = gateway.dir.path().join("state/mem/team.ext4");
    // server-memory rewrites its whole graph on every change: 100 kB more each call fills 4 MiB in about 40
    // (the calls stay small: policy plugins read every call's arguments).
    let big = "x".repeat(100_000);
    let mut refused = None;
    for id in 0..80 {
        let reply = create_entity(&team_client, 100 + id, &format!("Big{id}"), &big).await;
        if reply["result"]["isError"] == json!(true) || reply.get("error").is_some() {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("8 MB were written into a 4 MiB state");
    assert!(refused.to_string().contains("ENOSPC"), "{refused}");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 4 << 20);
    assert!(meta.blocks() * 512 <= 4 << 20, "{} bytes on disk", meta.blocks() * 512);

    // Removing the server from a profile with state is refused without --delete-state, and changes nothing.
    let out = gateway.cli(&["profile", "remove-server", "team", "mem"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--delete-state") && stderr.contains("mem/team"),
        "{stderr}"
    );
    assert!(gateway.cli_ok(&["profile", "list"]).contains("mem"));
    let out = gateway.cli_ok(&["profile", "remove-server", "team", "mem", "--delete-state"]);
    assert!(out.contains("deleted the state of mem/team"), "{out}");
    assert!(!image.exists());
    assert!(gateway.dir.path().join("state/mem/other.ext4").exists());

    // An empty state goes with its server's removal from the profile, without asking.
    let out = gateway.cli_ok(&["profile", "remove-server", "other", "mem"]);
    assert!(out.contains("deleted the state of mem/other"), "{out}");
    gateway.cli_ok(&["server", "remove", "mem"]);
    assert!(!gateway.dir.path().join("state/mem").exists());
    assert!(mounts_under(&gateway.run_dir().unwrap()).is_empty());
}
