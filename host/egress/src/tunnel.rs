//! One connection from a jail: the CONNECT, then the HTTP requests inside the tunnel. `serve` and
//! `Tunnel::handle` read in the order things happen.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::inject;
use crate::inject::Granted;
use crate::scrub::Scrubber;
use crate::settings::normalize_host;
use crate::{Caller, Proxy};
use gigmcp_plugin_runtime::PluginSet;
use gigmcp_types::audit::{NewAuditEvent, Outcome};
use gigmcp_types::credential::Credential;
use gigmcp_types::policy::{CallContext, DenyReason, EgressDecision, EgressRequest, HttpRequestLine, OutboundRequest};

/// The CONNECT request's head may be this long at most.
const MAX_HEAD: usize = 16 * 1024;
/// How long a jail may take to send its CONNECT (and then its TLS handshake).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a tunnel may wait for (the headers of) its next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Concurrent HTTP/2 streams in one tunnel, and so upstream connections (HTTP/1.1, one request at a time).
const MAX_STREAMS: u32 = 32;

/// Why a CONNECT was refused: the status, a code for the audit log, and what the jail is told.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
    plugin: Option<String>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            plugin: None,
        }
    }

    fn denied(reason: DenyReason) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "policy-denied",
            message: reason.to_string(),
            plugin: reason.plugin,
        }
    }
}

/// Serves one connection from a jail to its end.
pub(super) async fn serve(proxy: Arc<Proxy>, caller: Arc<Caller>, stream: TcpStream, peer: SocketAddr) {
    let mut stream = BufReader::new(stream);
    // The listener serves one sandbox's address, and the firewall admits only that jail to it; the source
    // is checked anyway, so that nothing else is ever attributed to the sandbox.
    if peer.ip() != IpAddr::V4(caller.jail) {
        let refusal = Refusal::new(
            StatusCode::FORBIDDEN,
            "unknown-source",
            format!("unknown source address {}", peer.ip()),
        );
        return refuse_connect(&proxy, &caller, &mut stream, None, refusal).await;
    }
    let target = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(target)) => target,
        Ok(Err(refusal)) => return refuse_connect(&proxy, &caller, &mut stream, None, refusal).await,
        Err(_) => return,
    };
    let (host, port) = target;
    let authority = format!("{host}:{port}");
    // The tunnel holds a permit for as long as it is open.
    let Ok(_permit) = caller.tunnels.clone().try_acquire_owned() else {
        let refusal = Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-tunnels",
            format!(
                "this sandbox already has {} tunnels open (GIG_EGRESS_MAX_TUNNELS); close one and retry",
                proxy.settings.max_tunnels
            ),
        );
        return refuse_connect(&proxy, &caller, &mut stream, Some(&authority), refusal).await;
    };
    let opened = match open(&proxy, &caller, &host, port).await {
        Ok(opened) => opened,
        Err(refusal) => return refuse_connect(&proxy, &caller, &mut stream, Some(&authority), refusal).await,
    };
    if stream
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let tls = match tokio::time::timeout(HEAD_TIMEOUT, proxy.accept_tls(&host, stream))
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("no TLS handshake in time")))
    {
        Ok(tls) => tls,
        Err(e) => {
            tracing::debug!(server = %caller.tenant.server, host, "TLS from the jail failed: {e}");
            return;
        }
    };
    // Domain fronting (invariant 3): the name the client asked TLS for must be the CONNECT host. A client
    // sends no SNI for an IP address, which is then what the CONNECT must have named.
    let sni = tls.get_ref().1.server_name().map(normalize_host);
    let sni_matches = match &sni {
        Some(sni) => *sni == host,
        None => host.parse::<IpAddr>().is_ok(),
    };
    // The upstream connection is driven by this task, beside the jail's: the response body passes from one
    // to the other without waking another thread.
    let (connections_tx, connections) = tokio::sync::mpsc::unbounded_channel();
    let _ = connections_tx.send(opened.connection);
    let tunnel = Arc::new(Tunnel {
        proxy,
        caller,
        host,
        port,
        sni,
        sni_matches,
        declared: opened.declared,
        credentials: opened.credentials,
        granted: opened.granted,
        upstream: tokio::sync::Mutex::new(vec![opened.upstream]),
        addr: opened.addr,
        connections: connections_tx,
        activity: Arc::new(Activity::new()),
    });
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let activity = tunnel.activity.clone();
    let service = hyper::service::service_fn(move |request| tunnel.clone().handle(request));
    // A tunnel holds one of the sandbox's permits: a client that sends nothing for a while loses it.
    if h2 {
        let server = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(MAX_STREAMS)
            .serve_connection(TokioIo::new(tls), service);
        tokio::select! {
            _ = server => {}
            () = drive_upstream(connections) => {}
            () = activity.idle() => {}
        }
    } else {
        let server = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(IDLE_TIMEOUT)
            .keep_alive(true)
            .serve_connection(TokioIo::new(tls), service);
        tokio::select! {
            _ = server => {}
            () = drive_upstream(connections) => {}
        }
    }
}

