//! One measurement: `concurrency` workers, each with its own caller (an MCP session over HTTP, or a share of
//! one stdio pipe), run a warm-up and then the measured calls, all bounded in count and in time. Every
//! reply is checked: its id must be the request's and its text the unique message sent.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Barrier;

use crate::procs;

/// Something that can make one `tools/call` of the echo tool and return the whole JSON-RPC reply.
pub trait Caller: Send + 'static {
    fn call(&mut self, id: u64, message: &str) -> impl Future<Output = Result<Value, String>> + Send;
    /// Ends the session (HTTP: DELETE); failures are ignored.
    fn close(self) -> impl Future<Output = ()> + Send;
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub calls: u64,
    pub max: Duration,
    pub warmup_calls: u64,
    pub warmup: Duration,
    pub call_timeout: Duration,
    pub setup_timeout: Duration,
}

/// What one level of one target gave.
#[derive(Debug, Default)]
pub struct LevelResult {
    pub concurrency: usize,
    /// Checked calls in the measured phase (the ones the latencies and throughput are made of).
    pub measured_ok: u64,
    /// Checked calls in the warm-up.
    pub warmup_ok: u64,
    /// Calls whose reply was wrong, missing or late, warm-up included; sessions that could not open.
    pub failures: u64,
    /// The first few failure descriptions.
    pub errors: Vec<String>,
    /// Latencies of the measured calls, in nanoseconds, sorted.
    pub latencies: Vec<u64>,
    /// From the start of the measured phase to the last measured reply.
    pub wall: Duration,
    /// CPU time of the load generator during the measured phase.
    pub client_cpu: Duration,
    /// CPU time of the target's processes (the server and everything it started) during the measured phase.
    pub server_cpu: Option<Duration>,
    /// CPU time of the whole machine during the measured phase: what is not the generator's or the target's
    /// is other work on the machine, which takes CPU from both.
    pub machine_cpu: Duration,
}

impl LevelResult {
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        // Nearest rank.
        let rank = ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        Some(Duration::from_nanos(self.latencies[rank - 1]))
    }

    pub fn throughput(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.measured_ok as f64 / secs
        } else {
            0.0
        }
    }

    pub fn passed(&self) -> bool {
        self.failures == 0 && self.measured_ok > 0
    }

    fn error(&mut self, e: String) {
        self.failures += 1;
        if self.errors.len() < 5 {
            self.errors.push(e);
        }
    }

    /// A failure outside any call (a slice that could not start).
    pub fn merge_error(&mut self, e: String) {
        self.error(e);
    }

    /// Adds a slice of the same level (the latencies are left unsorted).
    pub fn merge(&mut self, slice: LevelResult) {
        self.measured_ok += slice.measured_ok;
        self.warmup_ok += slice.warmup_ok;
        self.failures += slice.failures;
        for e in slice.errors {
            if self.errors.len() < 5 {
                self.errors.push(e);
            }
        }
        self.latencies.extend_from_slice(&slice.latencies);
        self.wall += slice.wall;
        self.client_cpu += slice.client_cpu;
        self.server_cpu = match (self.server_cpu, slice.server_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.machine_cpu += slice.machine_cpu;
    }
}

#[derive(Default)]
struct WorkerOut {
    latencies: Vec<u64>,
    measured_ok: u64,
    warmup_ok: u64,
    failures: u64,
    errors: Vec<String>,
    end: Option<Instant>,
}

impl WorkerOut {
    fn error(&mut self, e: String) {
        self.failures += 1;
        if self.errors.len() < 5 {
            self.errors.push(e);
        }
    }
}

