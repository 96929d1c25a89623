//! What the supervisor gathers about one run, from its workers (their `Done`, over the control
//! socket), their exits (`wait4`, here or on an agent's host) and its own plan: the input the
//! report is built from. Plain data, so the runtime that fills it and the report that reads it
//! need not know each other.

use serde::{Deserialize, Serialize};
use wasm_ipc_scenario::BackendKind;

use crate::control::Outcome;

/// How long a worker may take to exit after its plugin's `run` returned (after its `Done`):
/// ending its sessions and unmapping its windows takes milliseconds; past this the
/// supervisor kills it and the run is not ok.
pub const EXIT_BOUND: std::time::Duration = std::time::Duration::from_secs(2);

/// Resource usage of a finished child, from `wait4`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct ChildUsage {
    /// Exit code, when the child exited.
    pub exit_code: Option<i32>,
    /// Signal number, when a signal killed the child.
    pub signal: Option<i32>,
    /// User CPU seconds.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Peak resident set in KiB.
    pub max_rss_kib: u64,
    /// Voluntary context switches.
    pub voluntary_cs: u64,
    /// Involuntary context switches.
    pub involuntary_cs: u64,
}

/// What the supervisor gathered about one run: the report's input.
#[derive(Debug)]
pub struct RunRecord {
    /// The backend the run was asked for (`auto` stays `auto`; `links` say what it chose).
    pub backend: BackendKind,
    /// Which repeat of the backend this was (0-based).
    pub repeat: u32,
    /// Modules compiled for this run's session (not loaded from the cache).
    pub modules_compiled: usize,
    /// Why the run could not start, if it could not (`{:#}` of the error).
    pub start_error: Option<String>,
    /// When the supervisor began the run (CLOCK_MONOTONIC ns).
    pub start_ns: u64,
    /// When every worker had exited and been reaped (CLOCK_MONOTONIC ns).
    pub end_ns: u64,
    /// Every worker that was started, in plugin order.
    pub workers: Vec<WorkerRecord>,
    /// When the start barrier opened, if it did.
    pub release_ns: Option<u64>,
    /// The signal that ended the run early (`SIGINT (Ctrl-C)`, `SIGTERM`, `SIGHUP`), if one did.
    pub interrupted: Option<String>,
    /// Every link and the backend that carried it.
    pub links: Vec<LinkReport>,
    /// Each host's clock as measured at connect.
    pub clocks: Vec<ClockReport>,
}

impl RunRecord {
    /// The run's measured time: the start barrier's release → the last plugin finished, ns
    /// (the report's `elapsed_s`); 0 for a run whose barrier never opened.
    pub fn measured_ns(&self) -> u64 {
        let Some(release) = self.release_ns else {
            return 0;
        };
        self.workers
            .iter()
            .filter_map(|w| w.outcome.as_ref().map(|o| o.end_ns))
            .max()
            .unwrap_or(release)
            .saturating_sub(release)
    }

    /// Whether the run plainly failed: it could not start, was interrupted, or some worker was
    /// killed, never reported, or ended other than ok. (The report also fails a run on what
    /// only the figures show, such as digests that differ; this is what a run plan needs to
    /// stop adding rounds.)
    pub fn failed(&self) -> bool {
        self.start_error.is_some()
            || self.interrupted.is_some()
            || self.workers.iter().any(|w| {
                w.killed.is_some()
                    || w.outcome
                        .as_ref()
                        .is_none_or(|o| o.status != crate::control::Status::Ok)
            })
    }
}

/// A host's `CLOCK_MONOTONIC` against the supervisor's (added in schema 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockReport {
    /// The host's name.
    pub host: String,
    /// Its clock minus the supervisor's, ns: the best of several round trips.
    pub offset_ns: i64,
    /// At most this wrong, ns (half that round trip). Hand-off times of links from or to
    /// the host are corrected by the offset, so they carry this error too.
    pub error_ns: u64,
}

