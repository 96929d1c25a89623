//! WASI preview 1, the small audited subset plugins need: no files, no network, empty
//! arguments and environment, stdout/stderr forwarded to the supervisor's stderr with the
//! plugin's name as prefix, clocks, and a `random_get` seeded from the scenario so runs repeat.
//!
//! Why not wasmtime-wasi: its preview 1 pulls in wasmtime's component model, async support and
//! tokio, which costs minutes of build time on a 2-core machine, and plugins need none of the
//! file system or sockets it brings. Every other WASI function a module imports is defined to
//! return ENOSYS.

use std::io::Write;

use wasmtime::{Caller, ExternType, Linker, Module, Val};

use super::Host;
use super::abi::{HostTrap, guest_bytes};
use crate::sys;

/// The WASI preview 1 import module.
pub const MODULE: &str = "wasi_snapshot_preview1";

const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;

/// Output a plugin may forward per run before the rest is dropped.
pub(crate) const OUTPUT_BUDGET: u64 = 1 << 20;

/// A plugin's forwarded output: line-buffered, prefixed with its name, cut off after a fixed
/// budget of [`OUTPUT_BUDGET`] bytes per run.
#[derive(Debug)]
pub struct Output {
    prefix: String,
    partial: [Vec<u8>; 2],
    forwarded: u64,
    dropped: u64,
    /// The most verbose `log` level shown (`WASM_IPC_LOG`, read once).
    max_level: u32,
    /// The first error-level `log` line (kept to 1 KiB): why a plugin that fails said it
    /// fails, for the report.
    first_error: Option<String>,
}

impl Output {
    /// Output for plugin `name`.
    pub fn new(name: &str) -> Output {
        Output {
            prefix: format!("[{name}] "),
            partial: [Vec::new(), Vec::new()],
            forwarded: 0,
            dropped: 0,
            max_level: match std::env::var("WASM_IPC_LOG").as_deref() {
                Ok("trace") => 4,
                Ok("debug") => 3,
                _ => 2,
            },
            first_error: None,
        }
    }

    /// The first error-level line the plugin logged.
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    /// Bytes dropped by the budget.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn emit(&mut self, line: &[u8]) {
        if self.forwarded >= OUTPUT_BUDGET {
            if self.dropped == 0 {
                let _ = writeln!(
                    std::io::stderr(),
                    "{}(output beyond {OUTPUT_BUDGET} bytes is dropped)",
                    self.prefix
                );
            }
            self.dropped += line.len() as u64;
            return;
        }
        self.forwarded += line.len() as u64;
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(self.prefix.as_bytes());
        let _ = err.write_all(line);
        let _ = err.write_all(b"\n");
    }

    /// Bytes written to fd 1 (`stream` 0) or fd 2 (`stream` 1).
    pub fn write(&mut self, stream: usize, bytes: &[u8]) {
        self.partial[stream].extend_from_slice(bytes);
        while let Some(pos) = self.partial[stream].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[stream].drain(..=pos).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if self.partial[stream].len() > 4096 {
            let line = std::mem::take(&mut self.partial[stream]);
            self.emit(&line);
        }
    }

    /// Emits unterminated last lines.
    pub fn flush(&mut self) {
        for stream in 0..2 {
            if !self.partial[stream].is_empty() {
                let line = std::mem::take(&mut self.partial[stream]);
                self.emit(&line);
            }
        }
    }

    /// A `log` call. Levels above info are shown only when `WASM_IPC_LOG=debug` or `trace`.
    pub fn log(&mut self, level: u32, msg: &str) {
        let name = match level {
            0 => "ERROR",
            1 => "WARN",
            2 => "INFO",
            3 => "DEBUG",
            _ => "TRACE",
        };
        if level == 0 && self.first_error.is_none() {
            let mut end = msg.len().min(1024);
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            self.first_error = Some(msg[..end].to_string());
        }
        if level <= self.max_level {
            self.emit(format!("{name} {msg}").as_bytes());
        }
    }
}

fn write_u32(caller: &Caller<'_, Host>, call: &str, ptr: i32, v: u32) -> wasmtime::Result<()> {
    guest_bytes(caller, call, ptr, 4)?.write(0, &v.to_le_bytes());
    Ok(())
}

