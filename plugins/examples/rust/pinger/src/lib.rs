//! Run: `wasm-ipc compare scenarios/ping-pong.toml` (build: `plugins/build.sh -p pinger`).
//!
//! Ping-pong, the classic way to compare IPC latency: publishes message i on "out", waits for
//! its echo on "in" (a relay sends it back), checks it, and only then sends message i + 1. So
//! every hop crosses an idle channel and the host's latency figures (publish → receive, one
//! way) measure the hand-off itself, not time spent queued. Config: `count` (10000), `size`
//! (64), `seed` (0). Reports `sent`, `echoed`, `mismatches` and `rtt_ns_min` / `rtt_ns_avg` /
//! `rtt_ns_p50` / `rtt_ns_p99` (round trips measured by this plugin with the host clock).

use wasm_ipc_sdk::{Error, Input, Output, config_or, now, pattern, report};

/// `run` returns this when an echo does not match what was sent.
const MISMATCH: Error = Error::Code(2);

fn ping() -> Result<(), Error> {
    let count: u64 = config_or("count", 10_000);
    let size: usize = config_or("size", 64);
    let seed: u64 = config_or("seed", 0);
    let mut out = Output::open("out")?;
    let mut input = Input::open("in")?;
    let (mut echoed, mut mismatches, mut rtt_sum, mut rtt_min) = (0u64, 0u64, 0u64, u64::MAX);
    // Every round trip, for the percentiles (4 bytes each: 80 KB for 20000).
    let mut rtts: Vec<u32> = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 24));
    for i in 0..count {
        let start = now();
        let mut loan = out.loan(size)?;
        pattern::fill(&mut loan, i, seed);
        loan.publish()?;
        let Some(echo) = input.receive()? else {
            break; // the echo side ended early
        };
        let rtt = now().saturating_sub(start);
        if !pattern::check(&echo, i, seed) {
            mismatches += 1;
        }
        drop(echo);
        echoed += 1;
        rtt_sum += rtt;
        rtt_min = rtt_min.min(rtt);
        rtts.push(u32::try_from(rtt).unwrap_or(u32::MAX));
    }
    rtts.sort_unstable();
    let at =
        |q: f64| rtts.get(((rtts.len() as f64 * q) as usize).min(rtts.len().saturating_sub(1)));
    if let (Some(&p50), Some(&p99)) = (at(0.5), at(0.99)) {
        report("rtt_ns_p50", i64::from(p50));
        report("rtt_ns_p99", i64::from(p99));
    }
    report("sent", count as i64);
    report("echoed", echoed as i64);
    report("mismatches", mismatches as i64);
    if let Some(avg) = rtt_sum.checked_div(echoed) {
        report("rtt_ns_min", rtt_min as i64);
        report("rtt_ns_avg", avg as i64);
    }
    if mismatches > 0 {
        return Err(MISMATCH);
    }
    Ok(())
}

wasm_ipc_sdk::main!(ping);
