//! `shm`: zero-copy rings in shared memory mapped straight into each plugin's linear memory.
//!
//! Per channel there is one **ring per producer** (N→1 needs no lock between producers) and:
//!
//! - a **slot area** per ring: a sealed memfd of `capacity × stride` bytes (rounded up to
//!   64 KiB) mapped `MAP_SHARED|MAP_FIXED` over the producer's window read-write and over a
//!   part of each consumer's window read-only (from a read-only descriptor). The producer
//!   writes a message in place; consumers read the very same pages. Nobody copies payload.
//! - one **control block** for the channel (a memfd no guest ever maps): per ring the publish
//!   sequence, closed/failed flags, a space futex word, per-consumer release cursors and per-slot
//!   length and publish time; per consumer a doorbell futex word (one doorbell for all rings, so
//!   fan-in waits on one word) and a detached flag.
//!
//! A plugin can scribble on payload bytes, never on the ring's state; host code still checks
//! every value it reads from the control block. Broadcast (1→N): a slot is free once every
//! attached consumer released it, so the slowest consumer applies back-pressure. Cursors are
//! `u32` sequence numbers compared with wrapping arithmetic (capacity ≤ 65536).
//!
//! Waiting (`wait` in `[run]`): `spin` spins with the CPU's pause hint; `futex` sleeps at once
//! on a shared futex; `adaptive` spins for a bounded time (shorter, and yielding, when the run
//! has more processes than CPUs) and then sleeps. Sleepers mark themselves so that publishers
//! call `FUTEX_WAKE` only when someone sleeps; every sleep has a timeout slice, after which the
//! stop signal and deadline are checked and a wake-up that never came is counted
//! (`lost_wakeups`).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{
    Backend, ChannelDesc, ChannelPlan, Counters, Delivery, Direction, FdSource, Fds, Offered,
    Outgoing, PeerLost, PortError, PortSpec, Receiver, Sender, Stop,
};
use crate::scenario::{BackendKind, Overflow, SyncMode, WaitMode};
use crate::sys::{self, ControlMap, CopyMeter, FutexWait, Window};

const MAGIC: u64 = 0x5741_534d_4950_4331; // "WASMIPC1"
const LINE: usize = 64;
/// Bytes of a position's record in the control block: length, slot, publish time, sequence
/// number (and 4 bytes of padding, so that every publish time is 8-byte aligned).
const META: usize = 24;
/// Longest sleep before the stop signal and deadline are checked again.
const SLEEP_SLICE: Duration = Duration::from_millis(50);

/// A `sched_yield` that kept this process off the CPU longer than this handed it to someone
/// other than the peer (a busy machine: other processes were runnable); yielding then costs a
/// whole time slice per call, so the port stops spinning for [`SPIN_BACKOFF_WAITS`] waits and
/// sleeps on its futex at once, as `msg` sleeps in `poll`.
const YIELD_LOST: Duration = Duration::from_micros(100);

/// Waits a port sleeps at once after a yield was lost, before it tries spinning again.
const SPIN_BACKOFF_WAITS: u32 = 16384;

/// How a blocked call waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wait {
    /// Spin for at most this long (yielding when `yield_` is set), then sleep.
    Adaptive {
        /// Spin budget in ns.
        spin_ns: u64,
        /// Yield the CPU between checks (more processes than CPUs).
        yield_: bool,
    },
    /// Spin only.
    Spin,
    /// Sleep at once.
    Futex,
}

impl Wait {
    /// The waiting for `[run] wait` in a run of `processes` workers on this machine.
    pub fn for_run(mode: WaitMode, processes: usize) -> Wait {
        let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
        match mode {
            WaitMode::Spin => Wait::Spin,
            WaitMode::Futex => Wait::Futex,
            // More processes than CPUs: a spinning waiter would hold the CPU its peer needs.
            WaitMode::Adaptive if processes > cpus => Wait::Adaptive {
                spin_ns: 5_000,
                yield_: true,
            },
            WaitMode::Adaptive => Wait::Adaptive {
                spin_ns: 50_000,
                yield_: false,
            },
        }
    }
}

/// The `shm` backend.
#[derive(Debug)]
pub struct Shm;

/// What an `shm` port's spec carries. Its fds: the channel's control block, then the slot
/// area of the producer's own ring (output) or of every ring, read-only (input).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShmParams {
    /// This producer's or consumer's index in the channel.
    pub index: u32,
    /// The channel's geometry.
    pub layout: Layout,
    /// How blocked calls wait.
    pub wait: Wait,
}

impl Backend for Shm {
    fn cost(&self, shape: &super::ChannelShape) -> super::ChannelCost {
        if shape.sync != SyncMode::LockFree {
            return super::bounded::cost(shape);
        }
        let slots = slots(shape.capacity, shape.consumers, shape.overflow);
        let (stride, ring) = ring_bytes(shape.slot_size, slots);
        let control = control_bytes(shape.producers, shape.consumers, shape.capacity);
        let (p, c) = (shape.producers, shape.consumers);
        super::ChannelCost {
            producer_window: ring,
            consumer_window: ring.saturating_mul(p),
            windows_why: format!(
                "a producer's window holds its whole ring, {slots} slots{} × {stride} B (the \
                 slot on whole cache lines) = {ring} B in whole 64 KiB pages, and a consumer's {}",
                match shape.overflow {
                    Overflow::Block => "",
                    Overflow::DropNewest => {
                        " (`capacity` and one to write a message that will be dropped)"
                    }
                    Overflow::DropOldest => {
                        " (`capacity`, one per consumer for a message it holds while newer \
                         ones replace it, and one to write the next)"
                    }
                },
                if p == 1 {
                    "holds that one ring".to_string()
                } else {
                    format!("holds the rings of all {p} producers")
                }
            ),
            shared_bytes: ring.saturating_mul(p).saturating_add(control),
            producer_fds: 2,
            consumer_fds: 1 + p,
            // The control block and slot areas, each worker's duplicates, and a read-only
            // reopening of every slot area per consumer.
            supervisor_fds: (1 + p)
                .saturating_add(2 * p + c)
                .saturating_add(p.saturating_mul(c).saturating_mul(2)),
        }
    }

