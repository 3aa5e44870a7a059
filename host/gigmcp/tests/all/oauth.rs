//! Connected accounts end to end, against a real OAuth server: oidc-provider (tests/support/oidc-provider.mjs,
//! over TLS, access tokens living 6 s, refresh tokens rotating at every use, a consumed one revoking its
//! grant) and an HTTPS API that accepts a bearer only if the provider's introspection says it is active
//! (tests/support/oauth-api.mjs), both in a namespace "outside" the gateway's (which has no other way out).
//! A browser (reqwest, cookies and redirects by hand) runs in the gateway's namespace: it logs in with a
//! login link, connects through the provider's real pages, and the catalog toolpack calls the API through
//! the egress proxy with the token of the profile owner's connection.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::oidc::{AtProvider, Browser};
use crate::toolpack::{World, echoed, publish, world_with};
use gigmcp_testkit::{Guard, call_tools_at_once_in, node22_dir, repo_root};

const GATEWAY: &str = "http://127.0.0.1:8080";
const ISSUER: &str = "https://auth.toolpack.test:8443";
const CALLBACK: &str = "http://127.0.0.1:8080/api/connections/callback";
const APP_SECRET: &str = "the-apps-client-secret";
/// How long the provider's access tokens live.
const TOKEN_TTL: Duration = Duration::from_secs(6);

const NOTES_MANIFEST: &str = "\
schemaVersion: 1
name: notes
version: 0.1.0
source: {repo: example.test/notes, tag: v0.1.0}
image:
  ref: registry.example.test/notes
  digest: sha256:8888888888888888888888888888888888888888888888888888888888888888
  entrypoint: /app/server
  builder: toolpack
tier: sealed
entitlements:
  egress: [notes.toolpack.test]
credentials:
  - id: notes_oauth
    type: oauth2
    provider: notes
    vendor: testidp
    scopes: [notes.read]
    inject: {header: Authorization, format: 'Bearer {token}'}
tools:
  - {name: whoami, default: true}
  - {name: revoke, default: true}
";

const NOTES_SPEC: &str = "\
schemaVersion: 1
name: notes
version: 0.1.0
baseUrl: https://notes.toolpack.test
tools:
  - name: whoami
    description: Who the token is of.
    method: GET
    path: /me
  - name: revoke
    description: Withdraws the app's access at the provider.
    method: POST
    path: /revoke
";

struct OAuth {
    world: World,
    _provider: Guard,
    _api: Guard,
    api_log: PathBuf,
    events: PathBuf,
}

