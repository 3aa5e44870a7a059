//! Connected accounts: the OAuth broker. See README.md beside `src/` for what was decided and why.
//!
//! An admin sets up one OAuth app per vendor (`put_app`); a user connects their account of that vendor
//! (the control plane runs the authorization-code flow with PKCE and hands the code to `connect`); the
//! egress proxy asks `access_token` (the [`AccountTokens`] it is given) for the token of the profile owner's
//! connection at every request that carries an oauth2 credential's placeholder. A token within 60 s of its
//! expiry is refreshed first, one refresh per (owner, vendor) at a time; a rotated refresh token is stored in
//! the same transaction as the new access token; `invalid_grant` marks the connection `needs-reconnect`.
//! Every call to a provider is guarded as the proxy's dials are (`client.rs`).
//!
//! Depends on types, store, vault, audit and egress (for the dial guard, its settings and the TLS roots);
//! the control plane and the binary use it. Never logs, audits or returns a token.

#![forbid(unsafe_code)]

pub mod client;
pub mod flow;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use thiserror::Error;
use zeroize::Zeroizing;

use gigmcp_audit::AuditLog;
use gigmcp_egress::{AccountError, AccountTokens, EgressSettings, TokenFuture};
use gigmcp_store::Store;
use gigmcp_store::credentials::CredentialStoreError;
use gigmcp_store::oauth::{ClientSecret, StoredApp, Tokens};
use gigmcp_types::audit::{NewAuditEvent, Outcome};
use gigmcp_types::oauth::{
    App, AppInputError, Connection, ConnectionState, Owner, TokenKind, Vendor, client_secret_slot,
};
use gigmcp_types::secret::{Sealed, Secret};
use gigmcp_types::sync::now_secs;
use gigmcp_vault::{Vault, VaultError};

pub use client::{CallError, Guarded};

/// A token is refreshed when it expires within this many seconds (or half its lifetime, for tokens that
/// live less than two minutes: a 60 s margin would refresh a 30 s token at every use).
pub const REFRESH_MARGIN_SECS: i64 = 60;

