//! The stop eventfd and waiting for sockets to become ready.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

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
    let each: Vec<(BorrowedFd<'_>, bool)> = fds.iter().map(|&fd| (fd, write)).collect();
    wait_each(&each, stop, timeout)
}

/// As [`wait_ready`], each fd with its own direction (`true`: writable).
pub fn wait_each(
    fds: &[(BorrowedFd<'_>, bool)],
    stop: &StopFd,
    timeout: Duration,
) -> io::Result<Readiness> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, write)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: if write { libc::POLLOUT } else { libc::POLLIN },
            revents: 0,
        })
        .collect();
    pfds.push(libc::pollfd {
        fd: stop.fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
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
