//! The crate's only `unsafe` code: memfds, raw fds, `poll`, frame I/O straight from and into
//! guest memory, `wait4`, and the `pre_exec` hook that hands fds to a worker.
//!
//! Everything here sits behind small safe types; the rest of the crate is
//! `#![deny(unsafe_code)]`. Every `unsafe` block says why it holds.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine.
pub fn now_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// CLOCK_REALTIME in nanoseconds (WASI's realtime clock).
pub fn realtime_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .expect("CLOCK_REALTIME is always available on Linux");
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

/// Creates a sealed, read-only-content memfd holding `bytes`. Its name carries `name` (which
/// should carry the run id) so leftovers can be found in `/proc/*/fd`.
pub fn sealed_memfd(name: &str, bytes: &[u8]) -> io::Result<File> {
    use std::io::Write;
    let cname = CString::new(name).map_err(|_| io::Error::other("memfd name contains NUL"))?;
    // SAFETY: `cname` is a valid NUL-terminated string; memfd_create has no other
    // preconditions and returns a new fd or -1.
    let fd =
        unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS on an fd we own, with an integer argument.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// A pair of connected, non-blocking, close-on-exec Unix stream sockets.
pub fn stream_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )
    .map_err(io::Error::from)
}

/// A pair of connected, blocking, close-on-exec Unix stream sockets (the control channel).
pub fn blocking_stream_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// Asks for a socket send buffer of `bytes` (the kernel caps it at `wmem_max`).
pub fn set_send_buffer(fd: BorrowedFd<'_>, bytes: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    // Best effort: the kernel clamps the value, and a smaller buffer only means more wake-ups.
    let _ = setsockopt(&fd, sockopt::SndBuf, &bytes);
}

/// Duplicates `fd` to the lowest free number >= `min`, close-on-exec.
fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid borrowed fd returns a new fd that we own.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Prepares `cmd` so that the child gets exactly `fds` as fd 3, 4, 5, … (in order), with every
/// other fd closed by close-on-exec, and receives SIGKILL when the thread that spawns it ends
/// (`PR_SET_PDEATHSIG`). Returns the duplicates that must stay alive until the spawn.
pub fn pass_fds(cmd: &mut Command, fds: &[BorrowedFd<'_>]) -> io::Result<Vec<OwnedFd>> {
    let first_target = 3;
    let above = first_target + fds.len() as RawFd;
    // Move every source above the target range so that no dup2 overwrites a later source.
    let sources: Vec<OwnedFd> = fds
        .iter()
        .map(|fd| dup_at_least(*fd, above))
        .collect::<io::Result<_>>()?;
    let raw: Vec<RawFd> = sources.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it calls only dup2 and prctl, reads `raw` (allocated before the fork,
    // never freed in the child) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for (i, src) in raw.iter().enumerate() {
                // dup2 clears FD_CLOEXEC on the new descriptor.
                if libc::dup2(*src, first_target + i as RawFd) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(sources)
}

/// Takes ownership of an fd that the supervisor passed to this worker.
///
/// Checks that `fd` is open first, so a worker started by hand gets an error, not UB.
pub fn inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only queries the descriptor's flags.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("fd {fd} is not open: workers are started by the supervisor"),
        ));
    }
    // SAFETY: the supervisor passed this fd for this worker alone (see `pass_fds`) and it is
    // taken exactly once, by the worker's set-up.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // Keep our own children (none today) from inheriting it.
    // SAFETY: F_SETFD on an fd we own.
    unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(owned)
}

/// Puts an fd into non-blocking mode.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// An eventfd used as a level-triggered "stop" signal that `poll` can wait on.
#[derive(Debug)]
pub struct StopFd(OwnedFd);

