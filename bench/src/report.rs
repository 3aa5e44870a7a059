//! The table printed at the end of a run, and BENCHMARKS.md.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::RunArgs;
use crate::cold::{self, ColdResult, MemoryResult};
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
    /// Whether the tools/call part ran.
    pub calls: bool,
    /// The sandbox part, if it ran.
    pub cold: Option<ColdResult>,
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
        self.calls_passed() && self.cold.as_ref().is_none_or(ColdResult::passed)
    }

    fn calls_passed(&self) -> bool {
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

    /// The tables as plain text, for the terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if self.calls {
            let rows: Vec<Vec<String>> = self.rows().into_iter().map(Vec::from).collect();
            out.push_str(&text_table(&Self::HEADERS, &rows));
            out.push('\n');
            for v in self.verdict().lines {
                let _ = writeln!(out, "{v}");
            }
        }
        if let Some(cold) = &self.cold {
            if self.calls {
                out.push('\n');
            }
            out.push_str(&text_table(&COLD_HEADERS, &cold_rows(cold)));
            if let Some(memory) = &cold.memory {
                out.push('\n');
                out.push_str(&text_table(&MEMORY_HEADERS, &memory_rows(memory)));
            }
            out.push('\n');
            for v in cold_verdict(cold) {
                let _ = writeln!(out, "{v}");
            }
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

    /// Only the calls part, as `## <title>` (with its results, targets and method), for a run whose echo
    /// server is another than the built-in one.
    pub fn section(&self, title: &str) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "\n## {title}\n");
        let _ = writeln!(
            md,
            "Written by `make bench` ({}; the run took {:.0} s), the echo server being `{}`{}.\n",
            utc(self.started),
            self.took.as_secs_f64(),
            relative(self.args.upstream.as_deref().unwrap_or("gigmcp mcp-echo")),
            if self.args.upstream_mounts.is_empty() {
                String::new()
            } else {
                format!(
                    " (its sandbox given {})",
                    relative(&self.args.upstream_mounts.join(", "))
                )
            }
        );
        self.calls_markdown(&mut md);
        md
    }

    pub fn markdown(&self) -> String {
        let env = &self.env;
        let mut md = String::new();
        let _ = writeln!(md, "# Benchmarks\n");
        let what = match (self.calls, self.cold.is_some()) {
            (true, true) => {
                "`tools/call` latency and throughput of Gig'MCP, against two floors and supergateway; and the cold \
                 start and idle memory of its sandbox, against bare bubblewrap"
            }
            (true, false) => "`tools/call` latency and throughput of Gig'MCP, against two floors and supergateway",
            _ => "The cold start and idle memory of Gig'MCP's sandbox, against bare bubblewrap",
        };
        let _ = writeln!(
            md,
            "{what}. Written by `make bench` ({}; the run took {:.0} s). Numbers from a shared 2-core machine \
             move by ±10–20 % between runs; compare ratios within one run, not single numbers.\n",
            utc(self.started),
            self.took.as_secs_f64()
        );
        if self.calls {
            let _ = writeln!(md, "## `tools/call` latency and throughput\n");
            self.calls_markdown(&mut md);
        }
        if let Some(cold) = &self.cold {
            cold_markdown(cold, &mut md);
        }
        let _ = writeln!(md, "## Machine\n");
        let _ = writeln!(
            md,
            "{} CPU(s) ({}), Linux {}, shared with other work; {}. Gig'MCP at {}. Only loopback traffic \
             (127.0.0.1){}.\n",
            env.cpus,
            env.cpu_model,
            env.kernel,
            env.rustc,
            env.commit,
            match (self.calls, self.cold.is_some()) {
                (true, true) => {
                    "; supergateway listens on all interfaces (it has no host option) but is sent nothing from \
                     outside; the sandboxes' veth pairs are configured but carry nothing"
                }
                (true, false) => {
                    "; supergateway listens on all interfaces (it has no host option) but is sent nothing from outside"
                }
                _ => "; the sandboxes' veth pairs are configured but carry nothing",
            }
        );
        let _ = writeln!(md, "## Reproduce\n");
        let _ = writeln!(
            md,
            "`make bench` (builds `gigmcp` and `gigmcp-bench` in release mode, installs the test dependencies \
             with `scripts/test-deps.sh`, runs `bench/run.sh`). `bench/run.sh --help` lists the knobs (parts, \
             levels, counts, durations, threads, targets, the sandbox part's starts, idle sandboxes and gateway \
             settings); e.g. `bench/run.sh --parts sandbox --out /tmp/b.md` runs the sandbox part alone."
        );
        md
    }

    fn calls_markdown(&self, md: &mut String) {
        let p = &self.plan;
        let env = &self.env;
        let levels: Vec<String> = self.args.levels.iter().map(ToString::to_string).collect();
        let _ = writeln!(*md, "### Results\n");
        let _ = writeln!(*md, "| {} |", Self::HEADERS.join(" | "));
        let _ = writeln!(*md, "|{}", "---|".repeat(Self::HEADERS.len()));
        for row in self.rows() {
            let _ = writeln!(*md, "| {} |", row.join(" | "));
        }
        let _ = writeln!(*md);
        let _ = writeln!(
            *md,
            "`c`: requests in flight. `calls`: measured calls whose reply passed its check. `calls/s`: those calls \
             over the measured phase's wall time. `generator CPU`: CPU time of the load generator over that wall \
             time (2.00 would be both cores). `target CPU µs/call`: CPU time of the target's whole process tree \
             (server and the echo processes it started; for floor 1 the echo process) per measured call. `other load`: \
             CPU time of everything else on the machine over that wall time (the machine is shared: other work \
             there takes CPU from the generator and the target alike; 10 ms resolution, so short phases are \
             rough).\n"
        );
        let _ = writeln!(*md, "### Targets\n");
        for v in self.verdict().lines {
            let _ = writeln!(*md, "- {v}");
        }
        let _ = writeln!(*md);
        let problems: Vec<&TargetResult> = self
            .targets
            .iter()
            .filter(|t| !t.all_passed() || !t.notes.is_empty())
            .collect();
        if !problems.is_empty() {
            let _ = writeln!(*md, "### Failures\n");
            for t in problems {
                if let Some(e) = &t.error {
                    let _ = writeln!(*md, "- {}: could not be set up: `{}`", t.label(), e.replace('`', "'"));
                }
                for l in &t.levels {
                    for e in &l.errors {
                        let _ = writeln!(*md, "- {} c={}: `{}`", t.label(), l.concurrency, e.replace('`', "'"));
                    }
                }
                for n in &t.notes {
                    let _ = writeln!(*md, "\n```\n{n}\n```");
                }
            }
            let _ = writeln!(*md);
        }
        let _ = writeln!(*md, "### Method\n");
        let _ = writeln!(
            *md,
            "One run of one load generator (`bench/`, binary `gigmcp-bench`, release build) measures four targets \
             at concurrency {levels}. The HTTP targets are all started first and stay up for the whole run (idle \
             while another is measured); one target is measured at a time. Every target answers with the same \
             echo tool, and every call is the same `tools/call` \
             `{{\"name\": <echo tool>, \"arguments\": {{\"message\": <unique string>}}}}`.\n",
            levels = levels.join(", ")
        );
        let _ = writeln!(
            *md,
            "- **floor 1** — the load generator starts `{upstream}` itself (no sandbox, a fresh process per \
             slice) and speaks newline-delimited JSON-RPC on its pipes. Concurrency is requests in flight on that \
             one pipe: each worker writes its line under a lock, one reader task hands replies back by id. This \
             is the cost of the upstream and of the stdio client side.\n\
             - **floor 2** — the load generator against a trivial streamable-HTTP endpoint in another process \
             (`gigmcp-bench canned`, hyper, {} runtime thread(s)): it parses no JSON and answers `tools/call` \
             with a fixed result into which the request's id and message are copied by a byte search, so the same \
             check applies. This is the HTTP client's own cost plus the least an HTTP server can do.\n\
             - **supergateway** {} (npm), `--stdio \"{upstream}\" --outputTransport streamableHttp --stateful \
             --logLevel none` (its `info` level logs every message; `none` is its fastest setting), on Node \
             {}. In stateful mode it starts one `{upstream}` per session, unsandboxed, and answers with \
             event streams.\n\
             - **Gig'MCP** — `gigmcp serve` (release build, default settings except the sandbox ones, which \
             are the sandbox part's: `GIG_INSTANCE={}`, `GIG_SANDBOX_CIDR={}`, `GIG_SANDBOX_UID_BASE={}`, so that \
             it never meets another gateway running on the machine; log level `info`) with a profile \
             `bench` holding {gateway_server}, whose tool is \
             `echo_echo`; the echo server is one process in bubblewrap shared by all sessions of the profile.\n",
            self.args.canned_threads,
            env.supergateway,
            env.node,
            self.args.sandbox_instance,
            self.args.sandbox_cidr,
            self.args.sandbox_uid_base,
            upstream = self.args.upstream.as_deref().unwrap_or("gigmcp mcp-echo"),
            gateway_server = if self.args.upstream.is_some() {
                "that command as a stdio server (`gigmcp server add echo --command … --arg … --mount …`)"
            } else {
                "the built-in echo server (`gigmcp server add echo --builtin echo`)"
            },
        );
        let _ = writeln!(
            *md,
            "**Sessions.** Over HTTP, each worker opens its own MCP session on its own kept-alive HTTP/1.1 \
             connection (`initialize`, then `notifications/initialized`; then calls with `Mcp-Session-Id`, \
             `MCP-Protocol-Version` and `Accept: application/json, text/event-stream`), and sends one request at a \
             time: concurrency c is c sessions and c connections, as c independent clients would be. Replies may \
             be JSON or an event stream (`data:` lines are parsed); both are accepted. Sessions are ended with \
             DELETE after each level. The sessions are opened before the warm-up, outside every measurement.\n"
        );
        let rounds = self.args.rounds.max(1) as u64;
        let _ = writeln!(
            *md,
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
            *md,
            "**Checks.** Every reply, warm-up included, is checked: HTTP 200, a JSON-RPC response with the id sent \
             (ids are unique within a level), no error, `isError` not true, and `content[0].text` equal to the \
             message sent, which is unique per call (`<target>-c<level>-w<worker>-n<seq>`). A failed check or \
             transport error counts as a failure; a worker whose connection broke stops. Any failure, or a target \
             that could not be set up, fails the run (`make bench` exits non-zero). A missed speed target does \
             not: it is reported above.\n"
        );
        let _ = writeln!(
            *md,
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
            *md,
            "**Latency at c=1 and idle CPUs.** On this virtual machine, waking a process on an idle CPU costs tens \
             of microseconds: the same floor 1 round trip has been seen at about 0.007 ms while other work kept \
             the CPUs busy and about 0.070 ms on an otherwise idle machine, and every target's c=1 latency moves \
             the same way. The rounds spread such changes over all targets; the `other load` column shows what \
             the conditions were. Compare Gig'MCP with the floors of the same run, never with another run's.\n"
        );
    }
}

