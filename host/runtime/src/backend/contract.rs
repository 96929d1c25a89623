//! The backend contract (see `backend/mod.rs`), written once and run against every
//! implementation through the seam itself: each channel is planned by the backend's `plan`
//! and opened by its `open_sender`/`open_receiver`, in-process over the real sockets and
//! memfds, with windows in host-owned linear memory exactly as workers make them. The
//! [`suite!`] list at the bottom gives every test one name per backend (`contract::msg::fifo…`,
//! `contract::shm::fifo…`), so a failure in one backend never hides behind another; adding a
//! backend is one line there.

use proptest::prelude::*;
use wasmtime::{Memory, Store};

use super::{
    ChannelDesc, Counters, EndpointDesc, Fds, HandedFds, PeerLost, PortError, Receiver, Sender,
    Stop, StopReason, of,
};
use crate::scenario::{BackendKind, Overflow, SyncMode, WaitMode};
use crate::sys::{self, CopyMeter, Window};

std::thread_local! {
    /// The `sync` of the channels this test thread plans: the suite runs the `shm` tests once
    /// per variant (`contract::shm_semaphores::…`, `contract::shm_mutex::…`).
    static SYNC: std::cell::Cell<SyncMode> = const { std::cell::Cell::new(SyncMode::LockFree) };
}

/// A linear memory for one endpoint, in host-owned memory like a worker's.
struct Side {
    store: Store<()>,
    memory: Memory,
}

impl Side {
    fn new(bytes: usize) -> Side {
        // Linear memory owned by the host, as `plugin::engine` makes it in workers (the backend
        // does not depend on the plugin layer, not even in its tests).
        let mut config = wasmtime::Config::new();
        config.with_host_memory(std::sync::Arc::new(sys::HostMemoryCreator));
        config.memory_init_cow(false);
        let engine = wasmtime::Engine::new(&config).unwrap();
        let mut store = Store::new(&engine, ());
        let pages = u32::try_from(bytes.div_ceil(65536)).unwrap() + 1;
        // Memories that an instance defines come from the engine's host-memory creator
        // (`Memory::new` does not use it), so instantiate a module that exports one.
        let wat = format!("(module (memory (export \"memory\") {pages}))");
        let module = wasmtime::Module::new(&engine, wat).unwrap();
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        Side { store, memory }
    }
    fn window(&self) -> Window<'_> {
        let len = u32::try_from(self.memory.data_size(&self.store)).unwrap();
        Window::of(&self.memory, &self.store, 0, len).unwrap()
    }
}

struct Tx {
    port: Box<dyn Sender>,
    side: Side,
    meter: CopyMeter,
}

struct Rx {
    port: Box<dyn Receiver>,
    side: Side,
    meter: CopyMeter,
}

/// `producers` producers and `consumers` consumers of one channel, planned and opened by the
/// backend.
struct Channel {
    txs: Vec<Tx>,
    rxs: Vec<Rx>,
    peers: Box<dyn PeerLost>,
    stop: Stop,
}

fn channel(
    kind: BackendKind,
    producers: usize,
    consumers: usize,
    slot: u32,
    capacity: u32,
) -> Channel {
    channel_with(kind, producers, consumers, slot, capacity, Overflow::Block)
}

