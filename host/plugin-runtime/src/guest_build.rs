//! Building plugin crates for `wasm32-wasip2` with cargo. Shared, by path, between `host/default-plugins/build.rs` (which
//! builds and embeds the default plugins) and the test harness (which builds the hostile test plugins): it
//! must use nothing but `std`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";

/// Why a plugin crate did not build.
#[derive(Debug)]
pub enum BuildError {
    /// cargo could not be run.
    Spawn { package: String, source: std::io::Error },
    /// cargo failed; `stderr` says why.
    Failed { package: String, stderr: String },
    /// cargo succeeded but the component is not where it should be.
    NoOutput { package: String, path: PathBuf },
    /// The built component could not be read (by the harness; the build script reads it with
    /// `include_bytes!`).
    #[allow(dead_code)]
    Read { path: PathBuf, source: std::io::Error },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Spawn { package, source } => write!(f, "cannot run cargo to build the plugin {package}: {source}"),
            Self::Failed { package, stderr } => {
                write!(f, "building the plugin {package} failed:\n{stderr}")?;
                if stderr.contains("target may not be installed") || stderr.contains("can't find crate for `core`") {
                    write!(f, "\nthe {TARGET} target is missing: run `rustup target add {TARGET}`")?;
                }
                Ok(())
            }
            Self::NoOutput { package, path } => {
                write!(f, "building the plugin {package} produced no {}", path.display())
            }
            Self::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for BuildError {}

/// Builds `package` of the cargo workspace at `workspace` in release mode and returns the component's path.
///
/// One package per invocation: the SDK selects the plugin kind with a cargo feature, and cargo unifies
/// features across the packages of one build, which would give every plugin every world.
pub fn build(workspace: &Path, package: &str, target_dir: &Path) -> Result<PathBuf, BuildError> {
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
    let output = command.output().map_err(|source| BuildError::Spawn {
        package: package.to_owned(),
        source,
    })?;
    if !output.status.success() {
        return Err(BuildError::Failed {
            package: package.to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let file = format!("{}.wasm", package.replace('-', "_"));
    let path = target_dir.join(TARGET).join("release").join(file);
    if !path.exists() {
        return Err(BuildError::NoOutput {
            package: package.to_owned(),
            path,
        });
    }
    Ok(path)
}
