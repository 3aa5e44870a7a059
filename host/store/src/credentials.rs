//! The vault's rows: the check record, sealed secrets, and credentials (metadata and placeholders).
//!
//! Nothing here encrypts or decrypts: the vault hands sealed envelopes in and gets them back. What this
//! layer guarantees is that each change is one transaction, that a write made with a master key that is no
//! longer the vault's is refused, and that a credential's secret goes when the credential goes (with its
//! server, its profile, or by `credential delete`).

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use thiserror::Error;

use crate::{Store, now};
use gigmcp_types::credential::{
    Credential, CredentialId, CredentialName, CredentialSource, CredentialSpec, EnvName, Format, HeaderName, HostList,
    Placeholder,
};
use gigmcp_types::ids::SecretId;
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::oauth::Vendor;
use gigmcp_types::secret::{
    CheckRecord, KeyId, NONCE_LEN, Sealed, SecretKind, SecretName, SecretOwner, SecretSlot, WrappedKey,
};
use gigmcp_types::server::ServerSpec;

#[derive(Debug, Error)]
pub enum CredentialStoreError {
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("no server named {0}; `gigmcp server list` shows them")]
    NoServer(ServerName),
    #[error("no profile named {0}; `gigmcp profile list` shows them")]
    NoProfile(ProfileSlug),
    #[error("no credential {name} for {scope}; `gigmcp credential list` shows them")]
    NoCredential { name: CredentialName, scope: String },
    #[error(
        "server {0} is a remote streamable-HTTP server: it does not run in a sandbox behind the egress proxy, \
         so it cannot be given credentials"
    )]
    RemoteServer(ServerName),
    #[error("server {server} already sets {env} in its --env; choose another --env-name")]
    EnvSetByServer { server: ServerName, env: EnvName },
    #[error("{env} already carries credential {other} of {scope}; choose another --env-name")]
    EnvNameTaken {
        env: EnvName,
        other: CredentialName,
        scope: String,
    },
    #[error(
        "the master key was rotated after this process opened the vault (the database's key id is now {0}); \
         run again with the new GIG_MASTER_KEY"
    )]
    KeyChanged(KeyId),
    #[error("the vault has no check record yet; open it with the master key first")]
    NoVault,
    #[error("stored vault data is corrupt: {0}")]
    Corrupt(String),
}

type Result<T, E = CredentialStoreError> = std::result::Result<T, E>;

const CREDENTIAL_COLUMNS: &str = "c.id, s.name, p.slug, c.name, c.hosts, c.header, c.format, c.env_name, \
     c.placeholder, c.secret_id, c.oauth_vendor, c.created_at, c.updated_at";
const CREDENTIAL_FROM: &str =
    "FROM credentials c JOIN servers s ON s.id = c.server_id LEFT JOIN profiles p ON p.id = c.profile_id";

