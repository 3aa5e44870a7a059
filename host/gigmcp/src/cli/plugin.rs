//! `gigmcp plugin …`: the operator's commands for plugins. Every change is validated before it is written
//! (a refused plugin or configuration changes nothing) and reaches a running gateway within a second.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::config::Paths;
use gigmcp_ops::{Actor, Ops};
use gigmcp_plugin_runtime::Runtime;
use gigmcp_plugin_runtime::harness::Harness;
use gigmcp_plugins::dry_run::dry_run;
use gigmcp_plugins::manage;
use gigmcp_plugins::manage::AddPlugin;
use gigmcp_store::Store;
use gigmcp_store::plugins::{Added, PluginRecord};
use gigmcp_types::names::PluginName;
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Add a plugin from a component (.wasm), or a new version of the plugin of that name. Its world and WIT
    /// version are checked, its configuration validated; it starts enabled and unbound (a new version keeps
    /// the bindings and replaces the running one atomically).
    Add {
        file: PathBuf,
        /// The plugin's name (default: the file's name, without .wasm).
        #[arg(long)]
        name: Option<String>,
        /// Refuse the file unless its sha256 is this (hex).
        #[arg(long)]
        sha256: Option<String>,
        /// Refuse the file unless it is this kind of plugin.
        #[arg(long)]
        kind: Option<String>,
        /// Its configuration: JSON, or @file (default: the current one for a new version, else {}).
        #[arg(long)]
        config: Option<String>,
    },
    /// List plugins.
    List,
    /// Show a plugin: kind, WIT version, imports, exports, configuration schema and configuration, bindings,
    /// revisions, and the running gateway's call counts, failures and latency.
    Inspect { name: String },
    /// Set a plugin's configuration (JSON or @file), checked against its schema and by the plugin itself.
    Config { name: String, config: String },
    /// Enable a plugin (this also restarts it, ending a quarantine).
    Enable { name: String },
    /// Disable a plugin: it is no longer asked (its bindings stay).
    Disable { name: String },
    /// Bind a plugin globally, or to one profile (which can only narrow what global plugins allow), at a
    /// position: lower runs first.
    Bind {
        name: String,
        #[arg(long)]
        profile: Option<String>,
        /// Plugins of a kind are asked in ascending order; by default, after the last binding of that scope.
        #[arg(long)]
        order: Option<i64>,
    },
    /// Remove a binding.
    Unbind {
        name: String,
        #[arg(long)]
        profile: Option<String>,
    },
    /// Remove a plugin, its bindings and its history.
    Remove { name: String },
    /// Go back to the plugin's previous revision (component and configuration); repeat to go further back.
    Rollback { name: String },
    /// Webhooks audit sinks may deliver to (`webhook:<name>`).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Run one hook of a component under the production limits and print the answer and what it cost: a
    /// harness for plugin authors. The call is JSON (see sdk/README.md for each kind's fields).
    Test {
        file: PathBuf,
        /// The configuration: JSON or @file.
        #[arg(long, default_value = "{}")]
        config: String,
        /// The hook's input: JSON or @file.
        #[arg(long)]
        call: String,
        /// The profile the call is made for.
        #[arg(long)]
        profile: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Register (or change) a webhook: https://, or http:// to a loopback address.
    Add {
        name: String,
        url: String,
    },
    Remove {
        name: String,
    },
    List,
}

pub fn run(command: PluginCommand, paths: &Paths) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(dispatch(command, paths))
}

