//! Transports: how a message gets from a producer's window to a consumer's window.
//!
//! A worker holds one [`Sender`] per output port and one [`Receiver`] per input port; the
//! plugin ABI layer (`crate::plugin`) drives them and knows nothing of the mechanism. The
//! supervisor picks the backend once per run ([`crate::scenario::BackendKind`]) and hands each
//! worker the resources (fds) of its links in a [`PortSpec`].
//!
//! # Contract
//!
//! Every implementation keeps these promises; one shared suite (`contract` tests below) checks
//! each implementation against them.
//!
//! - **Order**: messages of one producer reach each consumer in publish order (FIFO per link).
//!   With several producers on one input (fan-in) no producer starves: links are served round
//!   robin.
//! - **Integrity**: a consumer sees exactly the `len` bytes that were published, at the offset
//!   `receive` returns, until it calls `release`.
//! - **Fan-out**: every consumer of a channel receives every message; a slow consumer holds
//!   its producer back (back-pressure), it never loses messages.
//! - **Capacity**: at most `capacity` messages are in flight per link; `loan` blocks when a
//!   link is full. (`shm`'s bounded buffer, `sync` other than lock-free, shares
//!   `capacity × producers` slots among its producers, as the textbook's buffer is shared:
//!   one producer alone has `capacity` in flight, as the contract's tests check, and in a
//!   fan-in an idle producer's share goes to the others.)
//! - **Bounds**: `loan` refuses lengths above the slot size (`TooLarge`); a receiver checks
//!   every length it did not produce itself before it touches the window.
//! - **End of stream**: `close` tells every consumer that this producer finished; a receiver
//!   returns `Closed` once every producer of its input finished and everything they sent has
//!   been received.
//! - **Failure**: a producer that vanishes without `close` makes its consumers' `receive`
//!   return `PeerFailed` once they received what it sent; a consumer that vanishes makes
//!   `publish` skip it, and `Closed` once every consumer is gone. What the dying process's
//!   resources do not say by themselves, the backend's [`PeerLost`] says. After a
//!   `PeerFailed`, a consumer may `forget_failed`: every failed link with nothing left to
//!   deliver ends, and receiving goes on from the others (a server and its other clients).
//! - **Blocking**: every blocking call returns when the worker's [`Stop`] is signalled
//!   (`Interrupted` for a timeout or a stop request, `PeerFailed` when another plugin failed)
//!   and never outlives the run's deadline; a peer's action wakes a sleeper (counted as
//!   `wakeups`), the sleep slice is only a backstop.
//! - **Counting**: `copied_bytes` counts payload bytes that the transport itself moved through
//!   a copy, at the place where it copied them.

pub use wasm_ipc_wire::frame;
pub mod bounded;
mod credit;
pub mod dgram;
pub mod mq;
pub mod msg;
pub mod pipe;
pub mod shm;
pub mod tcp;
pub mod udp;
pub mod zenoh;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::os::fd::OwnedFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::scenario::{BackendKind, Overflow, SyncMode, WaitMode};
use crate::sys::{self, CopyMeter, StopFd, Window};

/// The backend that implements `kind`: the one `match` that names backends.
pub fn of(kind: BackendKind) -> &'static dyn Backend {
    match kind {
        BackendKind::Msg => &msg::Msg,
        BackendKind::Pipe => &pipe::Pipe,
        BackendKind::Tcp => &tcp::Tcp,
        BackendKind::Mq => &mq::Mq,
        BackendKind::Udp => &udp::Udp,
        BackendKind::Shm => &shm::Shm,
        BackendKind::Zenoh => &zenoh::Zenoh,
        // `auto` names a choice made per lane (`resolve`), never a transport of its own.
        BackendKind::Auto => unreachable!("`auto` is resolved per lane before a backend is asked"),
    }
}

