//! `gigmcp oauth …`: OAuth apps per vendor (an admin's, the operator's here) and the connected accounts
//! made with them. A client secret is read from standard input only; no command prints a secret or a token.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use zeroize::Zeroize;

use crate::config::{ConfigError, Env, Paths};
use gigmcp_oauth::{Broker, SecretInput};
use gigmcp_types::audit::{NewAuditEvent, Outcome};
use gigmcp_types::oauth::{App, AuthStyle, DEFAULT_EXPIRES_IN, Owner, Vendor, split_scopes};

#[derive(clap::Subcommand)]
pub enum OAuthCommand {
    /// OAuth apps: one per vendor, used by every connection to that vendor.
    #[command(subcommand)]
    App(AppCommand),
    /// List connected accounts (never a token): everyone's, or one user's (`--user <id>`) or the operator's.
    Connections {
        /// A user id, `operator` (the connections profiles without an owner use) or `all`.
        #[arg(long, default_value = "all")]
        user: String,
    },
    /// Remove a connected account (revoked at the provider when the app has a revocation endpoint).
    Disconnect {
        vendor: String,
        /// Whose: a user id, or `operator`.
        #[arg(long)]
        user: String,
    },
}

#[derive(clap::Subcommand)]
pub enum AppCommand {
    /// Set up or change a vendor's OAuth app. The client secret is read from standard input (pipe it in;
    /// without one the stored secret is kept; a `--pkce` public client needs none).
    Set(Box<AppSet>),
    /// List the apps (never a secret).
    List,
    /// Remove a vendor's app and its client secret (its connections stay, unable to refresh until it is set
    /// again).
    Delete { vendor: String },
}

#[derive(clap::Args)]
pub struct AppSet {
    vendor: String,
    #[arg(long)]
    authorize_url: String,
    #[arg(long)]
    token_url: String,
    #[arg(long)]
    client_id: String,
    /// RFC 7009 revocation endpoint, used when an account is disconnected.
    #[arg(long)]
    revoke_url: Option<String>,
    /// Scopes every connection asks for (commas or spaces), besides those installed servers need.
    #[arg(long, default_value = "")]
    scopes: String,
    /// A public client: PKCE without a client secret (PKCE S256 is used on every connection anyway).
    #[arg(long)]
    pkce: bool,
    /// An extra authorization parameter, `name=value` (repeatable): `--param audience=api.atlassian.com`.
    #[arg(long = "param")]
    params: Vec<String>,
    /// How the client authenticates at the token endpoint: basic (HTTP Basic) or post (in the form).
    #[arg(long, default_value = "basic")]
    auth_style: String,
    /// How scopes are joined in the authorization request: a space, or a comma (Slack).
    #[arg(long, default_value = " ")]
    scope_separator: String,
    /// Seconds an access token is taken to live when the provider does not say.
    #[arg(long, default_value_t = DEFAULT_EXPIRES_IN)]
    default_expires_in: u64,
    /// Accept connections without a refresh token (for providers whose tokens do not expire).
    #[arg(long)]
    no_refresh_token: bool,
}

fn broker(env: &Env, paths: &Paths) -> Result<(Broker, Arc<gigmcp_store::Store>)> {
    let store = Arc::new(crate::cli::open_store_at(paths)?);
    let mut master =
        crate::cli::vault::master_key("GIG_MASTER_KEY", "GIG_MASTER_KEY_FILE")?.ok_or(ConfigError::Missing {
            name: "GIG_MASTER_KEY",
            hint: "OAuth apps' secrets and connections' tokens are in the vault; set GIG_MASTER_KEY or \
                   GIG_MASTER_KEY_FILE to the gateway's key",
        })?;
    let vault = gigmcp_vault::Vault::open(store.clone(), &master);
    master.0.zeroize();
    let settings = crate::config::egress_settings(env, 8081)?;
    let broker = Broker::new(store.clone(), Arc::new(vault?), None, &settings)?;
    Ok((broker, store))
}

fn audit(store: &gigmcp_store::Store, kind: &str, detail: serde_json::Value) -> Result<()> {
    gigmcp_audit::write_now(
        store,
        NewAuditEvent {
            kind: kind.into(),
            actor: "operator".into(),
            profile: None,
            server: None,
            outcome: Outcome::Ok,
            detail,
        },
    )?;
    Ok(())
}

fn owner(text: &str) -> Result<Owner> {
    Owner::parse(text).ok_or_else(|| anyhow::anyhow!("invalid --user {text:?}: give a user id or `operator`"))
}

