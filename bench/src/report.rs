//! The table printed at the end of a run, and BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::RunArgs;
use crate::driver::{LevelResult, Plan};

/// The latency budget of Gig'MCP over its two floors at concurrency 1.
const P50_BUDGET: Duration = Duration::from_micros(300);
/// Gig'MCP's throughput at concurrency 64 must be at least this many times supergateway's.
const THROUGHPUT_FACTOR: f64 = 5.0;

pub struct TargetResult {
    pub key: String,
    pub levels: Vec<LevelResult>,
    /// The target could not be set up or started.
    pub error: Option<String>,
    pub notes: Vec<String>,
}

impl TargetResult {
    pub fn new(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            levels: Vec::new(),
            error: None,
            notes: Vec::new(),
        }
    }

    pub fn failed(key: &str, error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::new(key)
        }
    }

    pub fn all_passed(&self) -> bool {
        self.error.is_none() && !self.levels.is_empty() && self.levels.iter().all(LevelResult::passed)
    }

    fn level(&self, c: usize) -> Option<&LevelResult> {
        self.levels.iter().find(|l| l.concurrency == c)
    }

    fn label(&self) -> &str {
        match self.key.as_str() {
            "floor1" => "floor 1: stdio direct",
            "floor2" => "floor 2: HTTP canned",
            "supergateway" => "supergateway",
            "gigmcp" => "Gig'MCP",
            other => other,
        }
    }
}

pub struct Environment {
    cpus: usize,
    cpu_model: String,
    kernel: String,
    commit: String,
    rustc: String,
    node: String,
    supergateway: String,
}

async fn command_line(program: &str, args: &[&str]) -> String {
    match tokio::process::Command::new(program).args(args).output().await {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => "unknown".to_owned(),
    }
}

impl Environment {
    pub async fn collect(args: &RunArgs) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let mut commit = command_line("git", &["rev-parse", "--short", "HEAD"]).await;
        let changed = command_line("git", &["status", "--porcelain", "--", "host", "Cargo.lock"]).await;
        if !changed.is_empty() && changed != "unknown" {
            commit.push_str(" + uncommitted changes");
        }
        // .bin/supergateway links to <package>/dist/index.js.
        let supergateway = std::fs::canonicalize(&args.supergateway)
            .ok()
            .and_then(|p| p.parent()?.parent().map(|d| d.join("package.json")))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or("unknown".to_owned(), |k| k.trim().to_owned()),
            commit,
            rustc: command_line("rustc", &["--version"]).await,
            node: command_line("node", &["--version"]).await,
            supergateway,
        }
    }
}

pub struct Report {
    pub targets: Vec<TargetResult>,
    pub plan: Plan,
    pub args: RunArgs,
    pub started: SystemTime,
    pub took: Duration,
    pub env: Environment,
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("–".to_owned(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
}

/// The UTC date and time of a moment, `YYYY-MM-DD HH:MM UTC`.
fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date, counting in 400-year eras that start on 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

struct Verdict {
    lines: Vec<String>,
}

impl Report {
    pub fn all_passed(&self) -> bool {
        self.targets.iter().all(TargetResult::all_passed)
    }

    fn target(&self, key: &str) -> Option<&TargetResult> {
        self.targets.iter().find(|t| t.key == key)
    }

    fn p50(&self, key: &str, c: usize) -> Option<Duration> {
        self.target(key)?.level(c)?.quantile(0.5)
    }

    fn throughput(&self, key: &str, c: usize) -> Option<f64> {
        let l = self.target(key)?.level(c)?;
        (l.measured_ok > 0).then(|| l.throughput())
    }

    fn rows(&self) -> Vec<[String; 10]> {
        let mut rows = Vec::new();
        for t in &self.targets {
            if let Some(e) = &t.error {
                rows.push([
                    t.label().to_owned(),
                    "–".into(),
                    "–".into(),
                    "not run".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    format!("set-up failed: {}", e.lines().next().unwrap_or_default()),
                ]);
                continue;
            }
            for l in &t.levels {
                let wall = l.wall.as_secs_f64();
                let client = if wall > 0.0 {
                    l.client_cpu.as_secs_f64() / wall
                } else {
                    0.0
                };
                let server = match (l.server_cpu, l.measured_ok) {
                    (Some(cpu), n) if n > 0 => format!("{:.1}", cpu.as_secs_f64() * 1e6 / n as f64),
                    _ => "–".into(),
                };
                let other = l
                    .machine_cpu
                    .saturating_sub(l.client_cpu)
                    .saturating_sub(l.server_cpu.unwrap_or_default());
                let other = if wall > 0.0 { other.as_secs_f64() / wall } else { 0.0 };
                rows.push([
                    t.label().to_owned(),
                    l.concurrency.to_string(),
                    l.measured_ok.to_string(),
                    l.failures.to_string(),
                    ms(l.quantile(0.5)),
                    ms(l.quantile(0.99)),
                    format!("{:.0}", l.throughput()),
                    format!("{client:.2}"),
                    server,
                    format!("{other:.2}"),
                ]);
            }
        }
        rows
    }

    const HEADERS: [&'static str; 10] = [
        "target",
        "c",
        "calls",
        "failures",
        "p50 ms",
        "p99 ms",
        "calls/s",
        "generator CPU (cores)",
        "target CPU µs/call",
        "other load (cores)",
    ];

    /// The table as plain text, for the terminal.
    pub fn table(&self) -> String {
        let rows = self.rows();
        let mut widths = Self::HEADERS.map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w - cell.chars().count();
                if i == 0 {
                    let _ = write!(out, "{cell}{}", " ".repeat(pad));
                } else {
                    let _ = write!(out, "  {}{cell}", " ".repeat(pad));
                }
            }
            out.push('\n');
        };
        line(&Self::HEADERS.map(str::to_owned), &mut out);
        for row in &rows {
            line(row, &mut out);
        }
        out.push('\n');
        for v in self.verdict().lines {
            let _ = writeln!(out, "{v}");
        }
        out
    }