/// Runs a Node 22 script in `netns`, its standard output to `log`, until it says it listens.
fn start_in(world: &World, script: &str, config: &Value, log: &std::path::Path) -> Guard {
    let config_path = log.with_extension("json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let child = world
        .outside
        .command()
        .arg(node22_dir().join("bin/node"))
        .arg(repo_root().join("tests/support").join(script))
        .arg(&config_path)
        .env("NODE_EXTRA_CA_CERTS", world.files.path().join("ca.pem"))
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("listening on")
    {
        assert!(Instant::now() < deadline, "{script} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    guard
}

fn oauth_world(tag: &str) -> OAuth {
    let mut resolve: Vec<String> = crate::toolpack::HOSTS
        .iter()
        .map(|h| format!("{h}=198.51.100.2"))
        .collect();
    resolve.retain(|r| !r.starts_with("notes.") && !r.starts_with("internal."));
    resolve.push("notes.toolpack.test=198.51.100.3".into());
    // A provider's name that resolves to the gateway's own loopback: the guard must refuse to call it.
    resolve.push("internal.toolpack.test=127.0.0.1".into());
    let resolve = resolve.join(",");
    let world = world_with(
        tag,
        &[
            ("GIG_EGRESS_RESOLVE", &resolve),
            ("GIG_EGRESS_ALLOW_ADDRS", "198.51.100.2/32,198.51.100.3/32"),
            ("GIG_CONNECT_FLOW_TTL", "10"),
        ],
    );
    gigmcp_testkit::run(&[
        "ip",
        "-n",
        &world.outside.name,
        "addr",
        "add",
        "198.51.100.3/32",
        "dev",
        "lo",
    ]);
    let dir = world.files.path().to_owned();
    let accounts = dir.join("accounts.json");
    std::fs::write(
        &accounts,
        json!({"alice": {"name": "Alice"}, "root": {"name": "Root"}}).to_string(),
    )
    .unwrap();
    let events = dir.join("provider-events.jsonl");
    let provider = start_in(
        &world,
        "oidc-provider.mjs",
        &json!({
            "port": 8443,
            "address": "198.51.100.2",
            "issuer": ISSUER,
            "tls": {"cert": dir.join("upstream.pem"), "key": dir.join("upstream-key.pem")},
            "accounts": accounts,
            "clients": [
                {"client_id": "gigmcp-app", "client_secret": APP_SECRET, "redirect_uris": [CALLBACK],
                 "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                 "token_endpoint_auth_method": "client_secret_basic"},
                {"client_id": "api", "client_secret": "the-apis-secret", "redirect_uris": [],
                 "grant_types": [], "response_types": []},
            ],
            "ttl": {"AccessToken": TOKEN_TTL.as_secs(), "Grant": 3600},
            "oauth": true,
            "events": events,
            // Every token request takes a while: two refreshes at once would overlap.
            "slow_token_ms": 1000,
        }),
        &dir.join("provider.log"),
    );
    let api_log = dir.join("api.log");
    let api = start_in(
        &world,
        "oauth-api.mjs",
        &json!({
            "cert": dir.join("upstream.pem"), "key": dir.join("upstream-key.pem"),
            "address": "198.51.100.3", "port": 443,
            "introspection_url": "https://198.51.100.2:8443/token/introspection",
            "client_id": "api", "client_secret": "the-apis-secret",
            "revocation_url": "https://198.51.100.2:8443/token/revocation",
            "revoke_client_id": "gigmcp-app", "revoke_client_secret": APP_SECRET,
        }),
        &api_log,
    );
    publish(&dir, &[("notes", NOTES_MANIFEST, NOTES_SPEC)], "2026-06-12T00:00:00Z");
    world.cli(&["catalog", "refresh"]);
    OAuth {
        world,
        _provider: provider,
        _api: api,
        api_log,
        events,
    }
}

impl OAuth {
    fn cli(&self, args: &[&str]) -> String {
        self.world.cli(args)
    }

    /// The API's request log: each request's path, whether its token was active, whose, the token's hash
    /// and the connection it came on.
    fn api_requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.api_log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("method").is_some())
            .collect()
    }

    /// The provider's grants of `grant_type` that succeeded, and every grant error.
    fn grants(&self, grant_type: &str) -> (usize, Vec<Value>) {
        let events: Vec<Value> = std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let ok = events
            .iter()
            .filter(|e| e["event"] == "grant.success" && e["grant_type"] == grant_type)
            .count();
        let errors = events.iter().filter(|e| e["event"] == "grant.error").cloned().collect();
        (ok, errors)
    }

    fn browser(&self) -> Browser {
        let ca = std::fs::read(self.world.files.path().join("ca.pem")).unwrap();
        let provider: SocketAddr = "198.51.100.2:8443".parse().unwrap();
        Browser::trusting_resolving(Some(&ca), &[("auth.toolpack.test", provider)])
    }

    /// Logs a browser in with a login link for `subject` with `role`.
    async fn log_in(&self, browser: &mut Browser, subject: &str, role: &str) {
        let link = self.cli(&["admin", "login-link", "--as", subject, "--role", role]);
        let response = browser.get(link.trim()).await;
        assert!(response.status().is_redirection(), "login link: {}", response.status());
    }

    fn call(&self, token: &str, slug: &str, calls: &[(&str, Value)]) -> Vec<(String, bool)> {
        self.world.call(token, slug, calls)
    }
}

/// Connects through the provider's pages (logging in as `login`); returns the callback's response.
async fn connect(browser: &mut Browser, start: &str, login: &str) -> reqwest::Response {
    let callback = browser
        .follow_to(&format!("{GATEWAY}{start}"), CALLBACK, AtProvider::Login(login))
        .await;
    browser.get(callback.as_str()).await
}

async fn connections(browser: &mut Browser, query: &str) -> Value {
    let response = browser.get(&format!("{GATEWAY}/api/connections{query}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn refused(response: reqwest::Response, status: StatusCode, code: &str) -> String {
    let got = response.status();
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("gigmcp_connect_flow=;"));
    let body: Value = response.json().await.unwrap();
    assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{body}");
    assert!(cleared, "a refused callback clears the flow cookie");
    body["error"]["message"].as_str().unwrap().to_owned()
}

/// `url` with its query parameter `name` set to `value` (the others as they were).
fn with_param(url: &Url, name: &str, value: &str) -> String {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name { value.to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    let mut changed = url.clone();
    changed.query_pairs_mut().clear().extend_pairs(pairs);
    changed.to_string()
}

fn sha16(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))[..16].to_owned()
}

/// Every run of 43 or more base64url characters in `text`: what an opaque token of the provider looks like.
fn token_like(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run.push(c);
        } else {
            if run.len() >= 43 {
                found.insert(run.clone());
            }
            run.clear();
        }
    }
    found
}

