//! Guest windows: bounds-checked views into a plugin's linear memory, and the copy primitives
//! that move payload between a window and the kernel (counted by a [`CopyMeter`]).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Bytes of payload that the copy primitives of [`Window`] moved between a guest window and
/// the kernel. Only this module can add to it, so a transport's count is exactly what its
/// copies moved: a backend that moves nothing reads 0 because nothing was added.
#[derive(Debug, Default)]
pub struct CopyMeter {
    bytes: u64,
}

impl CopyMeter {
    /// Payload bytes copied so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds what `other` counted (a copy made while this meter could not be borrowed).
    pub fn absorb(&mut self, other: CopyMeter) {
        self.bytes += other.bytes;
    }

    /// Counts the one copy no primitive here makes: wasmtime's canonical ABI copying `len`
    /// bytes of a `list<u8>` the host returns into a component's memory (a component plugin's
    /// `receive` and `call`), which happens after the host function returned.
    pub fn count_lowering(&mut self, len: usize) {
        self.bytes += len as u64;
    }
}

/// The kernel object a whole message goes through in one call ([`Window::send_whole`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    /// A POSIX message queue (`mq_send`, `mq_receive`).
    Queue,
    /// A connected datagram socket (`write`, `read`: one datagram each).
    Datagram,
}

/// A view of one port's window inside a guest's linear memory.
///
/// It borrows what it was made from (the store, or the memory's bytes) for `'a`, so it cannot
/// outlive the host call that made it: the guest cannot run while it is used, and the memory
/// (a fixed [`HostMemory`] reservation) cannot move or go away meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    base: *mut u8,
    len: usize,
    _memory: std::marker::PhantomData<&'a ()>,
}