    fn verdict(&self) -> Verdict {
        let mut lines = Vec::new();
        match (self.throughput("gigmcp", 64), self.throughput("supergateway", 64)) {
            (Some(g), Some(s)) if s > 0.0 => {
                let ratio = g / s;
                lines.push(format!(
                    "Throughput at c=64: Gig'MCP {g:.0}/s vs supergateway {s:.0}/s = {ratio:.1}× (target ≥ {THROUGHPUT_FACTOR}×): {}",
                    if ratio >= THROUGHPUT_FACTOR { "MET" } else { "MISSED" }
                ));
            }
            _ => lines.push("Throughput at c=64: not measured for both Gig'MCP and supergateway".into()),
        }
        match (self.p50("gigmcp", 1), self.p50("floor1", 1), self.p50("floor2", 1)) {
            (Some(g), Some(f1), Some(f2)) => {
                let budget = f1 + f2 + P50_BUDGET;
                lines.push(format!(
                    "p50 at c=1: Gig'MCP {} ms vs floor 1 + floor 2 + 0.3 ms = {} + {} + 0.300 = {} ms: {} (gateway overhead over both floors: {:.3} ms)",
                    ms(Some(g)),
                    ms(Some(f1)),
                    ms(Some(f2)),
                    ms(Some(budget)),
                    if g <= budget { "MET" } else { "MISSED" },
                    (g.as_secs_f64() - (f1 + f2).as_secs_f64()) * 1e3,
                ));
            }
            _ => lines.push("p50 at c=1: not measured for Gig'MCP and both floors".into()),
        }
        if let Some(f2) = self.throughput("floor2", 64) {
            let mut parts = Vec::new();
            for key in ["gigmcp", "supergateway"] {
                if let Some(t) = self.throughput(key, 64).filter(|t| *t > 0.0) {
                    parts.push(format!(
                        "{:.1}× {}'s",
                        f2 / t,
                        self.target(key).map_or(key, |t| t.label())
                    ));
                }
            }
            if !parts.is_empty() {
                let busiest = self
                    .targets
                    .iter()
                    .filter(|t| t.key == "gigmcp" || t.key == "supergateway")
                    .flat_map(|t| &t.levels)
                    .filter(|l| !l.wall.is_zero())
                    .map(|l| l.client_cpu.as_secs_f64() / l.wall.as_secs_f64())
                    .fold(0.0, f64::max);
                lines.push(format!(
                    "Load generator headroom: floor 2 at c=64 reaches {f2:.0}/s, {}; measuring Gig'MCP and \
                     supergateway, the generator used at most {busiest:.2} cores",
                    parts.join(" and ")
                ));
            }
        }
        let checked: u64 = self
            .targets
            .iter()
            .flat_map(|t| &t.levels)
            .map(|l| l.measured_ok + l.warmup_ok + l.failures)
            .sum();
        let failures: u64 = self.targets.iter().flat_map(|t| &t.levels).map(|l| l.failures).sum();
        let broken: Vec<&str> = self
            .targets
            .iter()
            .filter(|t| t.error.is_some())
            .map(|t| t.label())
            .collect();
        lines.push(format!(
            "Checks: {checked} replies checked (warm-up included), {failures} failed{}: {}",
            if broken.is_empty() {
                String::new()
            } else {
                format!(", not run: {}", broken.join(", "))
            },
            if self.all_passed() { "PASS" } else { "FAIL" }
        ));
        Verdict { lines }
    }

