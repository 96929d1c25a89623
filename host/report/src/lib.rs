//! The report: per-run figures (JSON schema 1, the fields of DESIGN §7) and the table.
//!
//! Figures come from the workers, measured from the barrier's release; CPU, RSS and context
//! switches from `wait4`. `copied_bytes` is the sum of what each worker's transport counted
//! where it copied; digests combine per-link digests in link-key order.
//!
//! This crate formats and judges; it runs nothing and links no WebAssembly engine, so a change
//! to a label or a verdict rebuilds only the crates that print reports.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// `--html FILE`: the report as one self-contained page.
pub mod html;
pub mod plot;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use wasm_ipc_scenario::{Scenario, Verify};
pub use wasm_ipc_scenario::{human_bytes, human_ns};
use wasm_ipc_wire::control::Status;
use wasm_ipc_wire::record::RunRecord;
pub use wasm_ipc_wire::record::{ClockReport, LinkReport};

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
    /// Every run, in order.
    pub runs: Vec<RunReport>,
    /// The supervisor's own peak resident set, KiB (added in schema 1).
    #[serde(default)]
    pub supervisor_max_rss_kib: u64,
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
}

/// One run of a scenario on one backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Scenario name.
    pub scenario: String,
    /// `shm` or `msg`.
    pub backend: String,
    /// 0-based repeat index.
    pub repeat: u32,
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
    /// Per second, for every plugin report `count.<what>` (summed over processes): `<what>` →
    /// rate, e.g. `pages` for the web workers' `count.pages` (added in schema 1).
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
    /// Payload bytes moved through a copy, counted where copied.
    pub copied_bytes: u64,
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
    /// `sched_yields` (`shm`); added in schema 1.
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

