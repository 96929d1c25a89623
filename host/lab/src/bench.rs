//! `wasm-ipc bench`: the product against its own floor, against iceoryx2 and against the
//! machine, in interleaved rounds.
//!
//! Every round runs every contender once, in the same order (A B C … A B C …), so slow
//! drift of a shared machine hits them alike and contenders are compared within a round.
//! Each contender is **two OS processes** that touch every byte:
//!
//! - `native-shm`, `native-msg`: two `wasm-ipc bench-peer` processes driving the product's own
//!   `shm` ring and `msg` socket code through the backend seam (`Backend::plan`,
//!   `open_sender`, `open_receiver`), with no WASM: the product's floor. A sender writes the
//!   plugins' test pattern into every byte of its loan, in place, as the WASM producer does,
//!   and hashes it (xxh3); a receiver hashes every byte it receives: what the host does with
//!   `verify = "full"`.
//! - `wasm-zenoh-across` (with `--across A,B`): `wasm-zenoh` with its first plugin on the host
//!   whose agent listens at A and its second at B (the supervisor's token, as `run` takes it).
//! - `wasm-shm`, `wasm-msg`, `wasm-zenoh`: the bundled plugins on each backend, exactly as `wasm-ipc run`
//!   runs them, with `verify = "full"` (the host hashes every byte published and received,
//!   as the native peers do): the pinger and a relay for ping-pong (they also write and check
//!   every byte), the producer (writes every byte of its pattern) and a consumer that leaves
//!   the reading to the host's hash (`check = "none"`) for throughput. So both do the same
//!   work per byte; what differs is WASM against native code, and the host calls.
//! - `iceoryx2`, `iceoryx2-threads`: the published iceoryx2 crate through its public API
//!   (`benches/iceoryx2`, a bench-only crate built separately), two processes busy-polling
//!   and touching every byte, and its own benchmark's shape (two pinned threads, payload
//!   untouched) as a sanity check.
//! - references: single-thread `memcpy` bandwidth, and a cache-line ping-pong between two
//!   processes whose round trip shows the vCPU placement of the round (`near`/`far`).
//!
//! Latency is the application's round trip halved (RTT/2, p50 and p99 of every round trip);
//! throughput is messages per second from the first message to the last; CPU per message is
//! the user + system time of both processes (whole process lives) over the messages. The raw
//! samples, the table and the machine go to `benches/results/<date>-<host>/`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use wasm_ipc_report::{RunReport, human_bytes};
use wasm_ipc_runtime::backend::{self, ChannelDesc, EndpointDesc, FdSource, Fds, PortSpec, Stop};
use wasm_ipc_runtime::matrix::{Matrix, Mode};
use wasm_ipc_runtime::supervisor;
use wasm_ipc_scenario::{BackendKind, Scenario, WaitMode};
use wasm_ipc_sys::{self as sys, CopyMeter, Window};

/// What `bench` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rounds (at least 1; 5 or more for figures worth quoting).
    pub rounds: u32,
    /// Background processes that spin on the CPU during every round (`--load N`).
    pub load: u32,
    /// Small counts: a smoke run (the tests use it), not figures to quote.
    pub quick: bool,
    /// Where the results folder goes (default: `benches/results/` of the repository).
    pub out: Option<PathBuf>,
    /// The iceoryx2 contender's binary (default: `benches/iceoryx2/target/release/…`).
    pub iceoryx2: Option<PathBuf>,
    /// Two agents' endpoints (`tcp/IP:PORT`, agents running): adds `wasm-zenoh-across`, the
    /// WASM contender on `zenoh` with its two plugins on these two hosts.
    pub across: Option<[String; 2]>,
    /// Where the agents' token is read (with `across`); `None`: `WASM_IPC_TOKEN`.
    pub token_file: Option<PathBuf>,
}

/// One contender's figures in one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// `native-shm`, `wasm-msg`, `iceoryx2`, `memcpy`, `cache-line`, …
    pub contender: String,
    /// `ping-pong`, `throughput` or `reference`.
    pub pattern: String,
    /// Message size, bytes.
    pub size: u64,
    /// 0-based round.
    pub round: u32,
    /// Messages (round trips for ping-pong).
    pub count: u64,
    /// One-way latency, RTT/2, median, ns (ping-pong, cache-line).
    pub one_way_p50_ns: Option<f64>,
    /// One-way latency, RTT/2, 99th percentile, ns.
    pub one_way_p99_ns: Option<f64>,
    /// Messages per second (throughput).
    pub msgs_per_s: Option<f64>,
    /// Bytes per second (throughput, memcpy).
    pub bytes_per_s: Option<f64>,
    /// CPU of both processes per message, ns.
    pub cpu_ns_per_msg: Option<f64>,
    /// Anything else worth keeping (the cache line's placement, RSS figures, …).
    #[serde(default)]
    pub notes: BTreeMap<String, String>,
}

impl Sample {
    fn new(contender: &str, pattern: &str, size: u64, round: u32, count: u64) -> Sample {
        Sample {
            contender: contender.into(),
            pattern: pattern.into(),
            size,
            round,
            count,
            one_way_p50_ns: None,
            one_way_p99_ns: None,
            msgs_per_s: None,
            bytes_per_s: None,
            cpu_ns_per_msg: None,
            notes: BTreeMap::new(),
        }
    }
}

/// A target of the performance issue, computed from the saved samples.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// What is promised.
    pub what: String,
    /// The figures it was judged on.
    pub figures: String,
    /// Met, missed, or not measured (`None`: a contender was missing).
    pub met: Option<bool>,
}

/// Everything one `bench` run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// The machine: CPU, kernel, cores, clock source.
    pub machine: BTreeMap<String, String>,
    /// Rounds, load, quick.
    pub settings: BTreeMap<String, String>,
    /// Every sample of every round.
    pub samples: Vec<Sample>,
    /// Targets met or missed.
    pub targets: Vec<Target>,
}

/// Message sizes of the throughput rows.
const SIZES: [u64; 4] = [64, 4096, 65536, 1 << 20];

