//! The supervisor: compiles each module once, wires the links of a run, starts one worker
//! process per plugin instance, releases them together, enforces the deadline, and collects
//! what they measured.
//!
//! Nothing outlives a run: link sockets and module memfds are anonymous and closed by every
//! process that holds them; workers die with the supervisor (`PR_SET_PDEATHSIG`, set from the
//! thread that lives for the whole run) and are killed through pidfds at the deadline's grace.

use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

use crate::agent::{self, AgentLink, Heard, HostJob, HostLane, HostWorker, Slot};
use crate::backend::{self, ChannelDesc, EndpointDesc, Fds, NothingToDo, PeerLost, PortSpec};
use crate::control::{self, FromWorker, Status, ToWorker, WorkerSpec};
use crate::plugin::{self, cache};
use crate::record::{ClockReport, LinkReport, RunRecord, WorkerRecord};
use crate::scenario::{BackendKind, Scenario, Verify};
use crate::sys::{self, ChildUsage, Pidfd};
use wasm_ipc_wire::record::EXIT_BOUND;

/// How long workers get, after the deadline or a stop request, before they are killed.
const GRACE: Duration = Duration::from_secs(2);

/// The signals that end a run early, each with the name a report gives it.
const INTERRUPTS: [(i32, &str); 3] = [
    (signal_hook::consts::SIGINT, "SIGINT (Ctrl-C)"),
    (signal_hook::consts::SIGTERM, "SIGTERM"),
    (signal_hook::consts::SIGHUP, "SIGHUP"),
];

/// The number of the signal that interrupted this process, 0 while none did.
fn interrupted_flag() -> &'static Arc<AtomicUsize> {
    static FLAG: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicUsize::new(0));
        for (sig, _) in INTERRUPTS {
            if let Ok(n) = usize::try_from(sig) {
                let _ = signal_hook::flag::register_usize(sig, flag.clone(), n);
            }
        }
        flag
    })
}

/// Whether SIGINT (Ctrl-C), SIGTERM or SIGHUP arrived.
pub fn was_interrupted() -> bool {
    interrupted_flag().load(Ordering::Relaxed) != 0
}

/// The signal that interrupted this process, by name (`SIGINT (Ctrl-C)`, `SIGTERM`,
/// `SIGHUP`), if one did.
pub fn interruption() -> Option<&'static str> {
    let n = interrupted_flag().load(Ordering::Relaxed);
    INTERRUPTS
        .iter()
        .find(|(sig, _)| usize::try_from(*sig) == Ok(n))
        .map(|(_, name)| *name)
}

/// What every session of one command shares.
#[derive(Debug, Clone)]
pub struct Options {
    /// The binary workers start from (`wasm-ipc worker`).
    pub exe: PathBuf,
    /// The run id every process and memfd of the command carries.
    pub run_id: String,
    /// Where the agents' token is read (`--token-file`); `None`: `WASM_IPC_TOKEN`.
    pub token_file: Option<PathBuf>,
}

/// Modules compiled for a scenario, shared by all its runs, and the agents of its hosts.
#[derive(Debug)]
pub struct Session {
    run_id: String,
    exe: PathBuf,
    modules: HashMap<PathBuf, cache::Compiled>,
    /// Each module's xxh3-128 (hex): its name on the agents.
    hashes: HashMap<PathBuf, String>,
    /// Modules compiled now (not loaded from the cache): the report's `modules_compiled`.
    modules_compiled: usize,
    /// Per `[[host]]`, its agent, when a plugin runs there.
    agents: Vec<Option<Arc<AgentLink>>>,
}

