//! Processes: CPU time of a process tree (from /proc, nanosecond scheduler accounting), the processes of a
//! range of uids and their memory, the machine's memory, and ending the processes the benchmark started.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use tokio::process::Child;

/// CPU time of all threads of one process (from each thread's `schedstat`; `stat` ticks if unavailable).
fn cpu_of_pid(pid: u32) -> u64 {
    let mut total = 0u64;
    let mut any = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            if let Ok(text) = std::fs::read_to_string(path)
                && let Some(ns) = text.split_whitespace().next().and_then(|v| v.parse::<u64>().ok())
            {
                total += ns;
                any = true;
            }
        }
    }
    if any {
        return total;
    }
    stat_fields(pid)
        .map(|f| (f.utime + f.stime) * (1_000_000_000 / clock_ticks()))
        .unwrap_or(0)
}

fn clock_ticks() -> u64 {
    100 // USER_HZ on Linux
}

struct Stat {
    state: char,
    ppid: u32,
    utime: u64,
    stime: u64,
    /// Clock ticks after boot at which the process started: with the pid, who it is.
    start: u64,
}

fn stat_fields(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3); ppid is field 4, utime 14, stime 15, starttime 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        utime: fields.get(11)?.parse().ok()?,
        stime: fields.get(12)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The process and all its descendants.
pub fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(stat) = stat_fields(pid) {
                children.entry(stat.ppid).or_default().push(pid);
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids);
        }
        i += 1;
    }
    out
}

/// CPU time used so far by a process and its descendants that are alive.
pub fn cpu_of_tree(root: u32) -> Duration {
    Duration::from_nanos(tree(root).into_iter().map(cpu_of_pid).sum())
}

/// CPU time the whole machine has been busy (all CPUs, from /proc/stat; 10 ms resolution).
pub fn cpu_of_machine() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return Duration::ZERO;
    };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let busy: u64 = v
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Duration::from_nanos(busy * (1_000_000_000 / clock_ticks()))
}

pub fn cpu_of_self() -> Duration {
    Duration::from_nanos(cpu_of_pid(std::process::id()))
}

/// Asks a child of ours to stop (SIGTERM, by its pid), then kills it after `grace`.
pub async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proc {
    pub pid: u32,
    pub start: u64,
}

impl Proc {
    /// Whether it still runs (a zombie has ended: it holds no memory and only waits to be reaped).
    pub fn alive(&self) -> bool {
        stat_fields(self.pid).is_some_and(|s| s.start == self.start && !matches!(s.state, 'Z' | 'X'))
    }
}

/// The real uid of a process.
fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The live processes whose real uid is in `uids` (on the host: a sandbox's processes run as its uid).
pub fn with_uids(uids: &RangeInclusive<u32>) -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if !uid_of(pid).is_some_and(|u| uids.contains(&u)) {
            continue;
        }
        if let Some(stat) = stat_fields(pid)
            && !matches!(stat.state, 'Z' | 'X')
        {
            out.push(Proc { pid, start: stat.start });
        }
    }
    out
}

/// Memory of one process, in bytes, from `/proc/<pid>/smaps_rollup`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Resident set: every page it maps that is in memory, shared or not.
    pub rss: u64,
    /// Proportional set: each resident page divided by the number of processes mapping it.
    pub pss: u64,
    /// Unique set: pages only this process maps (private clean + private dirty).
    pub uss: u64,
    /// Anonymous pages (heap, stacks): the process's own data, whoever else maps its files.
    pub anon: u64,
}

impl std::ops::AddAssign for Memory {
    fn add_assign(&mut self, other: Self) {
        self.rss += other.rss;
        self.pss += other.pss;
        self.uss += other.uss;
        self.anon += other.anon;
    }
}

pub fn memory_of(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let mut memory = Memory::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(key), Some(kib)) = (words.next(), words.next().and_then(|v| v.parse::<u64>().ok())) else {
            continue;
        };
        let bytes = kib * 1024;
        match key {
            "Rss:" => memory.rss = bytes,
            "Pss:" => memory.pss = bytes,
            "Private_Clean:" | "Private_Dirty:" => memory.uss += bytes,
            "Anonymous:" => memory.anon = bytes,
            _ => {}
        }
    }
    Some(memory)
}

/// `/proc/meminfo`, in bytes by field name.
pub fn meminfo() -> HashMap<String, u64> {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some((key.to_owned(), kib * 1024))
        })
        .collect()
}

/// Restricts every thread of `root`'s process tree to `cpus`; threads and processes they start later inherit
/// it.
pub fn pin_tree(root: u32, cpus: &[usize]) -> std::io::Result<()> {
    for pid in tree(root) {
        pin_threads(&format!("/proc/{pid}/task"), cpus)?;
    }
    Ok(())
}

/// Restricts every thread of this process to `cpus`.
pub fn pin_self(cpus: &[usize]) -> std::io::Result<()> {
    pin_threads("/proc/self/task", cpus)
}

/// The CPUs this process may run on now.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it and CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|c| libc::CPU_ISSET(*c, &set))
            .collect()
    }
}

fn pin_threads(tasks: &str, cpus: &[usize]) -> std::io::Result<()> {
    for task in std::fs::read_dir(tasks)?.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity get valid pointers
        // and the set's size.
        let result = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for cpu in cpus {
                libc::CPU_SET(*cpu, &mut set);
            }
            libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        // A thread that ended meanwhile is no error.
        if result != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_by_its_uid_and_has_memory() {
        let me = std::process::id();
        let uid = uid_of(me).expect("own uid");
        assert!(with_uids(&(uid..=uid)).iter().any(|p| p.pid == me));
        let start = stat_fields(me).unwrap().start;
        assert!(Proc { pid: me, start }.alive());
        assert!(
            !Proc {
                pid: me,
                start: start + 1
            }
            .alive(),
            "another process with the same pid"
        );
        let memory = memory_of(me).expect("smaps_rollup");
        assert!(memory.rss > 0 && memory.pss > 0 && memory.pss <= memory.rss && memory.uss <= memory.rss);
        assert!(memory.anon > 0 && memory.anon <= memory.rss);
        assert!(meminfo().get("MemAvailable").is_some_and(|v| *v > 0));
    }
}