/// Runs the benchmark; prints progress to stderr; returns the results (also saved).
pub fn run(opts: &Options, exe: &Path) -> anyhow::Result<(Results, PathBuf)> {
    let rounds = opts.rounds.max(1);
    let iceoryx2 = opts.iceoryx2.clone().unwrap_or_else(|| {
        crate::repo_root().join("benches/iceoryx2/target/release/wasm-ipc-iceoryx2-bench")
    });
    let iceoryx2 = iceoryx2.exists().then_some(iceoryx2);
    if iceoryx2.is_none() {
        eprintln!(
            "wasm-ipc bench: the iceoryx2 contender is not built (cargo build --release \
             --manifest-path benches/iceoryx2/Cargo.toml); its rows and targets say \"not measured\""
        );
    }
    let plugins = crate::repo_root().join("plugins/target/wasm32-wasip1/release");
    for p in ["pinger", "relay", "producer", "consumer"] {
        let wasm = plugins.join(format!("{p}.wasm"));
        if !wasm.exists() {
            bail!(
                "{} is missing: build the plugins first (sh plugins/build.sh)",
                wasm.display()
            );
        }
    }
    let pings: u64 = if opts.quick { 500 } else { 20_000 };
    let budget: u64 = if opts.quick { 4 << 20 } else { 256 << 20 };
    let counts: Vec<(u64, u64)> = SIZES
        .iter()
        .map(|&s| {
            (
                s,
                (budget / s).clamp(if opts.quick { 16 } else { 256 }, 200_000),
            )
        })
        .collect();
    let load = Load::start(exe, opts.load)?;
    let mut samples = Vec::new();
    let tag = format!("bench{}", std::process::id());
    let mut session_cache: BTreeMap<String, Matrix> = BTreeMap::new();
    let wasm_session = session_options(exe, "bench", opts.token_file.as_deref());
    for round in 0..rounds {
        eprintln!("wasm-ipc bench: round {} of {rounds}", round + 1);
        samples.push(memcpy(round, if opts.quick { 8 << 20 } else { 64 << 20 }));
        samples.push(cache_line(
            exe,
            round,
            if opts.quick { 2_000 } else { 100_000 },
        )?);
        for kind in BackendKind::DEFAULT {
            samples.push(native(exe, kind, Shape::PingPong, 64, pings, round, &tag)?);
        }
        for kind in BackendKind::ALL {
            let sc = wasm_scenario(
                &plugins,
                &mut session_cache,
                &wasm_session,
                "ping-pong",
                64,
                pings,
                None,
            )?;
            samples.push(wasm(sc, kind, "ping-pong", 64, pings, round)?);
        }
        if let Some(across) = &opts.across {
            let sc = wasm_scenario(
                &plugins,
                &mut session_cache,
                &wasm_session,
                "ping-pong",
                64,
                pings,
                Some(across),
            )?;
            samples.push(wasm(sc, BackendKind::Zenoh, "ping-pong", 64, pings, round)?);
        }
        if let Some(ice) = &iceoryx2 {
            samples.push(iceoryx2_run(ice, "ping-pong", 64, pings, round)?);
            samples.push(iceoryx2_run(ice, "ping-pong-threads", 64, pings, round)?);
        }
        for &(size, count) in &counts {
            for kind in BackendKind::DEFAULT {
                samples.push(native(
                    exe,
                    kind,
                    Shape::Throughput,
                    size,
                    count,
                    round,
                    &tag,
                )?);
                let sc = wasm_scenario(
                    &plugins,
                    &mut session_cache,
                    &wasm_session,
                    "throughput",
                    size,
                    count,
                    None,
                )?;
                samples.push(wasm(sc, kind, "throughput", size, count, round)?);
            }
            // zenoh: the plugins only (its native floor would be the engine's own benchmark),
            // on this machine and, with --across, between two hosts.
            for across in std::iter::once(None).chain(opts.across.as_ref().map(Some)) {
                let sc = wasm_scenario(
                    &plugins,
                    &mut session_cache,
                    &wasm_session,
                    "throughput",
                    size,
                    count,
                    across,
                )?;
                samples.push(wasm(
                    sc,
                    BackendKind::Zenoh,
                    "throughput",
                    size,
                    count,
                    round,
                )?);
            }
            if let Some(ice) = &iceoryx2 {
                samples.push(iceoryx2_run(ice, "throughput", size, count, round)?);
            }
        }
    }
    drop(load);
    let mut extra = Vec::new();
    extra.extend(idle_consumer(&plugins, exe)?);
    extra.extend(whole_run(&plugins, exe, if opts.quick { 2 } else { 5 })?);
    samples.extend(extra);
    let targets = targets(&samples, opts.load);
    let mut settings = BTreeMap::new();
    settings.insert("rounds".into(), rounds.to_string());
    settings.insert("load".into(), opts.load.to_string());
    settings.insert("quick".into(), opts.quick.to_string());
    settings.insert("ping_pong_round_trips".into(), pings.to_string());
    let results = Results {
        machine: machine(),
        settings,
        samples,
        targets,
    };
    let dir = save(&results, opts)?;
    Ok((results, dir))
}

// ---- The table ---------------------------------------------------------------------------

/// Median and range of `f` over the samples of (contender, pattern, size).
fn stat(
    samples: &[Sample],
    contender: &str,
    pattern: &str,
    size: u64,
    f: fn(&Sample) -> Option<f64>,
) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = samples
        .iter()
        .filter(|s| s.contender == contender && s.pattern == pattern && s.size == size)
        .filter_map(f)
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Some((mid, v[0], v[v.len() - 1]))
}

fn show_ns(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 10_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.1} ms", ns / 1e6)
    }
}

fn show_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.1} k/s", r / 1e3)
    }
}

fn cell(s: Option<(f64, f64, f64)>, show: fn(f64) -> String) -> String {
    match s {
        Some((m, lo, hi)) => format!("{} ({}–{})", show(m), show(lo), show(hi)),
        None => "not measured".into(),
    }
}

/// The whole table: references, ping-pong, throughput, ratios, targets.
pub fn table(r: &Results) -> String {
    let s = &r.samples;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "wasm-ipc bench: {} rounds, load {}, {} (medians, min–max over rounds)",
        r.settings["rounds"],
        r.settings["load"],
        r.machine.get("cpu").map_or("?", String::as_str)
    );
    let _ = writeln!(out, "\nreferences");
    let _ = writeln!(
        out,
        "  memcpy, one thread            {}",
        cell(stat(s, "memcpy", "reference", 0, |x| x.bytes_per_s), |b| {
            format!("{}/s", human_bytes(b))
        })
    );
    let _ = writeln!(
        out,
        "  cache line, 2 processes       one-way {}",
        cell(
            stat(s, "cache-line", "reference", 64, |x| x.one_way_p50_ns),
            show_ns
        )
    );
    let places: Vec<String> = s
        .iter()
        .filter(|x| x.contender == "cache-line")
        .map(|x| {
            format!(
                "{}:{}",
                x.round + 1,
                x.notes.get("placement").map_or("?", String::as_str)
            )
        })
        .collect();
    let _ = writeln!(out, "  placement per round           {}", places.join(" "));
    let _ = writeln!(
        out,
        "\nping-pong, 64 B, one-way = RTT/2 as the application sees it"
    );
    let _ = writeln!(
        out,
        "  {:<18} {:<34} {:<34} cpu/round trip",
        "contender", "p50", "p99"
    );
    for c in &contenders(s, "ping-pong") {
        let c = c.as_str();
        let _ = writeln!(
            out,
            "  {:<18} {:<34} {:<34} {}",
            c,
            cell(stat(s, c, "ping-pong", 64, |x| x.one_way_p50_ns), show_ns),
            cell(stat(s, c, "ping-pong", 64, |x| x.one_way_p99_ns), show_ns),
            cell(stat(s, c, "ping-pong", 64, |x| x.cpu_ns_per_msg), show_ns)
        );
    }
    let _ = writeln!(out, "\nthroughput, one producer → one consumer");
    let _ = writeln!(
        out,
        "  {:<8} {:<17} {:<36} cpu/message",
        "size", "contender", "messages/s"
    );
    for size in SIZES {
        for c in &contenders(s, "throughput") {
            let c = c.as_str();
            let _ = writeln!(
                out,
                "  {:<8} {:<17} {:<36} {}",
                human_bytes(size as f64),
                c,
                cell(stat(s, c, "throughput", size, |x| x.msgs_per_s), show_rate),
                cell(
                    stat(s, c, "throughput", size, |x| x.cpu_ns_per_msg),
                    show_ns
                )
            );
        }
    }
    let _ = writeln!(out, "\nratios (median of the per-round ratios)");
    for (what, a, b, pattern, f) in ratio_rows() {
        for size in if pattern == "ping-pong" {
            vec![64]
        } else {
            SIZES.to_vec()
        } {
            if let Some((m, lo, hi)) = ratio(s, a, b, pattern, size, f) {
                let _ = writeln!(
                    out,
                    "  {what:<44} {:>8}  {m:.2} ({lo:.2}–{hi:.2})",
                    human_bytes(size as f64)
                );
            }
        }
    }
    let _ = writeln!(out, "\ntargets");
    for t in &r.targets {
        let verdict = match t.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let _ = writeln!(out, "  [{verdict}] {}: {}", t.what, t.figures);
    }
    out
}

