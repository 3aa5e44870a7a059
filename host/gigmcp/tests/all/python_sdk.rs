//! The official Python MCP SDK as the client, through a real gateway, to `server-everything` (npm, over
//! stdio in bubblewrap) and the built-in echo server in one profile. Needs `make test`'s dependencies.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gigmcp_testkit::{TestGateway, run_python_client, venv_python};

fn everything_profile() -> (TestGateway, String) {
    let gateway = TestGateway::start();
    let token = gateway.create_profile("team");
    gateway.add_echo("echo", None);
    gateway.add_everything("everything");
    gateway.cli_ok(&["profile", "add-server", "team", "echo"]);
    gateway.cli_ok(&["profile", "add-server", "team", "everything"]);
    (gateway, token)
}

fn assert_client(gateway: &TestGateway, script: &str, args: &[&str]) {
    let (ok, stdout, stderr) = run_python_client(script, args);
    assert!(
        ok,
        "{script} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- gateway\n{}",
        gateway.log()
    );
}

#[test]
fn python_sdk_lists_calls_reads_and_gets_prompts_across_servers() {
    let (gateway, token) = everything_profile();
    let url = gateway.url("team");
    assert_client(&gateway, "everything_basic.py", &["--url", &url, "--token", &token]);
}

#[test]
fn python_sdk_gets_progress_sampling_elicitation_and_cancels() {
    let (gateway, token) = everything_profile();
    let url = gateway.url("team");
    assert_client(&gateway, "everything_advanced.py", &["--url", &url, "--token", &token]);
}

#[test]
fn concurrent_sessions_with_the_same_ids_get_only_their_own_results() {
    let (gateway, token) = everything_profile();
    let url = gateway.url("team");
    assert_client(
        &gateway,
        "concurrent_ids.py",
        &["--url", &url, "--token", &token, "--sessions", "2", "--calls", "50"],
    );
    assert_client(
        &gateway,
        "concurrent_ids.py",
        &["--url", &url, "--token", &token, "--sessions", "50", "--calls", "4"],
    );
}

#[test]
fn adding_a_server_while_a_client_is_connected_sends_tools_list_changed() {
    let (gateway, token) = everything_profile();
    gateway.add_echo("late", Some("late"));
    let url = gateway.url("team");
    let mut child = Command::new(venv_python())
        .arg(gigmcp_testkit::repo_root().join("tests/clients/everything_advanced.py"))
        .args([
            "--url",
            &url,
            "--token",
            &token,
            "--check",
            "list_changed",
            "--expect-new-tool",
            "late_echo",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut output = String::new();
    let mut added = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        output.push_str(&line);
        output.push('\n');
        if line.trim() == "READY_FOR_CHANGE" {
            gateway.cli_ok(&["profile", "add-server", "team", "late"]);
            added = true;
        }
        assert!(Instant::now() < deadline, "client took too long");
    }
    let status = child.wait().unwrap();
    let stderr = err.join().unwrap();
    assert!(added, "the client never got ready\n{output}\n{stderr}");
    assert!(
        status.success(),
        "list_changed check failed\n{output}\n{stderr}\n--- gateway\n{}",
        gateway.log()
    );
}

#[test]
fn python_sdk_through_a_streamable_http_upstream() {
    let (_everything, everything_url) = gigmcp_testkit::start_everything_http();
    let gateway = TestGateway::start();
    let token = gateway.create_profile("web");
    gateway.add_echo("echo", None);
    gateway.cli_ok(&["server", "add", "everything", "--url", &everything_url]);
    gateway.cli_ok(&["profile", "add-server", "web", "echo"]);
    gateway.cli_ok(&["profile", "add-server", "web", "everything"]);
    let url = gateway.url("web");
    assert_client(&gateway, "everything_basic.py", &["--url", &url, "--token", &token]);
    assert_client(&gateway, "everything_advanced.py", &["--url", &url, "--token", &token]);
    assert_client(
        &gateway,
        "concurrent_ids.py",
        &["--url", &url, "--token", &token, "--sessions", "3", "--calls", "20"],
    );
}

/// On a shared stdio server, a server→client request carries nothing that names the request that caused
/// it: it goes to the client with a request in flight there. Calls one after another must route exactly.
#[test]
fn a_sampling_request_reaches_the_client_whose_call_caused_it() {
    let (gateway, token) = everything_profile();
    let url = gateway.url("team");
    assert_client(&gateway, "sampling_routing.py", &["--url", &url, "--token", &token]);
}

/// With an upstream session per client (`--per-session` stdio servers, HTTP upstreams), routing is exact
/// even when clients trigger sampling at the same time.
#[test]
fn concurrent_sampling_requests_route_exactly_with_per_session_upstreams() {
    let (_everything, everything_url) = gigmcp_testkit::start_everything_http();
    let gateway = TestGateway::start();
    let token = gateway.create_profile("team");
    gateway.cli_ok(&["server", "add", "web", "--url", &everything_url]);
    let js = gigmcp_testkit::everything_js();
    let modules = gigmcp_testkit::node_modules();
    gateway.cli_ok(&[
        "server",
        "add",
        "solo",
        "--per-session",
        "--command",
        &gigmcp_testkit::node_bin(),
        "--arg",
        js.to_str().unwrap(),
        "--mount",
        modules.to_str().unwrap(),
    ]);
    for server in ["solo", "web"] {
        gateway.cli_ok(&["profile", "add-server", "team", server]);
    }
    let url = gateway.url("team");
    for prefix in ["solo", "web"] {
        let args = [
            "--url",
            &url,
            "--token",
            &token,
            "--prefix-everything",
            prefix,
            "--concurrent",
        ];
        assert_client(&gateway, "sampling_routing.py", &args);
    }
}
