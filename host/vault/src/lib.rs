//! The vault: secrets at rest, envelope-encrypted under the master key, and the credentials built on them.
//!
//! Invariant 5 (secrets at rest are envelope-encrypted with XChaCha20-Poly1305, a fresh data key per secret
//! wrapped by the master key, bound to their row by associated data, with a key id so the master key can be
//! rotated) is enforced in `envelope`, the only code that touches key material. This module adds what the
//! rest of the gateway sees: typed addresses of secrets, a `Vault` that checks at start-up that it was given
//! the right master key, and rotation of that key in one transaction.
//!
//! Invariant 1 (a server never holds a real credential) starts here: a server is given only a credential's
//! placeholder (`placeholder_env`), never the secret, which only the egress proxy reads.
//!
//! See README.md beside `src/` for the decisions and the alternatives rejected.
//!
//! Depends on the store (where sealed secrets live) and the vocabulary; must never depend on the plugin runtime,
//! the data plane or anything above them.

#![forbid(unsafe_code)]

mod envelope;

use std::sync::Arc;

use thiserror::Error;

use gigmcp_types::credential::{Credential, CredentialInputError, CredentialSource, CredentialSpec};
use gigmcp_types::ids::SecretId;
use gigmcp_types::secret::{KeyId, Secret, SecretKind, SecretSlot};

use envelope::MasterKeys;
use gigmcp_store::Store;
use gigmcp_store::credentials::CredentialStoreError;
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::secret::MasterKey;
use gigmcp_types::secret::Sealed;