impl Session {
    /// Compiles (or loads from the cache) every distinct module of `sc` and checks it against
    /// the ABI; reaches the agent of every host that runs a plugin and hands it its modules.
    /// Workers start from `opts.exe`.
    pub fn new(sc: &Scenario, opts: &Options) -> anyhow::Result<Session> {
        let (exe, run_id) = (opts.exe.clone(), opts.run_id.clone());
        let _ = interrupted_flag();
        let engine = plugin::engine()?;
        let dir = cache::cache_dir();
        let mut modules = HashMap::new();
        let mut hashes = HashMap::new();
        let mut bytes_of: HashMap<PathBuf, Vec<u8>> = HashMap::new();
        let mut modules_compiled = 0;
        for (i, p) in sc.plugins.iter().enumerate() {
            if modules.contains_key(&p.wasm) {
                continue;
            }
            let bytes = crate::scenario::read_regular(&p.wasm, crate::scenario::MAX_MODULE_BYTES)
                .with_context(|| {
                format!("plugin `{}`: reading {}", p.name, p.wasm.display())
            })?;
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
            plugin::check_code(&engine, &compiled.code, has_ports)
                .with_context(|| format!("plugin `{}` ({})", p.name, p.wasm.display()))?;
            modules_compiled += usize::from(compiled.compiled_now);
            modules.insert(p.wasm.clone(), compiled);
            hashes.insert(p.wasm.clone(), module_hash(&bytes));
            bytes_of.insert(p.wasm.clone(), bytes);
        }
        let mut agents: Vec<Option<Arc<AgentLink>>> = sc.hosts.iter().map(|_| None).collect();
        let used: std::collections::BTreeSet<usize> =
            sc.plugins.iter().filter_map(|p| p.host).collect();
        if !used.is_empty() {
            let token = agent::token(None, opts.token_file.as_deref())?;
            for (k, &h) in used.iter().enumerate() {
                // One session listens on `[run] listen` (a second could not bind its port).
                let listen = if k == 0 { sc.run.listen } else { None };
                let link = AgentLink::shared(&sc.hosts[h], listen, &token)?;
                let wanted: BTreeMap<String, Vec<u8>> = sc
                    .plugins
                    .iter()
                    .filter(|p| p.host == Some(h))
                    .map(|p| (hashes[&p.wasm].clone(), bytes_of[&p.wasm].clone()))
                    .collect();
                link.send_modules(&wanted)?;
                agents[h] = Some(link);
            }
        }
        Ok(Session {
            run_id,
            exe,
            modules,
            hashes,
            modules_compiled,
            agents,
        })
    }

    /// Each host's clock offset as measured at connect: (host, agent − supervisor ns, error
    /// bound ns).
    pub fn clock_offsets(&self) -> Vec<(String, i64, u64)> {
        self.agents
            .iter()
            .flatten()
            .map(|a| (a.name.clone(), a.offset_ns, a.offset_err_ns))
            .collect()
    }

