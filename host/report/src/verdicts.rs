//! Under the table: per pair of backends, the ratios and verdicts of each figure
//! ([`Report::verdicts`]), and the crossovers along each sweep axis ([`Report::crossovers`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{Report, RunReport};
use crate::stats::{cpu_per_message_ns, median};

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

impl Report {
    /// The sweep points in run order, each once.
    pub(crate) fn points(&self) -> Vec<&BTreeMap<String, String>> {
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
