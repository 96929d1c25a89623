//! The whole-message family (`mq`, `udp`): each frame is one message of a kernel object that
//! keeps message boundaries, sent with one call from the producer's window and received with
//! one call into the consumer's.
//!
//! **The frame header lives in the window.** Neither object takes a header and a payload in
//! two pieces (a message queue has no vectored send), and a staging buffer would be a third
//! copy. So a port's window is one slot plus [`HEADER_LEN`] bytes: `loan` lends the plugin the
//! bytes after the header, `publish` writes the header ([`super::frame`]) in front of the
//! payload and sends `window[.. HEADER_LEN + len]` as one message (user → kernel copy);
//! `receive` takes one message into the consumer's window from its start (kernel → user copy),
//! checks the header the kernel put there, and delivers the payload after it. The copy meter
//! counts the payload bytes of each, not the header.
//!
//! **Capacity is messages in flight per link.** A message queue holds exactly `capacity`
//! messages (`mq_maxmsg`), and a full one refuses the next send: the queue is the window. A
//! datagram socket never holds a sender back (a receive queue that is full drops what comes),
//! so on `udp` the producer spends credits as on `msg`, returned by the consumer over the same
//! connected pair of sockets.
//!
//! **A peer's death.** Neither object tells one end that the other closed (a queue lives on
//! while one descriptor holds it; a datagram socket has no connection). So each link also has a
//! **liveness pair**, a Unix stream socket pair nobody writes on: when a worker dies or drops
//! its port, the kernel closes its end and the other end reads end of file. A consumer checks
//! it when the link's queue is empty after a wake-up (so a producer's last messages are
//! delivered before its failure is), a producer when its link is full.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::credit::{self, Credits, Inputs, LinkState, Spin};
use super::frame::{FrameKind, HEADER_LEN, Header};
use super::msg::{Calls, POLL_SLICE, plan_ports, take_links};
use super::{
    ChannelDesc, ChannelPlan, Counters, Delivery, FdSource, Fds, Offered, Outgoing, PortError,
    PortSpec, Receiver, Sender, Stop, Waited,
};
use crate::scenario::{BackendKind, Overflow};
use crate::sys::{self, CopyMeter, Readiness, Whole, Window};

/// The frame header's length, as a window offset.
#[allow(clippy::cast_possible_truncation)] // 16
pub(super) const HEAD: u32 = HEADER_LEN as u32;

/// What a port of this family's spec carries besides its fds (per link: the message fd, then
/// the liveness socket).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DgramParams {
    /// Whether capacity is kept by credits (`udp`) rather than by the kernel object (`mq`).
    pub credits: bool,
    /// A consumer returns credits after reading this many messages from a link.
    pub credit_batch: u32,
    /// How long a blocked call retries before it sleeps (`[run] wait`, as on `msg`).
    pub spin_ns: u64,
}

/// A port's window: one slot and the frame header in front of it.
pub fn window_bytes(slot_size: u64) -> u64 {
    slot_size + HEADER_LEN as u64
}

/// What a channel of this family costs: a window of one slot and the header per port, and
/// per link the message object's end and the liveness socket on each side.
pub fn cost(shape: &super::ChannelShape) -> super::ChannelCost {
    let window = super::pages(window_bytes(shape.slot_size));
    let links = shape.producers.saturating_mul(shape.consumers);
    super::ChannelCost {
        producer_window: window,
        consumer_window: window,
        windows_why: format!(
            "a window holds one slot and its frame header ({} B, in whole 64 KiB pages)",
            window_bytes(shape.slot_size)
        ),
        shared_bytes: 0,
        producer_fds: shape.consumers.saturating_mul(2),
        consumer_fds: shape.producers.saturating_mul(2),
        supervisor_fds: links.saturating_mul(4),
    }
}

/// Plans a channel of this family: per link, the message object's two ends from `link`
/// (producer's, consumer's) and a liveness pair.
pub(super) fn plan(
    ch: &ChannelDesc<'_>,
    fds: &mut Fds,
    kind: BackendKind,
    credits: bool,
    mut link: impl FnMut(&str) -> anyhow::Result<(OwnedFd, OwnedFd)>,
) -> anyhow::Result<ChannelPlan> {
    let params = serde_json::to_value(DgramParams {
        credits,
        credit_batch: credit::batch(ch.capacity),
        spin_ns: credit::spin_ns(ch.wait, ch.processes),
    })?;
    let window = window_bytes(u64::from(ch.slot_size));
    plan_ports(ch, fds, kind, window, params, |key| {
        let (out, input) = link(key)?;
        let (live_out, live_in) =
            sys::stream_pair().with_context(|| format!("creating link {key}'s liveness pair"))?;
        Ok((vec![out, live_out], vec![input, live_in]))
    })
}

