//! `msg`: a copied message channel through the kernel, one Unix stream socket per link.
//!
//! `publish` writes the frame header and the payload straight from the producer's window with
//! one `writev` (user → kernel copy); `receive` reads the header into a small stack buffer and
//! the payload straight into the consumer's window (kernel → user copy). There is no staging
//! buffer in the host, so the copy meter counts exactly the payload bytes each side passed
//! through the socket. Frames are described in [`super::frame`].
//!
//! **Capacity is messages in flight per link**, as on `shm`: a producer holds `capacity`
//! credits per link, spends one per message and waits in `loan` when a link has none. The
//! consumer returns credits over the same socket (the other direction), as one 4-byte
//! little-endian count per `credit_batch` messages it has read, so the cost is one small
//! `write` per batch on the consumer and one `read` on the producer when it ran out. Without
//! credits the socket buffer would queue thousands of small messages and the latency figures
//! would measure that queue, not the hand-off.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::credit::{self, Credits, Inputs, LinkState, Spin};
use super::frame::{FrameKind, HEADER_LEN, Header};
use super::{
    Backend, ChannelDesc, ChannelPlan, Counters, Delivery, Direction, FdSource, Fds, NothingToDo,
    Offered, Outgoing, PortError, PortSpec, Receiver, Sender, Stop, Waited,
};
use crate::scenario::{BackendKind, Overflow, WaitMode};
use crate::sys::{self, CopyMeter, Readiness, Window};

/// What the kernel charges a Unix stream socket's send buffer for one queued frame of
/// `frame` bytes, as an upper bound (measured on Linux 6.18 by filling a socket nobody reads:
/// 768 B for a frame of 24 B or 80 B, 4.9 KiB for 4 KiB + 16 B, 66.6–67.1 KiB for 64 KiB +
/// 16 B — 125 fit in 8 MiB, 126 do not — and 1.05–1.2 MiB for 1 MiB + 16 B — 7 fit, 8 do not):
/// - a frame up to `MAX_HEAD` is one `kmalloc` rounded up to a power of two (its
///   `skb_shared_info` inside) plus the `sk_buff`;
/// - a larger one goes to whole pages beyond a small head, one skb per 64 KiB or so, each
///   with its own `sk_buff` and head.
///
/// A 64 B message is charged nine times its size: a buffer sized from the payload alone held
/// 6 such messages at `capacity = 8`, and 14 at 64.
pub fn frame_charge(frame: u64) -> u64 {
    /// The most a stream skb's linear part takes before the rest goes to pages
    /// (`SKB_MAX_HEAD(0)` on 4 KiB pages).
    const MAX_HEAD: u64 = 3776;
    /// `skb_shared_info`, which shares the linear part's allocation.
    const SHARED_INFO: u64 = 320;
    /// The `sk_buff` itself, with slack.
    const SKB: u64 = 768;
    /// The page data one skb carries, at most (17 fragments of 4 KiB, rounded down).
    const SKB_DATA: u64 = 65536;
    const PAGE: u64 = 4096;
    let linear = |bytes: u64| (bytes + SHARED_INFO).next_power_of_two() + SKB;
    if frame <= MAX_HEAD {
        linear(frame)
    } else if frame <= SKB_DATA + MAX_HEAD {
        // One skb: whole pages for all but a small head.
        let paged = (frame - MAX_HEAD).div_ceil(PAGE) * PAGE;
        paged + linear(frame.saturating_sub(paged))
    } else {
        // Several skbs, each with a head of up to a page.
        frame.div_ceil(PAGE) * PAGE + frame.div_ceil(SKB_DATA) * (PAGE + SKB)
    }
}

/// The send buffer one link needs so that `capacity` frames of `slot` bytes of payload sit
/// unread: the sum of their charges. The sender asks for this much (`SO_SNDBUF`; the kernel
/// doubles what it is given, as room for its own accounting, and caps the request at
/// `net.core.wmem_max`).
pub fn link_buffer(slot: u64, capacity: u64) -> u64 {
    capacity.saturating_mul(frame_charge(slot + HEADER_LEN as u64))
}

