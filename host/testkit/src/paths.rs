//! Where things are: the repository, the `gigmcp` binary under test, and the test dependencies
//! `scripts/test-deps.sh` installs (Node packages, the Python SDK in a venv).

use std::path::PathBuf;
use std::process::Command;

pub const MASTER_KEY: &str = "6a1f0c5e3b2d4f7a8c9e0b1d2f3a4c5e6b7d8f9a0c1e2b3d4f5a6c7e8b9d0f1a";

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/testkit/ is inside the repository")
        .to_path_buf()
}

/// The `gigmcp` binary cargo built for this test run: beside the `deps/` folder the test binary runs from
/// (cargo builds a package's binaries before its integration tests).
pub fn gigmcp_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("the test binary is in <target>/<profile>/deps");
        let bin = dir.join("gigmcp");
        assert!(
            bin.exists(),
            "{} is missing: run the tests with `cargo test -p gigmcp`",
            bin.display()
        );
        bin.display().to_string()
    })
}

/// The test dependencies `scripts/test-deps.sh` installs (`make test` runs it first).
pub fn test_deps_path(relative: &str) -> PathBuf {
    let path = repo_root().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `make test` (or scripts/test-deps.sh) to install the test dependencies",
        path.display()
    );
    path
}

pub fn venv_python() -> PathBuf {
    test_deps_path(".test-deps/venv/bin/python")
}

pub fn node_modules() -> PathBuf {
    test_deps_path("tests/deps/node_modules")
}

pub fn everything_js() -> PathBuf {
    test_deps_path("tests/deps/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// Node 22's directory (`bin/node` inside): the conformance suite, the OpenID provider and the egress tests need it
/// (Node 20's `fetch` ignores HTTPS_PROXY).
pub fn node22_dir() -> PathBuf {
    test_deps_path("tests/deps/node_modules/node")
}

pub fn node_bin() -> String {
    let out = Command::new("sh").args(["-c", "command -v node"]).output().unwrap();
    let path = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(!path.is_empty(), "node is not installed");
    std::fs::canonicalize(&path).unwrap().display().to_string()
}
