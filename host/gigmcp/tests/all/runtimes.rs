//! Servers installed from npm and PyPI at `server add` time (scripts off, wheels only) and run sandboxed
//! on the host's Node and Python: server-filesystem with a granted directory, server-everything, and
//! mcp-server-time. Needs the registries (as `make test` does) and root.

use std::os::unix::fs::PermissionsExt;

use gigmcp_testkit::{RawClient, TestGateway};
use serde_json::{Value, json};

/// Adds the installed `time` server to profile `team` and asks it the time in UTC.
async fn assert_time_server_answers(gateway: &TestGateway, token: String) {
    gateway.cli_ok(&["profile", "add-server", "team", "time"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let reply = client
        .call(
            json!(1),
            "tools/call",
            json!({"name": "time_get_current_time", "arguments": {"timezone": "UTC"}}),
        )
        .await;
    assert!(text(&reply).contains("UTC"), "{reply}");
}

/// A gateway whose installs go to a directory sandbox uids can reach (test data dirs are private).
pub(crate) fn gateway() -> (TestGateway, tempfile::TempDir) {
    let servers = tempfile::tempdir().unwrap();
    std::fs::set_permissions(servers.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = servers.path().display().to_string();
    (TestGateway::start_with(&[("GIG_SERVERS_DIR", &dir)]), servers)
}

fn text(reply: &Value) -> String {
    reply["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn npm_servers_install_without_scripts_and_run_sandboxed() {
    let (gateway, servers) = gateway();
    let token = gateway.create_profile("team");
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(shared.path().join("hello.txt"), "hello from the host").unwrap();
    std::fs::set_permissions(shared.path().join("hello.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let grant = format!("{}:/data", shared.path().display());
    let out = gateway.cli_ok(&[
        "server",
        "add",
        "fs",
        "--npm",
        "@modelcontextprotocol/server-filesystem@2026.8.31",
        "--mount",
        &grant,
        "--arg",
        "/data",
    ]);
    assert!(out.contains("sha512-"), "no integrity recorded: {out}");
    let record: Value =
        serde_json::from_slice(&std::fs::read(servers.path().join("fs@2026.8.31/gigmcp-install.json")).unwrap())
            .unwrap();
    assert!(record["integrity"].as_object().unwrap().len() > 10, "{record}");
    gateway.cli_ok(&[
        "server",
        "add",
        "every",
        "--npm",
        "@modelcontextprotocol/server-everything@2026.8.31",
    ]);
    gateway.cli_ok(&["profile", "add-server", "team", "fs"]);
    gateway.cli_ok(&["profile", "add-server", "team", "every"]);

    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let read = client
        .call(
            json!(1),
            "tools/call",
            json!({"name": "fs_read_text_file", "arguments": {"path": "/data/hello.txt"}}),
        )
        .await;
    assert!(text(&read).contains("hello from the host"), "{read}");
    let write = client
        .call(
            json!(2),
            "tools/call",
            json!({"name": "fs_write_file", "arguments": {"path": "/data/new.txt", "content": "x"}}),
        )
        .await;
    assert!(
        !shared.path().join("new.txt").exists(),
        "a read-only grant was written to: {write}"
    );
    let echo = client
        .call(
            json!(3),
            "tools/call",
            json!({"name": "every_echo", "arguments": {"message": "hi"}}),
        )
        .await;
    assert!(text(&echo).contains("hi"), "{echo}");

    // Removing the server removes its install.
    gateway.cli_ok(&["profile", "remove-server", "team", "every"]);
    gateway.cli_ok(&["server", "remove", "every"]);
    assert!(!servers.path().join("every@2026.8.31").exists());
}

#[test]
fn a_package_that_needs_install_scripts_is_refused_and_nothing_is_kept() {
    let (gateway, servers) = gateway();
    let out = gateway.cli(&["server", "add", "bundler", "--npm", "esbuild@0.25.0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs install scripts"), "{stderr}");
    assert!(!gateway.cli_ok(&["server", "list"]).contains("bundler"));
    assert_eq!(
        std::fs::read_dir(servers.path()).unwrap().count(),
        0,
        "the refused install was kept"
    );
}

#[tokio::test]
async fn pypi_servers_install_from_wheels_and_run_on_the_system_python() {
    let (gateway, servers) = gateway();
    let token = gateway.create_profile("team");
    let out = gateway.cli_ok(&[
        "server",
        "add",
        "time",
        "--pypi",
        "mcp-server-time==2026.10.19",
        "--arg",
        "--local-timezone",
        "--arg",
        "UTC",
    ]);
    assert!(out.contains("sha256-"), "no integrity recorded: {out}");
    assert!(
        servers
            .path()
            .join("time@2026.10.19/venv/bin/mcp-server-time")
            .is_file()
    );
    assert_time_server_answers(&gateway, token).await;
}

#[tokio::test]
async fn the_rest_api_installs_npm_servers_with_the_clis_code() {
    let (gateway, servers) = gateway();
    let token = gateway.create_profile("team");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = gateway.admin_cookie(&http).await;
    let post = |body: Value| {
        http.post(format!("http://{}/api/servers", gateway.addr))
            .header("cookie", &cookie)
            .header("origin", format!("http://{}", gateway.addr))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let installs = || std::fs::read_dir(servers.path()).unwrap().count();

    // Bad input is refused before anything is installed.
    for bad in [
        json!({"name": "every", "npm": "@modelcontextprotocol/server-everything@2026.8.31; rm -rf /"}),
        json!({"name": "every", "npm": "@modelcontextprotocol/server-everything@2026.8.31", "url": "https://x.example/mcp"}),
        json!({"name": "every", "builtin": "echo", "bin": "x"}),
        json!({"name": "every", "npm": "@modelcontextprotocol/server-everything@2026.8.31", "runtime": "node"}),
    ] {
        let response = post(bad.clone()).await.unwrap();
        assert_eq!(response.status(), 400, "{bad}: {}", response.text().await.unwrap());
    }
    assert_eq!(installs(), 0, "a refused request installed something");

    let response = post(json!({"name": "every", "npm": "@modelcontextprotocol/server-everything@2026.8.31"}))
        .await
        .unwrap();
    let status = response.status();
    let created: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    assert!(
        created["target"].as_str().unwrap().contains("server-everything"),
        "{created}"
    );
    assert_eq!(installs(), 1);

    // The name is taken: refused before installing, the existing server's files untouched.
    let response = post(json!({"name": "every", "npm": "@modelcontextprotocol/server-everything@2026.8.31"}))
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    assert_eq!(installs(), 1);

    gateway.cli_ok(&["profile", "add-server", "team", "every"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let echoed = client
        .call(
            json!(1),
            "tools/call",
            json!({"name": "every_echo", "arguments": {"message": "installed through the API"}}),
        )
        .await;
    assert!(text(&echoed).contains("installed through the API"), "{echoed}");
}

/// `resolved <asked> to version <v>` from `server add`: the version, checked to be exact.
fn resolved_version(out: &str, asked: &str) -> String {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix(&format!("resolved {asked} to version ")))
        .unwrap_or_else(|| panic!("no resolution reported: {out}"));
    let parts: Vec<&str> = line.split('.').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u64>().is_ok()),
        "not an exact version: {line}"
    );
    line.to_owned()
}

#[tokio::test]
async fn unpinned_packages_are_resolved_at_install_and_pinned() {
    // Installed into the data directory, which is private (0700) like a checkout under /root: sandboxes
    // reach the installs through the gateway's run directory.
    let gateway = TestGateway::start();
    let servers = gateway.dir.path().join("servers");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(gateway.dir.path()).unwrap().mode() & 0o007, 0);
    let token = gateway.create_profile("team");
    // No version: npm's latest.
    let out = gateway.cli_ok(&["server", "add", "mem", "--npm", "@modelcontextprotocol/server-memory"]);
    let version = resolved_version(&out, "@modelcontextprotocol/server-memory");
    assert!(servers.join(format!("mem@{version}")).is_dir(), "{out}");
    let record: Value =
        serde_json::from_slice(&std::fs::read(servers.join(format!("mem@{version}/gigmcp-install.json"))).unwrap())
            .unwrap();
    assert_eq!(record["version"], json!(version));
    // A range: pip's newest match with a wheel for this Python.
    let out = gateway.cli_ok(&[
        "server",
        "add",
        "time",
        "--pypi",
        "mcp-server-time>=2026.1,<=2026.10.19",
        "--arg",
        "--local-timezone",
        "--arg",
        "UTC",
    ]);
    assert_eq!(
        resolved_version(&out, "mcp-server-time>=2026.1,<=2026.10.19"),
        "2026.10.19"
    );
    assert!(servers.join("time@2026.10.19/venv/bin/mcp-server-time").is_file());
    // An exact version is installed as asked, with nothing to report.
    let out = gateway.cli_ok(&[
        "server",
        "add",
        "every",
        "--npm",
        "@modelcontextprotocol/server-everything@2026.8.31",
    ]);
    assert!(!out.contains("resolved"), "{out}");

    assert_time_server_answers(&gateway, token).await;

    // What matches nothing is refused, and nothing is kept.
    let before = std::fs::read_dir(&servers).unwrap().count();
    let out = gateway.cli(&[
        "server",
        "add",
        "none",
        "--npm",
        "@modelcontextprotocol/server-memory@^99",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no published version of @modelcontextprotocol/server-memory matches"),
        "{stderr}"
    );
    let out = gateway.cli(&["server", "add", "none", "--pypi", "mcp-server-time>=9999"]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_dir(&servers).unwrap().count(), before);
    assert!(!gateway.cli_ok(&["server", "list"]).contains("none"));
}

#[tokio::test]
async fn a_server_json_entry_installs_its_npm_package_with_its_environment_and_names_its_secret() {
    let (gateway, _servers) = gateway();
    let token = gateway.create_profile("team");
    let dir = tempfile::tempdir().unwrap();
    let entry = dir.path().join("server.json");
    std::fs::write(
        &entry,
        json!({
            "$schema": "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json",
            "name": "io.github.modelcontextprotocol/server-memory",
            "description": "A knowledge graph kept in a file",
            "version": "2026.8.31",
            "packages": [
                {"registryType": "oci", "identifier": "ghcr.io/example/memory:1", "transport": {"type": "stdio"}},
                {"registryType": "npm", "identifier": "@modelcontextprotocol/server-memory", "version": "2026.8.31",
                 "runtimeHint": "npx", "transport": {"type": "stdio"},
                 "environmentVariables": [
                     {"name": "MEMORY_FILE_PATH", "isRequired": true, "description": "Where the graph is kept"},
                     {"name": "MEMORY_API_KEY", "isSecret": true, "description": "Not used by this server"}
                 ]}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let path = entry.to_str().unwrap();
    // A required variable without a value, or a secret without where it may go, is refused, and nothing is
    // installed.
    let secret = "MEMORY_API_KEY=api.memory.test;X-Memory-Key;{secret}";
    let out = gateway.cli(&["server", "add", "mem", "--server-json", path, "--secret", secret]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("it needs MEMORY_FILE_PATH (Where the graph is kept): give it with --env"),
        "{error}"
    );
    let env = "MEMORY_FILE_PATH=/state/memory.jsonl";
    let out = gateway.cli(&["server", "add", "mem", "--server-json", path, "--env", env]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("the secret MEMORY_API_KEY (Not used by this server) needs to be told where"),
        "{error}"
    );
    assert!(!gateway.cli_ok(&["server", "list"]).contains("mem "));
    let out = gateway.cli_ok(&[
        "server",
        "add",
        "mem",
        "--server-json",
        path,
        "--env",
        env,
        "--secret",
        secret,
    ]);
    assert!(
        out.contains("added server mem from io.github.modelcontextprotocol/server-memory 2026.8.31"),
        "{out}"
    );
    assert!(
        out.contains("not used: package ghcr.io/example/memory:1 (oci)"),
        "{out}"
    );
    assert!(
        out.contains("credential memory_api_key (the variable MEMORY_API_KEY)"),
        "{out}"
    );
    assert!(out.contains("`X-Memory-Key: {secret}` to api.memory.test"), "{out}");
    // The definition is kept: only the secret is given, and the jail gets the placeholder in that variable.
    let set = gateway.cli_with_input(&["credential", "set", "mem", "memory_api_key"], "memory-secret");
    assert!(set.contains("the server gets MEMORY_API_KEY=gigph_"), "{set}");
    assert!(set.contains("`X-Memory-Key: {secret}` for api.memory.test"), "{set}");
    gateway.cli_ok(&["profile", "add-server", "team", "mem"]);
    let mut client = RawClient::new(gateway.url("team"), token);
    client.initialize().await;
    let reply = client
        .call(
            json!(1),
            "tools/call",
            json!({"name": "mem_create_entities", "arguments": {"entities": [
                {"name": "gateway", "entityType": "software", "observations": ["sandboxes servers"]}]}}),
        )
        .await;
    assert!(text(&reply).contains("gateway"), "{reply}");
}