    /// Runs `sc` once on `backend`; failures are in the record, never an `Err`.
    pub fn run(&self, sc: &Scenario, backend: BackendKind, repeat: u32) -> RunRecord {
        let start_ns = sys::now_ns();
        // `run.timeout` is bounded by the parser, so this cannot overflow in practice; saturate
        // rather than wrap if it ever did.
        let timeout_ns = u64::try_from(sc.run.timeout.as_nanos()).unwrap_or(u64::MAX);
        let deadline_ns = start_ns.saturating_add(timeout_ns);
        let mut run = RunState::default();
        let result = self.start_and_supervise(sc, backend, repeat, deadline_ns, &mut run);
        RunRecord {
            backend,
            repeat,
            modules_compiled: self.modules_compiled,
            start_error: result.err().map(|e| format!("{e:#}")),
            start_ns,
            end_ns: sys::now_ns(),
            workers: run.workers.into_iter().map(|w| w.record).collect(),
            release_ns: run.release_ns,
            interrupted: run.interrupted,
            links: run.links,
            clocks: self
                .clock_offsets()
                .into_iter()
                .map(|(host, offset_ns, error_ns)| ClockReport {
                    host,
                    offset_ns,
                    error_ns,
                })
                .collect(),
        }
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
            jobs,
            links,
        } = plan(sc, repeat, backend, deadline_ns, &self.run_id, &self.agents)?;
        run.channels = channels;
        run.roles = roles;
        run.links = links;
        let sealed = specs.iter().flatten().any(|s| s.seal)
            || jobs.values().any(|j| j.workers.iter().any(|w| w.spec.seal));
        if sealed {
            let ca = crate::seal::RunCa::new(&self.run_id)?;
            run.seal = Some((
                ca,
                (0..sc.plugins.len()).map(|i| addresses(sc, i)).collect(),
            ));
        }
        let (tx, rx) = mpsc::channel::<Event>();
        let mut started: Vec<Option<Worker>> = (0..sc.plugins.len()).map(|_| None).collect();
        let mut result = Ok(());
        for (i, spec) in specs.into_iter().enumerate() {
            let Some(spec) = spec else { continue };
            let plugin = &sc.plugins[i];
            let port_fds = fds.take(i);
            let module = &self.modules[&plugin.wasm].memfd;
            match spawn_worker(
                &self.exe,
                &self.run_id,
                i,
                module.as_fd(),
                &spec,
                port_fds,
                &tx,
            ) {
                Ok(s) => started[i] = Some(Worker::local(i, &plugin.name, s)),
                Err(e) => {
                    result = Err(e.context(format!("starting plugin `{}`", plugin.name)));
                    break;
                }
            }
        }
        drop(fds);
        // The agents' parts, once this machine's workers are started.
        let (htx, hrx) = mpsc::channel::<(usize, Heard)>();
        let mut asked = Vec::new();
        if result.is_ok() {
            for (h, mut job) in jobs {
                let agent = self.agents[h]
                    .clone()
                    .expect("a job only for a connected host");
                for w in &mut job.workers {
                    w.module = self.hashes[&sc.plugins[w.index].wasm].clone();
                }
                asked.push(agent.clone());
                match agent.start(job, h, htx.clone()) {
                    Ok(pids) => {
                        for (i, pid, spawn_ns) in pids {
                            started[i] = Some(Worker::remote(
                                i,
                                &sc.plugins[i].name,
                                (&agent, h),
                                pid,
                                spawn_ns,
                            ));
                        }
                    }
                    Err(e) => {
                        result = Err(e.context("starting the plugins placed there"));
                        break;
                    }
                }
            }
        }
        drop(htx);
        if let Err(e) = result {
            for w in started.iter_mut().flatten() {
                w.kill();
            }
            for a in &asked {
                let _ = a.end_run();
            }
            // Let the wait threads reap what was started here.
            drop(tx);
            for w in started.iter().flatten() {
                if w.is_local() {
                    let _ = rx.recv_timeout(GRACE);
                }
            }
            return Err(e);
        }
        for (i, w) in started.into_iter().enumerate() {
            let mut w = w.expect("every plugin is started here or on its host");
            w.record.host = sc.host_name(i).to_string();
            run.workers.push(w);
        }
        // Events from the agents join this machine's.
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                while let Ok((h, heard)) = hrx.recv() {
                    let e = match heard {
                        Heard::Event(agent::HostEvent::Msg { worker, msg }) => {
                            Event::Msg(worker, msg)
                        }
                        Heard::Event(agent::HostEvent::CtrlClosed { worker }) => {
                            Event::CtrlClosed(worker)
                        }
                        Heard::Event(agent::HostEvent::Exited { worker, usage }) => {
                            Event::Exited(worker, usage)
                        }
                        Heard::Lost(why) => Event::HostLost(h, why),
                    };
                    if tx.send(e).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        supervise(run, &rx, deadline_ns);
        for a in &asked {
            let _ = a.end_run();
        }
        Ok(())
    }
}

/// A started worker: its pid, the handle that kills it, its control socket, when it began.
pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: Pidfd,
    pub ctrl: UnixStream,
    pub spawn_ns: u64,
}

/// Starts `wasm-ipc worker` for plugin instance `i` with its module (fd 4) and port fds (5…),
/// sends it its spec, and feeds `events` from a reader of its control socket and a thread
/// that reaps it. Must run on a thread that outlives the worker (`PR_SET_PDEATHSIG`).
pub(crate) fn spawn_worker(
    exe: &Path,
    run_id: &str,
    i: usize,
    module: std::os::fd::BorrowedFd<'_>,
    spec: &WorkerSpec,
    link_fds: Vec<OwnedFd>,
    events: &mpsc::Sender<Event>,
) -> anyhow::Result<Spawned> {
    let (ours, theirs) = sys::blocking_stream_pair()?;
    let mut cmd = Command::new(exe);
    cmd.arg("worker")
        .args(["--run-id", run_id, "--plugin", &spec.plugin])
        .args(["--parent-pid", &std::process::id().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?))
        // The worker's environment is the supervisor's making, not the user's: only what
        // a worker reads (ARCHITECTURE.md, "The locked-down worker").
        .env_clear();
    for var in [
        "WASM_IPC_LOG",
        "WASM_IPC_BASELINE_CPU",
        "WASM_IPC_UNLOCKED",
        backend::bounded::HOLD_LOCK_VAR,
        crate::seal::HOLD_START_VAR,
    ] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    for (var, value) in backend::worker_env(spec.ports.iter().map(|p| p.backend)) {
        cmd.env(var, value);
    }

    let mut pass = vec![theirs.as_fd(), module];
    pass.extend(link_fds.iter().map(|f| f.as_fd()));
    let keep = sys::pass_fds(&mut cmd, &pass)?;
    let spawn_ns = sys::now_ns();
    let child = cmd
        .spawn()
        .with_context(|| format!("running {}", exe.display()))?;
    drop(keep);
    drop(theirs);
    drop(link_fds);
    let pid = i32::try_from(child.id())?;
    // The wait thread reaps the child; std's handle is not used for waiting.
    std::mem::forget(child);
    let pidfd = Pidfd::open(pid)?;
    let mut ctrl = UnixStream::from(ours);
    // A worker that died at once shows up through its exit; the write error adds nothing.
    let _ = control::send(&mut ctrl, spec);
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
    Ok(Spawned {
        pid,
        pidfd,
        ctrl,
        spawn_ns,
    })
}

