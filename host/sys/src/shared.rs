//! Shared regions: control blocks mapped into the host only, and slot areas mapped over guest
//! windows.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::Window;
use crate::memfd::check_sealed;
use crate::memory::inside_host_memory;

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
    let addr = window.addr();
    if len > window.len() || !addr.is_multiple_of(4096) {
        return Err(io::Error::other(format!(
            "a {len}-byte region does not fit the {}-byte window at {addr:#x}",
            window.len()
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
