//! The CONNECT, in order: `read_head` (bounded, with a deadline), `open` (policy, resolution, the guard,
//! the secrets, the dial: the `Proxy` steps below, in the order they run), then `Proxy::accept_tls`. A
//! refusal is answered and audited by `refuse_connect`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::StatusCode;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::body::Counted;
use crate::inject::Granted;
use crate::settings::normalize_host;
use crate::{Caller, Proxy};
use gigmcp_types::audit::{NewAuditEvent, Outcome};
use gigmcp_types::credential::{Credential, CredentialSource};
use gigmcp_types::oauth::Owner;
use gigmcp_types::policy::{CallContext, DenyReason, EgressDecision, EgressRequest};
use gigmcp_types::sync::lock;

/// The CONNECT request's head may be this long at most.
const MAX_HEAD: usize = 16 * 1024;
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a CONNECT was refused (or, in `request.rs`, a request inside the tunnel): the status, a code for the
/// audit log, and what the jail is told.
pub(super) struct Refusal {
    pub(super) status: StatusCode,
    pub(super) code: &'static str,
    pub(super) message: String,
    pub(super) plugin: Option<String>,
}

impl Refusal {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            plugin: None,
        }
    }

    pub(super) fn denied(reason: DenyReason) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "policy-denied",
            message: reason.to_string(),
            plugin: reason.plugin,
        }
    }
}

/// Reads `CONNECT host:port HTTP/1.1` and its headers; anything else is refused with a reason.
pub(super) async fn read_head(stream: &mut BufReader<TcpStream>) -> Result<(String, u16), Refusal> {
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
fn parse_authority(target: &str) -> Option<(String, u16)> {
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

pub(super) async fn refuse_connect(
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

pub(super) type UpstreamSender = hyper::client::conn::http1::SendRequest<Counted>;
pub(super) type UpstreamConnection =
    hyper::client::conn::http1::Connection<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>, Counted>;

/// What a CONNECT opens: the upstream connection and what the tunnel's requests need.
pub(super) struct Opened {
    pub(super) upstream: UpstreamSender,
    pub(super) connection: UpstreamConnection,
    pub(super) addr: SocketAddr,
    pub(super) declared: Vec<String>,
    pub(super) credentials: Vec<gigmcp_types::credential::Credential>,
    pub(super) granted: Vec<Granted>,
    /// The oauth2 credentials the host allows: their tokens are fetched per request.
    pub(super) accounts: Vec<Credential>,
    /// Whose connected accounts they are: the profile's owner, or the operator.
    pub(super) owner: Owner,
}

/// Policy, resolution, the guard, the secrets and the dial, in that order: nothing is dialed that policy or the
/// guard refused, and no secret is decrypted for a CONNECT they refused.
pub(super) async fn open(proxy: &Arc<Proxy>, caller: &Caller, host: &str, port: u16) -> Result<Opened, Refusal> {
    let (declared, credentials, owner) = proxy.caller_state(caller).await?;
    proxy.connect_allowed(caller, host, port, &declared).await?;
    let addr = proxy.resolve(host, port).await?;
    let (granted, accounts) = proxy.grant(&credentials, host, port).await?;
    let (upstream, connection) = proxy.dial(host, addr).await?;
    Ok(Opened {
        upstream,
        connection,
        addr,
        declared,
        credentials,
        granted,
        accounts,
        owner,
    })
}

/// The CONNECT-time steps, in order: the caller's state, policy, resolution and the guard, the secrets, the
/// dial (all from `open`), then the jail's TLS (from `serve`).
impl Proxy {
    /// The server's declared hosts, its credentials (no secret: nothing is decrypted here) and whose connected
    /// accounts its oauth2 credentials use (the profile's owner; the operator's for a profile without one).
    async fn caller_state(&self, caller: &Caller) -> Result<(Vec<String>, Vec<Credential>, Owner), Refusal> {
        let (store, tenant) = (self.store.clone(), caller.tenant.clone());
        tokio::task::spawn_blocking(move || {
            let declared = store
                .server(&tenant.server)
                .map(|def| def.spec.egress().to_vec())
                .map_err(|e| internal(format!("cannot read the server's definition: {e}")))?;
            let credentials = store
                .effective_credentials(&tenant.server, tenant.profile.as_ref())
                .map_err(|e| internal(format!("cannot read the server's credentials: {e}")))?;
            let owner = match &tenant.profile {
                Some(slug)
                    if credentials
                        .iter()
                        .any(|c| matches!(c.source, CredentialSource::Account(_))) =>
                {
                    store
                        .profile(slug)
                        .map_err(|e| internal(format!("cannot read the profile: {e}")))?
                        .owner
                        .map_or(Owner::Operator, Owner::User)
                }
                _ => Owner::Operator,
            };
            Ok((declared, credentials, owner))
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
        if let Some(until) = lock(&caller.allowed).get(&key)
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
                    let mut allowed = lock(&caller.allowed);
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

    /// The secrets of the credentials `host:port` may carry: decrypted only once policy and the guard allowed
    /// the CONNECT. Connected accounts' credentials come back apart: their tokens are asked for per request.
    async fn grant(
        &self,
        credentials: &[Credential],
        host: &str,
        port: u16,
    ) -> Result<(Vec<Granted>, Vec<Credential>), Refusal> {
        let (accounts, allowed): (Vec<Credential>, Vec<Credential>) = credentials
            .iter()
            .filter(|c| c.spec.hosts.allows(host, port))
            .cloned()
            .partition(|c| matches!(c.source, CredentialSource::Account(_)));
        if allowed.is_empty() {
            return Ok((Vec::new(), accounts));
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
                .collect::<Result<Vec<Granted>, Refusal>>()
                .map(|granted| (granted, accounts))
        })
        .await
        .map_err(|e| internal(e.to_string()))?
    }

    /// Dials the upstream over TLS (public roots plus `GIG_EGRESS_EXTRA_CA`) and starts an HTTP/1.1
    /// client connection on it, kept for the tunnel's requests.
    pub(super) async fn dial(
        &self,
        host: &str,
        addr: SocketAddr,
    ) -> Result<(UpstreamSender, UpstreamConnection), Refusal> {
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
    pub(super) async fn accept_tls(
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

pub(super) fn context(caller: &Caller) -> CallContext {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    CallContext::new(
        format!("egress-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        caller.tenant.profile.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
