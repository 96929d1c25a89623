//! `zenoh`: copied messages over the Zenoh engine (TCP), the backend that can cross machines.
//!
//! **Sessions.** Every zenoh port opens its own Zenoh session in its worker, in peer mode with
//! scouting off and explicit endpoints: a producer port listens on the endpoint the supervisor
//! gave it (`ZenohParams::listen`), a consumer port connects to its producers' endpoints
//! (`ZenohParams::connect`). Data therefore takes one TCP hop, producer to consumer, with no
//! router between them. The engine's runtimes are process-wide; the supervisor hands them
//! over to one thread ([`RUNTIME`]). The endpoints are on 127.0.0.1 for now.
//!
//! **Keys**, under `wasm-ipc/<run>/<lane>/`: link `p → q` publishes on `<p>/<q>` and returns
//! credits on `<p>/<q>/credit`; each producer holds the liveliness token `alive/p/<p>`, each
//! consumer `alive/q/<q>`. A token vanishes when its session ends, gracefully or because the
//! process died, after everything that session sent: that is how a peer's failure is seen
//! (no supervisor help is needed: [`NothingToDo`]).
//!
//! **Capacity is messages in flight per link**, as on the other backends: a producer holds
//! `capacity` credits per link and the consumer returns them in batches, on the credit key.
//! Publications are reliable with `CongestionControl::Block`; with credits no queue in the
//! engine ever holds more than `capacity` messages of a link.
//!
//! **Start.** Nothing is published before it can arrive: [`Sender::connect`] waits until
//! every link's data publication matches its consumer's subscription and every consumer's
//! token is seen; [`Receiver::connect`] until every credit publication matches and every
//! producer's token is seen. Workers call both before `Ready`, so the barrier opens on a
//! connected channel.
//!
//! **End.** `close` publishes an end message on every link and waits until each consumer's
//! process has it (an empty message on the credit key, sent as soon as the end message arrives,
//! whatever the plugin is doing), since a session that ends drops what its engine has not sent
//! yet.
//!
//! **Nothing blocks the engine's thread.** Every runtime of the engine is handed over to one
//! thread, which also runs the subscribers' callbacks. A callback only passes what it got on
//! (a channel send): data to the worker's thread, an end's acknowledgement to the port's
//! acker thread, which makes the `put`. It never `put`s itself: a blocking put there waits for
//! a free batch that only that same thread can free, so it stalls for the engine's
//! `wait_before_close` (5 s), the engine then closes the transport, and the session's close
//! can deadlock on the pipeline it left locked (an end acknowledged from the callback did
//! exactly that, in 5 of 68 runs of 20,000 4 KiB messages).
//!
//! **Copies** counted: the window into the engine's buffer (`publish`) and the delivered
//! bytes into the consumer's window (`receive`), each through [`Window`]'s copy primitives.
//! The engine's own copies (into its batches, and the kernel's socket copies) are not counted.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use zenoh::Wait;
use zenoh::bytes::ZBytes;
use zenoh::qos::CongestionControl;
use zenoh::sample::{Sample, SampleKind};

use super::credit::{self, Credits, Inputs, LinkState, Spin};
use super::{
    Backend, ChannelDesc, ChannelPlan, Counters, Delivery, Direction, FdSource, Fds, NothingToDo,
    Offered, Outgoing, PortError, PortSpec, Receiver, Sender, Stop, Waited,
};
use crate::scenario::{BackendKind, Overflow};
use crate::sys::{self, CopyMeter, Window};

/// The engine's threads in a worker, set through its environment (`ZENOH_RUNTIME`, read once
/// when the first session opens): every runtime of the engine hands over to one worker thread,
/// instead of six threads per process contending for the machine's cores with the plugins.
pub const RUNTIME: &str = "(app: (worker_threads: 1), rx: (handover: app), acc: (handover: app), \
                           net: (handover: app), tx: (handover: app))";

/// How long a blocked call sleeps before it looks at the stop and the deadline again.
const SLICE: Duration = Duration::from_millis(10);

/// The `zenoh` backend.
#[derive(Debug)]
pub struct Zenoh;

/// What a `zenoh` port's spec carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZenohParams {
    /// The key prefix of the port's lane: `wasm-ipc/<run>/<lane>`.
    pub prefix: String,
    /// This endpoint's index among the lane's producers (output) or consumers (input).
    pub index: usize,
    /// Indices of the other side's endpoints, one per link, in link order.
    pub peers: Vec<usize>,
    /// A producer's listening endpoint (`tcp/IP:PORT`).
    #[serde(default)]
    pub listen: Option<String>,
    /// A consumer's producers' endpoints, one per link.
    #[serde(default)]
    pub connect: Vec<String>,
    /// A consumer returns credits after this many messages of a link.
    pub credit_batch: u32,
    /// How long a blocked call polls before it sleeps (`[run] wait`, as on `msg`).
    pub spin_ns: u64,
    /// A consumer's correction per link, ns: what to add to a producer's publish stamp to
    /// read it on this host's clock (its host's offset minus the producer's, as the
    /// supervisor measured them). Empty: one clock.
    #[serde(default)]
    pub clock_shift_ns: Vec<i64>,
    /// The endpoints are `tls/`: the session needs [`ZenohParams::identity`].
    #[serde(default)]
    pub seal: bool,
    /// The worker's key and certificate of the run, which the worker adds itself once the
    /// supervisor signed its request: it never travels in a spec.
    #[serde(default)]
    pub identity: Option<crate::seal::Identity>,
}

