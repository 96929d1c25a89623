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
use wasm_ipc_scenario::{BackendKind, Overflow, Scenario, SyncMode, WaitMode};
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
    /// Which parts run (`--only`).
    pub parts: Parts,
}

/// The parts of a bench run (`--only ping-pong,throughput,fan,languages`); all by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    /// The 64 B ping-pong.
    pub ping_pong: bool,
    /// One producer → one consumer at every size.
    pub throughput: bool,
    /// Fan-out 1→2 and 1→4, fan-in 2→1 and 4→1, at 64 B, 4 KiB and 64 KiB.
    pub fan: bool,
    /// Every plugin language, producer → consumer on shm: size, compile, start-up, RSS,
    /// messages/s.
    pub languages: bool,
}

impl Default for Parts {
    fn default() -> Parts {
        Parts {
            ping_pong: true,
            throughput: true,
            fan: true,
            languages: true,
        }
    }
}

impl Parts {
    /// The names `--only` takes.
    pub const NAMES: [&str; 4] = ["ping-pong", "throughput", "fan", "languages"];

    /// Only the named parts; an unknown name is an error that lists the known ones.
    pub fn only<S: AsRef<str>>(names: &[S]) -> anyhow::Result<Parts> {
        let mut parts = Parts {
            ping_pong: false,
            throughput: false,
            fan: false,
            languages: false,
        };
        for name in names {
            match name.as_ref() {
                "ping-pong" => parts.ping_pong = true,
                "throughput" => parts.throughput = true,
                "fan" => parts.fan = true,
                "languages" => parts.languages = true,
                other => bail!(
                    "--only: no part {other:?} (parts: {})",
                    Parts::NAMES.join(", ")
                ),
            }
        }
        Ok(parts)
    }
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
    /// One-way latency, RTT/2, mean, ns (ping-pong; runs before 2026-12-06 have none).
    #[serde(default)]
    pub one_way_mean_ns: Option<f64>,
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
            one_way_mean_ns: None,
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

/// The fan shapes: (pattern, producers, consumers). Fan-out broadcasts (every consumer gets
/// every message), fan-in merges (one link per producer).
const FANS: [(&str, usize, usize); 4] = [
    ("fan-out 1→2", 1, 2),
    ("fan-out 1→4", 1, 4),
    ("fan-in 2→1", 2, 1),
    ("fan-in 4→1", 4, 1),
];

/// Message sizes of the fan rows.
const FAN_SIZES: [u64; 3] = [64, 4096, 65536];

/// The backends with a native floor: every one that stays on one host (a `bench-peer` pair
/// over its own code). `zenoh`'s floor would be the engine's own benchmark.
fn native_kinds() -> impl Iterator<Item = BackendKind> {
    BackendKind::ALL.into_iter().filter(|k| !k.crosses_hosts())
}

/// The pattern name of a shape with this many producers and consumers (`throughput`: 1→1).
fn fan_pattern(producers: usize, consumers: usize) -> &'static str {
    FANS.iter()
        .find(|f| f.1 == producers && f.2 == consumers)
        .map_or("throughput", |f| f.0)
}

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
    let mut rig = Rig {
        opts,
        exe,
        plugins,
        iceoryx2,
        session: session_options(exe, "bench", opts.token_file.as_deref()),
        matrices: BTreeMap::new(),
        tag: format!("bench{}", std::process::id()),
        samples: Vec::new(),
    };
    for round in 0..rounds {
        eprintln!("wasm-ipc bench: round {} of {rounds}", round + 1);
        rig.samples
            .push(memcpy(round, if opts.quick { 8 << 20 } else { 64 << 20 }));
        rig.samples.push(cache_line(
            exe,
            round,
            if opts.quick { 2_000 } else { 100_000 },
        )?);
        if opts.parts.ping_pong {
            rig.ping_pong(pings, round)?;
        }
        if opts.parts.throughput {
            for &(size, count) in &counts {
                rig.flow((1, 1), size, count, round)?;
            }
        }
        if opts.parts.languages {
            rig.languages(opts.quick, round)?;
        }
        if opts.parts.fan {
            for (_, producers, consumers) in FANS {
                for size in FAN_SIZES {
                    rig.flow(
                        (producers, consumers),
                        size,
                        fan_count(size, opts.quick),
                        round,
                    )?;
                }
            }
        }
    }
    let plugins = rig.plugins.clone();
    let mut samples = std::mem::take(&mut rig.samples);
    drop(rig);
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

/// What every contender of a bench run shares, and the samples so far.
struct Rig<'a> {
    opts: &'a Options,
    exe: &'a Path,
    plugins: PathBuf,
    iceoryx2: Option<PathBuf>,
    session: supervisor::Options,
    /// The WASM contenders' scenarios, by shape and size (each parsed and compiled once).
    matrices: BTreeMap<String, Matrix>,
    tag: String,
    samples: Vec<Sample>,
}

