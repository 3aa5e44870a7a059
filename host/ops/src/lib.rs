//! The changes an operator (CLI) or a user (REST API) makes, written once: both front ends parse their input,
//! call these, and present the result. Each change is validated before anything is written (bad input
//! changes nothing) and recorded in the audit log as `cli.<object>.<verb>` or `api.<object>.<verb>`.
//!
//! Depends on the vocabulary, the store, the vault, the sandbox, the plugin runtime and its management, audit,
//! and mcp (to list a server's names when a profile is edited); must never depend on control, egress or the
//! binary, and knows no front end (no clap, no HTTP).

#![forbid(unsafe_code)]

use std::collections::HashMap;

pub mod catalog;
pub mod install;
pub mod oci;
pub mod registry;
mod server_input;
pub mod server_json;
pub mod state;
pub use server_input::{Defined, ServerInput};
pub use state::ServerStates;

use serde_json::{Value, json};
use thiserror::Error;

use gigmcp_audit::AuditLog;
use gigmcp_plugin_runtime::CandidateError;
use gigmcp_plugins::manage::ManageError;
use gigmcp_store::credentials::CredentialStoreError;
use gigmcp_store::plugins::{PluginStoreError, Revision};
use gigmcp_store::{Profile, Store, StoreError};
use gigmcp_types::audit::NewAuditEvent;
use gigmcp_types::credential::{Credential, CredentialName, CredentialSpec};
use gigmcp_types::ids::UserId;
use gigmcp_types::names::PluginName;
use gigmcp_types::names::{ProfileSlug, ServerName};
use gigmcp_types::secret::Secret;
use gigmcp_types::server::{ServerDef, ServerSpec};
use gigmcp_types::token::NewToken;
use gigmcp_vault::{Vault, VaultError};

/// Why a change was refused, sorted by whose fault it is.
#[derive(Debug, Error)]
pub enum OpsError {
    /// The input is malformed.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The input is well-formed but conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
    /// A write made against an older state than the current one (`If-Match`).
    #[error("{0}")]
    Stale(String),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        let text = e.to_string();
        match e {
            StoreError::NoProfile(_) | StoreError::NoServer(_) | StoreError::NotInProfile { .. } => {
                OpsError::NotFound(text)
            }
            StoreError::ProfileExists(_)
            | StoreError::ServerExists(_)
            | StoreError::ServerInUse { .. }
            | StoreError::AlreadyInProfile { .. } => OpsError::Conflict(text),
            StoreError::Stale(_) => OpsError::Stale(text),
            _ => OpsError::Internal(text),
        }
    }
}

impl From<CredentialStoreError> for OpsError {
    fn from(e: CredentialStoreError) -> Self {
        let text = e.to_string();
        match e {
            CredentialStoreError::NoServer(_)
            | CredentialStoreError::NoProfile(_)
            | CredentialStoreError::NoCredential { .. } => OpsError::NotFound(text),
            CredentialStoreError::RemoteServer(_)
            | CredentialStoreError::EnvSetByServer { .. }
            | CredentialStoreError::EnvNameTaken { .. } => OpsError::Conflict(text),
            _ => OpsError::Internal(text),
        }
    }
}

impl From<VaultError> for OpsError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Store(e) => e.into(),
            VaultError::NoSecret(_) => OpsError::NotFound(e.to_string()),
            other => OpsError::Internal(other.to_string()),
        }
    }
}

impl From<PluginStoreError> for OpsError {
    fn from(e: PluginStoreError) -> Self {
        let text = e.to_string();
        match e {
            PluginStoreError::NoPlugin(_) | PluginStoreError::NoProfile(_) | PluginStoreError::NotBound { .. } => {
                OpsError::NotFound(text)
            }
            PluginStoreError::KindChanged { .. } | PluginStoreError::NoPreviousRevision(_) => OpsError::Conflict(text),
            PluginStoreError::Stale { .. } => OpsError::Stale(text),
            _ => OpsError::Internal(text),
        }
    }
}

impl From<ManageError> for OpsError {
    fn from(e: ManageError) -> Self {
        match e {
            ManageError::Store(e) => e.into(),
            ManageError::Candidate(CandidateError::Call(_)) => OpsError::Internal(e.to_string()),
            ManageError::Candidate(other) => OpsError::Invalid(other.to_string()),
        }
    }
}

