//! Processes: reaping with resource usage, pidfds, and facts about this process.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub use wasm_ipc_wire::record::ChildUsage;

/// Waits for child `pid` to end and returns its status and resource usage (`wait4`).
pub fn wait_child(pid: i32) -> io::Result<ChildUsage> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are live, writable locals for the duration of the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        break;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(ChildUsage {
        exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        user_s: tv(ru.ru_utime),
        sys_s: tv(ru.ru_stime),
        // The kernel's counters are never negative.
        max_rss_kib: u64::try_from(ru.ru_maxrss).unwrap_or(0),
        voluntary_cs: u64::try_from(ru.ru_nvcsw).unwrap_or(0),
        involuntary_cs: u64::try_from(ru.ru_nivcsw).unwrap_or(0),
    })
}

/// A process handle that cannot name a recycled pid (`pidfd_open`).
#[derive(Debug)]
pub struct Pidfd(OwnedFd);

impl Pidfd {
    /// Opens a pidfd for a child that has not been reaped yet.
    pub fn open(pid: i32) -> io::Result<Pidfd> {
        // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("pidfd out of range"))?;
        // SAFETY: the syscall returned a fresh fd owned by nobody else.
        Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends SIGKILL; a no-op when the process already ended.
    pub fn kill(&self) {
        // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, no siginfo, flags 0.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }
}

/// This process's parent pid.
pub fn parent_pid() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// Reads `rchar` and `wchar` (bytes passed to read/write-family syscalls) from
/// `/proc/self/io`.
pub fn self_io() -> Option<(u64, u64)> {
    SelfIo::open().ok()?.read()
}

/// `/proc/self/io`, opened once so that it can be read after the worker's lock-down (which
/// forbids opening files).
#[derive(Debug)]
pub struct SelfIo(std::fs::File, Option<std::fs::File>);

impl SelfIo {
    /// Opens `/proc/self/io` (and `/proc/self/status`, for [`SelfIo::peak_rss_kib`]).
    pub fn open() -> io::Result<SelfIo> {
        Ok(SelfIo(
            std::fs::File::open("/proc/self/io")?,
            std::fs::File::open("/proc/self/status").ok(),
        ))
    }

    /// `rchar` and `wchar` now.
    pub fn read(&mut self) -> Option<(u64, u64)> {
        parse_io(&reread(&mut self.0)?)
    }

    /// This process's own peak resident set, KiB (`VmHWM`): the peak of its image since
    /// `exec`. `wait4`'s `ru_maxrss` also counts the parent's pages the child had before its
    /// `exec`, so a worker spawned by a supervisor that just compiled a large module would
    /// show the supervisor's size.
    pub fn peak_rss_kib(&mut self) -> Option<u64> {
        let text = reread(self.1.as_mut()?)?;
        text.lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    }
}

/// The whole of a `/proc` file, read again from its start.
fn reread(f: &mut std::fs::File) -> Option<String> {
    use std::io::{Read, Seek};
    f.rewind().ok()?;
    let mut text = String::new();
    f.read_to_string(&mut text).ok()?;
    Some(text)
}

fn parse_io(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("rchar:")?, field("wchar:")?))
}

/// Makes this process ignore SIGINT, SIGTERM and SIGHUP: a terminal's Ctrl-C or hang-up, and
/// `timeout`'s SIGTERM, reach the whole process group, and the supervisor handles them by
/// stopping its workers (which die with it in any case: `PR_SET_PDEATHSIG`).
pub fn ignore_interrupts() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: SIG_IGN installs no handler code, so no async-signal-safety question arises.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
}

/// Ends this process at once with `code` (`_exit`): no destructor, no `atexit` handler, no
/// thread is waited for. For a worker whose report is sent and whose teardown is stuck: what
/// is left (sessions, sockets, mappings) the kernel closes, and each peer sees its sockets
/// close.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` only ends the process; it touches no memory of ours and runs no code of
    // ours, so nothing can observe a broken invariant. Bytes written to sockets before it stay
    // readable by their peers.
    unsafe { libc::_exit(code) }
}

/// `sched_yield`.
pub fn yield_now() {
    std::thread::yield_now();
}

/// CPU time (user + system) this process used so far, all its threads.
pub fn process_cpu() -> std::time::Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return std::time::Duration::ZERO;
    };
    let tv = |t: nix::sys::time::TimeVal| {
        let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
        let micros = u64::try_from(t.tv_usec()).unwrap_or(0);
        std::time::Duration::from_secs(secs) + std::time::Duration::from_micros(micros)
    };
    tv(usage.user_time()) + tv(usage.system_time())
}
