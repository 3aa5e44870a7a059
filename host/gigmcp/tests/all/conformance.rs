//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned in tests/deps), server
//! mode, every active scenario: run against our conformance fixture directly and through a real gateway
//! (profile `conf`, the fixture added with `--url` and an empty prefix, a forwarder adding the profile
//! token). Every scenario that passes directly must pass through the gateway. The work is done by
//! tests/conformance/run.sh; this test runs it and shows its output when it fails. Needs `make test`'s
//! dependencies.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gigmcp_testkit::{repo_root, test_deps_path};

/// A backstop far above run.sh's own limits (each of its steps has one).
const DEADLINE: Duration = Duration::from_secs(30 * 60);

#[test]
fn conformance_scenarios_that_pass_directly_pass_through_the_gateway() {
    test_deps_path("tests/deps/node_modules/.bin/conformance");
    test_deps_path("tests/deps/node_modules/.bin/node");
    let script = repo_root().join("tests/conformance/run.sh");

    let mut child = Command::new("bash")
        .arg(&script)
        .env("GIGMCP_BIN", gigmcp_testkit::gigmcp_bin())
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that on the deadline the script and what it started can be stopped
        // without touching anything else.
        .process_group(0)
        .spawn()
        .expect("start tests/conformance/run.sh");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            // The script's TERM trap stops the fixture, the gateway and the forwarder.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            std::thread::sleep(Duration::from_secs(10));
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(status) if status.success() => println!("{stdout}"),
        Some(status) => {
            panic!("tests/conformance/run.sh failed ({status})\n--- stdout\n{stdout}\n--- stderr\n{stderr}")
        }
        None => panic!(
            "tests/conformance/run.sh did not finish within {DEADLINE:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        ),
    }
}