/// A link's descriptors: the message object's end and the liveness socket.
#[derive(Debug)]
pub(super) struct Link {
    data: OwnedFd,
    live: OwnedFd,
}

/// The links of a port, as `plan` handed them over.
fn links(spec: &PortSpec, fds: &mut dyn FdSource) -> anyhow::Result<Vec<Link>> {
    take_links(spec, fds, 2)?
        .into_iter()
        .map(|d| {
            Ok(Link {
                data: d.data,
                live: d.back.context("a link without its liveness socket")?,
            })
        })
        .collect()
}

/// Whether the peer at the other end of a liveness socket is gone (its end closed).
fn peer_gone(live: &OwnedFd, calls: &mut Calls) -> bool {
    let mut byte = [0u8; 1];
    calls.reads += 1;
    matches!(
        nix::unistd::read(live, &mut byte),
        Ok(0) | Err(nix::errno::Errno::ECONNRESET)
    )
}

/// Sleeps until one of `fds` is ready (`true`: for writing) or the stop, for at most a poll
/// slice; counts the call and a wake-up.
fn sleep_on(
    fds: &[(std::os::fd::BorrowedFd<'_>, bool)],
    stop: &Stop,
    calls: &mut Calls,
) -> Result<(), PortError> {
    if stop.interrupted() || stop.remaining().is_zero() {
        return Err(stop.error());
    }
    let slice = stop.remaining().min(POLL_SLICE);
    calls.polls += 1;
    match sys::wait_each(fds, stop.fd(), slice) {
        Ok(Readiness::Ready) => {
            calls.wakeups += 1;
            Ok(())
        }
        Ok(Readiness::TimedOut) => Ok(()),
        Ok(Readiness::Stopped) => Err(stop.error()),
        Err(e) => Err(PortError::PeerFailed(format!("poll: {e}"))),
    }
}

struct OutLink {
    key: String,
    io: Option<Link>,
    /// `udp`: the messages this link may still take.
    credits: Option<Credits>,
    /// Its sequence numbers and drops.
    offered: Offered,
}

/// The sending half of an `mq` or `udp` port: one link per consumer.
pub struct DgramSender {
    name: String,
    slot_size: u32,
    capacity: u32,
    how: Whole,
    overflow: Overflow,
    spin_ns: u64,
    links: Vec<OutLink>,
    credit_waits: u64,
    full_waits: u64,
    calls: Calls,
    waited: Waited,
}

impl std::fmt::Debug for DgramSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DgramSender")
            .field("name", &self.name)
            .finish()
    }
}

/// What the producer learned from reading a link's credits.
enum CreditRead {
    Got,
    NotReady,
    Gone,
}

impl DgramSender {
    pub(super) fn open(
        spec: &PortSpec,
        fds: &mut dyn FdSource,
        how: Whole,
    ) -> anyhow::Result<DgramSender> {
        anyhow::ensure!(spec.capacity > 0, "port `{}`: capacity 0", spec.name);
        let params: DgramParams = spec.params()?;
        Ok(DgramSender {
            name: spec.name.clone(),
            slot_size: spec.slot_size,
            capacity: spec.capacity,
            how,
            overflow: spec.overflow,
            spin_ns: params.spin_ns,
            links: links(spec, fds)?
                .into_iter()
                .zip(&spec.links)
                .map(|(io, key)| OutLink {
                    key: key.clone(),
                    io: Some(io),
                    credits: params.credits.then(|| Credits::new(spec.capacity)),
                    offered: Offered::default(),
                })
                .collect(),
            credit_waits: 0,
            waited: Waited::default(),
            full_waits: 0,
            calls: Calls::default(),
        })
    }