/// One transport mechanism, seen from both sides of the process boundary.
///
/// - *plan* runs in the supervisor: it creates a channel's resources (sockets, memfds, …),
///   hands each endpoint's fds to its worker through [`Fds`] and describes every port in a
///   [`PortSpec`] (window size, fd numbers, its own parameters);
/// - *open* runs in the worker: it turns that description back into a [`Sender`] or
///   [`Receiver`] over the port's window;
/// - the [`PeerLost`] that *plan* returns is what the supervisor calls when a worker of the
///   channel dies without saying so.
pub trait Backend: Sync + Debug {
    /// What a channel of this shape will cost on this backend, computed before anything is
    /// created (`check` refuses what cannot work from these figures; `plan` makes the same).
    fn cost(&self, shape: &ChannelShape) -> ChannelCost;
    /// Why a channel of this shape cannot work on this machine, if a kernel limit forbids it
    /// (the message names the number it needs, the limit and the setting that raises it):
    /// `check` refuses the scenario rather than run a channel that would hold fewer messages
    /// than its `capacity`. None by default.
    fn refuse(&self, _shape: &ChannelShape) -> Option<String> {
        None
    }
    /// Creates the resources of one channel.
    fn plan(&self, ch: &ChannelDesc<'_>, fds: &mut Fds) -> anyhow::Result<ChannelPlan>;
    /// Opens an output port whose window is `window`, taking its fds from `fds`.
    fn open_sender(
        &self,
        spec: &PortSpec,
        window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Sender>>;
    /// Opens an input port whose window is `window`, taking its fds from `fds`.
    fn open_receiver(
        &self,
        spec: &PortSpec,
        window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Receiver>>;
    /// What a worker with a port on this backend needs of its lock-down beyond the calls
    /// every worker may make (`lockdown::ALLOWED`): none, unless the backend's own threads go
    /// on working after it.
    fn lockdown(&self) -> Lockdown {
        Lockdown::default()
    }
    /// Environment variables a worker with a port on this backend is started with (workers
    /// get no other environment).
    fn worker_env(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

/// What a backend needs of the worker's lock-down (`lockdown::install`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Lockdown {
    /// Further system calls the worker may make: name, number, and why.
    pub calls: &'static [(&'static str, i64, &'static str)],
    /// Whether its threads start threads after the lock-down: then `clone` is allowed for
    /// threads of this process only, and `clone3` answers ENOSYS so the C library falls back
    /// to `clone`, whose flags a filter can read.
    pub threads: bool,
}

impl Lockdown {
    /// What the backends of `kinds` need together (the ports of one worker).
    pub fn of(kinds: impl IntoIterator<Item = BackendKind>) -> Vec<Lockdown> {
        let mut seen = Vec::new();
        let mut all = Vec::new();
        for kind in kinds {
            if !seen.contains(&kind) {
                seen.push(kind);
                all.push(of(kind).lockdown());
            }
        }
        all
    }
}

/// The environment a worker with ports on `kinds` is started with: each backend's
/// [`Backend::worker_env`], once.
pub fn worker_env(
    kinds: impl IntoIterator<Item = BackendKind>,
) -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<(&str, &str)> = Vec::new();
    for kind in kinds {
        for &pair in of(kind).worker_env() {
            if !env.contains(&pair) {
                env.push(pair);
            }
        }
    }
    env
}

/// The backend that carries a lane on a run on `kind`, when the lane's plugins are all on
/// one host (`one_host`) or not: `auto` takes `shm` inside one host and `zenoh` between hosts;
/// every other kind is itself.
pub fn resolve(kind: BackendKind, one_host: bool) -> BackendKind {
    match kind {
        BackendKind::Auto if one_host => BackendKind::Shm,
        BackendKind::Auto => BackendKind::Zenoh,
        other => other,
    }
}

/// A channel's shape: what its cost depends on.
#[derive(Debug, Clone, Copy)]
pub struct ChannelShape {
    /// Producers (`from`).
    pub producers: u64,
    /// Consumers (`to`).
    pub consumers: u64,
    /// Largest message.
    pub slot_size: u64,
    /// Messages in flight per link.
    pub capacity: u64,
    /// What a publish that finds a link full does.
    pub overflow: Overflow,
    /// How the channel synchronises (`shm`'s `sync`).
    pub sync: SyncMode,
}

/// What one channel costs on a backend. All sizes are exact 64-bit byte counts: nothing here
/// can wrap, whatever the scenario says.
#[derive(Debug, Clone)]
pub struct ChannelCost {
    /// Window each producer's port needs in its plugin's memory.
    pub producer_window: u64,
    /// Window each consumer's port needs.
    pub consumer_window: u64,
    /// How those windows are made up, for messages ("one 64 KiB slot", "a ring of …").
    pub windows_why: String,
    /// Shared memory (memfds) the channel allocates, control blocks included.
    pub shared_bytes: u64,
    /// Fds each producer's worker receives for the channel.
    pub producer_fds: u64,
    /// Fds each consumer's worker receives for the channel.
    pub consumer_fds: u64,
    /// Fds the supervisor holds for the channel while it starts the workers.
    pub supervisor_fds: u64,
}

/// One endpoint of a channel: a port of a plugin instance.
#[derive(Debug, Clone)]
pub struct EndpointDesc {
    /// Index of the plugin instance (the worker) in the run.
    pub plugin: usize,
    /// The port's name.
    pub port: String,
}

/// What a backend needs to know to plan one channel.
#[derive(Debug, Clone)]
pub struct ChannelDesc<'a> {
    /// The channel's index in the scenario (for resource names).
    pub index: usize,
    /// The run's id: every named resource carries it, so leftovers can be found.
    pub run_id: &'a str,
    /// Producers, in `from` order.
    pub producers: Vec<EndpointDesc>,
    /// Consumers, in `to` order.
    pub consumers: Vec<EndpointDesc>,
    /// Link keys, `keys[p][q]` for producer `p` and consumer `q`.
    pub keys: Vec<Vec<String>>,
    /// Largest message.
    pub slot_size: u32,
    /// Messages in flight per link.
    pub capacity: u32,
    /// What a publish that finds a link full does.
    pub overflow: Overflow,
    /// How the channel synchronises (`shm`'s `sync`).
    pub sync: SyncMode,
    /// How blocked calls wait (`[run] wait`).
    pub wait: WaitMode,
    /// Worker processes in the run (for waiting policies that must not starve peers).
    pub processes: usize,
    /// Where each producer listens, when the run spans hosts and the supervisor placed them
    /// (`zenoh` only); `None`: the backend picks its own (loopback) endpoints.
    pub endpoints: Option<Vec<std::net::SocketAddr>>,
    /// Each producer's and each consumer's host clock minus the supervisor's, ns, when the
    /// run spans hosts (`zenoh` corrects its publish stamps with them); `None`: one clock.
    pub clocks: Option<(Vec<i64>, Vec<i64>)>,
    /// The run's links are sealed (`[run] seal`): `zenoh` listens and dials on `tls/`
    /// endpoints with each worker's certificate of the run ([`crate::seal`]).
    pub seal: bool,
}

/// A planned channel: one spec per endpoint, and what to do when a worker dies.
#[derive(Debug)]
pub struct ChannelPlan {
    /// Port spec of producer `p`, in `from` order.
    pub producers: Vec<PortSpec>,
    /// Port spec of consumer `q`, in `to` order.
    pub consumers: Vec<PortSpec>,
    /// Called by the supervisor when a worker of this channel failed or vanished.
    pub peers: Box<dyn PeerLost>,
}

/// What a backend does when a worker of a channel is gone without having said so.
pub trait PeerLost: Send + Sync + Debug {
    /// Producer `p` of the channel failed: its consumers must see peer-failed.
    fn producer_lost(&self, p: usize);
    /// Consumer `q` of the channel is gone: producers must stop waiting for it.
    fn consumer_lost(&self, q: usize);
}

/// A backend whose resources tell peers by themselves that a worker died (closed sockets).
#[derive(Debug)]
pub struct NothingToDo;

impl PeerLost for NothingToDo {
    fn producer_lost(&self, _: usize) {}
    fn consumer_lost(&self, _: usize) {}
}

/// The fds a run hands its workers, per plugin instance: fd 5, 6, … in order.
#[derive(Debug)]
pub struct Fds {
    per_plugin: Vec<Vec<OwnedFd>>,
}

/// The first fd number a worker receives port resources at (3: control, 4: module).
pub const FIRST_PORT_FD: i32 = 5;

impl Fds {
    /// An empty table for `plugins` workers.
    pub fn new(plugins: usize) -> Fds {
        Fds {
            per_plugin: (0..plugins).map(|_| Vec::new()).collect(),
        }
    }

    /// Hands `fd` to worker `plugin`; returns the number it will have there.
    pub fn give(&mut self, plugin: usize, fd: OwnedFd) -> anyhow::Result<i32> {
        let list = &mut self.per_plugin[plugin];
        list.push(fd);
        let n = i32::try_from(list.len() - 1)
            .ok()
            .and_then(|i| i.checked_add(FIRST_PORT_FD))
            .ok_or_else(|| anyhow::anyhow!("too many fds for one worker"))?;
        Ok(n)
    }

    /// How many fds worker `plugin` gets.
    pub fn count(&self, plugin: usize) -> usize {
        self.per_plugin[plugin].len()
    }

    /// The fds of worker `plugin`, in number order (taken out of the table).
    pub fn take(&mut self, plugin: usize) -> Vec<OwnedFd> {
        std::mem::take(&mut self.per_plugin[plugin])
    }
}

/// Where a port's opener gets the fds its spec names.
pub trait FdSource {
    /// Takes fd number `n` (each number once).
    fn take(&mut self, n: i32) -> anyhow::Result<OwnedFd>;
}

/// The fds a worker was handed, in one process with the planner (tests, in-process use).
#[derive(Debug)]
pub struct HandedFds(Vec<Option<OwnedFd>>);

impl HandedFds {
    /// The fds that [`Fds::take`] returned for one worker.
    pub fn new(fds: Vec<OwnedFd>) -> HandedFds {
        HandedFds(fds.into_iter().map(Some).collect())
    }
}

impl FdSource for HandedFds {
    fn take(&mut self, n: i32) -> anyhow::Result<OwnedFd> {
        usize::try_from(n - FIRST_PORT_FD)
            .ok()
            .and_then(|i| self.0.get_mut(i))
            .and_then(Option::take)
            .ok_or_else(|| anyhow::anyhow!("fd {n} was not handed over (or taken twice)"))
    }
}

/// Why a port operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Every producer finished (receive), or every consumer is gone (loan, publish).
    #[error("closed")]
    Closed,
    /// A plugin on the other side failed.
    #[error("peer failed: {0}")]
    PeerFailed(String),
    /// The length exceeds the channel's slot size.
    #[error("{len} bytes exceed the {slot}-byte slot")]
    TooLarge {
        /// Requested length.
        len: u32,
        /// The channel's slot size.
        slot: u32,
    },
    /// The run's deadline passed or the supervisor stopped the run.
    #[error("{0}")]
    Interrupted(String),
}

/// One delivered message, as `receive` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Offset of the message in the port's window.
    pub off: u32,
    /// Length in bytes.
    pub len: u32,
    /// Publish time, CLOCK_MONOTONIC ns.
    pub publish_ns: u64,
    /// Index of the link (into [`PortSpec::links`]) that carried it.
    pub link: usize,
    /// Its sequence number on that link, as the sending host numbered it ([`Offered`]).
    pub seq: u32,
}

