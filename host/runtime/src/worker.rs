//! A worker: one plugin instance in its own OS process, started by the supervisor as
//! `wasm-ipc worker` with exactly these fds:
//!
//! - fd 3: the control socket (newline-delimited JSON, see [`ToWorker`] and [`FromWorker`]);
//! - fd 4: the compiled module in a sealed memfd;
//! - fd 5…: the sockets of its links, as its [`WorkerSpec`] numbers them.
//!
//! Sequence: read the spec → instantiate, open ports, ask for windows → connect the ports
//! → lock down → `Ready` → wait for `Go` (the barrier) → call `run` → close outputs → `Done`
//! with figures measured from the barrier's release.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::backend::{FIRST_PORT_FD, FdSource, Stop, StopReason};
use crate::control::{self, FromWorker, LimitHit, Outcome, Status, ToWorker, WorkerSpec};
use crate::plugin::{self, Figures, Host, Limiter, abi::HostTrap};
use crate::sys;

/// The port fds this worker was handed: fd 5 … 5 + count − 1.
#[derive(Debug)]
struct PortFds<'a> {
    handover: &'a mut sys::Handover,
    count: i32,
}

impl FdSource for PortFds<'_> {
    fn take(&mut self, n: i32) -> anyhow::Result<std::os::fd::OwnedFd> {
        anyhow::ensure!(
            (FIRST_PORT_FD..FIRST_PORT_FD + self.count).contains(&n),
            "fd {n} is not one of this worker's {} port fds",
            self.count
        );
        Ok(self.handover.take(n)?)
    }
}

/// Runs the worker; returns the process exit code.
pub fn main(plugin: &str, parent_pid: i32) -> i32 {
    sys::ignore_interrupts();
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

/// How long a worker's teardown may take after its final report: ending its sessions
/// (`zenoh` flushes what its engine still holds, a failed producer's last messages among them)
/// and unmapping its windows take milliseconds; a close waiting on a peer or a link that is
/// gone (a `zenoh` session's close waits up to 10 s) is cut short here, well inside the
/// supervisor's bound.
const TEARDOWN_BOUND: Duration = Duration::from_secs(1);

/// Ends the process once its teardown has taken [`TEARDOWN_BOUND`] after the final report:
/// a thread started before the lock-down (which may forbid new threads) and armed by
/// [`send_done`].
struct Teardown(std::sync::mpsc::Sender<()>);

impl Teardown {
    fn start() -> anyhow::Result<Teardown> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("wasm-ipc-teardown".into())
            .spawn(move || {
                if rx.recv().is_ok() {
                    std::thread::sleep(TEARDOWN_BOUND);
                    eprintln!(
                        "wasm-ipc worker: its teardown took over {} s after its report; ending it",
                        TEARDOWN_BOUND.as_secs()
                    );
                    sys::exit_now(2);
                }
            })
            .context("starting the teardown thread")?;
        Ok(Teardown(tx))
    }
}

/// Sends the worker's final report and arms the teardown's bound.
fn send_done(ctrl: &mut UnixStream, outcome: Outcome, teardown: &Teardown) -> anyhow::Result<()> {
    let sent = control::send(ctrl, &FromWorker::Done(Box::new(outcome)));
    let _ = teardown.0.send(());
    sent
}

