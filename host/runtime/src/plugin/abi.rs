//! The complete list of host functions a plugin may call: ABI v0.2.0 (module
//! `wasm-ipc:plugin/host@0.2.0`), which is v0.1.0 (module `wasm-ipc:plugin/host@0.1.0`, still
//! served unchanged) plus request/reply. The contracts are `wit/wasm-ipc.wit` (0.2.0) and
//! `wit/0.1.0/wasm-ipc.wit`; the conformance test (`tests/all/abi.rs`) checks this linker
//! against both.

use wasmtime::{Caller, Linker, ValType};

use super::{Handle, Host, Port, Serving, Side};
use crate::backend::{Outgoing, PortError, Sender};
use crate::sys::{self, Window};

/// The import module of the current ABI, v0.2.0.
pub const HOST_MODULE: &str = "wasm-ipc:plugin/host@0.2.0";

/// The import module of ABI v0.1.0: its nine functions, served unchanged.
pub const HOST_MODULE_0_1: &str = "wasm-ipc:plugin/host@0.1.0";

/// Every ABI version the host serves, oldest first: (version, import module).
pub const VERSIONS: [(&str, &str); 2] = [("0.1.0", HOST_MODULE_0_1), ("0.2.0", HOST_MODULE)];

/// The ABI version whose import module is `module`.
pub fn version_of_module(module: &str) -> Option<&'static str> {
    VERSIONS.iter().find(|(_, m)| *m == module).map(|(v, _)| *v)
}

/// The functions of ABI `version` ("0.1.0", "0.2.0"), in WIT order.
pub fn functions_of(version: &str) -> impl Iterator<Item = &'static HostFn> + '_ {
    HOST_FUNCTIONS
        .iter()
        .filter(move |f| version_key(f.since) <= version_key(version))
}

