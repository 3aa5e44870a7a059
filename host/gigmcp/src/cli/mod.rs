//! The command line: the operator's tool. It works without an identity provider, so operators and tests can
//! drive everything, and it shares the database with a running gateway, which picks up edits within a second.

mod admin;
mod catalog;
mod oauth;
mod plugin;
pub(crate) mod vault;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config;
use crate::config::{Env, Paths, ServeConfig};
use gigmcp_mcp::runtime::Deps;
use gigmcp_ops::{Actor, Ops};
use gigmcp_sandbox::Launcher;
use gigmcp_store::Store;
use gigmcp_types::names::{Prefix, ProfileSlug, ServerName};
use gigmcp_types::secret::MasterKey;
use gigmcp_types::server as servers;
use gigmcp_types::server::{Builtin, ServerDef, ServerSpec};

#[derive(Parser)]
#[command(
    name = "gigmcp",
    version,
    about = "Gig'MCP: a security-first gateway for MCP servers"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
enum Command {
    /// Run the gateway (configured by GIG_* environment variables; see README.md).
    Serve {
        /// Development mode: generate a master key into the data directory if none is set, create a `demo`
        /// profile with the built-in echo server, and print how to connect a client.
        #[arg(long)]
        dev: bool,
    },
    /// Manage profiles: named sets of servers, each served at /mcp/p/<slug> with its own token.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Manage servers (only the operator defines them: a server's command and URL are powers over the host).
    #[command(subcommand)]
    Server(ServerCommand),
    /// Manage policy plugins: WebAssembly components that decide egress, credentials, logins, audit routing
    /// and which MCP calls pass.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Manage credentials: secrets a server uses through the egress proxy while holding only a placeholder.
    #[command(subcommand)]
    Credential(vault::CredentialCommand),
    /// The vault of secrets: check the master key, rotate it.
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// Administer the control plane: single-use login links for the web API (no identity provider needed).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// The signed catalog: build and check a registry, and list what the configured one offers.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Connected accounts: OAuth apps per vendor, and the accounts users connect with them.
    #[command(subcommand)]
    Oauth(oauth::OAuthCommand),
    /// Check that the gateway on GIG_LISTEN answers `/api/health` (exit 0) or not (exit 1): for container
    /// health checks, with nothing else in the image.
    Health,
    /// Serve the built-in echo MCP server on stdin/stdout (one tool, `echo`).
    McpEcho,
    /// Serve a catalog toolpack on stdin/stdout (what a toolpack server's sandbox runs).
    McpToolpack {
        /// The engine's configuration (default: where the sandbox mounts it).
        #[arg(long, default_value = gigmcp_types::server::TOOLPACK_CONFIG_PATH)]
        config: String,
    },
}