    /// Reads the credit datagrams (4-byte little-endian counts) queued on a link.
    fn read_credits(
        link: &mut OutLink,
        port: &str,
        calls: &mut Calls,
    ) -> Result<CreditRead, PortError> {
        let (Some(io), Some(credits)) = (&link.io, &mut link.credits) else {
            return Ok(CreditRead::Gone);
        };
        let mut got = false;
        loop {
            let mut count = [0u8; 8];
            calls.reads += 1;
            match nix::unistd::read(&io.data, &mut count) {
                Ok(4) => {
                    let n = u32::from_le_bytes(count[..4].try_into().expect("4 bytes"));
                    credits.grant(n, port)?;
                    got = true;
                }
                Ok(n) => {
                    return Err(PortError::PeerFailed(format!(
                        "a consumer of port `{port}` sent a credit datagram of {n} bytes"
                    )));
                }
                Err(nix::errno::Errno::EAGAIN) if got => return Ok(CreditRead::Got),
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                    return Ok(CreditRead::NotReady);
                }
                Err(nix::errno::Errno::ECONNREFUSED) => return Ok(CreditRead::Gone),
                Err(e) => return Err(PortError::PeerFailed(format!("reading credits: {e}"))),
            }
        }
    }

    /// Sends one whole frame (`window[.. len]`) on one link, waiting while its queue is full
    /// (or, with `drop_when_full`, not sending it then); says which.
    #[allow(clippy::too_many_arguments)]
    fn send_frame(
        io: &Link,
        win: Window<'_>,
        meter: &mut CopyMeter,
        len: usize,
        how: Whole,
        drop_when_full: bool,
        stop: &Stop,
        calls: &mut Calls,
        full_waits: &mut u64,
        waited: &mut Waited,
    ) -> Result<Sent, PortError> {
        loop {
            calls.writes += 1;
            match win.send_whole(io.data.as_fd(), meter, len, HEADER_LEN, how) {
                Ok(()) => return Ok(Sent::Yes),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if peer_gone(&io.live, calls) {
                        return Ok(Sent::Gone);
                    }
                    if drop_when_full {
                        return Ok(Sent::Full);
                    }
                    *full_waits += 1;
                    // The queue is the window (`mq`): the wait for room starts.
                    waited.start();
                    sleep_on(
                        &[(io.data.as_fd(), true), (io.live.as_fd(), false)],
                        stop,
                        calls,
                    )?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if super::msg::is_gone(&e) || e.kind() == io::ErrorKind::ConnectionRefused =>
                {
                    return Ok(Sent::Gone);
                }
                Err(e) => return Err(PortError::PeerFailed(format!("send: {e}"))),
            }
        }
    }
}

impl DgramSender {
    /// `udp` without credits (`drop-newest`): the kernel drops whatever finds the consumer's
    /// receive buffer full, an end frame too. So the end frame is sent again every
    /// [`RESEND`] until the consumer acknowledges it (any datagram back: without credits it
    /// sends nothing else), the consumer is gone, or the run stops: over a lossy link the
    /// end of a stream is made reliable by the protocol, as TCP's FIN is.
    fn end_until_acknowledged(
        io: &Link,
        win: Window<'_>,
        stop: &Stop,
        calls: &mut Calls,
        full_waits: &mut u64,
    ) {
        let mut unused = CopyMeter::default();
        loop {
            let sent = Self::send_frame(
                io,
                win,
                &mut unused,
                HEADER_LEN,
                Whole::Datagram,
                true,
                stop,
                calls,
                full_waits,
                &mut Waited::default(),
            );
            if !matches!(sent, Ok(Sent::Yes | Sent::Full)) {
                return;
            }
            if stop.interrupted() || stop.remaining().is_zero() {
                return;
            }
            calls.polls += 1;
            let ready = sys::wait_each(
                &[(io.data.as_fd(), false), (io.live.as_fd(), false)],
                stop.fd(),
                stop.remaining().min(RESEND),
            );
            match ready {
                Ok(Readiness::Ready) => {
                    let mut ack = [0u8; 8];
                    calls.reads += 1;
                    match nix::unistd::read(&io.data, &mut ack) {
                        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
                        // An acknowledgement, or the consumer is gone: either way, done.
                        _ => return,
                    }
                    if peer_gone(&io.live, calls) {
                        return;
                    }
                }
                Ok(Readiness::TimedOut) => {}
                Ok(Readiness::Stopped) | Err(_) => return,
            }
        }
    }
}