/// The header every publication carries as its attachment: kind (0 data, 1 end), the
/// sequence number on its link (for an end: the count offered, as in [`super::frame`]) and the
/// publish time, little-endian.
fn header(kind: u8, seq: u32, publish_ns: u64) -> [u8; HEADER] {
    let mut h = [0; HEADER];
    h[0] = kind;
    h[1..5].copy_from_slice(&seq.to_le_bytes());
    h[5..].copy_from_slice(&publish_ns.to_le_bytes());
    h
}

/// Bytes of [`header`].
const HEADER: usize = 13;

const DATA: u8 = 0;
const END: u8 = 1;

/// What a worker with `zenoh` ports may call besides `lockdown::ALLOWED`: the engine's threads (its
/// tokio runtimes) keep running after the lock-down, on the sockets they opened before it.
/// Opening new sockets, connecting and accepting stay refused: every link is up before
/// `Ready` (`Sender::connect`).
pub const LOCKDOWN_CALLS: &[(&str, i64, &str)] = &[
    (
        "epoll_wait",
        libc::SYS_epoll_wait,
        "the engine's event loops waiting on their sockets",
    ),
    ("epoll_pwait", libc::SYS_epoll_pwait, "the same"),
    ("epoll_pwait2", libc::SYS_epoll_pwait2, "the same"),
    (
        "epoll_ctl",
        libc::SYS_epoll_ctl,
        "the event loops (de)registering sockets they hold",
    ),
    (
        "shutdown",
        libc::SYS_shutdown,
        "the engine closing a link at the end",
    ),
    (
        "getsockopt",
        libc::SYS_getsockopt,
        "the engine reading a socket's error or buffer size",
    ),
    (
        "setsockopt",
        libc::SYS_setsockopt,
        "the engine setting a link's options",
    ),
    (
        "sched_getaffinity",
        libc::SYS_sched_getaffinity,
        "the engine's runtime sizing itself",
    ),
];

impl Backend for Zenoh {
    fn lockdown(&self) -> super::Lockdown {
        // The engine's runtime starts threads when it needs them (a blocked worker thread is
        // replaced, a name is resolved off the event loop).
        super::Lockdown {
            calls: LOCKDOWN_CALLS,
            threads: true,
        }
    }

