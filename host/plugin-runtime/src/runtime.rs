//! The WebAssembly runtime: one wasmtime engine (pooling allocator, epoch interruption, fuel), the linker
//! (deny-all WASI plus the plugin interface's host imports), loading a component for a world, and running
//! one hook call on an instance under the per-call limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::artifacts::ArtifactCache;
use crate::call::{Answer, Hook};
use crate::since_v0_1_0 as v0_1_0;
use crate::since_v0_1_0::{WorldInstance, WorldPre};
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;

/// The limits of one call. Defaults: 20 ms, 16 MiB, 4 MiB in, 1 MiB out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time a call may take (epoch interruption inside WebAssembly, a timer around host calls).
    pub deadline: Duration,
    /// WebAssembly instructions a call may execute (roughly): a deterministic bound besides the deadline.
    pub fuel: u64,
    /// The most linear memory an instance may have.
    pub memory_bytes: usize,
    /// The largest input (JSON text and strings) a call is given; larger inputs are refused unseen.
    pub max_input_bytes: usize,
    /// The largest output a call may return.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(20),
            fuel: 1_000_000_000,
            memory_bytes: 16 << 20,
            max_input_bytes: 4 << 20,
            max_output_bytes: 1 << 20,
        }
    }
}

/// How long `init` may take: it parses the configuration once per instance.
const INIT_DEADLINE_FACTOR: u32 = 5;
/// The epoch advances every millisecond; a deadline is a number of ticks.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// A call past its deadline that was mostly not running (the OS gave its thread to others) is given this many
/// more deadlines before it is stopped anyway.
const MAX_EXTENSIONS: u32 = 8;
/// Beyond the deadline, how long a call blocked in a host function (which epochs cannot interrupt) may
/// last before its future is dropped, which discards the instance.
const HOST_SLACK: Duration = Duration::from_millis(30);
/// The pooling allocator's capacity. An instance is a component instance with a few core instances.
const POOL_INSTANCES: u32 = 1000;
/// Idle instances all plugins together may keep; the rest of the pool is for calls in flight.
pub(crate) const MAX_IDLE_INSTANCES: usize = POOL_INSTANCES as usize / 2;
/// The resource table of an instance holds the secrets lent to it (and WASI's streams).
const MAX_TABLE_ENTRIES: usize = 1024;
/// Log lines a plugin may write per call, and their length.
const LOG_LINES_PER_CALL: u32 = 32;
const LOG_LINE_MAX: usize = 1024;

/// Why a call produced no answer. For policy kinds every one of these is a denial.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    #[error("did not finish within {0:?}")]
    Timeout(Duration),
    #[error("used up its fuel")]
    OutOfFuel,
    #[error("exceeded its memory limit of {0} bytes")]
    OutOfMemory(usize),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("was given {size} bytes, over its input limit of {limit}")]
    InputTooLarge { size: usize, limit: usize },
    #[error("returned {size} bytes, over its output limit of {limit}")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("returned a malformed result: {0}")]
    Malformed(String),
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    #[error("refused its configuration: {0}")]
    InitRefused(String),
    #[error("is quarantined after {0} consecutive failures; `gigmcp plugin enable` it again once fixed")]
    Quarantined(u32),
    #[error("is not loaded: {0}")]
    Unavailable(String),
}

impl CallFailure {
    /// The stable code a denial carries.
    pub fn code(&self) -> &'static str {
        match self {
            CallFailure::Timeout(_) => "plugin-timeout",
            CallFailure::OutOfFuel => "plugin-out-of-fuel",
            CallFailure::OutOfMemory(_) => "plugin-out-of-memory",
            CallFailure::Trap(_) => "plugin-trap",
            CallFailure::InputTooLarge { .. } => "plugin-input-too-large",
            CallFailure::OutputTooLarge { .. } => "plugin-output-too-large",
            CallFailure::Malformed(_) => "plugin-malformed-result",
            CallFailure::Instantiate(_) => "plugin-instantiate-failed",
            CallFailure::InitRefused(_) => "plugin-config-refused",
            CallFailure::Quarantined(_) => "plugin-quarantined",
            CallFailure::Unavailable(_) => "plugin-unavailable",
        }
    }

    /// Whether the failure is the plugin's own doing (and counts towards quarantine). An input refused
    /// before the call is not.
    pub fn counts_against_plugin(&self) -> bool {
        !matches!(
            self,
            CallFailure::InputTooLarge { .. } | CallFailure::Quarantined(_) | CallFailure::Unavailable(_)
        )
    }
}

