//! The control protocol between the supervisor and a worker, on the worker's fd 3: one JSON
//! object per line, the messages below, serde's externally tagged enums. This module is its
//! only codec: both sides write with [`send`] and read with [`Reader`].
//!
//! | direction | line | meaning |
//! |---|---|---|
//! | S→W | [`WorkerSpec`] (first line) | plugin, config, ports, deadline |
//! | W→S | [`FromWorker::Csr`] | a sealed run's worker: its certificate signing request |
//! | S→W | [`ToWorker::Cert`] | the certificate for it, and the run's authority |
//! | W→S | [`FromWorker::Ready`] | instantiated, windows allocated, transports open |
//! | S→W | [`ToWorker::Go`] | the barrier opens: call `run` |
//! | S→W | [`ToWorker::Stop`] | stop now (Ctrl-C, or a failure before the barrier) |
//! | W→S | [`FromWorker::Done`] | the [`Outcome`]: status, error, figures |
//!
//! Every message refuses unknown fields, like the scenario types: a supervisor and a worker of
//! different builds fail loudly instead of dropping what the other said.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{Figures, PortSpec};
use wasm_ipc_scenario::Limits;

/// Longest line either side accepts: a spec or an outcome with many links, never more.
pub const MAX_LINE: usize = 16 << 20;

/// What a worker needs to know; the first line on its control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    /// Plugin instance name.
    pub plugin: String,
    /// Config values as text (including the host-provided `wasm-ipc.*` keys).
    pub config: BTreeMap<String, String>,
    /// Ports, in the order windows are requested.
    pub ports: Vec<PortSpec>,
    /// How many port fds the worker was handed, from fd 5 on.
    pub port_fds: u32,
    /// What the plugin may take.
    pub limits: Limits,
    /// Compute digests.
    pub verify: bool,
    /// Seed for `random_get`.
    pub seed: u64,
    /// The run's deadline, CLOCK_MONOTONIC ns.
    pub deadline_ns: u64,
    /// The run's timeout as the scenario wrote it, for messages.
    pub timeout: String,
    /// Its `zenoh` links are sealed (`[run] seal`): before it opens its ports it sends
    /// [`FromWorker::Csr`] and waits for [`ToWorker::Cert`].
    pub seal: bool,
}

/// Supervisor → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum ToWorker {
    /// The barrier: start `run` now.
    Go {
        /// When the supervisor released the barrier (CLOCK_MONOTONIC ns).
        release_ns: u64,
    },
    /// The answer to [`FromWorker::Csr`]: the worker's certificate and the run's authority's
    /// (PEM).
    Cert {
        /// Signed by the run's authority for the addresses the worker's host listens on.
        cert: String,
        /// The run's authority: the only root a sealed session trusts.
        ca: String,
    },
    /// Stop now (Ctrl-C, set-up failure elsewhere).
    Stop {
        /// Why.
        reason: String,
    },
}

/// How a worker's plugin ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// `run` returned 0.
    Ok,
    /// The plugin trapped, returned non-zero, or could not start.
    Failed,
    /// The plugin ended because a peer failed (not its own fault).
    PeerFailed,
    /// Stopped at the deadline or by the supervisor.
    Interrupted,
    /// The process died without reporting (killed, crashed).
    Killed,
}

/// A worker's final report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// What happened, when not ok.
    pub error: Option<String>,
    /// When `run` ended, CLOCK_MONOTONIC ns.
    pub end_ns: u64,
    /// When the worker was ready (CLOCK_MONOTONIC ns); 0 when it never was.
    pub ready_at_ns: u64,
    /// Counts, digests, latency.
    pub figures: Figures,
    /// `rchar`, `wchar` from /proc/self/io, read just before reporting.
    pub io: Option<(u64, u64)>,
    /// The worker's own peak RSS (`VmHWM`, KiB), read just before reporting: unlike
    /// `wait4`'s, it does not count the supervisor's pages from before the worker's `exec`.
    #[serde(default)]
    pub peak_rss_kib: Option<u64>,
    /// The limit the plugin ran into, if it did.
    pub limit: Option<LimitHit>,
}

/// A limit a plugin ran into: which resource, the limit, and what it tried to take.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitHit {
    /// `memory` (bytes), `table` (elements), `stack` (bytes), or `cpu` (ns).
    pub resource: String,
    /// The limit, in the resource's unit; for memory it includes the port windows.
    pub limit: u64,
    /// What the plugin tried to reach (for `stack`: the limit, wasmtime does not say more).
    pub tried: u64,
}

/// Worker → supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum FromWorker {
    /// A certificate signing request for the key the worker made itself (PEM): the key stays
    /// in the worker.
    Csr {
        /// The request.
        pem: String,
    },
    /// Instantiated, windows allocated, ports open.
    Ready {
        /// CLOCK_MONOTONIC ns.
        ready_ns: u64,
    },
    /// Finished (or failed to start).
    Done(Box<Outcome>),
}

/// Writes one message as one line.
pub fn send<T: Serialize>(w: &mut impl Write, msg: &T) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    w.write_all(&line)?;
    Ok(())
}

/// Decodes one line (without its newline).
pub fn decode<T: for<'de> Deserialize<'de>>(line: &[u8]) -> anyhow::Result<T> {
    serde_json::from_slice(line).context("bad control message")
}

/// Reads messages line by line, refusing lines longer than [`MAX_LINE`].
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    line: Vec<u8>,
}

impl<R: BufRead> Reader<R> {
    /// Reads from `inner`.
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            line: Vec::new(),
        }
    }

    /// The next message; `None` at end of file.
    pub fn read<T: for<'de> Deserialize<'de>>(&mut self) -> anyhow::Result<Option<T>> {
        self.line.clear();
        let limit = u64::try_from(MAX_LINE)?;
        let n =
            std::io::Read::take(&mut self.inner, limit + 1).read_until(b'\n', &mut self.line)?;
        if n == 0 {
            return Ok(None);
        }
        anyhow::ensure!(
            self.line.ends_with(b"\n") || n <= MAX_LINE,
            "control message longer than {MAX_LINE} bytes"
        );
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        decode(&self.line).map(Some)
    }
}