#[derive(Subcommand)]
enum ProfileCommand {
    /// Create a profile and print its token (shown this once only).
    Create {
        slug: String,
        /// A display name.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List profiles.
    List,
    /// Delete a profile; its clients are disconnected and its servers stopped.
    Delete {
        slug: String,
        /// Also delete the state its servers keep for it (refused without this when there is some).
        #[arg(long)]
        delete_state: bool,
    },
    /// Manage a profile's token.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add a server to a profile (refused if any of its tool or prompt names would collide).
    AddServer { slug: String, server: String },
    /// A profile's catalog tools, on or off: a tool its entry marks `default: false` is off until enabled.
    Tools {
        slug: String,
        /// Turn a tool on for this profile: <server>/<tool> (repeat for more).
        #[arg(long)]
        enable: Vec<String>,
        /// Turn a tool off for this profile: <server>/<tool> (repeat for more).
        #[arg(long)]
        disable: Vec<String>,
        /// Back to the entry's default: <server>/<tool> (repeat for more).
        #[arg(long)]
        reset: Vec<String>,
    },
    /// Remove a server from a profile.
    RemoveServer {
        slug: String,
        server: String,
        /// Also delete the state the server keeps for this profile (refused without this when there is some).
        #[arg(long)]
        delete_state: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Replace the profile's token; the old one stops working at once. Prints the new token once.
    Rotate { slug: String },
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
enum ServerCommand {
    /// Define a server: a sandboxed stdio command, a built-in, or a streamable-HTTP URL.
    Add(ServerAdd),
    /// Change a server: `--egress h1,h2` replaces the hosts it declares (`--egress ''` clears them).
    Set(ServerSet),
    /// List servers.
    List,
    /// Remove a server (it must be in no profile).
    Remove {
        name: String,
        /// Also delete the state it keeps for profiles (refused without this when there is some).
        #[arg(long)]
        delete_state: bool,
    },
    /// Show the servers' state directories and the running sandboxes of the gateway serving this data
    /// directory.
    Status,
    /// Consent to a catalog upgrade that changed what a toolpack runs or where it connects (shows what
    /// changed); it starts again on next use.
    Consent { name: String },
}

#[derive(Args)]
struct ServerAdd {
    name: String,
    /// Absolute path of a stdio MCP server to run in a sandbox.
    #[arg(long, conflicts_with_all = ["url", "builtin", "npm", "pypi"], required_unless_present_any = ["url", "builtin", "npm", "pypi", "catalog", "server_json"])]
    command: Option<String>,
    /// Install an entry of the signed catalog (GIG_REGISTRY_*): `name`, `name@version` or `sha256:<digest>`.
    /// Its egress hosts and credential definitions come from its manifest; set the secret afterwards with
    /// `gigmcp credential set <server> <credential>`. Again on an installed server: an upgrade.
    #[arg(long, conflicts_with_all = ["command", "url", "builtin", "npm", "pypi", "args", "env", "mounts", "bin", "runtime", "prefix", "per_session", "egress", "server_json"])]
    catalog: Option<String>,
    /// Install an entry in the official MCP Registry's server.json format (a file): its npm or PyPI package
    /// (an exact version) run in a sandbox, or its streamable-HTTP remote. Its environment's secrets become
    /// credentials to set; `--env` gives what it requires; `--egress` the hosts it may reach.
    #[arg(long, conflicts_with_all = ["command", "url", "builtin", "npm", "pypi", "args", "bin", "runtime"])]
    server_json: Option<PathBuf>,
    /// With --server-json: where one of its secrets may be sent, NAME=hosts[;header[;format]] (default header
    /// Authorization, format `Bearer {secret}`); repeat for each secret it declares.
    #[arg(long = "secret", requires = "server_json")]
    secrets: Vec<String>,
    /// With --server-json: a variable of its remote's URL template, name=value.
    #[arg(long = "var", requires = "server_json")]
    vars: Vec<String>,
    /// With --catalog: the tenant's own API host, like https://acme.zendesk.com, for entries whose API lives on
    /// a host of each customer's.
    #[arg(long, requires = "catalog")]
    base_url: Option<String>,
    /// With --catalog: consent now to an upgrade that changes what runs or where it connects (otherwise it
    /// waits for `gigmcp server consent`).
    #[arg(long, requires = "catalog")]
    consent: bool,
    /// Install an npm package and run it with Node, scripts off: `<package>@<version>`, or a range, a
    /// dist-tag or just `<package>` (the latest), resolved now to the exact version that is installed and
    /// pinned.
    #[arg(long, conflicts_with_all = ["url", "builtin", "pypi"])]
    npm: Option<String>,
    /// Install a PyPI package (wheels only) and run it: `<package>==<version>`, or specifiers like
    /// `>=1,<2`, or just `<package>` (the latest with a wheel for the runtime), resolved now and pinned.
    #[arg(long, conflicts_with_all = ["url", "builtin", "npm"])]
    pypi: Option<String>,
    /// With --npm or --pypi: which of the package's executables to run (default: the first, or the
    /// package's name).
    #[arg(long)]
    bin: Option<String>,
    /// With --npm or --pypi: the interpreter (default: the host's node, or /usr/bin/python3).
    #[arg(long)]
    runtime: Option<String>,
    /// An argument for the server (repeat for more).
    #[arg(long = "arg", allow_hyphen_values = true)]
    args: Vec<String>,
    /// An environment variable for the server, NAME=value (repeat for more).
    #[arg(long = "env")]
    env: Vec<String>,
    /// A host path visible in the sandbox: HOST[:SANDBOX][:rw], read-only unless :rw (repeat for more).
    #[arg(long = "mount")]
    mounts: Vec<String>,
    /// A streamable-HTTP MCP server.
    #[arg(long, conflicts_with = "builtin")]
    url: Option<String>,
    /// A server built into gigmcp: echo.
    #[arg(long)]
    builtin: Option<String>,
    /// Expose names as <prefix>_<name> (default: the server name; empty: the plain names).
    #[arg(long)]
    prefix: Option<String>,
    /// One process per client session instead of one per profile.
    #[arg(long)]
    per_session: bool,
    /// Memory limit of the server's sandbox, like 512m or 2g (default: GIG_SANDBOX_MEMORY, 1g).
    #[arg(long, conflicts_with = "url")]
    memory: Option<String>,
    /// Process (and thread) limit of the server's sandbox (default: GIG_SANDBOX_PIDS, 256).
    #[arg(long, conflicts_with = "url")]
    pids: Option<u64>,
    /// Size of the server's persistent state directory, one per profile, mounted read-write at /state (its
    /// HOME and working directory), like 64m or 1g (default: GIG_SANDBOX_STATE_SIZE, 256m). A server that
    /// fills it gets "no space left on device".
    #[arg(long, conflicts_with = "url")]
    state_size: Option<String>,
    /// Hosts the server needs to reach through the egress proxy: host, host:port or host:*, comma separated
    /// (a host may be *.domain). The egress-allowlist plugin allows them.
    #[arg(long, conflicts_with = "url")]
    egress: Option<String>,
}

#[derive(Args)]
struct ServerSet {
    name: String,
    /// Replace the declared egress hosts (comma separated; '' clears them).
    #[arg(long)]
    egress: String,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Health => health(&Env::from_process()),
        Command::McpEcho => Ok(crate::echo::run()?),
        Command::McpToolpack { config } => gigmcp_toolpack::run(&config).map_err(anyhow::Error::msg),
        Command::Serve { dev } => serve(dev),
        Command::Profile(command) => profile(command),
        Command::Server(command) => server(command),
        Command::Plugin(command) => plugin::run(command, &Paths::from_env(&Env::from_process())?),
        Command::Credential(command) => vault::credential(command, &Paths::from_env(&Env::from_process())?),
        Command::Admin(command) => admin::admin(command, &Env::from_process()),
        Command::Catalog(command) => catalog::run(command),
        Command::Oauth(command) => oauth::run(command, &Env::from_process()),
        Command::Vault(command) => vault::vault(command, &Paths::from_env(&Env::from_process())?),
    }
}

fn open_store() -> Result<Store> {
    open_store_at(&Paths::from_env(&Env::from_process())?)
}

/// Opens the database. The command that creates it installs the default plugins first, as `serve` does on a
/// new database, so `gigmcp plugin list` shows them whichever command ran first on a new data directory.
pub(crate) fn open_store_at(paths: &Paths) -> Result<Store> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(open_store_async(paths))
}

/// `open_store_at` for a command already running on a tokio runtime.
pub(crate) async fn open_store_async(paths: &Paths) -> Result<Store> {
    let new = !paths.db_path.exists();
    let store = Store::open(&paths.db_path)?;
    if new {
        install_defaults(&store).await?;
    }
    Ok(store)
}

async fn install_defaults(store: &Store) -> Result<()> {
    let runtime = gigmcp_plugin_runtime::Runtime::new(
        gigmcp_plugin_runtime::artifacts::ArtifactCache::in_memory(),
        gigmcp_plugin_runtime::Limits::default(),
    )?;
    gigmcp_plugins::defaults::install(&runtime, store, gigmcp_default_plugins::COMPONENTS)
        .await
        .context("cannot install the default plugins in the new database")?;
    Ok(())
}

fn operator(store: &Store) -> Ops<'_> {
    Ops {
        store,
        actor: Actor::Operator,
        audit: None,
    }
}

