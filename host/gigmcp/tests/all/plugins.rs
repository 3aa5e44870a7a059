//! The plugin platform through the real host: the default plugins, hostile plugins built here from
//! `plugins/testing/`, combination across bindings, and hot swaps under load. Components are compiled once
//! per component for all test binaries (an authenticated cache in `target/plugin-test-cache`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gigmcp_plugin_runtime::CandidateError;
use gigmcp_plugin_runtime::harness;
use gigmcp_plugin_runtime::harness::Harness;
use gigmcp_plugin_runtime::{CallFailure, Limits, LoadError, Runtime};
use gigmcp_plugin_runtime::{PluginHost, QUARANTINE_AFTER, RequestDecision, ResponseDecision};
use gigmcp_plugins::defaults;
use gigmcp_plugins::manage;
use gigmcp_plugins::manage::{AddPlugin, ManageError};
use gigmcp_store::Store;
use gigmcp_types::audit::AuditEvent;
use gigmcp_types::names::PluginName;
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::policy::*;
use gigmcp_types::secret::MasterKey;
use gigmcp_types::user::ProfileAccess;
use serde_json::{Value, json};

const TEST_KEY: [u8; 32] = [7; 32];

/// One runtime per test binary: it reserves the pooling allocator's address space once.
fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let dir = harness::repo_root().join("target").join("plugin-test-cache");
            Harness::cached_runtime(&dir, &MasterKey(TEST_KEY), Limits::default()).unwrap()
        })
        .clone()
}

fn default_plugin(name: &str) -> Vec<u8> {
    gigmcp_default_plugins::component(name)
        .unwrap_or_else(|| panic!("no default plugin {name}"))
        .to_vec()
}

/// A test plugin from `plugins/testing/`, built once per test binary.
fn test_plugin(package: &'static str) -> Vec<u8> {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<&'static str, Vec<u8>>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    built
        .entry(package)
        .or_insert_with(|| harness::build_repo_plugin(package).unwrap_or_else(|e| panic!("{e}")))
        .clone()
}

