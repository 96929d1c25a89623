//! The supervisor: compiles each module once, wires the links of a run, starts one worker
//! process per plugin instance, releases them together, enforces the deadline, and collects
//! what they measured.
//!
//! Nothing outlives a run: link sockets and module memfds are anonymous and closed by every
//! process that holds them; workers die with the supervisor (`PR_SET_PDEATHSIG`, set from the
//! thread that lives for the whole run) and are killed through pidfds at the deadline's grace.

use std::collections::HashMap;
use std::io::BufReader;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

use crate::backend::{self, ChannelDesc, EndpointDesc, Fds, PeerLost, PortSpec};
use crate::control::{self, FromWorker, Status, ToWorker, WorkerSpec};
use crate::plugin::{self, cache};
use crate::report::{self, RunRecord, RunReport, WorkerRecord};
use crate::scenario::{BackendKind, Scenario, Verify};
use crate::sys::{self, ChildUsage, Pidfd};

/// How long workers get, after the deadline or a stop request, before they are killed.
const GRACE: Duration = Duration::from_secs(2);

/// Set by SIGINT/SIGTERM.
fn interrupted_flag() -> &'static Arc<AtomicBool> {
    static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let _ = signal_hook::flag::register(sig, flag.clone());
        }
        flag
    })
}

/// Whether Ctrl-C (or SIGTERM) arrived.
pub fn was_interrupted() -> bool {
    interrupted_flag().load(Ordering::Relaxed)
}

/// Modules compiled for a scenario, shared by all its runs.
#[derive(Debug)]
pub struct Session {
    run_id: String,
    exe: PathBuf,
    modules: HashMap<PathBuf, cache::Compiled>,
    /// Modules compiled now (not loaded from the cache): the report's `modules_compiled`.
    modules_compiled: usize,
}

impl Session {
    /// Compiles (or loads from the cache) every distinct module of `sc` and checks it against
    /// the ABI. `exe` is the binary to start workers from.
    pub fn new(sc: &Scenario, exe: PathBuf, run_id: String) -> anyhow::Result<Session> {
        let _ = interrupted_flag();
        let engine = plugin::engine()?;
        let dir = cache::cache_dir();
        let mut modules = HashMap::new();
        let mut modules_compiled = 0;
        for (i, p) in sc.plugins.iter().enumerate() {
            if modules.contains_key(&p.wasm) {
                continue;
            }
            let bytes = std::fs::read(&p.wasm)
                .with_context(|| format!("plugin `{}`: reading {}", p.name, p.wasm.display()))?;
            // wasmtime would read any other bytes as WAT text and complain about a `(`.
            if p.wasm.extension().is_some_and(|e| e == "wasm") && !bytes.starts_with(b"\0asm") {
                anyhow::bail!(
                    "plugin `{}`: {} is not WebAssembly: it does not start with the \\0asm \
                     header (a .wasm file is a binary module; text modules end in .wat)",
                    p.name,
                    p.wasm.display()
                );
            }
            let tag = format!("wasm-ipc:{run_id}:module:{}", p.name);
            let compiled = cache::load_or_compile(&engine, &bytes, &tag, dir.as_deref())
                .with_context(|| format!("plugin `{}`: compiling {}", p.name, p.wasm.display()))?;
            let has_ports = !sc.inputs_of(i).is_empty() || !sc.outputs_of(i).is_empty();
            plugin::check_module(&compiled.module, has_ports)
                .with_context(|| format!("plugin `{}` ({})", p.name, p.wasm.display()))?;
            modules_compiled += usize::from(compiled.compiled_now);
            modules.insert(p.wasm.clone(), compiled);
        }
        Ok(Session {
            run_id,
            exe,
            modules,
            modules_compiled,
        })
    }

    /// Runs `sc` once on `backend`; failures are in the report, never an `Err`.
    pub fn run(&self, sc: &Scenario, backend: BackendKind, repeat: u32) -> RunReport {
        let start_ns = sys::now_ns();
        // `run.timeout` is bounded by the parser, so this cannot overflow in practice; saturate
        // rather than wrap if it ever did.
        let timeout_ns = u64::try_from(sc.run.timeout.as_nanos()).unwrap_or(u64::MAX);
        let deadline_ns = start_ns.saturating_add(timeout_ns);
        let mut run = RunState::default();
        let result = self.start_and_supervise(sc, backend, repeat, deadline_ns, &mut run);
        let record = RunRecord {
            workers: run.workers.into_iter().map(|w| w.record).collect(),
            release_ns: run.release_ns,
            interrupted: run.interrupted,
        };
        report::build(
            sc,
            backend,
            repeat,
            self.modules_compiled,
            &record,
            result.err(),
        )
    }