    fn worker_env(&self) -> &'static [(&'static str, &'static str)] {
        &[("ZENOH_RUNTIME", RUNTIME)]
    }

    fn cost(&self, shape: &super::ChannelShape) -> super::ChannelCost {
        let window = super::pages(shape.slot_size);
        super::ChannelCost {
            producer_window: window,
            consumer_window: window,
            windows_why: format!(
                "a window holds one slot ({} B, in whole 64 KiB pages)",
                shape.slot_size
            ),
            shared_bytes: 0,
            // The worker opens its own sockets: a listener and one per consumer; one per
            // producer on the other side (and the engine's own few).
            producer_fds: shape.consumers.saturating_add(4),
            consumer_fds: shape.producers.saturating_add(4),
            supervisor_fds: 0,
        }
    }

    fn plan(&self, ch: &ChannelDesc<'_>, _fds: &mut Fds) -> anyhow::Result<ChannelPlan> {
        let window_len = super::window_len(u64::from(ch.slot_size))
            .context("the slot does not fit a 32-bit window")?;
        // Key expressions reserve `*`, `$`, `#` and `?`; a run id is letters, digits and `-`.
        let run: String = ch
            .run_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let prefix = format!("wasm-ipc/{run}/{}", ch.index);
        let credit_batch = credit::batch(ch.capacity);
        let spin_ns = credit::spin_ns(ch.wait, ch.processes);
        let mut held = Vec::new();
        let mut listen = Vec::new();
        let scheme = if ch.seal { "tls" } else { "tcp" };
        match &ch.endpoints {
            // Placed by the supervisor across hosts: each on its own host's address.
            Some(given) => {
                anyhow::ensure!(
                    given.len() == ch.producers.len(),
                    "{} endpoints given for {} producers",
                    given.len(),
                    ch.producers.len()
                );
                listen.extend(given.iter().map(|a| format!("{scheme}/{a}")));
            }
            None => {
                for _ in &ch.producers {
                    let (port, probe) = super::free_port(std::net::Ipv4Addr::LOCALHOST.into())?;
                    held.push(probe);
                    listen.push(format!("{scheme}/127.0.0.1:{port}"));
                }
            }
        }
        // The ports are free again for the workers once the plan is made.
        drop(held);
        let spec = |e: &super::EndpointDesc, dir, params: ZenohParams| -> anyhow::Result<_> {
            let mut spec = super::port_spec(&e.port, dir, BackendKind::Zenoh, ch);
            spec.window_len = window_len;
            spec.params = serde_json::to_value(params)?;
            Ok(spec)
        };
        let mut producers = Vec::new();
        for (p, e) in ch.producers.iter().enumerate() {
            let mut s = spec(
                e,
                Direction::Out,
                ZenohParams {
                    prefix: prefix.clone(),
                    index: p,
                    peers: (0..ch.consumers.len()).collect(),
                    listen: Some(listen[p].clone()),
                    connect: Vec::new(),
                    credit_batch,
                    spin_ns,
                    clock_shift_ns: Vec::new(),
                    seal: ch.seal,
                    identity: None,
                },
            )?;
            s.links = ch.keys[p].clone();
            producers.push(s);
        }
        let mut consumers = Vec::new();
        for (q, e) in ch.consumers.iter().enumerate() {
            let mut s = spec(
                e,
                Direction::In,
                ZenohParams {
                    prefix: prefix.clone(),
                    index: q,
                    peers: (0..ch.producers.len()).collect(),
                    listen: None,
                    connect: listen.clone(),
                    credit_batch,
                    spin_ns,
                    clock_shift_ns: match &ch.clocks {
                        Some((from, to)) => from.iter().map(|p| to[q] - p).collect(),
                        None => Vec::new(),
                    },
                    seal: ch.seal,
                    identity: None,
                },
            )?;
            s.links = ch.keys.iter().map(|row| row[q].clone()).collect();
            consumers.push(s);
        }
        Ok(ChannelPlan {
            producers,
            consumers,
            // A dead worker's session ends with it, and its liveliness token with the session.
            peers: Box::new(NothingToDo),
        })
    }

    fn open_sender(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        _fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Sender>> {
        Ok(Box::new(ZenohSender::new(spec).with_context(|| {
            format!("port `{}` (zenoh)", spec.name)
        })?))
    }

    fn open_receiver(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        _fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Receiver>> {
        Ok(Box::new(ZenohReceiver::new(spec).with_context(|| {
            format!("port `{}` (zenoh)", spec.name)
        })?))
    }
}

/// A session in peer mode with scouting off, listening on and connecting to exactly the given
/// endpoints.
/// The configuration every session of this project starts from: peer mode, no scouting
/// (explicit endpoints only), one lane per link.
pub(crate) fn base_config() -> anyhow::Result<zenoh::Config> {
    let mut c = zenoh::Config::default();
    let set = |c: &mut zenoh::Config, k: &str, v: &str| {
        c.insert_json5(k, v)
            .map_err(|e| anyhow::anyhow!("zenoh config {k}: {e}"))
    };
    set(&mut c, "mode", "\"peer\"")?;
    set(&mut c, "scouting/multicast/enabled", "false")?;
    set(&mut c, "scouting/gossip/enabled", "false")?;
    // One lane per link, not one per priority: a liveliness token's withdrawal (sent at a
    // higher priority than data) must not overtake the messages published before it.
    set(&mut c, "transport/unicast/qos/enabled", "false")?;
    Ok(c)
}

fn open_session(
    params: &ZenohParams,
    listen: Option<&str>,
    connect: &[String],
) -> anyhow::Result<zenoh::Session> {
    let mut c = base_config()?;
    if params.seal {
        params
            .identity
            .as_ref()
            .context("a sealed port without its certificate of the run")?
            .configure(&mut c, true)?;
    }
    let set = |c: &mut zenoh::Config, k: &str, v: String| {
        c.insert_json5(k, &v)
            .map_err(|e| anyhow::anyhow!("zenoh config {k}: {e}"))
    };
    set(
        &mut c,
        "listen/endpoints",
        serde_json::to_string(&listen.into_iter().collect::<Vec<_>>())?,
    )?;
    set(&mut c, "connect/endpoints", serde_json::to_string(connect)?)?;
    if !connect.is_empty() {
        // A producer may start listening after its consumer opens (two plugins that feed
        // each other open their inputs first): connect in the background and keep trying;
        // `connect` waits for the link, bounded by the run's deadline.
        set(&mut c, "connect/timeout_ms", "-1".into())?;
        set(&mut c, "connect/exit_on_failure", "false".into())?;
        set(
            &mut c,
            "connect/retry",
            "{ period_init_ms: 10, period_max_ms: 200, period_increase_factor: 2 }".into(),
        )?;
    }
    zenoh::open(c).wait().map_err(|e| {
        anyhow::anyhow!("opening a zenoh session (listen {listen:?}, connect {connect:?}): {e}")
    })
}

/// What the engine's callbacks tell a port, in the order they happened.
enum Event {
    /// A producer's message (`link`, its header kind, sequence number, publish time and
    /// payload).
    Data {
        link: usize,
        kind: u8,
        seq: u32,
        publish_ns: u64,
        payload: ZBytes,
    },
    /// Credits returned on `link`.
    Credit { link: usize, n: u32 },
    /// The consumer of `link` has the end message, and so everything before it.
    EndSeen { link: usize },
    /// The peer of `link` holds its token: it is there.
    Alive { link: usize },
    /// The peer of `link` is gone (its session ended).
    Gone { link: usize },
}

/// The index at the end of a liveliness key `…/alive/<mark>/<index>`.
fn token_index(sample: &Sample, mark: char) -> Option<usize> {
    let mut parts = sample.key_expr().as_str().rsplit('/');
    let index = parts.next()?.parse().ok()?;
    (parts.next()? == mark.to_string()).then_some(index)
}

/// Declares the liveliness subscriber for the other side's tokens (`mark` p or q): every
/// appearance and disappearance becomes an event of the link that peer is on.
fn watch_peers(
    session: &zenoh::Session,
    prefix: &str,
    mark: char,
    peers: &[usize],
    tx: mpsc::Sender<Event>,
) -> anyhow::Result<zenoh::pubsub::Subscriber<()>> {
    let peers = peers.to_vec();
    session
        .liveliness()
        .declare_subscriber(format!("{prefix}/alive/{mark}/*"))
        .history(true)
        .callback(move |sample: Sample| {
            let Some(peer) = token_index(&sample, mark) else {
                return;
            };
            let Some(link) = peers.iter().position(|&x| x == peer) else {
                return;
            };
            let _ = tx.send(match sample.kind() {
                SampleKind::Put => Event::Alive { link },
                SampleKind::Delete => Event::Gone { link },
            });
        })
        .wait()
        .map_err(|e| anyhow::anyhow!("watching the peers' tokens: {e}"))
}

/// Waits for the next event: polls for `spin_ns`, then sleeps in slices, until the stop or the
/// deadline. Counts a sleep that an event ended as a wake-up.
///
/// A port that spins without limit (`[run] wait = "spin"`) yields the CPU between looks: what
/// it waits for is made by its engine's thread, in the same process, and by the peer's. Spinning
/// without yielding takes the core those threads need (a 64-byte round trip of 213–240 µs
/// against 118–133 µs sleeping, on 2 vCPUs); yielding keeps the vCPU awake and hands it to them
/// whenever they can run, so no hand-off waits for a halted vCPU to wake (about 90 µs).
fn next_event(
    rx: &mpsc::Receiver<Event>,
    spin_ns: u64,
    stop: &Stop,
    calls: &mut Calls,
) -> Result<Event, PortError> {
    let mut spin = Spin::default();
    loop {
        match rx.try_recv() {
            Ok(e) => return Ok(e),
            Err(mpsc::TryRecvError::Disconnected) => {
                return Err(PortError::PeerFailed("the zenoh session ended".into()));
            }
            Err(mpsc::TryRecvError::Empty) => {}
        }
        if stop.reason().is_some() || stop.remaining().is_zero() {
            return Err(stop.error());
        }
        if spin.again(spin_ns) {
            if spin_ns == u64::MAX {
                calls.sched_yields += 1;
                sys::yield_now();
            }
            continue;
        }
        calls.sleeps += 1;
        match rx.recv_timeout(stop.remaining().min(SLICE)) {
            Ok(e) => {
                calls.wakeups += 1;
                return Ok(e);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PortError::PeerFailed("the zenoh session ended".into()));
            }
        }
    }
}

