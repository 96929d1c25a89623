//! The report's model: the JSON (schema 1) of a run ([`RunReport`]) and of every run
//! ([`Report`]), with their nested figures.
//!
//! A field added here needs its line in [`crate::FIELDS`] (`fields.rs`), and a figure the table
//! or the CSV shows its entry in [`crate::COLUMNS`] (`columns.rs`); `tests/fields.rs` fails
//! without the first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ClockReport, LinkReport};
use wasm_ipc_scenario::Scenario;
use wasm_ipc_wire::control::Status;

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Schema version of this JSON.
    pub schema: u32,
    /// Scenario name.
    pub scenario: String,
    /// The supervisor's pid.
    pub supervisor_pid: u32,
    /// Whether every ok run delivered the same bytes (digests equal across runs).
    pub digests_agree: bool,
    /// Every run, in the order they ran, warm-ups included.
    pub runs: Vec<RunReport>,
    /// The run plan in words, as the command printed it before the runs (added in schema 1).
    #[serde(default)]
    pub plan: Option<String>,
    /// Per pair of backends and figure, the ratio over the paired rounds and the winner when
    /// the runs can tell (added in schema 1; what the verdict lines say).
    #[serde(default)]
    pub verdicts: Vec<crate::verdicts::Verdict>,
    /// The supervisor's own peak resident set, KiB (added in schema 1).
    #[serde(default)]
    pub supervisor_max_rss_kib: u64,
    /// The machine the runs ran on: `cpu`, `cores`, `kernel`, `clocksource`, … (added in
    /// schema 1; empty when the caller did not say).
    #[serde(default)]
    pub machine: BTreeMap<String, String>,
    /// Per sweep point, backend and figure: the median and 95 % interval over the measured ok
    /// rounds, and how many lie beyond Tukey's fences (added in schema 1; what the table's
    /// `median (lo–hi)` cells show).
    #[serde(default)]
    pub summaries: Vec<FigureSummary>,
}

/// One figure of one backend at one sweep point, over its measured rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureSummary {
    /// The sweep point, axis → value; empty without a sweep.
    pub sweep: BTreeMap<String, String>,
    /// The backend.
    pub backend: String,
    /// The figure: its CSV column's name (`msgs_per_s`, `handoff_p99_ns`, …), or its JSON
    /// path in a run where it has no CSV column.
    pub figure: String,
    /// Its unit (as in the CSV and the JSON).
    pub unit: String,
    /// Median, 95 % interval and count of the ok rounds that have the figure.
    #[serde(flatten)]
    pub value: crate::stats::Interval,
    /// How many of those rounds lie beyond Tukey's fences (1.5 interquartile ranges).
    pub outliers: usize,
}

/// Latency percentiles, publish → receive, all consumers merged.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

/// A round trip a plugin measured itself, as the application sees it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RoundTrip {
    /// Mean round trip, ns.
    pub avg: u64,
    /// Shortest round trip, ns (0 when not reported).
    pub min: u64,
    /// `avg / 2`: the one-way figure to compare with other systems' RTT/2.
    pub one_way_avg: u64,
}

/// The lock of the textbook's bounded buffer (`sync = "semaphores"` or `"mutex"` on `shm`),
/// summed over every port of the run: what the classic solution costs per message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Locks {
    /// The channels' `sync` (`semaphores`, `mutex`; several joined by `+`).
    pub sync: String,
    /// Times a port took a channel's mutex (including each re-take after a condition wait).
    pub acquisitions: u64,
    /// Of those, the times the mutex was held by another and the port had to wait.
    pub contended: u64,
    /// Time ports waited for the mutex, ns.
    pub wait_ns: u64,
    /// `acquisitions` per delivered message.
    pub acquisitions_per_message: f64,
    /// `contended` per delivered message.
    pub contended_per_message: f64,
    /// `wait_ns` per delivered message, ns.
    pub wait_ns_per_message: f64,
}

/// Request/reply (ABI 0.2.0 `call`s), from the host's timing of each call in the clients.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Requests {
    /// Calls answered, summed over clients.
    pub calls: u64,
    /// calls / elapsed.
    pub per_s: f64,
    /// The round trip as the client sees it: request published → answer in its window.
    pub round_trip_ns: Latency,
    /// Requests the servers received.
    pub served: u64,
    /// Clients that failed while a server served them.
    pub clients_lost: u64,
    /// CPU (user + sys) of the client processes per call, ns.
    pub client_cpu_ns_per_call: u64,
    /// CPU of the server processes per request received, ns.
    pub server_cpu_ns_per_request: u64,
}