    fn plan(&self, ch: &ChannelDesc<'_>, fds: &mut Fds) -> anyhow::Result<ChannelPlan> {
        if ch.sync != SyncMode::LockFree {
            return super::bounded::plan(ch, fds);
        }
        let (producers, consumers) = (ch.producers.len(), ch.consumers.len());
        let layout = Layout::new(
            u32::try_from(producers)?,
            u32::try_from(consumers)?,
            ch.capacity,
            ch.overflow,
            ch.slot_size,
        )?;
        let wait = Wait::for_run(ch.wait, ch.processes);
        let (ctl_file, ctl) = Control::create(
            &format!("wasm-ipc:{}:control:{}", ch.run_id, ch.index),
            layout,
        )
        .context("creating a control block")?;
        let ctl_fd = OwnedFd::from(ctl_file);
        let slots: Vec<std::fs::File> = (0..producers)
            .map(|p| {
                sys::sized_memfd(
                    &format!("wasm-ipc:{}:slots:{}:{p}", ch.run_id, ch.index),
                    layout.ring_len as usize,
                )
            })
            .collect::<std::io::Result<_>>()
            .context("creating a slot area")?;
        let params = |index: usize| -> anyhow::Result<serde_json::Value> {
            Ok(serde_json::to_value(ShmParams {
                index: u32::try_from(index)?,
                layout,
                wait,
            })?)
        };
        let mut out = Vec::new();
        for (p, from) in ch.producers.iter().enumerate() {
            let mut spec = super::port_spec(&from.port, Direction::Out, BackendKind::Shm, ch);
            spec.window_len = layout.ring_len;
            spec.links = ch.keys[p].clone();
            spec.fds.push(fds.give(from.plugin, ctl_fd.try_clone()?)?);
            spec.fds
                .push(fds.give(from.plugin, OwnedFd::from(slots[p].try_clone()?))?);
            spec.params = params(p)?;
            out.push(spec);
        }
        let mut ins = Vec::new();
        for (q, to) in ch.consumers.iter().enumerate() {
            let mut spec = super::port_spec(&to.port, Direction::In, BackendKind::Shm, ch);
            spec.window_len = layout.consumer_window_len()?;
            spec.links = ch.keys.iter().map(|k| k[q].clone()).collect();
            spec.fds.push(fds.give(to.plugin, ctl_fd.try_clone()?)?);
            // Consumers get read-only descriptors: no mapping of them can be writable.
            for f in &slots {
                spec.fds
                    .push(fds.give(to.plugin, OwnedFd::from(sys::reopen_read_only(f)?))?);
            }
            spec.params = params(q)?;
            ins.push(spec);
        }
        Ok(ChannelPlan {
            producers: out,
            consumers: ins,
            peers: Box::new(Arc::new(ctl)),
        })
    }