/// How long a blocked call sleeps in `poll` before it looks at the deadline again.
pub(super) const POLL_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

/// The `msg` backend.
#[derive(Debug)]
pub struct Msg;

/// What a `msg` port's spec carries besides its link fds (one per link, in link order).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgParams {
    /// A consumer returns credits after reading this many messages from a link.
    pub credit_batch: u32,
    /// How long a blocked call retries its non-blocking reads before it sleeps in `poll`
    /// (`[run] wait`: `spin` never sleeps, `futex` sleeps at once, `adaptive` retries for a
    /// bounded time, and not at all when the run has more processes than CPUs).
    #[serde(default)]
    pub spin_ns: u64,
}

impl MsgParams {
    pub(super) fn for_channel(capacity: u32, wait: WaitMode, processes: usize) -> MsgParams {
        MsgParams {
            credit_batch: credit::batch(capacity),
            spin_ns: credit::spin_ns(wait, processes),
        }
    }
}

impl Backend for Msg {
    fn cost(&self, shape: &super::ChannelShape) -> super::ChannelCost {
        let window = super::pages(shape.slot_size);
        let links = shape.producers.saturating_mul(shape.consumers);
        super::ChannelCost {
            producer_window: window,
            consumer_window: window,
            windows_why: format!(
                "a window holds one slot ({} B, in whole 64 KiB pages)",
                shape.slot_size
            ),
            shared_bytes: 0,
            producer_fds: shape.consumers,
            consumer_fds: shape.producers,
            // Both ends of every link until the workers are started.
            supervisor_fds: links.saturating_mul(2),
        }
    }

    /// `capacity` frames must sit unread in a link's socket; the kernel grants a socket at
    /// most twice `net.core.wmem_max`. Capacity 1 is always admitted: a frame larger than the
    /// buffer streams through it, its `publish` returning once the consumer has taken all but
    /// a buffer's worth.
    fn refuse(&self, shape: &super::ChannelShape) -> Option<String> {
        let need = link_buffer(shape.slot_size, shape.capacity);
        // `net.core.wmem_max`: the most `SO_SNDBUF` may ask for (the kernel grants twice it).
        // Root could exceed it with `SO_SNDBUFFORCE`; the backend does not, so that a
        // scenario runs alike for every user.
        let max = super::sysctl("net.core.wmem_max")?;
        let grant = max.saturating_mul(2);
        let fit = grant / frame_charge(shape.slot_size + HEADER_LEN as u64);
        (shape.capacity > 1 && need > grant).then(|| {
            let fits = match fit {
                0 => "not one such frame fits (at capacity 1 each frame streams through the \
                      socket)"
                    .to_string(),
                n => format!("at most {n} such frames fit"),
            };
            format!(
                "each link's socket must hold `capacity` = {} unread frames of {} B, which the \
                 kernel charges {need} B with its per-message overhead, but it grants a socket \
                 at most {grant} B, twice net.core.wmem_max = {max}: {fits}; lower capacity \
                 to {} or slot_size, or raise net.core.wmem_max to at least {} (sysctl -w \
                 net.core.wmem_max=N)",
                shape.capacity,
                shape.slot_size + HEADER_LEN as u64,
                fit.max(1),
                need.div_ceil(2)
            )
        })
    }

    fn plan(&self, ch: &ChannelDesc<'_>, fds: &mut Fds) -> anyhow::Result<ChannelPlan> {
        plan_links(ch, fds, BackendKind::Msg, |_| {
            let (a, b) = sys::stream_pair().context("creating a link socket pair")?;
            Ok((vec![a], vec![b]))
        })
    }

