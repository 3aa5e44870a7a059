//! The operator's CLI: bad input gets a clear error and changes nothing.

use gigmcp_testkit::TestGateway;

fn fails_with(gateway: &TestGateway, args: &[&str], needle: &str) {
    let out = gateway.cli(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gigmcp {args:?} should fail");
    assert!(
        stderr.contains(needle),
        "gigmcp {args:?}: expected {needle:?} in:\n{stderr}"
    );
}

#[test]
fn invalid_names_and_specs_are_refused_and_nothing_is_written() {
    let gateway = TestGateway::start();
    let before_profiles = gateway.cli_ok(&["profile", "list"]);
    let before_servers = gateway.cli_ok(&["server", "list"]);
    fails_with(&gateway, &["profile", "create", "Bad Slug"], "invalid profile slug");
    fails_with(&gateway, &["profile", "create", "../etc"], "invalid profile slug");
    fails_with(
        &gateway,
        &["server", "add", "Bad Name", "--builtin", "echo"],
        "invalid server name",
    );
    fails_with(
        &gateway,
        &["server", "add", "ok", "--builtin", "nope"],
        "unknown built-in server",
    );
    fails_with(
        &gateway,
        &["server", "add", "ok", "--command", "relative/path"],
        "invalid --command",
    );
    fails_with(
        &gateway,
        &["server", "add", "ok", "--command", "/bin/true", "--env", "1X=y"],
        "invalid --env",
    );
    fails_with(
        &gateway,
        &[
            "server",
            "add",
            "ok",
            "--command",
            "/bin/true",
            "--mount",
            "/no/such/dir",
        ],
        "does not exist",
    );
    fails_with(
        &gateway,
        &["server", "add", "ok", "--url", "file:///etc/passwd"],
        "invalid --url",
    );
    fails_with(
        &gateway,
        &["server", "add", "ok", "--builtin", "echo", "--prefix", "a b"],
        "invalid prefix",
    );
    fails_with(&gateway, &["server", "add", "ok"], "--command");
    fails_with(
        &gateway,
        &["profile", "add-server", "nope", "ok"],
        "no profile named nope",
    );
    fails_with(&gateway, &["profile", "delete", "nope"], "no profile named nope");
    fails_with(&gateway, &["server", "remove", "nope"], "no server named nope");
    assert_eq!(gateway.cli_ok(&["profile", "list"]), before_profiles);
    assert_eq!(gateway.cli_ok(&["server", "list"]), before_servers);
}

#[test]
fn colliding_names_are_refused_naming_the_collision() {
    let gateway = TestGateway::start();
    gateway.create_profile("team");
    gateway.add_echo("one", Some(""));
    gateway.add_echo("two", Some(""));
    gateway.add_echo("three", Some("one"));
    gateway.cli_ok(&["profile", "add-server", "team", "one"]);
    fails_with(
        &gateway,
        &["profile", "add-server", "team", "two"],
        "tool name \"echo\" would be exposed by both one and two",
    );
    // A prefix of one server equal to another's: refused without starting anything.
    gateway.add_echo("four", Some("p"));
    gateway.add_echo("five", Some("p"));
    gateway.cli_ok(&["profile", "add-server", "team", "four"]);
    fails_with(
        &gateway,
        &["profile", "add-server", "team", "five"],
        "both use the prefix \"p\"",
    );
    gateway.cli_ok(&["profile", "add-server", "team", "three"]);
    let list = gateway.cli_ok(&["profile", "list"]);
    assert!(list.contains("one,four,three"), "{list}");
}

#[test]
fn a_server_in_use_cannot_be_removed() {
    let gateway = TestGateway::start();
    gateway.create_profile("team");
    gateway.add_echo("echo", None);
    gateway.cli_ok(&["profile", "add-server", "team", "echo"]);
    fails_with(&gateway, &["server", "remove", "echo"], "used by profile(s) team");
    gateway.cli_ok(&["profile", "remove-server", "team", "echo"]);
    gateway.cli_ok(&["server", "remove", "echo"]);
}

#[test]
fn serve_refuses_to_start_without_a_valid_master_key() {
    let dir = tempfile::tempdir().unwrap();
    for (key, needle) in [("", "openssl rand -hex 32"), ("abcd", "64 hex characters")] {
        let out = std::process::Command::new(gigmcp_testkit::gigmcp_bin())
            .arg("serve")
            .env("GIG_DATA_DIR", dir.path())
            .env("GIG_MASTER_KEY", key)
            .env("GIG_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{stderr}");
    }
    let out = std::process::Command::new(gigmcp_testkit::gigmcp_bin())
        .arg("serve")
        .env("GIG_DATA_DIR", dir.path())
        .env("GIG_MASTER_KEY", gigmcp_testkit::MASTER_KEY)
        .env("GIG_ECHO_BIN", "/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--builtin echo"));
}
