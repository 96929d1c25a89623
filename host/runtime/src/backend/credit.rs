//! What every copying backend shares (`msg`, `zenoh`): **capacity as credits** and **the
//! states of a consumer's links**.
//!
//! A copying backend has no ring whose size bounds what is in flight, so capacity is kept by
//! credits: a producer holds `capacity` per link ([`Credits`]), spends one per message and
//! waits in `loan` while a link has none; the consumer returns them a batch at a time
//! ([`Returns`], [`batch`]) over whatever carries the link's other direction (the socket's
//! other half, a publication). A consumer that returns more than it was given lies, and the
//! producer stops trusting it ([`Credits::grant`]).
//!
//! On the consumer's side each link ([`InLink`]: its key, state and credits to return, and the
//! backend's own part) is open, ended (its producer closed it and everything before the end was
//! read) or failed ([`LinkState`]); [`Inputs`] serves the open ones round robin, reports the
//! first failure, and forgets failed links when the plugin asks.
//!
//! How long a blocked call polls before it sleeps follows `[run] wait` alike on both
//! ([`spin_ns`], [`Spin`]).

use std::time::{Duration, Instant};

use super::PortError;
use crate::scenario::WaitMode;

/// The count a consumer returns at once: half the capacity, at least 1 (so a producer with a
/// full window gets half of it back while the consumer reads on).
pub fn batch(capacity: u32) -> u32 {
    (capacity / 2).max(1)
}

/// How long a blocked call retries before it sleeps under `[run] wait`: `spin` never sleeps,
/// `futex` sleeps at once, `adaptive` retries for 20 µs — and not at all when the run has
/// more processes than CPUs, where spinning only takes the CPU from the peer it waits for.
pub fn spin_ns(wait: WaitMode, processes: usize) -> u64 {
    let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
    match wait {
        WaitMode::Spin => u64::MAX,
        WaitMode::Futex => 0,
        WaitMode::Adaptive if processes > cpus => 0,
        WaitMode::Adaptive => 20_000,
    }
}

/// Retries of a blocked call, bounded by a spin budget ([`spin_ns`]).
#[derive(Debug, Default)]
pub struct Spin {
    since: Option<Instant>,
}

impl Spin {
    /// Whether to retry once more (after a spin-loop hint) rather than sleep.
    pub fn again(&mut self, budget_ns: u64) -> bool {
        if budget_ns == 0 {
            return false;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        std::hint::spin_loop();
        budget_ns == u64::MAX || since.elapsed() < Duration::from_nanos(budget_ns)
    }
}

/// A producer's credits on one link: the messages it may still send before its consumer
/// returns some, and the link's round trip as the credits measure it.
///
/// The round trip: each message's publish time is noted (`spend`); when `n` credits come back, they
/// are for the `n` oldest messages in flight, and the newest of those gives one sample — the
/// time from its send to its credit's return: the way there, the consumer reading it, the
/// way back (the oldest of a batch also waited for the batch to fill, so it is not sampled).
/// With the window's size this bounds the link: at most `capacity` messages per round trip.
#[derive(Debug, Clone)]
pub struct Credits {
    left: u32,
    capacity: u32,
    /// Send times (CLOCK_MONOTONIC ns) of the messages in flight, oldest first.
    sent: std::collections::VecDeque<u64>,
    /// The latest round trips, ns (at most [`ROUND_TRIPS`]; a ring once full).
    round_trips: Vec<u64>,
    /// Where the next sample goes once `round_trips` is full.
    next: usize,
}

/// Round-trip samples a link keeps: the latest, so that the median is the run's steady state
/// rather than its start.
const ROUND_TRIPS: usize = 1024;

impl Credits {
    /// A full window: `capacity` messages.
    pub fn new(capacity: u32) -> Credits {
        Credits {
            left: capacity,
            capacity,
            sent: std::collections::VecDeque::with_capacity(capacity.min(65536) as usize),
            round_trips: Vec::new(),
            next: 0,
        }
    }