    fn open_sender(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Sender>> {
        Ok(Box::new(MsgSender::new(
            spec,
            take_links(spec, fds, 1)?,
            Transport::Socket,
        )?))
    }

    fn open_receiver(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Receiver>> {
        Ok(Box::new(MsgReceiver::new(spec, take_links(spec, fds, 1)?)?))
    }
}

/// A link's file descriptors: one socket both ways (`msg`), or two pipes (`pipe`), the data
/// towards the consumer and the credits back.
#[derive(Debug)]
pub(super) struct Duplex {
    /// Frames: the producer writes, the consumer reads.
    pub(super) data: OwnedFd,
    /// Credits: the consumer writes, the producer reads; `None`: `data` carries them too.
    pub(super) back: Option<OwnedFd>,
}

impl Duplex {
    /// The fd credits travel on.
    fn back(&self) -> &OwnedFd {
        self.back.as_ref().unwrap_or(&self.data)
    }
}

/// The fds of a port's links, `per_link` of them per link (1: a socket; 2: the data pipe's
/// end, then the credit pipe's), each made non-blocking.
pub(super) fn take_links(
    spec: &PortSpec,
    source: &mut dyn FdSource,
    per_link: usize,
) -> anyhow::Result<Vec<Duplex>> {
    anyhow::ensure!(
        spec.fds.len() == spec.links.len() * per_link,
        "port `{}`: {} fds for {} links",
        spec.name,
        spec.fds.len(),
        spec.links.len()
    );
    spec.fds
        .chunks(per_link)
        .zip(&spec.links)
        .map(|(numbers, key)| {
            let mut fds = numbers.iter().map(|&n| {
                let fd = source
                    .take(n)
                    .with_context(|| format!("port {}: link {key}", spec.name))?;
                sys::set_nonblocking(fd.as_fd())?;
                anyhow::Ok(fd)
            });
            let data = fds.next().context("a link without fds")??;
            let back = fds.next().transpose()?;
            Ok(Duplex { data, back })
        })
        .collect()
}

/// A link's fds as `plan_links` hands them out: the producer's data fd and, on a transport
/// with one-way fds, its credit fd; the consumer's the same.
pub(super) type LinkFds = (Vec<OwnedFd>, Vec<OwnedFd>);

/// Plans a channel of the `msg` family (`msg`, `pipe`, `tcp`; `plan_ports` also `mq`, `udp`): one port spec per endpoint
/// with a one-slot window and `MsgParams`, and per producer → consumer link the fds `link`
/// makes for its key, data first. A dead worker's fds close with it, so its peers see end of
/// file or EPIPE: nothing to do when one is lost.
pub(super) fn plan_links(
    ch: &ChannelDesc<'_>,
    fds: &mut Fds,
    kind: BackendKind,
    link: impl FnMut(&str) -> anyhow::Result<LinkFds>,
) -> anyhow::Result<ChannelPlan> {
    let params = serde_json::to_value(MsgParams::for_channel(ch.capacity, ch.wait, ch.processes))?;
    plan_ports(ch, fds, kind, u64::from(ch.slot_size), params, link)
}

/// As [`plan_links`], with every port's window of `window` bytes (whole pages) and its
/// backend parameters `params`.
pub(super) fn plan_ports(
    ch: &ChannelDesc<'_>,
    fds: &mut Fds,
    kind: BackendKind,
    window: u64,
    params: serde_json::Value,
    mut link: impl FnMut(&str) -> anyhow::Result<LinkFds>,
) -> anyhow::Result<ChannelPlan> {
    let window_len = super::window_len(window).context("the slot does not fit a 32-bit window")?;
    let port = |e: &super::EndpointDesc, dir| {
        let mut spec = super::port_spec(&e.port, dir, kind, ch);
        spec.window_len = window_len;
        spec.params = params.clone();
        spec
    };
    let mut producers: Vec<PortSpec> = ch
        .producers
        .iter()
        .map(|e| port(e, Direction::Out))
        .collect();
    let mut consumers: Vec<PortSpec> = ch
        .consumers
        .iter()
        .map(|e| port(e, Direction::In))
        .collect();
    for (p, from) in ch.producers.iter().enumerate() {
        for (q, to) in ch.consumers.iter().enumerate() {
            let key = &ch.keys[p][q];
            let (out, input) = link(key)?;
            for fd in out {
                producers[p].fds.push(fds.give(from.plugin, fd)?);
            }
            producers[p].links.push(key.clone());
            for fd in input {
                consumers[q].fds.push(fds.give(to.plugin, fd)?);
            }
            consumers[q].links.push(key.clone());
        }
    }
    Ok(ChannelPlan {
        producers,
        consumers,
        peers: Box::new(NothingToDo),
    })
}

/// The system calls a port made, counted where it makes them (`reads`, `writes`, `polls`),
/// and the sleeps a peer ended (`wakeups`).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Calls {
    pub(super) reads: u64,
    pub(super) writes: u64,
    pub(super) polls: u64,
    pub(super) wakeups: u64,
}

/// Waits until `fd` is ready (or the stop/deadline ends the wait). Counts a wake-up when the
/// wait ended because the fd became ready after a sleep; the wait is the port's (`waited`,
/// which the call it is part of ends).
fn wait_one(
    fd: &OwnedFd,
    write: bool,
    stop: &Stop,
    calls: &mut Calls,
    waited: &mut Waited,
) -> Result<(), PortError> {
    waited.start();
    loop {
        if stop.interrupted() || stop.remaining().is_zero() {
            return Err(stop.error());
        }
        let slice = stop.remaining().min(POLL_SLICE);
        calls.polls += 1;
        match sys::wait_ready(&[fd.as_fd()], write, stop.fd(), slice) {
            Ok(Readiness::Ready) => {
                calls.wakeups += 1;
                return Ok(());
            }
            Ok(Readiness::Stopped) => return Err(stop.error()),
            Ok(Readiness::TimedOut) => continue,
            Err(e) => return Err(PortError::PeerFailed(format!("poll: {e}"))),
        }
    }
}

pub(super) fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

/// What the producer learned from reading a link's credit bytes.
enum CreditRead {
    Got,
    NotReady,
    Gone,
}

struct OutLink {
    key: String,
    fd: Option<Duplex>,
    /// Messages this link may still take.
    credits: Credits,
    /// A credit count split across reads.
    partial: [u8; 4],
    partial_len: usize,
    /// Its sequence numbers and drops.
    offered: Offered,
}

impl OutLink {
    /// Reads whatever credit counts the consumer of port `port`'s link has sent back.
    fn read_credits(&mut self, port: &str, calls: &mut Calls) -> Result<CreditRead, PortError> {
        let Some(fd) = &self.fd else {
            return Ok(CreditRead::Gone);
        };
        let mut buf = [0u8; 256];
        calls.reads += 1;
        let n = match nix::unistd::read(fd.back(), &mut buf) {
            Ok(0) => return Ok(CreditRead::Gone),
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                return Ok(CreditRead::NotReady);
            }
            Err(nix::errno::Errno::ECONNRESET) => return Ok(CreditRead::Gone),
            Err(e) => return Err(PortError::PeerFailed(format!("reading credits: {e}"))),
        };
        for &b in &buf[..n] {
            self.partial[self.partial_len] = b;
            self.partial_len += 1;
            if self.partial_len == 4 {
                self.credits.grant(u32::from_le_bytes(self.partial), port)?;
                self.partial_len = 0;
            }
        }
        Ok(CreditRead::Got)
    }
}