/// When an HTTP/2 tunnel last did something: hyper's HTTP/1.1 server ends a connection that sends no request
/// for `IDLE_TIMEOUT`, its HTTP/2 server has no such limit, so the tunnel keeps this itself.
struct Activity {
    /// Tokio's clock (the same as the system's outside tests with paused time).
    started: tokio::time::Instant,
    /// Milliseconds after `started` of the last request or response body frame.
    last: AtomicU64,
    /// Requests waiting for their upstream's response head (which may take long, silently).
    waiting: std::sync::atomic::AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: tokio::time::Instant::now(),
            last: AtomicU64::new(0),
            waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        self.last
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Returns once nothing has happened for `IDLE_TIMEOUT` with no request waiting.
    async fn idle(&self) {
        loop {
            tokio::time::sleep(IDLE_TIMEOUT / 8).await;
            let idle_ms = (self.started.elapsed().as_millis() as u64).saturating_sub(self.last.load(Ordering::Relaxed));
            if self.waiting.load(Ordering::Relaxed) == 0 && idle_ms >= IDLE_TIMEOUT.as_millis() as u64 {
                return;
            }
        }
    }
}

/// A request counted as waiting for its response head while this lives.
struct Waiting<'a>(&'a Activity);

impl<'a> Waiting<'a> {
    fn new(activity: &'a Activity) -> Self {
        activity.touch();
        activity.waiting.fetch_add(1, Ordering::Relaxed);
        Self(activity)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drives the tunnel's upstream connections (the first, and any dialed again) until the tunnel ends.
async fn drive_upstream(mut connections: tokio::sync::mpsc::UnboundedReceiver<UpstreamConnection>) {
    use futures_util::StreamExt;
    let mut running = futures_util::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(connection) = connections.recv() => running.push(connection),
            Some(_) = running.next(), if !running.is_empty() => {}
            else => std::future::pending::<()>().await,
        }
    }
}

/// Reads `CONNECT host:port HTTP/1.1` and its headers; anything else is refused with a reason.
async fn read_head(stream: &mut BufReader<TcpStream>) -> Result<(String, u16), Refusal> {
    let bad = |m: &str| Refusal::new(StatusCode::BAD_REQUEST, "bad-request", m.to_owned());
    let mut line = String::new();
    let mut total = 0;
    let mut request_line = None;
    loop {
        line.clear();
        let n = (&mut *stream)
            .take((MAX_HEAD - total) as u64 + 1)
            .read_line(&mut line)
            .await
            .map_err(|_| bad("the request head is not text"))?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return Err(bad("the request head is incomplete or too long"));
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if request_line.is_none() {
            request_line = Some(line.trim_end().to_owned());
        }
    }
    let request_line = request_line.ok_or_else(|| bad("no request line"))?;
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "CONNECT" {
        let message = if target.starts_with("http://") {
            "plain HTTP is not proxied: use https:// (the proxy accepts only CONNECT tunnels to TLS hosts)"
        } else {
            "the egress proxy accepts only CONNECT (use an https:// URL through HTTPS_PROXY)"
        };
        return Err(Refusal::new(StatusCode::METHOD_NOT_ALLOWED, "not-connect", message));
    }
    parse_authority(target).ok_or_else(|| bad("CONNECT needs host:port"))
}

/// `host:port` or `[v6]:port`, the host normalized (lower case, no trailing dot).
pub(super) fn parse_authority(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?.parse::<std::net::Ipv6Addr>().ok()?.to_string(),
        None => normalize_host(host),
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    valid.then_some((host, port))
}

