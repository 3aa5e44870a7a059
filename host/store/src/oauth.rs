//! OAuth apps and connected accounts (migration 12). Settings and connection metadata are rows; client
//! secrets and tokens are sealed secrets in the vault's table, written in the same transaction as the row
//! that uses them (a refresh that rotated the refresh token stores both tokens and the expiry at once).
//! Nothing here returns a secret's plaintext, nor ciphertext in a list.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::credentials::{CredentialStoreError, upsert_secret};
use crate::{Store, now};
use gigmcp_types::oauth::{App, Connection, ConnectionState, Owner, TokenKind, Vendor, client_secret_slot};
use gigmcp_types::secret::Sealed;

type Result<T, E = CredentialStoreError> = std::result::Result<T, E>;

/// An app as stored: its settings, whether it has a client secret, when it was set.
#[derive(Debug, Clone)]
pub struct StoredApp {
    pub app: App,
    pub has_secret: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What becomes of an app's client secret when its settings are written.
pub enum ClientSecret<'a> {
    Keep,
    Set(&'a Sealed),
    Remove,
}

/// New tokens for a connection, sealed.
pub struct Tokens<'a> {
    pub access: &'a Sealed,
    /// `None` on a refresh: the refresh token stays as it is (the provider did not rotate it).
    pub refresh: Option<&'a Sealed>,
    pub expires_at: i64,
    pub scopes: &'a [String],
}

fn corrupt(what: String) -> CredentialStoreError {
    CredentialStoreError::Corrupt(what)
}

const CONNECTION_COLUMNS: &str =
    "user_id, vendor, scopes, expires_at, refreshable, state, detail, connected_at, refreshed_at";

fn connection_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Connection>> {
    let user: Option<i64> = r.get(0)?;
    let vendor: String = r.get(1)?;
    let scopes: String = r.get(2)?;
    let state: String = r.get(5)?;
    Ok((|| {
        Ok(Connection {
            owner: match user {
                Some(id) => Owner::User(gigmcp_types::ids::UserId(id)),
                None => Owner::Operator,
            },
            vendor: Vendor::parse(&vendor).map_err(|_| corrupt(format!("connection vendor {vendor:?}")))?,
            scopes: scopes.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            expires_at: r.get(3)?,
            refreshable: r.get(4)?,
            state: ConnectionState::parse(&state).ok_or_else(|| corrupt(format!("connection state {state:?}")))?,
            detail: r.get(6)?,
            connected_at: r.get(7)?,
            refreshed_at: r.get(8)?,
        })
    })())
}

impl Store {
    /// Creates or replaces an app; returns whether it was created.
    pub fn put_oauth_app(&self, app: &App, secret: ClientSecret<'_>) -> Result<bool> {
        let settings = serde_json::to_string(app).map_err(|e| corrupt(e.to_string()))?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let time = now();
        let created = tx.execute(
            "INSERT INTO oauth_apps (vendor, settings, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (vendor) DO NOTHING",
            params![app.vendor.as_str(), settings, time],
        )? == 1;
        if !created {
            tx.execute(
                "UPDATE oauth_apps SET settings = ?2, updated_at = ?3 WHERE vendor = ?1",
                params![app.vendor.as_str(), settings, time],
            )?;
        }
        let slot = client_secret_slot(&app.vendor);
        match secret {
            ClientSecret::Keep => {}
            ClientSecret::Set(sealed) => {
                upsert_secret(&tx, &slot, sealed)?;
            }
            ClientSecret::Remove => {
                tx.execute(
                    "DELETE FROM secrets WHERE kind = ?1 AND owner = ?2 AND name = ?3",
                    params![slot.kind.as_str(), slot.owner.to_string(), slot.name.as_str()],
                )?;
            }
        }
        tx.commit()?;
        Ok(created)
    }

    /// Adds an app only if the vendor has none (start-up seeds: what the database holds wins); whether it did.
    pub fn seed_oauth_app(&self, app: &App, secret: Option<&Sealed>) -> Result<bool> {
        if self.oauth_app(&app.vendor)?.is_some() {
            return Ok(false);
        }
        self.put_oauth_app(app, secret.map_or(ClientSecret::Remove, ClientSecret::Set))
    }

    pub fn oauth_app(&self, vendor: &Vendor) -> Result<Option<StoredApp>> {
        Ok(self.oauth_apps()?.into_iter().find(|a| &a.app.vendor == vendor))
    }