/// What a link's fds are, for what only one of them does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// A Unix stream socket: its send buffer is sized for `capacity` frames here.
    Socket,
    /// Pipes: the backend sized the data pipe when it made it.
    Pipe,
}

/// The sending half of a `msg` (or `pipe`) port: one link per consumer.
pub struct MsgSender {
    name: String,
    slot_size: u32,
    capacity: u32,
    overflow: Overflow,
    links: Vec<OutLink>,
    spin_ns: u64,
    credit_reads: u64,
    credit_waits: u64,
    calls: Calls,
    waited: Waited,
}

impl std::fmt::Debug for MsgSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgSender")
            .field("name", &self.name)
            .finish()
    }
}

impl MsgSender {
    pub(super) fn new(
        spec: &PortSpec,
        fds: Vec<Duplex>,
        transport: Transport,
    ) -> anyhow::Result<MsgSender> {
        anyhow::ensure!(spec.capacity > 0, "port `{}`: capacity 0", spec.name);
        if transport == Transport::Socket {
            // Room for `capacity` unread frames as the kernel charges them (`check` refused
            // what the kernel cannot grant); the cap keeps the request an int.
            let want =
                link_buffer(u64::from(spec.slot_size), u64::from(spec.capacity)).min(1 << 30);
            let want = usize::try_from(want).unwrap_or(1 << 30);
            for fd in &fds {
                sys::set_send_buffer(fd.data.as_fd(), want);
            }
        }
        let params: MsgParams = spec.params()?;
        Ok(MsgSender {
            spin_ns: params.spin_ns,
            name: spec.name.clone(),
            slot_size: spec.slot_size,
            capacity: spec.capacity,
            overflow: spec.overflow,
            links: fds
                .into_iter()
                .zip(&spec.links)
                .map(|(fd, key)| OutLink {
                    key: key.clone(),
                    fd: Some(fd),
                    credits: Credits::new(spec.capacity),
                    partial: [0; 4],
                    partial_len: 0,
                    offered: Offered::default(),
                })
                .collect(),
            credit_reads: 0,
            credit_waits: 0,
            waited: Waited::default(),
            calls: Calls::default(),
        })
    }