    /// The median of the link's round trips (send → its credit back), ns; `None` before a
    /// credit came back.
    pub fn round_trip_ns(&self) -> Option<u64> {
        let mut v = self.round_trips.clone();
        if v.is_empty() {
            return None;
        }
        let mid = v.len() / 2;
        Some(*v.select_nth_unstable(mid).1)
    }

    /// Whether the link takes another message now.
    pub fn available(&self) -> bool {
        self.left > 0
    }

    /// One message sent, published at `publish_ns` (CLOCK_MONOTONIC: the time the message
    /// carries anyway, so that timing the round trip reads no clock per message).
    pub fn spend(&mut self, publish_ns: u64) {
        self.left = self.left.saturating_sub(1);
        if self.sent.len() < self.capacity as usize {
            self.sent.push_back(publish_ns);
        }
    }

    /// `n` credits came back from the consumer of port `port`'s link; more than the capacity
    /// in hand is a lie, and an error.
    pub fn grant(&mut self, n: u32, port: &str) -> Result<(), PortError> {
        let mut newest = None;
        for _ in 0..n {
            match self.sent.pop_front() {
                Some(t) => newest = Some(t),
                None => break,
            }
        }
        if let Some(t) = newest {
            let sample = crate::sys::now_ns().saturating_sub(t);
            if self.round_trips.len() < ROUND_TRIPS {
                self.round_trips.push(sample);
            } else {
                self.round_trips[self.next] = sample;
                self.next = (self.next + 1) % ROUND_TRIPS;
            }
        }
        self.left = self.left.saturating_add(n);
        if self.left > self.capacity {
            return Err(PortError::PeerFailed(format!(
                "a consumer of port `{port}` returned {} credits for a capacity of {}",
                self.left, self.capacity
            )));
        }
        Ok(())
    }
}

/// Names who held a producer back when its wait for credits was interrupted: the consumer on
/// link `key` had not read its `capacity` messages in flight.
pub fn link_was_full(e: PortError, key: &str, capacity: u32) -> PortError {
    match e {
        PortError::Interrupted(why) => PortError::Interrupted(format!(
            "{why}; the link was full: the consumer on link {key} had not read its {capacity} \
             messages in flight"
        )),
        other => other,
    }
}

/// A consumer's credits to return on one link.
#[derive(Debug, Default, Clone, Copy)]
pub struct Returns {
    unreturned: u32,
}

impl Returns {
    /// One message read: the count to send back now, once `batch` are waiting.
    pub fn received(&mut self, batch: u32) -> Option<u32> {
        self.unreturned += 1;
        (self.unreturned >= batch).then_some(self.unreturned)
    }

    /// The count was sent.
    pub fn sent(&mut self) {
        self.unreturned = 0;
    }
}

/// A consumer's link, as its producer left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Messages may still come.
    Open,
    /// The producer closed it, and everything before the end was read (or it was forgotten).
    Ended,
    /// The producer failed or vanished without closing it.
    Failed,
}

/// A consumer's link: what every copying backend keeps of it, and what its transport needs
/// (`io`: the socket, the subscription's queue, …).
#[derive(Debug)]
pub struct InLink<T> {
    /// The link key (`channel[c]:producer.port->consumer.port`), for messages.
    pub key: String,
    /// Its state.
    pub state: LinkState,
    /// Messages read and not yet returned as credits.
    pub returns: Returns,
    /// The count its end of stream carried, once read.
    pub end: Option<u32>,
    /// The backend's own part.
    pub io: T,
}

impl<T> InLink<T> {
    /// An open link with nothing to return yet.
    pub fn new(key: String, io: T) -> InLink<T> {
        InLink {
            key,
            state: LinkState::Open,
            returns: Returns::default(),
            end: None,
            io,
        }
    }
}

/// A consumer's links, served round robin.
#[derive(Debug)]
pub struct Inputs<T> {
    /// The links, in link order.
    pub links: Vec<InLink<T>>,
    next: usize,
}

impl<T> Inputs<T> {
    /// The links, the first to be served first.
    pub fn new(links: Vec<InLink<T>>) -> Inputs<T> {
        Inputs { links, next: 0 }
    }