/// Checks one reply: the id sent, no error, and the text of the first content item equal to the message.
pub fn check(reply: &Value, id: u64, message: &str) -> Result<(), String> {
    if reply.get("id").and_then(Value::as_u64) != Some(id) {
        return Err(format!("reply id is not {id}: {}", clip(reply)));
    }
    if let Some(error) = reply.get("error") {
        return Err(format!("error reply: {}", clip(error)));
    }
    let result = reply
        .get("result")
        .ok_or_else(|| format!("no result: {}", clip(reply)))?;
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Err(format!("tool error: {}", clip(result)));
    }
    match result.pointer("/content/0/text").and_then(Value::as_str) {
        Some(text) if text == message => Ok(()),
        _ => Err(format!("text is not {message:?}: {}", clip(result))),
    }
}

fn clip(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 300 {
        let mut cut = 300;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Runs the calls of one phase until its shared budget is spent or its time is up. Returns false if the
/// caller broke (a transport error or a timeout): it is not used again.
struct Phase<'a> {
    /// Calls left to make, shared by the level's workers.
    budget: &'a AtomicI64,
    time: Duration,
    /// Whether latencies are recorded (the measured phase) or not (the warm-up).
    record: bool,
}

async fn phase<C: Caller>(
    caller: &mut C,
    worker: usize,
    tag: &str,
    Phase { budget, time, record }: Phase<'_>,
    plan: &Plan,
    out: &mut WorkerOut,
) -> bool {
    let deadline = Instant::now() + time;
    let mut seq: u64 = 0;
    loop {
        if Instant::now() >= deadline || budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
            return true;
        }
        seq += 1;
        // Ids are unique across the workers of a level (they may share one stdio pipe) and stay far below
        // 2^53, so JavaScript peers keep them exact.
        let id = ((worker as u64 + 1) << 32) | seq;
        let message = format!("{tag}-w{worker}-n{seq}");
        let started = Instant::now();
        let reply = tokio::time::timeout(plan.call_timeout, caller.call(id, &message)).await;
        let elapsed = started.elapsed();
        match reply {
            Err(_) => {
                out.error(format!("worker {worker}: no reply within {:?}", plan.call_timeout));
                return false;
            }
            Ok(Err(e)) => {
                out.error(format!("worker {worker}: {e}"));
                return false;
            }
            Ok(Ok(reply)) => match check(&reply, id, &message) {
                Ok(()) if record => {
                    out.measured_ok += 1;
                    out.latencies.push(elapsed.as_nanos() as u64);
                }
                Ok(()) => out.warmup_ok += 1,
                Err(e) => out.error(format!("worker {worker}: {e}")),
            },
        }
    }
}