impl From<gigmcp_types::names::NameError> for OpsError {
    fn from(e: gigmcp_types::names::NameError) -> Self {
        OpsError::Invalid(e.to_string())
    }
}

/// Who makes a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The CLI: the operator, who may do everything.
    Operator,
    /// A logged-in user of the REST API.
    User(UserId),
}

impl Actor {
    pub fn name(&self) -> String {
        match self {
            Actor::Operator => "operator".to_owned(),
            Actor::User(id) => format!("user:{id}"),
        }
    }

    fn channel(&self) -> &'static str {
        match self {
            Actor::Operator => "cli",
            Actor::User(_) => "api",
        }
    }
}

/// A change's context: where to write, who does it, where its audit event goes.
pub struct Ops<'a> {
    pub store: &'a Store,
    pub actor: Actor,
    /// The running gateway's audit log; `None` (the CLI) writes the event to the log of record directly.
    pub audit: Option<&'a AuditLog>,
}

impl Ops<'_> {
    /// Records `<cli|api>.<what>`. The change has happened; a failure to record it is logged, not fatal.
    pub fn record(&self, what: &str, profile: Option<&str>, server: Option<&str>, detail: Value) {
        let event = NewAuditEvent {
            kind: format!("{}.{what}", self.actor.channel()),
            actor: self.actor.name(),
            profile: profile.map(str::to_owned),
            server: server.map(str::to_owned),
            outcome: gigmcp_types::audit::Outcome::Ok,
            detail,
        };
        match self.audit {
            Some(log) => log.record(event),
            None => {
                if let Err(e) = gigmcp_audit::write_now(self.store, event) {
                    tracing::warn!("cannot write the audit event {what}: {e}");
                }
            }
        }
    }

    // ---- profiles

    pub fn create_profile(
        &self,
        slug: &ProfileSlug,
        name: &str,
        owner: Option<UserId>,
    ) -> Result<(Profile, NewToken), OpsError> {
        check_display_name(name)?;
        let created = self.store.create_owned_profile(slug, name, owner)?;
        self.record("profile.create", Some(slug.as_str()), None, json!({"name": name}));
        Ok(created)
    }

    pub fn rename_profile(&self, slug: &ProfileSlug, name: &str) -> Result<(), OpsError> {
        check_display_name(name)?;
        self.store.rename_profile(slug, name)?;
        self.record("profile.rename", Some(slug.as_str()), None, json!({"name": name}));
        Ok(())
    }

    /// The states of the profile's servers that a change keeping only `kept` would orphan.
    fn states_left_by(&self, slug: &ProfileSlug, kept: &[ServerName]) -> Result<state::Targets, OpsError> {
        Ok(self
            .store
            .profile_config(slug)?
            .servers
            .into_iter()
            .filter(|s| !kept.contains(&s.name))
            .map(|s| (s.name, Some(slug.clone())))
            .collect())
    }

    pub fn delete_profile(
        &self,
        slug: &ProfileSlug,
        states: &dyn ServerStates,
        delete_state: bool,
    ) -> Result<Vec<String>, OpsError> {
        let targets = self.states_left_by(slug, &[])?;
        state::check(states, &targets, delete_state)?;
        self.store.delete_profile(slug)?;
        self.record("profile.delete", Some(slug.as_str()), None, json!({}));
        state::remove(states, &targets)
    }

    /// Replaces the profile's token; the old one stops working at once.
    pub fn rotate_token(&self, slug: &ProfileSlug) -> Result<NewToken, OpsError> {
        let token = self.store.rotate_token(slug)?;
        self.record("profile.rotate_token", Some(slug.as_str()), None, json!({}));
        Ok(token)
    }

    /// Adds a server to a profile, refused if two of its servers would expose the same name.
    pub fn add_server_to_profile(
        &self,
        slug: &ProfileSlug,
        server: &ServerName,
        probe: &dyn ServerProbe,
    ) -> Result<(), OpsError> {
        let mut servers = self.store.profile_config(slug)?.servers;
        if servers.iter().any(|s| &s.name == server) {
            return Err(StoreError::AlreadyInProfile {
                profile: slug.clone(),
                server: server.clone(),
            }
            .into());
        }
        servers.push(self.store.server(server)?);
        check_collisions(&servers, probe)
            .map_err(|e| OpsError::Conflict(format!("cannot add {server} to profile {slug}: {e}")))?;
        self.store.add_server_to_profile(slug, server)?;
        self.record(
            "profile.add_server",
            Some(slug.as_str()),
            Some(server.as_str()),
            json!({}),
        );
        Ok(())
    }

    pub fn remove_server_from_profile(
        &self,
        slug: &ProfileSlug,
        server: &ServerName,
        states: &dyn ServerStates,
        delete_state: bool,
    ) -> Result<Vec<String>, OpsError> {
        let targets = vec![(server.clone(), Some(slug.clone()))];
        state::check(states, &targets, delete_state)?;
        self.store.remove_server_from_profile(slug, server)?;
        self.record(
            "profile.remove_server",
            Some(slug.as_str()),
            Some(server.as_str()),
            json!({}),
        );
        state::remove(states, &targets)
    }

    /// Makes the profile serve exactly these servers, in this order (refused on a name collision).
    pub fn set_profile_servers(
        &self,
        slug: &ProfileSlug,
        servers: &[ServerName],
        probe: &dyn ServerProbe,
        states: &dyn ServerStates,
        delete_state: bool,
        if_match: Option<&str>,
    ) -> Result<Vec<String>, OpsError> {
        let mut defs = Vec::with_capacity(servers.len());
        for (i, name) in servers.iter().enumerate() {
            if servers[..i].contains(name) {
                return Err(OpsError::Invalid(format!("server {name} is listed twice")));
            }
            defs.push(self.store.server(name)?);
        }
        let dropped = self.states_left_by(slug, servers)?;
        state::check(states, &dropped, delete_state)?;
        check_collisions(&defs, probe)
            .map_err(|e| OpsError::Conflict(format!("cannot set the servers of profile {slug}: {e}")))?;
        self.store.set_profile_servers(slug, servers, if_match)?;
        let names: Vec<&str> = servers.iter().map(ServerName::as_str).collect();
        self.record(
            "profile.set_servers",
            Some(slug.as_str()),
            None,
            json!({"servers": names}),
        );
        state::remove(states, &dropped)
    }

    // ---- servers (the operator and admins only: invariant 7)

    /// Defines a server from what a front end received (installing its package, if it names one) and adds
    /// it; what was installed is removed again if the server cannot be added.
    pub fn add_server_from(
        &self,
        input: ServerInput,
        default_limits: gigmcp_types::server::Limits,
        servers_dir: &std::path::Path,
    ) -> Result<ServerDef, OpsError> {
        let defined = input.define(default_limits, servers_dir, |name| self.store.server(name).is_ok())?;
        match self.add_server(&defined.def) {
            Ok(()) => Ok(defined.def.clone()),
            Err(e) => {
                defined.discard();
                Err(e)
            }
        }
    }

    pub fn add_server(&self, def: &ServerDef) -> Result<(), OpsError> {
        self.store.add_server(def)?;
        self.record(
            "server.add",
            None,
            Some(def.name.as_str()),
            json!({"prefix": def.prefix.as_str(), "per_session": def.per_session, "kind": spec_kind(&def.spec)}),
        );
        Ok(())
    }

    /// Removes a server (it must be in no profile) and what was installed for it.
    pub fn remove_server(
        &self,
        name: &ServerName,
        states: &dyn ServerStates,
        delete_state: bool,
    ) -> Result<Vec<String>, OpsError> {
        let def = self.store.server(name)?;
        let targets = vec![(name.clone(), None)];
        state::check(states, &targets, delete_state)?;
        self.store.remove_server(name)?;
        if let ServerSpec::Stdio {
            package: Some(installed),
            ..
        } = &def.spec
        {
            let _ = std::fs::remove_dir_all(&installed.dir);
        }
        self.record("server.remove", None, Some(name.as_str()), json!({}));
        state::remove(states, &targets)
    }

    /// Replaces the hosts a sandboxed server declares it needs (the egress-allowlist plugin's input).
    pub fn set_server_egress(&self, name: &ServerName, egress: Vec<String>) -> Result<ServerDef, OpsError> {
        let def = set_egress(self.store, name, egress).map_err(|e| match e {
            SetEgressError::Store(e) => e.into(),
            SetEgressError::Spec(e) => OpsError::Invalid(e.to_string()),
        })?;
        self.record(
            "server.set_egress",
            None,
            Some(name.as_str()),
            json!({"egress": def.spec.egress()}),
        );
        Ok(def)
    }

    // ---- credentials

    /// Creates or replaces a credential; returns it and whether it replaced one.
    pub fn set_credential(
        &self,
        vault: &Vault,
        spec: &CredentialSpec,
        secret: &Secret,
    ) -> Result<(Credential, bool), OpsError> {
        self.store.check_credential_scope(&spec.server, spec.profile.as_ref())?;
        if let Some(defined) = catalog_credential(self.store, spec.server.as_str(), spec.name.as_str())?
            && defined.kind == "oauth2"
        {
            return Err(OpsError::Invalid(format!(
                "credential {} of server {} is the {} account each profile's owner connects (Connected accounts \
                 in the dashboard); there is no secret to set",
                spec.name, spec.server, defined.vendor
            )));
        }
        let replaced = self
            .store
            .credentials(Some(&spec.server), spec.profile.as_ref())?
            .iter()
            .any(|c| c.spec.name == spec.name && c.spec.profile == spec.profile);
        let credential = vault.set_credential(spec, secret)?;
        self.record(
            "credential.set",
            spec.profile.as_ref().map(ProfileSlug::as_str),
            Some(spec.server.as_str()),
            json!({"name": spec.name.as_str(), "hosts": spec.hosts.to_string(), "replaced": replaced}),
        );
        Ok((credential, replaced))
    }

    pub fn delete_credential(
        &self,
        server: &ServerName,
        profile: Option<&ProfileSlug>,
        name: &CredentialName,
    ) -> Result<(), OpsError> {
        self.store.delete_credential(server, profile, name)?;
        self.record(
            "credential.delete",
            profile.map(ProfileSlug::as_str),
            Some(server.as_str()),
            json!({"name": name.as_str()}),
        );
        Ok(())
    }

    // ---- plugins (the operator and admins only)

    pub fn plugin_set_enabled(&self, name: &PluginName, enabled: bool) -> Result<(), OpsError> {
        self.store.plugin_set_enabled(name, enabled)?;
        let verb = if enabled { "plugin.enable" } else { "plugin.disable" };
        self.record(verb, None, None, json!({"plugin": name.as_str()}));
        Ok(())
    }

    /// Binds a plugin globally or to one profile at `order`; without one, after the last binding of that scope
    /// (so it runs after every plugin of its kind bound there before it). Returns the order used.
    pub fn plugin_bind(
        &self,
        name: &PluginName,
        profile: Option<&ProfileSlug>,
        order: Option<i64>,
    ) -> Result<i64, OpsError> {
        let order = match order {
            Some(order) => order,
            None => {
                let mine = self.store.plugin(name)?.id;
                self.store
                    .plugin_bindings()?
                    .iter()
                    .filter(|b| b.profile.as_ref() == profile && b.plugin != mine)
                    .map(|b| b.position + 1)
                    .max()
                    .unwrap_or(0)
            }
        };
        self.store.plugin_bind(name, profile, order)?;
        self.record(
            "plugin.bind",
            profile.map(ProfileSlug::as_str),
            None,
            json!({"plugin": name.as_str(), "order": order}),
        );
        Ok(order)
    }

    pub fn plugin_unbind(&self, name: &PluginName, profile: Option<&ProfileSlug>) -> Result<(), OpsError> {
        self.store.plugin_unbind(name, profile)?;
        self.record(
            "plugin.unbind",
            profile.map(ProfileSlug::as_str),
            None,
            json!({"plugin": name.as_str()}),
        );
        Ok(())
    }

    pub fn plugin_remove(&self, name: &PluginName) -> Result<(), OpsError> {
        self.store.plugin_remove(name)?;
        self.record("plugin.remove", None, None, json!({"plugin": name.as_str()}));
        Ok(())
    }

    pub fn plugin_rollback(&self, name: &PluginName) -> Result<Revision, OpsError> {
        let revision = self.store.plugin_rollback(name)?;
        self.record(
            "plugin.rollback",
            None,
            None,
            json!({"plugin": name.as_str(), "sha256": revision.sha256.to_hex(), "config": revision.config}),
        );
        Ok(revision)
    }

    /// Registers (or re-points) the webhook `webhook:<name>` that audit sinks may deliver to: https, or http
    /// to a loopback address.
    pub fn set_webhook(&self, name: &PluginName, url: &str) -> Result<String, OpsError> {
        let url = gigmcp_audit::check_webhook_url(url).map_err(|e| OpsError::Invalid(e.to_string()))?;
        self.store.audit_webhook_set(name, &url)?;
        // The URL may carry a token in its path or query: the event names the webhook, not where it points.
        self.record("webhook.set", None, None, json!({"webhook": name.as_str()}));
        Ok(url)
    }

    pub fn remove_webhook(&self, name: &PluginName) -> Result<(), OpsError> {
        if !self.store.audit_webhook_remove(name)? {
            return Err(OpsError::NotFound(format!("no webhook named {name}")));
        }
        self.record("webhook.remove", None, None, json!({"webhook": name.as_str()}));
        Ok(())
    }

    /// Records a plugin added or configured through [`crate::plugins::manage`].
    pub fn record_plugin(&self, verb: &str, name: &PluginName, mut detail: Value) {
        detail["plugin"] = Value::from(name.as_str());
        self.record(&format!("plugin.{verb}"), None, None, detail);
    }
}

