//! One request inside a tunnel, in order: `Tunnel::handle` (the audit record, refusals) and `forward` (Host
//! and SNI, policy with method and path, placeholders, injection, the upstream, the scrubbed response head).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::MAX_STREAMS;
use super::activity::{Activity, Waiting};
use super::body::{Counted, OutBody};
use super::connect::{Refusal, UpstreamConnection, UpstreamSender, context};
use super::record::RequestRecord;
use crate::inject;
use crate::inject::Granted;
use crate::scrub::Scrubber;
use crate::settings::normalize_host;
use crate::{Caller, Proxy};
use gigmcp_plugin_runtime::PluginSet;
use gigmcp_types::policy::{CallContext, EgressDecision, EgressRequest, HttpRequestLine, OutboundRequest};

/// An open tunnel: requests inside it are checked, injected, forwarded on the one upstream connection and
/// scrubbed on the way back.
pub(super) struct Tunnel {
    pub(super) proxy: Arc<Proxy>,
    pub(super) caller: Arc<Caller>,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) sni: Option<String>,
    pub(super) sni_matches: bool,
    pub(super) declared: Vec<String>,
    pub(super) credentials: Vec<gigmcp_types::credential::Credential>,
    pub(super) granted: Vec<Granted>,
    /// The oauth2 credentials this host may carry, and whose connected accounts they are.
    pub(super) accounts: Vec<gigmcp_types::credential::Credential>,
    pub(super) owner: gigmcp_types::oauth::Owner,
    /// The tunnel's upstream connections (HTTP/1.1: one request at a time each), all to the checked address.
    /// A request takes one that is free; when none is (h2 streams at once), it dials another, up to
    /// `MAX_STREAMS`, so that one stream's response never waits for another's to be read. Closed ones go.
    pub(super) upstream: tokio::sync::Mutex<Vec<UpstreamSender>>,
    /// Where a connection dialed again goes to be driven by the tunnel's task.
    pub(super) connections: tokio::sync::mpsc::UnboundedSender<UpstreamConnection>,
    pub(super) addr: SocketAddr,
    pub(super) activity: Arc<Activity>,
}

impl Tunnel {
    pub(super) async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Result<Response<OutBody>, Infallible> {
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
            accounts: Vec::new(),
            bytes_up: Arc::default(),
            bytes_down: 0,
            started: Instant::now(),
        };
        let waiting = Waiting::new(&self.activity);
        let outcome = self.forward(request, &mut record).await;
        drop(waiting);
        match outcome {
            // The record moves into the response body, which records it when it ends or is dropped.
            Ok((response, scrubber)) => Ok(response.map(|inner| OutBody::Upstream {
                inner,
                scrubber,
                queued: None,
                record: Some(Box::new(record)),
                activity: self.activity.clone(),
            })),
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

    /// The request path: checks, policy, injection, the upstream, the scrubbed response (its head, and the
    /// scrubber for its body, which `handle` wraps with the record). One snapshot of the bound plugins and one
    /// request id serve every hook of the request.
    async fn forward(
        &self,
        request: Request<Incoming>,
        record: &mut RequestRecord,
    ) -> Result<(Response<Incoming>, Option<Scrubber>), Refusal> {
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
        let (query, injected) = self.inject(&plugins, &ctx, &mut parts, query, found, record).await?;
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
        Ok((Response::from_parts(parts, body), scrubber))
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
        record: &mut RequestRecord,
    ) -> Result<(Option<String>, Vec<inject::Injected>), Refusal> {
        let granted = self.account_tokens(&found, record).await?;
        let granted: &[Granted] = match &granted {
            Some(granted) => granted,
            None => &self.granted,
        };
        if granted.is_empty() {
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
            .inject_credentials(ctx, &outbound, &inject::grants(granted))
            .await
            .map_err(Refusal::denied)?;
        inject::apply(&ops, &mut parts.headers, query.as_deref(), granted)
            .map_err(|m| Refusal::new(StatusCode::FORBIDDEN, "injection-refused", m))
    }

    /// The tunnel's grants plus a fresh access token for each connected-account credential whose placeholder
    /// this request carries (`None` when it carries none: the tunnel's grants serve as they are). Asked per
    /// request, so a kept-alive tunnel never sends an expired token. No token, no request: the refusal says
    /// which account to connect.
    async fn account_tokens(
        &self,
        found: &inject::Found,
        record: &mut RequestRecord,
    ) -> Result<Option<Vec<Granted>>, Refusal> {
        let used: Vec<&gigmcp_types::credential::Credential> = self
            .accounts
            .iter()
            .filter(|c| found.sites.iter().any(|s| s.credential == c.spec.name.as_str()))
            .collect();
        if used.is_empty() {
            return Ok(None);
        }
        let mut granted = self.granted.clone();
        for credential in used {
            let gigmcp_types::credential::CredentialSource::Account(vendor) = &credential.source else {
                continue;
            };
            let Some(accounts) = &self.proxy.accounts else {
                return Err(Refusal::new(
                    StatusCode::FORBIDDEN,
                    "account-no-app",
                    format!(
                        "credential {} is a connected account, and this gateway has none",
                        credential.spec.name
                    ),
                ));
            };
            let token = accounts.access_token(self.owner, vendor.clone()).await.map_err(|e| {
                let status = if e.code == "account-refresh-failed" {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::FORBIDDEN
                };
                Refusal::new(status, e.code, e.message)
            })?;
            record.accounts.push(serde_json::json!({
                "credential": credential.spec.name.as_str(),
                "vendor": vendor.as_str(),
                "owner": self.owner.to_json(),
            }));
            granted.push(Granted {
                credential: credential.clone(),
                secret: Arc::new(token),
            });
        }
        Ok(Some(granted))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
