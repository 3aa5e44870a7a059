//! `gigmcp plugin …` through the real binary, against a database a plugin host follows as a running gateway
//! does: every change is validated before it is written, and reaches the host within a second.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gigmcp_audit::AuditLog;
use gigmcp_plugin_runtime::PluginHost;
use gigmcp_plugin_runtime::harness;
use gigmcp_plugin_runtime::harness::Harness;
use gigmcp_store::Store;
use gigmcp_types::audit::NewAuditEvent;
use gigmcp_types::names::PluginName;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::policy::{CallContext, EgressDecision, EgressRequest};
use serde_json::json;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    /// A new database without plugins: the command that creates it installs the defaults, which are then
    /// removed (a removed default is not installed again), so each test starts from an empty plugin table.
    fn new() -> Self {
        let cli = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        for name in gigmcp_default_plugins::names() {
            cli.ok(&["plugin", "remove", name]);
        }
        assert!(cli.store().plugins().unwrap().is_empty());
        cli
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(gigmcp_testkit::gigmcp_bin())
            .args(args)
            .env("GIG_DATA_DIR", self.dir.path())
            .env_remove("GIG_DB_PATH")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "gigmcp {args:?} failed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "gigmcp {args:?} should have failed");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// Adds the default audit router as `router` with this configuration, bound globally.
    fn add_audit_router(&self, config: &serde_json::Value) {
        let router = self.file("router.wasm", default_plugin("audit-router"));
        let config = config.to_string();
        self.ok(&["plugin", "add", &router, "--name", "router", "--config", &config]);
        self.ok(&["plugin", "bind", "router", "--order", "1"]);
    }

    fn store(&self) -> Store {
        Store::open(&self.dir.path().join("gigmcp.db")).unwrap()
    }
}

fn default_plugin(name: &str) -> &'static [u8] {
    gigmcp_default_plugins::component(name).unwrap()
}