    fn start_and_supervise(
        &self,
        sc: &Scenario,
        backend: BackendKind,
        repeat: u32,
        deadline_ns: u64,
        run: &mut RunState,
    ) -> anyhow::Result<()> {
        let Plan {
            specs,
            mut fds,
            channels,
            roles,
        } = plan(sc, repeat, backend, deadline_ns, &self.run_id)?;
        run.channels = channels;
        run.roles = roles;
        let (tx, rx) = mpsc::channel::<Event>();
        for (i, spec) in specs.into_iter().enumerate() {
            let plugin = &sc.plugins[i];
            let port_fds = fds.take(i);
            match self.spawn(i, &plugin.name, &plugin.wasm, spec, port_fds, &tx) {
                Ok(w) => run.workers.push(w),
                Err(e) => {
                    for w in &run.workers {
                        w.pidfd.kill();
                    }
                    // Let the wait threads reap what was started.
                    drop(tx);
                    for _ in &run.workers {
                        let _ = rx.recv_timeout(GRACE);
                    }
                    return Err(e.context(format!("starting plugin `{}`", plugin.name)));
                }
            }
        }
        drop(fds);
        drop(tx);
        supervise(run, &rx, deadline_ns);
        Ok(())
    }

    fn spawn(
        &self,
        i: usize,
        name: &str,
        wasm: &PathBuf,
        spec: WorkerSpec,
        link_fds: Vec<OwnedFd>,
        events: &mpsc::Sender<Event>,
    ) -> anyhow::Result<Worker> {
        let (ours, theirs) = sys::blocking_stream_pair()?;
        let module = &self.modules[wasm].memfd;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("worker")
            .args(["--run-id", &self.run_id, "--plugin", name])
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
            // The worker's environment is the supervisor's making, not the user's: only what
            // a worker reads (ARCHITECTURE.md, "The locked-down worker").
            .env_clear();
        for var in ["WASM_IPC_LOG", "WASM_IPC_BASELINE_CPU", "WASM_IPC_UNLOCKED"] {
            if let Some(value) = std::env::var_os(var) {
                cmd.env(var, value);
            }
        }
        if spec
            .ports
            .iter()
            .any(|p| p.backend == crate::scenario::BackendKind::Zenoh)
        {
            cmd.env("ZENOH_RUNTIME", crate::backend::zenoh::RUNTIME);
        }

        let mut pass = vec![theirs.as_fd(), module.as_fd()];
        pass.extend(link_fds.iter().map(|f| f.as_fd()));
        let keep = sys::pass_fds(&mut cmd, &pass)?;
        let spawn_ns = sys::now_ns();
        let child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.exe.display()))?;
        drop(keep);
        drop(theirs);
        drop(link_fds);
        let pid = i32::try_from(child.id())?;
        // The wait thread reaps the child; std's handle is not used for waiting.
        std::mem::forget(child);
        let pidfd = Pidfd::open(pid)?;
        let mut ctrl = UnixStream::from(ours);
        // A worker that died at once shows up through its exit; the write error adds nothing.
        let _ = control::send(&mut ctrl, &spec);
        {
            let events = events.clone();
            let mut reader = control::Reader::new(BufReader::new(ctrl.try_clone()?));
            std::thread::spawn(move || {
                // A line that does not decode ends the conversation like end of file: the
                // worker is then judged by its exit.
                while let Ok(Some(msg)) = reader.read::<FromWorker>() {
                    let _ = events.send(Event::Msg(i, msg));
                }
                let _ = events.send(Event::CtrlClosed(i));
            });
        }
        {
            let events = events.clone();
            std::thread::spawn(move || {
                let usage = sys::wait_child(pid).unwrap_or_default();
                let _ = events.send(Event::Exited(i, usage));
            });
        }
        Ok(Worker {
            record: WorkerRecord {
                name: name.to_string(),
                pid,
                spawn_ns,
                ready_ns: None,
                outcome: None,
                usage: None,
                killed: None,
            },
            pidfd,
            ctrl,
            told_failure: false,
            ctrl_closed: false,
        })
    }
}

enum Event {
    Msg(usize, FromWorker),
    CtrlClosed(usize),
    Exited(usize, ChildUsage),
}

/// One started worker as the supervisor tracks it.
#[derive(Debug)]
struct Worker {
    /// What the report gets.
    record: WorkerRecord,
    pidfd: Pidfd,
    ctrl: UnixStream,
    told_failure: bool,
    ctrl_closed: bool,
}

impl Worker {
    fn tell(&mut self, msg: &ToWorker) {
        let _ = control::send(&mut self.ctrl, msg);
    }

    /// Ended badly by its own doing (not because a peer failed or the run timed out, which
    /// every worker sees for itself). A worker that exited is judged only once its control
    /// socket is drained too: its final report may arrive after the exit.
    fn failed(&self) -> bool {
        match &self.record.outcome {
            Some(o) => o.status == Status::Failed,
            None => self.record.usage.is_some() && self.ctrl_closed,
        }
    }
}