fn run_worker() -> anyhow::Result<()> {
    let teardown = Teardown::start()?;
    let mut handover = sys::Handover::claim()?;
    let mut ctrl = UnixStream::from(handover.take(3)?);
    let mut reader = control::Reader::new(BufReader::new(ctrl.try_clone()?));
    let Some(mut spec): Option<WorkerSpec> = reader.read()? else {
        bail!("control socket closed before the spec arrived");
    };
    let stop = Arc::new(Stop::new(spec.deadline_ns)?);
    let zenoh_ports = spec
        .ports
        .iter()
        .any(|p| p.backend == crate::scenario::BackendKind::Zenoh);
    if zenoh_ports {
        crate::seal::watch_refusals(format!(
            "wasm-ipc worker {}: refused a connection from outside the run",
            spec.plugin
        ))?;
    }
    if spec.seal {
        let early = match certify(&mut ctrl, &mut reader, &mut spec) {
            Ok(Certified::Yes) => None,
            Ok(Certified::Gone) => return Ok(()),
            Ok(Certified::Stopped(reason)) => Some((
                Status::Interrupted,
                format!(
                    "plugin `{}` was stopped before the start: {reason}",
                    spec.plugin
                ),
            )),
            Err(e) => Some((
                Status::Failed,
                format!("plugin `{}` could not start: {e:#}", spec.plugin),
            )),
        };
        if let Some((status, error)) = early {
            send_early((&mut ctrl, &teardown), status, error, 0, sys::self_io())?;
            return Ok(());
        }
    }

    let setup = (|| -> anyhow::Result<_> {
        let engine = plugin::engine_with_stack(spec.limits.stack)?;
        let code = handover
            .code(&engine, 4)
            .context("loading the compiled module")?;
        let windows = spec.ports.iter().map(|p| u64::from(p.window_len)).sum();
        let host = Host::new(
            &spec.plugin,
            spec.config.clone(),
            stop.clone(),
            spec.verify,
            spec.seed,
            Limiter::new(&spec.plugin, spec.limits, windows),
        );
        let mut fds = PortFds {
            handover: &mut handover,
            count: i32::try_from(spec.port_fds)?,
        };
        let running = plugin::Running::new(&engine, &code, host, spec.ports.clone(), &mut fds)?;
        Ok((engine, running))
    })();
    let (engine, mut running) = match setup {
        Ok(x) => x,
        Err(e) => {
            // A limit says everything itself; wasmtime's backtrace around it adds lines only.
            let why = match e.downcast_ref::<HostTrap>() {
                Some(HostTrap::Limit(msg)) => msg.clone(),
                _ => format!("{e:#}"),
            };
            send_early(
                (&mut ctrl, &teardown),
                Status::Failed,
                format!("plugin `{}` could not start: {why}", spec.plugin),
                0,
                sys::self_io(),
            )?;
            return Ok(());
        }
    };
    // What the report reads at the end is opened now: after the lock-down nothing can be.
    let mut self_io = sys::SelfIo::open().ok();
    // Control messages: the barrier, then stop requests during the run. The thread starts
    // before the lock-down, which forbids creating threads.
    let (barrier_tx, barrier) = std::sync::mpsc::channel::<ToWorker>();
    // Each helper thread says it runs before the lock-down, so none is still starting then.
    let (started_tx, started) = std::sync::mpsc::channel::<()>();
    {
        let stop = stop.clone();
        let started_tx = started_tx.clone();
        std::thread::spawn(move || {
            let _ = started_tx.send(());
            while let Ok(Some(msg)) = reader.read::<ToWorker>() {
                if let ToWorker::Stop { reason } = &msg {
                    stop.request(StopReason::Stopped(reason.clone()));
                }
                let _ = barrier_tx.send(msg);
            }
            // The supervisor is gone: stop.
            stop.request(StopReason::Stopped("the supervisor went away".into()));
        });
    }
    // Epoch ticks: reach plugins that never call the host; enforce the deadline and the CPU
    // limit (the whole process's CPU time: wasm code and host calls, spinning included).
    let cpu_hit = Arc::new(std::sync::OnceLock::new());
    {
        let stop = stop.clone();
        let engine = engine.clone();
        let cpu_hit = cpu_hit.clone();
        let (name, cpu_limit) = (spec.plugin.clone(), spec.limits.cpu);
        std::thread::spawn(move || {
            let _ = started_tx.send(());
            loop {
                std::thread::sleep(Duration::from_millis(10));
                if sys::now_ns() >= stop.deadline_ns() {
                    stop.request(StopReason::Timeout);
                }
                if let Some(limit) = cpu_limit {
                    let used = sys::process_cpu();
                    if used > limit && cpu_hit.get().is_none() {
                        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
                        let _ = cpu_hit.set(LimitHit {
                            resource: "cpu".into(),
                            limit: ns(limit),
                            tried: ns(used),
                        });
                        stop.request(StopReason::Limit(format!(
                            "plugin `{name}` hit its CPU limit: its worker used {used:.2?} of \
                             CPU, beyond its limit of {limit:?} (plugin.cpu)"
                        )));
                    }
                }
                engine.increment_epoch();
            }
        });
    }
    for _ in 0..2 {
        let _ = started.recv();
    }
    // Every transport connected before the lock-down (a zenoh consumer's session is still
    // dialling its producers) and before `Ready`: nothing published is lost for want of a
    // peer. A stop from the supervisor meanwhile ends the wait.
    if let Err(e) = running.host_mut().connect_ports() {
        let (status, error) = match stop.reason() {
            Some(StopReason::Stopped(reason)) => (
                Status::Interrupted,
                format!(
                    "plugin `{}` was stopped before the start: {reason}",
                    spec.plugin
                ),
            ),
            _ => (
                Status::Failed,
                format!("plugin `{}` could not start: {e:#}", spec.plugin),
            ),
        };
        let io = self_io.as_mut().and_then(sys::SelfIo::read);
        send_early((&mut ctrl, &teardown), status, error, 0, io)?;
        return Ok(());
    }
    // The test-only hook that widens the start-up window (ports open, not yet locked down)
    // for the tests that dial a sealed run's listeners in it.
    if let Some(ms) = std::env::var(crate::seal::HOLD_START_VAR)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms.min(10_000)));
    }
    // `WASM_IPC_UNLOCKED=1` is for counting instructions under valgrind, which cannot run a
    // seccomp filter: the plugin then runs without the lock-down, and says so.
    let unlocked = std::env::var_os("WASM_IPC_UNLOCKED").is_some_and(|v| v == "1");
    if unlocked {
        eprintln!(
            "wasm-ipc worker {}: WARNING: running WITHOUT the seccomp lock-down \
             (WASM_IPC_UNLOCKED=1): for profiling only, never with untrusted plugins",
            spec.plugin
        );
    }
    let mut needs = crate::backend::Lockdown::of(spec.ports.iter().map(|p| p.backend));
    if running.is_component() {
        needs.push(plugin::component::lockdown());
    }
    if let Err(e) = (!unlocked)
        .then(|| crate::lockdown::lock_down(&needs))
        .transpose()
    {
        send_early(
            (&mut ctrl, &teardown),
            Status::Failed,
            format!("plugin `{}` could not start: {e:#}", spec.plugin),
            0,
            self_io.as_mut().and_then(sys::SelfIo::read),
        )?;
        return Ok(());
    }
    let ready_ns = sys::now_ns();
    control::send(&mut ctrl, &FromWorker::Ready { ready_ns })?;

    // The barrier.
    match barrier.recv() {
        Ok(ToWorker::Go { .. }) => {}
        // Only ever the answer to a request, made and answered before `Ready`.
        Ok(ToWorker::Cert { .. }) => bail!("a certificate came after the worker was ready"),
        Ok(ToWorker::Stop { reason }) => {
            send_early(
                (&mut ctrl, &teardown),
                Status::Interrupted,
                format!(
                    "plugin `{}` was stopped before the start: {reason}",
                    spec.plugin
                ),
                ready_ns,
                self_io.as_mut().and_then(sys::SelfIo::read),
            )?;
            return Ok(());
        }
        Err(_) => return Ok(()),
    }

    let result = running.run();
    let stack_overflow = matches!(&result, Err(e)
        if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::StackOverflow));
    let end_ns = sys::now_ns();
    let guest = running.finish_output();
    let component = running.is_component();
    let host = running.host_mut();
    host.output.flush();
    let (status, error) = classify(host, &spec, result, component, guest.as_deref());
    host.close_ports(status == Status::Ok);
    let mut figures = host.figures();
    if zenoh_ports {
        figures
            .counters
            .insert("refused_connections".into(), crate::seal::refused());
    }
    let limit = host
        .limiter
        .hit
        .clone()
        .or_else(|| cpu_hit.get().cloned())
        .or_else(|| {
            // wasmtime says the stack ran out, not how deep the plugin tried to go.
            stack_overflow.then(|| LimitHit {
                resource: "stack".into(),
                limit: spec.limits.stack,
                tried: spec.limits.stack,
            })
        });
    let outcome = Outcome {
        status,
        error,
        end_ns,
        ready_at_ns: ready_ns,
        figures,
        io: self_io.as_mut().and_then(sys::SelfIo::read),
        peak_rss_kib: self_io.as_mut().and_then(sys::SelfIo::peak_rss_kib),
        limit,
    };
    send_done(&mut ctrl, outcome, &teardown)
}