fn channel_with(
    kind: BackendKind,
    producers: usize,
    consumers: usize,
    slot: u32,
    capacity: u32,
    overflow: Overflow,
) -> Channel {
    let backend = of(kind);
    let desc = ChannelDesc {
        index: 0,
        run_id: "contract",
        producers: (0..producers)
            .map(|p| EndpointDesc {
                plugin: p,
                port: "out".into(),
            })
            .collect(),
        consumers: (0..consumers)
            .map(|q| EndpointDesc {
                plugin: producers + q,
                port: "in".into(),
            })
            .collect(),
        keys: (0..producers)
            .map(|p| (0..consumers).map(|q| format!("p{p}->c{q}")).collect())
            .collect(),
        slot_size: slot,
        capacity,
        overflow,
        sync: SYNC.with(std::cell::Cell::get),
        // Sleep at once: the wake-up paths are what the contract must see.
        wait: WaitMode::Futex,
        processes: producers + consumers,
        endpoints: None,
        clocks: None,
        seal: false,
    };
    let mut fds = Fds::new(producers + consumers);
    let plan = backend.plan(&desc, &mut fds).unwrap();
    let txs = plan
        .producers
        .iter()
        .enumerate()
        .map(|(p, spec)| {
            let side = Side::new(spec.window_len as usize);
            let mut handed = HandedFds::new(fds.take(p));
            let port = backend
                .open_sender(spec, side.window(), &mut handed)
                .unwrap_or_else(|e| panic!("{e:#}"));
            Tx {
                port,
                side,
                meter: CopyMeter::default(),
            }
        })
        .collect();
    let rxs = plan
        .consumers
        .iter()
        .enumerate()
        .map(|(q, spec)| {
            let side = Side::new(spec.window_len as usize);
            let mut handed = HandedFds::new(fds.take(producers + q));
            let port = backend
                .open_receiver(spec, side.window(), &mut handed)
                .unwrap_or_else(|e| panic!("{e:#}"));
            Rx {
                port,
                side,
                meter: CopyMeter::default(),
            }
        })
        .collect();
    // What a worker does before `Ready`: every port connected.
    let (mut txs, mut rxs): (Vec<Tx>, Vec<Rx>) = (txs, rxs);
    let connecting = Stop::new(sys::now_ns() + 20_000_000_000).unwrap();
    for tx in &mut txs {
        tx.port.connect(&connecting).unwrap();
    }
    for rx in &mut rxs {
        rx.port.connect(&connecting).unwrap();
    }
    Channel {
        txs,
        rxs,
        peers: plan.peers,
        stop: Stop::new(u64::MAX).unwrap(),
    }
}

impl Channel {
    /// Producer `p` loans, writes `bytes`, publishes.
    fn send_from(&mut self, p: usize, bytes: &[u8]) -> Result<(), PortError> {
        let tx = &mut self.txs[p];
        let win = tx.side.window();
        let off = tx.port.loan(win, len32(bytes), &self.stop)?;
        assert!(win.write(off as usize, bytes));
        let msg = super::Outgoing {
            off,
            len: len32(bytes),
            publish_ns: sys::now_ns(),
        };
        tx.port.publish(win, &mut tx.meter, msg, &self.stop)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), PortError> {
        self.send_from(0, bytes)
    }

    /// Receives on consumer `c`, copies the message out, releases; also says which link.
    fn recv_link(&mut self, c: usize) -> Result<(usize, Vec<u8>), PortError> {
        let rx = &mut self.rxs[c];
        let win = rx.side.window();
        let d = rx.port.receive(win, &mut rx.meter, &self.stop)?;
        let bytes = win.read_vec(d.off as usize, d.len as usize).unwrap();
        rx.port.release()?;
        Ok((d.link, bytes))
    }

    /// Receives on consumer `c`: the message's sequence number on its link, and its bytes.
    fn recv_numbered(&mut self, c: usize) -> Result<(u32, Vec<u8>), PortError> {
        let rx = &mut self.rxs[c];
        let win = rx.side.window();
        let d = rx.port.receive(win, &mut rx.meter, &self.stop)?;
        let bytes = win.read_vec(d.off as usize, d.len as usize).unwrap();
        rx.port.release()?;
        Ok((d.seq, bytes))
    }

    fn recv(&mut self, c: usize) -> Result<Vec<u8>, PortError> {
        self.recv_link(c).map(|(_, b)| b)
    }
}

fn len32(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap()
}

fn message(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (i * 31 + j * 7).to_le_bytes()[0])
        .collect()
}

fn counter(c: &Counters, name: &str) -> u64 {
    c.get(name).copied().unwrap_or(0)
}

fn fifo_and_integrity_for_every_consumer(kind: BackendKind) {
    let mut ch = channel(kind, 1, 3, 4096, 8);
    for round in 0..5 {
        for i in 0..8 {
            ch.send(&message(round * 8 + i, (i * 500) % 4097)).unwrap();
        }
        for c in 0..3 {
            for i in 0..8 {
                let got = ch.recv(c).unwrap();
                assert_eq!(got, message(round * 8 + i, (i * 500) % 4097), "c{c}");
            }
        }
    }
}

