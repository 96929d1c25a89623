//! `mq`: a copied message channel through POSIX message queues, one queue per link.
//!
//! The supervisor makes each link's queue in `plan` (`mq_open` with `O_EXCL`, mode 0600),
//! opens it once for the producer (write only) and once for the consumer (read only) and
//! unlinks its name at once: the queue lives as long as one of the two descriptors, so a run
//! that is killed, at any moment after `plan`, leaves nothing in `/dev/mqueue`. No other
//! process can open it: it has no name for the run's whole life.
//!
//! Frames, copies and waiting are the whole-message family's ([`super::dgram`]): one
//! `mq_send` from the producer's window, header and payload together, one `mq_receive` into
//! the consumer's. **The queue is the window**: it holds `capacity` messages (`mq_maxmsg`), and
//! a producer whose queue is full waits in `poll` until the consumer takes one. No credits.
//!
//! **Limits.** The kernel bounds an unprivileged user's queues:
//! `fs.mqueue.msg_max` (messages per queue, so `capacity`), `fs.mqueue.msgsize_max` (bytes per
//! message, so `slot_size` + the 16-byte header), `fs.mqueue.queues_max` (queues, one per
//! link) and `RLIMIT_MSGQUEUE` (bytes of all of a user's queues). `check` computes a channel's
//! needs and refuses what an unprivileged user could not open, naming the number, the limit
//! and the setting. Root may exceed the first three; the backend does not, so that a
//! scenario runs alike for every user.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use super::dgram::{self, DgramReceiver, DgramSender};
use super::frame::HEADER_LEN;
use super::{Backend, ChannelDesc, ChannelPlan, FdSource, Fds, PortSpec, Receiver, Sender};
use crate::scenario::BackendKind;
use crate::sys::{self, Whole, Window};

/// The calls a worker with an `mq` port makes beyond everyone's.
const LOCKDOWN_CALLS: &[(&str, i64, &str)] = &[
    (
        "mq_timedsend",
        libc::SYS_mq_timedsend,
        "mq: a frame into a link's queue (mq_send)",
    ),
    (
        "mq_timedreceive",
        libc::SYS_mq_timedreceive,
        "mq: a frame out of a link's queue (mq_receive)",
    ),
];

/// What the kernel charges `RLIMIT_MSGQUEUE` for a queue's bookkeeping, per message, at most:
/// a `struct msg_msg` pointer slot and a priority tree node (48 B each on 64-bit Linux).
const PER_MESSAGE: u64 = 96;

/// The largest message an unprivileged user's queue may hold here, and so the largest
/// `slot_size` (`fs.mqueue.msgsize_max` less the frame header).
pub fn largest_slot() -> Option<u64> {
    super::sysctl("fs.mqueue.msgsize_max").map(|m| m.saturating_sub(HEADER_LEN as u64))
}

/// The most messages a queue may hold for an unprivileged user (`fs.mqueue.msg_max`).
pub fn largest_capacity() -> Option<u64> {
    super::sysctl("fs.mqueue.msg_max")
}

/// The bytes `RLIMIT_MSGQUEUE` is charged for one queue of `capacity` messages of `message`
/// bytes.
pub fn queue_bytes(message: u64, capacity: u64) -> u64 {
    capacity.saturating_mul(message.saturating_add(PER_MESSAGE))
}

/// The `mq` backend.
#[derive(Debug)]
pub struct Mq;

impl Backend for Mq {
    fn cost(&self, shape: &super::ChannelShape) -> super::ChannelCost {
        dgram::cost(shape)
    }