fn profile(command: ProfileCommand) -> Result<()> {
    let store = open_store()?;
    let ops = operator(&store);
    match command {
        ProfileCommand::Create { slug, name } => {
            let slug = ProfileSlug::parse(&slug)?;
            let (profile, token) = ops.create_profile(&slug, &name, None)?;
            println!("created profile {}", profile.slug);
            println!("token (shown once; store it now): {}", token.reveal());
        }
        ProfileCommand::List => {
            let configs: HashMap<_, _> = store.profile_configs()?.into_iter().map(|c| (c.id, c)).collect();
            println!("{:<24} {:<24} SERVERS", "SLUG", "NAME");
            for p in store.list_profiles()? {
                let servers: Vec<String> = configs
                    .get(&p.id)
                    .map(|c| c.servers.iter().map(|s| s.name.to_string()).collect())
                    .unwrap_or_default();
                println!("{:<24} {:<24} {}", p.slug, p.name, servers.join(","));
            }
        }
        ProfileCommand::Delete { slug, delete_state } => {
            let removed = ops.delete_profile(&ProfileSlug::parse(&slug)?, &cli_states()?, delete_state)?;
            print_removed_states(&removed);
            println!("deleted profile {slug}");
        }
        ProfileCommand::Token(TokenCommand::Rotate { slug }) => {
            let token = ops.rotate_token(&ProfileSlug::parse(&slug)?)?;
            println!(
                "new token for {slug} (shown once; the old one no longer works): {}",
                token.reveal()
            );
        }
        ProfileCommand::Tools {
            slug,
            enable,
            disable,
            reset,
        } => {
            let slug = ProfileSlug::parse(&slug)?;
            let changes = enable
                .iter()
                .map(|t| (t, Some(true)))
                .chain(disable.iter().map(|t| (t, Some(false))))
                .chain(reset.iter().map(|t| (t, None)));
            for (tool, enabled) in changes {
                ops.switch_tool(&slug, tool, enabled)?;
            }
            let tools = ops.profile_tools(&slug)?;
            if tools.is_empty() {
                println!("profile {slug} serves no catalog toolpack");
            }
            for t in tools {
                let why = match t.switched {
                    Some(_) => "switched for this profile",
                    None if t.default => "default",
                    None => "off by default",
                };
                println!(
                    "{:<3} {}/{} ({why})",
                    if t.enabled { "on" } else { "off" },
                    t.server,
                    t.tool
                );
            }
        }
        ProfileCommand::AddServer { slug, server } => {
            let slug = ProfileSlug::parse(&slug)?;
            let server = ServerName::parse(&server)?;
            let env = Env::from_process();
            let settings = config::sandbox_settings(&env, &Paths::from_env(&env)?)?;
            ops.add_server_to_profile(
                &slug,
                &server,
                &crate::adapters::SandboxProbe {
                    settings,
                    logs: Arc::default(),
                },
            )?;
            println!("added {server} to profile {slug}");
        }
        ProfileCommand::RemoveServer {
            slug,
            server,
            delete_state,
        } => {
            let removed = ops.remove_server_from_profile(
                &ProfileSlug::parse(&slug)?,
                &ServerName::parse(&server)?,
                &cli_states()?,
                delete_state,
            )?;
            print_removed_states(&removed);
            println!("removed {server} from profile {slug}");
        }
    }
    Ok(())
}

