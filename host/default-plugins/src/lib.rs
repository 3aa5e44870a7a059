//! The default plugins' components (`plugins/` at the repository's root), built for wasm32-wasip2 by this
//! crate's `build.rs` and embedded as bytes.
//!
//! A leaf: it depends on nothing of the workspace, and only the binary (and tests) depend on it, so a change in
//! `plugins/`, `sdk/` or `wit/` rebuilds this crate and the binary, not the gateway's libraries (wasmtime's
//! `test-programs-artifacts` pattern).

#![forbid(unsafe_code)]

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/default_plugins.rs"));
}

/// Every default plugin as (package name, component bytes), in installation order.
pub const COMPONENTS: &[(&str, &[u8])] = embedded::DEFAULT_COMPONENTS;

/// A default plugin's component, by name.
pub fn component(name: &str) -> Option<&'static [u8]> {
    COMPONENTS.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

/// The default plugins' names.
pub fn names() -> impl Iterator<Item = &'static str> {
    COMPONENTS.iter().map(|(name, _)| *name)
}
