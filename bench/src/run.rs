//! `gigmcp-bench run`: starts the targets, measures every level in rounds (each round runs every target in
//! turn for a slice of the level's budget), stops them, then prints the table and writes the report.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::RunArgs;
use crate::client::{HttpSession, HttpTarget};
use crate::cold;
use crate::driver::{LevelResult, Plan, run_level};
use crate::gateway::{self, tail};
use crate::procs;
use crate::report::{Report, TargetResult};
use crate::stdio::EchoProcess;

pub const TARGETS: [&str; 4] = ["floor1", "floor2", "supergateway", "gigmcp"];

pub const PARTS: [&str; 2] = ["calls", "sandbox"];

pub async fn run(args: RunArgs) -> Result<bool> {
    for p in &args.parts {
        if !PARTS.contains(&p.as_str()) {
            bail!("unknown part {p:?}: use some of {}", PARTS.join(", "));
        }
    }
    let calls = args.parts.iter().any(|p| p == "calls");
    let sandbox = args.parts.iter().any(|p| p == "sandbox");
    for t in &args.targets {
        if !TARGETS.contains(&t.as_str()) {
            bail!("unknown target {t:?}: use some of {}", TARGETS.join(", "));
        }
    }
    if args.levels.is_empty() || args.levels.contains(&0) || args.rounds == 0 {
        bail!("levels and rounds must be positive");
    }
    let gigmcp = std::path::absolute(&args.gigmcp)?;
    if !gigmcp.is_file() {
        bail!(
            "{} not found: build it with `cargo build --release -p gigmcp`",
            gigmcp.display()
        );
    }
    let plan = Plan {
        calls: args.calls,
        max: Duration::from_secs_f64(args.max_secs),
        warmup_calls: args.warmup_calls,
        warmup: Duration::from_secs_f64(args.warmup_secs),
        call_timeout: Duration::from_secs_f64(args.call_timeout_secs),
        setup_timeout: Duration::from_secs(60),
    };
    // Each level is measured in rounds: every round gives every target one slice of the level's budget, in
    // turn, so that a change in the machine's conditions (other work starting or stopping) falls on all the
    // targets alike instead of on whichever happened to run then.
    let rounds = args.rounds as u32;
    let slice = Plan {
        calls: plan.calls.div_ceil(u64::from(rounds)),
        max: plan.max / rounds,
        warmup_calls: plan.warmup_calls.div_ceil(u64::from(rounds)),
        warmup: plan.warmup / rounds,
        ..plan.clone()
    };
    let workdir = WorkDir(std::env::temp_dir().join(format!("gigmcp-bench-{}", std::process::id())));
    std::fs::create_dir_all(&workdir.0)?;
    let workdir = workdir.0.as_path();
    let started = SystemTime::now();
    let clock = Instant::now();

    let mut running = Vec::new();
    let mut targets = Vec::new();
    let keys: &[String] = if calls { &args.targets } else { &[] };
    for key in keys {
        eprintln!("[bench] starting {key}");
        let server = match key.as_str() {
            "floor1" => Ok(Server::Floor1),
            "floor2" => floor2(&args, workdir).await,
            "supergateway" => supergateway(&gigmcp, &args, workdir).await,
            _ => gigmcp_target(&gigmcp, workdir, sandbox_env(&args), &args).await,
        };
        match server {
            Ok(server) => running.push((TargetResult::new(key), server)),
            Err(e) => targets.push(TargetResult::failed(key, format!("{e:#}"))),
        }
    }
    let levels: &[usize] = if calls { &args.levels } else { &[] };
    for &c in levels {
        let mut levels: Vec<LevelResult> = running
            .iter()
            .map(|_| LevelResult {
                concurrency: c,
                ..LevelResult::default()
            })
            .collect();
        for round in 1..=rounds {
            eprintln!("[bench] c={c} round {round}/{rounds}");
            for ((result, server), level) in running.iter().zip(levels.iter_mut()) {
                level.merge(
                    server
                        .slice(&result.key, &gigmcp, args.upstream.as_deref(), c, &slice)
                        .await,
                );
            }
        }
        for ((result, _), mut level) in running.iter_mut().zip(levels) {
            level.latencies.sort_unstable();
            progress(&result.key, &level);
            result.levels.push(level);
        }
    }
    for (mut result, server) in running {
        if let Some(note) = server.stop().await
            && !result.all_passed()
        {
            result.notes.push(note);
        }
        targets.push(result);
    }
    targets.sort_by_key(|t| args.targets.iter().position(|k| *k == t.key));

    let cold = if sandbox {
        let plan = cold::Plan {
            env: sandbox_env(&args),
            starts: args.cold_starts,
            warmup: args.cold_warmup,
            idle: args.idle_sandboxes,
            memory_cycles: args.memory_cycles,
            idle_wait: Duration::from_secs_f64(args.idle_secs),
            instance: args.sandbox_instance.clone(),
            cidr: args.sandbox_cidr.clone(),
            uid_base: args.sandbox_uid_base,
            max_sandboxes: args.max_sandboxes,
            pause: Duration::from_millis(args.cold_pause_ms),
            timeout: Duration::from_secs_f64(args.call_timeout_secs),
            budget: Duration::from_secs_f64(args.sandbox_max_secs),
        };
        let result = cold::run(&gigmcp, workdir, plan).await;
        progress_cold(&result);
        Some(result)
    } else {
        None
    };

    let report = Report {
        targets,
        calls,
        cold,
        plan,
        args: args.clone(),
        started,
        took: clock.elapsed(),
        env: crate::report::Environment::collect(&args).await,
    };
    print!("{}", report.table());
    let markdown = match &args.section {
        Some(title) => report.section(title),
        None => report.markdown(),
    };
    std::fs::write(&args.out, markdown).with_context(|| format!("cannot write {}", args.out.display()))?;
    eprintln!("[bench] wrote {}", args.out.display());
    Ok(report.all_passed())
}

