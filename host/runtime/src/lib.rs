//! The wasm-ipc runtime: what runs a scenario.
//!
//! [`supervisor`] compiles each module once and starts one [`worker`] process per plugin
//! instance (locked down by [`lockdown`]); a worker instantiates its plugin ([`plugin`], with
//! the ABI in `plugin/abi.rs`) and moves messages through a [`backend`]; channels are planned
//! as one-way [`lanes`]; plugins placed on other hosts run under that host's agent ([`agent`]:
//! the protocol; `agent::server` is `wasm-ipc agent`, `agent::client` the supervisor's side).
//! [`seal`] makes the certificates that seal a run's `zenoh` links. [`check`] says what a
//! scenario needs before anything starts, and [`build`] runs the plugins' `build` commands.
//!
//! ```no_run
//! use wasm_ipc_runtime::{scenario::Scenario, supervisor::Session};
//! let sc = Scenario::load("scenarios/producer-consumer.toml".as_ref())?;
//! let opts = wasm_ipc_runtime::supervisor::Options {
//!     exe: std::env::current_exe()?,
//!     run_id: "example".into(),
//!     token_file: None,
//! };
//! let session = Session::new(&sc, &opts)?;
//! let run = session.run(&sc, sc.run.backends[0], 0);
//! println!("{} workers", run.workers.len());
//! # Ok::<(), anyhow::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod backend;
pub mod build;
pub mod check;
/// Scenario channels as one-way lanes (request/reply is a fan-in and one lane per client).
pub mod lanes;
pub mod lockdown;
pub mod matrix;
pub mod plugin;
pub mod seal;
pub mod supervisor;
pub mod worker;

/// The scenario file format: the `wasm-ipc-scenario` crate.
pub use wasm_ipc_scenario as scenario;
/// The only unsafe code: the `wasm-ipc-sys` crate.
pub use wasm_ipc_sys as sys;
/// The control protocol: the `wasm-ipc-wire` crate.
pub use wasm_ipc_wire::control;
/// What the supervisor gathers about a run (the report's input): from `wasm-ipc-wire`.
pub use wasm_ipc_wire::record;
