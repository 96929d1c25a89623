//! The supervisor: compiles each module once, wires the links of a run, starts one worker
//! process per plugin instance, releases them together, enforces the deadline, and collects
//! what they measured.
//!
//! Nothing outlives a run: link sockets and module memfds are anonymous and closed by every
//! process that holds them; workers die with the supervisor (`PR_SET_PDEATHSIG`, set from the
//! thread that lives for the whole run) and are killed through pidfds at the deadline's grace.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;

use crate::backend::shm::{Control, Layout, Wait};
use crate::backend::{Direction, LinkSpec, PortSpec, ShmPort};
use crate::plugin::{self, cache};
use crate::report::{self, RunReport};
use crate::scenario::{BackendKind, Scenario, Verify, WaitMode};
use crate::sys::{self, ChildUsage, Pidfd};
use crate::worker::{FromWorker, Outcome, Status, ToWorker, WorkerSpec};

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

    /// Modules compiled (not loaded from the cache) for this session.
    pub fn modules_compiled(&self) -> usize {
        self.modules_compiled
    }

    /// The run id that tags this session's memfds and worker arguments.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Runs `sc` once on `backend`; failures are in the report, never an `Err`.
    pub fn run(&self, sc: &Scenario, backend: BackendKind, repeat: u32) -> RunReport {
        let start_ns = sys::now_ns();
        let deadline_ns = start_ns + sc.run.timeout.as_nanos() as u64;
        let mut run = RunState::default();
        let result = self.start_and_supervise(sc, backend, repeat, deadline_ns, &mut run);
        report::build(
            sc,
            backend,
            repeat,
            self.modules_compiled,
            &run,
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
            controls,
            roles,
        } = plan(sc, repeat, backend, deadline_ns, &self.run_id)?;
        run.controls = controls;
        run.roles = roles;
        let (tx, rx) = mpsc::channel::<Event>();
        for (i, spec) in specs.into_iter().enumerate() {
            let plugin = &sc.plugins[i];
            let link_fds = std::mem::take(&mut fds[i]);
            match self.spawn(i, &plugin.name, &plugin.wasm, spec, link_fds, &tx) {
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
            .stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?));
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
        let pid = child.id() as i32;
        // The wait thread reaps the child; std's handle is not used for waiting.
        std::mem::forget(child);
        let pidfd = Pidfd::open(pid)?;
        let mut ctrl = UnixStream::from(ours);
        let mut line = serde_json::to_vec(&spec)?;
        line.push(b'\n');
        // A worker that died at once shows up through its exit; the write error adds nothing.
        let _ = ctrl.write_all(&line);
        {
            let events = events.clone();
            let reader = ctrl.try_clone()?;
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    match serde_json::from_str::<FromWorker>(&line) {
                        Ok(msg) => {
                            let _ = events.send(Event::Msg(i, msg));
                        }
                        Err(_) => break,
                    }
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
            name: name.to_string(),
            pid,
            pidfd,
            ctrl,
            spawn_ns,
            ready_ns: None,
            outcome: None,
            usage: None,
            told_failure: false,
            ctrl_closed: false,
            killed: None,
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
pub(crate) struct Worker {
    pub name: String,
    pub pid: i32,
    pidfd: Pidfd,
    ctrl: UnixStream,
    pub spawn_ns: u64,
    pub ready_ns: Option<u64>,
    pub outcome: Option<Outcome>,
    pub usage: Option<ChildUsage>,
    told_failure: bool,
    ctrl_closed: bool,
    /// Why the supervisor killed it, if it did.
    pub killed: Option<String>,
}

impl Worker {
    fn tell(&mut self, msg: &ToWorker) {
        if let Ok(mut line) = serde_json::to_vec(msg) {
            line.push(b'\n');
            let _ = self.ctrl.write_all(&line);
        }
    }

    /// Ended badly by its own doing (not because a peer failed or the run timed out, which
    /// every worker sees for itself). A worker that exited is judged only once its control
    /// socket is drained too: its final report may arrive after the exit.
    pub fn failed(&self) -> bool {
        match &self.outcome {
            Some(o) => o.status == Status::Failed,
            None => self.usage.is_some() && self.ctrl_closed,
        }
    }
}

/// What a run's supervision gathered.
#[derive(Debug, Default)]
pub(crate) struct RunState {
    pub workers: Vec<Worker>,
    pub release_ns: Option<u64>,
    pub interrupted: bool,
    /// `shm`: each channel's control block, so that a failure reaches the rings at once.
    controls: Vec<Option<Arc<Control>>>,
    /// `shm`: per worker, (channel, role) for failure propagation.
    roles: Vec<Vec<(usize, Role)>>,
}

impl RunState {
    /// Marks worker `i` failed in every ring it takes part in and wakes its peers (`shm`; on
    /// `msg` the closed sockets say it).
    fn propagate_failure(&self, i: usize) {
        for (c, role) in self.roles.get(i).into_iter().flatten() {
            let Some(ctl) = &self.controls[*c] else {
                continue;
            };
            match role {
                Role::Producer(p) => ctl.fail_producer(*p),
                Role::Consumer(q) => ctl.detach_consumer(*q),
            }
        }
    }
}

/// A worker's place in an `shm` channel.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Producer(u32),
    Consumer(u32),
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
                run.workers[i].ready_ns = Some(ready_ns)
            }
            Ok(Event::Msg(i, FromWorker::Done(outcome))) => run.workers[i].outcome = Some(*outcome),
            Ok(Event::Exited(i, usage)) => {
                run.workers[i].usage = Some(usage);
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
            && run.workers.iter().all(|w| w.ready_ns.is_some())
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
                    let reason = failure_summary(&run.workers[i]);
                    for (j, w) in run.workers.iter_mut().enumerate() {
                        if j != i && w.usage.is_none() {
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
        let kill_reason = if now > deadline_ns + GRACE.as_nanos() as u64 {
            Some("still running after the deadline and its grace period")
        } else if stop_sent_at.is_some_and(|t| now > t + GRACE.as_nanos() as u64) {
            Some("did not stop when asked")
        } else {
            None
        };
        if let Some(why) = kill_reason {
            for w in &mut run.workers {
                if w.usage.is_none() && w.killed.is_none() {
                    w.killed = Some(why.to_string());
                    w.pidfd.kill();
                }
            }
        }
    }
}

fn failure_summary(w: &Worker) -> String {
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
    fds: Vec<Vec<OwnedFd>>,
    controls: Vec<Option<Arc<Control>>>,
    roles: Vec<Vec<(usize, Role)>>,
}

/// Wires every channel of `sc` for `backend` — the one place that picks a backend.
fn plan(
    sc: &Scenario,
    repeat: u32,
    backend: BackendKind,
    deadline_ns: u64,
    run_id: &str,
) -> anyhow::Result<Plan> {
    let n = sc.plugins.len();
    let mut fds: Vec<Vec<OwnedFd>> = (0..n).map(|_| Vec::new()).collect();
    let mut give = |plugin: usize, fd: OwnedFd| -> i32 {
        fds[plugin].push(fd);
        4 + fds[plugin].len() as i32
    };
    let mut ports: Vec<BTreeMap<String, PortSpec>> = (0..n).map(|_| BTreeMap::new()).collect();
    let mut controls = Vec::new();
    let mut roles: Vec<Vec<(usize, Role)>> = (0..n).map(|_| Vec::new()).collect();
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    let wait = match sc.run.wait {
        WaitMode::Spin => Wait::Spin,
        WaitMode::Futex => Wait::Futex,
        // More processes than CPUs: a spinning waiter would hold the CPU its peer needs.
        WaitMode::Adaptive if n > cpus => Wait::Adaptive {
            spin_ns: 5_000,
            yield_: true,
        },
        WaitMode::Adaptive => Wait::Adaptive {
            spin_ns: 50_000,
            yield_: false,
        },
    };
    for (c, ch) in sc.channels.iter().enumerate() {
        let keys: Vec<Vec<String>> = ch
            .from
            .iter()
            .map(|f| ch.to.iter().map(|t| link_key(sc, c, f, t)).collect())
            .collect();
        let base = |name: &str, direction, window_len: u32| PortSpec {
            name: name.to_string(),
            direction,
            channel: c,
            slot_size: ch.slot_size,
            capacity: ch.capacity,
            window_len,
            links: Vec::new(),
            shm: None,
        };
        match backend {
            BackendKind::Msg => {
                let window_len = (ch.slot_size as u64).div_ceil(65536) as u32 * 65536;
                for (p, from) in ch.from.iter().enumerate() {
                    for (q, to) in ch.to.iter().enumerate() {
                        let (a, b) = sys::stream_pair().context("creating a link socket pair")?;
                        let key = keys[p][q].clone();
                        let fd = give(from.plugin, a);
                        ports[from.plugin]
                            .entry(from.port.clone())
                            .or_insert_with(|| base(&from.port, Direction::Out, window_len))
                            .links
                            .push(LinkSpec {
                                key: key.clone(),
                                fd,
                            });
                        let fd = give(to.plugin, b);
                        ports[to.plugin]
                            .entry(to.port.clone())
                            .or_insert_with(|| base(&to.port, Direction::In, window_len))
                            .links
                            .push(LinkSpec { key, fd });
                    }
                }
            }
            BackendKind::Shm => {
                let layout = Layout::new(
                    ch.from.len() as u32,
                    ch.to.len() as u32,
                    ch.capacity,
                    ch.slot_size,
                );
                let (ctl_file, ctl) =
                    Control::create(&format!("wasm-ipc:{run_id}:control:{c}"), layout)
                        .context("creating a control block")?;
                let ctl_fd = OwnedFd::from(ctl_file);
                let slots: Vec<std::fs::File> = (0..ch.from.len())
                    .map(|p| {
                        sys::sized_memfd(
                            &format!("wasm-ipc:{run_id}:slots:{c}:{p}"),
                            layout.ring_len as usize,
                        )
                    })
                    .collect::<std::io::Result<_>>()
                    .context("creating a slot area")?;
                for (p, from) in ch.from.iter().enumerate() {
                    let control_fd = give(from.plugin, ctl_fd.try_clone()?);
                    let slot_fd = give(from.plugin, OwnedFd::from(slots[p].try_clone()?));
                    let mut spec = base(&from.port, Direction::Out, layout.ring_len);
                    spec.links = keys[p]
                        .iter()
                        .map(|k| LinkSpec {
                            key: k.clone(),
                            fd: -1,
                        })
                        .collect();
                    spec.shm = Some(ShmPort {
                        control_fd,
                        slot_fds: vec![slot_fd],
                        index: p as u32,
                        layout,
                        wait,
                    });
                    ports[from.plugin].insert(from.port.clone(), spec);
                    roles[from.plugin].push((c, Role::Producer(p as u32)));
                }
                for (q, to) in ch.to.iter().enumerate() {
                    let control_fd = give(to.plugin, ctl_fd.try_clone()?);
                    // Consumers get read-only descriptors: no mapping of them can be writable.
                    let slot_fds = slots
                        .iter()
                        .map(|f| Ok(give(to.plugin, OwnedFd::from(sys::reopen_read_only(f)?))))
                        .collect::<std::io::Result<Vec<i32>>>()?;
                    let mut spec = base(
                        &to.port,
                        Direction::In,
                        layout.ring_len * ch.from.len() as u32,
                    );
                    spec.links = keys
                        .iter()
                        .map(|k| LinkSpec {
                            key: k[q].clone(),
                            fd: -1,
                        })
                        .collect();
                    spec.shm = Some(ShmPort {
                        control_fd,
                        slot_fds,
                        index: q as u32,
                        layout,
                        wait,
                    });
                    ports[to.plugin].insert(to.port.clone(), spec);
                    roles[to.plugin].push((c, Role::Consumer(q as u32)));
                }
                controls.push(Some(Arc::new(ctl)));
                continue;
            }
        }
        controls.push(None);
    }
    let specs = sc
        .plugins
        .iter()
        .zip(ports)
        .map(|(p, ports)| {
            let mut config = p.config.clone();
            config.insert("wasm-ipc.plugin".into(), p.name.clone());
            config.insert("wasm-ipc.backend".into(), backend.name().into());
            config.insert("wasm-ipc.repeat".into(), repeat.to_string());
            WorkerSpec {
                plugin: p.name.clone(),
                config,
                ports: ports.into_values().collect(),
                verify: sc.run.verify == Verify::Full,
                seed: sc.run.seed,
                deadline_ns,
                timeout: format!("{:?}", sc.run.timeout),
            }
        })
        .collect();
    Ok(Plan {
        specs,
        fds,
        controls,
        roles,
    })
}