impl StopFd {
    /// A new, unsignalled stop fd.
    pub fn new() -> io::Result<StopFd> {
        // SAFETY: eventfd has no pointer arguments; returns a new fd or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is fresh and owned by nobody else.
        Ok(StopFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the fd readable for good (the counter is never read back).
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
        unsafe {
            libc::write(
                self.0.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    /// The fd to include in `poll`.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// What `wait_ready` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// One of the fds is ready.
    Ready,
    /// The stop fd is readable.
    Stopped,
    /// The timeout passed.
    TimedOut,
}

/// Waits until one of `fds` is ready for `events` (POLLIN or POLLOUT), `stop` is signalled, or
/// `timeout` passes. Errors and hang-ups count as ready: the following read or write reports
/// them.
pub fn wait_ready(
    fds: &[BorrowedFd<'_>],
    write: bool,
    stop: &StopFd,
    timeout: Duration,
) -> io::Result<Readiness> {
    let events = if write { libc::POLLOUT } else { libc::POLLIN };
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        })
        .collect();
    pfds.push(libc::pollfd {
        fd: stop.fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    loop {
        // SAFETY: `pfds` is a live, correctly sized array of pollfd for the whole call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Ok(Readiness::TimedOut);
        }
        if pfds[fds.len()].revents != 0 {
            return Ok(Readiness::Stopped);
        }
        return Ok(Readiness::Ready);
    }
}

/// Bytes of payload that the copy primitives of [`Window`] moved between a guest window and
/// the kernel. Only this module can add to it, so a transport's count is exactly what its
/// copies moved: a backend that moves nothing reads 0 because nothing was added.
#[derive(Debug, Default)]
pub struct CopyMeter {
    bytes: u64,
}

impl CopyMeter {
    /// Payload bytes copied so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// A view of one port's window inside a guest's linear memory.
///
/// It borrows what it was made from (the store, or the memory's bytes) for `'a`, so it cannot
/// outlive the host call that made it: the guest cannot run while it is used, and the memory
/// (a fixed [`HostMemory`] reservation) cannot move or go away meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    base: *mut u8,
    len: usize,
    _memory: std::marker::PhantomData<&'a ()>,
}

impl<'a> Window<'a> {
    /// A view of `memory[off .. off + len]`; `None` when that lies outside the memory.
    pub fn of<S: wasmtime::AsContext>(
        memory: &wasmtime::Memory,
        store: &'a S,
        off: u32,
        len: u32,
    ) -> Option<Window<'a>> {
        let size = memory.data_size(store);
        let end = (off as usize).checked_add(len as usize)?;
        if end > size {
            return None;
        }
        // SAFETY: `off + len <= data_size`, so the offset stays inside the allocation that
        // `data_ptr` points to; the store stays borrowed for `'a`.
        let base = unsafe { memory.data_ptr(store).add(off as usize) };
        Some(Window {
            base,
            len: len as usize,
            _memory: std::marker::PhantomData,
        })
    }

    /// A view of `bytes[off .. off + len]` of a linear memory's bytes (from
    /// `Memory::data_and_store_mut`, which also lends the host state beside it); `None` when
    /// that lies outside. No byte is read or written through `bytes` itself: another process
    /// may write shared pages of it at any time, so only raw-pointer copies touch them.
    pub fn in_memory(bytes: &'a mut [u8], off: u32, len: u32) -> Option<Window<'a>> {
        let end = (off as usize).checked_add(len as usize)?;
        if end > bytes.len() {
            return None;
        }
        // SAFETY: `off + len <= bytes.len()`, so the offset stays inside the slice.
        let base = unsafe { bytes.as_mut_ptr().add(off as usize) };
        Some(Window {
            base,
            len: len as usize,
            _memory: std::marker::PhantomData,
        })
    }

    /// The part `[off, off + len)` of this window.
    pub fn sub(&self, off: usize, len: usize) -> Option<Window<'a>> {
        self.check(off, len).ok()?;
        Some(Window {
            // SAFETY: `off + len <= self.len` (checked above), so the offset stays inside.
            base: unsafe { self.base.add(off) },
            len,
            _memory: std::marker::PhantomData,
        })
    }

    /// An empty window (for frames without payload).
    pub fn empty() -> Window<'static> {
        Window {
            base: std::ptr::NonNull::dangling().as_ptr(),
            len: 0,
            _memory: std::marker::PhantomData,
        }
    }

    /// Copies `window[off .. off + len]` out (guest strings, WASI iovecs).
    pub fn read_vec(&self, off: usize, len: usize) -> Option<Vec<u8>> {
        self.check(off, len).ok()?;
        let mut v = vec![0u8; len];
        // SAFETY: the source range is inside the live window (checked above); `v` is a
        // distinct, freshly allocated buffer of `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off), v.as_mut_ptr(), len) };
        Some(v)
    }

    /// Copies `bytes` into the window at `off`; `false` when it does not fit.
    pub fn write(&self, off: usize, bytes: &[u8]) -> bool {
        if self.check(off, bytes.len()).is_err() {
            return false;
        }
        // SAFETY: the destination range is inside the live window (checked above), `bytes` is
        // a distinct Rust slice, and the guest is blocked in the host call that made `self`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(off), bytes.len()) };
        true
    }

    /// The window's address in this process.
    pub fn addr(&self) -> usize {
        self.base as usize
    }

    /// The window's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: usize, len: usize) -> io::Result<()> {
        match off.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range {off}+{len} outside the {}-byte window", self.len),
            )),
        }
    }

    /// Feeds `window[off .. off + len]` to `hasher`. The bytes are copied out in small chunks
    /// through raw pointers: a shared window may be written by another process meanwhile, so
    /// no Rust slice may cover it.
    pub fn hash(&self, hasher: &mut xxhash_rust::xxh3::Xxh3, off: usize, len: usize) {
        if self.check(off, len).is_err() {
            return;
        }
        let mut chunk = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            // SAFETY: `off + done + n <= off + len <= window length` (checked above), the
            // window is live for this host call, and `chunk` is a distinct local buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(self.base.add(off + done), chunk.as_mut_ptr(), n)
            };
            hasher.update(&chunk[..n]);
            done += n;
        }
    }

    /// Writes `head` and then `window[off .. off + len][done - head.len() ..]` to a
    /// non-blocking socket with one `writev`, starting `done` bytes into the frame. Returns the
    /// bytes written, or `WouldBlock`.
    pub fn writev_frame(
        &self,
        fd: BorrowedFd<'_>,
        meter: &mut CopyMeter,
        head: &[u8],
        off: usize,
        len: usize,
        done: usize,
    ) -> io::Result<usize> {
        self.check(off, len)?;
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 2];
        let mut n = 0;
        if done < head.len() {
            iov[n] = libc::iovec {
                iov_base: head[done..].as_ptr() as *mut libc::c_void,
                iov_len: head.len() - done,
            };
            n += 1;
        }
        let body_done = done.saturating_sub(head.len());
        if body_done < len {
            iov[n] = libc::iovec {
                // SAFETY: off + body_done < off + len <= window length (checked above).
                iov_base: unsafe { self.base.add(off + body_done) }.cast(),
                iov_len: len - body_done,
            };
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: each iovec points into live memory of the stated length: `head` is borrowed
        // for the call, the window range is checked above. `writev` (not `sendmsg`) so the
        // kernel's per-process I/O counters see the bytes; Rust ignores SIGPIPE, so a closed
        // peer is EPIPE.
        let r = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), n as libc::c_int) };
        let Ok(r) = usize::try_from(r) else {
            return Err(io::Error::last_os_error());
        };
        // What went beyond the header's remainder came out of the window.
        meter.bytes += (r.saturating_sub(head.len().saturating_sub(done))) as u64;
        Ok(r)
    }

    /// Reads at most `len` bytes from a non-blocking socket into `window[off ..]`. Returns the
    /// bytes read (0 at end of stream), or `WouldBlock`.
    pub fn recv_into(
        &self,
        fd: BorrowedFd<'_>,
        meter: &mut CopyMeter,
        off: usize,
        len: usize,
    ) -> io::Result<usize> {
        self.check(off, len)?;
        // SAFETY: the destination range is inside the window (checked above) and nothing else
        // reads or writes it during this call (the guest is blocked in the host call).
        // `read` (not `recv`) so the kernel's per-process I/O counters see the bytes.
        let r = unsafe { libc::read(fd.as_raw_fd(), self.base.add(off).cast(), len) };
        let Ok(r) = usize::try_from(r) else {
            return Err(io::Error::last_os_error());
        };
        meter.bytes += r as u64;
        Ok(r)
    }
}

