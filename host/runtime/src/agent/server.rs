//! `wasm-ipc agent`: runs the plugins a supervisor on another machine places on this one.
//!
//! The agent listens on one Zenoh endpoint and answers the control requests of
//! [`super::client`]: it proves and checks the shared token, keeps the modules it is sent
//! (compiling them itself), hands out free ports on its address, plans the lanes whose plugins
//! all run here on a local backend (`shm`, `msg`), starts each plugin in its own worker
//! process exactly as the supervisor does on its own machine, relays control messages and
//! reports what its workers say. It serves one supervisor at a time. Workers are its
//! children: they die with it (`PR_SET_PDEATHSIG`), and it kills them when the run ends, when
//! the supervisor is lost, or past the deadline's grace.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use zenoh::Wait;

use crate::agent::{
    self, AGENT_ALIVE, Answer, Envelope, EventLine, HostEvent, HostJob, PROTOCOL, RPC_KEY, Request,
    Slot,
};
use crate::backend::{self, Fds, PeerLost, PortSpec};
use crate::control::{self, FromWorker, Status, ToWorker};
use crate::plugin::{self, cache};
use crate::supervisor::{self, Event, Role, spawn_worker};
use crate::sys::{self, Pidfd};

/// How long workers get past the deadline before the agent kills them on its own.
const GRACE: Duration = Duration::from_secs(3);

macro_rules! say {
    ($($arg:tt)*) => { eprintln!("wasm-ipc agent: {}", format!($($arg)*)) };
}

/// Runs the agent until SIGINT or SIGTERM.
pub fn main(listen: std::net::SocketAddr, token: Vec<u8>, exe: PathBuf) -> anyhow::Result<()> {
    let _ = supervisor::was_interrupted();
    crate::seal::watch_refusals(
        "wasm-ipc agent: refused a connection without a certificate of our token".into(),
    )?;
    let config = agent::control_config(Some(listen), None, &token, "wasm-ipc agent")?;
    let session = zenoh::open(config)
        .wait()
        .map_err(|e| anyhow::anyhow!("listening on tls/{listen}: {e}"))?;
    let _alive = session
        .liveliness()
        .declare_token(AGENT_ALIVE)
        .wait()
        .map_err(|e| anyhow::anyhow!("declaring the agent's token: {e}"))?;
    let queryable = session
        .declare_queryable(RPC_KEY)
        .wait()
        .map_err(|e| anyhow::anyhow!("declaring {RPC_KEY}: {e}"))?;
    let mut agent = Agent {
        token,
        exe,
        listen,
        session,
        engine: plugin::engine()?,
        cache: cache::cache_dir(),
        modules: HashMap::new(),
        pending: Vec::new(),
        serving: None,
    };
    say!(
        "listening on tls/{listen}, its certificates from the token (pid {})",
        std::process::id()
    );
    while !supervisor::was_interrupted() {
        match queryable.recv_timeout(Duration::from_millis(20)) {
            Ok(Some(query)) => agent.handle(&query),
            Ok(None) => {}
            Err(e) => anyhow::bail!("the request queue closed: {e}"),
        }
        agent.housekeeping();
    }
    say!("interrupted: ending");
    agent.end_serving("the agent was interrupted");
    Ok(())
}

struct Agent {
    token: Vec<u8>,
    exe: PathBuf,
    listen: std::net::SocketAddr,
    session: zenoh::Session,
    engine: wasmtime::Engine,
    cache: Option<PathBuf>,
    modules: HashMap<String, cache::Compiled>,
    /// Hellos not yet proven: (session, our nonce, theirs); the last few only.
    pending: Vec<(String, [u8; 32], Vec<u8>)>,
    serving: Option<Serving>,
}

/// The supervisor being served.
struct Serving {
    id: String,
    key: [u8; 32],
    seq: u64,
    since: Instant,
    /// Its token was seen / has gone.
    seen: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    events: Arc<Events>,
    _watch: zenoh::pubsub::Subscriber<()>,
    current: Option<HostRun>,
}

/// Where events go: the supervisor's subscriber, sealed with the session key.
struct Events {
    publisher: zenoh::pubsub::Publisher<'static>,
    key: [u8; 32],
    seq: Mutex<u64>,
}

