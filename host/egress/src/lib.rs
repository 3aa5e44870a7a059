//! The egress proxy: the only way out of a sandbox. See README.md beside this file for what was decided and
//! why.
//!
//! This crate owns the CONNECT proxy (one listener per sandbox, its tunnels), the gateway CA and its leaf
//! certificates, the dial guard, credential injection into requests and the scrubbing of responses, and the
//! `GIG_EGRESS_*` settings. It may depend on `gigmcp-types`, `gigmcp-store`, `gigmcp-vault`,
//! `gigmcp-sandbox` (its `EgressPort` interface only: the trait and the `Tenant` it hands over),
//! `gigmcp-plugin-runtime` and `gigmcp-audit`; it must never depend on `gigmcp-mcp`, `gigmcp-ops`,
//! `gigmcp-control` or the `gigmcp` binary (they sit above it: the binary starts the proxy).
//!
//! In short, for an outbound HTTPS request from a jail:
//! 1. the jail connects to the proxy on its own host-side address, where a listener serves that sandbox
//!    alone (`open`), so the caller is known by where it connected and checked by its source address;
//! 2. `CONNECT host:port` is asked of the `egress-policy` plugins, the name resolved, the resolved address
//!    checked by the dial guard (`guard.rs`), the upstream dialed over TLS (`tunnel/connect.rs`);
//! 3. the proxy terminates the jail's TLS with a leaf for that host signed by the gateway CA (`ca.rs`) and
//!    serves HTTP/1.1 or h2 inside (the client's choice); each request is checked (Host and SNI equal the
//!    CONNECT host; policy again with method and path), its placeholders found and the
//!    `credential-injector` plugins' operations applied, secrets substituted only for hosts their
//!    credential allows (`inject.rs`);
//! 4. the response comes back scrubbed of every secret injected into its request (`scrub.rs`), and one
//!    audit event is recorded per request.

#![forbid(unsafe_code)]

mod accounts;
mod ca;
mod guard;
mod inject;
pub mod scrub;
pub mod settings;
mod tunnel;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use thiserror::Error;
use tokio::sync::Semaphore;

pub use accounts::{AccountError, AccountTokens, TokenFuture};
pub use ca::{GatewayCa, Lru};
pub use guard::{Cidr, forbidden};
pub use settings::{EgressSettings, Resolve};

use gigmcp_audit::AuditLog;
use gigmcp_plugin_runtime::PluginHost;
use gigmcp_sandbox::{EgressPort, Tenant};
use gigmcp_store::Store;
use gigmcp_types::audit::NewAuditEvent;
use gigmcp_vault::Vault;

#[derive(Debug, Error)]
pub enum EgressError {
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    #[error("cannot write the egress CA certificate to {path}: {source}")]
    CaFile { path: String, source: std::io::Error },
    #[error("cannot set up TLS for upstreams: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot start the egress proxy's threads: {0}")]
    Workers(std::io::Error),
}

/// The proxy's threads: one per CPU, at most this many.
const MAX_WORKERS: usize = 8;

/// The proxy: shared by every sandbox's listener.
pub struct Proxy {
    settings: EgressSettings,
    ca: GatewayCa,
    ca_file: PathBuf,
    upstream_tls: Arc<rustls::ClientConfig>,
    plugins: Arc<PluginHost>,
    store: Arc<Store>,
    vault: Arc<Vault>,
    audit: Option<AuditLog>,
    /// Connected accounts' tokens, for oauth2 credentials (none: such credentials are refused).
    accounts: Option<Arc<dyn AccountTokens>>,
    workers: Workers,
}

/// The proxy's own threads, each a single-threaded runtime: a sandbox's listener and all its tunnels run on
/// one of them (assigned in turn), so that a tunnel's I/O never wakes another thread. On the gateway's
/// shared multi-threaded runtime, every event of a download woke an idle worker: a kept-alive request paid
/// about 0.1 ms more and a download about a tenth more CPU (`gigmcp-bench egress`).
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    next: std::sync::atomic::AtomicUsize,
    /// Dropped with the proxy: each thread then ends its runtime.
    _stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Workers {
    fn start(count: usize) -> std::io::Result<Self> {
        let mut handles = Vec::with_capacity(count);
        let mut stops = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("gigmcp-egress-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(stopped);
                })?;
        }
        Ok(Self {
            handles,
            next: std::sync::atomic::AtomicUsize::new(0),
            _stop: stops,
        })
    }

    fn pick(&self) -> &tokio::runtime::Handle {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.handles[i % self.handles.len()]
    }
}

/// A CONNECT decision's key: (host, port, the server's declared hosts), so a changed egress list is asked
/// about afresh.
pub(crate) type AllowKey = (String, u16, Vec<String>);

/// One sandbox as the proxy knows it: whom it runs for, where it connects from, its open tunnels, and the
/// CONNECT decisions plugins allowed to be reused.
pub(crate) struct Caller {
    pub tenant: Tenant,
    pub jail: Ipv4Addr,
    pub tunnels: Arc<Semaphore>,
    pub allowed: Mutex<HashMap<AllowKey, Instant>>,
}