/// Fan-in: three producers on one input. Every message arrives, FIFO per producer, and no
/// producer starves (round robin: with all three queued, three receives see three links).
fn fan_in_serves_every_producer_in_order(kind: BackendKind) {
    let mut ch = channel(kind, 3, 1, 512, 4);
    for i in 0..4 {
        for p in 0..3 {
            ch.send_from(p, &message(p * 100 + i, 64 + p)).unwrap();
        }
    }
    // "All three queued": a transport that delivers in the background (zenoh) gets a moment
    // to land what was published.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut next = [0usize; 3];
    for n in 0..12 {
        let (link, got) = ch.recv_link(0).unwrap();
        assert!(link < 3, "link {link}");
        assert_eq!(
            got,
            message(link * 100 + next[link], 64 + link),
            "link {link}"
        );
        next[link] += 1;
        if n % 3 == 2 {
            assert!(
                next.iter().all(|&k| k == n / 3 + 1),
                "starved a producer: {next:?}"
            );
        }
    }
    for p in 0..3 {
        ch.txs[p].port.close(&ch.stop);
    }
    assert!(matches!(ch.recv(0), Err(PortError::Closed)));
}

fn loans_above_the_slot_size_are_refused(kind: BackendKind) {
    let mut ch = channel(kind, 1, 1, 1000, 4);
    let tx = &mut ch.txs[0];
    let win = tx.side.window();
    assert!(matches!(
        tx.port.loan(win, 1001, &ch.stop),
        Err(PortError::TooLarge {
            len: 1001,
            slot: 1000
        })
    ));
    assert!(tx.port.loan(win, 1000, &ch.stop).is_ok());
}

fn close_delivers_everything_then_says_closed(kind: BackendKind) {
    let mut ch = channel(kind, 1, 2, 256, 4);
    for i in 0..3 {
        ch.send(&message(i, 100)).unwrap();
    }
    ch.txs[0].port.close(&ch.stop);
    for c in 0..2 {
        for i in 0..3 {
            assert_eq!(ch.recv(c).unwrap(), message(i, 100));
        }
        assert!(matches!(ch.recv(c), Err(PortError::Closed)));
    }
}

fn an_aborted_producer_is_a_peer_failure_after_the_drain(kind: BackendKind) {
    let mut ch = channel(kind, 1, 1, 256, 4);
    ch.send(&message(0, 10)).unwrap();
    ch.txs[0].port.abort();
    assert_eq!(ch.recv(0).unwrap(), message(0, 10));
    assert!(matches!(ch.recv(0), Err(PortError::PeerFailed(_))));
}

/// What the supervisor does for a worker that died without a word: the backend's `PeerLost`
/// (plus whatever the dead process's resources say by themselves) must reach the consumers.
fn a_producer_lost_without_a_word_is_a_peer_failure(kind: BackendKind) {
    let mut ch = channel(kind, 1, 1, 256, 4);
    ch.send(&message(0, 10)).unwrap();
    // The process is gone: its transport is dropped without close or abort.
    drop(ch.txs.pop());
    ch.peers.producer_lost(0);
    assert_eq!(ch.recv(0).unwrap(), message(0, 10));
    assert!(matches!(ch.recv(0), Err(PortError::PeerFailed(_))));
}

fn a_consumer_lost_without_a_word_releases_its_producer(kind: BackendKind) {
    let mut ch = channel(kind, 1, 1, 256, 2);
    drop(ch.rxs.pop());
    ch.peers.consumer_lost(0);
    // A hang would be the failure; the news may take a moment to arrive (zenoh hears of it
    // from the engine), so the wait is bounded by a deadline, not cut off at once.
    ch.stop = Stop::new(sys::now_ns() + 10_000_000_000).unwrap();
    let mut result = Ok(());
    for i in 0..10 {
        result = ch.send(&message(i, 64));
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(PortError::Closed)), "{result:?}");
}

fn publishing_to_consumers_that_all_left_says_closed(kind: BackendKind) {
    let mut ch = channel(kind, 1, 2, 256, 4);
    for rx in &mut ch.rxs {
        rx.port.detach();
    }
    let mut result = Ok(());
    for i in 0..100 {
        result = ch.send(&message(i, 64));
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(PortError::Closed)), "{result:?}");
}

