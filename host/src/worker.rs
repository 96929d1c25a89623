//! A worker: one plugin instance in its own OS process, started by the supervisor as
//! `wasm-ipc worker` with exactly these fds:
//!
//! - fd 3: the control socket (newline-delimited JSON, see [`ToWorker`] and [`FromWorker`]);
//! - fd 4: the compiled module in a sealed memfd;
//! - fd 5…: the sockets of its links, as its [`WorkerSpec`] numbers them.
//!
//! Sequence: read the spec → instantiate, open ports, ask for windows → `Ready` → wait for
//! `Go` (the barrier) → call `run` → close outputs → `Done` with figures measured from the
//! barrier's release.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::backend::{PortSpec, Stop, StopReason};
use crate::plugin::{self, Figures, Host, abi::HostTrap};
use crate::sys;

/// What a worker needs to know; the first line on its control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// Plugin instance name.
    pub plugin: String,
    /// Config values as text (including the host-provided `wasm-ipc.*` keys).
    pub config: BTreeMap<String, String>,
    /// Ports, in the order windows are requested.
    pub ports: Vec<PortSpec>,
    /// Compute digests.
    pub verify: bool,
    /// Seed for `random_get`.
    pub seed: u64,
    /// The run's deadline, CLOCK_MONOTONIC ns.
    pub deadline_ns: u64,
    /// The run's timeout as the scenario wrote it, for messages.
    pub timeout: String,
}

/// Supervisor → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToWorker {
    /// The barrier: start `run` now.
    Go {
        /// When the supervisor released the barrier (CLOCK_MONOTONIC ns).
        release_ns: u64,
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
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// What happened, when not ok.
    pub error: Option<String>,
    /// When `run` ended, CLOCK_MONOTONIC ns.
    pub end_ns: u64,
    /// When the worker was ready, ns after its spawn was requested… as measured by the worker:
    /// CLOCK_MONOTONIC ns at `Ready`.
    pub ready_at_ns: u64,
    /// Counts, digests, latency.
    pub figures: Figures,
    /// `rchar`, `wchar` from /proc/self/io, read just before reporting.
    pub io: Option<(u64, u64)>,
}

/// Worker → supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromWorker {
    /// Instantiated, windows allocated, ports open.
    Ready {
        /// CLOCK_MONOTONIC ns.
        ready_ns: u64,
    },
    /// Finished (or failed to start).
    Done(Box<Outcome>),
}

fn send(ctrl: &mut UnixStream, msg: &FromWorker) -> anyhow::Result<()> {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    ctrl.write_all(&line)?;
    Ok(())
}

fn read_line<T: for<'de> Deserialize<'de>>(r: &mut impl BufRead) -> anyhow::Result<Option<T>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(
        serde_json::from_str(&line).context("bad control message")?,
    ))
}

/// Runs the worker; returns the process exit code.
pub fn main(plugin: &str, parent_pid: i32) -> i32 {
    sys::ignore_sigint();
    // PR_SET_PDEATHSIG was set before exec; if the supervisor died before that, we are
    // orphaned already and must not run.
    if sys::parent_pid() != parent_pid {
        eprintln!("wasm-ipc worker {plugin}: supervisor {parent_pid} is gone");
        return 1;
    }
    match run_worker() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("wasm-ipc worker {plugin}: {e:#}");
            1
        }
    }
}