    pub fn markdown(&self) -> String {
        let p = &self.plan;
        let env = &self.env;
        let levels: Vec<String> = self.args.levels.iter().map(ToString::to_string).collect();
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "`tools/call` latency and throughput of Gig'MCP, against two floors and supergateway. Written by \
             `make bench` ({}; the run took {:.0} s). Numbers from a shared 2-core machine move by ±10–20 % between \
             runs; compare ratios, not single numbers.\n",
            utc(self.started),
            self.took.as_secs_f64()
        );
        let _ = writeln!(md, "## Results\n");
        let _ = writeln!(md, "| {} |", Self::HEADERS.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(Self::HEADERS.len()));
        for row in self.rows() {
            let _ = writeln!(md, "| {} |", row.join(" | "));
        }
        let _ = writeln!(md);
        let _ = writeln!(
            md,
            "`c`: requests in flight. `calls`: measured calls whose reply passed its check. `calls/s`: those calls \
             over the measured phase's wall time. `generator CPU`: CPU time of the load generator over that wall \
             time (2.00 would be both cores). `target CPU µs/call`: CPU time of the target's whole process tree \
             (server and the echo processes it started; for floor 1 the echo process) per measured call. `other load`: \
             CPU time of everything else on the machine over that wall time (the machine is shared: other work \
             there takes CPU from the generator and the target alike; 10 ms resolution, so short phases are \
             rough).\n"
        );
        let _ = writeln!(md, "## Targets\n");
        for v in self.verdict().lines {
            let _ = writeln!(md, "- {v}");
        }
        let _ = writeln!(md);
        let problems: Vec<&TargetResult> = self
            .targets
            .iter()
            .filter(|t| !t.all_passed() || !t.notes.is_empty())
            .collect();
        if !problems.is_empty() {
            let _ = writeln!(md, "## Failures\n");
            for t in problems {
                if let Some(e) = &t.error {
                    let _ = writeln!(md, "- {}: could not be set up: `{}`", t.label(), e.replace('`', "'"));
                }
                for l in &t.levels {
                    for e in &l.errors {
                        let _ = writeln!(md, "- {} c={}: `{}`", t.label(), l.concurrency, e.replace('`', "'"));
                    }
                }
                for n in &t.notes {
                    let _ = writeln!(md, "\n```\n{n}\n```");
                }
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "## Method\n");
        let _ = writeln!(
            md,
            "One run of one load generator (`bench/`, binary `gigmcp-bench`, release build) measures four targets \
             at concurrency {levels}. The HTTP targets are all started first and stay up for the whole run (idle \
             while another is measured); one target is measured at a time. Every target answers with the same \
             echo tool, and every call is the same `tools/call` \
             `{{\"name\": <echo tool>, \"arguments\": {{\"message\": <unique string>}}}}`.\n",
            levels = levels.join(", ")
        );
        let _ = writeln!(
            md,
            "- **floor 1** — the load generator starts `gigmcp mcp-echo` itself (no sandbox, a fresh process per \
             slice) and speaks newline-delimited JSON-RPC on its pipes. Concurrency is requests in flight on that \
             one pipe: each worker writes its line under a lock, one reader task hands replies back by id. This \
             is the cost of the upstream and of the stdio client side.\n\
             - **floor 2** — the load generator against a trivial streamable-HTTP endpoint in another process \
             (`gigmcp-bench canned`, hyper, {} runtime thread(s)): it parses no JSON and answers `tools/call` \
             with a fixed result into which the request's id and message are copied by a byte search, so the same \
             check applies. This is the HTTP client's own cost plus the least an HTTP server can do.\n\
             - **supergateway** {} (npm), `--stdio \"gigmcp mcp-echo\" --outputTransport streamableHttp --stateful \
             --logLevel none` (its `info` level logs every message; `none` is its fastest setting), on Node \
             {}. In stateful mode it starts one `gigmcp mcp-echo` per session, unsandboxed, and answers with \
             event streams.\n\
             - **Gig'MCP** — `gigmcp serve` (release build, default settings, log level `info`) with a profile \
             `bench` holding the built-in echo server (`gigmcp server add echo --builtin echo`), whose tool is \
             `echo_echo`; the echo server is one process in bubblewrap shared by all sessions of the profile.\n",
            self.args.canned_threads, env.supergateway, env.node
        );
        let _ = writeln!(
            md,
            "**Sessions.** Over HTTP, each worker opens its own MCP session on its own kept-alive HTTP/1.1 \
             connection (`initialize`, then `notifications/initialized`; then calls with `Mcp-Session-Id`, \
             `MCP-Protocol-Version` and `Accept: application/json, text/event-stream`), and sends one request at a \
             time: concurrency c is c sessions and c connections, as c independent clients would be. Replies may \
             be JSON or an event stream (`data:` lines are parsed); both are accepted. Sessions are ended with \
             DELETE after each level. The sessions are opened before the warm-up, outside every measurement.\n"
        );
        let rounds = self.args.rounds.max(1) as u64;
        let _ = writeln!(
            md,
            "**Counts.** Per target and level: a warm-up of at most {} calls or {:.1} s, not recorded, then at \
             most {} measured calls or {:.1} s (whichever comes first; the budgets are shared by the level's \
             workers). Each level runs in {rounds} rounds, and in each round every target runs in turn one slice \
             of its budget (fresh sessions, a warm-up of at most {} calls or {:.2} s, at most {} measured calls or \
             {:.2} s): a change in the machine's conditions during the run falls on all targets alike. A call's \
             latency runs from just before its request is written to its parsed reply; p50 and p99 are \
             nearest-rank percentiles of all the level's measured calls; throughput is measured calls over the \
             summed wall time of the measured phases (each from its start to its last reply). A call gives up \
             after {:.0} s (a failure).\n",
            p.warmup_calls,
            p.warmup.as_secs_f64(),
            p.calls,
            p.max.as_secs_f64(),
            p.warmup_calls.div_ceil(rounds),
            p.warmup.as_secs_f64() / rounds as f64,
            p.calls.div_ceil(rounds),
            p.max.as_secs_f64() / rounds as f64,
            p.call_timeout.as_secs_f64()
        );
        let _ = writeln!(
            md,
            "**Checks.** Every reply, warm-up included, is checked: HTTP 200, a JSON-RPC response with the id sent \
             (ids are unique within a level), no error, `isError` not true, and `content[0].text` equal to the \
             message sent, which is unique per call (`<target>-c<level>-w<worker>-n<seq>`). A failed check or \
             transport error counts as a failure; a worker whose connection broke stops. Any failure, or a target \
             that could not be set up, fails the run (`make bench` exits non-zero). A missed speed target does \
             not: it is reported above.\n"
        );
        let _ = writeln!(
            md,
            "**Load generator.** One process, one tokio runtime ({}). HTTP is hyper's connection-level HTTP/1.1 \
             client: no pool, one connection per worker, driven by the worker's own task, with request bodies \
             formatted directly (no JSON serializer) and replies parsed with serde_json. It is not the \
             bottleneck: while measuring Gig'MCP and supergateway its CPU stays well under the one core it can \
             use (column above and headroom line), and against floor 2's endpoint, which does next to nothing, \
             the same client goes several times faster than any real target. It does share the 2 cores with the \
             target, so its CPU is taken from the target's; the target's own CPU per call is shown beside it.\n",
            if self.args.client_threads <= 1 {
                "current-thread: one thread, so it never takes more than one core and pays no hand-offs between \
                 threads"
                    .to_owned()
            } else {
                format!("{} worker threads", self.args.client_threads)
            }
        );
        let _ = writeln!(
            md,
            "**Latency at c=1 and idle CPUs.** On this virtual machine, waking a process on an idle CPU costs tens \
             of microseconds: the same floor 1 round trip has been seen at about 0.007 ms while other work kept \
             the CPUs busy and about 0.070 ms on an otherwise idle machine, and every target's c=1 latency moves \
             the same way. The rounds spread such changes over all targets; the `other load` column shows what \
             the conditions were. Compare Gig'MCP with the floors of the same run, never with another run's.\n"
        );
        let _ = writeln!(
            md,
            "**Machine.** {} CPU(s) ({}), Linux {}, shared with other work; {}. Gig'MCP at {}. Only loopback \
             traffic (127.0.0.1); supergateway listens on all interfaces (it has no host option) but is sent \
             nothing from outside.\n",
            env.cpus, env.cpu_model, env.kernel, env.rustc, env.commit
        );
        let _ = writeln!(
            md,
            "**Reproduce.** `make bench` (builds `gigmcp` and `gigmcp-bench` in release mode, installs the test \
             dependencies with `scripts/test-deps.sh`, runs `bench/run.sh`). `bench/run.sh --help` lists the \
             knobs (levels, counts, durations, threads, targets)."
        );
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661)),
            "2000-02-29 01:01 UTC"
        );
        assert_eq!(
            utc(UNIX_EPOCH + Duration::from_secs(1_767_225_600)),
            "2026-01-01 00:00 UTC"
        );
    }
}