/// Turns `run`'s result into a status and a message naming the plugin.
/// Tells the supervisor that the worker ends before or at the barrier, without running.
/// How asking for a certificate ended.
enum Certified {
    /// The `zenoh` ports of the spec carry the worker's identity.
    Yes,
    /// The supervisor said stop instead (a failure elsewhere, Ctrl-C).
    Stopped(String),
    /// The supervisor went away.
    Gone,
}

/// A sealed run: makes this worker's own key, sends only a signing request for it, and gives
/// the certificate the supervisor answers (with the run's authority) to every `zenoh` port.
fn certify(
    ctrl: &mut UnixStream,
    reader: &mut control::Reader<BufReader<UnixStream>>,
    spec: &mut WorkerSpec,
) -> anyhow::Result<Certified> {
    let request = crate::seal::Request::new(&spec.plugin)?;
    control::send(
        ctrl,
        &FromWorker::Csr {
            pem: request.csr.clone(),
        },
    )?;
    let (cert, ca) = match reader.read::<ToWorker>()? {
        Some(ToWorker::Cert { cert, ca }) => (cert, ca),
        Some(ToWorker::Stop { reason }) => return Ok(Certified::Stopped(reason)),
        Some(ToWorker::Go { .. }) => bail!("the barrier opened before the certificate came"),
        None => return Ok(Certified::Gone),
    };
    let identity = serde_json::to_value(request.identity(cert, ca))?;
    for port in &mut spec.ports {
        if port.backend == crate::scenario::BackendKind::Zenoh
            && let Some(params) = port.params.as_object_mut()
        {
            params.insert("identity".into(), identity.clone());
        }
    }
    Ok(Certified::Yes)
}