/// Sleeps, wake-ups and yields of a port's blocked calls.
#[derive(Debug, Default, Clone, Copy)]
struct Calls {
    sleeps: u64,
    wakeups: u64,
    puts: u64,
    sched_yields: u64,
}

struct OutLink {
    key: String,
    publisher: zenoh::pubsub::Publisher<'static>,
    credits: Credits,
    alive: bool,
    gone: bool,
    end_seen: bool,
    offered: Offered,
}

/// The sending half of a `zenoh` port: a publisher per consumer.
pub struct ZenohSender {
    name: String,
    slot_size: u32,
    capacity: u32,
    overflow: Overflow,
    spin_ns: u64,
    links: Vec<OutLink>,
    events: mpsc::Receiver<Event>,
    connected: bool,
    calls: Calls,
    credit_waits: u64,
    waited: Waited,
    // Dropped last: the declarations above belong to the session.
    _credits: Vec<zenoh::pubsub::Subscriber<()>>,
    _watch: zenoh::pubsub::Subscriber<()>,
    token: Option<zenoh::liveliness::LivelinessToken>,
    _session: zenoh::Session,
}

impl std::fmt::Debug for ZenohSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohSender")
            .field("name", &self.name)
            .finish()
    }
}

fn zerr(what: &str) -> impl Fn(zenoh::Error) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("{what}: {e}")
}