/// One worker process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessReport {
    /// Plugin instance.
    pub plugin: String,
    /// The host it ran on: `local` (the supervisor's machine) or a `[[host]]` name (added
    /// in schema 1).
    #[serde(default)]
    pub host: String,
    /// Its pid, on that host.
    pub pid: i32,
    /// How it ended: ok, failed, peer-failed, interrupted, killed.
    pub status: Status,
    /// What happened, when not ok.
    pub error: Option<String>,
    /// Spawn → ready (instantiated, windows allocated), ns.
    pub ready_ns: u64,
    /// User CPU seconds (whole process life).
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Peak RSS, KiB.
    pub max_rss_kib: u64,
    /// Voluntary context switches.
    pub voluntary_cs: u64,
    /// Involuntary context switches.
    pub involuntary_cs: u64,
    /// The plugin's `report` figures.
    pub reports: BTreeMap<String, i64>,
    /// Messages published.
    pub messages_sent: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Payload bytes the transport copied in this process.
    pub copied_bytes: u64,
    /// Bytes passed to read-family syscalls (/proc/self/io `rchar`), at the end.
    pub io_rchar: Option<u64>,
    /// Bytes passed to write-family syscalls (/proc/self/io `wchar`), at the end.
    pub io_wchar: Option<u64>,
    /// Sleeps on a futex (`shm`).
    pub futex_waits: u64,
    /// Sleeps that timed out although data had arrived: wake-ups that never came (`shm`).
    pub lost_wakeups: u64,
    /// Port → address of its window in this process.
    pub windows: BTreeMap<String, u64>,
    /// Bytes of plugin output (stdout, stderr, log) dropped by the 1 MiB limit.
    pub output_dropped: u64,
    /// The backend's own counters for this process (e.g. `wakeups`, `credit_writes`).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// The limit the plugin ran into (`memory`, `table`, `stack`, `cpu`), if it did.
    #[serde(default)]
    pub limit: Option<wasm_ipc_wire::control::LimitHit>,
    /// Calls it made that were answered (client ports).
    #[serde(default)]
    pub calls: u64,
    /// Requests it received (server ports).
    #[serde(default)]
    pub served: u64,
    /// Its exit status, when it exited (added in schema 1).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did (added in schema 1).
    #[serde(default)]
    pub exit_signal: Option<i32>,
    /// How long it took to exit after its plugin's `run` returned (its final report), ns, as
    /// the supervisor saw both; null when it never reported (added in schema 1).
    #[serde(default)]
    pub exit_after_run_ns: Option<u64>,
}

