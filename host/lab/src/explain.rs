//! `compare --explain`: the textbook's table of shared memory against message passing, aspect
//! by aspect, filled with this machine's figures from runs it makes now.
//!
//! Each row names the experiments it read: a bundled scenario (`scenarios/…`, or one of the
//! fixtures under `scenarios/explain/`) with the overrides it ran with. Nothing in a row is
//! typed in: a figure the runs did not produce is a "-" and an experiment that failed where it
//! should not have is named in `problems` (and the command exits 1).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use wasm_ipc_report::html::{self, esc};
use wasm_ipc_report::{
    Interval, Report, RunReport, first_wins, human_bytes, human_ns, median_interval, round_ratios,
};
use wasm_ipc_runtime::check::{self, Resources};
use wasm_ipc_runtime::matrix::{Matrix, Mode, Step};
use wasm_ipc_runtime::supervisor;
use wasm_ipc_scenario::{BackendKind, MAX_SLOT_SIZE, Scenario};

/// One experiment: a scenario run on the backends it compares (`shm` and `msg`, the kernel's
/// other mechanisms beside them for some; `zenoh` and `auto` across hosts), whose runs some
/// rows read.
struct Experiment {
    /// How rows refer to it.
    id: &'static str,
    /// The scenario, relative to the scenarios folder.
    file: &'static str,
    /// Overrides that make the experiment (the same paths as `--set`).
    sets: &'static [&'static str],
    /// Further overrides with `--quick`: smaller counts, the same shapes.
    quick: &'static [&'static str],
    /// Whether every run of it must be ok (the misbehaving fixtures fail on purpose).
    must_pass: bool,
    /// Whether a row compares a timed figure from it: then it runs by `compare`'s plan (a
    /// warm-up, then rounds until 5 and `min_time`); else once per backend.
    measure: bool,
    /// The backends it runs on; one that `check` refuses on this machine is recorded with
    /// its reason (`Ran::refused`) and not run.
    backends: &'static [BackendKind],
}

/// What most experiments compare.
const SHM_MSG: &[BackendKind] = &[BackendKind::Shm, BackendKind::Msg];

/// The kernel's mechanisms beside shared memory (`kernel mechanisms side by side`).
const KERNEL: &[BackendKind] = &[
    BackendKind::Shm,
    BackendKind::Msg,
    BackendKind::Pipe,
    BackendKind::Mq,
    BackendKind::Tcp,
    BackendKind::Udp,
];

const LOSSY_QUICK: &[&str] = &[
    "plugin.producer.config.count=4000",
    "plugin.consumer.config.stall_after=1000",
];

/// The mechanisms that stream a frame and so carry one larger than their kernel buffer.
const STREAMS: &[BackendKind] = &[
    BackendKind::Shm,
    BackendKind::Msg,
    BackendKind::Pipe,
    BackendKind::Tcp,
];

const STREAM_QUICK: &[&str] = &[
    "plugin.producer.config.count=2000",
    "plugin.consumer.config.expect=2000",
];

/// Every experiment, in the order they run.
const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        id: "stream",
        file: "producer-consumer.toml",
        sets: &[],
        quick: STREAM_QUICK,
        must_pass: true,
        measure: true,
        backends: SHM_MSG,
    },
    Experiment {
        id: "small",
        file: "tiny-messages.toml",
        sets: &[],
        quick: &[
            "plugin.producer.config.count=5000",
            "plugin.consumer.config.expect=5000",
        ],
        must_pass: true,
        measure: true,
        backends: SHM_MSG,
    },
    Experiment {
        id: "large",
        file: "large-frames.toml",
        sets: &[],
        quick: &[
            "plugin.producer.config.count=8",
            "plugin.consumer.config.expect=8",
        ],
        must_pass: true,
        measure: true,
        backends: SHM_MSG,
    },
    Experiment {
        id: "ping-pong",
        file: "ping-pong.toml",
        sets: &[],
        quick: &["plugin.pinger.config.count=1000"],
        must_pass: true,
        measure: true,
        backends: SHM_MSG,
    },
    Experiment {
        id: "web-db",
        file: "web-db.toml",
        sets: &[],
        quick: &["plugin.web.config.pages=100"],
        must_pass: true,
        measure: true,
        backends: SHM_MSG,
    },
    Experiment {
        id: "wait-spin",
        file: "producer-consumer.toml",
        sets: &["run.wait=spin"],
        quick: STREAM_QUICK,
        must_pass: true,
        measure: true,
        backends: SHM_MSG,
    },
    Experiment {
        id: "wait-futex",
        file: "producer-consumer.toml",
        sets: &["run.wait=futex"],
        quick: STREAM_QUICK,
        must_pass: true,
        measure: true,
        backends: SHM_MSG,
    },
    Experiment {
        id: "scribbler",
        file: "explain/scribbling-consumer.toml",
        sets: &[],
        quick: &[
            "plugin.producer.config.count=2000",
            "plugin.honest.config.expect=2000",
        ],
        must_pass: false,
        measure: false,
        backends: SHM_MSG,
    },
    Experiment {
        id: "liar",
        file: "explain/protocol-breaking-consumer.toml",
        sets: &[],
        quick: &[
            "plugin.producer.config.count=2000",
            "plugin.honest.config.expect=2000",
        ],
        must_pass: false,
        measure: false,
        backends: SHM_MSG,
    },
    Experiment {
        id: "python-stream",
        file: "explain/python-stream.toml",
        sets: &[],
        quick: STREAM_QUICK,
        must_pass: true,
        measure: false,
        backends: SHM_MSG,
    },
    Experiment {
        id: "slow-consumer",
        file: "explain/slow-consumer.toml",
        sets: &[],
        quick: &[
            "plugin.producer.config.count=100",
            "plugin.consumer.config.expect=100",
        ],
        must_pass: true,
        measure: false,
        backends: SHM_MSG,
    },
    Experiment {
        id: "kernel-64",
        file: "kernel-mechanisms.toml",
        sets: &[
            "plugin.producer.config.size=64",
            "channel.0.slot_size=64",
            "plugin.producer.config.count=200000",
            "plugin.consumer.config.expect=200000",
        ],
        quick: &[
            "plugin.producer.config.count=5000",
            "plugin.consumer.config.expect=5000",
        ],
        must_pass: true,
        measure: true,
        backends: KERNEL,
    },
    Experiment {
        id: "kernel-64k",
        file: "kernel-mechanisms.toml",
        // Capacity 4: four unread 64 KiB frames fit a socket under the default
        // net.core.wmem_max (212992) too.
        sets: &[
            "plugin.producer.config.size=65536",
            "channel.0.slot_size=65536",
            "channel.0.capacity=4",
            "plugin.producer.config.count=20000",
            "plugin.consumer.config.expect=20000",
        ],
        quick: &[
            "plugin.producer.config.count=500",
            "plugin.consumer.config.expect=500",
        ],
        must_pass: true,
        measure: true,
        backends: KERNEL,
    },
    Experiment {
        id: "loss-drop",
        file: "lossy.toml",
        sets: &[],
        quick: LOSSY_QUICK,
        must_pass: true,
        measure: false,
        backends: &BackendKind::ALL,
    },
    Experiment {
        id: "loss-block",
        file: "lossy.toml",
        sets: &["channel.0.overflow=block"],
        quick: LOSSY_QUICK,
        must_pass: true,
        measure: false,
        backends: &BackendKind::ALL,
    },
    Experiment {
        id: "window",
        file: "window-sweep.toml",
        sets: &[],
        quick: &[],
        must_pass: true,
        measure: false,
        backends: &[BackendKind::Tcp, BackendKind::Zenoh],
    },
    Experiment {
        id: "across-the-buffer",
        file: "explain/across-the-buffer.toml",
        sets: &[],
        quick: &[],
        must_pass: true,
        measure: false,
        backends: STREAMS,
    },
];

/// The experiment `id` (rows name only ids of [`EXPERIMENTS`]).
/// The experiment across machines: the scenario with hosts that `--hosts` names, on `zenoh`
/// and `auto` (its agents must be running).
const ACROSS: Experiment = Experiment {
    id: "across",
    file: "",
    sets: &[],
    quick: STREAM_QUICK,
    must_pass: true,
    measure: false,
    backends: &[BackendKind::Zenoh, BackendKind::Auto],
};

/// The synchronisation experiments (`sync-…`): `fan-in.toml` on shm under each `sync`, their
/// rounds interleaved (lock-free, semaphores, mutex, lock-free, …) by [`sync_experiments`].
const SYNC: Experiment = Experiment {
    id: "sync",
    file: SYNC_FILE,
    sets: &[],
    quick: &[],
    must_pass: true,
    measure: true,
    backends: &[BackendKind::Shm],
};

/// The scenario of the synchronisation experiments.
const SYNC_FILE: &str = "fan-in.toml";

/// The `sync` values the synchronisation row compares, the lock-free rings first.
const SYNCS: [&str; 3] = ["lock-free", "semaphores", "mutex"];

/// The synchronisation row's shapes: producers (one, and four contending for the buffer's
/// lock) and whether every CPU has a spinning process beside the run (`--load` as in
/// `bench`).
const SYNC_SHAPES: [(u32, bool); 4] = [(1, false), (4, false), (1, true), (4, true)];

/// An experiment's id for a shape of the synchronisation row.
fn sync_id(producers: u32, loaded: bool) -> &'static str {
    match (producers, loaded) {
        (1, false) => "sync-1p-idle",
        (1, true) => "sync-1p-loaded",
        (_, false) => "sync-4p-idle",
        (_, true) => "sync-4p-loaded",
    }
}

/// The `sync` a run of a synchronisation experiment had.
fn sync_of(r: &RunReport) -> &str {
    r.locks.as_ref().map_or("lock-free", |l| l.sync.as_str())
}

/// The message-loss experiments across hosts (`loss-across-drop`, `loss-across-block`):
/// `lossy.toml`'s producer and consumer placed on the first two hosts of `--hosts`, on zenoh.
const LOSS_ACROSS: Experiment = Experiment {
    id: "loss-across",
    file: "lossy.toml",
    sets: &[],
    quick: LOSSY_QUICK,
    must_pass: true,
    measure: false,
    backends: &[BackendKind::Zenoh],
};

fn experiment(id: &str) -> &'static Experiment {
    if id.starts_with("sync-") {
        return &SYNC;
    }
    if id.starts_with("loss-across") {
        return &LOSS_ACROSS;
    }
    EXPERIMENTS
        .iter()
        .chain([&ACROSS])
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no experiment `{id}`"))
}