/// A sandboxed server's limits (`--memory`, `--pids`, `--state-size`, or `memory`, `pids`, `state_size` in
/// the API): any given alone takes the gateway's defaults for the others; none gives `None` (the defaults).
pub fn sandbox_limits(
    memory: Option<&str>,
    pids: Option<u64>,
    state_size: Option<&str>,
    defaults: gigmcp_types::server::Limits,
) -> Result<Option<gigmcp_types::server::Limits>, OpsError> {
    if memory.is_none() && pids.is_none() && state_size.is_none() {
        return Ok(None);
    }
    let memory_bytes = match memory {
        None => defaults.memory_bytes,
        Some(text) => gigmcp_types::server::parse_size(text)
            .ok_or_else(|| OpsError::Invalid(format!("invalid memory limit {text:?}: give a size like 512m or 2g")))?,
    };
    let pids = match pids {
        None => defaults.pids,
        Some(n) if n >= 8 => n,
        Some(n) => return Err(OpsError::Invalid(format!("invalid process limit {n}: give at least 8"))),
    };
    let state_bytes = match state_size {
        None => defaults.state_bytes,
        Some(text) => gigmcp_types::server::parse_size(text)
            .filter(|n| *n >= gigmcp_types::server::MIN_STATE_BYTES)
            .ok_or_else(|| {
                OpsError::Invalid(format!(
                    "invalid state size {text:?}: give a size of at least 4m, like 64m or 1g"
                ))
            })?,
    };
    Ok(Some(gigmcp_types::server::Limits {
        memory_bytes,
        pids,
        state_bytes,
    }))
}