    fn open_sender(
        &self,
        spec: &PortSpec,
        window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Sender>> {
        if super::bounded::is_bounded(spec) {
            return super::bounded::open_sender(spec, window, fds);
        }
        let params: ShmParams = spec.params()?;
        let [ctl, slots] = spec.fds[..] else {
            anyhow::bail!("port `{}`: an shm output takes 2 fds", spec.name);
        };
        let ctl = Control::map(
            fds.take(ctl).context("control block")?.as_fd(),
            params.layout,
        )?;
        let slots = fds.take(slots).context("slot area")?;
        Ok(Box::new(ShmSender::open(
            Arc::new(ctl),
            params.index,
            slots.as_fd(),
            window,
            params.wait,
            spec.links.clone(),
            spec.overflow,
        )?))
    }

    fn open_receiver(
        &self,
        spec: &PortSpec,
        window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Receiver>> {
        if super::bounded::is_bounded(spec) {
            return super::bounded::open_receiver(spec, window, fds);
        }
        let params: ShmParams = spec.params()?;
        let Some((&ctl, slots)) = spec.fds.split_first() else {
            anyhow::bail!(
                "port `{}`: an shm input takes its control block fd",
                spec.name
            );
        };
        anyhow::ensure!(
            slots.len() == params.layout.producers as usize,
            "port `{}`: {} slot areas for {} producers",
            spec.name,
            slots.len(),
            params.layout.producers
        );
        let ctl = Control::map(
            fds.take(ctl).context("control block")?.as_fd(),
            params.layout,
        )?;
        let slots: Vec<OwnedFd> = slots
            .iter()
            .map(|&n| fds.take(n).context("slot area"))
            .collect::<anyhow::Result<_>>()?;
        let borrowed: Vec<_> = slots.iter().map(|f| f.as_fd()).collect();
        Ok(Box::new(ShmReceiver::open(
            Arc::new(ctl),
            params.index,
            &borrowed,
            window,
            params.wait,
            spec.overflow,
        )?))
    }
}

impl PeerLost for Arc<Control> {
    fn producer_lost(&self, p: usize) {
        if let Ok(p) = u32::try_from(p) {
            self.fail_producer(p);
        }
    }
    fn consumer_lost(&self, q: usize) {
        if let Ok(q) = u32::try_from(q) {
            self.detach_consumer(q);
        }
    }
}

/// A ring's stride (the slot on whole cache lines, plus one line when that is a multiple of
/// 4 KiB) and its slot area in whole 64 KiB pages, in 64 bits.
/// Slots of a ring: `capacity`; under `drop-newest` one more, which a loan takes when every
/// other slot holds a message in flight (the message written there is dropped); under
/// `drop-oldest` also one per consumer, for a message a consumer still reads after newer
/// ones pushed it out of the ring's positions.
fn slots(capacity: u64, consumers: u64, overflow: Overflow) -> u64 {
    match overflow {
        Overflow::Block => capacity,
        Overflow::DropNewest => capacity.saturating_add(1),
        Overflow::DropOldest => capacity.saturating_add(consumers).saturating_add(1),
    }
}

pub(super) fn ring_bytes(slot_size: u64, capacity: u64) -> (u64, u64) {
    let line = LINE as u64;
    let mut stride = slot_size.div_ceil(line) * line;
    if stride.is_multiple_of(4096) {
        stride += line;
    }
    (stride, super::pages(stride.saturating_mul(capacity)))
}

/// The control block's size in 64 bits (what `Layout::control_len` maps).
fn control_bytes(producers: u64, consumers: u64, capacity: u64) -> u64 {
    let line = LINE as u64;
    let ring_block = (2 * line)
        .saturating_add(consumers.saturating_mul(line))
        .saturating_add(capacity.saturating_mul(META as u64))
        .div_ceil(line)
        * line;
    line.saturating_add(consumers.saturating_mul(line))
        .saturating_add(producers.saturating_mul(ring_block))
        .div_ceil(4096)
        .saturating_mul(4096)
}

/// The geometry of one channel's shared memory; every offset is computed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Producers (rings).
    pub producers: u32,
    /// Consumers.
    pub consumers: u32,
    /// Messages in flight per ring (its positions).
    pub capacity: u32,
    /// Slots per ring: `capacity`, one more under `drop-newest`, and one per consumer more
    /// under `drop-oldest`.
    pub slots: u32,
    /// Largest message.
    pub slot_size: u32,
    /// Distance between slots: the slot size on whole cache lines, plus one line when that
    /// is a multiple of 4 KiB so that consecutive slots do not alias the same cache set.
    pub stride: u32,
    /// Bytes of one ring's slot area (a multiple of 64 KiB).
    pub ring_len: u32,
}

impl Layout {
    /// The layout for a channel; an error when a ring does not fit a 32-bit window.
    pub fn new(
        producers: u32,
        consumers: u32,
        capacity: u32,
        overflow: Overflow,
        slot_size: u32,
    ) -> anyhow::Result<Layout> {
        let slots = slots(u64::from(capacity), u64::from(consumers), overflow);
        let (stride, ring) = ring_bytes(u64::from(slot_size), slots);
        let ring_len = u32::try_from(ring).ok().with_context(|| {
            format!(
                "a ring of {slots} slots of {slot_size} bytes needs {ring} bytes, more than \
                 a 32-bit window can hold: lower `slot_size` or `capacity`"
            )
        })?;
        Ok(Layout {
            producers,
            consumers,
            capacity,
            // At most capacity + consumers + 1: capacity is bounded by 65536, consumers by
            // the plugins a scenario may have.
            slots: u32::try_from(slots)?,
            slot_size,
            // stride <= ring (capacity >= 1) and ring fits u32 (checked above).
            stride: u32::try_from(stride)?,
            ring_len,
        })
    }

    /// A consumer's window: every ring of the channel, one after the other.
    pub fn consumer_window_len(&self) -> anyhow::Result<u32> {
        self.ring_len.checked_mul(self.producers).with_context(|| {
            format!(
                "{} rings of {} bytes do not fit a 32-bit window",
                self.producers, self.ring_len
            )
        })
    }

    fn doorbell(&self, c: u32) -> usize {
        LINE + c as usize * LINE
    }
    fn ring_block_len(&self) -> usize {
        (2 * LINE + self.consumers as usize * LINE + META * self.capacity as usize).div_ceil(LINE)
            * LINE
    }
    fn ring(&self, p: u32) -> usize {
        LINE + self.consumers as usize * LINE + p as usize * self.ring_block_len()
    }
    fn head(&self, p: u32) -> usize {
        self.ring(p)
    }
    fn closed(&self, p: u32) -> usize {
        self.ring(p) + 4
    }
    fn failed(&self, p: u32) -> usize {
        self.ring(p) + 8
    }
    /// How many messages the producer offered (sent or dropped), stored before `closed`.
    fn offered(&self, p: u32) -> usize {
        self.ring(p) + 12
    }
    fn space(&self, p: u32) -> usize {
        self.ring(p) + LINE
    }
    fn producer_waiting(&self, p: u32) -> usize {
        self.ring(p) + LINE + 4
    }
    fn tail(&self, p: u32, c: u32) -> usize {
        self.ring(p) + 2 * LINE + c as usize * LINE
    }
    /// Under `drop-oldest`: the slot (+ 1; 0 for none) consumer `c` reads from ring `p`,
    /// claimed before its tail moves past it, so that the producer never reuses it meanwhile.
    fn held(&self, p: u32, c: u32) -> usize {
        self.tail(p, c) + 4
    }
    fn meta(&self, p: u32, slot: u32) -> usize {
        self.ring(p) + 2 * LINE + self.consumers as usize * LINE + slot as usize * META
    }
    /// Bytes of the control block.
    pub fn control_len(&self) -> usize {
        (self.ring(self.producers)).div_ceil(4096) * 4096
    }
}

/// A mapped control block with its layout.
#[derive(Debug)]
pub struct Control {
    map: ControlMap,
    layout: Layout,
}

impl Control {
    /// Maps a control block and checks that it describes `layout`.
    pub fn map(fd: std::os::fd::BorrowedFd<'_>, layout: Layout) -> std::io::Result<Control> {
        let map = ControlMap::map(fd, layout.control_len())?;
        let c = Control { map, layout };
        if c.map.u64(0).load(SeqCst) != MAGIC {
            return Err(std::io::Error::other(
                "control block has no wasm-ipc header",
            ));
        }
        Ok(c)
    }