impl Events {
    fn send(&self, run: u32, event: HostEvent) {
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        let line = EventLine {
            run,
            seq: *seq,
            event,
        };
        if let Ok(json) = serde_json::to_vec(&line) {
            let _ = self
                .publisher
                .put(agent::seal(&self.key, &json, &[]))
                .wait();
        }
    }
}

/// One run's workers here.
struct HostRun {
    run: u32,
    offset_ns: i64,
    deadline_ns: u64,
    workers: HashMap<usize, (Pidfd, UnixStream)>,
    /// Reaped workers (set by the forwarder).
    reaped: Arc<Mutex<Vec<usize>>>,
    forwarder: std::thread::JoinHandle<()>,
}

/// `t` of the supervisor's clock in ours (`offset` = ours − theirs).
fn to_ours(t: u64, offset: i64) -> u64 {
    u64::try_from((i128::from(t) + i128::from(offset)).max(0)).unwrap_or(u64::MAX)
}

fn to_theirs(t: u64, offset: i64) -> u64 {
    if t == 0 {
        return 0;
    }
    u64::try_from((i128::from(t) - i128::from(offset)).max(0)).unwrap_or(u64::MAX)
}

impl Agent {
    fn handle(&mut self, query: &zenoh::query::Query) {
        let bytes = query
            .payload()
            .map(|p| p.to_bytes().into_owned())
            .unwrap_or_default();
        let (answer, key) = match self.answer(&bytes) {
            Ok(r) => r,
            Err(e) => {
                say!("refused a request: {e:#}");
                (Answer::Refused(format!("{e:#}")), None)
            }
        };
        let json = serde_json::to_vec(&answer).unwrap_or_default();
        let sealed = agent::seal(key.as_ref().map_or(&[][..], |k| &k[..]), &json, &[]);
        let _ = query.reply(RPC_KEY, sealed).wait();
    }

