//! `shm` with `sync = "semaphores"` or `"mutex"`: the textbook's bounded buffer, beside the
//! lock-free rings of [`super::shm`], so that what the classic solution costs can be measured.
//!
//! Per channel there is **one buffer shared by all its producers** (the lock-free variant has
//! one ring per producer), of `capacity × producers` slots:
//!
//! - a **slot area**: a memfd of `slots × stride` bytes mapped over every producer's window
//!   read-write and over every consumer's window read-only. A producer takes a free slot, the
//!   plugin writes its message there, and every consumer reads it in place: no copies, as in
//!   the lock-free variant.
//! - a **control block** no guest maps: the mutex word, the semaphores or condition
//!   variables, the queue of published messages (slot, length, sequence number, producer,
//!   publish time), the stack of free slots, a reference count per slot (a slot is free once
//!   every consumer released it), and per consumer its read index, per producer its end.
//!
//! `semaphores` is the textbook's producer `wait(empty); wait(mutex); add; signal(mutex);
//! signal(full)` and consumer `wait(full); wait(mutex); remove; signal(mutex)`, with `release`
//! as `wait(mutex); free; signal(mutex); signal(empty)`. The zero-copy twist: a producer
//! takes its slot under the mutex at `loan` and adds the message to the queue at `publish`,
//! the plugin writing in between outside the lock. `full` is one semaphore per consumer
//! (each consumer gets every message). `mutex` guards the same state with one mutex and the
//! condition variables `not-full` and, per consumer, `not-empty`.
//!
//! Both are built on futexes, as POSIX `sem_t` and `pthread_mutex_t` are: a semaphore is a
//! count, a count of sleepers and a sequence word to sleep on; the mutex word holds its
//! owner's endpoint id, so that the supervisor, told that a worker died, sees whether it died
//! holding the lock (a robust mutex's owner-died): it then breaks the lock and fails the
//! channel with a verdict naming the plugin, and every waiter wakes. Every wait honours
//! `[run] wait` (spin, futex, adaptive) through [`super::shm::wait_until`], so a waiting side
//! sleeps in the kernel as the textbook's does.
//!
//! Each port counts its lock acquisitions, the contended ones (the mutex was held) and the
//! time it waited for the mutex (`lock_acquisitions`, `lock_contended`, `lock_wait_ns`).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::shm::{Wait, WaitStats, wait_until};
use super::{
    ChannelDesc, ChannelPlan, Counters, Delivery, Direction, FdSource, Fds, Offered, Outgoing,
    PeerLost, PortError, PortSpec, Receiver, Sender, Stop,
};
use crate::scenario::{BackendKind, SyncMode};
use crate::sys::{self, ControlMap, CopyMeter, Window};

const MAGIC: u64 = 0x5741_534d_4250_4231; // "WASMBPB1"
const LINE: usize = 64;
/// Bytes of a queue entry: slot, length, sequence number, producer, publish time.
const ENTRY: usize = 24;

/// The mutex word of a lock the supervisor broke: its holder died; nobody can take it again.
const BROKEN: u32 = u32::MAX;
/// The supervisor's endpoint id, when it takes the lock to detach a consumer that died.
const SUPERVISOR: u32 = u32::MAX - 1;
/// How long cleanup (a consumer leaving, the supervisor detaching a dead one) waits for the
/// lock before it breaks the channel instead.
const CLEANUP_WAIT: Duration = Duration::from_secs(2);

/// The environment variable of the test-only hook: a producer whose worker has it holds the
/// lock from its `N`-th publish on until it is stopped or killed, so that a test can kill it
/// inside the critical section. Workers are started with it only when the supervisor's
/// environment has it.
pub const HOLD_LOCK_VAR: &str = "WASM_IPC_TEST_HOLD_LOCK";

/// The geometry of a bounded buffer; every offset is computed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Producers.
    pub producers: u32,
    /// Consumers.
    pub consumers: u32,
    /// Slots of the buffer: `capacity × producers`.
    pub slots: u32,
    /// Largest message.
    pub slot_size: u32,
    /// Distance between slots (as in the lock-free rings).
    pub stride: u32,
    /// Bytes of the slot area (a multiple of 64 KiB).
    pub area_len: u32,
    /// `semaphores` or `mutex`.
    pub sync: SyncMode,
}

/// The buffer's slots for a channel: `capacity` per producer, so that a producer alone has
/// as many messages in flight as on its lock-free ring.
fn slots(capacity: u64, producers: u64) -> u64 {
    capacity.saturating_mul(producers)
}

fn control_bytes(producers: u64, consumers: u64, slots: u64) -> u64 {
    let line = LINE as u64;
    (4 * line)
        .saturating_add(consumers.saturating_mul(line))
        .saturating_add(producers.saturating_mul(line))
        .saturating_add(slots.saturating_mul(ENTRY as u64 + 8))
        .div_ceil(4096)
        .saturating_mul(4096)
}