pub fn run(command: OAuthCommand, env: &Env) -> Result<()> {
    let paths = Paths::from_env(env)?;
    match command {
        OAuthCommand::App(AppCommand::Set(set)) => {
            let AppSet {
                vendor,
                authorize_url,
                token_url,
                client_id,
                revoke_url,
                scopes,
                pkce,
                params,
                auth_style,
                scope_separator,
                default_expires_in,
                no_refresh_token,
            } = *set;
            let params = params
                .iter()
                .map(|p| {
                    p.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .ok_or_else(|| anyhow::anyhow!("invalid --param {p:?}: give name=value"))
                })
                .collect::<Result<Vec<_>>>()?;
            let app = App {
                vendor: Vendor::parse(&vendor)?,
                authorize_url,
                token_url,
                revoke_url,
                client_id,
                scopes: split_scopes(&scopes),
                pkce,
                params,
                auth_style: AuthStyle::parse(&auth_style)?,
                scope_separator,
                require_refresh_token: !no_refresh_token,
                default_expires_in,
            };
            // Everything is checked before the secret is read or the vault opened.
            app.check()?;
            let secret = if std::io::stdin().is_terminal() {
                SecretInput::Keep
            } else {
                let input = crate::cli::vault::read_stdin("")?;
                if input.iter().all(u8::is_ascii_whitespace) {
                    SecretInput::Keep
                } else {
                    SecretInput::Set(gigmcp_types::credential::secret_from_input(input)?)
                }
            };
            let (broker, store) = broker(env, &paths)?;
            let created = broker.put_app("operator", &app, secret)?;
            audit(
                &store,
                "oauth.app_set",
                json!({"vendor": app.vendor.as_str(), "created": created}),
            )?;
            println!(
                "{} the OAuth app of {}; its redirect URI is <GIG_PUBLIC_URL>/api/connections/callback",
                if created { "set up" } else { "changed" },
                app.vendor
            );
            let needing = broker.servers_needing(&app.vendor)?;
            if !needing.is_empty() {
                println!("  servers that use it: {}", needing.join(", "));
            }
            Ok(())
        }
        OAuthCommand::App(AppCommand::List) => {
            let store = crate::cli::open_store_at(&paths)?;
            let apps = store.oauth_apps()?;
            if apps.is_empty() {
                println!("no OAuth apps; set one up with `gigmcp oauth app set <vendor> …`");
            }
            for stored in apps {
                let app = &stored.app;
                println!(
                    "{}\tclient {}\t{}\ttoken {}\tscopes {}{}",
                    app.vendor,
                    app.client_id,
                    if stored.has_secret {
                        "secret set"
                    } else {
                        "public (PKCE)"
                    },
                    app.token_url,
                    if app.scopes.is_empty() {
                        "-".to_owned()
                    } else {
                        app.scopes.join(" ")
                    },
                    app.revoke_url
                        .as_ref()
                        .map(|u| format!("\trevoke {u}"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        OAuthCommand::App(AppCommand::Delete { vendor }) => {
            let vendor = Vendor::parse(&vendor)?;
            let store = crate::cli::open_store_at(&paths)?;
            if !store.delete_oauth_app(&vendor)? {
                bail!("no OAuth app for vendor {vendor}; `gigmcp oauth app list` shows them");
            }
            audit(&store, "oauth.app_delete", json!({"vendor": vendor.as_str()}))?;
            println!("removed the OAuth app of {vendor}");
            Ok(())
        }
        OAuthCommand::Connections { user } => {
            let store = crate::cli::open_store_at(&paths)?;
            let filter = if user == "all" { None } else { Some(owner(&user)?) };
            let connections = store.connections(filter)?;
            if connections.is_empty() {
                println!("no connected accounts");
            }
            let now = gigmcp_types::sync::now_secs();
            for c in connections {
                let whose = match c.owner {
                    Owner::User(id) => format!("user {}", id.0),
                    Owner::Operator => "operator".into(),
                };
                println!(
                    "{}\t{whose}\t{}\texpires in {}s\t{}\tscopes {}{}",
                    c.vendor,
                    c.state.as_str(),
                    c.expires_at - now,
                    if c.refreshable {
                        "refreshable"
                    } else {
                        "no refresh token"
                    },
                    c.scopes.join(" "),
                    c.detail.map(|d| format!("\t{d}")).unwrap_or_default()
                );
            }
            Ok(())
        }
        OAuthCommand::Disconnect { vendor, user } => {
            let vendor = Vendor::parse(&vendor)?;
            let owner = owner(&user)?;
            let (broker, store) = broker(env, &paths)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (deleted, revoke_error) = runtime
                .block_on(broker.disconnect("operator", owner, &vendor))
                .context("cannot disconnect")?;
            if !deleted {
                bail!("no {vendor} account is connected for {owner}; `gigmcp oauth connections` lists them");
            }
            audit(
                &store,
                "oauth.disconnect",
                json!({"vendor": vendor.as_str(), "owner": user, "revoke_error": revoke_error}),
            )?;
            println!("disconnected the {vendor} account of {owner}");
            if let Some(e) = revoke_error {
                println!("  note: revoking it at the provider failed ({e}); the gateway forgot its tokens anyway");
            }
            Ok(())
        }
    }
}
