//! The REST API against a real gateway: sessions from `gigmcp admin login-link`, the CSRF check, ownership
//! (another user's profile is a 404), strict decoding, admin-only objects, the audit log, and a profile made
//! through the API serving MCP with the token it returned.

use gigmcp_testkit::{RawClient, TestGateway};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Api {
    gw: TestGateway,
    http: reqwest::Client,
}

/// A logged-in browser: its session cookie.
#[derive(Clone)]
struct Browser {
    cookie: String,
}

impl Api {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Self {
        Self {
            gw: TestGateway::start_with(env),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A refused oversized body leaves its connection unusable: never reuse one.
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.gw.addr)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gw.addr)
    }

    /// The path of a fresh login link printed by the CLI.
    fn login_link(&self, args: &[&str]) -> String {
        let mut argv = vec!["admin", "login-link"];
        argv.extend(args);
        let printed = self.gw.cli_ok(&argv);
        let url = printed.trim();
        let path = &url[url.find("/auth/link/").expect("a login URL")..];
        path.to_owned()
    }

    async fn login(&self, args: &[&str]) -> Browser {
        let path = self.login_link(args);
        let response = self.http.get(self.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("gigmcp_session="), "{cookie}");
        Browser { cookie }
    }

    /// A same-origin request of a logged-in browser.
    async fn call(&self, who: &Browser, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("cookie", &who.cookie)
            .header("origin", self.origin());
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        (status, value)
    }
}

impl Api {
    /// An audit query once it has results: the audit writer batches events, so the newest appear shortly
    /// after the request that caused them (bounded: at most 100 tries).
    async fn events(&self, who: &Browser, query: &str) -> Value {
        self.events_until(who, query, |_| true).await
    }

    /// Like `events`, until the kinds of the listed events include all of `kinds`.
    async fn events_with(&self, who: &Browser, query: &str, kinds: &[&str]) -> Value {
        self.events_until(who, query, |items| {
            kinds.iter().all(|k| items.iter().any(|e| e["kind"] == *k))
        })
        .await
    }

    async fn events_until(&self, who: &Browser, query: &str, done: impl Fn(&[Value]) -> bool) -> Value {
        let mut events = Value::Null;
        for _ in 0..100 {
            events = self.call(who, Method::GET, query, None).await.1;
            if events["items"]
                .as_array()
                .is_some_and(|items| !items.is_empty() && done(items))
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        events
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_login_link_works_once_and_its_session_token_is_stored_only_as_a_hash() {
    let api = Api::start();
    runtime().block_on(async {
        let (status, body) = api
            .call(
                &Browser {
                    cookie: "gigmcp_session=forged".into(),
                },
                Method::GET,
                "/api/me",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(gigmcp_testkit::error_code(&body), "unauthenticated");

        let path = api.login_link(&[]);
        let first = api.http.get(api.url(&path)).send().await.unwrap();
        assert_eq!(first.status(), StatusCode::SEE_OTHER);
        let cookie = first.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let again = api.http.get(api.url(&path)).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_FOUND, "a login link is single-use");
        assert!(again.headers().get("set-cookie").is_none());

        let admin = Browser { cookie };
        let (status, me) = api.call(&admin, Method::GET, "/api/me", None).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["role"], "admin");
        assert_eq!(me["issuer"], "gigmcp:login-link");

        // The session is stored as a hash only: the cookie's token is nowhere in the database files.
        let token = admin.cookie.split_once('=').unwrap().1.to_owned();
        for entry in std::fs::read_dir(api.gw.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                    "session token found in {}",
                    path.display()
                );
            }
        }

        // Logging in and the link are audited.
        let events = api
            .events_until(&admin, "/api/audit?kind=auth.login_link", |items| {
                // A link made and a login are `ok`, a refused link is a `deny`: the words every event uses.
                ["ok", "deny"].iter().all(|o| items.iter().any(|e| e["outcome"] == *o))
            })
            .await;
        let outcomes: Vec<&str> = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["outcome"].as_str().unwrap())
            .collect();
        assert_eq!(
            (
                outcomes.iter().filter(|o| **o == "ok").count() >= 2,
                outcomes.contains(&"deny")
            ),
            (true, true),
            "{events}"
        );
    });
}

#[test]
fn cross_site_post_without_a_same_origin_origin_is_refused_and_changes_nothing() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let post = |origin: Option<&str>, fetch_site: Option<&str>, slug: &str| {
            let mut request = api
                .http
                .post(api.url("/api/profiles"))
                .header("cookie", &admin.cookie)
                .header("content-type", "application/json")
                .body(json!({"slug": slug}).to_string());
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(site) = fetch_site {
                request = request.header("sec-fetch-site", site);
            }
            request.send()
        };
        for (origin, site) in [
            (Some("https://evil.example"), None),
            (Some("null"), None),
            (Some("http://127.0.0.1:1"), None),
            (None, None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
            (Some("https://evil.example"), Some("same-origin")),
        ] {
            let response = post(origin, site, "csrf").await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "origin {origin:?}, sec-fetch-site {site:?}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(gigmcp_testkit::error_code(&body), "forbidden");
        }
        let (_, list) = api.call(&admin, Method::GET, "/api/profiles", None).await;
        assert_eq!(list["items"], json!([]), "a refused request changed something");
        assert!(!api.gw.cli_ok(&["profile", "list"]).contains("csrf"));

        let origin = api.origin();
        assert_eq!(
            post(Some(&origin), None, "same").await.unwrap().status(),
            StatusCode::CREATED
        );
        assert_eq!(
            post(None, Some("same-origin"), "fetch").await.unwrap().status(),
            StatusCode::CREATED
        );
    });
}

