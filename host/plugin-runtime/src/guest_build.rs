//! Building plugin crates for `wasm32-wasip2` with cargo. Shared, by path, between `host/build.rs` (which
//! builds and embeds the default plugins) and the test harness (which builds the hostile test plugins): it
//! must use nothing but `std`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// Builds `package` of the cargo workspace at `workspace` in release mode and returns the component's path.
///
/// One package per invocation: the SDK selects the plugin kind with a cargo feature, and cargo unifies
/// features across the packages of one build, which would give every plugin every world.
pub fn build(workspace: &Path, package: &str, target_dir: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--target",
            TARGET,
            "-p",
            package,
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // The outer build's settings are for the native gateway, not for WebAssembly guests: flags, wrappers (clippy
    // sets one) and per-package variables must not leak into the guests' build.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let leaks = (name.starts_with("CARGO_") && name != "CARGO_HOME" && name != "CARGO_MAKEFLAGS")
            || name == "RUSTFLAGS"
            || name == "RUSTDOCFLAGS"
            || name == "RUSTC_WORKSPACE_WRAPPER"
            || name == "RUSTC_WRAPPER";
        if leaks {
            command.env_remove(name.as_ref());
        }
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo to build the plugin {package}: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("target may not be installed") || stderr.contains("can't find crate for `core`") {
            format!("\nthe {TARGET} target is missing: run `rustup target add {TARGET}`")
        } else {
            String::new()
        };
        return Err(format!("building the plugin {package} failed:\n{stderr}{hint}"));
    }
    let file = format!("{}.wasm", package.replace('-', "_"));
    let path = target_dir.join(TARGET).join("release").join(file);
    if !path.exists() {
        return Err(format!("building the plugin {package} produced no {}", path.display()));
    }
    Ok(path)
}
