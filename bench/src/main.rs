//! `gigmcp-bench`: the load generator behind `make bench`.
//!
//! `run` measures `tools/call` latency and throughput, at several concurrency levels, for four targets
//! that share one upstream (the built-in echo server) and one client (this process):
//!
//! * floor 1: the client speaking stdio to `gigmcp mcp-echo` directly;
//! * floor 2: the client speaking streamable HTTP to a trivial endpoint (`canned`, another process);
//! * supergateway (stateful streamable HTTP) in front of `gigmcp mcp-echo`;
//! * Gig'MCP (`gigmcp serve`) in front of its built-in echo server, run in bubblewrap.
//!
//! It then measures the sandbox (`cold.rs`): cold start from a client's first request to its first tool reply
//! through a fresh sandbox, against bare bubblewrap in the same run, and memory per idle sandbox.
//!
//! Every reply is checked; `run` exits non-zero if any check failed. `canned` is floor 2's endpoint.

mod canned;
mod catalog;
mod client;
mod cold;
mod driver;
mod egress;
mod gateway;
mod procs;
mod report;
mod run;
mod stdio;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gigmcp-bench",
    about = "tools/call latency and throughput of Gig'MCP, its floors and supergateway; sandbox cold start and memory"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every target at every concurrency level, then the sandbox part; print the tables and write the report.
    Run(Box<RunArgs>),
    /// The egress proxy: HTTPS latency and download throughput from a sandbox through Gig'MCP, against direct
    /// and mitmproxy, in a network namespace of its own; writes a Markdown section.
    Egress(Box<egress::EgressArgs>),
    /// The catalog: lint, build and index verification of a generated 1,000-entry registry, and a toolpack call
    /// against the same HTTPS request made directly, in a network namespace of its own; writes a Markdown section.
    Catalog(Box<catalog::CatalogArgs>),
    /// Serve floor 2: a trivial MCP endpoint that answers tools/call with a canned result.
    Canned {
        /// Address to listen on (port 0: any free port; the address is printed on stdout).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Runtime worker threads (1: a current-thread runtime).
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

#[derive(clap::Args, Clone, Debug)]
#[command(args_override_self = true)]
pub struct RunArgs {
    /// The `gigmcp` binary (release build).
    #[arg(long, default_value = "target/release/gigmcp")]
    gigmcp: PathBuf,
    /// supergateway's executable (needs Node first on PATH).
    #[arg(long, default_value = "tests/deps/node_modules/.bin/supergateway")]
    supergateway: PathBuf,
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Concurrency levels (in-flight requests; one MCP session per worker over HTTP).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    levels: Vec<usize>,
    /// Targets to run, of floor1, floor2, supergateway, gigmcp.
    #[arg(long, value_delimiter = ',', default_value = "floor1,floor2,supergateway,gigmcp")]
    targets: Vec<String>,
    /// Measured calls per target and level, at most.
    #[arg(long, default_value_t = 100_000)]
    calls: u64,
    /// Measured time per target and level, at most (seconds).
    #[arg(long, default_value_t = 10.0)]
    max_secs: f64,
    /// Rounds per level: each round runs every target for its share of the level's budget, in turn.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Warm-up calls per target and level, at most (not recorded; split over the rounds like the rest).
    #[arg(long, default_value_t = 2_000)]
    warmup_calls: u64,
    /// Warm-up time per target and level, at most (seconds).
    #[arg(long, default_value_t = 1.0)]
    warmup_secs: f64,
    /// Worker threads of the load generator's runtime (1: a current-thread runtime, the cheapest per call,
    /// and never more than one of the machine's cores).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Worker threads of floor 2's endpoint (2: a multi-thread runtime like `gigmcp serve`'s on 2 cores).
    #[arg(long, default_value_t = 2)]
    canned_threads: usize,
    /// Give up on one call (sandbox part: one start) after this many seconds (counted as a failure).
    #[arg(long, default_value_t = 30.0)]
    call_timeout_secs: f64,
    /// The echo server every target answers with, as a command line (words split on spaces; the first an
    /// absolute path): for example the TypeScript or Python SDK's echo in `bench/servers/`. Default: the
    /// built-in `gigmcp mcp-echo`. Its one tool must be `echo`, answering its `message`.
    #[arg(long)]
    upstream: Option<String>,
    /// With --upstream: a host path the gateway's sandbox of it needs (read-only; repeat for more).
    #[arg(long = "upstream-mount")]
    upstream_mounts: Vec<String>,
    /// Write only a `## <section>` of the calls part's results (for appending to BENCHMARKS.md).
    #[arg(long)]
    section: Option<String>,
    /// Parts to run: calls (tools/call latency and throughput), sandbox (cold start and idle memory).
    #[arg(long, value_delimiter = ',', default_value = "calls,sandbox")]
    parts: Vec<String>,
    /// Sandbox part: measured rounds; each round times one cold start through a fresh sandbox and each
    /// baseline once.
    #[arg(long, default_value_t = 50)]
    cold_starts: usize,
    /// Sandbox part: rounds before the measured ones, not recorded.
    #[arg(long, default_value_t = 3)]
    cold_warmup: usize,
    /// Sandbox part: rest before each measurement, once the previous one's processes and sandbox network are
    /// gone (milliseconds).
    #[arg(long, default_value_t = 20)]
    cold_pause_ms: u64,
    /// Sandbox part: sandboxes held idle at once to measure their memory (0: not measured).
    #[arg(long, default_value_t = 10)]
    idle_sandboxes: usize,
    /// Sandbox part: how many times the idle-memory measurement is repeated (the median is reported).
    #[arg(long, default_value_t = 3)]
    memory_cycles: usize,
    /// Sandbox part: how long the idle sandboxes are left alone before their memory is read (seconds).
    #[arg(long, default_value_t = 2.0)]
    idle_secs: f64,
    /// Sandbox part: GIG_INSTANCE of its gateway (names its interfaces, firewall table and cgroups).
    #[arg(long, default_value = "bnch")]
    sandbox_instance: String,
    /// Sandbox part: GIG_SANDBOX_CIDR of its gateway (must not overlap a host route).
    #[arg(long, default_value = "10.89.0.0/24")]
    sandbox_cidr: String,
    /// Sandbox part: GIG_SANDBOX_UID_BASE of its gateway; the baselines run as the uid just past its range.
    #[arg(long, default_value_t = 3_000_000)]
    sandbox_uid_base: u32,
    /// Sandbox part: GIG_MAX_SANDBOXES of its gateway.
    #[arg(long, default_value_t = 64)]
    max_sandboxes: usize,
    /// Sandbox part: the most it may take, in seconds (then it stops, as a failure).
    #[arg(long, default_value_t = 300.0)]
    sandbox_max_secs: f64,
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Canned { listen, threads } => runtime(threads)
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(canned::serve(listen)))
            .map(|()| true),
        // One thread for the whole load generator (the client and the upstream): it never competes with
        // itself for a CPU, and the split layout gives it exactly one.
        Command::Egress(args) => runtime(1).map_err(anyhow::Error::from).and_then(|rt| {
            rt.block_on(async {
                tokio::select! {
                    outcome = egress::run(*args) => outcome,
                    () = interrupted() => Err(anyhow::anyhow!("interrupted")),
                }
            })
        }),
        Command::Catalog(args) => runtime(1).map_err(anyhow::Error::from).and_then(|rt| {
            rt.block_on(async {
                tokio::select! {
                    outcome = catalog::run(*args) => outcome,
                    () = interrupted() => Err(anyhow::anyhow!("interrupted")),
                }
            })
        }),
        Command::Run(args) => runtime(args.client_threads)
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(async {
                    // Interrupted, the run is dropped: every process it started is killed with it.
                    tokio::select! {
                        outcome = run::run(*args) => outcome,
                        () = interrupted() => Err(anyhow::anyhow!("interrupted")),
                    }
                })
            }),
    };
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("gigmcp-bench: some results failed their check (see the report)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("gigmcp-bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