/// Measures one level. `open(worker)` gives each worker its caller (run inside the worker, so sessions open
/// concurrently); `server_pid` is the root of the target's processes, whose CPU time is sampled.
pub async fn run_level<C, F, Fut>(
    tag: &str,
    concurrency: usize,
    plan: &Plan,
    server_pid: Option<u32>,
    open: F,
) -> LevelResult
where
    C: Caller,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<C, String>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let warm_budget = Arc::new(AtomicI64::new(plan.warmup_calls as i64));
    let budget = Arc::new(AtomicI64::new(plan.calls as i64));
    let mut handles = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let opening = open(worker);
        let (barrier, warm_budget, budget, plan) = (barrier.clone(), warm_budget.clone(), budget.clone(), plan.clone());
        let tag = format!("{tag}-c{concurrency}");
        handles.push(tokio::spawn(async move {
            let mut out = WorkerOut {
                latencies: Vec::with_capacity((plan.calls as usize / concurrency.max(1)).min(1 << 20) + 16),
                ..WorkerOut::default()
            };
            let mut caller = match tokio::time::timeout(plan.setup_timeout, opening).await {
                Ok(Ok(c)) => Some(c),
                Ok(Err(e)) => {
                    out.error(format!("worker {worker}: cannot open a session: {e}"));
                    None
                }
                Err(_) => {
                    out.error(format!(
                        "worker {worker}: session not open within {:?}",
                        plan.setup_timeout
                    ));
                    None
                }
            };
            barrier.wait().await; // every session open
            if let Some(c) = caller.as_mut()
                && !phase(
                    c,
                    worker,
                    &tag,
                    Phase {
                        budget: &warm_budget,
                        time: plan.warmup,
                        record: false,
                    },
                    &plan,
                    &mut out,
                )
                .await
            {
                caller = None;
            }
            barrier.wait().await; // everyone warm: the measured phase starts
            if let Some(c) = caller.as_mut()
                && !phase(
                    c,
                    worker,
                    &tag,
                    Phase {
                        budget: &budget,
                        time: plan.max,
                        record: true,
                    },
                    &plan,
                    &mut out,
                )
                .await
            {
                caller = None;
            }
            out.end = Some(Instant::now());
            barrier.wait().await; // measured phase over
            if let Some(c) = caller {
                let _ = tokio::time::timeout(plan.call_timeout, c.close()).await;
            }
            out
        }));
    }

    let mut result = LevelResult {
        concurrency,
        ..LevelResult::default()
    };
    // Every wait of a worker is bounded (setup, calls), so these are a backstop against a bug.
    let backstop = plan.setup_timeout + plan.warmup + plan.max + 3 * plan.call_timeout + Duration::from_secs(30);
    let phases = async {
        barrier.wait().await;
        barrier.wait().await;
        let start = Instant::now();
        let machine0 = procs::cpu_of_machine();
        let client0 = procs::cpu_of_self();
        let server0 = server_pid.map(procs::cpu_of_tree);
        barrier.wait().await;
        let client1 = procs::cpu_of_self();
        let server1 = server_pid.map(procs::cpu_of_tree);
        let machine1 = procs::cpu_of_machine();
        (
            start,
            client1.saturating_sub(client0),
            server0.zip(server1).map(|(a, b)| b.saturating_sub(a)),
            machine1.saturating_sub(machine0),
        )
    };
    let (start, client_cpu, server_cpu, machine_cpu) = match tokio::time::timeout(backstop, phases).await {
        Ok(v) => v,
        Err(_) => {
            for h in &handles {
                h.abort();
            }
            result.error(format!("level did not finish within {backstop:?}"));
            return result;
        }
    };
    result.client_cpu = client_cpu;
    result.server_cpu = server_cpu;
    result.machine_cpu = machine_cpu;
    let mut end = start;
    for h in handles {
        match h.await {
            Ok(out) => {
                result.measured_ok += out.measured_ok;
                result.warmup_ok += out.warmup_ok;
                result.failures += out.failures;
                for e in out.errors {
                    if result.errors.len() < 5 {
                        result.errors.push(e);
                    }
                }
                result.latencies.extend_from_slice(&out.latencies);
                if let Some(e) = out.end {
                    end = end.max(e);
                }
            }
            Err(e) => result.error(format!("worker task failed: {e}")),
        }
    }
    result.wall = end - start;
    result.latencies.sort_unstable();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reply_passes_only_with_its_id_and_its_message() {
        let ok = json!({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": "m-1"}]}});
        assert!(check(&ok, 7, "m-1").is_ok());
        assert!(check(&ok, 8, "m-1").is_err(), "another request's reply");
        assert!(check(&ok, 7, "m-2").is_err(), "another message");
        let error = json!({"jsonrpc": "2.0", "id": 7, "error": {"code": -32602, "message": "no"}});
        assert!(check(&error, 7, "m-1").is_err());
        let tool_error = json!({"jsonrpc": "2.0", "id": 7, "result": {"isError": true, "content": [{"type": "text", "text": "m-1"}]}});
        assert!(check(&tool_error, 7, "m-1").is_err());
        assert!(check(&json!({"jsonrpc": "2.0", "id": 7, "result": {}}), 7, "m-1").is_err());
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let level = LevelResult {
            latencies: (1..=100).collect(),
            ..LevelResult::default()
        };
        assert_eq!(level.quantile(0.5), Some(Duration::from_nanos(50)));
        assert_eq!(level.quantile(0.99), Some(Duration::from_nanos(99)));
        assert_eq!(LevelResult::default().quantile(0.5), None);
    }
}