fn run_worker() -> anyhow::Result<()> {
    let ctrl_fd = sys::inherited_fd(3)?;
    let module_fd = sys::inherited_fd(4)?;
    let mut ctrl = UnixStream::from(ctrl_fd);
    let mut reader = BufReader::new(ctrl.try_clone()?);
    let Some(spec): Option<WorkerSpec> = read_line(&mut reader)? else {
        bail!("control socket closed before the spec arrived");
    };
    let stop = Arc::new(Stop::new(spec.deadline_ns)?);

    let setup = (|| -> anyhow::Result<_> {
        let engine = plugin::engine()?;
        let module =
            sys::load_handed_module(&engine, module_fd).context("loading the compiled module")?;
        let host = Host::new(
            &spec.plugin,
            spec.config.clone(),
            stop.clone(),
            spec.verify,
            spec.seed,
        );
        let (store, run) = plugin::instantiate(&engine, &module, host, spec.ports.clone())?;
        Ok((engine, store, run))
    })();
    let (engine, mut store, run) = match setup {
        Ok(x) => x,
        Err(e) => {
            let outcome = Outcome {
                status: Status::Failed,
                error: Some(format!("plugin `{}` could not start: {e:#}", spec.plugin)),
                end_ns: sys::now_ns(),
                ready_at_ns: 0,
                figures: Figures::default(),
                io: sys::self_io(),
            };
            send(&mut ctrl, &FromWorker::Done(Box::new(outcome)))?;
            return Ok(());
        }
    };
    let ready_ns = sys::now_ns();
    send(&mut ctrl, &FromWorker::Ready { ready_ns })?;

    // The barrier.
    match read_line::<ToWorker>(&mut reader)? {
        Some(ToWorker::Go { .. }) => {}
        Some(ToWorker::Stop { reason }) => {
            let outcome = Outcome {
                status: Status::Interrupted,
                error: Some(format!(
                    "plugin `{}` was stopped before the start: {reason}",
                    spec.plugin
                )),
                end_ns: sys::now_ns(),
                ready_at_ns: ready_ns,
                figures: Figures::default(),
                io: sys::self_io(),
            };
            send(&mut ctrl, &FromWorker::Done(Box::new(outcome)))?;
            return Ok(());
        }
        None => return Ok(()),
    }

    // Control messages during the run.
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while let Ok(Some(msg)) = read_line::<ToWorker>(&mut reader) {
                match msg {
                    ToWorker::Stop { reason } => stop.request(StopReason::Stopped(reason)),
                    ToWorker::Go { .. } => {}
                }
            }
            // The supervisor is gone: stop.
            stop.request(StopReason::Stopped("the supervisor went away".into()));
        });
    }
    // Epoch ticks: reach plugins that never call the host; enforce the deadline.
    {
        let stop = stop.clone();
        let engine = engine.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(10));
                if sys::now_ns() >= stop.deadline_ns() {
                    stop.request(StopReason::Timeout);
                }
                engine.increment_epoch();
            }
        });
    }

    let result = run.call(&mut store, ());
    let end_ns = sys::now_ns();
    let host = store.data_mut();
    host.output.flush();
    let (status, error) = classify(host, &spec, result);
    host.close_ports(status == Status::Ok);
    let figures = host.figures();
    let outcome = Outcome {
        status,
        error,
        end_ns,
        ready_at_ns: ready_ns,
        figures,
        io: sys::self_io(),
    };
    send(&mut ctrl, &FromWorker::Done(Box::new(outcome)))?;
    Ok(())
}

/// Turns `run`'s result into a status and a message naming the plugin.
fn classify(
    host: &Host,
    spec: &WorkerSpec,
    result: wasmtime::Result<i32>,
) -> (Status, Option<String>) {
    let name = &spec.plugin;
    let peer = |code: String| match &host.saw_peer_failure {
        Some(why) => (
            Status::PeerFailed,
            Some(format!(
                "plugin `{name}` ended ({code}) after a peer failed: {why}"
            )),
        ),
        None => (Status::Failed, Some(format!("plugin `{name}` {code}"))),
    };
    match result {
        Ok(0) => (Status::Ok, None),
        Ok(code) => peer(format!("returned {code} from `run`")),
        Err(e) => match e.downcast_ref::<HostTrap>() {
            Some(HostTrap::Exit(0)) => (Status::Ok, None),
            Some(HostTrap::Exit(code)) => peer(format!("exited with code {code}")),
            Some(HostTrap::Interrupted(where_)) => (
                Status::Interrupted,
                Some(format!(
                    "plugin `{name}` {where_} (timeout {})",
                    spec.timeout
                )),
            ),
            Some(HostTrap::Misuse(msg)) => (Status::Failed, Some(format!("trapped: {msg}"))),
            None => {
                let trap = e
                    .downcast_ref::<wasmtime::Trap>()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| e.to_string());
                let detail = format!("{e:?}");
                let mut msg = format!("plugin `{name}` trapped: {trap}");
                if let Some(port) = fault_address(&detail).and_then(|a| read_only_port(host, a)) {
                    msg.push_str(&format!(
                        ": it stored into the read-only shared region of input port `{}` \
                         (a consumer may only read what it receives)",
                        port.0
                    ));
                    msg.push_str(&format!(" at wasm address {:#x}", port.1));
                }
                let frames: Vec<&str> = detail
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.contains("!<wasm function") || l.contains(".wasm!"))
                    .take(3)
                    .collect();
                if !frames.is_empty() {
                    msg.push_str(&format!(" [backtrace: {}]", frames.join("; ")));
                }
                (Status::Failed, Some(msg))
            }
        },
    }
}

/// The wasm address of a memory fault, from wasmtime's trap message.
fn fault_address(detail: &str) -> Option<u64> {
    let rest = detail.split("memory fault at wasm address 0x").nth(1)?;
    let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u64::from_str_radix(&hex, 16).ok()
}

/// The `shm` input port whose read-only window holds `addr`, with the address.
fn read_only_port(host: &Host, addr: u64) -> Option<(String, u64)> {
    host.ports
        .iter()
        .filter(|p| p.spec.direction == crate::backend::Direction::In && p.spec.shm.is_some())
        .find(|p| {
            addr >= u64::from(p.window) && addr < u64::from(p.window) + u64::from(p.spec.window_len)
        })
        .map(|p| (p.spec.name.clone(), addr))
}