/// Combines link digests: xxh3-64 over `key=digest\n` lines in key order (a sorted list, not
/// XOR, so equal fan-out links do not cancel).
pub fn combine(links: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (k, v) in links {
        let _ = writeln!(text, "{k}={v}");
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// Turns what the supervisor gathered into the run's report.
pub fn build(sc: &Scenario, run: &RunRecord) -> RunReport {
    let (backend, repeat, modules_compiled) = (run.backend, run.repeat, run.modules_compiled);
    let mut sent = BTreeMap::new();
    let mut received = BTreeMap::new();
    let mut latency = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    let mut calls = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    let mut requests = Requests::default();
    let (mut client_cpu, mut server_cpu) = (0.0, 0.0);
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut syscalls: BTreeMap<String, u64> = BTreeMap::new();
    let (mut messages, mut bytes, mut copied) = (0, 0, 0);
    let mut end_ns = run.release_ns.unwrap_or(0);
    let mut processes = Vec::new();
    for w in &run.workers {
        let u = w.usage.unwrap_or_default();
        let (status, error, figures, io) = match &w.outcome {
            Some(o) => (o.status, o.error.clone(), o.figures.clone(), o.io),
            None => {
                let how = match (u.signal, &w.killed) {
                    (Some(sig), Some(why)) => {
                        format!("killed by the supervisor (signal {sig}): {why}")
                    }
                    (Some(sig), None) => format!("killed by signal {sig}"),
                    (None, Some(why)) => why.clone(),
                    (None, _) => format!(
                        "exited with status {} without reporting",
                        u.exit_code.unwrap_or(-1)
                    ),
                };
                (
                    Status::Killed,
                    Some(format!("plugin `{}` (pid {}) {how}", w.name, w.pid)),
                    Default::default(),
                    None,
                )
            }
        };
        if let Some(o) = &w.outcome {
            end_ns = end_ns.max(o.end_ns);
        }
        sent.extend(figures.sent.clone());
        received.extend(figures.received.clone());
        for (v, c) in &figures.latency {
            let _ = latency.record_n(*v, *c);
        }
        for (v, c) in &figures.call_latency {
            let _ = calls.record_n(*v, *c);
        }
        requests.calls += figures.calls;
        requests.served += figures.served;
        requests.clients_lost += figures.clients_lost;
        if figures.calls > 0 {
            client_cpu += u.user_s + u.sys_s;
        }
        if figures.served > 0 {
            server_cpu += u.user_s + u.sys_s;
        }
        for (k, v) in &figures.counters {
            if SYSCALL_COUNTERS.contains(&k.as_str()) {
                *syscalls.entry(k.clone()).or_default() += v;
            }
        }
        for (k, v) in &figures.reports {
            if let Some(what) = k.strip_prefix("count.") {
                *counts.entry(what.to_string()).or_default() += v;
            }
        }
        messages += figures.messages_received;
        bytes += figures.bytes_received;
        copied += figures.copied_bytes;
        processes.push(ProcessReport {
            plugin: w.name.clone(),
            host: w.host.clone(),
            pid: w.pid,
            status,
            error,
            ready_ns: w
                .outcome
                .as_ref()
                .map(|o| o.ready_at_ns)
                .or(w.ready_ns)
                .filter(|&r| r > 0)
                .map_or(0, |r| r.saturating_sub(w.spawn_ns)),
            user_s: u.user_s,
            sys_s: u.sys_s,
            max_rss_kib: u.max_rss_kib,
            voluntary_cs: u.voluntary_cs,
            involuntary_cs: u.involuntary_cs,
            reports: figures.reports.clone(),
            messages_sent: figures.messages_sent,
            messages_received: figures.messages_received,
            copied_bytes: figures.copied_bytes,
            io_rchar: io.map(|x| x.0),
            io_wchar: io.map(|x| x.1),
            futex_waits: figures.futex_waits,
            lost_wakeups: figures.lost_wakeups,
            windows: figures.windows.clone(),
            output_dropped: figures.output_dropped,
            counters: figures.counters.clone(),
            limit: w.outcome.as_ref().and_then(|o| o.limit.clone()),
            calls: figures.calls,
            served: figures.served,
        });
    }
    let verify = sc.run.verify == Verify::Full;
    let (digest_sent, digest_received) = if verify && !run.workers.is_empty() {
        (Some(combine(&sent)), Some(combine(&received)))
    } else {
        (None, None)
    };
    // The cause first: a plugin's own failure before those that only saw a peer fail.
    let rank = |s: Status| match s {
        Status::Failed | Status::Killed => 0,
        Status::Interrupted => 1,
        Status::PeerFailed => 2,
        Status::Ok => 3,
    };
    let mut error = run.start_error.clone();
    if error.is_none() && run.interrupted {
        error = Some("interrupted (Ctrl-C)".into());
    }
    if error.is_none() {
        error = processes
            .iter()
            .filter(|p| p.status != Status::Ok)
            .min_by_key(|p| rank(p.status))
            .and_then(|p| p.error.clone());
    }
    if error.is_none() && digest_sent != digest_received {
        let bad: Vec<&String> = sent
            .iter()
            .filter(|(k, v)| received.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        error = Some(format!(
            "digest mismatch: what was received differs from what was sent on {}",
            bad.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let elapsed_s = match run.release_ns {
        Some(r) if end_ns > r => (end_ns - r) as f64 / 1e9,
        _ => 0.0,
    };
    let per_s = |x: u64| {
        if elapsed_s > 0.0 {
            x as f64 / elapsed_s
        } else {
            0.0
        }
    };
    // The application's own round trip, from the first plugin that reports one.
    let round_trip_ns = processes.iter().find_map(|p| {
        let get = |k: &str| p.reports.get(k).and_then(|&v| u64::try_from(v).ok());
        let avg = get("rtt_ns_avg")?;
        Some(RoundTrip {
            avg,
            min: get("rtt_ns_min").unwrap_or(0),
            one_way_avg: avg / 2,
        })
    });
    // CPU seconds per item, in ns (0 for no items; a bad figure counts as no CPU).
    let per = |cpu_s: f64, n: u64| {
        let ns = std::time::Duration::try_from_secs_f64(cpu_s)
            .unwrap_or_default()
            .as_nanos();
        ns.checked_div(u128::from(n))
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0)
    };
    let requests = (requests.calls > 0 || requests.served > 0).then(|| Requests {
        per_s: per_s(requests.calls),
        round_trip_ns: percentiles(&calls),
        client_cpu_ns_per_call: per(client_cpu, requests.calls),
        server_cpu_ns_per_request: per(server_cpu, requests.served),
        ..requests
    });
    let rates = counts
        .into_iter()
        .map(|(k, v)| (k, per_s(u64::try_from(v).unwrap_or(0))))
        .collect();
    RunReport {
        round_trip_ns,
        requests,
        rates,
        scenario: sc.name.clone(),
        backend: backend.name().to_string(),
        repeat,
        ok: error.is_none(),
        error,
        messages,
        bytes,
        elapsed_s,
        msgs_per_s: per_s(messages),
        bytes_per_s: per_s(bytes),
        latency_ns: percentiles(&latency),
        copied_bytes: copied,
        digest_sent,
        digest_received,
        modules_compiled,
        verify: if verify { "full" } else { "off" }.into(),
        syscalls_per_message: if messages > 0 {
            syscalls.values().sum::<u64>() as f64 / messages as f64
        } else {
            0.0
        },
        syscalls,
        processes,
        sweep: BTreeMap::new(),
        links: run.links.clone(),
        clocks: run.clocks.clone(),
    }
}

/// The backends' counters that count system calls (the rest count events).
pub const SYSCALL_COUNTERS: [&str; 6] = [
    "reads",
    "writes",
    "polls",
    "futex_waits",
    "futex_wakes",
    "sched_yields",
];

fn percentiles(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        Latency::default()
    } else {
        Latency {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// This process's peak resident set so far, KiB.
fn self_max_rss_kib() -> u64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF).map_or(0, |u| u64::try_from(u.max_rss()).unwrap_or(0))
}

impl Report {
    /// Assembles the report and checks that every ok run with digests delivered the same bytes.
    pub fn new(sc: &Scenario, runs: Vec<RunReport>) -> Report {
        // Runs of one sweep point must deliver the same bytes; different points may not.
        let mut first: BTreeMap<&BTreeMap<String, String>, &String> = BTreeMap::new();
        let digests_agree = runs
            .iter()
            .filter(|r| r.ok)
            .filter_map(|r| Some((&r.sweep, r.digest_received.as_ref()?)))
            .all(|(point, d)| *first.entry(point).or_insert(d) == d);
        Report {
            schema: 1,
            scenario: sc.name.clone(),
            supervisor_pid: std::process::id(),
            digests_agree,
            runs,
            supervisor_max_rss_kib: self_max_rss_kib(),
        }
    }

    /// Every run ok and every digest equal.
    pub fn ok(&self) -> bool {
        self.digests_agree && self.runs.iter().all(|r| r.ok)
    }

    /// The human-readable table: one column per run.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        let mut row = |name: &str, f: &dyn Fn(&RunReport) -> String| {
            rows.push((name.to_string(), self.runs.iter().map(f).collect()));
        };
        row("backend", &|r| {
            if self.runs.iter().any(|o| o.repeat > 0) {
                format!("{}#{}", r.backend, r.repeat)
            } else {
                r.backend.clone()
            }
        });
        if self.runs.iter().any(|r| !r.sweep.is_empty()) {
            row("sweep", &|r| {
                r.sweep
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
        }
        row("ok", &|r| if r.ok { "yes".into() } else { "NO".into() });
        row("messages", &|r| r.messages.to_string());
        row("bytes", &|r| human_bytes(r.bytes as f64));
        row("elapsed", &|r| format!("{:.3} s", r.elapsed_s));
        row("throughput", &|r| format!("{:.0} msg/s", r.msgs_per_s));
        row("bandwidth", &|r| {
            format!("{}/s", human_bytes(r.bytes_per_s))
        });
        row("hand-off p50", &|r| human_ns(r.latency_ns.p50));
        row("hand-off p99", &|r| human_ns(r.latency_ns.p99));
        row("hand-off p99.9", &|r| human_ns(r.latency_ns.p999));
        row("hand-off max", &|r| human_ns(r.latency_ns.max));
        if self.runs.iter().any(|r| r.round_trip_ns.is_some()) {
            let rt = |f: fn(&RoundTrip) -> u64| {
                move |r: &RunReport| {
                    r.round_trip_ns
                        .as_ref()
                        .map_or("-".into(), |t| human_ns(f(t)))
                }
            };
            row("round trip avg", &rt(|t| t.avg));
            row("round trip min", &rt(|t| t.min));
            row("one-way (rtt/2)", &rt(|t| t.one_way_avg));
        }
        if self.runs.iter().any(|r| r.requests.is_some()) {
            let rq = |f: fn(&Requests) -> String| {
                move |r: &RunReport| r.requests.as_ref().map_or("-".into(), f)
            };
            row("requests", &rq(|q| q.calls.to_string()));
            row("requests/s", &rq(|q| format!("{:.0} req/s", q.per_s)));
            row(
                "call round trip p50",
                &rq(|q| human_ns(q.round_trip_ns.p50)),
            );
            row(
                "call round trip p99",
                &rq(|q| human_ns(q.round_trip_ns.p99)),
            );
            row(
                "cpu per call, clients",
                &rq(|q| human_ns(q.client_cpu_ns_per_call)),
            );
            row(
                "cpu per request, server",
                &rq(|q| human_ns(q.server_cpu_ns_per_request)),
            );
            if self
                .runs
                .iter()
                .any(|r| r.requests.is_some_and(|q| q.clients_lost > 0))
            {
                row("clients lost", &rq(|q| q.clients_lost.to_string()));
            }
        }
        let names: std::collections::BTreeSet<&String> =
            self.runs.iter().flat_map(|r| r.rates.keys()).collect();
        for name in names {
            row(&format!("{name}/s"), &|r| {
                r.rates.get(name).map_or("-".into(), |v| format!("{v:.0}"))
            });
        }
        row("syscalls/message", &|r| {
            let parts: Vec<String> = r
                .syscalls
                .iter()
                .filter(|(_, n)| **n > 0 && r.messages > 0)
                .map(|(k, &n)| format!("{k} {:.2}", n as f64 / r.messages as f64))
                .collect();
            format!("{:.2} ({})", r.syscalls_per_message, parts.join(", "))
        });
        row("copied", &|r| human_bytes(r.copied_bytes as f64));
        row("cpu user+sys", &|r| {
            let (u, s) = r
                .processes
                .iter()
                .fold((0.0, 0.0), |(u, s), p| (u + p.user_s, s + p.sys_s));
            format!("{u:.2}+{s:.2} s")
        });
        row("ctx switches", &|r| {
            let (v, i) = r.processes.iter().fold((0, 0), |(v, i), p| {
                (v + p.voluntary_cs, i + p.involuntary_cs)
            });
            format!("{v} vol, {i} invol")
        });
        row("max rss", &|r| {
            human_bytes(
                r.processes.iter().map(|p| p.max_rss_kib).max().unwrap_or(0) as f64 * 1024.0,
            )
        });
        row("digest sent", &|r| {
            r.digest_sent.clone().unwrap_or("-".into())
        });
        row("digest received", &|r| {
            r.digest_received.clone().unwrap_or("-".into())
        });
        let w0 = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..self.runs.len())
            .map(|i| rows.iter().map(|(_, v)| v[i].len()).max().unwrap_or(0))
            .collect();
        let mut out = format!("scenario: {}\n", self.scenario);
        for (name, vals) in &rows {
            let _ = write!(out, "{name:<w0$}");
            for (v, w) in vals.iter().zip(&widths) {
                let _ = write!(out, "  {v:>w$}");
            }
            out.push('\n');
        }
        for r in &self.runs {
            if let Some(e) = &r.error {
                let _ = writeln!(out, "{}#{}: {e}", r.backend, r.repeat);
            }
        }
        out.push_str(&self.verdicts());
        out.push_str(&self.crossovers());
        if !self.digests_agree {
            out.push_str("digests differ between runs: the runs did not deliver the same bytes\n");
        } else if self.runs.len() > 1
            && self
                .runs
                .iter()
                .all(|r| r.ok && r.digest_received.is_some())
        {
            if self.points().len() > 1 {
                out.push_str(
                    "the runs of each sweep point delivered identical bytes (equal digests)\n",
                );
            } else {
                out.push_str("every run delivered identical bytes (equal digests)\n");
            }
        }
        if let Some(r) = self.runs.iter().find(|r| !r.clocks.is_empty()) {
            let clocks: Vec<String> = r
                .clocks
                .iter()
                .map(|c| {
                    format!(
                        "{} {:+.6} s ± {}",
                        c.host,
                        c.offset_ns as f64 / 1e9,
                        human_ns(c.error_ns)
                    )
                })
                .collect();
            out.push_str(&format!(
                "host clocks against this machine's: {}; hand-off times across hosts are \
                 corrected by these offsets and carry their error\n",
                clocks.join(", ")
            ));
        }
        out
    }
}

/// The CPU (user + sys, every process) of a run per delivered message, ns.
pub fn cpu_per_message_ns(r: &RunReport) -> f64 {
    let cpu: f64 = r.processes.iter().map(|p| p.user_s + p.sys_s).sum();
    if r.messages == 0 {
        0.0
    } else {
        cpu * 1e9 / r.messages as f64
    }
}

/// A figure compared across backends: its name, how to read it off a run, and whether more
/// is better.
struct Figure {
    name: &'static str,
    get: fn(&RunReport) -> f64,
    more_is_better: bool,
}

const FIGURES: [Figure; 3] = [
    Figure {
        name: "throughput",
        get: |r| r.msgs_per_s,
        more_is_better: true,
    },
    Figure {
        name: "hand-off p99",
        get: |r| r.latency_ns.p99 as f64,
        more_is_better: false,
    },
    Figure {
        name: "cpu per message",
        get: cpu_per_message_ns,
        more_is_better: false,
    },
];

/// A sweep point: axis → value.
type Point = BTreeMap<String, String>;

/// Who wins a figure at one sweep point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The pair's first backend.
    A,
    /// The pair's second backend.
    B,
    /// The two backends' ranges over the repeats overlap.
    Noise,
}

impl Side {
    fn name(self, pair: [&str; 2]) -> &str {
        match self {
            Side::A => pair[0],
            Side::B => pair[1],
            Side::Noise => "neither",
        }
    }
}

/// The winner from each backend's (min, max) over the repeats.
fn side(a: (f64, f64), b: (f64, f64), more_is_better: bool) -> Side {
    let (a_better, b_better) = if more_is_better {
        (a.0 > b.1, b.0 > a.1)
    } else {
        (a.1 < b.0, b.1 < a.0)
    };
    match (a_better, b_better) {
        (true, _) => Side::A,
        (_, true) => Side::B,
        _ => Side::Noise,
    }
}

/// The pairs of backends that verdicts and crossovers compare, in the order the runs ran:
/// `shm`/`msg`, then `shm`/`zenoh`, then `msg`/`zenoh` when all three ran.
fn pairs(backends: &[&str]) -> Vec<[String; 2]> {
    let mut out = Vec::new();
    for (i, a) in backends.iter().enumerate() {
        for b in &backends[i + 1..] {
            out.push([a.to_string(), b.to_string()]);
        }
    }
    out
}

/// How a verdict or crossover line names its pair: nothing for `shm`/`msg` (the lines read as
/// they did before a third backend), `, shm vs zenoh` for the others.
fn pair_label(pair: [&str; 2]) -> String {
    if pair == ["shm", "msg"] {
        String::new()
    } else {
        format!(", {} vs {}", pair[0], pair[1])
    }
}

/// The crossover along a series of sweep values (`at(i)` names value `i`): where the side
/// that wins at the first clear point stops winning.
fn crossover(series: &[Option<Side>], pair: [&str; 2], at: impl Fn(usize) -> String) -> String {
    let clear: Vec<(usize, Side)> = series
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.filter(|s| *s != Side::Noise).map(|s| (i, s)))
        .collect();
    let Some(&(_, first)) = clear.first() else {
        return "within noise at every value".into();
    };
    match clear.iter().find(|(_, s)| *s != first) {
        Some(&(i, s)) => {
            let noisy = series[..i].contains(&Some(Side::Noise));
            format!(
                "{} overtakes {} at {}{}",
                s.name(pair),
                first.name(pair),
                at(i),
                if noisy {
                    " (within noise before it)"
                } else {
                    ""
                }
            )
        }
        None if clear.len() < series.len() => format!(
            "none in range ({} wins wherever the repeats do not overlap; within noise elsewhere)",
            first.name(pair)
        ),
        None => format!("none in range ({} wins throughout)", first.name(pair)),
    }
}

/// The median of `v` (sorted in place).
fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Report {
    /// The sweep points in run order, each once.
    fn points(&self) -> Vec<&BTreeMap<String, String>> {
        let mut points: Vec<&BTreeMap<String, String>> = Vec::new();
        for r in &self.runs {
            if !points.contains(&&r.sweep) {
                points.push(&r.sweep);
            }
        }
        points
    }

    /// Median of `f` over the ok runs of `backend` at `point`.
    fn median_of(
        &self,
        point: &BTreeMap<String, String>,
        backend: &str,
        f: fn(&RunReport) -> f64,
    ) -> Option<f64> {
        let mut v: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| r.ok && r.backend == backend && &r.sweep == point)
            .map(f)
            .collect();
        median(&mut v)
    }

    /// The backends of the runs, in the order they ran.
    fn backends(&self) -> Vec<&str> {
        let mut b: Vec<&str> = Vec::new();
        for r in &self.runs {
            if !b.contains(&r.backend.as_str()) {
                b.push(&r.backend);
            }
        }
        b
    }

    /// Under the table, for each pair of backends (`shm`/`msg`, then `shm`/`zenoh` and
    /// `msg`/`zenoh` when they ran): per sweep point, the ratios of each figure (medians over
    /// the repeats), then one verdict per figure over all points: who wins, by how much.
    pub fn verdicts(&self) -> String {
        let mut out = String::new();
        for [a, b] in pairs(&self.backends()) {
            self.pair_verdicts(&mut out, [&a, &b]);
        }
        out
    }

    fn pair_verdicts(&self, out: &mut String, pair: [&str; 2]) {
        let [a_name, b_name] = pair;
        let label = pair_label(pair);
        let points = self.points();
        let _ = writeln!(
            out,
            "{a_name} / {b_name} (medians over repeats; above 1: {a_name} has more):"
        );
        for point in &points {
            let label = if point.is_empty() {
                "  all".to_string()
            } else {
                format!(
                    "  {}",
                    point
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let cells: Vec<String> = FIGURES
                .iter()
                .map(|f| {
                    match (
                        self.median_of(point, a_name, f.get),
                        self.median_of(point, b_name, f.get),
                    ) {
                        (Some(a), Some(b)) if b > 0.0 => format!("{} {:.2}", f.name, a / b),
                        _ => format!("{} -", f.name),
                    }
                })
                .collect();
            let _ = writeln!(out, "{label}: {}", cells.join(", "));
        }
        for f in &FIGURES {
            let mut ratios: Vec<f64> = points
                .iter()
                .filter_map(|p| {
                    let (a, b) = (
                        self.median_of(p, a_name, f.get)?,
                        self.median_of(p, b_name, f.get)?,
                    );
                    (a > 0.0 && b > 0.0).then_some(a / b)
                })
                .collect();
            let Some(m) = median(&mut ratios) else {
                continue;
            };
            // "Wins" in the figure's own sense: more throughput, less latency and CPU.
            let a_better = if f.more_is_better { m > 1.0 } else { m < 1.0 };
            let by = if m >= 1.0 { m } else { 1.0 / m };
            let (winner, loser) = if a_better {
                (a_name, b_name)
            } else {
                (b_name, a_name)
            };
            let span = if points.len() > 1 {
                format!(" (median over {} sweep points)", points.len())
            } else {
                String::new()
            };
            if by < 1.05 {
                let _ = writeln!(out, "verdict, {}{label}: even (within 5 %){span}", f.name);
            } else {
                let _ = writeln!(
                    out,
                    "verdict, {}{label}: {winner} wins, {by:.2}× {loser}{span}",
                    f.name
                );
            }
        }
    }

    /// Under the verdicts: along each sweep axis (for each combination of the other axes),
    /// per figure and pair of backends, the first value at which the backend that wins at the
    /// axis's first value stops winning — "none in range" when it wins throughout, "within
    /// noise" where the two backends' ranges over the repeats overlap.
    pub fn crossovers(&self) -> String {
        let mut out = String::new();
        let points = self.points();
        let Some(first) = points.first() else {
            return out;
        };
        let pairs = pairs(&self.backends());
        for axis in first.keys() {
            // Groups of points that differ only in `axis`, in run (value) order.
            let mut groups: Vec<(Point, Vec<&Point>)> = Vec::new();
            for p in &points {
                let mut rest = (*p).clone();
                rest.remove(axis);
                match groups.iter_mut().find(|(r, _)| *r == rest) {
                    Some((_, g)) => g.push(p),
                    None => groups.push((rest, vec![p])),
                }
            }
            for (rest, group) in &groups {
                if group.len() < 2 {
                    continue;
                }
                for [a, b] in &pairs {
                    let pair = [a.as_str(), b.as_str()];
                    for f in &FIGURES {
                        let series: Vec<Option<Side>> =
                            group.iter().map(|p| self.side_at(p, f, pair)).collect();
                        let at = |i: usize| group[i].get(axis).cloned().unwrap_or_default();
                        let where_ = if rest.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " ({})",
                                rest.iter()
                                    .map(|(k, v)| format!("{k}={v}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        };
                        let _ = writeln!(
                            out,
                            "crossover, {} along {axis}{where_}{}: {}",
                            f.name,
                            pair_label(pair),
                            crossover(&series, pair, at)
                        );
                    }
                }
            }
        }
        out
    }

    /// Which backend of `pair` wins figure `f` at `point`, or that their ranges overlap.
    fn side_at(
        &self,
        point: &BTreeMap<String, String>,
        f: &Figure,
        pair: [&str; 2],
    ) -> Option<Side> {
        let range = |backend: &str| {
            let v: Vec<f64> = self
                .runs
                .iter()
                .filter(|r| r.ok && r.backend == backend && &r.sweep == point)
                .map(f.get)
                .collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (!v.is_empty()).then_some((lo, hi))
        };
        Some(side(range(pair[0])?, range(pair[1])?, f.more_is_better))
    }

    /// One CSV row per run: the scenario, the sweep point's axes, the backend, the repeat and
    /// the figures. Columns: `scenario`, one per sweep axis, `backend`, `repeat`, `ok`,
    /// `messages`, `bytes`, `elapsed_s`, `msgs_per_s`, `bytes_per_s`, `handoff_p50_ns`,
    /// `handoff_p99_ns`, `copied_bytes`, `cpu_s`, `cpu_per_msg_ns`, `voluntary_cs`,
    /// `involuntary_cs`, `max_rss_kib`, `digest_received`.
    pub fn csv(&self) -> String {
        let axes: Vec<&String> = {
            let mut a: Vec<&String> = Vec::new();
            for r in &self.runs {
                for k in r.sweep.keys() {
                    if !a.contains(&k) {
                        a.push(k);
                    }
                }
            }
            a
        };
        let quote = |s: &str| {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        };
        let mut out = String::from("scenario");
        for a in &axes {
            let _ = write!(out, ",{}", quote(a));
        }
        out.push_str(",backend,repeat,ok,messages,bytes,elapsed_s,msgs_per_s,bytes_per_s,handoff_p50_ns,handoff_p99_ns,copied_bytes,cpu_s,cpu_per_msg_ns,voluntary_cs,involuntary_cs,max_rss_kib,digest_received\n");
        for r in &self.runs {
            let _ = write!(out, "{}", quote(&r.scenario));
            for a in &axes {
                let _ = write!(
                    out,
                    ",{}",
                    quote(r.sweep.get(*a).map_or("", String::as_str))
                );
            }
            let cpu: f64 = r.processes.iter().map(|p| p.user_s + p.sys_s).sum();
            let (v, i) = r.processes.iter().fold((0, 0), |(v, i), p| {
                (v + p.voluntary_cs, i + p.involuntary_cs)
            });
            let _ = writeln!(
                out,
                ",{},{},{},{},{},{:.6},{:.1},{:.1},{},{},{},{:.6},{:.1},{v},{i},{},{}",
                r.backend,
                r.repeat,
                r.ok,
                r.messages,
                r.bytes,
                r.elapsed_s,
                r.msgs_per_s,
                r.bytes_per_s,
                r.latency_ns.p50,
                r.latency_ns.p99,
                r.copied_bytes,
                cpu,
                cpu_per_message_ns(r),
                r.processes.iter().map(|p| p.max_rss_kib).max().unwrap_or(0),
                r.digest_received.as_deref().unwrap_or("")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crossover's definition on figures with a known answer.
    #[test]
    fn the_crossover_is_the_first_clear_change_of_winner() {
        let at = |i: usize| ["64", "4096", "65536", "1048576"][i].to_string();
        let (s, m, n) = (Some(Side::A), Some(Side::B), Some(Side::Noise));
        let pair = ["shm", "msg"];
        assert_eq!(
            crossover(&[s, s, m, m], pair, at),
            "msg overtakes shm at 65536"
        );
        assert_eq!(
            crossover(&[m, n, s, s], pair, at),
            "shm overtakes msg at 65536 (within noise before it)"
        );
        assert_eq!(
            crossover(&[s, s, s, s], pair, at),
            "none in range (shm wins throughout)"
        );
        assert!(crossover(&[n, s, n, s], pair, at).starts_with("none in range (shm wins wherever"));
        assert_eq!(
            crossover(&[n, n, None, n], pair, at),
            "within noise at every value"
        );
        // Throughput: more is better; ranges that overlap are noise.
        assert_eq!(side((10.0, 12.0), (5.0, 6.0), true), Side::A);
        assert_eq!(side((10.0, 12.0), (11.0, 13.0), true), Side::Noise);
        assert_eq!(side((1.0, 2.0), (5.0, 6.0), true), Side::B);
        // Latency: less is better.
        assert_eq!(side((1.0, 2.0), (5.0, 6.0), false), Side::A);
        // Three backends: three pairs, in run order; only shm/msg goes unlabelled.
        let p = pairs(&["shm", "msg", "zenoh"]);
        assert_eq!(
            p,
            [["shm", "msg"], ["shm", "zenoh"], ["msg", "zenoh"]].map(|x| x.map(String::from))
        );
        assert_eq!(pair_label(["shm", "msg"]), "");
        assert_eq!(pair_label(["msg", "zenoh"]), ", msg vs zenoh");
        assert_eq!(
            crossover(&[s, m], ["msg", "zenoh"], at),
            "zenoh overtakes msg at 4096"
        );
    }
}
