//! wasm-ipc runs WebAssembly producer/consumer plugins, each in its own OS process, wires their
//! ports through a shared-memory (`shm`) or message-passing (`msg`) backend, and reports what
//! each backend cost: throughput, latency, bytes copied, CPU, context switches, memory — and
//! digests that prove both delivered the same bytes.
//!
//! The flow: [`scenario`] parses and validates a TOML scenario; [`supervisor`] compiles each
//! module once and starts one [`worker`] process per plugin; a worker instantiates its plugin
//! ([`plugin`], with the ABI in `plugin/abi.rs`) and moves messages through a [`backend`];
//! [`report`] turns what the workers measured into a table or JSON.
//!
//! ```no_run
//! use wasm_ipc::{scenario::Scenario, supervisor::Session, report::Report};
//! let sc = Scenario::load("scenarios/producer-consumer.toml".as_ref())?;
//! let exe = std::env::current_exe()?;
//! let session = Session::new(&sc, exe, "example".into())?;
//! let runs = sc.run.backends.iter().map(|b| session.run(&sc, *b, 0)).collect();
//! println!("{}", Report::new(&sc, runs).table());
//! # Ok::<(), anyhow::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod backend;
pub mod bench;
pub mod build;
pub mod check;
pub mod explain;
/// `--html FILE`: the report as one self-contained page.
pub mod html;
/// Scenario channels as one-way lanes (request/reply is a fan-in and one lane per client).
pub mod lanes;
/// The control protocol: the `wasm-ipc-wire` crate.
pub use wasm_ipc_wire::control;
pub mod lockdown;
pub mod plot;
pub mod plugin;
pub mod remote;
pub mod report;
/// The scenario file format: the `wasm-ipc-scenario` crate.
pub use wasm_ipc_scenario as scenario;
pub mod supervisor;
/// The only unsafe code: the `wasm-ipc-sys` crate.
pub use wasm_ipc_sys as sys;
pub mod template;
pub mod worker;