/// Resource usage of a finished child, from `wait4`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChildUsage {
    /// Exit code, when the child exited.
    pub exit_code: Option<i32>,
    /// Signal number, when a signal killed the child.
    pub signal: Option<i32>,
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Peak resident set in KiB.
    pub max_rss_kib: u64,
    /// Voluntary context switches.
    pub voluntary_cs: u64,
    /// Involuntary context switches.
    pub involuntary_cs: u64,
}

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
        max_rss_kib: ru.ru_maxrss as u64,
        voluntary_cs: ru.ru_nvcsw as u64,
        involuntary_cs: ru.ru_nivcsw as u64,
    })
}

/// Loads the compiled module that the supervisor handed this worker as a sealed memfd (fd 4).
///
/// Call it only with that fd: the supervisor wrote it with `Module::serialize` (or copied it
/// from its private cache, see `deserialize_cached`) from an engine made by the same
/// `plugin::engine()` of this same binary, and sealed it before starting the worker.
pub fn load_handed_module(
    engine: &wasmtime::Engine,
    fd: OwnedFd,
) -> anyhow::Result<wasmtime::Module> {
    use std::os::unix::fs::MetadataExt;
    let file = File::from(fd);
    // SAFETY: F_GET_SEALS only queries the fd.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    let need = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    if seals < 0 || seals & need != need || file.metadata()?.size() == 0 {
        anyhow::bail!("fd 4 is not a sealed module memfd from the supervisor");
    }
    // SAFETY: the fd is a sealed memfd (checked above) that the supervisor filled with code
    // serialized by this binary with the same engine configuration (see above); its contents
    // cannot change any more, and wasmtime checks the header's version and configuration.
    Ok(unsafe { wasmtime::Module::deserialize_open_file(engine, file) }?)
}