/// `capacity` is messages in flight per link on every backend, on small and large messages
/// alike: exactly that many go out before the producer is held back by a consumer that reads
/// nothing — at capacities 1, 8, 16, 64 and 1024 and messages of 8 B, 64 B and 64 KiB. Where a
/// kernel limit makes a capacity impossible on this machine, the backend's `refuse` says so
/// (with the number and the setting), which is what `check` tells the user; that shape is
/// then not run.
fn a_full_channel_holds_the_producer_back_after_capacity_messages(kind: BackendKind) {
    let mut refused = Vec::new();
    for size in [8usize, 64, 65536] {
        for capacity in [1u32, 8, 16, 64, 1024] {
            let slot = u32::try_from(size).unwrap();
            let shape = super::ChannelShape {
                producers: 1,
                consumers: 1,
                slot_size: u64::from(slot),
                capacity: u64::from(capacity),
                overflow: Overflow::Block,
                sync: SyncMode::LockFree,
            };
            if let Some(why) = of(kind).refuse(&shape) {
                assert!(
                    why.contains("sysctl") || why.contains("one UDP datagram carries at most"),
                    "a refusal names the setting (or the protocol's limit): {why}"
                );
                refused.push((size, capacity));
                continue;
            }
            let mut ch = channel(kind, 1, 1, slot, capacity);
            ch.stop.request(StopReason::Timeout);
            let mut sent = 0;
            let err = loop {
                match ch.send(&message(sent, size)) {
                    Ok(()) => sent += 1,
                    Err(e) => break e,
                }
                assert!(sent <= 2 * capacity as usize + 8, "never blocked");
            };
            assert!(matches!(err, PortError::Interrupted(_)), "{err:?}");
            assert_eq!(
                sent, capacity as usize,
                "messages in flight at capacity {capacity}, {size} B"
            );
            // The stop only ends blocking waits: what was sent is all there, in order.
            let mut fresh = Stop::new(u64::MAX).unwrap();
            std::mem::swap(&mut ch.stop, &mut fresh);
            for i in 0..sent {
                assert!(
                    ch.recv(0).unwrap() == message(i, size),
                    "message {i} differs"
                );
            }
            // Room again: the consumer's reads gave the producer its slots back.
            ch.send(&message(sent, size)).unwrap();
        }
    }
    // What each backend may refuse, with the default limits: 1024 64 KiB messages on msg and
    // tcp (69 MiB against a net.core.wmem_max of 4 MiB), 16 or more on pipe (a pipe of 16 × 17
    // pages against a fs.pipe-max-size of 1 MiB); on mq every capacity above fs.mqueue.msg_max
    // (10) and every 64 KiB message (fs.mqueue.msgsize_max is 8 KiB); on udp every 64 KiB
    // message (one datagram carries 65507 B), and 1024 small ones only past net.core.rmem_max.
    let may_refuse = |size: usize, capacity: u32| match kind {
        BackendKind::Pipe => size == 65536 && capacity >= 16,
        BackendKind::Mq => {
            size == 65536 || u64::from(capacity) > super::mq::largest_capacity().unwrap()
        }
        BackendKind::Udp => size == 65536 || capacity == 1024,
        _ => size == 65536 && capacity == 1024,
    };
    assert!(
        refused
            .iter()
            .all(|&(size, capacity)| may_refuse(size, capacity)),
        "refused {refused:?}"
    );
}

/// The largest message (at most `want`) a channel of `capacity` on `kind` carries here: what
/// `refuse` admits, found by halving (mq: `fs.mqueue.msgsize_max` less the header; udp: one
/// datagram).
fn largest_admitted(kind: BackendKind, want: u32, capacity: u32) -> u32 {
    let admits = |slot: u32| {
        of(kind)
            .refuse(&super::ChannelShape {
                producers: 1,
                consumers: 1,
                slot_size: u64::from(slot),
                capacity: u64::from(capacity),
                overflow: Overflow::Block,
                sync: SyncMode::LockFree,
            })
            .is_none()
    };
    let mut slot = want;
    while !admits(slot) {
        slot /= 2;
    }
    // Up again to the exact limit, by bisection between `slot` (admitted) and twice it.
    let (mut lo, mut hi) = (slot, (slot * 2).min(want));
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if admits(mid) { lo = mid } else { hi = mid - 1 }
    }
    lo
}

