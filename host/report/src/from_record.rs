//! [`RunReport::new`]: what the supervisor gathered about one run (a [`RunRecord`]) becomes
//! its report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::model::{Latency, Locks, ProcessReport, Requests, RoundTrip, RunReport};
use wasm_ipc_scenario::{Scenario, Verify};
use wasm_ipc_wire::control::Status;
use wasm_ipc_wire::record::{EXIT_BOUND, LinkReport, RunRecord, WINDOW_BLOCKED, WINDOW_WAITING};

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
    /// The report of one run of a run plan: `sweep` is its point's axis values, `warmup`
    /// whether it was the warm-up run kept out of every figure.
    pub fn of_plan(
        sc: &Scenario,
        run: &RunRecord,
        sweep: &[(String, String)],
        warmup: bool,
    ) -> RunReport {
        let mut r = RunReport::new(sc, run);
        r.sweep = sweep.iter().cloned().collect();
        r.warmup = warmup;
        r
    }

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
    let mut late = Vec::new();
    let mut links_out = BTreeMap::new();
    let mut links_in = BTreeMap::new();
    // Who ended ok: an early leaver is a consumer that returned ok.
    let mut returned_ok = BTreeMap::new();
    let bound_ns = u64::try_from(EXIT_BOUND.as_nanos()).unwrap_or(u64::MAX);
    for w in &run.workers {
        let u = w.usage.unwrap_or_default();
        // How long it took to exit after its plugin's run returned (its `Done`).
        let exit_after_run_ns = match (w.done_ns, w.exited_ns) {
            (Some(d), Some(e)) => Some(e.saturating_sub(d)),
            _ => None,
        };
        let (status, error, figures, io) = match &w.outcome {
            // Its plugin finished, but the worker did not end in time: killed, or late.
            Some(o) if w.killed.is_some() || exit_after_run_ns.is_some_and(|t| t > bound_ns) => {
                let after = exit_after_run_ns.map_or("-".into(), secs);
                let how = match &w.killed {
                    Some(why) => format!("{why}: killed; it ended {after} after its run"),
                    None => format!(
                        "took {after} to exit after its plugin's run returned (the bound is {})",
                        secs(bound_ns)
                    ),
                };
                let on = backends_of(run, &w.name);
                let late = format!("plugin `{}` (pid {}) on {on} {how}", w.name, w.pid);
                // A plugin that ended badly keeps its status and its cause (a lost peer's link
                // can hold the worker's exit too); one that ended ok is now `killed`.
                let (status, error) = match (o.status, &o.error) {
                    (Status::Ok, _) => (Status::Killed, late),
                    (s, Some(e)) => (s, format!("{e}; then {late}")),
                    (s, None) => (s, late),
                };
                (status, Some(error), o.figures.clone(), o.io)
            }
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
        links_out.extend(figures.links_out.clone());
        links_in.extend(figures.links_in.clone());
        returned_ok.insert(
            w.name.clone(),
            w.outcome.as_ref().is_some_and(|o| o.status == Status::Ok),
        );
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
        late.push(w.outcome.is_some() && status == Status::Killed);
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
            // The worker's own peak when it said it (`wait4`'s counts its parent's pages from
            // before its `exec`); `wait4`'s when it could not.
            max_rss_kib: w
                .outcome
                .as_ref()
                .and_then(|o| o.peak_rss_kib)
                .unwrap_or(u.max_rss_kib),
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
            exit_code: u.exit_code,
            exit_signal: u.signal,
            exit_after_run_ns,
        });
    }
    let verify = sc.run.verify == Verify::Full;
    let (digest_sent, digest_received) = if verify && !run.workers.is_empty() {
        (Some(combine(&sent)), Some(combine(&received)))
    } else {
        (None, None)
    };
    // The cause first: a plugin's own failure before those that only saw a peer fail.
    // A worker killed only because it did not exit after its plugin finished comes after
    // those that went wrong during the run: what held its exit is often their doing.
    let rank = |(i, p): &(usize, &ProcessReport)| match p.status {
        Status::Killed if late[*i] => 2,
        Status::Failed | Status::Killed => 0,
        Status::Interrupted => 1,
        Status::PeerFailed => 3,
        Status::Ok => 4,
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
            .enumerate()
            .filter(|(_, p)| p.status != Status::Ok)
            .min_by_key(rank)
            .and_then(|(_, p)| p.error.clone());
    }
    // Each link with what both ends did on it.
    let mut links = run.links.clone();
    for l in &mut links {
        if let Some(o) = links_out.get(&l.link) {
            l.published = o.messages;
            l.longest_room_wait_ns = o.longest_wait_ns;
        }
        if let Some(i) = links_in.get(&l.link) {
            l.received = i.messages;
            l.longest_message_wait_ns = i.longest_wait_ns;
        }
        if let Some(o) = links_out.get(&l.link) {
            l.dropped = o.dropped;
            l.window = o.window;
            l.room_wait_ns = o.wait_ns;
            l.round_trip_ns = o.round_trip_ns;
        }
        if let Some(i) = links_in.get(&l.link) {
            l.message_wait_ns = i.wait_ns;
        }
        if let Some(i) = links_in.get(&l.link) {
            l.lost = i.lost;
            l.duplicated = i.duplicated;
            l.reordered = i.reordered;
        }
    }
    let total = |f: fn(&LinkReport) -> u64| links.iter().map(f).sum::<u64>();
    let (lost, duplicated, reordered, dropped) = (
        total(|l| l.lost),
        total(|l| l.duplicated),
        total(|l| l.reordered),
        total(|l| l.dropped),
    );
    let (published, received_total) = (total(|l| l.published), total(|l| l.received));
    let delivered_fraction = if published > 0 {
        received_total as f64 / published as f64
    } else {
        1.0
    };
    // A consumer that returned ok before its input's end of stream while its producer had more
    // for it (published and unread, or refused because it was gone) left early: that is what
    // went wrong, not what it received.
    let mut left_early = Vec::new();
    for l in &links {
        let (Some(o), Some(i)) = (links_out.get(&l.link), links_in.get(&l.link)) else {
            continue;
        };
        let consumer = l.to.rsplit_once('.').map_or(l.to.as_str(), |(p, _)| p);
        if !i.ended
            && returned_ok.get(consumer).copied().unwrap_or(false)
            && (o.messages > i.messages || o.refused > 0)
        {
            left_early.push((l.link.clone(), consumer.to_string(), l.from.clone(), i, o));
        }
    }
    if error.is_none()
        && let Some((_, consumer, l_from, i, o)) = left_early.first()
    {
        let unread = o.messages - i.messages.min(o.messages);
        error = Some(if unread > 0 {
            format!(
                "plugin `{consumer}` returned with {unread} message{} unread on `{}`",
                if unread == 1 { "" } else { "s" },
                i.port
            )
        } else {
            let producer = l_from.rsplit_once('.').map_or(l_from.as_str(), |(p, _)| p);
            format!(
                "plugin `{consumer}` returned before the end of stream on `{}`, while \
                 `{producer}` still had messages for it (`{producer}` stopped: every consumer \
                 was gone)",
                i.port
            )
        });
    }
    if error.is_none() && digest_sent != digest_received {
        // A link that lost messages delivered less than was sent: its digests differ by
        // nature, and its loss is what the report says of it.
        let lossy = |k: &str| links.iter().any(|l| l.link == k && l.lost > 0);
        let bad: Vec<&String> = sent
            .iter()
            .filter(|(k, v)| received.get(*k) != Some(*v))
            .filter(|(k, _)| !left_early.iter().any(|(l, ..)| l == *k))
            .filter(|(k, _)| !lossy(k))
            .map(|(k, _)| k)
            .collect();
        if !bad.is_empty() {
            error = Some(format!(
                "digest mismatch: what was received differs from what was sent on {}",
                bad.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let elapsed_s = match run.release_ns {
        Some(r) if end_ns > r => (end_ns - r) as f64 / 1e9,
        _ => 0.0,
    };
    // Each link's window: how much of the run its ends waited, and what it lets through.
    for l in &mut links {
        if elapsed_s > 0.0 {
            l.blocked_share = (l.room_wait_ns as f64 / 1e9 / elapsed_s).min(1.0);
            l.waiting_share = (l.message_wait_ns as f64 / 1e9 / elapsed_s).min(1.0);
        }
        l.window_bound_per_s = l
            .round_trip_ns
            .filter(|&t| t > 0)
            .map(|t| f64::from(l.window) / (t as f64 / 1e9));
        l.window_bound =
            l.window > 0 && l.blocked_share >= WINDOW_BLOCKED && l.waiting_share >= WINDOW_WAITING;
    }
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
    let locks = locks(sc, &processes, messages);
    let rates = counts
        .into_iter()
        .map(|(k, v)| (k, per_s(u64::try_from(v).unwrap_or(0))))
        .collect();
    RunReport {
        round_trip_ns,
        requests,
        locks,
        rates,
        scenario: sc.name.clone(),
        backend: backend.name().to_string(),
        repeat,
        round: repeat,
        warmup: false,
        ok: error.is_none(),
        error,
        messages,
        bytes,
        elapsed_s,
        msgs_per_s: per_s(messages),
        bytes_per_s: per_s(bytes),
        latency_ns: percentiles(&latency),
        copied_bytes: copied,
        lost,
        duplicated,
        reordered,
        dropped,
        delivered_fraction,
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
        links,
        wall_s: run.end_ns.saturating_sub(run.start_ns) as f64 / 1e9,
        clocks: run.clocks.clone(),
    }
}

/// The bounded buffer's lock figures, summed over the processes' counters, when some channel
/// of the scenario is not lock-free.
fn locks(sc: &Scenario, processes: &[ProcessReport], messages: u64) -> Option<Locks> {
    let mut syncs: Vec<&str> = sc
        .channels
        .iter()
        .map(|c| c.sync)
        .filter(|&s| s != wasm_ipc_scenario::SyncMode::LockFree)
        .map(wasm_ipc_scenario::SyncMode::name)
        .collect();
    syncs.dedup();
    if syncs.is_empty() {
        return None;
    }
    let total = |name: &str| -> u64 { processes.iter().filter_map(|p| p.counters.get(name)).sum() };
    let (acquisitions, contended, wait_ns) = (
        total("lock_acquisitions"),
        total("lock_contended"),
        total("lock_wait_ns"),
    );
    let per = |x: u64| {
        if messages > 0 {
            x as f64 / messages as f64
        } else {
            0.0
        }
    };
    Some(Locks {
        sync: syncs.join("+"),
        acquisitions,
        contended,
        wait_ns,
        acquisitions_per_message: per(acquisitions),
        contended_per_message: per(contended),
        wait_ns_per_message: per(wait_ns),
    })
}

/// A duration for a verdict: seconds with two decimals.
fn secs(ns: u64) -> String {
    format!("{:.2} s", ns as f64 / 1e9)
}

/// The backends of plugin `name`'s links, for a verdict (`` `zenoh` ``, `` `shm` and `msg` ``;
/// the run's backend for a plugin without links).
fn backends_of(run: &RunRecord, name: &str) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for l in &run.links {
        let ends = [&l.from, &l.to];
        if ends
            .iter()
            .any(|e| e.rsplit_once('.').is_some_and(|(p, _)| p == name))
            && !kinds.contains(&l.backend.as_str())
        {
            kinds.push(&l.backend);
        }
    }
    match kinds.as_slice() {
        [] => format!("`{}`", run.backend.name()),
        [one] => format!("`{one}`"),
        many => many
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(" and "),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use wasm_ipc_scenario::{BackendKind, Scenario};
    use wasm_ipc_wire::control::{Outcome, Status};
    use wasm_ipc_wire::record::{ChildUsage, LinkReport, RunRecord, WorkerRecord};

    use crate::model::RunReport;

    const S: u64 = 1_000_000_000;

    fn scenario() -> Scenario {
        let text = "name = \"t\"\n[[plugin]]\nname = \"a\"\nwasm = \"a.wasm\"\n\
                    [[plugin]]\nname = \"b\"\nwasm = \"b.wasm\"\n\
                    [[channel]]\nfrom = \"a.out\"\nto = \"b.in\"\n";
        Scenario::parse(Path::new("t.toml"), text).unwrap()
    }

    /// A worker whose plugin ended ok at 1 s and that exited at `exit_ms`, killed or not.
    fn finished(name: &str, exit_ms: u64, killed: Option<&str>) -> WorkerRecord {
        WorkerRecord {
            name: name.into(),
            host: "local".into(),
            pid: 7,
            spawn_ns: 0,
            ready_ns: Some(1),
            outcome: Some(Outcome {
                status: Status::Ok,
                error: None,
                end_ns: S,
                ready_at_ns: 1,
                figures: Default::default(),
                io: None,
                peak_rss_kib: None,
                limit: None,
            }),
            done_ns: Some(S),
            exited_ns: Some(exit_ms * 1_000_000),
            usage: Some(ChildUsage {
                signal: killed.map(|_| 9),
                exit_code: killed.is_none().then_some(0),
                ..Default::default()
            }),
            killed: killed.map(String::from),
        }
    }

    fn record(workers: Vec<WorkerRecord>) -> RunRecord {
        RunRecord {
            backend: BackendKind::Msg,
            repeat: 0,
            modules_compiled: 0,
            start_error: None,
            start_ns: 0,
            end_ns: 4 * S,
            workers,
            release_ns: Some(1),
            interrupted: None,
            links: vec![LinkReport {
                link: "channel[0]:a.out->b.in".into(),
                from: "a.out".into(),
                to: "b.in".into(),
                backend: "msg".into(),
                from_host: "local".into(),
                to_host: "local".into(),
                published: 0,
                received: 0,
                longest_room_wait_ns: 0,
                longest_message_wait_ns: 0,
                dropped: 0,
                lost: 0,
                duplicated: 0,
                reordered: 0,
                ..LinkReport::default()
            }],
            clocks: Vec::new(),
        }
    }

    #[test]
    fn a_workers_own_peak_rss_is_reported_rather_than_wait4s() {
        // wait4's figure counts the parent's pages from before the worker's exec.
        let mut a = finished("a", 1001, None);
        if let Some(u) = a.usage.as_mut() {
            u.max_rss_kib = 400_000;
        }
        if let Some(o) = a.outcome.as_mut() {
            o.peak_rss_kib = Some(13_000);
        }
        let mut b = finished("b", 1001, None);
        if let Some(u) = b.usage.as_mut() {
            u.max_rss_kib = 9_000;
        }
        let r = RunReport::new(&scenario(), &record(vec![a, b]));
        assert_eq!(r.processes[0].max_rss_kib, 13_000);
        assert_eq!(
            r.processes[1].max_rss_kib, 9_000,
            "wait4's, without the worker's own"
        );
    }

    #[test]
    fn a_worker_killed_after_its_run_fails_the_run_naming_it_its_backend_and_the_time() {
        let kill = "did not exit within 2.00 s after its plugin's run returned";
        let r = RunReport::new(
            &scenario(),
            &record(vec![
                finished("a", 3020, Some(kill)),
                finished("b", 1001, None),
            ]),
        );
        assert!(!r.ok);
        assert_eq!(
            r.error.as_deref(),
            Some(
                "plugin `a` (pid 7) on `msg` did not exit within 2.00 s after its plugin's run \
                 returned: killed; it ended 2.02 s after its run"
            )
        );
        assert_eq!(r.processes[0].status, Status::Killed);
        assert_eq!(r.processes[0].exit_after_run_ns, Some(2_020_000_000));
        assert_eq!(r.processes[1].status, Status::Ok);
        assert_eq!(r.wall_s, 4.0);
    }

    #[test]
    fn a_worker_slower_than_the_bound_to_exit_fails_the_run_though_not_killed() {
        let r = RunReport::new(
            &scenario(),
            &record(vec![finished("a", 1001, None), finished("b", 3500, None)]),
        );
        assert_eq!(
            r.error.as_deref(),
            Some(
                "plugin `b` (pid 7) on `msg` took 2.50 s to exit after its plugin's run \
                 returned (the bound is 2.00 s)"
            )
        );
    }

    #[test]
    fn a_failure_during_the_run_is_the_cause_before_a_late_exit() {
        let kill = "did not exit within 2.00 s after its plugin's run returned";
        let lost = WorkerRecord {
            outcome: None,
            done_ns: None,
            killed: Some("lost with its host: the link went down".into()),
            ..finished("b", 1500, None)
        };
        let r = RunReport::new(
            &scenario(),
            &record(vec![finished("a", 3020, Some(kill)), lost]),
        );
        let err = r.error.unwrap();
        assert!(
            err.starts_with("plugin `b` (pid 7) lost with its host"),
            "{err}"
        );
        assert_eq!(r.processes[0].status, Status::Killed);
    }
}