fn write_u64(caller: &Caller<'_, Host>, call: &str, ptr: i32, v: u64) -> wasmtime::Result<()> {
    guest_bytes(caller, call, ptr, 8)?.write(0, &v.to_le_bytes());
    Ok(())
}

fn fd_write(
    mut caller: Caller<'_, Host>,
    fd: i32,
    iovs: i32,
    n: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    if fd != 1 && fd != 2 {
        return Ok(EBADF);
    }
    let table = guest_bytes(&caller, "fd_write", iovs, n.saturating_mul(8))?;
    let table = table.read_vec(0, table.len()).unwrap_or_default();
    let mut total = 0u32;
    for iov in table.chunks_exact(8) {
        let ptr = i32::from_le_bytes(iov[0..4].try_into().expect("4 bytes"));
        let len = i32::from_le_bytes(iov[4..8].try_into().expect("4 bytes"));
        let bytes = guest_bytes(&caller, "fd_write", ptr, len)?;
        let bytes = bytes.read_vec(0, bytes.len()).unwrap_or_default();
        caller.data_mut().output.write(usize::from(fd == 2), &bytes);
        total = total.wrapping_add(len.cast_unsigned());
    }
    write_u32(&caller, "fd_write", out, total)?;
    Ok(SUCCESS)
}

fn proc_exit(_caller: Caller<'_, Host>, code: i32) -> wasmtime::Result<()> {
    Err(wasmtime::Error::new(HostTrap::Exit(code)))
}

fn clock_time_get(
    caller: Caller<'_, Host>,
    id: i32,
    _precision: i64,
    out: i32,
) -> wasmtime::Result<i32> {
    let t = match id {
        0 => sys::realtime_ns(),
        1..=3 => sys::now_ns(),
        _ => return Ok(EINVAL),
    };
    write_u64(&caller, "clock_time_get", out, t)?;
    Ok(SUCCESS)
}

fn clock_res_get(caller: Caller<'_, Host>, id: i32, out: i32) -> wasmtime::Result<i32> {
    if !(0..=3).contains(&id) {
        return Ok(EINVAL);
    }
    write_u64(&caller, "clock_res_get", out, 1)?;
    Ok(SUCCESS)
}

