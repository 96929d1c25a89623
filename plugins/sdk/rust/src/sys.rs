//! The complete list of host functions a plugin may call, and the guest's exports besides `run`.
//!
//! This is the only place that names the ABI (`wit/wasm-ipc.wit`, version 0.2.0): the raw
//! imports from the module [`MODULE`], the `cabi_realloc` export the host calls to obtain each
//! port's window, and the registry of those windows that the safe API checks every pointer from
//! the host against. Everything else in the crate is built on these functions.
//!
//! Off wasm (unit tests on the build machine) the imports are stubs that panic, so the pure
//! parts of the SDK can be tested natively.

use std::alloc::{self, Layout};
use std::ptr;
use std::sync::{Mutex, PoisonError};

/// The import module of every host function (ABI version 0.2.0; its 0.1.0 functions are
/// unchanged, so a plugin that uses only those runs as before).
pub const MODULE: &str = "wasm-ipc:plugin/host@0.2.0";

#[cfg(target_family = "wasm")]
#[link(wasm_import_module = "wasm-ipc:plugin/host@0.2.0")]
unsafe extern "C" {
    /// `port(name: string) -> s32`: the handle of this plugin's port `name`, or unknown-port.
    ///
    /// # Safety
    /// `name` must point to `len` bytes of UTF-8 inside linear memory; otherwise the host traps.
    pub fn port(name: *const u8, len: usize) -> i32;

    /// `loan(port, len) -> s32`: pointer to `len` writable bytes in the output port's window.
    /// Blocks while the channel is full; negative: closed, peer-failed, too-large.
    ///
    /// # Safety
    /// `port` must be an output handle from [`port`] (else the host traps), and nothing may
    /// still refer to a previous loan of that port: the new loan may reuse its bytes.
    pub fn loan(port: i32, len: u32) -> i32;

    /// `publish(port, len) -> s32`: sends the first `len` bytes of the current loan.
    ///
    /// # Safety
    /// `port` must have a current loan at least `len` bytes long (else the host traps), and
    /// nothing may write to that loan afterwards: consumers read it.
    pub fn publish(port: i32, len: u32) -> i32;

    /// `receive(port) -> s64`: blocks until a message arrives; `ptr << 32 | len` of it in the
    /// port's window, or negative (closed, peer-failed).
    ///
    /// # Safety
    /// `port` must be an input handle from [`port`] with no message outstanding (else the host
    /// traps); the host maps the message into the window, so nothing may refer to it.
    pub fn receive(port: i32) -> i64;

    /// `release(port) -> s32`: done with the message `receive` returned.
    ///
    /// # Safety
    /// `port` must have a received message (else the host traps), and nothing may read that
    /// message afterwards: its bytes may be overwritten.
    pub fn release(port: i32) -> i32;

    /// `config(key: string, out, cap) -> s32`: copies the config value of `key` (at most `cap`
    /// bytes) to `out`; returns the value's full length, or not-found.
    ///
    /// # Safety
    /// `key` must point to `key_len` bytes of UTF-8 and `out` to `cap` writable bytes, both
    /// inside linear memory, with no reference to those `cap` bytes alive.
    pub fn config(key: *const u8, key_len: usize, out: *mut u8, cap: u32) -> i32;

    /// `report(key: string, value: s64)`: a figure for the run's report.
    ///
    /// # Safety
    /// `key` must point to `key_len` bytes of UTF-8 inside linear memory.
    pub fn report(key: *const u8, key_len: usize, value: i64);

    /// `log(level: u32, msg: string)`: a log line (0 error, 1 warn, 2 info, 3 debug, 4 trace).
    ///
    /// # Safety
    /// `msg` must point to `msg_len` bytes of UTF-8 inside linear memory.
    pub fn log(level: u32, msg: *const u8, msg_len: usize);

    /// `now() -> u64`: CLOCK_MONOTONIC in nanoseconds, the same clock in every process.
    pub safe fn now() -> u64;

    /// `client(port) -> s32`: on a server port, the client whose request `receive` returned
    /// last.
    ///
    /// # Safety
    /// `port` must be a server handle on which a request was received (else the host traps).
    pub fn client(port: i32) -> i32;

    /// `reply-loan(port, client, len) -> s32`: pointer to `len` writable bytes for the answer
    /// to `client`'s outstanding call; negative: closed (that client is gone), too-large.
    ///
    /// # Safety
    /// `port` must be a server handle and `client` have an outstanding call (else the host
    /// traps); nothing may still refer to a previous reply loan of that port.
    #[link_name = "reply-loan"]
    pub fn reply_loan(port: i32, client: i32, len: u32) -> i32;

    /// `reply(port, len) -> s32`: sends the first `len` bytes of the reply loan.
    ///
    /// # Safety
    /// `port` must have a reply loan at least `len` bytes long (else the host traps), and
    /// nothing may write to it afterwards.
    pub fn reply(port: i32, len: u32) -> i32;

    /// `call(port, len) -> s64`: sends the first `len` bytes of the loan as a request and
    /// blocks for the answer: `ptr << 32 | len` of it, or negative (closed, peer-failed).
    ///
    /// # Safety
    /// `port` must be a client handle with a current loan at least `len` bytes long and no
    /// answer held (else the host traps); nothing may write to the loan afterwards, nor refer
    /// to the previous answer (the host writes the new one over the window).
    pub fn call(port: i32, len: u32) -> i64;
}

