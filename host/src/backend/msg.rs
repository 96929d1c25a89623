//! `msg`: a copied message channel through the kernel, one Unix stream socket per link.
//!
//! `publish` writes the frame header and the payload straight from the producer's window with
//! one `writev` (user → kernel copy); `receive` reads the header into a small stack buffer and
//! the payload straight into the consumer's window (kernel → user copy). There is no staging
//! buffer in the host, so `copied_bytes` counts exactly the payload bytes each side passed
//! through the socket. Frames are described in [`super::frame`].

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::Context;

use super::frame::{FrameKind, HEADER_LEN, Header};
use super::{Delivery, PortError, PortSpec, Receiver, Sender, Stop};
use crate::sys::{self, Readiness, Window};

/// How long a blocked call sleeps in `poll` before it looks at the deadline again.
const POLL_SLICE: std::time::Duration = std::time::Duration::from_millis(100);

fn take_fds(spec: &PortSpec) -> anyhow::Result<Vec<OwnedFd>> {
    spec.links
        .iter()
        .map(|l| {
            let fd = sys::inherited_fd(l.fd)
                .with_context(|| format!("port {}: link {}", spec.name, l.key))?;
            sys::set_nonblocking(fd.as_fd())?;
            Ok(fd)
        })
        .collect()
}

/// Waits until `fd` is ready (or the stop/deadline ends the wait).
fn wait_one(fd: &OwnedFd, write: bool, stop: &Stop) -> Result<(), PortError> {
    loop {
        if stop.interrupted() || stop.remaining().is_zero() {
            return Err(stop.error());
        }
        let slice = stop.remaining().min(POLL_SLICE);
        match sys::wait_ready(&[fd.as_fd()], write, stop.fd(), 0, slice) {
            Ok(Readiness::Ready(_)) => return Ok(()),
            Ok(Readiness::Stopped) => return Err(stop.error()),
            Ok(Readiness::TimedOut) => continue,
            Err(e) => return Err(PortError::PeerFailed(format!("poll: {e}"))),
        }
    }
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

struct OutLink {
    fd: Option<OwnedFd>,
}

/// The sending half of a `msg` port: one socket per consumer.
pub struct MsgSender {
    name: String,
    slot_size: u32,
    links: Vec<OutLink>,
    copied: u64,
}

impl std::fmt::Debug for MsgSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgSender")
            .field("name", &self.name)
            .finish()
    }
}

impl MsgSender {
    /// Opens the port from its spec (takes the inherited link fds).
    pub fn open(spec: &PortSpec) -> anyhow::Result<MsgSender> {
        let fds = take_fds(spec)?;
        Ok(MsgSender::from_fds(spec, fds))
    }

    /// Wraps already-open, non-blocking sockets (tests, in-process use).
    pub fn from_fds(spec: &PortSpec, fds: Vec<OwnedFd>) -> MsgSender {
        let want = (spec.slot_size as usize + HEADER_LEN) * spec.capacity as usize;
        for fd in &fds {
            sys::set_send_buffer(fd.as_fd(), want);
        }
        MsgSender {
            name: spec.name.clone(),
            slot_size: spec.slot_size,
            links: fds.into_iter().map(|fd| OutLink { fd: Some(fd) }).collect(),
            copied: 0,
        }
    }

    /// Writes one whole frame to one link; returns payload bytes written, or `None` when the
    /// consumer is gone.
    fn write_frame(
        fd: &OwnedFd,
        win: Window,
        head: &[u8; HEADER_LEN],
        off: usize,
        len: usize,
        stop: &Stop,
    ) -> Result<Option<u64>, PortError> {
        let total = HEADER_LEN + len;
        let mut done = 0;
        while done < total {
            match win.writev_frame(fd.as_fd(), head, off, len, done) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_one(fd, true, stop)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_gone(&e) => return Ok(None),
                Err(e) => return Err(PortError::PeerFailed(format!("send: {e}"))),
            }
        }
        Ok(Some(len as u64))
    }
}

