//! Ports: loan → write → publish on an [`Output`], receive → read → release on an [`Input`].
//!
//! Contract of the safe API (the host's side is `wit/wasm-ipc.wit`):
//! - a port is open at most once at a time in a plugin ([`Error::AlreadyOpen`]), and each
//!   `Output`/`Input` lends out at most one [`Loan`]/[`Message`] at a time (it is borrowed
//!   mutably), so bytes the host hands out never alias;
//! - every pointer from the host is checked to lie in a window that `cabi_realloc` handed out
//!   (a violation panics, which traps): those blocks belong to no Rust object;
//! - a `Message` is read-only (the shm backend maps it read-only) and releases on drop;
//! - dropping a `Loan` without publishing sends nothing; the next loan replaces it;
//! - dropping an `Input`/`Output` does not close the port: ports close when `run` returns.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};
use std::{ptr, slice};

use crate::Error;
use crate::sys;

/// Names of the ports an `Input` or `Output` currently holds.
static OPEN: Mutex<Vec<Box<str>>> = Mutex::new(Vec::new());

/// A port handle by name, registered in [`OPEN`] until dropped.
pub(crate) struct Handle {
    pub(crate) id: i32,
    pub(crate) name: Box<str>,
}

impl Handle {
    pub(crate) fn open(name: &str) -> Result<Handle, Error> {
        let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
        if open.iter().any(|n| **n == *name) {
            return Err(Error::AlreadyOpen);
        }
        // SAFETY: a `&str` is `name.len()` bytes of UTF-8 in our memory.
        let id = unsafe { sys::port(name.as_ptr(), name.len()) };
        if id < 0 {
            return Err(Error::from_code(id));
        }
        open.push(name.into());
        Ok(Handle {
            id,
            name: name.into(),
        })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|n| *n != self.name);
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} (handle {})", self.name, self.id)
    }
}

/// Turns an address the host returned for `len` bytes into a pointer, after checking that the
/// bytes lie in a window (a violation is a host bug: panic, which traps).
pub(crate) fn window_ptr(call: &str, addr: usize, len: usize) -> *mut u8 {
    assert!(
        sys::in_window(addr, len),
        "wasm-ipc host bug: {call} returned {len} bytes at {addr:#x}, outside every window"
    );
    ptr::with_exposed_provenance_mut(addr)
}

/// An output port: loan bytes in its window, write them, publish.
#[derive(Debug)]
pub struct Output {
    handle: Handle,
}

impl Output {
    /// Opens the output port `name` ("out", ...).
    ///
    /// Errors: [`Error::UnknownPort`] when the scenario gives this plugin no such port,
    /// [`Error::AlreadyOpen`] when this plugin holds it already.
    pub fn open(name: &str) -> Result<Output, Error> {
        Handle::open(name).map(|handle| Output { handle })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// The raw handle `port` returned (for the `raw` functions).
    pub fn handle(&self) -> i32 {
        self.handle.id
    }

    /// Loans `len` writable bytes in the port's window; blocks while the channel is full.
    /// The bytes hold whatever was there before: write all that you publish.
    ///
    /// Errors: [`Error::Closed`] (every consumer is gone), [`Error::PeerFailed`],
    /// [`Error::TooLarge`] (`len` exceeds the channel's slot size).
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>, Error> {
        let len32 = u32::try_from(len).map_err(|_| Error::TooLarge)?;
        // SAFETY: the handle came from `port`. `&mut self` is borrowed exclusively, and a
        // `Loan` borrows it for its whole life, so no earlier loan of this port is alive and
        // the host may reuse its bytes.
        let ret = unsafe { sys::loan(self.handle.id, len32) };
        if ret < 0 {
            return Err(Error::from_code(ret));
        }
        // SAFETY: `ret` is a loan of `len` bytes; the slice lives no longer than the `Loan`,
        // which `publish` consumes and which borrows `self`, so no other loan of this port
        // can alias it.
        let bytes = unsafe { loaned("loan", ret, len) };
        Ok(Loan {
            port: self.handle.id,
            bytes,
        })
    }
}

/// Bytes loaned on an [`Output`]: write them through `DerefMut<Target = [u8]>`, then
/// [`publish`](Loan::publish). Dropping it publishes nothing.
#[derive(Debug)]
#[must_use = "a loan sends nothing until it is published"]
pub struct Loan<'a> {
    port: i32,
    bytes: &'a mut [u8],
}

impl Loan<'_> {
    /// Publishes every loaned byte.
    ///
    /// Errors: [`Error::Closed`] (every consumer is gone), [`Error::PeerFailed`].
    pub fn publish(self) -> Result<(), Error> {
        let len = self.bytes.len();
        self.publish_len(len)
    }

    /// Publishes the first `len` bytes of the loan; [`Error::TooLarge`] (and nothing is sent)
    /// when `len` exceeds the loan.
    pub fn publish_len(self, len: usize) -> Result<(), Error> {
        if len > self.bytes.len() {
            return Err(Error::TooLarge);
        }
        // The slice ends here: consumers read these bytes from now on.
        let Loan { port, bytes: _ } = self;
        // SAFETY: `port` has a current loan (`loan` succeeded and this is its `Loan`) of at
        // least `len` bytes (checked above), and its slice was consumed with `self`, so
        // nothing writes to the published bytes any more. `len` fits u32 since the loan did.
        let ret = unsafe { sys::publish(port, len as u32) };
        if ret < 0 {
            Err(Error::from_code(ret))
        } else {
            Ok(())
        }
    }
}