async fn dispatch(command: PluginCommand, paths: &Paths) -> Result<()> {
    if let PluginCommand::Test {
        file,
        config,
        call,
        profile,
    } = command
    {
        return test(&file, &config, &call, profile.as_deref()).await;
    }
    let store = crate::cli::open_store_async(paths).await?;
    let ops = Ops {
        store: &store,
        actor: Actor::Operator,
        audit: None,
    };
    match command {
        PluginCommand::Add {
            file,
            name,
            sha256,
            kind,
            config,
        } => {
            let name = match name {
                Some(name) => PluginName::parse(&name)?,
                None => name_from_file(&file)?,
            };
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let expected_sha256 = sha256
                .map(|hex| ComponentHash::parse_hex(&hex).context("--sha256 must be 64 hex characters"))
                .transpose()?;
            let kind = kind.map(|k| parse_kind(&k)).transpose()?;
            let config = config.map(|c| read_json_arg(&c)).transpose()?;
            let outcome = manage::add(
                &runtime()?,
                &store,
                AddPlugin {
                    name: name.clone(),
                    bytes,
                    expected_sha256,
                    kind,
                    config,
                },
            )
            .await?;
            ops.record_plugin(
                "add",
                &name,
                json!({"kind": outcome.kind, "sha256": outcome.sha256.to_hex(), "config": outcome.config}),
            );
            match outcome.added {
                Added::Created(_) => println!(
                    "added {} plugin {name} ({}); bind it with `gigmcp plugin bind {name} --order <n>`",
                    outcome.kind, outcome.sha256
                ),
                Added::Updated(_) => println!(
                    "added a new version of {name} ({}); it replaces the running one",
                    outcome.sha256
                ),
            }
        }
        PluginCommand::List => list(&store)?,
        PluginCommand::Inspect { name } => inspect(&store, &PluginName::parse(&name)?)?,
        PluginCommand::Config { name, config } => {
            let name = PluginName::parse(&name)?;
            let config = manage::configure(&runtime()?, &store, &name, &read_json_arg(&config)?, None).await?;
            ops.record_plugin("config", &name, json!({"config": config}));
            println!("configured {name}: {config}");
        }
        PluginCommand::Enable { name } => {
            let name = PluginName::parse(&name)?;
            ops.plugin_set_enabled(&name, true)?;
            println!("enabled {name}");
        }
        PluginCommand::Disable { name } => {
            let name = PluginName::parse(&name)?;
            ops.plugin_set_enabled(&name, false)?;
            println!("disabled {name}");
        }
        PluginCommand::Bind { name, profile, order } => {
            let name = PluginName::parse(&name)?;
            let profile = profile.map(|p| ProfileSlug::parse(&p)).transpose()?;
            let order = ops.plugin_bind(&name, profile.as_ref(), order)?;
            match profile {
                Some(slug) => println!("bound {name} to profile {slug} at {order}"),
                None => println!("bound {name} globally at {order}"),
            }
        }
        PluginCommand::Unbind { name, profile } => {
            let name = PluginName::parse(&name)?;
            let profile = profile.map(|p| ProfileSlug::parse(&p)).transpose()?;
            ops.plugin_unbind(&name, profile.as_ref())?;
            println!("unbound {name}");
        }
        PluginCommand::Remove { name } => {
            let name = PluginName::parse(&name)?;
            ops.plugin_remove(&name)?;
            println!("removed {name}");
        }
        PluginCommand::Rollback { name } => {
            let name = PluginName::parse(&name)?;
            let revision = ops.plugin_rollback(&name)?;
            println!(
                "rolled {name} back to {} with configuration {}",
                revision.sha256, revision.config
            );
        }
        PluginCommand::Webhook(WebhookCommand::Add { name, url }) => {
            ops.set_webhook(&PluginName::parse(&name)?, &url)?;
            println!("audit sinks can now deliver to webhook:{name}");
        }
        PluginCommand::Webhook(WebhookCommand::Remove { name }) => {
            ops.remove_webhook(&PluginName::parse(&name)?)?;
            println!("removed webhook {name}");
        }
        PluginCommand::Webhook(WebhookCommand::List) => {
            for (name, url) in store.audit_webhooks()? {
                println!("webhook:{name:<24} {url}");
            }
        }
        PluginCommand::Test { .. } => unreachable!("handled above"),
    }
    Ok(())
}

fn runtime() -> Result<Arc<Runtime>> {
    Ok(Harness::runtime()?)
}

fn parse_kind(text: &str) -> Result<PluginKind> {
    PluginKind::parse(text).with_context(|| {
        let kinds: Vec<_> = PluginKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown plugin kind {text:?}; the kinds are {}", kinds.join(", "))
    })
}

/// `foo_bar.wasm` → `foo-bar`.
fn name_from_file(file: &Path) -> Result<PluginName> {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .context("give the plugin a name with --name")?;
    PluginName::parse(&stem.replace('_', "-").to_ascii_lowercase())
        .with_context(|| format!("the file name {stem:?} is not a plugin name; give one with --name"))
}

/// JSON given inline or as `@file`.
fn read_json_arg(arg: &str) -> Result<String> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
        None => arg.to_owned(),
    };
    serde_json::from_str::<Value>(&text).context("not JSON")?;
    Ok(text)
}

