//! The seccomp filter every sandboxed process runs under (invariant 4), built with seccompiler and handed
//! to bubblewrap as compiled BPF (`--add-seccomp-fd`), which installs it last, right before it executes the
//! server, after `no_new_privs`.
//!
//! Two filters: one refuses (EPERM) what a server never needs and an escape always does — new namespaces
//! through `clone`/`unshare`, `setns`, both mount APIs, `pivot_root`, `chroot`, `ptrace`, `process_vm_*`,
//! the keyring, `bpf`, `perf_event_open`, `io_uring_*`, `userfaultfd`, `open_by_handle_at`, kernel modules
//! and `kexec`; the other answers `clone3` with ENOSYS, because its flags sit behind a pointer a filter
//! cannot read, and libc falls back to `clone`, whose flags it can. Only the native architecture's calls
//! pass: a call made through another ABI (32-bit `int 0x80`) fails the architecture check and kills the
//! process.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// Namespace flags of `clone` and `unshare`: any of them makes the call fail.
const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWCGROUP as u64,
    0x0000_0080, // CLONE_NEWTIME
];

/// Calls refused whatever their arguments.
const REFUSED: &[libc::c_long] = &[
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
];

fn native_arch() -> TargetArch {
    #[cfg(target_arch = "x86_64")]
    return TargetArch::x86_64;
    #[cfg(target_arch = "aarch64")]
    return TargetArch::aarch64;
    #[cfg(target_arch = "riscv64")]
    return TargetArch::riscv64;
}

/// The compiled programs, in the order bubblewrap should install them.
pub fn programs() -> Result<Vec<BpfProgram>, seccompiler::Error> {
    let mut refused: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in REFUSED {
        refused.insert(*call, Vec::new()); // no rule: refused unconditionally
    }
    for call in [libc::SYS_clone, libc::SYS_unshare] {
        let rules = NAMESPACE_FLAGS
            .iter()
            .map(|flag| {
                let condition =
                    SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(*flag), *flag)?;
                SeccompRule::new(vec![condition])
            })
            .collect::<Result<Vec<_>, _>>()?;
        refused.insert(call, rules);
    }
    let refuse = SeccompFilter::new(
        refused,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        native_arch(),
    )?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        native_arch(),
    )?;
    Ok(vec![refuse.try_into()?, clone3.try_into()?])
}

/// A program as the kernel (and bubblewrap) reads it: `struct sock_filter` records in native byte order.
pub fn to_bytes(program: &BpfProgram) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for insn in program {
        bytes.extend_from_slice(&insn.code.to_ne_bytes());
        bytes.push(insn.jt);
        bytes.push(insn.jf);
        bytes.extend_from_slice(&insn.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_to_whole_instructions() {
        let programs = programs().unwrap();
        assert_eq!(programs.len(), 2);
        for p in &programs {
            assert!(!p.is_empty());
            assert_eq!(to_bytes(p).len(), p.len() * 8);
        }
    }
}