/// One run of a scenario on one backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// `shm` or `msg`.
    pub backend: String,
    /// 0-based repeat index (the same as `round`; kept for scripts written before rounds).
    pub repeat: u32,
    /// The measured round this run belongs to, 0-based; 0 for a warm-up run (added in schema 1).
    #[serde(default)]
    pub round: u32,
    /// Whether this was a warm-up run, kept out of every figure (added in schema 1).
    #[serde(default)]
    pub warmup: bool,
    /// Every plugin ok and, with verify = full, digests equal.
    pub ok: bool,
    /// What went wrong, naming the plugin.
    pub error: Option<String>,
    /// Messages delivered, summed over consumers.
    pub messages: u64,
    /// Bytes delivered, summed over consumers.
    pub bytes: u64,
    /// Barrier release → last plugin finished, seconds.
    pub elapsed_s: f64,
    /// The run from the supervisor's start to every worker exited and reaped, seconds:
    /// start-up, `elapsed_s` and the workers' exits (added in schema 1).
    #[serde(default)]
    pub wall_s: f64,
    /// messages / elapsed.
    pub msgs_per_s: f64,
    /// bytes / elapsed.
    pub bytes_per_s: f64,
    /// The hand-off: the host's publish stamp (in the producer's worker) to the message being
    /// in the consumer's window. It leaves out the ABI calls around it; the application's own
    /// round trip, where a plugin measures one, is `round_trip_ns`.
    pub latency_ns: Latency,
    /// The round trip as a plugin measured it, from its `rtt_ns_min`/`rtt_ns_avg` reports
    /// (e.g. the pinger's), with the one-way figure as half of it; null when no plugin
    /// reports one (added in schema 1).
    #[serde(default)]
    pub round_trip_ns: Option<RoundTrip>,
    /// Request/reply figures, when plugins made calls (added in schema 1).
    #[serde(default)]
    pub requests: Option<Requests>,
    /// The bounded buffer's lock, when a channel has `sync` other than `lock-free`.
    #[serde(default)]
    pub locks: Option<Locks>,
    /// Per second, for every plugin report `count.<what>` (summed over processes): `<what>` →
    /// rate, e.g. `pages` for the web workers' `count.pages` (added in schema 1).
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
    /// Payload bytes moved through a copy, counted where copied.
    pub copied_bytes: u64,
    /// Messages missing from the links' sequence numbers, summed over links (counted by the
    /// receiving hosts; added in schema 1).
    #[serde(default)]
    pub lost: u64,
    /// Messages delivered twice, summed over links.
    #[serde(default)]
    pub duplicated: u64,
    /// Messages that arrived after a later one of their link, summed over links.
    #[serde(default)]
    pub reordered: u64,
    /// Messages the sending hosts dropped for want of room, summed over links.
    #[serde(default)]
    pub dropped: u64,
    /// Messages received ÷ messages published, over every link (1 when nothing was
    /// published).
    #[serde(default = "one")]
    pub delivered_fraction: f64,
    /// Digest of what producers published (xxh3-64 hex), or null with verify = off.
    pub digest_sent: Option<String>,
    /// Digest of what consumers received, from their own memory.
    pub digest_received: Option<String>,
    /// Modules compiled (not loaded from the cache) for this scenario.
    pub modules_compiled: usize,
    /// `full` or `off`.
    pub verify: String,
    /// Every worker.
    pub processes: Vec<ProcessReport>,
    /// System calls the backends made on their ports, counted where they make them, summed
    /// over processes: `reads`, `writes`, `polls` (`msg`), `futex_waits`, `futex_wakes`,
    /// `sched_yields` (`shm`; `zenoh` under `wait = "spin"`); added in schema 1.
    #[serde(default)]
    pub syscalls: BTreeMap<String, u64>,
    /// Those calls per delivered message.
    #[serde(default)]
    pub syscalls_per_message: f64,
    /// The sweep point this run belongs to: axis → value (empty without a sweep; added in
    /// schema 1).
    #[serde(default)]
    pub sweep: BTreeMap<String, String>,
    /// Every link with its backend and hosts (added in schema 1).
    #[serde(default)]
    pub links: Vec<LinkReport>,
    /// Each host's clock against the supervisor's; empty on one machine (added in schema 1).
    #[serde(default)]
    pub clocks: Vec<ClockReport>,
}

/// This process's peak resident set so far, KiB.
fn self_max_rss_kib() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| u64::try_from(u.max_rss()).unwrap_or(0))
}

fn one() -> f64 {
    1.0
}

impl Report {
    /// Assembles the report and checks that every ok run with digests delivered the same bytes.
    pub fn new(sc: &Scenario, runs: Vec<RunReport>) -> Report {
        // Runs of one sweep point must deliver the same bytes; different points may not.
        let mut first: BTreeMap<&BTreeMap<String, String>, &String> = BTreeMap::new();
        // A run that lost messages delivered what got through, which differs by nature.
        let digests_agree = runs
            .iter()
            .filter(|r| r.ok && r.lost == 0)
            .filter_map(|r| Some((&r.sweep, r.digest_received.as_ref()?)))
            .all(|(point, d)| *first.entry(point).or_insert(d) == d);
        Report {
            schema: 1,
            scenario: sc.name.clone(),
            supervisor_pid: std::process::id(),
            digests_agree,
            runs,
            plan: None,
            verdicts: Vec::new(),
            supervisor_max_rss_kib: self_max_rss_kib(),
            machine: BTreeMap::new(),
            summaries: Vec::new(),
        }
        .with_verdicts()
    }

    /// The report with its `verdicts` and `summaries` computed from its runs.
    pub fn with_verdicts(mut self) -> Report {
        self.verdicts = self.verdict_list();
        self.summaries = self.summary_list();
        self
    }

    /// The measured runs: every run but the warm-ups, in the order they ran.
    pub fn measured(&self) -> impl Iterator<Item = &RunReport> {
        self.runs.iter().filter(|r| !r.warmup)
    }

    /// Every run ok and every digest equal.
    pub fn ok(&self) -> bool {
        self.digests_agree && self.runs.iter().all(|r| r.ok)
    }
}