/// Messages far larger than a socket buffer arrive whole (the producer sends from another
/// thread while the consumer reads).
fn large_messages_arrive_whole(kind: BackendKind) {
    // 1 MiB, or the largest message the backend admits here (mq: 8176 B, udp: 65491 B).
    let largest = largest_admitted(kind, 1 << 20, 2);
    assert!(largest >= 8176, "{kind:?} carries at most {largest} B");
    let mut ch = channel(kind, 1, 1, largest, 2);
    for i in 0..2 {
        let len = largest as usize - i;
        let Channel { txs, rxs, stop, .. } = &mut ch;
        let stop: &Stop = stop;
        let tx = &mut txs[0];
        let rx = &mut rxs[0];
        std::thread::scope(|s| {
            s.spawn(move || {
                let m = message(i, len);
                let win = tx.side.window();
                let off = tx.port.loan(win, len32(&m), stop).unwrap();
                assert!(win.write(off as usize, &m));
                let msg = super::Outgoing {
                    off,
                    len: len32(&m),
                    publish_ns: sys::now_ns(),
                };
                tx.port.publish(win, &mut tx.meter, msg, stop).unwrap();
            });
            let win = rx.side.window();
            let d = rx.port.receive(win, &mut rx.meter, stop).unwrap();
            let got = win.read_vec(d.off as usize, d.len as usize).unwrap();
            assert!(got == message(i, len), "message {i} differs");
            rx.port.release().unwrap();
        });
    }
}

fn a_blocked_receive_returns_when_stopped(kind: BackendKind) {
    let mut ch = channel(kind, 1, 1, 256, 4);
    ch.stop.request(StopReason::PeerFailed("x failed".into()));
    assert!(matches!(ch.recv(0), Err(PortError::PeerFailed(_))));
    let mut ch = channel(kind, 1, 1, 256, 4);
    ch.stop.request(StopReason::Timeout);
    assert!(matches!(ch.recv(0), Err(PortError::Interrupted(_))));
}

/// Close while a consumer sleeps in another thread: it is woken by the close itself (the
/// backend's `wakeups` counter: a futex wake or a ready fd), not by a timeout slice.
fn close_wakes_a_consumer_blocked_in_another_thread(kind: BackendKind) {
    // An attempt where the consumer had not gone to sleep yet when the close came (its
    // thread started late on a loaded machine) proves nothing either way: try again.
    for _ in 0..5 {
        let Channel {
            mut txs, mut rxs, ..
        } = channel(kind, 1, 1, 256, 4);
        let mut rx = rxs.pop().unwrap();
        let handle = std::thread::spawn(move || {
            let stop = Stop::new(sys::now_ns() + 10_000_000_000).unwrap();
            let win = rx.side.window();
            let r = rx.port.receive(win, &mut rx.meter, &stop).map(|d| d.len);
            (r, rx.port.counters())
        });
        // Mid-slice (shm sleeps last 50 ms, msg polls 100 ms): the close must land while the
        // consumer sleeps, not in the instant between two slices.
        std::thread::sleep(std::time::Duration::from_millis(225));
        let stop = Stop::new(u64::MAX).unwrap();
        txs[0].port.close(&stop);
        let (r, counters) = handle.join().unwrap();
        assert!(matches!(r, Err(PortError::Closed)), "{r:?}");
        let slept = ["futex_waits", "polls", "sleeps"];
        if slept.iter().map(|c| counter(&counters, c)).sum::<u64>() == 0 {
            continue;
        }
        assert!(
            counter(&counters, "wakeups") >= 1,
            "the close did not wake the sleeper: {counters:?}"
        );
        assert_eq!(counter(&counters, "lost_wakeups"), 0, "{counters:?}");
        return;
    }
    panic!("in five attempts the consumer never slept before the close");
}

/// A server's view of a fan-in: one client fails (after its last request was received), the
/// consumer forgets that link and goes on serving the others to their end of stream.
fn a_consumer_forgets_a_failed_producer_and_serves_the_others(kind: BackendKind) {
    let mut ch = channel(kind, 3, 1, 256, 1);
    ch.send_from(1, &message(1, 20)).unwrap();
    assert_eq!(ch.recv_link(0).unwrap(), (1, message(1, 20)));
    drop(ch.txs.remove(1));
    ch.peers.producer_lost(1);
    // Nothing of it is left to deliver: the failure shows, and forgetting names that link.
    assert!(matches!(ch.recv(0), Err(PortError::PeerFailed(_))));
    assert_eq!(ch.rxs[0].port.forget_failed(), vec![1]);
    assert_eq!(ch.rxs[0].port.forget_failed(), Vec::<usize>::new());
    // The others are served: producers 0 and 2 are now txs[0] and txs[1].
    for round in 0..3 {
        ch.send_from(0, &message(round, 30)).unwrap();
        assert_eq!(ch.recv_link(0).unwrap(), (0, message(round, 30)));
        ch.send_from(1, &message(round + 10, 40)).unwrap();
        assert_eq!(ch.recv_link(0).unwrap(), (2, message(round + 10, 40)));
    }
    for tx in &mut ch.txs {
        tx.port.close(&ch.stop);
    }
    assert!(matches!(ch.recv(0), Err(PortError::Closed)));
}