    /// The answer to one request, and the key to seal it with.
    fn answer(&mut self, bytes: &[u8]) -> anyhow::Result<(Answer, Option<[u8; 32]>)> {
        let (json, blob) = agent::unseal(None, bytes)?;
        let envelope: Envelope =
            serde_json::from_slice(json).context("a request we cannot read")?;
        match &envelope.request {
            Request::Hello {
                protocol: _,
                version: _,
                nonce,
            } => {
                if let Some(s) = &self.serving {
                    return Ok((
                        Answer::Refused(format!(
                            "busy: this agent serves another supervisor's run (for {} s now); \
                             an agent serves one at a time",
                            s.since.elapsed().as_secs()
                        )),
                        None,
                    ));
                }
                let theirs = agent::unhex(nonce).context("the nonce is not hex")?;
                let ours = agent::nonce()?;
                self.pending.retain(|(id, ..)| *id != envelope.session);
                self.pending.push((envelope.session.clone(), ours, theirs));
                if self.pending.len() > 8 {
                    self.pending.remove(0);
                }
                return Ok((
                    Answer::Hello {
                        protocol: PROTOCOL,
                        version: env!("CARGO_PKG_VERSION").into(),
                        nonce: agent::hex(&ours),
                    },
                    None,
                ));
            }
            Request::Auth { proof } => {
                let Some(k) = self
                    .pending
                    .iter()
                    .position(|(id, ..)| *id == envelope.session)
                else {
                    anyhow::bail!("no hello from this session");
                };
                let (id, ours, theirs) = self.pending.remove(k);
                let proof = agent::unhex(proof).unwrap_or_default();
                if !agent::same_mac(
                    &self.token,
                    &[b"wasm-ipc proof ", b"supervisor", &ours, &theirs],
                    &proof,
                ) {
                    say!(
                        "refused a supervisor (session {id}): its proof does not match our \
                         token"
                    );
                    return Ok((
                        Answer::Refused(
                            "wrong token: the proof does not match the agent's token".into(),
                        ),
                        None,
                    ));
                }
                if self.serving.is_some() {
                    return Ok((
                        Answer::Refused("busy: serving another supervisor".into()),
                        None,
                    ));
                }
                let key = agent::session_key(&self.token, &ours, &theirs);
                self.serve(&id, key)?;
                say!("serving supervisor session {id}");
                let mine = agent::proof(&self.token, "agent", &ours, &theirs);
                return Ok((
                    Answer::Welcome {
                        proof: agent::hex(&mine),
                    },
                    Some(key),
                ));
            }
            _ => {}
        }
        let Some(serving) = &mut self.serving else {
            anyhow::bail!("not serving any supervisor: say hello and prove the token first");
        };
        anyhow::ensure!(
            envelope.session == serving.id,
            "busy: this agent serves another supervisor's run"
        );
        agent::unseal(Some(&serving.key), bytes)?;
        anyhow::ensure!(
            envelope.seq > serving.seq,
            "request {} arrived after {}: replayed or reordered",
            envelope.seq,
            serving.seq
        );
        serving.seq = envelope.seq;
        let key = Some(serving.key);
        let answer = match envelope.request {
            Request::Clock => Answer::Clock {
                now_ns: sys::now_ns(),
            },
            Request::Ports { count } => {
                anyhow::ensure!(count <= 4096, "{count} ports asked at once");
                let mut ports = Vec::new();
                for _ in 0..count {
                    let (port, _probe) = backend::free_port(self.listen.ip())?;
                    ports.push(port);
                }
                Answer::Ports { ports }
            }
            Request::Need { hashes } => Answer::Missing {
                hashes: hashes
                    .into_iter()
                    .filter(|h| !self.modules.contains_key(h))
                    .collect(),
            },
            Request::Module { hash } => {
                let got = supervisor::module_hash(blob);
                anyhow::ensure!(got == hash, "module bytes hash to {got}, not {hash}");
                let tag = format!("wasm-ipc:agent:module:{hash}");
                let compiled =
                    cache::load_or_compile(&self.engine, blob, &tag, self.cache.as_deref())
                        .with_context(|| format!("compiling module {hash}"))?;
                plugin::check_code(&self.engine, &compiled.code, false)
                    .with_context(|| format!("module {hash}"))?;
                self.modules.insert(hash, compiled);
                Answer::Ok
            }
            Request::Start(job) => match self.start(*job) {
                Ok(workers) => Answer::Started { workers },
                Err(e) => Answer::Refused(format!("{e:#}")),
            },
            Request::Tell { workers, msg } => {
                if let Some(site) = self.serving.as_mut().and_then(|s| s.current.as_mut()) {
                    let msg = match msg {
                        ToWorker::Go { release_ns } => ToWorker::Go {
                            release_ns: to_ours(release_ns, site.offset_ns),
                        },
                        other => other,
                    };
                    for w in workers {
                        if let Some((_, ctrl)) = site.workers.get_mut(&w) {
                            let _ = control::send(ctrl, &msg);
                        }
                    }
                }
                Answer::Ok
            }
            Request::Kill { worker } => {
                if let Some(site) = self.serving.as_ref().and_then(|s| s.current.as_ref())
                    && let Some((pidfd, _)) = site.workers.get(&worker)
                {
                    pidfd.kill();
                }
                Answer::Ok
            }
            Request::End => {
                self.end_site();
                Answer::Ok
            }
            Request::Bye => {
                self.end_serving("the supervisor said goodbye");
                Answer::Ok
            }
            Request::Hello { .. } | Request::Auth { .. } => unreachable!("answered above"),
        };
        Ok((answer, key))
    }

