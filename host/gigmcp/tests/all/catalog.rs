//! The signed catalog end to end: the registry tooling of the CLI on the fixture registry
//! (`tests/catalog/registry`), and a gateway that trusts only an index signed by its key and never steps back
//! to an older one, over `file://` and over HTTPS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gigmcp_testkit::{TestGateway, gigmcp_bin, repo_root};
use serde_json::Value;

const T0: &str = "2026-06-10T00:00:00Z";
const T1: &str = "2026-06-11T00:00:00Z";
const T2: &str = "2026-06-12T00:00:00Z";

/// The index the fixtures build into at T1 (`host/catalog/tests/fixtures.rs` checks it against Go).
const FIXTURE_INDEX_SHA256: &str = "c68a8d6aabb89b0e55f02de8781781496b5f6802f723113fbf7316d86005afe9";

fn fixtures() -> PathBuf {
    repo_root().join("tests/catalog/registry")
}

fn gigmcp(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(gigmcp_bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn failed(out: Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A signing key in `dir/key.hex`; returns its public key.
pub(crate) fn keygen(dir: &Path) -> String {
    let printed = ok(gigmcp(
        &["catalog", "keygen", "--out", dir.join("key.hex").to_str().unwrap()],
        &[],
    ));
    printed
        .trim()
        .strip_prefix("public: ")
        .expect("the public key")
        .to_owned()
}

pub(crate) fn build(registry: &Path, key_dir: &Path, out: &Path, generated: &str) {
    ok(gigmcp(
        &[
            "catalog",
            "build",
            registry.to_str().unwrap(),
            "--key-file",
            key_dir.join("key.hex").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--generated",
            generated,
        ],
        &[],
    ));
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn the_cli_lints_hashes_and_signs_a_registry() {
    let work = tempfile::tempdir().unwrap();
    let out = ok(gigmcp(&["catalog", "lint", fixtures().to_str().unwrap()], &[]));
    assert_eq!(out.trim(), "ok: 10 manifests, 7 toolspecs");

    let manifest = fixtures().join("manifests/pubsub/1.5.0.yaml");
    let out = ok(gigmcp(&["catalog", "hash", manifest.to_str().unwrap()], &[]));
    assert!(
        out.contains("Hash        f69fae79199dfb2dff6adb5b9368e6e19d1ab1d1137b0b27608da76a2631739b"),
        "{out}"
    );
    assert!(
        out.contains("RuntimeHash efbd9e923203a86700f0219462341c719c3bfe6915df65de24aa50919bc73276"),
        "{out}"
    );

    // Keys: the private half readable only by its owner, never overwritten.
    let public = keygen(work.path());
    assert_eq!(public.len(), 64);
    let mode = std::fs::metadata(work.path().join("key.hex")).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    let error = failed(gigmcp(
        &[
            "catalog",
            "keygen",
            "--out",
            work.path().join("key.hex").to_str().unwrap(),
        ],
        &[],
    ));
    assert!(error.contains("never overwritten"), "{error}");

    // The index is the Go reference's bytes; the signature is one line of 128 hex characters.
    let out_dir = work.path().join("out");
    build(&fixtures(), work.path(), &out_dir, T1);
    assert_eq!(
        sha256_hex(&std::fs::read(out_dir.join("index.json")).unwrap()),
        FIXTURE_INDEX_SHA256
    );
    let signature = std::fs::read_to_string(out_dir.join("index.json.sig")).unwrap();
    assert_eq!(signature.len(), 129);
    assert!(signature.ends_with('\n'));

    // A broken registry: every problem named with its file, and nothing built.
    let broken = work.path().join("broken");
    copy_dir(&fixtures(), &broken);
    let edit = |file: &str, from: &str, to: &str| {
        let path = broken.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file}: {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    };
    edit("manifests/newsfeed/0.1.0.yaml", "entitlements:", "entitlement:");
    edit("manifests/weatherly/0.1.0.toolspec.yaml", "name: units", "name: on");
    edit("manifests/weatherly/0.1.0.toolspec.yaml", "name: days", "name: api_key");
    edit(
        "manifests/helpdesk/0.1.0.yaml",
        "    - \"*.helpdesk.test\"\n",
        "    - \"*.helpdesk.test\"\n    - api.pastebin.com\n",
    );
    edit("manifests/chatbin/1.3.0.yaml", "version: 1.3.0", "version: 1.3.1");
    std::fs::remove_file(broken.join("manifests/pubsub/1.4.2.toolspec.yaml")).unwrap();
    let error = failed(gigmcp(&["catalog", "lint", broken.to_str().unwrap()], &[]));
    for needle in [
        "manifests/newsfeed/0.1.0.yaml: entitlement: unknown field `entitlement`",
        "manifests/weatherly/0.1.0.toolspec.yaml: line 19, column 15: the plain scalar on is the boolean true",
        "manifests/helpdesk/0.1.0.yaml: egress \"api.pastebin.com\" matches denylist entry \"pastebin.com\"",
        "manifests/chatbin/1.3.0.yaml: path must be manifests/chatbin/1.3.1.yaml",
        "manifests/pubsub/1.4.2.yaml: builder toolpack needs manifests/pubsub/1.4.2.toolspec.yaml",
        "lint failed: 5 error(s)",
        "warning: manifests/weatherly/0.1.0.toolspec.yaml: tool \"forecast\": param \"api_key\" looks like a secret",
    ] {
        assert!(error.contains(needle), "{needle}\n{error}");
    }
    let error = failed(gigmcp(
        &[
            "catalog",
            "build",
            broken.to_str().unwrap(),
            "--key-file",
            work.path().join("key.hex").to_str().unwrap(),
            "--out",
            work.path().join("broken-out").to_str().unwrap(),
        ],
        &[],
    ));
    assert!(error.contains("does not lint clean"), "{error}");
    assert!(!work.path().join("broken-out").exists());
}

/// A session-holding API client of one gateway.
struct Session {
    http: reqwest::Client,
    cookie: String,
    base: String,
}

impl Session {
    async fn start(gateway: &TestGateway) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie = gateway.admin_cookie(&http).await;
        Self {
            http,
            cookie,
            base: format!("http://{}", gateway.addr),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The catalog once the gateway has fetched one (it does so in the background at start).
    async fn catalog(&self) -> Value {
        for _ in 0..100 {
            let (status, body) = self.get("/api/catalog").await;
            if status == 200 {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the gateway never served its catalog: {:?}",
            self.get("/api/catalog").await
        );
    }
}

#[tokio::test]
async fn the_gateway_trusts_only_a_signed_index_and_never_an_older_one() {
    let work = tempfile::tempdir().unwrap();
    let public = keygen(work.path());
    let published = work.path().join("published");
    build(&fixtures(), work.path(), &published, T1);
    let url = format!("file://{}", published.join("index.json").display());
    let mut gateway = TestGateway::start_with(&[("GIG_REGISTRY_INDEX_URL", &url), ("GIG_REGISTRY_PUBKEY", &public)]);
    let session = Session::start(&gateway).await;

    let catalog = session.catalog().await;
    assert_eq!(catalog["generated"], T1);
    let names: Vec<&str> = catalog["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "chatbin",
            "helpdesk",
            "legacybot",
            "newsfeed",
            "oldpager",
            "pubsub",
            "taskboard",
            "weatherly"
        ]
    );
    let legacybot = &catalog["entries"][2];
    assert_eq!(
        legacybot["not_installable"],
        "its image digest is the all-zero placeholder"
    );
    let (status, pubsub) = session.get("/api/catalog/pubsub").await;
    assert_eq!(status, 200, "{pubsub}");
    assert_eq!(pubsub["version"], "1.5.0");
    assert_eq!(pubsub["versions"], serde_json::json!(["1.4.2", "1.5.0"]));
    assert_eq!(
        pubsub["runtime_hash"],
        "efbd9e923203a86700f0219462341c719c3bfe6915df65de24aa50919bc73276"
    );
    assert_eq!(pubsub["tools"][2]["name"], "publish_message");
    assert_eq!(pubsub["tools"][2]["default"], false);
    assert_eq!(pubsub["tools"][2]["description"], "Publish a message on a channel.");
    assert_eq!(pubsub["credential_details"][0]["format"], "Basic {token}");
    let (status, old) = session.get("/api/catalog/pubsub?version=1.4.2").await;
    assert_eq!((status, old["version"].as_str()), (200, Some("1.4.2")));
    assert_eq!(session.get("/api/catalog/nope").await.0, 404);

    let listed = gateway.cli_ok(&["catalog", "list", "--category", "comms"]);
    let first_words: Vec<&str> = listed.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(first_words, ["chatbin", "legacybot", "oldpager", "pubsub"]);
    let shown = gateway.cli_ok(&["catalog", "show", "taskboard@0.9.0"]);
    assert!(shown.starts_with("taskboard@0.9.0  Taskboard\n"), "{shown}");
    assert!(shown.contains("versions:     0.9.0, 0.10.0 (latest 0.10.0)"), "{shown}");
    assert!(shown.contains("credential:   taskboard_oauth (oauth2, vendor testidp, scopes tasks:read tasks:write)"));

    let refused = |expected: &str| {
        let error = String::from_utf8(gateway.cli(&["catalog", "refresh"]).stderr).unwrap();
        assert!(error.contains(expected), "{expected}: {error}");
    };
    let index = published.join("index.json");
    let good = std::fs::read(&index).unwrap();

    // A tampered index (one byte flipped, the signature kept) is refused before it is parsed.
    let mut tampered = good.clone();
    tampered[20] ^= 1;
    std::fs::write(&index, &tampered).unwrap();
    refused("UNTRUSTED index: index signature verification FAILED");
    // A malformed signature, and a signature by another key.
    std::fs::write(&index, &good).unwrap();
    let signature = published.join("index.json.sig");
    let good_signature = std::fs::read_to_string(&signature).unwrap();
    std::fs::write(&signature, &good_signature[..126]).unwrap();
    refused("signature must be 64 hex-encoded bytes");
    let other = tempfile::tempdir().unwrap();
    keygen(other.path());
    build(&fixtures(), other.path(), &published, T2);
    refused("UNTRUSTED index");

    // A validly signed older index: a rollback.
    build(&fixtures(), work.path(), &published, T0);
    refused(
        "refused a rollback: the index was generated at 2026-06-10T00:00:00Z, before the one already accepted (2026-06-11T00:00:00Z)",
    );
    // The same time with other bytes.
    let changed = work.path().join("changed");
    copy_dir(&fixtures(), &changed);
    let manifest = changed.join("manifests/newsfeed/0.1.0.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("displayName: Newsfeed", "displayName: Newsfeed 2"),
    )
    .unwrap();
    build(&changed, work.path(), &published, T1);
    refused("has the generated time of the one already accepted (2026-06-11T00:00:00Z) but other bytes");
    assert_eq!(session.catalog().await["generated"], T1, "refusals change nothing");

    // The high-water mark survives a restart: the gateway refuses the older index it finds at start.
    build(&fixtures(), work.path(), &published, T0);
    gateway.restart();
    let session = Session::start(&gateway).await;
    let filter = gigmcp_store::audit::AuditFilter {
        kind: Some("catalog.refresh".into()),
        decision: Some(gigmcp_types::audit::Outcome::Deny),
        ..Default::default()
    };
    let events = crate::audit_until(&gateway, &filter, |events| !events.is_empty());
    assert_eq!(events.len(), 1, "{events:?}");
    let reason = events[0].detail["reason"].as_str().unwrap();
    assert!(reason.contains("refused a rollback"), "{reason}");
    assert_eq!(session.catalog().await["generated"], T1);

    // A newer index is accepted.
    build(&changed, work.path(), &published, T2);
    let out = gateway.cli_ok(&["catalog", "refresh"]);
    assert!(out.starts_with(&format!("accepted index generated {T2}")), "{out}");
    let catalog = session.catalog().await;
    assert_eq!(catalog["generated"], T2);
    assert_eq!(catalog["entries"][3]["display_name"], "Newsfeed 2");
}

#[test]
fn an_https_registry_must_answer_200_within_32_mib_under_a_trusted_ca() {
    let work = tempfile::tempdir().unwrap();
    let public = keygen(work.path());
    let files = work.path().join("files");
    build(&fixtures(), work.path(), &files, T1);
    gigmcp_testkit::make_certificates(work.path(), &["127.0.0.1"]);
    let port = gigmcp_testkit::free_port();
    let (_upstream, _log) = gigmcp_testkit::start_upstream(None, work.path(), "127.0.0.1", port, Some(&files));
    let data = tempfile::tempdir().unwrap();
    let ca = work.path().join("ca.pem");
    let refresh = |path: &str, with_ca: bool| {
        let url = format!("https://127.0.0.1:{port}{path}");
        let mut env = vec![
            ("GIG_DATA_DIR", data.path().to_str().unwrap()),
            ("GIG_REGISTRY_INDEX_URL", url.as_str()),
            ("GIG_REGISTRY_PUBKEY", public.as_str()),
        ];
        if with_ca {
            env.push(("GIG_REGISTRY_CA_FILE", ca.to_str().unwrap()));
        }
        gigmcp(&["catalog", "refresh"], &env)
    };
    let error = failed(refresh("/files/index.json", false));
    assert!(error.contains("cannot fetch https://127.0.0.1"), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    let error = failed(refresh("/files/missing.json", true));
    assert!(error.contains("answered 404 Not Found, not 200"), "{error}");
    let error = failed(refresh("/download?bytes=33554433", true));
    assert!(error.contains("larger than 32 MiB"), "{error}");
    std::fs::remove_file(files.join("index.json.sig")).unwrap();
    let error = failed(refresh("/files/index.json", true));
    assert!(error.contains("index.json.sig: the server answered 404"), "{error}");
    build(&fixtures(), work.path(), &files, T1);
    let out = ok(refresh("/files/index.json", true));
    assert!(out.starts_with(&format!("accepted index generated {T1}")), "{out}");
    let out = ok(refresh("/files/index.json", true));
    assert!(out.starts_with("unchanged:"), "{out}");
}

#[test]
fn registry_settings_are_checked_at_start() {
    for (env, expected) in [
        (
            vec![("GIG_REGISTRY_INDEX_URL", "file:///x/index.json")],
            "GIG_REGISTRY_PUBKEY is not set",
        ),
        (
            vec![("GIG_REGISTRY_PUBKEY", &"ab".repeat(32)[..])],
            "GIG_REGISTRY_INDEX_URL is not set",
        ),
        (
            vec![
                ("GIG_REGISTRY_INDEX_URL", "http://x/index.json"),
                ("GIG_REGISTRY_PUBKEY", &"ab".repeat(32)[..]),
            ],
            "GIG_REGISTRY_INDEX_URL is invalid",
        ),
        (
            vec![
                ("GIG_REGISTRY_INDEX_URL", "file:///x/index.json"),
                ("GIG_REGISTRY_PUBKEY", "abcd"),
            ],
            "GIG_REGISTRY_PUBKEY is invalid",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let mut env = env.clone();
        env.push(("GIG_DATA_DIR", data.path().to_str().unwrap()));
        let error = failed(gigmcp(&["catalog", "list"], &env));
        assert!(error.contains(expected), "{expected}: {error}");
    }
    let data = tempfile::tempdir().unwrap();
    let error = failed(gigmcp(
        &["catalog", "list"],
        &[("GIG_DATA_DIR", data.path().to_str().unwrap())],
    ));
    assert!(error.contains("no catalog is configured"), "{error}");
}

impl Session {
    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn the_api_installs_catalog_entries_upgrades_with_consent_and_switches_tools() {
    use reqwest::Method;
    use serde_json::json;
    let work = tempfile::tempdir().unwrap();
    let public = keygen(work.path());
    let published = work.path().join("published");
    build(&fixtures(), work.path(), &published, T1);
    let url = format!("file://{}", published.join("index.json").display());
    let gateway = TestGateway::start_with(&[("GIG_REGISTRY_INDEX_URL", &url), ("GIG_REGISTRY_PUBKEY", &public)]);
    let session = Session::start(&gateway).await;
    session.catalog().await;

    // Bad input changes nothing.
    for (body, needle) in [
        (
            json!({"name": "p", "catalog": "pubsub", "command": "/bin/x"}),
            "command cannot be combined with catalog",
        ),
        (json!({"name": "p", "catalog": "nope"}), "unknown server \"nope\""),
        (json!({"name": "p", "catalog": "oldpager"}), "all-zero placeholder"),
        (
            json!({"name": "p", "catalog": "helpdesk", "base_url": "https://acme.other.test"}),
            "outside the entry's egress",
        ),
        (
            json!({"name": "p", "catalog": "helpdesk", "base_url": "https://acme.helpdesk.test/"}),
            "no port, path",
        ),
        (
            json!({"name": "p", "builtin": "echo", "base_url": "https://acme.helpdesk.test"}),
            "base_url goes with catalog",
        ),
    ] {
        let (status, answer) = session.send(Method::POST, "/api/servers", body.clone()).await;
        assert!(status == 400 || status == 404, "{body}: {status} {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(needle),
            "{needle}: {answer}"
        );
    }
    assert_eq!(
        session.get("/api/servers").await.1["items"].as_array().map(Vec::len),
        Some(0)
    );

    let (status, server) = session
        .send(
            Method::POST,
            "/api/servers",
            json!({"name": "pubsub", "catalog": "pubsub@1.4.2"}),
        )
        .await;
    assert_eq!(status, 201, "{server}");
    assert_eq!(server["transport"], "toolpack");
    assert_eq!(server["target"], "catalog pubsub@1.4.2");
    assert_eq!(server["egress"], json!(["api.toolpack.test"]));
    // The upgrade changes the runtime: installed, waiting for consent.
    let (status, server) = session
        .send(
            Method::POST,
            "/api/servers",
            json!({"name": "pubsub", "catalog": "pubsub@1.5.0"}),
        )
        .await;
    assert_eq!(status, 200, "{server}");
    assert_eq!(server["target"], "catalog pubsub@1.5.0 (waits for consent)");
    let (status, consented) = session
        .send(Method::POST, "/api/servers/pubsub/consent", json!({}))
        .await;
    assert_eq!(status, 200, "{consented}");
    assert!(
        consented["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "version 1.4.2 → 1.5.0"),
        "{consented}"
    );
    assert_eq!(
        session.get("/api/servers/pubsub").await.1["target"],
        "catalog pubsub@1.5.0"
    );

    // Tool switches of a profile.
    let (status, _) = session
        .send(Method::POST, "/api/profiles", json!({"slug": "team"}))
        .await;
    assert_eq!(status, 201);
    let (status, _) = session
        .send(
            Method::PUT,
            "/api/profiles/team/servers",
            json!({"servers": ["pubsub"]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, tools) = session.get("/api/profiles/team/tool-switches").await;
    assert_eq!(status, 200, "{tools}");
    let publish = json!({"server": "pubsub", "tool": "publish_message", "enabled": false, "default": false});
    assert!(tools.as_array().unwrap().contains(&publish), "{tools}");
    let (status, tools) = session
        .send(
            Method::POST,
            "/api/profiles/team/tool-switches",
            json!({"tool": "pubsub/publish_message", "enabled": true}),
        )
        .await;
    assert_eq!(status, 200, "{tools}");
    let publish = json!({"server": "pubsub", "tool": "publish_message", "enabled": true, "default": false,
                         "switched": true});
    assert!(tools.as_array().unwrap().contains(&publish), "{tools}");
    let (status, answer) = session
        .send(
            Method::POST,
            "/api/profiles/team/tool-switches",
            json!({"tool": "pubsub/nope", "enabled": true}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let listed = gateway.cli_ok(&["profile", "tools", "team"]);
    assert!(
        listed.contains("on  pubsub/publish_message (switched for this profile)"),
        "{listed}"
    );
}

#[test]
fn gig_install_installs_entries_at_start_with_consent() {
    let work = tempfile::tempdir().unwrap();
    let public = keygen(work.path());
    let published = work.path().join("published");
    build(&fixtures(), work.path(), &published, T1);
    let url = format!("file://{}", published.join("index.json").display());
    let gateway = TestGateway::start_with(&[
        ("GIG_REGISTRY_INDEX_URL", &url),
        ("GIG_REGISTRY_PUBKEY", &public),
        ("GIG_INSTALL", "newsfeed,pubsub@1.4.2"),
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let listed = loop {
        let listed = gateway.cli_ok(&["server", "list"]);
        if listed.contains("catalog pubsub@1.4.2") || std::time::Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(listed.contains("catalog newsfeed@0.1.0"), "{listed}");
    assert!(listed.contains("catalog pubsub@1.4.2"), "{listed}");
    assert!(!listed.contains("waits for consent"), "{listed}");
}
