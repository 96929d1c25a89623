//! The worker's lock-down: once its module is loaded, its windows mapped, its transports open,
//! its helper threads started and `/proc/self/io` opened, a worker can no longer open files,
//! sockets or processes. A seccomp filter (`seccompiler`, installed on every thread with
//! TSYNC, after `PR_SET_NO_NEW_PRIVS`) allows only the calls below and answers every other one
//! with EPERM. Then the worker tries the forbidden calls ([`sys::forbidden_calls`]) and refuses
//! to start unless each was refused.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

use crate::backend::Lockdown;
use crate::sys;

/// Every call a locked-down worker may make, with the reason. Anything else gets EPERM.
pub const ALLOWED: &[(&str, i64, &str)] = &[
    (
        "read",
        libc::SYS_read,
        "control socket, msg links, /proc/self/io",
    ),
    (
        "write",
        libc::SYS_write,
        "plugin output to stderr, eventfd, credits",
    ),
    ("readv", libc::SYS_readv, "std's buffered reads"),
    (
        "writev",
        libc::SYS_writev,
        "msg frames straight from the window",
    ),
    ("pread64", libc::SYS_pread64, "std reads of an open file"),
    ("lseek", libc::SYS_lseek, "rewinding /proc/self/io"),
    (
        "sendto",
        libc::SYS_sendto,
        "std's socket writes (control socket)",
    ),
    (
        "recvfrom",
        libc::SYS_recvfrom,
        "std's socket reads (control socket)",
    ),
    ("sendmsg", libc::SYS_sendmsg, "socket writes"),
    ("recvmsg", libc::SYS_recvmsg, "socket reads"),
    ("close", libc::SYS_close, "dropping ports, links, files"),
    (
        "poll",
        libc::SYS_poll,
        "msg waits for a link or the stop eventfd",
    ),
    ("ppoll", libc::SYS_ppoll, "the same, as libc may issue it"),
    (
        "futex",
        libc::SYS_futex,
        "shm waits and wake-ups, std's locks and channels",
    ),
    (
        "sched_yield",
        libc::SYS_sched_yield,
        "adaptive waiting, WASI sched_yield",
    ),
    (
        "nanosleep",
        libc::SYS_nanosleep,
        "the ticker thread's 10 ms sleep",
    ),
    (
        "clock_nanosleep",
        libc::SYS_clock_nanosleep,
        "the same, as libc may issue it",
    ),
    (
        "clock_gettime",
        libc::SYS_clock_gettime,
        "clocks when the vDSO cannot answer",
    ),
    ("gettimeofday", libc::SYS_gettimeofday, "the same"),
    ("getrusage", libc::SYS_getrusage, "the CPU limit"),
    (
        "mmap",
        libc::SYS_mmap,
        "the allocator; wasmtime's code and stacks",
    ),
    (
        "munmap",
        libc::SYS_munmap,
        "the allocator; dropping linear memory",
    ),
    (
        "mprotect",
        libc::SYS_mprotect,
        "growing linear memory (memory.grow)",
    ),
    (
        "madvise",
        libc::SYS_madvise,
        "the allocator returning pages",
    ),
    ("mremap", libc::SYS_mremap, "the allocator growing a block"),
    ("brk", libc::SYS_brk, "the allocator"),
    (
        "rt_sigreturn",
        libc::SYS_rt_sigreturn,
        "returning from wasmtime's trap handler",
    ),
    (
        "rt_sigaction",
        libc::SYS_rt_sigaction,
        "signal handlers (panic, abort)",
    ),
    (
        "rt_sigprocmask",
        libc::SYS_rt_sigprocmask,
        "wasmtime's trap handling, abort",
    ),
    (
        "sigaltstack",
        libc::SYS_sigaltstack,
        "the trap handler's stack",
    ),
    ("getpid", libc::SYS_getpid, "messages, abort"),
    ("gettid", libc::SYS_gettid, "abort"),
    ("tgkill", libc::SYS_tgkill, "abort on a host panic"),
    ("getrandom", libc::SYS_getrandom, "std's hash map seeds"),
    (
        "membarrier",
        libc::SYS_membarrier,
        "wasmtime's code publication",
    ),
    (
        "rseq",
        libc::SYS_rseq,
        "glibc's start-up of the helper threads (registers each once)",
    ),
    (
        "set_robust_list",
        libc::SYS_set_robust_list,
        "glibc's start-up of the helper threads",
    ),
    ("exit", libc::SYS_exit, "a thread ends"),
    ("exit_group", libc::SYS_exit_group, "the worker ends"),
];