/// What a bounded-buffer channel of `shape` costs (see [`super::Backend::cost`]).
pub fn cost(shape: &super::ChannelShape) -> super::ChannelCost {
    let (p, c) = (shape.producers, shape.consumers);
    let n = slots(shape.capacity, p);
    let (stride, area) = super::shm::ring_bytes(shape.slot_size, n);
    super::ChannelCost {
        producer_window: area,
        consumer_window: area,
        windows_why: format!(
            "the channel's one buffer (sync = \"{}\") has capacity × producers = {n} slots × \
             {stride} B (the slot on whole cache lines) = {area} B in whole 64 KiB pages, \
             mapped in every producer's and every consumer's window",
            shape.sync.name()
        ),
        shared_bytes: area.saturating_add(control_bytes(p, c, n)),
        producer_fds: 2,
        consumer_fds: 2,
        // The control block, the slot area and its read-only reopening, and each worker's
        // duplicates of two of them.
        supervisor_fds: 3u64.saturating_add(p.saturating_add(c).saturating_mul(2)),
    }
}

impl Layout {
    fn new(ch: &ChannelDesc<'_>) -> anyhow::Result<Layout> {
        let (p, c) = (ch.producers.len() as u64, ch.consumers.len() as u64);
        let n = slots(u64::from(ch.capacity), p);
        let (stride, area) = super::shm::ring_bytes(u64::from(ch.slot_size), n);
        let area_len = u32::try_from(area).ok().with_context(|| {
            format!(
                "a bounded buffer of {n} slots of {} bytes needs {area} bytes, more than a \
                 32-bit window can hold: lower `slot_size` or `capacity`",
                ch.slot_size
            )
        })?;
        Ok(Layout {
            producers: u32::try_from(p)?,
            consumers: u32::try_from(c)?,
            slots: u32::try_from(n)?,
            slot_size: ch.slot_size,
            stride: u32::try_from(stride)?,
            area_len,
            sync: ch.sync,
        })
    }

    /// 0 or the id of the endpoint whose death broke the lock.
    const BROKEN_BY: usize = 8;
    /// The mutex word (0, or its owner's id) and its sleepers.
    const LOCK: usize = LINE;
    /// `empty` (semaphores: count, sleepers, sequence) or `not-full` (mutex: its sleepers
    /// and sequence at the same places).
    const SPACE: usize = 2 * LINE;
    /// The queue's write count and the free stack's height.
    const INDICES: usize = 3 * LINE;

    /// Consumer `q`'s `full` (or `not-empty`) at +0 (count), +4 (sleepers), +8 (sequence); its
    /// read count at +12; detached at +16; the slot of the message it reads (+ 1; 0 for
    /// none) at +20, so that a consumer that dies reading one still lets go of it.
    fn consumer(&self, q: u32) -> usize {
        4 * LINE + q as usize * LINE
    }
    /// Producer `p`'s closed flag at +0, failed flag at +4, the count it offered at +8.
    fn producer(&self, p: u32) -> usize {
        4 * LINE + (self.consumers + p) as usize * LINE
    }
    fn entry(&self, i: u32) -> usize {
        4 * LINE
            + (self.consumers + self.producers) as usize * LINE
            + (i % self.slots) as usize * ENTRY
    }
    fn free(&self, k: u32) -> usize {
        self.entry(0) + self.slots as usize * ENTRY + k as usize * 4
    }
    fn refs(&self, slot: u32) -> usize {
        self.free(0) + self.slots as usize * 4 + slot as usize * 4
    }
    fn control_len(&self) -> usize {
        (self.refs(self.slots)).div_ceil(4096) * 4096
    }
}

/// Endpoint ids in the mutex word: producer `p` is `p + 1`, consumer `q` is `0x1_0000 + q + 1`.
fn producer_id(p: u32) -> u32 {
    p + 1
}
fn consumer_id(q: u32) -> u32 {
    0x1_0000 + q + 1
}

/// What an endpoint id names, for messages: by its link when `names` has it.
fn who(id: u32, names: &[(u32, String)]) -> String {
    let side = if id > 0x1_0000 {
        "consumer"
    } else {
        "producer"
    };
    if let Some((_, link)) = names.iter().find(|(n, _)| *n == id) {
        return format!("the {side} on link {link}");
    }
    match id {
        0x1_0001.. => format!("consumer {}", id - 0x1_0001),
        1.. => format!("producer {}", id - 1),
        0 => "nobody".into(),
    }
}

/// What a port's spec carries.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundedParams {
    /// This producer's or consumer's index in the channel.
    pub index: u32,
    /// The buffer's geometry.
    pub bounded: Layout,
    /// How blocked calls wait.
    pub wait: Wait,
}

/// A mapped control block.
#[derive(Debug)]
pub struct Control {
    map: ControlMap,
    layout: Layout,
    /// Endpoint ids this process can name by a link (for messages).
    names: Vec<(u32, String)>,
}

/// A port's lock figures.
#[derive(Debug, Clone, Copy, Default)]
struct LockStats {
    acquisitions: u64,
    contended: u64,
    wait_ns: u64,
}

