//! `gigmcp credential …` and `gigmcp vault …`: the operator's commands for credentials and the master key.
//!
//! Secrets and keys never come from the command line, where other users can read them (`/proc/<pid>/cmdline`)
//! and shells keep them: a credential's secret is read from standard input, a master key from the
//! environment, a file, or standard input. Every argument is validated before anything is read or written.

use std::io::{IsTerminal, Read};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use zeroize::{Zeroize, Zeroizing};

use crate::config::{ConfigError, Paths};
use gigmcp_ops::{Actor, CredentialInput, Ops};
use gigmcp_store::Store;
use gigmcp_types::credential;
use gigmcp_types::credential::{CredentialName, CredentialSpec};
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::secret::Secret;
use gigmcp_types::secret::{MASTER_KEY_HINT, MasterKey};
use gigmcp_vault::Vault;

#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Create or replace a credential. The secret is read from standard input (pipe it in; one trailing
    /// newline is removed); needs GIG_MASTER_KEY. The server gets only a placeholder, in its environment.
    Set(CredentialSet),
    /// List credentials: metadata only, never a secret.
    List {
        /// Only this server's credentials.
        #[arg(long)]
        server: Option<String>,
        /// Only the credentials scoped to this profile.
        #[arg(long)]
        profile: Option<String>,
    },
    /// Delete a credential and its secret.
    Delete {
        server: String,
        name: String,
        /// Delete the profile's own credential rather than the server-wide one.
        #[arg(long)]
        profile: Option<String>,
    },
}

#[derive(Args)]
pub struct CredentialSet {
    /// The server that uses the credential.
    server: String,
    /// The credential's name (a-z, 0-9, '-', '_'); unique per server and scope.
    name: String,
    /// Scope the credential to one profile; it replaces the server-wide credential of the same name there.
    #[arg(long)]
    profile: Option<String>,
    /// The hosts the secret may be sent to, comma-separated: api.example.com, *.example.com, with an optional
    /// :port (443 when omitted). Required, except for a catalog toolpack's credential, whose definition
    /// (hosts, header, format) came with its manifest.
    #[arg(long)]
    hosts: Option<String>,
    /// The header the secret is injected into (default: Authorization, or the catalog definition's).
    #[arg(long)]
    header: Option<String>,
    /// The header's value, with {secret} where the secret goes (default: `Bearer {secret}`, or the catalog
    /// definition's).
    #[arg(long)]
    format: Option<String>,
    /// The variable the server finds the placeholder in (default: the name upper-cased, with _TOKEN).
    #[arg(long)]
    env_name: Option<String>,
}

#[derive(Subcommand)]
pub enum VaultCommand {
    /// Check GIG_MASTER_KEY against the database and show the vault's key id and size.
    Status,
    /// Re-wrap every secret's data key, in one transaction, under a new master key read from
    /// GIG_NEW_MASTER_KEY, GIG_NEW_MASTER_KEY_FILE or standard input; the current key is GIG_MASTER_KEY.
    RotateMasterKey,
}

pub fn credential(command: CredentialCommand, paths: &Paths) -> Result<()> {
    match command {
        CredentialCommand::Set(set) => set_credential(set, paths),
        CredentialCommand::List { server, profile } => {
            let server = server.as_deref().map(ServerName::parse).transpose()?;
            let profile = profile.as_deref().map(ProfileSlug::parse).transpose()?;
            let store = crate::cli::open_store_at(paths)?;
            if let Some(server) = &server {
                store.server(server)?;
            }
            if let Some(slug) = &profile {
                store.profile_config(slug)?;
            }
            list_credentials(&store, server.as_ref(), profile.as_ref())
        }
        CredentialCommand::Delete { server, name, profile } => {
            let server = ServerName::parse(&server)?;
            let name = CredentialName::parse(&name)?;
            let profile = profile.as_deref().map(ProfileSlug::parse).transpose()?;
            let store = crate::cli::open_store_at(paths)?;
            Ops {
                store: &store,
                actor: Actor::Operator,
                audit: None,
            }
            .delete_credential(&server, profile.as_ref(), &name)?;
            match profile {
                None => println!("deleted credential {name} of server {server} (server-wide) and its secret"),
                Some(p) => println!("deleted credential {name} of server {server} (profile {p}) and its secret"),
            }
            Ok(())
        }
    }
}

