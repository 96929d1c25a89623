//! The only `unsafe` code of wasm-ipc, one file per mechanism, each behind small safe types:
//!
//! - [`fd`]: handing fds to a worker across `exec` and taking them there ([`Handover`]);
//! - [`memfd`]: sealed memfds for modules and shared regions;
//! - [`memory`]: host-owned linear memory ([`HostMemory`]) that never moves;
//! - [`shared`]: control blocks and slot areas mapped over guest windows;
//! - [`futex`]: shared futexes; [`poll`]: the stop eventfd and `poll`;
//! - [`mqueue`]: POSIX message queues, unlinked as soon as both ends are open;
//! - [`window`]: bounds-checked guest windows and the counted copy primitives;
//! - [`probe`]: the calls a locked-down worker must see refused;
//! - [`process`]: `wait4` with rusage, pidfds; [`module`]: loading compiled code;
//!   [`time`]: clocks.
//!
//! The host crate is `#![forbid(unsafe_code)]`; everything it cannot do safely is here. Every
//! `unsafe` block says why it holds (`clippy::undocumented_unsafe_blocks` is denied), and every
//! function whose caller must uphold something is an `unsafe fn` with a `# Safety` section.
#![deny(missing_docs)]

pub mod fd;
pub mod futex;
pub mod memfd;
pub mod memory;
pub mod module;
pub mod mqueue;
pub mod poll;
pub mod probe;
pub mod process;
pub mod shared;
pub mod time;
pub mod window;

pub use fd::*;
pub use futex::*;
pub use memfd::*;
pub use memory::*;
pub use module::*;
pub use mqueue::*;
pub use poll::*;
pub use probe::*;
pub use process::*;
pub use shared::*;
pub use time::*;
pub use window::*;