async fn load(bytes: Vec<u8>, config: Value) -> Harness {
    Harness::load(&runtime(), bytes, &config.to_string())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn ctx(profile: Option<&str>) -> CallContext {
    CallContext::new("test", profile.map(|p| ProfileSlug::parse(p).unwrap()))
}

fn egress(server: &str, host: &str, port: u16, declared: &[&str]) -> EgressRequest {
    EgressRequest {
        server: server.into(),
        host: host.into(),
        port,
        http: None,
        declared: declared.iter().map(|s| s.to_string()).collect(),
    }
}

fn tool_call(server: &str, tool: &str, arguments: Value) -> McpRequest {
    McpRequest {
        server: server.into(),
        method: "tools/call".into(),
        name: Some(tool.into()),
        params: json!({"name": tool, "arguments": arguments}),
    }
}

/// A database with plugins added and bound as the CLI does it, and a plugin host loaded from it.
struct Gateway {
    _dir: tempfile::TempDir,
    store: Store,
    host: PluginHost,
}

impl Gateway {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
        Self {
            _dir: dir,
            store,
            host: PluginHost::new(runtime()),
        }
    }

    fn profile(&self, slug: &str) -> ProfileSlug {
        let slug = ProfileSlug::parse(slug).unwrap();
        self.store.create_profile(&slug, "").unwrap();
        slug
    }

    async fn add(&self, name: &str, bytes: Vec<u8>, config: Value) {
        manage::add(
            &runtime(),
            &self.store,
            AddPlugin {
                name: PluginName::parse(name).unwrap(),
                bytes,
                expected_sha256: None,
                kind: None,
                config: Some(config.to_string()),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn bind(&self, name: &str, profile: Option<&ProfileSlug>, position: i64) {
        self.store
            .plugin_bind(&PluginName::parse(name).unwrap(), profile, position)
            .unwrap();
        self.reload().await;
    }

    async fn reload(&self) {
        let report = gigmcp_plugins::reload(&self.host, &self.store).await.unwrap();
        assert!(report.failed.is_empty(), "{report:?}");
    }
}

fn denied_with(decision: &RequestDecision, code: &str) -> DenyReason {
    match decision {
        RequestDecision::Deny(reason) if reason.code == code => reason.clone(),
        other => panic!("expected a denial with code {code}, got {other:?}"),
    }
}

// ---------------------------------------------------------------- the default plugins

#[tokio::test]
async fn egress_allowlist_allows_declared_and_configured_hosts_only() {
    let gw = Gateway::new();
    gw.add(
        "egress-allowlist",
        default_plugin("egress-allowlist"),
        json!({"allow": ["*.example.com"], "servers": {"github": ["api.github.com:8443"]}}),
    )
    .await;
    gw.bind("egress-allowlist", None, 1).await;
    let c = ctx(Some("team"));
    let decide = |r: EgressRequest| {
        let host = &gw.host;
        let c = c.clone();
        async move { host.egress_decide(&c, &r).await }
    };
    assert_eq!(
        decide(egress("fs", "api.example.com", 443, &[])).await,
        EgressDecision::Allow {
            cache_ttl_secs: Some(60)
        }
    );
    // The apex is never implied by a wildcard, and a wildcard never spans labels.
    for host in ["example.com", "a.b.example.com", "example.com.evil.net"] {
        let EgressDecision::Deny(reason) = decide(egress("fs", host, 443, &[])).await else {
            panic!("{host} was allowed");
        };
        assert_eq!(reason.code, "host-not-allowed");
        assert_eq!(reason.plugin.as_deref(), Some("egress-allowlist"));
    }
    // Per-server rules, with their port.
    assert!(matches!(
        decide(egress("github", "api.github.com", 8443, &[])).await,
        EgressDecision::Allow { .. }
    ));
    assert!(matches!(
        decide(egress("github", "api.github.com", 443, &[])).await,
        EgressDecision::Deny(_)
    ));
    assert!(matches!(
        decide(egress("fs", "api.github.com", 8443, &[])).await,
        EgressDecision::Deny(_)
    ));
    // The server's declared hosts.
    assert!(matches!(
        decide(egress("fs", "registry.npmjs.org", 443, &["registry.npmjs.org"])).await,
        EgressDecision::Allow { .. }
    ));
}

#[tokio::test]
async fn no_egress_policy_bound_means_no_egress() {
    let gw = Gateway::new();
    let EgressDecision::Deny(reason) = gw
        .host
        .egress_decide(&ctx(None), &egress("s", "example.com", 443, &[]))
        .await
    else {
        panic!("allowed without a policy");
    };
    assert_eq!(reason.code, "no-egress-policy");
}

#[tokio::test]
async fn header_injector_places_granted_secrets_where_their_placeholders_were() {
    let gw = Gateway::new();
    gw.add(
        "header-injector",
        default_plugin("header-injector"),
        json!({"rules": [{"credential": "gh", "hosts": ["*.github.com"], "header": "X-Token", "template": "token {secret}"}]}),
    )
    .await;
    gw.bind("header-injector", None, 1).await;
    let request = OutboundRequest {
        server: "github".into(),
        method: "GET".into(),
        host: "api.github.com".into(),
        port: 443,
        path: "/user".into(),
        header_names: vec!["authorization".into()],
        placeholders: vec![
            PlaceholderSite {
                credential: "gh".into(),
                location: PlaceholderLocation::Header("authorization".into()),
                before: "Bearer ".into(),
                after: "".into(),
            },
            PlaceholderSite {
                credential: "other".into(),
                location: PlaceholderLocation::Query("key".into()),
                before: "".into(),
                after: "".into(),
            },
        ],
    };
    let grants = [Grant {
        credential: "gh".into(),
        handle: SecretHandle("vault:gh:1".into()),
    }];
    let ops = gw.host.inject_credentials(&ctx(None), &request, &grants).await.unwrap();
    let secret = TemplatePart::Secret(SecretHandle("vault:gh:1".into()));
    assert_eq!(
        ops,
        vec![
            RequestOp::SetHeader {
                name: "authorization".into(),
                value: vec![TemplatePart::Literal("Bearer ".into()), secret.clone()],
            },
            RequestOp::SetHeader {
                name: "x-token".into(),
                value: vec![TemplatePart::Literal("token ".into()), secret],
            },
        ],
        "a credential not granted (\"other\") must not be placed"
    );
    // Without grants nothing is placed.
    assert!(
        gw.host
            .inject_credentials(&ctx(None), &request, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_secret_kept_from_an_earlier_request_is_refused() {
    let gw = Gateway::new();
    gw.add("hoarder", test_plugin("secret-hoarder"), json!({})).await;
    gw.bind("hoarder", None, 1).await;
    let request = |host: &str| OutboundRequest {
        server: "s".into(),
        method: "GET".into(),
        host: host.into(),
        port: 443,
        path: "/".into(),
        header_names: vec![],
        placeholders: vec![],
    };
    let grant = |name: &str| Grant {
        credential: name.into(),
        handle: SecretHandle(format!("vault:{name}")),
    };
    let first = gw
        .host
        .inject_credentials(&ctx(None), &request("a.test"), &[grant("a")])
        .await
        .unwrap();
    assert_eq!(
        first,
        vec![RequestOp::SetHeader {
            name: "authorization".into(),
            value: vec![TemplatePart::Secret(SecretHandle("vault:a".into()))],
        }]
    );
    // The plugin places the secret it kept from the first request into a request for another host.
    let reason = gw
        .host
        .inject_credentials(&ctx(None), &request("b.test"), &[grant("b")])
        .await
        .unwrap_err();
    assert_eq!(reason.code, "plugin-malformed-result", "{reason}");
}

#[tokio::test]
async fn claims_mapper_maps_roles_and_refuses_unmapped_logins() {
    let gw = Gateway::new();
    gw.add(
        "claims-mapper",
        default_plugin("claims-mapper"),
        json!({"preset": "zitadel", "role_map": {"gw-admin": "admin", "gw-user": "user"}, "issuers": ["https://idp.test"]}),
    )
    .await;
    gw.bind("claims-mapper", None, 1).await;
    let identity = |issuer: &str, claims: Value| Identity {
        issuer: issuer.into(),
        subject: "1234".into(),
        claims,
        token_fingerprint: "sha256:abcd".into(),
    };
    let roles = "urn:zitadel:iam:org:project:roles";
    let admin = gw
        .host
        .map_identity(
            &ctx(None),
            &identity("https://idp.test", json!({roles: {"gw-admin": {"1": "org"}}})),
        )
        .await;
    assert_eq!(
        admin,
        AuthOutcome::Principal(Principal {
            user: "https://idp.test#1234".into(),
            roles: vec!["admin".into()],
            profiles: ProfileAccess::All,
        })
    );
    let user = gw
        .host
        .map_identity(
            &ctx(None),
            &identity(
                "https://idp.test",
                json!({roles: {"gw-user": {}}, "gigmcp_profiles": ["team"]}),
            ),
        )
        .await;
    let AuthOutcome::Principal(user) = user else {
        panic!("{user:?}")
    };
    assert_eq!(user.profiles, ProfileAccess::Only(vec!["team".into()]));
    assert!(matches!(
        gw.host
            .map_identity(
                &ctx(None),
                &identity("https://idp.test", json!({roles: {"viewer": {}}}))
            )
            .await,
        AuthOutcome::Forbidden(_)
    ));
    assert!(matches!(
        gw.host
            .map_identity(
                &ctx(None),
                &identity("https://evil.test", json!({roles: {"gw-admin": {}}}))
            )
            .await,
        AuthOutcome::Unauthenticated(_)
    ));
}

#[tokio::test]
async fn audit_router_routes_copies_by_kind_and_outcome_and_redacts_them() {
    let h = load(
        default_plugin("audit-router"),
        json!({"routes": [
            {"destination": "file:denials", "outcomes": ["deny"], "redact": ["/detail/arguments", "/actor"]},
            {"destination": "stdout", "kinds": ["plugin.*"]}
        ]}),
    )
    .await;
    let event = |id: i64, kind: &str, outcome: &str| AuditEvent {
        id,
        time_ms: 1,
        kind: kind.into(),
        actor: "profile:team".into(),
        profile: Some("team".into()),
        server: Some("fs".into()),
        outcome: gigmcp_types::audit::Outcome::parse(outcome).expect("a known outcome"),
        detail: json!({"tool": "write", "arguments": {"path": "/etc"}}),
    };
    let (deliveries, _) = h
        .route(&[
            event(1, "tool.call", "deny"),
            event(2, "plugin.add", "ok"),
            event(3, "tool.call", "ok"),
        ])
        .await
        .unwrap();
    let deliveries = deliveries.unwrap();
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0].destination, "file:denials");
    assert_eq!(deliveries[0].event.actor, "[redacted]");
    assert_eq!(deliveries[0].event.detail, json!({"tool": "write"}));
    assert_eq!(
        (deliveries[1].destination.as_str(), deliveries[1].event.id),
        ("stdout", 2)
    );
    // A destination that is not an exporter is refused with the configuration.
    let refused = Harness::load(
        &runtime(),
        default_plugin("audit-router"),
        &json!({"routes": [{"destination": "https://evil.test/"}]}).to_string(),
    )
    .await;
    assert!(
        matches!(refused, Err(CandidateError::ConfigRefused(_))),
        "{:?}",
        refused.err()
    );
}

#[tokio::test]
async fn tool_filter_denies_calls_hides_listed_tools_and_redacts_secrets() {
    let gw = Gateway::new();
    let team = gw.profile("team");
    gw.add(
        "tool-filter",
        default_plugin("tool-filter"),
        json!({"deny": ["*/delete_*"], "profiles": {"team": {"allow": ["fs/*"]}}, "max_argument_bytes": 100}),
    )
    .await;
    gw.bind("tool-filter", None, 1).await;
    let team_ctx = ctx(Some("team"));
    let allowed = gw
        .host
        .filter_request(&team_ctx, tool_call("fs", "read_file", json!({"path": "/a"})))
        .await;
    assert!(
        matches!(allowed, RequestDecision::Allow { rewritten: false, .. }),
        "{allowed:?}"
    );
    denied_with(
        &gw.host
            .filter_request(&team_ctx, tool_call("fs", "delete_file", json!({})))
            .await,
        "tool-denied",
    );
    // The profile's own rules narrow the global ones: only fs/* for team, anything (not denied) elsewhere.
    denied_with(
        &gw.host
            .filter_request(&team_ctx, tool_call("github", "create_issue", json!({})))
            .await,
        "tool-denied",
    );
    assert!(matches!(
        gw.host
            .filter_request(&ctx(Some("other")), tool_call("github", "create_issue", json!({})))
            .await,
        RequestDecision::Allow { .. }
    ));
    denied_with(
        &gw.host
            .filter_request(
                &team_ctx,
                tool_call("fs", "write_file", json!({"data": "x".repeat(200)})),
            )
            .await,
        "arguments-too-large",
    );

    // Denied tools are hidden from tools/list.
    let listed = McpResponse {
        server: "fs".into(),
        method: "tools/list".into(),
        name: None,
        result: json!({"tools": [{"name": "read_file"}, {"name": "delete_file"}, {"name": "delete_dir"}, {"name": "stat"}]}),
    };
    let ResponseDecision::Pass { result, modified_by } = gw.host.filter_response(&team_ctx, listed).await else {
        panic!("the list was not filtered");
    };
    assert_eq!(result, json!({"tools": [{"name": "read_file"}, {"name": "stat"}]}));
    assert_eq!(modified_by, ["tool-filter"], "the plugin that hid the tools is named");

    // Secret-looking strings are redacted from results; ordinary text passes untouched.
    let key = format!("ghp_{}", "A1b2".repeat(9));
    let result =
        json!({"content": [{"type": "text", "text": format!("token: {key}\nok")}, {"type": "text", "text": "plain"}]});
    let response = McpResponse {
        server: "fs".into(),
        method: "tools/call".into(),
        name: Some("read_file".into()),
        result,
    };
    let ResponseDecision::Pass { result, .. } = gw.host.filter_response(&team_ctx, response).await else {
        panic!("denied");
    };
    assert_eq!(result["content"][0]["text"], "token: [REDACTED]\nok");
    assert_eq!(result["content"][1]["text"], "plain");
    drop(team);
}

#[tokio::test]
async fn the_defaults_are_installed_once_bound_globally_and_an_operator_removal_sticks() {
    let gw = Gateway::new();
    defaults::install(&runtime(), &gw.store, gigmcp_default_plugins::COMPONENTS)
        .await
        .unwrap();
    gw.reload().await;
    let records = gw.store.plugins().unwrap();
    let names: Vec<_> = records.iter().map(|r| r.name.to_string()).collect();
    assert_eq!(
        names,
        [
            "audit-router",
            "claims-mapper",
            "egress-allowlist",
            "header-injector",
            "tool-filter"
        ]
    );
    for record in &records {
        assert!(record.builtin && record.enabled);
        assert_eq!(defaults::kind_of(record.name.as_str()), Some(record.kind));
    }
    assert_eq!(gw.store.plugin_bindings().unwrap().len(), 5);
    // Secure out of the box: egress only to declared hosts.
    assert!(matches!(
        gw.host
            .egress_decide(&ctx(None), &egress("s", "example.com", 443, &[]))
            .await,
        EgressDecision::Deny(_)
    ));
    assert!(matches!(
        gw.host
            .egress_decide(&ctx(None), &egress("s", "example.com", 443, &["example.com"]))
            .await,
        EgressDecision::Allow { .. }
    ));
    gw.store
        .plugin_remove(&PluginName::parse("tool-filter").unwrap())
        .unwrap();
    assert!(
        defaults::install(&runtime(), &gw.store, gigmcp_default_plugins::COMPONENTS)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(gw.store.plugins().unwrap().len(), 4);
}

// ---------------------------------------------------------------- hostile plugins

async fn hostile(mode: &str) -> Harness {
    load(test_plugin("hostile"), json!({"mode": mode})).await
}

fn any_request() -> McpRequest {
    tool_call("fs", "read_file", json!({}))
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_at_the_deadline() {
    let h = hostile("spin").await;
    let started = Instant::now();
    let failure = h.on_request(&ctx(None), &any_request()).await.unwrap_err();
    // Normally the deadline stops it; on a machine so loaded that the call's thread keeps losing the CPU, the
    // deadline is extended and the fuel budget may stop it first.
    assert!(
        failure == CallFailure::Timeout(Limits::default().deadline) || failure == CallFailure::OutOfFuel,
        "{failure:?}"
    );
    // Not a speed check (that is the benchmark's, on a shared machine): only that the call was cut off
    // rather than left to run.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_the_memory_cap() {
    let h = hostile("bomb").await;
    let failure = h.on_request(&ctx(None), &any_request()).await.unwrap_err();
    assert_eq!(failure, CallFailure::OutOfMemory(Limits::default().memory_bytes));
    // Allocating past the cap while being configured refuses the configuration.
    let refused = Harness::load(&runtime(), test_plugin("hostile"), r#"{"mode":"init-bomb"}"#).await;
    assert!(
        matches!(refused, Err(CandidateError::Call(CallFailure::OutOfMemory(_)))),
        "{:?}",
        refused.err()
    );
}

#[tokio::test]
async fn a_panic_is_a_trap_and_fails_closed() {
    let h = hostile("panic").await;
    let failure = h.on_request(&ctx(None), &any_request()).await.unwrap_err();
    assert!(matches!(failure, CallFailure::Trap(_)), "{failure:?}");
    assert_eq!(failure.code(), "plugin-trap");
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let h = hostile("huge").await;
    let failure = h.on_request(&ctx(None), &any_request()).await.unwrap_err();
    assert!(
        matches!(failure, CallFailure::OutputTooLarge { limit, .. } if limit == Limits::default().max_output_bytes),
        "{failure:?}"
    );
}

#[tokio::test]
async fn an_oversized_input_is_refused_before_the_plugin_sees_it() {
    let h = load(default_plugin("tool-filter"), json!({})).await;
    let big = tool_call(
        "fs",
        "write",
        json!({"data": "x".repeat(Limits::default().max_input_bytes)}),
    );
    let failure = h.on_request(&ctx(None), &big).await.unwrap_err();
    assert!(matches!(failure, CallFailure::InputTooLarge { .. }), "{failure:?}");
    assert_eq!(
        h.stats().failures,
        0,
        "an input refused unseen is not the plugin's failure"
    );
}

#[tokio::test]
async fn sleeping_in_a_host_call_is_cut_off_at_the_deadline() {
    let h = hostile("sleep").await;
    let started = Instant::now();
    let failure = h.on_request(&ctx(None), &any_request()).await.unwrap_err();
    assert!(matches!(failure, CallFailure::Timeout(_)), "{failure:?}");
    // Not a speed check (that is the benchmark's, on a shared machine): only that the call was cut off
    // rather than left to run.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn fuel_bounds_a_call_independently_of_the_clock() {
    let limits = Limits {
        deadline: Duration::from_secs(5),
        fuel: 2_000_000,
        ..Limits::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let runtime = Harness::cached_runtime(dir.path(), &MasterKey(TEST_KEY), limits).unwrap();
    let h = Harness::load(&runtime, test_plugin("hostile"), r#"{"mode":"spin"}"#)
        .await
        .unwrap();
    let failure = h.on_request(&ctx(None), &any_request()).await.unwrap_err();
    assert_eq!(failure, CallFailure::OutOfFuel);
}

#[tokio::test]
async fn a_plugin_using_files_sockets_and_the_environment_gets_errors_never_access() {
    // Something to connect to: the plugin must never reach it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let h = load(test_plugin("hostile"), json!({"mode": "snoop", "connect": address})).await;
    for interface in [
        "wasi:filesystem/preopens",
        "wasi:sockets/tcp",
        "wasi:sockets/ip-name-lookup",
    ] {
        assert!(
            h.imports.iter().any(|i| i.starts_with(interface)),
            "the test plugin should import {interface}: {:?}",
            h.imports
        );
    }
    let (action, _) = h.on_request(&ctx(None), &any_request()).await.unwrap();
    let RequestAction::Deny(report) = action else {
        panic!("{action:?}")
    };
    let report = report.message;
    for part in [
        "file: error",
        "dir: error",
        "write: error",
        "env vars: 0",
        "connect: error",
        "lookup: error",
    ] {
        assert!(report.contains(part), "expected {part:?} in {report:?}");
    }
    assert!(listener.accept().is_err(), "the plugin connected to {address}");
    assert!(!std::path::Path::new("/tmp/gigmcp-plugin-was-here").exists());
}

#[tokio::test]
async fn an_import_outside_wasi_and_the_world_is_refused_at_load() {
    let refused = Harness::load(&runtime(), test_plugin("rogue-import"), "{}").await;
    match refused {
        Err(CandidateError::Load(LoadError::ForbiddenImport { import, .. })) => assert_eq!(import, "rogue:spy/exfil"),
        other => panic!("{:?}", other.err()),
    }
}

#[tokio::test]
async fn a_component_without_a_plugin_world_is_refused() {
    let refused = Harness::load(&runtime(), test_plugin("cli-command"), "{}").await;
    assert!(
        matches!(refused, Err(CandidateError::NoWorld(_))),
        "{:?}",
        refused.err()
    );
    let refused = Harness::load(&runtime(), b"\0asm\x01\0\0\0".to_vec(), "{}").await;
    assert!(
        matches!(refused, Err(CandidateError::Load(LoadError::NotAComponent(_)))),
        "a core module: {:?}",
        refused.err()
    );
}

#[tokio::test]
async fn a_plugin_of_another_world_is_refused_as_the_claimed_kind() {
    let gw = Gateway::new();
    let result = manage::add(
        &runtime(),
        &gw.store,
        AddPlugin {
            name: PluginName::parse("claims-to-be-egress").unwrap(),
            bytes: default_plugin("tool-filter"),
            expected_sha256: None,
            kind: Some(PluginKind::EgressPolicy),
            config: None,
        },
    )
    .await;
    assert!(
        matches!(
            result,
            Err(ManageError::Candidate(CandidateError::KindMismatch {
                expected: PluginKind::EgressPolicy,
                found: PluginKind::McpFilter
            }))
        ),
        "{:?}",
        result.err()
    );
    assert!(
        gw.store.plugins().unwrap().is_empty(),
        "a refused plugin changes nothing"
    );
}

#[tokio::test]
async fn a_tampered_file_is_refused_by_its_hash() {
    let gw = Gateway::new();
    let genuine = default_plugin("egress-allowlist");
    let mut tampered = genuine.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x55;
    let result = manage::add(
        &runtime(),
        &gw.store,
        AddPlugin {
            name: PluginName::parse("egress").unwrap(),
            bytes: tampered,
            expected_sha256: Some(ComponentHash::of(&genuine)),
            kind: None,
            config: None,
        },
    )
    .await;
    assert!(
        matches!(result, Err(ManageError::Candidate(CandidateError::HashMismatch { .. }))),
        "{:?}",
        result.err()
    );
    assert!(gw.store.plugins().unwrap().is_empty());
}

#[tokio::test]
async fn a_component_modified_in_the_database_is_not_run() {
    let gw = Gateway::new();
    gw.add("tool-filter", default_plugin("tool-filter"), json!({})).await;
    gw.bind("tool-filter", None, 1).await;
    let sha = ComponentHash::of(&default_plugin("tool-filter"));
    // An attacker with write access to the database swaps the component's bytes.
    let db = rusqlite::Connection::open(gw._dir.path().join("db.sqlite")).unwrap();
    db.execute(
        "UPDATE plugin_blobs SET bytes = ?1 WHERE sha256 = ?2",
        rusqlite::params![test_plugin("hostile"), &sha.0[..]],
    )
    .unwrap();
    db.execute("UPDATE plugins SET generation = generation + 1", [])
        .unwrap();
    drop(db);
    let report = gigmcp_plugins::reload(&gw.host, &gw.store).await.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].1.contains("does not match its sha256"), "{report:?}");
    // The previous, verified load keeps running.
    assert!(matches!(
        gw.host.filter_request(&ctx(None), any_request()).await,
        RequestDecision::Allow { .. }
    ));
}

#[tokio::test]
async fn a_tampered_cached_artifact_is_recompiled_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey([9; 32]);
    let bytes = default_plugin("egress-allowlist");
    let sha = ComponentHash::of(&bytes);
    let first = Harness::cached_runtime(dir.path(), &key, Limits::default()).unwrap();
    first.compile(&sha, &bytes).unwrap();
    drop(first);
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let file = &cached[0];
    let mut artifact = std::fs::read(file).unwrap();
    let middle = artifact.len() / 2;
    artifact[middle] ^= 0xff;
    std::fs::write(file, &artifact).unwrap();
    let modified = std::fs::metadata(file).unwrap().modified().unwrap();
    // A cache written under another master key does not verify either.
    let second = Harness::cached_runtime(dir.path(), &key, Limits::default()).unwrap();
    let h = Harness::load(&second, bytes.clone(), "{}").await.unwrap();
    assert!(matches!(
        h.egress(&ctx(None), &egress("s", "a.test", 443, &["a.test"])).await,
        Ok((EgressDecision::Allow { .. }, _))
    ));
    assert_ne!(
        std::fs::metadata(file).unwrap().modified().unwrap(),
        modified,
        "the tampered artifact should have been replaced by a fresh compile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_quarantine_a_plugin_until_it_is_enabled_again() {
    let gw = Gateway::new();
    gw.add("panicky", test_plugin("hostile"), json!({"mode": "panic"}))
        .await;
    gw.bind("panicky", None, 1).await;
    for _ in 0..QUARANTINE_AFTER {
        denied_with(&gw.host.filter_request(&ctx(None), any_request()).await, "plugin-trap");
    }
    let reason = denied_with(
        &gw.host.filter_request(&ctx(None), any_request()).await,
        "plugin-quarantined",
    );
    assert!(reason.message.contains("gigmcp plugin enable"), "{reason}");
    gigmcp_plugins::flush_stats(&gw.host, &gw.store).unwrap();
    let record = gw.store.plugin(&PluginName::parse("panicky").unwrap()).unwrap();
    let stats = gw.store.plugin_stats(record.id).unwrap().unwrap();
    assert!(stats.quarantined);
    assert_eq!(stats.failures, QUARANTINE_AFTER as u64);
    // Enabling it again starts it afresh (and it fails again: it still panics).
    gw.store.plugin_set_enabled(&record.name, true).unwrap();
    gw.reload().await;
    denied_with(&gw.host.filter_request(&ctx(None), any_request()).await, "plugin-trap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_calls_succeed_while_hostile_plugins_fail() {
    let gw = Gateway::new();
    let good = gw.profile("good");
    let bad = gw.profile("bad");
    gw.add("tool-filter", default_plugin("tool-filter"), json!({})).await;
    gw.add("spinner", test_plugin("hostile"), json!({"mode": "spin"})).await;
    gw.add("bomb", test_plugin("hostile"), json!({"mode": "bomb"})).await;
    gw.bind("tool-filter", Some(&good), 1).await;
    gw.bind("spinner", Some(&bad), 1).await;
    gw.bind("bomb", Some(&bad), 2).await;
    let gw = Arc::new(gw);
    let stop = Arc::new(AtomicBool::new(false));
    let good_calls = Arc::new(AtomicU64::new(0));
    let worker = {
        let (gw, stop, good_calls) = (gw.clone(), stop.clone(), good_calls.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let decision = gw.host.filter_request(&ctx(Some("good")), any_request()).await;
                assert!(matches!(decision, RequestDecision::Allow { .. }), "{decision:?}");
                good_calls.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    for _ in 0..QUARANTINE_AFTER + 2 {
        let decision = gw.host.filter_request(&ctx(Some("bad")), any_request()).await;
        assert!(matches!(decision, RequestDecision::Deny(_)), "{decision:?}");
    }
    stop.store(true, Ordering::Relaxed);
    worker.await.unwrap();
    assert!(good_calls.load(Ordering::Relaxed) > 0);
}

// ---------------------------------------------------------------- combination and hot swaps

#[tokio::test]
async fn profile_bindings_only_narrow_and_global_filters_judge_the_final_request() {
    let gw = Gateway::new();
    let team = gw.profile("team");
    // Global: deny every delete_* tool. Team: a tagging filter that rewrites the request, then an allowlist.
    gw.add(
        "global-filter",
        default_plugin("tool-filter"),
        json!({"deny": ["*/delete_*"]}),
    )
    .await;
    gw.add("tagger", test_plugin("hostile"), json!({"mode": "tag", "tag": "team"}))
        .await;
    gw.add("team-filter", default_plugin("tool-filter"), json!({"allow": ["fs/*"]}))
        .await;
    gw.bind("global-filter", None, 1).await;
    gw.bind("tagger", Some(&team), 1).await;
    gw.bind("team-filter", Some(&team), 2).await;
    let team_ctx = ctx(Some("team"));
    // The profile cannot widen: a globally denied tool stays denied for team.
    let reason = denied_with(
        &gw.host
            .filter_request(&team_ctx, tool_call("fs", "delete_file", json!({})))
            .await,
        "tool-denied",
    );
    assert_eq!(reason.plugin.as_deref(), Some("global-filter"));
    // The profile narrows.
    denied_with(
        &gw.host
            .filter_request(&team_ctx, tool_call("gh", "issue", json!({})))
            .await,
        "tool-denied",
    );
    // Rewrites compose, and the global filter saw (and allowed) the rewritten request.
    match gw
        .host
        .filter_request(&team_ctx, tool_call("fs", "read", json!({})))
        .await
    {
        RequestDecision::Allow {
            params,
            rewritten: true,
        } => assert_eq!(params["tag"], "team"),
        other => panic!("{other:?}"),
    }
    // Other profiles get only the global policy.
    match gw
        .host
        .filter_request(&ctx(Some("other")), tool_call("gh", "issue", json!({})))
        .await
    {
        RequestDecision::Allow { rewritten: false, .. } => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn instances_are_never_shared_between_profiles() {
    let gw = Gateway::new();
    gw.add("counter", test_plugin("hostile"), json!({"mode": "count"}))
        .await;
    gw.bind("counter", None, 1).await;
    let count = async |profile: &str| match gw.host.filter_request(&ctx(Some(profile)), any_request()).await {
        RequestDecision::Allow { params, .. } => params["count"].as_u64().unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(count("alpha").await, 1);
    assert_eq!(count("alpha").await, 2, "a tenant's calls reuse its warm instance");
    assert_eq!(count("beta").await, 1, "another tenant gets an instance of its own");
    assert_eq!(count("alpha").await, 3);
    assert_eq!(count("beta").await, 2);
}

#[tokio::test]
async fn any_deny_wins_across_egress_policies() {
    let gw = Gateway::new();
    let team = gw.profile("team");
    gw.add(
        "allow-all-example",
        default_plugin("egress-allowlist"),
        json!({"allow": ["*.example.com"]}),
    )
    .await;
    gw.add(
        "team-narrow",
        default_plugin("egress-allowlist"),
        json!({"allow": ["api.example.com"], "cache_ttl_secs": 5}),
    )
    .await;
    gw.bind("allow-all-example", None, 1).await;
    gw.bind("team-narrow", Some(&team), 1).await;
    let team_ctx = ctx(Some("team"));
    assert_eq!(
        gw.host
            .egress_decide(&team_ctx, &egress("s", "api.example.com", 443, &[]))
            .await,
        EgressDecision::Allow {
            cache_ttl_secs: Some(5)
        },
        "both allow: the shortest cache TTL"
    );
    let EgressDecision::Deny(reason) = gw
        .host
        .egress_decide(&team_ctx, &egress("s", "www.example.com", 443, &[]))
        .await
    else {
        panic!("the profile's denial was overridden");
    };
    assert_eq!(reason.plugin.as_deref(), Some("team-narrow"));
    assert!(matches!(
        gw.host
            .egress_decide(&ctx(Some("other")), &egress("s", "www.example.com", 443, &[]))
            .await,
        EgressDecision::Allow { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_under_load_fails_no_call() {
    let gw = Gateway::new();
    let tagger = test_plugin("hostile");
    gw.add("swapped", tagger.clone(), json!({"mode": "tag", "tag": "v0"}))
        .await;
    gw.bind("swapped", None, 1).await;
    let gw = Arc::new(gw);
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..4)
        .map(|i| {
            let (gw, stop) = (gw.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = std::collections::BTreeSet::new();
                let mut calls = 0u64;
                let profile = format!("p{i}");
                while !stop.load(Ordering::Relaxed) {
                    match gw.host.filter_request(&ctx(Some(&profile)), any_request()).await {
                        RequestDecision::Allow { params, .. } => {
                            seen.insert(params["tag"].as_str().unwrap_or("?").to_owned());
                        }
                        RequestDecision::Deny(reason) => panic!("call {calls} failed during a swap: {reason}"),
                    }
                    calls += 1;
                    tokio::task::yield_now().await;
                }
                (calls, seen)
            })
        })
        .collect();
    for swap in 1..=20 {
        // Alternate between a new configuration and a new component (the egress allowlist's bytes would be
        // refused as another kind, so the "new version" is the same component with another tag).
        if swap % 2 == 0 {
            gw.add(
                "swapped",
                tagger.clone(),
                json!({"mode": "tag", "tag": format!("v{swap}")}),
            )
            .await;
        } else {
            manage::configure(
                &runtime(),
                &gw.store,
                &PluginName::parse("swapped").unwrap(),
                &json!({"mode": "tag", "tag": format!("v{swap}")}).to_string(),
                None,
            )
            .await
            .unwrap();
        }
        gw.reload().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut tags = std::collections::BTreeSet::new();
    for caller in callers {
        let (calls, seen) = caller.await.unwrap();
        total += calls;
        tags.extend(seen);
    }
    assert!(total > 100, "only {total} calls");
    assert!(tags.len() >= 10, "the swaps were not seen by callers: {tags:?}");
    assert!(tags.contains("v20"));
}

#[tokio::test]
async fn a_request_in_flight_finishes_on_the_versions_it_started_with() {
    let gw = Gateway::new();
    gw.add("tagger", test_plugin("hostile"), json!({"mode": "tag", "tag": "old"}))
        .await;
    gw.bind("tagger", None, 1).await;
    let tag = |d: RequestDecision| match d {
        RequestDecision::Allow { params, .. } => params["tag"].as_str().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    // A request starts: it takes the bound plugins once, for all its hooks.
    let in_flight = gw.host.current();
    assert_eq!(tag(in_flight.filter_request(&ctx(None), any_request()).await), "old");
    gw.add("tagger", test_plugin("hostile"), json!({"mode": "tag", "tag": "new"}))
        .await;
    gw.reload().await;
    assert_eq!(tag(in_flight.filter_request(&ctx(None), any_request()).await), "old");
    assert_eq!(tag(gw.host.filter_request(&ctx(None), any_request()).await), "new");
}

#[tokio::test]
async fn a_rollback_restores_the_previous_revision() {
    let gw = Gateway::new();
    gw.add("tagger", test_plugin("hostile"), json!({"mode": "tag", "tag": "one"}))
        .await;
    gw.bind("tagger", None, 1).await;
    let name = PluginName::parse("tagger").unwrap();
    manage::configure(&runtime(), &gw.store, &name, r#"{"mode":"tag","tag":"two"}"#, None)
        .await
        .unwrap();
    gw.reload().await;
    let tag = |d: RequestDecision| match d {
        RequestDecision::Allow { params, .. } => params["tag"].as_str().unwrap().to_owned(),
        other => panic!("{other:?}"),
    };
    assert_eq!(tag(gw.host.filter_request(&ctx(None), any_request()).await), "two");
    gw.store.plugin_rollback(&name).unwrap();
    gw.reload().await;
    assert_eq!(tag(gw.host.filter_request(&ctx(None), any_request()).await), "one");
    // A configuration the schema refuses changes nothing.
    let refused = manage::configure(&runtime(), &gw.store, &name, r#"{"mode":"nope"}"#, None).await;
    assert!(
        matches!(refused, Err(ManageError::Candidate(CandidateError::InvalidConfig(_)))),
        "{:?}",
        refused.err()
    );
    assert_eq!(
        gw.store.plugin(&name).unwrap().revision.config,
        r#"{"mode":"tag","tag":"one"}"#
    );
}