impl Store {
    /// The vault's check record, if the vault has been opened before.
    pub fn vault_check(&self) -> Result<Option<CheckRecord>> {
        let conn = self.lock();
        conn.query_row(
            "SELECT key_id, nonce, ciphertext FROM vault_check WHERE id = 1",
            [],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            },
        )
        .optional()?
        .map(|(key_id, nonce, ciphertext)| {
            Ok(CheckRecord {
                key_id: key_id_from(key_id)?,
                nonce: nonce_from(nonce)?,
                ciphertext,
            })
        })
        .transpose()
    }

    /// Writes the check record unless one exists (the first open of a new database wins).
    pub fn create_vault_check(&self, record: &CheckRecord) -> Result<()> {
        self.lock().execute(
            "INSERT INTO vault_check (id, key_id, nonce, ciphertext, created_at) VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO NOTHING",
            params![&record.key_id.0[..], &record.nonce[..], record.ciphertext, now()],
        )?;
        Ok(())
    }

    /// (secrets stored, when the vault was created, when its key was last rotated).
    pub fn vault_status(&self) -> Result<(u64, i64, Option<i64>)> {
        let conn = self.lock();
        let secrets: i64 = conn.query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))?;
        let (created, rotated) = conn
            .query_row("SELECT created_at, rotated_at FROM vault_check WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .ok_or(CredentialStoreError::NoVault)?;
        Ok((secrets as u64, created, rotated))
    }

    /// Stores a sealed secret at `slot`, replacing what was there.
    pub fn put_secret(&self, slot: &SecretSlot, sealed: &Sealed) -> Result<SecretId> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = upsert_secret(&tx, slot, sealed)?;
        tx.commit()?;
        Ok(id)
    }

    /// Stores `sealed` at `slot` unless a secret is there already; whether it was stored. One transaction, so
    /// of several processes creating the same secret at once exactly one wins.
    pub fn insert_secret_if_absent(&self, slot: &SecretSlot, sealed: &Sealed) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM secrets WHERE kind = ?1 AND owner = ?2 AND name = ?3",
                params![slot.kind.as_str(), slot.owner.to_string(), slot.name.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            upsert_secret(&tx, slot, sealed)?;
        }
        tx.commit()?;
        Ok(!exists)
    }

    pub fn secret(&self, slot: &SecretSlot) -> Result<Option<(SecretId, Sealed)>> {
        let owner = slot.owner.to_string();
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT id, key_id, wrap_nonce, wrapped_key, nonce, ciphertext FROM secrets
                 WHERE kind = ?1 AND owner = ?2 AND name = ?3",
                params![slot.kind.as_str(), owner, slot.name.as_str()],
                |r| Ok((r.get::<_, i64>(0)?, sealed_row(r, 1)?)),
            )
            .optional()?;
        row.map(|(id, sealed)| Ok((SecretId(id), sealed_from(sealed)?)))
            .transpose()
    }

    pub fn secret_by_id(&self, id: SecretId) -> Result<Option<Sealed>> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT key_id, wrap_nonce, wrapped_key, nonce, ciphertext FROM secrets WHERE id = ?1",
                [id.0],
                |r| sealed_row(r, 0),
            )
            .optional()?;
        row.map(sealed_from).transpose()
    }

    /// Whether there was a secret at `slot` to delete.
    pub fn delete_secret(&self, slot: &SecretSlot) -> Result<bool> {
        let n = self.lock().execute(
            "DELETE FROM secrets WHERE kind = ?1 AND owner = ?2 AND name = ?3",
            params![slot.kind.as_str(), slot.owner.to_string(), slot.name.as_str()],
        )?;
        Ok(n > 0)
    }

    /// Master-key rotation: in one transaction, replaces every secret's wrapped key with what `rewrap` makes
    /// of it and the check record with `new_check`. Any error rolls everything back. Returns how many secrets
    /// were re-wrapped.
    pub fn rewrap_secrets<E: From<CredentialStoreError>>(
        &self,
        old: KeyId,
        new_check: &CheckRecord,
        mut rewrap: impl FnMut(&SecretSlot, &WrappedKey) -> std::result::Result<WrappedKey, E>,
    ) -> std::result::Result<usize, E> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(CredentialStoreError::from)?;
        check_key(&tx, old)?;
        let rows: Vec<(i64, SecretSlot, WrappedKey)> = {
            let mut stmt = tx
                .prepare("SELECT id, kind, owner, name, key_id, wrap_nonce, wrapped_key FROM secrets ORDER BY id")
                .map_err(CredentialStoreError::from)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        (r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                        (
                            r.get::<_, Vec<u8>>(4)?,
                            r.get::<_, Vec<u8>>(5)?,
                            r.get::<_, Vec<u8>>(6)?,
                        ),
                    ))
                })
                .map_err(CredentialStoreError::from)?;
            rows.map(|row| {
                let (id, (kind, owner, name), (key_id, nonce, ciphertext)) = row?;
                let slot = slot_from(&kind, &owner, &name)?;
                let wrapped = WrappedKey {
                    key_id: key_id_from(key_id)?,
                    nonce: nonce_from(nonce)?,
                    ciphertext,
                };
                Ok((id, slot, wrapped))
            })
            .collect::<Result<_>>()?
        };
        for (id, slot, wrapped) in &rows {
            let new = rewrap(slot, wrapped)?;
            tx.execute(
                "UPDATE secrets SET key_id = ?1, wrap_nonce = ?2, wrapped_key = ?3 WHERE id = ?4",
                params![&new.key_id.0[..], &new.nonce[..], new.ciphertext, id],
            )
            .map_err(CredentialStoreError::from)?;
        }
        tx.execute(
            "UPDATE vault_check SET key_id = ?1, nonce = ?2, ciphertext = ?3, rotated_at = ?4 WHERE id = 1",
            params![
                &new_check.key_id.0[..],
                &new_check.nonce[..],
                new_check.ciphertext,
                now()
            ],
        )
        .map_err(CredentialStoreError::from)?;
        tx.commit().map_err(CredentialStoreError::from)?;
        Ok(rows.len())
    }

    /// Checks that a credential can be set for `server` and `profile` (both exist, the server is sandboxed),
    /// so that the CLI refuses before it reads a secret. `set_credential` checks again in its transaction.
    pub fn check_credential_scope(&self, server: &ServerName, profile: Option<&ProfileSlug>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        sandboxed_server(&tx, server)?;
        if let Some(slug) = profile {
            profile_id(&tx, slug)?;
        }
        Ok(())
    }

    /// Creates or replaces the credential `spec` names (server, profile, name) with its sealed secret, in one
    /// transaction. A replaced credential keeps its placeholder and creation time. Refused, writing nothing,
    /// when the server or profile does not exist, the server is remote, the variable is taken, or the vault's
    /// key changed since `sealed` was made.
    pub fn set_credential(&self, spec: &CredentialSpec, sealed: &Sealed) -> Result<Credential> {
        self.upsert_credential(spec, NewSource::Sealed(sealed))
    }

    /// Creates or replaces the credential `spec` names so that its secret is the access token of a connected
    /// account of `vendor` (whose, the egress proxy decides per request: the profile owner's). A replaced
    /// credential keeps its placeholder; a secret it had in the vault is deleted. Refused as `set_credential`.
    pub fn set_account_credential(&self, spec: &CredentialSpec, vendor: &Vendor) -> Result<Credential> {
        self.upsert_credential(spec, NewSource::Account(vendor))
    }

    fn upsert_credential(&self, spec: &CredentialSpec, source: NewSource<'_>) -> Result<Credential> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (server_id, server_spec) = sandboxed_server(&tx, &spec.server)?;
        if let ServerSpec::Stdio { env, .. } = &server_spec
            && env.contains_key(spec.env_name.as_str())
        {
            return Err(CredentialStoreError::EnvSetByServer {
                server: spec.server.clone(),
                env: spec.env_name.clone(),
            });
        }
        let profile_id = spec.profile.as_ref().map(|slug| profile_id(&tx, slug)).transpose()?;
        refuse_env_conflict(&tx, server_id, spec)?;
        let existing: Option<(i64, String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT id, placeholder, created_at, secret_id FROM credentials
                 WHERE server_id = ?1 AND name = ?2 AND COALESCE(profile_id, 0) = COALESCE(?3, 0)",
                params![server_id, spec.name.as_str(), profile_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let (secret_id, vendor, source) = match source {
            NewSource::Sealed(sealed) => {
                let id = upsert_secret(&tx, &spec.slot(), sealed)?;
                (Some(id.0), None, CredentialSource::Vault(id))
            }
            NewSource::Account(vendor) => (None, Some(vendor.as_str()), CredentialSource::Account(vendor.clone())),
        };
        let time = now();
        let hosts = spec.hosts.to_string();
        let (id, placeholder, created_at) = match existing {
            Some((id, placeholder, created_at, old_secret)) => {
                tx.execute(
                    "UPDATE credentials SET hosts = ?1, header = ?2, format = ?3, env_name = ?4, secret_id = ?5,
                       oauth_vendor = ?6, updated_at = ?7 WHERE id = ?8",
                    params![
                        hosts,
                        spec.header.as_str(),
                        spec.format.as_str(),
                        spec.env_name.as_str(),
                        secret_id,
                        vendor,
                        time,
                        id
                    ],
                )?;
                // A vault secret the credential no longer uses goes (the delete trigger covers deletions only).
                if let Some(old) = old_secret.filter(|old| Some(*old) != secret_id) {
                    tx.execute("DELETE FROM secrets WHERE id = ?1", [old])?;
                }
                let placeholder = Placeholder::parse(&placeholder)
                    .ok_or_else(|| CredentialStoreError::Corrupt(format!("credential {id}: bad placeholder")))?;
                (id, placeholder, created_at)
            }
            None => {
                let placeholder = Placeholder::generate();
                tx.execute(
                    "INSERT INTO credentials (server_id, profile_id, name, hosts, header, format, env_name,
                       placeholder, secret_id, oauth_vendor, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                    params![
                        server_id,
                        profile_id,
                        spec.name.as_str(),
                        hosts,
                        spec.header.as_str(),
                        spec.format.as_str(),
                        spec.env_name.as_str(),
                        placeholder.as_str(),
                        secret_id,
                        vendor,
                        time
                    ],
                )?;
                (tx.last_insert_rowid(), placeholder, time)
            }
        };
        tx.commit()?;
        Ok(Credential {
            id: CredentialId(id),
            spec: spec.clone(),
            placeholder,
            source,
            created_at,
            updated_at: time,
        })
    }

    /// Credentials, optionally only one server's and only those scoped to one profile, ordered by server,
    /// scope (server-wide first) and name.
    pub fn credentials(&self, server: Option<&ServerName>, profile: Option<&ProfileSlug>) -> Result<Vec<Credential>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {CREDENTIAL_COLUMNS} {CREDENTIAL_FROM}
             WHERE (?1 IS NULL OR s.name = ?1) AND (?2 IS NULL OR p.slug = ?2)
             ORDER BY s.name, p.slug IS NOT NULL, p.slug, c.name"
        ))?;
        let rows = stmt.query_map(
            params![server.map(ServerName::as_str), profile.map(ProfileSlug::as_str)],
            credential_row,
        )?;
        rows.map(|row| credential_from(row?)).collect()
    }

    /// The credentials that apply to `server` serving `profile`: the server-wide ones, each replaced by the
    /// profile's own credential of the same name if it has one; ordered by variable.
    pub fn effective_credentials(&self, server: &ServerName, profile: Option<&ProfileSlug>) -> Result<Vec<Credential>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {CREDENTIAL_COLUMNS} {CREDENTIAL_FROM}
             WHERE s.name = ?1 AND (c.profile_id IS NULL OR p.slug = ?2)"
        ))?;
        let rows = stmt.query_map(
            params![server.as_str(), profile.map(ProfileSlug::as_str)],
            credential_row,
        )?;
        let mut by_name: BTreeMap<CredentialName, Credential> = BTreeMap::new();
        for row in rows {
            let credential = credential_from(row?)?;
            let scoped = credential.spec.profile.is_some();
            match by_name.get(&credential.spec.name) {
                Some(kept) if kept.spec.profile.is_some() && !scoped => {}
                _ => {
                    by_name.insert(credential.spec.name.clone(), credential);
                }
            }
        }
        let mut effective: Vec<Credential> = by_name.into_values().collect();
        effective.sort_by(|a, b| a.spec.env_name.cmp(&b.spec.env_name));
        Ok(effective)
    }

    /// Deletes a credential; its secret goes with it.
    pub fn delete_credential(
        &self,
        server: &ServerName,
        profile: Option<&ProfileSlug>,
        name: &CredentialName,
    ) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let server_id = server_id(&tx, server)?;
        let profile_id = profile.map(|slug| profile_id(&tx, slug)).transpose()?;
        let deleted = tx.execute(
            "DELETE FROM credentials WHERE server_id = ?1 AND name = ?2 AND COALESCE(profile_id, 0) = COALESCE(?3, 0)",
            params![server_id, name.as_str(), profile_id],
        )?;
        if deleted == 0 {
            let scope = match profile {
                None => format!("server {server} (server-wide)"),
                Some(p) => format!("server {server} (profile {p})"),
            };
            return Err(CredentialStoreError::NoCredential {
                name: name.clone(),
                scope,
            });
        }
        tx.commit()?;
        Ok(())
    }
}