/// A table as aligned plain text (first column left-aligned, the others right-aligned).
fn text_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for cells in std::iter::once(&headers).chain(rows) {
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - cell.chars().count();
            if i == 0 {
                let _ = write!(out, "{cell}{}", " ".repeat(pad));
            } else {
                let _ = write!(out, "  {}{cell}", " ".repeat(pad));
            }
        }
        out.push('\n');
    }
    out
}

fn md_table(md: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(md, "| {} |", headers.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(headers.len()));
    for row in rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    let _ = writeln!(md);
}

/// The cold-start target: Gig'MCP's p50 at most this many times bare bubblewrap's, in the same run.
const COLD_FACTOR: f64 = 3.0;

const COLD_HEADERS: [&str; 6] = ["measurement", "samples", "min ms", "p50 ms", "p90 ms", "p99 ms"];

fn cold_ms(d: Option<Duration>) -> String {
    d.map_or("–".to_owned(), |d| format!("{:.2}", d.as_secs_f64() * 1e3))
}

fn cold_rows(c: &ColdResult) -> Vec<Vec<String>> {
    let pick = |f: fn(&cold::Start) -> u64| c.gateway.iter().map(f).collect::<Vec<u64>>();
    let rows: [(String, Vec<u64>); 9] = [
        (
            "**Gig'MCP cold start**: `initialize` → first `tools/call` reply".into(),
            pick(|s| s.total),
        ),
        (
            "… of which `initialize` (sandbox start, server handshake)".into(),
            pick(|s| s.initialize),
        ),
        ("… of which `notifications/initialized`".into(), pick(|s| s.initialized)),
        ("… of which the first `tools/call`".into(), pick(|s| s.call)),
        (
            "**baseline**: bare `bwrap … /bin/true` (as root)".into(),
            c.bare.clone(),
        ),
        (
            format!(
                "context: `bwrap --unshare-user … /bin/true` as uid {}",
                c.plan.baseline_uid()
            ),
            c.userns.clone(),
        ),
        (
            "context: echo server in a bwrap jail of the same shape, over stdio".into(),
            c.jailed.clone(),
        ),
        (
            "teardown: DELETE → the sandbox's processes gone".into(),
            c.teardown.clone(),
        ),
        (
            "teardown: DELETE → its veth pair gone (network namespace freed)".into(),
            c.net_teardown.clone(),
        ),
    ];
    rows.into_iter()
        .map(|(label, v)| {
            vec![
                label,
                v.len().to_string(),
                cold_ms(cold::quantile(&v, 0.0)),
                cold_ms(cold::quantile(&v, 0.5)),
                cold_ms(cold::quantile(&v, 0.9)),
                cold_ms(cold::quantile(&v, 0.99)),
            ]
        })
        .collect()
}