fn server(command: ServerCommand) -> Result<()> {
    let store = open_store()?;
    let ops = operator(&store);
    match command {
        ServerCommand::Add(add) if add.catalog.is_some() => {
            let env = Env::from_process();
            let paths = Paths::from_env(&env)?;
            let oci = config::oci_settings(&env)?;
            let index = catalog::current()?;
            let name = ServerName::parse(&add.name)?;
            let reference = add.catalog.as_deref().unwrap_or_default();
            let outcome = ops.install_from_catalog(
                &index,
                &gigmcp_ops::install::CatalogInstall {
                    name: &name,
                    reference,
                    base_url: add.base_url.as_deref(),
                    consent: add.consent,
                    servers_dir: &paths.servers_dir,
                    oci: &oci,
                },
            )?;
            print_install(&outcome);
        }
        ServerCommand::Add(mut add) if add.server_json.is_some() => {
            let env = Env::from_process();
            let paths = Paths::from_env(&env)?;
            let defaults = config::sandbox_settings(&env, &paths)?.default_limits;
            let file = add.server_json.take().unwrap_or_default();
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let entry = gigmcp_ops::server_json::ServerJson::parse(&text)?;
            let (secrets, vars) = (std::mem::take(&mut add.secrets), std::mem::take(&mut add.vars));
            let plan = entry.plan(server_input(add), &secrets, &vars)?;
            let def = ops.add_server_from(plan.input, defaults, &paths.servers_dir)?;
            println!("added server {} from {} {}", def.name, entry.name, entry.version);
            for skipped in &plan.skipped {
                println!("  not used: {skipped}");
            }
            for secret in &plan.secrets {
                println!(
                    "  credential {} (the variable {}): set its secret with `printf %s \"$SECRET\" | gigmcp credential \
                     set {} {}`; the proxy sends `{}: {}` to {}",
                    secret.id,
                    secret.env,
                    def.name,
                    secret.id,
                    secret.header,
                    secret.format,
                    secret.hosts.join(", ")
                );
            }
            if def.spec.egress().is_empty() && !matches!(def.spec, ServerSpec::Http { .. }) {
                println!(
                    "  server.json declares no egress: give the hosts it needs with `gigmcp server set {} --egress …`",
                    def.name
                );
            }
        }
        ServerCommand::Add(add) => {
            let env = Env::from_process();
            let paths = Paths::from_env(&env)?;
            let defaults = config::sandbox_settings(&env, &paths)?.default_limits;
            let asked = add.npm.clone().or(add.pypi.clone());
            let def = ops.add_server_from(server_input(add), defaults, &paths.servers_dir)?;
            if let ServerSpec::Stdio {
                package: Some(installed),
                ..
            } = &def.spec
            {
                let pinned = [
                    format!("{}@{}", installed.package, installed.version),
                    format!("{}=={}", installed.package, installed.version),
                ];
                if let Some(asked) = asked.filter(|a| !pinned.contains(a)) {
                    println!("resolved {asked} to version {}", installed.version);
                }
                println!(
                    "installed {} {} ({}) into {}",
                    installed.package,
                    installed.version,
                    installed.integrity,
                    installed.dir.display()
                );
            }
            println!("added server {}", def.name);
        }
        ServerCommand::Set(set) => {
            let name = ServerName::parse(&set.name)?;
            let egress = servers::parse_egress(&set.egress)?;
            let def = ops.set_server_egress(&name, egress)?;
            match def.spec.egress() {
                [] => println!("server {name} declares no egress hosts"),
                hosts => println!("server {name} may reach: {}", hosts.join(",")),
            }
        }
        ServerCommand::List => {
            println!("{:<24} {:<16} {:<8} {:<32} TARGET", "NAME", "PREFIX", "MODE", "EGRESS");
            for s in store.list_servers()? {
                let (_, target) = s.spec.describe();
                let mode = if s.per_session { "session" } else { "profile" };
                let egress = match s.spec.egress() {
                    [] => "-".to_owned(),
                    hosts => hosts.join(","),
                };
                println!(
                    "{:<24} {:<16} {:<8} {:<32} {}",
                    s.name,
                    s.prefix.as_str(),
                    mode,
                    egress,
                    target.trim_end()
                );
            }
        }
        ServerCommand::Remove { name, delete_state } => {
            let name = ServerName::parse(&name)?;
            let removed = ops.remove_server(&name, &cli_states()?, delete_state)?;
            print_removed_states(&removed);
            println!("removed server {name}");
        }
        ServerCommand::Status => print_status()?,
        ServerCommand::Consent { name } => {
            let name = ServerName::parse(&name)?;
            let changes = ops.consent(&name)?;
            if changes.is_empty() {
                println!("server {name} already runs what was consented to");
            } else {
                println!("consented to the new runtime of {name}:");
                for change in changes {
                    println!("  {change}");
                }
            }
        }
    }
    Ok(())
}

