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

/// A median with its 95 % interval, over `n` values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// The median.
    pub median: f64,
    /// The interval's low end.
    pub lo: f64,
    /// The interval's high end.
    pub hi: f64,
    /// How many values (rounds) it is made of.
    pub n: usize,
}

/// The median of `v` and a distribution-free 95 % interval for it: the order statistics
/// x(k) and x(n+1−k) for the largest k whose coverage, 1 − 2·P(Binomial(n, ½) < k), is at
/// least 95 %. Below 6 values no k reaches 95 %, and the interval is the min–max (its coverage
/// with 5 values is 94 %). No resampling: the same values give the same interval every time.
pub fn median_interval(v: &[f64]) -> Option<Interval> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let median = median(&mut v)?;
    let n = v.len();
    let k = order_rank(n);
    Some(Interval {
        median,
        lo: v[k - 1],
        hi: v[n - k],
        n,
    })
}

/// The rank k (1-based) of [`median_interval`]'s low end among `n` sorted values.
fn order_rank(n: usize) -> usize {
    // P(B < k) summed in log space: the pmf of Binomial(n, ½) at i is C(n, i) / 2^n.
    let mut log_pmf = -(n as f64) * std::f64::consts::LN_2;
    let mut below = 0.0; // P(B < k) for the k being tried
    let mut best = 1;
    for k in 1..=n.div_ceil(2) {
        below += log_pmf.exp(); // adds P(B = k - 1)
        if 1.0 - 2.0 * below >= 0.95 {
            best = k;
        } else {
            break;
        }
        let i = (k - 1) as f64;
        log_pmf += ((n as f64 - i) / (i + 1.0)).ln();
    }
    best
}

/// How many of `v` lie beyond 1.5 interquartile ranges from the quartiles (Tukey's fences);
/// 0 below 4 values.
pub fn outliers(v: &[f64]) -> usize {
    if v.len() < 4 {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    // `at` lies in 0 ..= len - 1, so the cast neither truncates nor loses a sign.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let q = |p: f64| {
        let at = p * (s.len() - 1) as f64;
        let (i, f) = (at.floor() as usize, at.fract());
        s[i] + (s[(i + 1).min(s.len() - 1)] - s[i]) * f
    };
    let (q1, q3) = (q(0.25), q(0.75));
    let iqr = q3 - q1;
    s.iter()
        .filter(|&&x| x < q1 - 1.5 * iqr || x > q3 + 1.5 * iqr)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interval's ranks against the binomial table: min–max up to 8 values except 6 and 7
    /// (coverage 96.9 %, 98.4 %), then the 2nd from each end at 9 (96.1 %), and about
    /// n/2 − 0.98·√n from the middle for large n.
    #[test]
    fn the_interval_is_the_order_statistics_with_95_percent_coverage() {
        assert_eq!(order_rank(1), 1);
        assert_eq!(order_rank(5), 1);
        assert_eq!(order_rank(6), 1);
        assert_eq!(order_rank(8), 1);
        assert_eq!(order_rank(9), 2);
        assert_eq!(order_rank(20), 6);
        assert_eq!(order_rank(100), 40);
        let i = median_interval(&[5.0, 1.0, 4.0, 2.0, 3.0]).unwrap();
        assert_eq!((i.median, i.lo, i.hi, i.n), (3.0, 1.0, 5.0, 5));
        let v: Vec<f64> = (1..=9).map(f64::from).collect();
        let i = median_interval(&v).unwrap();
        assert_eq!((i.median, i.lo, i.hi), (5.0, 2.0, 8.0));
        assert!(median_interval(&[]).is_none());
        assert!(median_interval(&[f64::NAN]).is_none());
    }

    #[test]
    fn outliers_are_beyond_tukeys_fences() {
        assert_eq!(outliers(&[1.0, 1.1, 0.95, 1.0, 1.05]), 0);
        assert_eq!(outliers(&[1.0, 1.1, 0.95, 1.0, 1.05, 9.0]), 1);
        assert_eq!(outliers(&[1.0, 9.0]), 0);
    }
}
