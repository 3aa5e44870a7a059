//! `gigmcp-bench run`: starts the targets, measures every level in rounds (each round runs every target in
//! turn for a slice of the level's budget), stops them, then prints the table and writes the report.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::RunArgs;
use crate::client::{HttpSession, HttpTarget};
use crate::driver::{LevelResult, Plan, run_level};
use crate::procs;
use crate::report::{Report, TargetResult};
use crate::stdio::EchoProcess;

pub const TARGETS: [&str; 4] = ["floor1", "floor2", "supergateway", "gigmcp"];

pub async fn run(args: RunArgs) -> Result<bool> {
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
    for key in &args.targets {
        eprintln!("[bench] starting {key}");
        let server = match key.as_str() {
            "floor1" => Ok(Server::Floor1),
            "floor2" => floor2(&args, workdir).await,
            "supergateway" => supergateway(&gigmcp, &args, workdir).await,
            _ => gateway(&gigmcp, workdir).await,
        };
        match server {
            Ok(server) => running.push((TargetResult::new(key), server)),
            Err(e) => targets.push(TargetResult::failed(key, format!("{e:#}"))),
        }
    }
    for &c in &args.levels {
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
                level.merge(server.slice(&result.key, &gigmcp, c, &slice).await);
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

    let report = Report {
        targets,
        plan,
        args: args.clone(),
        started,
        took: clock.elapsed(),
        env: crate::report::Environment::collect(&args).await,
    };
    print!("{}", report.table());
    std::fs::write(&args.out, report.markdown()).with_context(|| format!("cannot write {}", args.out.display()))?;
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
    async fn slice(&self, key: &str, gigmcp: &Path, c: usize, plan: &Plan) -> LevelResult {
        match self {
            Server::Floor1 => {
                let process = match EchoProcess::start(gigmcp).await {
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
    let addr = address_in(&line).context("floor 2's endpoint printed no address")?;
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

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
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
        .arg(format!("{} mcp-echo", shell_quote(gigmcp)))
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

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn address_in(line: &str) -> Option<SocketAddr> {
    let line = strip_ansi(line);
    let at = line.find("listening on http://")? + "listening on http://".len();
    line[at..].split_whitespace().next()?.trim_end_matches('/').parse().ok()
}

fn master_key() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn gigmcp_cli(gigmcp: &Path, data: &Path, cli_args: &[&str]) -> Result<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new(gigmcp)
            .args(cli_args)
            .env("GIG_DATA_DIR", data)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("gigmcp {} took over 2 minutes", cli_args.join(" ")))??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("gigmcp {} failed ({}): {text}", cli_args.join(" "), output.status);
    }
    Ok(text)
}

async fn gateway(gigmcp: &Path, workdir: &Path) -> Result<Server> {
    let data = workdir.join("gigmcp-data");
    let created = gigmcp_cli(gigmcp, &data, &["profile", "create", "bench"]).await?;
    let token = strip_ansi(&created)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|w| w.starts_with("gig_"))
        .map(str::to_owned)
        .context("`gigmcp profile create` printed no token")?;
    gigmcp_cli(gigmcp, &data, &["server", "add", "echo", "--builtin", "echo"]).await?;
    gigmcp_cli(gigmcp, &data, &["profile", "add-server", "bench", "echo"]).await?;

    let log_path = workdir.join("gigmcp.log");
    let mut log = tokio::fs::File::create(&log_path).await?;
    let mut child = Command::new(gigmcp)
        .arg("serve")
        .env("GIG_DATA_DIR", &data)
        .env("GIG_MASTER_KEY", master_key()?)
        .env("GIG_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            log.write_all(format!("{line}\n").as_bytes()).await?;
            log.flush().await?;
            if let Some(addr) = address_in(&line) {
                return Ok::<_, std::io::Error>(Some(addr));
            }
        }
        Ok(None)
    })
    .await;
    let addr = match found {
        Ok(Ok(Some(addr))) => addr,
        other => {
            procs::terminate(&mut child, Duration::from_secs(5)).await;
            bail!("gigmcp serve did not start ({other:?}):\n{}", tail(&log_path));
        }
    };
    // Keep draining its log so that it never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = log.write_all(format!("{line}\n").as_bytes()).await;
            let _ = log.flush().await;
        }
    });
    Ok(Server::Http {
        target: Arc::new(HttpTarget {
            addr,
            path: "/mcp/p/bench".into(),
            bearer: Some(token),
            tool: "echo_echo".into(),
        }),
        child: Box::new(child),
        log: Some(log_path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_found_in_a_coloured_log_line() {
        let line = "\u{1b}[2m2026-01-01T00:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m gigmcp::cli: Gig'MCP listening on http://127.0.0.1:41234";
        assert_eq!(address_in(line), Some("127.0.0.1:41234".parse().unwrap()));
        assert_eq!(
            address_in("listening on http://127.0.0.1:5/"),
            Some("127.0.0.1:5".parse().unwrap())
        );
    }
}
