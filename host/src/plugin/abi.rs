//! The complete list of host functions a plugin may call: ABI v0.1.0, module
//! `wasm-ipc:plugin/host@0.1.0`. The contract is `wit/wasm-ipc.wit`; the conformance test
//! (`tests/all/abi.rs`) checks this linker against it.

use wasmtime::{Caller, Linker, ValType};

use super::{Host, Port, Side};
use crate::backend::{Outgoing, PortError};
use crate::sys::{self, Window};

/// The import module of ABI v0.1.0.
pub const HOST_MODULE: &str = "wasm-ipc:plugin/host@0.1.0";

/// Negative result codes (the table in the WIT).
pub mod code {
    /// Every producer finished and the channel is drained / every consumer is gone.
    pub const CLOSED: i32 = -1;
    /// A plugin on the other side failed.
    pub const PEER_FAILED: i32 = -2;
    /// No port of that name.
    pub const UNKNOWN_PORT: i32 = -3;
    /// Longer than the slot.
    pub const TOO_LARGE: i32 = -4;
    /// No config value of that key.
    pub const NOT_FOUND: i32 = -5;
}

/// A core wasm value type, as the ABI table spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// i32
    I32,
    /// i64
    I64,
}

impl Ty {
    fn val(self) -> ValType {
        match self {
            Ty::I32 => ValType::I32,
            Ty::I64 => ValType::I64,
        }
    }
}

/// One host function: name and core signature.
#[derive(Debug, Clone, Copy)]
pub struct HostFn {
    /// Import name.
    pub name: &'static str,
    /// Core parameter types.
    pub params: &'static [Ty],
    /// Core result types.
    pub results: &'static [Ty],
}

impl HostFn {
    /// Parameter types as wasmtime value types.
    pub fn params(&self) -> Vec<ValType> {
        self.params.iter().map(|t| t.val()).collect()
    }
    /// Result types as wasmtime value types.
    pub fn results(&self) -> Vec<ValType> {
        self.results.iter().map(|t| t.val()).collect()
    }
    /// `(func (param i32 i32) (result i32))`.
    pub fn describe(&self) -> String {
        let list = |ts: &[Ty]| {
            ts.iter()
                .map(|t| match t {
                    Ty::I32 => " i32",
                    Ty::I64 => " i64",
                })
                .collect::<String>()
        };
        format!(
            "(func (param{}) (result{}))",
            list(self.params),
            list(self.results)
        )
    }
}

use Ty::{I32, I64};

/// Every function of [`HOST_MODULE`], in WIT order.
pub const HOST_FUNCTIONS: &[HostFn] = &[
    HostFn {
        name: "port",
        params: &[I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "loan",
        params: &[I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "publish",
        params: &[I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "receive",
        params: &[I32],
        results: &[I64],
    },
    HostFn {
        name: "release",
        params: &[I32],
        results: &[I32],
    },
    HostFn {
        name: "config",
        params: &[I32, I32, I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "report",
        params: &[I32, I32, I64],
        results: &[],
    },
    HostFn {
        name: "log",
        params: &[I32, I32, I32],
        results: &[],
    },
    HostFn {
        name: "now",
        params: &[],
        results: &[I64],
    },
];

/// How a plugin's run ended early, raised as a trap from a host call or the epoch callback.
#[derive(Debug, thiserror::Error)]
pub enum HostTrap {
    /// The run's deadline passed or the supervisor stopped it; says where the plugin was.
    #[error("{0}")]
    Interrupted(String),
    /// WASI `proc_exit`.
    #[error("exited with code {0}")]
    Exit(i32),
    /// The plugin broke the ABI's rules.
    #[error("{0}")]
    Misuse(String),
    /// The plugin tried to take more of a resource than its limit.
    #[error("{0}")]
    Limit(String),
}

fn misuse(caller: &Caller<'_, Host>, call: &str, what: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::new(HostTrap::Misuse(format!(
        "plugin `{}` misused `{call}`: {what}",
        caller.data().name
    )))
}

/// A view of `len` bytes at `ptr` of the caller's memory, or a misuse trap.
pub(crate) fn guest_bytes<'a>(
    caller: &'a Caller<'_, Host>,
    call: &str,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Window<'a>> {
    let memory = caller.data().memory.expect("memory is set before any call");
    Window::of(&memory, caller, ptr.cast_unsigned(), len.cast_unsigned()).ok_or_else(|| {
        misuse(
            caller,
            call,
            format_args!(
                "{} bytes at {:#x} lie outside its memory",
                len.cast_unsigned(),
                ptr.cast_unsigned()
            ),
        )
    })
}

