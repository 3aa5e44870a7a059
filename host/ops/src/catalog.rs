//! The catalog as the gateway holds it: fetched from `GIG_REGISTRY_INDEX_URL` (`https://` or `file://`),
//! verified against `GIG_REGISTRY_PUBKEY` over the raw bytes before anything is parsed, accepted only if it
//! does not roll back (`gigmcp_store::catalog`), and kept in the database, so that the listing and installs
//! work while the registry is unreachable.
//!
//! A stored index is verified again with the configured key whenever it is read: after a key change, an index
//! signed by the old key is no longer trusted.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use thiserror::Error;

use gigmcp_catalog::index::{MAX_INDEX_BYTES, format_generated};
use gigmcp_catalog::{Index, IndexError, PublicKey};
use gigmcp_store::catalog::{Accepted, CatalogStoreError, NewIndex};
use gigmcp_store::{Store, StoreError};
use gigmcp_types::report::error_chain;

/// A fetch of the index or its signature gives up after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the index comes from and who must have signed it.
#[derive(Debug, Clone)]
pub struct CatalogSource {
    pub url: IndexUrl,
    pub key: PublicKey,
    /// Extra trusted roots (PEM) for an `https://` index served under a private CA.
    pub extra_roots_pem: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexUrl {
    File(PathBuf),
    Https(String),
}

impl IndexUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err("a file:// URL needs an absolute path, like file:///srv/catalog/index.json".into());
            }
            Ok(Self::File(PathBuf::from(path)))
        } else if text.starts_with("https://") {
            let url = url::Url::parse(text).map_err(|e| format!("not a URL: {e}"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err("the URL has no host".into());
            }
            Ok(Self::Https(text.to_owned()))
        } else {
            Err("must be an https:// or file:// URL of index.json".into())
        }
    }

    /// The signature's location: the index's URL followed by `.sig`, as the original's.
    fn signature(&self) -> Self {
        match self {
            Self::File(path) => {
                let mut name = path.as_os_str().to_owned();
                name.push(".sig");
                Self::File(PathBuf::from(name))
            }
            Self::Https(url) => Self::Https(format!("{url}.sig")),
        }
    }
}

impl std::fmt::Display for IndexUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "file://{}", path.display()),
            Self::Https(url) => f.write_str(url),
        }
    }
}