/// The run's scratch directory (logs, Gig'MCP's data), removed however the run ends.
struct WorkDir(std::path::PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn progress(key: &str, r: &LevelResult) {
    let ms = |d: Option<Duration>| d.map_or("-".to_owned(), |d| format!("{:.3}", d.as_secs_f64() * 1e3));
    eprintln!(
        "[bench] {key:>12} c={:<3} calls={:<6} p50={} ms p99={} ms {:.0}/s failures={}{}",
        r.concurrency,
        r.measured_ok,
        ms(r.quantile(0.5)),
        ms(r.quantile(0.99)),
        r.throughput(),
        r.failures,
        r.errors.first().map(|e| format!(" ({e})")).unwrap_or_default(),
    );
}

fn progress_cold(r: &cold::ColdResult) {
    let ms = |v: &[u64], q| cold::quantile(v, q).map_or("-".to_owned(), |d| format!("{:.2}", d.as_secs_f64() * 1e3));
    let total: Vec<u64> = r.gateway.iter().map(|s| s.total).collect();
    eprintln!(
        "[bench] cold start p50={} ms p99={} ms; bwrap p50={} ms; bwrap --unshare-user p50={} ms; jailed echo p50={} ms; failures={}{}",
        ms(&total, 0.5),
        ms(&total, 0.99),
        ms(&r.bare, 0.5),
        ms(&r.userns, 0.5),
        ms(&r.jailed, 0.5),
        r.failures,
        r.setup_error
            .as_ref()
            .or(r.errors.first())
            .map(|e| format!(" ({e})"))
            .unwrap_or_default(),
    );
}

/// A target, started.
enum Server {
    /// Floor 1 starts its echo process for each slice.
    Floor1,
    Http {
        target: Arc<HttpTarget>,
        child: Box<Child>,
        /// The server's log, shown when a check failed.
        log: Option<std::path::PathBuf>,
    },
}

impl Server {
    /// One slice of a level: `c` workers, fresh sessions, the slice's warm-up and measured calls.
    async fn slice(&self, key: &str, gigmcp: &Path, upstream: Option<&str>, c: usize, plan: &Plan) -> LevelResult {
        match self {
            Server::Floor1 => {
                let process = match EchoProcess::start(gigmcp, upstream).await {
                    Ok(p) => p,
                    Err(e) => {
                        let mut failed = LevelResult {
                            concurrency: c,
                            ..LevelResult::default()
                        };
                        failed.merge_error(e);
                        return failed;
                    }
                };
                let caller = process.caller();
                let level = run_level(key, c, plan, process.pid(), move |_| {
                    let caller = caller.clone();
                    async move { Ok(caller) }
                })
                .await;
                process.stop().await;
                level
            }
            Server::Http { target, child, .. } => {
                let target = target.clone();
                run_level(key, c, plan, child.id(), move |_| HttpSession::open(target.clone())).await
            }
        }
    }

    /// Stops the server; gives the end of its log if it has one.
    async fn stop(self) -> Option<String> {
        match self {
            Server::Floor1 => None,
            Server::Http { mut child, log, .. } => {
                procs::terminate(&mut child, Duration::from_secs(5)).await;
                log.map(|path| format!("{} ends with:\n{}", path.display(), tail(&path)))
            }
        }
    }
}

async fn floor2(args: &RunArgs, workdir: &Path) -> Result<Server> {
    let exe = std::env::current_exe()?;
    let log = std::fs::File::create(workdir.join("canned.log"))?;
    let mut child = Command::new(exe)
        .args(["canned", "--listen", "127.0.0.1:0", "--threads"])
        .arg(args.canned_threads.to_string())
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .context("floor 2's endpoint did not start")??
        .context("floor 2's endpoint exited")?;
    let addr = gateway::address_in(&line).context("floor 2's endpoint printed no address")?;
    Ok(Server::Http {
        target: Arc::new(HttpTarget {
            addr,
            path: "/mcp".into(),
            bearer: None,
            tool: "echo".into(),
        }),
        child: Box::new(child),
        log: None,
    })
}

/// A port that was free a moment ago (supergateway takes a port number, not an address).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_for_port(addr: SocketAddr, child: &mut Child, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("exited with {status} before listening");
        }
        if Instant::now() > deadline {
            bail!("not listening on {addr} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

async fn supergateway(gigmcp: &Path, args: &RunArgs, workdir: &Path) -> Result<Server> {
    let port = free_port()?;
    let log_path = workdir.join("supergateway.log");
    let log = std::fs::File::create(&log_path)?;
    let mut child = Command::new(&args.supergateway)
        .arg("--stdio")
        .arg(match &args.upstream {
            Some(line) => line.clone(),
            None => format!("{} mcp-echo", shell_quote(gigmcp)),
        })
        .args(["--outputTransport", "streamableHttp", "--stateful", "--port"])
        .arg(port.to_string())
        .args(["--logLevel", "none"])
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} (is Node on PATH?)", args.supergateway.display()))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    if let Err(e) = wait_for_port(addr, &mut child, Duration::from_secs(30)).await {
        procs::terminate(&mut child, Duration::from_secs(5)).await;
        bail!("supergateway {e}:\n{}", tail(&log_path));
    }
    Ok(Server::Http {
        target: Arc::new(HttpTarget {
            addr,
            path: "/mcp".into(),
            bearer: None,
            tool: "echo".into(),
        }),
        child: Box::new(child),
        log: Some(log_path),
    })
}

/// The sandbox settings of both gateways of a run (they never run at the same time): an instance, address
/// range and uid range of their own, so that they never meet another gateway on the machine (tests start
/// theirs with the defaults).
pub fn sandbox_env(args: &RunArgs) -> Vec<(&'static str, String)> {
    vec![
        ("GIG_INSTANCE", args.sandbox_instance.clone()),
        ("GIG_SANDBOX_CIDR", args.sandbox_cidr.clone()),
        ("GIG_SANDBOX_UID_BASE", args.sandbox_uid_base.to_string()),
        ("GIG_MAX_SANDBOXES", args.max_sandboxes.to_string()),
    ]
}

async fn gigmcp_target(
    gigmcp: &Path,
    workdir: &Path,
    env: Vec<(&'static str, String)>,
    args: &RunArgs,
) -> Result<Server> {
    let gateway = gateway::start(
        gigmcp,
        workdir,
        gateway::Spec {
            name: "gigmcp",
            profile: "bench",
            per_session: false,
            env,
            upstream: args.upstream.clone().map(|line| (line, args.upstream_mounts.clone())),
        },
    )
    .await?;
    Ok(Server::Http {
        target: gateway.target,
        child: Box::new(gateway.child),
        log: Some(gateway.log),
    })
}
