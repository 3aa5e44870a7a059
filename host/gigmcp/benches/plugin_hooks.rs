//! The cost of policy hooks: the default plugins called through the plugin host, against a native Rust
//! implementation of the same policies in the same run.
//!
//! Run: `cargo bench -p gigmcp --bench plugin_hooks` (release profile). Measures, each call timed alone:
//! - warm: `egress_decide` with the egress allowlist on a pooled instance;
//! - fresh: the same call for a tenant never seen before (instantiate + init + call);
//! - all hooks of one tool call: mcp-filter request, egress decision, credential injection, mcp-filter
//!   response, as a tool call that makes one outbound request goes through them.
//!
//! Targets (issue #4): warm ≤ 3 µs p50, fresh ≤ 100 µs, all hooks ≤ 20 µs p50.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use gigmcp_plugin_runtime::harness::Harness;
use gigmcp_plugin_runtime::{PluginHost, RequestDecision, ResponseDecision};
use gigmcp_plugins::manage;
use gigmcp_plugins::manage::AddPlugin;
use gigmcp_store::Store;
use gigmcp_types::names::PluginName;
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::policy::*;
use serde_json::{Value, json};

const WARM_CALLS: usize = 100_000;
const FRESH_CALLS: usize = 2_000;
const REQUEST_CALLS: usize = 20_000;

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    Stats {
        p50: at(0.5),
        p99: at(0.99),
        mean,
    }
}

fn row(what: &str, s: &Stats, target: &str) {
    println!(
        "{what:<44} p50 {:>9.2} µs   p99 {:>9.2} µs   mean {:>9.2} µs   {target}",
        s.p50.as_secs_f64() * 1e6,
        s.p99.as_secs_f64() * 1e6,
        s.mean.as_secs_f64() * 1e6
    );
}

// ---- native implementations of the same policies

/// `*.example.com` (one label) or exact, port 443 by default: what egress-allowlist decides.
fn native_egress(rules: &[(String, bool)], host: &str, port: u16) -> bool {
    port == 443
        && rules.iter().any(|(pattern, wildcard)| {
            if *wildcard {
                host.strip_suffix(pattern.as_str())
                    .and_then(|rest| rest.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty() && !label.contains('.'))
            } else {
                host == pattern
            }
        })
}

fn native_glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, rest)) => {
            text.starts_with(prefix) && (rest.is_empty() || text[prefix.len()..].contains(rest.trim_end_matches('*')))
        }
    }
}

/// What tool-filter decides on a request (allow/deny lists), and its scan of a response for secrets.
fn native_tool_filter(deny: &[&str], server: &str, params: &Value) -> bool {
    let tool = params["name"].as_str().unwrap_or_default();
    let qualified = format!("{server}/{tool}");
    !deny.iter().any(|p| native_glob(p, &qualified))
}

fn native_scan(result: &Value) -> bool {
    let text = result.to_string();
    ["ghp_", "AKIA", "PRIVATE KEY", "eyJ", "gig_"]
        .iter()
        .any(|h| text.contains(h))
}

