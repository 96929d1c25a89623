//! `pipe`: a copied message channel through the kernel, two anonymous pipes per link.
//!
//! A pipe is one-way, so each producer → consumer link has a **data pipe** (frames, the
//! producer writes, the consumer reads) and a **credit pipe** (the consumer's credit counts
//! back). Everything else is `msg`'s: the same frames ([`super::frame`]), written with one
//! `writev` from the producer's window and read straight into the consumer's, the same
//! credits (`capacity` = messages in flight per link), the same waiting — only the fds differ
//! (`msg::Duplex`).
//!
//! **Frames larger than `PIPE_BUF` (4096 B) are not atomic**: a pipe may take part of such a
//! write, and two writers on one pipe could interleave their pieces. No pipe here has two
//! writers: fan-in is one data pipe per producer → consumer link, read round robin, never a
//! shared one (`contract::pipe_fan_in_keeps_large_frames_whole` interleaves 20000 B frames
//! from three producers).
//!
//! **Limits.** `capacity` frames must sit unread in the data pipe, or the producer would
//! block before it spent its credits. The backend sizes each data pipe for that
//! (`F_SETPIPE_SZ`), and `check` refuses what an unprivileged user could not get: a pipe
//! larger than `fs.pipe-max-size`, or a channel whose pipes together exceed
//! `fs.pipe-user-pages-soft` (past it the kernel gives an unprivileged user's new pipes one
//! page). Root may exceed both; the backend does not ask to, so that a scenario runs alike
//! for every user.

use anyhow::Context;

use super::frame::HEADER_LEN;
use super::msg::{MsgReceiver, MsgSender, Transport, plan_links, take_links};
use super::{Backend, ChannelDesc, ChannelPlan, FdSource, Fds, PortSpec, Receiver, Sender};
use crate::scenario::BackendKind;
use crate::sys::{self, Window};

const PAGE: u64 = 4096;

/// The pipe buffers (pages) `capacity` unread frames of `frame` bytes take at most. A write
/// of less than a page joins the last page while it fits whole (so `PAGE / frame` frames
/// share one); a longer one starts on fresh pages (its remainder below a page may join the
/// last one, which this bound ignores).
pub fn pipe_pages(frame: u64, capacity: u64) -> u64 {
    if frame == 0 {
        return 1;
    }
    if frame < PAGE {
        capacity.div_ceil(PAGE / frame)
    } else {
        capacity.saturating_mul(frame.div_ceil(PAGE))
    }
}

/// The data pipe's size for `capacity` frames of `slot` bytes of payload: whole pages, a
/// power of two of them (what `F_SETPIPE_SZ` grants), at least the kernel's default 16.
pub fn data_pipe_bytes(slot: u64, capacity: u64) -> u64 {
    pipe_pages(slot + HEADER_LEN as u64, capacity)
        .max(16)
        .checked_next_power_of_two()
        .unwrap_or(u64::MAX)
        .saturating_mul(PAGE)
}

/// The `pipe` backend.
#[derive(Debug)]
pub struct Pipe;

impl Backend for Pipe {
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
            // Per link: the data pipe's write end and the credit pipe's read end on the
            // producer, the other two on the consumer.
            producer_fds: shape.consumers.saturating_mul(2),
            consumer_fds: shape.producers.saturating_mul(2),
            supervisor_fds: links.saturating_mul(4),
        }
    }

    /// `capacity` frames must sit unread in a link's data pipe: refused when that pipe would
    /// exceed `fs.pipe-max-size`, or the channel's pipes `fs.pipe-user-pages-soft`, as for an
    /// unprivileged user. Capacity 1 is always admitted: a frame larger than the pipe streams
    /// through it.
    fn refuse(&self, shape: &super::ChannelShape) -> Option<String> {
        let frame = shape.slot_size + HEADER_LEN as u64;
        let need = data_pipe_bytes(shape.slot_size, shape.capacity);
        if let Some(max) = super::sysctl("fs.pipe-max-size")
            && shape.capacity > 1
            && need > max
        {
            let fit = (1..=shape.capacity)
                .rev()
                .find(|&c| data_pipe_bytes(shape.slot_size, c) <= max)
                .unwrap_or(1);
            return Some(format!(
                "each link's pipe must hold `capacity` = {} unread frames of {frame} B, which \
                 takes a pipe of {need} B, but fs.pipe-max-size = {max} (/proc/sys/fs/\
                 pipe-max-size) is the most an unprivileged user may ask for: lower capacity \
                 to {fit} or slot_size, or raise fs.pipe-max-size to at least {need} (sysctl \
                 -w fs.pipe-max-size=N)",
                shape.capacity
            ));
        }
        let links = shape.producers.saturating_mul(shape.consumers);
        // The data pipe as granted, plus the credit pipe at the default 16 pages.
        let per_link = need.min(super::sysctl("fs.pipe-max-size").unwrap_or(need)) / PAGE + 16;
        let pages = links.saturating_mul(per_link);
        if let Some(soft) = super::sysctl("fs.pipe-user-pages-soft")
            && soft > 0
            && pages > soft
        {
            return Some(format!(
                "the channel's {links} links need {pages} pages of pipe buffers ({per_link} \
                 each: the data pipe and the credit pipe), more than fs.pipe-user-pages-soft \
                 = {soft} (/proc/sys/fs/pipe-user-pages-soft), past which the kernel gives an \
                 unprivileged user's new pipes a single page: lower capacity, slot_size or \
                 the number of links, or raise fs.pipe-user-pages-soft (sysctl -w \
                 fs.pipe-user-pages-soft=N)"
            ));
        }
        None
    }

    fn plan(&self, ch: &ChannelDesc<'_>, fds: &mut Fds) -> anyhow::Result<ChannelPlan> {
        // Never more than an unprivileged user may have (capacity 1 with a frame larger than
        // that streams through).
        let size = data_pipe_bytes(u64::from(ch.slot_size), u64::from(ch.capacity))
            .min(super::sysctl("fs.pipe-max-size").unwrap_or(1 << 20));
        let size = usize::try_from(size).unwrap_or(1 << 20);
        plan_links(ch, fds, BackendKind::Pipe, |key| {
            let (data_r, data_w) = sys::pipe_pair().context("creating a link's data pipe")?;
            sys::set_pipe_size(std::os::fd::AsFd::as_fd(&data_w), size)
                .with_context(|| format!("sizing link {key}'s pipe to {size} B"))?;
            let (back_r, back_w) = sys::pipe_pair().context("creating a link's credit pipe")?;
            Ok((vec![data_w, back_r], vec![data_r, back_w]))
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
            take_links(spec, fds, 2)?,
            Transport::Pipe,
        )?))
    }

    fn open_receiver(
        &self,
        spec: &PortSpec,
        _window: Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Box<dyn Receiver>> {
        Ok(Box::new(MsgReceiver::new(spec, take_links(spec, fds, 2)?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_share_pages_and_large_ones_take_their_own() {
        // 64 B + 16 B header: 51 to a page.
        assert_eq!(pipe_pages(80, 51), 1);
        assert_eq!(pipe_pages(80, 52), 2);
        // A whole page each, and two for 4 KiB + header.
        assert_eq!(pipe_pages(4096, 16), 16);
        assert_eq!(pipe_pages(4112, 16), 32);
        // At least the default 16 pages, a power of two of them.
        assert_eq!(data_pipe_bytes(64, 8), 16 * PAGE);
        assert_eq!(data_pipe_bytes(65536, 4), 128 * PAGE);
    }
}