pub fn vault(command: VaultCommand, paths: &Paths) -> Result<()> {
    let store = Arc::new(crate::cli::open_store_at(paths)?);
    match command {
        VaultCommand::Status => {
            let vault = open_vault(store)?;
            let status = vault.status()?;
            println!("key id:       {}", status.key_id);
            println!("secrets:      {}", status.secrets);
            println!("created:      {}", utc(status.created_at));
            println!(
                "last rotated: {}",
                status.rotated_at.map(utc).unwrap_or_else(|| "never".into())
            );
        }
        VaultCommand::RotateMasterKey => {
            let mut current = master_key("GIG_MASTER_KEY", "GIG_MASTER_KEY_FILE")?.ok_or(ConfigError::Missing {
                name: "GIG_MASTER_KEY",
                hint: "set it to the current master key (or GIG_MASTER_KEY_FILE to a file holding it)",
            })?;
            let mut new = match master_key("GIG_NEW_MASTER_KEY", "GIG_NEW_MASTER_KEY_FILE")? {
                Some(key) => key,
                None => new_key_from_stdin()?,
            };
            let opened = Vault::open(store, &current);
            current.0.zeroize();
            let rotated = opened?.rotate(&new);
            new.0.zeroize();
            let (vault, count) = rotated?;
            println!(
                "re-wrapped {count} secret(s) under the new master key (key id {}).",
                vault.key_id()
            );
            println!(
                "Set GIG_MASTER_KEY (or GIG_MASTER_KEY_FILE) to the new key and restart the gateway: \
                 the old key no longer opens this database."
            );
        }
    }
    Ok(())
}

fn set_credential(set: CredentialSet, paths: &Paths) -> Result<()> {
    let store = Arc::new(crate::cli::open_store_at(paths)?);
    let spec = credential_spec(&store, &set)?;
    store.check_credential_scope(&spec.server, spec.profile.as_ref())?;
    let mut master = master_key("GIG_MASTER_KEY", "GIG_MASTER_KEY_FILE")?.ok_or(ConfigError::Missing {
        name: "GIG_MASTER_KEY",
        hint: "credential set encrypts the secret with the master key; set GIG_MASTER_KEY or GIG_MASTER_KEY_FILE \
               to the gateway's key",
    })?;
    // The secret is read and checked before the vault is opened: a refused secret writes nothing, not even
    // the vault's check record on a new database.
    let secret = read_secret()?;
    let opened = Vault::open(store.clone(), &master);
    master.0.zeroize();
    let ops = Ops {
        store: &store,
        actor: Actor::Operator,
        audit: None,
    };
    let (credential, replaced) = ops.set_credential(&opened?, &spec, &secret)?;
    drop(secret);
    println!(
        "{} credential {} for {}",
        if replaced { "replaced" } else { "set" },
        spec.name,
        spec.scope()
    );
    println!(
        "  the server gets {}={}; the proxy puts the secret into `{}: {}` for {}",
        spec.env_name,
        credential.placeholder.shown(),
        spec.header,
        spec.format,
        spec.hosts
    );
    if let Some(slug) = &spec.profile
        && !store
            .profile_config(slug)?
            .servers
            .iter()
            .any(|s| s.name == spec.server)
    {
        println!(
            "  note: server {} is not in profile {slug} yet; the credential applies once it is added",
            spec.server
        );
    }
    if !replaced {
        println!("  a server already running gets the new variable at its next start");
    }
    Ok(())
}

/// Validates every argument of `credential set` into a spec, before anything is read or written.
/// The flags, with a catalog toolpack's definition of the credential (or the usual defaults) for the ones
/// not given.
fn credential_spec(store: &gigmcp_store::Store, set: &CredentialSet) -> Result<CredentialSpec> {
    let defined = gigmcp_ops::catalog_credential(store, &set.server, &set.name)?;
    let hosts = match (&set.hosts, &defined) {
        (Some(hosts), _) => hosts.clone(),
        (None, Some(defined)) => defined.hosts.join(","),
        (None, None) => anyhow::bail!(
            "--hosts is required: name the hosts the secret may be sent to (only a catalog toolpack's \
             credentials come with their hosts)"
        ),
    };
    let header = set
        .header
        .clone()
        .or(defined.as_ref().map(|d| d.header.clone()))
        .unwrap_or_else(|| "Authorization".into());
    let format = set
        .format
        .clone()
        .or(defined.as_ref().map(|d| d.format.clone()))
        .unwrap_or_else(|| "Bearer {secret}".into());
    let env_name = set.env_name.clone().or(defined.map(|d| d.env));
    Ok(gigmcp_ops::credential_spec(&CredentialInput {
        server: &set.server,
        profile: set.profile.as_deref(),
        name: &set.name,
        hosts: &hosts,
        header: &header,
        format: &format,
        env_name: env_name.as_deref(),
    })?)
}