fn native_inject(placeholders: &[PlaceholderSite], grants: &HashMap<String, SecretHandle>) -> Vec<RequestOp> {
    placeholders
        .iter()
        .filter_map(|site| {
            let handle = grants.get(&site.credential)?;
            let PlaceholderLocation::Header(name) = &site.location else {
                return None;
            };
            Some(RequestOp::SetHeader {
                name: name.clone(),
                value: vec![
                    TemplatePart::Literal(site.before.clone()),
                    TemplatePart::Secret(handle.clone()),
                ],
            })
        })
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.sqlite")).unwrap();
    let runtime = Harness::runtime().unwrap();
    let add = |name: &str, config: Value| {
        let store = &store;
        let runtime = runtime.clone();
        let name = name.to_owned();
        async move {
            manage::add(
                &runtime,
                store,
                AddPlugin {
                    name: PluginName::parse(&name).unwrap(),
                    bytes: gigmcp_default_plugins::component(&name).unwrap().to_vec(),
                    expected_sha256: None,
                    kind: None,
                    config: Some(config.to_string()),
                },
            )
            .await
            .unwrap();
            store.plugin_bind(&PluginName::parse(&name).unwrap(), None, 1).unwrap();
        }
    };
    add(
        "egress-allowlist",
        json!({"allow": ["*.example.com", "api.github.com"]}),
    )
    .await;
    add("header-injector", json!({})).await;
    add("tool-filter", json!({"deny": ["*/delete_*"]})).await;
    let host = PluginHost::new(runtime);
    gigmcp_plugins::reload(&host, &store).await.unwrap();

    let team = ProfileSlug::parse("team").unwrap();
    let ctx = CallContext::new("bench", Some(team));
    let egress = EgressRequest {
        server: "github".into(),
        host: "api.example.com".into(),
        port: 443,
        http: None,
        declared: vec![],
    };
    let outbound = OutboundRequest {
        server: "github".into(),
        method: "GET".into(),
        host: "api.github.com".into(),
        port: 443,
        path: "/user".into(),
        header_names: vec!["authorization".into(), "accept".into()],
        placeholders: vec![PlaceholderSite {
            credential: "gh".into(),
            location: PlaceholderLocation::Header("authorization".into()),
            before: "Bearer ".into(),
            after: String::new(),
        }],
    };
    let grants = vec![Grant {
        credential: "gh".into(),
        handle: SecretHandle("vault:gh".into()),
    }];
    let params = json!({"name": "read_file", "arguments": {"path": "/srv/data/report.txt"}});
    let result = json!({"content": [{"type": "text", "text": "The quarterly report: revenue up 4%, costs flat."}]});

    println!(
        "# plugin hooks: {} (release build, 1 thread)",
        env!("CARGO_PKG_VERSION")
    );
    println!("method: each call timed alone with Instant; warm-up excluded; p50/p99/mean over the calls");
    println!();

    // Warm-up: compile caches, pools, branch predictors.
    for _ in 0..2_000 {
        black_box(host.egress_decide(&ctx, &egress).await);
    }

    let mut samples = Vec::with_capacity(WARM_CALLS);
    for _ in 0..WARM_CALLS {
        let t = Instant::now();
        black_box(host.egress_decide(&ctx, &egress).await);
        samples.push(t.elapsed());
    }
    let warm = stats(samples);
    row("egress decide, warm instance (wasm)", &warm, "target p50 ≤ 3 µs");

    let rules: Vec<(String, bool)> = vec![("example.com".into(), true), ("api.github.com".into(), false)];
    let mut samples = Vec::with_capacity(WARM_CALLS);
    for _ in 0..WARM_CALLS {
        let t = Instant::now();
        black_box(native_egress(black_box(&rules), black_box(&egress.host), egress.port));
        samples.push(t.elapsed());
    }
    row("egress decide, native Rust", &stats(samples), "baseline");

    let mut samples = Vec::with_capacity(FRESH_CALLS);
    for i in 0..FRESH_CALLS {
        // A tenant never seen: no idle instance, so instantiate + init + call.
        let fresh = CallContext::new("bench", Some(ProfileSlug::parse(&format!("fresh-{i}")).unwrap()));
        let t = Instant::now();
        black_box(host.egress_decide(&fresh, &egress).await);
        samples.push(t.elapsed());
    }
    let fresh = stats(samples);
    row("egress decide, fresh instance (wasm)", &fresh, "target ≤ 100 µs");

    for _ in 0..1_000 {
        black_box(all_hooks(&host, &ctx, &params, &egress, &outbound, &grants, &result).await);
    }
    let mut samples = Vec::with_capacity(REQUEST_CALLS);
    for _ in 0..REQUEST_CALLS {
        let t = Instant::now();
        black_box(all_hooks(&host, &ctx, &params, &egress, &outbound, &grants, &result).await);
        samples.push(t.elapsed());
    }
    let all = stats(samples);
    row("all hooks of one tool call (wasm)", &all, "target p50 ≤ 20 µs");

    let grant_map: HashMap<String, SecretHandle> = grants
        .iter()
        .map(|g| (g.credential.clone(), g.handle.clone()))
        .collect();
    let mut samples = Vec::with_capacity(REQUEST_CALLS);
    for _ in 0..REQUEST_CALLS {
        let t = Instant::now();
        black_box(native_tool_filter(&["*/delete_*"], "fs", black_box(&params)));
        black_box(native_egress(&rules, &egress.host, egress.port));
        black_box(native_inject(&outbound.placeholders, &grant_map));
        black_box(native_scan(black_box(&result)));
        samples.push(t.elapsed());
    }
    row("all hooks of one tool call, native Rust", &stats(samples), "baseline");

    println!();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "targets: warm {} , fresh {} , all hooks {}",
        verdict(warm.p50 <= Duration::from_micros(3)),
        verdict(fresh.p50 <= Duration::from_micros(100)),
        verdict(all.p50 <= Duration::from_micros(20))
    );
}

async fn all_hooks(
    host: &PluginHost,
    ctx: &CallContext,
    params: &Value,
    egress: &EgressRequest,
    outbound: &OutboundRequest,
    grants: &[Grant],
    result: &Value,
) -> bool {
    let request = McpRequest {
        server: "fs".into(),
        method: "tools/call".into(),
        name: Some("read_file".into()),
        params: params.clone(),
    };
    let RequestDecision::Allow { .. } = host.filter_request(ctx, request).await else {
        return false;
    };
    let EgressDecision::Allow { .. } = host.egress_decide(ctx, egress).await else {
        return false;
    };
    if host.inject_credentials(ctx, outbound, grants).await.is_err() {
        return false;
    }
    let response = McpResponse {
        server: "fs".into(),
        method: "tools/call".into(),
        name: Some("read_file".into()),
        result: result.clone(),
    };
    matches!(host.filter_response(ctx, response).await, ResponseDecision::Pass { .. })
}