/// The contenders of a table, in its order: for each backend with a native floor, the floor
/// and then the product on it; the product on every other backend (and across hosts, when a
/// run had two); iceoryx2 (and, for ping-pong, its threads-only variant). Made from the
/// backend list, so a new backend gets its rows by itself.
fn contenders(s: &[Sample], pattern: &str) -> Vec<String> {
    let mut list = Vec::new();
    for kind in BackendKind::DEFAULT {
        list.push(format!("native-{}", kind.name()));
        list.push(format!("wasm-{}", kind.name()));
    }
    for kind in BackendKind::ALL {
        if BackendKind::DEFAULT.contains(&kind) {
            continue;
        }
        list.push(format!("wasm-{}", kind.name()));
        let across = format!("wasm-{}-across", kind.name());
        if kind.crosses_hosts() && s.iter().any(|x| x.contender == across) {
            list.push(across);
        }
    }
    list.push("iceoryx2".into());
    if pattern == "ping-pong" {
        list.push("iceoryx2-threads".into());
    }
    list
}

type Pick = fn(&Sample) -> Option<f64>;

fn ratio_rows() -> Vec<(&'static str, &'static str, &'static str, &'static str, Pick)> {
    vec![
        (
            "wasm-shm / native-shm, one-way p50",
            "wasm-shm",
            "native-shm",
            "ping-pong",
            |x| x.one_way_p50_ns,
        ),
        (
            "wasm-shm / iceoryx2, one-way p50",
            "wasm-shm",
            "iceoryx2",
            "ping-pong",
            |x| x.one_way_p50_ns,
        ),
        (
            "wasm-msg / native-msg, one-way p50",
            "wasm-msg",
            "native-msg",
            "ping-pong",
            |x| x.one_way_p50_ns,
        ),
        (
            "wasm-shm / native-shm, messages/s",
            "wasm-shm",
            "native-shm",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-msg / native-msg, messages/s",
            "wasm-msg",
            "native-msg",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-shm / wasm-msg, messages/s",
            "wasm-shm",
            "wasm-msg",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-msg / wasm-zenoh, messages/s",
            "wasm-msg",
            "wasm-zenoh",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-zenoh / wasm-msg, one-way p50",
            "wasm-zenoh",
            "wasm-msg",
            "ping-pong",
            |x| x.one_way_p50_ns,
        ),
        (
            "wasm-zenoh / wasm-zenoh-across, messages/s",
            "wasm-zenoh",
            "wasm-zenoh-across",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-zenoh-across / wasm-zenoh, one-way p50",
            "wasm-zenoh-across",
            "wasm-zenoh",
            "ping-pong",
            |x| x.one_way_p50_ns,
        ),
        (
            "wasm-shm / iceoryx2, messages/s",
            "wasm-shm",
            "iceoryx2",
            "throughput",
            |x| x.msgs_per_s,
        ),
    ]
}

/// Per-round ratios a/b of `f`, then their median and range.
fn ratio(
    s: &[Sample],
    a: &str,
    b: &str,
    pattern: &str,
    size: u64,
    f: Pick,
) -> Option<(f64, f64, f64)> {
    let of = |c: &str, round: u32| {
        s.iter()
            .find(|x| {
                x.contender == c && x.pattern == pattern && x.size == size && x.round == round
            })
            .and_then(f)
    };
    let mut v: Vec<f64> = s
        .iter()
        .filter(|x| x.contender == a && x.pattern == pattern && x.size == size)
        .filter_map(|x| Some(of(a, x.round)? / of(b, x.round)?))
        .filter(|r| r.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[v.len() / 2], v[0], v[v.len() - 1]))
}