impl Control {
    fn create(
        name: &str,
        layout: Layout,
        names: Vec<(u32, String)>,
    ) -> std::io::Result<(std::fs::File, Control)> {
        let file = sys::sized_memfd(name, layout.control_len())?;
        let map = ControlMap::map(file.as_fd(), layout.control_len())?;
        let c = Control { map, layout, names };
        for k in 0..layout.slots {
            // Slot 0 on top.
            c.at(layout.free(k)).store(layout.slots - 1 - k, SeqCst);
        }
        c.at(Layout::INDICES + 4).store(layout.slots, SeqCst);
        c.at(Layout::SPACE).store(layout.slots, SeqCst);
        c.map.u64(0).store(MAGIC, SeqCst);
        Ok((file, c))
    }

    fn map(
        fd: std::os::fd::BorrowedFd<'_>,
        layout: Layout,
        names: Vec<(u32, String)>,
    ) -> std::io::Result<Control> {
        let map = ControlMap::map(fd, layout.control_len())?;
        let c = Control { map, layout, names };
        if c.map.u64(0).load(SeqCst) != MAGIC {
            return Err(std::io::Error::other(
                "control block has no bounded-buffer header",
            ));
        }
        Ok(c)
    }

    fn at(&self, off: usize) -> &AtomicU32 {
        self.map.u32(off)
    }

    /// The error every waiter returns once the lock was broken.
    fn broken(&self) -> Option<PortError> {
        let by = self.at(Layout::BROKEN_BY).load(SeqCst);
        (by != 0).then(|| {
            PortError::PeerFailed(format!(
                "{} died holding the channel's lock (sync = \"{}\"): what it guarded may be \
                 half-changed, so the channel failed",
                who(by, &self.names),
                self.layout.sync.name()
            ))
        })
    }

    /// Takes the mutex as `me`, waiting per `wait`.
    fn lock(
        &self,
        me: u32,
        wait: Wait,
        stop: &Stop,
        stats: &mut WaitStats,
        locks: &mut LockStats,
    ) -> Result<(), PortError> {
        locks.acquisitions += 1;
        let word = self.at(Layout::LOCK);
        if word.compare_exchange(0, me, SeqCst, SeqCst).is_ok() {
            return Ok(());
        }
        locks.contended += 1;
        let started = Instant::now();
        let r = wait_until(wait, stop, word, self.at(Layout::LOCK + 4), stats, || {
            if let Some(e) = self.broken() {
                return Some(Err(e));
            }
            word.compare_exchange(0, me, SeqCst, SeqCst)
                .is_ok()
                .then_some(Ok(()))
        });
        locks.wait_ns += u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        r?
    }

    /// Releases the mutex, if `me` still holds it (a broken lock stays broken).
    fn unlock(&self, me: u32, stats: &mut WaitStats) {
        let word = self.at(Layout::LOCK);
        if word.compare_exchange(me, 0, SeqCst, SeqCst).is_ok()
            && self.at(Layout::LOCK + 4).load(SeqCst) != 0
        {
            stats.futex_wakes += 1;
            sys::futex_wake(word);
        }
    }

    /// Takes the mutex for cleanup, whatever the stop says, for at most [`CLEANUP_WAIT`]:
    /// false when it is broken or stays held (then the caller breaks the channel).
    fn lock_for_cleanup(&self, me: u32) -> bool {
        let word = self.at(Layout::LOCK);
        let started = Instant::now();
        loop {
            match word.compare_exchange(0, me, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(BROKEN) => return false,
                Err(_) if started.elapsed() > CLEANUP_WAIT => return false,
                Err(_) => std::thread::sleep(Duration::from_micros(200)),
            }
        }
    }

    /// A semaphore's `wait` (or a condition's sleep): takes one unit of the count at `sem`
    /// when there is one, else sleeps on its sequence word. `also` ends the wait early (the
    /// end of stream, every consumer gone).
    fn sem_wait(
        &self,
        sem: usize,
        wait: Wait,
        stop: &Stop,
        stats: &mut WaitStats,
        mut also: impl FnMut() -> Option<PortError>,
    ) -> Result<(), PortError> {
        let count = self.at(sem);
        let take = || {
            let mut v = count.load(SeqCst);
            while v > 0 {
                match count.compare_exchange(v, v - 1, SeqCst, SeqCst) {
                    Ok(_) => return true,
                    Err(now) => v = now,
                }
            }
            false
        };
        if take() {
            return Ok(());
        }
        wait_until(
            wait,
            stop,
            self.at(sem + 8),
            self.at(sem + 4),
            stats,
            || {
                if let Some(e) = self.broken() {
                    return Some(Err(e));
                }
                if take() {
                    return Some(Ok(()));
                }
                also().map(Err)
            },
        )?
    }

    /// A semaphore's `signal`: one unit more, and a sleeper woken.
    fn sem_post(&self, sem: usize, stats: &mut WaitStats) {
        self.at(sem).fetch_add(1, SeqCst);
        self.signal(sem, stats);
    }

    /// Wakes the sleepers on the sequence word of the semaphore or condition at `at` (the
    /// sequence first, so that one about to sleep sees it changed).
    fn signal(&self, at: usize, stats: &mut WaitStats) {
        let seq = self.at(at + 8);
        seq.fetch_add(1, SeqCst);
        if self.at(at + 4).load(SeqCst) != 0 {
            stats.futex_wakes += 1;
            sys::futex_wake(seq);
        }
    }

