//! Request/reply (ABI 0.2.0): a [`Client`] calls a server and gets its answer in its own
//! window; a [`Server`] receives requests from any of its clients and answers each one.
//!
//! ```no_run
//! use wasm_ipc_sdk::{Client, Error, Server};
//!
//! /// Client: asks for key 7 and reads the answer (released when dropped).
//! fn ask() -> Result<(), Error> {
//!     let mut db = Client::open("db")?;
//!     let answer = db.call_with(&7u64.to_le_bytes())?;
//!     assert!(!answer.is_empty());
//!     Ok(())
//! }
//!
//! /// Server: answers every request with its own bytes reversed, until every client is done.
//! fn serve() -> Result<(), Error> {
//!     let mut queries = Server::open("queries")?;
//!     loop {
//!         let (client, key) = match queries.receive()? {
//!             Some(request) => (request.client(), request.to_vec()),
//!             None => break,
//!         };
//!         match queries.reply_to(client, key.len()) {
//!             Ok(mut reply) => {
//!                 for (dst, src) in reply.iter_mut().zip(key.iter().rev()) {
//!                     *dst = *src;
//!                 }
//!                 reply.send()?;
//!             }
//!             // That client is gone (it failed mid-call): serve the others.
//!             Err(Error::Closed) => {}
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! Contract of the safe API, as for streams: a port is open once in a plugin; a `Client` lends
//! out one [`RequestLoan`] or answer [`Message`] at a time and a `Server` one [`Request`] or
//! [`Reply`] at a time (each borrows it mutably), so bytes the host hands out never alias.

use std::fmt;
use std::ops::{Deref, DerefMut};

use crate::port::{Handle, loaned, received};
use crate::{Error, Message, sys};

/// A client port: loan a request, write it, `call`, read the answer.
pub struct Client {
    handle: Handle,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("port", &self.handle)
            .finish()
    }
}

impl Client {
    /// Opens the client port `name` (a `from` port of a request-reply channel).
    ///
    /// Errors: [`Error::UnknownPort`], [`Error::AlreadyOpen`].
    pub fn open(name: &str) -> Result<Client, Error> {
        Handle::open(name).map(|handle| Client { handle })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// The raw handle `port` returned (for the `raw` functions).
    pub fn handle(&self) -> i32 {
        self.handle.id
    }

    /// Loans `len` writable bytes for a request; [`RequestLoan::call`] sends it.
    ///
    /// Errors: [`Error::Closed`] (the server finished), [`Error::PeerFailed`],
    /// [`Error::TooLarge`].
    pub fn request(&mut self, len: usize) -> Result<RequestLoan<'_>, Error> {
        let len32 = u32::try_from(len).map_err(|_| Error::TooLarge)?;
        // SAFETY: the handle came from `port`; `&mut self` is borrowed for the loan's whole
        // life, so no earlier loan or answer of this port is alive.
        let ret = unsafe { sys::loan(self.handle.id, len32) };
        if ret < 0 {
            return Err(Error::from_code(ret));
        }
        Ok(RequestLoan {
            port: self.handle.id,
            // SAFETY: a loan of `len` bytes, borrowed by the `RequestLoan` only.
            bytes: unsafe { loaned("loan", ret, len) },
        })
    }

    /// Sends `request` (copied into a loan) and returns the answer.
    ///
    /// Errors: as [`Client::request`] and [`RequestLoan::call`].
    pub fn call_with(&mut self, request: &[u8]) -> Result<Message<'_>, Error> {
        let mut loan = self.request(request.len())?;
        loan.copy_from_slice(request);
        loan.call()
    }
}

/// A request being written: `DerefMut<Target = [u8]>`, then [`call`](RequestLoan::call).
#[derive(Debug)]
#[must_use = "a request is sent only by `call`"]
pub struct RequestLoan<'a> {
    port: i32,
    bytes: &'a mut [u8],
}

impl<'a> RequestLoan<'a> {
    /// Sends every loaned byte and blocks for the answer, which stays readable until the
    /// returned [`Message`] is dropped.
    ///
    /// Errors: [`Error::Closed`] (the server finished without answering),
    /// [`Error::PeerFailed`] (the server failed).
    pub fn call(self) -> Result<Message<'a>, Error> {
        let len = self.bytes.len();
        self.call_len(len)
    }

    /// Sends the first `len` bytes of the loan ([`Error::TooLarge`] beyond it) and blocks for
    /// the answer.
    pub fn call_len(self, len: usize) -> Result<Message<'a>, Error> {
        if len > self.bytes.len() {
            return Err(Error::TooLarge);
        }
        let RequestLoan { port, bytes: _ } = self;
        // SAFETY: `port` is a client handle with a current loan of at least `len` bytes whose
        // slice was consumed with `self`; no answer is held, since the `RequestLoan` borrowed
        // the `Client` mutably and an answer `Message` would too.
        let ret = unsafe { sys::call(port, len as u32) };
        // SAFETY: `ret` is `call`'s result; the answer stays until the `Message` releases it.
        match unsafe { received("call", ret) }? {
            Some(bytes) => Ok(Message { port, bytes }),
            None => Err(Error::Closed),
        }
    }
}