/// Met or missed, from the medians of the per-round ratios.
fn targets(s: &[Sample], load: u32) -> Vec<Target> {
    let mut t = Vec::new();
    let mut add = |what: String, r: Option<(f64, f64, f64)>, ok: fn(f64) -> bool, unit: &str| {
        t.push(Target {
            figures: match r {
                Some((m, lo, hi)) => format!("{m:.2}{unit} ({lo:.2}–{hi:.2})"),
                None => "not measured".into(),
            },
            met: r.map(|(m, _, _)| ok(m)),
            what,
        });
    };
    let p50: Pick = |x| x.one_way_p50_ns;
    let rate: Pick = |x| x.msgs_per_s;
    add(
        "ping-pong one-way p50 at 64 B on shm ≤ 0.8 × iceoryx2 (two processes)".into(),
        ratio(s, "wasm-shm", "iceoryx2", "ping-pong", 64, p50),
        |m| m <= 0.8,
        " ×",
    );
    add(
        "shm throughput ≥ 0.5 × the native-process ring at 64 B".into(),
        ratio(s, "wasm-shm", "native-shm", "throughput", 64, rate),
        |m| m >= 0.5,
        " ×",
    );
    for size in [4096, 65536, 1 << 20] {
        add(
            format!(
                "shm throughput ≥ 0.8 × the native-process ring at {}",
                human_bytes(size as f64)
            ),
            ratio(s, "wasm-shm", "native-shm", "throughput", size, rate),
            |m| m >= 0.8,
            " ×",
        );
    }
    for size in SIZES {
        add(
            format!(
                "msg throughput ≥ 0.9 × the native-process socket at {}",
                human_bytes(size as f64)
            ),
            ratio(s, "wasm-msg", "native-msg", "throughput", size, rate),
            |m| m >= 0.9,
            " ×",
        );
    }
    if load > 0 {
        for size in SIZES {
            add(
                format!(
                    "with --load {load}, shm ≥ msg at {} (never worse than copying)",
                    human_bytes(size as f64)
                ),
                ratio(s, "wasm-shm", "wasm-msg", "throughput", size, rate),
                |m| m >= 1.0,
                " ×",
            );
        }
        add(
            format!("with --load {load}, shm ping-pong no slower than msg"),
            ratio(s, "wasm-msg", "wasm-shm", "ping-pong", 64, p50),
            |m| m >= 1.0,
            " × (msg / shm)",
        );
    }
    // The one-off rows: (what, contender, note, met when, unit).
    type OneOff = (
        &'static str,
        &'static str,
        &'static str,
        fn(f64) -> bool,
        &'static str,
    );
    let one_offs: [OneOff; 5] = [
        (
            "an idle consumer sleeps: its CPU while it waits ≤ 1 % of the wait (shm)",
            "idle-shm",
            "cpu_share",
            |m| m <= 0.01,
            "",
        ),
        (
            "an idle consumer sleeps: its CPU while it waits ≤ 1 % of the wait (msg)",
            "idle-msg",
            "cpu_share",
            |m| m <= 0.01,
            "",
        ),
        (
            "a whole `wasm-ipc run` of a two-plugin scenario, warm cache, < 15 ms wall",
            "whole-run",
            "wall_ms",
            |m| m < 15.0,
            " ms",
        ),
        (
            "a worker's max RSS ≤ 16 MiB beyond its windows",
            "whole-run",
            "worker_rss_beyond_windows_mib",
            |m| m <= 16.0,
            " MiB",
        ),
        (
            "the supervisor's RSS does not grow with the message count (×100 messages)",
            "whole-run",
            "supervisor_rss_growth_mib",
            |m| m <= 2.0,
            " MiB",
        ),
    ];
    for (what, contender, key, ok, unit) in one_offs {
        let v = s
            .iter()
            .find(|x| x.contender == contender)
            .and_then(|x| x.notes.get(key))
            .and_then(|v| v.parse::<f64>().ok());
        add(what.into(), v.map(|v| (v, v, v)), ok, unit);
    }
    t
}

// ---- Contenders ----------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Shape {
    PingPong,
    Throughput,
}

/// What a `bench-peer` process is told.
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerSpec {
    role: Role,
    size: u32,
    count: u64,
    out: Option<PortSpec>,
    input: Option<PortSpec>,
}

/// What a `bench-peer` process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Role {
    Ping,
    Pong,
    Send,
    Receive,
    LinePing,
    LinePong,
    Spin,
}

/// What a `bench-peer` process measured.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PeerResult {
    rtt_p50_ns: u64,
    rtt_p99_ns: u64,
    messages: u64,
    elapsed_ns: u64,
    cpu_ns: u64,
}