/// Loads a module from the disk cache after checking that only this user can write it.
pub fn deserialize_cached(
    engine: &wasmtime::Engine,
    path: &std::path::Path,
) -> anyhow::Result<wasmtime::Module> {
    use std::os::unix::fs::MetadataExt;
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let dir_meta = std::fs::metadata(path.parent().unwrap_or(path))?;
    let uid = nix::unistd::getuid().as_raw();
    if meta.uid() != uid
        || meta.mode() & 0o022 != 0
        || dir_meta.uid() != uid
        || dir_meta.mode() & 0o077 != 0
    {
        anyhow::bail!(
            "refusing cached module {}: it or its folder is writable by others",
            path.display()
        );
    }
    // SAFETY: the cache folder is private to this user (checked above), its files are written
    // only by `Module::serialize` of this binary and renamed into place atomically, and the
    // file name contains the engine's compatibility hash, so a file from another wasmtime or
    // configuration is never looked up; wasmtime also checks its header on load.
    Ok(unsafe { wasmtime::Module::deserialize_open_file(engine, file) }?)
}

/// This process's parent pid.
pub fn parent_pid() -> i32 {
    nix::unistd::getppid().as_raw()
}

/// Reads `rchar` and `wchar` (bytes passed to read/write-family syscalls) from
/// `/proc/self/io`.
pub fn self_io() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((field("rchar:")?, field("wchar:")?))
}

/// Makes this process ignore SIGINT: the supervisor handles Ctrl-C and stops its workers.
pub fn ignore_sigint() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_IGN installs no handler code, so no async-signal-safety question arises.
    let _ = unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) };
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
        // SAFETY: the syscall returned a fresh fd owned by nobody else.
        Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
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

// ---------------------------------------------------------------------------------------------
// Host-owned linear memory and shared regions (the `shm` backend).
// ---------------------------------------------------------------------------------------------

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// Reservations of every live [`HostMemory`] in this process: (base, reserved bytes).
static RESERVATIONS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// A linear memory that the host owns: one fixed reservation that never moves, made of
/// `PROT_NONE` pages, whose accessible prefix grows by changing protection only on the new
/// pages. It honours the reservation and guard sizes wasmtime asks for (compiled code omits
/// bounds checks on that promise), so that the host can map shared pages over a window inside
/// it.
#[derive(Debug)]
pub struct HostMemory {
    base: usize,
    size: usize,
    reserved: usize,
    guard: usize,
    maximum: Option<usize>,
}

fn page_round(n: usize) -> usize {
    n.div_ceil(65536) * 65536
}