#[cfg(not(target_family = "wasm"))]
pub use native::*;

/// Native stand-ins with the same signatures and contracts as the wasm imports: the host
/// functions exist only inside the wasm-ipc host, so each one panics.
#[cfg(not(target_family = "wasm"))]
#[allow(missing_docs, clippy::missing_safety_doc)]
mod native {
    fn unavailable(name: &str) -> ! {
        panic!("the wasm-ipc host function `{name}` exists only inside the wasm-ipc host")
    }

    pub unsafe fn port(_name: *const u8, _len: usize) -> i32 {
        unavailable("port")
    }
    pub unsafe fn loan(_port: i32, _len: u32) -> i32 {
        unavailable("loan")
    }
    pub unsafe fn publish(_port: i32, _len: u32) -> i32 {
        unavailable("publish")
    }
    pub unsafe fn receive(_port: i32) -> i64 {
        unavailable("receive")
    }
    pub unsafe fn release(_port: i32) -> i32 {
        unavailable("release")
    }
    pub unsafe fn config(_key: *const u8, _key_len: usize, _out: *mut u8, _cap: u32) -> i32 {
        unavailable("config")
    }
    pub unsafe fn report(_key: *const u8, _key_len: usize, _value: i64) {
        unavailable("report")
    }
    pub unsafe fn log(_level: u32, _msg: *const u8, _msg_len: usize) {
        unavailable("log")
    }
    pub fn now() -> u64 {
        unavailable("now")
    }
    pub unsafe fn client(_port: i32) -> i32 {
        unavailable("client")
    }
    pub unsafe fn reply_loan(_port: i32, _client: i32, _len: u32) -> i32 {
        unavailable("reply-loan")
    }
    pub unsafe fn reply(_port: i32, _len: u32) -> i32 {
        unavailable("reply")
    }
    pub unsafe fn call(_port: i32, _len: u32) -> i64 {
        unavailable("call")
    }
}

/// A block `cabi_realloc` handed out and has not freed: the host places windows only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: usize,
    len: usize,
}

/// Every live block `cabi_realloc` returned. The host calls it once per port, so this stays
/// a handful of entries.
static WINDOWS: Mutex<Vec<Window>> = Mutex::new(Vec::new());

fn windows() -> std::sync::MutexGuard<'static, Vec<Window>> {
    WINDOWS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn forget_window(start: usize) {
    windows().retain(|w| w.start != start);
}

/// Whether `start..start + len` lies inside one block that `cabi_realloc` handed out and that
/// is still live, that is inside a window: the only memory the host may hand back to us.
pub(crate) fn in_window(start: usize, len: usize) -> bool {
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    windows()
        .iter()
        .any(|w| start >= w.start && end <= w.start + w.len)
}

