//! What a call may use and how it can end: the per-call limits, what a call cost, and the errors of loading
//! and calling a component. A leaf of the crate: the runtime, the adapter and the artifact cache all speak it.

use gigmcp_types::plugin::PluginKind;
use std::time::Duration;

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