impl ZenohSender {
    fn new(spec: &PortSpec) -> anyhow::Result<ZenohSender> {
        anyhow::ensure!(spec.capacity > 0, "capacity 0");
        let params: ZenohParams = spec.params()?;
        let session = open_session(&params, params.listen.as_deref(), &[])?;
        let prefix = &params.prefix;
        let p = params.index;
        let (tx, events) = mpsc::channel();
        let mut links = Vec::new();
        let mut credits = Vec::new();
        for (link, &q) in params.peers.iter().enumerate() {
            let publisher = session
                .declare_publisher(format!("{prefix}/{p}/{q}"))
                .congestion_control(CongestionControl::Block)
                .express(false)
                .wait()
                .map_err(zerr("declaring a publisher"))?;
            let tx = tx.clone();
            credits.push(
                session
                    .declare_subscriber(format!("{prefix}/{p}/{q}/credit"))
                    .callback(move |sample: Sample| {
                        let b = sample.payload().to_bytes();
                        if b.is_empty() {
                            let _ = tx.send(Event::EndSeen { link });
                        } else if let Ok(n) = <[u8; 4]>::try_from(&b[..]) {
                            let _ = tx.send(Event::Credit {
                                link,
                                n: u32::from_le_bytes(n),
                            });
                        }
                    })
                    .wait()
                    .map_err(zerr("subscribing to credits"))?,
            );
            links.push(OutLink {
                key: spec.links.get(link).cloned().unwrap_or_default(),
                publisher,
                credits: Credits::new(spec.capacity),
                alive: false,
                gone: false,
                end_seen: false,
                offered: Offered::default(),
            });
        }
        let watch = watch_peers(&session, prefix, 'q', &params.peers, tx)?;
        let token = session
            .liveliness()
            .declare_token(format!("{prefix}/alive/p/{p}"))
            .wait()
            .map_err(zerr("declaring the liveliness token"))?;
        Ok(ZenohSender {
            name: spec.name.clone(),
            slot_size: spec.slot_size,
            capacity: spec.capacity,
            overflow: spec.overflow,
            spin_ns: params.spin_ns,
            links,
            events,
            connected: false,
            calls: Calls::default(),
            credit_waits: 0,
            waited: Waited::default(),
            _credits: credits,
            _watch: watch,
            token: Some(token),
            _session: session,
        })
    }

    fn apply(&mut self, e: Event) -> Result<(), PortError> {
        match e {
            Event::Credit { link, n } => self.links[link].credits.grant(n, &self.name)?,
            Event::Alive { link } => self.links[link].alive = true,
            Event::Gone { link } => self.links[link].gone = true,
            Event::EndSeen { link } => self.links[link].end_seen = true,
            Event::Data { .. } => {}
        }
        Ok(())
    }

    /// Takes every event that is already there.
    fn drain(&mut self) -> Result<(), PortError> {
        while let Ok(e) = self.events.try_recv() {
            self.apply(e)?;
        }
        Ok(())
    }

    fn matched(&self) -> bool {
        self.links.iter().all(|l| {
            l.gone
                || (l.alive
                    && l.publisher
                        .matching_status()
                        .wait()
                        .is_ok_and(|m| m.matching()))
        })
    }
}

impl ZenohSender {
    /// `loan`, less the count of its wait (`Waited::end`), which the caller makes on every return.
    fn loan_waiting(&mut self, _win: Window<'_>, len: u32, stop: &Stop) -> Result<u32, PortError> {
        if len > self.slot_size {
            return Err(PortError::TooLarge {
                len,
                slot: self.slot_size,
            });
        }
        self.connect(stop)?;
        self.drain()?;
        // Under `drop-newest` nobody waits: `publish` drops the message on a link without
        // credits.
        let waits = self.overflow == Overflow::Block;
        for i in (0..self.links.len()).filter(|_| waits) {
            while !self.links[i].gone && !self.links[i].credits.available() {
                // The window is full: the wait for a credit starts.
                self.waited.start();
                self.credit_waits += 1;
                let e = next_event(&self.events, self.spin_ns, stop, &mut self.calls)
                    .map_err(|e| credit::link_was_full(e, &self.links[i].key, self.capacity))?;
                self.apply(e)?;
            }
        }
        if self.links.iter().all(|l| l.gone) {
            return Err(PortError::Closed);
        }
        Ok(0)
    }
}

impl Sender for ZenohSender {
    fn connect(&mut self, stop: &Stop) -> Result<(), PortError> {
        while !self.connected {
            self.drain()?;
            if self.matched() {
                self.connected = true;
                break;
            }
            if stop.reason().is_some() || stop.remaining().is_zero() {
                let waiting: Vec<&str> = self
                    .links
                    .iter()
                    .filter(|l| !l.gone)
                    .map(|l| l.key.as_str())
                    .collect();
                return Err(match stop.error() {
                    PortError::Interrupted(why) => PortError::Interrupted(format!(
                        "{why}; port `{}` was still waiting for its consumers to connect \
                         (links {})",
                        self.name,
                        waiting.join(", ")
                    )),
                    other => other,
                });
            }
            if let Ok(e) = self.events.recv_timeout(Duration::from_millis(2)) {
                self.apply(e)?;
            }
        }
        Ok(())
    }

