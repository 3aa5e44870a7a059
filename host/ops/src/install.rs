//! Installing a catalog entry as a server: what the CLI's `server add --catalog`, the API and `GIG_INSTALL`
//! share.
//!
//! - The ref resolves in the signed index; the manifest is validated again (a signed but malformed entry
//!   never installs); a placeholder digest, or an entry this gateway cannot run, is refused by name.
//! - The manifest's egress list becomes the server's (a `*.x` entry keeps its one-label meaning; a
//!   `--base-url` host covered only by a deeper wildcard is added exactly). Its credential becomes a credential
//!   definition (header, format, hosts, variable), so the operator supplies only the secret.
//! - The engine's configuration (manifest, toolspec, base URL, where each placeholder goes) is written
//!   content-addressed under `GIG_SERVERS_DIR/toolpacks/` and mounted read-only into the jail.
//! - Consent is the `RuntimeHash`: a first install is consented; reinstalling the same runtime keeps consent;
//!   an upgrade that changes it waits for `server consent` unless the install itself consents (an operator's
//!   `--consent`, or `GIG_INSTALL` at start-up).

use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest, Sha256};

use gigmcp_catalog::toolspec::check_base_url;
use gigmcp_catalog::{Index, Manifest, egress};
use gigmcp_store::StoreError;
use gigmcp_toolpack::config::{AuthHeader, EngineConfig};
use gigmcp_types::credential::CredentialName;
use gigmcp_types::names::{Prefix, ProfileSlug, ServerName};
use gigmcp_types::oauth::Vendor;
use gigmcp_types::server::{CredentialDef, ServerDef, ServerSpec, Toolpack, ToolpackTool};

use crate::oci::OciSettings;
use crate::{Ops, OpsError};

pub struct CatalogInstall<'a> {
    pub name: &'a ServerName,
    /// `name`, `name@version` or `sha256:<digest>`.
    pub reference: &'a str,
    pub base_url: Option<&'a str>,
    /// Consent to a changed runtime now (operator `--consent`, `GIG_INSTALL`).
    pub consent: bool,
    /// `GIG_SERVERS_DIR`.
    pub servers_dir: &'a Path,
    /// How to reach the OCI registries static-binary entries are pulled from (`GIG_OCI_*`).
    pub oci: &'a OciSettings,
}