fn guest_str(
    caller: &Caller<'_, Host>,
    call: &str,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<String> {
    let window = guest_bytes(caller, call, ptr, len)?;
    let bytes = window.read_vec(0, window.len()).unwrap_or_default();
    String::from_utf8(bytes).map_err(|_| misuse(caller, call, "the string is not UTF-8"))
}

/// Maps a transport error to the ABI's code, or to a trap for interruptions.
fn port_result(
    caller: &mut Caller<'_, Host>,
    call: &str,
    port: &str,
    e: PortError,
) -> wasmtime::Result<i32> {
    match e {
        PortError::Closed => Ok(code::CLOSED),
        PortError::TooLarge { .. } => Ok(code::TOO_LARGE),
        PortError::PeerFailed(why) => {
            caller.data_mut().saw_peer_failure.get_or_insert(why);
            Ok(code::PEER_FAILED)
        }
        PortError::Interrupted(why) => Err(wasmtime::Error::new(HostTrap::Interrupted(format!(
            "interrupted in `{call}` on port `{port}`: {why}"
        )))),
    }
}

/// The port behind handle `h`, or a misuse trap.
fn port_index(caller: &Caller<'_, Host>, call: &str, h: i32) -> wasmtime::Result<usize> {
    let n = caller.data().ports.len();
    usize::try_from(h).ok().filter(|&i| i < n).ok_or_else(|| {
        misuse(
            caller,
            call,
            format_args!("port handle {h} was never returned by `port`"),
        )
    })
}

/// The window of port `i` and the host state beside it, both borrowed from `caller`.
fn window_of<'a>(caller: &'a mut Caller<'_, Host>, i: usize) -> (Window<'a>, &'a mut Host) {
    let memory = caller.data().memory.expect("memory is set before any call");
    let (bytes, host) = memory.data_and_store_mut(caller);
    let port = &host.ports[i];
    let win = Window::in_memory(bytes, port.window, port.spec.window_len)
        .expect("windows were checked against memory at set-up and memory never shrinks");
    (win, host)
}

fn port(mut caller: Caller<'_, Host>, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    let name = guest_str(&caller, "port", ptr, len)?;
    let found = caller
        .data_mut()
        .ports
        .iter()
        .position(|p| p.spec.name == name);
    // A handle is an index into the ports, which the scenario's few ports bound far below 2^31.
    Ok(found
        .and_then(|i| i32::try_from(i).ok())
        .unwrap_or(code::UNKNOWN_PORT))
}

/// The name of port `i`, for messages (only on error paths: no allocation per message).
fn name_of(caller: &Caller<'_, Host>, i: usize) -> String {
    caller.data().ports[i].spec.name.clone()
}

/// A misuse trap about port `i`: `what` gets the port's name.
fn port_misuse(
    caller: &Caller<'_, Host>,
    call: &str,
    i: usize,
    what: impl Fn(&str) -> String,
) -> wasmtime::Error {
    let name = name_of(caller, i);
    misuse(caller, call, what(&name))
}

fn loan(mut caller: Caller<'_, Host>, h: i32, len: i32) -> wasmtime::Result<i32> {
    let i = port_index(&caller, "loan", h)?;
    let (win, host) = window_of(&mut caller, i);
    let Host { ports, stop, .. } = host;
    let port = &mut ports[i];
    let window = port.window;
    let Side::Out { tx, loan, .. } = &mut port.side else {
        return Err(port_misuse(&caller, "loan", i, |n| {
            format!("port `{n}` is an input")
        }));
    };
    // Guest lengths and addresses are u32 in the WIT; the core signature carries them as i32.
    let len = len.cast_unsigned();
    match tx.loan(win, len, stop) {
        Ok(off) => {
            *loan = Some((off, len));
            Ok((window + off).cast_signed())
        }
        Err(e) => {
            let name = name_of(&caller, i);
            port_result(&mut caller, "loan", &name, e)
        }
    }
}

fn publish(mut caller: Caller<'_, Host>, h: i32, len: i32) -> wasmtime::Result<i32> {
    let i = port_index(&caller, "publish", h)?;
    let (win, host) = window_of(&mut caller, i);
    let Host {
        ports,
        stop,
        verify,
        ..
    } = host;
    let Port { side, meter, .. } = &mut ports[i];
    let Side::Out {
        tx,
        loan,
        digest,
        messages,
    } = side
    else {
        return Err(port_misuse(&caller, "publish", i, |n| {
            format!("port `{n}` is an input")
        }));
    };
    let Some((off, loaned)) = *loan else {
        return Err(port_misuse(&caller, "publish", i, |n| {
            format!("no loan on port `{n}`")
        }));
    };
    let len = len.cast_unsigned();
    if len > loaned {
        return Err(port_misuse(&caller, "publish", i, |n| {
            format!("{len} bytes published on port `{n}`, but only {loaned} were loaned")
        }));
    }
    *loan = None;
    if *verify {
        digest.update(&u64::from(len).to_le_bytes());
        win.hash(digest, off as usize, len as usize);
    }
    let msg = Outgoing {
        off,
        len,
        publish_ns: sys::now_ns(),
    };
    match tx.publish(win, meter, msg, stop) {
        Ok(()) => {
            *messages += 1;
            Ok(0)
        }
        Err(e) => {
            let name = name_of(&caller, i);
            port_result(&mut caller, "publish", &name, e)
        }
    }
}