impl Deref for Loan<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}

impl DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes
    }
}

/// An input port: receive a message in its window, read it, release it.
#[derive(Debug)]
pub struct Input {
    handle: Handle,
}

impl Input {
    /// Opens the input port `name` ("in", ...).
    ///
    /// Errors: [`Error::UnknownPort`] when the scenario gives this plugin no such port,
    /// [`Error::AlreadyOpen`] when this plugin holds it already.
    pub fn open(name: &str) -> Result<Input, Error> {
        Handle::open(name).map(|handle| Input { handle })
    }

    /// The port's name.
    pub fn name(&self) -> &str {
        &self.handle.name
    }

    /// The raw handle `port` returned (for the `raw` functions).
    pub fn handle(&self) -> i32 {
        self.handle.id
    }

    /// Blocks until a message arrives. `Ok(None)` once every producer has finished and the
    /// channel is drained.
    ///
    /// Errors: [`Error::PeerFailed`] when a producer failed.
    pub fn receive(&mut self) -> Result<Option<Message<'_>>, Error> {
        // SAFETY: the handle came from `port`. `&mut self` is borrowed exclusively, and a
        // `Message` borrows it for its whole life and releases on drop, so no message of this
        // port is outstanding and nothing refers to the window.
        let ret = unsafe { sys::receive(self.handle.id) };
        // SAFETY: `ret` is what `receive` returned; the message it names stays unchanged until
        // `release`, which only the `Message` (borrowing `self` mutably) calls as it goes.
        unsafe { received("receive", ret) }.map(|got| {
            got.map(|bytes| Message {
                port: self.handle.id,
                bytes,
            })
        })
    }
}

/// The message a `receive` or `call` result names: `None` for closed, an error for another
/// negative code.
///
/// # Safety
/// `ret` must be the result of `receive` or `call`, and the bytes it names must stay unchanged
/// and unreferenced for writing for `'a` (until `release`).
pub(crate) unsafe fn received<'a>(call: &str, ret: i64) -> Result<Option<&'a [u8]>, Error> {
    if ret < 0 {
        return match i32::try_from(ret) {
            Ok(crate::code::CLOSED) => Ok(None),
            Ok(code) => Err(Error::from_code(code)),
            Err(_) => Err(Error::Code(i32::MIN)),
        };
    }
    let addr = (ret as u64 >> 32) as usize;
    let len = ret as u32 as usize;
    if len == 0 {
        return Ok(Some(&[]));
    }
    let ptr = window_ptr(call, addr, len);
    // SAFETY: `ptr..ptr + len` lies in a window (checked by `window_ptr`): memory the global
    // allocator gave `cabi_realloc`, which never frees it, so no Rust object overlaps it; it
    // was zeroed there, so every byte is initialised; it is aligned for `u8`. It stays
    // unchanged for `'a` (this function's contract).
    Ok(Some(unsafe {
        slice::from_raw_parts(ptr.cast_const(), len)
    }))
}

/// `len` bytes the host loaned at `ret` (the result of `loan` or `reply-loan`).
///
/// # Safety
/// `ret` must be a non-negative loan result for `len` bytes, and nothing else may refer to
/// those bytes for `'a` (until they are sent or the next loan of the port).
pub(crate) unsafe fn loaned<'a>(call: &str, ret: i32, len: usize) -> &'a mut [u8] {
    if len == 0 {
        return &mut [];
    }
    let ptr = window_ptr(call, ret as usize, len);
    // SAFETY: `ptr..ptr + len` lies in a window (checked by `window_ptr`): memory the global
    // allocator gave `cabi_realloc`, which never frees it, so no Rust object overlaps it; it
    // was zeroed there, so every byte is initialised; it is aligned for `u8`. Per the ABI the
    // host writes nothing there until the loan is sent, and nothing else refers to it for
    // `'a` (this function's contract).
    unsafe { slice::from_raw_parts_mut(ptr, len) }
}

/// A received message: read it through `Deref<Target = [u8]>` (never write: the memory may be
/// mapped read-only). Dropping it releases it.
#[derive(Debug)]
pub struct Message<'a> {
    pub(crate) port: i32,
    pub(crate) bytes: &'a [u8],
}

impl Message<'_> {
    /// Releases the message now, reporting the host's answer (dropping it does the same and
    /// ignores the answer).
    pub fn release(self) -> Result<(), Error> {
        let port = self.port;
        std::mem::forget(self);
        release(port)
    }
}

pub(crate) fn release(port: i32) -> Result<(), Error> {
    // SAFETY: `port` has a received message: its `Message` existed until now and is going away
    // (forgotten by `Message::release`, or in its `drop`), and its slice, the only view of the
    // message, is never read again, so nothing reads the bytes the host may now overwrite.
    let ret = unsafe { sys::release(port) };
    if ret < 0 {
        Err(Error::from_code(ret))
    } else {
        Ok(())
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        let _ = release(self.port);
    }
}

impl Deref for Message<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}