/// Refuses a write whose envelope was made under a key that is no longer the vault's (a rotation committed
/// in between), so that no row is ever wrapped under a retired key.
fn check_key(tx: &Transaction<'_>, key_id: KeyId) -> Result<()> {
    let current: Vec<u8> = tx
        .query_row("SELECT key_id FROM vault_check WHERE id = 1", [], |r| r.get(0))
        .optional()?
        .ok_or(CredentialStoreError::NoVault)?;
    let current = key_id_from(current)?;
    if current != key_id {
        return Err(CredentialStoreError::KeyChanged(current));
    }
    Ok(())
}

pub(crate) fn upsert_secret(tx: &Transaction<'_>, slot: &SecretSlot, sealed: &Sealed) -> Result<SecretId> {
    check_key(tx, sealed.wrapped_key.key_id)?;
    let time = now();
    let id = tx.query_row(
        "INSERT INTO secrets (kind, owner, name, key_id, wrap_nonce, wrapped_key, nonce, ciphertext,
           created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (kind, owner, name) DO UPDATE SET key_id = excluded.key_id,
           wrap_nonce = excluded.wrap_nonce, wrapped_key = excluded.wrapped_key, nonce = excluded.nonce,
           ciphertext = excluded.ciphertext, updated_at = excluded.updated_at
         RETURNING id",
        params![
            slot.kind.as_str(),
            slot.owner.to_string(),
            slot.name.as_str(),
            &sealed.wrapped_key.key_id.0[..],
            &sealed.wrapped_key.nonce[..],
            sealed.wrapped_key.ciphertext,
            &sealed.nonce[..],
            sealed.ciphertext,
            time
        ],
        |r| r.get(0),
    )?;
    Ok(SecretId(id))
}

