//! The negative codes of the ABI as an error type, and what `run` returns for each.

use std::fmt;

/// The host's negative return codes, one table for every SDK (`wit/wasm-ipc.wit`).
pub mod code {
    /// receive: every producer finished and the channel is drained; loan/publish: every
    /// consumer is gone.
    pub const CLOSED: i32 = -1;
    /// A plugin on the other side of the port failed (trap, killed, timeout).
    pub const PEER_FAILED: i32 = -2;
    /// port: this plugin has no port of that name in the scenario.
    pub const UNKNOWN_PORT: i32 = -3;
    /// loan: the length exceeds the channel's slot size.
    pub const TOO_LARGE: i32 = -4;
    /// config: the key is absent.
    pub const NOT_FOUND: i32 = -5;
}

/// What went wrong in a host call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The other side is done: every producer finished (receive) or every consumer is gone
    /// (loan, publish).
    Closed,
    /// A plugin on the other side of the port failed (trap, killed, timeout).
    PeerFailed,
    /// This plugin has no port of that name in the scenario.
    UnknownPort,
    /// The loan is longer than the channel's slot size.
    TooLarge,
    /// The config key is absent.
    NotFound,
    /// The port is already open in this plugin: one `Input`/`Output` per port at a time, so
    /// two loans or messages of one port can never alias.
    AlreadyOpen,
    /// Any other code: negative, a host code this SDK does not name; 1..=99, a failure the
    /// plugin defines itself, which [`main!`](crate::main!) returns from `run` unchanged.
    Code(i32),
}

impl Error {
    /// The error for a negative code a host function returned.
    pub fn from_code(code: i32) -> Error {
        match code {
            code::CLOSED => Error::Closed,
            code::PEER_FAILED => Error::PeerFailed,
            code::UNKNOWN_PORT => Error::UnknownPort,
            code::TOO_LARGE => Error::TooLarge,
            code::NOT_FOUND => Error::NotFound,
            other => Error::Code(other),
        }
    }

    /// What `run` returns for this error (see [`main!`](crate::main!)): 101 closed,
    /// 102 peer-failed, 103 unknown-port, 104 too-large, 105 not-found, 106 already-open,
    /// `n` for `Code(n)` with `n` in 1..=99, and 199 for any other code.
    pub fn exit_code(self) -> i32 {
        match self {
            Error::Closed => 101,
            Error::PeerFailed => 102,
            Error::UnknownPort => 103,
            Error::TooLarge => 104,
            Error::NotFound => 105,
            Error::AlreadyOpen => 106,
            Error::Code(n @ 1..=99) => n,
            Error::Code(_) => 199,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => f.write_str("closed: the other side of the port is done"),
            Error::PeerFailed => f.write_str("peer-failed: a plugin on the other side failed"),
            Error::UnknownPort => f.write_str("unknown-port: no port of that name here"),
            Error::TooLarge => f.write_str("too-large: longer than the channel's slot size"),
            Error::NotFound => f.write_str("not-found: no such config key"),
            Error::AlreadyOpen => f.write_str("already-open: the port is open in this plugin"),
            Error::Code(n @ 1..=99) => write!(f, "plugin-defined failure {n}"),
            Error::Code(n) => write!(f, "host error code {n}"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_to_distinct_exit_codes() {
        let named = [
            (code::CLOSED, Error::Closed),
            (code::PEER_FAILED, Error::PeerFailed),
            (code::UNKNOWN_PORT, Error::UnknownPort),
            (code::TOO_LARGE, Error::TooLarge),
            (code::NOT_FOUND, Error::NotFound),
        ];
        let mut exits = Vec::new();
        for (c, e) in named {
            assert_eq!(Error::from_code(c), e);
            exits.push(e.exit_code());
        }
        exits.push(Error::AlreadyOpen.exit_code());
        exits.push(Error::from_code(-42).exit_code());
        exits.sort_unstable();
        exits.dedup();
        assert_eq!(exits.len(), 7);
        assert!(exits.iter().all(|&c| c > 99));
        // The table every SDK shares: a plugin's own codes 1..=99 pass, anything else is 199.
        assert_eq!(Error::Code(1).exit_code(), 1);
        assert_eq!(Error::Code(7).exit_code(), 7);
        assert_eq!(Error::Code(99).exit_code(), 99);
        assert_eq!(Error::Code(100).exit_code(), 199);
        assert_eq!(Error::Code(0).exit_code(), 199);
        assert_eq!(Error::Code(7).exit_code(), 7);
        assert_eq!(Error::Code(0).exit_code(), 199);
    }
}