#[test]
fn connected_accounts_are_refreshed_per_request_once_at_a_time_and_never_seen_by_a_server() {
    let oauth = oauth_world("oa");
    let world = &oauth.world;
    // An app whose provider URLs name an internal address is refused before anything is stored.
    for (url, why) in [
        ("https://127.0.0.1:8443/token", "127.0.0.1 is"),
        ("https://localhost/token", "localhost is not a provider's public host"),
        ("http://auth.toolpack.test:8443/token", "https:// URL"),
    ] {
        let error = world.gateway.cli_with_input_error(
            &[
                "oauth",
                "app",
                "set",
                "bad",
                "--authorize-url",
                "https://auth.toolpack.test:8443/auth",
                "--token-url",
                url,
                "--client-id",
                "gigmcp-app",
            ],
            APP_SECRET,
        );
        assert!(error.contains(why), "{url}: {error}");
    }
    assert!(oauth.cli(&["oauth", "app", "list"]).starts_with("no OAuth apps"));
    let error = world.gateway.cli_with_input_error(
        &[
            "oauth",
            "app",
            "set",
            "testidp",
            "--authorize-url",
            &format!("{ISSUER}/auth"),
            "--token-url",
            &format!("{ISSUER}/token"),
            "--client-id",
            "gigmcp-app",
        ],
        "",
    );
    assert!(error.contains("has no client secret"), "{error}");
    world.gateway.cli_with_input(
        &[
            "oauth",
            "app",
            "set",
            "testidp",
            "--authorize-url",
            &format!("{ISSUER}/auth"),
            "--token-url",
            &format!("{ISSUER}/token"),
            "--revoke-url",
            &format!("{ISSUER}/token/revocation"),
            "--client-id",
            "gigmcp-app",
            "--scopes",
            "openid",
        ],
        APP_SECRET,
    );
    // The same app under a vendor whose token endpoint resolves to the gateway's loopback.
    world.gateway.cli_with_input(
        &[
            "oauth",
            "app",
            "set",
            "intern",
            "--authorize-url",
            &format!("{ISSUER}/auth"),
            "--token-url",
            "https://internal.toolpack.test:8443/token",
            "--client-id",
            "gigmcp-app",
            "--scopes",
            "openid",
        ],
        APP_SECRET,
    );
    let installed = oauth.cli(&["server", "add", "notes", "--catalog", "notes"]);
    assert!(
        installed.contains("credential notes_oauth is the testidp account"),
        "{installed}"
    );
    oauth.cli(&["server", "add", "taskboard", "--catalog", "taskboard"]);
    // A CLI-made profile: no owner, so the operator's connection.
    let ops_token = world.gateway.create_profile("ops");
    oauth.cli(&["profile", "add-server", "ops", "taskboard"]);
    oauth.cli(&["profile", "tools", "ops", "--enable", "taskboard/create_task"]);

    let mut seen_responses = String::new();
    let gw = &world.gw;
    gw.run_in(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Alice logs in and makes a profile of her own with the notes server.
            let mut alice = oauth.browser();
            oauth.log_in(&mut alice, "alice", "user").await;
            let response = alice
                .post(
                    &format!("{GATEWAY}/api/profiles"),
                    GATEWAY,
                    Some(json!({"slug": "work"})),
                )
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
            let work: Value = response.json().await.unwrap();
            let work_token = work["token"].as_str().unwrap().to_owned();
            oauth.cli(&["profile", "add-server", "work", "notes"]);

            // Not connected yet: a clear error, and nothing reaches the API.
            let results = oauth.call(&work_token, "work", &[("notes_whoami", json!({}))]);
            assert!(results[0].1, "{results:?}");
            assert!(
                results[0].0.contains("no testidp account is connected"),
                "{}",
                results[0].0
            );
            assert!(results[0].0.contains("Connected accounts"), "{}", results[0].0);
            assert!(oauth.api_requests().is_empty());

            // Connect through the provider's real pages: back to the server's page.
            let response = connect(&mut alice, "/api/connections/testidp/start?server=notes", "alice").await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert_eq!(response.headers()["location"], "/servers/notes");
            let listed = connections(&mut alice, "").await;
            seen_responses.push_str(&listed.to_string());
            assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
            assert_eq!(listed[0]["vendor"], "testidp");
            assert_eq!(listed[0]["state"], "ok");
            assert_eq!(listed[0]["refreshable"], true);
            let scopes: Vec<&str> = listed[0]["scopes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert!(
                scopes.contains(&"notes.read") && scopes.contains(&"openid"),
                "{scopes:?}"
            );

            // A call carries Alice's token (the API checks it at the provider).
            let results = oauth.call(&work_token, "work", &[("notes_whoami", json!({}))]);
            assert!(!results[0].1, "{results:?}");
            assert_eq!(echoed(&results[0].0)["sub"], "alice");
            let first = oauth.api_requests().last().unwrap().clone();
            assert_eq!(first["active"], true);
            let (refreshes, errors) = oauth.grants("refresh_token");
            assert!(errors.is_empty(), "{errors:?}");

            // After expiry the next call, on the same kept-alive tunnel, carries a fresh token.
            tokio::time::sleep(TOKEN_TTL + Duration::from_secs(1)).await;
            let results = oauth.call(&work_token, "work", &[("notes_whoami", json!({}))]);
            assert!(!results[0].1, "{results:?}");
            let second = oauth.api_requests().last().unwrap().clone();
            assert_eq!(second["active"], true, "{second}");
            assert_ne!(second["token_sha256"], first["token_sha256"]);
            assert_eq!(
                second["peer"], first["peer"],
                "the same upstream connection, so the same tunnel"
            );
            assert_eq!(oauth.grants("refresh_token").0, refreshes + 1);

            // Two calls at once after expiry: one refresh (a second would reuse the refresh token, and the
            // provider would then revoke the whole grant).
            tokio::time::sleep(TOKEN_TTL + Duration::from_secs(1)).await;
            let at_once = call_tools_at_once_in(
                Some(gw),
                &format!("{GATEWAY}/mcp/p/work"),
                &work_token,
                &[("notes_whoami", json!({})), ("notes_whoami", json!({}))],
            );
            for result in at_once["results"].as_array().unwrap() {
                assert_eq!(result["is_error"], false, "{result}");
            }
            assert_eq!(oauth.grants("refresh_token").0, refreshes + 2);

            // The third refresh uses the refresh token the second one rotated in.
            tokio::time::sleep(TOKEN_TTL + Duration::from_secs(1)).await;
            let results = oauth.call(&work_token, "work", &[("notes_whoami", json!({}))]);
            assert!(!results[0].1, "{results:?}");
            let (after, errors) = oauth.grants("refresh_token");
            assert_eq!(after, refreshes + 3);
            assert!(errors.is_empty(), "no refresh was refused: {errors:?}");

            // The operator's connection, for the CLI-made profile: an admin connects it.
            let mut admin = oauth.browser();
            oauth.log_in(&mut admin, "root", "admin").await;
            // The redirect URI to register at providers, from the gateway's public URL.
            let uri: Value = admin
                .get(&format!("{GATEWAY}/api/oauth/redirect-uri"))
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(uri["redirect_uri"], CALLBACK);
            // The apps through the API: no secret comes back; an internal provider is refused.
            let apps: Value = admin
                .get(&format!("{GATEWAY}/api/oauth/apps"))
                .await
                .json()
                .await
                .unwrap();
            let testidp = apps
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["vendor"] == "testidp")
                .unwrap();
            assert_eq!(testidp["has_secret"], true);
            assert_eq!(testidp["servers"], json!(["notes", "taskboard"]));
            seen_responses.push_str(&apps.to_string());
            assert!(!apps.to_string().contains(APP_SECRET));
            let response = admin
                .put(
                    &format!("{GATEWAY}/api/oauth/apps/other"),
                    GATEWAY,
                    json!({"authorize_url": format!("{ISSUER}/auth"), "token_url": "https://10.1.2.3/token",
                           "client_id": "x", "client_secret": "y"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            let response = alice
                .put(
                    &format!("{GATEWAY}/api/oauth/apps/other"),
                    GATEWAY,
                    json!({"authorize_url": format!("{ISSUER}/auth"), "token_url": format!("{ISSUER}/token"),
                           "client_id": "x", "client_secret": "y"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "only admins set up apps");
            let response = connect(&mut admin, "/api/connections/testidp/start?as=operator", "root").await;
            assert_eq!(response.headers()["location"], "/connections");
            let before = world.upstream_requests().len();
            let results = oauth.call(
                &ops_token,
                "ops",
                &[
                    (
                        "taskboard_list_tasks",
                        json!({"filters_search": "a b", "status": ["open", "done"], "on": "2026-01-02",
                               "archived": false, "X-Workspace-Id": "w-7"}),
                    ),
                    (
                        "taskboard_create_task",
                        json!({"title": "a b&c", "labels": ["x", "y"], "meta": {"k": 1}, "estimate": 1.5}),
                    ),
                ],
            );
            // Sanitized names under their wire names, a YAML 1.2 `on`, a header param, the form body.
            let got = echoed(&results[0].0);
            assert_eq!(
                got["query"],
                "?archived=false&filters%5Bsearch%5D=a+b&on=2026-01-02&status=open&status=done"
            );
            assert_eq!(got["headers"]["x-workspace-id"], "w-7");
            let got = echoed(&results[1].0);
            assert_eq!(got["headers"]["content-type"], "application/x-www-form-urlencoded");
            assert_eq!(
                got["body"],
                "estimate=1.5&labels=x&labels=y&meta=%7B%22k%22%3A1%7D&title=a+b%26c"
            );
            // The API got the operator's bearer; the server saw only its placeholder.
            assert_eq!(world.upstream_requests().len() - before, 2);
            let bearer = world.received("/api/tasks")["headers"]["authorization"]
                .as_str()
                .unwrap()
                .to_owned();
            let operator_token = bearer.strip_prefix("Bearer ").unwrap().to_owned();
            assert!(!operator_token.starts_with("gigph_"), "{bearer}");
            assert!(
                got["headers"]["authorization"]
                    .as_str()
                    .unwrap()
                    .starts_with("Bearer gigph_")
            );
            let everyone = connections(&mut admin, "?owner=all").await;
            seen_responses.push_str(&everyone.to_string());
            assert_eq!(everyone.as_array().unwrap().len(), 2, "{everyone}");
            let response = alice.get(&format!("{GATEWAY}/api/connections?owner=all")).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "a user sees only their own");

            // Alice withdraws the app's access at the provider: the next refresh is refused, the connection
            // needs reconnecting, and the call says what to do.
            let results = oauth.call(&work_token, "work", &[("notes_revoke", json!({}))]);
            assert_eq!(echoed(&results[0].0)["revoked"], true, "{results:?}");
            tokio::time::sleep(TOKEN_TTL + Duration::from_secs(1)).await;
            let results = oauth.call(&work_token, "work", &[("notes_whoami", json!({}))]);
            assert!(results[0].1, "{results:?}");
            assert!(results[0].0.contains("must be connected again"), "{}", results[0].0);
            assert!(results[0].0.contains("invalid_grant"), "{}", results[0].0);
            let listed = connections(&mut alice, "").await;
            seen_responses.push_str(&listed.to_string());
            assert_eq!(listed[0]["state"], "needs-reconnect", "{listed}");
            assert!(listed[0]["detail"].as_str().unwrap().contains("invalid_grant"));

            // The callback's refusals, in order, each clearing the flow and changing nothing.
            let start = "/api/connections/testidp/start?server=notes";
            let response = alice.get(&format!("{CALLBACK}?code=x&state=y")).await;
            refused(response, StatusCode::BAD_REQUEST, "no_connection_in_progress").await;
            let callback = alice
                .follow_to(&format!("{GATEWAY}{start}"), CALLBACK, AtProvider::Login("alice"))
                .await;
            let gateway = Url::parse(GATEWAY).unwrap();
            let cookie = alice.cookie(&gateway, "gigmcp_connect_flow").unwrap();
            // Another character in the signed payload (as a browser changing whose connection it is would).
            let (payload, mac) = cookie.split_once('.').unwrap();
            let mut altered: Vec<char> = payload.chars().collect();
            let middle = altered.len() / 2;
            altered[middle] = if altered[middle] == 'A' { 'B' } else { 'A' };
            let altered: String = altered.into_iter().collect();
            alice.set_cookie(&gateway, "gigmcp_connect_flow", &format!("{altered}.{mac}"));
            refused(
                alice.get(callback.as_str()).await,
                StatusCode::BAD_REQUEST,
                "flow_forged",
            )
            .await;

            let callback = alice
                .follow_to(&format!("{GATEWAY}{start}"), CALLBACK, AtProvider::Login("alice"))
                .await;
            tokio::time::sleep(Duration::from_secs(11)).await;
            refused(
                alice.get(callback.as_str()).await,
                StatusCode::BAD_REQUEST,
                "flow_expired",
            )
            .await;

            let callback = alice
                .follow_to(&format!("{GATEWAY}{start}"), CALLBACK, AtProvider::Cancel)
                .await;
            assert!(callback.query().unwrap().contains("error=access_denied"), "{callback}");
            refused(
                alice.get(callback.as_str()).await,
                StatusCode::UNAUTHORIZED,
                "provider_refused",
            )
            .await;

            let callback = alice
                .follow_to(&format!("{GATEWAY}{start}"), CALLBACK, AtProvider::Login("alice"))
                .await;
            let mismatched = with_param(&callback, "state", "another-flows-state");
            refused(alice.get(&mismatched).await, StatusCode::BAD_REQUEST, "state_mismatch").await;

            let callback = alice
                .follow_to(&format!("{GATEWAY}{start}"), CALLBACK, AtProvider::Login("alice"))
                .await;
            let bogus = with_param(&callback, "code", "a-code-the-provider-never-issued");
            let message = refused(alice.get(&bogus).await, StatusCode::BAD_GATEWAY, "provider_failed").await;
            assert!(message.contains("code exchange failed"), "{message}");

            // A provider whose token endpoint resolves to an internal address is never called.
            let intern = "/api/connections/intern/start?return_to=/connections";
            let callback = alice
                .follow_to(&format!("{GATEWAY}{intern}"), CALLBACK, AtProvider::Login("alice"))
                .await;
            let message = refused(
                alice.get(callback.as_str()).await,
                StatusCode::BAD_GATEWAY,
                "provider_failed",
            )
            .await;
            assert!(
                message.contains("ssrf guard") && message.contains("127.0.0.1"),
                "{message}"
            );

            let listed = connections(&mut alice, "").await;
            assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
            assert_eq!(listed[0]["state"], "needs-reconnect", "the refusals changed nothing");

            // Reconnecting makes it work again.
            let response = connect(&mut alice, start, "alice").await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert_eq!(connections(&mut alice, "").await[0]["state"], "ok");
            let results = oauth.call(&work_token, "work", &[("notes_whoami", json!({}))]);
            assert!(!results[0].1, "{results:?}");

            // Disconnecting revokes the grant at the provider.
            let response = alice
                .delete(&format!("{GATEWAY}/api/connections/testidp"), GATEWAY)
                .await;
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
            assert!(connections(&mut alice, "").await.as_array().unwrap().is_empty());
            let events = std::fs::read_to_string(&oauth.events).unwrap();
            assert!(events.contains(r#""route":"revocation""#), "{events}");
        });
    });

    // No token anywhere the gateway writes or shows: not in a jail, its log, the audit log or an API answer.
    let issued: BTreeSet<String> = oauth
        .api_requests()
        .iter()
        .filter_map(|r| r["token_sha256"].as_str().map(str::to_owned))
        .collect();
    assert!(
        issued.len() >= 5,
        "the API saw the tokens of several refreshes: {issued:?}"
    );
    let mut places: Vec<(String, String)> = vec![
        ("the gateway's log".into(), world.gateway.log()),
        ("API answers".into(), seen_responses),
    ];
    for pid in world.gateway.sandbox_processes() {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        places.push((format!("jail {pid}"), String::from_utf8_lossy(&environ).into_owned()));
    }
    let db = rusqlite::Connection::open(world.gateway.dir.path().join("gigmcp.db")).unwrap();
    let audit: Vec<String> = db
        .prepare("SELECT kind || ' ' || detail FROM audit_events")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let audit = audit.join("\n");
    for kind in [
        "oauth.connect",
        "oauth.refresh",
        "oauth.disconnect",
        "oauth.connect_start",
    ] {
        assert!(audit.contains(kind), "{kind} is audited");
    }
    assert!(
        audit.contains(r#""accounts":[{"credential":"notes_oauth","vendor":"testidp","owner":"#),
        "injections name the connection"
    );
    places.push(("the audit log".into(), audit));
    let operator_hash = oauth.world.received("/api/tasks")["headers"]["authorization"]
        .as_str()
        .map(|b| sha16(b.trim_start_matches("Bearer ")))
        .unwrap();
    for (place, text) in &places {
        for candidate in token_like(text) {
            let hash = sha16(&candidate);
            assert!(
                !issued.contains(&hash) && hash != operator_hash,
                "a token is in {place}"
            );
        }
    }
}
