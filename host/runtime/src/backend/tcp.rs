//! `tcp`: a copied message channel over TCP on the loopback interface: the network stack
//! without an engine on top, the floor under `zenoh`.
//!
//! Everything above the connections is `msg`'s: the same frames ([`super::frame`]), one
//! `writev` from the producer's window and `read` into the consumer's, the same credits
//! (`capacity` = messages in flight per link) and waiting. The connections have `TCP_NODELAY`
//! (a frame goes out when it is written, as on the other backends), and each sender's send
//! buffer is sized for `capacity` frames as `msg` sizes its sockets (and refused past
//! `net.core.wmem_max` the same way).
//!
//! **Two connections per link**, one each way, as `pipe` has two pipes: frames on one, credits
//! on the other. On one connection both ways, a producer that closes while credits it never
//! read sit in its receive queue makes the kernel send a reset and drop what the producer's
//! send queue still held: at 1 MiB frames the consumer lost the tail of the stream
//! ("connection reset by peer"). A data connection the producer never reads closes with a
//! FIN after its last byte; a credit that arrives after the producer closed resets only the
//! credit connection, where the consumer ignores it.
//!
//! **No outsider gets in.** The supervisor makes every connection in `plan`, before any
//! worker starts: it listens on an ephemeral port of 127.0.0.1, connects, accepts the
//! connection whose peer address is the one it just connected from (any other is closed), and
//! closes the listener at once. So while the run lasts no socket of it listens: a process
//! that dials a run's port is refused by the kernel (`tests/all/tcp.rs`). Local only: across
//! hosts stays `zenoh`'s job.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::msg::{Msg, MsgReceiver, MsgSender, Transport, plan_links, take_links};
use super::{Backend, ChannelDesc, ChannelPlan, FdSource, Fds, PortSpec, Receiver, Sender};
use crate::scenario::BackendKind;
use crate::sys::Window;

/// A connected pair of TCP sockets on 127.0.0.1 (producer end, consumer end), with
/// `TCP_NODELAY`, and no listener left behind.
pub fn loopback_pair() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("listening on 127.0.0.1")?;
    let at = listener.local_addr()?;
    let ours = TcpStream::connect(at).with_context(|| format!("connecting to {at}"))?;
    let want = ours.local_addr()?;
    // Another process could connect between our bind and our connect: take only the
    // connection that comes from our own socket's address. Bounded in time and count.
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let theirs = loop {
        match listener.accept() {
            Ok((s, from)) if from == want => break s,
            Ok((stranger, from)) => {
                drop(stranger);
                eprintln!("wasm-ipc: tcp: closed a connection from {from} that was not the run's");
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("the loopback connection to {at} was not accepted within 5 s");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e).context("accepting the loopback connection"),
        }
    };
    drop(listener);
    for s in [&ours, &theirs] {
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
    }
    Ok((OwnedFd::from(ours), OwnedFd::from(theirs)))
}

/// The `tcp` backend.
#[derive(Debug)]
pub struct Tcp;

impl Backend for Tcp {
    fn cost(&self, shape: &super::ChannelShape) -> super::ChannelCost {
        // Two sockets per link on each side (data and credits).
        let links = shape.producers.saturating_mul(shape.consumers);
        super::ChannelCost {
            producer_fds: shape.consumers.saturating_mul(2),
            consumer_fds: shape.producers.saturating_mul(2),
            supervisor_fds: links.saturating_mul(4),
            ..Msg.cost(shape)
        }
    }

    /// As `msg`: `capacity` frames must fit a link's send buffer, which the kernel caps at
    /// twice `net.core.wmem_max`.
    fn refuse(&self, shape: &super::ChannelShape) -> Option<String> {
        Msg.refuse(shape)
    }

    fn plan(&self, ch: &ChannelDesc<'_>, fds: &mut Fds) -> anyhow::Result<ChannelPlan> {
        plan_links(ch, fds, BackendKind::Tcp, |key| {
            let (data_out, data_in) =
                loopback_pair().with_context(|| format!("connecting link {key}"))?;
            let (back_in, back_out) =
                loopback_pair().with_context(|| format!("connecting link {key}'s credits"))?;
            Ok((vec![data_out, back_in], vec![data_in, back_out]))
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
            Transport::Socket,
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