fn send_early(
    (ctrl, teardown): (&mut UnixStream, &Teardown),
    status: Status,
    error: String,
    ready_at_ns: u64,
    io: Option<(u64, u64)>,
) -> anyhow::Result<()> {
    let outcome = Outcome {
        status,
        error: Some(error),
        end_ns: sys::now_ns(),
        ready_at_ns,
        figures: Figures::default(),
        io,
        peak_rss_kib: None,
        limit: None,
    };
    send_done(ctrl, outcome, teardown)
}

/// `component`: the plugin is a component, `guest` its own account of a failure
/// ([`plugin::Running::finish_output`]).
fn classify(
    host: &Host,
    spec: &WorkerSpec,
    result: wasmtime::Result<i32>,
    component: bool,
    guest: Option<&str>,
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
    // A limit is the plugin's own doing, whatever the call it was stopped in.
    if let Some(StopReason::Limit(why)) = host.stop.reason() {
        return (Status::Failed, Some(why));
    }
    match result {
        Ok(0) => (Status::Ok, None),
        Ok(code) => peer(match host.output.first_error() {
            Some(said) => format!("returned {code} from `run`; it logged: {said}"),
            None => format!("returned {code} from `run`"),
        }),
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
            Some(HostTrap::Limit(msg)) => (Status::Failed, Some(msg.clone())),
            None => {
                let trap = e
                    .downcast_ref::<wasmtime::Trap>()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| e.to_string());
                let mut msg = match guest {
                    // A Python exception or a JavaScript throw ends a component in a trap:
                    // the guest's own words say what happened.
                    Some(said) if component => {
                        format!("plugin `{name}` failed in its own code: {said} ({trap})")
                    }
                    _ => format!("plugin `{name}` trapped: {trap}"),
                };
                if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::StackOverflow) {
                    msg.push_str(&format!(
                        ": its wasm code used up its stack limit of {} B (plugin.stack)",
                        spec.limits.stack
                    ));
                }
                // A component's windows are not in its memory: a fault there is its own.
                if let Some(port) = fault_address(&e)
                    .filter(|_| !component)
                    .and_then(|a| read_only_port(host, a))
                {
                    msg.push_str(&format!(
                        ": it stored into the read-only shared region of input port `{}` \
                         (a consumer may only read what it receives)",
                        port.0
                    ));
                    msg.push_str(&format!(" at wasm address {:#x}", port.1));
                }
                // A guest that said why it failed needs no backtrace of its interpreter's
                // abort.
                if let Some(bt) = e
                    .downcast_ref::<wasmtime::WasmBacktrace>()
                    .filter(|_| !(component && guest.is_some()))
                {
                    let frames: Vec<String> = bt
                        .frames()
                        .iter()
                        .take(3)
                        .map(|f| {
                            let func = f.func_name().map_or_else(
                                || format!("<wasm function {}>", f.func_index()),
                                str::to_string,
                            );
                            let func = match f.module().name() {
                                Some(m) => format!("{m}!{func}"),
                                None => func,
                            };
                            match f.module_offset() {
                                Some(at) => format!("{func} at {at:#x}"),
                                None => func,
                            }
                        })
                        .collect();
                    if !frames.is_empty() {
                        msg.push_str(&format!(" [backtrace: {}]", frames.join("; ")));
                    }
                }
                (Status::Failed, Some(msg))
            }
        },
    }
}

/// The wasm address of a memory fault, from the context wasmtime attaches to the trap (its
/// `WasmFault` type is not public, so its message is read).
fn fault_address(e: &wasmtime::Error) -> Option<u64> {
    e.chain().find_map(|cause| {
        let text = cause.to_string();
        let rest = text.split("memory fault at wasm address 0x").nth(1)?;
        let hex: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        u64::from_str_radix(&hex, 16).ok()
    })
}

/// The input port whose read-only window holds `addr`, with the address.
fn read_only_port(host: &Host, addr: u64) -> Option<(String, u64)> {
    host.ports
        .iter()
        .filter(|p| match &p.side {
            plugin::Side::In { rx, .. } => rx.window_is_read_only(),
            plugin::Side::Out { .. } => false,
        })
        .find(|p| {
            addr >= u64::from(p.window) && addr < u64::from(p.window) + u64::from(p.spec.window_len)
        })
        .map(|p| (p.spec.name.clone(), addr))
}