impl Proxy {
    /// Loads (or makes, on first start) the gateway CA, writes its certificate where jails get it from,
    /// and prepares the upstream TLS client (public roots plus `GIG_EGRESS_EXTRA_CA`).
    pub fn start(
        settings: EgressSettings,
        store: Arc<Store>,
        vault: Arc<Vault>,
        plugins: Arc<PluginHost>,
        audit: Option<AuditLog>,
        accounts: Option<Arc<dyn AccountTokens>>,
        instance: &str,
    ) -> Result<Arc<Self>, EgressError> {
        let ca = GatewayCa::load_or_create(&vault)?;
        let ca_file = write_ca_file(instance, ca.cert_pem())?;
        let mut upstream_tls = upstream_tls(&settings)?;
        upstream_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
        let workers = Workers::start(threads).map_err(EgressError::Workers)?;
        Ok(Arc::new(Self {
            settings,
            ca,
            ca_file,
            upstream_tls: Arc::new(upstream_tls),
            plugins,
            store,
            vault,
            audit,
            accounts,
            workers,
        }))
    }

    /// The CA certificate (PEM) jails trust.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    pub(crate) fn record(&self, event: NewAuditEvent) {
        if let Some(audit) = &self.audit {
            audit.record(event);
        }
    }

    /// Records `event` once the current task yields, when the response it describes has gone out: handing it
    /// to the audit writer wakes another thread, which on a busy CPU would otherwise run before the last
    /// bytes of the response are written.
    pub(crate) fn record_after_yield(self: &Arc<Self>, event: NewAuditEvent) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let proxy = self.clone();
                runtime.spawn(async move { proxy.record(event) });
            }
            Err(_) => self.record(event),
        }
    }
}

impl Drop for Proxy {
    /// The CA file goes with the gateway (jails still running keep their bind mount of it).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
        if let Some(dir) = self.ca_file.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The TLS client settings for upstreams and every other call the gateway makes out (OAuth providers): the
/// public roots plus `GIG_EGRESS_EXTRA_CA`.
pub fn upstream_tls(settings: &EgressSettings) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &settings.extra_roots {
        roots.add(cert.clone())?;
    }
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The CA certificate, in a directory a sandbox uid can traverse (bubblewrap mounts it as that uid; the
/// data directory is usually private). Public material only; the directory and file belong to the gateway.
fn write_ca_file(instance: &str, pem: &str) -> Result<PathBuf, EgressError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = std::env::temp_dir().join(format!("gigmcp-egress-{instance}"));
    let fail = |source: std::io::Error| EgressError::CaFile {
        path: dir.display().to_string(),
        source,
    };
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(&dir).map_err(fail)?;
            // A directory someone else made (or a link) must not be trusted: they could swap the file.
            let own_uid = std::fs::metadata("/proc/self").map_err(fail)?.uid();
            if !meta.is_dir() || meta.uid() != own_uid || meta.mode() & 0o022 != 0 {
                return Err(fail(std::io::Error::other(
                    "it exists and is not a directory owned and writable only by the gateway's user",
                )));
            }
        }
        Err(e) => return Err(fail(e)),
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(fail)?;
    let file = dir.join("ca.pem");
    let tmp = dir.join("ca.pem.tmp");
    std::fs::write(&tmp, pem).map_err(fail)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(fail)?;
    std::fs::rename(&tmp, &file).map_err(fail)?;
    Ok(file)
}

/// A sandbox's listener; dropping it stops accepting and ends the sandbox's tunnels.
struct Listening {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EgressPort for Proxy {
    fn open(
        self: Arc<Self>,
        at: SocketAddrV4,
        jail: Ipv4Addr,
        tenant: Tenant,
    ) -> std::io::Result<Box<dyn std::any::Any + Send + Sync>> {
        let worker = self.workers.pick().clone();
        // The listener is registered with its worker's runtime, where its tunnels will run.
        let _entered = worker.enter();
        let socket = tokio::net::TcpSocket::new_v4()?;
        // A previous sandbox of this slot may leave connections in TIME_WAIT on the same address.
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::V4(at))?;
        let listener = socket.listen(256)?;
        let caller = Arc::new(Caller {
            tenant,
            jail,
            tunnels: Arc::new(Semaphore::new(self.settings.max_tunnels)),
            allowed: Mutex::default(),
        });
        let task = worker.spawn(accept(self, listener, caller));
        Ok(Box::new(Listening { task }))
    }

    fn ca_file(&self) -> &Path {
        &self.ca_file
    }
}

/// Accepts the sandbox's connections; each is a tunnel task, aborted with this one.
async fn accept(proxy: Arc<Proxy>, listener: tokio::net::TcpListener, caller: Arc<Caller>) {
    let mut tunnels = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tunnels.spawn(tunnel::serve(proxy.clone(), caller.clone(), stream, peer));
                }
                Err(e) => {
                    tracing::warn!(server = %caller.tenant.server, "egress proxy cannot accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = tunnels.join_next(), if !tunnels.is_empty() => {}
        }
    }
}