async fn refuse_connect(
    proxy: &Proxy,
    caller: &Caller,
    stream: &mut BufReader<TcpStream>,
    authority: Option<&str>,
    refusal: Refusal,
) {
    proxy.record(NewAuditEvent {
        kind: "egress.connect".into(),
        actor: format!("server:{}", caller.tenant.server),
        profile: caller.tenant.profile.as_ref().map(|p| p.to_string()),
        server: Some(caller.tenant.server.to_string()),
        outcome: if refusal.status == StatusCode::BAD_GATEWAY {
            Outcome::Error
        } else {
            Outcome::Deny
        },
        detail: json!({
            "target": authority,
            "status": refusal.status.as_u16(),
            "decision": "deny",
            "code": refusal.code,
            "reason": refusal.message,
            "plugin": refusal.plugin,
        }),
    });
    tracing::info!(server = %caller.tenant.server, target = authority, code = refusal.code, "egress refused: {}", refusal.message);
    let body = format!("{}\n", refusal.message);
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        refusal.status.as_u16(),
        refusal.status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let _ = stream.write_all(format!("{head}{body}").as_bytes()).await;
    let _ = stream.shutdown().await;
}

type UpstreamSender = hyper::client::conn::http1::SendRequest<Counted>;
type UpstreamConnection =
    hyper::client::conn::http1::Connection<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>, Counted>;

/// What a CONNECT opens: the upstream connection and what the tunnel's requests need.
struct Opened {
    upstream: UpstreamSender,
    connection: UpstreamConnection,
    addr: SocketAddr,
    declared: Vec<String>,
    credentials: Vec<gigmcp_types::credential::Credential>,
    granted: Vec<Granted>,
}

/// Policy, resolution, the guard, the secrets and the dial, in that order: nothing is dialed that policy or the
/// guard refused, and no secret is decrypted for a CONNECT they refused.
async fn open(proxy: &Arc<Proxy>, caller: &Caller, host: &str, port: u16) -> Result<Opened, Refusal> {
    let (declared, credentials) = proxy.caller_state(caller).await?;
    proxy.connect_allowed(caller, host, port, &declared).await?;
    let addr = proxy.resolve(host, port).await?;
    let granted = proxy.grant(&credentials, host, port).await?;
    let (upstream, connection) = proxy.dial(host, addr).await?;
    Ok(Opened {
        upstream,
        connection,
        addr,
        declared,
        credentials,
        granted,
    })
}

impl Proxy {
    /// The server's declared hosts and its credentials (no secret: nothing is decrypted here).
    async fn caller_state(&self, caller: &Caller) -> Result<(Vec<String>, Vec<Credential>), Refusal> {
        let (store, tenant) = (self.store.clone(), caller.tenant.clone());
        tokio::task::spawn_blocking(move || {
            let declared = store
                .server(&tenant.server)
                .map(|def| def.spec.egress().to_vec())
                .map_err(|e| internal(format!("cannot read the server's definition: {e}")))?;
            let credentials = store
                .effective_credentials(&tenant.server, tenant.profile.as_ref())
                .map_err(|e| internal(format!("cannot read the server's credentials: {e}")))?;
            Ok((declared, credentials))
        })
        .await
        .map_err(|e| internal(e.to_string()))?
    }

    /// The secrets of the credentials `host:port` may carry: decrypted only once policy and the guard allowed
    /// the CONNECT.
    async fn grant(&self, credentials: &[Credential], host: &str, port: u16) -> Result<Vec<Granted>, Refusal> {
        let allowed: Vec<Credential> = credentials
            .iter()
            .filter(|c| c.spec.hosts.allows(host, port))
            .cloned()
            .collect();
        if allowed.is_empty() {
            return Ok(Vec::new());
        }
        let vault = self.vault.clone();
        tokio::task::spawn_blocking(move || {
            allowed
                .into_iter()
                .map(|credential| {
                    let secret = vault
                        .credential_secret(&credential)
                        .map_err(|e| internal(format!("cannot read credential {}: {e}", credential.spec.name)))?;
                    Ok(Granted {
                        credential,
                        secret: Arc::new(secret),
                    })
                })
                .collect()
        })
        .await
        .map_err(|e| internal(e.to_string()))?
    }

    /// Asks the `egress-policy` plugins about `host:port`, reusing an allow for as long as they said.
    async fn connect_allowed(
        &self,
        caller: &Caller,
        host: &str,
        port: u16,
        declared: &[String],
    ) -> Result<(), Refusal> {
        let key = (host.to_owned(), port, declared.to_vec());
        if let Some(until) = crate::lock(&caller.allowed).get(&key)
            && Instant::now() < *until
        {
            return Ok(());
        }
        let request = EgressRequest {
            server: caller.tenant.server.to_string(),
            host: host.to_owned(),
            port,
            http: None,
            declared: declared.to_vec(),
        };
        match self.plugins.egress_decide(&context(caller), &request).await {
            EgressDecision::Allow { cache_ttl_secs } => {
                if let Some(ttl) = cache_ttl_secs.filter(|t| *t > 0) {
                    let mut allowed = crate::lock(&caller.allowed);
                    allowed.retain(|_, until| Instant::now() < *until);
                    allowed.insert(key, Instant::now() + Duration::from_secs(ttl.into()));
                }
                Ok(())
            }
            EgressDecision::Deny(reason) => Err(Refusal::denied(reason)),
        }
    }

