//! `gigmcp catalog`: the registry's own tooling (lint, hash, keygen, build — what the original's
//! `registryctl` does) and the operator's view of the catalog this gateway trusts (refresh, list, show).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::config::{self, Env, Paths};
use gigmcp_catalog::index::{format_generated, parse_generated};
use gigmcp_catalog::registry;
use gigmcp_catalog::{Index, Manifest, SigningKey};
use gigmcp_ops::catalog::{Catalog, CatalogError};
use gigmcp_store::catalog::Accepted;

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Check a registry directory: every manifests/<name>/<version>.yaml and .toolspec.yaml parsed strictly
    /// and validated, the denylist (denylist/exfil-domains.txt) applied, paths and pairs checked. Exits
    /// non-zero naming each file and field at fault.
    Lint { registry: PathBuf },
    /// Print a manifest's Hash and RuntimeHash (the consent key), as the Go registry computes them.
    Hash { manifest: PathBuf },
    /// Make an Ed25519 signing key for a registry: writes the private key (128 hex characters) to a new
    /// file readable only by you, and prints the public key for GIG_REGISTRY_PUBKEY.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Build and sign a registry's index: <out>/index.json and <out>/index.json.sig, the toolpacks'
    /// toolspecs signed with it. Refuses a registry that does not lint clean.
    Build {
        registry: PathBuf,
        /// The private key file `catalog keygen` wrote.
        #[arg(long)]
        key_file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The index's time, RFC 3339 UTC to the second (default: now). Gateways refuse an index older than
        /// the newest they accepted.
        #[arg(long)]
        generated: Option<String>,
    },
    /// Fetch the index from GIG_REGISTRY_INDEX_URL now, verify it with GIG_REGISTRY_PUBKEY and keep it
    /// unless it is older than the one accepted before.
    Refresh,
    /// List the catalog's entries (their latest versions), one per line, starting with the name.
    List {
        /// Only this category (like comms, CRM, dev-tools).
        #[arg(long)]
        category: Option<String>,
    },
    /// Show one entry: `name`, `name@version` or `sha256:<digest>`.
    Show { reference: String },
}

pub fn run(command: CatalogCommand) -> Result<()> {
    match command {
        CatalogCommand::Lint { registry } => lint(&registry),
        CatalogCommand::Hash { manifest } => hash(&manifest),
        CatalogCommand::Keygen { out } => keygen(&out),
        CatalogCommand::Build {
            registry,
            key_file,
            out,
            generated,
        } => build(&registry, &key_file, &out, generated),
        CatalogCommand::Refresh => {
            let (catalog, store) = open()?;
            let refreshed = runtime()?.block_on(catalog.refresh(&store))?;
            println!(
                "{} index generated {} from {} ({} entries)",
                match refreshed.accepted {
                    Accepted::Replaced => "accepted",
                    Accepted::Unchanged => "unchanged:",
                },
                refreshed.index.generated,
                refreshed.source,
                refreshed.index.servers.len()
            );
            Ok(())
        }
        CatalogCommand::List { category } => {
            let index = current()?;
            for manifest in index
                .latest()
                .filter(|m| category.as_ref().is_none_or(|c| *c == m.category))
            {
                println!("{}", list_line(manifest));
            }
            Ok(())
        }
        CatalogCommand::Show { reference } => {
            let index = current()?;
            let manifest = index.resolve(&reference)?;
            print!("{}", show(&index, manifest));
            Ok(())
        }
    }
}

fn lint(dir: &Path) -> Result<()> {
    let (registry, report) = registry::lint(dir);
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    if !report.errors.is_empty() {
        for error in &report.errors {
            eprintln!("{error}");
        }
        bail!("lint failed: {} error(s) in {}", report.errors.len(), dir.display());
    }
    println!(
        "ok: {} manifests, {} toolspecs",
        registry.manifests.len(),
        registry.toolspecs.len()
    );
    Ok(())
}

fn hash(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (manifest, _) = Manifest::parse(&text).with_context(|| path.display().to_string())?;
    let errors = manifest.validate();
    if !errors.is_empty() {
        bail!("{}: {}", path.display(), errors.join("; "));
    }
    println!("Hash        {}", manifest.hash());
    println!("RuntimeHash {}", manifest.runtime_hash());
    Ok(())
}

fn keygen(out: &Path) -> Result<()> {
    let key = SigningKey::generate()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {} (an existing key is never overwritten)", out.display()))?;
    writeln!(file, "{}", key.to_hex())?;
    println!("public: {}", key.public_key().to_hex());
    eprintln!(
        "wrote the private key to {}; give the public key to gateways as GIG_REGISTRY_PUBKEY",
        out.display()
    );
    Ok(())
}

