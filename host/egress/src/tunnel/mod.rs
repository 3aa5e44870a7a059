//! One connection from a jail: the CONNECT, then the HTTP requests inside the tunnel. `serve`, below, is the
//! entry point and reads in the order things happen (source check, CONNECT head, tunnel cap, the CONNECT's
//! steps, TLS with the jail, then the requests). The files read in the order events happen too:
//! `connect.rs` (the CONNECT head, policy, resolution, guard, secrets, dial, TLS both ways) → `request.rs`
//! (`Tunnel::handle` / `forward`: Host and SNI, policy with method and path, placeholders, injection, the
//! upstream) → `body.rs` (the request body counted on its way up, the response's scrubbed on its way back)
//! → `record.rs` (one audit event per request); `activity.rs` keeps an HTTP/2 tunnel's idleness.

// In the order events happen (not by name):
// the CONNECT, up to TLS with the jail and the upstream;
mod connect;
// each request inside the tunnel;
mod request;
// its bodies, up and down;
mod body;
// its audit event;
mod record;
// and, beside them, an HTTP/2 tunnel's idleness.
mod activity;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::settings::normalize_host;
use crate::{Caller, Proxy};
use activity::Activity;
use connect::{Refusal, UpstreamConnection, open, read_head, refuse_connect};
use request::Tunnel;

/// How long a jail may take to send its CONNECT (and then its TLS handshake).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a tunnel may wait for (the headers of) its next request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Concurrent HTTP/2 streams in one tunnel, and so upstream connections (HTTP/1.1, one request at a time).
const MAX_STREAMS: u32 = 32;

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
        accounts: opened.accounts,
        owner: opened.owner,
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
