//! What a scenario will need on a backend, and whether this machine and a 32-bit plugin can
//! give it: computed from each backend's [`ChannelCost`] before any worker starts. `check`,
//! `run` and `compare` all refuse what cannot work here, with `file:line: key`, the computed
//! size, the limit and the keys to change.

use std::fmt::Write as _;

use crate::backend::{self, ChannelCost, ChannelShape};
use crate::lanes::Lane;
use crate::scenario::human_bytes;
use crate::scenario::{BackendKind, Channel, Overflow, Scenario, ScenarioError, SyncMode};

/// The most a plugin's windows may take, summed: they must all lie below 2 GiB (a 32-bit
/// plugin's allocator hands out addresses the ABI carries as `i32`), beside the plugin's own
/// code, stack and heap, for which 16 MiB are kept.
pub const WINDOWS_LIMIT: u64 = (2 << 30) - (16 << 20);

/// Fds a worker needs besides its port fds: stdio, the control socket, the module, and what
/// wasmtime, std and the worker's own eventfd and `/proc/self/io` take: a generous allowance
/// (a one-port `shm` worker was seen holding 10 fds in all).
pub const WORKER_FD_HEADROOM: u64 = 64;

/// Fds the supervisor needs per worker (control socket pair, pidfd, stdout duplicate) and
/// besides its workers.
const SUPERVISOR_FDS_PER_WORKER: u64 = 4;
const SUPERVISOR_FD_HEADROOM: u64 = 64;

/// What this machine offers a run.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    /// `MemAvailable` from `/proc/meminfo`, bytes.
    pub mem_available: u64,
    /// The soft `RLIMIT_NOFILE` (`ulimit -n`), which workers inherit.
    pub open_files: u64,
}

impl Resources {
    /// Reads this machine's limits.
    pub fn this() -> Resources {
        let mem_available = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
                let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
                kib.checked_mul(1024)
            })
            .unwrap_or(u64::MAX);
        let open_files = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(u64::MAX, |(soft, _)| soft);
        Resources {
            mem_available,
            open_files,
        }
    }
}

/// What a run of a scenario on one backend will take.
#[derive(Debug, Clone)]
pub struct Needs {
    /// The backend.
    pub backend: BackendKind,
    /// Per plugin, the sum of its windows.
    pub windows: Vec<u64>,
    /// Shared memory of the whole run.
    pub shared_bytes: u64,
    /// Per plugin, the fds its worker holds (port fds plus headroom).
    pub worker_fds: Vec<u64>,
    /// Fds the supervisor holds while it starts the workers.
    pub supervisor_fds: u64,
}

impl Needs {
    /// One line for `check`: the largest plugin's windows, shared memory, fds.
    pub fn summary(&self, sc: &Scenario) -> String {
        let (i, most) = self
            .windows
            .iter()
            .enumerate()
            .max_by_key(|(_, w)| **w)
            .map_or((0, 0), |(i, w)| (i, *w));
        let mut s = format!("{}: windows", self.backend.name());
        if most > 0 {
            let _ = write!(
                s,
                " up to {} (plugin `{}`)",
                human_bytes(most as f64),
                sc.plugins[i].name
            );
        } else {
            s.push_str(" none");
        }
        let _ = write!(
            s,
            ", shared memory {}, fds up to {} per worker and {} in the supervisor",
            human_bytes(self.shared_bytes as f64),
            self.worker_fds.iter().max().copied().unwrap_or(0),
            self.supervisor_fds
        );
        s
    }
}

fn shape(lane: &Lane) -> ChannelShape {
    ChannelShape {
        producers: lane.from.len() as u64,
        consumers: lane.to.len() as u64,
        slot_size: u64::from(lane.slot_size),
        capacity: u64::from(lane.capacity),
        overflow: lane.overflow,
        sync: lane.sync,
    }
}

/// The line and key a message about channel `c`'s sizes points at: its `slot_size`, else its
/// `capacity`, else its `from`.
fn channel_key(ch: &Channel, c: usize) -> (usize, String) {
    match (ch.lines.slot_size, ch.lines.capacity) {
        (Some(line), _) => (line, format!("channel[{c}].slot_size")),
        (None, Some(line)) => (line, format!("channel[{c}].capacity")),
        (None, None) => (ch.lines.from, format!("channel[{c}].from")),
    }
}