    /// A condition variable's `wait`: with the mutex held and the sequence `seen` read under
    /// it, releases the mutex, sleeps until the sequence moves (or `also` says to stop), and
    /// takes the mutex again.
    #[allow(clippy::too_many_arguments)]
    fn cond_wait(
        &self,
        cond: usize,
        seen: u32,
        me: u32,
        wait: Wait,
        stop: &Stop,
        stats: &mut WaitStats,
        locks: &mut LockStats,
    ) -> Result<(), PortError> {
        self.unlock(me, stats);
        let seq = self.at(cond + 8);
        wait_until(wait, stop, seq, self.at(cond + 4), stats, || {
            if let Some(e) = self.broken() {
                return Some(Err(e));
            }
            (seq.load(SeqCst) != seen).then_some(Ok(()))
        })??;
        self.lock(me, wait, stop, stats, locks)
    }

    /// Whether consumer `q` left.
    fn detached(&self, q: u32) -> bool {
        self.at(self.layout.consumer(q) + 16).load(SeqCst) != 0
    }

    fn attached(&self) -> usize {
        (0..self.layout.consumers)
            .filter(|&q| !self.detached(q))
            .count()
    }

    /// With the mutex held: consumer `q` is done with the message in `slot`; true when that
    /// freed the slot (every consumer released it).
    fn drop_ref(&self, slot: u32) -> bool {
        let l = self.layout;
        let refs = self.at(l.refs(slot));
        let left = refs.load(SeqCst).saturating_sub(1);
        refs.store(left, SeqCst);
        if left == 0 {
            let top = self.at(Layout::INDICES + 4);
            let h = top.load(SeqCst);
            if h < l.slots {
                self.at(l.free(h)).store(slot, SeqCst);
                top.store(h + 1, SeqCst);
            }
            return true;
        }
        false
    }

    /// A slot freed: `signal(empty)`, or `not-full` signalled.
    fn slot_freed(&self, stats: &mut WaitStats) {
        match self.layout.sync {
            SyncMode::Semaphores => self.sem_post(Layout::SPACE, stats),
            _ => self.signal(Layout::SPACE, stats),
        }
    }

    /// Consumer `q` leaves: with the mutex held by the caller, every message it has not
    /// released lets go of its slot (the one it reads, then every unread one), and it counts
    /// no more for new ones. Returns the slots freed.
    fn detach_locked(&self, q: u32) -> u32 {
        let l = self.layout;
        let at = l.consumer(q);
        if self.detached(q) {
            return 0;
        }
        self.at(at + 16).store(1, SeqCst);
        let mut freed = 0;
        let holding = self.at(at + 20).swap(0, SeqCst);
        if (1..=l.slots).contains(&holding) && self.drop_ref(holding - 1) {
            freed += 1;
        }
        let written = self.at(Layout::INDICES).load(SeqCst);
        let mut read = self.at(at + 12).load(SeqCst);
        // Bounded: at most `slots` messages are unread.
        for _ in 0..l.slots {
            if read == written {
                break;
            }
            let slot = self.at(l.entry(read)).load(SeqCst);
            if slot < l.slots && self.drop_ref(slot) {
                freed += 1;
            }
            read = read.wrapping_add(1);
        }
        self.at(at + 12).store(read, SeqCst);
        freed
    }

    /// After a detach: producers waiting for a slot look again (one may have been freed,
    /// or every consumer is gone).
    fn wake_producers(&self, freed: u32, stats: &mut WaitStats) {
        for _ in 0..freed {
            if self.layout.sync == SyncMode::Semaphores {
                self.at(Layout::SPACE).fetch_add(1, SeqCst);
            }
        }
        let seq = self.at(Layout::SPACE + 8);
        seq.fetch_add(1, SeqCst);
        stats.futex_wakes += 1;
        sys::futex_wake(seq);
    }

    /// Every consumer looks again (an end of stream, a failure).
    fn wake_consumers(&self) {
        for q in 0..self.layout.consumers {
            let seq = self.at(self.layout.consumer(q) + 8);
            seq.fetch_add(1, SeqCst);
            sys::futex_wake(seq);
        }
    }

    /// Breaks the lock if endpoint `id`, which died, holds it: the channel fails and every
    /// waiter wakes. True when it did.
    fn break_if_held_by(&self, id: u32) -> bool {
        let word = self.at(Layout::LOCK);
        if word.compare_exchange(id, BROKEN, SeqCst, SeqCst).is_err() {
            return false;
        }
        self.at(Layout::BROKEN_BY).store(id, SeqCst);
        self.wake_all();
        true
    }

    /// Fails the channel from cleanup that could not take the lock.
    fn break_for(&self, id: u32) {
        self.at(Layout::BROKEN_BY).store(id, SeqCst);
        self.at(Layout::LOCK).store(BROKEN, SeqCst);
        self.wake_all();
    }

