//! A port as the supervisor describes it to a worker.

use serde::{Deserialize, Serialize};

use wasm_ipc_scenario::{BackendKind, Overflow};

/// Which way a port points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The plugin receives.
    In,
    /// The plugin publishes.
    Out,
}

/// What a port's transport carries for the plugin: a stream, or one direction of a
/// request/reply channel (ABI 0.2.0). A request/reply port of a plugin is made of two or more
/// legs of the same name, each a plain channel of the backend: a client's port is its
/// `Request` output and its `Reply` input; the server's port is its `Request` input (fan-in:
/// link `k` is client `k`) and one `Reply` output per client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Leg {
    /// A stream port (`loan`/`publish`, `receive`/`release`): ABI 0.1.0.
    #[default]
    Stream,
    /// Requests: a client's output, the server's input.
    Request,
    /// Replies to client `client`: the server's output to it, that client's input.
    Reply {
        /// The client's 0-based index in the channel's `from` list.
        client: u32,
    },
}

/// Everything a worker needs to open one port. The supervisor fills the generic part; the
/// backend that planned it fills `fds` and `params` and is the only one to read them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// Port name as the plugin asks for it.
    pub name: String,
    /// In or out.
    pub direction: Direction,
    /// A stream, or a leg of a request/reply port.
    #[serde(default)]
    pub leg: Leg,
    /// The backend that planned the port and opens it.
    pub backend: BackendKind,
    /// Largest message.
    pub slot_size: u32,
    /// Messages in flight per link.
    pub capacity: u32,
    /// What a publish that finds a link full does.
    #[serde(default)]
    pub overflow: Overflow,
    /// Window length the backend needs in the plugin's memory (a multiple of 64 KiB).
    pub window_len: u32,
    /// Link keys (`channel[i]:producer.port->consumer.port`), one per link, for digests.
    pub links: Vec<String>,
    /// Fd numbers, in the worker, of the port's resources; their meaning is the backend's.
    pub fds: Vec<i32>,
    /// The backend's own parameters.
    pub params: serde_json::Value,
}

impl PortSpec {
    /// The backend's parameters, parsed.
    pub fn params<T: for<'de> Deserialize<'de>>(&self) -> anyhow::Result<T> {
        use anyhow::Context;
        serde_json::from_value(self.params.clone())
            .with_context(|| format!("port `{}`: backend parameters", self.name))
    }
}