    /// Creates and maps a fresh control block (the supervisor does this once per channel).
    pub fn create(name: &str, layout: Layout) -> std::io::Result<(std::fs::File, Control)> {
        let file = sys::sized_memfd(name, layout.control_len())?;
        let map = ControlMap::map(std::os::fd::AsFd::as_fd(&file), layout.control_len())?;
        map.u64(0).store(MAGIC, SeqCst);
        Ok((file, Control { map, layout }))
    }

    fn at(&self, off: usize) -> &std::sync::atomic::AtomicU32 {
        self.map.u32(off)
    }

    /// Producer `p` failed: its consumers get peer-failed once its ring is drained.
    pub fn fail_producer(&self, p: u32) {
        self.at(self.layout.failed(p)).store(1, SeqCst);
        self.ring_all_doorbells();
    }

    /// Consumer `c` is gone: producers stop waiting for it.
    pub fn detach_consumer(&self, c: u32) {
        self.at(self.layout.doorbell(c) + 8).store(1, SeqCst);
        for p in 0..self.layout.producers {
            let space = self.at(self.layout.space(p));
            space.fetch_add(1, SeqCst);
            sys::futex_wake(space);
        }
    }

    fn ring_all_doorbells(&self) {
        for c in 0..self.layout.consumers {
            let bell = self.at(self.layout.doorbell(c));
            bell.fetch_add(1, SeqCst);
            sys::futex_wake(bell);
        }
    }
}

/// Waits until `ready()` gives a result, per `wait`, on futex `word` with its count of
/// sleepers `waiting` (a waker calls `FUTEX_WAKE` only when it is not 0, after changing
/// `word`). Returns the stop's error when stopped or past the deadline.
pub(super) fn wait_until<T>(
    wait: Wait,
    stop: &Stop,
    word: &std::sync::atomic::AtomicU32,
    waiting: &std::sync::atomic::AtomicU32,
    stats: &mut WaitStats,
    mut ready: impl FnMut() -> Option<T>,
) -> Result<T, PortError> {
    if let Some(v) = ready() {
        return Ok(v);
    }
    // Not ready: the wait is timed from here (a call that finds its way clear reads no clock).
    let since = sys::now_ns();
    let r = wait_for(wait, stop, word, waiting, stats, ready);
    stats.waited_ns += sys::now_ns().saturating_sub(since);
    r
}

/// [`wait_until`] once the first look found nothing.
fn wait_for<T>(
    wait: Wait,
    stop: &Stop,
    word: &std::sync::atomic::AtomicU32,
    waiting: &std::sync::atomic::AtomicU32,
    stats: &mut WaitStats,
    mut ready: impl FnMut() -> Option<T>,
) -> Result<T, PortError> {
    let (mut spin_for, yield_) = match wait {
        Wait::Adaptive { spin_ns, yield_ } => (Duration::from_nanos(spin_ns), yield_),
        Wait::Spin => (Duration::MAX, false),
        Wait::Futex => (Duration::ZERO, false),
    };
    if stats.spin_backoff > 0 {
        // A recent yield was lost to another process: sleep at once for a while.
        stats.spin_backoff -= 1;
        spin_for = Duration::ZERO;
    }
    let started = Instant::now();
    let mut spins: u32 = 0;
    while started.elapsed() < spin_for {
        for _ in 0..64 {
            if let Some(v) = ready() {
                return Ok(v);
            }
            std::hint::spin_loop();
        }
        if yield_ {
            stats.sched_yields += 1;
            let before = Instant::now();
            sys::yield_now();
            if before.elapsed() > YIELD_LOST {
                stats.yields_lost += 1;
                stats.spin_backoff = SPIN_BACKOFF_WAITS;
                break;
            }
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1024) && (stop.reason().is_some() || stop.remaining().is_zero()) {
            return Err(stop.error());
        }
    }
    loop {
        if stop.reason().is_some() || stop.remaining().is_zero() {
            return Err(stop.error());
        }
        let seen = word.load(SeqCst);
        // A count, not a flag: several may sleep on one word (the bounded buffer's
        // semaphores and lock); a waker wakes when it is not 0.
        waiting.fetch_add(1, SeqCst);
        if let Some(v) = ready() {
            waiting.fetch_sub(1, SeqCst);
            return Ok(v);
        }
        let slice = SLEEP_SLICE.min(stop.remaining());
        let slept = Instant::now();
        stats.futex_waits += 1;
        if sys::futex_wait(word, seen, slice) == FutexWait::Woken {
            stats.wakeups += 1;
        }
        waiting.fetch_sub(1, SeqCst);
        if let Some(v) = ready() {
            if slept.elapsed() >= slice {
                // Data was there but nobody woke us: a lost wake-up.
                stats.lost_wakeups += 1;
            }
            return Ok(v);
        }
    }
}

/// How often a worker slept, how often a `FUTEX_WAKE` ended the sleep, and how often a sleep
/// timed out although data had arrived.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WaitStats {
    /// `FUTEX_WAIT` calls.
    futex_waits: u64,
    /// `FUTEX_WAKE` calls made for a peer on the hot path (publish, release).
    pub(super) futex_wakes: u64,
    /// `sched_yield` calls while spinning (more processes than CPUs).
    sched_yields: u64,
    /// Sleeps ended by a peer's `FUTEX_WAKE`.
    wakeups: u64,
    /// Sleeps that ended by timeout with data present.
    lost_wakeups: u64,
    /// Yields that kept this process off the CPU longer than [`YIELD_LOST`] (the machine
    /// was busy with other processes); each stops the spinning for a while.
    yields_lost: u64,
    /// Waits left that sleep at once, after a lost yield.
    spin_backoff: u32,
    /// Time spent in waits, ns (from the first look that found nothing).
    pub(super) waited_ns: u64,
}