    fn serve(&mut self, id: &str, key: [u8; 32]) -> anyhow::Result<()> {
        let publisher = self
            .session
            .declare_publisher(format!("wasm-ipc/sv/{id}/events"))
            .congestion_control(zenoh::qos::CongestionControl::Block)
            .wait()
            .map_err(|e| anyhow::anyhow!("declaring the events publisher: {e}"))?;
        let seen = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicBool::new(false));
        let watch = {
            let (seen, lost) = (seen.clone(), lost.clone());
            self.session
                .liveliness()
                .declare_subscriber(format!("wasm-ipc/sv/{id}"))
                .history(true)
                .callback(move |s| match s.kind() {
                    zenoh::sample::SampleKind::Put => seen.store(true, Ordering::Release),
                    zenoh::sample::SampleKind::Delete => lost.store(true, Ordering::Release),
                })
                .wait()
                .map_err(|e| anyhow::anyhow!("watching the supervisor: {e}"))?
        };
        self.serving = Some(Serving {
            id: id.to_string(),
            key,
            seq: 0,
            since: Instant::now(),
            seen,
            lost,
            events: Arc::new(Events {
                publisher,
                key,
                seq: Mutex::new(0),
            }),
            _watch: watch,
            current: None,
        });
        Ok(())
    }

    /// Plans this host's lanes, starts its workers, and forwards what they say.
    fn start(&mut self, job: HostJob) -> anyhow::Result<Vec<(usize, i32, u64)>> {
        let serving = self.serving.as_mut().context("not serving")?;
        if let Some(site) = &serving.current {
            anyhow::bail!("run {} is still going here", site.run);
        }
        let n = job.processes;
        let mut fds = Fds::new(n);
        // Per lane, its producers' and consumers' ports, each taken once by its worker.
        type Ports = Vec<Option<PortSpec>>;
        let mut planned: Vec<(Ports, Ports)> = Vec::new();
        let mut channels: Vec<Box<dyn PeerLost>> = Vec::new();
        let mut roles: HashMap<usize, Vec<(usize, Role)>> = HashMap::new();
        for (j, lane) in job.lanes.iter().enumerate() {
            anyhow::ensure!(
                !lane.backend.crosses_hosts(),
                "an agent plans `shm` and `msg` lanes, not `{}`",
                lane.backend.name()
            );
            for (plugin, _) in lane.producers.iter().chain(&lane.consumers) {
                anyhow::ensure!(
                    job.workers.iter().any(|w| w.index == *plugin),
                    "lane {} names a plugin that is not placed here",
                    lane.index
                );
            }
            let desc = lane.desc(&job.run_id, n)?;
            let plan = backend::of(lane.backend).plan(&desc, &mut fds)?;
            for (p, (plugin, _)) in lane.producers.iter().enumerate() {
                roles
                    .entry(*plugin)
                    .or_default()
                    .push((j, Role::Producer(p)));
            }
            for (q, (plugin, _)) in lane.consumers.iter().enumerate() {
                roles
                    .entry(*plugin)
                    .or_default()
                    .push((j, Role::Consumer(q)));
            }
            let with_leg = |specs: Vec<PortSpec>| {
                specs
                    .into_iter()
                    .map(|mut s| {
                        s.leg = lane.leg;
                        Some(s)
                    })
                    .collect::<Vec<_>>()
            };
            planned.push((with_leg(plan.producers), with_leg(plan.consumers)));
            channels.push(plan.peers);
        }
        let deadline_ns = job
            .workers
            .first()
            .map_or(u64::MAX, |w| to_ours(w.spec.deadline_ns, job.offset_ns));
        let (tx, rx) = mpsc::channel::<Event>();
        let mut workers = HashMap::new();
        let mut started = Vec::new();
        let mut failure = None;
        for w in job.workers {
            let i = w.index;
            let mut spec = w.spec;
            let mut ports = Vec::new();
            for slot in w.slots {
                let port = match slot {
                    Slot::Given(p) => Some(p),
                    Slot::Producer { lane, p } => planned
                        .get_mut(lane)
                        .and_then(|l| l.0.get_mut(p))
                        .and_then(Option::take),
                    Slot::Consumer { lane, q } => planned
                        .get_mut(lane)
                        .and_then(|l| l.1.get_mut(q))
                        .and_then(Option::take),
                };
                ports.push(port.context("a port slot names no planned port")?);
            }
            supervisor::sort_ports(&mut ports);
            spec.ports = ports;
            spec.port_fds = u32::try_from(fds.count(i))?;
            spec.deadline_ns = to_ours(spec.deadline_ns, job.offset_ns);
            let Some(module) = self.modules.get(&w.module) else {
                failure = Some(anyhow::anyhow!("module {} was never sent here", w.module));
                break;
            };
            match spawn_worker(
                &self.exe,
                &job.run_id,
                i,
                module.memfd.as_fd(),
                &spec,
                fds.take(i),
                &tx,
            ) {
                Ok(s) => {
                    started.push((i, s.pid, to_theirs(s.spawn_ns, job.offset_ns)));
                    workers.insert(i, (s.pidfd, s.ctrl));
                }
                Err(e) => {
                    failure = Some(e.context(format!("starting plugin `{}`", spec.plugin)));
                    break;
                }
            }
        }
        drop(tx);
        drop(fds);
        let reaped = Arc::new(Mutex::new(Vec::new()));
        let forwarder = {
            let events = serving.events.clone();
            let reaped = reaped.clone();
            let (run, offset) = (job.run, job.offset_ns);
            std::thread::spawn(move || {
                forward(&rx, &events, run, offset, &reaped, &channels, &roles)
            })
        };
        serving.current = Some(HostRun {
            run: job.run,
            offset_ns: job.offset_ns,
            deadline_ns,
            workers,
            reaped,
            forwarder,
        });
        if let Some(e) = failure {
            self.end_site();
            return Err(e);
        }
        say!("run {}: started {} workers", job.run, started.len());
        Ok(started)
    }

    /// Kills what is left of the current run and waits (bounded) until its workers are reaped.
    fn end_site(&mut self) {
        let Some(serving) = &mut self.serving else {
            return;
        };
        let Some(site) = serving.current.take() else {
            return;
        };
        for (pidfd, _) in site.workers.values() {
            pidfd.kill();
        }
        let until = Instant::now() + GRACE;
        while !site.forwarder.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn end_serving(&mut self, why: &str) {
        self.end_site();
        if let Some(s) = self.serving.take() {
            say!("session {} ended: {why}", s.id);
        }
    }

    fn housekeeping(&mut self) {
        let Some(serving) = &mut self.serving else {
            return;
        };
        let lost = serving.lost.load(Ordering::Acquire)
            || (!serving.seen.load(Ordering::Acquire)
                && serving.since.elapsed() > Duration::from_secs(5));
        if lost {
            self.end_serving("the supervisor was lost: its workers here were killed");
            return;
        }
        if let Some(site) = &mut serving.current {
            if site.deadline_ns == u64::MAX {
                return;
            }
            let grace = u64::try_from(GRACE.as_nanos()).unwrap_or(u64::MAX);
            if sys::now_ns() > site.deadline_ns.saturating_add(grace) {
                let reaped = site
                    .reaped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                for (i, (pidfd, _)) in &site.workers {
                    if !reaped.contains(i) {
                        pidfd.kill();
                    }
                }
            }
        }
    }
}