impl HostMemory {
    fn new(
        minimum: usize,
        maximum: Option<usize>,
        reserved: Option<usize>,
        guard: usize,
    ) -> Result<HostMemory, String> {
        // Without a reservation size from wasmtime, reserve the whole 32-bit space so that the
        // memory never has to move.
        let reserved = page_round(reserved.unwrap_or(4 << 30).max(minimum));
        let total = reserved
            .checked_add(guard)
            .ok_or("reservation size overflows")?;
        // SAFETY: a fresh anonymous PROT_NONE mapping at an address the kernel picks; it
        // touches no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "reserving {total} bytes for a linear memory: {}",
                io::Error::last_os_error()
            ));
        }
        let mut mem = HostMemory {
            base: base as usize,
            size: 0,
            reserved,
            guard,
            maximum,
        };
        mem.protect_to(minimum).map_err(|e| e.to_string())?;
        RESERVATIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((mem.base, mem.reserved + mem.guard));
        Ok(mem)
    }

    /// Makes `[size, new_size)` readable and writable; never touches pages below `size`.
    fn protect_to(&mut self, new_size: usize) -> io::Result<()> {
        if new_size > self.reserved || self.maximum.is_some_and(|m| new_size > m) {
            return Err(io::Error::other(format!(
                "cannot grow a linear memory to {new_size} bytes (reserved {}, maximum {:?})",
                self.reserved, self.maximum
            )));
        }
        if new_size > self.size {
            // SAFETY: `[base + size, base + new_size)` lies inside our own reservation
            // (new_size <= reserved) and is still PROT_NONE, so no live Rust reference or guest
            // window points into it.
            let r = unsafe {
                libc::mprotect(
                    (self.base + self.size) as *mut libc::c_void,
                    new_size - self.size,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            self.size = new_size;
        }
        Ok(())
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        let mut list = RESERVATIONS.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|&(b, _)| b != self.base);
        // SAFETY: unmaps exactly the reservation made in `new` (including any shared mappings
        // placed over windows inside it); wasmtime drops the memory only after the instance's
        // code can no longer run.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.reserved + self.guard) };
    }
}

// SAFETY: `HostMemory` honours wasmtime's contract: the base never moves, `byte_capacity` is the
// true reservation, growth only adds accessible pages after `byte_size`, the guard region after
// the reservation stays PROT_NONE. The one deliberate outside change — shared pages mapped over
// a window by the `shm` backend (`map_over_window`) — keeps every byte of the window mapped and
// accessible to the guest (read-only for consumers, which turns a guest store into a trap).
unsafe impl wasmtime::LinearMemory for HostMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.reserved
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        self.protect_to(new_size)?;
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base as *mut u8
    }
}

/// Creates [`HostMemory`] for every linear memory of the engine that uses it.
#[derive(Debug)]
pub struct HostMemoryCreator;

// SAFETY: every memory it returns is a fresh, zero-filled `HostMemory` that honours the
// requested reservation and guard sizes (see `HostMemory`).
unsafe impl wasmtime::MemoryCreator for HostMemoryCreator {
    fn new_memory(
        &self,
        _ty: wasmtime::MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn wasmtime::LinearMemory>, String> {
        Ok(Box::new(HostMemory::new(
            minimum,
            maximum,
            reserved_size_in_bytes,
            guard_size_in_bytes,
        )?))
    }
}

/// Whether `[addr, addr + len)` lies inside one live [`HostMemory`] reservation.
fn inside_host_memory(addr: usize, len: usize) -> bool {
    RESERVATIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|&(b, n)| addr >= b && addr.checked_add(len).is_some_and(|end| end <= b + n))
}