/// What an experiment ran and what came of it (in `--json`).
#[derive(Debug, Serialize)]
pub struct Ran {
    /// The experiment's name, as rows cite it.
    pub id: String,
    /// The scenario file it ran.
    pub scenario: String,
    /// The overrides it ran with (`--set` paths).
    pub sets: Vec<String>,
    /// Whether every ok run delivered the same bytes.
    pub digests_agree: bool,
    /// For a consumer that spends `delay_ns` on each message: the longest a message should
    /// wait under back-pressure, capacity × delay (none for other experiments).
    pub wait_bound_ns: Option<u64>,
    /// Its runs: every backend × repeat.
    pub runs: Vec<RunReport>,
    /// Backends that refused the scenario on this machine, with `check`'s reason (`shm` and
    /// `msg` across hosts; `mq` and `udp` past their message limits): not run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<(String, String)>,
}

/// A row's figure on a backend beyond `shm` and `msg` (the kernel's other mechanisms).
#[derive(Debug, Serialize)]
pub struct Other {
    /// The backend.
    pub backend: String,
    /// Its figure, as the `shm` and `msg` cells give theirs.
    pub figure: String,
}

/// The largest message `check` lets a backend carry on this machine at a capacity, found by
/// bisection over `slot_size` (1 ..= the key's bound, 256 MiB), and why one byte more is
/// refused.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    /// The backend.
    pub backend: String,
    /// Messages in flight per link.
    pub capacity: u32,
    /// The largest `slot_size` admitted, bytes (0: none is).
    pub largest: u64,
    /// `check`'s refusal one byte above `largest` (or of the smallest message, when none is
    /// admitted); none when `largest` is the key's own bound.
    pub above: Option<String>,
}

/// One aspect of the textbook's comparison.
#[derive(Debug, Serialize)]
pub struct Row {
    /// What is compared.
    pub aspect: &'static str,
    /// What the textbook says.
    pub textbook: &'static str,
    /// The figure measured on `shm`.
    pub shm: String,
    /// The figure measured on `msg`.
    pub msg: String,
    /// What the figures say, in one line.
    pub verdict: String,
    /// Whether this machine's figures agree with the textbook (`null`: the row states no
    /// claim the figures could contradict, or could not be measured here).
    pub agrees: Option<bool>,
    /// For a row that compares a timed figure: shm's over msg's, the median and 95 % interval
    /// over the rounds, paired by round (null for counts and for rows that compare none).
    pub ratio: Option<Interval>,
    /// What the row concludes: `agrees` or `differs` (with the textbook), `within the noise`
    /// (a figure whose rounds cannot tell shm from msg: the ratio's interval reaches into
    /// 1 ± 5 %, or fewer than 3 rounds), or `no claim`.
    pub outcome: Outcome,
    /// The experiments the row read (ids of `experiments`).
    pub from: Vec<&'static str>,
    /// The same figure on the kernel's other mechanisms, for the rows that compare them
    /// (`pipe`, `mq`, `tcp`, `udp`, `zenoh`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<Other>,
}

/// What a row concludes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The figures agree with the textbook.
    #[serde(rename = "agrees")]
    Agrees,
    /// The figures contradict the textbook.
    #[serde(rename = "differs")]
    Differs,
    /// The rounds cannot tell shm from msg on this figure.
    #[serde(rename = "within the noise")]
    WithinTheNoise,
    /// The row states no claim the figures could contradict, or was not measured.
    #[serde(rename = "no claim")]
    NoClaim,
}

impl Outcome {
    /// The mark before a row's verdict.
    fn mark(self) -> &'static str {
        match self {
            Outcome::Agrees => "agrees: ",
            Outcome::Differs => "DIFFERS: ",
            Outcome::WithinTheNoise => "within the noise: ",
            Outcome::NoClaim => "",
        }
    }
}

/// The whole `--explain` result.
#[derive(Debug, Serialize)]
pub struct Explained {
    /// Report schema (1).
    pub schema: u32,
    /// CPU, cores, kernel, clock source, host.
    pub machine: BTreeMap<String, String>,
    /// Whether the experiments ran with `--quick` (small counts: not figures to quote).
    pub quick: bool,
    /// The rows, in the textbook's order.
    pub rows: Vec<Row>,
    /// Experiments that did not do what they must (a run that had to pass failed, a figure
    /// missing); empty when the table is whole.
    pub problems: Vec<String>,
    /// Every experiment with its runs.
    pub experiments: Vec<Ran>,
    /// The largest message each backend carries here, at capacity 1 and 8 (what the row
    /// "limited by message size and system constraints" reads).
    pub limits: Vec<Limit>,
}

