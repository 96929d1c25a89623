//! What crosses a process boundary in wasm-ipc, with no wasmtime and no `unsafe`: the control
//! protocol between supervisor and worker ([`control`]), the `msg` frame header ([`frame`]),
//! and the types they carry ([`PortSpec`], [`Figures`]). Being small and free of the engine,
//! every decoder here is a fuzz target (`fuzz/`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod control;
mod figures;
pub mod frame;
mod port;
pub mod record;
pub mod sequence;

pub use figures::{Figures, LinkFigures};
pub use port::{Direction, Leg, PortSpec};
