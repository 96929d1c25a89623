//! The backend contract (see `backend/mod.rs`), written once and run against every
//! implementation: each test takes a [`Kind`] and runs for `msg` and `shm` alike. Ends are
//! built in-process over real sockets and real memfds, with windows in host-owned linear
//! memory, exactly as workers build them.

use std::os::fd::AsFd;
use std::sync::Arc;

use proptest::prelude::*;
use wasmtime::{Memory, Store};

use super::shm::{Control, Layout, ShmReceiver, ShmSender, Wait};
use super::{Direction, LinkSpec, PortError, PortSpec, Receiver, Sender, Stop, StopReason};
use crate::backend::msg::{MsgReceiver, MsgSender};
use crate::sys::{self, Window};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Msg,
    Shm,
}

const KINDS: [Kind; 2] = [Kind::Msg, Kind::Shm];

/// Linear memories for one side, in host-owned memory like a worker's.
struct Side {
    store: Store<()>,
    memory: Memory,
}

impl Side {
    fn new(bytes: usize) -> Side {
        let engine = crate::plugin::engine().unwrap();
        let mut store = Store::new(&engine, ());
        let pages = bytes.div_ceil(65536) as u32 + 1;
        // Memories that an instance defines come from the engine's host-memory creator
        // (`Memory::new` does not use it), so instantiate a module that exports one.
        let wat = format!("(module (memory (export \"memory\") {pages}))");
        let module = wasmtime::Module::new(&engine, wat).unwrap();
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        Side { store, memory }
    }
    fn window(&self) -> Window {
        let len = self.memory.data_size(&self.store) as u32;
        Window::of(&self.memory, &self.store, 0, len).unwrap()
    }
}

/// One producer and `consumers` consumers of one channel.
struct Channel {
    tx: Box<dyn Sender>,
    rxs: Vec<Box<dyn Receiver>>,
    tx_side: Side,
    rx_sides: Vec<Side>,
    stop: Stop,
}

fn spec(direction: Direction, slot: u32, capacity: u32, links: usize) -> PortSpec {
    PortSpec {
        name: "p".into(),
        direction,
        channel: 0,
        slot_size: slot,
        capacity,
        window_len: 0,
        links: (0..links)
            .map(|i| LinkSpec {
                key: format!("link{i}"),
                fd: -1,
            })
            .collect(),
        shm: None,
    }
}

fn channel(kind: Kind, consumers: usize, slot: u32, capacity: u32) -> Channel {
    let stop = Stop::new(u64::MAX).unwrap();
    match kind {
        Kind::Msg => {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..consumers {
                let (a, b) = sys::stream_pair().unwrap();
                ours.push(a);
                theirs.push(b);
            }
            let tx = MsgSender::from_fds(&spec(Direction::Out, slot, capacity, consumers), ours);
            let rxs = theirs
                .into_iter()
                .map(|fd| {
                    Box::new(MsgReceiver::from_fds(
                        &spec(Direction::In, slot, capacity, 1),
                        vec![fd],
                    )) as Box<dyn Receiver>
                })
                .collect();
            Channel {
                tx: Box::new(tx),
                rxs,
                tx_side: Side::new(slot as usize),
                rx_sides: (0..consumers).map(|_| Side::new(slot as usize)).collect(),
                stop,
            }
        }
        Kind::Shm => {
            let layout = Layout::new(1, consumers as u32, capacity, slot);
            let (file, ctl) = Control::create("wasm-ipc:contract:control", layout).unwrap();
            let ctl = Arc::new(ctl);
            let slots =
                sys::sized_memfd("wasm-ipc:contract:slots", layout.ring_len as usize).unwrap();
            drop(file);
            let tx_side = Side::new(layout.ring_len as usize);
            let tx = ShmSender::open(ctl.clone(), 0, slots.as_fd(), tx_side.window(), Wait::Futex)
                .unwrap();
            let rx_sides: Vec<Side> = (0..consumers)
                .map(|_| Side::new(layout.ring_len as usize))
                .collect();
            let rxs = rx_sides
                .iter()
                .enumerate()
                .map(|(c, side)| {
                    let ro = sys::reopen_read_only(&slots).unwrap();
                    Box::new(
                        ShmReceiver::open(
                            ctl.clone(),
                            c as u32,
                            &[ro.as_fd()],
                            side.window(),
                            Wait::Futex,
                        )
                        .unwrap(),
                    ) as Box<dyn Receiver>
                })
                .collect();
            Channel {
                tx: Box::new(tx),
                rxs,
                tx_side,
                rx_sides,
                stop,
            }
        }
    }
}

impl Channel {
    /// Loans, writes `bytes`, publishes.
    fn send(&mut self, bytes: &[u8]) -> Result<(), PortError> {
        let win = self.tx_side.window();
        let off = self.tx.loan(win, bytes.len() as u32, &self.stop)?;
        assert!(win.write(off as usize, bytes));
        self.tx
            .publish(win, off, bytes.len() as u32, sys::now_ns(), &self.stop)
    }

    /// Receives on consumer `c`, copies the message out, releases.
    fn recv(&mut self, c: usize) -> Result<Vec<u8>, PortError> {
        let win = self.rx_sides[c].window();
        let d = self.rxs[c].receive(win, &self.stop)?;
        let bytes = win.read_vec(d.off as usize, d.len as usize).unwrap();
        self.rxs[c].release()?;
        Ok(bytes)
    }
}