    fn wake_all(&self) {
        sys::futex_wake(self.at(Layout::LOCK));
        let seq = self.at(Layout::SPACE + 8);
        seq.fetch_add(1, SeqCst);
        sys::futex_wake(seq);
        self.wake_consumers();
    }

    /// Consumer `q` leaves, outside any critical section (its own `detach`, or the supervisor
    /// when its worker died).
    fn detach(&self, q: u32, me: u32) {
        let mut stats = WaitStats::default();
        if self.broken().is_some() {
            return;
        }
        if !self.lock_for_cleanup(me) {
            if self.broken().is_none() {
                self.break_for(consumer_id(q));
            }
            return;
        }
        let freed = self.detach_locked(q);
        self.unlock(me, &mut stats);
        self.wake_producers(freed, &mut stats);
    }

    fn fail_producer(&self, p: u32) {
        self.at(self.layout.producer(p) + 4).store(1, SeqCst);
        self.wake_consumers();
    }
}

impl PeerLost for Arc<Control> {
    fn producer_lost(&self, p: usize) {
        if let Ok(p) = u32::try_from(p) {
            self.break_if_held_by(producer_id(p));
            self.fail_producer(p);
        }
    }
    fn consumer_lost(&self, q: usize) {
        if let Ok(q) = u32::try_from(q) {
            if self.break_if_held_by(consumer_id(q)) {
                return;
            }
            self.detach(q, SUPERVISOR);
        }
    }
}

/// Creates a bounded-buffer channel: the control block and the slot area.
pub fn plan(ch: &ChannelDesc<'_>, fds: &mut Fds) -> anyhow::Result<ChannelPlan> {
    let layout = Layout::new(ch)?;
    let wait = Wait::for_run(ch.wait, ch.processes);
    let mut names = Vec::new();
    for (p, links) in ch.keys.iter().enumerate() {
        if let (Ok(p), Some(link)) = (u32::try_from(p), links.first()) {
            names.push((producer_id(p), link.clone()));
        }
    }
    if let Some(links) = ch.keys.first() {
        for (q, link) in links.iter().enumerate() {
            if let Ok(q) = u32::try_from(q) {
                names.push((consumer_id(q), link.clone()));
            }
        }
    }
    let (ctl_file, ctl) = Control::create(
        &format!("wasm-ipc:{}:control:{}", ch.run_id, ch.index),
        layout,
        names,
    )
    .context("creating a control block")?;
    let ctl_fd = OwnedFd::from(ctl_file);
    let area = sys::sized_memfd(
        &format!("wasm-ipc:{}:slots:{}", ch.run_id, ch.index),
        layout.area_len as usize,
    )
    .context("creating the slot area")?;
    let read_only = sys::reopen_read_only(&area)?;
    let params = |index: usize| -> anyhow::Result<serde_json::Value> {
        Ok(serde_json::to_value(BoundedParams {
            index: u32::try_from(index)?,
            bounded: layout,
            wait,
        })?)
    };
    let mut out = Vec::new();
    for (p, from) in ch.producers.iter().enumerate() {
        let mut spec = super::port_spec(&from.port, Direction::Out, BackendKind::Shm, ch);
        spec.window_len = layout.area_len;
        spec.links = ch.keys[p].clone();
        spec.fds.push(fds.give(from.plugin, ctl_fd.try_clone()?)?);
        spec.fds
            .push(fds.give(from.plugin, OwnedFd::from(area.try_clone()?))?);
        spec.params = params(p)?;
        out.push(spec);
    }
    let mut ins = Vec::new();
    for (q, to) in ch.consumers.iter().enumerate() {
        let mut spec = super::port_spec(&to.port, Direction::In, BackendKind::Shm, ch);
        spec.window_len = layout.area_len;
        spec.links = ch.keys.iter().map(|k| k[q].clone()).collect();
        spec.fds.push(fds.give(to.plugin, ctl_fd.try_clone()?)?);
        // Read-only: no mapping of it in a consumer can be writable.
        spec.fds
            .push(fds.give(to.plugin, OwnedFd::from(read_only.try_clone()?))?);
        spec.params = params(q)?;
        ins.push(spec);
    }
    Ok(ChannelPlan {
        producers: out,
        consumers: ins,
        peers: Box::new(Arc::new(ctl)),
    })
}

/// Whether a port's spec is a bounded buffer's.
pub fn is_bounded(spec: &PortSpec) -> bool {
    spec.params.get("bounded").is_some()
}

/// Maps the control block and the slot area of a port (read-write for `writable`).
fn open(
    spec: &PortSpec,
    window: Window<'_>,
    fds: &mut dyn FdSource,
    writable: bool,
) -> anyhow::Result<(BoundedParams, Arc<Control>)> {
    let params: BoundedParams = spec.params()?;
    let [ctl, area] = spec.fds[..] else {
        anyhow::bail!("port `{}`: a bounded-buffer port takes 2 fds", spec.name);
    };
    // A producer's links go to every consumer, a consumer's come from every producer.
    let names = spec
        .links
        .iter()
        .enumerate()
        .filter_map(|(k, link)| {
            let k = u32::try_from(k).ok()?;
            let id = if writable {
                consumer_id(k)
            } else {
                producer_id(k)
            };
            Some((id, link.clone()))
        })
        .collect();
    let ctl = Control::map(
        fds.take(ctl).context("control block")?.as_fd(),
        params.bounded,
        names,
    )?;
    let area = fds.take(area).context("slot area")?;
    sys::map_over_window(
        area.as_fd(),
        params.bounded.area_len as usize,
        window,
        writable,
    )?;
    Ok((params, Arc::new(ctl)))
}