impl Rig<'_> {
    /// One round of the 64 B ping-pong: native floors, every backend, across hosts (with
    /// `--across`), iceoryx2.
    fn ping_pong(&mut self, pings: u64, round: u32) -> anyhow::Result<()> {
        for kind in native_kinds() {
            let s = native(self.exe, kind, Shape::PingPong, 64, pings, round, &self.tag)?;
            self.samples.push(s);
        }
        let across = self.opts.across.as_ref();
        for (kind, across) in BackendKind::ALL
            .into_iter()
            .map(|k| (k, None))
            .chain(across.map(|a| (BackendKind::Zenoh, Some(a))))
        {
            let sc = wasm_scenario(
                &self.plugins,
                &mut self.matrices,
                &self.session,
                Shape::PingPong,
                64,
                pings,
                across,
                kind,
                true,
                false,
            )?;
            self.samples
                .push(wasm(sc, kind, "ping-pong", 64, pings, round)?);
        }
        for tls in [false, true] {
            for one_thread in [false, true] {
                self.samples.push(zenoh_native(
                    self.exe, true, 64, pings, round, one_thread, tls,
                )?);
            }
        }
        // The product on plain links, against the engine on plain TCP (`wasm-zenoh` is
        // sealed, the default); then with ports that never sleep (`wait = "spin"`: on zenoh
        // they yield to the engine's threads), which spares the wake-ups at the cost of the
        // CPU they spin on, plain and sealed.
        for (seal, spin, contender) in [
            (false, false, "wasm-zenoh-plain"),
            (false, true, "wasm-zenoh-spin"),
            (true, true, "wasm-zenoh-spin-sealed"),
        ] {
            let sc = wasm_scenario(
                &self.plugins,
                &mut self.matrices,
                &self.session,
                Shape::PingPong,
                64,
                pings,
                None,
                BackendKind::Zenoh,
                seal,
                spin,
            )?;
            let mut sample = wasm(sc, BackendKind::Zenoh, "ping-pong", 64, pings, round)?;
            sample.contender = contender.into();
            self.samples.push(sample);
        }
        if let Some(ice) = &self.iceoryx2 {
            self.samples
                .push(iceoryx2_run(ice, "ping-pong", 64, pings, round)?);
            self.samples
                .push(iceoryx2_run(ice, "ping-pong-threads", 64, pings, round)?);
        }
        Ok(())
    }

    /// One round of a flow (`producers` → `consumers`, `count` messages per producer) at
    /// `size`: the native floors and the product on each, the product on every other backend
    /// (and across hosts with `--across`, 1→1 only), iceoryx2 (1→1 only).
    /// Every plugin language, producer and consumer in the same language on `shm`: module
    /// size, compile time cold and from the cache, start-up, peak RSS, and messages/s at
    /// [`LANGUAGE_SIZES`] (the consumer checks nothing, as in the other flows).
    fn languages(&mut self, quick: bool, round: u32) -> anyhow::Result<()> {
        let engine = wasm_ipc_runtime::plugin::engine()?;
        for lang in LANGUAGES {
            let (producer, consumer) = language_plugins(&self.plugins, lang)?;
            let bytes = std::fs::read(&producer)
                .with_context(|| format!("reading {}", producer.display()))?;
            let (cold, cached) = compile_times(&engine, &bytes)?;
            for size in LANGUAGE_SIZES {
                // About a second for the slowest language (JavaScript) at each size.
                let count: u64 = match (quick, size) {
                    (true, _) => 500,
                    (false, 64) => 100_000,
                    (false, _) => 20_000,
                };
                let key = format!("lang-{lang}-{size}-{count}");
                if !self.matrices.contains_key(&key) {
                    let text = one_to_one(
                        &format!("bench-language-{lang}"),
                        [&producer, &consumer],
                        size,
                        count,
                        16,
                        "verify = \"full\"",
                    );
                    let sc = Scenario::parse(Path::new("bench-language.toml"), &text)?;
                    let m = Matrix::new(
                        &sc,
                        &[BackendKind::Shm],
                        &[],
                        self.session.clone(),
                        Mode::Once,
                    )?;
                    self.matrices.insert(key.clone(), m);
                }
                let m = self.matrices.get_mut(&key).expect("inserted above");
                let (point, record) = m.run_one(0, BackendKind::Shm, round)?;
                let r = RunReport::new(&point.scenario, &record);
                if !r.ok {
                    bail!(
                        "{lang} producer → consumer at {size} B failed: {}",
                        r.error.unwrap_or_default()
                    );
                }
                let mut sample =
                    Sample::new(&format!("lang-{lang}"), "language", size, round, r.messages);
                sample.msgs_per_s = Some(r.msgs_per_s);
                let cpu: f64 = r.processes.iter().map(|p| p.user_s + p.sys_s).sum::<f64>() * 1e9;
                sample.cpu_ns_per_msg = Some(cpu / r.messages.max(1) as f64);
                let ready = r.processes.iter().map(|p| p.ready_ns).max().unwrap_or(0);
                let rss = r.processes.iter().map(|p| p.max_rss_kib).max().unwrap_or(0);
                for (k, v) in [
                    ("module_bytes", bytes.len() as f64),
                    ("compile_cold_ns", cold),
                    ("compile_cached_ns", cached),
                    ("ready_ns", ready as f64),
                    ("rss_kib", rss as f64),
                ] {
                    sample.notes.insert(k.into(), v.to_string());
                }
                self.samples.push(sample);
            }
        }
        Ok(())
    }

    fn flow(
        &mut self,
        (producers, consumers): (usize, usize),
        size: u64,
        count: u64,
        round: u32,
    ) -> anyhow::Result<()> {
        let pattern = fan_pattern(producers, consumers);
        let one_to_one = (producers, consumers) == (1, 1);
        let shape = Shape::Flow {
            producers,
            consumers,
        };
        for kind in native_kinds() {
            // A message larger than the mechanism carries here (mq's message size, one UDP
            // datagram) has no row: the table says why.
            if !carries(kind, size, producers, consumers) {
                continue;
            }
            let s = native(self.exe, kind, shape, size, count, round, &self.tag)?;
            self.samples.push(s);
            let sc = wasm_scenario(
                &self.plugins,
                &mut self.matrices,
                &self.session,
                shape,
                size,
                count,
                None,
                kind,
                true,
                false,
            )?;
            let mut sample = wasm(sc, kind, pattern, size, count, round)?;
            sample.notes.insert(
                "capacity".into(),
                flow_capacity(size, producers, consumers, kind).to_string(),
            );
            self.samples.push(sample);
        }
        // zenoh: the plugins only (its native floor would be the engine's own benchmark), on
        // this machine and, with --across, between two hosts.
        let across = self.opts.across.as_ref().filter(|_| one_to_one);
        for across in std::iter::once(None).chain(across.map(Some)) {
            let sc = wasm_scenario(
                &self.plugins,
                &mut self.matrices,
                &self.session,
                shape,
                size,
                count,
                across,
                BackendKind::Zenoh,
                true,
                false,
            )?;
            let mut sample = wasm(sc, BackendKind::Zenoh, pattern, size, count, round)?;
            sample.notes.insert(
                "capacity".into(),
                flow_capacity(size, producers, consumers, BackendKind::Zenoh).to_string(),
            );
            self.samples.push(sample);
        }
        if one_to_one {
            // The engine's own shape, beside the product on zenoh with a window that does not
            // bind and no bytes touched, as the engine's examples touch none.
            for tls in [false, true] {
                for one_thread in [false, true] {
                    self.samples.push(zenoh_native(
                        self.exe, false, size, count, round, one_thread, tls,
                    )?);
                }
                let m = wasm_zenoh_open(
                    &self.plugins,
                    &mut self.matrices,
                    &self.session,
                    size,
                    count,
                    tls,
                )?;
                let mut sample = wasm(m, BackendKind::Zenoh, "throughput", size, count, round)?;
                sample.contender = if tls {
                    "wasm-zenoh-open-sealed"
                } else {
                    "wasm-zenoh-open"
                }
                .into();
                sample
                    .notes
                    .insert("capacity".into(), OPEN_WINDOW.to_string());
                self.samples.push(sample);
            }
        }
        if let Some(ice) = self.iceoryx2.as_ref().filter(|_| one_to_one) {
            self.samples
                .push(iceoryx2_run(ice, "throughput", size, count, round)?);
        }
        Ok(())
    }
}