/// Forwards one run's worker events to the supervisor (times in its clock) and tells this
/// host's lanes when a worker of theirs failed.
fn forward(
    rx: &mpsc::Receiver<Event>,
    events: &Events,
    run: u32,
    offset: i64,
    reaped: &Mutex<Vec<usize>>,
    channels: &[Box<dyn PeerLost>],
    roles: &HashMap<usize, Vec<(usize, Role)>>,
) {
    // Per worker: (outcome status, exited, control closed, failure told).
    let mut state: HashMap<usize, (Option<Status>, bool, bool, bool)> = HashMap::new();
    while let Ok(e) = rx.recv() {
        let (i, event) = match e {
            Event::Msg(i, FromWorker::Ready { ready_ns }) => (
                i,
                HostEvent::Msg {
                    worker: i,
                    msg: FromWorker::Ready {
                        ready_ns: to_theirs(ready_ns, offset),
                    },
                },
            ),
            Event::Msg(i, FromWorker::Done(mut o)) => {
                o.end_ns = to_theirs(o.end_ns, offset);
                o.ready_at_ns = to_theirs(o.ready_at_ns, offset);
                state.entry(i).or_default().0 = Some(o.status);
                (
                    i,
                    HostEvent::Msg {
                        worker: i,
                        msg: FromWorker::Done(o),
                    },
                )
            }
            // No time in it: as it came.
            Event::Msg(i, msg @ FromWorker::Csr { .. }) => (i, HostEvent::Msg { worker: i, msg }),
            Event::CtrlClosed(i) => {
                state.entry(i).or_default().2 = true;
                (i, HostEvent::CtrlClosed { worker: i })
            }
            Event::Exited(i, usage) => {
                state.entry(i).or_default().1 = true;
                reaped.lock().unwrap_or_else(|e| e.into_inner()).push(i);
                (i, HostEvent::Exited { worker: i, usage })
            }
            Event::HostLost(..) => continue,
        };
        // A failed worker's local lanes learn of it at once, as on the supervisor's machine.
        let s = state.entry(i).or_default();
        let failed = match s.0 {
            Some(status) => status == Status::Failed,
            None => s.1 && s.2,
        };
        if failed && !s.3 {
            s.3 = true;
            supervisor::tell_lost(channels, roles.get(&i).map_or(&[], Vec::as_slice));
        }
        events.send(run, event);
    }
}
