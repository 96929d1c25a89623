//! [`RunReport::new`]: what the supervisor gathered about one run (a [`RunRecord`]) becomes
//! its report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::model::{Latency, ProcessReport, Requests, RoundTrip, RunReport};
use wasm_ipc_scenario::{Scenario, Verify};
use wasm_ipc_wire::control::Status;
use wasm_ipc_wire::record::RunRecord;

/// Combines link digests: xxh3-64 over `key=digest\n` lines in key order (a sorted list, not
/// XOR, so equal fan-out links do not cancel).
pub fn combine(links: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (k, v) in links {
        let _ = writeln!(text, "{k}={v}");
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

impl RunReport {
    /// Turns what the supervisor gathered about one run of `sc` into the run's report.
    pub fn new(sc: &Scenario, run: &RunRecord) -> RunReport {
        from_record(sc, run)
    }
}

fn from_record(sc: &Scenario, run: &RunRecord) -> RunReport {
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
    if error.is_none()
        && let Some(signal) = &run.interrupted
    {
        error = Some(format!("interrupted by {signal}"));
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