    /// Writes one whole frame to one link; returns `false` when the consumer is gone.
    #[allow(clippy::too_many_arguments)]
    fn write_frame(
        fd: &Duplex,
        win: Window<'_>,
        meter: &mut CopyMeter,
        head: &[u8; HEADER_LEN],
        off: usize,
        len: usize,
        stop: &Stop,
        calls: &mut Calls,
        waited: &mut Waited,
    ) -> Result<bool, PortError> {
        let total = HEADER_LEN + len;
        let mut done = 0;
        while done < total {
            calls.writes += 1;
            match win.writev_frame(fd.data.as_fd(), meter, head, off, len, done) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_one(&fd.data, true, stop, calls, waited)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_gone(&e) => return Ok(false),
                Err(e) => return Err(PortError::PeerFailed(format!("send: {e}"))),
            }
        }
        Ok(true)
    }
}

impl MsgSender {
    /// `publish`, less the count of its wait (`Waited::end`), which the caller makes on every
    /// return.
    fn publish_waiting(
        &mut self,
        win: Window<'_>,
        meter: &mut CopyMeter,
        msg: Outgoing,
        stop: &Stop,
    ) -> Result<(), PortError> {
        for link in &mut self.links {
            let Some(fd) = &link.fd else { continue };
            if !link.credits.available() {
                // Only under `drop-newest`: `loan` waits for a credit otherwise.
                link.offered.drop_one();
                continue;
            }
            let head = Header {
                kind: FrameKind::Data,
                len: msg.len,
                seq: link.offered.take(),
                publish_ns: msg.publish_ns,
            }
            .encode();
            let (off, len) = (msg.off as usize, msg.len as usize);
            if Self::write_frame(
                fd,
                win,
                meter,
                &head,
                off,
                len,
                stop,
                &mut self.calls,
                &mut self.waited,
            )? {
                link.credits.spend(msg.publish_ns);
            } else {
                link.fd = None;
            }
        }
        if self.links.iter().all(|l| l.fd.is_none()) {
            return Err(PortError::Closed);
        }
        Ok(())
    }