fn receive(mut caller: Caller<'_, Host>, h: i32) -> wasmtime::Result<i64> {
    let i = port_index(&caller, "receive", h)?;
    let (win, host) = window_of(&mut caller, i);
    let Host {
        ports,
        stop,
        verify,
        latency,
        ..
    } = host;
    let Port {
        side,
        meter,
        window,
        ..
    } = &mut ports[i];
    let window = *window;
    let Side::In {
        rx,
        held,
        digests,
        messages,
        bytes,
    } = side
    else {
        return Err(port_misuse(&caller, "receive", i, |n| {
            format!("port `{n}` is an output")
        }));
    };
    if held.is_some() {
        return Err(port_misuse(&caller, "receive", i, |n| {
            format!("a second `receive` on port `{n}` before `release`")
        }));
    }
    match rx.receive(win, meter, stop) {
        Ok(d) => {
            let now = sys::now_ns();
            let end = d.off as u64 + d.len as u64;
            if end > win.len() as u64 || d.link >= digests.len() {
                // A transport bug, never a plugin's doing: fail loudly.
                return Err(wasmtime::format_err!(
                    "transport returned {}+{} outside the {}-byte window of port `{}`",
                    d.off,
                    d.len,
                    win.len(),
                    name_of(&caller, i)
                ));
            }
            if *verify {
                let digest = &mut digests[d.link];
                digest.update(&u64::from(d.len).to_le_bytes());
                win.hash(digest, d.off as usize, d.len as usize);
            }
            *held = Some(d);
            *messages += 1;
            *bytes += u64::from(d.len);
            let _ = latency.record(now.saturating_sub(d.publish_ns).max(1));
            Ok(((u64::from(window + d.off) << 32) | u64::from(d.len)).cast_signed())
        }
        Err(e) => {
            let name = name_of(&caller, i);
            port_result(&mut caller, "receive", &name, e).map(i64::from)
        }
    }
}

fn release(mut caller: Caller<'_, Host>, h: i32) -> wasmtime::Result<i32> {
    let i = port_index(&caller, "release", h)?;
    let Side::In { rx, held, .. } = &mut caller.data_mut().ports[i].side else {
        return Err(port_misuse(&caller, "release", i, |n| {
            format!("port `{n}` is an output")
        }));
    };
    if held.take().is_none() {
        return Err(port_misuse(&caller, "release", i, |n| {
            format!("nothing received on port `{n}`")
        }));
    }
    match rx.release() {
        Ok(()) => Ok(0),
        Err(e) => {
            let name = name_of(&caller, i);
            port_result(&mut caller, "release", &name, e)
        }
    }
}

fn config(
    mut caller: Caller<'_, Host>,
    kp: i32,
    kl: i32,
    out: i32,
    cap: i32,
) -> wasmtime::Result<i32> {
    let key = guest_str(&caller, "config", kp, kl)?;
    let Some(value) = caller.data_mut().config.get(&key).cloned() else {
        return Ok(code::NOT_FOUND);
    };
    let Ok(full) = i32::try_from(value.len()) else {
        return Err(misuse(
            &caller,
            "config",
            format_args!("the value of `{key}` is over 2 GiB"),
        ));
    };
    // n <= cap <= i32::MAX, so it fits the core i32.
    let n = full.min(cap.max(0));
    let dst = guest_bytes(&caller, "config", out, n)?;
    dst.write(0, &value.as_bytes()[..n.unsigned_abs() as usize]);
    Ok(full)
}

fn report(mut caller: Caller<'_, Host>, kp: i32, kl: i32, value: i64) -> wasmtime::Result<()> {
    let key = guest_str(&caller, "report", kp, kl)?;
    caller.data_mut().reports.insert(key, value);
    Ok(())
}

fn log(mut caller: Caller<'_, Host>, level: i32, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let msg = guest_str(&caller, "log", ptr, len)?;
    caller.data_mut().output.log(level.cast_unsigned(), &msg);
    Ok(())
}

fn now(_caller: Caller<'_, Host>) -> i64 {
    // CLOCK_MONOTONIC ns stay below 2^63 for 292 years of uptime.
    i64::try_from(sys::now_ns()).unwrap_or(i64::MAX)
}

/// Defines every function of [`HOST_FUNCTIONS`] in `linker`.
pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    let m = HOST_MODULE;
    linker.func_wrap(m, "port", port)?;
    linker.func_wrap(m, "loan", loan)?;
    linker.func_wrap(m, "publish", publish)?;
    linker.func_wrap(m, "receive", receive)?;
    linker.func_wrap(m, "release", release)?;
    linker.func_wrap(m, "config", config)?;
    linker.func_wrap(m, "report", report)?;
    linker.func_wrap(m, "log", log)?;
    linker.func_wrap(m, "now", now)?;
    Ok(())
}