/// Starts `wasm-ipc bench-peer` with `fds` at 3, 4, … and the spec on the command line.
fn spawn_peer(exe: &Path, spec: &PeerSpec, fds: &[OwnedFd]) -> anyhow::Result<Child> {
    let mut cmd = Command::new(exe);
    cmd.arg("bench-peer")
        .arg(serde_json::to_string(spec)?)
        .env_clear()
        .envs(backend::worker_env(
            spec.out.iter().chain(&spec.input).map(|p| p.backend),
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    let keep = sys::pass_fds(&mut cmd, &borrowed)?;
    let child = cmd.spawn().context("starting a bench peer")?;
    drop(keep);
    Ok(child)
}

/// Waits for every peer's `ready`, releases them together, collects their results.
fn drive(mut peers: Vec<Child>) -> anyhow::Result<Vec<PeerResult>> {
    let mut outs = Vec::new();
    for p in &mut peers {
        let mut out = BufReader::new(p.stdout.take().context("peer stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "ready" {
            bail!("a bench peer did not get ready: {line:?}");
        }
        outs.push(out);
    }
    for p in &mut peers {
        p.stdin.as_mut().context("peer stdin")?.write_all(b"go\n")?;
    }
    let mut results = Vec::new();
    for (p, out) in peers.iter_mut().zip(&mut outs) {
        let mut line = String::new();
        out.read_line(&mut line)?;
        let status = p.wait()?;
        if !status.success() {
            bail!("a bench peer failed ({status})");
        }
        results.push(serde_json::from_str(&line).context("a bench peer's result")?);
    }
    Ok(results)
}

/// Two `bench-peer` processes over the product's own backend code.
fn native(
    exe: &Path,
    kind: BackendKind,
    shape: Shape,
    size: u64,
    count: u64,
    round: u32,
    tag: &str,
) -> anyhow::Result<Sample> {
    let slot = u32::try_from(size)?;
    let imp = backend::of(kind);
    let mut fds = Fds::new(2);
    // fds 3 and 4 are placeholders, so that port fds keep their numbers (5, …).
    let null = || std::fs::File::open("/dev/null").map(OwnedFd::from);
    let channel = |index: usize, from: usize, to: usize, capacity: u32| ChannelDesc {
        index,
        run_id: tag,
        producers: vec![EndpointDesc {
            plugin: from,
            port: "out".into(),
        }],
        consumers: vec![EndpointDesc {
            plugin: to,
            port: "in".into(),
        }],
        keys: vec![vec![format!("{tag}:{index}")]],
        slot_size: slot,
        capacity,
        wait: WaitMode::Adaptive,
        processes: 2,
        endpoints: None,
        clocks: None,
    };
    let (specs, contender, pattern) = match shape {
        Shape::PingPong => {
            let a = imp.plan(&channel(0, 0, 1, 4), &mut fds)?;
            let b = imp.plan(&channel(1, 1, 0, 4), &mut fds)?;
            let mut a_out = a.producers.into_iter();
            let mut a_in = a.consumers.into_iter();
            let mut b_out = b.producers.into_iter();
            let mut b_in = b.consumers.into_iter();
            (
                [
                    PeerSpec {
                        role: Role::Ping,
                        size: slot,
                        count,
                        out: a_out.next(),
                        input: b_in.next(),
                    },
                    PeerSpec {
                        role: Role::Pong,
                        size: slot,
                        count,
                        out: b_out.next(),
                        input: a_in.next(),
                    },
                ],
                format!("native-{}", kind.name()),
                "ping-pong",
            )
        }
        Shape::Throughput => {
            let a = imp.plan(&channel(0, 0, 1, throughput_capacity(size)), &mut fds)?;
            (
                [
                    PeerSpec {
                        role: Role::Send,
                        size: slot,
                        count,
                        out: a.producers.into_iter().next(),
                        input: None,
                    },
                    PeerSpec {
                        role: Role::Receive,
                        size: slot,
                        count,
                        out: None,
                        input: a.consumers.into_iter().next(),
                    },
                ],
                format!("native-{}", kind.name()),
                "throughput",
            )
        }
    };
    let mut peers = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let mut all = vec![null()?, null()?];
        all.extend(fds.take(i));
        peers.push(spawn_peer(exe, spec, &all)?);
    }
    drop(fds);
    let r = drive(peers)?;
    let mut sample = Sample::new(&contender, pattern, size, round, count);
    let cpu = (r[0].cpu_ns + r[1].cpu_ns) as f64;
    sample.cpu_ns_per_msg = Some(cpu / count as f64);
    match shape {
        Shape::PingPong => {
            sample.one_way_p50_ns = Some(r[0].rtt_p50_ns as f64 / 2.0);
            sample.one_way_p99_ns = Some(r[0].rtt_p99_ns as f64 / 2.0);
        }
        Shape::Throughput => {
            anyhow::ensure!(
                r[1].messages == count,
                "the receiver got {} of {count}",
                r[1].messages
            );
            let secs = r[1].elapsed_ns as f64 / 1e9;
            sample.msgs_per_s = Some(count as f64 / secs);
            sample.bytes_per_s = Some((count * size) as f64 / secs);
        }
    }
    Ok(sample)
}

/// What the sessions of the bench's WASM contenders share: workers start from `exe`, the run
/// id is `TAG<pid>`.
fn session_options(exe: &Path, tag: &str, token_file: Option<&Path>) -> supervisor::Options {
    supervisor::Options {
        exe: exe.to_path_buf(),
        run_id: format!("{tag}{}", std::process::id()),
        token_file: token_file.map(Path::to_path_buf),
    }
}

/// The scenario for a WASM contender, parsed once per shape and size.
#[allow(clippy::too_many_arguments)]
fn wasm_scenario<'a>(
    plugins: &Path,
    cache: &'a mut BTreeMap<String, Matrix>,
    session: &supervisor::Options,
    pattern: &str,
    size: u64,
    count: u64,
    across: Option<&[String; 2]>,
) -> anyhow::Result<&'a mut Matrix> {
    let key = format!("{pattern}-{size}-{}", across.is_some());
    if !cache.contains_key(&key) {
        let p = |n: &str| plugins.join(format!("{n}.wasm")).display().to_string();
        let mut text = match pattern {
            "ping-pong" => format!(
                r#"name = "bench-ping-pong"
[[plugin]]
name = "pinger"
wasm = "{}"
config = {{ count = {count}, size = {size}, seed = 4 }}
[[plugin]]
name = "echo"
wasm = "{}"
[[channel]]
from = "pinger.out"
to = "echo.in"
slot_size = {size}
capacity = 4
[[channel]]
from = "echo.out"
to = "pinger.in"
slot_size = {size}
capacity = 4
[run]
verify = "full"
timeout = "300s"
"#,
                p("pinger"),
                p("relay")
            ),
            _ => format!(
                r#"name = "bench-throughput"
[[plugin]]
name = "producer"
wasm = "{}"
config = {{ count = {count}, size = {size}, seed = 1 }}
[[plugin]]
name = "consumer"
wasm = "{}"
config = {{ seed = 1, expect = {count}, check = "none" }}
[[channel]]
from = "producer.out"
to = "consumer.in"
slot_size = {size}
capacity = {capacity}
[run]
verify = "full"
timeout = "300s"
"#,
                p("producer"),
                p("consumer"),
                capacity = throughput_capacity(size),
            ),
        };
        if let Some([a, b]) = across {
            // The first plugin on host a, the second on host b; the tables go in front.
            let (first, second) = match pattern {
                "ping-pong" => ("pinger", "echo"),
                _ => ("producer", "consumer"),
            };
            let placed = text
                .replacen(
                    &format!("name = \"{first}\"\n"),
                    &format!("name = \"{first}\"\nhost = \"a\"\n"),
                    1,
                )
                .replacen(
                    &format!("name = \"{second}\"\n"),
                    &format!("name = \"{second}\"\nhost = \"b\"\n"),
                    1,
                );
            let (head, rest) = placed.split_once('\n').context("a generated scenario")?;
            text = format!(
                "{head}\n[[host]]\nname = \"a\"\naddress = \"{a}\"\n[[host]]\nname = \"b\"\n\
                 address = \"{b}\"\n{rest}"
            );
        }
        let sc = Scenario::parse(Path::new("bench.toml"), &text)?;
        let kinds = if across.is_some() {
            &[BackendKind::Zenoh][..]
        } else {
            &BackendKind::ALL[..]
        };
        let matrix = Matrix::new(&sc, kinds, &[], session.clone(), Mode::Once)?;
        cache.insert(key.clone(), matrix);
    }
    Ok(cache.get_mut(&key).expect("inserted above"))
}

/// One run of a WASM contender through the supervisor, as `wasm-ipc run` does it.
fn wasm(
    matrix: &mut Matrix,
    kind: BackendKind,
    pattern: &str,
    size: u64,
    count: u64,
    round: u32,
) -> anyhow::Result<Sample> {
    let (point, record) = matrix.run_one(0, kind, round)?;
    let r: RunReport = RunReport::new(&point.scenario, &record);
    let contender = if point.scenario.hosts.is_empty() {
        format!("wasm-{}", kind.name())
    } else {
        format!("wasm-{}-across", kind.name())
    };
    if !r.ok {
        bail!(
            "{contender} {pattern} at {size} B failed: {}",
            r.error.unwrap_or_default()
        );
    }
    let mut sample = Sample::new(&contender, pattern, size, round, count);
    let cpu: f64 = r.processes.iter().map(|p| p.user_s + p.sys_s).sum::<f64>() * 1e9;
    sample.cpu_ns_per_msg = Some(cpu / count as f64);
    if pattern == "ping-pong" {
        let pinger = &r.processes[0].reports;
        sample.one_way_p50_ns = pinger.get("rtt_ns_p50").map(|&v| v as f64 / 2.0);
        sample.one_way_p99_ns = pinger.get("rtt_ns_p99").map(|&v| v as f64 / 2.0);
    } else {
        sample.msgs_per_s = Some(r.msgs_per_s);
        sample.bytes_per_s = Some(r.bytes_per_s);
    }
    Ok(sample)
}