    /// `loan`, less the count of its wait (`Waited::end`), which the caller makes on every return.
    fn loan_waiting(&mut self, _win: Window<'_>, len: u32, stop: &Stop) -> Result<u32, PortError> {
        if len > self.slot_size {
            return Err(PortError::TooLarge {
                len,
                slot: self.slot_size,
            });
        }
        if self.overflow == Overflow::DropNewest {
            // Nobody waits: a link without credits takes what its consumer returned by now,
            // and `publish` drops the message there if that is none.
            for link in &mut self.links {
                if link.fd.is_some() && !link.credits.available() {
                    self.credit_reads += 1;
                    if let CreditRead::Gone = link.read_credits(&self.name, &mut self.calls)? {
                        link.fd = None;
                    }
                }
            }
            if self.links.iter().all(|l| l.fd.is_none()) {
                return Err(PortError::Closed);
            }
            return Ok(0);
        }
        // Every link needs a credit: a slow consumer holds the producer back (back-pressure).
        for link in &mut self.links {
            let mut spin = Spin::default();
            while link.fd.is_some() && !link.credits.available() {
                // The window is full: the wait for a credit starts.
                self.waited.start();
                self.credit_reads += 1;
                match link.read_credits(&self.name, &mut self.calls)? {
                    CreditRead::Got => {}
                    CreditRead::Gone => link.fd = None,
                    CreditRead::NotReady if spin.again(self.spin_ns) => {
                        if stop.interrupted() || stop.remaining().is_zero() {
                            return Err(stop.error());
                        }
                    }
                    CreditRead::NotReady => {
                        self.credit_waits += 1;
                        let fd = link.fd.as_ref().expect("checked above");
                        // Say who held the producer back: this link's consumer kept
                        // `capacity` messages unread.
                        wait_one(fd.back(), false, stop, &mut self.calls, &mut self.waited)
                            .map_err(|e| credit::link_was_full(e, &link.key, self.capacity))?;
                    }
                }
            }
        }
        if self.links.iter().all(|l| l.fd.is_none()) {
            return Err(PortError::Closed);
        }
        // The socket buffers are the ring: the plugin always writes at the window's start.
        Ok(0)
    }
}

impl Sender for MsgSender {
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
        let r = self.publish_waiting(win, meter, msg, stop);
        self.waited.end();
        r
    }

    fn close(&mut self, stop: &Stop) {
        let mut unused = CopyMeter::default();
        for link in &mut self.links {
            if let Some(fd) = link.fd.take() {
                let head = Header {
                    kind: FrameKind::End,
                    len: 0,
                    seq: link.offered.count(),
                    publish_ns: sys::now_ns(),
                }
                .encode();
                // A consumer that is gone or a stopped run just drops the socket: the consumer
                // then sees end-of-file without an end frame, which is what a failure is. The
                // end frame needs no credit: it carries no payload.
                let window = Window::empty();
                let _ = Self::write_frame(
                    &fd,
                    window,
                    &mut unused,
                    &head,
                    0,
                    0,
                    stop,
                    &mut self.calls,
                    // Not a wait of the run's calls: the end is sent after the last.
                    &mut Waited::default(),
                );
            }
        }
    }

    fn abort(&mut self) {
        // Closing without an end frame is how a failure looks on a socket.
        for link in &mut self.links {
            link.fd = None;
        }
    }

    fn counters(&self) -> Counters {
        Counters::from([
            ("credit_reads", self.credit_reads),
            ("credit_waits", self.credit_waits),
            ("reads", self.calls.reads),
            ("writes", self.calls.writes),
            ("polls", self.calls.polls),
            ("wakeups", self.calls.wakeups),
        ])
    }

    fn dropped(&self) -> Vec<u64> {
        self.links.iter().map(|l| l.offered.dropped).collect()
    }

    fn round_trips(&self) -> Vec<Option<u64>> {
        self.links
            .iter()
            .map(|l| l.credits.round_trip_ns())
            .collect()
    }

    fn waited_ns(&self) -> u64 {
        self.waited.ns
    }
}

/// What a header read found.
enum HeaderRead {
    Full,
    NotReady,
    Eof,
}

/// A consumer's link on `msg`: its socket (on `pipe`: its two pipes).
type InLink = credit::InLink<Duplex>;

