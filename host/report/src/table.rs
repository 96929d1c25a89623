//! [`Report::table`]: the human-readable table, one column per run, with the failed runs'
//! errors, the verdicts, the crossovers and the digests' and clocks' lines under it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::columns::{COLUMNS, TableRow};
use crate::human_ns;
use crate::model::Report;

impl Report {
    /// The human-readable table: one column per run, one row per entry of [`COLUMNS`] that
    /// has one (and whose condition holds), then the failed runs' errors, the verdicts, the
    /// crossovers and the digests' and clocks' lines.
    pub fn table(&self) -> String {
        let mut rows: Vec<(String, Vec<String>)> = Vec::new();
        for column in COLUMNS {
            match column.table {
                Some(TableRow::One { name, when, cell }) if when.holds(self) => {
                    rows.push((
                        name.into(),
                        self.runs.iter().map(|r| cell(self, r)).collect(),
                    ));
                }
                Some(TableRow::PerRate) => {
                    let names: BTreeSet<&String> =
                        self.runs.iter().flat_map(|r| r.rates.keys()).collect();
                    for name in names {
                        let cells = self
                            .runs
                            .iter()
                            .map(|r| r.rates.get(name).map_or("-".into(), |v| format!("{v:.0}")));
                        rows.push((format!("{name}/s"), cells.collect()));
                    }
                }
                _ => {}
            }
        }
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