    /// Every app, by vendor.
    pub fn oauth_apps(&self) -> Result<Vec<StoredApp>> {
        let conn = self.lock();
        let mut stmt = conn.prepare(
            "SELECT a.vendor, a.settings, a.created_at, a.updated_at,
               EXISTS (SELECT 1 FROM secrets s WHERE s.kind = 'oauth-client-secret' AND s.owner = 'gateway'
                       AND s.name = a.vendor)
             FROM oauth_apps a ORDER BY a.vendor",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        rows.map(|row| {
            let (vendor, settings, created_at, updated_at, has_secret) = row?;
            let app: App = serde_json::from_str(&settings).map_err(|e| corrupt(format!("OAuth app {vendor}: {e}")))?;
            Ok(StoredApp {
                app,
                has_secret,
                created_at,
                updated_at,
            })
        })
        .collect()
    }

    /// Deletes an app and its client secret (connections stay: set the app again and they refresh again);
    /// whether there was one.
    pub fn delete_oauth_app(&self, vendor: &Vendor) -> Result<bool> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let deleted = tx.execute("DELETE FROM oauth_apps WHERE vendor = ?1", [vendor.as_str()])? == 1;
        let slot = client_secret_slot(vendor);
        tx.execute(
            "DELETE FROM secrets WHERE kind = ?1 AND owner = ?2 AND name = ?3",
            params![slot.kind.as_str(), slot.owner.to_string(), slot.name.as_str()],
        )?;
        tx.commit()?;
        Ok(deleted)
    }

    /// Makes or replaces `owner`'s connection to `vendor` with new tokens (a connect): state ok.
    pub fn put_connection(&self, owner: Owner, vendor: &Vendor, tokens: &Tokens<'_>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user = owner.user().map(|u| u.0);
        // A reconnect replaces the row: its delete trigger removes the old tokens, which are written anew.
        tx.execute(
            "DELETE FROM oauth_connections WHERE COALESCE(user_id, 0) = COALESCE(?1, 0) AND vendor = ?2",
            params![user, vendor.as_str()],
        )?;
        upsert_secret(&tx, &owner.token_slot(vendor, TokenKind::Access), tokens.access)?;
        if let Some(refresh) = tokens.refresh {
            upsert_secret(&tx, &owner.token_slot(vendor, TokenKind::Refresh), refresh)?;
        }
        tx.execute(
            "INSERT INTO oauth_connections (user_id, vendor, scopes, expires_at, refreshable, state, connected_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'ok', ?6)",
            params![
                user,
                vendor.as_str(),
                tokens.scopes.join(" "),
                tokens.expires_at,
                tokens.refresh.is_some(),
                now()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a refresh's outcome: the new access token, the new refresh token when the provider rotated it,
    /// the expiry and the granted scopes, in one transaction (a crash never keeps a new access token with a
    /// refresh token the provider has already retired). Refused when the connection is gone.
    pub fn refreshed_connection(&self, owner: Owner, vendor: &Vendor, tokens: &Tokens<'_>) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user = owner.user().map(|u| u.0);
        let updated = tx.execute(
            "UPDATE oauth_connections SET scopes = ?3, expires_at = ?4, state = 'ok', detail = NULL,
               refreshed_at = ?5, refreshable = refreshable OR ?6
             WHERE COALESCE(user_id, 0) = COALESCE(?1, 0) AND vendor = ?2",
            params![
                user,
                vendor.as_str(),
                tokens.scopes.join(" "),
                tokens.expires_at,
                now(),
                tokens.refresh.is_some()
            ],
        )?;
        if updated == 0 {
            return Err(corrupt(format!("{owner} has no {vendor} connection any more")));
        }
        upsert_secret(&tx, &owner.token_slot(vendor, TokenKind::Access), tokens.access)?;
        if let Some(refresh) = tokens.refresh {
            upsert_secret(&tx, &owner.token_slot(vendor, TokenKind::Refresh), refresh)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets a connection's state (`needs-reconnect` with why); whether there was a connection.
    pub fn mark_connection(
        &self,
        owner: Owner,
        vendor: &Vendor,
        state: ConnectionState,
        detail: Option<&str>,
    ) -> Result<bool> {
        let conn = self.lock();
        let updated = conn.execute(
            "UPDATE oauth_connections SET state = ?3, detail = ?4
             WHERE COALESCE(user_id, 0) = COALESCE(?1, 0) AND vendor = ?2",
            params![owner.user().map(|u| u.0), vendor.as_str(), state.as_str(), detail],
        )?;
        Ok(updated == 1)
    }

    pub fn connection(&self, owner: Owner, vendor: &Vendor) -> Result<Option<Connection>> {
        let conn = self.lock();
        conn.query_row(
            &format!(
                "SELECT {CONNECTION_COLUMNS} FROM oauth_connections
                 WHERE COALESCE(user_id, 0) = COALESCE(?1, 0) AND vendor = ?2"
            ),
            params![owner.user().map(|u| u.0), vendor.as_str()],
            connection_from,
        )
        .optional()?
        .transpose()
    }

    /// Connections, of one owner or of everyone, by owner (the operator first) and vendor.
    pub fn connections(&self, owner: Option<Owner>) -> Result<Vec<Connection>> {
        let conn = self.lock();
        let (all, user) = match owner {
            None => (true, None),
            Some(owner) => (false, owner.user().map(|u| u.0)),
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT {CONNECTION_COLUMNS} FROM oauth_connections
             WHERE ?1 OR COALESCE(user_id, 0) = COALESCE(?2, 0)
             ORDER BY COALESCE(user_id, 0), vendor"
        ))?;
        let rows = stmt.query_map(params![all, user], connection_from)?;
        rows.map(|row| row?).collect()
    }

    /// Deletes a connection and its tokens; whether there was one.
    pub fn delete_connection(&self, owner: Owner, vendor: &Vendor) -> Result<bool> {
        let conn = self.lock();
        let deleted = conn.execute(
            "DELETE FROM oauth_connections WHERE COALESCE(user_id, 0) = COALESCE(?1, 0) AND vendor = ?2",
            params![owner.user().map(|u| u.0), vendor.as_str()],
        )?;
        Ok(deleted == 1)
    }
}