/// The receiving half of a `msg` (or `pipe`) port: one link per producer, polled round robin.
pub struct MsgReceiver {
    name: String,
    slot_size: u32,
    credit_batch: u32,
    spin_ns: u64,
    links: Inputs<Duplex>,
    credit_writes: u64,
    calls: Calls,
    waited: Waited,
}

impl std::fmt::Debug for MsgReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgReceiver")
            .field("name", &self.name)
            .finish()
    }
}

impl MsgReceiver {
    pub(super) fn new(spec: &PortSpec, fds: Vec<Duplex>) -> anyhow::Result<MsgReceiver> {
        let params: MsgParams = spec.params()?;
        anyhow::ensure!(
            (1..=spec.capacity.max(1)).contains(&params.credit_batch),
            "port `{}`: credit batch {} outside 1..={}",
            spec.name,
            params.credit_batch,
            spec.capacity
        );
        Ok(MsgReceiver {
            name: spec.name.clone(),
            slot_size: spec.slot_size,
            credit_batch: params.credit_batch,
            spin_ns: params.spin_ns,
            links: Inputs::new(
                spec.links
                    .iter()
                    .zip(fds)
                    .map(|(key, fd)| InLink::new(key.clone(), fd))
                    .collect(),
            ),
            credit_writes: 0,
            waited: Waited::default(),
            calls: Calls::default(),
        })
    }

    /// Reads a whole header. Returns `NotReady` when not one byte is there yet (the caller
    /// polls), `Eof` on a clean end of file before the first byte; once a header has begun it
    /// waits for the rest.
    fn read_header(
        fd: &OwnedFd,
        buf: &mut [u8; HEADER_LEN],
        stop: &Stop,
        calls: &mut Calls,
        waited: &mut Waited,
    ) -> Result<HeaderRead, PortError> {
        let mut got = 0;
        while got < HEADER_LEN {
            calls.reads += 1;
            match nix::unistd::read(fd, &mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(HeaderRead::Eof),
                Ok(0) => {
                    return Err(PortError::PeerFailed(
                        "link closed in the middle of a frame header".into(),
                    ));
                }
                Ok(n) => got += n,
                Err(nix::errno::Errno::EAGAIN) if got == 0 => return Ok(HeaderRead::NotReady),
                Err(nix::errno::Errno::EAGAIN) => wait_one(fd, false, stop, calls, waited)?,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(PortError::PeerFailed(format!("recv: {e}"))),
            }
        }
        Ok(HeaderRead::Full)
    }

    fn read_payload(
        fd: &OwnedFd,
        win: Window<'_>,
        meter: &mut CopyMeter,
        len: usize,
        stop: &Stop,
        calls: &mut Calls,
        waited: &mut Waited,
    ) -> Result<(), PortError> {
        let mut got = 0;
        while got < len {
            calls.reads += 1;
            match win.recv_into(fd.as_fd(), meter, got, len - got) {
                Ok(0) => {
                    return Err(PortError::PeerFailed(format!(
                        "link closed after {got} of {len} payload bytes"
                    )));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_one(fd, false, stop, calls, waited)?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PortError::PeerFailed(format!("recv: {e}"))),
            }
        }
        Ok(())
    }

    /// Gives the producer of link `i` its credits back once a batch is complete.
    fn return_credits(&mut self, i: usize) {
        let link = &mut self.links.links[i];
        let Some(n) = link.returns.received(self.credit_batch) else {
            return;
        };
        // Four bytes into a socket whose other direction holds at most `capacity / batch`
        // such counts never block; a producer that is gone is not an error here (its EOF is
        // what the next read reports).
        self.calls.writes += 1;
        if let Ok(4) = nix::unistd::write(link.io.back(), &n.to_le_bytes()) {
            link.returns.sent();
            self.credit_writes += 1;
        }
    }

