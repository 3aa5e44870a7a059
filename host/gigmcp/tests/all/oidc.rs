//! OpenID Connect login against a real OpenID provider: `oidc-provider` (npm, pinned in tests/deps) run by
//! tests/support/oidc-provider.mjs on loopback, with its own login and consent forms, which a browserless
//! client (reqwest, a cookie jar of its own, redirects followed by hand) fills in. Cases a real provider never
//! produces (an ID token for another audience, or with another nonce) come from tests/support/
//! oidc-interposer.mjs, which re-signs the provider's ID tokens with a key it publishes.
//!
//! Needs root (the gateway sets up its sandbox network at start) and `scripts/test-deps.sh` (Node 22 and
//! oidc-provider). Run: `cargo test -p gigmcp --test all oidc::`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use gigmcp_testkit::{Guard, RawClient, TestGateway, free_port, repo_root};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

const CLIENT_ID: &str = "gigmcp-tests";
const CLIENT_SECRET: &str = "a-client-secret-for-tests-only";

/// Runs a support script with Node 22 and waits until it listens; returns its URL.
fn start_node(script: &str, args: &[&str]) -> (Guard, String) {
    gigmcp_testkit::start_node22(&repo_root().join("tests/support").join(script), args)
}

/// The OpenID provider, with a client registered for each gateway port given, and the test's accounts.
struct Idp {
    _guard: Guard,
    issuer: String,
    accounts: PathBuf,
    _dir: tempfile::TempDir,
}

impl Idp {
    fn start(port: u16, gateway_ports: &[u16], accounts: Value) -> Self {
        Self::start_with(port, gateway_ports, accounts, json!({}))
    }

    /// `options` go into the provider's configuration: `userinfo_only` (the ID token carries only `sub`, the
    /// claims come from the userinfo endpoint), `tls` (`{"cert", "key"}` PEM files: it serves HTTPS).
    fn start_with(port: u16, gateway_ports: &[u16], accounts: Value, options: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let accounts_path = dir.path().join("accounts.json");
        std::fs::write(&accounts_path, accounts.to_string()).unwrap();
        let mut config = json!({
            "port": port,
            "accounts": accounts_path,
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": gateway_ports.iter()
                    .map(|p| format!("http://127.0.0.1:{p}/auth/callback")).collect::<Vec<_>>(),
                "post_logout_redirect_uris": gateway_ports.iter()
                    .map(|p| format!("http://127.0.0.1:{p}/")).collect::<Vec<_>>(),
            }],
        });
        config
            .as_object_mut()
            .unwrap()
            .extend(options.as_object().unwrap().clone());
        let config_path = dir.path().join("provider.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let (guard, issuer) = start_node("oidc-provider.mjs", &[config_path.to_str().unwrap()]);
        Self {
            _guard: guard,
            issuer,
            accounts: accounts_path,
            _dir: dir,
        }
    }

    fn set_accounts(&self, accounts: Value) {
        std::fs::write(&self.accounts, accounts.to_string()).unwrap();
    }
}

