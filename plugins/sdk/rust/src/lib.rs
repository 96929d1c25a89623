//! Rust SDK for wasm-ipc plugins: a safe API over the plugin ABI in `wit/wasm-ipc.wit`.
//!
//! A plugin is a `cdylib` built for `wasm32-wasip1`. It opens its ports by name, loans bytes
//! on an [`Output`] and publishes them, receives [`Message`]s on an [`Input`] (released when
//! dropped), calls a server through a [`Client`] or answers clients through a [`Server`]
//! (request/reply, ABI 0.2.0), reads its config, reports figures and logs. [`main!`] exports the `run` function
//! the host calls. All raw imports and exports live in one module (`sys`); fixtures that must
//! break the rules on purpose reach them through [`raw`].
//!
//! ```no_run
//! use wasm_ipc_sdk::{Error, Input, Output, config_or, report};
//!
//! /// Forwards every message from "in" to "out", xoring the payload after the index.
//! fn relay() -> Result<(), Error> {
//!     let xor: u8 = config_or("xor", 0);
//!     let mut input = Input::open("in")?;
//!     let mut output = Output::open("out")?;
//!     let mut relayed = 0;
//!     while let Some(msg) = input.receive()? {
//!         let mut loan = output.loan(msg.len())?;
//!         wasm_ipc_sdk::pattern::xor_copy(&mut loan, &msg, xor);
//!         loan.publish()?;
//!         relayed += 1;
//!     }
//!     report("relayed", relayed);
//!     Ok(())
//! }
//!
//! wasm_ipc_sdk::main!(relay);
//! # fn main() {}
//! ```
#![deny(missing_docs)]

mod error;
mod host;
pub mod pattern;
mod port;
mod service;
mod sys;

pub use error::{Error, code};
pub use host::{
    Level, config_bool, config_choice, config_i64, config_or, config_parse, config_str,
    config_str_or, config_u64, log, now, report,
};
pub use port::{Input, Loan, Message, Output};
pub use service::{Client, Reply, Request, RequestLoan, Server};

/// The raw host imports, for misbehaving test fixtures **only**: they let a plugin break the
/// ABI's rules on purpose (bad handles, invalid strings, publish without a loan) to test that
/// the host traps. Plugins use the safe API; nothing here checks anything.
pub mod raw {
    pub use crate::sys::{
        MODULE, call, client, config, loan, log, now, port, publish, receive, release, reply,
        reply_loan, report,
    };
}

/// Exports the plugin's `run` function, calling `$main: fn() -> Result<(), Error>`.
///
/// `Ok(())` returns 0. An error is logged at level error and returns
/// [`Error::exit_code`]: 101 closed, 102 peer-failed, 103 unknown-port, 104 too-large,
/// 105 not-found, 106 already-open, `n` for `Error::Code(n)` with `n` in 1..=99 (codes a plugin
/// defines for its own failures), 199 for any other code.
#[macro_export]
macro_rules! main {
    ($main:path) => {
        /// The plugin's main loop, called by the wasm-ipc host: 0 is success.
        #[unsafe(no_mangle)]
        pub extern "C" fn run() -> i32 {
            $crate::__private::run_main(stringify!($main), $main)
        }
    };
}

#[doc(hidden)]
pub mod __private {
    use crate::{Error, Level, log};

    /// The body of the `run` that [`main!`](crate::main!) exports.
    pub fn run_main(name: &str, main: fn() -> Result<(), Error>) -> i32 {
        match main() {
            Ok(()) => 0,
            Err(e) => {
                let code = e.exit_code();
                log(
                    Level::Error,
                    &format!("{name} failed: {e} (run returns {code})"),
                );
                code
            }
        }
    }
}