/// A 1→1 flow scenario: `producer` streams `count` pattern messages of `size` bytes to
/// `consumer`, which checks nothing and expects them all, through a channel of `capacity`;
/// `run` holds the further `[run]` keys (one per line).
fn one_to_one(
    name: &str,
    [producer, consumer]: [&Path; 2],
    size: u64,
    count: u64,
    capacity: u32,
    run: &str,
) -> String {
    format!(
        r#"name = "{name}"
[[plugin]]
name = "producer"
wasm = "{p}"
config = {{ count = {count}, size = {size}, seed = 1 }}
[[plugin]]
name = "consumer"
wasm = "{c}"
config = {{ seed = 1, expect = {count}, check = "none" }}
[[channel]]
from = "producer.out"
to = "consumer.in"
slot_size = {size}
capacity = {capacity}
[run]
{run}
timeout = "300s"
"#,
        p = producer.display(),
        c = consumer.display(),
    )
}

/// The languages of the `languages` part, in the table's order.
const LANGUAGES: [&str; 7] = [
    "rust",
    "c",
    "assemblyscript",
    "zig",
    "wat",
    "python",
    "javascript",
];

/// The message sizes of the `languages` part.
const LANGUAGE_SIZES: [u64; 2] = [64, 4096];

/// A language's example producer and consumer (Rust's from the plugins workspace, the others'
/// from `plugins/target/lang/<lang>/`).
fn language_plugins(rust: &Path, lang: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = if lang == "rust" {
        rust.to_path_buf()
    } else {
        crate::repo_root().join("plugins/target/lang").join(lang)
    };
    let (p, c) = (dir.join("producer.wasm"), dir.join("consumer.wasm"));
    for f in [&p, &c] {
        if !f.exists() {
            bail!(
                "{} is missing: build every language's plugins first (sh plugins/build-all.sh)",
                f.display()
            );
        }
    }
    Ok((p, c))
}

/// How long `bytes` takes to compile, and to load from the compiled code as the disk cache
/// holds it (a private temporary folder), ns.
fn compile_times(engine: &wasmtime::Engine, bytes: &[u8]) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    let code = wasm_ipc_runtime::plugin::compile_code(engine, bytes)?;
    let cold = start.elapsed().as_nanos() as f64;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("code.cwasm");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(&code.serialize()?)?;
    }
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let start = Instant::now();
    sys::deserialize_cached(engine, &path)?;
    Ok((cold, start.elapsed().as_nanos() as f64))
}

/// Messages per producer in a fan row at `size`: about 64 MiB a producer (1 MiB quick),
/// 256–20000 (16–500 quick).
fn fan_count(size: u64, quick: bool) -> u64 {
    if quick {
        ((1 << 20) / size).clamp(16, 500)
    } else {
        ((64 << 20) / size).clamp(256, 20_000)
    }
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
    let v: Vec<f64> = samples
        .iter()
        .filter(|s| s.contender == contender && s.pattern == pattern && s.size == size)
        .filter_map(f)
        .collect();
    spread(v)
}

/// Median and range of a numeric note `key` over the samples of (contender, pattern, size).
fn stat_note(
    samples: &[Sample],
    contender: &str,
    pattern: &str,
    size: u64,
    key: &str,
) -> Option<(f64, f64, f64)> {
    spread(
        samples
            .iter()
            .filter(|s| s.contender == contender && s.pattern == pattern && s.size == size)
            .filter_map(|s| s.notes.get(key)?.parse().ok())
            .collect(),
    )
}