/// One run of the iceoryx2 contender (`benches/iceoryx2`).
fn iceoryx2_run(
    bin: &Path,
    pattern: &str,
    size: u64,
    count: u64,
    round: u32,
) -> anyhow::Result<Sample> {
    let out = Command::new(bin)
        .args([
            pattern,
            "--size",
            &size.to_string(),
            "--count",
            &count.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("{} {pattern} failed ({})", bin.display(), out.status);
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{} {pattern}: not one JSON line", bin.display()))?;
    let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    let (contender, pat) = match pattern {
        "ping-pong-threads" => ("iceoryx2-threads", "ping-pong"),
        "ping-pong" => ("iceoryx2", "ping-pong"),
        _ => ("iceoryx2", "throughput"),
    };
    let mut sample = Sample::new(contender, pat, size, round, count);
    sample.one_way_p50_ns = f("rtt_ns_p50").map(|x| x / 2.0);
    sample.one_way_p99_ns = f("rtt_ns_p99").map(|x| x / 2.0);
    sample.msgs_per_s = f("msgs_per_s");
    sample.bytes_per_s = f("bytes_per_s");
    sample.cpu_ns_per_msg = f("cpu_ns").map(|c| c / count as f64);
    Ok(sample)
}

/// Single-thread memcpy bandwidth: `bytes` copied 1 MiB at a time, four passes.
fn memcpy(round: u32, bytes: usize) -> Sample {
    let src = vec![0x5au8; bytes];
    let mut dst = vec![0u8; bytes];
    // One untimed pass first: the destination's pages are then mapped, so the timed passes
    // measure copying, not page faults.
    dst.copy_from_slice(&src);
    let start = Instant::now();
    for pass in 0..4u8 {
        for (d, s) in dst.chunks_mut(1 << 20).zip(src.chunks(1 << 20)) {
            d.copy_from_slice(s);
        }
        dst[0] = pass;
        std::hint::black_box(&dst);
    }
    let secs = start.elapsed().as_secs_f64();
    let mut s = Sample::new("memcpy", "reference", 0, round, 4);
    s.bytes_per_s = Some(4.0 * bytes as f64 / secs);
    s
}

/// A cache line bounced between two processes: the floor of any shared-memory hand-off.
fn cache_line(exe: &Path, round: u32, count: u64) -> anyhow::Result<Sample> {
    let line = sys::sized_memfd("wasm-ipc:bench:cache-line", 4096)?;
    let line = OwnedFd::from(line);
    let mut peers = Vec::new();
    for role in [Role::LinePing, Role::LinePong] {
        let spec = PeerSpec {
            role,
            size: 64,
            count,
            out: None,
            input: None,
        };
        peers.push(spawn_peer(exe, &spec, &[line.try_clone()?])?);
    }
    let r = drive(peers)?;
    let mut s = Sample::new("cache-line", "reference", 64, round, count);
    let one_way = r[0].rtt_p50_ns as f64 / 2.0;
    s.one_way_p50_ns = Some(one_way);
    s.one_way_p99_ns = Some(r[0].rtt_p99_ns as f64 / 2.0);
    s.notes.insert(
        "placement".into(),
        if one_way < 100.0 { "near" } else { "far" }.into(),
    );
    Ok(s)
}

/// An idle consumer: a producer sends 5 messages 500 ms apart; the consumer's CPU while it
/// waited (its CPU beyond that of a run with one message, over the extra wall time) must be
/// near 0: it sleeps, it does not spin.
fn idle_consumer(plugins: &Path, exe: &Path) -> anyhow::Result<Vec<Sample>> {
    let scenario = |count: u32| -> anyhow::Result<Scenario> {
        let text = format!(
            r#"name = "bench-idle"
[[plugin]]
name = "producer"
wasm = "{}"
config = {{ count = {count}, size = 64, rate = 2 }}
[[plugin]]
name = "consumer"
wasm = "{}"
[[channel]]
from = "producer.out"
to = "consumer.in"
[run]
timeout = "60s"
"#,
            plugins.join("producer.wasm").display(),
            plugins.join("consumer.wasm").display()
        );
        Ok(Scenario::parse(Path::new("idle.toml"), &text)?)
    };
    let opts = session_options(exe, "bench-idle", None);
    let mut idle = Matrix::new(
        &scenario(5)?,
        &BackendKind::DEFAULT,
        &[],
        opts.clone(),
        Mode::Once,
    )?;
    let mut busy = Matrix::new(&scenario(1)?, &BackendKind::DEFAULT, &[], opts, Mode::Once)?;
    let run = |matrix: &mut Matrix, kind| -> anyhow::Result<RunReport> {
        let (point, record) = matrix.run_one(0, kind, 0)?;
        Ok(RunReport::new(&point.scenario, &record))
    };
    let consumer = |r: &RunReport| -> anyhow::Result<f64> {
        if !r.ok {
            bail!(
                "the idle run failed: {}",
                r.error.clone().unwrap_or_default()
            );
        }
        let c = r
            .processes
            .iter()
            .find(|p| p.plugin == "consumer")
            .context("consumer")?;
        Ok(c.user_s + c.sys_s)
    };
    let mut out = Vec::new();
    for kind in BackendKind::DEFAULT {
        let long = run(&mut idle, kind)?;
        let short = run(&mut busy, kind)?;
        let waited = (long.elapsed_s - short.elapsed_s).max(1e-3);
        let share = (consumer(&long)? - consumer(&short)?).max(0.0) / waited;
        let mut s = Sample::new(&format!("idle-{}", kind.name()), "reference", 0, 0, 5);
        s.notes.insert("cpu_share".into(), format!("{share:.5}"));
        s.notes.insert("waited_s".into(), format!("{waited:.3}"));
        out.push(s);
    }
    Ok(out)
}

/// `wasm-ipc run` as a user runs it: wall time with a warm cache, the workers' RSS beyond their
/// windows, and the supervisor's RSS at 1000 and 100000 messages.
fn whole_run(plugins: &Path, exe: &Path, tries: u32) -> anyhow::Result<Vec<Sample>> {
    let dir = TempDir::new()?;
    let write = |count: u64| -> anyhow::Result<PathBuf> {
        let path = dir.0.join(format!("run{count}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"name = "bench-run"
[[plugin]]
name = "producer"
wasm = "{}"
config = {{ count = {count}, size = 64 }}
[[plugin]]
name = "consumer"
wasm = "{}"
[[channel]]
from = "producer.out"
to = "consumer.in"
slot_size = 64
[run]
backends = ["shm"]
"#,
                plugins.join("producer.wasm").display(),
                plugins.join("consumer.wasm").display()
            ),
        )?;
        Ok(path)
    };
    let run = |path: &Path| -> anyhow::Result<(f64, serde_json::Value)> {
        let start = Instant::now();
        let out = Command::new(exe)
            .args(["run", "--json"])
            .arg(path)
            .output()?;
        let wall = start.elapsed().as_secs_f64() * 1e3;
        if !out.status.success() {
            bail!("wasm-ipc run {} failed", path.display());
        }
        Ok((wall, serde_json::from_slice(&out.stdout)?))
    };
    let small = write(1000)?;
    let large = write(100_000)?;
    let _ = run(&small)?; // warm the compile cache
    let mut walls = Vec::new();
    let mut rep = serde_json::Value::Null;
    for _ in 0..tries.max(1) {
        let (w, r) = run(&small)?;
        walls.push(w);
        rep = r;
    }
    walls.sort_by(f64::total_cmp);
    let (_, big) = run(&large)?;
    let rss = |r: &serde_json::Value| r["supervisor_max_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0;
    let sc = Scenario::load(&small)?;
    let needs = wasm_ipc_runtime::check::check(
        &sc,
        BackendKind::Shm,
        &wasm_ipc_runtime::check::Resources::this(),
    )?;
    let worst = rep["runs"][0]["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .zip(&needs.windows)
        .map(|(p, &w)| {
            p["max_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0 - w as f64 / (1 << 20) as f64
        })
        .fold(0.0, f64::max);
    let mut s = Sample::new("whole-run", "reference", 0, 0, 1000);
    s.notes
        .insert("wall_ms".into(), format!("{:.2}", walls[walls.len() / 2]));
    s.notes.insert(
        "worker_rss_beyond_windows_mib".into(),
        format!("{worst:.2}"),
    );
    s.notes.insert(
        "supervisor_rss_growth_mib".into(),
        format!("{:.2}", rss(&big) - rss(&rep)),
    );
    Ok(vec![s])
}

/// A folder of this process's, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let dir = std::env::temp_dir().join(format!("wasm-ipc-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Background processes that spin on the CPU while they live (`--load N`).
struct Load(Vec<Child>);

impl Load {
    fn start(exe: &Path, n: u32) -> anyhow::Result<Load> {
        let mut spinners = Vec::new();
        for _ in 0..n {
            let spec = PeerSpec {
                role: Role::Spin,
                size: 0,
                count: 0,
                out: None,
                input: None,
            };
            spinners.push(spawn_peer(exe, &spec, &[])?);
        }
        Ok(Load(spinners))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---- The peer process ----------------------------------------------------------------------

/// The fds a peer was handed, by number.
struct PeerFds(sys::Handover);

impl FdSource for PeerFds {
    fn take(&mut self, n: i32) -> anyhow::Result<OwnedFd> {
        Ok(self.0.take(n)?)
    }
}

/// `wasm-ipc bench-peer SPEC`: one side of a native contender, a cache-line bouncer or a
/// spinner. Prints `ready`, waits for `go` on stdin, runs, prints its result as JSON.
pub fn peer_main(spec: &str) -> anyhow::Result<()> {
    let spec: PeerSpec = serde_json::from_str(spec)?;
    let mut fds = PeerFds(sys::Handover::claim()?);
    if spec.role == Role::Spin {
        let start = Instant::now();
        // Bounded, like every loop here: the bench kills it long before.
        while start.elapsed() < Duration::from_secs(3600) {
            std::hint::spin_loop();
        }
        return Ok(());
    }
    if matches!(spec.role, Role::LinePing | Role::LinePong) {
        let fd = fds.take(3)?;
        let map = sys::ControlMap::map(fd.as_fd(), 4096)?;
        let word = map.u32(0);
        ready()?;
        let r = bounce(word, spec.role == Role::LinePing, spec.count)?;
        return finish(r);
    }
    // A linear memory in host memory, as workers have: windows at 64 KiB, one after another.
    let out_len = spec.out.as_ref().map_or(0, |s| s.window_len as usize);
    let in_len = spec.input.as_ref().map_or(0, |s| s.window_len as usize);
    let mut memory = Memory::new(65536 + out_len + in_len)?;
    let stop = Stop::new(sys::now_ns() + 600_000_000_000)?;
    let (tx, rx) = {
        let (out_win, in_win) = memory.windows(out_len, in_len);
        let tx = match &spec.out {
            Some(s) => Some(backend::of(s.backend).open_sender(s, out_win, &mut fds)?),
            None => None,
        };
        let rx = match &spec.input {
            Some(s) => Some(backend::of(s.backend).open_receiver(s, in_win, &mut fds)?),
            None => None,
        };
        (tx, rx)
    };
    ready()?;
    let size = spec.size;
    let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut meter = CopyMeter::default();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut rtts = Vec::new();
    let start = sys::now_ns();
    let mut messages = 0u64;
    let failed = |e: backend::PortError| anyhow::anyhow!("bench peer: {e}");
    match (spec.role, tx, rx) {
        (Role::Ping, Some(mut tx), Some(mut rx)) => {
            rtts.reserve(usize::try_from(spec.count)?);
            for i in 0..spec.count {
                let t0 = sys::now_ns();
                let (out_win, in_win) = memory.windows(out_len, in_len);
                let off = tx.loan(out_win, size, &stop).map_err(failed)?;
                fill(out_win, off, size, i);
                out_win.hash(&mut hasher, off as usize, size as usize);
                let msg = backend::Outgoing {
                    off,
                    len: size,
                    publish_ns: t0,
                };
                tx.publish(out_win, &mut meter, msg, &stop)
                    .map_err(failed)?;
                let d = rx.receive(in_win, &mut meter, &stop).map_err(failed)?;
                in_win.hash(&mut hasher, d.off as usize, d.len as usize);
                let echoed = in_win
                    .read_vec(d.off as usize, d.len.min(8) as usize)
                    .unwrap_or_default();
                anyhow::ensure!(
                    echoed[..] == i.to_le_bytes()[..echoed.len()],
                    "echo {i} differs"
                );
                rx.release().map_err(failed)?;
                rtts.push(sys::now_ns() - t0);
                messages += 1;
            }
            tx.close(&stop);
        }
        (Role::Pong, Some(mut tx), Some(mut rx)) => loop {
            let (out_win, in_win) = memory.windows(out_len, in_len);
            let d = match rx.receive(in_win, &mut meter, &stop) {
                Ok(d) => d,
                Err(backend::PortError::Closed) => break,
                Err(e) => return Err(failed(e)),
            };
            in_win.hash(&mut hasher, d.off as usize, d.len as usize);
            let head = in_win
                .read_vec(d.off as usize, d.len.min(8) as usize)
                .unwrap_or_default();
            let off = tx.loan(out_win, d.len, &stop).map_err(failed)?;
            out_win.write(off as usize, &payload[..d.len as usize]);
            out_win.write(off as usize, &head);
            out_win.hash(&mut hasher, off as usize, d.len as usize);
            rx.release().map_err(failed)?;
            let msg = backend::Outgoing {
                off,
                len: d.len,
                publish_ns: sys::now_ns(),
            };
            tx.publish(out_win, &mut meter, msg, &stop)
                .map_err(failed)?;
            messages += 1;
        },
        (Role::Send, Some(mut tx), None) => {
            for i in 0..spec.count {
                let (out_win, _) = memory.windows(out_len, in_len);
                let off = tx.loan(out_win, size, &stop).map_err(failed)?;
                fill(out_win, off, size, i);
                out_win.hash(&mut hasher, off as usize, size as usize);
                let msg = backend::Outgoing {
                    off,
                    len: size,
                    publish_ns: sys::now_ns(),
                };
                tx.publish(out_win, &mut meter, msg, &stop)
                    .map_err(failed)?;
                messages += 1;
            }
            tx.close(&stop);
        }
        (Role::Receive, None, Some(mut rx)) => loop {
            let (_, in_win) = memory.windows(out_len, in_len);
            let d = match rx.receive(in_win, &mut meter, &stop) {
                Ok(d) => d,
                Err(backend::PortError::Closed) => break,
                Err(e) => return Err(failed(e)),
            };
            in_win.hash(&mut hasher, d.off as usize, d.len as usize);
            rx.release().map_err(failed)?;
            messages += 1;
        },
        _ => bail!("bench peer: ports do not fit the role {:?}", spec.role),
    }
    std::hint::black_box(hasher.digest());
    let elapsed_ns = sys::now_ns() - start;
    rtts.sort_unstable();
    finish(PeerResult {
        rtt_p50_ns: percentile(&rtts, 500),
        rtt_p99_ns: percentile(&rtts, 990),
        messages,
        elapsed_ns,
        cpu_ns: 0,
    })
}

/// Message `i` of the plugins' test pattern (the Rust SDK's `pattern::fill`, seed 0),
/// written in place: word 0 is `i`, word `w` is `i * INDEX_MUL ^ w * WORD_MUL`.
fn fill(win: Window<'_>, off: u32, len: u32, i: u64) {
    const INDEX_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
    const WORD_MUL: u64 = 0xD1B5_4A32_D192_ED03;
    let base = i.wrapping_mul(INDEX_MUL);
    win.fill_words(off as usize, len as usize, |w| {
        if w == 0 {
            i
        } else {
            base ^ w.wrapping_mul(WORD_MUL)
        }
    });
}

/// The `per_mille`/1000 quantile of sorted `v` (500: the median), 0 when empty.
fn percentile(v: &[u64], per_mille: usize) -> u64 {
    v.get((v.len() * per_mille / 1000).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

fn ready() -> anyhow::Result<()> {
    println!("ready");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    anyhow::ensure!(line.trim() == "go", "bench peer: expected go, got {line:?}");
    Ok(())
}

fn finish(mut r: PeerResult) -> anyhow::Result<()> {
    r.cpu_ns = u64::try_from(sys::process_cpu().as_nanos()).unwrap_or(u64::MAX);
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

/// Bounces `word` `count` times: the pinger writes odd values and waits for the next even
/// one, the ponger answers each odd value with the next even one. Bounded in time.
fn bounce(
    word: &std::sync::atomic::AtomicU32,
    pinger: bool,
    count: u64,
) -> anyhow::Result<PeerResult> {
    use std::sync::atomic::Ordering::{Acquire, Release};
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rtts = Vec::with_capacity(usize::try_from(count)?);
    let wait_for = |want: u32| -> anyhow::Result<()> {
        let mut spins = 0u32;
        while word.load(Acquire) != want {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins == 0 && Instant::now() > deadline {
                bail!("cache-line ping-pong: the peer stopped answering");
            }
        }
        Ok(())
    };
    for i in 0..count {
        let odd = u32::try_from(2 * (i % (1 << 30)) + 1)?;
        if pinger {
            let t0 = sys::now_ns();
            word.store(odd, Release);
            wait_for(odd.wrapping_add(1))?;
            rtts.push(sys::now_ns() - t0);
        } else {
            wait_for(odd)?;
            word.store(odd.wrapping_add(1), Release);
        }
    }
    rtts.sort_unstable();
    Ok(PeerResult {
        rtt_p50_ns: percentile(&rtts, 500),
        rtt_p99_ns: percentile(&rtts, 990),
        messages: count,
        elapsed_ns: 0,
        cpu_ns: 0,
    })
}

/// A linear memory in host memory (as a worker's): made by a module that exports one, since
/// only instance memories come from the host-memory creator. No wasm code runs.
struct Memory {
    store: wasmtime::Store<()>,
    memory: wasmtime::Memory,
}

impl Memory {
    fn new(bytes: usize) -> anyhow::Result<Memory> {
        let engine = wasm_ipc_runtime::plugin::engine()?;
        let mut store = wasmtime::Store::new(&engine, ());
        let pages = bytes.div_ceil(65536) + 1;
        let module =
            wasmtime::Module::new(&engine, format!("(module (memory (export \"m\") {pages}))"))?;
        let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
        let memory = instance.get_memory(&mut store, "m").context("memory")?;
        Ok(Memory { store, memory })
    }

    /// The output window (at 64 KiB) and the input window after it.
    fn windows(&mut self, out_len: usize, in_len: usize) -> (Window<'_>, Window<'_>) {
        let bytes = self.memory.data_mut(&mut self.store);
        let (low, high) = bytes.split_at_mut(65536 + out_len);
        let out = Window::in_memory(&mut low[65536..], 0, u32::try_from(out_len).unwrap_or(0))
            .unwrap_or(Window::empty());
        let input = Window::in_memory(high, 0, u32::try_from(in_len).unwrap_or(0))
            .unwrap_or(Window::empty());
        (out, input)
    }
}

// ---- Machine and results --------------------------------------------------------------------

/// CPU model, cores, kernel, clock source, host name and this version: what a figure was
/// measured on.
pub fn machine() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    if let Some(cpu) = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
    {
        m.insert(
            "cpu".into(),
            cpu.split(':').nth(1).unwrap_or("").trim().to_string(),
        );
    }
    m.insert(
        "cores".into(),
        std::thread::available_parallelism()
            .map_or(0, |n| n.get())
            .to_string(),
    );
    m.insert(
        "kernel".into(),
        read("/proc/sys/kernel/osrelease").trim().to_string(),
    );
    m.insert(
        "clocksource".into(),
        read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .trim()
            .to_string(),
    );
    m.insert(
        "host".into(),
        read("/proc/sys/kernel/hostname").trim().to_string(),
    );
    m.insert("wasm-ipc".into(), env!("CARGO_PKG_VERSION").into());
    m
}

/// The throughput shape's capacity at `size`: 16 (iceoryx2's subscriber buffer), or less where
/// `msg`'s sockets cannot hold 16 unread messages of that size under this machine's
/// `net.core.wmem_max` (7 at 1 MiB by default) — then every contender of ours runs the smaller
/// window, so that `capacity` means the same on each.
fn throughput_capacity(size: u64) -> u32 {
    let msg = backend::of(BackendKind::Msg);
    (1..=16u32)
        .rev()
        .find(|&capacity| {
            msg.refuse(&backend::ChannelShape {
                producers: 1,
                consumers: 1,
                slot_size: size,
                capacity: u64::from(capacity),
            })
            .is_none()
        })
        .unwrap_or(1)
}

/// `benches/results/<date>-<host>/`: raw.json (every sample), table.txt, machine.txt.
fn save(r: &Results, opts: &Options) -> anyhow::Result<PathBuf> {
    let base = opts
        .out
        .clone()
        .unwrap_or_else(|| crate::repo_root().join("benches/results"));
    let date = Command::new("date")
        .arg("+%Y-%m-%dT%H%M%S")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "undated".into());
    let host: String = r
        .machine
        .get("host")
        .map_or("machine", String::as_str)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = base.join(format!("{date}-{host}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("raw.json"), serde_json::to_string_pretty(r)?)?;
    std::fs::write(dir.join("table.txt"), table(r))?;
    let mut machine = String::new();
    for (k, v) in &r.machine {
        let _ = writeln!(machine, "{k}: {v}");
    }
    std::fs::write(dir.join("machine.txt"), machine)?;
    Ok(dir)
}
