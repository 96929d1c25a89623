//! Host-owned linear memory: a fixed reservation that never moves, so that the `shm` backend
//! can map shared pages over a window inside it.

use std::io;
use std::sync::Mutex;

/// Reservations of every live [`HostMemory`] in this process: (base, reserved bytes).
static RESERVATIONS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// A linear memory that the host owns: one fixed reservation that never moves, made of
/// `PROT_NONE` pages, whose accessible prefix grows by changing protection only on the new
/// pages. It honours the reservation and guard sizes wasmtime asks for (compiled code omits
/// bounds checks on that promise), so that the host can map shared pages over a window inside
/// it.
#[derive(Debug)]
pub struct HostMemory {
    base: usize,
    size: usize,
    reserved: usize,
    guard: usize,
    maximum: Option<usize>,
}

fn page_round(n: usize) -> usize {
    n.div_ceil(65536) * 65536
}

impl HostMemory {
    fn new(
        minimum: usize,
        maximum: Option<usize>,
        reserved: Option<usize>,
        guard: usize,
    ) -> Result<HostMemory, String> {
        // Without a reservation size from wasmtime, reserve the whole 32-bit space so that the
        // memory never has to move.
        let reserved = page_round(reserved.unwrap_or(4 << 30).max(minimum));
        let total = reserved
            .checked_add(guard)
            .ok_or("reservation size overflows")?;
        // SAFETY: a fresh anonymous PROT_NONE mapping at an address the kernel picks; it
        // touches no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "reserving {total} bytes for a linear memory: {}",
                io::Error::last_os_error()
            ));
        }
        let mut mem = HostMemory {
            base: base as usize,
            size: 0,
            reserved,
            guard,
            maximum,
        };
        mem.protect_to(minimum).map_err(|e| e.to_string())?;
        RESERVATIONS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((mem.base, mem.reserved + mem.guard));
        Ok(mem)
    }

    /// Makes `[size, new_size)` readable and writable; never touches pages below `size`.
    fn protect_to(&mut self, new_size: usize) -> io::Result<()> {
        if new_size > self.reserved || self.maximum.is_some_and(|m| new_size > m) {
            return Err(io::Error::other(format!(
                "cannot grow a linear memory to {new_size} bytes (reserved {}, maximum {:?})",
                self.reserved, self.maximum
            )));
        }
        if new_size > self.size {
            // SAFETY: `[base + size, base + new_size)` lies inside our own reservation
            // (new_size <= reserved) and is still PROT_NONE, so no live Rust reference or guest
            // window points into it.
            let r = unsafe {
                libc::mprotect(
                    (self.base + self.size) as *mut libc::c_void,
                    new_size - self.size,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            self.size = new_size;
        }
        Ok(())
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        let mut list = RESERVATIONS.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|&(b, _)| b != self.base);
        // SAFETY: unmaps exactly the reservation made in `new` (including any shared mappings
        // placed over windows inside it); wasmtime drops the memory only after the instance's
        // code can no longer run.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.reserved + self.guard) };
    }
}

// SAFETY: `HostMemory` honours wasmtime's contract: the base never moves, `byte_capacity` is the
// true reservation, growth only adds accessible pages after `byte_size`, the guard region after
// the reservation stays PROT_NONE. The one deliberate outside change — shared pages mapped over
// a window by the `shm` backend (`map_over_window`) — keeps every byte of the window mapped and
// accessible to the guest (read-only for consumers, which turns a guest store into a trap).
unsafe impl wasmtime::LinearMemory for HostMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.reserved
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        self.protect_to(new_size)?;
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base as *mut u8
    }
}

/// Creates [`HostMemory`] for every linear memory of the engine that uses it.
#[derive(Debug)]
pub struct HostMemoryCreator;

// SAFETY: every memory it returns is a fresh, zero-filled `HostMemory` that honours the
// requested reservation and guard sizes (see `HostMemory`).
unsafe impl wasmtime::MemoryCreator for HostMemoryCreator {
    fn new_memory(
        &self,
        _ty: wasmtime::MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn wasmtime::LinearMemory>, String> {
        Ok(Box::new(HostMemory::new(
            minimum,
            maximum,
            reserved_size_in_bytes,
            guard_size_in_bytes,
        )?))
    }
}

/// Whether `[addr, addr + len)` lies inside one live [`HostMemory`] reservation.
pub(crate) fn inside_host_memory(addr: usize, len: usize) -> bool {
    RESERVATIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|&(b, n)| addr >= b && addr.checked_add(len).is_some_and(|end| end <= b + n))
}
