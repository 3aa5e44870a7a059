//! The egress proxy with real parts (issue #5, "Acceptance"): the gateway runs in a network namespace with
//! no uplink but a veth to an "outside" test namespace, where an HTTPS API (Node, with a CA the test makes)
//! listens on 198.51.100.2. A stdio MCP server in a real sandbox runs curl, Node 22 (`fetch` with
//! `NODE_USE_ENV_PROXY`) and Python (`urllib`) in its jail; the test drives it through the gateway's MCP
//! endpoint and checks what the upstream received, what the jail saw, and what the audit log holds.
//! Needs root, bubblewrap, iproute2, nftables, curl and Node 22 (`make test` installs them).

use std::process::Command;
use std::time::{Duration, Instant};

use gigmcp_testkit::{Netns, TestGateway, run_python_client_in};
use serde_json::{Value, json};

use crate::audit_until;

const API: &str = "api.test.example";
const OTHER: &str = "other.test.example";

struct World {
    gw: Netns,
    _outside: Netns,
    _upstream: gigmcp_testkit::Guard,
    upstream_log: std::path::PathBuf,
    files: tempfile::TempDir,
}

/// The gateway's namespace, linked only to the "outside" namespace, where the HTTPS API listens.
fn world() -> World {
    let (gw, outside) = gigmcp_testkit::linked_to_outside("eg", "eo");

    let files = tempfile::tempdir().unwrap();
    gigmcp_testkit::make_certificates(files.path(), &[API, OTHER, "198.51.100.2"]);
    let (upstream, upstream_log) =
        gigmcp_testkit::start_upstream(Some(&outside), files.path(), "198.51.100.2", 443, None);
    World {
        gw,
        _outside: outside,
        _upstream: upstream,
        upstream_log,
        files,
    }
}

fn start_gateway(world: &World, max_tunnels: &str) -> TestGateway {
    let ca = world.files.path().join("ca.pem");
    let resolve = format!("{API}=198.51.100.2,{OTHER}=198.51.100.2,loop.test.example=127.0.0.1");
    TestGateway::start_in(
        Some(&world.gw),
        &[
            ("GIG_LISTEN", "127.0.0.1:8080"),
            ("GIG_PROXY_PORT", "8081"),
            ("GIG_EGRESS_EXTRA_CA", ca.to_str().unwrap()),
            ("GIG_EGRESS_RESOLVE", &resolve),
            ("GIG_EGRESS_ALLOW_ADDRS", "198.51.100.2/32"),
            ("GIG_EGRESS_MAX_TUNNELS", max_tunnels),
        ],
    )
}

/// Adds the client server, declares its hosts, gives it a credential for api.test.example, and puts it
/// in a profile; returns the profile's token.
fn add_client_server(gateway: &TestGateway, secret: &str) -> String {
    let support = gigmcp_testkit::repo_root().join("tests/support");
    let node22 = gigmcp_testkit::node22_dir();
    let node22_bin = node22.join("bin/node");
    gateway.cli_ok(&[
        "server",
        "add",
        "web",
        "--command",
        &gigmcp_testkit::node_bin(),
        "--arg",
        support.join("egress-client-server.js").to_str().unwrap(),
        "--mount",
        support.to_str().unwrap(),
        "--mount",
        node22.to_str().unwrap(),
        "--env",
        &format!("EGRESS_TEST_NODE22={}", node22_bin.display()),
        "--egress",
        &format!("{API},{OTHER},loop.test.example,127.0.0.1,169.254.169.254,10.0.0.1"),
    ]);
    gateway.cli_with_input(
        &[
            "credential",
            "set",
            "web",
            "api",
            "--hosts",
            API,
            "--header",
            "Authorization",
            "--format",
            "Bearer {secret}",
        ],
        secret,
    );
    let token = gateway.create_profile("eg");
    gateway.cli_ok(&["profile", "add-server", "eg", "web"]);
    token
}