fn print_install(outcome: &gigmcp_ops::install::InstallOutcome) {
    use gigmcp_ops::install::InstallAction;
    let ServerSpec::Toolpack { toolpack, egress, .. } = &outcome.def.spec else {
        return;
    };
    let name = &outcome.def.name;
    let entry = format!("{}@{}", toolpack.entry, toolpack.version);
    match outcome.action {
        InstallAction::Installed => println!("installed catalog entry {entry} as server {name}"),
        InstallAction::Unchanged => println!("server {name} already runs {entry}; nothing to consent to"),
        InstallAction::Upgraded => println!("upgraded server {name} to {entry}"),
        InstallAction::AwaitsConsent => {
            println!("upgraded server {name} to {entry}; it changes what runs or where it connects:");
            for change in gigmcp_ops::install::consent_changes(toolpack) {
                println!("  {change}");
            }
            println!("it does not start until you consent: gigmcp server consent {name}");
        }
    }
    println!("  may reach: {}", egress.join(", "));
    let off: Vec<&str> = toolpack
        .tools
        .iter()
        .filter(|t| !t.default)
        .map(|t| t.name.as_str())
        .collect();
    println!(
        "  tools: {} on by default{}",
        toolpack.tools.len() - off.len(),
        if off.is_empty() {
            String::new()
        } else {
            format!(
                "; off until enabled per profile: {} (gigmcp profile tools <slug> --enable {name}/<tool>)",
                off.join(", ")
            )
        }
    );
    for credential in &toolpack.credentials {
        println!(
            "  credential {} ({}): set it with `printf %s \"$SECRET\" | gigmcp credential set {name} {}`; the \
             proxy sends `{}: {}` to {}",
            credential.id,
            credential.kind,
            credential.id,
            credential.header,
            credential.format,
            credential.hosts.join(", ")
        );
    }
    for note in &outcome.notes {
        println!("  note: {note}");
    }
}

/// The state directories of this data directory, for a CLI command.
fn cli_states() -> Result<crate::adapters::States> {
    Ok(crate::adapters::States(Arc::new(state_store()?)))
}

fn state_store() -> Result<gigmcp_sandbox::state::StateStore> {
    let env = Env::from_process();
    Ok(config::sandbox_settings(&env, &Paths::from_env(&env)?)?.state_store())
}

fn print_removed_states(removed: &[String]) {
    for state in removed {
        println!("deleted the state of {state}");
    }
}

/// How old the status file may be before the gateway is taken to be down.
const STATUS_STALE_SECS: u64 = 10;

