//! `udp`: a copied message channel over UDP on the loopback interface, one connected pair of
//! datagram sockets per link.
//!
//! Frames, copies and waiting are the whole-message family's ([`super::dgram`]): one datagram
//! per frame, written from the producer's window with the header in front of the payload and
//! read whole into the consumer's. **A frame must fit one datagram**: at most 65507 B over
//! IPv4 (65535 less the IP and UDP headers), so `slot_size` at most 65491; `check` refuses more
//! with the number. Nothing is fragmented by the backend.
//!
//! **UDP never holds a sender back**: a datagram that finds the receiver's queue full is
//! dropped. So the producer spends credits as on `msg` (`capacity` = datagrams in flight per
//! link), the consumer returns them as 4-byte datagrams on the same pair, and the consumer's
//! receive buffer is sized for `capacity` datagrams and an end frame as the kernel charges
//! them (`SO_RCVBUF`, refused past twice `net.core.rmem_max` like `msg`'s send buffers). With
//! both, nothing is lost on loopback: the credits keep at most what the buffer holds in flight.
//! Under `overflow = "drop-newest"` there are no credits: the producer sends at its own pace
//! and the kernel drops what finds the consumer's buffer full, which the consumer's host sees
//! as gaps in the links' sequence numbers.
//!
//! **No outsider gets in.** Both sockets of a link are bound to ephemeral ports of 127.0.0.1
//! and connected to each other in `plan`, before any worker starts: a connected UDP socket
//! takes datagrams from its peer's address only. A datagram a stranger sent in the instant
//! between `bind` and `connect` is drained and dropped before the sockets are handed over
//! (`tests/all/udp.rs` sends to a running run's ports and finds its digests unchanged). Local
//! only: across hosts stays `zenoh`'s job.

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::Context;

use super::dgram::{self, DgramReceiver, DgramSender};
use super::frame::HEADER_LEN;
use super::{Backend, ChannelDesc, ChannelPlan, FdSource, Fds, PortSpec, Receiver, Sender};
use crate::scenario::{BackendKind, Overflow};
use crate::sys::{self, Whole, Window};

/// The largest UDP payload over IPv4: 65535 less the 20-byte IP and 8-byte UDP headers.
pub const MAX_DATAGRAM: u64 = 65507;

/// The largest `slot_size` a frame of which fits one datagram.
pub const LARGEST_SLOT: u64 = MAX_DATAGRAM - HEADER_LEN as u64;

/// What the kernel charges a UDP socket's receive buffer for one queued datagram of `frame`
/// bytes on loopback, as an upper bound (measured on Linux 6.18 by filling a 2 MiB buffer
/// nobody reads: 832 B for 24 B or 80 B, 2.3 KiB for 1000 B, 8.3 KiB for 4 KiB + 16 B,
/// 16.3 KiB for 8 KiB + 16 B, 17 KiB for 16 KiB + 16 B, 66 KiB for 65507 B): a datagram up
/// to 16 KiB is one allocation rounded up to a power of two, a larger one whole pages.
pub fn datagram_charge(frame: u64) -> u64 {
    const SLACK: u64 = 512;
    const PAGE: u64 = 4096;
    if frame + SLACK <= 16384 {
        (frame + SLACK).next_power_of_two() + SLACK
    } else {
        frame.div_ceil(PAGE) * PAGE + PAGE
    }
}

/// The receive buffer a link's consumer needs: `capacity` datagrams of `slot` bytes of
/// payload, and the end frame.
pub fn link_buffer(slot: u64, capacity: u64) -> u64 {
    capacity
        .saturating_mul(datagram_charge(slot + HEADER_LEN as u64))
        .saturating_add(datagram_charge(HEADER_LEN as u64))
}