/// How long before its expiry a connection's access token is refreshed.
pub fn refresh_margin(connection: &Connection) -> i64 {
    let issued = connection.refreshed_at.unwrap_or(connection.connected_at);
    let lifetime = (connection.expires_at - issued).max(0);
    REFRESH_MARGIN_SECS.min(lifetime / 2)
}

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error(transparent)]
    Input(#[from] AppInputError),
    #[error("{0}")]
    Unsafe(String),
    #[error("no OAuth app is set up for vendor {0}; an admin sets one with `gigmcp oauth app set {0} …`")]
    NoApp(Vendor),
    #[error("{0}")]
    Provider(String),
    #[error(transparent)]
    Store(#[from] CredentialStoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("cannot set up TLS for providers: {0}")]
    Tls(#[from] rustls::Error),
}

/// What becomes of an app's client secret when it is set.
pub enum SecretInput {
    /// Keep the stored one (an update that does not repeat it).
    Keep,
    Set(Secret),
}

/// The broker: shared by the proxy (tokens), the control plane (apps, connect, disconnect) and the CLI.
pub struct Broker {
    store: Arc<Store>,
    vault: Arc<Vault>,
    audit: Option<AuditLog>,
    guarded: Guarded,
    /// One refresh per (owner, vendor) at a time: a provider that rotates refresh tokens revokes the whole
    /// grant when one is used twice, so two refreshes at once would lose the connection.
    refreshing: Mutex<RefreshLocks>,
}

/// One lock per (owner, vendor) that has been refreshed.
type RefreshLocks = HashMap<(Owner, Vendor), Arc<tokio::sync::Mutex<()>>>;

/// What the end of an authorization-code flow gives the exchange.
pub struct Exchange<'a> {
    pub code: &'a str,
    /// The flow's PKCE verifier.
    pub verifier: &'a str,
    /// The callback the code was sent to (the token endpoint checks it is the same).
    pub redirect_uri: &'a str,
    /// The scopes asked for, kept when the provider does not say which it granted.
    pub requested: &'a [String],
}

impl Broker {
    pub fn new(
        store: Arc<Store>,
        vault: Arc<Vault>,
        audit: Option<AuditLog>,
        settings: &EgressSettings,
    ) -> Result<Self, BrokerError> {
        Ok(Self {
            store,
            vault,
            audit,
            guarded: Guarded::new(settings)?,
            refreshing: Mutex::default(),
        })
    }

    fn record(&self, kind: &str, actor: &str, outcome: Outcome, detail: serde_json::Value) {
        if let Some(audit) = &self.audit {
            audit.record(NewAuditEvent {
                kind: kind.into(),
                actor: actor.into(),
                profile: None,
                server: None,
                outcome,
                detail,
            });
        }
    }

    // ---- apps

    /// Checks an app as `put_app` would, without writing: its settings, and that its URLs do not name an
    /// address the gateway never calls.
    pub fn check_app(&self, app: &App) -> Result<(), BrokerError> {
        app.check()?;
        for (field, url) in [("authorize URL", &app.authorize_url), ("token URL", &app.token_url)]
            .into_iter()
            .chain(app.revoke_url.as_ref().map(|u| ("revocation URL", u)))
        {
            let parsed = url::Url::parse(url).map_err(|e| BrokerError::Unsafe(format!("{field} {url}: {e}")))?;
            self.guarded
                .check_literal(&parsed)
                .map_err(|why| BrokerError::Unsafe(format!("invalid {field} {url:?}: {why}")))?;
        }
        Ok(())
    }

    /// Creates or replaces a vendor's app; returns whether it was created. A confidential app needs a client
    /// secret (given now, or kept from before); a public (`pkce`) one may have none.
    pub fn put_app(&self, actor: &str, app: &App, secret: SecretInput) -> Result<bool, BrokerError> {
        self.check_app(app)?;
        let had_secret = self.store.oauth_app(&app.vendor)?.is_some_and(|a| a.has_secret);
        let sealed = match &secret {
            SecretInput::Set(secret) => Some(self.vault.seal(&client_secret_slot(&app.vendor), secret)?),
            SecretInput::Keep => None,
        };
        if sealed.is_none() && !had_secret && !app.pkce {
            return Err(AppInputError::NoSecret(app.vendor.to_string()).into());
        }
        let created = self.store.put_oauth_app(
            app,
            match &sealed {
                Some(sealed) => ClientSecret::Set(sealed),
                None => ClientSecret::Keep,
            },
        )?;
        self.record(
            "oauth.app_set",
            actor,
            Outcome::Ok,
            json!({"vendor": app.vendor.as_str(), "created": created, "secret_changed": sealed.is_some(),
                   "authorize_url": app.authorize_url, "token_url": app.token_url}),
        );
        Ok(created)
    }

    /// Adds an app at start-up (`GIG_OAUTH_<VENDOR>_*`) when the vendor has none; checked as `put_app`.
    pub fn seed_app(&self, app: &App, secret: Option<Secret>) -> Result<bool, BrokerError> {
        self.check_app(app)?;
        if secret.is_none() && !app.pkce {
            return Err(AppInputError::NoSecret(app.vendor.to_string()).into());
        }
        let sealed = secret
            .map(|s| self.vault.seal(&client_secret_slot(&app.vendor), &s))
            .transpose()?;
        let seeded = self.store.seed_oauth_app(app, sealed.as_ref())?;
        if seeded {
            self.record(
                "oauth.app_set",
                "gateway",
                Outcome::Ok,
                json!({"vendor": app.vendor.as_str(), "created": true, "seeded": true}),
            );
        }
        Ok(seeded)
    }

    pub fn delete_app(&self, actor: &str, vendor: &Vendor) -> Result<bool, BrokerError> {
        let deleted = self.store.delete_oauth_app(vendor)?;
        if deleted {
            self.record(
                "oauth.app_delete",
                actor,
                Outcome::Ok,
                json!({"vendor": vendor.as_str()}),
            );
        }
        Ok(deleted)
    }

    pub fn app(&self, vendor: &Vendor) -> Result<StoredApp, BrokerError> {
        self.store
            .oauth_app(vendor)?
            .ok_or_else(|| BrokerError::NoApp(vendor.clone()))
    }

    pub fn apps(&self) -> Result<Vec<StoredApp>, BrokerError> {
        Ok(self.store.oauth_apps()?)
    }

    /// The scopes a connection to `vendor` asks for: the app's, and those of every installed server's
    /// oauth2 credential of that vendor, each once, sorted.
    pub fn scopes_for(&self, app: &App) -> Result<Vec<String>, BrokerError> {
        let mut scopes = app.scopes.clone();
        for def in self.servers()? {
            for credential in def.spec.account_credentials(app.vendor.as_str()) {
                scopes.extend(credential.scopes.iter().cloned());
            }
        }
        scopes.retain(|s| !s.is_empty());
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }

    /// The installed servers with an oauth2 credential of `vendor`.
    pub fn servers_needing(&self, vendor: &Vendor) -> Result<Vec<String>, BrokerError> {
        Ok(self
            .servers()?
            .into_iter()
            .filter(|def| def.spec.account_credentials(vendor.as_str()).next().is_some())
            .map(|def| def.name.to_string())
            .collect())
    }

    fn servers(&self) -> Result<Vec<gigmcp_types::server::ServerDef>, BrokerError> {
        self.store
            .list_servers()
            .map_err(|e| BrokerError::Provider(format!("cannot read the servers: {e}")))
    }

    fn client_secret(&self, app: &StoredApp) -> Result<Option<Secret>, BrokerError> {
        if !app.has_secret {
            return Ok(None);
        }
        Ok(self.vault.get(&client_secret_slot(&app.app.vendor))?)
    }

    // ---- connections

    /// Exchanges an authorization code (with its PKCE verifier) and stores the connection: the flow's last
    /// step, after the control plane checked the flow cookie and the state.
    pub async fn connect(
        &self,
        actor: &str,
        owner: Owner,
        vendor: &Vendor,
        exchange: Exchange<'_>,
    ) -> Result<Connection, BrokerError> {
        let app = self.app(vendor)?;
        let secret = self.client_secret(&app)?;
        let form = vec![
            ("grant_type", Zeroizing::new("authorization_code".to_owned())),
            ("code", Zeroizing::new(exchange.code.to_owned())),
            ("redirect_uri", Zeroizing::new(exchange.redirect_uri.to_owned())),
            ("code_verifier", Zeroizing::new(exchange.verifier.to_owned())),
        ];
        // A refusal is audited by the caller, which refuses the whole callback.
        let failed = BrokerError::Provider;
        let answer = match self.guarded.token(&app.app, secret.as_ref(), form).await {
            Ok(answer) => answer,
            Err(e) => return Err(failed(format!("code exchange failed: {e}"))),
        };
        if answer.refresh_token.is_none() && app.app.require_refresh_token {
            return Err(failed(format!(
                "the provider gave no refresh token, so the connection could not be kept working past the access \
                 token's expiry; the {vendor} app must ask for offline access (a scope such as offline_access, or a \
                 parameter such as access_type=offline)"
            )));
        }
        let scopes = granted_scopes(answer.scope.as_deref(), exchange.requested);
        let expires_at = now_secs() + answer.expires_in.unwrap_or(app.app.default_expires_in) as i64;
        let (access, refresh) = self.seal_tokens(owner, vendor, &answer)?;
        self.store.put_connection(
            owner,
            vendor,
            &Tokens {
                access: &access,
                refresh: refresh.as_ref(),
                expires_at,
                scopes: &scopes,
            },
        )?;
        self.record(
            "oauth.connect",
            actor,
            Outcome::Ok,
            json!({"vendor": vendor.as_str(), "owner": owner.to_json(), "scopes": scopes,
                   "expires_at": expires_at, "refreshable": refresh.is_some()}),
        );
        self.store
            .connection(owner, vendor)?
            .ok_or_else(|| BrokerError::Provider("the connection vanished as it was stored".into()))
    }

    /// A token answer's access token and (when there is one) refresh token, sealed for their slots.
    fn seal_tokens(
        &self,
        owner: Owner,
        vendor: &Vendor,
        answer: &client::TokenAnswer,
    ) -> Result<(Sealed, Option<Sealed>), BrokerError> {
        let access = self
            .vault
            .seal(&owner.token_slot(vendor, TokenKind::Access), &answer.access_token)?;
        let refresh = answer
            .refresh_token
            .as_ref()
            .map(|t| self.vault.seal(&owner.token_slot(vendor, TokenKind::Refresh), t))
            .transpose()?;
        Ok((access, refresh))
    }

    /// Deletes a connection, revoking its refresh token (else its access token) first where the app has a
    /// revocation endpoint; returns whether there was one and, when revoking failed, why (the connection is
    /// deleted anyway: the gateway forgets the tokens).
    pub async fn disconnect(
        &self,
        actor: &str,
        owner: Owner,
        vendor: &Vendor,
    ) -> Result<(bool, Option<String>), BrokerError> {
        if self.store.connection(owner, vendor)?.is_none() {
            return Ok((false, None));
        }
        let mut revoke_error = None;
        let mut revoked = false;
        if let Some(app) = self.store.oauth_app(vendor)?
            && let Some(revoke_url) = app.app.revoke_url.clone()
        {
            let secret = self.client_secret(&app)?;
            let refresh = self.vault.get(&owner.token_slot(vendor, TokenKind::Refresh))?;
            let (token, hint) = match refresh {
                Some(token) => (Some(token), "refresh_token"),
                None => (
                    self.vault.get(&owner.token_slot(vendor, TokenKind::Access))?,
                    "access_token",
                ),
            };
            if let Some(token) = token {
                match self
                    .guarded
                    .revoke(&app.app, &revoke_url, secret.as_ref(), &token, hint)
                    .await
                {
                    Ok(()) => revoked = true,
                    Err(e) => revoke_error = Some(e.to_string()),
                }
            }
        }
        let deleted = self.store.delete_connection(owner, vendor)?;
        self.record(
            "oauth.disconnect",
            actor,
            Outcome::Ok,
            json!({"vendor": vendor.as_str(), "owner": owner.to_json(), "revoked": revoked,
                   "revoke_error": revoke_error}),
        );
        Ok((deleted, revoke_error))
    }

    pub fn connections(&self, owner: Option<Owner>) -> Result<Vec<Connection>, BrokerError> {
        Ok(self.store.connections(owner)?)
    }

    /// The connection's access token, refreshed first when it expires within the margin.
    pub async fn fresh_token(&self, owner: Owner, vendor: &Vendor) -> Result<Secret, AccountError> {
        if let Some(token) = self.current(owner, vendor).await? {
            return Ok(token);
        }
        let lock = {
            let mut refreshing = gigmcp_types::sync::lock(&self.refreshing);
            refreshing.entry((owner, vendor.clone())).or_default().clone()
        };
        let _one_at_a_time = lock.lock().await;
        // Whoever held the lock may have refreshed it.
        if let Some(token) = self.current(owner, vendor).await? {
            return Ok(token);
        }
        self.refresh(owner, vendor).await
    }

    /// The stored access token if it is good for more than the margin; `None` when it must be refreshed.
    async fn current(&self, owner: Owner, vendor: &Vendor) -> Result<Option<Secret>, AccountError> {
        let (store, vault, v) = (self.store.clone(), self.vault.clone(), vendor.clone());
        let read = tokio::task::spawn_blocking(move || -> Result<Option<Secret>, AccountError> {
            let connection = store
                .connection(owner, &v)
                .map_err(|e| refresh_failed(format!("cannot read the connection: {e}")))?
                .ok_or_else(|| not_connected(owner, &v))?;
            if connection.state == ConnectionState::NeedsReconnect {
                return Err(needs_reconnect(owner, &v, connection.detail.as_deref().unwrap_or("")));
            }
            if connection.expires_at - now_secs() > refresh_margin(&connection) {
                return vault
                    .get(&owner.token_slot(&v, TokenKind::Access))
                    .map_err(|e| refresh_failed(format!("cannot open the access token: {e}")))?
                    .ok_or_else(|| refresh_failed("the connection's access token is missing".into()))
                    .map(Some);
            }
            if !connection.refreshable {
                return Err(needs_reconnect(
                    owner,
                    &v,
                    "its access token expired and the provider gave no refresh token",
                ));
            }
            Ok(None)
        });
        read.await.map_err(|e| refresh_failed(e.to_string()))?
    }

    async fn refresh(&self, owner: Owner, vendor: &Vendor) -> Result<Secret, AccountError> {
        let app = match self.store.oauth_app(vendor) {
            Ok(Some(app)) => app,
            Ok(None) => {
                return Err(AccountError {
                    code: "account-no-app",
                    message: format!(
                        "the {vendor} account's token expired and no OAuth app is set up for {vendor} to refresh it; \
                         an admin sets one with `gigmcp oauth app set {vendor} …`"
                    ),
                });
            }
            Err(e) => return Err(refresh_failed(format!("cannot read the {vendor} app: {e}"))),
        };
        let read = || -> Result<(Option<Secret>, Secret, Vec<String>), BrokerError> {
            let secret = self.client_secret(&app)?;
            let refresh = self
                .vault
                .get(&owner.token_slot(vendor, TokenKind::Refresh))?
                .ok_or_else(|| BrokerError::Provider("the refresh token is missing".into()))?;
            let scopes = self
                .store
                .connection(owner, vendor)?
                .map(|c| c.scopes)
                .unwrap_or_default();
            Ok((secret, refresh, scopes))
        };
        let (secret, refresh, scopes) = read().map_err(|e| refresh_failed(e.to_string()))?;
        let form = vec![
            ("grant_type", Zeroizing::new("refresh_token".to_owned())),
            (
                "refresh_token",
                Zeroizing::new(String::from_utf8_lossy(refresh.expose()).into_owned()),
            ),
        ];
        let detail = |outcome: &str| json!({"vendor": vendor.as_str(), "owner": owner.to_json(), "reason": outcome});
        match self.guarded.token(&app.app, secret.as_ref(), form).await {
            Ok(answer) => {
                let expires_in = answer.expires_in.unwrap_or(app.app.default_expires_in);
                let expires_at = now_secs() + expires_in as i64;
                let scopes = granted_scopes(answer.scope.as_deref(), &scopes);
                let stored = (|| -> Result<(), BrokerError> {
                    let (access, refresh) = self.seal_tokens(owner, vendor, &answer)?;
                    self.store.refreshed_connection(
                        owner,
                        vendor,
                        &Tokens {
                            access: &access,
                            refresh: refresh.as_ref(),
                            expires_at,
                            scopes: &scopes,
                        },
                    )?;
                    Ok(())
                })();
                if let Err(e) = stored {
                    self.record("oauth.refresh", "gateway", Outcome::Error, detail(&e.to_string()));
                    return Err(refresh_failed(format!("cannot store the refreshed tokens: {e}")));
                }
                self.record(
                    "oauth.refresh",
                    "gateway",
                    Outcome::Ok,
                    json!({"vendor": vendor.as_str(), "owner": owner.to_json(), "expires_in": expires_in,
                           "rotated": answer.refresh_token.is_some(), "default_expiry": answer.expires_in.is_none()}),
                );
                Ok(answer.access_token)
            }
            Err(CallError::Refused { error, description }) if error == "invalid_grant" => {
                let why = format!(
                    "the provider refused its refresh token (invalid_grant{})",
                    description.map(|d| format!(": {d}")).unwrap_or_default()
                );
                if let Err(e) = self
                    .store
                    .mark_connection(owner, vendor, ConnectionState::NeedsReconnect, Some(&why))
                {
                    tracing::warn!("cannot mark the {vendor} connection of {owner}: {e}");
                }
                self.record("oauth.refresh", "gateway", Outcome::Error, detail(&why));
                Err(needs_reconnect(owner, vendor, &why))
            }
            Err(e) => {
                self.record("oauth.refresh", "gateway", Outcome::Error, detail(&e.to_string()));
                Err(refresh_failed(format!(
                    "cannot refresh the {vendor} account's token of {owner}: {e}"
                )))
            }
        }
    }
}

impl AccountTokens for Broker {
    fn access_token(&self, owner: Owner, vendor: Vendor) -> TokenFuture<'_> {
        Box::pin(async move { self.fresh_token(owner, &vendor).await })
    }
}

