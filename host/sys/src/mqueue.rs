//! POSIX message queues: a queue made, opened at both ends and unlinked at once.

use std::ffi::CString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Creates the message queue `name` (`/…`, new: `O_EXCL`) holding at most `maxmsg` messages
/// of at most `msgsize` bytes, opens it once for writing and once for reading (both
/// non-blocking, close-on-exec: on Linux a queue descriptor is a file descriptor), and
/// unlinks the name before it returns: the queue lives exactly as long as one of the two
/// descriptors, so a killed run leaves nothing in `/dev/mqueue`. Returns (write end, read end).
pub fn mq_link(name: &str, maxmsg: i64, msgsize: i64) -> io::Result<(OwnedFd, OwnedFd)> {
    let cname = CString::new(name).map_err(|_| io::Error::other("a queue name with a NUL"))?;
    // SAFETY: `mq_attr` is a plain C struct of integers (and padding): all zeroes is valid.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = maxmsg;
    attr.mq_msgsize = msgsize;
    let open = |flags: libc::c_int, attr: Option<&libc::mq_attr>| -> io::Result<OwnedFd> {
        let mode: libc::mode_t = 0o600;
        let attr_ptr = attr.map_or(std::ptr::null(), |a| a as *const libc::mq_attr);
        // SAFETY: `cname` is a live NUL-terminated string; with O_CREAT the two variadic
        // arguments are the mode and a pointer to a live `mq_attr` (or null), as mq_open(3)
        // reads them; without O_CREAT they are ignored.
        let fd = unsafe {
            libc::mq_open(
                cname.as_ptr(),
                flags | libc::O_NONBLOCK | libc::O_CLOEXEC,
                mode,
                attr_ptr,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on Linux an `mqd_t` is a fresh file descriptor that nobody else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    };
    let write = open(libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY, Some(&attr))?;
    let read = open(libc::O_RDONLY, None);
    // SAFETY: `cname` is a live NUL-terminated string. The name goes whatever happened: the
    // descriptors keep the queue alive.
    let unlinked = unsafe { libc::mq_unlink(cname.as_ptr()) };
    let read = read?;
    if unlinked != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((write, read))
}

/// This process's `RLIMIT_MSGQUEUE` soft limit: the bytes its user's message queues may take
/// (`None`: unlimited).
pub fn msgqueue_rlimit() -> Option<u64> {
    let (soft, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MSGQUEUE).ok()?;
    (soft != libc::RLIM_INFINITY).then_some(soft)
}