fn list(store: &Store) -> Result<()> {
    let bindings = store.plugin_bindings()?;
    println!(
        "{:<24} {:<20} {:<8} {:<14} {:<24} STATUS",
        "NAME", "KIND", "ENABLED", "SHA256", "BINDINGS"
    );
    for record in store.plugins()? {
        let bound: Vec<String> = bindings
            .iter()
            .filter(|b| b.plugin == record.id)
            .map(|b| match &b.profile {
                Some(p) => format!("{p}@{}", b.position),
                None => format!("global@{}", b.position),
            })
            .collect();
        println!(
            "{:<24} {:<20} {:<8} {:<14} {:<24} {}",
            record.name,
            record.kind,
            if record.enabled { "yes" } else { "no" },
            &record.revision.sha256.to_hex()[..12],
            if bound.is_empty() { "-".into() } else { bound.join(",") },
            status(store, &record)?,
        );
    }
    Ok(())
}

fn status(store: &Store, record: &PluginRecord) -> Result<String> {
    Ok(match store.plugin_stats(record.id)? {
        Some(s) if s.quarantined && s.revision == record.revision.id.0 => {
            format!("QUARANTINED: {}", s.last_error.unwrap_or_default())
        }
        Some(s) => format!("{} calls, {} failed", s.calls, s.failures),
        None => "not loaded by a gateway yet".into(),
    })
}

fn inspect(store: &Store, name: &PluginName) -> Result<()> {
    let record = store.plugin(name)?;
    let r = &record.revision;
    println!("name:          {}", record.name);
    println!("kind:          {} (gigmcp:plugin@{})", record.kind, r.wit_version);
    println!("enabled:       {}", if record.enabled { "yes" } else { "no" });
    println!(
        "default:       {}",
        if record.builtin {
            "yes (shipped with gigmcp)"
        } else {
            "no"
        }
    );
    println!("sha256:        {}", r.sha256);
    println!("imports:       {}", r.imports.join("\n               "));
    println!("exports:       {}", r.exports.join("\n               "));
    println!("configuration: {}", r.config);
    let schema: Value = serde_json::from_str(&r.config_schema).unwrap_or(Value::Null);
    println!("schema:\n{}", serde_json::to_string_pretty(&schema)?);
    let bindings: Vec<String> = store
        .plugin_bindings()?
        .into_iter()
        .filter(|b| b.plugin == record.id)
        .map(|b| match b.profile {
            Some(p) => format!("profile {p} at {}", b.position),
            None => format!("global at {}", b.position),
        })
        .collect();
    println!(
        "bindings:      {}",
        if bindings.is_empty() {
            "none".into()
        } else {
            bindings.join(", ")
        }
    );
    println!("revisions (newest first; * current):");
    for rev in store.plugin_revisions(name)? {
        let mark = if rev.id == r.id { "*" } else { " " };
        println!(
            "  {mark} {} {:<8} {} {}",
            rev.id.0,
            rev.note,
            &rev.sha256.to_hex()[..12],
            rev.config
        );
    }
    match store.plugin_stats(record.id)? {
        Some(s) => {
            println!(
                "calls:         {} ({} failed), latency p50 {} µs, p99 {} µs (revision {})",
                s.calls, s.failures, s.p50_us, s.p99_us, s.revision
            );
            if s.quarantined {
                println!("QUARANTINED:   its calls fail closed; `gigmcp plugin enable {name}` once it is fixed");
            }
            if let Some(e) = s.last_error {
                println!("last failure:  {e}");
            }
            if s.lost_events > 0 {
                println!(
                    "lost events:   {} audit copies (the log of record has them)",
                    s.lost_events
                );
            }
        }
        None => println!("calls:         none recorded (no running gateway has loaded it yet)"),
    }
    Ok(())
}

async fn test(file: &Path, config: &str, call: &str, profile: Option<&str>) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let harness = Harness::load(&runtime()?, bytes, &read_json_arg(config)?).await?;
    let call: Value = serde_json::from_str(&read_json_arg(call)?).context("--call is not JSON")?;
    let run = dry_run(&harness, &call, profile.map(ProfileSlug::parse).transpose()?).await?;
    let kind = run.kind;
    let (answer, usage) = run.answer?;
    println!("kind:   {kind}");
    println!("answer: {answer}");
    println!(
        "cost:   {} fuel, {} KiB of memory, {:?}",
        usage.fuel,
        usage.memory_bytes / 1024,
        usage.elapsed
    );
    Ok(())
}