/// A profile's display name: at most 200 characters, no control characters.
fn check_display_name(name: &str) -> Result<(), OpsError> {
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(OpsError::Invalid(
            "invalid profile name: give at most 200 characters, without control characters".into(),
        ));
    }
    Ok(())
}

fn spec_kind(spec: &ServerSpec) -> &'static str {
    match spec {
        ServerSpec::Stdio { package: Some(_), .. } => "package",
        ServerSpec::Stdio { .. } => "stdio",
        ServerSpec::Builtin { .. } => "builtin",
        ServerSpec::Toolpack { .. } => "toolpack",
        ServerSpec::Http { .. } => "http",
    }
}

/// Why a set of servers cannot be served together.
#[derive(Debug, Error)]
pub enum CollisionError {
    #[error("servers {first} and {second} both use the prefix {prefix:?}; give one another --prefix")]
    SamePrefix {
        first: ServerName,
        second: ServerName,
        prefix: String,
    },
    #[error(
        "{what} name {exposed:?} would be exposed by both {holder} and {server}; give one of them another --prefix"
    )]
    SameName {
        what: &'static str,
        exposed: String,
        holder: ServerName,
        server: ServerName,
    },
    #[error("cannot list the names of server {server}: {detail}")]
    Probe { server: ServerName, detail: String },
}

