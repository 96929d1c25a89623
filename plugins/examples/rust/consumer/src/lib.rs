//! Run: `wasm-ipc run scenarios/producer-consumer.toml` (build: `plugins/build.sh -p consumer`).
//!
//! Receives on port "in" until the channel closes and checks each message against the pattern
//! of `wasm_ipc_sdk::pattern`, by the index in its own word 0. Config:
//! - `check`: "full" (default: content and order), "stamp" (order only, by the index word; every
//!   byte is still read into the checksum, so a benchmark's consumer touches what it gets),
//!   "none" (no checks, no checksum: the payload is not read);
//! - `seed` (0) as the producer's; `xor` (0) as an upstream relay's, undone while checking (the
//!   message itself is never written: it may be mapped read-only);
//! - `ordered` (true): each index must be the previous one plus 1, starting at 0; false for
//!   fan-in from several producers;
//! - `strict` (true): the first mismatch fails the run (code 2); false: mismatches are counted;
//! - `expect` (absent): the number of messages that must arrive (else code 3);
//! - `delay_ns` (0): busy-waits this long per message while holding it, to simulate work;
//! - `stall_ns` (0) and `stall_after` (0): once, after `stall_after` messages (0: before the
//!   first), busy-waits `stall_ns` holding nothing: the stalled consumer a lossy channel
//!   (`overflow = "drop-newest"`) loses messages to;
//! - `leak` (0): keeps this many bytes per message for good: the leak the soak test's check
//!   must catch;
//! - `take` (absent): returns 0 after this many messages, leaving the rest unread (the early
//!   leaver the report must name).
//!
//! Reports `received`, `bytes`, `mismatches` and `checksum` (wrapping sum of every message's
//! little-endian u64 words, last partial word zero-padded, after undoing `xor`; not reported
//! when `check = "none"`), also when it fails.

use wasm_ipc_sdk::{
    Error, Input, Level, config_choice, config_or, config_u64, log, now, pattern, report,
};

/// `run` returns this when a message does not match and `strict` is set.
const MISMATCH: Error = Error::Code(2);
/// `run` returns this when `expect` is set and a different number of messages arrived.
const WRONG_COUNT: Error = Error::Code(3);
/// Mismatches logged in detail; later ones are only counted.
const LOGGED_MISMATCHES: u64 = 5;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Full,
    Stamp,
    None,
}

struct Config {
    check: Check,
    seed: u64,
    xor: u8,
    ordered: bool,
    strict: bool,
    expect: Option<u64>,
    delay_ns: u64,
    stall_ns: u64,
    stall_after: u64,
    leak: usize,
    take: Option<u64>,
}

#[derive(Default)]
struct Stats {
    received: u64,
    bytes: u64,
    mismatches: u64,
    checksum: u64,
}

fn consume() -> Result<(), Error> {
    let config = Config {
        check: match config_choice("check", &["full", "stamp", "none"]) {
            "full" => Check::Full,
            "stamp" => Check::Stamp,
            _ => Check::None,
        },
        seed: config_or("seed", 0),
        xor: config_or("xor", 0),
        ordered: config_or("ordered", true),
        strict: config_or("strict", true),
        expect: config_u64("expect"),
        delay_ns: config_or("delay_ns", 0),
        stall_ns: config_or("stall_ns", 0),
        stall_after: config_or("stall_after", 0),
        leak: config_or("leak", 0),
        take: config_u64("take"),
    };
    let mut input = Input::open("in")?;
    let mut stats = Stats::default();
    let result = receive_all(&mut input, &config, &mut stats);
    report("received", stats.received as i64);
    report("bytes", stats.bytes as i64);
    report("mismatches", stats.mismatches as i64);
    if config.check != Check::None {
        report("checksum", stats.checksum as i64);
    }
    result?;
    match config.expect {
        Some(expect) if expect != stats.received => {
            log(
                Level::Error,
                &format!("expected {expect} messages, received {}", stats.received),
            );
            Err(WRONG_COUNT)
        }
        _ => Ok(()),
    }
}

fn receive_all(input: &mut Input, config: &Config, stats: &mut Stats) -> Result<(), Error> {
    // The index the next message should carry when `ordered`.
    let mut next = 0u64;
    while config.take.is_none_or(|n| stats.received < n) {
        if config.stall_ns > 0 && stats.received == config.stall_after {
            let until = now().saturating_add(config.stall_ns);
            while now() < until {
                std::hint::spin_loop();
            }
        }
        let Some(msg) = input.receive()? else { break };
        let arrival = stats.received;
        let len = msg.len();
        stats.received += 1;
        stats.bytes += len as u64;
        let mut problem = None;
        if config.check != Check::None {
            let index = pattern::expected_index(&msg);
            // A message shorter than 8 bytes carries only the low bytes of its index.
            let width = if msg.len() >= 8 {
                u64::MAX
            } else {
                (1u64 << (8 * msg.len())) - 1
            };
            if config.ordered && index != next & width {
                problem = Some(format!("carries index {index}, expected {next}"));
            }
            next = if index == next & width {
                next + 1
            } else {
                index.wrapping_add(1)
            };
            if config.check == Check::Full {
                let scan = pattern::scan(&msg, index, config.seed, config.xor);
                stats.checksum = stats.checksum.wrapping_add(scan.checksum);
                if !scan.ok && problem.is_none() {
                    problem = Some(format!("does not match the pattern of index {index}"));
                }
            } else {
                stats.checksum = stats
                    .checksum
                    .wrapping_add(pattern::checksum(&msg, config.xor));
            }
        }
        if config.leak > 0 {
            // Touched, so the pages are really taken.
            std::mem::forget(std::hint::black_box(vec![1u8; config.leak]));
        }
        if config.delay_ns > 0 {
            let until = now().saturating_add(config.delay_ns);
            while now() < until {
                std::hint::spin_loop();
            }
        }
        drop(msg);
        if let Some(problem) = problem {
            stats.mismatches += 1;
            let what = format!("message {arrival} ({len} bytes) {problem}");
            if config.strict {
                log(Level::Error, &what);
                return Err(MISMATCH);
            }
            if stats.mismatches <= LOGGED_MISMATCHES {
                log(Level::Warn, &what);
            }
        }
    }
    Ok(())
}

wasm_ipc_sdk::main!(consume);