/// The scopes the provider says it granted, else those asked for.
fn granted_scopes(answer: Option<&str>, requested: &[String]) -> Vec<String> {
    match answer {
        Some(scope) if !scope.trim().is_empty() => gigmcp_types::oauth::split_scopes(scope),
        _ => requested.to_vec(),
    }
}

fn connect_where(owner: Owner, vendor: &Vendor) -> String {
    match owner {
        Owner::User(_) => format!(
            "the profile's owner connects their {vendor} account on the dashboard's Connected accounts page (or on \
             the server's page)"
        ),
        Owner::Operator => format!(
            "this profile has no owner, so the operator's connection is used: an admin connects {vendor} as the \
             operator on the dashboard's Connected accounts page"
        ),
    }
}

fn not_connected(owner: Owner, vendor: &Vendor) -> AccountError {
    AccountError {
        code: "account-not-connected",
        message: format!(
            "no {vendor} account is connected for {owner}: {}",
            connect_where(owner, vendor)
        ),
    }
}

fn needs_reconnect(owner: Owner, vendor: &Vendor, why: &str) -> AccountError {
    AccountError {
        code: "account-needs-reconnect",
        message: format!(
            "the {vendor} account of {owner} must be connected again ({why}): {}",
            connect_where(owner, vendor)
        ),
    }
}