/// The two lists whose names a profile's servers must not share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Tool,
    Prompt,
}

/// Starts servers on their own and lists their tool and prompt names, for refusing collisions when a profile
/// is edited. Implemented over the MCP data plane by the binary: ops knows no MCP session.
pub trait ServerProbe: Send + Sync {
    /// Every tool and prompt name of each server (as the server knows it), in the order given; a server that
    /// cannot be started or listed gives an error saying why. Blocks until all have answered.
    fn names(&self, servers: &[ServerDef]) -> Vec<Result<Vec<(NameKind, String)>, ProbeError>>;
}

/// Why a server's names could not be listed (it did not start, or did not answer `tools/list`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// Refuses a set of servers in which two would expose the same tool or prompt name. Equal prefixes are
/// refused outright; otherwise each server is started (sandboxed, as when serving) and its names listed.
/// Must not run on an async runtime's thread (the probe may run one of its own).
pub fn check_collisions(servers: &[ServerDef], probe: &dyn ServerProbe) -> Result<(), CollisionError> {
    for (i, a) in servers.iter().enumerate() {
        for b in &servers[..i] {
            if a.prefix == b.prefix && !a.prefix.as_str().is_empty() {
                return Err(CollisionError::SamePrefix {
                    first: b.name.clone(),
                    second: a.name.clone(),
                    prefix: a.prefix.as_str().to_owned(),
                });
            }
        }
    }
    if servers.len() < 2 {
        return Ok(());
    }
    let listed = probe.names(servers);
    let mut seen: HashMap<(NameKind, String), &ServerName> = HashMap::new();
    for (def, names) in servers.iter().zip(listed) {
        let names = names.map_err(|e| CollisionError::Probe {
            server: def.name.clone(),
            detail: e.0,
        })?;
        for (kind, name) in names {
            let exposed = def.prefix.expose(&name);
            if let Some(holder) = seen.insert((kind, exposed.clone()), &def.name) {
                return Err(CollisionError::SameName {
                    what: if kind == NameKind::Tool { "tool" } else { "prompt" },
                    exposed,
                    holder: holder.clone(),
                    server: def.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// What defines a credential, as text from the CLI's flags or an API request.
pub struct CredentialInput<'a> {
    pub server: &'a str,
    pub profile: Option<&'a str>,
    pub name: &'a str,
    pub hosts: &'a str,
    pub header: &'a str,
    pub format: &'a str,
    pub env_name: Option<&'a str>,
}

/// The definition a server declared for its credential `name` at install (a catalog manifest's, a
/// server.json's secret), if it did.
pub fn catalog_credential(
    store: &Store,
    server: &str,
    name: &str,
) -> Result<Option<gigmcp_types::server::CredentialDef>, OpsError> {
    let def = store.server(&ServerName::parse(server)?)?;
    Ok(def.spec.credential_definitions().iter().find(|c| c.id == name).cloned())
}

/// Parses a credential's definition; the variable defaults to the name upper-cased with `_TOKEN`.
pub fn credential_spec(input: &CredentialInput<'_>) -> Result<CredentialSpec, OpsError> {
    use gigmcp_types::credential::{EnvName, Format, HeaderName, HostList};
    let invalid = |e: &dyn std::fmt::Display| OpsError::Invalid(e.to_string());
    let name = CredentialName::parse(input.name).map_err(|e| invalid(&e))?;
    let env_name = match input.env_name {
        Some(text) => EnvName::parse(text).map_err(|e| invalid(&e))?,
        None => name.default_env_name().check_not_reserved().map_err(|e| {
            OpsError::Invalid(format!(
                "{e} (the default variable for this name is reserved; give --env-name / env_name)"
            ))
        })?,
    };
    Ok(CredentialSpec {
        server: ServerName::parse(input.server)?,
        profile: input.profile.map(ProfileSlug::parse).transpose()?,
        hosts: HostList::parse(input.hosts).map_err(|e| invalid(&e))?,
        header: HeaderName::parse(input.header).map_err(|e| invalid(&e))?,
        format: Format::parse(input.format).map_err(|e| invalid(&e))?,
        env_name,
        name,
    })
}

/// Replaces the declared egress list of a server (validated first; nothing changes on bad input). This is the
/// one place the CLI and the REST API change it; a running gateway picks the change up from the database.
pub fn set_egress(store: &Store, name: &ServerName, egress: Vec<String>) -> Result<ServerDef, SetEgressError> {
    let mut def = store.server(name)?;
    match &mut def.spec {
        ServerSpec::Stdio { egress: list, .. } | ServerSpec::Builtin { egress: list, .. } => *list = egress,
        ServerSpec::Http { .. } => return Err(gigmcp_types::server::SpecError::EgressOnRemote(name.to_string()).into()),
        ServerSpec::Toolpack { .. } => {
            return Err(gigmcp_types::server::SpecError::EgressOfToolpack(name.to_string()).into());
        }
    }
    store.set_server_spec(name, &def.spec)?;
    Ok(def)
}

#[derive(Debug, Error)]
pub enum SetEgressError {
    #[error(transparent)]
    Spec(#[from] gigmcp_types::server::SpecError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