    /// The address to dial: `GIG_EGRESS_RESOLVE`, else the system resolver; every address the name has is
    /// checked by the guard (a name with any internal address is refused, so that which one is dialed
    /// never decides), unless `GIG_EGRESS_ALLOW_ADDRS` lists it.
    async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, Refusal> {
        let addrs: Vec<SocketAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
            vec![SocketAddr::new(ip, port)]
        } else if let Some(ip) = self.settings.resolve.lookup(host, port) {
            vec![SocketAddr::new(ip, port)]
        } else {
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| {
                    Refusal::new(
                        StatusCode::BAD_GATEWAY,
                        "resolve-failed",
                        format!("cannot resolve {host}: {e}"),
                    )
                })?
                .collect()
        };
        let first = *addrs.first().ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                "resolve-failed",
                format!("{host} has no address"),
            )
        })?;
        for addr in &addrs {
            if let Some(why) = crate::forbidden(addr.ip(), &self.settings.allow_addrs) {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "address-forbidden",
                    format!("{host} resolves to {}, {why}, which sandboxes may not reach", addr.ip()),
                ));
            }
        }
        Ok(first)
    }

    /// Dials the upstream over TLS (public roots plus `GIG_EGRESS_EXTRA_CA`) and starts an HTTP/1.1
    /// client connection on it, kept for the tunnel's requests.
    async fn dial(&self, host: &str, addr: SocketAddr) -> Result<(UpstreamSender, UpstreamConnection), Refusal> {
        let failed = |m: String| Refusal::new(StatusCode::BAD_GATEWAY, "upstream-failed", m);
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| failed(format!("{host} ({addr}) did not answer in time")))?
            .map_err(|e| failed(format!("cannot connect to {host} ({addr}): {e}")))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| failed(format!("{host} is not a valid TLS server name")))?;
        let tls = tokio::time::timeout(
            DIAL_TIMEOUT,
            tokio_rustls::TlsConnector::from(self.upstream_tls.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| failed(format!("TLS with {host} did not complete in time")))?
        .map_err(|e| failed(format!("TLS with {host} failed: {e}")))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| failed(format!("HTTP with {host} failed: {e}")))?;
        Ok((sender, connection))
    }

    /// Terminates the jail's TLS with the leaf for `host` (h2 or HTTP/1.1, as the client prefers).
    async fn accept_tls(
        &self,
        host: &str,
        stream: BufReader<TcpStream>,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<BufReader<TcpStream>>> {
        let leaf = self.ca.leaf(host).map_err(std::io::Error::other)?;
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(std::io::Error::other)?
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(FixedLeaf(leaf)));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config)).accept(stream).await
    }
}