const MEMORY_HEADERS: [&str; 3] = ["per idle sandbox", "median", "range over cycles"];

fn memory_rows(m: &MemoryResult) -> Vec<Vec<String>> {
    let mib = |v: f64| format!("{:.2} MiB", v / 1048576.0);
    let count = |v: f64| format!("{v:.1}");
    type Figure = fn(&cold::IdleMemory) -> Option<f64>;
    let rows: [(&str, Figure, bool); 10] = [
        (
            "**estimate**: PSS of its processes + change of the gateway's PSS + kernel growth",
            |x| Some(x.total()),
            true,
        ),
        ("processes running as the sandbox's uid", |x| Some(x.processes), false),
        (
            "PSS of those processes (bwrap, bwrap's init, echo server)",
            |x| Some(x.pss),
            true,
        ),
        ("USS (private pages only) of those processes", |x| Some(x.uss), true),
        (
            "RSS of those processes (shared pages counted in full)",
            |x| Some(x.rss),
            true,
        ),
        ("cgroup memory, as `gigmcp server status` shows it", |x| x.cgroup, true),
        ("change of the gateway process's PSS", |x| Some(x.gateway_pss), true),
        (
            "change of the gateway process's anonymous memory",
            |x| Some(x.gateway_anon),
            true,
        ),
        (
            "growth of kernel memory (SUnreclaim + KernelStack + PageTables + Percpu)",
            |x| Some(x.kernel),
            true,
        ),
        (
            "drop of MemAvailable (whole machine, noisy)",
            |x| Some(x.available),
            true,
        ),
    ];
    rows.into_iter()
        .map(|(label, f, bytes)| {
            let fmt = |v: f64| if bytes { mib(v) } else { count(v) };
            match m.figure(f) {
                Some((median, lo, hi)) => vec![label.to_owned(), fmt(median), format!("{} … {}", fmt(lo), fmt(hi))],
                None => vec![label.to_owned(), "–".into(), "–".into()],
            }
        })
        .collect()
}