fn random_get(mut caller: Caller<'_, Host>, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    let mut bytes = vec![0u8; len.cast_unsigned() as usize];
    let state = &mut caller.data_mut().rng;
    for chunk in bytes.chunks_mut(8) {
        // xorshift64*: deterministic per (seed, plugin), which is all "runs repeat" needs.
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let v = state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let dst = guest_bytes(&caller, "random_get", ptr, len)?;
    dst.write(0, &bytes);
    Ok(SUCCESS)
}

fn sizes_get(caller: Caller<'_, Host>, count: i32, size: i32) -> wasmtime::Result<i32> {
    write_u32(&caller, "args/environ_sizes_get", count, 0)?;
    write_u32(&caller, "args/environ_sizes_get", size, 0)?;
    Ok(SUCCESS)
}

fn fd_fdstat_get(caller: Caller<'_, Host>, fd: i32, out: i32) -> wasmtime::Result<i32> {
    if !(0..=2).contains(&fd) {
        return Ok(EBADF);
    }
    // fdstat: filetype u8 (2 = character device), flags u16, rights u64 base, u64 inheriting.
    let mut stat = [0u8; 24];
    stat[0] = 2;
    let rights: u64 = if fd == 0 { 1 << 1 } else { 1 << 6 }; // fd_read / fd_write
    stat[8..16].copy_from_slice(&rights.to_le_bytes());
    guest_bytes(&caller, "fd_fdstat_get", out, 24)?.write(0, &stat);
    Ok(SUCCESS)
}

fn fd_read(
    caller: Caller<'_, Host>,
    fd: i32,
    _iovs: i32,
    _n: i32,
    out: i32,
) -> wasmtime::Result<i32> {
    if fd != 0 {
        return Ok(EBADF);
    }
    // stdin is empty.
    write_u32(&caller, "fd_read", out, 0)?;
    Ok(SUCCESS)
}

/// Defines one provided function under its name.
type Define = fn(&mut Linker<Host>, &'static str) -> wasmtime::Result<()>;

/// The WASI functions the host provides: the one table that linking and `inspect` read.
const PROVIDED: &[(&str, Define)] = &[
    ("fd_write", |l, n| {
        l.func_wrap(MODULE, n, fd_write).map(drop)
    }),
    ("fd_read", |l, n| l.func_wrap(MODULE, n, fd_read).map(drop)),
    ("proc_exit", |l, n| {
        l.func_wrap(MODULE, n, proc_exit).map(drop)
    }),
    ("clock_time_get", |l, n| {
        l.func_wrap(MODULE, n, clock_time_get).map(drop)
    }),
    ("clock_res_get", |l, n| {
        l.func_wrap(MODULE, n, clock_res_get).map(drop)
    }),
    ("random_get", |l, n| {
        l.func_wrap(MODULE, n, random_get).map(drop)
    }),
    ("args_sizes_get", |l, n| {
        l.func_wrap(MODULE, n, sizes_get).map(drop)
    }),
    ("environ_sizes_get", |l, n| {
        l.func_wrap(MODULE, n, sizes_get).map(drop)
    }),
    ("args_get", |l, n| {
        l.func_wrap(MODULE, n, |_: Caller<'_, Host>, _: i32, _: i32| SUCCESS)
            .map(drop)
    }),
    ("environ_get", |l, n| {
        l.func_wrap(MODULE, n, |_: Caller<'_, Host>, _: i32, _: i32| SUCCESS)
            .map(drop)
    }),
    ("fd_fdstat_get", |l, n| {
        l.func_wrap(MODULE, n, fd_fdstat_get).map(drop)
    }),
    ("fd_prestat_get", |l, n| {
        l.func_wrap(MODULE, n, |_: Caller<'_, Host>, _: i32, _: i32| EBADF)
            .map(drop)
    }),
    ("fd_prestat_dir_name", |l, n| {
        l.func_wrap(MODULE, n, |_: Caller<'_, Host>, _: i32, _: i32, _: i32| {
            EBADF
        })
        .map(drop)
    }),
    ("fd_close", |l, n| {
        l.func_wrap(MODULE, n, |_: Caller<'_, Host>, fd: i32| {
            if (0..=2).contains(&fd) {
                SUCCESS
            } else {
                EBADF
            }
        })
        .map(drop)
    }),
    ("fd_seek", |l, n| {
        l.func_wrap(
            MODULE,
            n,
            |_: Caller<'_, Host>, fd: i32, _: i64, _: i32, _: i32| {
                if (0..=2).contains(&fd) { ESPIPE } else { EBADF }
            },
        )
        .map(drop)
    }),
    ("sched_yield", |l, n| {
        l.func_wrap(MODULE, n, |_: Caller<'_, Host>| SUCCESS)
            .map(drop)
    }),
];

/// Whether the host provides WASI function `name` (anything else returns ENOSYS).
pub fn provides(name: &str) -> bool {
    PROVIDED.iter().any(|(n, _)| *n == name)
}

/// Defines every provided WASI function, and an ENOSYS stub for every other WASI function
/// that `module` imports.
pub fn add_to_linker(linker: &mut Linker<Host>, module: &Module) -> wasmtime::Result<()> {
    for (name, define) in PROVIDED {
        define(linker, name)?;
    }
    define_enosys(linker, module)
}

fn define_enosys(linker: &mut Linker<Host>, module: &Module) -> wasmtime::Result<()> {
    for import in module.imports() {
        if import.module() != MODULE || provides(import.name()) {
            continue;
        }
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let results: Vec<_> = ty.results().collect();
        linker.func_new(
            MODULE,
            import.name(),
            ty.clone(),
            move |_, _, out: &mut [Val]| {
                if let Some(slot) = out.first_mut() {
                    *slot = match results[0] {
                        wasmtime::ValType::I64 => Val::I64(ENOSYS as i64),
                        _ => Val::I32(ENOSYS),
                    };
                }
                Ok(())
            },
        )?;
    }
    Ok(())
}