impl WaitStats {
    pub(super) fn counters(&self) -> Counters {
        Counters::from([
            ("futex_waits", self.futex_waits),
            ("futex_wakes", self.futex_wakes),
            ("sched_yields", self.sched_yields),
            ("wakeups", self.wakeups),
            ("lost_wakeups", self.lost_wakeups),
            ("yields_lost", self.yields_lost),
        ])
    }
}

/// The sending half of an `shm` port: producer `p` of a channel.
#[derive(Debug)]
pub struct ShmSender {
    ctl: Arc<Control>,
    p: u32,
    head: u32,
    /// The slot each message in flight was written to, by position (`seq % capacity`).
    slot_of: Vec<u32>,
    /// Free slots, the most recently released on top: a loan takes the slot whose bytes are
    /// most likely still in the caches (iceoryx2's pool does the same), so a consumer that
    /// keeps up keeps the ring's working set at a few slots rather than all of them.
    free: Vec<u32>,
    /// Messages up to here have had their slots put back on `free`.
    reclaimed: u32,
    /// The slot of the current loan, until it is published.
    loaned: Option<u32>,
    wait: Wait,
    stats: WaitStats,
    /// Link keys, by consumer index (for messages).
    links: Vec<String>,
    overflow: Overflow,
    /// The ring's sequence numbers: every consumer of a ring gets the same messages, so its
    /// links share them (and a drop-newest is a drop on every link).
    offered: Offered,
    /// Under `drop-oldest`: messages replaced before each consumer read them.
    replaced: Vec<u64>,
    /// Under `drop-oldest`: slots of messages no consumer can claim any more that one still
    /// reads (its `held` word names them); free once it releases them.
    deferred: Vec<u32>,
}

impl ShmSender {
    /// Maps the ring's slot area over `window` (read-write) and attaches as producer `p`.
    pub fn open(
        ctl: Arc<Control>,
        p: u32,
        slots: std::os::fd::BorrowedFd<'_>,
        window: Window<'_>,
        wait: Wait,
        links: Vec<String>,
        overflow: Overflow,
    ) -> std::io::Result<ShmSender> {
        sys::map_over_window(slots, ctl.layout.ring_len as usize, window, true)?;
        let head = ctl.at(ctl.layout.head(p)).load(SeqCst);
        let l = ctl.layout;
        Ok(ShmSender {
            ctl,
            p,
            head,
            slot_of: vec![0; l.capacity as usize],
            // Slot 0 on top: a fresh ring starts where the old one did.
            free: (0..l.slots).rev().collect(),
            reclaimed: head,
            loaned: None,
            wait,
            stats: WaitStats::default(),
            links,
            overflow,
            offered: Offered::default(),
            replaced: vec![0; l.consumers as usize],
            deferred: Vec::new(),
        })
    }

    /// The attached consumer whose cursor lags most behind `head` (wrapping arithmetic), and
    /// that cursor, each read once: the one that holds the ring full. (Reading the cursor a
    /// second time could see it advanced while another consumer now lags more.)
    fn lagging(&self) -> Option<(u32, u32)> {
        let l = &self.ctl.layout;
        (0..l.consumers)
            .filter(|&c| self.ctl.at(l.doorbell(c) + 8).load(SeqCst) == 0)
            .map(|c| (c, self.ctl.at(l.tail(self.p, c)).load(SeqCst)))
            .max_by_key(|&(_, t)| self.head.wrapping_sub(t))
    }

    /// Every message before `tail` (the slowest consumer's cursor) is released by all: its
    /// slot is free again. Pushed oldest first, so the most recently released ends on top.
    /// (A cursor never moves back; if one did, nothing is reclaimed.) Called before a loan
    /// takes a slot and before a publish reuses a position, whose `slot_of` entry names the
    /// slot to reclaim.
    fn reclaim(&mut self, tail: u32) {
        let l = self.ctl.layout;
        let newly = tail.wrapping_sub(self.reclaimed);
        if newly <= l.capacity {
            for _ in 0..newly {
                self.free
                    .push(self.slot_of[(self.reclaimed % l.capacity) as usize]);
                self.reclaimed = self.reclaimed.wrapping_add(1);
            }
        }
    }

    /// The slowest attached consumer's cursor, or `None` when every consumer is gone.
    fn min_tail(&self) -> Option<u32> {
        self.lagging().map(|(_, t)| t)
    }

    /// Whether some consumer has claimed `slot` (its `held` word), attached or not: a
    /// consumer's process may read its window until it exits.
    fn held_by_someone(&self, slot: u32) -> bool {
        let l = self.ctl.layout;
        (0..l.consumers).any(|c| self.ctl.at(l.held(self.p, c)).load(SeqCst) == slot + 1)
    }

    /// `drop-oldest`'s reclaim: every message before `tail` (the slowest attached consumer's
    /// cursor, loaded before this looks at any `held` word) can no longer be claimed; its slot
    /// is free unless a consumer claimed it and still reads it, then it waits in `deferred`.
    /// Slots in `deferred` whose reader let go are free again.
    fn reclaim_unheld(&mut self, tail: u32) {
        let l = self.ctl.layout;
        let mut i = 0;
        while i < self.deferred.len() {
            if self.held_by_someone(self.deferred[i]) {
                i += 1;
            } else {
                let slot = self.deferred.swap_remove(i);
                self.free.push(slot);
            }
        }
        let newly = tail.wrapping_sub(self.reclaimed);
        if newly <= l.capacity {
            for _ in 0..newly {
                let slot = self.slot_of[(self.reclaimed % l.capacity) as usize];
                if self.held_by_someone(slot) {
                    self.deferred.push(slot);
                } else {
                    self.free.push(slot);
                }
                self.reclaimed = self.reclaimed.wrapping_add(1);
            }
        }
    }