/// Opens producer `p`'s port.
pub fn open_sender(
    spec: &PortSpec,
    window: Window<'_>,
    fds: &mut dyn FdSource,
) -> anyhow::Result<Box<dyn Sender>> {
    let (params, ctl) = open(spec, window, fds, true)?;
    let hold_at = std::env::var(HOLD_LOCK_VAR)
        .ok()
        .and_then(|v| v.parse().ok());
    Ok(Box::new(BoundedSender {
        ctl,
        p: params.index,
        me: producer_id(params.index),
        wait: params.wait,
        loaned: None,
        offered: Offered::default(),
        stats: WaitStats::default(),
        locks: LockStats::default(),
        hold_at,
    }))
}

/// Opens consumer `q`'s port.
pub fn open_receiver(
    spec: &PortSpec,
    window: Window<'_>,
    fds: &mut dyn FdSource,
) -> anyhow::Result<Box<dyn Receiver>> {
    let (params, ctl) = open(spec, window, fds, false)?;
    let producers = params.bounded.producers as usize;
    Ok(Box::new(BoundedReceiver {
        ctl,
        q: params.index,
        me: consumer_id(params.index),
        wait: params.wait,
        held: None,
        forgotten: vec![false; producers],
        stats: WaitStats::default(),
        locks: LockStats::default(),
        left: false,
        calm: Stop::new(u64::MAX)?,
    }))
}

fn lock_counters(stats: &WaitStats, locks: &LockStats) -> Counters {
    let mut c = stats.counters();
    c.insert("lock_acquisitions", locks.acquisitions);
    c.insert("lock_contended", locks.contended);
    c.insert("lock_wait_ns", locks.wait_ns);
    c
}

/// Producer `p` of a bounded buffer.
#[derive(Debug)]
struct BoundedSender {
    ctl: Arc<Control>,
    p: u32,
    me: u32,
    wait: Wait,
    loaned: Option<u32>,
    offered: Offered,
    stats: WaitStats,
    locks: LockStats,
    /// The test-only hook: hold the lock from this publish on ([`HOLD_LOCK_VAR`]).
    hold_at: Option<u32>,
}

impl BoundedSender {
    /// Takes a free slot under the mutex (one is there: `empty` was taken, or `not-full`
    /// holds).
    fn pop_free(&self) -> Result<u32, PortError> {
        let l = self.ctl.layout;
        let top = self.ctl.at(Layout::INDICES + 4);
        let h = top.load(SeqCst);
        if h == 0 || h > l.slots {
            return Err(PortError::PeerFailed(format!(
                "the bounded buffer's free stack is corrupt (height {h} of {})",
                l.slots
            )));
        }
        top.store(h - 1, SeqCst);
        let slot = self.ctl.at(l.free(h - 1)).load(SeqCst);
        if slot >= l.slots {
            return Err(PortError::PeerFailed(format!(
                "the bounded buffer's free stack names slot {slot} of {}",
                l.slots
            )));
        }
        Ok(slot)
    }