/// The secret from standard input, which must not be a terminal: typed secrets are echoed to the screen.
fn read_secret() -> Result<Secret> {
    let input = read_stdin(
        "the secret is read from standard input, which is a terminal here (it would be echoed); pipe it in: \
         `printf %s \"$TOKEN\" | gigmcp credential set …` or `gigmcp credential set … < file`",
    )?;
    Ok(credential::secret_from_input(input)?)
}

fn new_key_from_stdin() -> Result<MasterKey> {
    let input = read_stdin(
        "give the new master key in GIG_NEW_MASTER_KEY or GIG_NEW_MASTER_KEY_FILE, or pipe it into standard \
         input (generate one with `openssl rand -hex 32`)",
    )?;
    let text = std::str::from_utf8(&input).map_err(|_| invalid_new_key())?;
    if text.trim().is_empty() {
        bail!(
            "no new master key on standard input: give it in GIG_NEW_MASTER_KEY or GIG_NEW_MASTER_KEY_FILE, or \
             pipe it in (generate one with `openssl rand -hex 32`)"
        );
    }
    MasterKey::parse(text).map_err(|_| invalid_new_key().into())
}

fn invalid_new_key() -> ConfigError {
    ConfigError::Invalid {
        name: "GIG_NEW_MASTER_KEY",
        value: "<redacted>".into(),
        hint: MASTER_KEY_HINT,
    }
}

/// All of standard input, up to a little more than the longest secret, in memory that is zeroized.
pub(crate) fn read_stdin(if_terminal: &str) -> Result<Zeroizing<Vec<u8>>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("{if_terminal}");
    }
    let limit = credential::MAX_SECRET_LEN + 3;
    // Allocated once, large enough that reading never moves (and so never leaves a copy behind).
    let mut input = Zeroizing::new(Vec::with_capacity(limit + 64));
    stdin
        .lock()
        .take(limit as u64)
        .read_to_end(&mut input)
        .context("cannot read standard input")?;
    Ok(input)
}

/// A master key from `name` or `<name>_FILE` (not both); `None` when neither is set.
pub(crate) fn master_key(name: &'static str, file_name: &'static str) -> Result<Option<MasterKey>, ConfigError> {
    let invalid = || ConfigError::Invalid {
        name,
        value: "<redacted>".into(),
        hint: MASTER_KEY_HINT,
    };
    let inline = std::env::var(name).ok().filter(|v| !v.is_empty()).map(Zeroizing::new);
    let file = std::env::var(file_name).ok().filter(|v| !v.is_empty());
    let text = match (inline, file) {
        (Some(_), Some(_)) => return Err(ConfigError::Both { name }),
        (Some(text), None) => text,
        (None, Some(path)) => Zeroizing::new(std::fs::read_to_string(&path).map_err(|source| ConfigError::File {
            name: file_name,
            path,
            source,
        })?),
        (None, None) => return Ok(None),
    };
    MasterKey::parse(&text).map(Some).map_err(|_| invalid())
}

fn open_vault(store: Arc<Store>) -> Result<Vault> {
    let mut master = master_key("GIG_MASTER_KEY", "GIG_MASTER_KEY_FILE")?.ok_or(ConfigError::Missing {
        name: "GIG_MASTER_KEY",
        hint: "set it (or GIG_MASTER_KEY_FILE) to the gateway's master key",
    })?;
    let opened = Vault::open(store, &master);
    master.0.zeroize();
    Ok(opened?)
}

fn list_credentials(store: &Store, server: Option<&ServerName>, profile: Option<&ProfileSlug>) -> Result<()> {
    let credentials = store.credentials(server, profile)?;
    println!(
        "{:<20} {:<16} {:<20} {:<24} {:<14} {:<16} {:<20} {:<20} HOSTS",
        "SERVER", "PROFILE", "NAME", "VARIABLE", "PLACEHOLDER", "HEADER", "FORMAT", "CREATED"
    );
    for c in &credentials {
        println!(
            "{:<20} {:<16} {:<20} {:<24} {:<14} {:<16} {:<20} {:<20} {}",
            c.spec.server.as_str(),
            c.spec.profile.as_ref().map(ProfileSlug::as_str).unwrap_or("-"),
            c.spec.name.as_str(),
            c.spec.env_name.as_str(),
            c.placeholder.shown(),
            c.spec.header.as_str(),
            c.spec.format.as_str(),
            utc(c.created_at),
            c.spec.hosts
        );
    }
    if credentials.is_empty() {
        println!("(no credentials)");
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM UTC` for a Unix time.
fn utc(secs: i64) -> String {
    let t = gigmcp_types::time::Civil::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_unix_times() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_000_000), "2026-11-18 11:06 UTC");
    }
}