fn arch() -> anyhow::Result<seccompiler::TargetArch> {
    std::env::consts::ARCH
        .try_into()
        .map_err(|e| anyhow::anyhow!("seccomp on {}: {e:?}", std::env::consts::ARCH))
}

fn filter(extra: &[Lockdown]) -> anyhow::Result<seccompiler::BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALLOWED
        .iter()
        .chain(extra.iter().flat_map(|x| x.calls))
        .map(|&(_, nr, _)| (nr, Vec::new()))
        .collect();
    if threads(extra) {
        // A backend's threads start threads when they need them: `clone` with CLONE_THREAD
        // only, a thread of this process under this filter, never a new process.
        let thread = u64::try_from(libc::CLONE_THREAD)?;
        let only_threads = SeccompRule::new(vec![
            SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(thread),
                thread,
            )
            .map_err(|e| anyhow::anyhow!("seccomp clone rule: {e}"))?,
        ])
        .map_err(|e| anyhow::anyhow!("seccomp clone rule: {e}"))?;
        rules.insert(libc::SYS_clone, vec![only_threads]);
    }
    let arch = arch()?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(u32::try_from(libc::EPERM)?),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| anyhow::anyhow!("building the seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e| anyhow::anyhow!("compiling the seccomp filter: {e:?}"))
}

/// Five instructions put in front of the filter of a worker that may start threads: `clone3`
/// answers ENOSYS, and the C library falls back to `clone`, whose flags a filter can read
/// (`clone3` passes them in memory). seccompiler gives one answer to every refused call, so
/// this one is written here; everything else goes on to seccompiler's program, which checks the
/// architecture again.
fn clone3_enosys() -> anyhow::Result<seccompiler::BpfProgram> {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const NR: u32 = 0; // seccomp_data.nr
    const ARCH: u32 = 4; // seccomp_data.arch
    let audit_arch: u32 = match std::env::consts::ARCH {
        "x86_64" => 0xC000_003E,
        "aarch64" => 0xC000_00B7,
        other => bail!("no seccomp architecture number for {other}"),
    };
    let op = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    Ok(vec![
        op(LD_W_ABS, 0, 0, ARCH),
        // Another architecture: straight to seccompiler's program (instruction 5 on), which refuses it.
        op(JEQ_K, 0, 3, audit_arch),
        op(LD_W_ABS, 0, 0, NR),
        op(JEQ_K, 0, 1, u32::try_from(libc::SYS_clone3)?),
        op(RET_K, 0, 0, RET_ERRNO | u32::try_from(libc::ENOSYS)?),
    ])
}

/// Whether a backend's threads start threads after the lock-down.
fn threads(extra: &[Lockdown]) -> bool {
    extra.iter().any(|x| x.threads)
}

/// Installs the filter on every thread of this process (with `PR_SET_NO_NEW_PRIVS`): what
/// every worker may call, and what the backends of its ports need (`extra`, from
/// `Backend::lockdown`).
pub fn install(extra: &[Lockdown]) -> anyhow::Result<()> {
    let mut program = filter(extra)?;
    if threads(extra) {
        program = clone3_enosys()?.into_iter().chain(program).collect();
    }
    seccompiler::apply_filter_all_threads(&program)
        .map_err(|e| anyhow::anyhow!("installing the seccomp filter: {e}"))
        .context("locking the worker down")?;
    Ok(())
}

/// Tries the forbidden calls; an error names every one that was not refused.
pub fn self_check() -> anyhow::Result<Vec<sys::Probe>> {
    let probes = sys::forbidden_calls();
    let allowed: Vec<String> = probes
        .iter()
        .filter(|p| !p.refused())
        .map(|p| {
            format!(
                "{} was not refused (errno {}: {})",
                p.call,
                p.errno,
                std::io::Error::from_raw_os_error(p.errno)
            )
        })
        .collect();
    if !allowed.is_empty() {
        bail!("the lock-down does not hold: {}", allowed.join("; "));
    }
    Ok(probes)
}

/// Installs the filter (with what the backends of the worker's ports need) and checks that
/// it holds.
pub fn lock_down(extra: &[Lockdown]) -> anyhow::Result<()> {
    install(extra)?;
    self_check().map(drop)
}