    /// `PeerFailed` naming the first failed link, if one failed.
    pub fn failure(&self) -> Option<PortError> {
        self.links
            .iter()
            .find(|l| l.state == LinkState::Failed)
            .map(|l| PortError::PeerFailed(format!("producer on link {} failed", l.key)))
    }

    /// Every link's index once, from the one after the link served last: so no producer of
    /// a fan-in starves. (It borrows nothing: the caller reads from the links meanwhile.)
    pub fn turns(&self) -> impl Iterator<Item = usize> + use<T> {
        let (start, n) = (self.next, self.links.len());
        (0..n).map(move |k| (start + k) % n)
    }

    /// Link `i` delivered: the next turn starts after it.
    pub fn served(&mut self, i: usize) {
        self.next = (i + 1) % self.links.len();
    }

    /// Per link, the count its end of stream carried (see [`super::Receiver::ends`]).
    pub fn ends(&self) -> Vec<Option<u32>> {
        self.links.iter().map(|l| l.end).collect()
    }

    /// Whether a link is still open.
    pub fn any_open(&self) -> bool {
        self.links.iter().any(|l| l.state == LinkState::Open)
    }

    /// Whether a link failed.
    pub fn any_failed(&self) -> bool {
        self.links.iter().any(|l| l.state == LinkState::Failed)
    }

    /// Ends every failed link (it has nothing left to deliver) and returns their indices:
    /// receiving goes on from the others.
    pub fn forget_failed(&mut self) -> Vec<usize> {
        let mut gone = Vec::new();
        for (i, link) in self.links.iter_mut().enumerate() {
            if link.state == LinkState::Failed {
                link.state = LinkState::Ended;
                gone.push(i);
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A consumer that returns more than it was given is caught, whatever the split.
    #[test]
    fn credits_returned_beyond_the_capacity_are_refused() {
        let mut c = Credits::new(4);
        for _ in 0..4 {
            assert!(c.available());
            c.spend(0);
        }
        assert!(!c.available());
        c.grant(3, "out").unwrap();
        c.grant(1, "out").unwrap();
        let e = c.grant(1, "out").unwrap_err();
        assert!(
            matches!(&e, PortError::PeerFailed(m) if m.contains("returned 5 credits for a capacity of 4")),
            "{e:?}"
        );
    }

    /// Credits go back a batch at a time, and not before.
    #[test]
    fn returns_come_a_batch_at_a_time() {
        let mut r = Returns::default();
        assert_eq!(r.received(3), None);
        assert_eq!(r.received(3), None);
        assert_eq!(r.received(3), Some(3));
        // Not sent (the peer is gone): the count keeps growing until it is.
        assert_eq!(r.received(3), Some(4));
        r.sent();
        assert_eq!(r.received(3), None);
        assert_eq!(batch(1), 1);
        assert_eq!(batch(16), 8);
    }

    /// Round robin from the link after the last one served, over open links only; failed
    /// links are reported, then forgotten.
    #[test]
    fn inputs_take_turns_and_forget_failed_links() {
        let mut inputs = Inputs::new((0..4).map(|i| InLink::new(format!("k{i}"), ())).collect());
        inputs.links[1].state = LinkState::Ended;
        let open = |inputs: &Inputs<()>| -> Vec<usize> {
            inputs
                .turns()
                .filter(|&i| inputs.links[i].state == LinkState::Open)
                .collect()
        };
        assert_eq!(open(&inputs), [0, 2, 3]);
        inputs.served(2);
        assert_eq!(open(&inputs), [3, 0, 2]);
        assert!(inputs.failure().is_none());
        inputs.links[3].state = LinkState::Failed;
        assert!(
            matches!(inputs.failure(), Some(PortError::PeerFailed(m)) if m.contains("link k3"))
                && inputs.any_failed()
        );
        assert_eq!(inputs.forget_failed(), [3]);
        assert!(inputs.failure().is_none() && inputs.any_open());
    }
}