fn build(dir: &Path, key_file: &Path, out: &Path, generated: Option<String>) -> Result<()> {
    let key_text = std::fs::read_to_string(key_file).with_context(|| format!("cannot read {}", key_file.display()))?;
    let key = SigningKey::parse(&key_text).with_context(|| key_file.display().to_string())?;
    let generated = match generated {
        Some(text) if parse_generated(&text).is_some() => text,
        Some(text) => bail!("--generated {text:?}: give RFC 3339 UTC to the second, like 2026-06-10T23:20:45Z"),
        None => format_generated(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64,
        ),
    };
    let (registry, warnings) = registry::load(dir).map_err(|errors| {
        for error in &errors {
            eprintln!("{error}");
        }
        anyhow::anyhow!(
            "{} does not lint clean ({} errors); nothing was written",
            dir.display(),
            errors.len()
        )
    })?;
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    let index = Index::build(registry.manifests, registry.toolspecs, &generated)
        .map_err(|errors| anyhow::anyhow!("cannot build the index: {}", errors.join("; ")))?;
    let bytes = index.to_bytes();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join("index.json"), &bytes)?;
    std::fs::write(out.join("index.json.sig"), key.sign(&bytes))?;
    println!(
        "wrote {} ({} entries, {} toolspecs, {} bytes, generated {generated}) and index.json.sig",
        out.join("index.json").display(),
        index.servers.len(),
        index.toolspecs.len(),
        bytes.len()
    );
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn open() -> Result<(Catalog, gigmcp_store::Store)> {
    let env = Env::from_process();
    let catalog = Catalog::new(config::catalog_source(&env)?)?;
    let store = super::open_store_at(&Paths::from_env(&env)?)?;
    Ok((catalog, store))
}

/// The index to use: fetched now when a registry is configured and answers, else the one accepted before
/// (by this CLI or by the gateway on this data directory). A refused index (bad signature, rollback) is an
/// error, never silently replaced by the stored one.
pub(crate) fn current() -> Result<std::sync::Arc<Index>> {
    let (catalog, store) = open()?;
    if catalog.source().is_none() {
        return Ok(catalog.current(&store)?);
    }
    match runtime()?.block_on(catalog.refresh(&store)) {
        Ok(refreshed) => Ok(refreshed.index),
        Err(CatalogError::Fetch { url, reason }) => {
            eprintln!("warning: cannot fetch {url} ({reason}); using the index accepted before");
            Ok(catalog.current(&store)?)
        }
        Err(error) => Err(error.into()),
    }
}

fn credential_kinds(manifest: &Manifest) -> String {
    match manifest.credentials.as_slice() {
        [] => "none".into(),
        credentials => credentials
            .iter()
            .map(|c| c.kind.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn list_line(manifest: &Manifest) -> String {
    format!(
        "{:<20} {:<9} {:<13} {:<15} {:<8} {}",
        manifest.name,
        manifest.version,
        if manifest.category.is_empty() {
            "-"
        } else {
            &manifest.category
        },
        if manifest.has_placeholder_digest() {
            "not-installable"
        } else {
            manifest.kind()
        },
        credential_kinds(manifest),
        manifest.display_name
    )
}

fn show(index: &Index, manifest: &Manifest) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("{}  {}", manifest.reference(), manifest.display_name));
    if !manifest.description.is_empty() {
        line(format!("  {}", manifest.description));
    }
    let mut versions: Vec<&str> = index.servers[&manifest.name]
        .versions
        .keys()
        .map(String::as_str)
        .collect();
    versions.sort_by_key(|v| gigmcp_catalog::manifest::version_key(v));
    line(format!(
        "versions:     {} (latest {})",
        versions.join(", "),
        index.servers[&manifest.name].latest
    ));
    line(format!("category:     {}", manifest.category));
    line(format!("kind:         {} ({} tier)", manifest.kind(), manifest.tier));
    line(format!(
        "image:        {}@{}",
        manifest.image.reference, manifest.image.digest
    ));
    line(format!(
        "source:       {} {}",
        manifest.source.repo, manifest.source.tag
    ));
    line(format!("egress:       {}", manifest.entitlements.egress.join(", ")));
    for credential in &manifest.credentials {
        let inject = &credential.inject;
        let target = if inject.env.is_empty() {
            format!("{}: {}", inject.header, inject.format)
        } else {
            format!("env {}", inject.env)
        };
        let vendor = if credential.vendor.is_empty() {
            String::new()
        } else {
            format!(", vendor {}", credential.vendor)
        };
        let scopes = if credential.scopes.is_empty() {
            String::new()
        } else {
            format!(", scopes {}", credential.scopes.join(" "))
        };
        line(format!(
            "credential:   {} ({}{vendor}{scopes}) → {target}",
            credential.id, credential.kind
        ));
    }
    let spec = index.toolspec(manifest);
    line("tools:".into());
    for tool in &manifest.tools {
        let description = spec
            .and_then(|s| s.tools.iter().find(|t| t.name == tool.name))
            .map(|t| t.description.as_str())
            .unwrap_or("");
        let shown = if tool.default { "on " } else { "off" };
        line(format!("  {shown} {:<28} {description}", tool.name));
    }
    line(format!("Hash:         {}", manifest.hash()));
    line(format!("RuntimeHash:  {}", manifest.runtime_hash()));
    if manifest.has_placeholder_digest() {
        line("not installable: its image digest is the all-zero placeholder".into());
    }
    out
}
