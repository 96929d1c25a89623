//! wasm-ipc runs WebAssembly producer/consumer plugins, each in its own OS process, wires their
//! ports through a backend (shared memory, message passing, Zenoh), and reports what each
//! backend cost: throughput, latency, bytes copied, CPU, context switches, memory — and
//! digests that prove every backend delivered the same bytes.
//!
//! This crate is the `wasm-ipc` command; the work is done by the crates it glues together,
//! re-exported here under the names the tests and examples use:
//!
//! - [`scenario`] (`wasm-ipc-scenario`): parses and validates a TOML scenario;
//! - the runtime (`wasm-ipc-runtime`): [`supervisor`], [`matrix`] (the one run loop),
//!   [`worker`], [`plugin`], [`backend`], [`lanes`], [`lockdown`], [`agent`] (client and
//!   server across hosts), [`check`], [`build`];
//! - [`report`] (`wasm-ipc-report`): the figures of a run and their faces;
//! - the experiments (`wasm-ipc-lab`): [`bench`] and [`explain`];
//! - [`control`] (`wasm-ipc-wire`) and [`sys`] (`wasm-ipc-sys`, the only unsafe code).
//!
//! ```no_run
//! use wasm_ipc::{report, scenario::Scenario, supervisor};
//! let sc = Scenario::load("scenarios/producer-consumer.toml".as_ref())?;
//! let opts = supervisor::Options {
//!     exe: std::env::current_exe()?,
//!     run_id: "example".into(),
//!     token_file: None,
//! };
//! let session = supervisor::Session::new(&sc, &opts)?;
//! let runs = sc.run.backends.iter().map(|b| report::RunReport::new(&sc, &session.run(&sc, *b, 0)));
//! println!("{}", report::Report::new(&sc, runs.collect()).table());
//! # Ok::<(), anyhow::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use wasm_ipc_lab::{bench, explain};
pub use wasm_ipc_report as report;
pub use wasm_ipc_report::{html, plot};
pub use wasm_ipc_runtime::{
    agent, backend, build, check, control, lanes, lockdown, matrix, plugin, record, scenario,
    supervisor, sys, worker,
};
