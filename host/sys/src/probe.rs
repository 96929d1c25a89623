//! Probes for the worker's lock-down: each tries one call the seccomp filter must refuse, with
//! arguments that make it harmless when it is *not* refused (so the probe can run either way):
//! `openat` of a file read-only, `socket` for a UDP socket (closed at once), `execve` of a
//! path that does not exist, and the `clone` that `fork` makes, with flags the kernel rejects.

use std::ffi::CString;
use std::io;

/// What one probe saw.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The system call tried.
    pub call: &'static str,
    /// Its errno; 0 when it succeeded.
    pub errno: i32,
}

impl Probe {
    /// Whether the call was refused with EPERM, the filter's answer.
    pub fn refused(&self) -> bool {
        self.errno == libc::EPERM
    }
}

fn errno_of(r: libc::c_long) -> i32 {
    if r < 0 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    }
}

/// Tries every forbidden call once.
pub fn forbidden_calls() -> Vec<Probe> {
    let path = CString::new("/proc/self/status").expect("no NUL");
    // SAFETY: a valid NUL-terminated path, read-only flags; a returned fd is closed below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    let open = Probe {
        call: "openat",
        errno: errno_of(fd),
    };
    if let Ok(fd) = i32::try_from(fd)
        && fd >= 0
    {
        // SAFETY: `fd` was just opened by this function and is closed once.
        unsafe { libc::close(fd) };
    }
    // SAFETY: socket takes three integers; a returned fd is closed below.
    let s = unsafe {
        libc::syscall(
            libc::SYS_socket,
            libc::AF_INET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
        )
    };
    let socket = Probe {
        call: "socket",
        errno: errno_of(s),
    };
    if let Ok(s) = i32::try_from(s)
        && s >= 0
    {
        // SAFETY: `s` was just opened by this function and is closed once.
        unsafe { libc::close(s) };
    }
    let missing = CString::new("/nonexistent/wasm-ipc-probe").expect("no NUL");
    let argv = [missing.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: a valid path and NULL-terminated argv and envp arrays that live for the call;
    // the path does not exist, so an allowed execve returns ENOENT and replaces nothing.
    let e = unsafe {
        libc::syscall(
            libc::SYS_execve,
            missing.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    let exec = Probe {
        call: "execve",
        errno: errno_of(e),
    };
    // SAFETY: CLONE_SIGHAND without CLONE_VM is invalid, so an allowed clone returns EINVAL
    // and creates no process; no other argument is read.
    let c = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_SIGHAND | libc::SIGCHLD,
            0,
            0,
            0,
            0,
        )
    };
    let fork = Probe {
        call: "fork (clone)",
        errno: errno_of(c),
    };
    vec![open, socket, exec, fork]
}
