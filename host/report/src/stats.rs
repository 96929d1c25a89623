//! Figures computed from a run's own figures, and the median the verdicts take.

use crate::model::RunReport;

/// The CPU (user + sys) of every process of a run, seconds.
pub(crate) fn cpu_s(r: &RunReport) -> f64 {
    r.processes.iter().map(|p| p.user_s + p.sys_s).sum()
}

/// The CPU (user + sys, every process) of a run per delivered message, ns.
pub fn cpu_per_message_ns(r: &RunReport) -> f64 {
    let cpu = cpu_s(r);
    if r.messages == 0 {
        0.0
    } else {
        cpu * 1e9 / r.messages as f64
    }
}

/// The voluntary and involuntary context switches of every process of a run.
pub(crate) fn context_switches(r: &RunReport) -> (u64, u64) {
    r.processes.iter().fold((0, 0), |(v, i), p| {
        (v + p.voluntary_cs, i + p.involuntary_cs)
    })
}

/// The longest single wait of any link of a run, a producer's for room or a consumer's for a
/// message, ns (0 without links).
pub fn longest_wait_ns(r: &RunReport) -> u64 {
    r.links
        .iter()
        .map(|l| l.longest_room_wait_ns.max(l.longest_message_wait_ns))
        .max()
        .unwrap_or(0)
}

/// The largest peak resident set of a run's processes, KiB (0 without processes).
pub(crate) fn max_rss_kib(r: &RunReport) -> u64 {
    r.processes.iter().map(|p| p.max_rss_kib).max().unwrap_or(0)
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> Option<f64> {
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