/// The xxh3-128 of a module's bytes, in hex: its name between the supervisor and agents.
pub(crate) fn module_hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

pub(crate) enum Event {
    Msg(usize, FromWorker),
    CtrlClosed(usize),
    Exited(usize, ChildUsage),
    /// The agent of host `h` is gone (why).
    HostLost(usize, String),
}

/// Where a worker runs, and so how the supervisor reaches it.
enum Reach {
    /// Started here: its pidfd and control socket.
    Direct { pidfd: Pidfd, ctrl: UnixStream },
    /// Started by the agent of host `host` (its index in the scenario).
    Agent { agent: Arc<AgentLink>, host: usize },
}

impl std::fmt::Debug for Reach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reach::Direct { .. } => f.write_str("local"),
            Reach::Agent { agent, .. } => write!(f, "{agent:?}"),
        }
    }
}

/// One started worker as the supervisor tracks it.
#[derive(Debug)]
struct Worker {
    /// What the report gets.
    record: WorkerRecord,
    /// Its index in the run (its plugin's in the scenario).
    index: usize,
    reach: Reach,
    told_failure: bool,
    ctrl_closed: bool,
}

impl Worker {
    fn local(index: usize, name: &str, s: Spawned) -> Worker {
        Worker {
            record: WorkerRecord {
                name: name.to_string(),
                host: String::new(),
                pid: s.pid,
                spawn_ns: s.spawn_ns,
                ready_ns: None,
                outcome: None,
                done_ns: None,
                exited_ns: None,
                usage: None,
                killed: None,
            },
            index,
            reach: Reach::Direct {
                pidfd: s.pidfd,
                ctrl: s.ctrl,
            },
            told_failure: false,
            ctrl_closed: false,
        }
    }

    fn remote(
        index: usize,
        name: &str,
        (agent, host): (&Arc<AgentLink>, usize),
        pid: i32,
        spawn_ns: u64,
    ) -> Worker {
        Worker {
            record: WorkerRecord {
                name: name.to_string(),
                host: String::new(),
                pid,
                spawn_ns,
                ready_ns: None,
                outcome: None,
                done_ns: None,
                exited_ns: None,
                usage: None,
                killed: None,
            },
            index,
            reach: Reach::Agent {
                agent: agent.clone(),
                host,
            },
            told_failure: false,
            ctrl_closed: false,
        }
    }

    fn is_local(&self) -> bool {
        matches!(self.reach, Reach::Direct { .. })
    }

    fn kill(&self) {
        match &self.reach {
            Reach::Direct { pidfd, .. } => pidfd.kill(),
            Reach::Agent { agent, .. } => {
                let _ = agent.kill(self.index);
            }
        }
    }

    /// Whether it is over: reaped, and its control socket drained.
    fn finished(&self) -> bool {
        self.record.usage.is_some() && self.ctrl_closed
    }

    /// Ended badly by its own doing (not because a peer failed or the run timed out, which
    /// every worker sees for itself). A worker that exited is judged only once its control
    /// socket is drained too: its final report may arrive after the exit.
    fn failed(&self) -> bool {
        match &self.record.outcome {
            Some(o) => o.status == Status::Failed,
            None => self.finished(),
        }
    }
}

/// A worker's place in a channel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Producer(usize),
    Consumer(usize),
}

/// What a run's supervision tracks.
#[derive(Debug, Default)]
struct RunState {
    workers: Vec<Worker>,
    release_ns: Option<u64>,
    interrupted: Option<String>,
    /// Per lane, what its backend does when a worker of it is lost.
    channels: Vec<Box<dyn PeerLost>>,
    /// Per worker, (lane, role) for failure propagation.
    roles: Vec<Vec<(usize, Role)>>,
    /// Every link and its backend, for the report.
    links: Vec<LinkReport>,
    /// A sealed run's authority, and per worker the addresses its certificate names.
    seal: Option<(crate::seal::RunCa, Vec<Vec<std::net::IpAddr>>)>,
}