fn cold_verdict(c: &ColdResult) -> Vec<String> {
    let mut lines = Vec::new();
    let total: Vec<u64> = c.gateway.iter().map(|s| s.total).collect();
    let p50 = |v: &[u64]| cold::quantile(v, 0.5);
    match (p50(&total), p50(&c.bare)) {
        (Some(g), Some(b)) if !b.is_zero() => {
            let ratio = g.as_secs_f64() / b.as_secs_f64();
            lines.push(format!(
                "Cold start p50: Gig'MCP {} ms vs bare bwrap {} ms = {ratio:.1}× (target ≤ {COLD_FACTOR:.0}×, i.e. ≤ {} ms): {}",
                cold_ms(Some(g)),
                cold_ms(Some(b)),
                cold_ms(Some(b.mul_f64(COLD_FACTOR))),
                if ratio <= COLD_FACTOR { "MET" } else { "MISSED" }
            ));
            let mut context = Vec::new();
            if let Some(u) = p50(&c.userns).filter(|u| !u.is_zero()) {
                context.push(format!(
                    "{:.1}× bwrap with `--unshare-user` as an unprivileged uid ({} ms)",
                    g.as_secs_f64() / u.as_secs_f64(),
                    cold_ms(Some(u))
                ));
            }
            if let Some(j) = p50(&c.jailed).filter(|j| !j.is_zero()) {
                context.push(format!(
                    "{:.1}× the echo server in a jail of the same shape over stdio ({} ms; the gateway's own share \
                     is the difference, {:.2} ms)",
                    g.as_secs_f64() / j.as_secs_f64(),
                    cold_ms(Some(j)),
                    (g.as_secs_f64() - j.as_secs_f64()) * 1e3
                ));
            }
            if !context.is_empty() {
                lines.push(format!("For context, the cold start p50 is {}", context.join("; and ")));
            }
            if ratio > COLD_FACTOR {
                lines.push(
                    "Where the time goes, and what would shorten it: [bench/PROFILE.md](bench/PROFILE.md) (a \
                     one-off profile, dated; not regenerated by `make bench`)"
                        .into(),
                );
            }
        }
        _ => lines.push("Cold start p50: not measured for both Gig'MCP and bare bwrap".into()),
    }
    if let Some(m) = &c.memory {
        let mib = |v: f64| format!("{:.1}", v / 1048576.0);
        let fig = |f: fn(&cold::IdleMemory) -> f64| m.figure(|x| Some(f(x))).map_or(0.0, |v| v.0);
        lines.push(format!(
            "Memory per idle sandbox ({} held at once, median of {} cycles): about {} MiB; the medians of its \
             parts: {} MiB PSS of its processes ({} MiB of it private), {:+.1} MiB change of the gateway's PSS, \
             {:+.1} MiB kernel memory. The whole machine's MemAvailable dropped {} MiB per sandbox (a rough \
             cross-check only: the machine is shared)",
            m.sandboxes,
            m.cycles.len(),
            mib(fig(cold::IdleMemory::total)),
            mib(fig(|x| x.pss)),
            mib(fig(|x| x.uss)),
            fig(|x| x.gateway_pss) / 1048576.0,
            fig(|x| x.kernel) / 1048576.0,
            mib(fig(|x| x.available)),
        ));
    } else if c.plan.idle > 0 && c.setup_error.is_none() {
        lines.push("Memory per idle sandbox: not measured (see the failures)".into());
    }
    lines.push(format!(
        "Checks: {} steps checked (every start's echo reply and fresh sandbox, every baseline's exit), {} failed{}: {}",
        c.checked,
        c.failures,
        c.setup_error
            .as_ref()
            .map(|_| ", the part could not be set up".to_owned())
            .unwrap_or_default(),
        if c.passed() { "PASS" } else { "FAIL" }
    ));
    lines
}

