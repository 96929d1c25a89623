//! Under the table: per pair of backends, the ratios and verdicts of each figure
//! ([`Report::verdicts`]), and the crossovers along each sweep axis ([`Report::crossovers`]).
//!
//! A ratio comes from the rounds: the two backends' runs of one round (at one sweep point)
//! make one ratio, so drift that hits a round hits both sides of it. Its median and 95 %
//! interval are [`median_interval`]'s. A winner is called only when the interval lies wholly
//! outside 1 ± [`NOISE_FLOOR`] and there are at least [`MIN_ROUNDS_TO_CALL`] ratios; else
//! the line says "no clear winner". With 5 rounds the interval is the min–max, so all five
//! rounds must agree.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{Report, RunReport};
use crate::stats::{Interval, cpu_per_message_ns, median_interval};

/// How far a ratio's interval must stay from 1 for a verdict to name a winner: 5 %.
pub const NOISE_FLOOR: f64 = 0.05;

/// The fewest paired rounds a verdict names a winner from.
pub const MIN_ROUNDS_TO_CALL: usize = 3;

/// One verdict: a figure compared between two backends over the paired rounds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// The figure: `throughput`, `hand-off p99` or `cpu per message`.
    pub figure: String,
    /// The pair's first backend.
    pub a: String,
    /// The pair's second backend.
    pub b: String,
    /// The ratio a / b of the figure over the paired rounds: median, 95 % interval, count.
    pub ratio: Interval,
    /// The backend that wins, when the runs can tell.
    pub winner: Option<String>,
    /// How many sweep points the rounds come from (1 without a sweep).
    pub points: usize,
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
    /// The runs cannot tell: the ratio's interval reaches into 1 ± the noise floor, or there
    /// are too few rounds.
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

/// Who wins, from the ratio a / b over the paired rounds.
fn side(ratio: &Interval, more_is_better: bool) -> Side {
    if ratio.n < MIN_ROUNDS_TO_CALL {
        return Side::Noise;
    }
    let a_more = ratio.lo > 1.0 + NOISE_FLOOR;
    let b_more = ratio.hi < 1.0 - NOISE_FLOOR;
    match (a_more, b_more, more_is_better) {
        (true, _, true) | (_, true, false) => Side::A,
        (true, _, false) | (_, true, true) => Side::B,
        _ => Side::Noise,
    }
}

/// Who a ratio a / b over paired rounds calls the winner, by the verdicts' rule (at least
/// [`MIN_ROUNDS_TO_CALL`] rounds, the interval wholly outside 1 ± [`NOISE_FLOOR`]):
/// `Some(true)` the first backend, `Some(false)` the second, `None` when the runs cannot tell.
pub fn first_wins(ratio: &Interval, more_is_better: bool) -> Option<bool> {
    match side(ratio, more_is_better) {
        Side::A => Some(true),
        Side::B => Some(false),
        Side::Noise => None,
    }
}

impl Interval {
    /// The winner's advantage from a ratio a / b: median, low and high end, as the factor by
    /// which the winner leads (its throughput over the loser's, the loser's latency or CPU
    /// over its own). That is the ratio itself when the winner's figure is on top of it, its
    /// inverse otherwise.
    pub fn advantage(&self, first_wins: bool, more_is_better: bool) -> (f64, f64, f64) {
        if first_wins == more_is_better {
            (self.median, self.lo, self.hi)
        } else {
            (1.0 / self.median, 1.0 / self.hi, 1.0 / self.lo)
        }
    }
}