fn error(sc: &Scenario, line: usize, key: String, message: String) -> ScenarioError {
    ScenarioError {
        file: sc.path.clone(),
        line: Some(line),
        key: Some(key),
        message,
    }
}

fn size(b: u64) -> String {
    format!("{} ({b} B)", human_bytes(b as f64))
}

/// What `sc` needs on each of `backends`, on this machine; the first backend on which it
/// cannot work refuses it.
pub fn check_all(sc: &Scenario, backends: &[BackendKind]) -> Result<Vec<Needs>, ScenarioError> {
    let machine = Resources::this();
    backends.iter().map(|&b| check(sc, b, &machine)).collect()
}

/// Computes what `sc` needs on `backend` and refuses what cannot work on `machine`.
pub fn check(
    sc: &Scenario,
    backend: BackendKind,
    machine: &Resources,
) -> Result<Needs, ScenarioError> {
    let name = backend.name();
    if !backend.crosses_hosts()
        && let Some(crossing) = sc.crossing()
    {
        return Err(ScenarioError {
            file: sc.path.clone(),
            line: None,
            key: Some("--backend".into()),
            message: format!(
                "backend `{name}` cannot join plugins on different hosts ({crossing}); use \
                 `zenoh` or `auto`"
            ),
        });
    }
    let n = sc.plugins.len();
    // Costs are per lane (a request/reply channel is several); messages name the channel.
    // On `auto` each lane costs what its own backend costs.
    let lanes = crate::lanes::lanes(sc);
    let costs: Vec<ChannelCost> = lanes
        .iter()
        .map(|lane| {
            let b = crate::backend::resolve(backend, lane.on_one_host(sc));
            backend::of(b).cost(&shape(lane))
        })
        .collect();
    let mut windows = vec![0u64; n];
    let mut port_fds = vec![0u64; n];
    // Per plugin, the channel that gives it its largest window (what a message points at).
    let mut largest: Vec<Option<(u64, usize)>> = vec![None; n];
    let mut shared: u64 = 0;
    let mut supervisor_fds = SUPERVISOR_FD_HEADROOM + SUPERVISOR_FDS_PER_WORKER * n as u64;
    for (lane, cost) in lanes.iter().zip(&costs) {
        let c = lane.channel;
        let ch = &sc.channels[c];
        let (line, key) = channel_key(ch, c);
        let b = crate::backend::resolve(backend, lane.on_one_host(sc));
        if lane.overflow == Overflow::DropOldest && b != BackendKind::Shm {
            return Err(error(
                sc,
                ch.lines.overflow.unwrap_or(ch.lines.from),
                format!("channel[{c}].overflow"),
                format!(
                    "on {}, overflow = \"drop-oldest\" cannot be honoured: it replaces the \
                     oldest unread message, which only shm can reach (its unread messages are \
                     still in the producer's ring); on {} they are already in the {}'s \
                     buffers; use \"drop-newest\" or \"block\", or run on shm",
                    b.name(),
                    b.name(),
                    if b == BackendKind::Zenoh {
                        "engine"
                    } else {
                        "kernel"
                    }
                ),
            ));
        }
        if lane.sync != SyncMode::LockFree && b != BackendKind::Shm {
            return Err(error(
                sc,
                ch.lines.sync.unwrap_or(ch.lines.from),
                format!("channel[{c}].sync"),
                format!(
                    "on {}, sync = \"{}\" cannot be honoured: it guards a buffer in shared \
                     memory with a lock, and only shm shares a buffer between processes (on {} \
                     the {} synchronises the two sides itself); run on shm, or leave sync at \
                     \"lock-free\"",
                    b.name(),
                    lane.sync.name(),
                    b.name(),
                    if b == BackendKind::Zenoh {
                        "engine"
                    } else {
                        "kernel"
                    }
                ),
            ));
        }
        if let Some(why) = backend::of(b).refuse(&shape(lane)) {
            return Err(error(sc, line, key, format!("on {}, {why}", b.name())));
        }
        for (window, who) in [
            (cost.producer_window, "a producer"),
            (cost.consumer_window, "a consumer"),
        ] {
            if window > WINDOWS_LIMIT {
                return Err(error(
                    sc,
                    line,
                    key,
                    format!(
                        "on {name}, {who}'s window would need {}: {}; that is more than the \
                         {} a 32-bit plugin's windows may take (they must lie below 2 GiB, \
                         beside the plugin's own memory); lower channel[{c}].slot_size or \
                         channel[{c}].capacity{}",
                        size(window),
                        cost.windows_why,
                        size(WINDOWS_LIMIT),
                        if ch.from.len() > 1 {
                            ", or the producers in `from`"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        let mut add = |plugin: usize, window: u64, fds: u64| {
            windows[plugin] = windows[plugin].saturating_add(window);
            port_fds[plugin] = port_fds[plugin].saturating_add(fds);
            if largest[plugin].is_none_or(|(w, _)| window > w) {
                largest[plugin] = Some((window, c));
            }
        };
        for e in &lane.from {
            add(e.plugin, cost.producer_window, cost.producer_fds);
        }
        for e in &lane.to {
            add(e.plugin, cost.consumer_window, cost.consumer_fds);
        }
        shared = shared.saturating_add(cost.shared_bytes);
        supervisor_fds = supervisor_fds.saturating_add(cost.supervisor_fds);
    }
    for (i, &total) in windows.iter().enumerate() {
        if total > WINDOWS_LIMIT {
            let (_, c) = largest[i].expect("a plugin with windows has a largest one");
            let (line, key) = channel_key(&sc.channels[c], c);
            return Err(error(
                sc,
                line,
                key,
                format!(
                    "on {name}, plugin `{}`'s windows would need {} together, more than the {} \
                     a 32-bit plugin's windows may take (they must lie below 2 GiB, beside its \
                     own memory); lower the slot_size or capacity of its channels, starting \
                     with channel[{c}]",
                    sc.plugins[i].name,
                    size(total),
                    size(WINDOWS_LIMIT)
                ),
            ));
        }
    }
    if shared > machine.mem_available {
        let (l, _) = costs
            .iter()
            .enumerate()
            .max_by_key(|(_, k)| k.shared_bytes)
            .expect("shared memory comes from a channel");
        let c = lanes[l].channel;
        let (line, key) = channel_key(&sc.channels[c], c);
        return Err(error(
            sc,
            line,
            key,
            format!(
                "on {name}, the run would allocate {} of shared memory, more than the {} this \
                 machine has available (MemAvailable in /proc/meminfo); lower slot_size or \
                 capacity, starting with channel[{c}] ({})",
                size(shared),
                human_bytes(machine.mem_available as f64),
                human_bytes(costs[l].shared_bytes as f64)
            ),
        ));
    }
    let worker_fds: Vec<u64> = port_fds
        .iter()
        .map(|f| f.saturating_add(WORKER_FD_HEADROOM))
        .collect();
    for (i, &fds) in worker_fds.iter().enumerate() {
        if fds > machine.open_files {
            return Err(error(
                sc,
                sc.channels.first().map_or(1, |ch| ch.lines.from),
                "channel".into(),
                format!(
                    "on {name}, plugin `{}`'s worker would hold {fds} fds ({} for its ports), \
                     more than the open-file limit of {} (`ulimit -n`); raise the limit or \
                     give the plugin fewer links",
                    sc.plugins[i].name, port_fds[i], machine.open_files
                ),
            ));
        }
    }
    if supervisor_fds > machine.open_files {
        return Err(error(
            sc,
            sc.channels.first().map_or(1, |ch| ch.lines.from),
            "channel".into(),
            format!(
                "on {name}, the supervisor would hold {supervisor_fds} fds while it starts the \
                 {n} workers, more than the open-file limit of {} (`ulimit -n`); raise the \
                 limit or use fewer links",
                machine.open_files
            ),
        ));
    }
    Ok(Needs {
        backend,
        windows,
        shared_bytes: shared,
        worker_fds,
        supervisor_fds,
    })
}
