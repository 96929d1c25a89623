//! The wasm-ipc experiments: [`bench`] races the product against its native floor, iceoryx2
//! and the machine; [`explain`] fills the textbook's table from runs it makes now. Both run
//! scenarios through the runtime and read the report; neither is needed to run a scenario.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

pub mod bench;
pub mod explain;
mod zenoh_native;

/// The repository root: `$WASM_IPC_ROOT`, else the source tree this binary was built from.
pub fn repo_root() -> PathBuf {
    match std::env::var_os("WASM_IPC_ROOT") {
        Some(r) => PathBuf::from(r),
        None => {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            p.canonicalize().unwrap_or(p)
        }
    }
}