/// One producer → consumer link of a run and what carried it (added in schema 1).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinkReport {
    /// The link key: `channel[c]:producer.port->consumer.port`.
    pub link: String,
    /// Its producer (plugin instance) and port.
    #[serde(default)]
    pub from: String,
    /// Its consumer and port.
    #[serde(default)]
    pub to: String,
    /// `shm`, `msg` or `zenoh` (what `auto` chose, on an `auto` run).
    pub backend: String,
    /// The producer's host (`local`: the supervisor's machine).
    pub from_host: String,
    /// The consumer's host.
    pub to_host: String,
    /// Messages its producer published on it.
    #[serde(default)]
    pub published: u64,
    /// Messages its consumer received from it.
    #[serde(default)]
    pub received: u64,
    /// The longest time its producer waited in one `loan` or `publish` (for room), ns; on a
    /// fan-out, the producer's port's longest wait, whichever consumer held it back. As the
    /// port timed its waits; on `zenoh` the whole call, on the coarse clock (1–4 ms).
    #[serde(default)]
    pub longest_room_wait_ns: u64,
    /// The longest time its consumer waited in one `receive` that this link's message (or
    /// the end of stream) ended, ns, as the port timed its waits.
    #[serde(default)]
    pub longest_message_wait_ns: u64,
    /// Messages its producer's host dropped on it for want of room (`overflow =
    /// "drop-newest"`).
    #[serde(default)]
    pub dropped: u64,
    /// Messages missing from its sequence numbers, as its consumer's host counted them
    /// (dropped by the sender, by the kernel, or anywhere between).
    #[serde(default)]
    pub lost: u64,
    /// Messages its consumer received twice.
    #[serde(default)]
    pub duplicated: u64,
    /// Messages that reached its consumer after a later one.
    #[serde(default)]
    pub reordered: u64,
    /// Its window: messages in flight at most (`capacity`).
    #[serde(default)]
    pub window: u32,
    /// Time its producer spent held back in `loan` and `publish` (a full window), ns; on a
    /// fan-out, the producer's port's, whichever consumer held it. Coarse clock, summed.
    #[serde(default)]
    pub room_wait_ns: u64,
    /// Time its consumer spent in `receive` waits that this link's message (or end) ended, ns.
    #[serde(default)]
    pub message_wait_ns: u64,
    /// The median round trip of its window (a message's send to its credit back), ns; null
    /// where the window is not kept by credits (`shm`'s ring, `mq`'s queue).
    #[serde(default)]
    pub round_trip_ns: Option<u64>,
    /// `room_wait_ns` over the run's measured time: the share of the run its producer was
    /// held back.
    #[serde(default)]
    pub blocked_share: f64,
    /// `message_wait_ns` over the run's measured time: the share its consumer waited.
    #[serde(default)]
    pub waiting_share: f64,
    /// `window` ÷ `round_trip_ns`: the most messages per second the window lets through, null
    /// without a round trip (the bandwidth–delay product, read the other way).
    #[serde(default)]
    pub window_bound_per_s: Option<f64>,
    /// Whether the window bound the link: its producer was held back for at least half the
    /// run while its consumer waited for at least a quarter of it — messages and credits
    /// were on their way, not waiting to be read. Raising `capacity` lets more through.
    #[serde(default)]
    pub window_bound: bool,
}

/// A link's producer held back at least this share of the run counts towards
/// [`LinkReport::window_bound`].
pub const WINDOW_BLOCKED: f64 = 0.5;
/// A link's consumer waiting at least this share of the run counts towards
/// [`LinkReport::window_bound`].
pub const WINDOW_WAITING: f64 = 0.25;

/// What the supervisor learned about one worker.
#[derive(Debug)]
pub struct WorkerRecord {
    /// Plugin instance name.
    pub name: String,
    /// The host it ran on (`local`: the supervisor's machine).
    pub host: String,
    /// Its pid (on its host).
    pub pid: i32,
    /// When its spawn was requested (CLOCK_MONOTONIC ns).
    pub spawn_ns: u64,
    /// When it said `Ready`.
    pub ready_ns: Option<u64>,
    /// Its final report, if it sent one.
    pub outcome: Option<Outcome>,
    /// When that report reached the supervisor (the supervisor's CLOCK_MONOTONIC ns).
    pub done_ns: Option<u64>,
    /// When its exit reached the supervisor (the supervisor's clock).
    pub exited_ns: Option<u64>,
    /// Its exit status and resource usage, once reaped.
    pub usage: Option<ChildUsage>,
    /// Why the supervisor killed it, if it did.
    pub killed: Option<String>,
}