/// A worker's place in a channel.
#[derive(Debug, Clone, Copy)]
enum Role {
    Producer(usize),
    Consumer(usize),
}

/// What a run's supervision tracks.
#[derive(Debug, Default)]
struct RunState {
    workers: Vec<Worker>,
    release_ns: Option<u64>,
    interrupted: bool,
    /// Per lane, what its backend does when a worker of it is lost.
    channels: Vec<Box<dyn PeerLost>>,
    /// Per worker, (lane, role) for failure propagation.
    roles: Vec<Vec<(usize, Role)>>,
}

impl RunState {
    /// Tells the backend of every channel worker `i` takes part in that it is gone (`shm`
    /// marks its rings; on `msg` the closed sockets say it).
    fn propagate_failure(&self, i: usize) {
        let roles = self.roles.get(i).into_iter().flatten();
        // Its inputs first, then its outputs: whoever learns of the failure from an output
        // (a server, from a client's requests) then finds the worker's inputs (that client's
        // answers) already gone, not still taking an answer nobody will read.
        for &(c, role) in roles.clone() {
            if let Role::Consumer(q) = role {
                self.channels[c].consumer_lost(q);
            }
        }
        for &(c, role) in roles {
            if let Role::Producer(p) = role {
                self.channels[c].producer_lost(p);
            }
        }
    }
}

fn supervise(run: &mut RunState, rx: &mpsc::Receiver<Event>, deadline_ns: u64) {
    let mut stop_sent_at: Option<u64> = None;
    let n = run.workers.len();
    // A worker is finished when it was reaped *and* its control socket reached end of file:
    // its last report may arrive after the exit.
    let mut finished = 0;
    while finished < 2 * n {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Event::Msg(i, FromWorker::Ready { ready_ns })) => {
                run.workers[i].record.ready_ns = Some(ready_ns)
            }
            Ok(Event::Msg(i, FromWorker::Done(outcome))) => {
                run.workers[i].record.outcome = Some(*outcome)
            }
            Ok(Event::Exited(i, usage)) => {
                run.workers[i].record.usage = Some(usage);
                finished += 1;
            }
            Ok(Event::CtrlClosed(i)) => {
                run.workers[i].ctrl_closed = true;
                finished += 1;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let now = sys::now_ns();
        // The barrier: release everyone at once when all are ready.
        if run.release_ns.is_none()
            && stop_sent_at.is_none()
            && run.workers.iter().all(|w| w.record.ready_ns.is_some())
        {
            let release_ns = sys::now_ns();
            run.release_ns = Some(release_ns);
            for w in &mut run.workers {
                w.tell(&ToWorker::Go { release_ns });
            }
        }
        // A failure before the barrier stops the run. After it, only the failed plugin's own
        // links learn of it (closed sockets; flags in the shm control block), so the other
        // plugins keep working: a failed consumer in a fan-out does not stop its siblings.
        for i in 0..n {
            if run.workers[i].failed() && !run.workers[i].told_failure {
                run.workers[i].told_failure = true;
                run.propagate_failure(i);
                if run.release_ns.is_none() {
                    stop_sent_at.get_or_insert(now);
                    let reason = failure_summary(&run.workers[i].record);
                    for (j, w) in run.workers.iter_mut().enumerate() {
                        if j != i && w.record.usage.is_none() {
                            w.tell(&ToWorker::Stop {
                                reason: reason.clone(),
                            });
                        }
                    }
                }
            }
        }
        if was_interrupted() && !run.interrupted {
            run.interrupted = true;
            stop_sent_at.get_or_insert(now);
            for w in &mut run.workers {
                w.tell(&ToWorker::Stop {
                    reason: "the supervisor was interrupted (Ctrl-C)".into(),
                });
            }
        }
        let grace_ns = u64::try_from(GRACE.as_nanos()).expect("2 s fits");
        let kill_reason = if now > deadline_ns.saturating_add(grace_ns) {
            Some("still running after the deadline and its grace period")
        } else if stop_sent_at.is_some_and(|t| now > t + grace_ns) {
            Some("did not stop when asked")
        } else {
            None
        };
        if let Some(why) = kill_reason {
            for w in &mut run.workers {
                if w.record.usage.is_none() && w.record.killed.is_none() {
                    // A frozen worker (SIGSTOP, a debugger) is not slow: it never ran again.
                    let why = match process_state(w.record.pid) {
                        Some('T' | 't') => format!(
                            "it was frozen (stopped by a signal, state T) when the deadline \
                             passed: a frozen plugin, not a slow one ({why})"
                        ),
                        _ => why.to_string(),
                    };
                    w.record.killed = Some(why);
                    w.pidfd.kill();
                }
            }
        }
    }
}