    fn loan(&mut self, win: Window<'_>, len: u32, stop: &Stop) -> Result<u32, PortError> {
        let r = self.loan_waiting(win, len, stop);
        self.waited.end();
        r
    }

    fn publish(
        &mut self,
        win: Window<'_>,
        meter: &mut CopyMeter,
        msg: Outgoing,
        _stop: &Stop,
    ) -> Result<(), PortError> {
        if self.links.iter().all(|l| l.gone) {
            return Err(PortError::Closed);
        }
        // A message every link drops (`drop-newest`, no credit anywhere) is never copied.
        if !self.links.iter().any(|l| !l.gone && l.credits.available()) {
            for link in self.links.iter_mut().filter(|l| !l.gone) {
                link.offered.drop_one();
            }
            return Ok(());
        }
        let bytes: ZBytes = win
            .copy_out(meter, msg.off as usize, msg.len as usize)
            .map_err(|e| PortError::PeerFailed(format!("publish: {e}")))?
            .into();
        for link in &mut self.links {
            if link.gone {
                continue;
            }
            if !link.credits.available() {
                link.offered.drop_one();
                continue;
            }
            let head = header(DATA, link.offered.take(), msg.publish_ns);
            self.calls.puts += 1;
            // The payload is reference-counted: every link shares the one copy.
            if let Err(e) = link.publisher.put(bytes.clone()).attachment(head).wait() {
                return Err(PortError::PeerFailed(format!("zenoh put: {e}")));
            }
            link.credits.spend(msg.publish_ns);
        }
        if self.links.iter().all(|l| l.gone) {
            return Err(PortError::Closed);
        }
        Ok(())
    }

    fn close(&mut self, stop: &Stop) {
        for link in &self.links {
            if !link.gone {
                let head = header(END, link.offered.count(), sys::now_ns());
                let _ = link.publisher.put(Vec::<u8>::new()).attachment(head).wait();
            }
        }
        // The session ends with this worker, and a session that ends drops what its engine
        // has not sent yet. So the producer stays until every consumer's process has the end
        // message, and with it everything before it (the consumer's acker thread acknowledges it
        // as it arrives, whatever the plugin is doing), or is gone (its session ended: a
        // consumer that left early); bounded by the stop and the deadline.
        while self.links.iter().any(|l| !l.gone && !l.end_seen) {
            let Ok(e) = next_event(&self.events, self.spin_ns, stop, &mut self.calls) else {
                break;
            };
            if self.apply(e).is_err() {
                break;
            }
        }
    }

    fn abort(&mut self) {
        // No end message: withdrawing the token is what a failure looks like (the same as a
        // dead process's session ending), and it arrives after everything published.
        if let Some(token) = self.token.take() {
            let _ = token.undeclare().wait();
        }
    }

    fn counters(&self) -> Counters {
        Counters::from([
            ("credit_waits", self.credit_waits),
            ("puts", self.calls.puts),
            ("sched_yields", self.calls.sched_yields),
            ("sleeps", self.calls.sleeps),
            ("wakeups", self.calls.wakeups),
        ])
    }

    fn dropped(&self) -> Vec<u64> {
        self.links.iter().map(|l| l.offered.dropped).collect()
    }

    fn waited_ns(&self) -> u64 {
        self.waited.ns
    }

    fn counts_every_wait(&self) -> bool {
        // The engine's `put` blocks while its queues are full (`CongestionControl::Block`),
        // out of this port's sight.
        false
    }

    fn round_trips(&self) -> Vec<Option<u64>> {
        self.links
            .iter()
            .map(|l| l.credits.round_trip_ns())
            .collect()
    }
}

/// A consumer's link on `zenoh`: where its credits go, whether its producer is there yet, and
/// what the subscription delivered and the plugin has not taken.
struct In {
    credit: std::sync::Arc<zenoh::pubsub::Publisher<'static>>,
    alive: bool,
    /// Kind, sequence number, publish time and payload of each message.
    queued: VecDeque<(u8, u32, u64, ZBytes)>,
}

type InLink = credit::InLink<In>;

/// The receiving half of a `zenoh` port: a subscription per producer.
pub struct ZenohReceiver {
    name: String,
    slot_size: u32,
    credit_batch: u32,
    spin_ns: u64,
    inputs: Inputs<In>,
    events: mpsc::Receiver<Event>,
    connected: bool,
    credit_puts: u64,
    calls: Calls,
    waited: Waited,
    _subs: Vec<zenoh::pubsub::Subscriber<()>>,
    _watch: zenoh::pubsub::Subscriber<()>,
    token: Option<zenoh::liveliness::LivelinessToken>,
    _session: zenoh::Session,
}

impl std::fmt::Debug for ZenohReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohReceiver")
            .field("name", &self.name)
            .finish()
    }
}