#[test]
fn plugin_commands_validate_before_they_write() {
    let cli = Cli::new();
    let tool_filter = cli.file("tool_filter.wasm", default_plugin("tool-filter"));
    let sha = ComponentHash::of(default_plugin("tool-filter")).to_hex();

    // A wrong hash, a wrong kind and a configuration the schema refuses change nothing.
    let err = cli.fails(&["plugin", "add", &tool_filter, "--sha256", &"0".repeat(64)]);
    assert!(err.contains("sha256"), "{err}");
    let err = cli.fails(&["plugin", "add", &tool_filter, "--kind", "egress-policy"]);
    assert!(err.contains("mcp-filter plugin, not a egress-policy"), "{err}");
    let err = cli.fails(&["plugin", "add", &tool_filter, "--config", r#"{"deny": "x"}"#]);
    assert!(err.contains("/deny: expected array"), "{err}");
    assert!(cli.store().plugins().unwrap().is_empty());

    let out = cli.ok(&["plugin", "add", &tool_filter, "--sha256", &sha]);
    assert!(out.contains("added mcp-filter plugin tool-filter"), "{out}");
    let out = cli.ok(&["plugin", "list"]);
    assert!(
        out.contains("tool-filter") && out.contains("mcp-filter") && out.contains(&sha[..12]),
        "{out}"
    );

    cli.ok(&["profile", "create", "team"]);
    cli.ok(&["plugin", "bind", "tool-filter", "--order", "10"]);
    cli.ok(&["plugin", "bind", "tool-filter", "--profile", "team", "--order", "5"]);
    let err = cli.fails(&["plugin", "bind", "tool-filter", "--profile", "nope", "--order", "1"]);
    assert!(err.contains("no profile named nope"), "{err}");

    let err = cli.fails(&["plugin", "config", "tool-filter", r#"{"unknown": 1}"#]);
    assert!(err.contains("unknown property"), "{err}");
    let config_file = cli.file("config.json", br#"{"deny": ["*/delete_*"]}"#);
    cli.ok(&["plugin", "config", "tool-filter", &format!("@{config_file}")]);

    let out = cli.ok(&["plugin", "inspect", "tool-filter"]);
    for part in [
        "kind:          mcp-filter (gigmcp:plugin@0.1.0)",
        "gigmcp:plugin/mcp@0.1.0",
        "wasi:cli/stderr",
        r#"{"deny":["*/delete_*"]}"#,
        "global at 10",
        "profile team at 5",
        "\"max_argument_bytes\"",
    ] {
        assert!(out.contains(part), "{part:?} missing in:\n{out}");
    }

    cli.ok(&["plugin", "rollback", "tool-filter"]);
    assert_eq!(
        cli.store()
            .plugin(&PluginName::parse("tool-filter").unwrap())
            .unwrap()
            .revision
            .config,
        "{}"
    );
    let err = cli.fails(&["plugin", "rollback", "tool-filter"]);
    assert!(err.contains("no earlier revision"), "{err}");

    cli.ok(&["plugin", "disable", "tool-filter"]);
    assert!(cli.ok(&["plugin", "list"]).contains(" no "));
    cli.ok(&["plugin", "enable", "tool-filter"]);
    cli.ok(&["plugin", "unbind", "tool-filter", "--profile", "team"]);

    let err = cli.fails(&["plugin", "webhook", "add", "siem", "http://siem.example.com/in"]);
    assert!(err.contains("https"), "{err}");
    cli.ok(&["plugin", "webhook", "add", "siem", "https://siem.example.com/in"]);
    assert!(cli.ok(&["plugin", "webhook", "list"]).contains("webhook:siem"));

    cli.ok(&["plugin", "remove", "tool-filter"]);
    assert!(cli.store().plugins().unwrap().is_empty());
    let kinds: Vec<String> = cli
        .store()
        .audit_events(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        "cli.plugin.add",
        "cli.plugin.config",
        "cli.plugin.bind",
        "cli.plugin.rollback",
        "cli.plugin.remove",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} audit event in {kinds:?}");
    }
}

#[test]
fn plugin_test_runs_a_hook_and_reports_its_cost() {
    let cli = Cli::new();
    let egress = cli.file("egress.wasm", default_plugin("egress-allowlist"));
    let out = cli.ok(&[
        "plugin",
        "test",
        &egress,
        "--config",
        r#"{"allow":["*.example.com"]}"#,
        "--call",
        r#"{"server":"s","host":"api.example.com","port":443}"#,
    ]);
    assert!(out.contains("answer: Allow"), "{out}");
    assert!(out.contains("fuel"), "{out}");
    let err = cli.fails(&["plugin", "test", &egress, "--call", r#"{"params":{}}"#]);
    assert!(
        err.contains("does not describe a call of a egress-policy plugin"),
        "{err}"
    );
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The design target is a reload within a second (the watcher polls every 250 ms); speed is the benchmark's
/// business on a shared machine, so the test only requires the change to be picked up at all.
async fn a_running_host_follows_the_cli_without_a_restart() {
    let cli = Cli::new();
    let store = Arc::new(cli.store());
    let runtime = Harness::runtime().unwrap();
    // Compiled ahead, as a release gateway would in 45 ms: what is timed is noticing the change and swapping.
    let bytes = default_plugin("egress-allowlist");
    runtime.compile(&ComponentHash::of(bytes), bytes).unwrap();
    let host = Arc::new(PluginHost::new(runtime));
    gigmcp_plugins::reload(&host, &store).await.unwrap();
    let watcher = tokio::spawn(gigmcp_plugins::watch(host.clone(), store.clone()));
    let ctx = CallContext::new("t", None);
    let request = EgressRequest {
        server: "s".into(),
        host: "api.example.com".into(),
        port: 443,
        http: None,
        declared: vec![],
    };
    assert!(matches!(
        host.egress_decide(&ctx, &request).await,
        EgressDecision::Deny(_)
    ));

    let egress = cli.file("egress.wasm", default_plugin("egress-allowlist"));
    cli.ok(&[
        "plugin",
        "add",
        &egress,
        "--name",
        "egress",
        "--config",
        r#"{"allow":["*.example.com"]}"#,
    ]);
    cli.ok(&["plugin", "bind", "egress", "--order", "1"]);
    wait_for("the new plugin", async || {
        matches!(host.egress_decide(&ctx, &request).await, EgressDecision::Allow { .. })
    })
    .await;

    cli.ok(&["plugin", "config", "egress", r#"{"allow":["other.test"]}"#]);
    wait_for("the new configuration", async || {
        matches!(host.egress_decide(&ctx, &request).await, EgressDecision::Deny(_))
    })
    .await;
    cli.ok(&["plugin", "rollback", "egress"]);
    wait_for("the rollback", async || {
        matches!(host.egress_decide(&ctx, &request).await, EgressDecision::Allow { .. })
    })
    .await;
    cli.ok(&["plugin", "disable", "egress"]);
    wait_for("the plugin to be disabled", async || {
        matches!(host.egress_decide(&ctx, &request).await, EgressDecision::Deny(_))
    })
    .await;

    // Statistics reach `plugin inspect`.
    cli.ok(&["plugin", "enable", "egress"]);
    wait_for("calls to be counted", async || {
        host.egress_decide(&ctx, &request).await;
        cli.ok(&["plugin", "inspect", "egress"]).contains("calls:         ")
            && !cli.ok(&["plugin", "inspect", "egress"]).contains("none recorded")
    })
    .await;
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_copies_reach_exporters_and_losses_are_counted() {
    let cli = Cli::new();
    let store = Arc::new(cli.store());
    // A webhook nobody listens on: its copies are lost after retries, and counted.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/in", closed.local_addr().unwrap());
    drop(closed);
    cli.ok(&["plugin", "webhook", "add", "dead", &dead]);
    let config = json!({"routes": [
        {"destination": "file:denials", "outcomes": ["deny"], "redact": ["/detail/arguments"]},
        {"destination": "webhook:dead", "kinds": ["tool.call"]}
    ]});
    cli.add_audit_router(&config);
    let host = Arc::new(PluginHost::new(Harness::runtime().unwrap()));
    gigmcp_plugins::reload(&host, &store).await.unwrap();
    let log = AuditLog::start(store.clone(), host.clone(), cli.dir.path().to_path_buf());
    log.record(NewAuditEvent {
        kind: "tool.call".into(),
        actor: "profile:team".into(),
        profile: Some("team".into()),
        server: Some("fs".into()),
        outcome: gigmcp_types::audit::Outcome::Deny,
        detail: json!({"tool": "delete", "arguments": {"path": "/"}}),
    });
    let file = cli.dir.path().join("audit").join("denials.jsonl");
    wait_for("the file export", async || file.exists()).await;
    let line = std::fs::read_to_string(&file).unwrap();
    let exported: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(exported["kind"], "tool.call");
    assert_eq!(exported["detail"], json!({"tool": "delete"}), "redacted");
    // The log of record has the event, unredacted.
    let recorded = store.audit_events(0, 10).unwrap();
    let tool_call = recorded.iter().find(|e| e.kind == "tool.call").unwrap();
    assert_eq!(tool_call.detail["arguments"]["path"], "/");
    wait_for("the webhook's loss to be counted", async || {
        host.loaded().iter().any(|p| p.stats().lost_events > 0)
    })
    .await;
    gigmcp_plugins::flush_stats(&host, &store).unwrap();
    let out = cli.ok(&["plugin", "inspect", "router"]);
    assert!(out.contains("lost events:   1 audit copies"), "{out}");
}

#[test]
fn hostile_test_plugins_are_refused_by_the_cli_too() {
    let cli = Cli::new();
    let rogue = harness::build_repo_plugin("rogue-import").unwrap();
    let rogue = cli.file("rogue.wasm", &rogue);
    let err = cli.fails(&["plugin", "add", &rogue]);
    assert!(err.contains("imports rogue:spy/exfil"), "{err}");
    let command = harness::build_repo_plugin("cli-command").unwrap();
    let command = cli.file("command.wasm", &command);
    let err = cli.fails(&["plugin", "add", &command, "--name", "command"]);
    assert!(err.contains("exports no gigmcp:plugin world"), "{err}");
    assert!(cli.store().plugins().unwrap().is_empty());
}

#[test]
fn audit_copies_pending_at_a_stop_are_delivered_after_a_restart() {
    let cli = Cli::new();
    let config = json!({"routes": [{"destination": "file:all"}]});
    cli.add_audit_router(&config);
    let file = cli.dir.path().join("audit").join("all.jsonl");
    let exported = || -> Vec<String> {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    // A gateway runs, forwards what it records, and stops.
    let run_gateway = |event: Option<&str>, expect: &str| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = Arc::new(cli.store());
            let host = Arc::new(PluginHost::new(Harness::runtime().unwrap()));
            gigmcp_plugins::reload(&host, &store).await.unwrap();
            let log = AuditLog::start(store, host, cli.dir.path().to_path_buf());
            if let Some(kind) = event {
                log.record(NewAuditEvent {
                    kind: kind.into(),
                    actor: "test".into(),
                    profile: None,
                    server: None,
                    outcome: gigmcp_types::audit::Outcome::Ok,
                    detail: json!({}),
                });
            }
            wait_for(expect, async || exported().iter().any(|k| k == expect)).await;
            let store = cli.store();
            wait_for("the forwarding position to be saved", async || {
                store.audit_forwarded_through().unwrap() == Some(store.audit_events_max_id().unwrap())
            })
            .await;
        });
        drop(rt);
    };
    run_gateway(Some("first.event"), "first.event");
    // While no gateway runs, the operator acts: the CLI records the event in the log of record.
    cli.ok(&["plugin", "disable", "router"]);
    cli.ok(&["plugin", "enable", "router"]);
    run_gateway(None, "cli.plugin.enable");
    let kinds = exported();
    assert!(kinds.contains(&"cli.plugin.disable".to_owned()), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "first.event").count(), 1, "{kinds:?}");
}