#[derive(Debug, Error)]
pub enum VaultError {
    #[error(
        "GIG_MASTER_KEY does not match the key this database was created with (or last rotated to): the \
         database's key id is {expected}, the given key's is {given}. Set GIG_MASTER_KEY (or GIG_MASTER_KEY_FILE) \
         to that key; to change keys, run `gigmcp vault rotate-master-key` with the current one"
    )]
    WrongMasterKey { expected: KeyId, given: KeyId },
    #[error(
        "the vault's check record does not authenticate under GIG_MASTER_KEY although its key id {0} matches: \
         the database was altered or is corrupt; restore it from a backup"
    )]
    CheckRecordTampered(KeyId),
    #[error(
        "the master key was rotated after this process opened the vault (the database's key id is now {0}); \
         restart it with the new GIG_MASTER_KEY"
    )]
    KeyRotated(KeyId),
    #[error(
        "the stored secret {0} does not authenticate: it was altered, or moved from another row; set it again \
         (for a credential: `gigmcp credential set`)"
    )]
    Tampered(String),
    #[error("no secret {0} in the vault")]
    NoSecret(String),
    #[error("credential secrets are managed with `gigmcp credential set|delete`, not through the vault directly")]
    CredentialSlot,
    #[error("credential {0} is a connected account's token: the OAuth broker gives it, not the vault")]
    AccountCredential(String),
    #[error("the new master key is the current one; generate another with `openssl rand -hex 32`")]
    SameKey,
    #[error(transparent)]
    Store(#[from] CredentialStoreError),
    #[error(transparent)]
    Input(#[from] CredentialInputError),
}

/// The vault as a process sees it after checking its master key.
pub struct Vault {
    store: Arc<Store>,
    keys: MasterKeys,
}

/// What `gigmcp vault status` shows.
#[derive(Debug, Clone)]
pub struct VaultStatus {
    pub key_id: KeyId,
    pub secrets: u64,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
}

impl Vault {
    /// Opens the vault with `master_key`. The first open writes the check record; every later one verifies it,
    /// so a wrong key stops start-up with a clear message instead of surfacing later as undecryptable rows.
    pub fn open(store: Arc<Store>, master_key: &MasterKey) -> Result<Self, VaultError> {
        let keys = MasterKeys::derive(master_key);
        let record = match store.vault_check()? {
            Some(record) => record,
            None => {
                store.create_vault_check(&keys.check_record())?;
                // Another process may have created it first, with another key: verify what was kept.
                store
                    .vault_check()?
                    .ok_or_else(|| CredentialStoreError::Corrupt("the vault check record vanished".into()))?
            }
        };
        if record.key_id != keys.key_id() {
            return Err(VaultError::WrongMasterKey {
                expected: record.key_id,
                given: keys.key_id(),
            });
        }
        keys.verify(&record)
            .map_err(|_| VaultError::CheckRecordTampered(record.key_id))?;
        Ok(Self { store, keys })
    }

    pub fn key_id(&self) -> KeyId {
        self.keys.key_id()
    }

    pub fn status(&self) -> Result<VaultStatus, VaultError> {
        let (secrets, created_at, rotated_at) = self.store.vault_status()?;
        Ok(VaultStatus {
            key_id: self.key_id(),
            secrets,
            created_at,
            rotated_at,
        })
    }

    /// Stores `secret` at `slot`, replacing what was there. Not for credentials (`set_credential`).
    pub fn put(&self, slot: &SecretSlot, secret: &Secret) -> Result<SecretId, VaultError> {
        refuse_credential_slot(slot)?;
        let sealed = self.keys.seal(slot, &[], secret);
        Ok(self.store.put_secret(slot, &sealed)?)
    }

    /// `secret` sealed for `slot`, for a store function that writes it with other rows in one transaction.
    /// Not for credentials.
    pub fn seal(&self, slot: &SecretSlot, secret: &Secret) -> Result<Sealed, VaultError> {
        refuse_credential_slot(slot)?;
        Ok(self.keys.seal(slot, &[], secret))
    }

    /// The secret at `slot`, if any. Not for credentials (`credential_secret`).
    pub fn get(&self, slot: &SecretSlot) -> Result<Option<Secret>, VaultError> {
        refuse_credential_slot(slot)?;
        match self.store.secret(slot)? {
            None => Ok(None),
            Some((_, sealed)) => self.open_sealed(slot, &[], &sealed).map(Some),
        }
    }

    /// The secret at `slot`, made by `make` and stored if there is none yet. Processes sharing the database
    /// that start at once agree: only the first stored secret is kept, and every caller returns that one.
    /// Not for credentials.
    pub fn get_or_create(&self, slot: &SecretSlot, make: impl FnOnce() -> Secret) -> Result<Secret, VaultError> {
        if let Some(secret) = self.get(slot)? {
            return Ok(secret);
        }
        let sealed = self.keys.seal(slot, &[], &make());
        self.store.insert_secret_if_absent(slot, &sealed)?;
        self.get(slot)?.ok_or_else(|| VaultError::NoSecret(slot.to_string()))
    }

    /// Removes the secret at `slot`; whether there was one. Not for credentials (`delete_credential`).
    pub fn delete(&self, slot: &SecretSlot) -> Result<bool, VaultError> {
        refuse_credential_slot(slot)?;
        Ok(self.store.delete_secret(slot)?)
    }

    /// Creates or replaces a credential and its secret in one transaction. A replaced credential keeps its
    /// placeholder, so running servers keep working with the new secret.
    ///
    /// The secret is bound not only to its slot but to where it may be sent (hosts, header, format): changing
    /// those columns in the database makes the secret fail to open rather than go elsewhere.
    pub fn set_credential(&self, spec: &CredentialSpec, secret: &Secret) -> Result<Credential, VaultError> {
        let sealed = self.keys.seal(&spec.slot(), &spec.binding(), secret);
        Ok(self.store.set_credential(spec, &sealed)?)
    }

    /// A credential's secret, for the egress proxy to inject. Opened with the slot and binding that the
    /// credential row states, so a row pointed at another credential's secret, or edited to send it to other
    /// hosts, fails here.
    pub fn credential_secret(&self, credential: &Credential) -> Result<Secret, VaultError> {
        let slot = credential.spec.slot();
        let CredentialSource::Vault(id) = &credential.source else {
            return Err(VaultError::AccountCredential(credential.spec.name.to_string()));
        };
        let sealed = self
            .store
            .secret_by_id(*id)?
            .ok_or_else(|| VaultError::NoSecret(slot.to_string()))?;
        self.open_sealed(&slot, &credential.spec.binding(), &sealed)
    }

    fn open_sealed(&self, slot: &SecretSlot, context: &[u8], sealed: &Sealed) -> Result<Secret, VaultError> {
        if sealed.wrapped_key.key_id != self.key_id() {
            return Err(VaultError::KeyRotated(sealed.wrapped_key.key_id));
        }
        self.keys
            .open(slot, context, sealed)
            .map_err(|_| VaultError::Tampered(slot.to_string()))
    }

    /// Re-wraps every data key, and the check record, under `new_master` in one transaction: afterwards every
    /// secret opens with the new key only, and a failure changes nothing. Secrets' own ciphertexts stay as
    /// they are (their data keys do not change). Returns the vault under the new key and how many secrets
    /// were re-wrapped.
    pub fn rotate(self, new_master: &MasterKey) -> Result<(Vault, usize), VaultError> {
        let new = MasterKeys::derive(new_master);
        if new.key_id() == self.key_id() {
            return Err(VaultError::SameKey);
        }
        let count = self
            .store
            .rewrap_secrets(self.key_id(), &new.check_record(), |slot, wrapped| {
                self.keys
                    .rewrap(&new, slot, wrapped)
                    .map_err(|_| VaultError::Tampered(slot.to_string()))
            })?;
        Ok((
            Vault {
                store: self.store.clone(),
                keys: new,
            },
            count,
        ))
    }
}

fn refuse_credential_slot(slot: &SecretSlot) -> Result<(), VaultError> {
    if slot.kind == SecretKind::Credential {
        return Err(VaultError::CredentialSlot);
    }
    Ok(())
}

/// The environment a server's sandbox gets for its credentials: `(variable, placeholder)` for each credential
/// that applies to `server` when it serves `profile` — the server-wide ones, except that a credential scoped
/// to `profile` replaces the server-wide one of the same name — sorted by variable. `profile: None` gives the
/// server-wide credentials only. An unknown server or profile has no credentials (an empty list).
///
/// Invariant 1: this is everything about credentials that reaches a server, and it holds no secret. It reads
/// only metadata, so it needs no master key.
pub fn placeholder_env(
    store: &Store,
    server: &ServerName,
    profile: Option<&ProfileSlug>,
) -> Result<Vec<(String, String)>, VaultError> {
    Ok(store
        .effective_credentials(server, profile)?
        .into_iter()
        .map(|c| (c.spec.env_name.as_str().to_owned(), c.placeholder.as_str().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use gigmcp_types::credential::{CredentialName, Format, HeaderName, HostList};
    use gigmcp_types::names::Prefix;
    use gigmcp_types::secret::{SecretName, SecretOwner};
    use gigmcp_types::server::{Builtin, ServerDef, ServerSpec};

    const KEY_A: [u8; 32] = [0xa1; 32];
    const KEY_B: [u8; 32] = [0xb2; 32];

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db.sqlite")).unwrap());
        (dir, store)
    }

    fn ca_slot(name: &str) -> SecretSlot {
        SecretSlot {
            kind: SecretKind::EgressCaKey,
            owner: SecretOwner::Gateway,
            name: SecretName::parse(name).unwrap(),
        }
    }

    fn add_echo(store: &Store, name: &str) {
        store
            .add_server(&ServerDef {
                name: ServerName::parse(name).unwrap(),
                prefix: Prefix::parse(name).unwrap(),
                per_session: false,
                spec: ServerSpec::Builtin {
                    builtin: Builtin::Echo,
                    limits: None,
                    egress: Vec::new(),
                },
            })
            .unwrap();
    }

    fn spec(server: &str, profile: Option<&str>, name: &str) -> CredentialSpec {
        let name = CredentialName::parse(name).unwrap();
        CredentialSpec {
            server: ServerName::parse(server).unwrap(),
            profile: profile.map(|p| ProfileSlug::parse(p).unwrap()),
            env_name: name.default_env_name(),
            name,
            hosts: HostList::parse("api.example.com").unwrap(),
            header: HeaderName::parse("Authorization").unwrap(),
            format: Format::parse("Bearer {secret}").unwrap(),
        }
    }

    #[test]
    fn secrets_round_trip_and_delete() {
        let (_dir, store) = store();
        let vault = Vault::open(store, &MasterKey(KEY_A)).unwrap();
        vault.put(&ca_slot("ca"), &Secret::new(b"key bytes".to_vec())).unwrap();
        assert_eq!(vault.get(&ca_slot("ca")).unwrap().unwrap().expose(), b"key bytes");
        vault.put(&ca_slot("ca"), &Secret::new(b"replaced".to_vec())).unwrap();
        assert_eq!(vault.get(&ca_slot("ca")).unwrap().unwrap().expose(), b"replaced");
        assert!(vault.get(&ca_slot("other")).unwrap().is_none());
        assert!(vault.delete(&ca_slot("ca")).unwrap());
        assert!(!vault.delete(&ca_slot("ca")).unwrap());
        assert!(vault.get(&ca_slot("ca")).unwrap().is_none());
    }

    #[test]
    fn get_or_create_keeps_the_first_secret() {
        let (_dir, store) = store();
        let vault = Vault::open(store.clone(), &MasterKey(KEY_A)).unwrap();
        let first = vault
            .get_or_create(&ca_slot("k"), || Secret::new(b"first".to_vec()))
            .unwrap();
        assert_eq!(first.expose(), b"first");
        // Another process on the same database gets the same secret; its own is never stored.
        let other = Vault::open(store, &MasterKey(KEY_A)).unwrap();
        let again = other
            .get_or_create(&ca_slot("k"), || Secret::new(b"second".to_vec()))
            .unwrap();
        assert_eq!(again.expose(), b"first");
        // Even when it looked before the first was stored.
        assert!(
            !other
                .store
                .insert_secret_if_absent(
                    &ca_slot("k"),
                    &other.keys.seal(&ca_slot("k"), &[], &Secret::new(b"late".to_vec()))
                )
                .unwrap()
        );
        assert_eq!(other.get(&ca_slot("k")).unwrap().unwrap().expose(), b"first");
        assert!(matches!(
            vault.get_or_create(&spec("s", None, "github").slot(), || Secret::new(b"x".to_vec())),
            Err(VaultError::CredentialSlot)
        ));
    }

    #[test]
    fn wrong_master_key_is_refused_at_open() {
        let (_dir, store) = store();
        Vault::open(store.clone(), &MasterKey(KEY_A)).unwrap();
        let err = Vault::open(store.clone(), &MasterKey(KEY_B)).err().unwrap();
        assert!(matches!(err, VaultError::WrongMasterKey { .. }), "{err}");
        assert!(err.to_string().contains("GIG_MASTER_KEY does not match"), "{err}");
        Vault::open(store, &MasterKey(KEY_A)).unwrap();
    }

    #[test]
    fn credential_slots_are_managed_only_through_credentials() {
        let (_dir, store) = store();
        let vault = Vault::open(store, &MasterKey(KEY_A)).unwrap();
        let slot = spec("s", None, "github").slot();
        assert!(matches!(
            vault.put(&slot, &Secret::new(b"x".to_vec())),
            Err(VaultError::CredentialSlot)
        ));
        assert!(matches!(vault.get(&slot), Err(VaultError::CredentialSlot)));
    }

    #[test]
    fn a_credential_secret_is_bound_to_where_it_may_be_sent() {
        let (_dir, store) = store();
        add_echo(&store, "s");
        let vault = Vault::open(store.clone(), &MasterKey(KEY_A)).unwrap();
        let cred = vault
            .set_credential(&spec("s", None, "github"), &Secret::new(b"real".to_vec()))
            .unwrap();
        assert_eq!(vault.credential_secret(&cred).unwrap().expose(), b"real");
        let mut redirected = cred.clone();
        redirected.spec.hosts = HostList::parse("evil.example.net").unwrap();
        assert!(matches!(
            vault.credential_secret(&redirected),
            Err(VaultError::Tampered(_))
        ));
    }

    #[test]
    fn rotation_refuses_the_same_key() {
        let (_dir, store) = store();
        let vault = Vault::open(store, &MasterKey(KEY_A)).unwrap();
        assert!(matches!(vault.rotate(&MasterKey(KEY_A)), Err(VaultError::SameKey)));
    }

    #[test]
    fn a_vault_opened_before_a_rotation_says_so() {
        let (_dir, store) = store();
        let old = Vault::open(store.clone(), &MasterKey(KEY_A)).unwrap();
        old.put(&ca_slot("ca"), &Secret::new(b"v".to_vec())).unwrap();
        let (new, count) = Vault::open(store.clone(), &MasterKey(KEY_A))
            .unwrap()
            .rotate(&MasterKey(KEY_B))
            .unwrap();
        assert_eq!(count, 1);
        assert_eq!(new.get(&ca_slot("ca")).unwrap().unwrap().expose(), b"v");
        assert!(matches!(old.get(&ca_slot("ca")), Err(VaultError::KeyRotated(_))));
        // A stale process cannot write under the old key either.
        assert!(old.put(&ca_slot("ca2"), &Secret::new(b"w".to_vec())).is_err());
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn owners_round_trip_through_text() {
        for owner in [
            SecretOwner::Gateway,
            SecretOwner::Server {
                server: ServerName::parse("gh_1").unwrap(),
                profile: None,
            },
            SecretOwner::Server {
                server: ServerName::parse("gh").unwrap(),
                profile: Some(ProfileSlug::parse("team-a").unwrap()),
            },
        ] {
            assert_eq!(SecretOwner::parse(&owner.to_string()), Some(owner));
        }
        assert_eq!(SecretOwner::parse("server:"), None);
    }
}