/// A producer's sequence numbers on one link: every message offered to the link takes the
/// next, whether it is sent or dropped (`overflow = "drop-newest"`), so that the receiving
/// host sees a drop as a gap ([`wasm_ipc_wire::sequence::Ledger`]); the end of stream carries
/// the count.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offered {
    next: u32,
    /// Messages dropped on the link for want of room.
    pub dropped: u64,
}

impl Offered {
    /// The number of a message that is sent.
    pub fn take(&mut self) -> u32 {
        let seq = self.next;
        self.next = seq.wrapping_add(1);
        seq
    }

    /// A message is dropped on this link: it takes its number all the same.
    pub fn drop_one(&mut self) {
        self.take();
        self.dropped += 1;
    }

    /// How many messages the link was offered (wrapping): what the end of stream carries.
    pub fn count(&self) -> u32 {
        self.next
    }
}

/// Time a port spent waiting ([`Sender::waited_ns`], [`Receiver::waited_ns`]): a call notes
/// when it first finds nothing to do (`start`), and the time from there is added when the call
/// ends (`end`); a call that never waits reads no clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct Waited {
    since: Option<u64>,
    /// Time waited so far, ns.
    pub ns: u64,
}

impl Waited {
    /// The call found nothing to do: the wait starts now, unless it started already.
    pub fn start(&mut self) {
        if self.since.is_none() {
            self.since = Some(sys::now_ns());
        }
    }