/// A failure with messages still queued is not forgotten before they are delivered.
fn forgetting_never_drops_a_message_sent_before_the_failure(kind: BackendKind) {
    let mut ch = channel(kind, 2, 1, 256, 2);
    ch.send_from(0, &message(7, 50)).unwrap();
    ch.txs[0].port.abort();
    ch.txs[1].port.close(&ch.stop);
    let _ = ch.rxs[0].port.forget_failed();
    assert_eq!(ch.recv_link(0).unwrap(), (0, message(7, 50)));
    assert!(matches!(ch.recv(0), Err(PortError::PeerFailed(_))));
    assert_eq!(ch.rxs[0].port.forget_failed(), vec![0]);
    assert!(matches!(ch.recv(0), Err(PortError::Closed)));
}

/// `overflow = "drop-newest"`: a publish that finds no room on its link is dropped by the
/// sending host, counted, and reported as sent; it never waits (a stop already requested
/// would fail any wait). Every message carries its link's sequence number, and the end of
/// stream says how many the link was offered, so the receiving host can count what it lost
/// after the last delivery too. `udp` takes no credits under drop-newest (the kernel may drop
/// instead), so all ten go out there.
fn drop_newest_never_waits_and_numbers_what_it_offers(kind: BackendKind) {
    let capacity = 4;
    let mut ch = channel_with(kind, 1, 1, 256, capacity, Overflow::DropNewest);
    ch.stop.request(StopReason::Timeout);
    for i in 0..10 {
        ch.send(&message(i, 64))
            .unwrap_or_else(|e| panic!("publish {i} under drop-newest: {e:?}"));
    }
    let sent = if kind == BackendKind::Udp { 10 } else { 4 };
    assert_eq!(ch.txs[0].port.dropped(), vec![10 - sent as u64]);
    ch.stop = Stop::new(sys::now_ns() + 10_000_000_000).unwrap();
    for i in 0..sent {
        let (seq, got) = ch.recv_numbered(0).unwrap();
        assert_eq!(
            seq,
            u32::try_from(i).unwrap(),
            "sequence number of message {i}"
        );
        assert!(got == message(i, 64), "message {i} differs");
    }
    // `udp`'s end of stream waits for the consumer's acknowledgement, which this thread gives
    // only later: a short deadline lets the close return (the end frame is in the queue).
    ch.stop = Stop::new(sys::now_ns() + 300_000_000).unwrap();
    ch.txs[0].port.close(&ch.stop);
    ch.stop = Stop::new(sys::now_ns() + 10_000_000_000).unwrap();
    assert!(matches!(ch.recv(0), Err(PortError::Closed)));
    assert_eq!(
        ch.rxs[0].port.ends(),
        vec![Some(10)],
        "offered, as the end says"
    );
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        suite!(@backend msg, Msg, $($test),*);
        suite!(@backend pipe, Pipe, $($test),*);
        suite!(@backend tcp, Tcp, $($test),*);
        suite!(@backend mq, Mq, $($test),*);
        suite!(@backend udp, Udp, $($test),*);
        suite!(@backend shm, Shm, $($test),*);
        suite!(@backend zenoh, Zenoh, $($test),*);
    };
    (@sync $module:ident, $sync:ident, $($test:ident),*) => {
        mod $module {
            $(
                #[test]
                fn $test() {
                    super::SYNC.with(|s| s.set(crate::scenario::SyncMode::$sync));
                    super::$test(crate::scenario::BackendKind::Shm)
                }
            )*
        }
    };
    (@backend $module:ident, $kind:ident, $($test:ident),*) => {
        mod $module {
            $(
                #[test]
                fn $test() {
                    super::$test(crate::scenario::BackendKind::$kind)
                }
            )*
        }
    };
}

suite!(
    fifo_and_integrity_for_every_consumer,
    fan_in_serves_every_producer_in_order,
    loans_above_the_slot_size_are_refused,
    close_delivers_everything_then_says_closed,
    an_aborted_producer_is_a_peer_failure_after_the_drain,
    a_producer_lost_without_a_word_is_a_peer_failure,
    a_consumer_lost_without_a_word_releases_its_producer,
    publishing_to_consumers_that_all_left_says_closed,
    a_full_channel_holds_the_producer_back_after_capacity_messages,
    large_messages_arrive_whole,
    a_blocked_receive_returns_when_stopped,
    close_wakes_a_consumer_blocked_in_another_thread,
    a_consumer_forgets_a_failed_producer_and_serves_the_others,
    forgetting_never_drops_a_message_sent_before_the_failure,
    drop_newest_never_waits_and_numbers_what_it_offers,
);

