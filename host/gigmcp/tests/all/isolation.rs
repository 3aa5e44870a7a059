//! The escape suite (invariants 2 and 4): a probe server in a real jail tries to escape, and every attempt
//! is asserted to fail from outside. The gateway runs in a network namespace of its own whose only link
//! goes to an "outside" test host in another namespace the test made, so a regression cannot send a
//! packet off this machine. Needs root, bubblewrap, iproute2 and nftables (`make test` installs them).

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use gigmcp_testkit::{Netns, TestGateway};
use serde_json::{Value, json};

/// Accepts connections forever on (address, port): a service that must stay out of a sandbox's reach.
const LISTENER: &str = "import socket,sys\ns=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n\
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind((sys.argv[1],int(sys.argv[2])))\ns.listen(64)\n\
while True:\n c,_=s.accept()\n c.close()\n";

const CONNECT: &str = "import socket,sys\nsocket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=2).close()\n";

/// Waits until `ns` itself (not a sandbox) can connect to (host, port): the service is up and reachable.
fn wait_reachable(ns: &Netns, host: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                "python3",
                "-c",
                CONNECT,
                host,
                &port.to_string(),
            ])
            .output()
            .unwrap()
            .status
            .success();
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{host}:{port} never became reachable from {}",
            ns.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct World {
    gw: Netns,
    _outside: Netns,
    _services: Vec<gigmcp_testkit::Guard>,
}

/// The gateway's namespace, linked only to an "outside" host (198.51.100.2, a documentation address that
/// exists only in the test's namespaces) which is its default route, with a service listening there and a
/// host service listening on all addresses of the gateway's namespace.
fn world() -> World {
    let (gw, outside) = gigmcp_testkit::linked_to_outside("g", "o");
    let services = vec![
        outside.spawn(&["python3", "-c", LISTENER, "198.51.100.2", "8000"]),
        gw.spawn(&["python3", "-c", LISTENER, "0.0.0.0", "9999"]),
    ];
    wait_reachable(&gw, "198.51.100.2", 8000);
    wait_reachable(&gw, "127.0.0.1", 9999);
    World {
        gw,
        _outside: outside,
        _services: services,
    }
}

fn add_probe(gateway: &TestGateway, name: &str) {
    let support = gigmcp_testkit::repo_root().join("tests/support");
    let script = support.join("escape-probe.py");
    gateway.cli_ok(&[
        "server",
        "add",
        name,
        "--command",
        "/usr/bin/python3",
        "--arg",
        script.to_str().unwrap(),
        "--mount",
        support.to_str().unwrap(),
        "--memory",
        "128m",
        "--pids",
        "48",
    ]);
}

/// Runs probe checks in one client session inside the gateway's namespace; returns each check's report
/// (or `{"call_failed": ...}` when the call itself failed, e.g. because the probe was killed).
fn probe(world: &World, url: &str, token: &str, calls: &[(&str, Value)]) -> Vec<Value> {
    let tools: Vec<String> = calls.iter().map(|(server, _)| format!("{server}_probe")).collect();
    let plan: Vec<(&str, Value)> = tools
        .iter()
        .zip(calls)
        .map(|(tool, (_, args))| (tool.as_str(), args.clone()))
        .collect();
    let data = gigmcp_testkit::call_tools_in(Some(&world.gw), url, token, &plan, false);
    data["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match (r.get("text"), r["is_error"].as_bool()) {
            (Some(Value::String(text)), Some(false)) => {
                serde_json::from_str(text).unwrap_or_else(|_| json!({"unparsed": text}))
            }
            _ => json!({"call_failed": r}),
        })
        .collect()
}