impl RunState {
    /// Tells the backend of every channel worker `i` takes part in that it is gone (`shm`
    /// marks its rings; on `msg` the closed sockets say it).
    fn propagate_failure(&self, i: usize) {
        tell_lost(&self.channels, self.roles.get(i).map_or(&[], Vec::as_slice));
    }
}

/// Tells each channel a worker with `roles` takes part in that it is gone. Its inputs first,
/// then its outputs: whoever learns of the failure from an output (a server, from a
/// client's requests) then finds the worker's inputs (that client's answers) already gone,
/// not still taking an answer nobody will read. The agent calls it for its own lanes too.
pub(crate) fn tell_lost(channels: &[Box<dyn PeerLost>], roles: &[(usize, Role)]) {
    for &(c, role) in roles {
        if let Role::Consumer(q) = role {
            channels[c].consumer_lost(q);
        }
    }
    for &(c, role) in roles {
        if let Role::Producer(p) = role {
            channels[c].producer_lost(p);
        }
    }
}

/// Sends `msg` to every worker `to` picks: on this machine through its control socket, on a
/// host in one request per agent (the barrier's `Go` reaches a host's workers together).
fn broadcast(workers: &mut [Worker], msg: &ToWorker, to: impl Fn(usize, &Worker) -> bool) {
    let mut remote: Vec<(Arc<AgentLink>, Vec<usize>)> = Vec::new();
    for (i, w) in workers.iter_mut().enumerate() {
        if !to(i, w) {
            continue;
        }
        match &mut w.reach {
            Reach::Direct { ctrl, .. } => {
                let _ = control::send(ctrl, msg);
            }
            Reach::Agent { agent, .. } => {
                match remote.iter_mut().find(|(a, _)| Arc::ptr_eq(a, agent)) {
                    Some((_, list)) => list.push(w.index),
                    None => remote.push((agent.clone(), vec![w.index])),
                }
            }
        }
    }
    for (agent, list) in remote {
        // A lost agent shows up as `HostLost`; the error adds nothing here.
        let _ = agent.tell(&list, msg);
    }
}