/// The textbook's bounded buffer (`sync = "semaphores"` and `"mutex"`) keeps the same
/// contract, but for `overflow`: its producers wait, they never drop.
macro_rules! bounded_suite {
    ($($test:ident),* $(,)?) => {
        suite!(@sync shm_semaphores, Semaphores, $($test),*);
        suite!(@sync shm_mutex, Mutex, $($test),*);
    };
}

bounded_suite!(
    fifo_and_integrity_for_every_consumer,
    fan_in_serves_every_producer_in_order,
    loans_above_the_slot_size_are_refused,
    close_delivers_everything_then_says_closed,
    an_aborted_producer_is_a_peer_failure_after_the_drain,
    a_producer_lost_without_a_word_is_a_peer_failure,
    a_consumer_lost_without_a_word_releases_its_producer,
    publishing_to_consumers_that_all_left_says_closed,
    a_full_channel_holds_the_producer_back_after_capacity_messages,
    large_messages_arrive_whole,
    a_blocked_receive_returns_when_stopped,
    close_wakes_a_consumer_blocked_in_another_thread,
    a_consumer_forgets_a_failed_producer_and_serves_the_others,
    forgetting_never_drops_a_message_sent_before_the_failure,
);

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Recv(usize),
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The production ring against a model: consumers at different speeds, wrap-around many
    /// times over a small capacity, back-pressure from the slowest consumer, FIFO content.
    #[test]
    fn shm_ring_matches_a_queue_model(
        capacity in 1u32..5,
        consumers in 1usize..4,
        ops in proptest::collection::vec(
            prop_oneof![(1usize..300).prop_map(Op::Send), (0usize..4).prop_map(Op::Recv)],
            1..200,
        ),
    ) {
        let mut ch = channel(BackendKind::Shm, 1, consumers, 300, capacity);
        ch.stop.request(StopReason::Timeout); // a would-block call returns at once
        let mut queues: Vec<std::collections::VecDeque<Vec<u8>>> = vec![Default::default(); consumers];
        let mut n = 0;
        for op in ops {
            match op {
                Op::Send(len) => {
                    let full = queues.iter().any(|q| q.len() >= capacity as usize);
                    let msg = message(n, len);
                    match ch.send(&msg) {
                        Ok(()) => {
                            prop_assert!(!full, "published into a full ring");
                            for q in &mut queues { q.push_back(msg.clone()); }
                            n += 1;
                        }
                        Err(PortError::Interrupted(_)) => prop_assert!(full, "blocked with room"),
                        Err(e) => prop_assert!(false, "send: {e}"),
                    }
                }
                Op::Recv(c) => {
                    let c = c % consumers;
                    match ch.recv(c) {
                        Ok(got) => prop_assert_eq!(Some(got), queues[c].pop_front()),
                        Err(PortError::Interrupted(_)) => prop_assert!(queues[c].is_empty()),
                        Err(e) => prop_assert!(false, "recv: {e}"),
                    }
                }
            }
        }
    }
}

/// `shm` lends the slot released last (hot in the caches), not the next one of the ring: a
/// consumer that keeps up keeps a 16-slot ring of 64 KiB slots on two slots, so 128 KiB of
/// memory is touched rather than 1 MiB; with two consumers, a slot comes back once both
/// released it.
#[test]
fn shm_lends_the_slot_released_last() {
    for consumers in [1, 2] {
        let mut ch = channel(BackendKind::Shm, 1, consumers, 65536, 16);
        let mut slots = std::collections::BTreeSet::new();
        ch.send(&message(0, 100)).unwrap();
        for i in 1..200 {
            let tx = &mut ch.txs[0];
            let off = tx.port.loan(tx.side.window(), 100, &ch.stop).unwrap();
            slots.insert(off);
            let win = tx.side.window();
            assert!(win.write(off as usize, &message(i, 100)));
            let msg = super::Outgoing {
                off,
                len: 100,
                publish_ns: sys::now_ns(),
            };
            tx.port.publish(win, &mut tx.meter, msg, &ch.stop).unwrap();
            for c in 0..consumers {
                assert_eq!(ch.recv(c).unwrap(), message(i - 1, 100), "consumer {c}");
            }
        }
        assert_eq!(
            slots.len(),
            2,
            "{consumers} consumers: slots lent {slots:?}"
        );
    }
}