fn refresh_failed(message: String) -> AccountError {
    AccountError {
        code: "account-refresh-failed",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_scopes_are_the_answers_else_the_request() {
        let requested = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(granted_scopes(Some("b c b"), &requested), vec!["b", "c"]);
        assert_eq!(granted_scopes(Some(" "), &requested), requested);
        assert_eq!(granted_scopes(None, &requested), requested);
    }

    #[test]
    fn tokens_are_refreshed_a_minute_early_or_at_half_their_life() {
        let connection = |issued: i64, expires_at: i64| Connection {
            owner: Owner::Operator,
            vendor: Vendor::parse("acme").unwrap(),
            scopes: vec![],
            expires_at,
            refreshable: true,
            state: ConnectionState::Ok,
            detail: None,
            connected_at: 0,
            refreshed_at: Some(issued),
        };
        assert_eq!(refresh_margin(&connection(1000, 4600)), 60);
        assert_eq!(refresh_margin(&connection(1000, 1010)), 5);
        assert_eq!(refresh_margin(&connection(1000, 900)), 0);
    }

    #[test]
    fn refusals_say_what_to_connect() {
        let vendor = Vendor::parse("acme").unwrap();
        let e = not_connected(Owner::User(gigmcp_types::ids::UserId(3)), &vendor);
        assert_eq!(e.code, "account-not-connected");
        assert!(
            e.message.contains("Connected accounts") && e.message.contains("acme"),
            "{}",
            e.message
        );
        let e = needs_reconnect(Owner::Operator, &vendor, "revoked");
        assert!(
            e.message.contains("connected again (revoked)") && e.message.contains("operator"),
            "{}",
            e.message
        );
    }
}
