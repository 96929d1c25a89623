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
//! - **Bounds**: `loan` refuses lengths above the slot size (`TooLarge`); a receiver checks
//!   every length it did not produce itself before it touches the window.
//! - **End of stream**: `close` tells every consumer that this producer finished; a receiver
//!   returns `Closed` once every producer of its input finished and everything they sent has
//!   been received.
//! - **Failure**: a producer that vanishes without `close` makes its consumers' `receive`
//!   return `PeerFailed`; a consumer that vanishes makes `publish` skip it, and `Closed` once
//!   every consumer is gone.
//! - **Blocking**: every blocking call returns when the worker's [`Stop`] is signalled
//!   (`Interrupted` for a timeout or a stop request, `PeerFailed` when another plugin failed)
//!   and never outlives the run's deadline.
//! - **Counting**: `copied_bytes` counts payload bytes that the transport itself moved through
//!   a copy, at the place where it copied them.

pub mod frame;
pub mod msg;
pub mod shm;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sys::{self, StopFd, Window};

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
}

/// The sending half of a port.
pub trait Sender: Send {
    /// Offset in the window where the plugin may write `len` bytes. Blocks while full.
    fn loan(&mut self, win: Window, len: u32, stop: &Stop) -> Result<u32, PortError>;
    /// Sends `len` bytes at `off` of the window to every consumer.
    fn publish(
        &mut self,
        win: Window,
        off: u32,
        len: u32,
        publish_ns: u64,
        stop: &Stop,
    ) -> Result<(), PortError>;
    /// The producer finished: tell every consumer (end of stream).
    fn close(&mut self, stop: &Stop);
    /// The producer failed: its consumers see peer-failed once they drained what was sent.
    fn abort(&mut self);
    /// Payload bytes this transport copied so far.
    fn copied_bytes(&self) -> u64;
    /// How often this port slept and missed a wake-up.
    fn wait_stats(&self) -> shm::WaitStats {
        shm::WaitStats::default()
    }
}

/// The receiving half of a port.
pub trait Receiver: Send {
    /// Blocks until a message is in the window (see [`Delivery`]).
    fn receive(&mut self, win: Window, stop: &Stop) -> Result<Delivery, PortError>;
    /// The plugin is done with the last delivery.
    fn release(&mut self) -> Result<(), PortError>;
    /// The consumer is gone (finished or failed): producers stop waiting for it.
    fn detach(&mut self);
    /// Payload bytes this transport copied so far.
    fn copied_bytes(&self) -> u64;
    /// How often this port slept and missed a wake-up.
    fn wait_stats(&self) -> shm::WaitStats {
        shm::WaitStats::default()
    }
}

/// Which way a port points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The plugin receives.
    In,
    /// The plugin publishes.
    Out,
}

/// One link (producer instance → consumer instance) as a worker sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkSpec {
    /// Stable name of the link, used for digests: `channel[i]:producer.port->consumer.port`.
    pub key: String,
    /// The fd number, in the worker, of this link's socket (`msg`).
    pub fd: i32,
}

/// Everything a worker needs to open one port.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortSpec {
    /// Port name as the plugin asks for it.
    pub name: String,
    /// In or out.
    pub direction: Direction,
    /// Channel index in the scenario.
    pub channel: usize,
    /// Largest message.
    pub slot_size: u32,
    /// Messages in flight per link.
    pub capacity: u32,
    /// Window length: the slot size rounded up to 64 KiB.
    pub window_len: u32,
    /// The links of this port.
    pub links: Vec<LinkSpec>,
    /// Shared-memory resources, for the `shm` backend (`None`: `msg`).
    pub shm: Option<ShmPort>,
}

/// What an `shm` port needs: fd numbers in the worker and the channel's geometry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShmPort {
    /// The channel's control block.
    pub control_fd: i32,
    /// Slot areas: the producer's own ring, or (consumer) every ring of the channel.
    pub slot_fds: Vec<i32>,
    /// This producer's or consumer's index in the channel.
    pub index: u32,
    /// The channel's geometry.
    pub layout: shm::Layout,
    /// How blocked calls wait.
    pub wait: shm::Wait,
}

fn take_fd(fd: i32, what: &str) -> anyhow::Result<std::os::fd::OwnedFd> {
    use anyhow::Context;
    sys::inherited_fd(fd).with_context(|| format!("{what} (fd {fd})"))
}

/// Opens the transport for an output port whose window is `window`.
pub fn open_sender(spec: &PortSpec, window: Window) -> anyhow::Result<Box<dyn Sender>> {
    use std::os::fd::AsFd;
    Ok(match &spec.shm {
        None => Box::new(msg::MsgSender::open(spec)?),
        Some(s) => {
            let ctl = take_fd(s.control_fd, "control block")?;
            let ctl = std::sync::Arc::new(shm::Control::map(ctl.as_fd(), s.layout)?);
            let slots = take_fd(s.slot_fds[0], "slot area")?;
            Box::new(shm::ShmSender::open(
                ctl,
                s.index,
                slots.as_fd(),
                window,
                s.wait,
            )?)
        }
    })
}

/// Opens the transport for an input port whose window is `window`.
pub fn open_receiver(spec: &PortSpec, window: Window) -> anyhow::Result<Box<dyn Receiver>> {
    use std::os::fd::AsFd;
    Ok(match &spec.shm {
        None => Box::new(msg::MsgReceiver::open(spec)?),
        Some(s) => {
            let ctl = take_fd(s.control_fd, "control block")?;
            let ctl = std::sync::Arc::new(shm::Control::map(ctl.as_fd(), s.layout)?);
            let slots: Vec<_> = s
                .slot_fds
                .iter()
                .map(|&fd| take_fd(fd, "slot area"))
                .collect::<anyhow::Result<_>>()?;
            let fds: Vec<_> = slots.iter().map(|f| f.as_fd()).collect();
            Box::new(shm::ShmReceiver::open(ctl, s.index, &fds, window, s.wait)?)
        }
    })
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
                    StopReason::Timeout | StopReason::Stopped(_)
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
            Some(StopReason::Timeout | StopReason::Stopped(_))
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
            Some(StopReason::Stopped(why)) => PortError::Interrupted(why),
            Some(StopReason::Timeout) | None => {
                PortError::Interrupted("the run's timeout passed".into())
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod contract;