#[test]
fn a_non_owner_gets_404_on_another_users_profile() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let alice = api.login(&["--as", "alice", "--role", "user"]).await;
        let bob = api.login(&["--as", "bob", "--role", "user"]).await;
        api.gw.create_profile("operators");

        let (status, created) = api
            .call(
                &alice,
                Method::POST,
                "/api/profiles",
                Some(json!({"slug": "alice-team", "name": "A"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert!(created["token"].as_str().unwrap().starts_with("gig_"));

        for (method, path, body) in [
            (Method::GET, "/api/profiles/alice-team", None),
            (
                Method::PATCH,
                "/api/profiles/alice-team",
                Some(json!({"name": "mine now"})),
            ),
            (
                Method::PUT,
                "/api/profiles/alice-team/servers",
                Some(json!({"servers": []})),
            ),
            (Method::POST, "/api/profiles/alice-team/token", None),
            (Method::DELETE, "/api/profiles/alice-team", None),
            (Method::GET, "/api/profiles/no-such-profile", None),
        ] {
            let (status, body) = api.call(&bob, method.clone(), path, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            assert_eq!(gigmcp_testkit::error_code(&body), "not_found");
        }
        // The CLI's profiles have no owner: admins only.
        let (status, _) = api.call(&alice, Method::GET, "/api/profiles/operators", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let slugs = |list: &Value| -> Vec<String> {
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["slug"].as_str().unwrap().to_owned())
                .collect()
        };
        let (_, bobs) = api.call(&bob, Method::GET, "/api/profiles", None).await;
        assert!(slugs(&bobs).is_empty(), "{bobs}");
        let (_, alices) = api.call(&alice, Method::GET, "/api/profiles", None).await;
        assert_eq!(slugs(&alices), ["alice-team"]);
        let (_, all) = api.call(&admin, Method::GET, "/api/profiles", None).await;
        assert_eq!(slugs(&all), ["alice-team", "operators"]);

        // Nothing bob tried changed the profile.
        let (_, profile) = api.call(&alice, Method::GET, "/api/profiles/alice-team", None).await;
        assert_eq!(profile["name"], "A");
        let (status, _) = api
            .call(
                &alice,
                Method::PATCH,
                "/api/profiles/alice-team",
                Some(json!({"name": "B"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    });
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let (status, body) = api
            .call(
                &admin,
                Method::POST,
                "/api/profiles",
                Some(json!({"slug": "x", "bogus_field": 1})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]["message"].as_str().unwrap().contains("bogus_field"),
            "{body}"
        );
        let (status, body) = api
            .call(
                &admin,
                Method::POST,
                "/api/profiles",
                Some(json!({"slug": "Not A Slug"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, _) = api.call(&admin, Method::GET, "/api/profiles?limit=0", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = api.call(&admin, Method::GET, "/api/profiles?colour=red", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"]["message"].as_str().unwrap().contains("colour"), "{body}");

        // Not JSON, too large.
        let response = api
            .http
            .post(api.url("/api/profiles"))
            .header("cookie", &admin.cookie)
            .header("origin", api.origin())
            .header("content-type", "text/plain")
            .body("slug=x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let big = json!({"slug": "big", "name": "n".repeat(5 * 1024 * 1024)});
        let (status, body) = api.call(&admin, Method::POST, "/api/profiles", Some(big)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

        let (status, body) = api.call(&admin, Method::GET, "/api/nothing-here", None).await;
        assert_eq!(
            (status, gigmcp_testkit::error_code(&body)),
            (StatusCode::NOT_FOUND, "not_found")
        );
        let (status, body) = api.call(&admin, Method::PATCH, "/api/me", Some(json!({}))).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
        assert_eq!(gigmcp_testkit::error_code(&body), "method_not_allowed");

        let (_, list) = api.call(&admin, Method::GET, "/api/profiles", None).await;
        assert_eq!(list["items"], json!([]));
    });
}

#[test]
fn a_profile_made_through_the_api_serves_mcp_and_every_change_is_audited() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let (status, server) = api
            .call(
                &admin,
                Method::POST,
                "/api/servers",
                Some(json!({"name": "echo", "builtin": "echo"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{server}");
        let alice = api.login(&["--as", "alice", "--role", "user"]).await;
        let (_, created) = api
            .call(&alice, Method::POST, "/api/profiles", Some(json!({"slug": "team"})))
            .await;
        let (status, profile) = api
            .call(
                &alice,
                Method::PUT,
                "/api/profiles/team/servers",
                Some(json!({"servers": ["echo"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{profile}");
        assert_eq!(profile["servers"], json!(["echo"]));

        // The token shown once opens the profile's MCP endpoint; a rotated one replaces it at once.
        let token = created["token"].as_str().unwrap().to_owned();
        let mut client = RawClient::new(api.gw.url("team"), token.clone());
        client.initialize().await;
        let reply = client
            .call(
                json!(1),
                "tools/call",
                json!({"name": "echo_echo", "arguments": {"message": "hush-hush-value"}}),
            )
            .await;
        assert!(reply["result"].is_object(), "{reply}");
        let (_, rotated) = api.call(&alice, Method::POST, "/api/profiles/team/token", None).await;
        assert_ne!(rotated["token"], created["token"]);
        let stale = RawClient::new(api.gw.url("team"), token)
            .post(json!({"jsonrpc":"2.0","id":0,"method":"ping"}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);

        // Servers list their running sandboxes; admins see how a server runs, users do not.
        let (_, servers) = api.call(&admin, Method::GET, "/api/servers/echo", None).await;
        assert_eq!(servers["running"][0]["profile"], "team", "{servers}");
        assert!(servers["target"].is_string());
        let (_, seen_by_alice) = api.call(&alice, Method::GET, "/api/servers/echo", None).await;
        assert!(seen_by_alice["target"].is_null(), "{seen_by_alice}");
        let (status, updated) = api
            .call(
                &admin,
                Method::PATCH,
                "/api/servers/echo",
                Some(json!({"egress": ["api.github.com"]})),
            )
            .await;
        assert_eq!(
            (status, updated["egress"].clone()),
            (StatusCode::OK, json!(["api.github.com"]))
        );
        let (status, _) = api
            .call(
                &admin,
                Method::PATCH,
                "/api/servers/echo",
                Some(json!({"egress": ["not a host!"]})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = api
            .call(&alice, Method::PATCH, "/api/servers/echo", Some(json!({"egress": []})))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, restarted) = api.call(&admin, Method::POST, "/api/servers/echo/restart", None).await;
        assert_eq!(status, StatusCode::OK, "{restarted}");

        // Audit: the tool call (shape of the arguments, not their value) and every change, with its actor.
        let (_, me) = api.call(&alice, Method::GET, "/api/me", None).await;
        let alice_actor = format!("user:{}", me["id"]);
        let calls = api.events(&admin, "/api/audit?kind=mcp.tool_call&profile=team").await;
        let call = &calls["items"][0];
        assert_eq!(call["server"], "echo", "{calls}");
        assert_eq!(call["outcome"], "ok");
        assert_eq!(call["actor"], "profile:team");
        assert_eq!(call["detail"]["upstream_tool"], "echo");
        assert_eq!(call["detail"]["arguments"], json!({"message": "string"}));
        assert!(call["detail"]["duration_ms"].is_number());
        assert!(
            !calls.to_string().contains("hush-hush-value"),
            "argument values reached the audit log"
        );

        let changes = api
            .events_with(
                &admin,
                "/api/audit?kind=api.*&limit=500",
                &[
                    "api.profile.create",
                    "api.profile.set_servers",
                    "api.profile.rotate_token",
                    "api.server.add",
                    "api.server.set_egress",
                ],
            )
            .await;
        let kinds: Vec<(String, String)> = changes["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_owned(),
                    e["actor"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for expected in [
            "api.profile.create",
            "api.profile.set_servers",
            "api.profile.rotate_token",
        ] {
            assert!(
                kinds.contains(&(expected.to_owned(), alice_actor.clone())),
                "{expected} by {alice_actor}: {kinds:?}"
            );
        }
        assert!(
            kinds
                .iter()
                .any(|(k, a)| k == "api.server.add" && a.starts_with("user:")),
            "{kinds:?}"
        );
        // Alice sees the events of her profile only.
        let (_, hers) = api.call(&alice, Method::GET, "/api/audit?limit=500", None).await;
        assert!(
            hers["items"].as_array().unwrap().iter().all(|e| e["profile"] == "team"),
            "{hers}"
        );
        // Keyset pagination walks the log without repeats.
        let (_, first) = api.call(&admin, Method::GET, "/api/audit?limit=2", None).await;
        let next = first["next"].as_str().expect("a next page");
        let (_, second) = api
            .call(&admin, Method::GET, &format!("/api/audit?limit=2&after={next}"), None)
            .await;
        assert!(second["items"][0]["id"].as_i64() < first["items"][1]["id"].as_i64());

        // A CLI change is audited as the operator's.
        api.gw.cli_ok(&["profile", "create", "cli-made"]);
        let (_, cli) = api
            .call(&admin, Method::GET, "/api/audit?kind=cli.profile.create", None)
            .await;
        assert_eq!(cli["items"][0]["actor"], "operator", "{cli}");
    });
}

#[test]
fn credentials_are_write_only_and_users_keep_to_their_own_profiles() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        api.call(&admin, Method::POST, "/api/servers", Some(json!({"name": "echo", "builtin": "echo"})))
            .await;
        let alice = api.login(&["--as", "alice", "--role", "user"]).await;
        let bob = api.login(&["--as", "bob", "--role", "user"]).await;
        api.call(&alice, Method::POST, "/api/profiles", Some(json!({"slug": "team"}))).await;
        let secret = "sk-live-0123456789abcdef";
        let set = |profile: Option<&str>| {
            json!({"server": "echo", "profile": profile, "name": "github", "hosts": "api.github.com", "secret": secret})
        };
        let (status, body) = api.call(&alice, Method::PUT, "/api/credentials", Some(set(None))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "server-wide is an admin's: {body}");
        let (status, body) = api.call(&bob, Method::PUT, "/api/credentials", Some(set(Some("team")))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, credential) = api.call(&alice, Method::PUT, "/api/credentials", Some(set(Some("team")))).await;
        assert_eq!(status, StatusCode::OK, "{credential}");
        assert_eq!(credential["env_name"], "GITHUB_TOKEN");
        assert!(!credential.to_string().contains(secret));

        let (_, listed) = api.call(&alice, Method::GET, "/api/credentials", None).await;
        assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
        assert!(!listed.to_string().contains(secret));
        let (_, bobs) = api.call(&bob, Method::GET, "/api/credentials", None).await;
        assert_eq!(bobs["items"], json!([]));
        let (status, _) = api
            .call(&bob, Method::DELETE, "/api/credentials/echo/github?profile=team", None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = api
            .call(&alice, Method::DELETE, "/api/credentials/echo/github?profile=team", None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, after) = api.call(&admin, Method::GET, "/api/credentials", None).await;
        assert_eq!(after["items"], json!([]));
    });
}

#[test]
fn every_route_of_the_openapi_document_is_served_and_unknown_ones_are_not() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let (status, doc) = api.call(&admin, Method::GET, "/api/openapi.json", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        let mut operations = 0;
        for (path, methods) in paths {
            for method in methods.as_object().unwrap().keys() {
                operations += 1;
                let concrete = path
                    .split('/')
                    .map(|segment| if segment.starts_with('{') { "zz-none" } else { segment })
                    .collect::<Vec<_>>()
                    .join("/");
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let response = api
                    .http
                    .request(method.clone(), api.url(&concrete))
                    .header("cookie", &admin.cookie)
                    .header("origin", api.origin())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                    || body["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("no such API route"));
                assert!(
                    !unrouted,
                    "{method} {path} is in the document but not served: {status} {body}"
                );
            }
        }
        // Every route the API serves is declared in one table that yields both the router and the document.
        assert!(operations >= 30, "only {operations} operations documented");
        for (path, method) in [
            ("/api/profiles", "post"),
            ("/api/profiles/{slug}/servers", "put"),
            ("/api/servers/{name}/restart", "post"),
            ("/api/credentials/{server}/{name}", "delete"),
            ("/api/plugins/{name}/rollback", "post"),
            ("/api/plugins/{name}/metrics", "get"),
            ("/api/audit", "get"),
            ("/api/users/{id}", "patch"),
        ] {
            assert!(
                paths[path][method].is_object(),
                "{method} {path} is missing from the document"
            );
        }
    });
}

#[test]
fn plugins_are_managed_through_the_api_by_admins_and_their_policy_applies_at_once() {
    let api = Api::start();
    let component = gigmcp_default_plugins::component("tool-filter").unwrap().to_vec();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let upload = |query: &str, bytes: Vec<u8>| {
            api.http
                .post(api.url(&format!("/api/plugins?{query}")))
                .header("cookie", &admin.cookie)
                .header("origin", api.origin())
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
        };
        // Refused uploads change nothing.
        for (query, bytes) in [
            (format!("name=mine&sha256={}", "0".repeat(64)), component.clone()),
            ("name=mine&kind=egress-policy".to_owned(), component.clone()),
            ("name=mine".to_owned(), b"not a component".to_vec()),
            ("name=Not_Valid".to_owned(), component.clone()),
        ] {
            let response = upload(&query, bytes).await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        }
        let (status, _) = api.call(&admin, Method::GET, "/api/plugins/mine", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let response = upload("name=mine&kind=mcp-filter", component.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let plugin: Value = response.json().await.unwrap();
        assert_eq!(plugin["kind"], "mcp-filter");
        assert!(plugin["config_schema"].is_object(), "{plugin}");

        let (status, body) = api
            .call(
                &admin,
                Method::PUT,
                "/api/plugins/mine/config",
                Some(json!({"config": {"nonsense": 1}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "the schema refuses it: {body}");

        // A server in a profile, then a policy that denies its tool, bound through the API.
        api.call(
            &admin,
            Method::POST,
            "/api/servers",
            Some(json!({"name": "echo", "builtin": "echo"})),
        )
        .await;
        let (_, created) = api
            .call(&admin, Method::POST, "/api/profiles", Some(json!({"slug": "team"})))
            .await;
        api.call(
            &admin,
            Method::PUT,
            "/api/profiles/team/servers",
            Some(json!({"servers": ["echo"]})),
        )
        .await;
        // A client that has called the tool (so its name is routed) before the policy exists: once the
        // policy applies, the tool is both hidden from lists and refused by name (-32001); a client that
        // first listed tools after the policy would not find the name at all (a different error).
        let mut client = RawClient::new(api.gw.url("team"), created["token"].as_str().unwrap().to_owned());
        client.initialize().await;
        let first = client
            .call(
                json!("before"),
                "tools/call",
                json!({"name": "echo_echo", "arguments": {"message": "x"}}),
            )
            .await;
        assert!(
            first.get("result").is_some(),
            "before the policy the tool works: {first}"
        );
        let deny = json!({"config": {"profiles": {"team": {"deny": ["echo/echo"]}}}});
        let (status, body) = api
            .call(&admin, Method::PUT, "/api/plugins/mine/config", Some(deny))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = api
            .call(
                &admin,
                Method::POST,
                "/api/plugins/mine/bindings",
                Some(json!({"order": 5})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["bindings"], json!([{"profile": null, "order": 5}]));

        let mut denied = false;
        let mut last = Value::Null;
        for i in 0..300 {
            let reply = client
                .call(
                    json!(i),
                    "tools/call",
                    json!({"name": "echo_echo", "arguments": {"message": "x"}}),
                )
                .await;
            if reply["error"]["code"] == -32001 {
                denied = true;
                break;
            }
            last = reply;
            // The gateway picks up the binding within a second or so (longer on a loaded machine).
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            denied,
            "the plugin bound through the API did not deny the tool; last reply: {last}"
        );
        let events = api.events(&admin, "/api/audit?kind=mcp.tool_call&decision=deny").await;
        assert!(!events["items"].as_array().unwrap().is_empty(), "{events}");
        assert!(
            events["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["outcome"] == "deny"),
            "{events}"
        );
        // An outcome outside the one vocabulary is a clear 400, not an empty page.
        let (status, body) = api.call(&admin, Method::GET, "/api/audit?decision=denied", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // Rollback returns to the previous configuration; disable, metrics, unbind, remove.
        let (status, body) = api.call(&admin, Method::POST, "/api/plugins/mine/rollback", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["config"], json!({}), "{body}");
        let (status, body) = api
            .call(
                &admin,
                Method::PUT,
                "/api/plugins/mine/enabled",
                Some(json!({"enabled": false})),
            )
            .await;
        assert_eq!((status, body["enabled"].clone()), (StatusCode::OK, json!(false)));
        let (status, metrics) = api.call(&admin, Method::GET, "/api/plugins/mine/metrics", None).await;
        assert_eq!(status, StatusCode::OK, "{metrics}");
        assert!(metrics["calls"].is_u64());
        let (status, body) = api
            .call(&admin, Method::DELETE, "/api/plugins/mine/bindings", None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["bindings"], json!([]));
        let (status, _) = api.call(&admin, Method::DELETE, "/api/plugins/mine", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = api.call(&admin, Method::GET, "/api/plugins/mine", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Webhooks audit sinks deliver to: https only (or loopback http); the event does not hold the URL.
        let (status, body) = api
            .call(
                &admin,
                Method::PUT,
                "/api/webhooks/siem",
                Some(json!({"url": "http://siem.example.com/in"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, body) = api
            .call(
                &admin,
                Method::PUT,
                "/api/webhooks/siem",
                Some(json!({"url": "https://siem.example.com/in?key=k3y"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, hooks) = api.call(&admin, Method::GET, "/api/webhooks", None).await;
        assert_eq!(hooks["items"][0]["name"], "siem", "{hooks}");
        assert!(api.gw.cli_ok(&["plugin", "webhook", "list"]).contains("webhook:siem"));
        let (status, _) = api.call(&admin, Method::DELETE, "/api/webhooks/siem", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = api.call(&admin, Method::DELETE, "/api/webhooks/siem", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let set = api
            .events_with(
                &admin,
                "/api/audit?kind=api.webhook.*",
                &["api.webhook.set", "api.webhook.remove"],
            )
            .await;
        assert!(!set.to_string().contains("k3y"), "{set}");

        let expected = [
            "api.plugin.add",
            "api.plugin.config",
            "api.plugin.bind",
            "api.plugin.rollback",
            "api.plugin.disable",
            "api.plugin.unbind",
            "api.plugin.remove",
        ];
        let changes = api
            .events_with(&admin, "/api/audit?kind=api.plugin.*&limit=500", &expected)
            .await;
        let kinds: Vec<&str> = changes["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        for expected in expected {
            assert!(kinds.contains(&expected), "no {expected} in {kinds:?}");
        }
    });
}

#[test]
fn admins_manage_users_and_a_deleted_user_loses_their_session() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let alice = api.login(&["--as", "alice", "--role", "user"]).await;
        let (_, me) = api.call(&alice, Method::GET, "/api/me", None).await;
        let alice_id = me["id"].as_i64().unwrap();
        let (_, admin_me) = api.call(&admin, Method::GET, "/api/me", None).await;

        let (status, _) = api.call(&alice, Method::GET, "/api/plugins", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, user) = api
            .call(
                &admin,
                Method::PATCH,
                &format!("/api/users/{alice_id}"),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!((status, user["role"].clone()), (StatusCode::OK, json!("admin")));
        let (status, _) = api.call(&alice, Method::GET, "/api/plugins", None).await;
        assert_eq!(status, StatusCode::OK, "the new role applies to the running session");

        let own = format!("/api/users/{}", admin_me["id"]);
        let (status, _) = api
            .call(&admin, Method::PATCH, &own, Some(json!({"role": "user"})))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, _) = api.call(&admin, Method::DELETE, &own, None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, body) = api
            .call(
                &admin,
                Method::PATCH,
                &format!("/api/users/{alice_id}"),
                Some(json!({"role": "root"})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        let (_, list) = api.call(&admin, Method::GET, "/api/users?limit=1", None).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
        let (_, rest) = api
            .call(
                &admin,
                Method::GET,
                &format!("/api/users?after={}", list["next"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
        assert!(rest["next"].is_null());

        let (status, _) = api
            .call(&admin, Method::DELETE, &format!("/api/users/{alice_id}"), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = api.call(&alice, Method::GET, "/api/me", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    });
}

/// Invariant 7: only the operator (CLI) and admins (API) define servers and plugins — a server's command,
/// mounts, environment and URL are powers over the host. A user's attempts are refused and change nothing.
#[test]
fn only_admins_define_servers_and_plugins() {
    let api = Api::start();
    let component = gigmcp_default_plugins::component("tool-filter").unwrap().to_vec();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let alice = api.login(&["--as", "alice", "--role", "user"]).await;
        api.call(
            &admin,
            Method::POST,
            "/api/servers",
            Some(json!({"name": "echo", "builtin": "echo"})),
        )
        .await;
        for (method, path, body) in [
            (
                Method::POST,
                "/api/servers",
                Some(json!({"name": "sh", "command": "/bin/sh"})),
            ),
            (
                Method::PATCH,
                "/api/servers/echo",
                Some(json!({"egress": ["evil.example"]})),
            ),
            (Method::DELETE, "/api/servers/echo", None),
            (Method::POST, "/api/servers/echo/restart", None),
            (Method::GET, "/api/plugins", None),
            (
                Method::PUT,
                "/api/plugins/tool-filter/config",
                Some(json!({"config": {}})),
            ),
            (
                Method::PUT,
                "/api/plugins/tool-filter/enabled",
                Some(json!({"enabled": false})),
            ),
            (
                Method::POST,
                "/api/plugins/tool-filter/bindings",
                Some(json!({"order": 1})),
            ),
            (Method::DELETE, "/api/plugins/tool-filter", None),
            (Method::GET, "/api/users", None),
            (Method::GET, "/api/webhooks", None),
            (
                Method::PUT,
                "/api/webhooks/x",
                Some(json!({"url": "https://x.example"})),
            ),
        ] {
            let (status, body) = api.call(&alice, method.clone(), path, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        }
        let upload = api
            .http
            .post(api.url("/api/plugins?name=mine"))
            .header("cookie", &alice.cookie)
            .header("origin", api.origin())
            .header("content-type", "application/octet-stream")
            .body(component)
            .send()
            .await
            .unwrap();
        assert_eq!(upload.status(), StatusCode::FORBIDDEN);

        let (_, servers) = api.call(&admin, Method::GET, "/api/servers", None).await;
        assert_eq!(servers["items"].as_array().unwrap().len(), 1, "{servers}");
        assert_eq!(servers["items"][0]["egress"], json!([]));
        let (_, plugins) = api.call(&admin, Method::GET, "/api/plugins", None).await;
        let names: Vec<&str> = plugins["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"tool-filter") && !names.contains(&"mine"), "{names:?}");
        let (_, filter) = api.call(&admin, Method::GET, "/api/plugins/tool-filter", None).await;
        assert_eq!(filter["enabled"], true);
    });
}

#[test]
fn a_profile_granted_by_the_auth_mapper_can_be_read_but_only_its_owner_changes_it() {
    use gigmcp_store::users::{LOGIN_LINK_ISSUER, NewUser};
    use gigmcp_types::user::ProfileAccess;
    use gigmcp_types::user::Role;
    let api = Api::start();
    runtime().block_on(async {
        let alice = api.login(&["--as", "alice", "--role", "user"]).await;
        let carol = api.login(&["--as", "carol", "--role", "user"]).await;
        api.call(
            &alice,
            Method::POST,
            "/api/profiles",
            Some(json!({"slug": "alice-team"})),
        )
        .await;
        api.call(
            &alice,
            Method::POST,
            "/api/profiles",
            Some(json!({"slug": "alice-private"})),
        )
        .await;
        let (status, _) = api.call(&carol, Method::GET, "/api/profiles/alice-team", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // What an auth-mapper grant leaves in the users table at carol's next login.
        let store = gigmcp_store::Store::open(&api.gw.dir.path().join("gigmcp.db")).unwrap();
        store
            .upsert_user(&NewUser {
                issuer: LOGIN_LINK_ISSUER.into(),
                subject: "carol".into(),
                name: Some("carol".into()),
                email: None,
                role: Role::User,
                profiles: ProfileAccess::Only(vec!["alice-team".into()]),
            })
            .unwrap();

        let (status, profile) = api.call(&carol, Method::GET, "/api/profiles/alice-team", None).await;
        assert_eq!(status, StatusCode::OK, "{profile}");
        let (_, list) = api.call(&carol, Method::GET, "/api/profiles", None).await;
        let slugs: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["slug"].as_str().unwrap())
            .collect();
        assert_eq!(slugs, ["alice-team"]);
        for (method, path, body) in [
            (
                Method::PATCH,
                "/api/profiles/alice-team",
                Some(json!({"name": "carol's"})),
            ),
            (Method::POST, "/api/profiles/alice-team/token", None),
            (Method::DELETE, "/api/profiles/alice-team", None),
        ] {
            let (status, body) = api.call(&carol, method.clone(), path, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        }
        let (status, _) = api.call(&carol, Method::GET, "/api/profiles/alice-private", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, profile) = api.call(&alice, Method::GET, "/api/profiles/alice-team", None).await;
        assert_eq!(profile["name"], "", "a refused change changed something");
    });
}

#[test]
fn a_session_ends_when_gig_session_ttl_has_passed() {
    let api = Api::start_with(&[("GIG_SESSION_TTL", "1s")]);
    runtime().block_on(async {
        let path = api.login_link(&[]);
        let response = api.http.get(api.url(&path)).send().await.unwrap();
        let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(set_cookie.contains("Max-Age=1"), "{set_cookie}");
        let browser = Browser {
            cookie: set_cookie.split(';').next().unwrap().to_owned(),
        };
        // Whatever the machine's speed, more than the TTL has passed after this.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        let (status, body) = api.call(&browser, Method::GET, "/api/me", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    });
}

#[test]
fn conflicting_changes_are_refused_with_409_or_404_and_change_nothing() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        for server in [
            json!({"name": "echo", "builtin": "echo"}),
            json!({"name": "echo2", "builtin": "echo", "prefix": "echo"}),
            json!({"name": "remote", "url": "https://mcp.example.com/mcp"}),
            json!({"name": "plain1", "builtin": "echo", "prefix": ""}),
            json!({"name": "plain2", "builtin": "echo", "prefix": ""}),
        ] {
            let (status, body) = api.call(&admin, Method::POST, "/api/servers", Some(server)).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let (status, _) = api
            .call(
                &admin,
                Method::POST,
                "/api/servers",
                Some(json!({"name": "echo", "builtin": "echo"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        api.call(
            &admin,
            Method::POST,
            "/api/profiles",
            Some(json!({"slug": "team", "name": "T"})),
        )
        .await;
        let (status, _) = api
            .call(
                &admin,
                Method::POST,
                "/api/profiles",
                Some(json!({"slug": "team", "name": "other"})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, body) = api
            .call(
                &admin,
                Method::PUT,
                "/api/profiles/team/servers",
                Some(json!({"servers": ["echo"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        for (servers, expected) in [
            (json!(["echo", "echo2"]), StatusCode::CONFLICT),
            // Both expose the plain name `echo`: found by starting each (sandboxed) and listing its tools.
            (json!(["plain1", "plain2"]), StatusCode::CONFLICT),
            (json!(["echo", "echo"]), StatusCode::BAD_REQUEST),
            (json!(["echo", "missing"]), StatusCode::NOT_FOUND),
        ] {
            let (status, body) = api
                .call(
                    &admin,
                    Method::PUT,
                    "/api/profiles/team/servers",
                    Some(json!({"servers": servers})),
                )
                .await;
            assert_eq!(status, expected, "{servers}: {body}");
            if servers == json!(["plain1", "plain2"]) {
                let message = body["error"]["message"].as_str().unwrap();
                assert!(message.contains("would be exposed by both"), "{message}");
            }
        }
        let (status, body) = api.call(&admin, Method::DELETE, "/api/servers/echo", None).await;
        assert_eq!(status, StatusCode::CONFLICT, "a server in use stays: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("team"), "{body}");
        let credential =
            json!({"server": "remote", "name": "key", "hosts": "mcp.example.com", "secret": "s3cr3t-value"});
        let (status, body) = api
            .call(&admin, Method::PUT, "/api/credentials", Some(credential))
            .await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "a remote server holds no credential: {body}"
        );

        let (_, profile) = api.call(&admin, Method::GET, "/api/profiles/team", None).await;
        assert_eq!(profile["servers"], json!(["echo"]));
        assert_eq!(profile["name"], "T");
        let (_, servers) = api.call(&admin, Method::GET, "/api/servers", None).await;
        assert_eq!(servers["items"].as_array().unwrap().len(), 5);
        let (_, credentials) = api.call(&admin, Method::GET, "/api/credentials", None).await;
        assert_eq!(credentials["items"], json!([]));
    });
}

#[test]
fn health_and_login_options_answer_without_a_session_and_pages_carry_a_strict_policy() {
    let api = Api::start();
    runtime().block_on(async {
        let get = |path: &str, accept: &str| api.http.get(api.url(path)).header("accept", accept.to_owned()).send();
        let health: Value = get("/api/health", "*/*").await.unwrap().json().await.unwrap();
        assert_eq!(health, json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}));
        let options: Value = get("/api/login-options", "*/*").await.unwrap().json().await.unwrap();
        assert_eq!(options["oidc"], Value::Null, "no provider is configured: {options}");
        assert_eq!(options["login_link_command"], "gigmcp admin login-link");
        // Everything else in the API still needs a session.
        assert_eq!(get("/api/me", "*/*").await.unwrap().status(), StatusCode::UNAUTHORIZED);

        // Any page of the app (a shared link) is the app's index, never cached, under the policy.
        for path in ["/", "/profiles/team", "/audit"] {
            let response = get(path, "text/html,application/xhtml+xml").await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let headers = response.headers();
            assert_eq!(
                headers["content-security-policy"],
                gigmcp_control::dashboard::CONTENT_SECURITY_POLICY,
                "{path}"
            );
            assert!(
                headers["content-security-policy"]
                    .to_str()
                    .unwrap()
                    .contains("script-src 'self';")
            );
            assert_eq!(headers["x-content-type-options"], "nosniff");
            assert_eq!(headers["referrer-policy"], "no-referrer");
            assert_eq!(headers["cache-control"], "no-cache");
            let page = response.text().await.unwrap();
            assert!(page.contains("<html"), "{path}: {page}");
            if gigmcp_dashboard::built() {
                // The build's page has no inline script: only files of the same origin.
                assert!(!page.contains("<script>") && !page.contains("<style"), "{page}");
                let script = page
                    .split("src=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .expect("the page loads its script");
                assert!(script.starts_with("/assets/"), "{script}");
                let asset = get(script, "*/*").await.unwrap();
                assert_eq!(asset.status(), StatusCode::OK);
                assert_eq!(asset.headers()["cache-control"], "public, max-age=31536000, immutable");
                assert!(
                    asset.headers()["content-type"]
                        .to_str()
                        .unwrap()
                        .starts_with("text/javascript")
                );
                let plain = asset.bytes().await.unwrap();
                // To a client that takes gzip, the build's compressed copy: the same script, smaller.
                let zipped = api
                    .http
                    .get(api.url(script))
                    .header("accept-encoding", "gzip, br")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(zipped.headers()["content-encoding"], "gzip");
                assert_eq!(zipped.headers()["vary"], "accept-encoding");
                let zipped = zipped.bytes().await.unwrap();
                assert!(zipped.len() < plain.len() / 2, "{} vs {}", zipped.len(), plain.len());
                let gunzip = std::process::Command::new("gzip")
                    .arg("-dc")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                std::io::Write::write_all(&mut gunzip.stdin.as_ref().unwrap(), &zipped).unwrap();
                let unzipped = gunzip.wait_with_output().unwrap();
                assert!(unzipped.status.success());
                assert_eq!(unzipped.stdout, plain);
            } else {
                assert!(page.contains("make web"), "the unbuilt page says how to build: {page}");
            }
        }
        // A script's fetch of a missing file, an unknown API or MCP path: 404, never the app's page.
        for (path, accept) in [
            ("/assets/missing.js", "text/html"),
            ("/nothing.js", "*/*"),
            ("/api/nothing", "text/html"),
        ] {
            let response = get(path, accept).await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
        let response = get("/mcp/nothing", "text/html").await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        // Names outside the build's alphabet are never looked up, not even as a path into the build.
        let response = get("/assets/..%2F..%2Fetc%2Fpasswd", "*/*").await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    });
}

#[test]
fn the_playground_lists_a_profiles_tools_and_calls_them_through_its_pipeline_as_the_user() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        api.call(
            &admin,
            Method::POST,
            "/api/servers",
            Some(json!({"name": "echo", "builtin": "echo"})),
        )
        .await;
        let alice = api.login(&["--as", "alice", "--role", "user"]).await;
        let (status, _) = api
            .call(&alice, Method::POST, "/api/profiles", Some(json!({"slug": "play"})))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = api
            .call(
                &admin,
                Method::PUT,
                "/api/profiles/play/servers",
                Some(json!({"servers": ["echo"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        let (status, tools) = api.call(&alice, Method::GET, "/api/profiles/play/tools", None).await;
        assert_eq!(status, StatusCode::OK, "{tools}");
        assert_eq!(tools["items"][0]["name"], "echo_echo", "{tools}");
        assert_eq!(tools["items"][0]["server"], "echo");
        assert_eq!(tools["items"][0]["input_schema"]["required"], json!(["message"]));
        assert_eq!(tools["items"][0]["hidden_by"], json!([]));

        let call = json!({"name": "echo_echo", "arguments": {"message": "from the playground"}});
        let (status, reply) = api
            .call(
                &alice,
                Method::POST,
                "/api/profiles/play/tools/call",
                Some(call.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(reply["result"]["content"][0]["text"], "from the playground", "{reply}");
        assert_eq!(reply["error"], Value::Null);
        let events = api.events(&admin, "/api/audit?kind=mcp.tool_call&profile=play").await;
        let event = &events["items"][0];
        assert_eq!(
            event["actor"].as_str().unwrap(),
            format!("user:{}", user_id(&api, &alice).await)
        );
        assert_eq!(event["outcome"], "ok");
        assert!(
            !event.to_string().contains("from the playground"),
            "arguments' values are never audited"
        );

        // The profile's policy applies as it does to its token's clients: a tool-filter denial names the plugin.
        let deny = json!({"config": {"profiles": {"play": {"deny": ["echo/echo"]}}}});
        let (status, body) = api
            .call(&admin, Method::PUT, "/api/plugins/tool-filter/config", Some(deny))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = api
            .call(
                &admin,
                Method::POST,
                "/api/plugins/tool-filter/bindings",
                Some(json!({"profile": "play"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mut last = Value::Null;
        for _ in 0..100 {
            last = api
                .call(
                    &alice,
                    Method::POST,
                    "/api/profiles/play/tools/call",
                    Some(call.clone()),
                )
                .await
                .1;
            if !last["error"].is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            last["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("tool-filter")),
            "the playground's call is judged by the profile's plugins: {last}"
        );
        let events = api
            .events(&admin, "/api/audit?kind=mcp.tool_call&profile=play&decision=deny")
            .await;
        assert_eq!(events["items"][0]["detail"]["plugin"], "tool-filter", "{events}");
        // The list shows the tool the policy hides, and which plugin hides it.
        let (status, tools) = api.call(&alice, Method::GET, "/api/profiles/play/tools", None).await;
        assert_eq!(status, StatusCode::OK, "{tools}");
        let items = tools["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{tools}");
        assert_eq!(items[0]["name"], "echo_echo");
        assert_eq!(items[0]["server"], "echo");
        assert_eq!(items[0]["hidden_by"], json!(["tool-filter"]), "{tools}");

        // Someone who cannot see the profile cannot use it; bad input is a clear 400.
        let bob = api.login(&["--as", "bob", "--role", "user"]).await;
        let (status, _) = api.call(&bob, Method::GET, "/api/profiles/play/tools", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = api
            .call(&bob, Method::POST, "/api/profiles/play/tools/call", Some(call.clone()))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = api
            .call(
                &alice,
                Method::POST,
                "/api/profiles/play/tools/call",
                Some(json!({"name": "x", "argz": {}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["error"]["message"].as_str().unwrap().contains("argz"), "{body}");
    });
}

async fn user_id(api: &Api, who: &Browser) -> i64 {
    api.call(who, Method::GET, "/api/me", None).await.1["id"]
        .as_i64()
        .unwrap()
}

/// A stream of server-sent events being read: its `line` events' data, parsed.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event's data, within 20 s.
    async fn next(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if event.lines().any(|l| l == "event: line") {
                    let id = event.lines().find_map(|l| l.strip_prefix("id:")).map(str::trim);
                    let line: Value = serde_json::from_str(&data).unwrap();
                    assert_eq!(
                        id,
                        Some(line["seq"].to_string().as_str()),
                        "an event's id is its line's number"
                    );
                    return line;
                }
                continue; // a keep-alive comment
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("a log line within 20 s")
                .unwrap()
                .expect("the stream goes on");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events until one satisfies `done`; all of them.
    async fn until(&mut self, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let line = self.next().await;
            let found = done(&line);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
}

impl Api {
    async fn follow(&self, who: &Browser, path: &str, last_event_id: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path)).header("cookie", &who.cookie);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        request.send().await.unwrap()
    }
}

#[test]
fn a_servers_log_holds_its_stderr_and_the_gateways_lines_and_can_be_followed() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let (status, body) = api
            .call(
                &admin,
                Method::POST,
                "/api/servers",
                Some(json!({"name": "echo", "builtin": "echo"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        api.call(&admin, Method::POST, "/api/profiles", Some(json!({"slug": "logs"})))
            .await;

        // Following before the server has ever run: nothing kept yet, the stream waits.
        let response = api.follow(&admin, "/api/servers/echo/logs/follow", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut events = Events {
            response,
            buffer: String::new(),
        };

        // A call starts the profile's sandbox.
        let (status, body) = api
            .call(
                &admin,
                Method::PUT,
                "/api/profiles/logs/servers",
                Some(json!({"servers": ["echo"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let call = json!({"name": "echo_echo", "arguments": {"message": "hi"}});
        let (status, reply) = api
            .call(&admin, Method::POST, "/api/profiles/logs/tools/call", Some(call))
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        let seen = events
            .until(|l| l["profile"] == "logs" && l["stream"] == "stderr")
            .await;
        let ready = seen.last().unwrap();
        assert!(ready["text"].as_str().unwrap().starts_with("gigmcp-echo "), "{ready}");
        let started = seen
            .iter()
            .find(|l| l["profile"] == "logs" && l["stream"] == "gateway")
            .unwrap_or_else(|| panic!("the gateway's line about the start: {seen:?}"));
        assert!(
            started["text"].as_str().unwrap().starts_with("started: pid "),
            "{started}"
        );
        assert_eq!(started["sandbox"], ready["sandbox"]);
        let seqs: Vec<u64> = seen.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[1] > w[0]), "in order: {seqs:?}");

        // The same lines, read at once; `after` gives only the newer ones.
        let (status, log) = api.call(&admin, Method::GET, "/api/servers/echo/logs", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(log["lines"].as_array().unwrap()[..seen.len()], seen[..], "{log}");
        let after = seqs[seqs.len() - 2];
        let (_, newer) = api
            .call(
                &admin,
                Method::GET,
                &format!("/api/servers/echo/logs?after={after}"),
                None,
            )
            .await;
        assert_eq!(newer["lines"][0], *ready, "{newer}");

        // A restart stops the idle sandbox: the stream says so.
        let (status, body) = api.call(&admin, Method::POST, "/api/servers/echo/restart", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let stopped = events
            .until(|l| l["sandbox"] == ready["sandbox"] && l["stream"] == "gateway")
            .await;
        assert!(
            stopped.last().unwrap()["text"]
                .as_str()
                .unwrap()
                .starts_with("stopped by the gateway"),
            "{stopped:?}"
        );

        // A follower that reconnects resumes after the last line it saw.
        let last = stopped.last().unwrap()["seq"].as_u64().unwrap();
        let response = api
            .follow(&admin, "/api/servers/echo/logs/follow", Some(&(last - 1).to_string()))
            .await;
        let mut resumed = Events {
            response,
            buffer: String::new(),
        };
        assert_eq!(resumed.next().await["seq"], last);

        // Admins only; an unknown server is a 404; a bad Last-Event-ID a clear 400.
        let user = api.login(&["--as", "dana", "--role", "user"]).await;
        for path in ["/api/servers/echo/logs", "/api/servers/echo/logs/follow"] {
            let (status, _) = api.call(&user, Method::GET, path, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
        let (status, _) = api.call(&admin, Method::GET, "/api/servers/nope/logs", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let response = api
            .follow(&admin, "/api/servers/echo/logs/follow", Some("yesterday"))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains("Last-Event-ID"),
            "{body}"
        );

        // A removed server's log goes with it.
        let (status, _) = api
            .call(
                &admin,
                Method::PUT,
                "/api/profiles/logs/servers",
                Some(json!({"servers": []})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = api.call(&admin, Method::DELETE, "/api/servers/echo", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = api
            .call(
                &admin,
                Method::POST,
                "/api/servers",
                Some(json!({"name": "echo", "builtin": "echo"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (_, log) = api.call(&admin, Method::GET, "/api/servers/echo/logs", None).await;
        assert_eq!(log["lines"], json!([]), "{log}");
    });
}

impl Api {
    /// A same-origin request with an `If-Match` header; the status, the `ETag` answered and the body.
    async fn call_if_match(
        &self,
        who: &Browser,
        method: Method,
        path: &str,
        if_match: &str,
        body: Value,
    ) -> (StatusCode, Option<String>, Value) {
        let response = self
            .http
            .request(method, self.url(path))
            .header("cookie", &who.cookie)
            .header("origin", self.origin())
            .header("if-match", if_match)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
        (status, etag, response.json().await.unwrap())
    }

    /// A GET's `ETag` and body.
    async fn tagged(&self, who: &Browser, path: &str) -> (String, Value) {
        let response = self
            .http
            .get(self.url(path))
            .header("cookie", &who.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        (etag, response.json().await.unwrap())
    }
}

#[test]
fn a_stale_write_to_a_plugins_configuration_or_a_profiles_servers_is_refused_with_412() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        for name in ["one", "two"] {
            let (status, _) = api
                .call(
                    &admin,
                    Method::POST,
                    "/api/servers",
                    Some(json!({"name": name, "builtin": "echo"})),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED);
        }
        api.call(&admin, Method::POST, "/api/profiles", Some(json!({"slug": "tagged"})))
            .await;

        // Two admins read the profile; the first sets its servers with the tag it read.
        let (read, profile) = api.tagged(&admin, "/api/profiles/tagged").await;
        assert_eq!(profile["servers_etag"], read.as_str());
        let (status, etag, body) = api
            .call_if_match(
                &admin,
                Method::PUT,
                "/api/profiles/tagged/servers",
                &read,
                json!({"servers": ["one"]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let after_first = etag.expect("the new ETag");
        assert_ne!(after_first, read);
        assert_eq!(body["servers_etag"], after_first.as_str());
        // The second, with the tag it read before that change: refused, nothing changed.
        let (status, _, body) = api
            .call_if_match(
                &admin,
                Method::PUT,
                "/api/profiles/tagged/servers",
                &read,
                json!({"servers": ["two"]}),
            )
            .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
        assert_eq!(body["error"]["code"], "stale");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("read them again"),
            "{body}"
        );
        let (now, profile) = api.tagged(&admin, "/api/profiles/tagged").await;
        assert_eq!(profile["servers"], json!(["one"]));
        assert_eq!(now, after_first);
        // With the current tag it goes through; without If-Match a write is unconditional.
        let (status, _, body) = api
            .call_if_match(
                &admin,
                Method::PUT,
                "/api/profiles/tagged/servers",
                &format!("\"other\", {now}"),
                json!({"servers": ["one", "two"]}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = api
            .call(
                &admin,
                Method::PUT,
                "/api/profiles/tagged/servers",
                Some(json!({"servers": ["two"]})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // A plugin's configuration: the tag is its current revision.
        let (read, plugin) = api.tagged(&admin, "/api/plugins/tool-filter").await;
        assert_eq!(plugin["etag"], read.as_str());
        let deny = |tool: &str| json!({"config": {"profiles": {"tagged": {"deny": [tool]}}}});
        let (status, etag, body) = api
            .call_if_match(
                &admin,
                Method::PUT,
                "/api/plugins/tool-filter/config",
                &read,
                deny("one/echo"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let current = etag.unwrap();
        assert_ne!(current, read);
        let revisions = body["revisions"].as_array().unwrap().len();
        let (status, _, body) = api
            .call_if_match(
                &admin,
                Method::PUT,
                "/api/plugins/tool-filter/config",
                &read,
                deny("two/echo"),
            )
            .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("changed since it was read"),
            "{body}"
        );
        let (now, plugin) = api.tagged(&admin, "/api/plugins/tool-filter").await;
        assert_eq!(now, current);
        assert_eq!(
            plugin["revisions"].as_array().unwrap().len(),
            revisions,
            "no revision was added"
        );
        assert_eq!(
            plugin["revisions"][0]["config"]["profiles"]["tagged"]["deny"],
            json!(["one/echo"])
        );
        // A weak tag never matches; a rollback makes another revision current, so the tag read before is stale.
        let (status, _, _) = api
            .call_if_match(
                &admin,
                Method::PUT,
                "/api/plugins/tool-filter/config",
                &format!("W/{now}"),
                deny("two/echo"),
            )
            .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED);
        let (status, _) = api
            .call(&admin, Method::POST, "/api/plugins/tool-filter/rollback", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = api
            .call_if_match(
                &admin,
                Method::PUT,
                "/api/plugins/tool-filter/config",
                &now,
                deny("two/echo"),
            )
            .await;
        assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    });
}

#[test]
fn a_plugin_is_tried_on_a_sample_input_without_changing_anything() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let (_, before) = api.tagged(&admin, "/api/plugins/tool-filter").await;
        let call = json!({"server": "echo", "method": "tools/call", "name": "echo", "params": {"name": "echo"}});
        let test = |body: Value| api.call(&admin, Method::POST, "/api/plugins/tool-filter/test", Some(body));

        // With its current configuration (no rule): allowed, and what it cost.
        let (status, result) = test(json!({"call": call, "profile": "team"})).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        assert_eq!(result["kind"], "mcp-filter");
        assert_eq!(result["answer"], "Allow", "{result}");
        assert!(result["fuel"].as_u64().unwrap() > 0, "{result}");
        assert!(result["elapsed_us"].is_u64(), "{result}");
        assert_eq!(result["failure"], Value::Null);

        // With a configuration being considered: denied for that profile, and only for it.
        let config = json!({"profiles": {"team": {"deny": ["echo/echo"]}}});
        let (status, result) = test(json!({"call": call, "config": config, "profile": "team"})).await;
        assert_eq!(status, StatusCode::OK, "{result}");
        assert!(result["answer"].as_str().unwrap().starts_with("Deny("), "{result}");
        let (_, result) = test(json!({"call": call, "config": config, "profile": "other"})).await;
        assert_eq!(result["answer"], "Allow", "{result}");

        // Nothing was saved or bound.
        let (_, after) = api.tagged(&admin, "/api/plugins/tool-filter").await;
        assert_eq!(after["revisions"], before["revisions"]);
        assert_eq!(after["bindings"], before["bindings"]);

        // Bad input is a clear 400; an unknown plugin a 404; users may not.
        let (status, body) = test(json!({"call": {"host": "x"}})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("does not describe a call of a mcp-filter plugin"),
            "{body}"
        );
        let (status, body) = test(json!({"call": call, "config": {"max_argument_bytes": -1}})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("max_argument_bytes"),
            "{body}"
        );
        let (status, _) = api
            .call(
                &admin,
                Method::POST,
                "/api/plugins/nope/test",
                Some(json!({"call": call})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let user = api.login(&["--as", "erin", "--role", "user"]).await;
        let (status, _) = api
            .call(
                &user,
                Method::POST,
                "/api/plugins/tool-filter/test",
                Some(json!({"call": call})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    });
}

#[test]
fn an_admin_views_as_a_user_read_only_for_at_most_an_hour_and_it_is_audited() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        let fay = api.login(&["--as", "fay", "--role", "user"]).await;
        let fay_id = user_id(&api, &fay).await;
        let admin_id = user_id(&api, &admin).await;
        let (status, _) = api
            .call(&fay, Method::POST, "/api/profiles", Some(json!({"slug": "fays"})))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = api
            .call(&admin, Method::POST, "/api/profiles", Some(json!({"slug": "admins"})))
            .await;
        assert_eq!(status, StatusCode::CREATED);

        // Bad input first: nothing changes.
        let path = format!("/api/users/{fay_id}/view-as");
        for (body, code) in [
            (json!({"minutes": 61}), StatusCode::BAD_REQUEST),
            (json!({"minutes": 0}), StatusCode::BAD_REQUEST),
            (json!({"for": 5}), StatusCode::BAD_REQUEST),
        ] {
            let (status, answer) = api.call(&admin, Method::POST, &path, Some(body.clone())).await;
            assert_eq!(status, code, "{body}: {answer}");
        }
        let (status, _) = api
            .call(
                &admin,
                Method::POST,
                &format!("/api/users/{admin_id}/view-as"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "not as oneself");
        let (status, _) = api
            .call(&admin, Method::POST, "/api/users/99999/view-as", Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = api.call(&fay, Method::POST, &path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "users may not");
        let (_, me) = api.call(&admin, Method::GET, "/api/me", None).await;
        assert_eq!(me["view_as"], Value::Null);

        // Viewing: the admin's session sees what fay sees, for the time asked.
        let (status, me) = api
            .call(&admin, Method::POST, &path, Some(json!({"minutes": 30})))
            .await;
        assert_eq!(status, StatusCode::OK, "{me}");
        let (_, me) = api.call(&admin, Method::GET, "/api/me", None).await;
        assert_eq!(me["id"], fay_id);
        assert_eq!(me["role"], "user");
        assert_eq!(me["view_as"]["admin_id"], admin_id);
        let until = me["view_as"]["until"].as_i64().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((now + 29 * 60..=now + 30 * 60 + 5).contains(&until), "{until} vs {now}");
        let (_, profiles) = api.call(&admin, Method::GET, "/api/profiles", None).await;
        let slugs: Vec<&str> = profiles["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["slug"].as_str().unwrap())
            .collect();
        assert_eq!(slugs, ["fays"]);
        let (status, _) = api.call(&admin, Method::GET, "/api/users", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "as fay: no admin pages");

        // Read-only: every change is refused, and changes nothing.
        for (method, path, body) in [
            (Method::POST, "/api/profiles", Some(json!({"slug": "sneaky"}))),
            (Method::DELETE, "/api/profiles/fays", None),
            (Method::POST, "/api/profiles/fays/token", None),
        ] {
            let (status, body) = api.call(&admin, method.clone(), path, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
            assert_eq!(body["error"]["code"], "read_only", "{body}");
        }
        let (_, profile) = api.call(&fay, Method::GET, "/api/profiles/fays", None).await;
        assert_eq!(profile["slug"], "fays", "fay's own session is untouched");

        // Stopping returns to the admin; both ends are audited as the admin's.
        let (status, _) = api.call(&admin, Method::DELETE, "/api/me/view-as", None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, me) = api.call(&admin, Method::GET, "/api/me", None).await;
        assert_eq!(me["id"], admin_id);
        assert_eq!(me["view_as"], Value::Null);
        let (status, _) = api.call(&admin, Method::DELETE, "/api/me/view-as", None).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let events = api
            .events_with(
                &admin,
                "/api/audit?limit=20",
                &["api.user.view_as", "api.user.view_as_end"],
            )
            .await;
        for kind in ["api.user.view_as", "api.user.view_as_end"] {
            let event = events["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["kind"] == kind)
                .unwrap_or_else(|| panic!("no {kind} in {events}"));
            assert_eq!(event["actor"], format!("user:{admin_id}"), "{event}");
            assert_eq!(event["detail"]["user"], fay_id, "{event}");
        }
    });
}

#[test]
fn tool_calls_are_counted_per_minute_by_profile_server_and_deciding_plugin() {
    let api = Api::start();
    runtime().block_on(async {
        let admin = api.login(&[]).await;
        api.call(
            &admin,
            Method::POST,
            "/api/servers",
            Some(json!({"name": "echo", "builtin": "echo"})),
        )
        .await;
        let gus = api.login(&["--as", "gus", "--role", "user"]).await;
        for (who, slug) in [(&admin, "counted"), (&gus, "gus")] {
            let (status, _) = api
                .call(who, Method::POST, "/api/profiles", Some(json!({"slug": slug})))
                .await;
            assert_eq!(status, StatusCode::CREATED);
            let (status, body) = api
                .call(
                    &admin,
                    Method::PUT,
                    &format!("/api/profiles/{slug}/servers"),
                    Some(json!({"servers": ["echo"]})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let call = |slug: &'static str| {
            let api = &api;
            let admin = &admin;
            async move {
                api.call(
                    admin,
                    Method::POST,
                    &format!("/api/profiles/{slug}/tools/call"),
                    Some(json!({"name": "echo_echo", "arguments": {"message": "m"}})),
                )
                .await
            }
        };
        for _ in 0..3 {
            assert_eq!(call("counted").await.0, StatusCode::OK);
        }
        assert_eq!(call("gus").await.0, StatusCode::OK);
        // A denial, decided by tool-filter.
        let deny = json!({"config": {"profiles": {"counted": {"deny": ["echo/echo"]}}}});
        api.call(&admin, Method::PUT, "/api/plugins/tool-filter/config", Some(deny))
            .await;
        api.call(
            &admin,
            Method::POST,
            "/api/plugins/tool-filter/bindings",
            Some(json!({"profile": "counted"})),
        )
        .await;
        let mut denied = false;
        for _ in 0..100 {
            if !call("counted").await.1["error"].is_null() {
                denied = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(denied, "the rule applies");

        // The counts follow the audit log (written in batches): wait, boundedly, for every call.
        let total = |series: &Value, key: &str| -> i64 {
            series["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p[key].as_i64().unwrap())
                .sum()
        };
        let mut series = Value::Null;
        for _ in 0..100 {
            series = api.call(&admin, Method::GET, "/api/metrics/tool-calls", None).await.1;
            if total(&series, "calls") >= 5 && total(&series, "denials") >= 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // An hour of whole minutes by default (61 when the hour does not start on a minute).
        let steps = series["points"].as_array().unwrap().len();
        assert!((60..=61).contains(&steps), "{steps}");
        assert_eq!(series["step_ms"], 60_000);
        assert!(total(&series, "calls") >= 5, "{series}");
        assert_eq!(total(&series, "denials"), 1, "{series}");
        let last_busy = series["points"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|p| p["calls"].as_i64().unwrap() > 0)
            .unwrap();
        assert!(last_busy["latency_max_us"].as_i64().unwrap() > 0, "{last_busy}");

        let (_, by_plugin) = api
            .call(
                &admin,
                Method::GET,
                "/api/metrics/tool-calls?plugin=tool-filter&step=600",
                None,
            )
            .await;
        assert_eq!(total(&by_plugin, "calls"), 1, "{by_plugin}");
        let steps = by_plugin["points"].as_array().unwrap().len();
        assert!((6..=7).contains(&steps), "ten-minute steps: {steps}");
        let (_, by_profile) = api
            .call(&admin, Method::GET, "/api/metrics/tool-calls?profile=gus", None)
            .await;
        assert_eq!(total(&by_profile, "calls"), 1, "{by_profile}");
        // A user counts only the profiles they can see.
        let (status, theirs) = api.call(&gus, Method::GET, "/api/metrics/tool-calls", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(total(&theirs, "calls"), 1, "{theirs}");
        let (_, theirs) = api
            .call(&gus, Method::GET, "/api/metrics/tool-calls?profile=counted", None)
            .await;
        assert_eq!(total(&theirs, "calls"), 0);

        // Bad input: a clear 400.
        for query in [
            "step=90",
            "step=30",
            "since=10&until=5",
            "since=0&until=864000000",
            "step=60&since=0&until=604800000",
            "since=-9223372036854775808&until=9223372036854775807",
            "until=9223372036854775807",
            "bins=3",
        ] {
            let (status, body) = api
                .call(&admin, Method::GET, &format!("/api/metrics/tool-calls?{query}"), None)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        }
    });
}