/// A gateway on `port` whose identity provider is `issuer`.
fn gateway(port: u16, issuer: &str, extra: &[(&str, &str)]) -> TestGateway {
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let redirect = format!("{public}/auth/callback");
    let mut env = vec![
        ("GIG_LISTEN", listen.as_str()),
        ("GIG_PUBLIC_URL", public.as_str()),
        ("GIG_OIDC_ISSUER", issuer),
        ("GIG_OIDC_CLIENT_ID", CLIENT_ID),
        ("GIG_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("GIG_OIDC_REDIRECT_URL", redirect.as_str()),
    ];
    env.extend_from_slice(extra);
    TestGateway::start_with(&env)
}

fn base(gw: &TestGateway) -> String {
    format!("http://{}", gw.addr)
}

/// Waits (bounded) until the API no longer answers 503, i.e. discovery succeeded.
async fn wait_ready(gw: &TestGateway) {
    let http = reqwest::Client::new();
    for _ in 0..240 {
        let status = http.get(format!("{}/api/me", base(gw))).send().await.unwrap().status();
        if status != StatusCode::SERVICE_UNAVAILABLE {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("OIDC discovery never succeeded:\n{}", gw.log());
}

fn db(gw: &TestGateway) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        gw.dir.path().join("gigmcp.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

fn count(gw: &TestGateway, sql: &str) -> i64 {
    db(gw).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Waits (bounded) for an audit event of `kind` whose outcome and detail match; the writer batches.
async fn audited(gw: &TestGateway, kind: &str, outcome: &str, detail_contains: &str) -> bool {
    let sql = format!(
        "SELECT count(*) FROM audit_events WHERE kind = '{kind}' AND outcome = '{outcome}' AND detail LIKE '%{}%'",
        detail_contains.replace('\'', "''")
    );
    for _ in 0..100 {
        if count(gw, &sql) > 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

// ---- a browser without a browser

/// Cookies per host (as browsers keep them: not per port), redirects followed by hand.
pub(crate) struct Browser {
    http: reqwest::Client,
    jar: HashMap<String, BTreeMap<String, String>>,
}

/// What to do at the provider's pages.
pub(crate) enum AtProvider<'a> {
    /// Log in as this subject and consent.
    Login(&'a str),
    /// Follow the provider's "Cancel" link: the provider answers `error=access_denied`.
    Cancel,
}

impl Browser {
    fn new() -> Self {
        Self::trusting(None)
    }

    /// A browser that also trusts the certificates of `ca_pem`.
    pub(crate) fn trusting(ca_pem: Option<&[u8]>) -> Self {
        Self::trusting_resolving(ca_pem, &[])
    }

    /// The same, with names resolved to the test's addresses (as a hosts file would).
    pub(crate) fn trusting_resolving(ca_pem: Option<&[u8]>, names: &[(&str, std::net::SocketAddr)]) -> Self {
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
        }
        for (name, addr) in names {
            http = http.resolve(name, *addr);
        }
        Self {
            http: http.build().unwrap(),
            jar: HashMap::new(),
        }
    }

    fn host(url: &Url) -> String {
        url.host_str().unwrap_or_default().to_owned()
    }

    pub(crate) fn cookie(&self, url: &Url, name: &str) -> Option<String> {
        self.jar.get(&Self::host(url))?.get(name).cloned()
    }

    pub(crate) fn set_cookie(&mut self, url: &Url, name: &str, value: &str) {
        self.jar
            .entry(Self::host(url))
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    async fn send(&mut self, url: &Url, request: reqwest::RequestBuilder) -> reqwest::Response {
        let mut request = request;
        if let Some(cookies) = self.jar.get(&Self::host(url)).filter(|c| !c.is_empty()) {
            let header = cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", header);
        }
        let response = request.send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let removed = value.is_empty() || attributes.to_ascii_lowercase().contains("max-age=0");
            let cookies = self.jar.entry(Self::host(url)).or_default();
            if removed {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        response
    }

    pub(crate) async fn get(&mut self, url: &str) -> reqwest::Response {
        let url = Url::parse(url).unwrap();
        let request = self.http.get(url.clone());
        self.send(&url, request).await
    }

    /// A PUT of a JSON body as the gateway's own page would send it.
    pub(crate) async fn put(&mut self, url: &str, origin: &str, body: Value) -> reqwest::Response {
        let url = Url::parse(url).unwrap();
        let request = self.http.put(url.clone()).header("origin", origin).json(&body);
        self.send(&url, request).await
    }

    /// A DELETE as the gateway's own page would send it.
    pub(crate) async fn delete(&mut self, url: &str, origin: &str) -> reqwest::Response {
        let url = Url::parse(url).unwrap();
        let request = self.http.delete(url.clone()).header("origin", origin);
        self.send(&url, request).await
    }

    /// A state-changing request as the gateway's own page would send it (same-origin `Origin`), or from
    /// another site.
    pub(crate) async fn post(&mut self, url: &str, origin: &str, body: Option<Value>) -> reqwest::Response {
        self.post_accepting(url, origin, body, "text/html").await
    }

    async fn post_accepting(
        &mut self,
        url: &str,
        origin: &str,
        body: Option<Value>,
        accept: &str,
    ) -> reqwest::Response {
        let url = Url::parse(url).unwrap();
        let mut request = self
            .http
            .post(url.clone())
            .header("origin", origin)
            .header("accept", accept);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(&url, request).await
    }

    /// Starts a login at the gateway and goes through the provider's pages; returns the URL the provider
    /// sends the browser back to (the gateway's callback, not yet visited).
    async fn authorize(&mut self, gateway: &str, at_provider: AtProvider<'_>) -> Url {
        self.authorize_from(gateway, "/auth/login", at_provider).await
    }

    /// The same, starting at `start` (a path on the gateway, such as `/auth/login?return_to=…`).
    async fn authorize_from(&mut self, gateway: &str, start: &str, at_provider: AtProvider<'_>) -> Url {
        self.follow_to(
            &format!("{gateway}{start}"),
            &format!("{gateway}/auth/callback"),
            at_provider,
        )
        .await
    }

    /// Follows redirects from `start`, through the provider's pages, until one leads to a URL that begins with
    /// `callback`: returns that URL, not yet visited.
    pub(crate) async fn follow_to(&mut self, start: &str, callback: &str, at_provider: AtProvider<'_>) -> Url {
        let mut url = Url::parse(start).unwrap();
        let mut response = self.get(url.as_str()).await;
        for _ in 0..20 {
            if response.status().is_redirection() {
                let location = response.headers()["location"].to_str().unwrap().to_owned();
                let next = url.join(&location).unwrap();
                if next.as_str().starts_with(callback) {
                    return next;
                }
                url = next;
                response = self.get(url.as_str()).await;
                continue;
            }
            let status = response.status();
            let page = response.text().await.unwrap();
            assert_eq!(status, 200, "at {url}: {page}");
            if let AtProvider::Cancel = at_provider {
                let abort = attribute_values(&page, "href")
                    .into_iter()
                    .find(|h| h.ends_with("/abort"))
                    .unwrap_or_else(|| panic!("no Cancel link at {url}: {page}"));
                url = url.join(&abort).unwrap();
                response = self.get(url.as_str()).await;
                continue;
            }
            let form = Form::parse(&page).unwrap_or_else(|| panic!("no form at {url}: {page}"));
            let mut fields = form.hidden.clone();
            if form.names.iter().any(|n| n == "login")
                && let AtProvider::Login(login) = at_provider
            {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "any password".into()));
            }
            url = url.join(&form.action).unwrap();
            let request = self.http.post(url.clone()).form(&fields);
            response = self.send(&url, request).await;
        }
        panic!("the provider never sent the browser back to the gateway (last at {url})");
    }

    /// The whole login, which must succeed: back to `/` with a session.
    async fn login_ok(&mut self, gateway: &str, subject: &str) {
        let response = self.login(gateway, subject).await;
        let status = response.status();
        if status != StatusCode::SEE_OTHER {
            panic!("login as {subject}: {status} {}", response.text().await.unwrap());
        }
        assert_eq!(response.headers()["location"], "/");
    }

    /// The whole login; returns the callback's response.
    async fn login(&mut self, gateway: &str, subject: &str) -> reqwest::Response {
        let callback = self.authorize(gateway, AtProvider::Login(subject)).await;
        self.get(callback.as_str()).await
    }
}

/// Every value of `attr="…"` in a page.
fn attribute_values(page: &str, attr: &str) -> Vec<String> {
    let needle = format!("{attr}=\"");
    page.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &page[i + needle.len()..];
            rest.find('"').map(|end| rest[..end].replace("&amp;", "&"))
        })
        .collect()
}

/// The first form of a page: where it posts, its hidden fields and the names of all its inputs.
struct Form {
    action: String,
    hidden: Vec<(String, String)>,
    names: Vec<String>,
}

impl Form {
    fn parse(page: &str) -> Option<Self> {
        let start = page.find("<form")?;
        let end = page[start..].find("</form>")? + start;
        let form = &page[start..end];
        let tag_end = form.find('>')?;
        let action = attribute_values(&form[..tag_end], "action").into_iter().next()?;
        let mut hidden = Vec::new();
        let mut names = Vec::new();
        for (i, _) in form.match_indices("<input") {
            let tag = &form[i..i + form[i..].find('>')?];
            let name = attribute_values(tag, "name").into_iter().next();
            let value = attribute_values(tag, "value").into_iter().next();
            if let Some(name) = name {
                if tag.contains("type=\"hidden\"") {
                    hidden.push((name.clone(), value.unwrap_or_default()));
                }
                names.push(name);
            }
        }
        Some(Self { action, hidden, names })
    }
}

/// Creates a profile through the API with the browser's session; returns (slug, token).
async fn create_profile(browser: &mut Browser, gw: &TestGateway, slug: &str) -> (String, String) {
    let origin = base(gw);
    let response = browser
        .post(&format!("{origin}/api/profiles"), &origin, Some(json!({"slug": slug})))
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "POST /api/profiles: {body}");
    let token = body["token"].as_str().expect("the token, shown once").to_owned();
    (slug.to_owned(), token)
}

// ---- the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_login_gives_a_session_that_creates_a_profile_and_logout_ends_it() {
    let (idp_port, gw_port) = (free_port(), free_port());
    let idp = Idp::start(
        idp_port,
        &[gw_port],
        json!({"alice": {"name": "Alice", "email": "alice@example.test", "roles": ["user"]}}),
    );
    let gw = gateway(gw_port, &idp.issuer, &[]);
    wait_ready(&gw).await;
    let origin = base(&gw);
    let mut browser = Browser::new();

    // The login: provider forms, back to the gateway with a session cookie.
    browser.login_ok(&origin, "alice").await;
    let gw_url = Url::parse(&origin).unwrap();
    assert!(browser.cookie(&gw_url, "gigmcp_session").is_some());
    assert!(
        browser.cookie(&gw_url, "gigmcp_oidc_flow").is_none(),
        "the flow cookie is used once"
    );
    let me: Value = browser.get(&format!("{origin}/api/me")).await.json().await.unwrap();
    assert_eq!(me["subject"], "alice", "{me}");
    assert_eq!(me["issuer"], idp.issuer.as_str());
    assert_eq!(me["role"], "user");
    assert_eq!(me["email"], "alice@example.test");
    assert!(audited(&gw, "auth.login", "ok", "\"subject\":\"alice\"").await);

    // The session creates a profile; its token works on the MCP endpoint.
    let (slug, token) = create_profile(&mut browser, &gw, "alices").await;
    let mut client = RawClient::new(gw.url(&slug), token);
    let init = client.initialize().await;
    assert!(init["result"]["protocolVersion"].is_string(), "{init}");

    // Logging in again in the same browser replaces its session: the old token ends. This time the login
    // asks to come back to a page of the dashboard.
    let first = browser.cookie(&gw_url, "gigmcp_session").unwrap();
    let callback = browser
        .authorize_from(
            &origin,
            "/auth/login?return_to=%2Fprofiles%2Falices%3Ftab%3Dtokens",
            AtProvider::Login("alice"),
        )
        .await;
    let response = browser.get(callback.as_str()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/profiles/alices?tab=tokens");
    assert_ne!(browser.cookie(&gw_url, "gigmcp_session").unwrap(), first);
    assert_eq!(count(&gw, "SELECT count(*) FROM web_sessions"), 1);

    // A login may not be asked to end up on another site.
    let response = browser
        .get(&format!("{origin}/auth/login?return_to=https%3A%2F%2Fevil.example%2F"))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("set-cookie").is_none());

    // A cross-site logout is refused and ends nothing.
    let response = browser
        .post(&format!("{origin}/auth/logout"), "https://evil.example", None)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.get(&format!("{origin}/api/me")).await.status(), 200);

    // Logout: the session ends, and the browser goes to the provider's end-session endpoint.
    let session = browser.cookie(&gw_url, "gigmcp_session").unwrap();
    let response = browser.post(&format!("{origin}/auth/logout"), &origin, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        location.as_str().split('?').next().unwrap(),
        format!("{}/session/end", idp.issuer)
    );
    let query: HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["post_logout_redirect_uri"], format!("{origin}/"));
    assert!(
        browser.cookie(&gw_url, "gigmcp_session").is_none(),
        "the cookie is cleared"
    );
    // The old cookie, replayed, no longer works.
    browser.set_cookie(&gw_url, "gigmcp_session", &session);
    assert_eq!(browser.get(&format!("{origin}/api/me")).await.status(), 401);
    assert_eq!(count(&gw, "SELECT count(*) FROM web_sessions"), 0);
    assert!(audited(&gw, "auth.logout", "ok", "alice").await);
}