/// Creates a memfd of `len` bytes (zero-filled, allocated now so that no later access faults
/// for lack of memory), sealed against resizing.
pub fn sized_memfd(name: &str, len: usize) -> io::Result<File> {
    let cname = CString::new(name).map_err(|_| io::Error::other("memfd name contains NUL"))?;
    // SAFETY: valid NUL-terminated name; returns a new fd or -1.
    let fd =
        unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(len as u64)?;
    // SAFETY: fallocate on an fd we own, within the file's size.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS on an fd we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Opens the same memfd again, read-only (through `/proc/self/fd`): a mapping made from the
/// new descriptor can never be made writable.
pub fn reopen_read_only(file: &File) -> io::Result<File> {
    File::open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// Checks that `fd` is a memfd sealed against shrinking and growing, of exactly `len` bytes.
fn check_sealed(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: F_GET_SEALS only queries the fd.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let need = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    if seals < 0 || seals & need != need {
        return Err(io::Error::other("shared region is not a sealed memfd"));
    }
    let size = File::from(fd.try_clone_to_owned()?).metadata()?.size();
    if size != len as u64 {
        return Err(io::Error::other(format!(
            "shared region has {size} bytes, expected {len}"
        )));
    }
    Ok(())
}

/// A shared control block mapped read-write into the host only (never into a guest). Gives out
/// atomics at checked offsets; everything read from it is untrusted by its users.
#[derive(Debug)]
pub struct ControlMap {
    base: usize,
    len: usize,
}

// SAFETY: the mapping is only accessed through atomics, which are safe to share between
// threads (and processes).
unsafe impl Send for ControlMap {}
// SAFETY: as above.
unsafe impl Sync for ControlMap {}

impl ControlMap {
    /// Maps a sealed control memfd of `len` bytes.
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<ControlMap> {
        check_sealed(fd, len)?;
        // SAFETY: a new shared mapping of a sealed memfd whose size was checked above, at an
        // address the kernel picks; the file cannot shrink, so no access can raise SIGBUS.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(ControlMap {
            base: base as usize,
            len,
        })
    }

    /// The 32-bit atomic at byte offset `off` (4-aligned, in bounds, else panics: offsets are
    /// computed by the host's own layout code, never read from shared memory).
    pub fn u32(&self, off: usize) -> &AtomicU32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.len,
            "control offset {off} out of range"
        );
        // SAFETY: aligned and inside the live mapping (checked above); the mapping lives as
        // long as `self`; shared memory is only ever accessed through atomics.
        unsafe { &*((self.base + off) as *const AtomicU32) }
    }

    /// The 64-bit atomic at byte offset `off` (8-aligned, in bounds, else panics).
    pub fn u64(&self, off: usize) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off + 8 <= self.len,
            "control offset {off} out of range"
        );
        // SAFETY: as for `u32`.
        unsafe { &*((self.base + off) as *const AtomicU64) }
    }
}

impl Drop for ControlMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly our own mapping; every reference handed out borrows `self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

/// Maps the sealed slot-area memfd `fd` (`len` bytes) over `window` of a guest's linear
/// memory, `MAP_SHARED|MAP_FIXED`, writable or read-only. The window must lie inside a live
/// [`HostMemory`] (checked); the mapping then lives as long as that memory's reservation.
pub fn map_over_window(
    fd: BorrowedFd<'_>,
    len: usize,
    window: Window<'_>,
    writable: bool,
) -> io::Result<()> {
    check_sealed(fd, len)?;
    let addr = window.base as usize;
    if len > window.len || !addr.is_multiple_of(4096) {
        return Err(io::Error::other(format!(
            "a {len}-byte region does not fit the {}-byte window at {addr:#x}",
            window.len
        )));
    }
    if !inside_host_memory(addr, len) {
        return Err(io::Error::other(
            "the window is not inside a host-owned linear memory",
        ));
    }
    let prot = if writable {
        libc::PROT_READ | libc::PROT_WRITE
    } else {
        libc::PROT_READ
    };
    // SAFETY: MAP_FIXED replaces pages inside a window of a HostMemory reservation that this
    // process owns (checked above); the guest's allocator handed the window out for this port
    // and never reuses it, no Rust reference points into it, and the pages stay mapped (now
    // shared) until the reservation is unmapped as a whole. The file is sealed against
    // shrinking and has exactly `len` bytes, so no access can raise SIGBUS.
    let r = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            prot,
            libc::MAP_SHARED | libc::MAP_FIXED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if r == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How a [`futex_wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutexWait {
    /// A `FUTEX_WAKE` ended the sleep.
    Woken,
    /// The word no longer held the expected value: no sleep.
    Changed,
    /// The timeout passed.
    TimedOut,
    /// A signal interrupted the sleep.
    Interrupted,
}

/// Sleeps while `word` holds `expected`, at most `timeout` (a shared futex: the word may be in
/// memory shared with other processes). Says how the wait ended.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> FutexWait {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned 32-bit atomic; `ts` lives for the call. FUTEX_WAIT
    // without FUTEX_PRIVATE_FLAG works across processes sharing the page.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0,
        )
    };
    if r == 0 {
        return FutexWait::Woken;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => FutexWait::Changed,
        Some(libc::ETIMEDOUT) => FutexWait::TimedOut,
        _ => FutexWait::Interrupted,
    }
}

/// Wakes every waiter on `word` (shared futex).
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned 32-bit atomic; FUTEX_WAKE only reads its address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0,
        )
    };
}

/// `sched_yield`.
pub fn yield_now() {
    std::thread::yield_now();
}