    /// `drop-oldest`: before position `head` is written, every attached consumer with
    /// `capacity` messages unread loses its oldest one that it has not claimed (its cursor is
    /// moved past it, by compare-and-swap: a consumer claims a message the same way, so the
    /// message is either claimed or replaced, never both).
    fn replace_oldest(&mut self) {
        let l = self.ctl.layout;
        for c in 0..l.consumers {
            if self.ctl.at(l.doorbell(c) + 8).load(SeqCst) != 0 {
                continue;
            }
            let tail = self.ctl.at(l.tail(self.p, c));
            // Each failed exchange means the consumer claimed a message, which made room;
            // bounded all the same.
            for _ in 0..=l.capacity {
                let t = tail.load(SeqCst);
                if self.head.wrapping_sub(t) < l.capacity {
                    break;
                }
                if tail
                    .compare_exchange(t, t.wrapping_add(1), SeqCst, SeqCst)
                    .is_ok()
                {
                    self.replaced[c as usize] += 1;
                }
            }
        }
    }
}

impl Sender for ShmSender {
    fn loan(&mut self, _win: Window<'_>, len: u32, stop: &Stop) -> Result<u32, PortError> {
        let l = self.ctl.layout;
        if len > l.slot_size {
            return Err(PortError::TooLarge {
                len,
                slot: l.slot_size,
            });
        }
        let ctl: &Control = &self.ctl;
        let head = self.head;
        let p = self.p;
        if let Some(slot) = self.loaned {
            return Ok(slot * l.stride);
        }
        let free = |s: &ShmSender| -> Option<Result<u32, PortError>> {
            match s.min_tail() {
                None => Some(Err(PortError::Closed)),
                // A cursor ahead of head or more than `capacity` behind is corrupt: treat as
                // full rather than overwrite a slot someone may be reading.
                Some(t) if head.wrapping_sub(t) < l.capacity => Some(Ok(t)),
                Some(_) => None,
            }
        };
        let r = if self.overflow != Overflow::Block {
            // Nobody waits. Under drop-newest, with every position in flight the spare slot
            // takes the message and `publish` drops it; under drop-oldest `publish` makes room
            // by replacing the oldest unread message, and the ring has a slot for the loan
            // whatever the consumers hold.
            match self.min_tail() {
                None => Err(PortError::Closed),
                Some(t) if head.wrapping_sub(t) <= l.capacity => Ok(Ok(t)),
                Some(_) => Err(PortError::PeerFailed(format!(
                    "ring {p} is corrupt: a cursor is more than {} messages behind",
                    l.capacity
                ))),
            }
        } else {
            let mut stats = self.stats;
            let r = wait_until(
                self.wait,
                stop,
                ctl.at(l.space(p)),
                ctl.at(l.producer_waiting(p)),
                &mut stats,
                || free(self),
            );
            self.stats = stats;
            r
        };
        let tail = match r {
            Ok(r) => r?,
            // Say who held the producer back: a ring stays full while its slowest consumer
            // keeps its oldest message.
            Err(PortError::Interrupted(why)) => {
                let lagging = self.lagging().map(|(c, _)| c);
                let who = lagging
                    .and_then(|q| self.links.get(q as usize))
                    .map_or("a consumer".to_string(), |k| {
                        format!("the consumer on link {k}")
                    });
                return Err(PortError::Interrupted(format!(
                    "{why}; the ring was full: {who} had not released its oldest message"
                )));
            }
            Err(e) => return Err(e),
        };
        if self.overflow == Overflow::DropOldest {
            self.reclaim_unheld(tail);
        } else {
            self.reclaim(tail);
        }
        // `head - tail < capacity` messages are in flight, each holding one slot: one is free
        // (under `drop-newest`, `head - tail <= capacity` and one slot more; under
        // `drop-oldest` also one per consumer for the message it may hold).
        let slot = self.free.pop().ok_or_else(|| {
            PortError::PeerFailed("ring bookkeeping lost a slot (a cursor moved back)".into())
        })?;
        self.loaned = Some(slot);
        Ok(slot * l.stride)
    }

