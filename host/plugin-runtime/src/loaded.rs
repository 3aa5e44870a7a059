//! One revision of one plugin, loaded: its prepared component, its configuration, a pool of idle instances
//! per tenant, its statistics and its quarantine.
//!
//! A call takes an idle instance of the caller's tenant (or makes and initialises a fresh one), runs the hook
//! under the limits, and puts the instance back only if the call succeeded: an instance that trapped, timed
//! out or returned garbage is dropped, never called again. Instances are never shared between tenants, so a
//! plugin cannot carry one profile's data into another's decisions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::call::{Answer, Hook};
use crate::limits::{CallFailure, Usage};
use crate::runtime::{Instance, MAX_IDLE_INSTANCES, Runtime};
use crate::since_v0_1_0::WorldPre;
use gigmcp_types::ids::{PluginId, RevisionId};
use gigmcp_types::names::PluginName;
use gigmcp_types::names::ProfileSlug;
use gigmcp_types::plugin::ComponentHash;
use gigmcp_types::plugin::PluginKind;
use gigmcp_types::plugin::PluginStats;

/// A plugin that fails this many calls in a row is quarantined: not called again (its calls fail closed)
/// until an operator enables it again.
pub const QUARANTINE_AFTER: u32 = 5;
/// Idle instances kept per tenant: enough for the concurrency of a 2-core gateway, few enough to bound
/// memory (each holds up to the memory limit).
const IDLE_PER_TENANT: usize = 4;
/// Idle instances kept per plugin, across tenants.
const IDLE_PER_PLUGIN: usize = 64;

type Tenant = Option<ProfileSlug>;

/// Identifies what a running gateway has loaded, to reload only what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadKey {
    pub revision: RevisionId,
    pub generation: i64,
}

pub struct LoadedPlugin {
    pub id: PluginId,
    pub name: PluginName,
    pub kind: PluginKind,
    pub key: LoadKey,
    pub sha256: ComponentHash,
    config: String,
    label: Arc<str>,
    state: Result<WorldPre, String>,
    runtime: Arc<Runtime>,
    idle: Mutex<IdlePool>,
    stats: Stats,
}

