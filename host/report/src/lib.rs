//! The report: per-run figures (JSON schema 1, the fields of DESIGN §7) and the table.
//!
//! Figures come from the workers, measured from the barrier's release; CPU, RSS and context
//! switches from `wait4`. `copied_bytes` is the sum of what each worker's transport counted
//! where it copied; digests combine per-link digests in link-key order.
//!
//! This crate formats and judges; it runs nothing and links no WebAssembly engine, so a change
//! to a label or a verdict rebuilds only the crates that print reports.
//!
//! `model` holds the JSON's types, `build` makes a [`RunReport`] from a run's record, `table`
//! and `csv` print a [`Report`], `verdicts` judges its backends pair by pair, `stats` holds
//! the figures derived from a run's own; every public item is re-exported here.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// `--html FILE`: the report as one self-contained page.
pub mod html;
pub mod plot;

mod build;
mod csv;
mod model;
mod stats;
mod table;
mod verdicts;

pub use build::{SYSCALL_COUNTERS, build, combine};
pub use model::{Latency, ProcessReport, Report, Requests, RoundTrip, RunReport};
pub use stats::cpu_per_message_ns;
pub use wasm_ipc_scenario::{human_bytes, human_ns};
pub use wasm_ipc_wire::record::{ClockReport, LinkReport};