    fn publish(
        &mut self,
        _win: Window<'_>,
        // Nothing is copied: the consumers read the slot where the plugin wrote it.
        _meter: &mut CopyMeter,
        msg: Outgoing,
        _stop: &Stop,
    ) -> Result<(), PortError> {
        let Outgoing {
            off,
            len,
            publish_ns,
        } = msg;
        let l = self.ctl.layout;
        // Closed means nobody was there to take it. A consumer that leaves once the message
        // is out (it received it and finished) does not turn a delivered message into Closed:
        // a server would take that for a client that failed mid-call.
        if self.min_tail().is_none() {
            return Err(PortError::Closed);
        }
        let Some(slot) = self.loaned.take() else {
            return Err(PortError::PeerFailed("publish without a loan".into()));
        };
        debug_assert_eq!(off, slot * l.stride);
        if self.overflow == Overflow::DropNewest
            && let Some(t) = self.min_tail()
        {
            if self.head.wrapping_sub(t) >= l.capacity {
                // No room: the message is dropped on every link, and its slot is free again.
                self.free.push(slot);
                self.offered.drop_one();
                return Ok(());
            }
            // Room came after the loan: the position this message takes was released since,
            // and its slot goes back on the free list before the position names another.
            self.reclaim(t);
        }
        if self.overflow == Overflow::DropOldest {
            self.replace_oldest();
            // The position this message takes is past every cursor now: its old slot is
            // reclaimed (or deferred) before the position names another.
            if let Some(t) = self.min_tail() {
                self.reclaim_unheld(t);
            }
        }
        let position = self.head % l.capacity;
        self.slot_of[position as usize] = slot;
        let meta = l.meta(self.p, position);
        // Relaxed: the head store below (SeqCst, so a release) publishes them, and consumers
        // read them only after loading that head (SeqCst, so an acquire). Each SeqCst store
        // is a full fence on x86; the head's is the one the waiting protocol needs.
        self.ctl.at(meta).store(len, Relaxed);
        self.ctl.at(meta + 4).store(slot, Relaxed);
        self.ctl.map.u64(meta + 8).store(publish_ns, Relaxed);
        self.ctl.at(meta + 16).store(self.offered.take(), Relaxed);
        self.head = self.head.wrapping_add(1);
        self.ctl.at(l.head(self.p)).store(self.head, SeqCst);
        // Ring only a consumer that is about to sleep or sleeps. The head store above and the
        // waiting flag's load here pair with the sleeper's flag store and head load (all
        // SeqCst): either the sleeper sees the new head before it sleeps, or this sees its
        // flag and changes the futex word under it. So no line is written per message when
        // nobody waits.
        for c in 0..l.consumers {
            if self.ctl.at(l.doorbell(c) + 4).load(SeqCst) != 0 {
                let bell = self.ctl.at(l.doorbell(c));
                bell.fetch_add(1, SeqCst);
                self.stats.futex_wakes += 1;
                sys::futex_wake(bell);
            }
        }
        Ok(())
    }

    fn close(&mut self, _stop: &Stop) {
        // The count before the flag: a consumer that sees the flag reads the final count.
        let l = self.ctl.layout;
        self.ctl
            .at(l.offered(self.p))
            .store(self.offered.count(), SeqCst);
        self.ctl.at(l.closed(self.p)).store(1, SeqCst);
        self.ctl.ring_all_doorbells();
    }

    fn abort(&mut self) {
        self.ctl.fail_producer(self.p);
    }

    fn counters(&self) -> Counters {
        self.stats.counters()
    }

    fn waited_ns(&self) -> u64 {
        self.stats.waited_ns
    }

    fn dropped(&self) -> Vec<u64> {
        if self.overflow == Overflow::DropOldest {
            return self.replaced.clone();
        }
        vec![self.offered.dropped; self.ctl.layout.consumers as usize]
    }
}

/// The receiving half of an `shm` port: consumer `c` of a channel, reading every ring.
#[derive(Debug)]
pub struct ShmReceiver {
    ctl: Arc<Control>,
    c: u32,
    cursor: Cursor,
    /// Under `drop-oldest` a message is claimed (the cursor moves past it, by
    /// compare-and-swap, since the producer may move it too) when received, not released.
    overflow: Overflow,
    wait: Wait,
    stats: WaitStats,
}

/// Where a consumer is in every ring.
#[derive(Debug)]
struct Cursor {
    tails: Vec<u32>,
    next: u32,
    held: Option<u32>,
    /// Rings of failed producers this consumer no longer waits for (`forget_failed`).
    forgotten: Vec<bool>,
    /// `drop-oldest`: claim each message by moving the shared cursor past it.
    claim: bool,
    /// The consumer's index (its `held` words).
    c: u32,
    /// Claims lost in a row to the producer (bounds `poll`'s retries).
    lost_claims: u32,
}