/// A connected pair of UDP sockets on 127.0.0.1 (producer's, consumer's), non-blocking, the
/// consumer's receive buffer of at least `buffer` bytes, nothing a stranger sent queued.
pub fn loopback_pair(buffer: u64) -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let bind = || UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("binding on 127.0.0.1");
    let (out, input) = (bind()?, bind()?);
    out.connect(input.local_addr()?)?;
    input.connect(out.local_addr()?)?;
    let want = usize::try_from(buffer).unwrap_or(usize::MAX);
    let granted = sys::set_recv_buffer(input.as_fd(), want).context("sizing a receive buffer")?;
    anyhow::ensure!(
        granted as u64 >= buffer,
        "the kernel granted a receive buffer of {granted} B, not the {buffer} B asked for"
    );
    let mut junk = vec![0u8; 65536];
    for s in [&out, &input] {
        s.set_nonblocking(true)?;
        // Nothing of the run was sent yet: whatever is queued came from a stranger before
        // `connect` filtered, and goes. Bounded: a queue holds finitely many.
        for _ in 0..100_000 {
            if s.recv(&mut junk).is_err() {
                break;
            }
        }
    }
    Ok((OwnedFd::from(out), OwnedFd::from(input)))
}

/// The `udp` backend.
#[derive(Debug)]
pub struct Udp;

impl Backend for Udp {
    fn cost(&self, shape: &super::ChannelShape) -> super::ChannelCost {
        dgram::cost(shape)
    }

    fn refuse(&self, shape: &super::ChannelShape) -> Option<String> {
        let frame = shape.slot_size.saturating_add(HEADER_LEN as u64);
        if frame > MAX_DATAGRAM {
            return Some(format!(
                "slot_size = {} B and the {HEADER_LEN}-byte frame header make frames of {frame} \
                 B, but one UDP datagram carries at most {MAX_DATAGRAM} B over IPv4 (65535 less \
                 the IP and UDP headers) and the backend does not split frames: lower slot_size \
                 to {LARGEST_SLOT}, or use a stream backend (msg, tcp)",
                shape.slot_size
            ));
        }
        let need = link_buffer(shape.slot_size, shape.capacity);
        // `net.core.rmem_max`: the most `SO_RCVBUF` may ask for (the kernel grants twice it);
        // root could exceed it with `SO_RCVBUFFORCE`, the backend does not.
        let max = super::sysctl("net.core.rmem_max")?;
        let grant = max.saturating_mul(2);
        (need > grant).then(|| {
            let fit = (1..=shape.capacity)
                .rev()
                .find(|&c| link_buffer(shape.slot_size, c) <= grant)
                .unwrap_or(0);
            format!(
                "each link's receive buffer must hold `capacity` = {} datagrams of {frame} B \
                 (a full buffer drops what comes), which the kernel charges {need} B with its \
                 per-datagram overhead, but it grants a socket at most {grant} B, twice \
                 net.core.rmem_max = {max}: lower capacity to {fit} or slot_size, or raise \
                 net.core.rmem_max to at least {} (sysctl -w net.core.rmem_max=N)",
                shape.capacity,
                need.div_ceil(2)
            )
        })
    }

    fn plan(&self, ch: &ChannelDesc<'_>, fds: &mut Fds) -> anyhow::Result<ChannelPlan> {
        let buffer = link_buffer(u64::from(ch.slot_size), u64::from(ch.capacity));
        // Under `drop-newest` the sender never waits, for credits or anything else: no credits.
        let credits = ch.overflow == Overflow::Block;
        dgram::plan(ch, fds, BackendKind::Udp, credits, |key| {
            loopback_pair(buffer).with_context(|| format!("connecting link {key}"))
        })
    }

    fn open_sender(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Sender>> {
        Ok(Box::new(DgramSender::open(spec, fds, Whole::Datagram)?))
    }

    fn open_receiver(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Receiver>> {
        Ok(Box::new(DgramReceiver::open(spec, fds, Whole::Datagram)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound covers every charge measured (see `datagram_charge`).
    #[test]
    fn the_charge_bounds_what_was_measured() {
        for (frame, measured) in [
            (24, 832),
            (80, 832),
            (1000, 2304),
            (4112, 8456),
            (8208, 16644),
            (16400, 17331),
            (32784, 33825),
            (65507, 67650),
        ] {
            assert!(datagram_charge(frame) >= measured, "{frame} B");
            assert!(datagram_charge(frame) <= 2 * measured + 1024, "{frame} B");
        }
    }
}