impl Deref for RequestLoan<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl DerefMut for RequestLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}

/// A server port: receive requests from any client, answer each.
pub struct Server {
    handle: Handle,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("port", &self.handle)
            .finish()
    }
}

impl Server {
    /// Opens the server port `name` (the `to` port of a request-reply channel).
    ///
    /// Errors: [`Error::UnknownPort`], [`Error::AlreadyOpen`].
    pub fn open(name: &str) -> Result<Server, Error> {
        Handle::open(name).map(|handle| Server { handle })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// The raw handle `port` returned (for the `raw` functions).
    pub fn handle(&self) -> i32 {
        self.handle.id
    }

    /// Blocks for the next request from any client; `Ok(None)` once every client finished.
    /// A client that failed is skipped (the report counts it).
    ///
    /// Errors: [`Error::PeerFailed`] when the failure was not one client's.
    pub fn receive(&mut self) -> Result<Option<Request<'_>>, Error> {
        let port = self.handle.id;
        // SAFETY: the handle came from `port`; `&mut self` is borrowed for the request's life,
        // so no request of this port is held.
        let ret = unsafe { sys::receive(port) };
        // SAFETY: `ret` is `receive`'s result; the request stays until `Request` releases it.
        let Some(bytes) = (unsafe { received("receive", ret) })? else {
            return Ok(None);
        };
        // SAFETY: a request was just received on this server port.
        let client = unsafe { sys::client(port) };
        Ok(Some(Request {
            port,
            client: client.unsigned_abs(),
            bytes,
            server: Some(self),
        }))
    }

    /// Loans `len` bytes for the answer to `client`'s outstanding call.
    ///
    /// Errors: [`Error::Closed`] when that client is gone (it failed mid-call: carry on),
    /// [`Error::TooLarge`].
    pub fn reply_to(&mut self, client: u32, len: usize) -> Result<Reply<'_>, Error> {
        let len32 = u32::try_from(len).map_err(|_| Error::TooLarge)?;
        let client = i32::try_from(client).map_err(|_| Error::Code(i32::MIN))?;
        // SAFETY: a server handle; `&mut self` is borrowed for the reply's life, so no earlier
        // reply loan of this port is alive. A client without an outstanding call is the
        // plugin's mistake, which the host traps.
        let ret = unsafe { sys::reply_loan(self.handle.id, client, len32) };
        if ret < 0 {
            return Err(Error::from_code(ret));
        }
        Ok(Reply {
            port: self.handle.id,
            // SAFETY: a loan of `len` bytes, borrowed by the `Reply` only.
            bytes: unsafe { loaned("reply-loan", ret, len) },
        })
    }
}

/// A received request: read it through `Deref<Target = [u8]>`; dropping it releases it.
pub struct Request<'a> {
    port: i32,
    client: u32,
    bytes: &'a [u8],
    /// Until `reply` takes it.
    server: Option<&'a mut Server>,
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("client", &self.client)
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl<'a> Request<'a> {
    /// Who asked: 0-based, the client's place in the channel's `from`.
    pub fn client(&self) -> u32 {
        self.client
    }

    /// Releases the request and loans `len` bytes for its answer (read what you need of the
    /// request first).
    ///
    /// Errors: as [`Server::reply_to`].
    pub fn reply(mut self, len: usize) -> Result<Reply<'a>, Error> {
        let client = self.client;
        let server = self
            .server
            .take()
            .expect("a request holds its server until `reply`");
        // Releases the request: its bytes are not read after this.
        drop(self);
        server.reply_to(client, len)
    }
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        let _ = crate::port::release(self.port);
    }
}

impl Deref for Request<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

/// An answer being written: `DerefMut<Target = [u8]>`, then [`send`](Reply::send).
#[derive(Debug)]
#[must_use = "an answer is sent only by `send`"]
pub struct Reply<'a> {
    port: i32,
    bytes: &'a mut [u8],
}

impl Reply<'_> {
    /// Sends every loaned byte, ending the call.
    ///
    /// Errors: [`Error::Closed`] when the client is gone.
    pub fn send(self) -> Result<(), Error> {
        let len = self.bytes.len();
        self.send_len(len)
    }

    /// Sends the first `len` bytes ([`Error::TooLarge`] beyond the loan).
    pub fn send_len(self, len: usize) -> Result<(), Error> {
        if len > self.bytes.len() {
            return Err(Error::TooLarge);
        }
        let Reply { port, bytes: _ } = self;
        // SAFETY: `port` has a reply loan of at least `len` bytes whose slice was consumed
        // with `self`: nothing writes to it any more.
        let ret = unsafe { sys::reply(port, len as u32) };
        if ret < 0 {
            Err(Error::from_code(ret))
        } else {
            Ok(())
        }
    }
}

impl Deref for Reply<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl DerefMut for Reply<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}