    fn refuse(&self, shape: &super::ChannelShape) -> Option<String> {
        const EVERY_USER: &str = "root may exceed it, but wasm-ipc applies the limit as an \
                                  unprivileged user would, so that a scenario runs alike for \
                                  every user";
        let message = shape.slot_size.saturating_add(HEADER_LEN as u64);
        if let Some(max) = super::sysctl("fs.mqueue.msg_max")
            && shape.capacity > max
        {
            return Some(format!(
                "each link's queue must hold `capacity` = {} messages, but fs.mqueue.msg_max \
                 = {max} (/proc/sys/fs/mqueue/msg_max) is the most a queue may hold ({EVERY_USER}): \
                 lower capacity to {max}, or raise fs.mqueue.msg_max to at least {} (sysctl -w \
                 fs.mqueue.msg_max=N)",
                shape.capacity, shape.capacity
            ));
        }
        if let Some(max) = super::sysctl("fs.mqueue.msgsize_max")
            && message > max
        {
            return Some(format!(
                "slot_size = {} B and the {HEADER_LEN}-byte frame header make messages of \
                 {message} B, but fs.mqueue.msgsize_max = {max} (/proc/sys/fs/mqueue/\
                 msgsize_max) is the largest message a queue may take ({EVERY_USER}): lower \
                 slot_size to {}, or raise fs.mqueue.msgsize_max to at least {message} (sysctl \
                 -w fs.mqueue.msgsize_max=N)",
                shape.slot_size,
                max.saturating_sub(HEADER_LEN as u64)
            ));
        }
        let links = shape.producers.saturating_mul(shape.consumers);
        if let Some(max) = super::sysctl("fs.mqueue.queues_max")
            && links > max
        {
            return Some(format!(
                "the channel's {links} links need {links} queues, but fs.mqueue.queues_max = \
                 {max} (/proc/sys/fs/mqueue/queues_max) is the most this machine's users may \
                 have together ({EVERY_USER}): fewer producers or consumers, or raise it \
                 (sysctl -w fs.mqueue.queues_max=N)"
            ));
        }
        let bytes = links.saturating_mul(queue_bytes(message, shape.capacity));
        if let Some(max) = sys::msgqueue_rlimit()
            && bytes > max
        {
            return Some(format!(
                "the channel's {links} queues of {} messages of {message} B take {bytes} B of \
                 the user's RLIMIT_MSGQUEUE = {max} (ulimit -q; each message also costs the \
                 kernel {PER_MESSAGE} B of bookkeeping): lower capacity, slot_size or the number \
                 of links, or raise the limit (ulimit -q N, or `msgqueue` in \
                 /etc/security/limits.conf; there is no sysctl for it)",
                shape.capacity
            ));
        }
        None
    }

    fn lockdown(&self) -> super::Lockdown {
        super::Lockdown {
            calls: LOCKDOWN_CALLS,
            threads: false,
        }
    }

    fn plan(&self, ch: &ChannelDesc<'_>, fds: &mut Fds) -> anyhow::Result<ChannelPlan> {
        let shape = super::ChannelShape {
            producers: ch.producers.len() as u64,
            consumers: ch.consumers.len() as u64,
            slot_size: u64::from(ch.slot_size),
            capacity: u64::from(ch.capacity),
            overflow: ch.overflow,
            sync: ch.sync,
        };
        if let Some(why) = self.refuse(&shape) {
            anyhow::bail!("channel {}: {why}", ch.index);
        }
        /// Queues this process made, so that no two links share a name.
        static MADE: AtomicU64 = AtomicU64::new(0);
        let message = i64::from(ch.slot_size) + i64::from(super::dgram::HEAD);
        dgram::plan(ch, fds, BackendKind::Mq, false, |key| {
            // The run's id in the name (for `/dev/mqueue` and leftover searches), this
            // process's count for uniqueness; a name lives only until both ends are open.
            let run: String = ch
                .run_id
                .chars()
                .take(128)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let name = format!(
                "/wasm-ipc-{run}-{}-{}-{}",
                ch.index,
                std::process::id(),
                MADE.fetch_add(1, Ordering::Relaxed)
            );
            sys::mq_link(&name, i64::from(ch.capacity), message)
                .with_context(|| format!("opening link {key}'s message queue {name}"))
        })
    }

    fn open_sender(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Sender>> {
        Ok(Box::new(DgramSender::open(spec, fds, Whole::Queue)?))
    }

    fn open_receiver(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Receiver>> {
        Ok(Box::new(DgramReceiver::open(spec, fds, Whole::Queue)?))
    }
}