fn server_id(tx: &Transaction<'_>, server: &ServerName) -> Result<i64> {
    tx.query_row("SELECT id FROM servers WHERE name = ?1", [server.as_str()], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| CredentialStoreError::NoServer(server.clone()))
}

/// The server's id and definition, if it runs in a sandbox (only those reach the egress proxy).
fn sandboxed_server(tx: &Transaction<'_>, server: &ServerName) -> Result<(i64, ServerSpec)> {
    let (id, row) = tx
        .query_row(
            "SELECT id, name, prefix, per_session, spec FROM servers WHERE name = ?1",
            [server.as_str()],
            |r| Ok((r.get::<_, i64>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))),
        )
        .optional()?
        .ok_or_else(|| CredentialStoreError::NoServer(server.clone()))?;
    let def = crate::decode_server(row).map_err(|e| CredentialStoreError::Corrupt(e.to_string()))?;
    if let ServerSpec::Http { .. } = def.spec {
        return Err(CredentialStoreError::RemoteServer(server.clone()));
    }
    Ok((id, def.spec))
}

fn profile_id(tx: &Transaction<'_>, slug: &ProfileSlug) -> Result<i64> {
    tx.query_row("SELECT id FROM profiles WHERE slug = ?1", [slug.as_str()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| CredentialStoreError::NoProfile(slug.clone()))
}

/// Two credentials of one server that can apply together (both server-wide, or one server-wide and one
/// scoped, or both scoped to the same profile) must not use the same variable: one placeholder would hide
/// the other. A credential of the same name is the one being replaced, or the one it overrides.
fn refuse_env_conflict(tx: &Transaction<'_>, server_id: i64, spec: &CredentialSpec) -> Result<()> {
    let mut stmt = tx.prepare(
        "SELECT c.name, p.slug FROM credentials c LEFT JOIN profiles p ON p.id = c.profile_id
         WHERE c.server_id = ?1 AND c.env_name = ?2 AND c.name <> ?3",
    )?;
    let rows = stmt.query_map(params![server_id, spec.env_name.as_str(), spec.name.as_str()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
    })?;
    for row in rows {
        let (name, slug) = row?;
        let together = match (&spec.profile, &slug) {
            (Some(mine), Some(theirs)) => mine.as_str() == theirs,
            _ => true,
        };
        if together {
            let other = CredentialName::parse(&name).map_err(|e| CredentialStoreError::Corrupt(e.to_string()))?;
            let scope = match slug {
                None => format!("server {} (server-wide)", spec.server),
                Some(p) => format!("server {} (profile {p})", spec.server),
            };
            return Err(CredentialStoreError::EnvNameTaken {
                env: spec.env_name.clone(),
                other,
                scope,
            });
        }
    }
    Ok(())
}

type SealedRow = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

fn sealed_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<SealedRow> {
    Ok((
        r.get(first)?,
        r.get(first + 1)?,
        r.get(first + 2)?,
        r.get(first + 3)?,
        r.get(first + 4)?,
    ))
}

fn sealed_from((key_id, wrap_nonce, wrapped_key, nonce, ciphertext): SealedRow) -> Result<Sealed> {
    Ok(Sealed {
        wrapped_key: WrappedKey {
            key_id: key_id_from(key_id)?,
            nonce: nonce_from(wrap_nonce)?,
            ciphertext: wrapped_key,
        },
        nonce: nonce_from(nonce)?,
        ciphertext,
    })
}

fn key_id_from(bytes: Vec<u8>) -> Result<KeyId> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| CredentialStoreError::Corrupt("a key id is not 8 bytes".into()))?;
    Ok(KeyId(bytes))
}