/// A refusal raised inside the adapter, carried through wasmtime's error type to be classified.
#[derive(Debug, thiserror::Error)]
pub enum SizeExceeded {
    #[error("input of {size} bytes over the limit of {limit}")]
    Input { size: usize, limit: usize },
    #[error("output of {size} bytes over the limit of {limit}")]
    Output { size: usize, limit: usize },
}

/// What one call cost, for the harness and the statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub fuel: u64,
    pub memory_bytes: usize,
    pub elapsed: Duration,
}

/// Rejects a component at load: the operator reads this.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("not a WebAssembly component (a core module or something else?): {0}")]
    NotAComponent(String),
    #[error(
        "it imports {import}, which is neither WASI nor part of the {kind} world; plugins may import only \
         WASI (linked to deny-all implementations) and gigmcp:plugin/{{{allowed}}}@{version}"
    )]
    ForbiddenImport {
        import: String,
        kind: PluginKind,
        allowed: String,
        version: &'static str,
    },
    #[error("it does not implement the {kind} world of gigmcp:plugin@{version}: {detail}")]
    WrongWorld {
        kind: PluginKind,
        version: &'static str,
        detail: String,
    },
    #[error("it cannot be linked: {0}")]
    Link(String),
    #[error("the plugin runtime could not start: {0}")]
    Engine(String),
}

