//! [`Report::table`]: the human-readable table, one column per run (or per backend over its rounds), with the failed runs'
//! errors, the verdicts, the crossovers and the digests' and clocks' lines under it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::columns::{COLUMNS, CsvColumn, TableRow};
use crate::human_ns;
use crate::model::{FigureSummary, Report, RunReport};
use crate::stats::{Interval, median_interval, outliers};

impl Report {
    /// The human-readable table: one column per measured run — or, when some backend ran
    /// several rounds, one column per sweep point and backend with each figure's median and
    /// 95 % interval over its rounds — one row per entry of [`COLUMNS`] that has one (and
    /// whose condition holds), then the failed runs' errors, the verdicts, the
    /// crossovers and the digests' and clocks' lines.
    pub fn table(&self) -> String {
        let groups = self.groups();
        let (rows, _) = self.grid(&groups);
        let columns = rows.first().map_or(0, |(_, v)| v.len());
        let w0 = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                rows.iter()
                    .map(|(_, v)| v[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = format!("scenario: {}\n", self.scenario);
        for (name, vals) in &rows {
            let _ = write!(out, "{name:<w0$}");
            for (v, w) in vals.iter().zip(&widths) {
                let pad = w.saturating_sub(v.chars().count());
                let _ = write!(out, "  {}{v}", " ".repeat(pad));
            }
            out.push('\n');
        }
        for r in &self.runs {
            if let Some(e) = &r.error {
                if r.warmup {
                    let _ = writeln!(out, "{} warm-up: {e}", r.backend);
                } else {
                    let _ = writeln!(out, "{}#{}: {e}", r.backend, r.round);
                }
            }
        }
        out.push_str(&self.spread_warnings(&groups));
        out.push_str(&self.verdicts());
        out.push_str(&self.window_verdicts(&groups));
        out.push_str(&self.refusals());
        out.push_str(&self.crossovers());
        let lossy = self.measured().filter(|r| r.lost > 0).count();
        if !self.digests_agree {
            out.push_str("digests differ between runs: the runs did not deliver the same bytes\n");
        } else if lossy > 0 {
            let lossless: Vec<&RunReport> = self.measured().filter(|r| r.lost == 0).collect();
            let _ = writeln!(
                out,
                "{lossy} of {} runs lost messages: a digest covers only what its run delivered, \
                 so theirs are not compared{}",
                lossy + lossless.len(),
                if lossless.len() > 1
                    && lossless.iter().all(|r| r.ok && r.digest_received.is_some())
                {
                    "; the runs that lost nothing delivered identical bytes (equal digests)"
                } else {
                    ""
                }
            );
        } else if self.measured().count() > 1
            && self.measured().all(|r| r.ok && r.digest_received.is_some())
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

    /// The table's rows (label, one cell per column) and, per column, its run or the first run
    /// of its group (for the column's sweep point and backend): one column per measured run, or
    /// per group of `groups` when some backend ran several rounds.
    pub(crate) fn grid<'a>(
        &'a self,
        groups: &[Vec<&'a RunReport>],
    ) -> (Vec<(String, Vec<String>)>, Vec<&'a RunReport>) {
        if groups.iter().any(|g| g.len() > 1) {
            (
                self.summary_rows(groups),
                groups.iter().map(|g| g[0]).collect(),
            )
        } else {
            (self.run_rows(), self.measured().collect())
        }
    }

    /// One line per run whose workers refused connections from outside the run (sealed
    /// `zenoh` listeners: the `refused_connections` counter).
    pub(crate) fn refusals(&self) -> String {
        let mut out = String::new();
        for r in &self.runs {
            for p in &r.processes {
                let n = p.counters.get("refused_connections").copied().unwrap_or(0);
                if n == 0 {
                    continue;
                }
                let run = if r.warmup {
                    format!("{} warm-up", r.backend)
                } else {
                    format!("{}#{}", r.backend, r.round)
                };
                let _ = writeln!(
                    out,
                    "{run}: plugin `{}` refused {n} connection attempt{} from outside the run \
                     (a client without a certificate of the run, or after its lock-down)",
                    p.plugin,
                    if n == 1 { "" } else { "s" }
                );
            }
        }
        out
    }

    /// A line per sweep point and backend whose window bound a link in most of its ok rounds
    /// ([`wasm_ipc_wire::record::LinkReport::window_bound`]): the window, and what it lets
    /// through — the bandwidth–delay product, read the other way — with the advice to raise
    /// `capacity`. Figures are medians over those rounds.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub(crate) fn window_verdicts(&self, groups: &[Vec<&RunReport>]) -> String {
        let mut out = String::new();
        for g in groups {
            let ok: Vec<&RunReport> = g.iter().copied().filter(|r| r.ok).collect();
            let Some(first) = ok.first() else {
                continue;
            };
            for (k, link) in first.links.iter().enumerate() {
                let bound: Vec<&crate::LinkReport> = ok
                    .iter()
                    .filter_map(|r| r.links.get(k))
                    .filter(|l| l.link == link.link && l.window_bound)
                    .collect();
                if bound.len() * 2 <= ok.len() {
                    continue;
                }
                let med = |f: &dyn Fn(&crate::LinkReport) -> Option<f64>| {
                    median_interval(&bound.iter().filter_map(|l| f(l)).collect::<Vec<_>>())
                        .map(|i| i.median)
                };
                let blocked = med(&|l| Some(l.blocked_share)).unwrap_or(0.0);
                let waiting = med(&|l| Some(l.waiting_share)).unwrap_or(0.0);
                let point = if g[0].sweep.is_empty() {
                    String::new()
                } else {
                    let p: Vec<String> =
                        g[0].sweep.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!(" at {}", p.join(", "))
                };
                let how = match (
                    med(&|l| l.round_trip_ns.map(|x| x as f64)),
                    med(&|l| l.window_bound_per_s),
                ) {
                    (Some(rtt), Some(per_s)) => format!(
                        "{} per {} round trip (at most {per_s:.0} msg/s)",
                        messages(link.window),
                        human_ns(rtt.round() as u64)
                    ),
                    _ => format!("{} in flight", messages(link.window)),
                };
                let _ = writeln!(
                    out,
                    "{}{point} bound by its window on {}: {how}; its producer was held back {:.0}% \
                     of the run while its consumer waited {:.0}% for messages on their way; \
                     raise capacity",
                    g[0].backend,
                    link.link,
                    100.0 * blocked,
                    100.0 * waiting
                );
            }
        }
        out
    }

    /// The measured runs grouped by sweep point and backend, in the order they first ran.
    pub(crate) fn groups(&self) -> Vec<Vec<&RunReport>> {
        let mut groups: Vec<Vec<&RunReport>> = Vec::new();
        for r in self.measured() {
            match groups
                .iter_mut()
                .find(|g| g[0].backend == r.backend && g[0].sweep == r.sweep)
            {
                Some(g) => g.push(r),
                None => groups.push(vec![r]),
            }
        }
        groups
    }

    /// Every summarised figure ([`COLUMNS`] with a summary) of every sweep point and backend
    /// over its measured ok rounds, in run order: the JSON's `summaries`.
    pub fn summary_list(&self) -> Vec<FigureSummary> {
        let mut out = Vec::new();
        for g in self.groups() {
            for column in COLUMNS {
                let Some(s) = column.summary else { continue };
                let v: Vec<f64> = g
                    .iter()
                    .filter(|r| r.ok)
                    .filter_map(|r| (s.get)(r))
                    .collect();
                let Some(value) = median_interval(&v) else {
                    continue;
                };
                let figure = match column.csv {
                    Some(CsvColumn::One { name, .. }) => name,
                    _ => column.json.first().copied().unwrap_or_default(),
                };
                out.push(FigureSummary {
                    sweep: g[0].sweep.clone(),
                    backend: g[0].backend.clone(),
                    figure: figure.to_string(),
                    unit: column.unit.to_string(),
                    value,
                    outliers: outliers(&v),
                });
            }
        }
        out
    }

    /// Under the table, for each sweep point and backend with several rounds: a warning when
    /// its rounds' measured times differ by more than a factor of 2 (as hyperfine warns), or
    /// when some lie beyond Tukey's fences (1.5 interquartile ranges) from the others — the
    /// machine was likely busy, and the intervals are wide for a reason.
    pub(crate) fn spread_warnings(&self, groups: &[Vec<&RunReport>]) -> String {
        let mut out = String::new();
        for g in groups.iter().filter(|g| g.len() > 1) {
            let t: Vec<f64> = g.iter().filter(|r| r.ok).map(|r| r.elapsed_s).collect();
            let (lo, hi) = t
                .iter()
                .fold((f64::INFINITY, 0.0_f64), |(l, h), &x| (l.min(x), h.max(x)));
            let odd = outliers(&t);
            let at = if g[0].sweep.is_empty() {
                String::new()
            } else {
                let p: Vec<String> = g[0].sweep.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(" at {}", p.join(", "))
            };
            if lo > 0.0 && hi / lo > 2.0 {
                let _ = writeln!(
                    out,
                    "warning: {}{at}: the slowest round took {:.1}× the fastest ({:.3}–{:.3} s): \
                     the machine was likely busy; more rounds (--min-time) narrow the intervals",
                    g[0].backend,
                    hi / lo,
                    lo,
                    hi
                );
            } else if odd > 0 {
                let _ = writeln!(
                    out,
                    "warning: {}{at}: {odd} of {} rounds are outliers in elapsed time (beyond \
                     1.5 interquartile ranges)",
                    g[0].backend,
                    t.len()
                );
            }
        }
        out
    }

    /// One column per measured run: every row of [`COLUMNS`] that holds.
    fn run_rows(&self) -> Vec<(String, Vec<String>)> {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        for column in COLUMNS {
            match column.table {
                Some(TableRow::One { name, when, cell }) if when.holds(self) => {
                    rows.push((
                        name.into(),
                        self.measured().map(|r| cell(self, r)).collect(),
                    ));
                }
                Some(per @ (TableRow::PerRate | TableRow::PerSyscall)) => {
                    for (label, get, show) in self.per_name(per) {
                        let cells = self.measured().map(|r| get(r).map_or("-".into(), show));
                        rows.push((label, cells.collect()));
                    }
                }
                _ => {}
            }
        }
        rows
    }

    /// The rows a per-name entry expands to: label, a run's figure (`None`: the run has
    /// none) and how a figure is shown. `PerRate`: `<what>/s` per name in `rates`;
    /// `PerSyscall`: `  <name>/message` per counter some run counted above zero.
    #[allow(clippy::type_complexity)]
    fn per_name(
        &self,
        per: TableRow,
    ) -> Vec<(
        String,
        Box<dyn Fn(&RunReport) -> Option<f64> + '_>,
        fn(f64) -> String,
    )> {
        let mut out: Vec<(
            String,
            Box<dyn Fn(&RunReport) -> Option<f64>>,
            fn(f64) -> String,
        )> = Vec::new();
        match per {
            TableRow::PerRate => {
                let names: BTreeSet<String> = self
                    .measured()
                    .flat_map(|r| r.rates.keys().cloned())
                    .collect();
                for name in names {
                    let label = format!("{name}/s");
                    out.push(
                        (label, Box::new(move |r| r.rates.get(&name).copied()), |x| {
                            format!("{x:.0}")
                        }),
                    );
                }
            }
            TableRow::PerSyscall => {
                let names: BTreeSet<String> = self
                    .measured()
                    .flat_map(|r| r.syscalls.iter().filter(|(_, n)| **n > 0))
                    .map(|(k, _)| k.clone())
                    .collect();
                for name in names {
                    let label = format!("  {name}/message");
                    out.push((
                        label,
                        Box::new(move |r| {
                            (r.messages > 0).then(|| {
                                r.syscalls.get(&name).copied().unwrap_or(0) as f64
                                    / r.messages as f64
                            })
                        }),
                        |x| format!("{x:.2}"),
                    ));
                }
            }
            TableRow::One { .. } => {}
        }
        out
    }

    /// One column per sweep point and backend, over its rounds: a figure's median and 95 %
    /// interval over the ok rounds, `median (lo–hi)`; another row's value once when the rounds
    /// agree, else each value with its count.
    fn summary_rows(&self, groups: &[Vec<&RunReport>]) -> Vec<(String, Vec<String>)> {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        for column in COLUMNS {
            match column.table {
                Some(TableRow::One { name, when, cell }) if when.holds(self) => {
                    let cells = groups.iter().map(|g| match (name, column.summary) {
                        ("backend", _) => g[0].backend.clone(),
                        (_, Some(s)) => {
                            let v: Vec<f64> = g
                                .iter()
                                .filter(|r| r.ok)
                                .filter_map(|r| (s.get)(r))
                                .collect();
                            median_interval(&v).map_or("-".into(), |i| shown(&i, s.show))
                        }
                        (_, None) => counted(g.iter().map(|r| cell(self, r)).collect()),
                    });
                    rows.push((name.into(), cells.collect()));
                    if name == "backend" {
                        let rounds = groups.iter().map(|g| {
                            let failed = g.iter().filter(|r| !r.ok).count();
                            if failed == 0 {
                                g.len().to_string()
                            } else {
                                format!("{} ({failed} failed)", g.len())
                            }
                        });
                        rows.push(("rounds".into(), rounds.collect()));
                    }
                }
                Some(per @ (TableRow::PerRate | TableRow::PerSyscall)) => {
                    for (label, get, show) in self.per_name(per) {
                        let cells = groups.iter().map(|g| {
                            let v: Vec<f64> =
                                g.iter().filter(|r| r.ok).filter_map(|r| get(r)).collect();
                            median_interval(&v).map_or("-".into(), |i| shown(&i, show))
                        });
                        rows.push((label, cells.collect()));
                    }
                }
                _ => {}
            }
        }
        rows
    }
}

/// `median (lo–hi)`, the unit said once when all three share it; the median alone from one
/// value.
fn shown(i: &Interval, show: fn(f64) -> String) -> String {
    let m = show(i.median);
    if i.n < 2 {
        return m;
    }
    let (lo, hi) = (show(i.lo), show(i.hi));
    if lo == hi {
        return m;
    }
    let unit = |s: &str| s.rsplit_once(' ').map(|(_, u)| u.to_string());
    match (unit(&m), unit(&lo), unit(&hi)) {
        (Some(u), Some(a), Some(b)) if u == a && u == b && !u.starts_with(char::is_numeric) => {
            let strip = |s: &str| s.trim_end_matches(&u).trim_end().to_string();
            format!("{} ({}–{}) {u}", strip(&m), strip(&lo), strip(&hi))
        }
        // Ends in different units of one scale (`988.7 µs`, `3.13 ms`): the ends in the
        // median's unit, so the unit is said once and the cell stays narrow.
        (Some(u), Some(_), Some(_)) if scale(&u).is_some() => {
            let f = scale(&u).unwrap_or(1.0);
            let median = m.trim_end_matches(&u).trim_end();
            // As many decimals as the median shows.
            let places = median.split_once('.').map_or(0, |(_, d)| d.len());
            let num = |x: f64| format!("{:.places$}", x / f);
            format!("{median} ({}–{}) {u}", num(i.lo), num(i.hi))
        }
        _ => format!("{m} ({lo}–{hi})"),
    }
}

/// The size of `unit` in the base unit that `human_ns` and `human_bytes` scale from
/// (nanoseconds, bytes, bytes per second), for the units they print.
fn scale(unit: &str) -> Option<f64> {
    let base = unit.strip_suffix("/s").unwrap_or(unit);
    Some(match base {
        "ns" | "B" => 1.0,
        "µs" => 1e3,
        "ms" => 1e6,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    })
}

/// Cells of several rounds: the value once when they agree, else each value with its count
/// (`yes ×4, NO ×1`), at most three, then how many more.
fn counted(cells: Vec<String>) -> String {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for c in cells {
        match seen.iter_mut().find(|(v, _)| *v == c) {
            Some((_, n)) => *n += 1,
            None => seen.push((c, 1)),
        }
    }
    if seen.len() == 1 {
        return seen.remove(0).0;
    }
    let shown: Vec<String> = seen
        .iter()
        .take(3)
        .map(|(v, n)| format!("{v} ×{n}"))
        .collect();
    if seen.len() > 3 {
        format!("{}, {} more", shown.join(", "), seen.len() - 3)
    } else {
        shown.join(", ")
    }
}

/// `1 message`, `16 messages`.
fn messages(n: u32) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Report;

    /// Five rounds of one backend from the golden report's first run, with these times.
    fn rounds(times: &[f64]) -> Report {
        let mut report: Report =
            serde_json::from_str(include_str!("../tests/golden/plain.json")).unwrap();
        let first = report.runs[0].clone();
        report.runs = times
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let mut r = first.clone();
                r.round = u32::try_from(i).unwrap();
                r.elapsed_s = t;
                r
            })
            .collect();
        report
    }

    /// Ends in other units than the median's are given in the median's unit, said once.
    #[test]
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    fn an_interval_across_units_is_given_in_the_medians_unit() {
        use crate::stats::Interval;
        let i = Interval {
            median: 988_700.0,
            lo: 356_100.0,
            hi: 3_130_000.0,
            n: 5,
        };
        assert_eq!(
            super::shown(&i, |x| crate::human_ns(x as u64)),
            "988.7 (356.1–3130.0) µs"
        );
        let gib = 1024.0 * 1024.0 * 1024.0;
        let b = Interval {
            median: 1.0 * gib,
            lo: 0.9 * gib,
            hi: 1.1 * gib,
            n: 5,
        };
        assert_eq!(
            super::shown(&b, |x| format!("{}/s", crate::human_bytes(x))),
            "1.0 (0.9–1.1) GiB/s"
        );
    }

    /// A round far from the others is flagged; rounds that agree are not; a factor of more
    /// than 2 between the fastest and the slowest says so.
    #[test]
    fn rounds_that_spread_are_flagged() {
        let calm = rounds(&[1.0, 1.01, 0.99, 1.02, 1.0]).table();
        assert!(!calm.contains("warning:"), "{calm}");
        let odd = rounds(&[1.0, 1.01, 0.99, 1.02, 1.6]).table();
        assert!(
            odd.contains("warning: shm: 1 of 5 rounds are outliers in elapsed time"),
            "{odd}"
        );
        let wide = rounds(&[1.0, 1.01, 0.99, 1.02, 2.5]).table();
        assert!(
            wide.contains("warning: shm: the slowest round took 2.5× the fastest"),
            "{wide}"
        );
    }

    #[test]
    fn refused_connections_are_named_per_run_and_plugin() {
        let mut report = rounds(&[1.0, 1.0, 1.0, 1.0, 1.0]);
        assert!(!report.table().contains("refused"));
        report.runs[2].processes[0]
            .counters
            .insert("refused_connections".into(), 3);
        let text = report.table();
        let plugin = &report.runs[2].processes[0].plugin;
        assert!(
            text.contains(&format!(
                "shm#2: plugin `{plugin}` refused 3 connection attempts from outside the run"
            )),
            "{text}"
        );
    }
}
