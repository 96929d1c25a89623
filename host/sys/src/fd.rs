//! Handing fds to a worker (`pass_fds`, [`Handover`]) and socket set-up.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

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

/// An anonymous pipe, non-blocking and close-on-exec: (read end, write end).
pub fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::fcntl::OFlag;
    nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(io::Error::from)
}

/// Sets a pipe's buffer to at least `bytes` (`F_SETPIPE_SZ`; the kernel rounds up to a power
/// of two pages) and returns what it granted.
pub fn set_pipe_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    use nix::fcntl::{FcntlArg, fcntl};
    let bytes = libc::c_int::try_from(bytes).map_err(|_| io::Error::other("pipe size"))?;
    let granted = fcntl(fd, FcntlArg::F_SETPIPE_SZ(bytes))?;
    usize::try_from(granted).map_err(|_| io::Error::other("pipe size"))
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

/// Asks for a socket receive buffer of `bytes` (the kernel doubles it, capped at twice
/// `net.core.rmem_max`); returns what it granted.
pub fn set_recv_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    setsockopt(&fd, sockopt::RcvBuf, &bytes)?;
    Ok(getsockopt(&fd, sockopt::RcvBuf)?)
}

/// Puts an fd into non-blocking mode.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
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
    let count = RawFd::try_from(fds.len()).map_err(|_| io::Error::other("too many fds"))?;
    let above = first_target + count;
    // Move every source above the target range so that no dup2 overwrites a later source.
    let sources: Vec<OwnedFd> = fds
        .iter()
        .map(|fd| dup_at_least(*fd, above))
        .collect::<io::Result<_>>()?;
    // (source, target) pairs; `targets` counts up from 3 and stops below `above`.
    let pairs: Vec<(RawFd, RawFd)> = sources
        .iter()
        .map(|f| f.as_raw_fd())
        .zip(first_target..above)
        .collect();
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // calls are allowed: it calls only dup2 and prctl, reads `pairs` (allocated before the
    // fork, never freed in the child) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for &(src, target) in &pairs {
                // dup2 clears FD_CLOEXEC on the new descriptor.
                if libc::dup2(src, target) < 0 {
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

/// The fds the supervisor handed this process across `exec` (`pass_fds` puts them at 3, 4,
/// 5, …): each can be claimed once, by the one `Handover` of the process.
///
/// A handed-over fd is recognised by its cleared `FD_CLOEXEC` flag: every descriptor this
/// binary opens itself is close-on-exec (std opens everything with `O_CLOEXEC`/`SOCK_CLOEXEC`,
/// and so does this crate), and `pass_fds`'s `dup2` clears the flag only on the fds it hands
/// over. Claiming an fd sets the flag again, so no fd is claimed twice.
#[derive(Debug)]
pub struct Handover {
    _private: (),
}

static CLAIMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Handover {
    /// The handover of this process; an error after the first call.
    pub fn claim() -> io::Result<Handover> {
        if CLAIMED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::other("the handed-over fds were claimed already"));
        }
        Ok(Handover { _private: () })
    }

    /// Takes ownership of fd `fd`, which the supervisor handed over.
    pub fn take(&mut self, fd: RawFd) -> io::Result<OwnedFd> {
        // SAFETY: F_GETFD only queries the descriptor's flags.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags < 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("fd {fd} is not open: workers are started by the supervisor"),
            ));
        }
        if flags & libc::FD_CLOEXEC != 0 {
            return Err(io::Error::other(format!(
                "fd {fd} was not handed over by the supervisor, or was taken already"
            )));
        }
        // SAFETY: the fd is open and not close-on-exec, so it crossed `exec` into this process
        // and no object of this process owns it (see the type's documentation); this is the
        // only `Handover`, and the flag set below keeps the fd from being claimed again.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: F_SETFD on an fd we now own.
        if unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(owned)
    }
}
