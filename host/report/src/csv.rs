//! [`Report::csv`]: one CSV row per run, one column per entry of [`COLUMNS`] that has one.

use crate::columns::{COLUMNS, CsvColumn, quote};
use crate::model::Report;

impl Report {
    /// One CSV row per run under a header line: the columns of [`COLUMNS`] that have one, in
    /// its order. Today: `scenario`, one per sweep axis, `backend`, `repeat`, `ok`, `messages`,
    /// `bytes`, `elapsed_s`, `msgs_per_s`, `bytes_per_s`, `handoff_p50_ns`, `handoff_p99_ns`,
    /// `copied_bytes`, `cpu_s`, `cpu_per_msg_ns`, `voluntary_cs`, `involuntary_cs`,
    /// `max_rss_kib`, `digest_received`.
    pub fn csv(&self) -> String {
        let mut axes: Vec<&String> = Vec::new();
        for r in self.measured() {
            for k in r.sweep.keys() {
                if !axes.contains(&k) {
                    axes.push(k);
                }
            }
        }
        let mut header: Vec<String> = Vec::new();
        for column in COLUMNS {
            match column.csv {
                Some(CsvColumn::One { name, .. }) => header.push(name.into()),
                Some(CsvColumn::PerAxis) => header.extend(axes.iter().map(|a| quote(a))),
                None => {}
            }
        }
        let mut out = header.join(",");
        out.push('\n');
        for r in self.measured() {
            let mut cells: Vec<String> = Vec::new();
            for column in COLUMNS {
                match column.csv {
                    Some(CsvColumn::One { cell, .. }) => cells.push(cell(r)),
                    Some(CsvColumn::PerAxis) => cells.extend(
                        axes.iter()
                            .map(|a| quote(r.sweep.get(*a).map_or("", String::as_str))),
                    ),
                    None => {}
                }
            }
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}