/// `pipe` frames larger than `PIPE_BUF` are not atomic, so fan-in must never share a pipe:
/// three producers interleave 20000 B frames (five pages each) and every frame arrives whole,
/// in its producer's order, on its own link.
#[test]
fn pipe_fan_in_keeps_large_frames_whole() {
    let mut ch = channel(BackendKind::Pipe, 3, 1, 20000, 4);
    // Four frames wait in each link's pipe before the consumer reads: a pipe sized too small
    // fails the send at this deadline instead of hanging.
    ch.stop = Stop::new(sys::now_ns() + 10_000_000_000).unwrap();
    for round in 0..4 {
        for p in 0..3 {
            ch.send_from(p, &message(round * 3 + p, 20000 - p)).unwrap();
        }
    }
    let mut next = [0usize; 3];
    for _ in 0..12 {
        let (link, got) = ch.recv_link(0).unwrap();
        assert_eq!(
            got,
            message(next[link] * 3 + link, 20000 - link),
            "link {link}"
        );
        next[link] += 1;
    }
    assert_eq!(next, [4, 4, 4]);
}

/// `shm` under `overflow = "drop-oldest"`: a publish that finds a link full replaces the
/// oldest message its consumer has not claimed, and never waits (a stop is already
/// requested); each consumer then gets the newest `capacity` messages, numbered, and the
/// producer counts what each link lost.
#[test]
fn shm_drop_oldest_keeps_the_newest_messages() {
    let mut ch = channel_with(BackendKind::Shm, 1, 2, 256, 4, Overflow::DropOldest);
    ch.stop.request(StopReason::Timeout);
    for i in 0..10 {
        ch.send(&message(i, 64))
            .unwrap_or_else(|e| panic!("publish {i} under drop-oldest: {e:?}"));
    }
    assert_eq!(ch.txs[0].port.dropped(), vec![6, 6]);
    ch.txs[0].port.close(&ch.stop);
    ch.stop = Stop::new(sys::now_ns() + 10_000_000_000).unwrap();
    for c in 0..2 {
        for i in 6..10 {
            let (seq, got) = ch.recv_numbered(c).unwrap();
            assert_eq!(seq, u32::try_from(i).unwrap(), "consumer {c}");
            assert!(got == message(i, 64), "consumer {c}: message {i} differs");
        }
        assert!(matches!(ch.recv(c), Err(PortError::Closed)));
        assert_eq!(ch.rxs[c].port.ends(), vec![Some(10)]);
    }
}

/// `shm` under `overflow = "drop-oldest"`: a message a consumer holds (received, not yet
/// released) is never overwritten, however many newer ones replace the unread ones around
/// it; one consumer holding keeps the other consumer's messages flowing.
#[test]
fn shm_drop_oldest_never_overwrites_a_message_being_read() {
    let mut ch = channel_with(BackendKind::Shm, 1, 2, 256, 2, Overflow::DropOldest);
    ch.stop.request(StopReason::Timeout);
    ch.send(&message(0, 200)).unwrap();
    let rx = &mut ch.rxs[0];
    let held = rx
        .port
        .receive(rx.side.window(), &mut rx.meter, &ch.stop)
        .unwrap();
    assert_eq!(held.seq, 0);
    assert!(ch.recv(1).unwrap() == message(0, 200));
    for i in 1..=50 {
        ch.send(&message(i, 200)).unwrap();
        // Consumer 1 keeps up.
        assert!(
            ch.recv(1).unwrap() == message(i, 200),
            "consumer 1, message {i}"
        );
    }
    let rx = &mut ch.rxs[0];
    let bytes = rx
        .side
        .window()
        .read_vec(held.off as usize, held.len as usize)
        .unwrap();
    assert!(bytes == message(0, 200), "the held message was overwritten");
    rx.port.release().unwrap();
    // Consumer 0 missed 1..=48: it gets the newest two.
    for i in 49..=50 {
        let (seq, got) = ch.recv_numbered(0).unwrap();
        assert_eq!(seq, u32::try_from(i).unwrap());
        assert!(got == message(i, 200), "message {i} differs");
    }
    assert_eq!(ch.txs[0].port.dropped(), vec![48, 0]);
}