    /// Reads one frame from link `i`, which poll found readable.
    fn read_frame(
        &mut self,
        i: usize,
        win: Window<'_>,
        meter: &mut CopyMeter,
        stop: &Stop,
    ) -> Result<Option<Delivery>, PortError> {
        let link = &mut self.links.links[i];
        let mut head = [0u8; HEADER_LEN];
        let fail = |link: &mut InLink, why: String| {
            link.state = LinkState::Failed;
            PortError::PeerFailed(format!("producer on link {}: {why}", link.key))
        };
        match Self::read_header(
            &link.io.data,
            &mut head,
            stop,
            &mut self.calls,
            &mut self.waited,
        ) {
            Ok(HeaderRead::Full) => {}
            Ok(HeaderRead::NotReady) => return Ok(None),
            Ok(HeaderRead::Eof) => {
                return Err(fail(link, "closed its link without finishing".into()));
            }
            Err(PortError::PeerFailed(why)) => return Err(fail(link, why)),
            Err(e) => return Err(e),
        }
        let max = self
            .slot_size
            .min(u32::try_from(win.len()).unwrap_or(u32::MAX));
        let header = match Header::decode(&head, max) {
            Ok(h) => h,
            Err(e) => return Err(fail(link, format!("bad frame: {e}"))),
        };
        match header.kind {
            FrameKind::End => {
                link.state = LinkState::Ended;
                link.end = Some(header.seq);
                Ok(None)
            }
            FrameKind::Data => {
                let len = header.len as usize;
                match Self::read_payload(
                    &link.io.data,
                    win,
                    meter,
                    len,
                    stop,
                    &mut self.calls,
                    &mut self.waited,
                ) {
                    Ok(()) => {}
                    Err(PortError::PeerFailed(why)) => return Err(fail(link, why)),
                    Err(e) => return Err(e),
                }
                self.return_credits(i);
                Ok(Some(Delivery {
                    off: 0,
                    len: header.len,
                    publish_ns: header.publish_ns,
                    link: i,
                    seq: header.seq,
                }))
            }
        }
    }
}

impl MsgReceiver {
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
            // Fast path, no poll: try each open link once, round robin.
            for i in self.links.turns() {
                if self.links.links[i].state != LinkState::Open {
                    continue;
                }
                if let Some(d) = self.read_frame(i, win, meter, stop)? {
                    self.links.served(i);
                    return Ok(d);
                }
            }
            if !self.links.any_open() {
                if self.links.any_failed() {
                    continue;
                }
                return Err(PortError::Closed);
            }
            if stop.interrupted() || stop.remaining().is_zero() {
                return Err(stop.error());
            }
            // Nothing there: retry for the spin budget (a sleep and a wake-up cost more than a
            // few failed reads while the producer is running), then sleep in poll until a link
            // has data (or the stop or deadline).
            self.waited.start();
            if spin.again(self.spin_ns) {
                continue;
            }
            let fds: Vec<_> = self
                .links
                .links
                .iter()
                .filter(|l| l.state == LinkState::Open)
                .map(|l| l.io.data.as_fd())
                .collect();
            let slice = stop.remaining().min(POLL_SLICE);
            self.calls.polls += 1;
            match sys::wait_ready(&fds, false, stop.fd(), slice) {
                Ok(Readiness::Ready) => self.calls.wakeups += 1,
                Ok(Readiness::TimedOut) => {}
                Ok(Readiness::Stopped) => return Err(stop.error()),
                Err(e) => return Err(PortError::PeerFailed(format!("poll: {e}"))),
            }
        }
    }
}

impl Receiver for MsgReceiver {
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

    fn forget_failed(&mut self) -> Vec<usize> {
        self.links.forget_failed()
    }

    fn detach(&mut self) {
        // Producers writing to a closed socket get EPIPE and skip this consumer; one waiting
        // for credits reads end of file.
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

    fn waited_ns(&self) -> u64 {
        self.waited.ns
    }

    fn ends(&self) -> Vec<Option<u32>> {
        self.links.ends()
    }
}