/// What an install did.
#[derive(Debug)]
pub struct InstallOutcome {
    pub def: ServerDef,
    pub action: InstallAction,
    /// Things the operator should know (a tenant host that needs `--base-url`…).
    pub notes: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum InstallAction {
    Installed,
    /// The same runtime as before (presentation fields may have changed).
    Unchanged,
    Upgraded,
    /// An upgrade whose runtime changed, installed but not started until consent.
    AwaitsConsent,
}

impl Ops<'_> {
    pub fn install_from_catalog(&self, index: &Index, input: &CatalogInstall<'_>) -> Result<InstallOutcome, OpsError> {
        let manifest = index
            .resolve(input.reference)
            .map_err(|e| OpsError::NotFound(e.to_string()))?;
        let problems = manifest.validate();
        if !problems.is_empty() {
            return Err(OpsError::Invalid(format!(
                "catalog entry {} is malformed, refusing to install it: {}",
                manifest.reference(),
                problems.join("; ")
            )));
        }
        if manifest.has_placeholder_digest() {
            return Err(OpsError::Invalid(format!(
                "catalog entry {} is not installable: its image digest is the all-zero placeholder",
                manifest.reference()
            )));
        }
        let binary = match manifest.kind() {
            "toolpack" => None,
            "binary" => Some(pull_binary(manifest, input)?),
            other => {
                return Err(OpsError::Invalid(format!(
                    "catalog entry {} is a {other} image ({}): this gateway installs toolpacks and static binaries",
                    manifest.reference(),
                    manifest.image.reference
                )));
            }
        };
        let empty = gigmcp_catalog::ToolSpec::default();
        let toolspec = match (index.toolspec(manifest), &binary) {
            (Some(spec), _) => spec,
            (None, Some(_)) => &empty,
            (None, None) => {
                return Err(OpsError::Invalid(format!(
                    "catalog entry {} has no signed toolspec in the index; the registry must be built with \
                     `gigmcp catalog build`",
                    manifest.reference()
                )));
            }
        };
        let mut notes = Vec::new();
        // The server's rules: exact hosts as they are, `*.x` with its one-label meaning (the safer reading;
        // the gateway's grammar has `**.x` for any depth).
        let mut egress_rules = manifest.entitlements.egress.clone();
        let base_url = match input.base_url {
            Some(url) => {
                check_base_url(url).map_err(|why| OpsError::Invalid(format!("--base-url {url:?}: {why}")))?;
                let host = &url["https://".len()..];
                if !egress::allows(&manifest.entitlements.egress, host) {
                    return Err(OpsError::Invalid(format!(
                        "--base-url {url}: {host} is outside the entry's egress ({})",
                        manifest.entitlements.egress.join(", ")
                    )));
                }
                if !one_label_allows(&manifest.entitlements.egress, host) && !egress_rules.iter().any(|r| r == host) {
                    egress_rules.push(host.to_owned());
                }
                Some(url.to_owned())
            }
            None if binary.is_none() => {
                let host = &toolspec.base_url["https://".len()..];
                if gigmcp_toolpack::request::is_placeholder_host(host) {
                    notes.push(format!(
                        "{host} only stands for your own tenant's host: its tools answer with an error until the \
                         server is installed with --base-url https://<your host>"
                    ));
                }
                None
            }
            None => None,
        };
        if binary.is_some() && manifest.tier == "entrusted" && !manifest.credentials.is_empty() {
            return Err(OpsError::Invalid(format!(
                "catalog entry {} is an entrusted static binary: it reads its secret from its environment, and this \
                 gateway never puts a secret in a sandbox",
                manifest.reference()
            )));
        }
        let credentials = credentials(manifest, toolspec, &egress_rules)?;
        let config = EngineConfig {
            manifest: manifest.clone(),
            toolspec: toolspec.clone(),
            base_url: base_url.clone(),
            auth: credentials
                .iter()
                .map(|c| AuthHeader {
                    id: c.id.clone(),
                    header: c.header.clone(),
                    format: c.format.replace("{secret}", "{token}"),
                    env: c.env.clone(),
                })
                .collect(),
        };
        let config_path = write_config(input.servers_dir, &config)?;
        let runtime_hash = manifest.runtime_hash();
        let mut toolpack = Toolpack {
            entry: manifest.name.clone(),
            version: manifest.version.clone(),
            digest: manifest.image.digest.clone(),
            runtime_hash: runtime_hash.clone(),
            consented_hash: Some(runtime_hash.clone()),
            consented_config: None,
            base_url,
            config: config_path,
            binary,
            credentials,
            tools: manifest
                .tools
                .iter()
                .map(|t| ToolpackTool {
                    name: t.name.clone(),
                    default: t.default,
                })
                .collect(),
        };
        let previous = match self.store.server(input.name) {
            Ok(def) => Some(def),
            Err(StoreError::NoServer(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let action = match &previous {
            None => InstallAction::Installed,
            Some(def) => {
                let ServerSpec::Toolpack { toolpack: old, .. } = &def.spec else {
                    return Err(OpsError::Conflict(format!(
                        "server {} already exists and is not a catalog toolpack; choose another name",
                        input.name
                    )));
                };
                if old.entry != toolpack.entry {
                    return Err(OpsError::Conflict(format!(
                        "server {} is catalog entry {}, not {}; choose another name",
                        input.name, old.entry, toolpack.entry
                    )));
                }
                let consented = old.consented_hash.as_deref();
                if consented == Some(runtime_hash.as_str()) || input.consent {
                    if old.runtime_hash == runtime_hash && old.consented() {
                        InstallAction::Unchanged
                    } else {
                        InstallAction::Upgraded
                    }
                } else {
                    toolpack.consented_hash = old.consented_hash.clone();
                    toolpack.consented_config = old
                        .consented_config
                        .clone()
                        .or_else(|| old.consented().then(|| old.config.clone()));
                    InstallAction::AwaitsConsent
                }
            }
        };
        let limits = match &previous {
            Some(ServerDef {
                spec: ServerSpec::Toolpack { limits, .. },
                ..
            }) => *limits,
            _ => None,
        };
        let spec = ServerSpec::Toolpack {
            toolpack: Box::new(toolpack),
            limits,
            egress: egress_rules,
        };
        let def = match previous {
            None => {
                let def = ServerDef {
                    name: input.name.clone(),
                    prefix: Prefix::parse(input.name.as_str())?,
                    per_session: false,
                    spec,
                };
                self.store.add_server(&def)?;
                def
            }
            Some(mut def) => {
                self.store.set_server_spec(input.name, &spec)?;
                def.spec = spec;
                def
            }
        };
        if let ServerSpec::Toolpack { toolpack, .. } = &def.spec {
            if action != InstallAction::Installed {
                notes.extend(self.stale_credentials(input.name, &toolpack.credentials)?);
            }
            if action != InstallAction::AwaitsConsent {
                notes.extend(self.account_credentials(input.name, &toolpack.credentials)?);
            }
        }
        self.record(
            "server.install",
            None,
            Some(input.name.as_str()),
            json!({"entry": manifest.reference(), "runtime_hash": runtime_hash, "action": format!("{action:?}"),
                   "base_url": input.base_url}),
        );
        Ok(InstallOutcome { def, action, notes })
    }

    /// Consents to the runtime a toolpack was upgraded to; returns what changed since the consented one.
    pub fn consent(&self, name: &ServerName) -> Result<Vec<String>, OpsError> {
        let mut def = self.store.server(name)?;
        let ServerSpec::Toolpack { toolpack, .. } = &mut def.spec else {
            return Err(OpsError::Invalid(format!(
                "server {name} is not a catalog toolpack: it needs no consent"
            )));
        };
        if toolpack.consented() {
            return Ok(Vec::new());
        }
        let changes = consent_changes(toolpack);
        let runtime_hash = toolpack.runtime_hash.clone();
        toolpack.consented_hash = Some(runtime_hash.clone());
        toolpack.consented_config = None;
        let definitions = toolpack.credentials.clone();
        self.store.set_server_spec(name, &def.spec)?;
        let changes: Vec<String> = changes
            .into_iter()
            .chain(self.stale_credentials(name, &definitions)?)
            .chain(self.account_credentials(name, &definitions)?)
            .collect();
        self.record(
            "server.consent",
            None,
            Some(name.as_str()),
            json!({"runtime_hash": runtime_hash, "changes": changes}),
        );
        Ok(changes)
    }
}

/// Pulls a static-binary entry's entrypoint (once per digest) into `GIG_SERVERS_DIR/oci/`.
fn pull_binary(manifest: &Manifest, input: &CatalogInstall<'_>) -> Result<PathBuf, OpsError> {
    let digest = &manifest.image.digest;
    let dest = input
        .servers_dir
        .join("oci")
        .join(format!(
            "{}@{}-{}",
            manifest.name,
            manifest.version,
            &digest["sha256:".len()..][..16]
        ))
        .join("server");
    if dest.is_file() {
        return Ok(dest);
    }
    crate::oci::pull_entrypoint(
        input.oci,
        &manifest.image.reference,
        digest,
        &manifest.image.entrypoint,
        (input.servers_dir, &dest),
    )
    .map_err(|e| match e {
        OpsError::Invalid(why) => OpsError::Invalid(format!(
            "cannot install {} from {}@{digest}: {why}",
            manifest.reference(),
            manifest.image.reference
        )),
        other => other,
    })
}

/// A catalog tool of a profile: whether the profile may use it, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct ProfileTool {
    pub server: String,
    pub tool: String,
    /// Whether the profile may use it.
    pub enabled: bool,
    /// The entry's default.
    pub default: bool,
    /// The profile's own switch, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched: Option<bool>,
}

impl Ops<'_> {
    /// The catalog tools of a profile's toolpacks, in the profile's server order.
    pub fn profile_tools(&self, slug: &ProfileSlug) -> Result<Vec<ProfileTool>, OpsError> {
        let config = self.store.profile_config(slug)?;
        let mut tools = Vec::new();
        for def in &config.servers {
            let ServerSpec::Toolpack { toolpack, .. } = &def.spec else {
                continue;
            };
            let switches = self.store.tool_switches(slug, &def.name)?;
            // The profile's copy of the definition has its switches applied; the entry's defaults are in the
            // server's own definition.
            let own = self.store.server(&def.name)?;
            let ServerSpec::Toolpack { toolpack: entry, .. } = &own.spec else {
                continue;
            };
            for tool in &toolpack.tools {
                tools.push(ProfileTool {
                    server: def.name.to_string(),
                    tool: tool.name.clone(),
                    enabled: tool.default,
                    default: entry.tools.iter().any(|t| t.name == tool.name && t.default),
                    switched: switches.get(&tool.name).copied(),
                });
            }
        }
        Ok(tools)
    }

    /// Turns a catalog tool on or off for a profile (`None`: back to the entry's default). The tool must be
    /// one of a toolpack the profile serves.
    pub fn switch_tool(&self, slug: &ProfileSlug, qualified: &str, enabled: Option<bool>) -> Result<(), OpsError> {
        let (server, tool) = qualified
            .split_once('/')
            .ok_or_else(|| OpsError::Invalid(format!("{qualified:?}: name a tool as <server>/<tool>")))?;
        let server = ServerName::parse(server)?;
        let config = self.store.profile_config(slug)?;
        let def = config
            .servers
            .iter()
            .find(|d| d.name == server)
            .ok_or_else(|| OpsError::NotFound(format!("profile {slug} does not serve {server}; add it first")))?;
        let ServerSpec::Toolpack { toolpack, .. } = &def.spec else {
            return Err(OpsError::Invalid(format!(
                "server {server} is not a catalog toolpack: hide its tools with the tool-filter plugin"
            )));
        };
        if !toolpack.tools.iter().any(|t| t.name == tool) {
            let names: Vec<&str> = toolpack.tools.iter().map(|t| t.name.as_str()).collect();
            return Err(OpsError::NotFound(format!(
                "server {server} has no tool {tool:?}; its tools: {}",
                names.join(", ")
            )));
        }
        self.store.set_tool_switch(slug, &server, tool, enabled)?;
        self.record(
            "profile.tool_switch",
            Some(slug.as_str()),
            Some(server.as_str()),
            json!({"tool": tool, "enabled": enabled}),
        );
        Ok(())
    }
}

impl Ops<'_> {
    /// Stored credentials whose hosts, header or format the entry now defines otherwise. A secret is sealed
    /// together with where it may be sent, so it is not redirected behind the operator's back: it goes on
    /// working as it was stored until it is set again, which applies the new definition.
    /// Makes the server-wide credential of every oauth2 definition: its secret is the connected account of
    /// the definition's vendor (the profile owner's), so there is nothing for the operator to set. Returns
    /// notes: what to connect, and definitions that cannot be made.
    pub fn account_credentials(
        &self,
        server: &ServerName,
        definitions: &[CredentialDef],
    ) -> Result<Vec<String>, OpsError> {
        let mut notes = Vec::new();
        for definition in definitions.iter().filter(|d| d.kind == "oauth2") {
            let vendor = match Vendor::parse(&definition.vendor) {
                Ok(vendor) => vendor,
                Err(e) => {
                    notes.push(format!("credential {}: {e}; it cannot be connected", definition.id));
                    continue;
                }
            };
            let hosts = definition.hosts.join(",");
            let spec = crate::credential_spec(&crate::CredentialInput {
                server: server.as_str(),
                profile: None,
                name: &definition.id,
                hosts: &hosts,
                header: &definition.header,
                format: &definition.format,
                env_name: Some(&definition.env),
            })?;
            self.store.set_account_credential(&spec, &vendor)?;
            let app = if self.store.oauth_app(&vendor)?.is_some() {
                String::new()
            } else {
                format!(
                    "; no OAuth app is set up for {vendor} yet: an admin sets one with `gigmcp oauth app set \
                     {vendor} …`"
                )
            };
            notes.push(format!(
                "credential {} is the {vendor} account connected by each profile's owner (Connected accounts \
                 in the dashboard){app}",
                definition.id
            ));
        }
        Ok(notes)
    }

