//! Figures computed from a run's own figures, and the median the verdicts take.

use crate::model::RunReport;

/// The CPU (user + sys, every process) of a run per delivered message, ns.
pub fn cpu_per_message_ns(r: &RunReport) -> f64 {
    let cpu: f64 = r.processes.iter().map(|p| p.user_s + p.sys_s).sum();
    if r.messages == 0 {
        0.0
    } else {
        cpu * 1e9 / r.messages as f64
    }
}

/// The median of `v` (sorted in place).
pub(crate) fn median(v: &mut [f64]) -> Option<f64> {
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