    /// The call ends: a wait it started is counted.
    pub fn end(&mut self) {
        if let Some(t) = self.since.take() {
            self.ns += sys::now_ns().saturating_sub(t);
        }
    }
}

/// A backend's own named counters (`futex_waits`, `wakeups`, …), summed per process by the
/// report without knowing what they mean.
pub type Counters = BTreeMap<&'static str, u64>;

/// The sending half of a port.
///
/// Payload that the transport copies goes through the [`CopyMeter`] it is given: the copy
/// primitives of [`Window`] take one, so what a backend copies is counted where it copies.
pub trait Sender: Send {
    /// Waits until every consumer can receive what this port publishes (a transport that
    /// connects in the background); workers call it before `Ready`, so nothing is published
    /// before it can arrive. Default: connected from the start.
    fn connect(&mut self, _stop: &Stop) -> Result<(), PortError> {
        Ok(())
    }
    /// Offset in the window where the plugin may write `len` bytes. Blocks while full.
    fn loan(&mut self, win: Window<'_>, len: u32, stop: &Stop) -> Result<u32, PortError>;
    /// Sends `len` bytes at `off` of the window to every consumer.
    fn publish(
        &mut self,
        win: Window<'_>,
        meter: &mut CopyMeter,
        msg: Outgoing,
        stop: &Stop,
    ) -> Result<(), PortError>;
    /// The producer finished: tell every consumer (end of stream).
    fn close(&mut self, stop: &Stop);
    /// The producer failed: its consumers see peer-failed once they drained what was sent.
    fn abort(&mut self);
    /// The backend's counters for this port.
    fn counters(&self) -> Counters;
    /// Per link, in link order: the messages this port dropped there for want of room
    /// (`overflow = "drop-newest"`; 0 everywhere under `block`).
    fn dropped(&self) -> Vec<u64>;
    /// Per link, in link order: the median round trip of its window, ns — a message's send to
    /// the return of its credit (`credit::Credits`); `None` where it was not measured. Empty
    /// for a backend whose window is not kept by credits (`shm`'s ring, `mq`'s queue).
    fn round_trips(&self) -> Vec<Option<u64>> {
        Vec::new()
    }
    /// Time this port waited for room in its window (no credit, no free slot, a full socket
    /// or queue), ns: from the first look that found none to the end of that call, timed only
    /// on that slow path.
    fn waited_ns(&self) -> u64 {
        0
    }
    /// Whether [`Sender::waited_ns`] holds every wait of this port's calls (the default): the
    /// caller then learns each call's wait from it, without reading a clock on calls that did
    /// not wait. A port whose calls can block where it cannot time them (inside an engine)
    /// says no, and the caller times each of its calls whole, on the coarse clock.
    fn counts_every_wait(&self) -> bool {
        true
    }
}

/// A message a producer publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outgoing {
    /// Offset in the window (what `loan` returned).
    pub off: u32,
    /// Length in bytes.
    pub len: u32,
    /// Publish time, CLOCK_MONOTONIC ns.
    pub publish_ns: u64,
}

