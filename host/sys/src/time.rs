//! Clocks.

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine.
pub fn now_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    ns(&ts)
}

/// CLOCK_MONOTONIC_COARSE in nanoseconds: the same clock as [`now_ns`] at the kernel's tick
/// (1–4 ms), for a few nanoseconds a read; for timing every port call, where a stall of
/// milliseconds or seconds must show and a microsecond need not.
pub fn coarse_now_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE)
        .expect("CLOCK_MONOTONIC_COARSE is always available on Linux");
    ns(&ts)
}

/// CLOCK_REALTIME in nanoseconds (WASI's realtime clock).
pub fn realtime_ns() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)
        .expect("CLOCK_REALTIME is always available on Linux");
    ns(&ts)
}

/// A timespec as nanoseconds; the clocks used here are never negative.
fn ns(ts: &nix::sys::time::TimeSpec) -> u64 {
    let secs = u64::try_from(ts.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec()).unwrap_or(0);
    secs * 1_000_000_000 + nanos
}
