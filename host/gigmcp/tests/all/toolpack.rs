//! Catalog toolpacks end to end: installed from a signed index, run by the engine in a real jail, each tool
//! call one HTTPS request through the real egress proxy to a test API in a namespace "outside" (the gateway's
//! namespace has no other way out). The API receives the real secret; the jail holds only the placeholder.

use std::path::{Path, PathBuf};

use gigmcp_testkit::{Netns, TestGateway, call_tools_in, repo_root};

use crate::catalog::{build, copy_dir, keygen, sha256_hex};
use serde_json::{Value, json};

pub(crate) const HOSTS: [&str; 11] = [
    "api.toolpack.test",
    "news.toolpack.test",
    "search.toolpack.test",
    "tasks.toolpack.test",
    "weather.toolpack.test",
    "acme.helpdesk.test",
    "probe.toolpack.test",
    "elsewhere.toolpack.test",
    "auth.toolpack.test",
    "notes.toolpack.test",
    "internal.toolpack.test",
];

pub(crate) struct World {
    pub(crate) gw: Netns,
    pub(crate) outside: Netns,
    _upstream: gigmcp_testkit::Guard,
    pub(crate) upstream_log: PathBuf,
    pub(crate) files: tempfile::TempDir,
    pub(crate) gateway: TestGateway,
}

/// A registry of the fixtures plus `extra` manifests (name, manifest, toolspec), built and signed into
/// `dir/published` with the key in `dir/key.hex` (made the first time); returns the public key the first time.
pub(crate) fn publish(dir: &Path, extra: &[(&str, &str, &str)], generated: &str) -> String {
    let registry = dir.join("registry");
    if !registry.exists() {
        copy_dir(&repo_root().join("tests/catalog/registry"), &registry);
    }
    for (name, manifest, spec) in extra {
        let entry = registry.join("manifests").join(name);
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(entry.join("0.1.0.yaml"), manifest).unwrap();
        std::fs::write(entry.join("0.1.0.toolspec.yaml"), spec).unwrap();
    }
    let public = if dir.join("key.hex").exists() {
        String::new()
    } else {
        keygen(dir)
    };
    build(&registry, dir, &dir.join("published"), generated);
    public
}

/// A toolpack whose tools reach the test API's special routes (status codes, redirects, images, links).
const PROBE_MANIFEST: &str = "\
schemaVersion: 1
name: probe
version: 0.1.0
source: {repo: example.test/probe, tag: v0.1.0}
image:
  ref: registry.example.test/probe
  digest: sha256:7777777777777777777777777777777777777777777777777777777777777777
  entrypoint: /app/server
  builder: toolpack
tier: sealed
entitlements:
  egress: [probe.toolpack.test, '*.deep.toolpack.test']
tools:
  - {name: status, default: true}
  - {name: slow, default: true}
  - {name: deep, default: true}
  - {name: redirect, default: true}
  - {name: image, default: true}
  - {name: link, default: true}
  - {name: text, default: true}
";

const PROBE_SPEC: &str = "\
schemaVersion: 1
name: probe
version: 0.1.0
baseUrl: https://probe.toolpack.test
tools:
  - name: status
    description: Answers with a status code.
    method: GET
    path: /status/{code}
    params: [{name: code, in: path, type: integer, required: true}]
  - name: slow
    description: Answers after a while.
    method: GET
    path: /slow
    params: [{name: ms, in: query, type: integer, required: true}]
  - name: deep
    description: A host two labels under a wildcard entry.
    method: GET
    path: /echo
    baseUrl: https://a.b.deep.toolpack.test
  - name: redirect
    description: Redirects.
    method: GET
    path: /redirect
    params: [{name: to, in: query, type: string, required: true}]
  - name: image
    description: An image.
    method: GET
    path: /image
  - name: link
    description: A page with a Link header.
    method: GET
    path: /link
  - name: text
    description: Plain text.
    method: GET
    path: /text
    params: [{name: bytes, in: query, type: integer, required: true}]
";

fn world(tag: &str) -> World {
    world_with(tag, &[])
}

