//! The few raw system calls the sandbox needs that std does not wrap. Every `unsafe` block of the sandbox is
//! here, each with the reason it is sound.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Resource limits set on bubblewrap (and so on everything in the jail) before it runs.
#[derive(Debug, Clone, Copy)]
pub struct Rlimits {
    /// Processes of the sandbox's host uid: each sandbox has its own uid, so this is per sandbox.
    pub nproc: u64,
    pub nofile: u64,
}

/// Between fork and exec, in the child: makes `fds` survive `exec`, applies `limits`, joins the cgroup by
/// writing `0` to each of `cgroup_join` (so the child is in its cgroup before it runs anything, with no window
/// outside it), then drops to `uid`/`gid` with no supplementary groups.
pub fn prepare_child(
    cmd: &mut tokio::process::Command,
    fds: Vec<RawFd>,
    limits: Rlimits,
    cgroup_join: Vec<RawFd>,
    uid: u32,
) {
    let setup = move || -> io::Result<()> {
        for fd in &fds {
            // SAFETY: fcntl on a descriptor number is async-signal-safe and touches no memory; the numbers
            // are descriptors the parent opened and keeps open until the child has been spawned.
            if unsafe { libc::fcntl(*fd, libc::F_SETFD, 0) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        for (resource, value) in [
            (libc::RLIMIT_NPROC, limits.nproc),
            (libc::RLIMIT_NOFILE, limits.nofile),
            (libc::RLIMIT_CORE, 0),
        ] {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            // SAFETY: setrlimit is async-signal-safe; `limit` is a valid, initialised struct on this stack.
            if unsafe { libc::setrlimit(resource, &limit) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        for fd in &cgroup_join {
            // SAFETY: write of one byte from a static buffer to a descriptor the parent keeps open; write is
            // async-signal-safe.
            if unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        // SAFETY: setgroups with an empty list, then setresgid and setresuid: async-signal-safe calls that take
        // no pointers but the null list; the group is changed before the user, while still privileged.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) == -1
                || libc::setresgid(uid, uid, uid) == -1
                || libc::setresuid(uid, uid, uid) == -1
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure only makes async-signal-safe system calls (fcntl, setrlimit, write, setgroups,
    // setresgid, setresuid) and allocates nothing, as required between fork and exec.
    unsafe {
        cmd.pre_exec(setup);
    }
}

/// Moves the calling thread into the network namespace of `pid`. Use on a thread of its own: sockets it
/// opens afterwards belong to that namespace.
pub fn enter_net_namespace_of(pid: u32) -> io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    // SAFETY: setns takes a descriptor we own (kept open for the call) and a namespace type; it changes only
    // the calling thread's namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pidfd for `pid`: a handle that keeps naming that very process even after it exits and its pid is
/// reused, so a signal sent through it can never reach another process.
pub fn pidfd_open(pid: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends SIGKILL to the process behind a pidfd (nothing, if it is gone).
pub fn pidfd_kill(pidfd: &std::os::fd::OwnedFd) {
    // SAFETY: pidfd_send_signal takes a descriptor we own, a signal number, a null siginfo and flags 0.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}