/// The receiving half of a port.
pub trait Receiver: Send {
    /// Waits until every producer's messages can reach this port and its credits can reach
    /// them (see [`Sender::connect`]). Default: connected from the start.
    fn connect(&mut self, _stop: &Stop) -> Result<(), PortError> {
        Ok(())
    }
    /// Blocks until a message is in the window (see [`Delivery`]).
    fn receive(
        &mut self,
        win: Window<'_>,
        meter: &mut CopyMeter,
        stop: &Stop,
    ) -> Result<Delivery, PortError>;
    /// The plugin is done with the last delivery.
    fn release(&mut self) -> Result<(), PortError>;
    /// After `receive` returned `PeerFailed`: ends every link whose producer failed and that
    /// has nothing left to deliver, so that receiving goes on from the others (a server
    /// serving its other clients). Returns those links; empty when the failure was not one
    /// link's.
    fn forget_failed(&mut self) -> Vec<usize>;
    /// The consumer is gone (finished or failed): producers stop waiting for it.
    fn detach(&mut self);
    /// The backend's counters for this port.
    fn counters(&self) -> Counters;
    /// Per link, in link order: the count its end of stream carried (how many messages its
    /// producer offered it, [`Offered::count`]), once that end was received; asked before
    /// `detach`.
    fn ends(&self) -> Vec<Option<u32>>;
    /// Time this port waited for a message, ns: from the first look that found none to the
    /// end of that `receive`, timed only on that slow path.
    fn waited_ns(&self) -> u64 {
        0
    }
    /// Whether the window is mapped read-only (a store into it faults): lets the report name
    /// the cause of such a fault.
    fn window_is_read_only(&self) -> bool {
        false
    }
}