/// The engine, the linker and the compiled-artifact cache, shared by every plugin.
pub struct Runtime {
    /// Idle instances kept by all plugins: at most half the pool, so calls always find a free slot.
    pub(crate) idle_instances: std::sync::atomic::AtomicUsize,
    engine: Engine,
    linker: Linker<HostState>,
    artifacts: ArtifactCache,
    pub limits: Limits,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(artifacts: ArtifactCache, limits: Limits) -> Result<Arc<Self>, LoadError> {
        let engine_error = |e: wasmtime::Error| LoadError::Engine(format!("{e:#}"));
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(true);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES * 4)
            .total_memories(POOL_INSTANCES)
            .total_tables(POOL_INSTANCES * 4)
            .total_stacks(POOL_INSTANCES)
            .max_memories_per_component(2)
            .max_memory_size(limits.memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        v0_1_0::add_to_linker(&mut linker).map_err(engine_error)?;
        let ticker = EpochTicker::start(&engine);
        Ok(Arc::new(Self {
            idle_instances: Default::default(),
            engine,
            linker,
            artifacts,
            limits,
            _ticker: ticker,
        }))
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Lets the artifact cache forget compiled components no loaded plugin uses.
    pub fn forget_unused(&self, in_use: &[ComponentHash]) {
        self.artifacts.retain(in_use);
    }

    /// Compiles (or finds in the cache) the component with this content hash. CPU-heavy: call it off the
    /// async runtime.
    pub fn compile(&self, sha256: &ComponentHash, bytes: &[u8]) -> Result<Component, LoadError> {
        self.artifacts.get_or_compile(&self.engine, sha256, bytes)
    }

    /// Checks the component's imports against the world of `kind` and its exports against the world, and
    /// prepares it for fast instantiation.
    pub fn prepare(&self, kind: PluginKind, component: &Component) -> Result<WorldPre, LoadError> {
        check_imports(&self.engine, kind, component)?;
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        WorldPre::new(kind, pre).map_err(|e| LoadError::WrongWorld {
            kind,
            version: v0_1_0::WIT_VERSION,
            detail: format!("{e:#}"),
        })
    }

    /// A fresh instance, not yet initialised.
    pub async fn instantiate(&self, pre: &WorldPre, plugin: Arc<str>) -> Result<Instance, CallFailure> {
        let mut store = Store::new(&self.engine, HostState::new(plugin, &self.limits));
        store.limiter(|state| &mut state.limiter);
        let grace = deadline_ticks(self.limits.deadline);
        store.epoch_deadline_callback(move |mut ctx| Ok(ctx.data_mut().deadline_reached(grace)));
        // Instantiation runs the component's start functions: give them the same budget as a call.
        store
            .set_fuel(self.limits.fuel)
            .map_err(|e| CallFailure::Instantiate(e.to_string()))?;
        store.set_epoch_deadline(deadline_ticks(self.limits.deadline * INIT_DEADLINE_FACTOR));
        let world = match tokio::time::timeout(
            self.limits.deadline * INIT_DEADLINE_FACTOR + HOST_SLACK,
            pre.instantiate(&mut store),
        )
        .await
        {
            Ok(Ok(world)) => world,
            Ok(Err(e)) => return Err(CallFailure::Instantiate(classify(&e, &store, self.limits).to_string())),
            Err(_) => return Err(CallFailure::Instantiate("timed out".into())),
        };
        Ok(Instance { store, world })
    }

    /// Runs one call on `instance` under the limits. On `Err`, the instance must be discarded: a trapped or
    /// interrupted instance is never called again.
    pub(crate) async fn run(
        &self,
        instance: &mut Instance,
        deadline: Duration,
        hook: &Hook<'_>,
    ) -> Result<(Answer, Usage), CallFailure> {
        let limits = self.limits;
        let Instance { store, world } = instance;
        store.data_mut().begin_call();
        store
            .set_fuel(limits.fuel)
            .map_err(|e| CallFailure::Trap(e.to_string()))?;
        store.set_epoch_deadline(deadline_ticks(deadline));
        let started = Instant::now();
        let outcome = tokio::time::timeout(deadline + HOST_SLACK, world.call(store, hook)).await;
        let elapsed = started.elapsed();
        let usage = Usage {
            fuel: limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0)),
            memory_bytes: store.data().limiter.peak,
            elapsed,
        };
        match outcome {
            Err(_) => Err(CallFailure::Timeout(deadline)),
            Ok(Err(e)) => Err(classify(&e, store, limits)),
            Ok(Ok(Err(malformed))) => Err(CallFailure::Malformed(malformed)),
            Ok(Ok(Ok(answer))) => Ok((answer, usage)),
        }
    }

    /// `init` on a fresh instance, with a longer deadline (it parses the configuration).
    pub async fn init(&self, instance: &mut Instance, config: &str) -> Result<Usage, CallFailure> {
        let deadline = self.limits.deadline * INIT_DEADLINE_FACTOR;
        let (answer, usage) = self.run(instance, deadline, &Hook::Init { config }).await?;
        answer
            .init()?
            .map_err(|reason| CallFailure::InitRefused(format!("{} ({})", reason.message, reason.code)))?;
        Ok(usage)
    }

    pub async fn config_schema(&self, instance: &mut Instance) -> Result<String, CallFailure> {
        let (answer, _) = self.run(instance, self.limits.deadline, &Hook::ConfigSchema).await?;
        answer.schema()
    }
}