fn nonce_from(bytes: Vec<u8>) -> Result<[u8; NONCE_LEN]> {
    bytes
        .try_into()
        .map_err(|_| CredentialStoreError::Corrupt(format!("a nonce is not {NONCE_LEN} bytes")))
}

fn slot_from(kind: &str, owner: &str, name: &str) -> Result<SecretSlot> {
    let corrupt = || CredentialStoreError::Corrupt(format!("secret {kind}/{owner}/{name} has an invalid address"));
    Ok(SecretSlot {
        kind: SecretKind::parse(kind).ok_or_else(corrupt)?,
        owner: SecretOwner::parse(owner).ok_or_else(corrupt)?,
        name: SecretName::parse(name).ok_or_else(corrupt)?,
    })
}

/// What a credential's secret is to be: sealed in the vault, or a connected account's token.
enum NewSource<'a> {
    Sealed(&'a Sealed),
    Account(&'a Vendor),
}

type CredentialRow = (
    i64,
    String,
    Option<String>,
    String,
    (String, String, String, String),
    String,
    (Option<i64>, Option<String>),
    (i64, i64),
);

fn credential_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?),
        r.get(8)?,
        (r.get(9)?, r.get(10)?),
        (r.get(11)?, r.get(12)?),
    ))
}

fn credential_from(row: CredentialRow) -> Result<Credential> {
    let (id, server, profile, name, (hosts, header, format, env_name), placeholder, secret, (created, updated)) = row;
    let corrupt = |what: &str| CredentialStoreError::Corrupt(format!("credential {id}: invalid {what}"));
    Ok(Credential {
        id: CredentialId(id),
        spec: CredentialSpec {
            server: ServerName::parse(&server).map_err(|_| corrupt("server"))?,
            profile: profile
                .map(|p| ProfileSlug::parse(&p))
                .transpose()
                .map_err(|_| corrupt("profile"))?,
            name: CredentialName::parse(&name).map_err(|_| corrupt("name"))?,
            hosts: HostList::parse(&hosts).map_err(|_| corrupt("hosts"))?,
            header: HeaderName::parse(&header).map_err(|_| corrupt("header"))?,
            format: Format::parse(&format).map_err(|_| corrupt("format"))?,
            env_name: EnvName::parse(&env_name).map_err(|_| corrupt("variable"))?,
        },
        placeholder: Placeholder::parse(&placeholder).ok_or_else(|| corrupt("placeholder"))?,
        source: match secret {
            (Some(id), None) => CredentialSource::Vault(SecretId(id)),
            (None, Some(vendor)) => CredentialSource::Account(Vendor::parse(&vendor).map_err(|_| corrupt("vendor"))?),
            _ => return Err(corrupt("secret source")),
        },
        created_at: created,
        updated_at: updated,
    })
}