/// Runs tool calls in one MCP session from inside the gateway's namespace; returns each call's JSON result
/// and the client's whole output (what the server said, as the MCP client saw it).
fn call(world: &World, token: &str, calls: &[(&str, Value)]) -> (Vec<Value>, String) {
    let plan: Vec<Value> = calls
        .iter()
        .map(|(tool, args)| json!({"tool": format!("web_{tool}"), "arguments": args}))
        .collect();
    let (ok, stdout, stderr) = run_python_client_in(
        Some(&world.gw),
        "call_tools.py",
        &[
            "--url",
            "http://127.0.0.1:8080/mcp/p/eg",
            "--token",
            token,
            "--calls",
            &serde_json::to_string(&plan).unwrap(),
            "--timeout",
            "170",
            "--request-timeout",
            "90",
        ],
    );
    assert!(ok, "client failed\n{stdout}\n{stderr}");
    let out: Value = serde_json::from_str(&stdout).unwrap();
    let results = out["data"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match &r["text"] {
            Value::String(text) => serde_json::from_str(text).unwrap_or_else(|_| json!({"unparsed": text})),
            _ => json!({"call_failed": r}),
        })
        .collect();
    (results, stdout)
}

fn fetch(client: &str, url: &str, headers: Value) -> Value {
    json!({"client": client, "url": url, "headers": headers, "save": true})
}