impl<'a> Window<'a> {
    /// A view of `memory[off .. off + len]`; `None` when that lies outside the memory.
    pub fn of<S: wasmtime::AsContext>(
        memory: &wasmtime::Memory,
        store: &'a S,
        off: u32,
        len: u32,
    ) -> Option<Window<'a>> {
        let size = memory.data_size(store);
        let end = (off as usize).checked_add(len as usize)?;
        if end > size {
            return None;
        }
        // SAFETY: `off + len <= data_size`, so the offset stays inside the allocation that
        // `data_ptr` points to; the store stays borrowed for `'a`.
        let base = unsafe { memory.data_ptr(store).add(off as usize) };
        Some(Window {
            base,
            len: len as usize,
            _memory: std::marker::PhantomData,
        })
    }

    /// A view of `bytes[off .. off + len]` of a linear memory's bytes (from
    /// `Memory::data_and_store_mut`, which also lends the host state beside it); `None` when
    /// that lies outside. No byte is read or written through `bytes` itself: another process
    /// may write shared pages of it at any time, so only raw-pointer copies touch them.
    pub fn in_memory(bytes: &'a mut [u8], off: u32, len: u32) -> Option<Window<'a>> {
        let end = (off as usize).checked_add(len as usize)?;
        if end > bytes.len() {
            return None;
        }
        // SAFETY: `off + len <= bytes.len()`, so the offset stays inside the slice.
        let base = unsafe { bytes.as_mut_ptr().add(off as usize) };
        Some(Window {
            base,
            len: len as usize,
            _memory: std::marker::PhantomData,
        })
    }

    /// The part `[off, off + len)` of this window.
    pub fn sub(&self, off: usize, len: usize) -> Option<Window<'a>> {
        self.check(off, len).ok()?;
        Some(Window {
            // SAFETY: `off + len <= self.len` (checked above), so the offset stays inside.
            base: unsafe { self.base.add(off) },
            len,
            _memory: std::marker::PhantomData,
        })
    }

    /// An empty window (for frames without payload).
    pub fn empty() -> Window<'static> {
        Window {
            base: std::ptr::NonNull::dangling().as_ptr(),
            len: 0,
            _memory: std::marker::PhantomData,
        }
    }

    /// Copies `window[off .. off + len]` out (guest strings, WASI iovecs).
    pub fn read_vec(&self, off: usize, len: usize) -> Option<Vec<u8>> {
        self.check(off, len).ok()?;
        let mut v = vec![0u8; len];
        // SAFETY: the source range is inside the live window (checked above); `v` is a
        // distinct, freshly allocated buffer of `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off), v.as_mut_ptr(), len) };
        Some(v)
    }

    /// Copies `bytes` into the window at `off`; `false` when it does not fit.
    pub fn write(&self, off: usize, bytes: &[u8]) -> bool {
        if self.check(off, bytes.len()).is_err() {
            return false;
        }
        // SAFETY: the destination range is inside the live window (checked above), `bytes` is
        // a distinct Rust slice, and the guest is blocked in the host call that made `self`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(off), bytes.len()) };
        true
    }

    /// Writes `window[off .. off + len]` as little-endian u64 words, word `k` being
    /// `word(k)`, the last partial word its low bytes (a generated payload, written in place
    /// as a plugin writes its loan); `false` when it does not fit.
    pub fn fill_words(&self, off: usize, len: usize, mut word: impl FnMut(u64) -> u64) -> bool {
        if self.check(off, len).is_err() {
            return false;
        }
        let whole = len / 8;
        for k in 0..whole {
            // SAFETY: `off + 8k + 8 <= off + len`, inside the live window (checked above);
            // the store is unaligned-safe; no Rust reference covers the window.
            unsafe {
                self.base
                    .add(off + 8 * k)
                    .cast::<u64>()
                    .write_unaligned(word(k as u64).to_le());
            }
        }
        let tail = len % 8;
        if tail > 0 {
            let bytes = word(whole as u64).to_le_bytes();
            // SAFETY: the last `tail` bytes of the checked range; `bytes` is a local array.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(off + 8 * whole), tail)
            };
        }
        true
    }

    /// The window's address in this process.
    pub fn addr(&self) -> usize {
        self.base as usize
    }

    /// The window's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, off: usize, len: usize) -> io::Result<()> {
        match off.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range {off}+{len} outside the {}-byte window", self.len),
            )),
        }
    }

    /// Feeds `window[off .. off + len]` to `hasher`. The bytes are copied out in small chunks
    /// through raw pointers: a shared window may be written by another process meanwhile, so
    /// no Rust slice may cover it.
    pub fn hash(&self, hasher: &mut xxhash_rust::xxh3::Xxh3, off: usize, len: usize) {
        if self.check(off, len).is_err() {
            return;
        }
        // 2 KiB, not zeroed: a 4 KiB memset per call cost more than hashing a small message
        // (only the bytes copied in are read), and 4 KiB copies of another core's lines ran
        // slower than 2 KiB ones (`bench`, 64 KiB messages: 89 k against 111 k msg/s on the
        // native ring; 1 KiB and 256 B chunks were no faster).
        let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(chunk.len());
            // SAFETY: `off + done + n <= off + len <= window length` (checked above), the
            // window is live for this host call, and `chunk` is a distinct local buffer. The
            // copy initialises `chunk[..n]` (any byte value is a valid `u8`), which is all
            // the slice below covers.
            let bytes = unsafe {
                std::ptr::copy_nonoverlapping(
                    self.base.add(off + done),
                    chunk.as_mut_ptr().cast::<u8>(),
                    n,
                );
                std::slice::from_raw_parts(chunk.as_ptr().cast::<u8>(), n)
            };
            hasher.update(bytes);
            done += n;
        }
    }

    /// Writes `head` and then `window[off .. off + len][done - head.len() ..]` to a
    /// non-blocking socket with one `writev`, starting `done` bytes into the frame. Returns the
    /// bytes written, or `WouldBlock`.
    pub fn writev_frame(
        &self,
        fd: BorrowedFd<'_>,
        meter: &mut CopyMeter,
        head: &[u8],
        off: usize,
        len: usize,
        done: usize,
    ) -> io::Result<usize> {
        self.check(off, len)?;
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; 2];
        let mut n = 0;
        if done < head.len() {
            iov[n] = libc::iovec {
                iov_base: head[done..].as_ptr() as *mut libc::c_void,
                iov_len: head.len() - done,
            };
            n += 1;
        }
        let body_done = done.saturating_sub(head.len());
        if body_done < len {
            iov[n] = libc::iovec {
                // SAFETY: off + body_done < off + len <= window length (checked above).
                iov_base: unsafe { self.base.add(off + body_done) }.cast(),
                iov_len: len - body_done,
            };
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let count = libc::c_int::try_from(n).expect("at most two iovecs");
        // SAFETY: each of the first `count` iovecs points into live memory of the stated
        // length: `head` is borrowed for the call, the window range is checked above. `writev`
        // (not `sendmsg`) so the kernel's per-process I/O counters see the bytes; Rust ignores
        // SIGPIPE, so a closed peer is EPIPE.
        let r = unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), count) };
        let Ok(r) = usize::try_from(r) else {
            return Err(io::Error::last_os_error());
        };
        // What went beyond the header's remainder came out of the window.
        meter.bytes += (r.saturating_sub(head.len().saturating_sub(done))) as u64;
        Ok(r)
    }

    /// Reads at most `len` bytes from a non-blocking socket into `window[off ..]`. Returns the
    /// bytes read (0 at end of stream), or `WouldBlock`.
    pub fn recv_into(
        &self,
        fd: BorrowedFd<'_>,
        meter: &mut CopyMeter,
        off: usize,
        len: usize,
    ) -> io::Result<usize> {
        self.check(off, len)?;
        // SAFETY: the destination range is inside the window (checked above) and nothing else
        // reads or writes it during this call (the guest is blocked in the host call).
        // `read` (not `recv`) so the kernel's per-process I/O counters see the bytes.
        let r = unsafe { libc::read(fd.as_raw_fd(), self.base.add(off).cast(), len) };
        let Ok(r) = usize::try_from(r) else {
            return Err(io::Error::last_os_error());
        };
        meter.bytes += r as u64;
        Ok(r)
    }

    /// Copies `N` bytes at `off` out of the window (a frame header the kernel delivered in
    /// front of the payload); `None` when they do not fit.
    pub fn read_array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.check(off, N).ok()?;
        let mut out = [0u8; N];
        // SAFETY: the source range is inside the live window (checked above); `out` is a
        // distinct local array of `N` bytes.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(off), out.as_mut_ptr(), N) };
        Some(out)
    }

    /// Sends `window[.. len]` as one whole message of a message-preserving kernel object
    /// (`how`): one `mq_send` on a POSIX message queue, one `write` of a datagram on a
    /// connected datagram socket. Payload bytes are those from `payload_from` on (the bytes
    /// before are the frame header the host wrote there), and only they are counted. Returns
    /// `WouldBlock` when the queue is full.
    pub fn send_whole(
        &self,
        fd: BorrowedFd<'_>,
        meter: &mut CopyMeter,
        len: usize,
        payload_from: usize,
        how: Whole,
    ) -> io::Result<()> {
        self.check(0, len)?;
        let sent = match how {
            // SAFETY: `window[.. len]` is inside the live window (checked above); the guest is
            // blocked in the host call, so nothing writes it during the call; on Linux an
            // `mqd_t` is the file descriptor `fd`.
            Whole::Queue => isize::try_from(unsafe {
                libc::mq_send(fd.as_raw_fd(), self.base.cast_const().cast(), len, 0)
            })
            .unwrap_or(-1),
            // SAFETY: as above; `write` on a connected datagram socket sends one datagram
            // (all of it or nothing), and the kernel's per-process I/O counters see it.
            Whole::Datagram => unsafe {
                libc::write(fd.as_raw_fd(), self.base.cast_const().cast(), len)
            },
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        meter.bytes += len.saturating_sub(payload_from) as u64;
        Ok(())
    }

    /// Receives one whole message into the window from its start (`how`, as for
    /// [`Window::send_whole`]); returns its length. The whole window is offered: a queue
    /// refuses a buffer smaller than its message size, and a datagram longer than the buffer
    /// would be cut. Payload bytes (from `payload_from` on) are counted. `WouldBlock` when
    /// nothing is queued.
    pub fn receive_whole(
        &self,
        fd: BorrowedFd<'_>,
        meter: &mut CopyMeter,
        payload_from: usize,
        how: Whole,
    ) -> io::Result<usize> {
        let got = match how {
            Whole::Queue => {
                let mut priority: libc::c_uint = 0;
                // SAFETY: the whole live window is the destination, nothing else reads or
                // writes it during the call (the guest is blocked in the host call);
                // `priority` is a live local; an `mqd_t` is the file descriptor `fd`.
                unsafe {
                    libc::mq_receive(fd.as_raw_fd(), self.base.cast(), self.len, &mut priority)
                }
            }
            // SAFETY: as above; `read` takes one datagram.
            Whole::Datagram => unsafe { libc::read(fd.as_raw_fd(), self.base.cast(), self.len) },
        };
        let Ok(got) = usize::try_from(got) else {
            return Err(io::Error::last_os_error());
        };
        meter.bytes += got.saturating_sub(payload_from) as u64;
        Ok(got)
    }

    /// Copies `window[off .. off + len]` into a new buffer for a transport that takes owned
    /// bytes (the `zenoh` engine), counting the copy.
    pub fn copy_out(&self, meter: &mut CopyMeter, off: usize, len: usize) -> io::Result<Vec<u8>> {
        self.check(off, len)?;
        // Not zeroed first: every byte is written by the copy below.
        let mut v = Vec::with_capacity(len);
        // SAFETY: the source range is inside the live window (checked above); `v` is a
        // distinct, freshly allocated buffer with room for `len` bytes, and the copy
        // initialises all `len` of them before `set_len` exposes them.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off), v.as_mut_ptr(), len);
            v.set_len(len);
        }
        meter.bytes += len as u64;
        Ok(v)
    }

    /// Copies `parts`, one after another, into the window from `off`, counting the copy (a
    /// message a transport delivered in pieces).
    pub fn copy_in<'p>(
        &self,
        meter: &mut CopyMeter,
        off: usize,
        parts: impl Iterator<Item = &'p [u8]>,
    ) -> io::Result<usize> {
        let mut at = off;
        for part in parts {
            self.check(at, part.len())?;
            // SAFETY: the destination range is inside the window (checked above), `part` is
            // a distinct Rust slice, and the guest is blocked in the host call that made
            // `self`.
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), self.base.add(at), part.len()) };
            at += part.len();
            meter.bytes += part.len() as u64;
        }
        Ok(at - off)
    }
}