/// How long a `udp` producer without credits waits for the end frame's acknowledgement before
/// it sends the frame again.
const RESEND: std::time::Duration = std::time::Duration::from_millis(5);

/// What became of a frame `send_frame` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// It is in the queue (the kernel may still drop a datagram at the receiving socket).
    Yes,
    /// The queue was full and the caller asked not to wait: not sent.
    Full,
    /// The consumer is gone.
    Gone,
}

impl DgramSender {
    /// `loan`, less the count of its wait (`Waited::end`), which the caller makes on every return.
    fn loan_waiting(&mut self, _win: Window<'_>, len: u32, stop: &Stop) -> Result<u32, PortError> {
        if len > self.slot_size {
            return Err(PortError::TooLarge {
                len,
                slot: self.slot_size,
            });
        }
        // `udp`: every link needs a credit (a queue holds the producer back by itself).
        for link in &mut self.links {
            let mut spin = Spin::default();
            while link.io.is_some() && link.credits.as_ref().is_some_and(|c| !c.available()) {
                // The window is full: the wait for a credit starts.
                self.waited.start();
                match Self::read_credits(link, &self.name, &mut self.calls)? {
                    CreditRead::Got => {}
                    CreditRead::Gone => link.io = None,
                    CreditRead::NotReady if spin.again(self.spin_ns) => {
                        if stop.interrupted() || stop.remaining().is_zero() {
                            return Err(stop.error());
                        }
                    }
                    CreditRead::NotReady => {
                        let io = link.io.as_ref().expect("checked above");
                        if peer_gone(&io.live, &mut self.calls) {
                            link.io = None;
                            continue;
                        }
                        self.credit_waits += 1;
                        sleep_on(
                            &[(io.data.as_fd(), false), (io.live.as_fd(), false)],
                            stop,
                            &mut self.calls,
                        )
                        .map_err(|e| credit::link_was_full(e, &link.key, self.capacity))?;
                    }
                }
            }
        }
        if self.links.iter().all(|l| l.io.is_none()) {
            return Err(PortError::Closed);
        }
        // The plugin writes after the header's room.
        Ok(HEAD)
    }
}

impl Sender for DgramSender {
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
        stop: &Stop,
    ) -> Result<(), PortError> {
        if msg.off != HEAD {
            return Err(PortError::PeerFailed(format!(
                "port `{}`: a message at offset {}, not where `loan` put it",
                self.name, msg.off
            )));
        }
        let len = HEADER_LEN + msg.len as usize;
        let dropping = self.overflow == Overflow::DropNewest;
        for link in &mut self.links {
            let Some(io) = &link.io else { continue };
            // The header goes in front of the payload in the window, numbered for this link.
            let mut next = link.offered;
            let head = Header {
                kind: FrameKind::Data,
                len: msg.len,
                seq: next.take(),
                publish_ns: msg.publish_ns,
            }
            .encode();
            if !win.write(0, &head) {
                return Err(PortError::PeerFailed(format!(
                    "port `{}`: the window has no room for the frame header",
                    self.name
                )));
            }
            let sent = Self::send_frame(
                io,
                win,
                meter,
                len,
                self.how,
                dropping,
                stop,
                &mut self.calls,
                &mut self.full_waits,
                &mut self.waited,
            );
            // A full queue made the send wait: counted (a send that did not wait read no
            // clock).
            self.waited.end();
            let sent = sent.map_err(|e| credit::link_was_full(e, &link.key, self.capacity))?;
            match sent {
                Sent::Yes => {
                    link.offered = next;
                    if let Some(c) = &mut link.credits {
                        c.spend(msg.publish_ns);
                    }
                }
                Sent::Full => link.offered.drop_one(),
                Sent::Gone => link.io = None,
            }
        }
        if self.links.iter().all(|l| l.io.is_none()) {
            return Err(PortError::Closed);
        }
        Ok(())
    }

    fn close(&mut self, stop: &Stop) {
        let mut unused = CopyMeter::default();
        for link in &mut self.links {
            if let Some(io) = link.io.take() {
                let mut end = Header {
                    kind: FrameKind::End,
                    len: 0,
                    seq: link.offered.count(),
                    publish_ns: sys::now_ns(),
                }
                .encode();
                let Some(win) = Window::in_memory(&mut end, 0, HEAD) else {
                    return;
                };
                if self.how == Whole::Datagram && link.credits.is_none() {
                    Self::end_until_acknowledged(
                        &io,
                        win,
                        stop,
                        &mut self.calls,
                        &mut self.full_waits,
                    );
                    continue;
                }
                // The end frame needs no credit (a `udp` consumer's receive queue has room for
                // one frame beyond the capacity); a queue that stays full until the stop just
                // loses it, and the consumer sees a failure, which a stopped run is.
                let _ = Self::send_frame(
                    &io,
                    win,
                    &mut unused,
                    HEADER_LEN,
                    self.how,
                    false,
                    stop,
                    &mut self.calls,
                    &mut self.full_waits,
                    &mut Waited::default(),
                );
            }
        }
    }

    fn abort(&mut self) {
        // Without an end frame, the liveness socket's end of file is the failure.
        for link in &mut self.links {
            link.io = None;
        }
    }

    fn counters(&self) -> Counters {
        Counters::from([
            ("credit_waits", self.credit_waits),
            ("full_waits", self.full_waits),
            ("reads", self.calls.reads),
            ("writes", self.calls.writes),
            ("polls", self.calls.polls),
            ("wakeups", self.calls.wakeups),
        ])
    }

    fn dropped(&self) -> Vec<u64> {
        self.links.iter().map(|l| l.offered.dropped).collect()
    }

    fn waited_ns(&self) -> u64 {
        self.waited.ns
    }

    fn round_trips(&self) -> Vec<Option<u64>> {
        self.links
            .iter()
            .map(|l| l.credits.as_ref().and_then(Credits::round_trip_ns))
            .collect()
    }
}