/// The ratios a / b of `f` over `runs`, one per round in which both backends have a measured
/// ok run and the figure is above zero on both (the caller picks the runs of one sweep point).
pub fn round_ratios<'a>(
    runs: impl IntoIterator<Item = &'a RunReport>,
    pair: [&str; 2],
    f: impl Fn(&RunReport) -> f64,
) -> Vec<f64> {
    let mut a = BTreeMap::new();
    let mut b = BTreeMap::new();
    for r in runs {
        if !r.ok || r.warmup {
            continue;
        }
        if r.backend == pair[0] {
            a.insert(r.round, f(r));
        } else if r.backend == pair[1] {
            b.insert(r.round, f(r));
        }
    }
    a.iter()
        .filter_map(|(round, &x)| {
            let y = *b.get(round)?;
            (x > 0.0 && y > 0.0).then_some(x / y)
        })
        .collect()
}

/// A verdict's line: `verdict, FIGURE[, a vs b]: W wins, R× L (LO–HI, N rounds)`, or `…: no
/// clear winner: ratio R (LO–HI, N rounds)`; the factor and its interval are the winner's
/// advantage (its throughput over the loser's, the loser's latency over its own).
fn verdict_line(v: &Verdict, more_is_better: bool) -> String {
    let label = pair_label([&v.a, &v.b]);
    let r = &v.ratio;
    let rounds = if r.n == 1 { "round" } else { "rounds" };
    let span = if v.points > 1 {
        format!(" over {} sweep points", v.points)
    } else {
        String::new()
    };
    match &v.winner {
        Some(w) => {
            let a_wins = *w == v.a;
            let (by, lo, hi) = r.advantage(a_wins, more_is_better);
            let loser = if a_wins { &v.b } else { &v.a };
            format!(
                "verdict, {}{label}: {w} wins, {by:.2}× {loser} ({lo:.2}–{hi:.2}, {} {rounds}{span})",
                v.figure, r.n
            )
        }
        None => format!(
            "verdict, {}{label}: no clear winner: ratio {:.2} ({:.2}–{:.2}, {} {rounds}{span})",
            v.figure, r.median, r.lo, r.hi, r.n
        ),
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
/// that wins at the first clear point stops winning, as the interval of the swept value in
/// which it happens — between the last value the first side clearly won and the first the
/// other clearly wins.
fn crossover(series: &[Option<Side>], pair: [&str; 2], at: impl Fn(usize) -> String) -> String {
    let clear: Vec<(usize, Side)> = series
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.filter(|s| *s != Side::Noise).map(|s| (i, s)))
        .collect();
    let Some(&(_, first)) = clear.first() else {
        return "none within the noise (the runs cannot tell at any value)".into();
    };
    match clear.iter().position(|(_, s)| *s != first) {
        Some(k) => {
            let (before, _) = clear[k - 1];
            let (i, s) = clear[k];
            format!(
                "{} overtakes {} between {} and {}",
                s.name(pair),
                first.name(pair),
                at(before),
                at(i)
            )
        }
        None if clear.len() < series.len() => format!(
            "none within the noise ({} wins wherever the runs can tell; they cannot elsewhere)",
            first.name(pair)
        ),
        None => format!("none in range ({} wins throughout)", first.name(pair)),
    }
}

impl Report {
    /// The sweep points of the measured runs in run order, each once.
    pub(crate) fn points(&self) -> Vec<&BTreeMap<String, String>> {
        let mut points: Vec<&BTreeMap<String, String>> = Vec::new();
        for r in self.measured() {
            if !points.contains(&&r.sweep) {
                points.push(&r.sweep);
            }
        }
        points
    }

    /// The backends of the measured runs, in the order they ran.
    pub(crate) fn backends(&self) -> Vec<&str> {
        let mut b: Vec<&str> = Vec::new();
        for r in self.measured() {
            if !b.contains(&r.backend.as_str()) {
                b.push(&r.backend);
            }
        }
        b
    }

    /// The ratios a / b of `f` at `point`, one per round in which both backends' runs are ok
    /// and the figure is above zero on both.
    fn paired_ratios(
        &self,
        point: &BTreeMap<String, String>,
        pair: [&str; 2],
        f: fn(&RunReport) -> f64,
    ) -> Vec<f64> {
        round_ratios(self.measured().filter(|r| &r.sweep == point), pair, f)
    }

    /// Every verdict: per pair of backends (`shm`/`msg`, then `shm`/`zenoh` and `msg`/`zenoh`
    /// when they ran) and figure, the ratio over every paired round of every sweep point.
    pub fn verdict_list(&self) -> Vec<Verdict> {
        let points = self.points();
        let mut out = Vec::new();
        for [a, b] in pairs(&self.backends()) {
            for f in &FIGURES {
                let ratios: Vec<f64> = points
                    .iter()
                    .flat_map(|p| self.paired_ratios(p, [&a, &b], f.get))
                    .collect();
                let Some(ratio) = median_interval(&ratios) else {
                    continue;
                };
                let winner = match side(&ratio, f.more_is_better) {
                    Side::A => Some(a.clone()),
                    Side::B => Some(b.clone()),
                    Side::Noise => None,
                };
                out.push(Verdict {
                    figure: f.name.to_string(),
                    a: a.clone(),
                    b: b.clone(),
                    ratio,
                    winner,
                    points: points.len(),
                });
            }
        }
        out
    }

    /// Under the table, for each pair of backends: per sweep point, the ratio of each figure
    /// (median and 95 % interval over the paired rounds), then one verdict per figure over
    /// all points: who wins and by how much, or that the runs cannot tell.
    pub fn verdicts(&self) -> String {
        let mut out = String::new();
        let verdicts = self.verdict_list();
        // Without a sweep a verdict's line carries its ratio already: one heading, no
        // per-point ratio lines.
        let sweep = self.points().len() > 1;
        if !sweep && !verdicts.is_empty() {
            let _ = writeln!(
                out,
                "verdicts (ratio per round: median, 95 % interval; a winner only beyond 1 ± 5 % \
                 in 3+ rounds):"
            );
        }
        for [a, b] in pairs(&self.backends()) {
            let pair = [a.as_str(), b.as_str()];
            if sweep {
                let _ = writeln!(
                    out,
                    "{a} / {b} (median and 95 % interval over paired rounds; above 1: {a} has \
                     more):"
                );
            }
            for point in self.points().into_iter().filter(|_| sweep) {
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
                    .map(
                        |f| match median_interval(&self.paired_ratios(point, pair, f.get)) {
                            Some(i) if i.n > 1 => {
                                format!("{} {:.2} ({:.2}–{:.2})", f.name, i.median, i.lo, i.hi)
                            }
                            Some(i) => format!("{} {:.2}", f.name, i.median),
                            None => format!("{} -", f.name),
                        },
                    )
                    .collect();
                let _ = writeln!(out, "{label}: {}", cells.join(", "));
            }
            for v in verdicts.iter().filter(|v| v.a == a && v.b == b) {
                let more = FIGURES
                    .iter()
                    .find(|f| f.name == v.figure)
                    .is_some_and(|f| f.more_is_better);
                let _ = writeln!(out, "{}", verdict_line(v, more));
            }
        }
        if let Some(few) = verdicts.iter().map(|v| v.ratio.n).min()
            && few < MIN_ROUNDS_TO_CALL
        {
            let _ = writeln!(
                out,
                "too few rounds to call a winner ({few}; at least {MIN_ROUNDS_TO_CALL}): run \
                 `compare` without --quick, or with --repeat 5"
            );
        }
        out
    }

    /// A verdict's line without its `verdict, FIGURE[, a vs b]: ` prefix (`shm wins, 2.71× msg
    /// (2.55–2.85, 5 rounds)`), for the HTML page's table of verdicts.
    pub(crate) fn verdict_text(v: &Verdict) -> String {
        let more = FIGURES
            .iter()
            .find(|f| f.name == v.figure)
            .is_some_and(|f| f.more_is_better);
        let line = verdict_line(v, more);
        line.split_once(": ")
            .map_or(line.clone(), |(_, rest)| rest.to_string())
    }

    /// The backend that wins `figure` (a verdict's figure name) at `point` against every
    /// other backend by the verdicts' rule, if one does.
    pub(crate) fn best_at(&self, point: &BTreeMap<String, String>, figure: &str) -> Option<String> {
        let f = FIGURES.iter().find(|f| f.name == figure)?;
        let backends = self.backends();
        backends
            .iter()
            .find(|&&b| {
                backends.len() > 1
                    && backends
                        .iter()
                        .filter(|&&c| c != b)
                        .all(|&c| self.side_at(point, f, [b, c]) == Some(Side::A))
            })
            .map(|b| b.to_string())
    }

    /// Under the verdicts: along each sweep axis (for each combination of the other axes),
    /// per figure and pair of backends, where the backend that wins at the axis's first clear
    /// value stops winning — "none in range" when it wins throughout, "none within the noise"
    /// where the runs cannot tell.
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

    /// Which backend of `pair` wins figure `f` at `point` over its paired rounds, or that the
    /// runs cannot tell; `None` without a paired round.
    fn side_at(
        &self,
        point: &BTreeMap<String, String>,
        f: &Figure,
        pair: [&str; 2],
    ) -> Option<Side> {
        let ratio = median_interval(&self.paired_ratios(point, pair, f.get))?;
        Some(side(&ratio, f.more_is_better))
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
            "msg overtakes shm between 4096 and 65536"
        );
        assert_eq!(
            crossover(&[m, n, s, s], pair, at),
            "shm overtakes msg between 64 and 65536"
        );
        assert_eq!(
            crossover(&[s, s, s, s], pair, at),
            "none in range (shm wins throughout)"
        );
        assert!(
            crossover(&[n, s, n, s], pair, at)
                .starts_with("none within the noise (shm wins wherever")
        );
        assert_eq!(
            crossover(&[n, n, None, n], pair, at),
            "none within the noise (the runs cannot tell at any value)"
        );
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
            "zenoh overtakes msg between 64 and 4096"
        );
    }

    fn ratio(v: &[f64]) -> Interval {
        median_interval(v).unwrap()
    }

    /// A winner only when every round (5 rounds: the min–max) lies beyond the noise floor, in
    /// the figure's own sense; never from fewer than 3 rounds.
    #[test]
    fn a_winner_is_called_only_when_the_rounds_can_tell() {
        let clear = ratio(&[1.8, 1.9, 2.0, 1.7, 2.1]);
        assert_eq!(side(&clear, true), Side::A);
        assert_eq!(side(&clear, false), Side::B);
        // One round in the noise: no winner, however far the others are.
        let one_off = ratio(&[1.8, 1.9, 2.0, 1.03, 2.1]);
        assert_eq!(side(&one_off, true), Side::Noise);
        let below = ratio(&[0.5, 0.6, 0.55, 0.52, 0.58]);
        assert_eq!(side(&below, true), Side::B);
        assert_eq!(side(&ratio(&[3.0, 3.0]), true), Side::Noise, "two rounds");
        let v = Verdict {
            figure: "throughput".into(),
            a: "shm".into(),
            b: "msg".into(),
            ratio: below,
            winner: Some("msg".into()),
            points: 1,
        };
        assert_eq!(
            verdict_line(&v, true),
            "verdict, throughput: msg wins, 1.82× shm (1.67–2.00, 5 rounds)"
        );
        let v = Verdict {
            figure: "hand-off p99".into(),
            winner: Some("shm".into()),
            ..v
        };
        assert_eq!(
            verdict_line(&v, false),
            "verdict, hand-off p99: shm wins, 1.82× msg (1.67–2.00, 5 rounds)"
        );
        let v = Verdict {
            winner: None,
            a: "msg".into(),
            b: "zenoh".into(),
            ratio: one_off,
            points: 4,
            ..v
        };
        assert_eq!(
            verdict_line(&v, false),
            "verdict, hand-off p99, msg vs zenoh: no clear winner: ratio 1.90 (1.03–2.10, 5 \
             rounds over 4 sweep points)"
        );
    }
}