pub use wasm_ipc_wire::{Direction, Leg, PortSpec};

/// A spec for a port of channel `ch`; the backend adds its window size, fds and params.
pub fn port_spec(
    name: &str,
    direction: Direction,
    backend: BackendKind,
    ch: &ChannelDesc,
) -> PortSpec {
    PortSpec {
        name: name.to_string(),
        direction,
        leg: Leg::Stream,
        backend,
        slot_size: ch.slot_size,
        capacity: ch.capacity,
        overflow: ch.overflow,
        window_len: 0,
        links: Vec::new(),
        fds: Vec::new(),
        params: serde_json::Value::Null,
    }
}

/// A kernel setting as a number: `sysctl("net.core.wmem_max")` reads
/// `/proc/sys/net/core/wmem_max`. `None` when it cannot be read (the limit is then not
/// applied).
pub fn sysctl(name: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Rounds `bytes` up to whole 64 KiB wasm pages, as a window length; `None` past `u32`.
pub fn window_len(bytes: u64) -> Option<u32> {
    u32::try_from(pages(bytes)).ok()
}

/// `bytes` rounded up to whole 64 KiB wasm pages (saturating: never wraps).
pub fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(65536).saturating_mul(65536)
}

/// Why a worker was told to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The run's timeout passed.
    Timeout,
    /// The supervisor stopped the run (Ctrl-C, another failure).
    Stopped(String),
    /// Another plugin of the run failed.
    PeerFailed(String),
    /// The plugin ran into one of its limits (its CPU time): the message says which.
    Limit(String),
}

/// A worker's stop signal: set once (first reason wins), visible to `poll` through an eventfd.
#[derive(Debug)]
pub struct Stop {
    state: AtomicU8,
    reason: Mutex<Option<StopReason>>,
    fd: StopFd,
    deadline_ns: u64,
}

impl Stop {
    /// A stop signal for a run that ends at `deadline_ns` (CLOCK_MONOTONIC).
    pub fn new(deadline_ns: u64) -> std::io::Result<Stop> {
        Ok(Stop {
            state: AtomicU8::new(0),
            reason: Mutex::new(None),
            fd: StopFd::new()?,
            deadline_ns,
        })
    }