/// The median, smallest and largest of `v`; `None` when it is empty.
fn spread(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
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
    let has = |pattern: &str| s.iter().any(|x| x.pattern == pattern);
    if has("ping-pong") {
        let _ = writeln!(
            out,
            "\nping-pong, 64 B, one-way = RTT/2 as the application sees it"
        );
        let _ = writeln!(
            out,
            "  {:<18} {:<34} {:<34} {:<34} cpu/round trip",
            "contender", "p50", "mean", "p99"
        );
        for c in &contenders(s, "ping-pong") {
            let c = c.as_str();
            let _ = writeln!(
                out,
                "  {:<18} {:<34} {:<34} {:<34} {}",
                c,
                cell(stat(s, c, "ping-pong", 64, |x| x.one_way_p50_ns), show_ns),
                cell(stat(s, c, "ping-pong", 64, |x| x.one_way_mean_ns), show_ns),
                cell(stat(s, c, "ping-pong", 64, |x| x.one_way_p99_ns), show_ns),
                cell(stat(s, c, "ping-pong", 64, |x| x.cpu_ns_per_msg), show_ns)
            );
        }
    }
    if has("throughput") {
        let _ = writeln!(out, "\nthroughput, one producer → one consumer");
        let _ = writeln!(
            out,
            "  {:<8} {:<17} {:<36} {:<36} capacity",
            "size", "contender", "messages/s", "cpu/message"
        );
        for size in SIZES {
            for c in &contenders(s, "throughput") {
                let c = c.as_str();
                let sample = s
                    .iter()
                    .find(|x| x.contender == c && x.pattern == "throughput" && x.size == size);
                let kind = c
                    .strip_prefix("native-")
                    .or_else(|| c.strip_prefix("wasm-"))
                    .and_then(BackendKind::from_name);
                let capacity = match (sample, kind) {
                    (Some(x), _) => x.notes.get("capacity").map_or("", String::as_str),
                    (None, Some(k)) if !carries(k, size, 1, 1) => {
                        "not carried: beyond its message limit here (`check` names it)"
                    }
                    _ => "",
                };
                let _ = writeln!(
                    out,
                    "  {:<8} {:<17} {:<36} {:<36} {}",
                    human_bytes(size as f64),
                    c,
                    cell(stat(s, c, "throughput", size, |x| x.msgs_per_s), show_rate),
                    cell(
                        stat(s, c, "throughput", size, |x| x.cpu_ns_per_msg),
                        show_ns
                    ),
                    capacity
                );
            }
        }
    }
    if s.iter().any(|x| x.pattern.starts_with("fan-")) {
        let cols: Vec<String> = contenders(s, "fan")
            .into_iter()
            .filter(|c| {
                s.iter()
                    .any(|x| &x.contender == c && x.pattern.starts_with("fan-"))
            })
            .collect();
        let _ = writeln!(
            out,
            "\nfan-out and fan-in: deliveries per second (each consumer counts every message it \
             gets), medians over rounds"
        );
        let mut head = format!("  {:<12} {:<9}", "shape", "size");
        for c in &cols {
            let _ = write!(head, " {c:<11}");
        }
        let _ = writeln!(out, "{head} wasm-shm / wasm-msg (worst–best round)");
        for (pattern, _, _) in FANS {
            for size in FAN_SIZES {
                let mut line = format!("  {pattern:<12} {:<9}", human_bytes(size as f64));
                for c in &cols {
                    let m = stat(s, c, pattern, size, |x| x.msgs_per_s)
                        .map_or("-".into(), |(m, _, _)| show_rate(m));
                    let _ = write!(line, " {m:<11}");
                }
                let r = ratio(s, "wasm-shm", "wasm-msg", pattern, size, |x| x.msgs_per_s)
                    .map_or("-".into(), |(m, lo, hi)| {
                        format!("{m:.2} ({lo:.2}–{hi:.2})")
                    });
                let _ = writeln!(out, "{line} {r}");
            }
        }
    }
    if s.iter().any(|x| x.pattern == "language") {
        let _ = writeln!(
            out,
            "\nlanguages: producer and consumer in the same language, on shm (core modules; Python and \
             JavaScript are components)"
        );
        let _ = writeln!(
            out,
            "  {:<15} {:<10} {:<26} {:<26} {:<26} {:<26} {:<30} {:<30}",
            "language",
            "module",
            "compile, cold",
            "compile, cached",
            "start-up (slowest)",
            "peak RSS (largest)",
            "messages/s, 64 B",
            "messages/s, 4.0 KiB"
        );
        let ms = |v: f64| format!("{:.1} ms", v / 1e6);
        let kib = |v: f64| human_bytes(v * 1024.0);
        for lang in LANGUAGES {
            let c = format!("lang-{lang}");
            let note = |key: &str| stat_note(s, &c, "language", 64, key);
            let module = note("module_bytes").map_or("-".into(), |(m, _, _)| human_bytes(m));
            let _ = writeln!(
                out,
                "  {lang:<15} {module:<10} {:<26} {:<26} {:<26} {:<26} {:<30} {:<30}",
                cell(note("compile_cold_ns"), ms),
                cell(note("compile_cached_ns"), ms),
                cell(note("ready_ns"), ms),
                cell(note("rss_kib"), kib),
                cell(stat(s, &c, "language", 64, |x| x.msgs_per_s), show_rate),
                cell(stat(s, &c, "language", 4096, |x| x.msgs_per_s), show_rate),
            );
        }
    }
    let mut ratios = String::new();
    for (what, a, b, pattern, f) in ratio_rows() {
        for size in if pattern == "ping-pong" {
            vec![64]
        } else {
            SIZES.to_vec()
        } {
            if let Some((m, lo, hi)) = ratio(s, a, b, pattern, size, f) {
                let _ = writeln!(
                    ratios,
                    "  {what:<44} {:>8}  {m:.2} ({lo:.2}–{hi:.2})",
                    human_bytes(size as f64)
                );
            }
        }
    }
    if !ratios.is_empty() {
        let _ = writeln!(out, "\nratios (median of the per-round ratios)");
        out.push_str(&ratios);
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
    for kind in native_kinds() {
        list.push(format!("native-{}", kind.name()));
        list.push(format!("wasm-{}", kind.name()));
    }
    for kind in BackendKind::ALL {
        if !kind.crosses_hosts() {
            continue;
        }
        list.push(format!("wasm-{}", kind.name()));
        let across = format!("wasm-{}-across", kind.name());
        if kind.crosses_hosts() && s.iter().any(|x| x.contender == across) {
            list.push(across);
        }
    }
    // The engine's own shapes, and the product on zenoh with a window that does not bind.
    for c in [
        "wasm-zenoh-plain",
        "wasm-zenoh-spin",
        "wasm-zenoh-spin-sealed",
        "wasm-zenoh-open",
        "wasm-zenoh-open-sealed",
        "zenoh-native",
        "zenoh-native-1t",
        "zenoh-native-tls",
        "zenoh-native-1t-tls",
    ] {
        if s.iter().any(|x| x.contender == c && x.pattern == pattern) {
            list.push(c.into());
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
            "wasm-shm / iceoryx2, one-way mean",
            "wasm-shm",
            "iceoryx2",
            "ping-pong",
            |x| x.one_way_mean_ns,
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
            "wasm-pipe / native-pipe, messages/s",
            "wasm-pipe",
            "native-pipe",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-zenoh / zenoh-native, one-way mean",
            "wasm-zenoh",
            "zenoh-native",
            "ping-pong",
            |x| x.one_way_mean_ns,
        ),
        (
            "wasm-zenoh / zenoh-native-1t, one-way mean",
            "wasm-zenoh",
            "zenoh-native-1t",
            "ping-pong",
            |x| x.one_way_mean_ns,
        ),
        (
            "wasm-zenoh-open / zenoh-native, messages/s",
            "wasm-zenoh-open",
            "zenoh-native",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-zenoh-open / zenoh-native-1t, messages/s",
            "wasm-zenoh-open",
            "zenoh-native-1t",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-zenoh-plain / zenoh-native-1t, one-way mean",
            "wasm-zenoh-plain",
            "zenoh-native-1t",
            "ping-pong",
            |x| x.one_way_mean_ns,
        ),
        (
            "wasm-zenoh-spin / zenoh-native-1t, one-way mean",
            "wasm-zenoh-spin",
            "zenoh-native-1t",
            "ping-pong",
            |x| x.one_way_mean_ns,
        ),
        (
            "wasm-zenoh-spin / wasm-zenoh-plain, one-way mean (what never sleeping saves)",
            "wasm-zenoh-spin",
            "wasm-zenoh-plain",
            "ping-pong",
            |x| x.one_way_mean_ns,
        ),
        (
            "wasm-zenoh-spin-sealed / zenoh-native-1t-tls, one-way mean",
            "wasm-zenoh-spin-sealed",
            "zenoh-native-1t-tls",
            "ping-pong",
            |x| x.one_way_mean_ns,
        ),
        (
            "wasm-zenoh / zenoh-native-1t-tls, one-way mean",
            "wasm-zenoh",
            "zenoh-native-1t-tls",
            "ping-pong",
            |x| x.one_way_mean_ns,
        ),
        (
            "wasm-zenoh / wasm-zenoh-plain, one-way mean (what sealing costs)",
            "wasm-zenoh",
            "wasm-zenoh-plain",
            "ping-pong",
            |x| x.one_way_mean_ns,
        ),
        (
            "wasm-zenoh-open-sealed / zenoh-native-tls, messages/s",
            "wasm-zenoh-open-sealed",
            "zenoh-native-tls",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-zenoh-open-sealed / wasm-zenoh-open, messages/s (what sealing costs)",
            "wasm-zenoh-open-sealed",
            "wasm-zenoh-open",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "zenoh-native-tls / zenoh-native, messages/s (what TLS costs the engine)",
            "zenoh-native-tls",
            "zenoh-native",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-pipe / wasm-msg, messages/s",
            "wasm-pipe",
            "wasm-msg",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-mq / native-mq, messages/s",
            "wasm-mq",
            "native-mq",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-mq / wasm-msg, messages/s",
            "wasm-mq",
            "wasm-msg",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-udp / native-udp, messages/s",
            "wasm-udp",
            "native-udp",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-udp / wasm-tcp, messages/s",
            "wasm-udp",
            "wasm-tcp",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-tcp / native-tcp, messages/s",
            "wasm-tcp",
            "native-tcp",
            "throughput",
            |x| x.msgs_per_s,
        ),
        (
            "wasm-zenoh / wasm-tcp, messages/s",
            "wasm-zenoh",
            "wasm-tcp",
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
        "ping-pong one-way mean at 64 B on shm ≤ 0.8 × iceoryx2 (two processes)".into(),
        ratio(s, "wasm-shm", "iceoryx2", "ping-pong", 64, |x| {
            x.one_way_mean_ns
        }),
        |m| m <= 0.8,
        " ×",
    );
    for size in SIZES {
        add(
            format!(
                "shm throughput ≥ 1.0 × iceoryx2 at {}",
                human_bytes(size as f64)
            ),
            ratio(s, "wasm-shm", "iceoryx2", "throughput", size, rate),
            |m| m >= 1.0,
            " ×",
        );
    }
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
    // zenoh against the engine's own shapes under its best runtime configuration (the
    // faster of the default and the one handed over to one thread, by median).
    let best = |runtimes: [&'static str; 2], pattern: &str, size: u64, f: Pick, lower: bool| {
        runtimes
            .into_iter()
            .filter_map(|c| stat(s, c, pattern, size, f).map(|(m, _, _)| (c, m)))
            .min_by(|a, b| {
                if lower {
                    a.1.total_cmp(&b.1)
                } else {
                    b.1.total_cmp(&a.1)
                }
            })
            .map(|(c, _)| c)
    };
    let mean: Pick = |x| x.one_way_mean_ns;
    // Plain links on both sides, then sealed against the engine over TLS.
    for (links, product, open, runtimes) in [
        (
            "plain",
            "wasm-zenoh-plain",
            "wasm-zenoh-open",
            ["zenoh-native", "zenoh-native-1t"],
        ),
        (
            "sealed",
            "wasm-zenoh",
            "wasm-zenoh-open-sealed",
            ["zenoh-native-tls", "zenoh-native-1t-tls"],
        ),
    ] {
        let native = best(runtimes, "ping-pong", 64, mean, true);
        add(
            format!(
                "zenoh round trip (mean), {links}, at 64 B ≤ 1.25 × the engine's own ({})",
                native.unwrap_or(runtimes[0])
            ),
            native.and_then(|n| ratio(s, product, n, "ping-pong", 64, mean)),
            |m| m <= 1.25,
            " ×",
        );
        for size in [64, 4096] {
            let native = best(runtimes, "throughput", size, rate, false);
            add(
                format!(
                    "zenoh throughput, {links}, window {OPEN_WINDOW}, nothing touched, ≥ 0.7 × \
                     the engine's own ({}) at {}",
                    native.unwrap_or(runtimes[0]),
                    human_bytes(size as f64)
                ),
                native.and_then(|n| ratio(s, open, n, "throughput", size, rate)),
                |m| m >= 0.7,
                " ×",
            );
        }
    }
    // The round trip again with ports that never sleep (`wait = "spin"`): what the product
    // reaches when it spends CPU instead of wake-ups, beside the default above.
    for (links, product, runtimes) in [
        (
            "plain",
            "wasm-zenoh-spin",
            ["zenoh-native", "zenoh-native-1t"],
        ),
        (
            "sealed",
            "wasm-zenoh-spin-sealed",
            ["zenoh-native-tls", "zenoh-native-1t-tls"],
        ),
    ] {
        let native = best(runtimes, "ping-pong", 64, mean, true);
        add(
            format!(
                "zenoh round trip (mean), {links}, wait = \"spin\", at 64 B ≤ 1.25 × the engine's \
                 own ({})",
                native.unwrap_or(runtimes[0])
            ),
            native.and_then(|n| ratio(s, product, n, "ping-pong", 64, mean)),
            |m| m <= 1.25,
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
    // shm never loses to copying, idle or loaded: every flow shape and size, by the median
    // of the per-round ratios (the worst round is the figures' low end).
    let when = if load > 0 {
        format!("with --load {load}")
    } else {
        "idle".into()
    };
    let flows = std::iter::once(("throughput", &SIZES[..]))
        .chain(FANS.iter().map(|f| (f.0, &FAN_SIZES[..])));
    for (pattern, sizes) in flows {
        for &size in sizes {
            let r = ratio(s, "wasm-shm", "wasm-msg", pattern, size, rate);
            if r.is_none() {
                continue; // a part left out with --only
            }
            let shape = if pattern == "throughput" {
                String::new()
            } else {
                format!(" on {pattern}")
            };
            add(
                format!(
                    "{when}, shm ≥ msg{shape} at {} (never worse than copying)",
                    human_bytes(size as f64)
                ),
                r,
                |m| m >= 1.0,
                " ×",
            );
        }
    }
    if load > 0 {
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

/// What a contender runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Two plugins bouncing one message.
    PingPong,
    /// `producers` each send to all `consumers` (one link per pair), as fast as they can.
    Flow { producers: usize, consumers: usize },
}

/// What a `bench-peer` process is told.
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerSpec {
    role: Role,
    size: u32,
    count: u64,
    out: Option<PortSpec>,
    input: Option<PortSpec>,
    /// The Zenoh endpoint a `zenoh-*` role listens on or connects to.
    #[serde(default)]
    endpoint: Option<String>,
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
    ZenohPing,
    ZenohPong,
    ZenohPub,
    ZenohSub,
}

/// What a `bench-peer` process measured.
#[derive(Debug, Default, Serialize, Deserialize)]
struct PeerResult {
    rtt_p50_ns: u64,
    rtt_p99_ns: u64,
    #[serde(default)]
    rtt_mean_ns: f64,
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

/// `bench-peer` processes over the product's own backend code: two for ping-pong, one per
/// producer and consumer for a flow.
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
    let (producers, consumers) = match shape {
        Shape::PingPong => (1, 1),
        Shape::Flow {
            producers,
            consumers,
        } => (producers, consumers),
    };
    let mut fds = Fds::new(if shape == Shape::PingPong {
        2
    } else {
        producers + consumers
    });
    // fds 3 and 4 are placeholders, so that port fds keep their numbers (5, …).
    let null = || std::fs::File::open("/dev/null").map(OwnedFd::from);
    let channel = |index: usize, from: &[usize], to: &[usize], capacity: u32| ChannelDesc {
        index,
        run_id: tag,
        producers: from
            .iter()
            .map(|&plugin| EndpointDesc {
                plugin,
                port: "out".into(),
            })
            .collect(),
        consumers: to
            .iter()
            .map(|&plugin| EndpointDesc {
                plugin,
                port: "in".into(),
            })
            .collect(),
        keys: (0..from.len())
            .map(|p| {
                (0..to.len())
                    .map(|q| format!("{tag}:{index}:{p}:{q}"))
                    .collect()
            })
            .collect(),
        slot_size: slot,
        capacity,
        overflow: Overflow::Block,
        sync: SyncMode::LockFree,
        wait: WaitMode::Adaptive,
        processes: from.len() + to.len(),
        endpoints: None,
        clocks: None,
        seal: false,
    };
    let pattern = match shape {
        Shape::PingPong => "ping-pong",
        Shape::Flow { .. } => fan_pattern(producers, consumers),
    };
    let specs: Vec<PeerSpec> = match shape {
        Shape::PingPong => {
            let a = imp.plan(&channel(0, &[0], &[1], 4), &mut fds)?;
            let b = imp.plan(&channel(1, &[1], &[0], 4), &mut fds)?;
            let mut a_out = a.producers.into_iter();
            let mut a_in = a.consumers.into_iter();
            let mut b_out = b.producers.into_iter();
            let mut b_in = b.consumers.into_iter();
            vec![
                PeerSpec {
                    role: Role::Ping,
                    size: slot,
                    count,
                    out: a_out.next(),
                    input: b_in.next(),
                    endpoint: None,
                },
                PeerSpec {
                    role: Role::Pong,
                    size: slot,
                    count,
                    out: b_out.next(),
                    input: a_in.next(),
                    endpoint: None,
                },
            ]
        }
        Shape::Flow { .. } => {
            let from: Vec<usize> = (0..producers).collect();
            let to: Vec<usize> = (producers..producers + consumers).collect();
            let capacity = flow_capacity(size, producers, consumers, kind);
            let a = imp.plan(&channel(0, &from, &to, capacity), &mut fds)?;
            let senders = a.producers.into_iter().map(|out| PeerSpec {
                role: Role::Send,
                size: slot,
                count,
                out: Some(out),
                input: None,
                endpoint: None,
            });
            let receivers = a.consumers.into_iter().map(|input| PeerSpec {
                role: Role::Receive,
                size: slot,
                count: count * producers as u64,
                out: None,
                input: Some(input),
                endpoint: None,
            });
            senders.chain(receivers).collect()
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
    let contender = format!("native-{}", kind.name());
    let cpu: f64 = r.iter().map(|p| p.cpu_ns as f64).sum();
    let sample = match shape {
        Shape::PingPong => {
            let mut sample = Sample::new(&contender, pattern, size, round, count);
            sample.cpu_ns_per_msg = Some(cpu / count as f64);
            sample.one_way_p50_ns = Some(r[0].rtt_p50_ns as f64 / 2.0);
            sample.one_way_p99_ns = Some(r[0].rtt_p99_ns as f64 / 2.0);
            sample.one_way_mean_ns = Some(r[0].rtt_mean_ns / 2.0);
            sample
        }
        Shape::Flow { .. } => {
            // Deliveries: every consumer counts each message it got, as the report does.
            let each = count * producers as u64;
            let received = &r[producers..];
            for (q, got) in received.iter().enumerate() {
                anyhow::ensure!(
                    got.messages == each,
                    "{pattern}: receiver {q} got {} of {each}",
                    got.messages
                );
            }
            let deliveries = each * consumers as u64;
            let secs = received
                .iter()
                .map(|p| p.elapsed_ns)
                .max()
                .unwrap_or(1)
                .max(1) as f64
                / 1e9;
            let mut sample = Sample::new(&contender, pattern, size, round, deliveries);
            sample.notes.insert(
                "capacity".into(),
                flow_capacity(size, producers, consumers, kind).to_string(),
            );
            sample.cpu_ns_per_msg = Some(cpu / deliveries as f64);
            sample.msgs_per_s = Some(deliveries as f64 / secs);
            sample.bytes_per_s = Some((deliveries * size) as f64 / secs);
            sample
        }
    };
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
    shape: Shape,
    size: u64,
    count: u64,
    across: Option<&[String; 2]>,
    kind: BackendKind,
    seal: bool,
    spin: bool,
) -> anyhow::Result<&'a mut Matrix> {
    let capacity = match shape {
        Shape::PingPong => 4,
        Shape::Flow {
            producers,
            consumers,
        } => flow_capacity(size, producers, consumers, kind),
    };
    let key = format!(
        "{shape:?}-{size}-{capacity}-{}-{seal}-{spin}",
        across.is_some()
    );
    if !cache.contains_key(&key) {
        let p = |n: &str| plugins.join(format!("{n}.wasm")).display().to_string();
        let mut text = match shape {
            Shape::PingPong => format!(
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
            Shape::Flow {
                producers,
                consumers,
            } => {
                // `instances` and `[*]` only where there are several: a 1→1 flow is the
                // plain two-plugin scenario.
                let many = |n: usize, port: &str, name: &str| {
                    if n > 1 {
                        (format!("instances = {n}\n"), format!("{name}[*].{port}"))
                    } else {
                        (String::new(), format!("{name}.{port}"))
                    }
                };
                let (p_inst, from) = many(producers, "out", "producer");
                let (c_inst, to) = many(consumers, "in", "consumer");
                format!(
                    r#"name = "bench-{name}"
[[plugin]]
name = "producer"
{p_inst}wasm = "{}"
config = {{ count = {count}, size = {size}, seed = 1 }}
[[plugin]]
name = "consumer"
{c_inst}wasm = "{}"
config = {{ seed = 1, expect = {expect}, check = "none", ordered = {ordered} }}
[[channel]]
from = "{from}"
to = "{to}"
slot_size = {size}
capacity = {capacity}
[run]
verify = "full"
timeout = "300s"
"#,
                    p("producer"),
                    p("consumer"),
                    name = fan_pattern(producers, consumers).replace([' ', '→'], "-"),
                    expect = count * producers as u64,
                    ordered = producers == 1,
                    capacity = capacity,
                )
            }
        };
        if let Some([a, b]) = across {
            // The first plugin on host a, the second on host b; the tables go in front.
            let (first, second) = match shape {
                Shape::PingPong => ("pinger", "echo"),
                Shape::Flow { .. } => ("producer", "consumer"),
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
        if !seal {
            // Plain links (`zenoh` only; the other backends have none to seal).
            text = text.replacen("[run]\n", "[run]\nseal = false\n", 1);
        }
        if spin {
            // Ports that never sleep (on `zenoh`: yielding to the engine's threads).
            text = text.replacen("[run]\n", "[run]\nwait = \"spin\"\n", 1);
        }
        let sc = Scenario::parse(Path::new("bench.toml"), &text)?;
        // The backends that admit this capacity (all but `pipe` where its pipes cannot
        // hold the window the others run).
        let kinds: Vec<BackendKind> = if across.is_some() {
            vec![BackendKind::Zenoh]
        } else {
            BackendKind::ALL
                .into_iter()
                .filter(|&k| match shape {
                    Shape::PingPong => true,
                    Shape::Flow {
                        producers,
                        consumers,
                    } => {
                        carries(k, size, producers, consumers)
                            && flow_capacity(size, producers, consumers, k) == capacity
                    }
                })
                .collect()
        };
        let matrix = Matrix::new(&sc, &kinds, &[], session.clone(), Mode::Once)?;
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
    // Round trips for ping-pong; deliveries (every consumer counts each message it got) for a
    // flow, as the report counts them.
    let n = if pattern == "ping-pong" {
        count
    } else {
        r.messages
    };
    let mut sample = Sample::new(&contender, pattern, size, round, n);
    let cpu: f64 = r.processes.iter().map(|p| p.user_s + p.sys_s).sum::<f64>() * 1e9;
    sample.cpu_ns_per_msg = Some(cpu / n.max(1) as f64);
    if pattern == "ping-pong" {
        let pinger = &r.processes[0].reports;
        sample.one_way_p50_ns = pinger.get("rtt_ns_p50").map(|&v| v as f64 / 2.0);
        sample.one_way_p99_ns = pinger.get("rtt_ns_p99").map(|&v| v as f64 / 2.0);
        sample.one_way_mean_ns = pinger.get("rtt_ns_avg").map(|&v| v as f64 / 2.0);
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
    sample.one_way_mean_ns = f("rtt_ns_avg").map(|x| x / 2.0);
    sample.msgs_per_s = f("msgs_per_s");
    sample.bytes_per_s = f("bytes_per_s");
    sample.cpu_ns_per_msg = f("cpu_ns").map(|c| c / count as f64);
    if pat == "throughput" {
        // Its subscriber buffer (`THROUGHPUT_BUFFER` in benches/iceoryx2).
        sample.notes.insert("capacity".into(), "16".into());
    }
    Ok(sample)
}

/// The window of `wasm-zenoh-open`: far beyond zenoh's bandwidth–delay product here, so that
/// the window does not bind (`scenarios/window-sweep.toml`).
const OPEN_WINDOW: u32 = 4096;

/// `wasm-zenoh-open`: the bundled producer and consumer on zenoh, 1→1, with a window of
/// [`OPEN_WINDOW`], `verify = "off"` and the consumer's `check = "none"`: no byte is touched
/// after the producer wrote it, as in the engine's throughput example; on plain TCP (`seal =
/// false`, as the engine's example runs) or sealed (`wasm-zenoh-open-sealed`, against the
/// engine over TLS).
fn wasm_zenoh_open<'a>(
    plugins: &Path,
    cache: &'a mut BTreeMap<String, Matrix>,
    session: &supervisor::Options,
    size: u64,
    count: u64,
    seal: bool,
) -> anyhow::Result<&'a mut Matrix> {
    let key = format!("open-{size}-{count}-{seal}");
    if !cache.contains_key(&key) {
        let text = one_to_one(
            "bench-zenoh-open",
            [
                &plugins.join("producer.wasm"),
                &plugins.join("consumer.wasm"),
            ],
            size,
            count,
            OPEN_WINDOW,
            &format!("verify = \"off\"\nseal = {seal}"),
        );
        let sc = Scenario::parse(Path::new("bench-zenoh-open.toml"), &text)?;
        let matrix = Matrix::new(&sc, &[BackendKind::Zenoh], &[], session.clone(), Mode::Once)?;
        cache.insert(key.clone(), matrix);
    }
    Ok(cache.get_mut(&key).expect("inserted above"))
}

/// `zenoh-native` (`one_thread`: `zenoh-native-1t`): the engine's own ping-pong
/// (`ping_pong`) or throughput shape in two `bench-peer` processes (`zenoh_native`), on a
/// free port of 127.0.0.1; `-1t` hands the engine's runtimes over to one thread, as the
/// product's workers do (`ZENOH_RUNTIME`).
fn zenoh_native(
    exe: &Path,
    ping_pong: bool,
    size: u64,
    count: u64,
    round: u32,
    one_thread: bool,
    tls: bool,
) -> anyhow::Result<Sample> {
    let (port, probe) = backend::free_port(std::net::Ipv4Addr::LOCALHOST.into())?;
    // Released for the listener, which binds it next.
    drop(probe);
    let endpoint = format!("{}/127.0.0.1:{port}", if tls { "tls" } else { "tcp" });
    // A fresh token per pair: the two peers derive their TLS authority from it.
    let token = {
        let mut b = [0u8; 16];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut b)?;
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    let roles = if ping_pong {
        [Role::ZenohPong, Role::ZenohPing]
    } else {
        [Role::ZenohSub, Role::ZenohPub]
    };
    let mut peers = Vec::new();
    for role in roles {
        let spec = PeerSpec {
            role,
            size: u32::try_from(size)?,
            count,
            out: None,
            input: None,
            endpoint: Some(endpoint.clone()),
        };
        let mut cmd = Command::new(exe);
        cmd.arg("bench-peer")
            .arg(serde_json::to_string(&spec)?)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if one_thread {
            cmd.env("ZENOH_RUNTIME", backend::zenoh::RUNTIME);
        }
        if tls {
            cmd.env(crate::zenoh_native::TLS_TOKEN_VAR, &token);
        }
        peers.push(cmd.spawn().context("starting a zenoh bench peer")?);
    }
    let results = drive(peers)?;
    let [listener, dialer] = &results[..] else {
        bail!("zenoh bench: two results expected");
    };
    let contender = match (one_thread, tls) {
        (false, false) => "zenoh-native",
        (true, false) => "zenoh-native-1t",
        (false, true) => "zenoh-native-tls",
        (true, true) => "zenoh-native-1t-tls",
    };
    let pattern = if ping_pong { "ping-pong" } else { "throughput" };
    let mut sample = Sample::new(contender, pattern, size, round, count);
    let cpu = (listener.cpu_ns + dialer.cpu_ns) as f64;
    sample.cpu_ns_per_msg = Some(cpu / count.max(1) as f64);
    if ping_pong {
        sample.one_way_p50_ns = Some(dialer.rtt_p50_ns as f64 / 2.0);
        sample.one_way_p99_ns = Some(dialer.rtt_p99_ns as f64 / 2.0);
        sample.one_way_mean_ns = Some(dialer.rtt_mean_ns / 2.0);
    } else if listener.elapsed_ns > 0 {
        let secs = listener.elapsed_ns as f64 / 1e9;
        sample.msgs_per_s = Some(count as f64 / secs);
        sample.bytes_per_s = Some((count * size) as f64 / secs);
    }
    sample.notes.insert(
        "runtime".into(),
        if one_thread {
            "handed over to one thread (as wasm-ipc's workers)".into()
        } else {
            "the engine's default".into()
        },
    );
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
            endpoint: None,
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

/// Background processes that spin on the CPU while they live (`--load N`; `--explain`'s
/// loaded synchronisation runs).
pub(crate) struct Load(Vec<Child>);

impl Load {
    /// Starts `n` spinners from `exe` (`wasm-ipc bench-peer`).
    pub(crate) fn start(exe: &Path, n: u32) -> anyhow::Result<Load> {
        let mut spinners = Vec::new();
        for _ in 0..n {
            let spec = PeerSpec {
                role: Role::Spin,
                size: 0,
                count: 0,
                out: None,
                input: None,
                endpoint: None,
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
    if let Some(side) = match spec.role {
        Role::ZenohPing => Some(crate::zenoh_native::Side::Ping),
        Role::ZenohPong => Some(crate::zenoh_native::Side::Pong),
        Role::ZenohPub => Some(crate::zenoh_native::Side::Pub),
        Role::ZenohSub => Some(crate::zenoh_native::Side::Sub),
        _ => None,
    } {
        let endpoint = spec
            .endpoint
            .as_deref()
            .context("a zenoh peer needs an endpoint")?;
        let m = crate::zenoh_native::run(side, endpoint, spec.size as usize, spec.count, ready)?;
        let mean = if m.rtts.is_empty() {
            0.0
        } else {
            m.rtts.iter().sum::<u64>() as f64 / m.rtts.len() as f64
        };
        return finish(PeerResult {
            rtt_p50_ns: percentile(&m.rtts, 500),
            rtt_p99_ns: percentile(&m.rtts, 990),
            rtt_mean_ns: mean,
            messages: m.messages,
            elapsed_ns: m.elapsed_ns,
            cpu_ns: 0,
        });
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
    let rtt_mean_ns = rtts.iter().map(|&r| r as f64).sum::<f64>() / rtts.len().max(1) as f64;
    finish(PeerResult {
        rtt_p50_ns: percentile(&rtts, 500),
        rtt_p99_ns: percentile(&rtts, 990),
        rtt_mean_ns,
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
        rtt_mean_ns: rtts.iter().map(|&r| r as f64).sum::<f64>() / rtts.len().max(1) as f64,
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

/// A flow's capacity at `size` on `kind`: 16 (iceoryx2's subscriber buffer), or less where
/// `msg`'s sockets cannot hold 16 unread messages of that size under `net.core.wmem_max` (7 at
/// 1 MiB by default) — then every contender runs the smaller window, so that `capacity` means
/// the same on each — and, on a backend with a tighter limit of its own (`pipe` under
/// `fs.pipe-max-size`: 15 at 64 KiB, 1 at 1 MiB), the most it admits.
/// Whether `kind` carries messages of `size` between `producers` and `consumers` on this
/// machine at all (at capacity 1): not so above mq's `fs.mqueue.msgsize_max` or one UDP
/// datagram.
fn carries(kind: BackendKind, size: u64, producers: usize, consumers: usize) -> bool {
    kind.crosses_hosts()
        || backend::of(kind)
            .refuse(&backend::ChannelShape {
                producers: producers as u64,
                consumers: consumers as u64,
                slot_size: size,
                capacity: 1,
                overflow: Overflow::Block,
                sync: SyncMode::LockFree,
            })
            .is_none()
}

fn flow_capacity(size: u64, producers: usize, consumers: usize, kind: BackendKind) -> u32 {
    let shape = |capacity: u32| backend::ChannelShape {
        producers: producers as u64,
        consumers: consumers as u64,
        slot_size: size,
        capacity: u64::from(capacity),
        overflow: Overflow::Block,
        sync: SyncMode::LockFree,
    };
    let local = if kind.crosses_hosts() {
        BackendKind::Msg
    } else {
        kind
    };
    (1..=16u32)
        .rev()
        .find(|&capacity| {
            [BackendKind::Msg, local]
                .iter()
                .all(|&k| backend::of(k).refuse(&shape(capacity)).is_none())
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
