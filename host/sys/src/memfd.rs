//! memfds: sealed module images and shared regions, and the checks made before mapping one.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};

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
    let size = libc::off_t::try_from(len).map_err(|_| io::Error::other("memfd too large"))?;
    // SAFETY: fallocate on an fd we own, within the file's size.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, size) } != 0 {
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
pub(crate) fn check_sealed(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
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