impl Sender for MsgSender {
    fn loan(&mut self, _win: Window, len: u32, _stop: &Stop) -> Result<u32, PortError> {
        if len > self.slot_size {
            return Err(PortError::TooLarge {
                len,
                slot: self.slot_size,
            });
        }
        if self.links.iter().all(|l| l.fd.is_none()) {
            return Err(PortError::Closed);
        }
        // The socket buffers are the ring: the plugin always writes at the window's start.
        Ok(0)
    }

    fn publish(
        &mut self,
        win: Window,
        off: u32,
        len: u32,
        publish_ns: u64,
        stop: &Stop,
    ) -> Result<(), PortError> {
        let head = Header {
            kind: FrameKind::Data,
            len,
            publish_ns,
        }
        .encode();
        for link in &mut self.links {
            let Some(fd) = &link.fd else { continue };
            match Self::write_frame(fd, win, &head, off as usize, len as usize, stop)? {
                Some(n) => self.copied += n,
                None => link.fd = None,
            }
        }
        if self.links.iter().all(|l| l.fd.is_none()) {
            return Err(PortError::Closed);
        }
        Ok(())
    }

    fn close(&mut self, stop: &Stop) {
        let head = Header {
            kind: FrameKind::End,
            len: 0,
            publish_ns: sys::now_ns(),
        }
        .encode();
        for link in &mut self.links {
            if let Some(fd) = link.fd.take() {
                // A consumer that is gone or a stopped run just drops the socket: the consumer
                // then sees end-of-file without an end frame, which is what a failure is.
                let window = Window::empty();
                let _ = Self::write_frame(&fd, window, &head, 0, 0, stop);
            }
        }
    }

    fn abort(&mut self) {
        // Closing without an end frame is how a failure looks on a socket.
        for link in &mut self.links {
            link.fd = None;
        }
    }

    fn copied_bytes(&self) -> u64 {
        self.copied
    }
}

/// What a header read found.
enum HeaderRead {
    Full,
    NotReady,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InState {
    Open,
    Ended,
    Failed,
}

struct InLink {
    key: String,
    fd: OwnedFd,
    state: InState,
}

/// The receiving half of a `msg` port: one socket per producer, polled round robin.
pub struct MsgReceiver {
    name: String,
    slot_size: u32,
    links: Vec<InLink>,
    next: usize,
    copied: u64,
}

impl std::fmt::Debug for MsgReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgReceiver")
            .field("name", &self.name)
            .finish()
    }
}

impl MsgReceiver {
    /// Opens the port from its spec (takes the inherited link fds).
    pub fn open(spec: &PortSpec) -> anyhow::Result<MsgReceiver> {
        let fds = take_fds(spec)?;
        Ok(MsgReceiver::from_fds(spec, fds))
    }

    /// Wraps already-open, non-blocking sockets (tests, in-process use).
    pub fn from_fds(spec: &PortSpec, fds: Vec<OwnedFd>) -> MsgReceiver {
        MsgReceiver {
            name: spec.name.clone(),
            slot_size: spec.slot_size,
            links: spec
                .links
                .iter()
                .zip(fds)
                .map(|(l, fd)| InLink {
                    key: l.key.clone(),
                    fd,
                    state: InState::Open,
                })
                .collect(),
            next: 0,
            copied: 0,
        }
    }

    /// Reads a whole header. Returns `NotReady` when not one byte is there yet (the caller
    /// polls), `Eof` on a clean end of file before the first byte; once a header has begun it
    /// waits for the rest.
    fn read_header(
        fd: &OwnedFd,
        buf: &mut [u8; HEADER_LEN],
        stop: &Stop,
    ) -> Result<HeaderRead, PortError> {
        let mut got = 0;
        while got < HEADER_LEN {
            match nix::unistd::read(fd, &mut buf[got..]) {
                Ok(0) if got == 0 => return Ok(HeaderRead::Eof),
                Ok(0) => {
                    return Err(PortError::PeerFailed(
                        "link closed in the middle of a frame header".into(),
                    ));
                }
                Ok(n) => got += n,
                Err(nix::errno::Errno::EAGAIN) if got == 0 => return Ok(HeaderRead::NotReady),
                Err(nix::errno::Errno::EAGAIN) => wait_one(fd, false, stop)?,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(PortError::PeerFailed(format!("recv: {e}"))),
            }
        }
        Ok(HeaderRead::Full)
    }