fn supervise(run: &mut RunState, rx: &mpsc::Receiver<Event>, deadline_ns: u64) {
    let mut stop_sent_at: Option<u64> = None;
    let n = run.workers.len();
    // A worker is finished when it was reaped *and* its control socket reached end of file:
    // its last report may arrive after the exit.
    while !run.workers.iter().all(Worker::finished) {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Event::Msg(i, FromWorker::Csr { pem })) => {
                let w = &run.workers[i];
                let answer = match &run.seal {
                    Some((ca, ips)) => ca
                        .sign(&format!("plugin `{}`", w.record.name), &pem, &ips[i])
                        .map(|cert| ToWorker::Cert {
                            cert,
                            ca: ca.pem().to_string(),
                        }),
                    None => Err(anyhow::anyhow!("the run is not sealed")),
                };
                let msg = answer.unwrap_or_else(|e| ToWorker::Stop {
                    reason: format!("its certificate was refused: {e:#}"),
                });
                broadcast(&mut run.workers, &msg, |j, _| j == i);
            }
            Ok(Event::Msg(i, FromWorker::Ready { ready_ns })) => {
                run.workers[i].record.ready_ns = Some(ready_ns)
            }
            Ok(Event::Msg(i, FromWorker::Done(outcome))) => {
                let r = &mut run.workers[i].record;
                r.outcome = Some(*outcome);
                r.done_ns.get_or_insert_with(sys::now_ns);
            }
            Ok(Event::Exited(i, usage)) => {
                let r = &mut run.workers[i].record;
                r.usage.get_or_insert(usage);
                r.exited_ns.get_or_insert_with(sys::now_ns);
            }
            Ok(Event::CtrlClosed(i)) => {
                run.workers[i].ctrl_closed = true;
            }
            Ok(Event::HostLost(h, why)) => {
                // Its workers die with it (they are its children, killed when it dies); those
                // it had not reported over are counted lost here.
                for w in &mut run.workers {
                    if let Reach::Agent { host, .. } = &w.reach
                        && *host == h
                        && !w.finished()
                    {
                        w.record.usage.get_or_insert_default();
                        w.ctrl_closed = true;
                        if w.record.outcome.is_none() {
                            w.record
                                .killed
                                .get_or_insert_with(|| format!("lost with its host: {why}"));
                        }
                    }
                }
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
            broadcast(&mut run.workers, &ToWorker::Go { release_ns }, |_, _| true);
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
                    broadcast(&mut run.workers, &ToWorker::Stop { reason }, |j, w| {
                        j != i && w.record.usage.is_none()
                    });
                }
            }
        }
        if let Some(signal) = interruption()
            && run.interrupted.is_none()
        {
            run.interrupted = Some(signal.to_string());
            stop_sent_at.get_or_insert(now);
            let reason = format!("the supervisor was interrupted by {signal}");
            broadcast(&mut run.workers, &ToWorker::Stop { reason }, |_, _| true);
        }
        let grace_ns = u64::try_from(GRACE.as_nanos()).expect("2 s fits");
        let kill_reason = if now > deadline_ns.saturating_add(grace_ns) {
            Some("still running after the deadline and its grace period")
        } else if stop_sent_at.is_some_and(|t| now > t + grace_ns) {
            Some("did not stop when asked")
        } else {
            None
        };
        // A worker whose plugin finished exits within a bound: one that does not (a session
        // that never closes, a thread that never ends) is killed, and the run says so.
        let bound_ns = u64::try_from(EXIT_BOUND.as_nanos()).expect("2 s fits");
        for w in &mut run.workers {
            if let Some(done) = w.record.done_ns
                && w.record.usage.is_none()
                && w.record.killed.is_none()
                && now > done.saturating_add(bound_ns)
            {
                w.record.killed = Some(format!(
                    "did not exit within {:.2} s after its plugin's run returned",
                    EXIT_BOUND.as_secs_f64()
                ));
                w.kill();
            }
        }
        if let Some(why) = kill_reason {
            for w in &mut run.workers {
                if w.record.usage.is_none() && w.record.killed.is_none() {
                    // A frozen worker (SIGSTOP, a debugger) is not slow: it never ran again.
                    let state = if w.is_local() {
                        process_state(w.record.pid)
                    } else {
                        None
                    };
                    let why = match state {
                        Some('T' | 't') => format!(
                            "it was frozen (stopped by a signal, state T) when the deadline \
                             passed: a frozen plugin, not a slow one ({why})"
                        ),
                        _ => why.to_string(),
                    };
                    w.record.killed = Some(why);
                    w.kill();
                }
            }
        }
    }
}