/// The tunnel's one certificate, whatever name the client asks for: a mismatch is refused per request,
/// with a reason, rather than as a bare TLS failure.
#[derive(Debug)]
struct FixedLeaf(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for FixedLeaf {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A refusal for what failed inside the gateway (the store or the vault), not a decision.
fn internal(message: String) -> Refusal {
    Refusal::new(StatusCode::BAD_GATEWAY, "internal", message)
}

fn context(caller: &Caller) -> CallContext {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    CallContext::new(
        format!("egress-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        caller.tenant.profile.clone(),
    )
}

/// An open tunnel: requests inside it are checked, injected, forwarded on the one upstream connection and
/// scrubbed on the way back.
struct Tunnel {
    proxy: Arc<Proxy>,
    caller: Arc<Caller>,
    host: String,
    port: u16,
    sni: Option<String>,
    sni_matches: bool,
    declared: Vec<String>,
    credentials: Vec<gigmcp_types::credential::Credential>,
    granted: Vec<Granted>,
    /// The tunnel's upstream connections (HTTP/1.1: one request at a time each), all to the checked address.
    /// A request takes one that is free; when none is (h2 streams at once), it dials another, up to
    /// `MAX_STREAMS`, so that one stream's response never waits for another's to be read. Closed ones go.
    upstream: tokio::sync::Mutex<Vec<UpstreamSender>>,
    /// Where a connection dialed again goes to be driven by the tunnel's task.
    connections: tokio::sync::mpsc::UnboundedSender<UpstreamConnection>,
    addr: SocketAddr,
    activity: Arc<Activity>,
}

/// What one request's audit event says; recorded when the response body ends (or the request is refused).
struct RequestRecord {
    proxy: Arc<Proxy>,
    caller: Arc<Caller>,
    host: String,
    port: u16,
    method: String,
    path: String,
    status: u16,
    decision: &'static str,
    code: Option<&'static str>,
    reason: Option<String>,
    plugin: Option<String>,
    injected: Vec<String>,
    bytes_up: Arc<AtomicU64>,
    bytes_down: u64,
    started: Instant,
}

impl RequestRecord {
    fn record(&self) {
        self.proxy.record_after_yield(NewAuditEvent {
            kind: "egress.request".into(),
            actor: format!("server:{}", self.caller.tenant.server),
            profile: self.caller.tenant.profile.as_ref().map(|p| p.to_string()),
            server: Some(self.caller.tenant.server.to_string()),
            outcome: match self.decision {
                "allow" => Outcome::Ok,
                "deny" => Outcome::Deny,
                _ => Outcome::Error,
            },
            detail: json!({
                "host": self.host,
                "port": self.port,
                "method": self.method,
                "path": self.path,
                "status": self.status,
                "bytes_up": self.bytes_up.load(Ordering::Relaxed),
                "bytes_down": self.bytes_down,
                "decision": self.decision,
                "code": self.code,
                "reason": self.reason,
                "plugin": self.plugin,
                "credentials": self.injected,
                "duration_ms": self.started.elapsed().as_millis() as u64,
            }),
        });
    }
}

impl Tunnel {
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<OutBody>, Infallible> {
        let mut record = RequestRecord {
            proxy: self.proxy.clone(),
            caller: self.caller.clone(),
            host: self.host.clone(),
            port: self.port,
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            status: 0,
            decision: "allow",
            code: None,
            reason: None,
            plugin: None,
            injected: Vec::new(),
            bytes_up: Arc::default(),
            bytes_down: 0,
            started: Instant::now(),
        };
        let waiting = Waiting::new(&self.activity);
        let outcome = self.forward(request, &mut record).await;
        drop(waiting);
        match outcome {
            Ok(response) => Ok(response),
            Err(refusal) => {
                record.status = refusal.status.as_u16();
                record.decision = if refusal.status == StatusCode::BAD_GATEWAY {
                    "error"
                } else {
                    "deny"
                };
                record.code = Some(refusal.code);
                record.reason = Some(refusal.message.clone());
                record.plugin = refusal.plugin.clone();
                record.record();
                tracing::info!(server = %self.caller.tenant.server, host = self.host, code = refusal.code, "egress request refused: {}", refusal.message);
                Ok(refusal_response(&refusal))
            }
        }
    }

    /// The request path: checks, policy, injection, the upstream, the scrubbed response. One snapshot of
    /// the bound plugins and one request id serve every hook of the request.
    async fn forward(
        &self,
        request: Request<Incoming>,
        record: &mut RequestRecord,
    ) -> Result<Response<OutBody>, Refusal> {
        self.check_names(&request)?;
        let plugins = self.proxy.plugins.current();
        let ctx = context(&self.caller);
        self.request_allowed(&plugins, &ctx, &request).await?;
        let (mut parts, body) = request.into_parts();
        let query = parts.uri.query().map(str::to_owned);
        let found = inject::discover(&parts.headers, query.as_deref(), &self.credentials, |c| {
            c.spec.hosts.allows(&self.host, self.port)
        })
        .map_err(|wrong| {
            Refusal::new(
                StatusCode::FORBIDDEN,
                "placeholder-host-not-allowed",
                format!(
                    "the placeholder of credential {} may not be sent to {}:{}; add the host to the credential's --hosts",
                    wrong.credential, self.host, self.port
                ),
            )
        })?;
        let (query, injected) = self.inject(&plugins, &ctx, &mut parts, query, found).await?;
        record.injected = injected.iter().map(|i| i.credential.clone()).collect();
        if !injected.is_empty() {
            // The response must be readable to be scrubbed.
            parts
                .headers
                .insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        let path_and_query = match &query {
            Some(q) => format!("{}?{q}", parts.uri.path()),
            None => parts.uri.path().to_owned(),
        };
        parts.uri = path_and_query
            .parse()
            .map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "bad-request", "the request target is invalid"))?;
        strip_hop_by_hop(&mut parts.headers);
        to_http1(&mut parts, &self.host, self.port);
        let body = Counted {
            inner: body,
            count: record.bytes_up.clone(),
        };
        let response = self.send(Request::from_parts(parts, body)).await?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let scrubber = if injected.is_empty() {
            None
        } else {
            let scrubber = Scrubber::new(injected.into_iter().map(|i| (i.secret, i.placeholder)).collect());
            for value in parts.headers.values_mut() {
                let clean = scrubber.scrub_all(value.as_bytes());
                if clean != value.as_bytes() {
                    *value = HeaderValue::from_bytes(&clean).unwrap_or_else(|_| HeaderValue::from_static(""));
                }
            }
            // The body's length may change: it goes out chunked.
            parts.headers.remove(header::CONTENT_LENGTH);
            Some(scrubber)
        };
        record.status = parts.status.as_u16();
        let record = std::mem::replace(record, record.detached());
        Ok(Response::from_parts(
            parts,
            OutBody::Upstream {
                inner: body,
                scrubber,
                queued: None,
                record: Some(Box::new(record)),
                activity: self.activity.clone(),
            },
        ))
    }

    /// Invariant 3 (first half): the `Host` header and SNI must name the CONNECT host — no domain fronting.
    fn check_names(&self, request: &Request<Incoming>) -> Result<(), Refusal> {
        if !self.sni_matches {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "sni-mismatch",
                format!(
                    "TLS was opened for {:?} in a tunnel to {}; the names must match",
                    self.sni.as_deref().unwrap_or("(no name)"),
                    self.host
                ),
            ));
        }
        let host = request
            .headers()
            .get(header::HOST)
            .map(|h| h.to_str().unwrap_or("(not text)").to_owned());
        // An absolute-form target (`GET https://name/ HTTP/1.1`) names a host too: it must agree as well.
        let target = request.uri().authority().map(|a| a.to_string());
        if host.is_none() && target.is_none() {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "no-host",
                "the request has no Host header",
            ));
        }
        for authority in host.iter().chain(target.iter()) {
            if !host_matches(authority, &self.host, self.port) {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "host-mismatch",
                    format!(
                        "Host {authority:?} differs from the tunnel's host {}:{}",
                        self.host, self.port
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Asks the `egress-policy` plugins again, with the method and path.
    async fn request_allowed(
        &self,
        plugins: &PluginSet,
        ctx: &CallContext,
        request: &Request<Incoming>,
    ) -> Result<(), Refusal> {
        let egress = EgressRequest {
            server: self.caller.tenant.server.to_string(),
            host: self.host.clone(),
            port: self.port,
            http: Some(HttpRequestLine {
                method: request.method().to_string(),
                path: request.uri().path().to_owned(),
            }),
            declared: self.declared.clone(),
        };
        match plugins.egress_decide(ctx, &egress).await {
            EgressDecision::Allow { .. } => Ok(()),
            EgressDecision::Deny(reason) => Err(Refusal::denied(reason)),
        }
    }

    /// Asks the `credential-injector` plugins what to set, and applies it; returns the new query and the
    /// credentials that went in.
    async fn inject(
        &self,
        plugins: &PluginSet,
        ctx: &CallContext,
        parts: &mut http::request::Parts,
        query: Option<String>,
        found: inject::Found,
    ) -> Result<(Option<String>, Vec<inject::Injected>), Refusal> {
        if self.granted.is_empty() {
            return Ok((query, Vec::new()));
        }
        let outbound = OutboundRequest {
            server: self.caller.tenant.server.to_string(),
            method: parts.method.to_string(),
            host: self.host.clone(),
            port: self.port,
            path: parts.uri.path().to_owned(),
            header_names: parts.headers.keys().map(|k| k.as_str().to_owned()).collect(),
            placeholders: found.sites,
        };
        let ops = plugins
            .inject_credentials(ctx, &outbound, &inject::grants(&self.granted))
            .await
            .map_err(Refusal::denied)?;
        inject::apply(&ops, &mut parts.headers, query.as_deref(), &self.granted)
            .map_err(|m| Refusal::new(StatusCode::FORBIDDEN, "injection-refused", m))
    }

    /// Sends on the tunnel's upstream connection, dialing again if the upstream closed it.
    async fn send(&self, request: Request<Counted>) -> Result<Response<Incoming>, Refusal> {
        let failed = |m: String| Refusal::new(StatusCode::BAD_GATEWAY, "upstream-failed", m);
        let mut pool = self.upstream.lock().await;
        pool.retain(|sender| !sender.is_closed());
        if !pool.iter().any(|sender| sender.is_ready()) {
            // A connection whose last response was just read turns free once the tunnel's task drives it
            // again: let it, rather than dial a connection the tunnel does not need.
            tokio::task::yield_now().await;
        }
        let free = pool.iter().position(|sender| sender.is_ready());
        let index = match free {
            Some(index) => index,
            None if pool.len() < MAX_STREAMS as usize => {
                let (sender, connection) = self.proxy.dial(&self.host, self.addr).await?;
                // The tunnel's task drives it; if the tunnel is ending, so is this request.
                let _ = self.connections.send(connection);
                pool.push(sender);
                pool.len() - 1
            }
            // As many connections as streams, all busy: this request waits for the first.
            None => 0,
        };
        let sender = &mut pool[index];
        sender
            .ready()
            .await
            .map_err(|e| failed(format!("the connection to {} closed: {e}", self.host)))?;
        let response = sender.send_request(request);
        drop(pool);
        response
            .await
            .map_err(|e| failed(format!("{} did not answer: {e}", self.host)))
    }
}

impl RequestRecord {
    /// A copy that records nothing (what stays behind when the record moves into the response body).
    fn detached(&self) -> Self {
        Self {
            proxy: self.proxy.clone(),
            caller: self.caller.clone(),
            host: String::new(),
            port: 0,
            method: String::new(),
            path: String::new(),
            status: 0,
            decision: "allow",
            code: None,
            reason: None,
            plugin: None,
            injected: Vec::new(),
            bytes_up: Arc::default(),
            bytes_down: 0,
            started: self.started,
        }
    }
}

/// A request as the upstream's HTTP/1.1 connection takes it: an HTTP/2 request (from a jail that chose h2)
/// names its host in `:authority` only, and may split its cookies over several fields (RFC 9113, 8.2.3).
/// Requests over HTTP/1.1 are left as they are.
fn to_http1(parts: &mut http::request::Parts, host: &str, port: u16) {
    if parts.version != http::Version::HTTP_2 {
        return;
    }
    parts.version = http::Version::HTTP_11;
    if !parts.headers.contains_key(header::HOST) {
        // The authority was checked against the tunnel's host (`check_names`); without one, the tunnel's.
        let authority = if port == 443 {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        };
        if let Ok(value) = HeaderValue::from_str(&authority) {
            parts.headers.insert(header::HOST, value);
        }
    }
    let cookies: Vec<&[u8]> = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if cookies.len() > 1
        && let Ok(joined) = HeaderValue::from_bytes(&cookies.join(&b"; "[..]))
    {
        parts.headers.insert(header::COOKIE, joined);
    }
}

/// Whether a `Host` value names `host:port` (the port may be left out when it is 443).
fn host_matches(authority: &str, host: &str, port: u16) -> bool {
    let (name, given_port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
            (h, p.parse::<u16>().ok())
        }
        _ => (authority, None),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let name = match name.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => v6.to_string(),
        Err(_) => normalize_host(name),
    };
    name == host
        && match given_port {
            Some(p) => p == port,
            None => port == 443,
        }
}

/// Headers that describe one hop, not the message.
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .filter(|s| !s.is_empty())
        .collect();
    for name in listed {
        headers.remove(name.as_str());
    }
    for name in gigmcp_types::credential::HOP_BY_HOP_HEADERS {
        headers.remove(*name);
    }
}