    fn stale_credentials(&self, server: &ServerName, definitions: &[CredentialDef]) -> Result<Vec<String>, OpsError> {
        let stored = self.store.credentials(Some(server), None)?;
        let mut notes = Vec::new();
        for definition in definitions.iter().filter(|d| d.kind != "oauth2") {
            for credential in stored.iter().filter(|c| c.spec.name.as_str() == definition.id) {
                let hosts = definition.hosts.join(",");
                let same = credential.spec.hosts.to_string() == hosts
                    && credential.spec.header.as_str().eq_ignore_ascii_case(&definition.header)
                    && credential.spec.format.as_str() == definition.format;
                if !same {
                    notes.push(format!(
                        "credential {} is stored for `{}: {}` to {}; the entry now sends `{}: {}` to {}: set its \
                         secret again to apply that (`printf %s \"$SECRET\" | gigmcp credential set {server} {}{}`)",
                        definition.id,
                        credential.spec.header,
                        credential.spec.format,
                        credential.spec.hosts,
                        definition.header,
                        definition.format,
                        hosts,
                        definition.id,
                        credential
                            .spec
                            .profile
                            .as_ref()
                            .map(|p| format!(" --profile {p}"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
        Ok(notes)
    }
}

/// What changed between the consented configuration and the installed one, for the operator to read.
pub fn consent_changes(toolpack: &Toolpack) -> Vec<String> {
    let read = |path: &Path| -> Option<EngineConfig> { serde_json::from_slice(&std::fs::read(path).ok()?).ok() };
    let (Some(old), Some(new)) = (
        toolpack.consented_config.as_deref().and_then(read),
        read(&toolpack.config),
    ) else {
        return vec![format!(
            "the runtime hash changed to {} (the consented configuration is no longer on disk to compare)",
            toolpack.runtime_hash
        )];
    };
    let (old, new) = (&old.manifest, &new.manifest);
    let mut changes = Vec::new();
    if old.version != new.version {
        changes.push(format!("version {} → {}", old.version, new.version));
    }
    let diff = |what: &str, before: Vec<String>, after: Vec<String>, changes: &mut Vec<String>| {
        for item in after.iter().filter(|a| !before.contains(a)) {
            changes.push(format!("{what} added: {item}"));
        }
        for item in before.iter().filter(|b| !after.contains(b)) {
            changes.push(format!("{what} removed: {item}"));
        }
    };
    diff(
        "egress",
        old.entitlements.egress.clone(),
        new.entitlements.egress.clone(),
        &mut changes,
    );
    let credential = |m: &Manifest| -> Vec<String> {
        m.credentials
            .iter()
            .map(|c| {
                let target = if c.inject.env.is_empty() {
                    format!("{}: {}", c.inject.header, c.inject.format)
                } else {
                    format!("env {}", c.inject.env)
                };
                format!("{} ({}, {target}, scopes {})", c.id, c.kind, c.scopes.join(" "))
            })
            .collect()
    };
    diff("credential", credential(old), credential(new), &mut changes);
    let tools = |m: &Manifest| -> Vec<String> {
        m.tools
            .iter()
            .map(|t| format!("{}{}", t.name, if t.default { "" } else { " (off by default)" }))
            .collect()
    };
    diff("tool", tools(old), tools(new), &mut changes);
    if changes.is_empty() {
        changes.push("the source, image or tier changed".into());
    }
    changes
}

/// Whether a host is covered with one-label wildcards (as the server's egress rules match).
fn one_label_allows(entries: &[String], host: &str) -> bool {
    entries.iter().any(|entry| match entry.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        None => entry.eq_ignore_ascii_case(host),
    })
}

/// The manifest's credentials as definitions: the header and format the proxy injects (a sealed entry's
/// `inject`, an entrusted entry's toolspec `auth`, which the gateway injects as well so the secret never
/// enters the jail), the server's egress hosts, and the variable carrying the placeholder.
fn credentials(
    manifest: &Manifest,
    toolspec: &gigmcp_catalog::ToolSpec,
    egress: &[String],
) -> Result<Vec<CredentialDef>, OpsError> {
    manifest
        .credentials
        .iter()
        .map(|credential| {
            let name = CredentialName::parse(&credential.id).map_err(|e| {
                OpsError::Invalid(format!("catalog entry {}: credential id: {e}", manifest.reference()))
            })?;
            let (header, format) = match (manifest.tier.as_str(), &toolspec.auth) {
                ("entrusted", Some(auth)) => (auth.header.clone(), auth.format.clone()),
                _ => (credential.inject.header.clone(), credential.inject.format.clone()),
            };
            let env = name.default_env_name().check_not_reserved().map_err(|e| {
                OpsError::Invalid(format!(
                    "catalog entry {}: credential {}: {e}",
                    manifest.reference(),
                    credential.id
                ))
            })?;
            Ok(CredentialDef {
                id: credential.id.clone(),
                kind: credential.kind.clone(),
                // The connection's key: the vendor, else the provider (one app serves a vendor's products).
                vendor: if credential.vendor.is_empty() {
                    credential.provider.clone()
                } else {
                    credential.vendor.clone()
                },
                scopes: credential.scopes.clone(),
                header,
                format: format.replace("{token}", "{secret}"),
                hosts: egress.to_vec(),
                env: env.as_str().to_owned(),
            })
        })
        .collect()
}

/// Writes the engine's configuration as `<servers_dir>/toolpacks/<sha256>.json` (world-readable, as the
/// sandbox reads it; never rewritten: the same content has the same name).
fn write_config(servers_dir: &Path, config: &EngineConfig) -> Result<PathBuf, OpsError> {
    let bytes = serde_json::to_vec_pretty(config).map_err(|e| OpsError::Internal(e.to_string()))?;
    let dir = servers_dir.join("toolpacks");
    let failed = |e: std::io::Error| {
        OpsError::Internal(format!(
            "cannot write the toolpack's configuration in {}: {e}",
            dir.display()
        ))
    };
    let path = dir.join(format!("{}.json", hex::encode(Sha256::digest(&bytes))));
    if !path.exists() {
        crate::registry::write_public(servers_dir, &path, &bytes, 0o644).map_err(failed)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_label_wildcards_match_one_label_only() {
        let entries = vec!["*.helpdesk.test".to_owned(), "api.x.test".to_owned()];
        assert!(one_label_allows(&entries, "acme.helpdesk.test"));
        assert!(!one_label_allows(&entries, "a.b.helpdesk.test"));
        assert!(!one_label_allows(&entries, "helpdesk.test"));
        assert!(one_label_allows(&entries, "api.x.test"));
    }
}