fn deadline_ticks(deadline: Duration) -> u64 {
    // The first tick may come at once, so a deadline of n ticks lasts between n-1 and n ticks: add one.
    (deadline.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

/// Names what went wrong in a call, from wasmtime's error and what the limiter saw.
fn classify(error: &wasmtime::Error, store: &Store<HostState>, limits: Limits) -> CallFailure {
    if let Some(size) = error.downcast_ref::<SizeExceeded>() {
        return match *size {
            SizeExceeded::Input { size, limit } => CallFailure::InputTooLarge { size, limit },
            SizeExceeded::Output { size, limit } => CallFailure::OutputTooLarge { size, limit },
        };
    }
    if store.data().limiter.denied {
        return CallFailure::OutOfMemory(limits.memory_bytes);
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => CallFailure::Timeout(limits.deadline),
        Some(wasmtime::Trap::OutOfFuel) => CallFailure::OutOfFuel,
        Some(trap) => CallFailure::Trap(trap.to_string()),
        None => CallFailure::Trap(format!("{error:#}")),
    }
}

/// Refuses imports outside WASI and the world. `wasmtime` would also refuse imports it cannot satisfy, but
/// an import of another world's interface (a mcp-filter importing `secrets`) links fine and must not load.
fn check_imports(engine: &Engine, kind: PluginKind, component: &Component) -> Result<(), LoadError> {
    for (name, _) in component.component_type().imports(engine) {
        if !import_allowed(kind, name) {
            return Err(LoadError::ForbiddenImport {
                import: name.to_owned(),
                kind,
                allowed: v0_1_0::imported_interfaces(kind).join(","),
                version: v0_1_0::WIT_VERSION,
            });
        }
    }
    Ok(())
}

/// The WASI packages linked (deny-all): a plugin may import them, and gets errors when it uses them.
const WASI_PACKAGES: &[&str] = &["io", "clocks", "random", "cli", "filesystem", "sockets"];

pub fn import_allowed(kind: PluginKind, name: &str) -> bool {
    let Some((package, rest)) = name.split_once('/') else {
        return false;
    };
    let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
    if let Some(wasi) = package.strip_prefix("wasi:") {
        return WASI_PACKAGES.contains(&wasi) && version.starts_with("0.2.");
    }
    package == v0_1_0::PACKAGE
        && version == v0_1_0::WIT_VERSION
        && v0_1_0::imported_interfaces(kind).contains(&interface)
}

/// Lists a component's imports and exports by name, for `plugin inspect`.
pub fn describe(engine: &Engine, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, _)| name.to_owned()).collect();
    let exports = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    (imports, exports)
}

/// One instance of a plugin, owned by one caller at a time.
pub struct Instance {
    store: Store<HostState>,
    world: WorldInstance,
}

/// What an instance's host functions see.
pub struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    limiter: MemoryLimiter,
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
    fn deadline_reached(&mut self, grace: u64) -> UpdateDeadline {
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

    fn new(plugin: Arc<str>, limits: &Limits) -> Self {
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

    fn begin_call(&mut self) {
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
struct MemoryLimiter {
    cap: usize,
    peak: usize,
    denied: bool,
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

/// Advances the engine's epoch every millisecond, on a thread of its own, until the engine is dropped.
struct EpochTicker;

impl EpochTicker {
    fn start(engine: &Engine) -> Self {
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("gigmcp-plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .ok();
        EpochTicker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasi_0_2_and_the_worlds_own_interfaces_may_be_imported() {
        let mcp = PluginKind::McpFilter;
        assert!(import_allowed(mcp, "wasi:filesystem/types@0.2.6"));
        assert!(import_allowed(mcp, "wasi:sockets/tcp@0.2.0"));
        assert!(import_allowed(mcp, "gigmcp:plugin/log@0.1.0"));
        // Another world's interface, another version, other WASI packages and versions, other packages.
        assert!(!import_allowed(mcp, "gigmcp:plugin/secrets@0.1.0"));
        assert!(import_allowed(
            PluginKind::CredentialInjector,
            "gigmcp:plugin/secrets@0.1.0"
        ));
        assert!(!import_allowed(mcp, "gigmcp:plugin/log@0.2.0"));
        assert!(!import_allowed(mcp, "wasi:http/outgoing-handler@0.2.6"));
        assert!(!import_allowed(mcp, "wasi:sockets/tcp@0.3.0"));
        assert!(!import_allowed(mcp, "rogue:spy/exfil"));
        assert!(!import_allowed(mcp, "no-slash"));
    }
}