impl ShmReceiver {
    /// Maps every ring's slot area over `window` (read-only, ring `p` at `p × ring_len`) and
    /// attaches as consumer `c`.
    pub fn open(
        ctl: Arc<Control>,
        c: u32,
        slots: &[std::os::fd::BorrowedFd<'_>],
        window: Window<'_>,
        wait: Wait,
        overflow: Overflow,
    ) -> std::io::Result<ShmReceiver> {
        let l = ctl.layout;
        for (p, fd) in slots.iter().enumerate() {
            let part = window
                .sub(p * l.ring_len as usize, l.ring_len as usize)
                .ok_or_else(|| std::io::Error::other("window too small for every ring"))?;
            sys::map_over_window(*fd, l.ring_len as usize, part, false)?;
        }
        let tails = (0..l.producers)
            .map(|p| ctl.at(l.tail(p, c)).load(SeqCst))
            .collect();
        Ok(ShmReceiver {
            ctl,
            c,
            cursor: Cursor {
                tails,
                next: 0,
                held: None,
                forgotten: vec![false; l.producers as usize],
                claim: overflow == Overflow::DropOldest,
                c,
                lost_claims: 0,
            },
            overflow,
            wait,
            stats: WaitStats::default(),
        })
    }
}

impl Cursor {
    /// A message if one is ready, else whether every ring ended (Closed) or one failed.
    fn poll(&mut self, ctl: &Control) -> Option<Result<Delivery, PortError>> {
        let l = ctl.layout;
        let mut all_closed = true;
        let mut failed = None;
        for k in 0..l.producers {
            let p = (self.next + k) % l.producers;
            // The flags first: a producer publishes before it closes (or fails), so when a
            // flag is already set, the head read after it is final.
            let closed = ctl.at(l.closed(p)).load(SeqCst) != 0;
            let failed_flag = ctl.at(l.failed(p)).load(SeqCst) != 0;
            let head = ctl.at(l.head(p)).load(SeqCst);
            if self.claim {
                // The producer moves this cursor too (past messages it replaced).
                self.tails[p as usize] = ctl.at(l.tail(p, self.c)).load(SeqCst);
            }
            let tail = self.tails[p as usize];
            let avail = head.wrapping_sub(tail);
            if avail > l.capacity {
                return Some(Err(PortError::PeerFailed(format!(
                    "ring {p} is corrupt: {avail} messages pending in {} slots",
                    l.capacity
                ))));
            }
            if avail > 0 {
                let meta = l.meta(p, tail % l.capacity);
                let len = ctl.at(meta).load(SeqCst);
                let slot = ctl.at(meta + 4).load(SeqCst);
                let publish_ns = ctl.map.u64(meta + 8).load(SeqCst);
                let seq = ctl.at(meta + 16).load(SeqCst);
                if len > l.slot_size {
                    return Some(Err(PortError::PeerFailed(format!(
                        "ring {p} announces {len} bytes in a {}-byte slot",
                        l.slot_size
                    ))));
                }
                if slot >= l.slots {
                    return Some(Err(PortError::PeerFailed(format!(
                        "ring {p} names slot {slot} of {}",
                        l.slots
                    ))));
                }
                if self.claim {
                    // Claim the slot, then the position: the producer reads the cursor
                    // before the `held` words, so once the cursor is past this message the
                    // slot is known held. Losing the exchange means the producer replaced
                    // the message meanwhile (what was read above may be torn): look again.
                    let held = ctl.at(l.held(p, self.c));
                    held.store(slot + 1, SeqCst);
                    let cursor = ctl.at(l.tail(p, self.c));
                    if cursor
                        .compare_exchange(tail, tail.wrapping_add(1), SeqCst, SeqCst)
                        .is_err()
                    {
                        held.store(0, SeqCst);
                        // Each loss means the producer published meanwhile: a few retries
                        // find the next message; past them, the caller polls again.
                        self.lost_claims += 1;
                        if self.lost_claims > 64 {
                            self.lost_claims = 0;
                            return None;
                        }
                        return self.poll(ctl);
                    }
                    self.lost_claims = 0;
                    self.tails[p as usize] = tail.wrapping_add(1);
                }
                self.next = (p + 1) % l.producers;
                self.held = Some(p);
                return Some(Ok(Delivery {
                    off: p * l.ring_len + slot * l.stride,
                    len,
                    publish_ns,
                    link: p as usize,
                    seq,
                }));
            }
            if self.forgotten[p as usize] {
                continue;
            }
            if failed_flag {
                failed = Some(p);
            }
            if !closed {
                all_closed = false;
            }
        }
        if let Some(p) = failed {
            return Some(Err(PortError::PeerFailed(format!(
                "producer {p} of the channel failed"
            ))));
        }
        if all_closed {
            return Some(Err(PortError::Closed));
        }
        None
    }
}

impl Receiver for ShmReceiver {
    fn receive(
        &mut self,
        _win: Window<'_>,
        // Nothing is copied: the message stays in the producer's slot, mapped read-only here.
        _meter: &mut CopyMeter,
        stop: &Stop,
    ) -> Result<Delivery, PortError> {
        let ctl: &Control = &self.ctl;
        let l = ctl.layout;
        let cursor = &mut self.cursor;
        wait_until(
            self.wait,
            stop,
            ctl.at(l.doorbell(self.c)),
            ctl.at(l.doorbell(self.c) + 4),
            &mut self.stats,
            || cursor.poll(ctl),
        )?
    }

    fn release(&mut self) -> Result<(), PortError> {
        let l = self.ctl.layout;
        let Some(p) = self.cursor.held.take() else {
            return Ok(());
        };
        if self.overflow == Overflow::DropOldest {
            // The cursor moved when the message was claimed; the slot is free to reuse now.
            self.ctl.at(l.held(p, self.c)).store(0, SeqCst);
            return Ok(());
        }
        let t = &mut self.cursor.tails[p as usize];
        *t = t.wrapping_add(1);
        self.ctl.at(l.tail(p, self.c)).store(*t, SeqCst);
        // As in `publish`: the tail store and this flag load pair with the producer's flag
        // store and tail loads, so the space word changes only when the producer waits (in a
        // fan-out, consumers no longer all write its line for every message).
        if self.ctl.at(l.producer_waiting(p)).load(SeqCst) != 0 {
            let space = self.ctl.at(l.space(p));
            space.fetch_add(1, SeqCst);
            self.stats.futex_wakes += 1;
            sys::futex_wake(space);
        }
        Ok(())
    }

    fn forget_failed(&mut self) -> Vec<usize> {
        let l = self.ctl.layout;
        let mut gone = Vec::new();
        for p in 0..l.producers {
            let i = p as usize;
            let failed = self.ctl.at(l.failed(p)).load(SeqCst) != 0;
            let head = self.ctl.at(l.head(p)).load(SeqCst);
            // Under `drop-oldest` the producer moved the cursor too; it has stopped by now.
            let tail = if self.overflow == Overflow::DropOldest {
                self.ctl.at(l.tail(p, self.c)).load(SeqCst)
            } else {
                self.cursor.tails[i]
            };
            if failed && !self.cursor.forgotten[i] && head == tail {
                self.cursor.forgotten[i] = true;
                gone.push(i);
            }
        }
        gone
    }

    fn detach(&mut self) {
        self.ctl.detach_consumer(self.c);
    }

    fn counters(&self) -> Counters {
        self.stats.counters()
    }

    fn waited_ns(&self) -> u64 {
        self.stats.waited_ns
    }

    fn ends(&self) -> Vec<Option<u32>> {
        let l = self.ctl.layout;
        (0..l.producers)
            .map(|p| {
                (self.ctl.at(l.closed(p)).load(SeqCst) != 0)
                    .then(|| self.ctl.at(l.offered(p)).load(SeqCst))
            })
            .collect()
    }

    fn window_is_read_only(&self) -> bool {
        true
    }
}