fn message(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i * 31 + j * 7) as u8).collect()
}

#[test]
fn fifo_and_integrity_for_every_consumer() {
    for kind in KINDS {
        let mut ch = channel(kind, 3, 4096, 8);
        for round in 0..5 {
            for i in 0..8 {
                ch.send(&message(round * 8 + i, (i * 500) % 4097)).unwrap();
            }
            for c in 0..3 {
                for i in 0..8 {
                    let got = ch.recv(c).unwrap();
                    assert_eq!(
                        got,
                        message(round * 8 + i, (i * 500) % 4097),
                        "{kind:?} c{c}"
                    );
                }
            }
        }
    }
}

#[test]
fn loans_above_the_slot_size_are_refused() {
    for kind in KINDS {
        let mut ch = channel(kind, 1, 1000, 4);
        let win = ch.tx_side.window();
        assert!(
            matches!(
                ch.tx.loan(win, 1001, &ch.stop),
                Err(PortError::TooLarge {
                    len: 1001,
                    slot: 1000
                })
            ),
            "{kind:?}"
        );
        assert!(ch.tx.loan(win, 1000, &ch.stop).is_ok(), "{kind:?}");
    }
}

#[test]
fn close_delivers_everything_then_says_closed() {
    for kind in KINDS {
        let mut ch = channel(kind, 2, 256, 4);
        for i in 0..3 {
            ch.send(&message(i, 100)).unwrap();
        }
        ch.tx.close(&ch.stop);
        for c in 0..2 {
            for i in 0..3 {
                assert_eq!(ch.recv(c).unwrap(), message(i, 100), "{kind:?}");
            }
            assert!(matches!(ch.recv(c), Err(PortError::Closed)), "{kind:?}");
        }
    }
}

#[test]
fn an_aborted_producer_is_a_peer_failure_after_the_drain() {
    for kind in KINDS {
        let mut ch = channel(kind, 1, 256, 4);
        ch.send(&message(0, 10)).unwrap();
        ch.tx.abort();
        assert_eq!(ch.recv(0).unwrap(), message(0, 10), "{kind:?}");
        assert!(
            matches!(ch.recv(0), Err(PortError::PeerFailed(_))),
            "{kind:?}"
        );
    }
}

#[test]
fn publishing_to_consumers_that_all_left_says_closed() {
    for kind in KINDS {
        let mut ch = channel(kind, 2, 256, 4);
        for rx in &mut ch.rxs {
            rx.detach();
        }
        let mut result = Ok(());
        for i in 0..100 {
            result = ch.send(&message(i, 64));
            if result.is_err() {
                break;
            }
        }
        assert!(
            matches!(result, Err(PortError::Closed)),
            "{kind:?}: {result:?}"
        );
    }
}

#[test]
fn a_full_channel_holds_the_producer_back_and_loses_nothing() {
    for kind in KINDS {
        let mut ch = channel(kind, 1, 65536, 2);
        ch.stop.request(StopReason::Timeout);
        let mut sent = 0;
        let err = loop {
            match ch.send(&message(sent, 65536)) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 1000, "{kind:?}: never blocked");
        };
        assert!(
            matches!(err, PortError::Interrupted(_)),
            "{kind:?}: {err:?}"
        );
        assert!(sent >= 2, "{kind:?}: capacity is 2, sent {sent}");
        // The stop only ends blocking waits: what was sent is all there, in order.
        let mut fresh = Stop::new(u64::MAX).unwrap();
        std::mem::swap(&mut ch.stop, &mut fresh);
        for i in 0..sent {
            assert_eq!(ch.recv(0).unwrap(), message(i, 65536), "{kind:?}");
        }
    }
}

#[test]
fn a_blocked_receive_returns_when_stopped() {
    for kind in KINDS {
        let mut ch = channel(kind, 1, 256, 4);
        ch.stop.request(StopReason::PeerFailed("x failed".into()));
        assert!(
            matches!(ch.recv(0), Err(PortError::PeerFailed(_))),
            "{kind:?}"
        );
        let mut ch = channel(kind, 1, 256, 4);
        ch.stop.request(StopReason::Timeout);
        assert!(
            matches!(ch.recv(0), Err(PortError::Interrupted(_))),
            "{kind:?}"
        );
    }
}

/// Close while a consumer is blocked in another thread: it wakes and says Closed.
#[test]
fn close_wakes_a_consumer_blocked_in_another_thread() {
    for kind in KINDS {
        let ch = channel(kind, 1, 256, 4);
        let Channel {
            mut tx,
            mut rxs,
            tx_side,
            stop,
            ..
        } = ch;
        let rx = rxs.pop().unwrap();
        let handle = std::thread::spawn(move || {
            let mut rx = rx;
            let side = Side::new(65536 * 2);
            let stop = Stop::new(sys::now_ns() + 10_000_000_000).unwrap();
            let started = std::time::Instant::now();
            let r = rx.receive(side.window(), &stop);
            (r.map(|d| d.len), started.elapsed())
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        let _ = tx_side;
        tx.close(&stop);
        let (r, waited) = handle.join().unwrap();
        assert!(matches!(r, Err(PortError::Closed)), "{kind:?}: {r:?}");
        assert!(
            waited.as_secs() < 10,
            "{kind:?}: woke by the close, not the deadline"
        );
    }
}

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
        let mut ch = channel(Kind::Shm, consumers, 300, capacity);
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