/// The state letter of process `pid` from `/proc/<pid>/stat` (`R`, `S`, `T` for stopped, …).
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn failure_summary(w: &WorkerRecord) -> String {
    match (&w.outcome, &w.usage) {
        (Some(o), _) => o
            .error
            .clone()
            .unwrap_or_else(|| format!("plugin `{}` failed", w.name)),
        (None, Some(u)) => match u.signal {
            Some(sig) => format!(
                "plugin `{}` (pid {}) was killed by signal {sig}",
                w.name, w.pid
            ),
            None => format!(
                "plugin `{}` (pid {}) exited with status {} without reporting",
                w.name,
                w.pid,
                u.exit_code.unwrap_or(-1)
            ),
        },
        (None, None) => format!("plugin `{}` failed", w.name),
    }
}

/// Link key: `channel[c]:producer.port->consumer.port`.
fn link_key(
    sc: &Scenario,
    c: usize,
    from: &crate::scenario::Endpoint,
    to: &crate::scenario::Endpoint,
) -> String {
    format!(
        "channel[{c}]:{}.{}->{}.{}",
        sc.plugins[from.plugin].name, from.port, sc.plugins[to.plugin].name, to.port
    )
}

/// A run's wiring: each worker's spec and the fds it receives (fd 5, 6, … in order).
struct Plan {
    specs: Vec<WorkerSpec>,
    fds: Fds,
    channels: Vec<Box<dyn PeerLost>>,
    roles: Vec<Vec<(usize, Role)>>,
}

/// Wires every channel of `sc` through `backend`; the backend plans each channel itself.
fn plan(
    sc: &Scenario,
    repeat: u32,
    backend: BackendKind,
    deadline_ns: u64,
    run_id: &str,
) -> anyhow::Result<Plan> {
    let n = sc.plugins.len();
    let imp = backend::of(backend);
    let mut fds = Fds::new(n);
    let mut ports: Vec<Vec<PortSpec>> = (0..n).map(|_| Vec::new()).collect();
    let mut channels = Vec::new();
    let mut roles: Vec<Vec<(usize, Role)>> = (0..n).map(|_| Vec::new()).collect();
    let endpoint = |e: &crate::scenario::Endpoint| EndpointDesc {
        plugin: e.plugin,
        port: e.port.clone(),
    };
    for (l, lane) in crate::lanes::lanes(sc).into_iter().enumerate() {
        let c = lane.channel;
        let desc = ChannelDesc {
            index: l,
            run_id,
            producers: lane.from.iter().map(endpoint).collect(),
            consumers: lane.to.iter().map(endpoint).collect(),
            keys: lane
                .from
                .iter()
                .map(|f| lane.to.iter().map(|t| link_key(sc, c, f, t)).collect())
                .collect(),
            slot_size: lane.slot_size,
            capacity: lane.capacity,
            wait: sc.run.wait,
            processes: n,
        };
        let planned = imp
            .plan(&desc, &mut fds)
            .with_context(|| format!("channel {c} on `{}`", backend.name()))?;
        for (p, (from, mut spec)) in lane.from.iter().zip(planned.producers).enumerate() {
            spec.leg = lane.leg;
            ports[from.plugin].push(spec);
            roles[from.plugin].push((l, Role::Producer(p)));
        }
        for (q, (to, mut spec)) in lane.to.iter().zip(planned.consumers).enumerate() {
            spec.leg = lane.leg;
            ports[to.plugin].push(spec);
            roles[to.plugin].push((l, Role::Consumer(q)));
        }
        channels.push(planned.peers);
    }
    let specs = sc
        .plugins
        .iter()
        .zip(ports)
        .enumerate()
        .map(|(i, (p, ports))| {
            let mut config = p.config.clone();
            config.insert("wasm-ipc.plugin".into(), p.name.clone());
            config.insert("wasm-ipc.backend".into(), backend.name().into());
            config.insert("wasm-ipc.repeat".into(), repeat.to_string());
            if let Some(instance) = &p.instance {
                config.insert("wasm-ipc.instance".into(), instance.index.to_string());
                config.insert("wasm-ipc.instances".into(), instance.count.to_string());
            }
            Ok(WorkerSpec {
                plugin: p.name.clone(),
                config,
                ports: {
                    let mut ports = ports;
                    // Name order, as the plugin sees them; a request/reply port's legs stay
                    // in lane order.
                    ports.sort_by(|a, b| a.name.cmp(&b.name));
                    ports
                },
                port_fds: u32::try_from(fds.count(i))?,
                limits: p.limits,
                verify: sc.run.verify == Verify::Full,
                seed: sc.run.seed,
                deadline_ns,
                timeout: format!("{:?}", sc.run.timeout),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Plan {
        specs,
        fds,
        channels,
        roles,
    })
}