/// `"0.2.0"` as numbers, for ordering versions.
pub fn version_key(version: &str) -> Vec<u32> {
    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

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
    /// The ABI version that added it ("0.1.0", "0.2.0").
    pub since: &'static str,
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

/// Every function of [`HOST_MODULE`], in WIT order; those `since` "0.1.0" are also the
/// whole of [`HOST_MODULE_0_1`].
pub const HOST_FUNCTIONS: &[HostFn] = &[
    HostFn {
        name: "port",
        since: "0.1.0",
        params: &[I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "loan",
        since: "0.1.0",
        params: &[I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "publish",
        since: "0.1.0",
        params: &[I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "receive",
        since: "0.1.0",
        params: &[I32],
        results: &[I64],
    },
    HostFn {
        name: "release",
        since: "0.1.0",
        params: &[I32],
        results: &[I32],
    },
    HostFn {
        name: "config",
        since: "0.1.0",
        params: &[I32, I32, I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "report",
        since: "0.1.0",
        params: &[I32, I32, I64],
        results: &[],
    },
    HostFn {
        name: "log",
        since: "0.1.0",
        params: &[I32, I32, I32],
        results: &[],
    },
    HostFn {
        name: "now",
        since: "0.1.0",
        params: &[],
        results: &[I64],
    },
    HostFn {
        name: "client",
        since: "0.2.0",
        params: &[I32],
        results: &[I32],
    },
    HostFn {
        name: "reply-loan",
        since: "0.2.0",
        params: &[I32, I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "reply",
        since: "0.2.0",
        params: &[I32, I32],
        results: &[I32],
    },
    HostFn {
        name: "call",
        since: "0.2.0",
        params: &[I32, I32],
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

/// What the host functions work on: a plugin's host state and its ports' windows. A core
/// module's windows are in its linear memory (`Caller`); a component's are in host memory of
/// their own (`super::component`), which the component never sees.
pub(crate) trait Ctx {
    /// The host state.
    fn host(&self) -> &Host;
    /// The host state, to change.
    fn host_mut(&mut self) -> &mut Host;
    /// The window of port `i` and the host state beside it.
    fn window_of(&mut self, i: usize) -> (Window<'_>, &mut Host);
}

impl Ctx for Caller<'_, Host> {
    fn host(&self) -> &Host {
        self.data()
    }

    fn host_mut(&mut self) -> &mut Host {
        self.data_mut()
    }

    fn window_of(&mut self, i: usize) -> (Window<'_>, &mut Host) {
        let memory = self.data().memory.expect("memory is set before any call");
        let (bytes, host) = memory.data_and_store_mut(self);
        let port = &host.ports[i];
        let win = Window::in_memory(bytes, port.window, port.spec.window_len)
            .expect("windows were checked against memory at set-up and memory never shrinks");
        (win, host)
    }
}

fn misuse(caller: &impl Ctx, call: &str, what: impl std::fmt::Display) -> wasmtime::Error {
    wasmtime::Error::new(HostTrap::Misuse(format!(
        "plugin `{}` misused `{call}`: {what}",
        caller.host().name
    )))
}

/// A view of `len` bytes at `ptr` of the caller's memory, or a misuse trap.
pub(crate) fn guest_bytes<'a>(
    caller: &'a Caller<'_, Host>,
    call: &str,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Window<'a>> {
    let memory = caller.host().memory.expect("memory is set before any call");
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
    caller: &mut impl Ctx,
    call: &str,
    port: &str,
    e: PortError,
) -> wasmtime::Result<i32> {
    match e {
        PortError::Closed => Ok(code::CLOSED),
        PortError::TooLarge { .. } => Ok(code::TOO_LARGE),
        PortError::PeerFailed(why) => {
            caller.host_mut().saw_peer_failure.get_or_insert(why);
            Ok(code::PEER_FAILED)
        }
        PortError::Interrupted(why) => Err(wasmtime::Error::new(HostTrap::Interrupted(format!(
            "interrupted in `{call}` on port `{port}`: {why}"
        )))),
    }
}

/// What a call does with a port: it decides which leg of a request/reply port it means.
#[derive(Debug, Clone, Copy)]
enum Use {
    Loan,
    Publish,
    Receive,
    Release,
}

/// The handle `h`, or a misuse trap.
fn handle_of<'a>(caller: &'a impl Ctx, call: &str, h: i32) -> wasmtime::Result<&'a Handle> {
    usize::try_from(h)
        .ok()
        .and_then(|i| caller.host().handles.get(i))
        .ok_or_else(|| {
            misuse(
                caller,
                call,
                format_args!("port handle {h} was never returned by `port`"),
            )
        })
}

/// The leg of handle `h` that `call` works on, or a misuse trap.
fn leg_of(caller: &impl Ctx, call: &str, h: i32, want: Use) -> wasmtime::Result<usize> {
    match (handle_of(caller, call, h)?, want) {
        (Handle::Stream(i), _) => Ok(*i),
        (Handle::Client(c), Use::Loan) => Ok(c.request),
        (Handle::Client(c), Use::Release) => Ok(c.reply),
        (Handle::Client(c), Use::Publish | Use::Receive) => Err(misuse(
            caller,
            call,
            format_args!(
                "port `{}` is a client port: `loan` a request, then `call` sends it and \
                 returns the answer",
                c.name
            ),
        )),
        (Handle::Server(s), Use::Receive | Use::Release) => Ok(s.requests),
        (Handle::Server(s), Use::Loan | Use::Publish) => Err(misuse(
            caller,
            call,
            format_args!(
                "port `{}` is a server port: answer a request with `reply-loan` and `reply`",
                s.name
            ),
        )),
    }
}

fn port(mut caller: Caller<'_, Host>, ptr: i32, len: i32) -> wasmtime::Result<i32> {
    let name = guest_str(&caller, "port", ptr, len)?;
    let host = caller.host_mut();
    let found = host
        .handles
        .iter()
        .position(|h| h.name(&host.ports) == name);
    // A handle is an index into the ports, which the scenario's few ports bound far below 2^31.
    Ok(found
        .and_then(|i| i32::try_from(i).ok())
        .unwrap_or(code::UNKNOWN_PORT))
}

/// The name of port `i`, for messages (only on error paths: no allocation per message).
fn name_of(caller: &impl Ctx, i: usize) -> String {
    caller.host().ports[i].spec.name.clone()
}

/// A misuse trap about port `i`: `what` gets the port's name.
fn port_misuse(
    caller: &impl Ctx,
    call: &str,
    i: usize,
    what: impl Fn(&str) -> String,
) -> wasmtime::Error {
    let name = name_of(caller, i);
    misuse(caller, call, what(&name))
}

/// A transport's answer, or a trap (misuse).
type Leg<T> = wasmtime::Result<Result<T, PortError>>;

fn loan(mut caller: Caller<'_, Host>, h: i32, len: i32) -> wasmtime::Result<i32> {
    loan_in(&mut caller, h, len)
}

/// `loan` on whatever holds the plugin's state.
pub(crate) fn loan_in(caller: &mut impl Ctx, h: i32, len: i32) -> wasmtime::Result<i32> {
    let i = leg_of(caller, "loan", h, Use::Loan)?;
    match loan_leg(caller, "loan", i, len)? {
        Ok(ptr) => Ok(ptr),
        // A client's server no longer takes requests: its answers say how it ended.
        Err(PortError::Closed) if matches!(handle_of(caller, "loan", h)?, Handle::Client(_)) => {
            let Handle::Client(c) = handle_of(caller, "loan", h)? else {
                unreachable!("matched above");
            };
            let reply = c.reply;
            server_end(caller, "loan", reply)
        }
        Err(e) => {
            let name = name_of(caller, i);
            port_result(caller, "loan", &name, e)
        }
    }
}

/// How long one port call waited, for its link's longest wait: what the call added to the
/// port's own count of its waits (`waited_ns`, which reads the clock only on a path that
/// waits: a call that found room or a message reads none), or, for a port that cannot see every
/// wait of its calls ([`Sender::counts_every_wait`]), the whole call on the coarse clock.
enum CallWait {
    /// The port's `waited_ns` before the call.
    Counted(u64),
    /// The coarse clock before the call.
    Clocked(u64),
}

impl CallWait {
    fn sender(tx: &dyn Sender) -> CallWait {
        if tx.counts_every_wait() {
            CallWait::Counted(tx.waited_ns())
        } else {
            CallWait::Clocked(sys::coarse_now_ns())
        }
    }

    /// The call's wait, ns, given the port's `waited_ns` after it.
    fn ended(self, waited_ns: u64) -> u64 {
        match self {
            CallWait::Counted(before) => waited_ns.saturating_sub(before),
            CallWait::Clocked(begin) => sys::coarse_now_ns().saturating_sub(begin),
        }
    }
}

/// `loan` on leg `i`: the pointer of the loan.
fn loan_leg(caller: &mut impl Ctx, call: &str, i: usize, len: i32) -> Leg<i32> {
    let (win, host) = caller.window_of(i);
    let Host { ports, stop, .. } = host;
    let port = &mut ports[i];
    let window = port.window;
    let Side::Out {
        tx,
        loan,
        refused,
        longest_wait_ns,
        ..
    } = &mut port.side
    else {
        return Err(port_misuse(caller, call, i, |n| {
            format!("port `{n}` is an input")
        }));
    };
    // Guest lengths and addresses are u32 in the WIT; the core signature carries them as i32.
    let len = len.cast_unsigned();
    let wait = CallWait::sender(&**tx);
    let r = tx.loan(win, len, stop);
    *longest_wait_ns = (*longest_wait_ns).max(wait.ended(tx.waited_ns()));
    if matches!(r, Err(PortError::Closed)) {
        *refused += 1;
    }
    Ok(r.map(|off| {
        *loan = Some((off, len));
        (window + off).cast_signed()
    }))
}

fn publish(mut caller: Caller<'_, Host>, h: i32, len: i32) -> wasmtime::Result<i32> {
    publish_in(&mut caller, h, len)
}

/// `publish` on whatever holds the plugin's state.
pub(crate) fn publish_in(caller: &mut impl Ctx, h: i32, len: i32) -> wasmtime::Result<i32> {
    let i = leg_of(caller, "publish", h, Use::Publish)?;
    match publish_leg(caller, "publish", i, len)? {
        Ok(()) => Ok(0),
        Err(e) => {
            let name = name_of(caller, i);
            port_result(caller, "publish", &name, e)
        }
    }
}

/// `publish` on leg `i`.
fn publish_leg(caller: &mut impl Ctx, call: &str, i: usize, len: i32) -> Leg<()> {
    let (win, host) = caller.window_of(i);
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
        refused,
        longest_wait_ns,
    } = side
    else {
        return Err(port_misuse(caller, call, i, |n| {
            format!("port `{n}` is an input")
        }));
    };
    let Some((off, loaned)) = *loan else {
        return Err(port_misuse(caller, call, i, |n| {
            format!("no loan on port `{n}`")
        }));
    };
    let len = len.cast_unsigned();
    if len > loaned {
        return Err(port_misuse(caller, call, i, |n| {
            let verb = if call == "publish" {
                "published"
            } else {
                "sent"
            };
            format!("{len} bytes {verb} on port `{n}`, but only {loaned} were loaned")
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
    let wait = CallWait::sender(&**tx);
    let r = tx.publish(win, meter, msg, stop);
    *longest_wait_ns = (*longest_wait_ns).max(wait.ended(tx.waited_ns()));
    if matches!(r, Err(PortError::Closed)) {
        *refused += 1;
    }
    Ok(r.map(|()| *messages += 1))
}

fn receive(mut caller: Caller<'_, Host>, h: i32) -> wasmtime::Result<i64> {
    receive_in(&mut caller, h)
}

/// `receive` on whatever holds the plugin's state.
pub(crate) fn receive_in(caller: &mut impl Ctx, h: i32) -> wasmtime::Result<i64> {
    let i = leg_of(caller, "receive", h, Use::Receive)?;
    let serving = matches!(handle_of(caller, "receive", h)?, Handle::Server(_));
    loop {
        match receive_leg(caller, "receive", i)? {
            Ok((value, link)) => {
                if serving {
                    let host = caller.host_mut();
                    host.served += 1;
                    let Some(Handle::Server(s)) = host.handles.get_mut(h.unsigned_abs() as usize)
                    else {
                        unreachable!("checked above");
                    };
                    s.pending[link] = true;
                    s.current = u32::try_from(link).ok();
                }
                return Ok(value);
            }
            // A client that failed does not stop its server: forget it and serve the others.
            Err(PortError::PeerFailed(why)) if serving => {
                let host = caller.host_mut();
                let Side::In { rx, .. } = &mut host.ports[i].side else {
                    unreachable!("a server's request leg is an input");
                };
                let gone = rx.forget_failed();
                if gone.is_empty() {
                    let name = name_of(caller, i);
                    return port_result(caller, "receive", &name, PortError::PeerFailed(why))
                        .map(i64::from);
                }
                host.clients_lost += gone.len() as u64;
                if let Some(Handle::Server(s)) = host.handles.get_mut(h.unsigned_abs() as usize) {
                    for &k in &gone {
                        if let Some(lost) = s.lost.get_mut(k) {
                            *lost = true;
                        }
                    }
                }
                let msg = format!(
                    "client {} of port `{}` failed ({why}); serving the others",
                    gone.iter()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    host.ports[i].spec.name
                );
                host.output.log(1, &msg);
            }
            Err(e) => {
                let name = name_of(caller, i);
                return port_result(caller, "receive", &name, e).map(i64::from);
            }
        }
    }
}

/// `receive` on leg `i`: the ABI's `ptr << 32 | len`, and the link it came on.
fn receive_leg(caller: &mut impl Ctx, call: &str, i: usize) -> Leg<(i64, usize)> {
    let (win, host) = caller.window_of(i);
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
        per_link,
        longest_wait_ns,
        ended,
        ledgers,
        ..
    } = side
    else {
        return Err(port_misuse(caller, call, i, |n| {
            format!("port `{n}` is an output")
        }));
    };
    if held.is_some() {
        return Err(port_misuse(caller, call, i, |n| {
            if call == "call" {
                format!(
                    "a `call` on port `{n}` while the previous answer is held: `release` it first"
                )
            } else {
                format!("a second `receive` on port `{n}` before `release`")
            }
        }));
    }
    let wait = CallWait::Counted(rx.waited_ns());
    let r = rx.receive(win, meter, stop);
    let waited = wait.ended(rx.waited_ns());
    let d = match r {
        Ok(d) => d,
        Err(e) => {
            // A wait that ended without a message (end of stream, a failure, a stop) is every
            // link's: none of them delivered.
            for w in longest_wait_ns.iter_mut() {
                *w = (*w).max(waited);
            }
            *ended |= matches!(e, PortError::Closed);
            return Ok(Err(e));
        }
    };
    let now = sys::now_ns();
    let end = d.off as u64 + d.len as u64;
    if end > win.len() as u64 || d.link >= digests.len() {
        // A transport bug, never a plugin's doing: fail loudly.
        return Err(wasmtime::format_err!(
            "transport returned {}+{} outside the {}-byte window of port `{}`",
            d.off,
            d.len,
            win.len(),
            name_of(caller, i)
        ));
    }
    if *verify {
        let digest = &mut digests[d.link];
        digest.update(&u64::from(d.len).to_le_bytes());
        win.hash(digest, d.off as usize, d.len as usize);
    }
    *held = Some(d);
    *messages += 1;
    per_link[d.link] += 1;
    ledgers[d.link].deliver(d.seq);
    longest_wait_ns[d.link] = longest_wait_ns[d.link].max(waited);
    *bytes += u64::from(d.len);
    let _ = latency.record(now.saturating_sub(d.publish_ns).max(1));
    Ok(Ok((
        ((u64::from(window + d.off) << 32) | u64::from(d.len)).cast_signed(),
        d.link,
    )))
}

/// Whether leg `i` (an input) holds a message.
fn holds(caller: &impl Ctx, i: usize) -> bool {
    matches!(&caller.host().ports[i].side, Side::In { held: Some(_), .. })
}

fn release(mut caller: Caller<'_, Host>, h: i32) -> wasmtime::Result<i32> {
    release_in(&mut caller, h)
}

/// `release` on whatever holds the plugin's state.
pub(crate) fn release_in(caller: &mut impl Ctx, h: i32) -> wasmtime::Result<i32> {
    let i = leg_of(caller, "release", h, Use::Release)?;
    let Side::In { rx, held, .. } = &mut caller.host_mut().ports[i].side else {
        return Err(port_misuse(caller, "release", i, |n| {
            format!("port `{n}` is an output")
        }));
    };
    if held.take().is_none() {
        return Err(port_misuse(caller, "release", i, |n| {
            format!("nothing received on port `{n}`")
        }));
    }
    match rx.release() {
        Ok(()) => Ok(0),
        Err(e) => {
            let name = name_of(caller, i);
            port_result(caller, "release", &name, e)
        }
    }
}

/// The server port behind handle `h`, or a misuse trap.
fn serving<'a>(caller: &'a mut impl Ctx, call: &str, h: i32) -> wasmtime::Result<&'a mut Serving> {
    if !matches!(handle_of(caller, call, h)?, Handle::Server(_)) {
        let name = handle_of(caller, call, h)?
            .name(&caller.host().ports)
            .to_string();
        return Err(misuse(
            caller,
            call,
            format_args!("port `{name}` is not a server port"),
        ));
    }
    match caller.host_mut().handles.get_mut(h.unsigned_abs() as usize) {
        Some(Handle::Server(s)) => Ok(s),
        _ => unreachable!("checked above"),
    }
}

fn client(mut caller: Caller<'_, Host>, h: i32) -> wasmtime::Result<i32> {
    client_in(&mut caller, h)
}

/// `client` on whatever holds the plugin's state.
pub(crate) fn client_in(caller: &mut impl Ctx, h: i32) -> wasmtime::Result<i32> {
    let s = serving(caller, "client", h)?;
    match s.current {
        // Clients are bounded by the instance limit, far below 2^31.
        Some(k) => Ok(k.cast_signed()),
        None => {
            let name = s.name.clone();
            Err(misuse(
                caller,
                "client",
                format_args!("no request was received on port `{name}` yet"),
            ))
        }
    }
}

fn reply_loan(
    mut caller: Caller<'_, Host>,
    h: i32,
    client: i32,
    len: i32,
) -> wasmtime::Result<i32> {
    reply_loan_in(&mut caller, h, client, len)
}

/// `reply-loan` on whatever holds the plugin's state.
pub(crate) fn reply_loan_in(
    caller: &mut impl Ctx,
    h: i32,
    client: i32,
    len: i32,
) -> wasmtime::Result<i32> {
    let s = serving(caller, "reply-loan", h)?;
    let Some(k) = usize::try_from(client)
        .ok()
        .filter(|&k| s.pending.get(k) == Some(&true))
    else {
        let (name, n) = (s.name.clone(), s.pending.len());
        return Err(misuse(
            caller,
            "reply-loan",
            format_args!(
                "client {client} of port `{name}` has no outstanding call (its clients are \
                 0..{n}; each call is answered once, after `receive` returned it)"
            ),
        ));
    };
    let leg = s.replies[k];
    s.answering = None;
    if s.lost[k] {
        // The server learnt from its requests that this client failed: its call ends with it.
        s.pending[k] = false;
        return Ok(code::CLOSED);
    }
    match loan_leg(caller, "reply-loan", leg, len)? {
        Ok(ptr) => {
            serving(caller, "reply-loan", h)?.answering = u32::try_from(k).ok();
            Ok(ptr)
        }
        // That client is gone: its call ends with it; the server goes on.
        Err(PortError::Closed | PortError::PeerFailed(_)) => {
            serving(caller, "reply-loan", h)?.pending[k] = false;
            Ok(code::CLOSED)
        }
        Err(e) => {
            let name = name_of(caller, leg);
            port_result(caller, "reply-loan", &name, e)
        }
    }
}

fn reply(mut caller: Caller<'_, Host>, h: i32, len: i32) -> wasmtime::Result<i32> {
    reply_in(&mut caller, h, len)
}

/// `reply` on whatever holds the plugin's state.
pub(crate) fn reply_in(caller: &mut impl Ctx, h: i32, len: i32) -> wasmtime::Result<i32> {
    let s = serving(caller, "reply", h)?;
    let Some(k) = s.answering.take() else {
        let name = s.name.clone();
        return Err(misuse(
            caller,
            "reply",
            format_args!("no `reply-loan` on port `{name}`"),
        ));
    };
    let k = k as usize;
    let leg = s.replies[k];
    let sent = publish_leg(caller, "reply", leg, len)?;
    serving(caller, "reply", h)?.pending[k] = false;
    match sent {
        Ok(()) => Ok(0),
        Err(PortError::Closed | PortError::PeerFailed(_)) => Ok(code::CLOSED),
        Err(e) => {
            let name = name_of(caller, leg);
            port_result(caller, "reply", &name, e)
        }
    }
}

/// A client whose server no longer takes requests: how the server's answers to it end says
/// whether it finished (closed) or failed (peer-failed). It closes or aborts its outputs
/// before it stops taking requests, so this wait is short.
fn server_end(caller: &mut impl Ctx, call: &str, reply: usize) -> wasmtime::Result<i32> {
    let name = name_of(caller, reply);
    match receive_leg(caller, call, reply)? {
        Ok(_) => Err(wasmtime::format_err!(
            "transport delivered an answer on port `{name}` without a call"
        )),
        Err(e) => port_result(caller, call, &name, e),
    }
}

fn call(mut caller: Caller<'_, Host>, h: i32, len: i32) -> wasmtime::Result<i64> {
    call_in(&mut caller, h, len)
}

/// `call` on whatever holds the plugin's state.
pub(crate) fn call_in(caller: &mut impl Ctx, h: i32, len: i32) -> wasmtime::Result<i64> {
    let Handle::Client(c) = handle_of(caller, "call", h)? else {
        let name = handle_of(caller, "call", h)?
            .name(&caller.host().ports)
            .to_string();
        return Err(misuse(
            caller,
            "call",
            format_args!("port `{name}` is not a client port"),
        ));
    };
    let (request, reply) = (c.request, c.reply);
    if holds(caller, reply) {
        return Err(port_misuse(caller, "call", reply, |n| {
            format!("a `call` on port `{n}` while the previous answer is held: `release` it first")
        }));
    }
    let start = sys::now_ns();
    match publish_leg(caller, "call", request, len)? {
        Ok(()) => {}
        // The server no longer takes requests: its answers say how it ended.
        Err(PortError::Closed) => return server_end(caller, "call", reply).map(i64::from),
        Err(e) => {
            let name = name_of(caller, request);
            return port_result(caller, "call", &name, e).map(i64::from);
        }
    }
    match receive_leg(caller, "call", reply)? {
        Ok((value, _)) => {
            let host = caller.host_mut();
            host.calls += 1;
            let _ = host
                .call_latency
                .record(sys::now_ns().saturating_sub(start).max(1));
            Ok(value)
        }
        Err(e) => {
            let name = name_of(caller, reply);
            port_result(caller, "call", &name, e).map(i64::from)
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
    let Some(value) = caller.host_mut().config.get(&key).cloned() else {
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
    caller.host_mut().reports.insert(key, value);
    Ok(())
}

fn log(mut caller: Caller<'_, Host>, level: i32, ptr: i32, len: i32) -> wasmtime::Result<()> {
    let msg = guest_str(&caller, "log", ptr, len)?;
    caller.host_mut().output.log(level.cast_unsigned(), &msg);
    Ok(())
}

fn now(_caller: Caller<'_, Host>) -> i64 {
    // CLOCK_MONOTONIC ns stay below 2^63 for 292 years of uptime.
    i64::try_from(sys::now_ns()).unwrap_or(i64::MAX)
}

/// Defines every function of [`HOST_FUNCTIONS`] in `linker`: ABI v0.1.0's under both
/// modules, v0.2.0's under its own. A module may import from both (the functions are the
/// same); its ABI version is the newest it imports.
pub fn add_to_linker(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    for (version, m) in VERSIONS {
        linker.func_wrap(m, "port", port)?;
        linker.func_wrap(m, "loan", loan)?;
        linker.func_wrap(m, "publish", publish)?;
        linker.func_wrap(m, "receive", receive)?;
        linker.func_wrap(m, "release", release)?;
        linker.func_wrap(m, "config", config)?;
        linker.func_wrap(m, "report", report)?;
        linker.func_wrap(m, "log", log)?;
        linker.func_wrap(m, "now", now)?;
        if version_key(version) >= version_key("0.2.0") {
            linker.func_wrap(m, "client", client)?;
            linker.func_wrap(m, "reply-loan", reply_loan)?;
            linker.func_wrap(m, "reply", reply)?;
            linker.func_wrap(m, "call", call)?;
        }
    }
    Ok(())
}