/// The guest's allocator export, with realloc semantics: allocates (zeroed) when `old_ptr` is
/// null, reallocates otherwise (new bytes zeroed), frees when `new_len` is 0. Returns null when
/// the layout is invalid or memory runs out; the host checks the alignment of what it gets.
///
/// The host calls it as `cabi_realloc(0, 0, 65536, window_len)` once per port, after
/// `_initialize`, and never frees the result: that block is the port's window. Memory comes
/// from the global allocator, so no Rust object ever overlaps a window. Fresh memory is zeroed
/// so that the bytes the safe API later exposes are initialised even where the host has not
/// written.
///
/// # Safety
/// `old_ptr` must be null, or a pointer this function returned for a block of `old_len` bytes
/// aligned to `align` that has not been freed since.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    let Ok(new_layout) = Layout::from_size_align(new_len, align) else {
        return ptr::null_mut();
    };
    // A zero-sized block is a dangling, aligned pointer: nothing was allocated for it.
    let old_allocated = !old_ptr.is_null() && old_len != 0;
    if !old_allocated {
        if new_len == 0 {
            return ptr::without_provenance_mut(align);
        }
        // SAFETY: `new_layout` is valid (checked above) and has a non-zero size.
        let new_ptr = unsafe { alloc::alloc_zeroed(new_layout) };
        remember(new_ptr, new_len);
        return new_ptr;
    }
    let Ok(old_layout) = Layout::from_size_align(old_len, align) else {
        return ptr::null_mut();
    };
    if new_len == 0 {
        forget_window(old_ptr.addr());
        // SAFETY: per this function's contract `old_ptr` is a live block allocated with
        // `old_layout` (same size and alignment) by the global allocator.
        unsafe { alloc::dealloc(old_ptr, old_layout) };
        return ptr::without_provenance_mut(align);
    }
    // SAFETY: `old_ptr` is a live block of `old_layout` (this function's contract); `new_len`
    // is non-zero and, rounded up to `align`, fits `isize` because `new_layout` is valid.
    let new_ptr = unsafe { alloc::realloc(old_ptr, old_layout, new_len) };
    if new_ptr.is_null() {
        // The old block is untouched and stays registered.
        return new_ptr;
    }
    if new_len > old_len {
        // SAFETY: `new_ptr` points to `new_len` bytes we own, so the `new_len - old_len` bytes
        // after the first `old_len` are in bounds and writable.
        unsafe { new_ptr.add(old_len).write_bytes(0, new_len - old_len) };
    }
    forget_window(old_ptr.addr());
    remember(new_ptr, new_len);
    new_ptr
}

/// Registers a block the host now knows about as a window. Exposes its provenance: the host
/// hands back plain addresses inside it, which the safe API turns into pointers again with
/// `ptr::with_exposed_provenance_mut`.
fn remember(block: *mut u8, len: usize) {
    if !block.is_null() {
        let start = block.expose_provenance();
        windows().push(Window { start, len });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cabi_realloc_hands_out_aligned_zeroed_windows() {
        // SAFETY: a fresh allocation (null old pointer).
        let p = unsafe { cabi_realloc(ptr::null_mut(), 0, 65536, 3 * 65536) };
        assert!(!p.is_null());
        assert_eq!(p.addr() % 65536, 0);
        assert!(in_window(p.addr(), 3 * 65536));
        assert!(in_window(p.addr() + 10, 100));
        assert!(!in_window(p.addr() + 1, 3 * 65536));
        // SAFETY: `p` points to 3 * 65536 bytes we own, zeroed by `cabi_realloc`.
        let bytes = unsafe { std::slice::from_raw_parts(p, 3 * 65536) };
        assert!(bytes.iter().all(|&b| b == 0));

        // SAFETY: `p` is a live block of 3 * 65536 bytes aligned to 65536.
        let q = unsafe { cabi_realloc(p, 3 * 65536, 65536, 4 * 65536) };
        assert!(!q.is_null());
        assert_eq!(q.addr() % 65536, 0);
        assert!(in_window(q.addr(), 4 * 65536));
        // SAFETY: `q` points to 4 * 65536 bytes we own, all zero (old bytes and new tail).
        let bytes = unsafe { std::slice::from_raw_parts(q, 4 * 65536) };
        assert!(bytes.iter().all(|&b| b == 0));

        // SAFETY: `q` is a live block of 4 * 65536 bytes aligned to 65536.
        let r = unsafe { cabi_realloc(q, 4 * 65536, 65536, 0) };
        assert_eq!(r.addr(), 65536);
        assert!(!in_window(q.addr(), 1));
    }

    #[test]
    fn cabi_realloc_rejects_bad_alignment() {
        // SAFETY: a fresh allocation (null old pointer); 3 is not a power of two.
        let p = unsafe { cabi_realloc(ptr::null_mut(), 0, 3, 64) };
        assert!(p.is_null());
    }
}