#[derive(Debug, Error)]
pub enum CatalogError {
    #[error(
        "no catalog is configured: set GIG_REGISTRY_INDEX_URL (https:// or file:// URL of index.json) and \
         GIG_REGISTRY_PUBKEY (the registry's Ed25519 public key, 64 hex characters)"
    )]
    NotConfigured,
    #[error("no catalog index has been accepted yet: {0}")]
    NoIndex(String),
    #[error("cannot fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{url}: {source}")]
    Index { url: String, source: IndexError },
    #[error(
        "{url}: refused a rollback: the index was generated at {offered}, before the one already accepted \
         ({accepted})"
    )]
    Older {
        url: String,
        offered: String,
        accepted: String,
    },
    #[error(
        "{url}: refused a rollback: the index has the generated time of the one already accepted ({generated}) \
         but other bytes"
    )]
    SameTimeOtherBytes { url: String, generated: String },
    #[error("the stored catalog index is no longer trusted ({0}); fetch a new one with `gigmcp catalog refresh`")]
    StoredUntrusted(IndexError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a refresh did.
pub struct Refreshed {
    pub index: Arc<Index>,
    pub accepted: Accepted,
    pub source: String,
}

/// The catalog of one gateway or CLI run: its source and the last index read, parsed once per accepted index.
pub struct Catalog {
    source: Option<CatalogSource>,
    /// For an `https://` source only.
    http: Option<reqwest::Client>,
    /// The SHA-256 of the stored index and its parse.
    parsed: Mutex<Option<(String, Arc<Index>)>>,
}

impl Catalog {
    pub fn new(source: Option<CatalogSource>) -> Result<Self, CatalogError> {
        let http = match &source {
            Some(
                source @ CatalogSource {
                    url: IndexUrl::Https(_),
                    ..
                },
            ) => Some(https_client(source)?),
            _ => None,
        };
        Ok(Self {
            source,
            http,
            parsed: Mutex::new(None),
        })
    }

    pub fn source(&self) -> Option<&CatalogSource> {
        self.source.as_ref()
    }

    /// Fetches the index and its signature, verifies, parses and checks it, and stores it unless it would
    /// roll back. Any failure leaves the stored index as it was.
    pub async fn refresh(&self, store: &Store) -> Result<Refreshed, CatalogError> {
        let source = self.source.as_ref().ok_or(CatalogError::NotConfigured)?;
        let url = source.url.to_string();
        let raw = self.fetch(&source.url).await?;
        let signature_bytes = self.fetch(&source.url.signature()).await?;
        let signature = String::from_utf8_lossy(&signature_bytes).into_owned();
        let index = Index::open(&raw, &signature, &source.key).map_err(|source| CatalogError::Index {
            url: url.clone(),
            source,
        })?;
        let sha256 = hex::encode(Sha256::digest(&raw));
        let accepted = store
            .catalog_accept(&NewIndex {
                raw: &raw,
                signature: &signature,
                public_key: &source.key.to_hex(),
                generated: index.generated_unix(),
                sha256: &sha256,
                source: &url,
            })
            .map_err(|error| match error {
                CatalogStoreError::Older { offered, accepted } => CatalogError::Older {
                    url: url.clone(),
                    offered: format_generated(offered),
                    accepted: format_generated(accepted),
                },
                CatalogStoreError::SameTimeOtherBytes { generated } => CatalogError::SameTimeOtherBytes {
                    url: url.clone(),
                    generated: format_generated(generated),
                },
                CatalogStoreError::Store(error) => CatalogError::Store(error),
            })?;
        let index = Arc::new(index);
        *self.parsed.lock().unwrap_or_else(|e| e.into_inner()) = Some((sha256, index.clone()));
        Ok(Refreshed {
            index,
            accepted,
            source: url,
        })
    }

    /// The index accepted last, verified again: with the configured key, or without configuration (a CLI
    /// run beside a gateway that has it) with the key it was accepted under.
    pub fn current(&self, store: &Store) -> Result<Arc<Index>, CatalogError> {
        let missing = || match &self.source {
            Some(source) => CatalogError::NoIndex(format!(
                "the gateway fetches {} at start-up; `gigmcp catalog refresh` fetches it now",
                source.url
            )),
            None => CatalogError::NotConfigured,
        };
        // The index's bytes (up to 32 MiB) are read only when they changed since they were last parsed.
        let (sha256, _) = store.catalog_index_head()?.ok_or_else(missing)?;
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((parsed_sha256, index)) = parsed.as_ref()
            && *parsed_sha256 == sha256
        {
            return Ok(index.clone());
        }
        let stored = store.catalog_index()?.ok_or_else(missing)?;
        let key = match &self.source {
            Some(source) => source.key,
            None => PublicKey::parse(&stored.public_key)
                .map_err(|e| CatalogError::StoredUntrusted(IndexError::Invalid(e.to_string())))?,
        };
        let index = Arc::new(Index::open(&stored.raw, &stored.signature, &key).map_err(CatalogError::StoredUntrusted)?);
        *parsed = Some((stored.sha256, index.clone()));
        Ok(index)
    }

    /// The source of the index in use: the configured URL, or the one the stored index came from.
    pub fn source_url(&self, store: &Store) -> String {
        match &self.source {
            Some(source) => source.url.to_string(),
            None => store
                .catalog_index_head()
                .ok()
                .flatten()
                .map(|(_, source)| source)
                .unwrap_or_default(),
        }
    }

    async fn fetch(&self, url: &IndexUrl) -> Result<Vec<u8>, CatalogError> {
        let failed = |reason: String| CatalogError::Fetch {
            url: url.to_string(),
            reason,
        };
        match url {
            IndexUrl::File(path) => {
                use tokio::io::AsyncReadExt;
                let file = tokio::fs::File::open(path).await.map_err(|e| failed(e.to_string()))?;
                let mut body = Vec::new();
                file.take(MAX_INDEX_BYTES as u64 + 1)
                    .read_to_end(&mut body)
                    .await
                    .map_err(|e| failed(e.to_string()))?;
                if body.len() > MAX_INDEX_BYTES {
                    return Err(failed(format!("larger than {} MiB", MAX_INDEX_BYTES >> 20)));
                }
                Ok(body)
            }
            IndexUrl::Https(address) => {
                let http = self
                    .http
                    .as_ref()
                    .ok_or_else(|| failed("no HTTPS client was made for it".into()))?;
                let response = http.get(address).send().await.map_err(|e| failed(error_chain(&e)))?;
                if response.status() != reqwest::StatusCode::OK {
                    return Err(failed(format!("the server answered {}, not 200", response.status())));
                }
                let mut body = Vec::new();
                let mut stream = response.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| failed(error_chain(&e)))?;
                    if body.len() + chunk.len() > MAX_INDEX_BYTES {
                        return Err(failed(format!("larger than {} MiB", MAX_INDEX_BYTES >> 20)));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            }
        }
    }
}

/// The client of an `https://` registry: redirects only to https (at most 5), `GIG_REGISTRY_CA_FILE` trusted.
fn https_client(source: &CatalogSource) -> Result<reqwest::Client, CatalogError> {
    let mut http = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().scheme() != "https" {
                attempt.error("the registry redirected to a URL that is not https")
            } else if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else {
                attempt.follow()
            }
        }));
    if let Some(pem) = &source.extra_roots_pem {
        let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| CatalogError::Fetch {
            url: "GIG_REGISTRY_CA_FILE".into(),
            reason: e.to_string(),
        })?;
        for certificate in certificates {
            http = http.add_root_certificate(certificate);
        }
    }
    http.build().map_err(|e| CatalogError::Fetch {
        url: source.url.to_string(),
        reason: e.to_string(),
    })
}