/// A world whose gateway has `extra` settings too.
pub(crate) fn world_with(tag: &str, extra: &[(&str, &str)]) -> World {
    let (gw, outside) = gigmcp_testkit::linked_to_outside(&format!("{tag}g"), &format!("{tag}o"));
    let files = tempfile::tempdir().unwrap();
    let mut names: Vec<&str> = HOSTS.to_vec();
    names.push("198.51.100.2");
    gigmcp_testkit::make_certificates(files.path(), &names);
    let (upstream, upstream_log) =
        gigmcp_testkit::start_upstream(Some(&outside), files.path(), "198.51.100.2", 443, None);
    let public = publish(
        files.path(),
        &[("probe", PROBE_MANIFEST, PROBE_SPEC)],
        "2026-06-11T00:00:00Z",
    );
    let index = format!("file://{}", files.path().join("published/index.json").display());
    let resolve: Vec<String> = HOSTS.iter().map(|h| format!("{h}=198.51.100.2")).collect();
    let ca = files.path().join("ca.pem");
    let gateway = TestGateway::start_in(
        Some(&gw),
        &[
            ("GIG_LISTEN", "127.0.0.1:8080"),
            ("GIG_PROXY_PORT", "8081"),
            ("GIG_EGRESS_EXTRA_CA", ca.to_str().unwrap()),
            ("GIG_EGRESS_RESOLVE", &resolve.join(",")),
            ("GIG_EGRESS_ALLOW_ADDRS", "198.51.100.2/32"),
            ("GIG_REGISTRY_INDEX_URL", &index),
            ("GIG_REGISTRY_PUBKEY", &public),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .collect::<Vec<_>>(),
    );
    World {
        gw,
        outside,
        _upstream: upstream,
        upstream_log,
        files,
        gateway,
    }
}

impl World {
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        self.gateway.cli_ok(args)
    }

    pub(crate) fn cli_error(&self, args: &[&str]) -> String {
        let out = self.gateway.cli(args);
        assert!(
            !out.status.success(),
            "{args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// What the API received at `path` last (its log: the headers as they arrived, secrets included).
    pub(crate) fn received(&self, path: &str) -> Value {
        self.upstream_requests()
            .into_iter()
            .rev()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("the API received nothing at {path}"))
    }

    pub(crate) fn upstream_requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.upstream_log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("method").is_some())
            .collect()
    }

    /// Tool calls in one MCP session from inside the gateway's namespace (the official Python SDK): each
    /// call's text and whether it is an error.
    pub(crate) fn call(&self, token: &str, slug: &str, calls: &[(&str, Value)]) -> Vec<(String, bool)> {
        let data = call_tools_in(Some(&self.gw), &self.url(slug), token, calls, false);
        data["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| match &r["text"] {
                Value::String(text) => (text.clone(), r["is_error"] == true),
                _ => (format!("call failed: {r}"), true),
            })
            .collect()
    }

    pub(crate) fn tool_names(&self, token: &str, slug: &str) -> Vec<String> {
        self.tools(token, slug)
            .into_iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The profile's tools as an MCP client lists them.
    fn tools(&self, token: &str, slug: &str) -> Vec<Value> {
        call_tools_in(Some(&self.gw), &self.url(slug), token, &[], true)["tools"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn url(&self, slug: &str) -> String {
        format!("http://127.0.0.1:8080/mcp/p/{slug}")
    }
}

pub(crate) fn echoed(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not the upstream's echo: {text}"))
}

#[test]
fn toolpack_calls_are_exact_requests_with_the_secret_added_by_the_proxy() {
    let world = world("tp");
    let token = world.gateway.create_profile("tp");

    let out = world.cli(&["server", "add", "pubsub", "--catalog", "pubsub"]);
    assert!(
        out.contains("installed catalog entry pubsub@1.5.0 as server pubsub"),
        "{out}"
    );
    assert!(out.contains("off until enabled per profile: publish_message"), "{out}");
    world.cli_error(&["server", "add", "legacy", "--catalog", "legacybot"]);
    let secret = "pubsub-secret-4f1c";
    world
        .gateway
        .cli_with_input(&["credential", "set", "pubsub", "pubsub_api_key"], secret);
    world.cli(&["server", "add", "newsfeed", "--catalog", "newsfeed"]);
    world.cli(&["server", "add", "weatherly", "--catalog", "weatherly"]);
    world.gateway.cli_with_input(
        &["credential", "set", "weatherly", "weatherly_key"],
        "weather-secret-99",
    );
    // An oauth2 credential is the connected account (here the operator's: the profile has no owner); none
    // is connected in this test (oauth.rs connects one), and no secret can be set for it.
    let installed = world.cli(&["server", "add", "taskboard", "--catalog", "taskboard"]);
    assert!(
        installed.contains("credential taskboard_oauth is the testidp account connected by each profile's owner"),
        "{installed}"
    );
    let error = world.gateway.cli_with_input_error(
        &["credential", "set", "taskboard", "taskboard_oauth"],
        "oauth-access-token-1",
    );
    assert!(error.contains("there is no secret to set"), "{error}");
    world.cli(&["server", "add", "helpdesk", "--catalog", "helpdesk"]);
    let error = world.cli_error(&[
        "server",
        "add",
        "acme",
        "--catalog",
        "helpdesk",
        "--base-url",
        "https://acme.other.test",
    ]);
    assert!(error.contains("outside the entry's egress"), "{error}");
    world.cli(&[
        "server",
        "add",
        "acme",
        "--catalog",
        "helpdesk",
        "--base-url",
        "https://acme.helpdesk.test",
    ]);
    world
        .gateway
        .cli_with_input(&["credential", "set", "acme", "helpdesk_token"], "helpdesk-secret");
    for server in ["pubsub", "newsfeed", "weatherly", "taskboard", "helpdesk", "acme"] {
        world.cli(&["profile", "add-server", "tp", server]);
    }

    // Only default tools are listed until enabled for the profile; properties in the toolspec's order, unsafe
    // names sanitized.
    let listed = world.tools(&token, "tp");
    let list_tasks = listed.iter().find(|t| t["name"] == "taskboard_list_tasks").unwrap();
    let properties: Vec<&String> = list_tasks["inputSchema"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        properties,
        ["filters_search", "status", "on", "archived", "X-Workspace-Id"]
    );
    assert_eq!(list_tasks["inputSchema"]["required"], json!(["X-Workspace-Id"]));
    assert_eq!(list_tasks["inputSchema"]["additionalProperties"], false);
    assert_eq!(list_tasks["description"], "List tasks, filtered.");
    let tools: Vec<String> = listed.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    assert!(tools.contains(&"pubsub_get_channel_history".to_owned()), "{tools:?}");
    assert!(!tools.contains(&"pubsub_publish_message".to_owned()), "{tools:?}");
    assert!(!tools.contains(&"taskboard_create_task".to_owned()), "{tools:?}");

    let before = world.upstream_requests().len();
    let results = world.call(
        &token,
        "tp",
        &[
            (
                "pubsub_get_channel_history",
                json!({"channel": "a b", "limit": 5, "direction": "forwards"}),
            ),
            ("pubsub_get_channel_history", json!({"channel": "x", "limit": "5"})),
            ("pubsub_get_channel_history", json!({"channel": "x", "limit": 5.5})),
            ("pubsub_get_channel_history", json!({"channel": "a/../b"})),
            ("pubsub_get_channel_history", json!({"channel": "x", "nope": 1})),
            (
                "newsfeed_search",
                json!({"query": "rust lang", "tags": ["story", "ask"]}),
            ),
            ("newsfeed_get_item", json!({"id": 8863})),
            (
                "weatherly_forecast",
                json!({"location": "regions/eu/berlin", "days": 3}),
            ),
            ("helpdesk_list_tickets", json!({})),
            ("acme_get_ticket", json!({"ticket_id": 42})),
            (
                "taskboard_list_tasks",
                json!({"filters_search": "a b", "status": ["open", "done"], "on": "2026-01-02", "archived": false,
                       "X-Workspace-Id": "w-7"}),
            ),
        ],
    );
    // 1. The exact GET, the secret in the header at the API.
    let (text, error) = &results[0];
    assert!(!error, "{text}");
    let got = echoed(text);
    assert_eq!(got["method"], "GET");
    assert_eq!(got["path"], "/channels/a%20b/messages");
    assert_eq!(got["query"], "?direction=forwards&limit=5");
    assert_eq!(got["headers"]["host"], "api.toolpack.test");
    assert_eq!(got["headers"]["accept"], "application/json");
    assert!(
        got["headers"]["user-agent"]
            .as_str()
            .unwrap()
            .starts_with("gigmcp-toolpack/")
    );
    assert_eq!(got["body"], "");
    // The API got the secret; its echo of it came back to the jail as the placeholder.
    let received = world.received("/channels/a%20b/messages");
    assert_eq!(received["headers"]["authorization"], format!("Basic {secret}"));
    assert!(
        got["headers"]["authorization"]
            .as_str()
            .unwrap()
            .starts_with("Basic gigph_"),
        "{got}"
    );
    assert!(!text.contains(secret), "a reflected secret is scrubbed");
    // 2–5. Refused before any request, each naming the argument.
    for (i, needle) in [
        (1, "\"limit\" must be an integer"),
        (2, "\"limit\" must be an integer"),
        (3, "may not contain an empty, `.` or `..` path segment"),
        (4, "unknown argument \"nope\""),
    ] {
        assert!(results[i].1 && results[i].0.contains(needle), "{i}: {:?}", results[i]);
    }
    // 6. A tool's own base URL, arrays repeated in the query.
    let got = echoed(&results[5].0);
    assert_eq!(got["headers"]["host"], "search.toolpack.test");
    assert_eq!(got["path"], "/api/v1/search");
    assert_eq!(got["query"], "?query=rust+lang&tags=story&tags=ask");
    assert!(
        got["headers"].get("authorization").is_none(),
        "no credential: no header"
    );
    // 7. A placeholder inside a path segment.
    assert_eq!(echoed(&results[6].0)["path"], "/v0/item/8863.json");
    // 8. Entrusted: the key goes in the toolspec's header, injected by the proxy as well.
    let got = echoed(&results[7].0);
    assert_eq!(got["path"], "/v1/forecast/regions/eu/berlin");
    assert_eq!(
        world.received("/v1/forecast/regions/eu/berlin")["headers"]["x-weather-key"],
        "weather-secret-99"
    );
    // 9. A tenant host without --base-url: a clear error, no request.
    assert!(results[8].1 && results[8].0.contains("--base-url"), "{:?}", results[8]);
    // 10. With --base-url, to the tenant's host.
    let got = echoed(&results[9].0);
    assert_eq!(got["headers"]["host"], "acme.helpdesk.test");
    assert_eq!(got["path"], "/api/v2/tickets/42.json");
    assert_eq!(
        world.received("/api/v2/tickets/42.json")["headers"]["authorization"],
        "Basic helpdesk-secret"
    );
    // 11. An oauth2 credential with no account connected: refused by the proxy, saying what to connect.
    let (text, error) = &results[10];
    assert!(*error, "{text}");
    assert!(
        text.contains("HTTP 403") && text.contains("no testidp account is connected for the operator"),
        "{text}"
    );
    assert_eq!(
        world.upstream_requests().len() - before,
        5,
        "refused calls sent nothing"
    );

    // The jail's environment holds the placeholder, never the secret.
    let mut seen_placeholder = false;
    for pid in world.gateway.sandbox_processes() {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let environ = String::from_utf8_lossy(&environ);
        for secret in [secret, "weather-secret-99", "oauth-access-token-1", "helpdesk-secret"] {
            assert!(!environ.contains(secret), "the secret is in the jail of {pid}");
        }
        seen_placeholder |= environ.contains("PUBSUB_API_KEY_TOKEN=gigph_");
    }
    assert!(seen_placeholder, "the pubsub jail holds its placeholder");

    // A tool off by default, enabled for the profile: listed, and its POST carries a JSON body.
    let out = world.cli(&["profile", "tools", "tp", "--enable", "pubsub/publish_message"]);
    assert!(
        out.contains("on  pubsub/publish_message (switched for this profile)"),
        "{out}"
    );
    let error = world.cli_error(&["profile", "tools", "tp", "--enable", "pubsub/nope"]);
    assert!(error.contains("has no tool \"nope\""), "{error}");
    world.cli(&["profile", "tools", "tp", "--enable", "taskboard/create_task"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let tools = world.tool_names(&token, "tp");
    assert!(tools.contains(&"pubsub_publish_message".to_owned()), "{tools:?}");
    let results = world.call(
        &token,
        "tp",
        &[
            (
                "pubsub_publish_message",
                json!({"channel": "x", "data": "d", "name": "e"}),
            ),
            (
                "taskboard_create_task",
                json!({"title": "a b&c", "labels": ["x", "y"], "meta": {"k": 1}, "estimate": 1.5}),
            ),
        ],
    );
    let got = echoed(&results[0].0);
    assert_eq!(got["method"], "POST");
    assert_eq!(got["headers"]["content-type"], "application/json");
    assert_eq!(got["body"], r#"{"name":"e","data":"d"}"#);
    // Enabled, but its account is not connected (oauth.rs checks its form body with one connected).
    assert!(
        results[1].1 && results[1].0.contains("no testidp account is connected"),
        "{:?}",
        results[1]
    );
}

#[test]
fn toolpack_results_map_statuses_images_links_timeouts_and_refuse_redirects_off_the_egress_list() {
    let world = world("tr");
    let token = world.gateway.create_profile("tr");
    world.cli(&["server", "add", "probe", "--catalog", "probe"]);
    world.cli(&["profile", "add-server", "tr", "probe"]);
    let results = world.call(
        &token,
        "tr",
        &[
            ("probe_status", json!({"code": 404})),
            ("probe_status", json!({"code": 401})),
            ("probe_status", json!({"code": 204})),
            ("probe_image", json!({})),
            ("probe_link", json!({})),
            ("probe_text", json!({"bytes": 200_000})),
            ("probe_redirect", json!({"to": "https://elsewhere.toolpack.test/echo"})),
            ("probe_redirect", json!({"to": "/status/200"})),
            ("probe_deep", json!({})),
            ("probe_slow", json!({"ms": 31_000})),
        ],
    );
    // The registry's schema lets `*.x` match any depth; this gateway's egress rules match one label, so the
    // proxy refuses the deeper host (and the engine says so).
    assert!(
        results[8].1 && results[8].0.starts_with("request failed: "),
        "{:?}",
        results[8]
    );
    assert!(
        results[9].1 && results[9].0.contains("no answer within 30 s"),
        "{:?}",
        results[9]
    );
    assert_eq!(results[0], ("HTTP 404 Not Found\n{\"status\":404}".into(), true));
    assert!(
        results[1].1 && results[1].0.starts_with("HTTP 401 Unauthorized\n"),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2], ("HTTP 204".into(), false));
    assert!(!results[3].1, "{:?}", results[3]);
    assert!(results[4].0.contains("[1,2]") && results[4].0.contains("Link: <https://probe.toolpack.test/link?page=2>"));
    assert!(
        results[5].0.ends_with("…[truncated: returned 102400 of 200000 bytes]"),
        "{}",
        &results[5].0[102_390..]
    );
    assert!(
        results[6].1 && results[6].0.contains("not an https URL on this server's egress list"),
        "{:?}",
        results[6]
    );
    assert_eq!(results[7], ("{\"status\":200}".into(), false));
    let paths: Vec<String> = world
        .upstream_requests()
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !paths.contains(&"/echo".to_owned()),
        "the off-list redirect was not followed: {paths:?}"
    );
}

#[test]
fn an_upgrade_that_changes_the_runtime_waits_for_consent() {
    let world = world("tc");
    let token = world.gateway.create_profile("tc");
    let out = world.cli(&["server", "add", "pubsub", "--catalog", "pubsub@1.4.2"]);
    assert!(out.contains("installed catalog entry pubsub@1.4.2"), "{out}");
    world
        .gateway
        .cli_with_input(&["credential", "set", "pubsub", "pubsub_api_key"], "k1");
    world.cli(&["profile", "add-server", "tc", "pubsub"]);
    let before = world.call(&token, "tc", &[("pubsub_list_channels", json!({}))]);
    assert!(!before[0].1, "{:?}", before[0]);
    let placeholder = |w: &World| w.cli(&["credential", "list", "--server", "pubsub"]);
    let listed = placeholder(&world);

    // Reinstalling the same runtime keeps consent; an upgrade that changes it waits.
    let out = world.cli(&["server", "add", "pubsub", "--catalog", "pubsub@1.4.2"]);
    assert!(out.contains("already runs pubsub@1.4.2"), "{out}");
    let out = world.cli(&["server", "add", "pubsub", "--catalog", "pubsub@1.5.0"]);
    assert!(out.contains("it does not start until you consent"), "{out}");
    assert!(out.contains("version 1.4.2 → 1.5.0"), "{out}");
    world.cli(&["server", "add", "newsfeed", "--catalog", "newsfeed"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let waiting = world.call(&token, "tc", &[("pubsub_list_channels", json!({}))]);
    assert!(
        waiting[0].0.contains("gigmcp server consent pubsub"),
        "the upgraded server does not start: {:?}",
        waiting[0]
    );
    let out = world.cli(&["server", "consent", "pubsub"]);
    assert!(out.contains("consented to the new runtime of pubsub"), "{out}");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let after = world.call(&token, "tc", &[("pubsub_list_channels", json!({}))]);
    assert!(!after[0].1, "{:?}", after[0]);
    assert_eq!(
        world.received("/channels")["headers"]["authorization"],
        "Basic k1",
        "the secret survived the upgrade"
    );
    assert_eq!(
        placeholder(&world),
        listed,
        "the credential and its placeholder are kept"
    );

    // An upgrade that sends the credential to another host too: the stored secret is not redirected behind the
    // operator's back (it is sealed with its hosts); setting it again applies the new definition.
    let registry = world.files.path().join("registry/manifests/pubsub");
    let manifest = std::fs::read_to_string(registry.join("1.5.0.yaml")).unwrap();
    let manifest = manifest
        .replace("version: 1.5.0", "version: 1.6.0")
        .replace("tag: v1.5.0", "tag: v1.6.0")
        .replacen(
            "    - api.toolpack.test\n",
            "    - api.toolpack.test\n    - news.toolpack.test\n",
            1,
        );
    std::fs::write(registry.join("1.6.0.yaml"), manifest).unwrap();
    let spec = std::fs::read_to_string(registry.join("1.5.0.toolspec.yaml")).unwrap();
    std::fs::write(
        registry.join("1.6.0.toolspec.yaml"),
        spec.replace("version: 1.5.0", "version: 1.6.0"),
    )
    .unwrap();
    publish(world.files.path(), &[], "2026-06-12T00:00:00Z");
    let out = world.cli(&["server", "add", "pubsub", "--catalog", "pubsub@1.6.0", "--consent"]);
    assert!(out.contains("upgraded server pubsub to pubsub@1.6.0"), "{out}");
    assert!(
        out.contains(
            "credential pubsub_api_key is stored for `Authorization: Basic {secret}` to api.toolpack.test; the entry \
             now sends `Authorization: Basic {secret}` to api.toolpack.test,news.toolpack.test"
        ),
        "{out}"
    );
    world
        .gateway
        .cli_with_input(&["credential", "set", "pubsub", "pubsub_api_key"], "k2");
    let listed = world.cli(&["credential", "list", "--server", "pubsub"]);
    assert!(listed.contains("api.toolpack.test,news.toolpack.test"), "{listed}");
}

/// A registry of the test's own (Debian's `docker-registry`, TLS on loopback) and pushes to it.
struct OciRegistry {
    _process: gigmcp_testkit::Guard,
    base: String,
    http: reqwest::Client,
    files: tempfile::TempDir,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

impl OciRegistry {
    fn start() -> Self {
        let files = tempfile::tempdir().unwrap();
        gigmcp_testkit::make_certificates(files.path(), &["127.0.0.1"]);
        let port = gigmcp_testkit::free_port();
        let config = files.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\nhttp:\n  addr: \
                 127.0.0.1:{port}\n  tls: {{certificate: {}, key: {}}}\n",
                files.path().join("storage").display(),
                files.path().join("upstream.pem").display(),
                files.path().join("upstream-key.pem").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry runs (make test installs Debian's docker-registry)");
        let process = gigmcp_testkit::Guard(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let ca = std::fs::read(files.path().join("ca.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        Self {
            _process: process,
            base: format!("127.0.0.1:{port}"),
            http,
            files,
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.files.path().join("ca.pem")
    }

    async fn blob(&self, repository: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let started = self
            .http
            .post(format!("https://{}/v2/{repository}/blobs/uploads/", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 202);
        let location = started.headers()["location"].to_str().unwrap().to_owned();
        let url = if location.starts_with("http") {
            location
        } else {
            format!("https://{}{location}", self.base)
        };
        let separator = if url.contains('?') { '&' } else { '?' };
        let put = self
            .http
            .put(format!("{url}{separator}digest={digest}"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{}", put.text().await.unwrap_or_default());
        digest
    }

    async fn manifest(&self, repository: &str, media_type: &str, body: &serde_json::Value) -> (String, usize) {
        let bytes = serde_json::to_vec(body).unwrap();
        let digest = sha256(&bytes);
        let put = self
            .http
            .put(format!("https://{}/v2/{repository}/manifests/{digest}", self.base))
            .header("content-type", media_type)
            .body(bytes.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{}", put.text().await.unwrap_or_default());
        (digest, bytes.len())
    }

    /// Pushes an image of one layer holding `binary` as `/app/server`; returns the digests of an index with a
    /// linux/amd64 variant and of an index with only a linux/arm64 one.
    async fn push_image(&self, repository: &str, binary: &Path) -> (String, String) {
        let root = self.files.path().join("root/app");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::copy(binary, root.join("server")).unwrap();
        let layer = self.files.path().join("layer.tar");
        let tar = std::process::Command::new("tar")
            .args([
                "-cf",
                layer.to_str().unwrap(),
                "-C",
                self.files.path().join("root").to_str().unwrap(),
                "app",
            ])
            .status()
            .unwrap();
        assert!(tar.success());
        let tar_bytes = std::fs::read(&layer).unwrap();
        let gzip = std::process::Command::new("gzip")
            .args(["-kn", layer.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(gzip.success());
        let gz = std::fs::read(self.files.path().join("layer.tar.gz")).unwrap();
        let layer_digest = self.blob(repository, &gz).await;
        let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(&tar_bytes)]}, "config": {"Entrypoint": ["/app/server"]}}))
        .unwrap();
        let config_digest = self.blob(repository, &config).await;
        let manifest_type = "application/vnd.oci.image.manifest.v1+json";
        let (manifest, size) = self
            .manifest(
                repository,
                manifest_type,
                &json!({"schemaVersion": 2, "mediaType": manifest_type,
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": gz.len()}]}),
            )
            .await;
        let index_type = "application/vnd.oci.image.index.v1+json";
        let index = |arch: &str| {
            json!({"schemaVersion": 2, "mediaType": index_type, "manifests": [{"mediaType": manifest_type,
                "digest": manifest, "size": size, "platform": {"architecture": arch, "os": "linux"}}]})
        };
        let (amd64, _) = self.manifest(repository, index_type, &index("amd64")).await;
        let (arm64, _) = self.manifest(repository, index_type, &index("arm64")).await;
        (amd64, arm64)
    }
}

fn static_manifest(name: &str, image: &str, digest: &str) -> String {
    format!(
        "schemaVersion: 1\nname: {name}\nversion: 1.0.0\nsource: {{repo: example.test/static-mcp, tag: v1.0.0}}\nimage:\n  \
         ref: {image}\n  digest: {digest}\n  entrypoint: /app/server\ntier: sealed\nentitlements:\n  egress: \
         [api.toolpack.test]\ncredentials:\n  - id: static_key\n    type: api_key\n    provider: {name}\n    inject: \
         {{header: Authorization, format: 'Token {{token}}'}}\ntools:\n  - {{name: echo, default: true}}\n  - {{name: \
         fetch, default: false}}\ndisplayName: Static MCP\ncategory: dev-tools\n"
    )
}

#[tokio::test]
async fn a_static_binary_entry_is_pulled_by_digest_checked_and_run_sandboxed() {
    // A static MCP server (Go, no cgo), pushed as an OCI image to a registry of the test's own.
    let build = tempfile::tempdir().unwrap();
    let binary = build.path().join("server");
    let built = std::process::Command::new("go")
        .args(["build", "-o", binary.to_str().unwrap(), "main.go"])
        .current_dir(repo_root().join("tests/support/static-mcp"))
        .env("CGO_ENABLED", "0")
        .env("GO111MODULE", "off")
        .env("GOCACHE", build.path().join("cache"))
        .output()
        .expect("go runs (make test installs golang-go)");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let oci = OciRegistry::start();
    let (amd64, arm64) = oci.push_image("fixtures/static-mcp", &binary).await;
    let image = format!("{}/fixtures/static-mcp", oci.base);

    let ca = oci.ca_file();
    let world = world_with("to", &[("GIG_OCI_CA_FILE", ca.to_str().unwrap())]);
    let registry = world.files.path().join("registry/manifests");
    for (name, digest) in [
        ("staticmcp", &amd64),
        ("armonly", &arm64),
        ("missing", &format!("sha256:{}", "9".repeat(64))),
    ] {
        std::fs::create_dir_all(registry.join(name)).unwrap();
        std::fs::write(
            registry.join(name).join("1.0.0.yaml"),
            static_manifest(name, &image, digest),
        )
        .unwrap();
    }
    publish(world.files.path(), &[], "2026-06-12T00:00:00Z");

    let error = world.cli_error(&["server", "add", "arm", "--catalog", "armonly"]);
    assert!(
        error.contains("the image has no linux/amd64 variant (it has: linux/arm64)"),
        "{error}"
    );
    let error = world.cli_error(&["server", "add", "gone", "--catalog", "missing"]);
    assert!(error.contains("the registry answered 404"), "{error}");
    let out = world.cli(&["server", "add", "static", "--catalog", "staticmcp"]);
    assert!(
        out.contains("installed catalog entry staticmcp@1.0.0 as server static"),
        "{out}"
    );
    let listed = world.cli(&["server", "list"]);
    assert!(
        !listed.contains("arm ") && !listed.contains("gone "),
        "refused installs changed nothing: {listed}"
    );

    let token = world.gateway.create_profile("to");
    world
        .gateway
        .cli_with_input(&["credential", "set", "static", "static_key"], "static-secret-7");
    world.cli(&["profile", "add-server", "to", "static"]);
    // The binary lists both of its tools; the gateway hides the one its entry marks off until the profile
    // turns it on.
    assert_eq!(world.tool_names(&token, "to"), ["static_echo"]);
    world.cli(&["profile", "tools", "to", "--enable", "static/fetch"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(world.tool_names(&token, "to"), ["static_echo", "static_fetch"]);
    let results = world.call(
        &token,
        "to",
        &[
            ("static_echo", json!({"message": "from a pulled binary"})),
            ("static_fetch", json!({"url": "https://api.toolpack.test/from-static"})),
        ],
    );
    assert_eq!(results[0], ("from a pulled binary".to_owned(), false));
    assert!(!results[1].1, "{:?}", results[1]);
    assert_eq!(
        world.received("/from-static")["headers"]["authorization"],
        "Token static-secret-7",
        "the proxy put the secret in for the binary's placeholder"
    );
    assert!(
        !results[1].0.contains("static-secret-7"),
        "a reflected secret is scrubbed"
    );
}