/// A consumer's link on `mq` or `udp`.
type InLink = credit::InLink<Link>;

/// The receiving half of an `mq` or `udp` port: one link per producer, round robin.
pub struct DgramReceiver {
    name: String,
    slot_size: u32,
    how: Whole,
    credits: bool,
    credit_batch: u32,
    spin_ns: u64,
    links: Inputs<Link>,
    /// Whether a link found empty should be asked if its producer is gone (after a wake-up,
    /// and now and then while spinning).
    suspect: bool,
    empty_passes: u64,
    credit_writes: u64,
    calls: Calls,
    waited: Waited,
}

impl std::fmt::Debug for DgramReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DgramReceiver")
            .field("name", &self.name)
            .finish()
    }
}

impl DgramReceiver {
    pub(super) fn open(
        spec: &PortSpec,
        fds: &mut dyn FdSource,
        how: Whole,
    ) -> anyhow::Result<DgramReceiver> {
        let params: DgramParams = spec.params()?;
        anyhow::ensure!(
            (1..=spec.capacity.max(1)).contains(&params.credit_batch),
            "port `{}`: credit batch {} outside 1..={}",
            spec.name,
            params.credit_batch,
            spec.capacity
        );
        Ok(DgramReceiver {
            name: spec.name.clone(),
            slot_size: spec.slot_size,
            how,
            credits: params.credits,
            credit_batch: params.credit_batch,
            spin_ns: params.spin_ns,
            links: Inputs::new(
                spec.links
                    .iter()
                    .zip(links(spec, fds)?)
                    .map(|(key, io)| InLink::new(key.clone(), io))
                    .collect(),
            ),
            suspect: false,
            empty_passes: 0,
            credit_writes: 0,
            waited: Waited::default(),
            calls: Calls::default(),
        })
    }

