//! The gateway's certificate authority: what a jail trusts, and what signs a leaf certificate for each
//! host a sandbox opens a tunnel to. The CA's key and certificate are kept together in the vault (one
//! secret, `egress-ca-key/gateway/ca`), so the CA survives restarts and a jail's trust never goes stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use thiserror::Error;

use gigmcp_types::secret::{Secret, SecretKind, SecretName, SecretOwner, SecretSlot};
use gigmcp_types::sync::lock;
use gigmcp_vault::Vault;

/// Leaf certificates kept at once; the least recently used goes first.
pub const LEAF_CACHE: usize = 1024;

#[derive(Debug, Error)]
pub enum CaError {
    #[error("cannot read or write the egress CA in the vault: {0}")]
    Vault(#[from] gigmcp_vault::VaultError),
    #[error("the egress CA stored in the vault is damaged ({0}); remove it to make a new one")]
    Stored(String),
    #[error("cannot make a certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot use a certificate key: {0}")]
    Rustls(#[from] rustls::Error),
}

pub struct GatewayCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    /// One key for every leaf: generating a key per host costs more than signing, and leaves never leave
    /// the gateway's process (a jail sees only their public part).
    leaf_key: KeyPair,
    leaf_signer: Arc<dyn rustls::sign::SigningKey>,
    leaves: Mutex<Lru<String, Arc<CertifiedKey>>>,
}

/// The CA's fixed identity: the issuer of every leaf is rebuilt from it and the stored key.
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, "Gig'MCP egress CA");
    params.distinguished_name.push(DnType::OrganizationName, "Gig'MCP");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn slot() -> SecretSlot {
    SecretSlot {
        kind: SecretKind::EgressCaKey,
        owner: SecretOwner::Gateway,
        name: SecretName::parse("ca").expect("a valid secret name"),
    }
}

impl GatewayCa {
    /// The CA of this database: loaded from the vault, or made and stored there on first start.
    pub fn load_or_create(vault: &Vault) -> Result<Self, CaError> {
        let secret = match vault.get(&slot())? {
            Some(secret) => secret,
            None => {
                let key = KeyPair::generate()?;
                let cert = ca_params()?.self_signed(&key)?;
                let fresh = Secret::new(format!("{}{}", key.serialize_pem(), cert.pem()).into_bytes());
                // Insert-if-absent: gateways starting at once on a new database agree on one CA.
                vault.get_or_create(&slot(), || fresh)?
            }
        };
        let text = std::str::from_utf8(secret.expose()).map_err(|e| CaError::Stored(e.to_string()))?;
        let at = text
            .find("-----BEGIN CERTIFICATE-----")
            .ok_or_else(|| CaError::Stored("no certificate".into()))?;
        let (key_pem, cert_pem) = (text[..at].to_owned(), text[at..].to_owned());
        Self::from_pem(&key_pem, &cert_pem)
    }

    fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, CaError> {
        use rustls::pki_types::pem::PemObject;
        let key = KeyPair::from_pem(key_pem).map_err(|e| CaError::Stored(e.to_string()))?;
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| CaError::Stored(e.to_string()))?;
        let leaf_key = KeyPair::generate()?;
        let provider = rustls::crypto::ring::default_provider();
        let leaf_signer = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())))?;
        Ok(Self {
            issuer: Issuer::new(ca_params()?, key),
            cert_der,
            cert_pem: cert_pem.to_owned(),
            leaf_key,
            leaf_signer,
            leaves: Mutex::new(Lru::new(LEAF_CACHE)),
        })
    }

    /// The CA certificate (PEM) a jail trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The leaf certificate (with the CA's) for `host`, a name or an IP address, made on first use.
    pub fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, CaError> {
        if let Some(leaf) = lock(&self.leaves).get(host) {
            return Ok(leaf);
        }
        let mut params = CertificateParams::new(vec![host.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&self.leaf_key, &self.issuer)?;
        let chain = vec![cert.der().clone(), self.cert_der.clone()];
        let leaf = Arc::new(CertifiedKey::new(chain, self.leaf_signer.clone()));
        lock(&self.leaves).put(host.to_owned(), leaf.clone());
        Ok(leaf)
    }
}