/// Fetches the index at start and then every `every`, for as long as the gateway runs. A newly accepted index
/// and every refused one (a bad signature, a rollback, a malformed index) are audited as `catalog.refresh`;
/// an unreachable registry is only logged (the stored index stays in use).
/// `installs` (`GIG_INSTALL`) are installed, with consent, once the first fetch is done (from the index
/// accepted before if the registry does not answer).
pub async fn keep_fresh(
    catalog: Arc<Catalog>,
    store: Arc<Store>,
    audit: gigmcp_audit::AuditLog,
    every: Duration,
    installs: Installs,
) {
    use gigmcp_types::audit::{NewAuditEvent, Outcome};
    if catalog.source.is_none() {
        return;
    }
    let mut ticks = tokio::time::interval(every);
    let mut installs = Some(installs);
    loop {
        ticks.tick().await;
        let refreshed = catalog.refresh(&store).await;
        if let Some(installs) = installs.take() {
            // Off the runtime: a static-binary entry is pulled from its registry.
            let (catalog, store, audit) = (catalog.clone(), store.clone(), audit.clone());
            let _ = tokio::task::spawn_blocking(move || install_at_start(&catalog, &store, &audit, &installs)).await;
        }
        let (outcome, detail) = match refreshed {
            Ok(Refreshed {
                accepted: Accepted::Unchanged,
                ..
            }) => continue,
            Ok(refreshed) => {
                tracing::info!(
                    generated = %refreshed.index.generated,
                    entries = refreshed.index.servers.len(),
                    "accepted the catalog index from {}",
                    refreshed.source
                );
                (
                    Outcome::Ok,
                    serde_json::json!({"generated": refreshed.index.generated, "source": refreshed.source,
                        "entries": refreshed.index.servers.len()}),
                )
            }
            Err(error @ CatalogError::Fetch { .. }) => {
                tracing::warn!("catalog: {error}; the index accepted before stays in use");
                continue;
            }
            Err(error) => {
                tracing::error!("catalog: refused the index: {error}");
                (Outcome::Deny, serde_json::json!({"reason": error.to_string()}))
            }
        };
        audit.record(NewAuditEvent {
            kind: "catalog.refresh".into(),
            actor: "gateway".into(),
            profile: None,
            server: None,
            outcome,
            detail,
        });
    }
}

/// What `GIG_INSTALL` asks for: catalog refs, installed at start-up with consent, each as a server named after
/// its entry.
#[derive(Debug, Clone, Default)]
pub struct Installs {
    pub references: Vec<String>,
    pub servers_dir: PathBuf,
    pub oci: crate::oci::OciSettings,
}

fn install_at_start(catalog: &Catalog, store: &Store, audit: &gigmcp_audit::AuditLog, installs: &Installs) {
    if installs.references.is_empty() {
        return;
    }
    let index = match catalog.current(store) {
        Ok(index) => index,
        Err(error) => {
            tracing::error!("GIG_INSTALL: no catalog to install from: {error}");
            return;
        }
    };
    let ops = crate::Ops {
        store,
        actor: crate::Actor::Operator,
        audit: Some(audit),
    };
    for reference in &installs.references {
        let installed = index
            .resolve(reference)
            .map_err(|e| crate::OpsError::NotFound(e.to_string()))
            .and_then(|manifest| Ok(gigmcp_types::names::ServerName::parse(&manifest.name)?))
            .and_then(|name| {
                ops.install_from_catalog(
                    &index,
                    &crate::install::CatalogInstall {
                        name: &name,
                        reference,
                        base_url: None,
                        consent: true,
                        servers_dir: &installs.servers_dir,
                        oci: &installs.oci,
                    },
                )
            });
        match installed {
            Ok(outcome) => tracing::info!(
                server = %outcome.def.name,
                action = ?outcome.action,
                "GIG_INSTALL: installed {reference}"
            ),
            Err(error) => tracing::error!("GIG_INSTALL: cannot install {reference}: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_urls_are_https_or_absolute_files() {
        assert_eq!(
            IndexUrl::parse("file:///srv/index.json")
                .unwrap()
                .signature()
                .to_string(),
            "file:///srv/index.json.sig"
        );
        assert_eq!(
            IndexUrl::parse("https://registry.example/latest/index.json")
                .unwrap()
                .signature()
                .to_string(),
            "https://registry.example/latest/index.json.sig"
        );
        for bad in [
            "http://x/index.json",
            "file://relative/index.json",
            "https://",
            "/srv/index.json",
        ] {
            assert!(IndexUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
