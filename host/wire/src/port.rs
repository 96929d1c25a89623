//! A port as the supervisor describes it to a worker.

use serde::{Deserialize, Serialize};

use wasm_ipc_scenario::BackendKind;

/// Which way a port points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The plugin receives.
    In,
    /// The plugin publishes.
    Out,
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
    /// The backend that planned the port and opens it.
    pub backend: BackendKind,
    /// Largest message.
    pub slot_size: u32,
    /// Messages in flight per link.
    pub capacity: u32,
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
