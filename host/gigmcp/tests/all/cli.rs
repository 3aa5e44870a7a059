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

/// Every column of `table` starts where its header does: the values of the row that starts with the first
/// column's value begin at the offsets of the header's words.
fn assert_aligned(table: &str, columns: &[(&str, &str)]) {
    let header = table.lines().next().unwrap_or_default();
    let row = table
        .lines()
        .find(|l| l.starts_with(&format!("{} ", columns[0].1)))
        .unwrap_or_else(|| panic!("no row for {:?} in:\n{table}", columns[0].1));
    for (title, value) in columns {
        let at = header.find(title).unwrap_or_else(|| panic!("no {title} in {header:?}"));
        assert_eq!(
            row.get(at..at + value.len()),
            Some(*value),
            "column {title} does not line up:\n{header}\n{row}"
        );
    }
}

/// The CLI's tables line up: names are padded like any string (they once ignored the width, printing `echo echo`
/// under NAME and `demo Demo` in `profile list`).
#[test]
fn the_cli_tables_line_up() {
    let gateway = TestGateway::start();
    gateway.add_echo("echo", None);
    gateway.cli_ok(&["profile", "create", "demo", "--name", "Demo"]);
    gateway.cli_ok(&["profile", "add-server", "demo", "echo"]);
    assert_aligned(
        &gateway.cli_ok(&["server", "list"]),
        &[("NAME", "echo"), ("PREFIX", "echo"), ("MODE", "profile")],
    );
    assert_aligned(
        &gateway.cli_ok(&["profile", "list"]),
        &[("SLUG", "demo"), ("NAME", "Demo"), ("SERVERS", "echo")],
    );
    assert_aligned(
        &gateway.cli_ok(&["plugin", "list"]),
        &[("NAME", "audit-router"), ("KIND", "audit-sink")],
    );
}

/// `plugin bind` without `--order` binds after the last binding of that scope (it was refused without it).
#[test]
fn a_binding_without_an_order_goes_after_the_last_of_its_scope() {
    let gateway = TestGateway::start();
    gateway.cli_ok(&["profile", "create", "p"]);
    let first = gateway.cli_ok(&["plugin", "bind", "tool-filter", "--profile", "p"]);
    assert!(first.contains("bound tool-filter to profile p at 0"), "{first}");
    let second = gateway.cli_ok(&["plugin", "bind", "egress-allowlist", "--profile", "p"]);
    assert!(second.contains("bound egress-allowlist to profile p at 1"), "{second}");
    // Globally the defaults are bound at 100: a plugin bound again goes after them.
    gateway.cli_ok(&["plugin", "unbind", "audit-router"]);
    let global = gateway.cli_ok(&["plugin", "bind", "audit-router"]);
    assert!(global.contains("bound audit-router globally at 101"), "{global}");
}

/// The default plugins are there as soon as the database is, whichever command created it (they once appeared
/// only after the first `serve`).
#[test]
fn the_default_plugins_are_installed_by_the_command_that_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(gigmcp_testkit::gigmcp_bin())
        .args(["plugin", "list"])
        .env("GIG_DATA_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for plugin in [
        "egress-allowlist",
        "header-injector",
        "claims-mapper",
        "audit-router",
        "tool-filter",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(plugin) && l.contains("global@100")),
            "{plugin} is not installed and bound: {stdout}"
        );
    }
}

/// A login link printed by the CLI points at the port the gateway on the same database really listens on, even
/// when the CLI's environment names another (here the gateway's own `127.0.0.1:0`).
#[test]
fn a_login_link_names_the_url_the_running_gateway_serves_at() {
    let gateway = TestGateway::start();
    let printed = gateway.cli_ok(&["admin", "login-link"]);
    let url = printed.trim();
    assert!(
        url.starts_with(&format!("http://{}/auth/link/", gateway.addr)),
        "{url} is not on the gateway's address {}",
        gateway.addr
    );
}
