//! The report: per-run figures (JSON schema 1, the fields of DESIGN §7) and the table.
//!
//! Figures come from the workers, measured from the barrier's release; CPU, RSS and context
//! switches from `wait4`. `copied_bytes` is the sum of what each worker's transport counted
//! where it copied; digests combine per-link digests in link-key order.
//!
//! This crate formats and judges; it runs nothing and links no WebAssembly engine, so a change
//! to a label or a verdict rebuilds only the crates that print reports.
//!
//! `model` holds the JSON's types and `fields` a doc line for each of their fields
//! ([`FIELDS`]); `build` makes a [`RunReport`] from a run's record; `columns` declares every
//! column once ([`COLUMNS`]), from which `table` and `csv` print a [`Report`]; `verdicts`
//! judges its backends pair by pair; `stats` holds the figures derived from a run's own.
//! [`field_reference`] renders the columns and the fields in Markdown. Every public item is
//! re-exported here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// `--html FILE`: the report as one self-contained page.
pub mod html;
pub mod plot;

mod columns;
mod csv;
mod fields;
mod from_record;
mod model;
mod stats;
mod table;
mod verdicts;

pub use columns::{COLUMNS, Column, CsvColumn, TableRow, When};
pub use fields::{FIELDS, Field, field, field_reference};
pub use from_record::{SYSCALL_COUNTERS, combine};
pub use model::{
    FigureSummary, Latency, Locks, ProcessReport, Report, Requests, RoundTrip, RunReport,
};
pub use stats::{Interval, cpu_per_message_ns, median, median_interval, outliers};
pub use verdicts::{MIN_ROUNDS_TO_CALL, NOISE_FLOOR, Verdict, first_wins, round_ratios};
pub use wasm_ipc_scenario::{human_bytes, human_ns};
pub use wasm_ipc_wire::record::{ClockReport, LinkReport};