impl ZenohReceiver {
    fn new(spec: &PortSpec) -> anyhow::Result<ZenohReceiver> {
        let params: ZenohParams = spec.params()?;
        anyhow::ensure!(
            (1..=spec.capacity.max(1)).contains(&params.credit_batch),
            "credit batch {} outside 1..={}",
            params.credit_batch,
            spec.capacity
        );
        let session = open_session(&params, None, &params.connect)?;
        let prefix = &params.prefix;
        let q = params.index;
        let (tx, events) = mpsc::channel();
        let (ack_tx, ack_rx) = mpsc::channel::<usize>();
        let mut links = Vec::new();
        let mut subs = Vec::new();
        let mut ackers = Vec::new();
        for (link, &p) in params.peers.iter().enumerate() {
            let tx = tx.clone();
            let ack_tx = ack_tx.clone();
            let shift = params.clock_shift_ns.get(link).copied().unwrap_or(0);
            let credit = std::sync::Arc::new(
                session
                    .declare_publisher(format!("{prefix}/{p}/{q}/credit"))
                    .congestion_control(CongestionControl::Block)
                    .express(true)
                    .wait()
                    .map_err(zerr("declaring the credit publisher"))?,
            );
            ackers.push(credit.clone());
            subs.push(
                session
                    .declare_subscriber(format!("{prefix}/{p}/{q}"))
                    .callback(move |sample: Sample| {
                        let head = sample.attachment().map(ZBytes::to_bytes);
                        let (kind, seq, publish_ns) = match head.as_deref() {
                            Some(&[k, ref rest @ ..]) if rest.len() == HEADER - 1 => {
                                let (seq, t) = rest.split_at(4);
                                (
                                    k,
                                    u32::from_le_bytes(seq.try_into().unwrap_or([0; 4])),
                                    u64::from_le_bytes(t.try_into().unwrap_or([0; 8])),
                                )
                            }
                            // A message without our header is a broken producer.
                            _ => (u8::MAX, 0, 0),
                        };
                        if kind == END {
                            // Everything before the end is in this process now: the
                            // producer's session may end. Acknowledged by the acker thread,
                            // never here (see the module's docs).
                            let _ = ack_tx.send(link);
                        }
                        let _ = tx.send(Event::Data {
                            link,
                            kind,
                            seq,
                            publish_ns: publish_ns.saturating_add_signed(shift),
                            payload: sample.payload().clone(),
                        });
                    })
                    .wait()
                    .map_err(zerr("subscribing"))?,
            );
            links.push(InLink::new(
                spec.links.get(link).cloned().unwrap_or_default(),
                In {
                    credit,
                    alive: false,
                    queued: VecDeque::new(),
                },
            ));
        }
        drop(ack_tx);
        // The acker: a blocking `put` may wait for the engine's thread, so it is made on a
        // thread of its own, which ends when the subscriptions (holding its channel) do.
        std::thread::Builder::new()
            .name("wasm-ipc-zenoh-ack".into())
            .spawn(move || {
                while let Ok(link) = ack_rx.recv() {
                    let _ = ackers[link].put(Vec::<u8>::new()).wait();
                }
            })
            .context("starting the acknowledging thread")?;
        let watch = watch_peers(&session, prefix, 'p', &params.peers, tx)?;
        let token = session
            .liveliness()
            .declare_token(format!("{prefix}/alive/q/{q}"))
            .wait()
            .map_err(zerr("declaring the liveliness token"))?;
        Ok(ZenohReceiver {
            name: spec.name.clone(),
            slot_size: spec.slot_size,
            credit_batch: params.credit_batch,
            spin_ns: params.spin_ns,
            inputs: Inputs::new(links),
            events,
            connected: false,
            credit_puts: 0,
            waited: Waited::default(),
            calls: Calls::default(),
            _subs: subs,
            _watch: watch,
            token: Some(token),
            _session: session,
        })
    }

    /// Files an event under its link.
    fn apply(&mut self, e: Event) {
        match e {
            Event::Data {
                link,
                kind,
                seq,
                publish_ns,
                payload,
            } => self.inputs.links[link]
                .io
                .queued
                .push_back((kind, seq, publish_ns, payload)),
            Event::Alive { link } => self.inputs.links[link].io.alive = true,
            Event::Gone { link } => {
                // Everything the producer sent arrived before its token vanished: what is
                // queued is delivered first, then the link fails unless it ended.
                self.inputs.links[link]
                    .io
                    .queued
                    .push_back((u8::MAX - 1, 0, 0, ZBytes::default()));
            }
            Event::Credit { .. } | Event::EndSeen { .. } => {}
        }
    }

    fn matched(&self) -> bool {
        self.inputs.links.iter().all(|l| {
            l.state != LinkState::Open
                || (l.io.alive
                    && l.io
                        .credit
                        .matching_status()
                        .wait()
                        .is_ok_and(|m| m.matching()))
        })
    }

