//! Run: `wasm-ipc run scenarios/producer-consumer.toml` (build: `plugins/build.sh -p producer`).
//!
//! Streams `count` pattern messages of `size` bytes on port "out" (see
//! `wasm_ipc_sdk::pattern`). Config: `count` (1000), `size` (4096), `seed` (0),
//! `fill` ("full" | "stamp": only the index word), `rate` (messages per second: an integer or
//! a string such as `"10k/s"`, `"2M/s"`, `"500/s"`; 0 = as fast as the channel takes them;
//! paced on the host clock from the intended send times, spinning between sends). Stops early,
//! without error, when every consumer is gone. Reports `sent` and `bytes`.

use wasm_ipc_sdk::{
    Error, Level, Output, config_choice, config_or, config_str_or, log, now, pattern, report,
};

/// `rate`: `1000`, `"10k/s"`, `"2M/s"`; panics (a trap, after the SDK logs it) on anything
/// else, naming the value.
fn parse_rate(text: &str) -> u64 {
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let (digits, mul) = match t.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match t.strip_suffix('M') {
            Some(d) => (d, 1_000_000),
            None => (t, 1),
        },
    };
    match digits.parse::<u64>() {
        Ok(n) => n.saturating_mul(mul),
        Err(_) => panic!("config `rate` = {text:?} is not a rate: use 1000, \"10k/s\" or \"2M/s\""),
    }
}

fn produce() -> Result<(), Error> {
    let count: u64 = config_or("count", 1000);
    let size: usize = config_or("size", 4096);
    let seed: u64 = config_or("seed", 0);
    let stamp_only = config_choice("fill", &["full", "stamp"]) == "stamp";
    let rate = parse_rate(&config_str_or("rate", "0"));

    let mut out = Output::open("out")?;
    let mut sent = 0u64;
    let result = send(&mut out, count, size, seed, stamp_only, rate, &mut sent);
    report("sent", sent as i64);
    report("bytes", sent.wrapping_mul(size as u64) as i64);
    result
}

fn send(
    out: &mut Output,
    count: u64,
    size: usize,
    seed: u64,
    stamp_only: bool,
    rate: u64,
    sent: &mut u64,
) -> Result<(), Error> {
    let start = now();
    for i in 0..count {
        if rate > 0 {
            let offset = u128::from(i) * 1_000_000_000 / u128::from(rate);
            let due = start.saturating_add(u64::try_from(offset).unwrap_or(u64::MAX));
            while now() < due {
                std::hint::spin_loop();
            }
        }
        let mut loan = match out.loan(size) {
            Err(Error::Closed) => return closed_early(i, count),
            other => other?,
        };
        if stamp_only {
            pattern::stamp(&mut loan, i);
        } else {
            pattern::fill(&mut loan, i, seed);
        }
        match loan.publish() {
            Err(Error::Closed) => return closed_early(i, count),
            other => other?,
        }
        *sent += 1;
    }
    Ok(())
}

fn closed_early(i: u64, count: u64) -> Result<(), Error> {
    log(
        Level::Info,
        &format!("every consumer is gone: stopping after {i} of {count} messages"),
    );
    Ok(())
}

wasm_ipc_sdk::main!(produce);