    fn read_payload(fd: &OwnedFd, win: Window, len: usize, stop: &Stop) -> Result<u64, PortError> {
        let mut got = 0;
        while got < len {
            match win.recv_into(fd.as_fd(), got, len - got) {
                Ok(0) => {
                    return Err(PortError::PeerFailed(format!(
                        "link closed after {got} of {len} payload bytes"
                    )));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_one(fd, false, stop)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PortError::PeerFailed(format!("recv: {e}"))),
            }
        }
        Ok(len as u64)
    }

    /// Reads one frame from link `i`, which poll found readable.
    fn read_frame(
        &mut self,
        i: usize,
        win: Window,
        stop: &Stop,
    ) -> Result<Option<Delivery>, PortError> {
        let link = &mut self.links[i];
        let mut head = [0u8; HEADER_LEN];
        let fail = |link: &mut InLink, why: String| {
            link.state = InState::Failed;
            PortError::PeerFailed(format!("producer on link {}: {why}", link.key))
        };
        match Self::read_header(&link.fd, &mut head, stop) {
            Ok(HeaderRead::Full) => {}
            Ok(HeaderRead::NotReady) => return Ok(None),
            Ok(HeaderRead::Eof) => {
                return Err(fail(link, "closed its link without finishing".into()));
            }
            Err(PortError::PeerFailed(why)) => return Err(fail(link, why)),
            Err(e) => return Err(e),
        }
        let max = self.slot_size.min(win.len() as u32);
        let header = match Header::decode(&head, max) {
            Ok(h) => h,
            Err(e) => return Err(fail(link, format!("bad frame: {e}"))),
        };
        match header.kind {
            FrameKind::End => {
                link.state = InState::Ended;
                Ok(None)
            }
            FrameKind::Data => {
                match Self::read_payload(&link.fd, win, header.len as usize, stop) {
                    Ok(n) => self.copied += n,
                    Err(PortError::PeerFailed(why)) => return Err(fail(link, why)),
                    Err(e) => return Err(e),
                }
                Ok(Some(Delivery {
                    off: 0,
                    len: header.len,
                    publish_ns: header.publish_ns,
                    link: i,
                }))
            }
        }
    }
}

impl Receiver for MsgReceiver {
    fn receive(&mut self, win: Window, stop: &Stop) -> Result<Delivery, PortError> {
        let n = self.links.len();
        loop {
            if let Some(l) = self.links.iter().find(|l| l.state == InState::Failed) {
                return Err(PortError::PeerFailed(format!(
                    "producer on link {} failed",
                    l.key
                )));
            }
            // Fast path, no poll: try each open link once, round robin from `next`.
            for k in 0..n {
                let i = (self.next + k) % n;
                if self.links[i].state != InState::Open {
                    continue;
                }
                if let Some(d) = self.read_frame(i, win, stop)? {
                    self.next = (i + 1) % n;
                    return Ok(d);
                }
            }
            let open: Vec<usize> = (0..n)
                .filter(|&i| self.links[i].state == InState::Open)
                .collect();
            if open.is_empty() {
                if self.links.iter().any(|l| l.state == InState::Failed) {
                    continue;
                }
                return Err(PortError::Closed);
            }
            if stop.interrupted() || stop.remaining().is_zero() {
                return Err(stop.error());
            }
            // Nothing there: sleep in poll until a link has data (or the stop or deadline).
            let fds: Vec<_> = open.iter().map(|&i| self.links[i].fd.as_fd()).collect();
            let slice = stop.remaining().min(POLL_SLICE);
            match sys::wait_ready(&fds, false, stop.fd(), 0, slice) {
                Ok(Readiness::Ready(_)) | Ok(Readiness::TimedOut) => {}
                Ok(Readiness::Stopped) => return Err(stop.error()),
                Err(e) => return Err(PortError::PeerFailed(format!("poll: {e}"))),
            }
        }
    }

    fn release(&mut self) -> Result<(), PortError> {
        // The window is private to this consumer; the next receive overwrites it.
        Ok(())
    }

    fn detach(&mut self) {
        // Producers writing to a closed socket get EPIPE and skip this consumer.
        self.links.clear();
    }

    fn copied_bytes(&self) -> u64 {
        self.copied
    }
}