    /// Signals the stop. The first reason is kept, except that a timeout or a stop request
    /// replaces a peer failure: it also ends plugins that never block.
    pub fn request(&self, reason: StopReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        let replace = matches!(
            (&*slot, &reason),
            (None, _)
                | (
                    Some(StopReason::PeerFailed(_)),
                    StopReason::Timeout | StopReason::Stopped(_) | StopReason::Limit(_)
                )
        );
        if replace {
            *slot = Some(reason);
            self.state.store(1, Ordering::Release);
            self.fd.signal();
        }
    }

    /// The reason, once stopped.
    pub fn reason(&self) -> Option<StopReason> {
        if self.state.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether a timeout or a stop request (not a peer failure) was signalled.
    pub fn interrupted(&self) -> bool {
        matches!(
            self.reason(),
            Some(StopReason::Timeout | StopReason::Stopped(_) | StopReason::Limit(_))
        )
    }

    /// The run's deadline, CLOCK_MONOTONIC ns.
    pub fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }

    /// Time left until the deadline.
    pub fn remaining(&self) -> Duration {
        Duration::from_nanos(self.deadline_ns.saturating_sub(sys::now_ns()))
    }

    /// The stop fd, for `poll`.
    pub fn fd(&self) -> &StopFd {
        &self.fd
    }

    /// The error a blocking call returns when woken by this stop (or by the deadline).
    pub fn error(&self) -> PortError {
        match self.reason() {
            Some(StopReason::PeerFailed(who)) => PortError::PeerFailed(who),
            Some(StopReason::Stopped(why) | StopReason::Limit(why)) => PortError::Interrupted(why),
            Some(StopReason::Timeout) | None => {
                PortError::Interrupted("the run's timeout passed".into())
            }
        }
    }
}

/// Ports this process has handed to producers: never handed out twice, so two channels of
/// one run (planned one after the other) or two runs of one `compare` cannot share one while
/// their workers start.
static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A free TCP port on `ip` (an address of this machine) for a producer to listen on, below
/// the kernel's range of ephemeral ports (so that no outgoing connection of the run can take
/// it before the worker listens). The probe binds without `SO_REUSEADDR`, as strictly as the
/// engine's listener does: a port with a connection of an earlier run in TIME_WAIT is not
/// free. The probe socket is returned, to hold while the plan picks the others.
pub fn free_port(ip: std::net::IpAddr) -> anyhow::Result<(u16, std::os::fd::OwnedFd)> {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage, bind, listen, socket,
    };
    use std::os::fd::AsRawFd;
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range
        .split_whitespace()
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(20000).max(1);
    let seed = sys::now_ns() ^ u64::from(std::process::id()).rotate_left(17);
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let family = if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let mut last = None;
    for k in 0..1024u64 {
        let x = seed.wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 16;
        let port = 20000 + u16::try_from(x % u64::from(span)).unwrap_or(0);
        if given.contains(&port) {
            continue;
        }
        let probe = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
        let addr = SockaddrStorage::from(std::net::SocketAddr::new(ip, port));
        match bind(probe.as_raw_fd(), &addr) {
            Ok(()) if listen(&probe, Backlog::new(1)?).is_ok() => {
                given.insert(port);
                return Ok((port, probe));
            }
            Ok(()) => {}
            // Not an address of this machine: no port will do.
            Err(nix::errno::Errno::EADDRNOTAVAIL) => {
                anyhow::bail!("{ip} is not an address of this machine (bind: EADDRNOTAVAIL)")
            }
            Err(e) => last = Some(e),
        }
    }
    anyhow::bail!(
        "no free TCP port on {ip} between 20000 and {low} (last error: {})",
        last.map_or("none".into(), |e| e.to_string())
    )
}

#[cfg(test)]
pub(crate) mod contract;