/// The addresses plugin `i`'s certificate names: those its host's producers listen on (here:
/// loopback and `[run] listen`'s; on a host: the agent's address).
fn addresses(sc: &Scenario, i: usize) -> Vec<std::net::IpAddr> {
    match sc.plugins[i].host {
        Some(h) => vec![sc.hosts[h].addr.ip()],
        None => {
            let mut ips = vec![std::net::Ipv4Addr::LOCALHOST.into()];
            ips.extend(sc.run.listen.map(|a| a.ip()));
            ips
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

/// A run's wiring: this machine's workers' specs and the fds they receive (fd 5, 6, … in
/// order), and what each agent starts.
struct Plan {
    /// Per worker, its spec when it runs on this machine.
    specs: Vec<Option<WorkerSpec>>,
    fds: Fds,
    channels: Vec<Box<dyn PeerLost>>,
    roles: Vec<Vec<(usize, Role)>>,
    /// Per host, what its agent starts.
    jobs: BTreeMap<usize, HostJob>,
    links: Vec<LinkReport>,
}

/// Wires every lane of `sc`: a backend plans each lane itself, here when the lane's plugins
/// are on this machine or the lane crosses hosts (`zenoh`), on the agent when they all run
/// on its host on a backend with local resources (`shm`, `msg`).
fn plan(
    sc: &Scenario,
    repeat: u32,
    kind: BackendKind,
    deadline_ns: u64,
    run_id: &str,
    agents: &[Option<Arc<AgentLink>>],
) -> anyhow::Result<Plan> {
    let n = sc.plugins.len();
    let lanes = crate::lanes::lanes(sc);
    let host_of = |p: usize| sc.plugins[p].host;
    let one_host = |lane: &crate::lanes::Lane| lane.on_one_host(sc);
    let multi = sc.plugins.iter().any(|p| p.host.is_some());
    // Ports for the producers of zenoh lanes placed on hosts: asked of each agent at once.
    let mut wanted: BTreeMap<usize, u32> = BTreeMap::new();
    for lane in &lanes {
        if backend::resolve(kind, one_host(lane)).crosses_hosts() {
            for f in &lane.from {
                if let Some(h) = host_of(f.plugin) {
                    *wanted.entry(h).or_default() += 1;
                }
            }
        }
    }
    let mut pools: BTreeMap<usize, Vec<u16>> = BTreeMap::new();
    for (&h, &count) in &wanted {
        let agent = agents[h]
            .as_ref()
            .context("no agent for a host that runs plugins")?;
        let mut ports = agent.ports(count)?;
        ports.reverse();
        pools.insert(h, ports);
    }
    let mut held = Vec::new();
    let mut fds = Fds::new(n);
    let mut slots: Vec<Vec<Slot>> = (0..n).map(|_| Vec::new()).collect();
    let mut channels: Vec<Box<dyn PeerLost>> = Vec::new();
    let mut roles: Vec<Vec<(usize, Role)>> = (0..n).map(|_| Vec::new()).collect();
    let mut jobs: BTreeMap<usize, HostJob> = BTreeMap::new();
    let mut links = Vec::new();
    let new_job = || HostJob {
        run: 0,
        run_id: run_id.to_string(),
        processes: n,
        offset_ns: 0,
        workers: Vec::new(),
        lanes: Vec::new(),
    };
    let endpoint = |e: &crate::scenario::Endpoint| EndpointDesc {
        plugin: e.plugin,
        port: e.port.clone(),
    };
    for (l, lane) in lanes.iter().enumerate() {
        let c = lane.channel;
        let single = one_host(lane);
        let b = backend::resolve(kind, single);
        if !single && !b.crosses_hosts() {
            anyhow::bail!(
                "{}: backend `{}` cannot join plugins on different hosts; use `zenoh` or `auto`",
                sc.crossing().unwrap_or_default(),
                b.name()
            );
        }
        let keys: Vec<Vec<String>> = lane
            .from
            .iter()
            .map(|f| lane.to.iter().map(|t| link_key(sc, c, f, t)).collect())
            .collect();
        for (f, row) in lane.from.iter().zip(&keys) {
            for (t, key) in lane.to.iter().zip(row) {
                links.push(LinkReport {
                    link: key.clone(),
                    from: format!("{}.{}", sc.plugins[f.plugin].name, f.port),
                    to: format!("{}.{}", sc.plugins[t.plugin].name, t.port),
                    backend: b.name().into(),
                    from_host: sc.host_name(f.plugin).into(),
                    to_host: sc.host_name(t.plugin).into(),
                    window: lane.capacity,
                    ..LinkReport::default()
                });
            }
        }
        // A lane on one host, on a backend with local resources: that host's agent plans it.
        if !b.crosses_hosts()
            && let Some(h) = host_of(lane.from[0].plugin)
        {
            let job = jobs.entry(h).or_insert_with(new_job);
            let j = job.lanes.len();
            job.lanes.push(HostLane {
                index: l,
                backend: b,
                leg: lane.leg,
                producers: lane
                    .from
                    .iter()
                    .map(|e| (e.plugin, e.port.clone()))
                    .collect(),
                consumers: lane.to.iter().map(|e| (e.plugin, e.port.clone())).collect(),
                keys,
                slot_size: lane.slot_size,
                capacity: lane.capacity,
                overflow: lane.overflow,
                sync: lane.sync,
                wait: sc.run.wait.name().into(),
            });
            for (p, e) in lane.from.iter().enumerate() {
                slots[e.plugin].push(Slot::Producer { lane: j, p });
            }
            for (q, e) in lane.to.iter().enumerate() {
                slots[e.plugin].push(Slot::Consumer { lane: j, q });
            }
            // The agent tells its own plugins of a lost peer; nothing to do here.
            channels.push(Box::new(NothingToDo));
            continue;
        }
        // Producers listen where the other hosts can reach them.
        let endpoints =
            if b.crosses_hosts() && multi && !(single && host_of(lane.from[0].plugin).is_none()) {
                let mut list = Vec::new();
                for f in &lane.from {
                    let addr = match host_of(f.plugin) {
                        Some(h) => {
                            let port = pools
                                .get_mut(&h)
                                .and_then(Vec::pop)
                                .context("the agent gave fewer ports than asked")?;
                            std::net::SocketAddr::new(sc.hosts[h].addr.ip(), port)
                        }
                        None => {
                            let listen = sc.run.listen.context(
                                "plugins on this machine link to other hosts: [run] listen (or \
                             --listen) must give this machine's address",
                            )?;
                            let (port, probe) = backend::free_port(listen.ip())
                                .with_context(|| format!("run.listen tcp/{listen}"))?;
                            held.push(probe);
                            std::net::SocketAddr::new(listen.ip(), port)
                        }
                    };
                    list.push(addr);
                }
                Some(list)
            } else {
                None
            };
        let desc = ChannelDesc {
            index: l,
            run_id,
            producers: lane.from.iter().map(endpoint).collect(),
            consumers: lane.to.iter().map(endpoint).collect(),
            keys,
            slot_size: lane.slot_size,
            capacity: lane.capacity,
            overflow: lane.overflow,
            sync: lane.sync,
            wait: sc.run.wait,
            processes: n,
            clocks: endpoints.as_ref().map(|_| {
                let offset = |e: &crate::scenario::Endpoint| {
                    host_of(e.plugin)
                        .and_then(|h| agents[h].as_ref())
                        .map_or(0, |a| a.offset_ns)
                };
                (
                    lane.from.iter().map(offset).collect(),
                    lane.to.iter().map(offset).collect(),
                )
            }),
            endpoints,
            seal: sc.run.seal,
        };
        let planned = backend::of(b)
            .plan(&desc, &mut fds)
            .with_context(|| format!("channel {c} on `{}`", b.name()))?;
        for (p, (from, mut spec)) in lane.from.iter().zip(planned.producers).enumerate() {
            spec.leg = lane.leg;
            slots[from.plugin].push(Slot::Given(spec));
            roles[from.plugin].push((l, Role::Producer(p)));
        }
        for (q, (to, mut spec)) in lane.to.iter().zip(planned.consumers).enumerate() {
            spec.leg = lane.leg;
            slots[to.plugin].push(Slot::Given(spec));
            roles[to.plugin].push((l, Role::Consumer(q)));
        }
        channels.push(planned.peers);
    }
    drop(held);
    let mut specs = Vec::with_capacity(n);
    for (i, (p, slots)) in sc.plugins.iter().zip(slots).enumerate() {
        let mut config = p.config.clone();
        config.insert("wasm-ipc.plugin".into(), p.name.clone());
        config.insert("wasm-ipc.backend".into(), kind.name().into());
        config.insert("wasm-ipc.repeat".into(), repeat.to_string());
        if let Some(instance) = &p.instance {
            config.insert("wasm-ipc.instance".into(), instance.index.to_string());
            config.insert("wasm-ipc.instances".into(), instance.count.to_string());
        }
        let mut spec = WorkerSpec {
            plugin: p.name.clone(),
            config,
            ports: Vec::new(),
            port_fds: u32::try_from(fds.count(i))?,
            limits: p.limits,
            verify: sc.run.verify == Verify::Full,
            seed: sc.run.seed,
            deadline_ns,
            timeout: format!("{:?}", sc.run.timeout),
            // A worker with a `zenoh` port asks for its certificate before it opens them.
            seal: sc.run.seal
                && slots
                    .iter()
                    .any(|s| matches!(s, Slot::Given(p) if p.backend == BackendKind::Zenoh)),
        };
        match p.host {
            None => {
                spec.ports = slots
                    .into_iter()
                    .map(|s| match s {
                        Slot::Given(spec) => Ok(spec),
                        _ => anyhow::bail!("a port of a local plugin left to an agent"),
                    })
                    .collect::<anyhow::Result<_>>()?;
                sort_ports(&mut spec.ports);
                specs.push(Some(spec));
            }
            Some(h) => {
                let job = jobs.entry(h).or_insert_with(new_job);
                job.workers.push(HostWorker {
                    index: i,
                    module: String::new(),
                    spec,
                    slots,
                });
                specs.push(None);
            }
        }
    }
    Ok(Plan {
        specs,
        fds,
        channels,
        roles,
        jobs,
        links,
    })
}

/// Ports in name order, as the plugin sees them; a request/reply port's legs stay in lane
/// order (the sort is stable).
pub(crate) fn sort_ports(ports: &mut [PortSpec]) {
    ports.sort_by(|a, b| a.name.cmp(&b.name));
}