    fn return_credits(&mut self, i: usize) {
        let link = &mut self.inputs.links[i];
        let Some(n) = link.returns.received(self.credit_batch) else {
            return;
        };
        if link.io.credit.put(n.to_le_bytes().to_vec()).wait().is_ok() {
            link.returns.sent();
            self.credit_puts += 1;
        }
    }

    /// The next queued message of link `i`, if any (end and failure marks handled).
    fn take(
        &mut self,
        i: usize,
        win: Window<'_>,
        meter: &mut CopyMeter,
    ) -> Result<Option<Delivery>, PortError> {
        let Some((kind, seq, publish_ns, payload)) = self.inputs.links[i].io.queued.pop_front()
        else {
            return Ok(None);
        };
        let link = &mut self.inputs.links[i];
        match kind {
            DATA => {
                let len = payload.len();
                let max = (self.slot_size as usize).min(win.len());
                if len > max {
                    link.state = LinkState::Failed;
                    return Err(PortError::PeerFailed(format!(
                        "producer on link {}: a {len}-byte message for a {max}-byte slot",
                        link.key
                    )));
                }
                win.copy_in(meter, 0, payload.slices())
                    .map_err(|e| PortError::PeerFailed(format!("receive: {e}")))?;
                self.return_credits(i);
                Ok(Some(Delivery {
                    off: 0,
                    len: u32::try_from(len).unwrap_or(u32::MAX),
                    publish_ns,
                    link: i,
                    seq,
                }))
            }
            END => {
                link.state = LinkState::Ended;
                link.end = Some(seq);
                Ok(None)
            }
            _ if link.state == LinkState::Open => {
                link.state = LinkState::Failed;
                Err(PortError::PeerFailed(format!(
                    "producer on link {} {}",
                    link.key,
                    if kind == u8::MAX {
                        "sent a message without its header"
                    } else {
                        "went away without finishing"
                    }
                )))
            }
            _ => Ok(None),
        }
    }
}

impl ZenohReceiver {
    /// `receive`, less the count of its wait (`Waited::end`), which the caller makes on every return.
    fn receive_waiting(
        &mut self,
        win: Window<'_>,
        meter: &mut CopyMeter,
        stop: &Stop,
    ) -> Result<Delivery, PortError> {
        self.connect(stop)?;
        loop {
            while let Ok(e) = self.events.try_recv() {
                self.apply(e);
            }
            if let Some(e) = self.inputs.failure() {
                return Err(e);
            }
            for i in self.inputs.turns() {
                if self.inputs.links[i].state != LinkState::Open {
                    continue;
                }
                if let Some(d) = self.take(i, win, meter)? {
                    self.inputs.served(i);
                    return Ok(d);
                }
            }
            if !self.inputs.any_open() {
                return Err(PortError::Closed);
            }
            if self.inputs.links.iter().any(|l| !l.io.queued.is_empty()) {
                continue;
            }
            self.waited.start();
            let e = next_event(&self.events, self.spin_ns, stop, &mut self.calls)?;
            self.apply(e);
        }
    }
}

impl Receiver for ZenohReceiver {
    fn connect(&mut self, stop: &Stop) -> Result<(), PortError> {
        while !self.connected {
            while let Ok(e) = self.events.try_recv() {
                self.apply(e);
            }
            if self.matched() {
                self.connected = true;
                break;
            }
            if stop.reason().is_some() || stop.remaining().is_zero() {
                return Err(match stop.error() {
                    PortError::Interrupted(why) => PortError::Interrupted(format!(
                        "{why}; port `{}` was still waiting for its producers to connect",
                        self.name
                    )),
                    other => other,
                });
            }
            if let Ok(e) = self.events.recv_timeout(Duration::from_millis(2)) {
                self.apply(e);
            }
        }
        Ok(())
    }

    fn receive(
        &mut self,
        win: Window<'_>,
        meter: &mut CopyMeter,
        stop: &Stop,
    ) -> Result<Delivery, PortError> {
        let r = self.receive_waiting(win, meter, stop);
        self.waited.end();
        r
    }

    fn release(&mut self) -> Result<(), PortError> {
        // The window is private to this consumer; the next receive overwrites it.
        Ok(())
    }

    fn waited_ns(&self) -> u64 {
        self.waited.ns
    }

    fn forget_failed(&mut self) -> Vec<usize> {
        self.inputs.forget_failed()
    }

    fn detach(&mut self) {
        // Withdrawing the token tells every producer this consumer is gone.
        if let Some(token) = self.token.take() {
            let _ = token.undeclare().wait();
        }
        for l in &mut self.inputs.links {
            l.state = LinkState::Ended;
        }
    }

    fn counters(&self) -> Counters {
        Counters::from([
            ("credit_puts", self.credit_puts),
            ("sched_yields", self.calls.sched_yields),
            ("sleeps", self.calls.sleeps),
            ("wakeups", self.calls.wakeups),
        ])
    }

    fn ends(&self) -> Vec<Option<u32>> {
        self.inputs.ends()
    }
}
