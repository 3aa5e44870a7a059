//! The WebAssembly runtime: one wasmtime engine (pooling allocator, epoch interruption, fuel), the linker
//! (deny-all WASI plus the plugin interface's host imports), loading a component for a world, and running
//! one hook call on an instance under the per-call limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::artifacts::ArtifactCache;
use crate::call::{Answer, Hook};
use crate::host_state::HostState;
use crate::limits::CallFailure;
use crate::limits::Limits;
use crate::limits::LoadError;
use crate::limits::SizeExceeded;
use crate::limits::Usage;
use crate::since_v0_1_0 as v0_1_0;
use crate::since_v0_1_0::{WorldInstance, WorldPre};
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;

/// How long `init` may take: it parses the configuration once per instance.
const INIT_DEADLINE_FACTOR: u32 = 5;
/// The epoch advances every millisecond; a deadline is a number of ticks.
const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Beyond the deadline, how long a call blocked in a host function (which epochs cannot interrupt) may
/// last before its future is dropped, which discards the instance.
const HOST_SLACK: Duration = Duration::from_millis(30);
/// The pooling allocator's capacity. An instance is a component instance with a few core instances.
const POOL_INSTANCES: u32 = 1000;
/// Idle instances all plugins together may keep; the rest of the pool is for calls in flight.
pub(crate) const MAX_IDLE_INSTANCES: usize = POOL_INSTANCES as usize / 2;

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