fn print_status() -> Result<()> {
    let paths = Paths::from_env(&Env::from_process())?;
    print_states(&state_store()?);
    let file = paths.data_dir.join("status.json");
    let not_running = || anyhow::anyhow!("no gateway is running on GIG_DATA_DIR={}", paths.data_dir.display());
    let text = std::fs::read_to_string(&file).map_err(|_| not_running())?;
    let status: gigmcp_mcp::gateway::Status = serde_json::from_str(&text).context("the status file is corrupt")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if now.saturating_sub(status.updated_at) > STATUS_STALE_SECS {
        return Err(not_running());
    }
    println!(
        "{:<20} {:<16} {:<8} {:>8} {:<15} {:>8} {:>8} {:>10}",
        "SERVER", "PROFILE", "MODE", "PID", "ADDRESS", "UPTIME", "RESTARTS", "MEMORY"
    );
    for s in &status.sandboxes {
        let mode = if s.per_session { "session" } else { "profile" };
        println!(
            "{:<20} {:<16} {:<8} {:>8} {:<15} {:>7}s {:>8} {:>10}",
            s.server,
            s.profile,
            mode,
            s.pid.map(|p| p.to_string()).unwrap_or("-".into()),
            s.address.as_deref().unwrap_or("-"),
            s.uptime_s,
            s.restarts,
            s.memory_bytes.map(mib).unwrap_or("-".into())
        );
    }
    if status.sandboxes.is_empty() {
        println!("(no sandbox running; servers start on first use)");
    }
    Ok(())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// Every server's state directories (whether or not a gateway runs): what each takes on disk of its limit.
fn print_states(states: &gigmcp_sandbox::state::StateStore) {
    let all = states.list(None);
    if all.is_empty() {
        println!("(no server has a state directory yet; each gets one, per profile, when it first runs)\n");
        return;
    }
    println!(
        "{:<20} {:<16} {:>10} {:>10}  PATH",
        "SERVER", "PROFILE", "DISK", "LIMIT"
    );
    for s in &all {
        println!(
            "{:<20} {:<16} {:>10} {:>10}  {}",
            s.server,
            s.profile,
            mib(s.disk_bytes),
            s.limit_bytes.map(mib).unwrap_or("none".into()),
            s.path.display()
        );
    }
    println!();
}

/// Parses `server add` into a definition; every part is validated before anything is written.
fn server_input(add: ServerAdd) -> gigmcp_ops::ServerInput {
    gigmcp_ops::ServerInput {
        name: add.name,
        prefix: add.prefix,
        per_session: add.per_session,
        command: add.command,
        builtin: add.builtin,
        url: add.url,
        npm: add.npm,
        pypi: add.pypi,
        bin: add.bin,
        runtime: add.runtime,
        args: add.args,
        env: add.env,
        mounts: add.mounts,
        memory: add.memory,
        pids: add.pids,
        state_size: add.state_size,
        egress: add.egress.into_iter().collect(),
        credentials: Vec::new(),
    }
}

/// `gigmcp health`: GET /api/health on GIG_LISTEN (a wildcard address is asked on loopback), within 3 s.
fn health(env: &Env) -> Result<()> {
    use std::io::{Read, Write};
    let text = env.get("GIG_LISTEN").unwrap_or("127.0.0.1:8080");
    let mut addr: std::net::SocketAddr = text
        .parse()
        .with_context(|| format!("GIG_LISTEN={text} is not an address and port"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let timeout = std::time::Duration::from_secs(3);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("the gateway does not answer on {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /api/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.take(64 * 1024).read_to_string(&mut answer)?;
    let status = answer.split_whitespace().nth(1).unwrap_or("");
    if status != "200" || !answer.contains("\"status\":\"ok\"") {
        anyhow::bail!(
            "the gateway on {addr} is not healthy: {}",
            answer.lines().next().unwrap_or("no answer")
        );
    }
    println!("ok");
    Ok(())
}

/// The gateway's log on standard error: `GIG_LOG` filters it (default `info`); `GIG_LOG_FORMAT=json` writes one
/// JSON object per line (time, level, target, message and fields) for log collectors, `text` (the default)
/// lines for people.
fn init_tracing(env: &Env) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GIG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match env.get("GIG_LOG_FORMAT") {
        None | Some("text") => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        Some("json") => builder.json().with_current_span(false).init(),
        Some(other) => {
            return Err(crate::config::ConfigError::Invalid {
                name: "GIG_LOG_FORMAT",
                value: other.to_owned(),
                hint: "give text (the default) or json (one JSON object per line)",
            }
            .into());
        }
    }
    Ok(())
}

/// In dev mode, a master key kept in the data directory (never in production: `serve` alone requires one).
fn dev_master_key(data_dir: &std::path::Path) -> Result<MasterKey> {
    let path: PathBuf = data_dir.join("dev-master-key");
    if !path.exists() {
        std::fs::create_dir_all(data_dir)?;
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        write_private(&path, hex::encode(key).as_bytes())?;
        eprintln!(
            "\n  WARNING: GIG_MASTER_KEY is not set. Development mode generated one into {}.\n  \
             Never use this in production: set GIG_MASTER_KEY (openssl rand -hex 32) or GIG_MASTER_KEY_FILE.\n",
            path.display()
        );
    }
    Ok(MasterKey::parse(&std::fs::read_to_string(&path)?)?)
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(())
}

/// Dev mode: the `demo` profile with the built-in echo server, and a fresh token to print (tokens are
/// stored only as hashes, so the demo token is rotated at every start rather than kept anywhere).
fn prepare_demo(store: &Store) -> Result<String> {
    let slug = ProfileSlug::parse("demo")?;
    let echo = ServerName::parse("echo")?;
    if store.server(&echo).is_err() {
        store.add_server(&ServerDef {
            name: echo.clone(),
            prefix: Prefix::parse("echo")?,
            per_session: false,
            spec: ServerSpec::Builtin {
                builtin: Builtin::Echo,
                limits: None,
                egress: Vec::new(),
            },
        })?;
    }
    if store.profile_config(&slug).is_err() {
        store.create_profile(&slug, "Demo")?;
        store.add_server_to_profile(&slug, &echo)?;
    }
    Ok(store.rotate_token(&slug)?.reveal().to_owned())
}

/// How often a running gateway fetches the catalog index (and once at start).
const CATALOG_REFRESH: std::time::Duration = std::time::Duration::from_secs(3600);

fn serve(dev: bool) -> Result<()> {
    let env = Env::from_process();
    let paths = Paths::from_env(&env)?;
    let generated = if dev {
        Some(dev_master_key(&paths.data_dir)?)
    } else {
        None
    };
    let config = ServeConfig::from_env(&env, generated)?;
    let egress_settings = config::egress_settings(&env, config.sandbox.proxy_port)?;
    init_tracing(&env)?;
    std::fs::create_dir_all(&config.paths.data_dir)
        .with_context(|| format!("cannot create GIG_DATA_DIR {}", config.paths.data_dir.display()))?;
    let store = Arc::new(Store::open(&config.paths.db_path)?);
    // A wrong master key stops start-up here, with a message saying so, never as garbage later.
    let vault = Arc::new(gigmcp_vault::Vault::open(store.clone(), &config.master_key)?);
    let demo_token = if dev { Some(prepare_demo(&store)?) } else { None };
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()?;
    let catalog_source = config::catalog_source(&env)?;
    let installs = gigmcp_ops::catalog::Installs {
        references: config::catalog_installs(&env, catalog_source.is_some())?,
        servers_dir: config.paths.servers_dir.clone(),
        oci: config::oci_settings(&env)?,
    };
    let catalog_url = catalog_source.as_ref().map(|s| s.url.to_string());
    let oci_settings = config::oci_settings(&env)?;
    let oauth_seeds = config::oauth_seeds(&env)?;
    let catalog = Arc::new(gigmcp_ops::catalog::Catalog::new(catalog_source)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut launcher = Launcher::start(config.sandbox.clone())
            .await
            .context("cannot set up the sandboxes")?;
        let plugins = gigmcp_plugins::start(
            &store,
            &config.paths.plugin_cache_dir,
            &config.master_key,
            gigmcp_default_plugins::COMPONENTS,
        )
        .await
        .context("cannot start the plugin host")?;
        tokio::spawn(gigmcp_plugins::watch(plugins.clone(), store.clone()));
        let audit = gigmcp_audit::AuditLog::start(store.clone(), plugins.clone(), config.paths.data_dir.clone());
        tokio::spawn(gigmcp_ops::catalog::keep_fresh(
            catalog.clone(),
            store.clone(),
            audit.clone(),
            CATALOG_REFRESH,
            installs,
        ));
        let broker = Arc::new(
            gigmcp_oauth::Broker::new(store.clone(), vault.clone(), Some(audit.clone()), &egress_settings)
                .context("cannot set up connected accounts")?,
        );
        for (app, secret) in oauth_seeds {
            let vendor = app.vendor.clone();
            broker
                .seed_app(&app, secret)
                .with_context(|| format!("GIG_OAUTH_{}_*", vendor.as_str().to_ascii_uppercase()))?;
        }
        let egress = gigmcp_egress::Proxy::start(
            egress_settings,
            store.clone(),
            vault,
            plugins.clone(),
            Some(audit.clone()),
            Some(broker.clone() as Arc<dyn gigmcp_egress::AccountTokens>),
            &config.sandbox.instance,
        )
        .context("cannot start the egress proxy")?;
        launcher.set_egress(egress);
        let states = launcher.state().context("a gateway's launcher has state directories")?;
        let logs = Arc::new(gigmcp_mcp::logs::ServerLogs::default());
        let deps = Deps {
            launcher,
            http,
            idle_timeout: config.idle_timeout,
            plugins: Some(plugins.clone()),
            store: Some(store.clone()),
            audit: Some(audit.clone()),
            logs: logs.clone(),
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on GIG_LISTEN={}", config.listen))?;
        let address = listener.local_addr()?;
        let status_file = config.paths.data_dir.join("status.json");
        let gateway = gigmcp_mcp::gateway::Gateway::new(store, deps, Some(status_file));
        gateway.write_status(&[]).await;
        tokio::spawn(gateway.clone().watch());
        let running: Arc<dyn gigmcp_control::RunningServers> = Arc::new(crate::adapters::Running(gateway.clone()));
        if let Some(at) = config.metrics_listen {
            let metrics = tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on GIG_METRICS_LISTEN={at}"))?;
            tracing::info!("metrics at http://{}/metrics", metrics.local_addr()?);
            tokio::spawn(crate::metrics::serve(
                metrics,
                crate::metrics::Sources {
                    running: running.clone(),
                    plugins: plugins.clone(),
                },
            ));
        }
        let control = gigmcp_control::ControlState::new(
            &config.control(),
            &config.master_key,
            address,
            gigmcp_control::Parts {
                plugins,
                audit,
                running: running.clone(),
                probe: Arc::new(crate::adapters::SandboxProbe {
                    settings: config.sandbox.clone(),
                    logs,
                }),
                states: Arc::new(crate::adapters::States(states)),
                catalog,
                oci: oci_settings,
                oauth: broker,
            },
        )?;
        // The CLI's login links use the URL this gateway really serves at (the listener's port, not 0).
        if let Err(e) = control.store.set_served_url(control.public_url.as_str()) {
            tracing::warn!("cannot record the URL this gateway serves at: {e}");
        }
        let (control_store, control_url, control_audit) =
            (control.store.clone(), control.public_url.clone(), control.audit.clone());
        let dashboard_built = match &control.web {
            gigmcp_control::dashboard::WebFiles::Embedded(_) => gigmcp_dashboard::built(),
            gigmcp_control::dashboard::WebFiles::Directory(_) => true,
        };
        let endpoint = Arc::new(gigmcp_mcp::endpoint::Endpoint {
            gateway,
            public_origin: config.public_origin.clone(),
            max_body_bytes: config.max_body_bytes,
        });
        tracing::info!("Gig'MCP listening on http://{address}");
        if let Some(token) = demo_token {
            // A fresh single-use login link for the dashboard, audited as the CLI's are.
            let login = gigmcp_control::session::create_login_link(
                &control_store,
                &control_url,
                "admin",
                gigmcp_types::user::Role::Admin,
            );
            if login.is_ok() {
                control_audit.record(gigmcp_types::audit::NewAuditEvent {
                    kind: "auth.login_link".into(),
                    actor: "operator".into(),
                    profile: None,
                    server: None,
                    outcome: gigmcp_types::audit::Outcome::Ok,
                    detail: serde_json::json!({"subject": "admin", "role": "admin", "by": "serve --dev"}),
                });
            }
            print_demo(
                address,
                &token,
                login.map_err(|e| e.to_string()),
                dashboard_built,
                catalog_url.as_deref(),
            );
        }
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let gateway = endpoint.gateway.clone();
        let stop = async move {
            shutdown_signal().await;
            tracing::info!("stopping: closing client sessions");
            // Ending the sessions ends their open streams, which lets the connections close.
            gateway.close_sessions();
            let _ = stopping_tx.send(());
        };
        let serve = axum::serve(
            listener,
            gigmcp_mcp::endpoint::router(endpoint.clone()).merge(gigmcp_control::router(control)),
        )
        .with_graceful_shutdown(stop);
        // Connections still open a few seconds after the signal do not hold the shutdown up.
        let grace = async {
            let _ = stopping_rx.await;
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        };
        let served = tokio::select! {
            served = serve => served,
            () = grace => Ok(()),
        };
        endpoint.gateway.shutdown().await;
        served?;
        tracing::info!("Gig'MCP stopped");
        Ok(())
    })
}

fn print_demo(
    address: std::net::SocketAddr,
    token: &str,
    login: std::result::Result<String, String>,
    dashboard_built: bool,
    catalog: Option<&str>,
) {
    let url = format!("http://{address}/mcp/p/demo");
    println!();
    println!("Gig'MCP is serving the demo profile (the built-in echo server, tool `echo_echo`).");
    println!("  endpoint: {url}");
    println!("  token:    {token}");
    println!("  (a new token is made at every start; the previous one no longer works)");
    println!();
    println!("Connect Claude Code:");
    println!("  claude mcp add --transport http gigmcp {url} --header \"Authorization: Bearer {token}\"");
    println!();
    if dashboard_built {
        println!("Dashboard: http://{address}/");
    } else {
        println!("Dashboard: not built into this binary (it needs Node.js 20.19+): `make web`, then rebuild.");
    }
    match login {
        Ok(link) => println!("  log in as admin with this single-use link (valid 15 minutes):\n  {link}"),
        Err(e) => println!("  (no login link: {e})"),
    }
    println!("  another link later: GIG_DATA_DIR=<this data dir> gigmcp admin login-link");
    println!("REST API: http://{address}/api (document: /api/openapi.json)");
    if let Some(catalog) = catalog {
        println!();
        println!("Catalog: {catalog} (signed; GET /api/catalog). With GIG_DATA_DIR set to this data directory:");
        println!("  gigmcp catalog list");
        println!("  gigmcp server add newsfeed --catalog newsfeed && gigmcp profile add-server demo newsfeed");
    }
    println!();
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