fn refusal_response(refusal: &Refusal) -> Response<OutBody> {
    let body = format!("{}\n", refusal.message);
    let mut response = Response::new(OutBody::Full(Some(Bytes::from(body))));
    *response.status_mut() = refusal.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert("x-gigmcp-refused", HeaderValue::from_static(refusal.code));
    response
}

/// The request body on its way up, counted.
struct Counted {
    inner: Incoming,
    count: Arc<AtomicU64>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body to the jail: a refusal's text, or the upstream's body, scrubbed when secrets went into
/// the request, counted, and audited when it ends (or is dropped).
enum OutBody {
    Full(Option<Bytes>),
    Upstream {
        inner: Incoming,
        scrubber: Option<Scrubber>,
        /// The second piece of the last scrubbed chunk, sent on the next poll.
        queued: Option<Bytes>,
        record: Option<Box<RequestRecord>>,
        /// The tunnel's: a body still flowing keeps an HTTP/2 tunnel from being idle.
        activity: Arc<Activity>,
    },
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            OutBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            OutBody::Upstream {
                inner,
                scrubber,
                queued,
                record,
                activity,
            } => loop {
                if let Some(data) = queued.take() {
                    if let Some(r) = record {
                        r.bytes_down += data.len() as u64;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                match Pin::new(&mut *inner).poll_frame(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(Some(Ok(frame))) => {
                        activity.touch();
                        let frame = match frame.into_data() {
                            Ok(data) => match scrubber {
                                Some(s) => {
                                    let (held, rest) = s.push(data);
                                    if held.is_empty() {
                                        rest
                                    } else {
                                        *queued = (!rest.is_empty()).then_some(rest);
                                        held
                                    }
                                }
                                None => data,
                            },
                            // Trailers could carry a reflected secret too: dropped when scrubbing.
                            Err(frame) if scrubber.is_none() => return Poll::Ready(Some(Ok(frame))),
                            Err(_) => continue,
                        };
                        if frame.is_empty() {
                            continue;
                        }
                        if let Some(r) = record {
                            r.bytes_down += frame.len() as u64;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(frame))));
                    }
                    Poll::Ready(None) => {
                        let rest = scrubber.as_mut().map(Scrubber::finish).unwrap_or_default();
                        *scrubber = None;
                        if let Some(r) = record.take() {
                            let mut r = r;
                            r.bytes_down += rest.len() as u64;
                            r.record();
                        }
                        return Poll::Ready((!rest.is_empty()).then(|| Ok(Frame::data(rest))));
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OutBody::Full(bytes) => bytes.is_none(),
            OutBody::Upstream { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            OutBody::Full(None) => SizeHint::with_exact(0),
            OutBody::Upstream {
                inner, scrubber: None, ..
            } => inner.size_hint(),
            OutBody::Upstream { .. } => SizeHint::default(),
        }
    }
}

impl Drop for OutBody {
    fn drop(&mut self) {
        // A body dropped before its end (the jail went away, a HEAD request) is audited with what went.
        if let OutBody::Upstream { record: Some(r), .. } = self {
            r.record();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_h2_tunnel_is_idle_only_without_traffic_and_waiting_requests() {
        let activity = Activity::new();
        // A request waiting for its response head keeps the tunnel, however long the upstream takes.
        let waiting = Waiting::new(&activity);
        let idle = tokio::time::timeout(IDLE_TIMEOUT * 3, activity.idle()).await;
        assert!(idle.is_err(), "a tunnel with a waiting request went idle");
        drop(waiting);
        // Body frames keep it too.
        let started = tokio::time::Instant::now();
        let busy = async {
            for _ in 0..10 {
                tokio::time::sleep(IDLE_TIMEOUT / 4).await;
                activity.touch();
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            () = activity.idle() => {}
            () = busy => {}
        }
        let lasted = started.elapsed();
        assert!(
            lasted >= IDLE_TIMEOUT * 5 / 2,
            "went idle while frames flowed ({lasted:?})"
        );
        // Then nothing: idle within a check interval after IDLE_TIMEOUT.
        let started = tokio::time::Instant::now();
        activity.touch();
        activity.idle().await;
        let lasted = started.elapsed();
        assert!(
            lasted >= IDLE_TIMEOUT && lasted <= IDLE_TIMEOUT + IDLE_TIMEOUT / 8,
            "{lasted:?}"
        );
    }

    #[test]
    fn host_headers_must_name_the_connect_host() {
        assert!(host_matches("api.test.example", "api.test.example", 443));
        assert!(host_matches("API.test.example.:443", "api.test.example", 443));
        assert!(host_matches("api.test.example:8443", "api.test.example", 8443));
        assert!(!host_matches("api.test.example", "api.test.example", 8443));
        assert!(!host_matches("evil.example", "api.test.example", 443));
        assert!(!host_matches("api.test.example:444", "api.test.example", 443));
        assert!(!host_matches("api.test.example.evil", "api.test.example", 443));
        assert!(host_matches("[::1]:443", "::1", 443));
        assert!(host_matches("198.51.100.2", "198.51.100.2", 443));
    }

    #[test]
    fn connect_targets_parse() {
        assert_eq!(
            parse_authority("API.example.com.:443"),
            Some(("api.example.com".into(), 443))
        );
        assert_eq!(parse_authority("[::1]:8443"), Some(("::1".into(), 8443)));
        assert_eq!(parse_authority("example.com"), None);
        assert_eq!(parse_authority("example.com:0"), None);
        assert_eq!(parse_authority("exa mple.com:443"), None);
        assert_eq!(parse_authority("[zz]:443"), None);
        assert_eq!(parse_authority(":443"), None);
    }
}
