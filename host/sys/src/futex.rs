//! Shared futexes (not `FUTEX_PRIVATE_FLAG`: the words live in memory shared between
//! processes).

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

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
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
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