fn cold_markdown(c: &ColdResult, md: &mut String) {
    let plan = &c.plan;
    let _ = writeln!(md, "## Sandbox: cold start and idle memory\n");
    let _ = writeln!(md, "### Results\n");
    md_table(md, &COLD_HEADERS, &cold_rows(c));
    let _ = writeln!(
        md,
        "Percentiles are nearest-rank over the measured samples: with {} samples, p99 is the slowest one. \
         The three `… of which` rows are the parts of the cold start, each with its own percentiles.\n",
        plan.starts
    );
    if let Some(m) = &c.memory {
        let _ = writeln!(
            md,
            "Memory, {} sandboxes idle at once (each session's own echo server, after one call, left alone \
             {:.1} s), per sandbox; median and range over {} cycles:\n",
            m.sandboxes,
            plan.idle_wait.as_secs_f64(),
            m.cycles.len()
        );
        md_table(md, &MEMORY_HEADERS, &memory_rows(m));
    }
    let _ = writeln!(md, "### Targets\n");
    for v in cold_verdict(c) {
        let _ = writeln!(md, "- {v}");
    }
    let _ = writeln!(md);
    if !c.passed() || !c.notes.is_empty() {
        let _ = writeln!(md, "### Failures\n");
        if let Some(e) = &c.setup_error {
            let _ = writeln!(
                md,
                "- could not be set up: `{}`",
                e.replace('`', "'").replace('\n', " ")
            );
        }
        for e in &c.errors {
            let _ = writeln!(md, "- `{}`", e.replace('`', "'").replace('\n', " "));
        }
        for n in &c.notes {
            let _ = writeln!(md, "\n```\n{n}\n```");
        }
        let _ = writeln!(md);
    }
    let listed: Vec<String> = c
        .memory
        .as_ref()
        .map(|m| m.status_listed.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let _ = writeln!(md, "### Method\n");
    let _ = writeln!(
        md,
        "**Gateway.** A `gigmcp serve` of its own (release build, default settings but `GIG_INSTANCE={}`, \
         `GIG_SANDBOX_CIDR={}`, `GIG_SANDBOX_UID_BASE={}`, `GIG_MAX_SANDBOXES={}`, log level `info`), with a \
         profile `cold` holding the built-in echo server added with `--per-session` (`gigmcp server add echo \
         --builtin echo --per-session`): every new client session gets a sandbox of its own, started when the \
         session's `initialize` arrives (the gateway starts a profile's servers on `initialize` to answer with \
         their real capabilities). It runs after the `tools/call` part, whose targets are stopped by then (the \
         `tools/call` part's gateway has the same sandbox settings: an instance, address range and uid range \
         no other gateway on the machine uses).\n",
        plan.instance, plan.cidr, plan.uid_base, plan.max_sandboxes
    );
    let _ = writeln!(
        md,
        "**Cold start.** The load generator opens a new HTTP/1.1 connection (not timed), then times, from \
         just before the `initialize` request is written to the parsed reply of the first `tools/call`: \
         `initialize`, `notifications/initialized`, and `tools/call` `echo_echo` with a unique message (one \
         client, one request at a time, the same client as the `tools/call` part). That is a client's whole \
         wait for its first tool result on a new session; the gateway answers `initialize` only once the \
         sandbox runs and the echo server has answered its own `initialize`, so the sandbox's whole start is \
         inside it. Then the session ends with DELETE; the two `teardown` rows time, from DELETE, until every \
         process of the sandbox has ended and until its veth pair is gone (the kernel frees a network \
         namespace asynchronously, well after its processes), polled every millisecond.\n"
    );
    let _ = writeln!(
        md,
        "**Baselines, same run.** `{bwrap} {}` /bin/true from spawn to exit, as root (the command the issue \
         names; `std::process::Command` from a thread of its own, `wait` blocking; so it includes bwrap's exit and \
         the part of its namespaces' teardown the kernel does before the exit is reported, which the cold \
         start does not: its teardown has rows of its own). For context: the same with \
         `--unshare-user`, started as the unprivileged uid {} (uid and gid dropped, supplementary groups \
         cleared, as the gateway does for a sandbox); and the echo server itself in a bwrap jail of the gateway's \
         shape (the same namespaces and `--disable-userns`, uid 1000 inside, a fresh `/proc`, `/dev` and `/tmp`, \
         `/usr` and the gigmcp binary read-only, empty environment) but without its network set-up, cgroup, \
         seccomp filters or rlimits, started by the load generator as that uid and driven over stdio: spawn to \
         the checked reply of the same `initialize`, `notifications/initialized` and `tools/call`. The \
         difference between this jail and the cold start is what the gateway adds: HTTP, the session, the \
         sandbox's veth pair and netlink set-up, cgroup, seccomp, and the hand-offs between them. {} is \
         {}.\n",
        cold::BASELINE_ARGS.join(" "),
        plan.baseline_uid(),
        c.bwrap.display(),
        c.bwrap_version,
        bwrap = c.bwrap.display(),
    );
    let _ = writeln!(
        md,
        "**Order and counts.** {} warm-up round(s) (not recorded), then {} measured rounds. Each round times \
         one of each: bare bwrap, bwrap with `--unshare-user`, the jailed echo server, a Gig'MCP cold start, \
         in an order from a balanced Latin square: over every four rounds each kind runs first, second, third \
         and fourth once and follows each other kind once, so a change in the machine's load, or what one \
         measurement leaves behind, falls on all of them alike. Before each measurement the previous one must \
         be gone: no process of any sandbox or baseline uid, no sandbox interface on the host (its namespace \
         freed), then {} ms of rest, so that no measurement overlaps the clean-up of the one before (the \
         kernel frees a sandbox's network namespace tens of milliseconds after its processes end; see the \
         teardown rows). Every start or baseline gives up after {:.0} s (a failure); the whole part after \
         {:.0} s.\n",
        plan.warmup,
        plan.starts,
        plan.pause.as_millis(),
        plan.timeout.as_secs_f64(),
        plan.budget.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "**Checks.** Every cold start's reply must be the JSON-RPC response to its request with `content[0].text` \
         equal to its unique message; after it, at least one process must run as a sandbox uid (the sandbox \
         is real, and since the previous one was gone before the start, fresh), and DELETE must succeed and end \
         those processes within {} s. Every baseline must exit 0 (the jailed echo server must answer its \
         message). A failed check fails `make bench`; a missed target does not.\n",
        cold::TEARDOWN_LIMIT.as_secs()
    );
    let _ = writeln!(
        md,
        "**Memory.** Per cycle: with no sandbox running and 0.5 s of rest, the machine's memory is read (five \
         readings 50 ms apart, median of each figure); then {} sessions are opened one after the other, each \
         with its own sandbox, checked like a cold start and left open; after {:.1} s of idling the memory is \
         read again, and the sessions are deleted. Per sandbox: the sum over the processes running as sandbox \
         uids (found in `/proc` by real uid: bubblewrap's outer process, bubblewrap's init as the jail's pid 1, \
         and the echo server) of `/proc/<pid>/smaps_rollup`'s PSS, USS (Private_Clean + Private_Dirty) and RSS, \
         divided by the sandboxes; the cgroup memory `gigmcp server status` reports for each (listed per cycle: \
         {}); and, from the reading before to the reading after, the change of the gateway process's PSS \
         and anonymous memory, the growth of the kernel's unreclaimable slab, kernel stacks, page tables and \
         per-CPU memory, and the drop of MemAvailable, each divided by the sandboxes. The median over {} cycles is reported, with its range.\n",
        plan.idle,
        plan.idle_wait.as_secs_f64(),
        if listed.is_empty() {
            "–".into()
        } else {
            listed.join(", ")
        },
        plan.memory_cycles
    );
    let _ = writeln!(
        md,
        "**What the memory figures mean, and their limits.** PSS splits every shared page among the processes \
         mapping it. The echo server is the gigmcp binary itself, so its code pages are shared with the \
         gateway: as sandboxes start, part of the gateway's PSS moves into theirs and the gateway's PSS \
         *drops*. The sum of the sandboxes' PSS and the change of the gateway's PSS counts those pages once, \
         which is why the estimate adds both (pages shared with every other process on the machine, such as \
         libc's, shift a little more PSS around; that is left out). USS (what the sandbox's processes alone \
         hold) is the floor; RSS counts shared pages in full and overstates. No process figure sees kernel \
         memory: the sandbox's namespaces, veth pair, page tables, kernel stacks and cgroups; the kernel row \
         estimates it from system-wide counters, so other work on the machine moves it too (its range shows \
         how much). The gateway's anonymous-memory row is what it keeps per session and sandbox (its heap; \
         allocator reuse makes it noisy, even negative); it is inside the change of its PSS already. The cgroup figure on cgroup v1 charges page cache to the group that first \
         touched it, so pages the gateway already cached are not in it, and counting starts only once \
         bubblewrap's processes are moved into the group. MemAvailable sees everything but also everything \
         else running on this shared machine (builds, tests), which can move it by more than ten sandboxes \
         do: read it as a rough cross-check of the estimate only.\n"
    );
}

/// `text` with the working directory's paths made relative to it (the report names no machine's paths).
fn relative(text: &str) -> String {
    match std::env::current_dir() {
        Ok(dir) => text.replace(&format!("{}/", dir.display()), ""),
        Err(_) => text.to_owned(),
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