/// The gateway's audit events of a kind, waiting (bounded) until at least `at_least` are written: the
/// audit writer is asynchronous.
fn audit_events(gateway: &TestGateway, kind: &str, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let conn = rusqlite::Connection::open(gateway.dir.path().join("gigmcp.db")).unwrap();
        let mut stmt = conn
            .prepare("SELECT kind, profile, server, outcome, detail FROM audit_events WHERE kind = ?1 ORDER BY id")
            .unwrap();
        let events: Vec<Value> = stmt
            .query_map([kind], |r| {
                let detail: String = r.get(4)?;
                Ok(json!({
                    "kind": r.get::<_, String>(0)?,
                    "profile": r.get::<_, Option<String>>(1)?,
                    "server": r.get::<_, Option<String>>(2)?,
                    "outcome": r.get::<_, String>(3)?,
                    "detail": serde_json::from_str::<Value>(&detail).unwrap(),
                }))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        if events.len() >= at_least || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every file under `dir`, read (the jail's writable files, through /proc/<pid>/root).
fn read_tree(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            read_tree(&path, out);
        } else if kind.is_file()
            && let Ok(bytes) = std::fs::read(&path)
        {
            out.push((path, bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A world, its gateway (tunnel cap `max_tunnels`), the client server with its credential, and the secret.
struct Setup {
    world: World,
    gateway: TestGateway,
    token: String,
    secret: String,
}

fn setup(max_tunnels: &str) -> Setup {
    let world = world();
    let secret = format!("sk-live-{}-{:x}", std::process::id(), rand_u64());
    let gateway = start_gateway(&world, max_tunnels);
    let token = add_client_server(&gateway, &secret);
    Setup {
        world,
        gateway,
        token,
        secret,
    }
}

fn echo_url() -> String {
    format!("https://{API}/echo?via=proxy")
}

/// The upstream's endpoint that sends the Authorization header it received back, in a header and the body.
fn reflect_url() -> String {
    format!("https://{API}/reflect?header=authorization")
}

/// The upstream's log: its text (for messages) and the requests it received, one JSON record each.
fn upstream_requests(world: &World) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(&world.upstream_log).unwrap();
    let requests = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    (text, requests)
}

fn bearer() -> Value {
    json!({"Authorization": "Bearer ${API_TOKEN}"})
}

/// The audit events' (target or host, code) pairs.
fn codes(events: &[Value], what: &str) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["detail"][what].as_str().unwrap_or("").to_owned(),
                e["detail"]["code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The jail's processes: those of a sandbox uid in another mount namespace (bubblewrap itself runs as the
/// sandbox uid in the host's).
fn jail_processes(gateway: &TestGateway) -> Vec<u32> {
    let own_mounts = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let pids: Vec<u32> = gateway
        .sandbox_processes()
        .into_iter()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|ns| ns != own_mounts))
        .collect();
    assert!(!pids.is_empty(), "no sandbox process found");
    pids
}

/// Invariant 1 through the proxy: curl, Node 22 and Python in a real jail call the upstream with the
/// placeholder; the upstream receives the real secret in the credential's header and format; a reflected
/// secret comes back as the placeholder; the secret is in no environment, file or output of the jail.
#[test]
fn a_server_calls_its_api_with_a_secret_it_never_holds() {
    let Setup {
        world,
        gateway,
        token,
        secret,
    } = setup("64");
    let bare = json!({"Authorization": "${API_TOKEN}"});
    let echo = echo_url();
    let reflect = reflect_url();
    let calls: Vec<(&str, Value)> = vec![
        ("fetch", fetch("curl", &echo, bearer())),
        ("fetch", fetch("node", &echo, bearer())),
        ("fetch", fetch("python", &echo, bearer())),
        ("fetch", fetch("curl", &reflect, bare.clone())),
        ("fetch", fetch("node", &reflect, bearer())),
        ("fetch", fetch("python", &reflect, bare.clone())),
        ("env", json!({})),
    ];
    let (results, client_output) = call(&world, &token, &calls);
    let r = |i: usize| &results[i];

    // curl offers h2 and gets it from the proxy; Node's fetch and Python's urllib speak HTTP/1.1.
    assert_eq!(
        r(0)["http_version"],
        "2",
        "curl did not speak h2 in the tunnel: {}",
        r(0)
    );
    for (i, client) in ["curl", "node", "python"].iter().enumerate() {
        assert_eq!(r(i)["status"], 200, "{client} failed: {}", r(i));
        let seen = &serde_json::from_str::<Value>(r(i)["body"].as_str().unwrap()).unwrap()["headers"];
        assert!(
            seen["authorization"].as_str().unwrap().starts_with("Bearer gigph_"),
            "{client}: the echo reached the jail unscrubbed or without the placeholder: {seen}"
        );
        assert_eq!(seen["accept-encoding"], "identity", "{client}: {seen}");
    }
    let (upstream_log, requests) = upstream_requests(&world);
    let received: Vec<&Value> = requests
        .iter()
        .filter(|v| v["path"] == "/echo" || v["path"] == "/reflect")
        .collect();
    for agent in ["curl", "node", "python"] {
        let got = received.iter().any(|v| {
            v["headers"]["authorization"] == format!("Bearer {secret}")
                && v["headers"]["user-agent"]
                    .as_str()
                    .is_some_and(|ua| ua.to_ascii_lowercase().contains(agent))
        });
        assert!(got, "the upstream never got the secret from {agent}: {upstream_log}");
    }

    // A reflected secret comes back as the placeholder, in headers and body, for every client.
    for i in 3..6 {
        assert_eq!(r(i)["status"], 200, "reflect {i}: {}", r(i));
        let body: Value = serde_json::from_str(r(i)["body"].as_str().unwrap()).unwrap();
        assert!(
            body["reflected"].as_str().unwrap().starts_with("Bearer gigph_"),
            "{body}"
        );
    }
    for i in [4, 5] {
        let reflected = &r(i)["headers"]["x-reflected"];
        assert!(reflected.as_str().unwrap().starts_with("Bearer gigph_"), "{}", r(i));
    }
    let curl_headers = r(3)["received_headers"].as_str().unwrap();
    assert!(
        curl_headers.contains("x-reflected: Bearer gigph_"),
        "curl saw: {}",
        r(3)
    );

    // One audit event per request, in SQLite.
    let requests = audit_events(&gateway, "egress.request", 6);
    assert_eq!(requests.len(), 6, "{requests:#?}");
    let first = &requests[0];
    assert_eq!(first["profile"], "eg");
    assert_eq!(first["server"], "web");
    assert_eq!(first["detail"]["host"], API);
    assert_eq!(first["detail"]["method"], "GET");
    assert_eq!(first["detail"]["path"], "/echo", "the query string must not be audited");
    assert_eq!(first["detail"]["status"], 200);
    assert_eq!(first["detail"]["decision"], "allow");
    assert_eq!(first["detail"]["credentials"], json!(["api"]));
    assert!(first["detail"]["bytes_down"].as_u64().unwrap() > 0);

    // The real secret is nowhere the server can reach or has said.
    let env_names: Vec<&str> = r(6).as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for name in [
        "HTTPS_PROXY",
        "NODE_USE_ENV_PROXY",
        "SSL_CERT_FILE",
        "NODE_EXTRA_CA_CERTS",
        "API_TOKEN",
    ] {
        assert!(env_names.contains(&name), "{name} missing from the jail: {env_names:?}");
    }
    let mut files = Vec::new();
    let mut placeholders_seen = 0;
    for pid in jail_processes(&gateway) {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        assert!(
            !contains(&environ, &secret),
            "the secret is in the environment of jail process {pid}"
        );
        if contains(&environ, "gigph_") {
            placeholders_seen += 1;
        }
        read_tree(std::path::Path::new(&format!("/proc/{pid}/root/tmp")), &mut files);
    }
    assert!(
        placeholders_seen > 0,
        "the scan never saw the placeholder: it proves nothing"
    );
    assert!(
        files.iter().any(|(p, _)| p.to_string_lossy().contains("response-")),
        "the jail's saved responses were not found"
    );
    for (path, bytes) in &files {
        assert!(
            !contains(bytes, &secret),
            "the secret is in the jail's file {}",
            path.display()
        );
    }
    assert!(!client_output.contains(&secret), "the server's output holds the secret");
    assert!(!gateway.log().contains(&secret), "the gateway's log holds the secret");
}

/// Invariant 3: the proxy forwards only to the host the tunnel was opened for (Host header and SNI must
/// match the CONNECT host), and a placeholder is replaced only for the hosts its credential allows.
#[test]
fn no_domain_fronting_and_placeholders_go_only_to_their_hosts() {
    let Setup {
        world,
        gateway,
        token,
        secret,
    } = setup("64");
    let calls: Vec<(&str, Value)> = vec![
        (
            "fetch",
            fetch(
                "curl",
                &echo_url(),
                json!({"Host": OTHER, "Authorization": "Bearer ${API_TOKEN}"}),
            ),
        ),
        ("fetch", fetch("curl", &format!("https://{OTHER}/echo"), bearer())),
        ("fetch", fetch("python", &format!("https://{OTHER}/echo"), bearer())),
        // The tunnel is opened to api.test.example, TLS and Host name other.test.example (with -k: the leaf
        // names api.test.example, so only a client that ignores verification gets this far).
        (
            "run",
            json!({"argv": ["curl", "-k", "-sS", "--max-time", "30", "-w", "\n%{http_code}", "--connect-to",
                format!("{OTHER}:443:{API}:443"), format!("https://{OTHER}/echo")]}),
        ),
    ];
    let (results, _) = call(&world, &token, &calls);
    let r = |i: usize| &results[i];
    assert_eq!(
        r(0)["status"],
        403,
        "a Host header other than the CONNECT host passed: {}",
        r(0)
    );
    assert!(
        r(0)["body"]
            .as_str()
            .unwrap()
            .contains("differs from the tunnel's host"),
        "{}",
        r(0)
    );
    for i in [1, 2] {
        assert_eq!(
            r(i)["status"],
            403,
            "a placeholder went to a host it is not bound to: {}",
            r(i)
        );
        assert!(
            r(i)["body"].as_str().unwrap().contains("may not be sent to"),
            "{}",
            r(i)
        );
    }
    let fronted = r(3)["stdout"].as_str().unwrap();
    assert!(
        fronted.ends_with("\n403"),
        "a TLS name other than the CONNECT host passed: {}",
        r(3)
    );
    assert!(fronted.contains("the names must match"), "{}", r(3));

    let upstream_log = std::fs::read_to_string(&world.upstream_log).unwrap();
    assert!(
        !upstream_log.contains("/echo"),
        "a refused request reached the upstream: {upstream_log}"
    );
    assert!(
        !upstream_log.contains(&secret),
        "the secret left for a host not allowed: {upstream_log}"
    );
    let requests = audit_events(&gateway, "egress.request", 4);
    let seen = codes(&requests, "host");
    let has = |host: &str, code: &str| seen.iter().any(|(h, c)| h == host && c == code);
    assert!(has(API, "host-mismatch"), "{seen:?}");
    assert!(has(API, "sni-mismatch"), "{seen:?}");
    let wrong_host = seen
        .iter()
        .filter(|(h, c)| h == OTHER && c == "placeholder-host-not-allowed")
        .count();
    assert_eq!(wrong_host, 2, "{seen:?}");
    assert!(requests.iter().all(|e| e["outcome"] == "deny"), "{requests:#?}");
}

/// Policy at CONNECT (hosts the server did not declare), plain HTTP, and the dial guard on the resolved
/// address (127.0.0.1, 169.254.169.254, 10.0.0.1, a name resolving to loopback) refuse before anything is
/// dialed; a source other than the jail is refused; a changed egress list applies to the next tunnel.
#[test]
fn policy_and_the_dial_guard_refuse_before_dialing() {
    let Setup {
        world, gateway, token, ..
    } = setup("64");
    // A credential for hosts that policy or the guard refuse, whose secret cannot be decrypted (its
    // ciphertext was damaged in the database): a secret is decrypted only after policy and the guard allowed
    // the CONNECT, so these refusals stay policy's and the guard's, never a failure to read the secret.
    gateway.cli_with_input(
        &[
            "credential",
            "set",
            "web",
            "refused",
            "--hosts",
            "not-declared.test.example,127.0.0.1",
            "--header",
            "X-Key",
            "--format",
            "{secret}",
        ],
        "never-decrypted",
    );
    let damaged = rusqlite::Connection::open(gateway.dir.path().join("gigmcp.db"))
        .unwrap()
        .execute(
            "UPDATE secrets SET ciphertext = zeroblob(length(ciphertext)) WHERE name = 'refused'",
            [],
        )
        .unwrap();
    assert_eq!(damaged, 1);
    let calls: Vec<(&str, Value)> = vec![
        (
            "fetch",
            fetch("curl", "https://not-declared.test.example/echo", json!({})),
        ),
        ("fetch", fetch("curl", &format!("http://{API}/echo"), json!({}))),
        ("fetch", fetch("curl", "https://127.0.0.1/echo", json!({}))),
        (
            "fetch",
            fetch("curl", "https://169.254.169.254/latest/meta-data/", json!({})),
        ),
        ("fetch", fetch("curl", "https://10.0.0.1/", json!({}))),
        ("fetch", fetch("curl", "https://loop.test.example/", json!({}))),
        ("fetch", fetch("python", "https://loop.test.example/", json!({}))),
    ];
    let (results, _) = call(&world, &token, &calls);
    let r = |i: usize| &results[i];
    assert_eq!(r(0)["status"], 0, "a host not declared was tunnelled: {}", r(0));
    assert!(r(0)["stderr"].as_str().unwrap().contains("403"), "{}", r(0));
    assert_eq!(r(1)["status"], 405, "plain HTTP was proxied: {}", r(1));
    assert!(
        r(1)["body"].as_str().unwrap().contains("plain HTTP is not proxied"),
        "{}",
        r(1)
    );
    for i in 2..6 {
        assert_eq!(r(i)["status"], 0, "an internal address was tunnelled: {}", r(i));
        assert!(r(i)["stderr"].as_str().unwrap().contains("403"), "{}", r(i));
    }
    assert_eq!(r(6)["status"], 0, "python reached loopback: {}", r(6));
    assert!(r(6)["error"].as_str().unwrap().contains("403"), "{}", r(6));

    let connects = audit_events(&gateway, "egress.connect", 7);
    let seen = codes(&connects, "target");
    let has = |target: &str, code: &str| seen.iter().any(|(t, c)| t == target && c == code);
    assert!(has("not-declared.test.example:443", "policy-denied"), "{seen:?}");
    for target in [
        "127.0.0.1:443",
        "169.254.169.254:443",
        "10.0.0.1:443",
        "loop.test.example:443",
    ] {
        assert!(
            has(target, "address-forbidden"),
            "{target} was not refused by the guard: {seen:?}"
        );
    }
    assert!(seen.iter().any(|(_, c)| c == "not-connect"), "{seen:?}");
    assert!(
        !seen.iter().any(|(_, c)| c == "internal"),
        "a secret was read for a CONNECT that policy or the guard refused: {seen:?}"
    );
    let policy = connects
        .iter()
        .find(|e| e["detail"]["code"] == "policy-denied")
        .unwrap();
    assert_eq!(policy["detail"]["plugin"], "egress-allowlist", "{policy}");
    assert!(
        audit_events(&gateway, "egress.request", 0).is_empty(),
        "a refused tunnel carried a request"
    );

    // The proxy serves the jail's address only: a connection from any other source (here the gateway's own
    // namespace, which can reach the host-side address) is refused.
    let proxy = jail_processes(&gateway)
        .iter()
        .find_map(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            environ.split(|b| *b == 0).find_map(|e| {
                e.strip_prefix(b"HTTPS_PROXY=http://")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
        })
        .expect("the jail has HTTPS_PROXY");
    let (proxy_host, proxy_port) = proxy.trim_end_matches('/').rsplit_once(':').unwrap();
    let answer = world
        .gw
        .command()
        .args(["python3", "-c", RAW_CONNECT, proxy_host, proxy_port, API])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer.stdout);
    assert!(
        answer.starts_with("HTTP/1.1 403"),
        "a foreign source was served: {answer}"
    );
    assert!(answer.contains("unknown source"), "{answer}");

    // A running gateway applies a changed egress list to the next tunnel.
    assert!(gateway.cli_ok(&["server", "list"]).contains(API));
    let out = gateway.cli(&["server", "set", "web", "--egress", "a.*.example"]);
    assert!(!out.status.success(), "an invalid egress list was accepted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid --egress"),
        "{out:?}"
    );
    let (before, _) = call(&world, &token, &[("fetch", fetch("curl", &echo_url(), json!({})))]);
    assert_eq!(before[0]["status"], 200, "{}", before[0]);
    gateway.cli_ok(&["server", "set", "web", "--egress", OTHER]);
    let (after, _) = call(&world, &token, &[("fetch", fetch("curl", &echo_url(), json!({})))]);
    assert_eq!(
        after[0]["status"], 0,
        "a host removed from the egress list was tunnelled: {}",
        after[0]
    );
    assert!(after[0]["stderr"].as_str().unwrap().contains("403"), "{}", after[0]);

    // One vocabulary of outcomes: a tool call a policy plugin refuses and the egress refusals above are all
    // `deny`, so one search by decision (what `GET /api/audit?decision=deny` runs) finds both.
    gateway.cli_ok(&["plugin", "config", "tool-filter", r#"{"deny": ["web/env"]}"#]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (results, _) = call(&world, &token, &[("env", json!({}))]);
        if results[0].get("call_failed").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tool-filter never refused the tool: {}",
            results[0]
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let filter = gigmcp_store::audit::AuditFilter {
        decision: Some(gigmcp_types::audit::Outcome::Deny),
        ..Default::default()
    };
    let denials = audit_until(&gateway, &filter, |events| {
        events.iter().any(|e| e.kind == "mcp.tool_call")
    });
    assert!(
        denials.iter().all(|e| e.outcome == gigmcp_types::audit::Outcome::Deny),
        "{denials:?}"
    );
    assert!(
        denials
            .iter()
            .any(|e| e.kind == "egress.connect" && e.detail["plugin"] == "egress-allowlist"),
        "no egress denial under decision=deny: {denials:?}"
    );
    assert!(
        denials
            .iter()
            .any(|e| e.kind == "mcp.tool_call" && e.detail["plugin"] == "tool-filter"),
        "no MCP denial under decision=deny: {denials:?}"
    );
}

/// HTTP/2 inside the tunnel: streams of one connection, sent at once, each get their secret injected and
/// their reflection scrubbed, side by side on upstream connections of their own; sequential HTTP/1.1
/// requests reuse one upstream connection; an `:authority` (or `Host`) other than the CONNECT host is
/// refused per request.
#[test]
fn h2_streams_in_one_tunnel_are_each_checked_and_injected() {
    let eg = setup("64");
    let (world, gateway, secret) = (&eg.world, &eg.gateway, &eg.secret);
    let reflect = reflect_url();
    let parallel = format!(
        "curl -sS --max-time 30 --parallel --parallel-max 4 \
         -H \"Authorization: Bearer $API_TOKEN\" -w '%{{http_version}} %{{http_code}} %{{num_connects}}\\n' \
         -o /tmp/p1 '{reflect}&n=1' -o /tmp/p2 '{reflect}&n=2' -o /tmp/p3 '{reflect}&n=3' -o /tmp/p4 '{reflect}&n=4' \
         && cat /tmp/p1 /tmp/p2 /tmp/p3 /tmp/p4"
    );
    let sequential = format!(
        "curl -sS --max-time 30 --http1.1 -H \"Authorization: Bearer $API_TOKEN\" -w '%{{num_connects}}\\n' \
         -o /dev/null '{reflect}&n=5' -o /dev/null '{reflect}&n=6'"
    );
    let calls: Vec<(&str, Value)> = vec![
        ("run", json!({"argv": ["sh", "-c", parallel]})),
        ("run", json!({"argv": ["sh", "-c", sequential]})),
        // A request body over h2 (no Content-Length from curl's side of the tunnel) reaches the upstream.
        (
            "run",
            json!({"argv": ["curl", "-sS", "--max-time", "30", "--http2", "--data-binary", "payload over h2",
                "-H", "Content-Type: text/plain", echo_url()]}),
        ),
        (
            "run",
            json!({"argv": ["curl", "-sS", "--max-time", "30", "--http1.1", "-w", "\n%{http_version} %{http_code}",
                "-H", format!("Host: {OTHER}"), echo_url()]}),
        ),
        (
            "run",
            json!({"argv": ["curl", "-sS", "--max-time", "30", "--http2", "-w", "\n%{http_version} %{http_code}",
                "-H", format!("Host: {OTHER}"), echo_url()]}),
        ),
    ];
    let (results, _) = call(world, &eg.token, &calls);
    let r = |i: usize| &results[i];
    let out = r(0)["stdout"].as_str().unwrap();
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with('2') || l.starts_with('1'))
        .collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("2 200")).count(),
        4,
        "four h2 streams did not all succeed: {}",
        r(0)
    );
    // One connection (one tunnel) for all four streams.
    let connects: u32 = lines
        .iter()
        .filter_map(|l| l.split(' ').nth(2)?.parse::<u32>().ok())
        .sum();
    assert_eq!(connects, 1, "the streams did not share one tunnel: {}", r(0));
    assert_eq!(out.matches("\"reflected\":\"Bearer gigph_").count(), 4, "{}", r(0));
    assert!(!out.contains(secret.as_str()), "a reflected secret reached the jail");
    let (upstream_log, received) = upstream_requests(world);
    let injected = received
        .iter()
        .filter(|v| v["path"] == "/reflect" && v["headers"]["authorization"] == format!("Bearer {secret}"))
        .count();
    assert_eq!(injected, 6, "{upstream_log}");
    // Streams sent at once run side by side on connections of their own (a response never waits for another
    // stream's to be read); sequential requests of an HTTP/1.1 tunnel reuse one.
    let peer = |n: u32| {
        received
            .iter()
            .find(|v| v["query"].as_str().is_some_and(|q| q.ends_with(&format!("&n={n}"))))
            .map(|v| v["peer"].clone())
            .unwrap_or_else(|| panic!("no request n={n} upstream: {upstream_log}"))
    };
    let mut parallel_peers: Vec<String> = (1..=4).map(|n| peer(n).to_string()).collect();
    parallel_peers.sort();
    parallel_peers.dedup();
    assert!(
        parallel_peers.len() > 1,
        "h2 streams were serialized on one upstream connection: {upstream_log}"
    );
    assert_eq!(r(1)["stdout"], "1\n0\n", "curl opened more than one tunnel: {}", r(1));
    assert_eq!(
        peer(5),
        peer(6),
        "a kept-alive tunnel dialed the upstream again: {upstream_log}"
    );
    let posted: Value = serde_json::from_str(r(2)["stdout"].as_str().unwrap()).unwrap_or_default();
    assert_eq!(
        (&posted["method"], &posted["body"]),
        (&json!("POST"), &json!("payload over h2")),
        "{}",
        r(2)
    );
    for (i, version) in [(3, "1.1"), (4, "2")] {
        let out = r(i)["stdout"].as_str().unwrap();
        assert!(
            out.ends_with(&format!("\n{version} 403")),
            "Host other than the tunnel's over HTTP/{version} was not refused: {}",
            r(i)
        );
        assert!(out.contains("differs from the tunnel's host"), "{}", r(i));
    }
    let requests = audit_events(gateway, "egress.request", 9);
    assert_eq!(requests.len(), 9, "{requests:#?}");
    assert_eq!(
        requests
            .iter()
            .filter(|e| e["detail"]["code"] == "host-mismatch")
            .count(),
        2,
        "{requests:#?}"
    );
}

/// `GIG_EGRESS_MAX_TUNNELS`: a tunnel over the cap gets a clean 429 (audited), and closing tunnels frees it.
#[test]
fn the_tunnel_cap_is_a_clean_refusal_and_frees_again() {
    let Setup {
        world, gateway, token, ..
    } = setup("3");
    let calls: Vec<(&str, Value)> = vec![
        ("tunnels", json!({"count": 4, "host": API})),
        ("fetch", fetch("curl", &echo_url(), json!({}))),
    ];
    let (results, _) = call(&world, &token, &calls);
    let lines: Vec<&str> = results[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in &lines[..3] {
        assert!(line.contains(" 200 "), "{lines:?}");
    }
    assert!(
        lines[3].starts_with("HTTP/1.1 429"),
        "the fourth tunnel was not refused: {lines:?}"
    );
    assert_eq!(results[1]["status"], 200, "tunnels were not freed: {}", results[1]);
    let connects = audit_events(&gateway, "egress.connect", 1);
    assert_eq!(
        codes(&connects, "target"),
        [(format!("{API}:443"), "too-many-tunnels".to_owned())]
    );
}

/// Sends a CONNECT to (host, port) and prints the whole answer.
const RAW_CONNECT: &str = "import socket,sys\ns=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=10)\n\
s.sendall(('CONNECT %s:443 HTTP/1.1\\r\\nHost: %s:443\\r\\n\\r\\n' % (sys.argv[3], sys.argv[3])).encode())\n\
data=b''\nwhile True:\n c=s.recv(4096)\n if not c: break\n data+=c\nprint(data.decode())\n";

#[test]
fn bad_egress_settings_stop_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    for (name, value, expected) in [
        ("GIG_EGRESS_RESOLVE", "api.example.com", "GIG_EGRESS_RESOLVE"),
        ("GIG_EGRESS_RESOLVE", "api.example.com=not-an-ip", "not an IP address"),
        ("GIG_EGRESS_ALLOW_ADDRS", "10.0.0.0/33", "GIG_EGRESS_ALLOW_ADDRS"),
        ("GIG_EGRESS_MAX_TUNNELS", "0", "GIG_EGRESS_MAX_TUNNELS"),
        ("GIG_EGRESS_EXTRA_CA", missing.to_str().unwrap(), "cannot read"),
    ] {
        let out = Command::new(gigmcp_testkit::gigmcp_bin())
            .arg("serve")
            .env("GIG_DATA_DIR", dir.path())
            .env("GIG_MASTER_KEY", gigmcp_testkit::MASTER_KEY)
            .env("GIG_LISTEN", "127.0.0.1:0")
            .env(name, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}={value} was accepted");
        assert!(stderr.contains(expected), "{name}={value}: {stderr}");
    }
    assert!(
        !dir.path().join("gigmcp.db").exists(),
        "a refused start-up changed the data directory"
    );
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}
