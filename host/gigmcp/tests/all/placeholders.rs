//! Invariant 1 at the sandbox: a server's environment holds its credentials' placeholders, never the
//! secrets; a profile's own credential wins over the server-wide one.

use gigmcp_testkit::{RawClient, TestGateway};
use serde_json::{Value, json};

fn set_credential(gateway: &TestGateway, args: &[&str], secret: &str) {
    let mut argv = vec!["credential", "set"];
    argv.extend(args);
    gateway.cli_with_input(&argv, secret);
}

async fn jail_env(client: &RawClient, id: i64) -> Value {
    let reply = client
        .call(
            json!(id),
            "tools/call",
            json!({"name": "probe_probe", "arguments": {"check": "env"}}),
        )
        .await;
    let text = reply["result"]["content"][0]["text"].as_str().expect("probe answered");
    serde_json::from_str::<Value>(text).unwrap()["env"].clone()
}

fn add_escape_probe(gateway: &TestGateway) {
    let support = gigmcp_testkit::repo_root().join("tests/support");
    gateway.cli_ok(&[
        "server",
        "add",
        "probe",
        "--command",
        "/usr/bin/python3",
        "--arg",
        support.join("escape-probe.py").to_str().unwrap(),
        "--mount",
        support.to_str().unwrap(),
    ]);
}

#[tokio::test]
async fn a_server_gets_placeholders_never_secrets_and_the_profile_credential_wins() {
    let gateway = TestGateway::start();
    let team = gateway.create_profile("team");
    let solo = gateway.create_profile("solo");
    add_escape_probe(&gateway);
    gateway.cli_ok(&["profile", "add-server", "team", "probe"]);
    gateway.cli_ok(&["profile", "add-server", "solo", "probe"]);
    let (wide, scoped) = ("server-wide-secret-1f2e3d", "team-only-secret-9a8b7c");
    set_credential(&gateway, &["probe", "api", "--hosts", "api.example.com"], wide);
    set_credential(
        &gateway,
        &["probe", "api", "--profile", "team", "--hosts", "api.example.com"],
        scoped,
    );

    let mut team_client = RawClient::new(gateway.url("team"), team);
    team_client.initialize().await;
    let mut solo_client = RawClient::new(gateway.url("solo"), solo);
    solo_client.initialize().await;
    let (team_env, solo_env) = (jail_env(&team_client, 1).await, jail_env(&solo_client, 1).await);
    let team_placeholder = team_env["API_TOKEN"]
        .as_str()
        .expect("placeholder in the team's sandbox");
    let solo_placeholder = solo_env["API_TOKEN"].as_str().expect("placeholder in the solo sandbox");
    assert!(team_placeholder.starts_with("gigph_"), "{team_placeholder}");
    assert_ne!(
        team_placeholder, solo_placeholder,
        "the profile's own credential must win for its sandbox"
    );
    for env in [&team_env, &solo_env] {
        let dump = env.to_string();
        assert!(
            !dump.contains(wide) && !dump.contains(scoped),
            "a secret reached a sandbox: {dump}"
        );
    }
    let listing = gateway.cli_ok(&["credential", "list"]);
    assert!(!listing.contains(wide) && !listing.contains(scoped));
}