impl LoadedPlugin {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        runtime: Arc<Runtime>,
        id: PluginId,
        name: PluginName,
        kind: PluginKind,
        key: LoadKey,
        sha256: ComponentHash,
        config: String,
        state: Result<WorldPre, String>,
    ) -> Self {
        Self {
            label: Arc::from(name.as_str()),
            id,
            name,
            kind,
            key,
            sha256,
            config,
            state,
            runtime,
            idle: Mutex::default(),
            stats: Stats::default(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.state.is_ok()
    }

    /// Calls a hook on an instance of `tenant`, under the limits.
    pub(crate) async fn call(&self, tenant: &Tenant, hook: Hook<'_>) -> Result<Answer, CallFailure> {
        self.call_measured(tenant, hook).await.map(|(answer, _)| answer)
    }

    /// Like `call`, with what the call cost.
    pub(crate) async fn call_measured(&self, tenant: &Tenant, hook: Hook<'_>) -> Result<(Answer, Usage), CallFailure> {
        let result = self.call_untracked(tenant, &hook).await;
        let metrics = gigmcp_metrics::global();
        let plugin = self.name.as_str();
        match &result {
            Ok((_, usage)) => {
                self.stats.success(usage.elapsed);
                metrics.add(
                    "gigmcp_plugin_fuel_total",
                    "Fuel (WebAssembly instructions, roughly) plugins' successful calls consumed, by plugin.",
                    &[("plugin", plugin)],
                    usage.fuel as f64,
                );
            }
            Err(failure) => {
                self.stats.failure(&self.name, failure);
                metrics.inc(
                    "gigmcp_plugin_failures_total",
                    "Plugin calls that failed (trap, timeout, out of memory or fuel, bad answer, quarantine), by \
                     plugin and failure.",
                    &[("plugin", plugin), ("failure", failure.code())],
                );
            }
        }
        metrics.inc(
            "gigmcp_plugin_calls_total",
            "Calls of plugins' hooks, by plugin.",
            &[("plugin", plugin)],
        );
        result
    }

    async fn call_untracked(&self, tenant: &Tenant, hook: &Hook<'_>) -> Result<(Answer, Usage), CallFailure> {
        if self.stats.quarantined.load(Ordering::Relaxed) {
            return Err(CallFailure::Quarantined(QUARANTINE_AFTER));
        }
        let pre = self.state.as_ref().map_err(|e| CallFailure::Unavailable(e.clone()))?;
        let mut instance = match self.take_idle(tenant) {
            Some(instance) => instance,
            None => self.fresh_instance(pre).await?,
        };
        let outcome = self
            .runtime
            .run(&mut instance, self.runtime.limits.deadline, hook)
            .await;
        if outcome.is_ok() {
            self.put_idle(tenant, instance);
        }
        outcome
    }

    /// A new, initialised instance (for the harness and `plugin config`: never pooled).
    pub async fn fresh_instance(&self, pre: &WorldPre) -> Result<Instance, CallFailure> {
        let mut instance = self.runtime.instantiate(pre, self.label.clone()).await?;
        self.runtime.init(&mut instance, &self.config).await?;
        Ok(instance)
    }

    pub fn prepared(&self) -> Result<&WorldPre, CallFailure> {
        self.state.as_ref().map_err(|e| CallFailure::Unavailable(e.clone()))
    }

    fn take_idle(&self, tenant: &Tenant) -> Option<Instance> {
        let instance = self.lock_idle().take(tenant)?;
        self.runtime.idle_instances.fetch_sub(1, Ordering::Relaxed);
        Some(instance)
    }

    /// Keeps a healthy instance for the tenant's next call. The pool is bounded per tenant, per plugin and
    /// across plugins (half the allocator's slots, so calls always find one); when full, the instance of the
    /// tenant that called least recently makes room.
    fn put_idle(&self, tenant: &Tenant, instance: Instance) {
        let mut pool = self.lock_idle();
        if pool.count(tenant) >= IDLE_PER_TENANT {
            return;
        }
        let global_full = self.runtime.idle_instances.load(Ordering::Relaxed) >= MAX_IDLE_INSTANCES;
        if pool.total >= IDLE_PER_PLUGIN || global_full {
            // One out, one in: the global count stays.
            if !pool.evict_least_recent(tenant) {
                return;
            }
        } else {
            self.runtime.idle_instances.fetch_add(1, Ordering::Relaxed);
        }
        pool.put(tenant, instance);
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, IdlePool> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn stats(&self) -> PluginStats {
        self.stats.snapshot(self.key.revision.0)
    }

    pub fn is_quarantined(&self) -> bool {
        self.stats.quarantined.load(Ordering::Relaxed)
    }

    pub fn add_lost_events(&self, n: u64) {
        self.stats.lost.fetch_add(n, Ordering::Relaxed);
    }
}

impl Drop for LoadedPlugin {
    fn drop(&mut self) {
        let idle = self.lock_idle().total;
        self.runtime.idle_instances.fetch_sub(idle, Ordering::Relaxed);
    }
}

/// Idle instances by tenant, with when each tenant last returned one.
#[derive(Default)]
struct IdlePool {
    by_tenant: HashMap<Tenant, (u64, Vec<Instance>)>,
    total: usize,
    clock: u64,
}

impl IdlePool {
    fn count(&self, tenant: &Tenant) -> usize {
        self.by_tenant.get(tenant).map_or(0, |(_, list)| list.len())
    }

    fn take(&mut self, tenant: &Tenant) -> Option<Instance> {
        let instance = self.by_tenant.get_mut(tenant)?.1.pop()?;
        self.total -= 1;
        Some(instance)
    }

    fn put(&mut self, tenant: &Tenant, instance: Instance) {
        self.clock += 1;
        let entry = self.by_tenant.entry(tenant.clone()).or_default();
        entry.0 = self.clock;
        entry.1.push(instance);
        self.total += 1;
    }

    /// Drops one instance of the least recently active other tenant; false if there is none. The dropped
    /// instance's slot is reused by the one being put, so the global count does not change.
    fn evict_least_recent(&mut self, keep: &Tenant) -> bool {
        let victim = self
            .by_tenant
            .iter()
            .filter(|(tenant, (_, list))| *tenant != keep && !list.is_empty())
            .min_by_key(|(_, (used, _))| *used)
            .map(|(tenant, _)| tenant.clone());
        let Some(victim) = victim else {
            return false;
        };
        if let Some((_, list)) = self.by_tenant.get_mut(&victim) {
            list.pop();
            if list.is_empty() {
                self.by_tenant.remove(&victim);
            }
        }
        self.total -= 1;
        true
    }
}

/// Counters, the last failure, recent latencies, and the quarantine flag.
#[derive(Default)]
struct Stats {
    calls: AtomicU64,
    failures: AtomicU64,
    consecutive_failures: AtomicU32,
    quarantined: AtomicBool,
    lost: AtomicU64,
    last_error: Mutex<Option<String>>,
    latencies: Mutex<LatencyWindow>,
}

impl Stats {
    fn success(&self, elapsed: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.latencies.lock().unwrap_or_else(|p| p.into_inner()).push(elapsed);
    }

    fn failure(&self, plugin: &PluginName, failure: &CallFailure) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if !failure.counts_against_plugin() {
            return;
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(failure.to_string());
        let in_a_row = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(%plugin, code = failure.code(), "plugin call failed: {failure}");
        if in_a_row >= QUARANTINE_AFTER && !self.quarantined.swap(true, Ordering::Relaxed) {
            tracing::error!(
                %plugin,
                "plugin quarantined after {in_a_row} consecutive failures: its calls fail closed until an operator \
                 runs `gigmcp plugin enable {plugin}` (or replaces it)"
            );
        }
    }

    fn snapshot(&self, revision: i64) -> PluginStats {
        let (p50, p99) = self.latencies.lock().unwrap_or_else(|p| p.into_inner()).percentiles();
        PluginStats {
            revision,
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            p50_us: p50.as_micros() as u64,
            p99_us: p99.as_micros() as u64,
            quarantined: self.quarantined.load(Ordering::Relaxed),
            last_error: self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            lost_events: self.lost.load(Ordering::Relaxed),
            updated_at: 0,
        }
    }
}

/// The latencies of the last 1024 successful calls.
#[derive(Default)]
struct LatencyWindow {
    samples: Vec<Duration>,
    next: usize,
}

impl LatencyWindow {
    const SIZE: usize = 1024;

    fn push(&mut self, d: Duration) {
        if self.samples.len() < Self::SIZE {
            self.samples.push(d);
        } else {
            self.samples[self.next] = d;
        }
        self.next = (self.next + 1) % Self::SIZE;
    }

    fn percentiles(&self) -> (Duration, Duration) {
        if self.samples.is_empty() {
            return (Duration::ZERO, Duration::ZERO);
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.99))
    }
}