/// A bounded least-recently-used map: `get` refreshes an entry; `put` beyond the bound drops the entry
/// used longest ago. Small and O(n) on eviction only, which happens once per new host beyond the bound.
pub struct Lru<K, V> {
    bound: usize,
    tick: u64,
    entries: HashMap<K, (u64, V)>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Lru<K, V> {
    pub fn new(bound: usize) -> Self {
        Self {
            bound: bound.max(1),
            tick: 0,
            entries: HashMap::new(),
        }
    }

    pub fn get<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(key).map(|(used, v)| {
            *used = tick;
            v.clone()
        })
    }

    pub fn put(&mut self, key: K, value: V) {
        self.tick += 1;
        if !self.entries.contains_key(&key)
            && self.entries.len() >= self.bound
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(key, (self.tick, value));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn the_leaf_cache_is_bounded_and_keeps_recent_entries() {
        let mut lru = Lru::new(3);
        for i in 0..3 {
            lru.put(i, i * 10);
        }
        assert_eq!(lru.get(&0), Some(0)); // 0 is now the most recent
        lru.put(3, 30); // evicts 1, the least recently used
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.get(&1), None);
        assert_eq!(lru.get(&0), Some(0));
        for i in 10..1000 {
            lru.put(i, i);
            assert!(lru.len() <= 3);
        }
        lru.put(999, 1);
        assert_eq!(lru.get(&999), Some(1));
    }

    #[test]
    fn the_ca_survives_a_restart_through_the_vault() {
        let dir = tempfile::tempdir().unwrap();
        let key = gigmcp_types::secret::MasterKey::parse(&"ab".repeat(32)).unwrap();
        let open = || {
            let store = Arc::new(gigmcp_store::Store::open(&dir.path().join("db.sqlite")).unwrap());
            Vault::open(store, &key).unwrap()
        };
        let first = GatewayCa::load_or_create(&open()).unwrap();
        let again = GatewayCa::load_or_create(&open()).unwrap();
        assert_eq!(first.cert_pem(), again.cert_pem());
        assert!(first.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        // A leaf made after the restart still chains to the certificate jails were given before it.
        let leaf = again.leaf("api.example.com").unwrap();
        assert_eq!(leaf.cert[1], first.cert_der);
    }

    #[test]
    fn leaves_chain_to_the_ca_and_are_cached() {
        let key = KeyPair::generate().unwrap();
        let cert = ca_params().unwrap().self_signed(&key).unwrap();
        let ca = GatewayCa::from_pem(&key.serialize_pem(), &cert.pem()).unwrap();
        let leaf = ca.leaf("api.example.com").unwrap();
        assert_eq!(leaf.cert.len(), 2);
        assert_eq!(leaf.cert[1], ca.cert_der);
        assert!(Arc::ptr_eq(&leaf, &ca.leaf("api.example.com").unwrap()));
        // A rustls client trusting only the CA accepts the leaf for its name, and not for another.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der.clone()).unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let now = rustls::pki_types::UnixTime::now();
        let name = rustls::pki_types::ServerName::try_from("api.example.com").unwrap();
        verifier
            .verify_server_cert(&leaf.cert[0], &leaf.cert[1..], &name, &[], now)
            .expect("the leaf verifies");
        let other = rustls::pki_types::ServerName::try_from("evil.example.com").unwrap();
        assert!(
            verifier
                .verify_server_cert(&leaf.cert[0], &leaf.cert[1..], &other, &[], now)
                .is_err()
        );
        let ip = ca.leaf("198.51.100.2").unwrap();
        let ip_name = rustls::pki_types::ServerName::try_from("198.51.100.2").unwrap();
        verifier
            .verify_server_cert(&ip.cert[0], &ip.cert[1..], &ip_name, &[], now)
            .expect("an IP leaf verifies");
    }
}
