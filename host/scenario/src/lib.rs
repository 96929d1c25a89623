//! Scenario files: which plugins run, how their ports are wired, and how to run them.
//!
//! A scenario is a TOML file (see DESIGN.md §6). It is read in two stages, as ripgrep reads
//! its arguments (`LowArgs` → `HiArgs`):
//!
//! 1. **Raw**: serde types with `deny_unknown_fields` and [`toml::Spanned`] wherever a later
//!    check needs the line. Syntax errors, unknown keys, missing keys and wrong types stop here.
//! 2. **Resolved**: [`Scenario`], where names are checked, endpoints are resolved to plugin
//!    indices, sizes and durations are parsed, and defaults are applied.
//!
//! Every error is a [`ScenarioError`] naming the file, the line and the dotted key path
//! (`channel[0].slot_size`), and saying what would have been valid.
//!
//! This crate depends on no wasmtime and runs nothing, so a fuzz target can drive
//! [`Scenario::parse`] alone; `parse` never panics and never touches the file system. The
//! host runs plugins' `build` commands itself (`wasm_ipc::build`).
//!
//! ```toml
//! name = "producer-consumer"
//!
//! [[plugin]]
//! name = "producer"
//! wasm = "../plugins/target/wasm32-wasip1/release/producer.wasm"
//! build = "cargo build --release --manifest-path ../plugins/Cargo.toml -p producer"
//! config = { count = 10000, size = 4096 }
//!
//! [[plugin]]
//! name = "consumer"
//! wasm = "../plugins/target/wasm32-wasip1/release/consumer.wasm"
//!
//! [[channel]]
//! from = "producer.out"
//! to = ["consumer.in"]
//! slot_size = "64KiB"
//! capacity = 16
//!
//! [run]
//! backends = ["shm", "msg"]
//! repeat = 3
//! timeout = "60s"
//! wait = "adaptive"
//! ```
//!
//! Layout: `keys` (every key declared once: [`KEYS`], [`key_reference`]), `raw` (stage 1,
//! the serde types), `validate` (stage 2, a module per table), `model` (the resolved types),
//! `load` (file, text and `--set` to [`Scenario`]), `source` (errors and where they point),
//! `units` (sizes and durations), `overrides` (`--set`).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod keys;
mod load;
mod model;
mod overrides;
mod raw;
mod source;
mod units;
mod validate;

pub use keys::{KEYS, KeyDecl, KeyDefault, KeyType, key_reference};
pub use load::{MAX_MODULE_BYTES, MAX_SCENARIO_BYTES, not_regular, read_regular};
pub use model::{
    BackendKind, Channel, ChannelLines, DEFAULT_CAPACITY, DEFAULT_MEMORY, DEFAULT_SLOT_SIZE,
    DEFAULT_STACK, DEFAULT_TABLE_ELEMENTS, DEFAULT_TIMEOUT, Endpoint, Host, Instance, LOCAL_HOST,
    Limits, MAX_CAPACITY, MAX_INSTANCES, MAX_MEMORY, MAX_REPEAT, MAX_SLOT_SIZE, MAX_STACK,
    MAX_SWEEP_POINTS, MAX_SWEEP_VALUES, MAX_TABLE_ELEMENTS, MAX_TIMEOUT, Overflow, Pattern, Plugin,
    RunConfig, Scenario, SweepAxis, SweepPoint, SyncMode, Verify, WaitMode, parse_endpoint,
};
pub use overrides::apply_overrides;
pub use source::ScenarioError;
pub use units::{human_bytes, human_ns, parse_duration, parse_size};