/// After a refused login: the right status and code, no user, no session, and an audit event saying why.
async fn assert_refused(gw: &TestGateway, response: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(gigmcp_testkit::error_code(&body), code, "{body}");
    assert_eq!(
        count(gw, "SELECT count(*) FROM users"),
        0,
        "a refused login made a user"
    );
    assert_eq!(
        count(gw, "SELECT count(*) FROM web_sessions"),
        0,
        "a refused login made a session"
    );
    assert!(
        audited(gw, "auth.login", "deny", &format!("\"code\":\"{code}\"")).await,
        "no audit event for {code}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_logins_change_nothing() {
    let (idp_port, gw_port, short_port) = (free_port(), free_port(), free_port());
    let idp = Idp::start(idp_port, &[gw_port, short_port], json!({"alice": {"roles": ["user"]}}));
    let gw = gateway(gw_port, &idp.issuer, &[]);
    wait_ready(&gw).await;
    let origin = base(&gw);

    // State mismatch: the provider's answer belongs to another login.
    let mut browser = Browser::new();
    let mut callback = browser.authorize(&origin, AtProvider::Login("alice")).await;
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                (k, "another-login".into())
            } else {
                (k, v)
            }
        })
        .collect();
    callback.query_pairs_mut().clear().extend_pairs(pairs);
    let response = browser.get(callback.as_str()).await;
    assert_refused(&gw, response, StatusCode::BAD_REQUEST, "state_mismatch").await;

    // An answer naming another issuer (RFC 9207 mix-up defence; oidc-provider declares that it names itself).
    let mut browser = Browser::new();
    let mut callback = browser.authorize(&origin, AtProvider::Login("alice")).await;
    let pairs: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    assert!(pairs.iter().any(|(k, v)| k == "iss" && *v == idp.issuer), "{callback}");
    let pairs = pairs.into_iter().map(|(k, v)| {
        if k == "iss" {
            (k, "https://attacker.example".into())
        } else {
            (k, v)
        }
    });
    callback.query_pairs_mut().clear().extend_pairs(pairs);
    let response = browser.get(callback.as_str()).await;
    assert_refused(&gw, response, StatusCode::BAD_REQUEST, "issuer_mismatch").await;

    // An answer that repeats a parameter (which of two states would count?).
    let mut browser = Browser::new();
    let mut callback = browser.authorize(&origin, AtProvider::Login("alice")).await;
    let state = callback
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    callback.query_pairs_mut().append_pair("state", &state);
    let response = browser.get(callback.as_str()).await;
    assert_refused(&gw, response, StatusCode::BAD_REQUEST, "malformed_answer").await;

    // A tampered flow cookie (its payload changed: the signature no longer matches).
    let mut browser = Browser::new();
    let callback = browser.authorize(&origin, AtProvider::Login("alice")).await;
    let gw_url = Url::parse(&origin).unwrap();
    let flow = browser.cookie(&gw_url, "gigmcp_oidc_flow").unwrap();
    let (payload, tag) = flow.split_once('.').unwrap();
    let mut bytes = payload.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{tag}", String::from_utf8(bytes).unwrap());
    browser.set_cookie(&gw_url, "gigmcp_oidc_flow", &tampered);
    let response = browser.get(callback.as_str()).await;
    assert_refused(&gw, response, StatusCode::BAD_REQUEST, "flow_tampered").await;

    // No flow cookie at all (another browser brings the answer back).
    let mut browser = Browser::new();
    let callback = browser.authorize(&origin, AtProvider::Login("alice")).await;
    let response = Browser::new().get(callback.as_str()).await;
    assert_refused(&gw, response, StatusCode::BAD_REQUEST, "no_login_in_progress").await;
    drop(browser);

    // The provider refuses (the user cancels at the provider: error=access_denied).
    let mut browser = Browser::new();
    let callback = browser.authorize(&origin, AtProvider::Cancel).await;
    assert!(callback.query().unwrap().contains("error=access_denied"), "{callback}");
    let response = browser.get(callback.as_str()).await;
    assert_refused(&gw, response, StatusCode::FORBIDDEN, "provider_refused").await;

    // An expired flow: a gateway whose logins may take 1 s; the callback comes later than that.
    let short = gateway(short_port, &idp.issuer, &[("GIG_OIDC_FLOW_TTL", "1s")]);
    wait_ready(&short).await;
    let mut browser = Browser::new();
    let callback = browser.authorize(&base(&short), AtProvider::Login("alice")).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = browser.get(callback.as_str()).await;
    assert_refused(&short, response, StatusCode::BAD_REQUEST, "flow_expired").await;

    // And the same gateway still logs in a browser that is in time (the refusals broke nothing).
    let mut browser = Browser::new();
    let callback = browser.authorize(&origin, AtProvider::Login("alice")).await;
    let flow = browser.cookie(&gw_url, "gigmcp_oidc_flow").unwrap();
    let response = browser.get(callback.as_str()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(count(&gw, "SELECT count(*) FROM users"), 1);
    assert_eq!(count(&gw, "SELECT count(*) FROM web_sessions"), 1);

    // Replaying that answer with its flow cookie: the provider refuses the used code; no second session.
    browser.set_cookie(&gw_url, "gigmcp_oidc_flow", &flow);
    let response = browser.get(callback.as_str()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(gigmcp_testkit::error_code(&body), "code_refused", "{body}");
    assert_eq!(count(&gw, "SELECT count(*) FROM web_sessions"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_for_another_audience_or_nonce_are_refused() {
    let (idp_port, interposer_port, gw_port) = (free_port(), free_port(), free_port());
    let idp = Idp::start(idp_port, &[gw_port], json!({"alice": {"roles": ["user"]}}));
    let (_interposer, issuer) = start_node("oidc-interposer.mjs", &[&interposer_port.to_string(), &idp.issuer]);
    let gw = gateway(gw_port, &issuer, &[]);
    wait_ready(&gw).await;
    let origin = base(&gw);
    let http = reqwest::Client::new();
    let set_mode = |mode: &'static str| {
        let http = http.clone();
        let issuer = issuer.clone();
        async move {
            let r = http.post(format!("{issuer}/__mode")).body(mode).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };

    set_mode("wrong-audience").await;
    let response = Browser::new().login(&origin, "alice").await;
    assert_refused(&gw, response, StatusCode::UNAUTHORIZED, "id_token_invalid").await;
    assert!(audited(&gw, "auth.login", "deny", "audience").await);

    set_mode("bad-nonce").await;
    let response = Browser::new().login(&origin, "alice").await;
    assert_refused(&gw, response, StatusCode::UNAUTHORIZED, "id_token_invalid").await;
    assert!(audited(&gw, "auth.login", "deny", "once").await);

    // The same path, untampered, logs in: the refusals above are the audience's and the nonce's.
    set_mode("pass").await;
    let mut browser = Browser::new();
    browser.login_ok(&origin, "alice").await;
    let me: Value = browser.get(&format!("{origin}/api/me")).await.json().await.unwrap();
    assert_eq!(me["issuer"], issuer.as_str(), "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_at_start_up_makes_the_api_wait_while_mcp_works() {
    let (idp_port, gw_port) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let gw = gateway(gw_port, &issuer, &[]);
    let origin = base(&gw);
    let http = reqwest::Client::new();

    // The API says why it cannot serve; logins too.
    let response = http.get(format!("{origin}/api/me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&issuer), "{body}");
    assert!(message.contains("discovery"), "{body}");
    let response = http.get(format!("{origin}/auth/login")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("set-cookie").is_none(), "no login flow starts");
    assert_eq!(count(&gw, "SELECT count(*) FROM users"), 0);

    // MCP keeps working.
    let token = gw.create_profile("ops");
    let mut client = RawClient::new(gw.url("ops"), token);
    let init = client.initialize().await;
    assert!(init["result"]["protocolVersion"].is_string(), "{init}");

    // The provider comes up: discovery is retried, and logins work.
    let _idp = Idp::start(idp_port, &[gw_port], json!({"alice": {"roles": ["user"]}}));
    wait_ready(&gw).await;
    let mut browser = Browser::new();
    browser.login_ok(&origin, "alice").await;
    assert_eq!(browser.get(&format!("{origin}/api/me")).await.status(), 200);
    assert!(
        gw.log().contains("OIDC discovery failed"),
        "the failed discovery is logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claims_mapper_config_decides_the_role_at_the_next_login() {
    let (idp_port, gw_port) = (free_port(), free_port());
    let idp = Idp::start(idp_port, &[gw_port], json!({"bob": {"name": "Bob", "groups": ["ops"]}}));
    let gw = gateway(gw_port, &idp.issuer, &[]);
    wait_ready(&gw).await;
    let origin = base(&gw);

    // The default mapper reads /roles: bob has none, so he is not let in.
    let response = Browser::new().login(&origin, "bob").await;
    assert_refused(&gw, response, StatusCode::FORBIDDEN, "not_allowed").await;

    // Group ops is admin; anyone else recognised is a user. The gateway picks the change up without restart.
    gw.cli_ok(&[
        "plugin",
        "config",
        "claims-mapper",
        r#"{"roles_claim": "/groups", "role_map": {"ops": "admin"}, "default_role": "user"}"#,
    ]);
    assert_eq!(role_at_login(&gw, "bob", "admin").await, "admin");

    // Another mapping: the next login is a user again; the user row is the same one, refreshed.
    gw.cli_ok(&[
        "plugin",
        "config",
        "claims-mapper",
        r#"{"roles_claim": "/groups", "role_map": {"devs": "admin"}, "default_role": "user"}"#,
    ]);
    assert_eq!(role_at_login(&gw, "bob", "user").await, "user");
    assert_eq!(count(&gw, "SELECT count(*) FROM users"), 1);

    // Claims are read at every login too: bob joins devs.
    idp.set_accounts(json!({"bob": {"name": "Bob", "groups": ["devs"]}}));
    assert_eq!(role_at_login(&gw, "bob", "admin").await, "admin");
}

/// Logs in until the role is `expected` (the gateway applies a plugin's new config within about a second);
/// returns the last role seen.
async fn role_at_login(gw: &TestGateway, subject: &str, expected: &str) -> String {
    let origin = base(gw);
    let mut role = String::new();
    for _ in 0..20 {
        let mut browser = Browser::new();
        let response = browser.login(&origin, subject).await;
        if response.status() == StatusCode::SEE_OTHER {
            let me: Value = browser.get(&format!("{origin}/api/me")).await.json().await.unwrap();
            role = me["role"].as_str().unwrap_or_default().to_owned();
            if role == expected {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    role
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_works_without_an_identity_provider() {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let gw = TestGateway::start_with(&[
        ("GIG_LISTEN", &format!("127.0.0.1:{port}")),
        ("GIG_PUBLIC_URL", &origin),
    ]);
    let mut browser = Browser::new();

    // No provider: /auth/login says so, and how to log in instead; the API is not held up.
    let response = browser.get(&format!("{origin}/auth/login")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gigmcp admin login-link"),
        "{body}"
    );
    assert_eq!(browser.get(&format!("{origin}/api/me")).await.status(), 401);

    // A session from a login link ends at logout; the browser goes to `/`.
    let link = gw.cli_ok(&["admin", "login-link"]).trim().to_owned();
    assert_eq!(browser.get(&link).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.get(&format!("{origin}/api/me")).await.status(), 200);
    let response = browser.post(&format!("{origin}/auth/logout"), &origin, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/");
    assert_eq!(browser.get(&format!("{origin}/api/me")).await.status(), 401);

    // A script asks for JSON and is told where to go.
    let link = gw.cli_ok(&["admin", "login-link"]).trim().to_owned();
    browser.get(&link).await;
    let response = browser
        .post_accepting(&format!("{origin}/auth/logout"), &origin, None, "application/json")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"redirect": "/"}));
    assert_eq!(browser.get(&format!("{origin}/api/me")).await.status(), 401);
    assert_eq!(count(&gw, "SELECT count(*) FROM web_sessions"), 0);
}

#[test]
fn a_partial_oidc_configuration_stops_start_up_naming_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(gigmcp_testkit::gigmcp_bin())
        .arg("serve")
        .env("GIG_DATA_DIR", dir.path())
        .env("GIG_MASTER_KEY", gigmcp_testkit::MASTER_KEY)
        .env("GIG_OIDC_ISSUER", "http://127.0.0.1:9/")
        .env("GIG_OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GIG_OIDC_CLIENT_ID, GIG_OIDC_REDIRECT_URL"), "{stderr}");
    assert!(!stderr.contains(CLIENT_SECRET), "the error echoes the secret: {stderr}");
    assert!(
        !dir.path().join("gigmcp.db").exists(),
        "a refused start wrote a database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_at_one_gateway_finishes_at_another_on_the_same_database() {
    let (idp_port, a_port, b_port) = (free_port(), free_port(), free_port());
    let idp = Idp::start(idp_port, &[a_port], json!({"alice": {"roles": ["user"]}}));
    let a = gateway(a_port, &idp.issuer, &[]);
    wait_ready(&a).await;
    // B shares A's database and, as behind one load balancer, A's redirect URL; its secret comes from a file.
    let secret_file = a.dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    let db_path = a.dir.path().join("gigmcp.db");
    let (b_listen, b_public) = (format!("127.0.0.1:{b_port}"), format!("http://127.0.0.1:{b_port}"));
    let a_redirect = format!("{}/auth/callback", base(&a));
    let b = TestGateway::start_with(&[
        ("GIG_LISTEN", b_listen.as_str()),
        ("GIG_PUBLIC_URL", b_public.as_str()),
        ("GIG_DB_PATH", db_path.to_str().unwrap()),
        ("GIG_OIDC_ISSUER", idp.issuer.as_str()),
        ("GIG_OIDC_CLIENT_ID", CLIENT_ID),
        ("GIG_OIDC_CLIENT_SECRET_FILE", secret_file.to_str().unwrap()),
        ("GIG_OIDC_REDIRECT_URL", a_redirect.as_str()),
    ]);
    wait_ready(&b).await;

    // The flow cookie A signed is verified by B: the key is the database's (the vault's), not the process's.
    let mut browser = Browser::new();
    let mut callback = browser.authorize(&base(&a), AtProvider::Login("alice")).await;
    callback.set_port(Some(b_port)).unwrap();
    let response = browser.get(callback.as_str()).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.text().await.unwrap()
    );
    let me: Value = browser.get(&format!("{b_public}/api/me")).await.json().await.unwrap();
    assert_eq!(me["subject"], "alice", "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_released_only_at_userinfo_reach_the_mapper() {
    let (idp_port, gw_port) = (free_port(), free_port());
    let idp = Idp::start_with(
        idp_port,
        &[gw_port],
        json!({"carol": {"name": "Carol", "groups": ["ops"]}}),
        json!({"userinfo_only": true}),
    );
    let gw = gateway(gw_port, &idp.issuer, &[("GIG_OIDC_SCOPES", "profile groups")]);
    wait_ready(&gw).await;
    gw.cli_ok(&[
        "plugin",
        "config",
        "claims-mapper",
        r#"{"roles_claim": "/groups", "role_map": {"ops": "admin"}}"#,
    ]);
    // Without the userinfo claims carol has no group, hence no role, and would be refused.
    assert_eq!(role_at_login(&gw, "carol", "admin").await, "admin");
    let mut browser = Browser::new();
    browser.login_ok(&base(&gw), "carol").await;
    let me: Value = browser
        .get(&format!("{}/api/me", base(&gw)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "Carol", "{me}");
}

/// A test CA and a certificate of it for 127.0.0.1: (CA PEM path, certificate path, key path).
fn tls_files(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    gigmcp_testkit::make_certificates(dir, &["127.0.0.1"]);
    (
        dir.join("ca.pem"),
        dir.join("upstream.pem"),
        dir.join("upstream-key.pem"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_with_a_private_ca_is_trusted_only_through_gig_oidc_ca_file() {
    let files = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(files.path());
    let (idp_port, trusting_port, plain_port) = (free_port(), free_port(), free_port());
    let idp = Idp::start_with(
        idp_port,
        &[trusting_port, plain_port],
        json!({"alice": {"roles": ["user"]}}),
        json!({"tls": {"cert": cert, "key": key}}),
    );
    assert!(idp.issuer.starts_with("https://"), "{}", idp.issuer);

    // Without the CA, discovery fails on the certificate, and the API says so.
    let plain = gateway(plain_port, &idp.issuer, &[]);
    let http = reqwest::Client::new();
    let mut message = String::new();
    for _ in 0..40 {
        let response = http.get(format!("{}/api/me", base(&plain))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.unwrap();
        message = body["error"]["message"].as_str().unwrap_or_default().to_owned();
        if message.contains("failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    // With it, the whole login works over TLS.
    let trusting = gateway(
        trusting_port,
        &idp.issuer,
        &[("GIG_OIDC_CA_FILE", ca.to_str().unwrap())],
    );
    wait_ready(&trusting).await;
    let mut browser = Browser::trusting(Some(&std::fs::read(&ca).unwrap()));
    browser.login_ok(&base(&trusting), "alice").await;
    let me: Value = browser
        .get(&format!("{}/api/me", base(&trusting)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["issuer"], idp.issuer.as_str(), "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_go_on_after_the_provider_rotates_its_signing_keys() {
    let (idp_port, gw_port) = (free_port(), free_port());
    let accounts = json!({"alice": {"roles": ["user"]}});
    let idp = Idp::start(idp_port, &[gw_port], accounts.clone());
    let gw = gateway(gw_port, &idp.issuer, &[]);
    wait_ready(&gw).await;
    Browser::new().login_ok(&base(&gw), "alice").await;

    // The provider restarts with a new signing key (tests/support/oidc-provider.mjs makes one at every start):
    // the gateway's discovered keys no longer verify its ID tokens until it looks again.
    drop(idp);
    let _idp = Idp::start(idp_port, &[gw_port], accounts);
    Browser::new().login_ok(&base(&gw), "alice").await;
    assert!(gw.log().contains("OIDC keys refreshed"), "the refresh is logged");
}