    /// The test-only hook: holds the lock until the stop (the test kills the worker first).
    fn hold(&self, stop: &Stop) {
        if self.hold_at == Some(self.offered.count()) {
            while stop.reason().is_none() && !stop.remaining().is_zero() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

impl Sender for BoundedSender {
    fn loan(&mut self, _win: Window<'_>, len: u32, stop: &Stop) -> Result<u32, PortError> {
        let l = self.ctl.layout;
        if len > l.slot_size {
            return Err(PortError::TooLarge {
                len,
                slot: l.slot_size,
            });
        }
        if let Some(slot) = self.loaned {
            return Ok(slot * l.stride);
        }
        let ctl: &Control = &self.ctl;
        let gone = || (ctl.attached() == 0).then_some(PortError::Closed);
        if let Some(e) = gone() {
            return Err(e);
        }
        let slot = match l.sync {
            SyncMode::Semaphores => {
                ctl.sem_wait(Layout::SPACE, self.wait, stop, &mut self.stats, gone)?;
                ctl.lock(self.me, self.wait, stop, &mut self.stats, &mut self.locks)?;
                let slot = self.pop_free();
                ctl.unlock(self.me, &mut self.stats);
                slot?
            }
            _ => {
                ctl.lock(self.me, self.wait, stop, &mut self.stats, &mut self.locks)?;
                loop {
                    let seen = ctl.at(Layout::SPACE + 8).load(SeqCst);
                    if ctl.at(Layout::INDICES + 4).load(SeqCst) > 0 {
                        break;
                    }
                    if let Some(e) = gone() {
                        ctl.unlock(self.me, &mut self.stats);
                        return Err(e);
                    }
                    ctl.cond_wait(
                        Layout::SPACE,
                        seen,
                        self.me,
                        self.wait,
                        stop,
                        &mut self.stats,
                        &mut self.locks,
                    )?;
                }
                let slot = self.pop_free();
                ctl.unlock(self.me, &mut self.stats);
                slot?
            }
        };
        self.loaned = Some(slot);
        Ok(slot * l.stride)
    }

    fn publish(
        &mut self,
        _win: Window<'_>,
        // Nothing is copied: the consumers read the slot where the plugin wrote it.
        _meter: &mut CopyMeter,
        msg: Outgoing,
        stop: &Stop,
    ) -> Result<(), PortError> {
        let ctl: &Control = &self.ctl;
        let l = ctl.layout;
        let Some(slot) = self.loaned.take() else {
            return Err(PortError::PeerFailed("publish without a loan".into()));
        };
        debug_assert_eq!(msg.off, slot * l.stride);
        ctl.lock(self.me, self.wait, stop, &mut self.stats, &mut self.locks)?;
        self.hold(stop);
        // Counted under the lock; nothing is collected per message. A consumer that leaves
        // after this lets go of the message in `detach_locked`, as of every unread one.
        let readers = ctl.attached();
        if readers == 0 {
            // Nobody to read it: the slot is free again.
            let top = ctl.at(Layout::INDICES + 4);
            let h = top.load(SeqCst);
            if h < l.slots {
                ctl.at(l.free(h)).store(slot, SeqCst);
                top.store(h + 1, SeqCst);
            }
            ctl.unlock(self.me, &mut self.stats);
            ctl.slot_freed(&mut self.stats);
            return Err(PortError::Closed);
        }
        // At most `consumers`, a u32.
        let refs = u32::try_from(readers).unwrap_or(u32::MAX);
        ctl.at(l.refs(slot)).store(refs, SeqCst);
        let written = ctl.at(Layout::INDICES);
        let i = written.load(SeqCst);
        let e = l.entry(i);
        ctl.at(e).store(slot, SeqCst);
        ctl.at(e + 4).store(msg.len, SeqCst);
        ctl.at(e + 8).store(self.offered.take(), SeqCst);
        ctl.at(e + 12).store(self.p, SeqCst);
        ctl.map.u64(e + 16).store(msg.publish_ns, SeqCst);
        written.store(i.wrapping_add(1), SeqCst);
        match l.sync {
            SyncMode::Semaphores => {
                ctl.unlock(self.me, &mut self.stats);
                for q in (0..l.consumers).filter(|&q| !ctl.detached(q)) {
                    ctl.sem_post(l.consumer(q), &mut self.stats);
                }
            }
            _ => {
                for q in (0..l.consumers).filter(|&q| !ctl.detached(q)) {
                    ctl.signal(l.consumer(q), &mut self.stats);
                }
                ctl.unlock(self.me, &mut self.stats);
            }
        }
        Ok(())
    }

    fn close(&mut self, _stop: &Stop) {
        let at = self.ctl.layout.producer(self.p);
        self.ctl.at(at + 8).store(self.offered.count(), SeqCst);
        self.ctl.at(at).store(1, SeqCst);
        self.ctl.wake_consumers();
    }

    fn abort(&mut self) {
        self.ctl.fail_producer(self.p);
    }

    fn counters(&self) -> Counters {
        lock_counters(&self.stats, &self.locks)
    }

    fn waited_ns(&self) -> u64 {
        self.stats.waited_ns
    }

    fn dropped(&self) -> Vec<u64> {
        // A bounded buffer's producer waits; it never drops.
        vec![0; self.ctl.layout.consumers as usize]
    }
}

/// Consumer `q` of a bounded buffer.
#[derive(Debug)]
struct BoundedReceiver {
    ctl: Arc<Control>,
    q: u32,
    me: u32,
    wait: Wait,
    /// The slot of the message received and not yet released.
    held: Option<u32>,
    /// Failed producers this consumer no longer waits for (`forget_failed`).
    forgotten: Vec<bool>,
    stats: WaitStats,
    locks: LockStats,
    left: bool,
    /// A stop that never fires, for `release`: a message is released whatever the run's stop
    /// says (only a broken lock fails it).
    calm: Stop,
}

impl BoundedReceiver {
    /// Why nothing more will come, when nothing is queued for this consumer: every producer
    /// closed (or was forgotten), or one failed.
    fn ended(ctl: &Control, forgotten: &[bool]) -> Option<PortError> {
        let l = ctl.layout;
        let mut all_closed = true;
        for p in 0..l.producers {
            if forgotten[p as usize] {
                continue;
            }
            let at = l.producer(p);
            if ctl.at(at + 4).load(SeqCst) != 0 {
                return Some(PortError::PeerFailed(format!(
                    "producer {p} of the channel failed"
                )));
            }
            if ctl.at(at).load(SeqCst) == 0 {
                all_closed = false;
            }
        }
        all_closed.then_some(PortError::Closed)
    }

    /// With the mutex held and a message queued for this consumer: takes it.
    fn take(ctl: &Control, q: u32, held: &mut Option<u32>) -> Result<Delivery, PortError> {
        let l = ctl.layout;
        let at = l.consumer(q);
        let read = ctl.at(at + 12).load(SeqCst);
        let e = l.entry(read);
        let slot = ctl.at(e).load(SeqCst);
        let len = ctl.at(e + 4).load(SeqCst);
        let seq = ctl.at(e + 8).load(SeqCst);
        let p = ctl.at(e + 12).load(SeqCst);
        let publish_ns = ctl.map.u64(e + 16).load(SeqCst);
        ctl.at(at + 12).store(read.wrapping_add(1), SeqCst);
        ctl.at(at + 20).store(slot.saturating_add(1), SeqCst);
        if slot >= l.slots || len > l.slot_size || p >= l.producers {
            return Err(PortError::PeerFailed(format!(
                "the bounded buffer's queue is corrupt: slot {slot} of {}, {len} bytes in a \
                 {}-byte slot, producer {p} of {}",
                l.slots, l.slot_size, l.producers
            )));
        }
        *held = Some(slot);
        Ok(Delivery {
            off: slot * l.stride,
            len,
            publish_ns,
            link: p as usize,
            seq,
        })
    }
}

impl Receiver for BoundedReceiver {
    fn receive(
        &mut self,
        _win: Window<'_>,
        // Nothing is copied: the message stays in its slot, mapped read-only here.
        _meter: &mut CopyMeter,
        stop: &Stop,
    ) -> Result<Delivery, PortError> {
        let ctl: &Control = &self.ctl;
        let l = ctl.layout;
        let at = l.consumer(self.q);
        let queued = || ctl.at(Layout::INDICES).load(SeqCst) != ctl.at(at + 12).load(SeqCst);
        match l.sync {
            SyncMode::Semaphores => {
                let forgotten = &self.forgotten;
                ctl.sem_wait(at, self.wait, stop, &mut self.stats, || {
                    Self::ended(ctl, forgotten)
                })?;
                ctl.lock(self.me, self.wait, stop, &mut self.stats, &mut self.locks)?;
                let r = Self::take(ctl, self.q, &mut self.held);
                ctl.unlock(self.me, &mut self.stats);
                r
            }
            _ => {
                ctl.lock(self.me, self.wait, stop, &mut self.stats, &mut self.locks)?;
                loop {
                    let seen = ctl.at(at + 8).load(SeqCst);
                    if queued() {
                        break;
                    }
                    if let Some(e) = Self::ended(ctl, &self.forgotten) {
                        ctl.unlock(self.me, &mut self.stats);
                        return Err(e);
                    }
                    ctl.cond_wait(
                        at,
                        seen,
                        self.me,
                        self.wait,
                        stop,
                        &mut self.stats,
                        &mut self.locks,
                    )?;
                }
                let r = Self::take(ctl, self.q, &mut self.held);
                ctl.unlock(self.me, &mut self.stats);
                r
            }
        }
    }

    fn release(&mut self) -> Result<(), PortError> {
        let Some(slot) = self.held.take() else {
            return Ok(());
        };
        let ctl: &Control = &self.ctl;
        ctl.lock(
            self.me,
            self.wait,
            &self.calm,
            &mut self.stats,
            &mut self.locks,
        )?;
        ctl.at(ctl.layout.consumer(self.q) + 20).store(0, SeqCst);
        let freed = ctl.drop_ref(slot);
        if ctl.layout.sync == SyncMode::Semaphores {
            ctl.unlock(self.me, &mut self.stats);
            if freed {
                ctl.slot_freed(&mut self.stats);
            }
        } else {
            if freed {
                ctl.slot_freed(&mut self.stats);
            }
            ctl.unlock(self.me, &mut self.stats);
        }
        Ok(())
    }

    fn forget_failed(&mut self) -> Vec<usize> {
        let l = self.ctl.layout;
        let at = l.consumer(self.q);
        let queued = self.ctl.at(Layout::INDICES).load(SeqCst) != self.ctl.at(at + 12).load(SeqCst);
        if queued {
            return Vec::new();
        }
        let mut gone = Vec::new();
        for p in 0..l.producers {
            let i = p as usize;
            if !self.forgotten[i] && self.ctl.at(l.producer(p) + 4).load(SeqCst) != 0 {
                self.forgotten[i] = true;
                gone.push(i);
            }
        }
        gone
    }

    fn detach(&mut self) {
        if !std::mem::replace(&mut self.left, true) {
            self.held = None;
            self.ctl.detach(self.q, self.me);
        }
    }

    fn counters(&self) -> Counters {
        lock_counters(&self.stats, &self.locks)
    }

    fn waited_ns(&self) -> u64 {
        self.stats.waited_ns
    }

    fn ends(&self) -> Vec<Option<u32>> {
        let l = self.ctl.layout;
        (0..l.producers)
            .map(|p| {
                let at = l.producer(p);
                (self.ctl.at(at).load(SeqCst) != 0).then(|| self.ctl.at(at + 8).load(SeqCst))
            })
            .collect()
    }

    fn window_is_read_only(&self) -> bool {
        true
    }
}
