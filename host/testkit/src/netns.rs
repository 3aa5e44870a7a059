//! Network namespaces the tests create: a gateway with no uplink, "outside" hosts linked to it.

use std::process::{Command, Stdio};

use crate::processes::Guard;

/// A network namespace made by the test (a test host, or a machine with no uplink), deleted when dropped.
pub struct Netns {
    pub name: String,
}

/// Runs a command, failing the test with its output if it fails.
pub fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("gt{tag}{}x{n}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    /// A command that runs its program in this network namespace (only: unlike `ip netns exec`, which also
    /// remounts /sys and so hides the cgroup hierarchy, `nsenter --net` changes nothing else).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.name)).arg("--");
        cmd
    }

    /// Runs `work` on a thread of its own that has entered this namespace (its sockets are the namespace's;
    /// nothing else of the process changes), and gives its result: a test's HTTP client can so reach a
    /// gateway that listens in a namespace without an uplink.
    pub fn run_in<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        let file = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    rustix::thread::move_into_link_name_space(
                        std::os::fd::AsFd::as_fd(&file),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )
                    .expect("setns into the test's network namespace");
                    work()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs a program inside the namespace in the background.
    pub fn spawn(&self, args: &[&str]) -> Guard {
        let child = self
            .command()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Guard(child)
    }
}

/// A gateway's namespace linked by a veth only to an "outside" namespace: the gateway's side is
/// 198.51.100.1 with its default route via the outside's 198.51.100.2 (a documentation address that exists
/// only in the test's namespaces). Returns (gateway side, outside).
pub fn linked_to_outside(gw_tag: &str, outside_tag: &str) -> (Netns, Netns) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static LINKS: AtomicU32 = AtomicU32::new(0);
    let gw = Netns::new(gw_tag);
    let outside = Netns::new(outside_tag);
    let n = LINKS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}x{n}", std::process::id() % 100_000);
    let (a, b) = (format!("tva{tag}"), format!("tvb{tag}"));
    run(&[
        "ip",
        "link",
        "add",
        &a,
        "netns",
        &gw.name,
        "type",
        "veth",
        "peer",
        "name",
        &b,
        "netns",
        &outside.name,
    ]);
    run(&["ip", "-n", &gw.name, "addr", "add", "198.51.100.1/24", "dev", &a]);
    run(&["ip", "-n", &outside.name, "addr", "add", "198.51.100.2/24", "dev", &b]);
    run(&["ip", "-n", &gw.name, "link", "set", &a, "up"]);
    run(&["ip", "-n", &outside.name, "link", "set", &b, "up"]);
    run(&["ip", "-n", &gw.name, "route", "add", "default", "via", "198.51.100.2"]);
    (gw, outside)
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
