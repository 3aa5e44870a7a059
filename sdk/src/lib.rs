//! `gigmcp-plugin-sdk`: write Gig'MCP policy plugins in Rust.
//!
//! A plugin is a WebAssembly component for one of five worlds of the WIT package `gigmcp:plugin@0.1.0`
//! (`wit/` at the repository's root). Pick the kind with exactly one Cargo feature, implement [`Plugin`]
//! and the kind's trait, and export it:
//!
//! ```ignore
//! use gigmcp_plugin_sdk::prelude::*;
//!
//! struct OnlyExample;
//!
//! impl Plugin for OnlyExample {
//!     type Config = NoConfig;
//!     const CONFIG_SCHEMA: &'static str = NoConfig::SCHEMA;
//!     fn new(_: NoConfig) -> Result<Self, PluginError> { Ok(OnlyExample) }
//! }
//!
//! impl EgressPolicy for OnlyExample {
//!     fn decide(&self, _ctx: &CallContext, request: &EgressRequest) -> EgressDecision {
//!         if request.host == "example.com" { EgressDecision::allow() }
//!         else { EgressDecision::deny("host-not-allowed", format!("{} is not example.com", request.host)) }
//!     }
//! }
//!
//! gigmcp_plugin_sdk::export_plugin!(OnlyExample);
//! ```
//!
//! `sdk/README.md` is the tutorial: write, test, build and load a plugin.

// One kind per build. Each kind's bindings embed a description of its component world; two of them in one
// binary would describe a component exporting both worlds, which the gateway refuses.
#[cfg(not(any(
    feature = "egress-policy",
    feature = "credential-injector",
    feature = "auth-mapper",
    feature = "audit-sink",
    feature = "mcp-filter"
)))]
compile_error!(
    "gigmcp-plugin-sdk: enable exactly one plugin kind feature: egress-policy, credential-injector, \
     auth-mapper, audit-sink or mcp-filter"
);

#[cfg(any(
    all(
        feature = "egress-policy",
        any(
            feature = "credential-injector",
            feature = "auth-mapper",
            feature = "audit-sink",
            feature = "mcp-filter"
        )
    ),
    all(
        feature = "credential-injector",
        any(feature = "auth-mapper", feature = "audit-sink", feature = "mcp-filter")
    ),
    all(feature = "auth-mapper", any(feature = "audit-sink", feature = "mcp-filter")),
    all(feature = "audit-sink", feature = "mcp-filter"),
))]
compile_error!(
    "gigmcp-plugin-sdk: more than one plugin kind feature is enabled. A component implements one world: \
     build each plugin crate on its own (`cargo build -p <plugin>`), since Cargo unifies features of \
     crates built together"
);

extern crate self as gigmcp_plugin_sdk;

#[doc(hidden)]
pub use serde_json as __serde_json;
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The generated bindings of the enabled kind's world. Most plugins need only the re-exports at the crate
/// root and the [`prelude`].
pub mod bindings {
    #[cfg(feature = "egress-policy")]
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "egress-policy",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::gigmcp_plugin_sdk::bindings",
        runtime_path: "::gigmcp_plugin_sdk::__wit_bindgen::rt",
    });

    #[cfg(feature = "credential-injector")]
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "credential-injector",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::gigmcp_plugin_sdk::bindings",
        runtime_path: "::gigmcp_plugin_sdk::__wit_bindgen::rt",
    });

    #[cfg(feature = "auth-mapper")]
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "auth-mapper",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::gigmcp_plugin_sdk::bindings",
        runtime_path: "::gigmcp_plugin_sdk::__wit_bindgen::rt",
    });

    #[cfg(feature = "audit-sink")]
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "audit-sink",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::gigmcp_plugin_sdk::bindings",
        runtime_path: "::gigmcp_plugin_sdk::__wit_bindgen::rt",
    });

    #[cfg(feature = "mcp-filter")]
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "mcp-filter",
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "::gigmcp_plugin_sdk::bindings",
        runtime_path: "::gigmcp_plugin_sdk::__wit_bindgen::rt",
    });
}

pub mod config;
pub mod hosts;
pub mod json;
mod kinds;
pub mod log;
mod plugin;

#[doc(hidden)]
pub mod __plugin {
    pub use crate::plugin::{build, not_initialised};
}

pub use bindings::gigmcp::plugin::types::{CallContext, DenyReason, PluginError, Principal, ProfileAccess, Verdict};
pub use kinds::*;
pub use plugin::Plugin;

/// Everything a plugin usually needs, in one `use`.
pub mod prelude {
    pub use crate::config::NoConfig;
    pub use crate::kinds::*;
    pub use crate::{CallContext, DenyReason, Plugin, PluginError, Principal, ProfileAccess, Verdict};
    pub use crate::{debug, error, info, warn};
}

/// The wall-clock time in milliseconds since the Unix epoch, as the gateway sees it.
pub fn now_ms() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        bindings::gigmcp::plugin::clock::now_ms()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

impl DenyReason {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl PluginError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl Verdict {
    pub fn deny(code: impl Into<String>, message: impl Into<String>) -> Self {
        Verdict::Deny(DenyReason::new(code, message))
    }

    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow)
    }
}