fn jail_address(report: &Value) -> String {
    report["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|a| *a != "127.0.0.1")
        .expect("the jail has an address")
        .to_owned()
}

fn host_end(jail: &str) -> String {
    let mut octets: Vec<u8> = jail.split('.').map(|o| o.parse().unwrap()).collect();
    octets[3] -= 1;
    octets.iter().map(u8::to_string).collect::<Vec<_>>().join(".")
}

/// A connection attempt that the firewall must have stopped: not connected, and not refused either (a
/// refusal would mean the packet reached something that answered).
fn assert_blocked(report: &Value, what: &str) {
    let result = report["result"].as_str().unwrap_or_default();
    assert!(
        report["ok"] == false && result != "ECONNREFUSED",
        "{what}: a sandbox got through: {report}"
    );
}

#[test]
fn sandbox_escape_attempts_all_fail() {
    let world = world();
    let canary_path = std::env::temp_dir().join(format!("gigmcp-canary-{}.txt", std::process::id()));
    let canary = format!("canary-{}", std::process::id());
    std::fs::write(&canary_path, &canary).unwrap();
    let secret = format!("gateway-secret-{}", std::process::id());
    let gateway = TestGateway::start_in(
        Some(&world.gw),
        &[
            ("GIG_LISTEN", "0.0.0.0:8080"),
            ("GIG_TEST_SECRET", &secret),
            ("GIG_PROXY_PORT", "8081"),
        ],
    );
    let token = gateway.create_profile("iso");
    for server in ["a", "b"] {
        add_probe(&gateway, server);
        gateway.cli_ok(&["profile", "add-server", "iso", server]);
    }
    let url = "http://127.0.0.1:8080/mcp/p/iso";
    let first = probe(
        &world,
        url,
        &token,
        &[
            ("a", json!({"check": "addresses"})),
            ("b", json!({"check": "addresses"})),
        ],
    );
    let (a_jail, b_jail) = (jail_address(&first[0]), jail_address(&first[1]));
    let (a_host, b_host) = (host_end(&a_jail), host_end(&b_jail));
    assert_ne!(a_jail, b_jail);
    assert_eq!(
        first[0]["ipv6_addresses"], false,
        "IPv6 is on in the jail: {}",
        first[0]
    );

    let connect = |host: &str, port: u16| json!({"check": "connect", "host": host, "port": port});
    let checks: Vec<(&str, &str, Value)> = vec![
        ("canary file", "a", json!({"check": "read", "path": canary_path})),
        ("/etc/shadow", "a", json!({"check": "read", "path": "/etc/shadow"})),
        ("environment", "a", json!({"check": "env"})),
        ("credentials", "a", json!({"check": "status"})),
        ("unshare(CLONE_NEWUSER)", "a", json!({"check": "unshare_user"})),
        ("unshare(CLONE_NEWNET)", "a", json!({"check": "unshare_net"})),
        ("mount", "a", json!({"check": "mount"})),
        ("ptrace of a sibling", "a", json!({"check": "ptrace"})),
        ("proxy port (control)", "a", connect(&a_host, 8081)),
        ("gateway listener via own host end", "a", connect(&a_host, 8080)),
        ("gateway listener via its uplink", "a", connect("198.51.100.1", 8080)),
        ("host service", "a", connect(&a_host, 9999)),
        ("another sandbox", "a", connect(&b_jail, 8081)),
        ("another sandbox's proxy port", "a", connect(&b_host, 8081)),
        ("outside host", "a", connect("198.51.100.2", 8000)),
        ("IPv6 link-local", "a", connect("fe80::1%2", 8081)),
        ("IPv6 loopback of the host", "a", connect("::ffff:198.51.100.2", 8000)),
        (
            "name resolution",
            "a",
            json!({"check": "resolve", "name": "example.com"}),
        ),
        (
            "spoofed source",
            "a",
            json!({"check": "connect", "host": a_host, "port": 8081, "source": b_jail, "freebind": true}),
        ),
    ];
    let calls: Vec<(&str, Value)> = checks.iter().map(|(_, server, args)| (*server, args.clone())).collect();
    let reports = probe(&world, url, &token, &calls);
    let by_name: HashMap<&str, &Value> = checks.iter().map(|(name, _, _)| *name).zip(reports.iter()).collect();

    for file in ["canary file", "/etc/shadow"] {
        assert_eq!(by_name[file]["ok"], false, "{file} was readable: {}", by_name[file]);
    }
    let env = by_name["environment"]["env"].as_object().expect("env reported");
    for (key, value) in env {
        assert!(!key.starts_with("GIG_"), "gateway variable {key} leaked");
        assert!(
            !value.as_str().unwrap_or_default().contains(&secret),
            "gateway secret leaked in {key}"
        );
    }
    let status = &by_name["credentials"]["status"];
    for cap in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
        assert_eq!(status[cap][0], "0000000000000000", "{cap}: {status}");
    }
    assert_eq!(status["NoNewPrivs"][0], "1", "{status}");
    assert_eq!(status["Seccomp"][0], "2", "no seccomp filter: {status}");
    assert_ne!(by_name["credentials"]["uid"], 0);
    for check in [
        "unshare(CLONE_NEWUSER)",
        "unshare(CLONE_NEWNET)",
        "mount",
        "ptrace of a sibling",
    ] {
        assert_eq!(by_name[check]["ok"], false, "{check} succeeded: {}", by_name[check]);
    }
    assert_eq!(
        by_name["proxy port (control)"]["result"], "connected",
        "the egress proxy on the sandbox's own host end must be the one thing that answers: {}",
        by_name["proxy port (control)"]
    );
    for check in [
        "gateway listener via own host end",
        "gateway listener via its uplink",
        "host service",
        "another sandbox",
        "another sandbox's proxy port",
        "outside host",
        "IPv6 link-local",
        "IPv6 loopback of the host",
        "spoofed source",
    ] {
        assert_blocked(by_name[check], check);
    }
    assert_eq!(
        by_name["name resolution"]["ok"], false,
        "{}",
        by_name["name resolution"]
    );

    // On the host, the jail's processes belong to an unprivileged uid of the configured range.
    let pid = probe(&world, url, &token, &[("a", json!({"check": "pid"}))]);
    assert!(pid[0]["pid"].as_u64().is_some());
    let uids = Command::new("ps").args(["-eo", "uid,args"]).output().unwrap();
    let listing = String::from_utf8_lossy(&uids.stdout);
    let probe_uids: Vec<u32> = listing
        .lines()
        .filter(|l| l.contains("escape-probe.py") && !l.contains("bwrap"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(!probe_uids.is_empty(), "no probe process found:\n{listing}");
    assert!(
        probe_uids.iter().all(|uid| *uid >= 10_000),
        "probe runs as a privileged uid: {probe_uids:?}"
    );

    // Limits: a fork bomb stops at the pids limit, memory past the limit kills only that sandbox, and the
    // gateway and the other sandbox keep serving throughout.
    let limits = probe(
        &world,
        url,
        &token,
        &[
            ("a", json!({"check": "fork_bomb", "limit": 2000})),
            ("b", json!({"check": "pid"})),
            ("a", json!({"check": "allocate", "megabytes": 400})),
            ("b", json!({"check": "pid"})),
        ],
    );
    assert_eq!(limits[0]["ok"], false, "fork bomb was not stopped: {}", limits[0]);
    assert!(limits[0]["forked"].as_u64().unwrap() < 48, "{}", limits[0]);
    assert!(
        limits[1]["pid"].is_u64(),
        "other sandbox stopped serving: {}",
        limits[1]
    );
    assert!(
        limits[2].get("call_failed").is_some(),
        "allocating past the limit succeeded: {}",
        limits[2]
    );
    assert!(
        limits[3]["pid"].is_u64(),
        "other sandbox stopped serving: {}",
        limits[3]
    );
    // The killed server is restarted after its backoff; until then calls to it say why they fail.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let again = probe(&world, url, &token, &[("a", json!({"check": "pid"}))]);
        if again[0]["pid"].is_u64() {
            break;
        }
        let error = again[0]["call_failed"]["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            error.contains("restarts in") || error.contains("not running"),
            "unexpected failure while restarting: {}",
            again[0]
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the killed server was not started again"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = std::fs::remove_file(canary_path);
}
