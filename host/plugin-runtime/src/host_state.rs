//! What an instance's host functions see: the resource table, WASI's deny-all context, the memory limiter,
//! the call's logging budget and where a call stood when it passed its deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::UpdateDeadline;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::limits::{Limits, SizeExceeded};

/// A call past its deadline that was mostly not running (the OS gave its thread to others) is given this many
/// more deadlines before it is stopped anyway.
const MAX_EXTENSIONS: u32 = 8;
/// The resource table of an instance holds the secrets lent to it (and WASI's streams).
const MAX_TABLE_ENTRIES: usize = 1024;
/// Log lines a plugin may write per call, and their length.
const LOG_LINES_PER_CALL: u32 = 32;
const LOG_LINE_MAX: usize = 1024;

/// What an instance's host functions see.
pub struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    plugin: Arc<str>,
    log_lines_left: u32,
    max_input_bytes: usize,
    max_output_bytes: usize,
    overrun: Option<Overrun>,
}

/// Where a call stood when it first passed its deadline.
struct Overrun {
    cpu: Duration,
    wall: Instant,
    thread: std::thread::ThreadId,
    extensions: u32,
}

fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec.max(0) as u64, t.tv_nsec.clamp(0, 999_999_999) as u32)
}

impl HostState {
    /// The epoch deadline passed. The deadline is wall-clock time, which also runs while the OS has given the
    /// thread to someone else (a loaded 2-core machine does that for tens of milliseconds). So the first time,
    /// the call gets one more deadline and the thread's CPU time is noted; if by the next check the call ran
    /// for at least half of that wall time, it is stopped: a loop is stopped within two deadlines, and a call
    /// starved by the OS is not blamed for it (up to `MAX_EXTENSIONS` deadlines).
    pub(crate) fn deadline_reached(&mut self, grace: u64) -> UpdateDeadline {
        let (cpu, wall, thread) = (thread_cpu_time(), Instant::now(), std::thread::current().id());
        let stop = match &self.overrun {
            None => false,
            Some(o) => {
                let ran = cpu.saturating_sub(o.cpu);
                o.thread != thread || o.extensions >= MAX_EXTENSIONS || ran * 2 >= wall - o.wall
            }
        };
        if stop {
            return UpdateDeadline::Interrupt;
        }
        let extensions = self.overrun.as_ref().map_or(0, |o| o.extensions + 1);
        self.overrun = Some(Overrun {
            cpu,
            wall,
            thread,
            extensions,
        });
        UpdateDeadline::Continue(grace)
    }

    pub(crate) fn new(plugin: Arc<str>, limits: &Limits) -> Self {
        // Deny-all WASI: no preopened directories, no environment, no arguments, stdin closed, stdout and
        // stderr discarded, no sockets (TCP and UDP off, every address refused, no name lookup). Clocks and
        // randomness stay: they grant no access, and Rust's std needs randomness to seed hash maps.
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_TABLE_ENTRIES);
        Self {
            wasi,
            table,
            limiter: MemoryLimiter {
                cap: limits.memory_bytes,
                peak: 0,
                denied: false,
            },
            plugin,
            log_lines_left: LOG_LINES_PER_CALL,
            max_input_bytes: limits.max_input_bytes,
            max_output_bytes: limits.max_output_bytes,
            overrun: None,
        }
    }

    /// Refuses an input over the limit before the plugin sees it.
    pub(crate) fn check_input(&self, size: usize) -> wasmtime::Result<()> {
        if size > self.max_input_bytes {
            return Err(SizeExceeded::Input {
                size,
                limit: self.max_input_bytes,
            }
            .into());
        }
        Ok(())
    }

    /// Refuses an answer over the limit.
    pub(crate) fn check_output(&self, size: usize) -> wasmtime::Result<()> {
        if size > self.max_output_bytes {
            return Err(SizeExceeded::Output {
                size,
                limit: self.max_output_bytes,
            }
            .into());
        }
        Ok(())
    }

    pub(crate) fn begin_call(&mut self) {
        self.log_lines_left = LOG_LINES_PER_CALL;
        self.limiter.denied = false;
        self.overrun = None;
    }

    /// A plugin's log line: attributed, truncated, and limited per call.
    pub(crate) fn plugin_log(&mut self, level: tracing::Level, message: &str) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        let mut end = message.len().min(LOG_LINE_MAX);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let message = &message[..end];
        let plugin = &*self.plugin;
        match level {
            tracing::Level::ERROR => tracing::error!(plugin, "{message}"),
            tracing::Level::WARN => tracing::warn!(plugin, "{message}"),
            tracing::Level::INFO => tracing::info!(plugin, "{message}"),
            tracing::Level::DEBUG => tracing::debug!(plugin, "{message}"),
            tracing::Level::TRACE => tracing::trace!(plugin, "{message}"),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory and remembers the peak and whether growth was refused (to name an out-of-memory trap).
pub(crate) struct MemoryLimiter {
    pub(crate) cap: usize,
    pub(crate) peak: usize,
    pub(crate) denied: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.denied = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        2
    }
}