/// The scenarios folder: `./scenarios` when it has the explain fixtures, else the source
/// tree's.
pub fn scenarios_dir() -> PathBuf {
    let local = PathBuf::from("scenarios");
    if local.join("explain").is_dir() {
        return local;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// Options of one `--explain`.
#[derive(Debug)]
pub struct Options<'a> {
    /// The scenarios folder.
    pub dir: &'a Path,
    /// Small counts.
    pub quick: bool,
    /// Rounds, when given (`--repeat`): exactly this many measured runs per backend.
    pub repeat: Option<u32>,
    /// Measured time per backend of an experiment that compares timed figures (`--min-time`).
    pub min_time: Option<String>,
    /// A warm-up run per backend before the rounds (off with `--no-warmup`).
    pub warmup: bool,
    /// What every session shares (worker executable, run id, token file).
    pub session: supervisor::Options,
    /// A scenario with `[[host]]` tables whose agents run: the "crosses machines" row is
    /// measured from it.
    pub hosts: Option<PathBuf>,
}

/// Runs every experiment on `shm` and `msg` and fills the table; `progress` hears a line per
/// run. An `Err` is a setup failure (a scenario that does not load, a module that does not
/// compile); failed runs are in the result.
pub fn explain(opts: &Options, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Explained> {
    let mut ran = Vec::new();
    for e in EXPERIMENTS {
        let path = opts.dir.join(e.file);
        let mut sets: Vec<String> = e.sets.iter().map(|s| s.to_string()).collect();
        if opts.quick {
            sets.extend(e.quick.iter().map(|s| s.to_string()));
        }
        if let Some(n) = opts.repeat {
            sets.push(format!("run.repeat={n}"));
        }
        if let Some(d) = opts.min_time.as_ref().filter(|_| e.measure) {
            // A JSON string is a TOML basic string.
            sets.push(format!(
                "run.min_time={}",
                serde_json::Value::String(d.clone())
            ));
        }
        let sc = Scenario::load_with(&path, &sets).map_err(|err| anyhow::anyhow!("{err}"))?;
        let what = format!("{} ({})", e.id, e.file);
        let mode = if opts.quick {
            Mode::Quick
        } else if e.measure {
            Mode::Measure {
                warmup: opts.warmup,
            }
        } else {
            Mode::Once
        };
        let (admitted, refused) = admitted(&sc, e.backends);
        let runs = run_matrix(opts, &sc, &admitted, mode, &what, progress)
            .with_context(|| format!("experiment `{}` ({})", e.id, path.display()))?;
        let digests_agree = Report::new(&sc, runs.clone()).digests_agree;
        ran.push(Ran {
            id: e.id.to_string(),
            scenario: path.display().to_string(),
            sets,
            digests_agree,
            wait_bound_ns: wait_bound_ns(&sc),
            runs,
            refused,
        });
        if supervisor::was_interrupted() {
            break;
        }
    }
    if !supervisor::was_interrupted() {
        ran.extend(sync_experiments(opts, progress)?);
    }
    if let Some(path) = &opts.hosts
        && !supervisor::was_interrupted()
    {
        ran.push(across(opts, path, progress)?);
        ran.extend(loss_across(opts, path, progress)?);
    }
    let path = opts.dir.join(LIMITS_FILE);
    let sc = Scenario::load_with(&path, &[]).map_err(|err| anyhow::anyhow!("{err}"))?;
    let limits = limits(&sc, &BackendKind::ALL, &LIMIT_CAPACITIES);
    Ok(fill(ran, limits, opts.quick))
}

/// The scenario whose one channel `limits` resizes.
const LIMITS_FILE: &str = "kernel-mechanisms.toml";

/// The capacities at which `limits` looks for the largest message: one in flight (a stream
/// mechanism then carries any message, in pieces if need be), and eight (the kernel must
/// hold eight unread).
const LIMIT_CAPACITIES: [u32; 2] = [1, 8];

/// Splits `backends` into those `check` admits `sc` on, here, and those it refuses (with why).
fn admitted(sc: &Scenario, backends: &[BackendKind]) -> (Vec<BackendKind>, Vec<(String, String)>) {
    let machine = Resources::this();
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for &b in backends {
        match check::check(sc, b, &machine) {
            Ok(_) => ok.push(b),
            Err(e) => refused.push((b.name().to_string(), e.message)),
        }
    }
    (ok, refused)
}

/// For each backend and capacity, the largest `slot_size` of `sc`'s first channel that
/// `check` admits on this machine, by bisection (`check` admits every size below one it
/// admits: each limit it applies grows with the slot), and its refusal one byte above.
pub fn limits(sc: &Scenario, backends: &[BackendKind], capacities: &[u32]) -> Vec<Limit> {
    let machine = Resources::this();
    let mut out = Vec::new();
    for &b in backends {
        for &capacity in capacities {
            let verdict = |slot: u32| {
                let mut s = sc.clone();
                s.sweep.clear();
                s.channels[0].slot_size = slot;
                s.channels[0].capacity = capacity;
                check::check(&s, b, &machine)
                    .map(|_| ())
                    .map_err(|e| e.message)
            };
            let (largest, above) = match verdict(1) {
                Err(why) => (0, Some(why)),
                Ok(()) if verdict(MAX_SLOT_SIZE).is_ok() => (MAX_SLOT_SIZE, None),
                Ok(()) => {
                    // `lo` is admitted, `hi` is not.
                    let (mut lo, mut hi) = (1, MAX_SLOT_SIZE);
                    while hi - lo > 1 {
                        let mid = lo + (hi - lo) / 2;
                        if verdict(mid).is_ok() {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                    (lo, verdict(hi).err())
                }
            };
            out.push(Limit {
                backend: b.name().to_string(),
                capacity,
                largest: u64::from(largest),
                above,
            });
        }
    }
    out
}

/// Every run of `sc` on `backends` by `mode`'s plan, through the runtime's one run loop,
/// each heard by `progress` as `explain: WHAT on BACKEND (round N)` or `(warm-up)`.
fn run_matrix(
    opts: &Options,
    sc: &Scenario,
    backends: &[BackendKind],
    mode: Mode,
    what: &str,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<RunReport>> {
    let mut matrix = Matrix::new(sc, backends, &[], opts.session.clone(), mode)?;
    let mut runs = Vec::new();
    matrix.run_all(&mut |step| {
        match step {
            Step::Start {
                backend,
                round,
                warmup,
                ..
            } => progress(&if warmup {
                format!("explain: {what} on {} (warm-up)", backend.name())
            } else {
                format!(
                    "explain: {what} on {} (round {})",
                    backend.name(),
                    round + 1
                )
            }),
            Step::Done {
                point,
                record,
                warmup,
                ..
            } => runs.push(RunReport::of_plan(
                &point.scenario,
                &record,
                &point.values,
                warmup,
            )),
        }
        ControlFlow::Continue(())
    })?;
    Ok(runs)
}

/// The synchronisation experiments: per shape of [`SYNC_SHAPES`], `fan-in.toml` on shm with
/// `producers` producers under each of [`SYNCS`], a warm-up run each, then rounds that
/// interleave them (lock-free, semaphores, mutex, lock-free, …) so that drift on a shared
/// machine hits them alike; five rounds (`--repeat` says otherwise, `--quick` one). A loaded
/// shape runs beside one spinning process per CPU. Each run carries its `sync` in its
/// report's `locks` (none: lock-free).
fn sync_experiments(opts: &Options, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Vec<Ran>> {
    let path = opts.dir.join(SYNC_FILE);
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    let rounds = opts.repeat.unwrap_or(if opts.quick { 1 } else { 5 });
    let mut out = Vec::new();
    for (producers, loaded) in SYNC_SHAPES {
        let id = sync_id(producers, loaded);
        let total: u32 = if opts.quick { 8_000 } else { 400_000 };
        let count = total / producers;
        let sets = vec![
            "run.backends=[\"shm\"]".to_string(),
            format!("plugin.sensor.instances={producers}"),
            format!("plugin.sensor.config.count={count}"),
            format!("plugin.collector.config.expect={}", count * producers),
        ];
        let mut matrices = Vec::new();
        for sync in SYNCS {
            let mut with = sets.clone();
            with.push(format!("channel.0.sync=\"{sync}\""));
            let sc = Scenario::load_with(&path, &with).map_err(|err| anyhow::anyhow!("{err}"))?;
            matrices.push(Matrix::new(
                &sc,
                &[BackendKind::Shm],
                &[],
                opts.session.clone(),
                Mode::Once,
            )?);
        }
        let _load = if loaded {
            Some(crate::bench::Load::start(
                &opts.session.exe,
                u32::try_from(cpus).unwrap_or(1),
            )?)
        } else {
            None
        };
        let mut runs = Vec::new();
        let warmups = u32::from(opts.warmup && !opts.quick);
        for round in 0..warmups + rounds {
            let warmup = round < warmups;
            for (m, sync) in matrices.iter_mut().zip(SYNCS) {
                progress(&format!(
                    "explain: {id} ({SYNC_FILE}, sync = {sync}) on shm ({})",
                    if warmup {
                        "warm-up".to_string()
                    } else {
                        format!("round {}", round - warmups + 1)
                    }
                ));
                let (point, record) = m.run_one(0, BackendKind::Shm, round)?;
                let mut r = RunReport::of_plan(&point.scenario, &record, &point.values, warmup);
                r.round = round.saturating_sub(warmups);
                r.repeat = r.round;
                runs.push(r);
                if supervisor::was_interrupted() {
                    break;
                }
            }
            if supervisor::was_interrupted() {
                break;
            }
        }
        let mut sets = sets;
        if loaded {
            sets.push(format!(
                "beside {cpus} spinning process{} (one per CPU)",
                if cpus == 1 { "" } else { "es" }
            ));
        }
        let digests: Vec<&Option<String>> = runs
            .iter()
            .filter(|r| r.ok)
            .map(|r| &r.digest_received)
            .collect();
        out.push(Ran {
            id: id.to_string(),
            scenario: path.display().to_string(),
            sets,
            digests_agree: digests.windows(2).all(|w| w[0] == w[1]),
            wait_bound_ns: None,
            runs,
            refused: Vec::new(),
        });
        if supervisor::was_interrupted() {
            break;
        }
    }
    Ok(out)
}

/// Runs the scenario with hosts on `zenoh` and `auto`, and records why `shm` and `msg` refuse
/// it.
fn across(opts: &Options, path: &Path, progress: &mut dyn FnMut(&str)) -> anyhow::Result<Ran> {
    let mut sets: Vec<String> = Vec::new();
    if opts.quick {
        sets.extend(ACROSS.quick.iter().map(|s| s.to_string()));
    }
    if let Some(n) = opts.repeat {
        sets.push(format!("run.repeat={n}"));
    }
    let sc = Scenario::load_with(path, &sets).map_err(|err| anyhow::anyhow!("{err}"))?;
    anyhow::ensure!(
        sc.crossing().is_some(),
        "--hosts {}: no channel of it joins plugins on different hosts; name a scenario whose \
         plugins are placed on [[host]]s",
        path.display()
    );
    let (_, refused) = admitted(&sc, &[BackendKind::Shm, BackendKind::Msg]);
    let what = format!("across ({})", path.display());
    let runs = run_matrix(
        opts,
        &sc,
        &[BackendKind::Zenoh, BackendKind::Auto],
        if opts.quick { Mode::Quick } else { Mode::Once },
        &what,
        progress,
    )
    .with_context(|| format!("experiment `across` ({})", path.display()))?;
    Ok(Ran {
        id: ACROSS.id.to_string(),
        scenario: path.display().to_string(),
        sets,
        digests_agree: Report::new(&sc, runs.clone()).digests_agree,
        wait_bound_ns: None,
        runs,
        refused,
    })
}

/// `lossy.toml` across two hosts: its producer on the first `[[host]]` of the `--hosts`
/// scenario and its consumer on the second, on zenoh, under drop-newest and under block (one
/// run each; `--quick` makes it smaller). The scenario is written to a temporary file next to
/// nothing of the user's (its module paths made absolute) and removed when done. None when the
/// `--hosts` scenario names fewer than two hosts.
fn loss_across(
    opts: &Options,
    hosts: &Path,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<Ran>> {
    let placed = Scenario::load_with(hosts, &[]).map_err(|err| anyhow::anyhow!("{err}"))?;
    let [a, b, ..] = &placed.hosts[..] else {
        return Ok(Vec::new());
    };
    let lossy = opts.dir.join(LOSS_ACROSS.file);
    let text =
        std::fs::read_to_string(&lossy).with_context(|| format!("reading {}", lossy.display()))?;
    let mut doc: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", lossy.display()))?;
    let base = lossy
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
        .canonicalize()?;
    let host_table = |h: &wasm_ipc_scenario::Host| {
        let mut t = toml::Table::new();
        t.insert("name".into(), h.name.clone().into());
        t.insert("address".into(), h.address.clone().into());
        toml::Value::Table(t)
    };
    doc.insert(
        "host".into(),
        toml::Value::Array(vec![host_table(a), host_table(b)]),
    );
    doc.insert("name".into(), "lossy-across".into());
    if let Some(toml::Value::Table(run)) = doc.get_mut("run") {
        run.insert("backends".into(), toml::Value::Array(vec!["zenoh".into()]));
    }
    if let Some(toml::Value::Array(plugins)) = doc.get_mut("plugin") {
        for (k, plugin) in plugins.iter_mut().enumerate() {
            let Some(t) = plugin.as_table_mut() else {
                continue;
            };
            t.remove("build");
            t.remove("source");
            if let Some(toml::Value::String(w)) = t.get("wasm") {
                let abs = base.join(w);
                t.insert("wasm".into(), abs.display().to_string().into());
            }
            // The producer on the first host, the consumer on the second.
            let host = if k == 0 { &a.name } else { &b.name };
            t.insert("host".into(), host.clone().into());
        }
    }
    let dir = std::env::temp_dir().join(format!(
        "wasm-ipc-{}-loss-across-{}",
        opts.session.run_id,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    // Removed whatever happens below.
    struct Gone(PathBuf);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _gone = Gone(dir.clone());
    let file = dir.join("lossy-across.toml");
    std::fs::write(&file, toml::to_string(&doc)?)?;
    let mut out = Vec::new();
    for (id, overflow) in [
        ("loss-across-drop", "drop-newest"),
        ("loss-across-block", "block"),
    ] {
        let mut sets = vec![format!("channel.0.overflow=\"{overflow}\"")];
        if opts.quick {
            sets.extend(LOSS_ACROSS.quick.iter().map(|s| s.to_string()));
        }
        let sc = Scenario::load_with(&file, &sets).map_err(|err| anyhow::anyhow!("{err}"))?;
        let what = format!(
            "{id} (lossy.toml, producer on host {}, consumer on host {})",
            a.name, b.name
        );
        let runs = run_matrix(
            opts,
            &sc,
            &[BackendKind::Zenoh],
            Mode::Once,
            &what,
            progress,
        )
        .with_context(|| format!("experiment `{id}`"))?;
        sets.insert(
            0,
            format!(
                "the producer on host {}, the consumer on host {}",
                a.name, b.name
            ),
        );
        out.push(Ran {
            id: id.to_string(),
            scenario: lossy.display().to_string(),
            sets,
            digests_agree: true,
            wait_bound_ns: None,
            runs,
            refused: Vec::new(),
        });
    }
    Ok(out)
}

/// Capacity × the consumer's `delay_ns`, when a plugin of `sc` has one.
fn wait_bound_ns(sc: &Scenario) -> Option<u64> {
    let delay: u64 = sc
        .plugins
        .iter()
        .find_map(|p| p.config.get("delay_ns"))?
        .parse()
        .ok()?;
    let capacity = sc.channels.first()?.capacity;
    Some(delay.saturating_mul(u64::from(capacity)))
}

/// The rows from the experiments' runs.
pub fn fill(ran: Vec<Ran>, limits: Vec<Limit>, quick: bool) -> Explained {
    let mut problems = Vec::new();
    for r in &ran {
        let e = experiment(&r.id);
        if e.must_pass {
            for run in r.runs.iter().filter(|run| !run.ok) {
                problems.push(format!(
                    "experiment `{}` on {} failed: {}",
                    r.id,
                    run.backend,
                    run.error.as_deref().unwrap_or("(no error given)")
                ));
            }
        }
        if !r.digests_agree {
            problems.push(format!(
                "experiment `{}`: the backends delivered different bytes",
                r.id
            ));
        }
    }
    let t = Table {
        ran: &ran,
        limits: &limits,
    };
    let mut rows = vec![
        t.copies(),
        t.component_copies(),
        t.syscalls(),
        t.switches(),
        t.cpu(),
        t.throughput_small(),
        t.throughput_large(),
        t.latency(),
        t.request_reply(),
        t.synchronisation(),
        t.memory(),
        t.scribbler(),
        t.liar(),
        t.back_pressure(),
        t.crosses_machines(),
        t.kernel_mechanisms(),
        t.limited(),
        t.loss(),
        t.bounded_buffer(),
        t.window(),
    ];
    for row in &mut rows {
        if row.outcome != Outcome::WithinTheNoise {
            row.outcome = match row.agrees {
                Some(true) => Outcome::Agrees,
                Some(false) => Outcome::Differs,
                None => Outcome::NoClaim,
            };
        }
    }
    Explained {
        schema: 1,
        machine: crate::bench::machine(),
        quick,
        rows,
        problems,
        experiments: ran,
        limits,
    }
}

/// The memory row's aspect: a row that reports and claims nothing.
const MEMORY: &str = "memory (peak RSS of both workers, 2 MiB frames)";

/// Reads figures off the experiments' runs.
struct Table<'a> {
    ran: &'a [Ran],
    limits: &'a [Limit],
}

/// Median of `f` over `runs` (ok ones only, unless `any`).
fn median(runs: &[&RunReport], f: impl Fn(&RunReport) -> f64) -> Option<f64> {
    let mut v: Vec<f64> = runs.iter().map(|r| f(r)).collect();
    wasm_ipc_report::median(&mut v)
}

/// The producer's write calls per message it sent (`msg`, `pipe`, `tcp`: one per piece of a
/// frame the kernel took, or per attempt that found the buffer full).
fn producer_writes(r: &RunReport) -> f64 {
    r.processes
        .iter()
        .find(|p| p.plugin == "producer" && p.messages_sent > 0)
        .and_then(|p| Some(*p.counters.get("writes")? as f64 / p.messages_sent as f64))
        .unwrap_or(f64::NAN)
}

/// A figure in nanoseconds for people ("-" when it was not measured).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn ns(x: f64) -> String {
    if x.is_finite() && x >= 0.0 {
        // Rounded: a median of integers may end in .5.
        human_ns(x.round() as u64)
    } else {
        "-".into()
    }
}

/// CPU of every process of a run, ns.
fn cpu_ns(r: &RunReport) -> f64 {
    r.processes.iter().map(|p| p.user_s + p.sys_s).sum::<f64>() * 1e9
}

/// Per delivered message.
fn per_msg(r: &RunReport, x: f64) -> f64 {
    if r.messages == 0 {
        f64::NAN
    } else {
        x / r.messages as f64
    }
}

fn switches(r: &RunReport) -> f64 {
    r.processes
        .iter()
        .map(|p| (p.voluntary_cs + p.involuntary_cs) as f64)
        .sum()
}

fn dash_if_nan(s: String, x: f64) -> String {
    if x.is_nan() { "-".into() } else { s }
}

impl Table<'_> {
    fn ran(&self, id: &str) -> Option<&Ran> {
        self.ran.iter().find(|r| r.id == id)
    }

    /// The ok runs of experiment `id` on `backend`.
    fn ok(&self, id: &str, backend: &str) -> Vec<&RunReport> {
        self.all(id, backend).into_iter().filter(|r| r.ok).collect()
    }

    /// Every measured run (no warm-up) of experiment `id` on `backend`.
    fn all(&self, id: &str, backend: &str) -> Vec<&RunReport> {
        self.ran(id)
            .map(|r| {
                r.runs
                    .iter()
                    .filter(|x| x.backend == backend && !x.warmup)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Median of `f` over experiment `id`'s ok runs on `backend`, NaN when there are none.
    fn med(&self, id: &str, backend: &str, f: impl Fn(&RunReport) -> f64) -> f64 {
        median(&self.ok(id, backend), f).unwrap_or(f64::NAN)
    }

    /// A row comparing one figure where the textbook says shm has less (or more) of it.
    #[allow(clippy::too_many_arguments)]
    fn figure_row(
        &self,
        aspect: &'static str,
        textbook: &'static str,
        id: &'static str,
        f: impl Fn(&RunReport) -> f64,
        show: impl Fn(f64) -> String,
        more_is_better: bool,
        what: &str,
    ) -> Row {
        let (s, m) = (self.med(id, "shm", &f), self.med(id, "msg", &f));
        let ratio = self
            .ran(id)
            .and_then(|r| median_interval(&round_ratios(&r.runs, ["shm", "msg"], &f)));
        let mut outcome = Outcome::NoClaim;
        let (verdict, agrees) = match ratio {
            _ if s.is_nan() || m.is_nan() => ("not measured: a run failed".to_string(), None),
            None => ("not measured: no round in which both ran".to_string(), None),
            Some(r) => {
                let rounds = if r.n == 1 { "round" } else { "rounds" };
                match first_wins(&r, more_is_better) {
                    None => {
                        outcome = Outcome::WithinTheNoise;
                        (
                            format!(
                                "no clear winner in {what}: shm/msg {:.2} ({:.2}–{:.2}, {} {rounds})",
                                r.median, r.lo, r.hi, r.n
                            ),
                            None,
                        )
                    }
                    Some(shm_wins) => {
                        let (by, lo, hi) = r.advantage(shm_wins, more_is_better);
                        let who = if shm_wins { "shm" } else { "msg" };
                        (
                            format!(
                                "{who} wins {what} by {by:.1}× ({lo:.1}–{hi:.1}, {} {rounds})",
                                r.n
                            ),
                            Some(shm_wins),
                        )
                    }
                }
            }
        };
        Row {
            aspect,
            textbook,
            shm: dash_if_nan(show(s), s),
            msg: dash_if_nan(show(m), m),
            verdict,
            agrees,
            ratio,
            outcome,
            from: vec![id],
            others: Vec::new(),
        }
    }

    fn copies(&self) -> Row {
        let id = "stream";
        let f = |r: &RunReport| per_msg(r, r.copied_bytes as f64);
        let size = |b: &str| self.med(id, b, |r| per_msg(r, r.bytes as f64));
        let (s, m) = (self.med(id, "shm", f), self.med(id, "msg", f));
        let show = |x: f64, b: &str| {
            dash_if_nan(
                format!(
                    "{} per {} message ({:.1} copies)",
                    human_bytes(x),
                    human_bytes(size(b)),
                    x / size(b)
                ),
                x,
            )
        };
        let (verdict, agrees) = if s.is_nan() || m.is_nan() {
            ("not measured: a run failed".to_string(), None)
        } else if s == 0.0 && m > 0.0 {
            (
                format!(
                    "as the textbook says: shm hands the producer's pages over (0 B copied, \
                     counted at every copy primitive); msg copies each payload {:.0} times \
                     (into the kernel and out)",
                    m / size("msg")
                ),
                Some(true),
            )
        } else {
            (
                format!(
                    "against the textbook: shm copied {} per message",
                    human_bytes(s)
                ),
                Some(false),
            )
        };
        Row {
            aspect: "copies per message",
            textbook: "shared memory copies nothing; message passing copies every message (into the kernel and out again)",
            shm: show(s, "shm"),
            msg: show(m, "msg"),
            verdict,
            agrees,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: vec![id],
            others: Vec::new(),
        }
    }

    /// The textbook's zero copies need a plugin that writes into the shared window itself: a
    /// component (Python here) passes lists, which the host copies at the boundary.
    fn component_copies(&self) -> Row {
        let copies = |id: &str, b: &str| {
            let copied = self.med(id, b, |r| per_msg(r, r.copied_bytes as f64));
            let size = self.med(id, b, |r| per_msg(r, r.bytes as f64));
            (copied, copied / size)
        };
        let show = |b: &str| {
            let (rust, rn) = copies("stream", b);
            let (py, pn) = copies("python-stream", b);
            dash_if_nan(
                format!(
                    "Rust {} ({rn:.1} copies), Python {} ({pn:.1} copies) per message",
                    human_bytes(rust),
                    human_bytes(py)
                ),
                rust + py,
            )
        };
        let ((_, rust_shm), (_, py_shm)) =
            (copies("stream", "shm"), copies("python-stream", "shm"));
        let (_, py_msg) = copies("python-stream", "msg");
        let (_, rust_msg) = copies("stream", "msg");
        let verdict = if [rust_shm, py_shm, py_msg, rust_msg]
            .iter()
            .any(|x| x.is_nan())
        {
            "not measured: a run failed".to_string()
        } else {
            format!(
                "zero-copy needs a language that can write into shared memory: on shm the Rust \
                 module copied {rust_shm:.0} times per message and the Python component \
                 {py_shm:.0} (its list copied into the window, and the message into a list and \
                 then into the guest); on msg the component adds the same {:.0} to the kernel's \
                 {rust_msg:.0}",
                py_msg - rust_msg
            )
        };
        Row {
            aspect: "copies per message, a plugin that cannot see shared memory",
            textbook: "shared memory copies nothing (it assumes the program writes into the shared region itself)",
            shm: show("shm"),
            msg: show("msg"),
            verdict,
            agrees: None,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: vec!["stream", "python-stream"],
            others: Vec::new(),
        }
    }

    fn syscalls(&self) -> Row {
        let id = "stream";
        let cell = |b: &str| {
            let total = self.med(id, b, |r| r.syscalls_per_message);
            if total.is_nan() {
                return "-".to_string();
            }
            // The counters behind the total, largest first.
            let mut names: Vec<String> = self
                .ok(id, b)
                .iter()
                .flat_map(|r| r.syscalls.keys().cloned())
                .collect();
            names.sort();
            names.dedup();
            let mut parts: Vec<(f64, String)> = names
                .iter()
                .map(|n| {
                    let x = self.med(id, b, |r| {
                        per_msg(r, r.syscalls.get(n).copied().unwrap_or(0) as f64)
                    });
                    (x, format!("{n} {x:.2}"))
                })
                .filter(|(x, _)| *x > 0.0)
                .collect();
            parts.sort_by(|a, b| b.0.total_cmp(&a.0));
            let parts: Vec<String> = parts.into_iter().map(|(_, s)| s).collect();
            if parts.is_empty() {
                format!("{total:.2}")
            } else {
                format!("{total:.2} ({})", parts.join(", "))
            }
        };
        let (s, m) = (
            self.med(id, "shm", |r| r.syscalls_per_message),
            self.med(id, "msg", |r| r.syscalls_per_message),
        );
        let (verdict, agrees) = if s.is_nan() || m.is_nan() {
            ("not measured: a run failed".to_string(), None)
        } else if s < m {
            let by = if s >= 0.01 {
                format!("{:.1}× the system calls", m / s)
            } else {
                format!("{m:.2} system calls per message, shm {s:.3}")
            };
            (
                format!(
                    "as the textbook says: msg makes {by}; shm's are only its synchronisation \
                     (futex sleeps and wake-ups when a side waits)"
                ),
                Some(true),
            )
        } else {
            (
                "against the textbook: shm made as many system calls as msg".into(),
                Some(false),
            )
        };
        Row {
            aspect: "system calls per message",
            textbook: "shared memory needs none to move data, only to synchronise; message passing makes a system call to send and one to receive",
            shm: cell("shm"),
            msg: cell("msg"),
            verdict,
            agrees,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: vec![id],
            others: Vec::new(),
        }
    }

    fn switches(&self) -> Row {
        self.figure_row(
            "context switches per message",
            "message passing enters the kernel and wakes the receiver for every message; shared memory need not",
            "stream",
            |r| per_msg(r, switches(r)),
            |x| format!("{x:.3}"),
            false,
            "context switches per message",
        )
    }

    fn cpu(&self) -> Row {
        self.figure_row(
            "CPU per message (4 KiB)",
            "shared memory is faster: no copies and no system calls",
            "stream",
            |r| per_msg(r, cpu_ns(r)),
            ns,
            false,
            "CPU per message",
        )
    }

    fn throughput_small(&self) -> Row {
        self.figure_row(
            "throughput, tiny messages (8 B)",
            "shared memory is faster",
            "small",
            |r| r.msgs_per_s,
            |x| format!("{x:.0} msg/s"),
            true,
            "messages per second",
        )
    }

    fn throughput_large(&self) -> Row {
        self.figure_row(
            "throughput, large messages (2 MiB)",
            "shared memory is faster, the more so the larger the message (copying grows with size)",
            "large",
            |r| r.bytes_per_s,
            |x| format!("{}/s", human_bytes(x)),
            true,
            "bandwidth",
        )
    }

    fn latency(&self) -> Row {
        let id = "ping-pong";
        let p50 = |r: &RunReport| r.latency_ns.p50 as f64;
        let cell = |b: &str| {
            let (a, c) = (
                self.med(id, b, p50),
                self.med(id, b, |r| r.latency_ns.p99 as f64),
            );
            let rtt = self.med(id, b, |r| {
                r.round_trip_ns.map_or(f64::NAN, |t| t.one_way_avg as f64)
            });
            let rtt = if rtt.is_nan() {
                String::new()
            } else {
                format!("; rtt/2 avg {}", ns(rtt))
            };
            dash_if_nan(format!("hand-off p50 {}, p99 {}{rtt}", ns(a), ns(c)), a)
        };
        let mut row = self.figure_row(
            "latency, one hand-off (64 B, one message in flight)",
            "shared memory is faster",
            id,
            p50,
            |_| String::new(),
            false,
            "the median hand-off",
        );
        row.shm = cell("shm");
        row.msg = cell("msg");
        row
    }

    fn request_reply(&self) -> Row {
        let id = "web-db";
        let per_s = |r: &RunReport| r.requests.as_ref().map_or(f64::NAN, |q| q.per_s);
        let cell = |b: &str| {
            let rate = self.med(id, b, per_s);
            let p50 = self.med(id, b, |r| {
                r.requests
                    .as_ref()
                    .map_or(f64::NAN, |q| q.round_trip_ns.p50 as f64)
            });
            let p99 = self.med(id, b, |r| {
                r.requests
                    .as_ref()
                    .map_or(f64::NAN, |q| q.round_trip_ns.p99 as f64)
            });
            let copied = self.med(id, b, |r| r.copied_bytes as f64);
            dash_if_nan(
                format!(
                    "{rate:.0} req/s, call p50 {}, p99 {}, copied {}",
                    ns(p50),
                    ns(p99),
                    human_bytes(copied)
                ),
                rate,
            )
        };
        let mut row = self.figure_row(
            "request/reply: web server querying a database",
            "the textbook's own example of IPC; shared memory should serve more requests per second",
            id,
            per_s,
            |_| String::new(),
            true,
            "requests per second",
        );
        row.shm = cell("shm");
        row.msg = cell("msg");
        row
    }

    fn synchronisation(&self) -> Row {
        let modes = [
            ("spin", "wait-spin"),
            ("futex", "wait-futex"),
            ("adaptive", "stream"),
        ];
        let cell = |b: &str| {
            let parts: Vec<String> = modes
                .iter()
                .map(|(mode, id)| {
                    let rate = self.med(id, b, |r| r.msgs_per_s);
                    let cpu = self.med(id, b, |r| per_msg(r, cpu_ns(r)));
                    let calls = self.med(id, b, |r| r.syscalls_per_message);
                    dash_if_nan(
                        format!(
                            "{mode}: {rate:.0} msg/s, CPU {}/msg, {calls:.2} calls/msg",
                            ns(cpu)
                        ),
                        rate,
                    )
                })
                .collect();
            parts.join("; ")
        };
        // Which mode costs shm the least CPU per message, and what sleeping costs over that.
        let cheapest = |b: &str| {
            modes
                .iter()
                .map(|(mode, id)| (*mode, self.med(id, b, |r| per_msg(r, cpu_ns(r)))))
                .filter(|(_, x)| !x.is_nan())
                .min_by(|a, b| a.1.total_cmp(&b.1))
        };
        let fastest = |b: &str| {
            modes
                .iter()
                .map(|(mode, id)| (*mode, self.med(id, b, |r| r.msgs_per_s)))
                .filter(|(_, x)| !x.is_nan())
                .max_by(|a, b| a.1.total_cmp(&b.1))
        };
        let verdict = match (cheapest("shm"), fastest("shm"), cheapest("msg")) {
            (Some((c, _)), Some((f, _)), Some((cm, _))) => format!(
                "on shm the waiting is the host's own code: fastest with {f}, least CPU per \
                 message with {c}; msg's waiting happens in the kernel (poll/read), least CPU \
                 with {cm}"
            ),
            _ => "not measured: a run failed".into(),
        };
        Row {
            aspect: "synchronisation (how a waiting side waits)",
            textbook: "shared memory needs explicit synchronisation, which the programs pay for; message passing is synchronised by the kernel",
            shm: cell("shm"),
            msg: cell("msg"),
            verdict,
            agrees: None,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: vec!["wait-spin", "wait-futex", "stream"],
            others: Vec::new(),
        }
    }

    fn memory(&self) -> Row {
        let id = "large";
        let rss = |r: &RunReport| {
            r.processes
                .iter()
                .map(|p| p.max_rss_kib as f64 * 1024.0)
                .sum::<f64>()
        };
        let mut row = self.figure_row(
            MEMORY,
            "shared memory maps one region into both processes; message passing keeps a copy on each side and in the kernel's buffers",
            id,
            rss,
            human_bytes,
            false,
            "resident memory",
        );
        // RSS is not the textbook's measure of sharing: the row reports, it claims nothing.
        row.agrees = None;
        row.outcome = Outcome::NoClaim;
        row.verdict = format!(
            "{}; RSS counts shared pages in every process that maps them, so shm's ring is \
             counted once in the producer and once in the consumer",
            row.verdict
        );
        row
    }

    /// The status (and first words of the error) of `plugin` in each run of `id` on `b`.
    fn fate(&self, id: &str, b: &str, plugin: &str) -> Option<(String, Option<String>)> {
        let run = self.all(id, b).into_iter().next()?;
        let p = run.processes.iter().find(|p| p.plugin == plugin)?;
        let status = serde_json::to_value(p.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{:?}", p.status));
        Some((status, p.error.clone()))
    }

    /// How the producer and the honest consumer of a misbehaving-consumer experiment fared.
    fn others(&self, id: &str, b: &str) -> Option<(bool, u64, u64)> {
        let run = self.all(id, b).into_iter().next()?;
        let get = |n: &str| run.processes.iter().find(|p| p.plugin == n);
        let (p, h) = (get("producer")?, get("honest")?);
        let fine = matches!(p.status, wasm_ipc_wire::control::Status::Ok)
            && matches!(h.status, wasm_ipc_wire::control::Status::Ok);
        Some((fine, p.messages_sent, h.messages_received))
    }

    fn misbehaving(
        &self,
        id: &'static str,
        plugin: &str,
        aspect: &'static str,
        textbook: &'static str,
    ) -> (Row, [Option<bool>; 2]) {
        let cell = |b: &str| {
            let (Some((status, error)), Some((fine, sent, received))) =
                (self.fate(id, b, plugin), self.others(id, b))
            else {
                return ("-".to_string(), None, false);
            };
            let what = match (&*status, error) {
                ("ok", _) => format!("{plugin}: ok (nothing stopped it)"),
                (s, Some(e)) => {
                    let e: String = e.chars().take(110).collect();
                    format!("{plugin}: {s} ({e}…)")
                }
                (s, None) => format!("{plugin}: {s}"),
            };
            (
                format!(
                    "{what}; producer and honest consumer {}: sent {sent}, received {received}",
                    if fine { "ok" } else { "NOT ok" }
                ),
                Some(status == "ok"),
                fine && sent == received,
            )
        };
        let (s, s_ok, s_fine) = cell("shm");
        let (m, m_ok, m_fine) = cell("msg");
        let verdict = if s_ok.is_none() || m_ok.is_none() {
            "not measured: a run is missing".to_string()
        } else if s_fine && m_fine {
            "the producer and the other consumer were untouched on both backends".to_string()
        } else {
            format!(
                "the misbehaving consumer hurt others on {}",
                [("shm", s_fine), ("msg", m_fine)]
                    .iter()
                    .filter(|(_, f)| !f)
                    .map(|(b, _)| *b)
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        (
            Row {
                aspect,
                textbook,
                shm: s,
                msg: m,
                verdict,
                agrees: (s_ok.is_some() && m_ok.is_some()).then_some(s_fine && m_fine),
                ratio: None,
                outcome: Outcome::NoClaim,
                from: vec![id],
                others: Vec::new(),
            },
            [s_ok, m_ok],
        )
    }

    fn scribbler(&self) -> Row {
        let (mut row, [s_ok, m_ok]) = self.misbehaving(
            "scribbler",
            "scribbler",
            "isolation: a consumer writes into a message it received",
            "message passing isolates: each side has its own copy; shared memory lets one process touch what another sees",
        );
        if let (Some(s_ok), Some(m_ok)) = (s_ok, m_ok) {
            let how_shm = if s_ok {
                "on shm the write went through"
            } else {
                "on shm the window is mapped read-only: the store trapped and the host detached the scribbler"
            };
            let how_msg = if m_ok {
                "on msg it wrote its private copy"
            } else {
                "on msg it was stopped"
            };
            row.verdict = format!("{}; {how_shm}, {how_msg}", row.verdict);
            // The textbook's worry is that shared memory lets a reader corrupt what others see.
            row.agrees = row.agrees.map(|untouched| !untouched);
        }
        row
    }

    fn liar(&self) -> Row {
        let (mut row, _) = self.misbehaving(
            "liar",
            "liar",
            "isolation: a consumer breaks the protocol (releases a message it never received)",
            "with shared memory the processes share the synchronisation state too, so one can corrupt it",
        );
        row.verdict = format!(
            "{}; the ring's cursors live in host memory on both backends, so the host refused the call",
            row.verdict
        );
        row.agrees = row.agrees.map(|untouched| !untouched);
        row
    }

    fn back_pressure(&self) -> Row {
        let id = "slow-consumer";
        let bound = self
            .ran(id)
            .and_then(|r| r.wait_bound_ns)
            .map_or(f64::NAN, |b| b as f64);
        let cell = |b: &str| {
            let runs = self.ok(id, b);
            let Some(run) = runs.first() else {
                return ("-".to_string(), false);
            };
            let p99 = self.med(id, b, |r| r.latency_ns.p99 as f64);
            let max = self.med(id, b, |r| r.latency_ns.max as f64);
            let sent: u64 = run.processes.iter().map(|p| p.messages_sent).sum();
            let producer_cpu = run
                .processes
                .iter()
                .find(|p| p.plugin == "producer")
                .map_or(f64::NAN, |p| (p.user_s + p.sys_s) * 1e3);
            // Without back-pressure the waits would grow with the count of messages.
            let held = p99 < 3.0 * bound;
            (
                format!(
                    "hand-off p99 {}, max {}; delivered {}/{sent}; producer CPU {producer_cpu:.1} ms over {:.2} s",
                    ns(p99),
                    ns(max),
                    run.messages,
                    run.elapsed_s
                ),
                held && run.messages == sent,
            )
        };
        let (s, s_held) = cell("shm");
        let (m, m_held) = cell("msg");
        let verdict = if s == "-" || m == "-" {
            "not measured: a run failed".to_string()
        } else if s_held && m_held {
            format!(
                "both hold the producer to the consumer's pace: capacity × the consumer's time per \
                 message ({}) bounds the waits; nothing lost",
                ns(bound)
            )
        } else {
            format!(
                "back-pressure did NOT bound the wait on {}",
                [("shm", s_held), ("msg", m_held)]
                    .iter()
                    .filter(|(_, h)| !h)
                    .map(|(b, _)| *b)
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        };
        Row {
            aspect: "a slow consumer (back-pressure)",
            textbook: "a bounded buffer blocks a fast producer on either model; unbounded message queues grow instead",
            shm: s,
            msg: m,
            verdict,
            agrees: None,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: vec![id],
            others: Vec::new(),
        }
    }

    fn crosses_machines(&self) -> Row {
        let mut row = Row {
            aspect: "crosses machines",
            textbook: "message passing crosses machines; shared memory needs one machine",
            shm: "one machine only (one memory)".into(),
            msg: "Unix sockets: one machine here".into(),
            verdict: "not measured: give --hosts with a scenario placed on [[host]]s whose \
                      agents run (docs/src/guide/across-machines.md)"
                .into(),
            agrees: None,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: Vec::new(),
            others: Vec::new(),
        };
        let id = ACROSS.id;
        let Some(across) = self.ran.iter().find(|r| r.id == id) else {
            return row;
        };
        let refusal = |b: &str| {
            across
                .refused
                .iter()
                .find(|(x, _)| x == b)
                .map(|(_, why)| why.clone())
        };
        let rate = |b: &str| self.med(id, b, |r| r.msgs_per_s);
        let p50 = |b: &str| self.med(id, b, |r| r.latency_ns.p50 as f64);
        let hosts: std::collections::BTreeSet<String> = across
            .runs
            .iter()
            .flat_map(|r| r.processes.iter().map(|p| p.host.clone()))
            .collect();
        let (shm_refused, msg_refused) = (refusal("shm"), refusal("msg"));
        row.shm = match &shm_refused {
            Some(_) => format!(
                "refused across hosts; `auto` (shm inside a host, zenoh between): {} msg/s",
                dash_if_nan(format!("{:.0}", rate("auto")), rate("auto"))
            ),
            None => "not refused: the scenario's hosts are one".into(),
        };
        row.msg = match &msg_refused {
            Some(_) => format!(
                "Unix sockets refused across hosts; `zenoh` (TCP, every link): {} msg/s, \
                 hand-off p50 {}",
                dash_if_nan(format!("{:.0}", rate("zenoh")), rate("zenoh")),
                ns(p50("zenoh"))
            ),
            None => "not refused: the scenario's hosts are one".into(),
        };
        let ok = across.runs.iter().all(|r| r.ok) && !across.runs.is_empty();
        row.agrees =
            Some(ok && across.digests_agree && shm_refused.is_some() && msg_refused.is_some());
        row.verdict = format!(
            "measured across hosts {}: zenoh and auto {} ({}); shm and msg {}",
            hosts.into_iter().collect::<Vec<_>>().join(", "),
            if ok { "ran" } else { "FAILED" },
            if across.digests_agree {
                "equal digests"
            } else {
                "different digests"
            },
            match shm_refused.or(msg_refused) {
                Some(why) => format!("refused: {why}"),
                None => "were not refused".into(),
            }
        );
        row.from = vec![id];
        row
    }
}

impl Table<'_> {
    /// Why `check` refused experiment `id` on `backend`, if it did.
    fn refusal(&self, id: &str, backend: &str) -> Option<&str> {
        self.ran(id)?
            .refused
            .iter()
            .find(|(b, _)| b == backend)
            .map(|(_, why)| why.as_str())
    }

    /// `backend` against `msg` on messages per second in experiment `id`: the median and
    /// interval of the per-round ratios.
    fn against_msg(&self, id: &str, backend: &str) -> Option<Interval> {
        let r = self.ran(id)?;
        median_interval(&round_ratios(&r.runs, [backend, "msg"], |x| x.msgs_per_s))
    }

    /// The kernel's mechanisms side by side: throughput and hand-off at 64 B and 64 KiB on
    /// shm, msg, pipe, mq, tcp and udp, each against msg with its interval.
    fn kernel_mechanisms(&self) -> Row {
        const SIZES: [(&str, &str); 2] = [("64 B", "kernel-64"), ("64 KiB", "kernel-64k")];
        let cell = |b: &str| {
            let parts: Vec<String> = SIZES
                .iter()
                .map(|(size, id)| {
                    if self.refusal(id, b).is_some() {
                        return format!(
                            "{size}: refused by check (beyond its message limit here: see \
                             \"limited by message size\")"
                        );
                    }
                    let rate = self.med(id, b, |r| r.msgs_per_s);
                    if rate.is_nan() {
                        return format!("{size}: -");
                    }
                    let bw = self.med(id, b, |r| r.bytes_per_s);
                    let p50 = self.med(id, b, |r| r.latency_ns.p50 as f64);
                    let p99 = self.med(id, b, |r| r.latency_ns.p99 as f64);
                    let mut s = format!(
                        "{size}: {rate:.0} msg/s ({}/s), hand-off p50 {}, p99 {}",
                        human_bytes(bw),
                        ns(p50),
                        ns(p99)
                    );
                    if b != "msg"
                        && let Some(r) = self.against_msg(id, b)
                    {
                        let _ = write!(
                            s,
                            ", {b}/msg {:.2} ({:.2}–{:.2}, {} round{})",
                            r.median,
                            r.lo,
                            r.hi,
                            r.n,
                            if r.n == 1 { "" } else { "s" }
                        );
                    }
                    s
                })
                .collect();
            parts.join("; ")
        };
        let others = ["pipe", "mq", "tcp", "udp"];
        let verdict = if self.med("kernel-64", "msg", |r| r.msgs_per_s).is_nan() {
            "not measured: a run failed".to_string()
        } else {
            let sizes: Vec<String> = SIZES
                .iter()
                .map(|(size, id)| {
                    let mut said = Vec::new();
                    let mut refused = Vec::new();
                    for b in ["shm"].iter().chain(&others) {
                        if self.refusal(id, b).is_some() {
                            refused.push(*b);
                            continue;
                        }
                        let Some(r) = self.against_msg(id, b) else {
                            said.push(format!("{b} not measured"));
                            continue;
                        };
                        let how = match first_wins(&r, true) {
                            Some(true) => "faster",
                            Some(false) => "slower",
                            None => "no clear difference",
                        };
                        said.push(format!(
                            "{b} {:.2}× ({:.2}–{:.2}, {how})",
                            r.median, r.lo, r.hi
                        ));
                    }
                    if !refused.is_empty() {
                        said.push(format!("{} refused", refused.join(" and ")));
                    }
                    format!("at {size} {}", said.join(", "))
                })
                .collect();
            format!(
                "messages per second against msg (Unix socket), median of the per-round ratios \
                 and its interval: {}",
                sizes.join("; ")
            )
        };
        Row {
            aspect: "kernel mechanisms side by side (64 B and 64 KiB)",
            textbook: "message passing goes through the kernel: pipes, message queues and sockets, local or over the network stack; shared memory bypasses it",
            shm: cell("shm"),
            msg: cell("msg"),
            verdict,
            agrees: None,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: vec!["kernel-64", "kernel-64k"],
            others: others
                .iter()
                .map(|b| Other {
                    backend: (*b).to_string(),
                    figure: cell(b),
                })
                .collect(),
        }
    }

    /// The bandwidth–delay product: `window-sweep.toml` on tcp and zenoh, capacity 1 … 1024;
    /// per capacity the rate, the window's round trip and bound, and whether the window bound
    /// the link (the report's own rule, `LinkReport::window_bound`).
    fn window(&self) -> Row {
        let id = "window";
        let points = |b: &str| -> Vec<(u32, &RunReport)> {
            let mut v: Vec<(u32, &RunReport)> = self
                .ok(id, b)
                .into_iter()
                .filter_map(|r| Some((r.sweep.get("capacity")?.parse().ok()?, r)))
                .collect();
            v.sort_by_key(|(c, _)| *c);
            v
        };
        let cell = |b: &str| {
            let v = points(b);
            if v.is_empty() {
                return "-".to_string();
            }
            v.iter()
                .map(|(c, r)| {
                    let l = r.links.first();
                    format!(
                        "{c}: {:.0} msg/s, round trip {}, bound {}{}",
                        r.msgs_per_s,
                        l.and_then(|l| l.round_trip_ns)
                            .map_or("-".into(), |x| ns(x as f64)),
                        l.and_then(|l| l.window_bound_per_s)
                            .map_or("-".into(), |x| format!("{x:.0}/s")),
                        if l.is_some_and(|l| l.window_bound) {
                            " (the window bound it)"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let bound_at = |b: &str| -> Vec<String> {
            points(b)
                .iter()
                .filter(|(_, r)| r.links.first().is_some_and(|l| l.window_bound))
                .map(|(c, _)| c.to_string())
                .collect()
        };
        let rtt_at_one = |b: &str| {
            points(b)
                .first()
                .and_then(|(_, r)| r.links.first()?.round_trip_ns)
        };
        let show = |x: Option<u64>| x.map_or("-".into(), |x| ns(x as f64));
        let verdict = if points("tcp").is_empty() || points("zenoh").is_empty() {
            "not measured: a run failed".to_string()
        } else {
            let say = |b: &str| {
                let at = bound_at(b);
                if at.is_empty() {
                    format!("{b} at no capacity")
                } else {
                    format!("{b} at capacity {}", at.join(", "))
                }
            };
            format!(
                "a link moves at most its window per round trip: the window bound {} and {} (its \
                 producer held back while its consumer waited); the round trip with one message \
                 in flight is {} on tcp and {} on zenoh{}; past the window that keeps a link \
                 busy, the sender or the engine sets the pace",
                say("tcp"),
                say("zenoh"),
                show(rtt_at_one("tcp")),
                show(rtt_at_one("zenoh")),
                match (rtt_at_one("tcp"), rtt_at_one("zenoh")) {
                    (Some(t), Some(z)) if t > 0 => format!(
                        ", so zenoh needs a window {:.0}× larger than tcp's for the same rate",
                        z as f64 / t as f64
                    ),
                    _ => String::new(),
                }
            )
        };
        Row {
            aspect: "the window: bandwidth × delay (capacity 1 … 1024 over tcp and zenoh)",
            textbook: "message passing across a network pays its latency on every message unless the sender keeps enough messages in flight",
            shm: "- (a ring in shared memory: no credit travels back, so no round trip bounds it)"
                .to_string(),
            msg: "- (measured on tcp and zenoh, below: the mechanisms whose links cross machines)"
                .to_string(),
            verdict,
            agrees: None,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: vec![id],
            others: ["tcp", "zenoh"]
                .iter()
                .map(|b| Other {
                    backend: (*b).to_string(),
                    figure: cell(b),
                })
                .collect(),
        }
    }

    /// The ok measured runs of synchronisation experiment `id` under `sync`.
    fn sync_runs(&self, id: &str, sync: &str) -> Vec<&RunReport> {
        self.ran(id)
            .map(|r| {
                r.runs
                    .iter()
                    .filter(|x| x.ok && !x.warmup && sync_of(x) == sync)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `sync`'s messages per second over lock-free's in experiment `id`: the median and
    /// interval of the per-round ratios (runs of one round ran one after the other).
    fn sync_ratio(&self, id: &str, sync: &str) -> Option<Interval> {
        let per_round = |s: &str| -> BTreeMap<u32, f64> {
            self.sync_runs(id, s)
                .into_iter()
                .map(|r| (r.round, r.msgs_per_s))
                .collect()
        };
        let (a, b) = (per_round(sync), per_round("lock-free"));
        let ratios: Vec<f64> = a
            .iter()
            .filter_map(|(round, x)| b.get(round).map(|y| x / y))
            .collect();
        median_interval(&ratios)
    }

    /// The textbook's bounded buffer (semaphores, or a mutex and condition variables) against
    /// the lock-free rings on shm: one producer and four, idle and loaded.
    fn bounded_buffer(&self) -> Row {
        let shape_name = |producers: u32, loaded: bool| {
            format!(
                "{producers} producer{}{}",
                if producers == 1 { "" } else { "s" },
                if loaded { ", loaded" } else { ", idle" }
            )
        };
        let mut cells = Vec::new();
        let mut said = Vec::new();
        let mut measured = true;
        for (producers, loaded) in SYNC_SHAPES {
            let id = sync_id(producers, loaded);
            let figures: Vec<String> = SYNCS
                .iter()
                .map(|sync| {
                    let runs = self.sync_runs(id, sync);
                    let rate = median(&runs, |r| r.msgs_per_s).unwrap_or(f64::NAN);
                    let cpu = median(&runs, |r| per_msg(r, cpu_ns(r))).unwrap_or(f64::NAN);
                    let p99 = median(&runs, |r| r.latency_ns.p99 as f64).unwrap_or(f64::NAN);
                    let lock = median(&runs, |r| {
                        r.locks
                            .as_ref()
                            .map_or(f64::NAN, |l| l.contended_per_message)
                    })
                    .filter(|x| !x.is_nan());
                    if rate.is_nan() {
                        measured = false;
                        return format!("{sync}: -");
                    }
                    format!(
                        "{sync} {rate:.0} msg/s, CPU {}/msg, p99 {}{}",
                        ns(cpu),
                        ns(p99),
                        lock.map_or(String::new(), |c| format!(", {c:.2} contended/msg"))
                    )
                })
                .collect();
            cells.push(format!(
                "{}: {}",
                shape_name(producers, loaded),
                figures.join(", ")
            ));
            let against: Vec<String> = SYNCS[1..]
                .iter()
                .map(|sync| match self.sync_ratio(id, sync) {
                    None => format!("{sync} not measured"),
                    Some(r) => {
                        let how = match first_wins(&r, true) {
                            Some(true) => "faster",
                            Some(false) => "slower",
                            None => "no clear difference",
                        };
                        format!(
                            "{sync} {:.2}× ({:.2}–{:.2}, {} round{}, {how})",
                            r.median,
                            r.lo,
                            r.hi,
                            r.n,
                            if r.n == 1 { "" } else { "s" }
                        )
                    }
                })
                .collect();
            said.push(format!(
                "{}: {}",
                shape_name(producers, loaded),
                against.join(", ")
            ));
        }
        let verdict = if measured {
            format!(
                "messages per second against the lock-free rings, median of the per-round \
                 ratios and its interval: {}",
                said.join("; ")
            )
        } else {
            "not measured: a run failed".to_string()
        };
        let from: Vec<&'static str> = SYNC_SHAPES.iter().map(|&(p, l)| sync_id(p, l)).collect();
        Row {
            aspect: "synchronisation: the textbook's semaphores against a lock-free ring",
            textbook: "shared memory requires synchronisation (semaphores or mutexes), which can be complex",
            shm: cells.join("; "),
            msg: "- (the kernel synchronises a socket's two sides: there is nothing to choose)"
                .to_string(),
            verdict,
            agrees: None,
            ratio: None,
            outcome: Outcome::NoClaim,
            from,
            others: Vec::new(),
        }
    }

    /// What each backend loses when a stalled consumer meets a channel that drops
    /// (`overflow = "drop-newest"`), and what blocking costs instead.
    fn loss(&self) -> Row {
        let (drop, block) = ("loss-drop", "loss-block");
        let published = |r: &RunReport| -> u64 { r.links.iter().map(|l| l.published).sum() };
        let cell = |b: &str| {
            let (Some(d), Some(k)) = (
                self.ok(drop, b).first().copied(),
                self.ok(block, b).first().copied(),
            ) else {
                return "-".to_string();
            };
            let by_kernel = d.lost.saturating_sub(d.dropped);
            format!(
                "drop-newest: lost {} of {} ({:.1}% delivered; {} dropped by the sender{}), \
                 duplicated {}, reordered {}, {:.3} s; block: lost {}, the producer held up to {} \
                 at once, {:.3} s",
                d.lost,
                published(d),
                100.0 * d.delivered_fraction,
                d.dropped,
                if by_kernel > 0 {
                    format!(", {by_kernel} by the kernel")
                } else {
                    String::new()
                },
                d.duplicated,
                d.reordered,
                d.elapsed_s,
                k.lost,
                ns(k.links
                    .iter()
                    .map(|l| l.longest_room_wait_ns)
                    .max()
                    .unwrap_or(0) as f64),
                k.elapsed_s
            )
        };
        let backends: Vec<&str> = BackendKind::ALL.iter().map(|b| b.name()).collect();
        let runs = |id: &str| -> Vec<&RunReport> {
            backends
                .iter()
                .filter_map(|b| self.ok(id, b).first().copied())
                .collect()
        };
        let (dropping, blocking) = (runs(drop), runs(block));
        let verdict = if dropping.len() < backends.len() || blocking.len() < backends.len() {
            "not measured: a run failed".to_string()
        } else {
            let lossless: Vec<&str> = dropping
                .iter()
                .filter(|r| r.lost == 0)
                .map(|r| r.backend.as_str())
                .collect();
            let kernel: Vec<String> = dropping
                .iter()
                .filter(|r| r.lost > r.dropped)
                .map(|r| format!("{} ({})", r.backend, r.lost - r.dropped))
                .collect();
            let block_lost: Vec<&str> = blocking
                .iter()
                .filter(|r| r.lost > 0)
                .map(|r| r.backend.as_str())
                .collect();
            let twice: u64 = dropping.iter().chain(&blocking).map(|r| r.duplicated).sum();
            let late: u64 = dropping.iter().chain(&blocking).map(|r| r.reordered).sum();
            format!(
                "with a consumer stalled mid-stream, drop-newest lost messages on {}; the \
                 kernel itself dropped {}; with block nothing was lost on {} and the producer \
                 waited out the stall instead. Duplicated {twice} and reordered {late} on every \
                 backend: each link here is one ordered stream or queue (or UDP on loopback, \
                 which neither retransmits nor reorders), and no sender retransmits, so a \
                 duplicate or a late message could only come from a network path this run did \
                 not have",
                if lossless.is_empty() {
                    "every backend, shared memory too (loss is the bounded buffer's policy, \
                     not the mechanism's)"
                        .to_string()
                } else {
                    format!("all but {}", lossless.join(", "))
                },
                if kernel.is_empty() {
                    "none (every loss was the sender's choice)".to_string()
                } else {
                    format!(
                        "on {}, where the sender does not wait for credits",
                        kernel.join(", ")
                    )
                },
                if block_lost.is_empty() {
                    "any backend".to_string()
                } else {
                    format!("all but {} (a defect)", block_lost.join(", "))
                },
            )
        };
        // Across hosts, when `--hosts` was given: the same on zenoh between two machines.
        let across = match (
            self.ok("loss-across-drop", "zenoh").first().copied(),
            self.ok("loss-across-block", "zenoh").first().copied(),
        ) {
            (Some(d), Some(k)) => {
                let hosts: Vec<&str> = d
                    .links
                    .first()
                    .map(|l| vec![l.from_host.as_str(), l.to_host.as_str()])
                    .unwrap_or_default();
                Some(format!(
                    "across hosts {} on zenoh: drop-newest lost {} of {} ({:.1}% delivered; {} \
                     dropped by the sender), duplicated {}, reordered {}; block: lost {}",
                    hosts.join(" → "),
                    d.lost,
                    published(d),
                    100.0 * d.delivered_fraction,
                    d.dropped,
                    d.duplicated,
                    d.reordered,
                    k.lost
                ))
            }
            _ if self.ran("loss-across-drop").is_some() => {
                Some("across hosts: not measured (a run failed)".to_string())
            }
            _ => None,
        };
        let verdict = match &across {
            Some(a) => format!("{verdict}; {a}"),
            None => verdict,
        };
        let mut from = vec![drop, block];
        if across.is_some() {
            from.extend(["loss-across-drop", "loss-across-block"]);
        }
        Row {
            aspect: "message loss or duplication (a fast producer, a stalled consumer)",
            textbook: "message passing requires handling of message loss or duplication in networks",
            shm: cell("shm"),
            msg: cell("msg"),
            verdict,
            agrees: None,
            ratio: None,
            outcome: Outcome::NoClaim,
            from,
            others: ["pipe", "mq", "tcp", "udp", "zenoh"]
                .iter()
                .map(|b| Other {
                    backend: (*b).to_string(),
                    figure: cell(b),
                })
                .collect(),
        }
    }

    /// The largest message each backend carries here and what stops a larger one; for the
    /// stream mechanisms, what a message larger than their buffer costs.
    fn limited(&self) -> Row {
        let id = "across-the-buffer";
        let limit = |b: &str, capacity: u32| {
            self.limits
                .iter()
                .find(|l| l.backend == b && l.capacity == capacity)
        };
        let bytes = |n: u64| {
            if n == 0 {
                "none".to_string()
            } else {
                format!("{} ({n} B)", human_bytes(n as f64))
            }
        };
        // Per sweep point (smallest first): size, the producer's writes per message, bandwidth.
        let sweep = |b: &str| -> Vec<(u64, f64, f64)> {
            let mut sizes: Vec<u64> = self
                .ok(id, b)
                .iter()
                .filter_map(|r| r.sweep.get("size")?.parse().ok())
                .collect();
            sizes.sort_unstable();
            sizes.dedup();
            sizes
                .into_iter()
                .map(|size| {
                    let at: Vec<&RunReport> = self
                        .ok(id, b)
                        .into_iter()
                        .filter(|r| r.sweep.get("size") == Some(&size.to_string()))
                        .collect();
                    let calls = median(&at, producer_writes).unwrap_or(f64::NAN);
                    let bw = median(&at, |r| r.bytes_per_s).unwrap_or(f64::NAN);
                    (size, calls, bw)
                })
                .collect()
        };
        let cell = |b: &str| {
            let (Some(one), Some(eight)) = (limit(b, 1), limit(b, 8)) else {
                return "-".to_string();
            };
            let mut s = format!(
                "largest message {} with one in flight, {} with eight",
                bytes(one.largest),
                bytes(eight.largest)
            );
            let above = [(one, "one"), (eight, "eight")]
                .into_iter()
                .find_map(|(l, n)| Some((l.above.as_ref()?, n)));
            match above {
                Some((why, n)) => {
                    let _ = write!(s, "; one byte more with {n} in flight is refused: {why}");
                }
                None => {
                    s.push_str("; both the most slot_size may be: this machine sets no lower limit")
                }
            }
            let points = sweep(b);
            if !points.is_empty() {
                let figures: Vec<String> = points
                    .iter()
                    .map(|(size, calls, bw)| {
                        let writes = if calls.is_nan() {
                            String::new()
                        } else {
                            format!(" {calls:.1} writes,")
                        };
                        format!(
                            "{}{writes} {}/s",
                            human_bytes(*size as f64),
                            human_bytes(*bw)
                        )
                    })
                    .collect();
                let _ = write!(
                    s,
                    "; one in flight, {}bandwidth: {}",
                    if points.iter().any(|p| !p.1.is_nan()) {
                        "the producer's write calls per message (each carries one piece, or \
                         finds the buffer full) and "
                    } else {
                        ""
                    },
                    figures.join(", ")
                );
            }
            s
        };
        let others = ["pipe", "mq", "tcp", "udp", "zenoh"];
        let shm8 = limit("shm", 8).map(|l| l.largest);
        let below: Vec<String> = ["msg"]
            .iter()
            .chain(&others)
            .filter_map(|b| {
                let l = limit(b, 8)?;
                (Some(l.largest) < shm8).then(|| format!("{b} {}", human_bytes(l.largest as f64)))
            })
            .collect();
        // What a message larger than the buffer costs: calls per message at the sweep's
        // largest point against its smallest, per stream mechanism.
        let pieces: Vec<String> = ["msg", "pipe", "tcp"]
            .iter()
            .filter_map(|b| {
                let points = sweep(b);
                let (first, last) = (points.first()?, points.last()?);
                (points.len() > 1).then(|| {
                    format!(
                        "{b} {:.1} writes per {} message against {:.1} per {}",
                        last.1,
                        human_bytes(last.0 as f64),
                        first.1,
                        human_bytes(first.0 as f64)
                    )
                })
            })
            .collect();
        let (verdict, agrees) = match shm8 {
            None => ("not measured: no limits computed".to_string(), None),
            Some(_) if self.limits.is_empty() => ("not measured".to_string(), None),
            Some(shm8) if !below.is_empty() => (
                format!(
                    "as the textbook says: with eight messages in flight the kernel's limits \
                     cap {} per message, where shm carries {} (its own limit is the window: a \
                     plugin's windows lie below 2 GiB); with one in flight the stream \
                     mechanisms carry a message of any size, in pieces once it outgrows the \
                     kernel's buffer for the link: {}",
                    below.join(", "),
                    human_bytes(shm8 as f64),
                    if pieces.is_empty() {
                        "not measured".to_string()
                    } else {
                        pieces.join("; ")
                    }
                ),
                Some(true),
            ),
            Some(shm8) => (
                format!(
                    "against the textbook: no message-passing backend is limited below shm's \
                     {} per message here",
                    human_bytes(shm8 as f64)
                ),
                Some(false),
            ),
        };
        Row {
            aspect: "limited by message size and system constraints",
            textbook: "message passing is limited by message size and system constraints; shared memory by the size of the shared region",
            shm: cell("shm"),
            msg: cell("msg"),
            verdict,
            agrees,
            ratio: None,
            outcome: Outcome::NoClaim,
            from: vec![id],
            others: others
                .iter()
                .map(|b| Other {
                    backend: (*b).to_string(),
                    figure: cell(b),
                })
                .collect(),
        }
    }
}

/// A row's msg cell for the page, the other mechanisms' figures under it.
fn msg_cell(row: &Row) -> String {
    if row.others.is_empty() {
        return esc(&row.msg);
    }
    let mut out = format!("msg: {}", esc(&row.msg));
    for o in &row.others {
        let _ = write!(out, "<br>{}: {}", esc(&o.backend), esc(&o.figure));
    }
    out
}

impl Explained {
    /// Whether every experiment did what it must.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The table for a terminal: a block per aspect.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "The textbook's table, measured on this machine ({}, {} cores, Linux {}){}",
            self.machine.get("cpu").map_or("?", String::as_str),
            self.machine.get("cores").map_or("?", String::as_str),
            self.machine.get("kernel").map_or("?", String::as_str),
            if self.quick {
                " — QUICK: small counts, not figures to quote"
            } else {
                ""
            }
        );
        for row in &self.rows {
            let _ = writeln!(out, "\n{}", row.aspect);
            let _ = writeln!(out, "  textbook: {}", row.textbook);
            let _ = writeln!(out, "  shm:      {}", row.shm);
            let _ = writeln!(out, "  msg:      {}", row.msg);
            for o in &row.others {
                let _ = writeln!(out, "  {:<10}{}", format!("{}:", o.backend), o.figure);
            }
            let _ = writeln!(out, "  measured: {}{}", row.outcome.mark(), row.verdict);
            if !row.from.is_empty() {
                let _ = writeln!(out, "  from:     {}", self.cite(&row.from));
            }
        }
        if !self.problems.is_empty() {
            let _ = writeln!(out, "\nproblems:");
            for p in &self.problems {
                let _ = writeln!(out, "  {p}");
            }
        }
        out
    }

    /// "producer-consumer.toml with run.wait=spin, on shm and msg (1 run each)", …
    fn cite(&self, ids: &[&str]) -> String {
        ids.iter()
            .filter_map(|id| self.experiments.iter().find(|r| r.id == *id))
            .map(|r| {
                let file = Path::new(&r.scenario)
                    .strip_prefix(scenarios_dir())
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| {
                        Path::new(&r.scenario)
                            .file_name()
                            .map_or(r.scenario.clone(), |f| f.to_string_lossy().into())
                    });
                let sets: Vec<&String> = r
                    .sets
                    .iter()
                    .filter(|s| !s.starts_with("run.repeat") && !s.starts_with("run.min_time"))
                    .collect();
                let with = if sets.is_empty() {
                    String::new()
                } else {
                    format!(
                        " with {}",
                        sets.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let mut backends: Vec<&str> = r.runs.iter().map(|x| x.backend.as_str()).collect();
                backends.sort_unstable();
                backends.dedup();
                // Runs per backend and `sync` (the synchronisation experiments run three).
                let mut kinds: Vec<(&str, &str)> = r
                    .runs
                    .iter()
                    .map(|x| (x.backend.as_str(), sync_of(x)))
                    .collect();
                kinds.sort_unstable();
                kinds.dedup();
                let per = r.runs.iter().filter(|x| !x.warmup).count() / kinds.len().max(1);
                let mut syncs: Vec<&str> = kinds.iter().map(|k| k.1).collect();
                syncs.dedup();
                let backends: Vec<String> = if syncs.len() > 1 {
                    vec![format!("shm under sync = {}", syncs.join(", "))]
                } else {
                    backends.iter().map(|b| b.to_string()).collect()
                };
                let refused = if r.refused.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} refused by check",
                        r.refused
                            .iter()
                            .map(|(b, _)| b.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                let warm = if r.runs.iter().any(|x| x.warmup) {
                    ", after a warm-up run"
                } else {
                    ""
                };
                format!(
                    "scenarios/{file}{with} on {} ({} run{} per backend{warm}{refused})",
                    backends.join(", "),
                    per,
                    if per == 1 { "" } else { "s" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The rows as HTML, for `--html`: one row per aspect, its outcome marked.
    pub fn html_table(&self) -> String {
        let mut out = String::from(
            "<table id=\"explain\" class=\"wrap\"><thead><tr><th>aspect</th><th>textbook</th>\
             <th>shm</th><th>msg (the other mechanisms below it)</th><th>measured</th><th>from</th></tr></thead><tbody>\n",
        );
        for row in &self.rows {
            let class = match row.outcome {
                Outcome::Agrees => "agrees",
                Outcome::Differs => "differs",
                Outcome::WithinTheNoise => "noise",
                Outcome::NoClaim => "none",
            };
            let _ = writeln!(
                out,
                "<tr class=\"aspect {class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td><strong>{}</strong>{}</td><td>{}</td></tr>",
                esc(row.aspect),
                esc(row.textbook),
                esc(&row.shm),
                msg_cell(row),
                esc(row.outcome.mark()),
                esc(&row.verdict),
                esc(&self.cite(&row.from))
            );
        }
        out.push_str("</tbody></table>\n");
        out
    }

    /// One self-contained page in the report's layout: the machine, the table (what the
    /// measurements say first), then every experiment's JSON, folded.
    pub fn page(&self) -> anyhow::Result<String> {
        let mut out = html::opening("wasm-ipc: the textbook's table, measured");
        out.push_str(&html::machine_line(&self.machine));
        if self.quick {
            out.push_str(
                "<p class=\"meta\">QUICK: small counts, one round: not figures to quote.</p>\n",
            );
        }
        let agree = self
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::Agrees)
            .count();
        let differ = self
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::Differs)
            .count();
        let noise = self
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::WithinTheNoise)
            .count();
        let _ = writeln!(
            out,
            "<p class=\"meta\" id=\"verdict\">{agree} rows agree with the textbook, {differ} \
             differ, {noise} within the noise; {} problems.</p>",
            self.problems.len()
        );
        out.push_str("<h2>Shared memory against message passing</h2>\n");
        out.push_str(&self.html_table());
        if !self.problems.is_empty() {
            out.push_str("<h2>Problems</h2>\n<ul id=\"problems\">\n");
            for p in &self.problems {
                let _ = writeln!(out, "<li>{}</li>", esc(p));
            }
            out.push_str("</ul>\n");
        }
        out.push_str(&html::folded_json(
            "Every experiment and its runs, as JSON",
            &serde_json::to_string_pretty(self)?,
        ));
        out.push_str("</body></html>\n");
        Ok(out)
    }
}