    /// Takes one frame from link `i`, if one is queued.
    fn read_frame(
        &mut self,
        i: usize,
        win: Window<'_>,
        meter: &mut CopyMeter,
    ) -> Result<Option<Delivery>, PortError> {
        let link = &mut self.links.links[i];
        let fail = |link: &mut InLink, why: String| {
            link.state = LinkState::Failed;
            PortError::PeerFailed(format!("producer on link {}: {why}", link.key))
        };
        // Asked before the queue: a producer that is gone sent everything it ever will.
        let gone = self.suspect && peer_gone(&link.io.live, &mut self.calls);
        // A credit datagram sent after the producer closed its socket comes back as "port
        // unreachable": the socket reports it once, in front of what is still queued, so the
        // read is tried again. The liveness pair, not this, says whether the producer failed.
        let mut got = Err(io::ErrorKind::ConnectionRefused.into());
        for _ in 0..3 {
            self.calls.reads += 1;
            got = win.receive_whole(link.io.data.as_fd(), meter, HEADER_LEN, self.how);
            if !matches!(&got, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused) {
                break;
            }
        }
        let got = match got {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && gone => {
                return Err(fail(link, "closed its link without finishing".into()));
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                return Ok(None);
            }
            Err(e) => return Err(fail(link, format!("receive: {e}"))),
        };
        let max = self
            .slot_size
            .min(u32::try_from(win.len().saturating_sub(HEADER_LEN)).unwrap_or(u32::MAX));
        let header = match win.read_array::<HEADER_LEN>(0) {
            Some(head) if got >= HEADER_LEN => Header::decode(&head, max),
            _ => return Err(fail(link, format!("a message of {got} bytes, no frame"))),
        };
        let header = match header {
            Ok(h) if h.len as usize == got - HEADER_LEN => h,
            Ok(h) => {
                return Err(fail(
                    link,
                    format!("a frame of {} bytes in a message of {got}", h.len),
                ));
            }
            Err(e) => return Err(fail(link, format!("bad frame: {e}"))),
        };
        match header.kind {
            FrameKind::End => {
                link.state = LinkState::Ended;
                link.end = Some(header.seq);
                if self.how == Whole::Datagram && !self.credits {
                    // Acknowledged, so the producer stops sending it again (see
                    // `DgramSender::end_until_acknowledged`); a producer that is gone is not
                    // an error here.
                    self.calls.writes += 1;
                    let _ = nix::unistd::write(&link.io.data, &[0u8; 4]);
                }
                Ok(None)
            }
            FrameKind::Data => {
                if self.credits
                    && let Some(n) = link.returns.received(self.credit_batch)
                {
                    // A 4-byte datagram to a producer whose receive queue holds at most
                    // `capacity / batch` of them; one that is gone is not an error here.
                    self.calls.writes += 1;
                    if let Ok(4) = nix::unistd::write(&link.io.data, &n.to_le_bytes()) {
                        link.returns.sent();
                        self.credit_writes += 1;
                    }
                }
                Ok(Some(Delivery {
                    off: HEAD,
                    len: header.len,
                    publish_ns: header.publish_ns,
                    link: i,
                    seq: header.seq,
                }))
            }
        }
    }
}

impl DgramReceiver {
    /// `receive`, less the count of its wait (`Waited::end`), which the caller makes on every return.
    fn receive_waiting(
        &mut self,
        win: Window<'_>,
        meter: &mut CopyMeter,
        stop: &Stop,
    ) -> Result<Delivery, PortError> {
        let mut spin = Spin::default();
        loop {
            if let Some(e) = self.links.failure() {
                return Err(e);
            }
            for i in self.links.turns() {
                if self.links.links[i].state != LinkState::Open {
                    continue;
                }
                if let Some(d) = self.read_frame(i, win, meter)? {
                    self.links.served(i);
                    return Ok(d);
                }
            }
            self.suspect = false;
            if !self.links.any_open() {
                if self.links.any_failed() {
                    continue;
                }
                return Err(PortError::Closed);
            }
            self.waited.start();
            if stop.interrupted() || stop.remaining().is_zero() {
                return Err(stop.error());
            }
            if spin.again(self.spin_ns) {
                // A spinner never sleeps, so it asks after its producers now and then.
                self.empty_passes += 1;
                self.suspect = self.empty_passes.is_multiple_of(1024);
                continue;
            }
            let fds: Vec<_> = self
                .links
                .links
                .iter()
                .filter(|l| l.state == LinkState::Open)
                .flat_map(|l| [(l.io.data.as_fd(), false), (l.io.live.as_fd(), false)])
                .collect();
            sleep_on(&fds, stop, &mut self.calls)?;
            self.suspect = true;
        }
    }
}

impl Receiver for DgramReceiver {
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
        self.links.forget_failed()
    }

    fn detach(&mut self) {
        // Producers see the liveness sockets close (and, on `udp`, a refused send).
        self.links.links.clear();
    }

    fn counters(&self) -> Counters {
        Counters::from([
            ("credit_writes", self.credit_writes),
            ("reads", self.calls.reads),
            ("writes", self.calls.writes),
            ("polls", self.calls.polls),
            ("wakeups", self.calls.wakeups),
        ])
    }

    fn ends(&self) -> Vec<Option<u32>> {
        self.links.ends()
    }
}
