//! Component plugins: WebAssembly components on the world `wit/component/wasm-ipc.wit`
//! (Python through componentize-py, JavaScript through componentize-js), beside core modules.
//!
//! **Windows.** A component cannot see its ports' windows. They live in a memory of their own
//! ([`Windows`]: a wasmtime memory in a store of its own, on the engine's host memory, so the
//! `shm` backend maps its shared region over a window exactly as it does inside a core
//! module's memory), and the host functions copy: a guest's `list<u8>` into a window
//! (`publish`, `call`'s request, `reply`), read in place through [`WasmList`] without an
//! intermediate buffer; a delivered message out of the window into the list the host returns
//! (`receive`, `call`'s answer), which the canonical ABI then copies into the guest. Each copy
//! is counted in the port's `copied_bytes` ([`CopyMeter`]): one per message out, two per
//! message in.
//!
//! **One implementation.** Every port call runs the core ABI's own code (`abi::*_in` through
//! [`abi::Ctx`]): misuse traps, errors, digests, sequence ledgers, latencies and request/reply
//! bookkeeping are the same for both kinds of plugin.
//!
//! **WASI 0.2** (`wasmtime-wasi`), deny-by-default: no preopened directory, no network (no
//! socket address is allowed, name lookup is off), no environment variables or arguments,
//! an empty stdin; stdout and stderr are kept in memory (at most [`super::wasi::OUTPUT_BUDGET`]
//! bytes each) and forwarded with the plugin's name when `run` returns; the clocks are the
//! host's (the monotonic clock is `now`'s); random bytes come from generators seeded from the
//! system when the plugin starts. The synchronous WASI calls run their futures on
//! `wasmtime-wasi`'s own Tokio runtime, whose threads are started here, before the lock-down
//! (see [`LOCKDOWN_CALLS`]).

use anyhow::Context;
use wasmtime::component::{Component, ComponentType, Lift, Linker, Lower, ResourceTable, WasmList};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::Host;
use super::abi::{self, Ctx, code};
use crate::backend::{FdSource, PortSpec};
use crate::sys::{self, CopyMeter, Window};

/// The component world's package, current version.
pub const PACKAGE: &str = "wasm-ipc:component@0.1.0";

/// The instance a component imports the host functions from.
pub const HOST_INSTANCE: &str = "wasm-ipc:component/host@0.1.0";

/// The host functions of [`HOST_INSTANCE`], in WIT order.
pub const HOST_FUNCTIONS: &[&str] = &[
    "port", "publish", "receive", "client", "reply", "call", "config", "report", "log", "now",
];

/// Whether `bytes` is a WebAssembly component rather than a core module: the binary format's
/// header has the layer field (bytes 6–7) 1 for components, 0 for modules.
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes.starts_with(b"\0asm") && bytes[6..8] == [1, 0]
}

/// What a component worker may call besides `lockdown::ALLOWED`: `wasmtime-wasi`'s Tokio
/// runtime, started before the lock-down, keeps its threads parked on its event loop and
/// starts blocking threads when a WASI call needs one.
pub const LOCKDOWN_CALLS: &[(&str, i64, &str)] = &[
    (
        "epoll_wait",
        libc::SYS_epoll_wait,
        "WASI's Tokio runtime parking its threads",
    ),
    ("epoll_pwait", libc::SYS_epoll_pwait, "the same"),
    ("epoll_pwait2", libc::SYS_epoll_pwait2, "the same"),
    (
        "epoll_ctl",
        libc::SYS_epoll_ctl,
        "the runtime's event loop (de)registering its own wake-up",
    ),
    (
        "sched_getaffinity",
        libc::SYS_sched_getaffinity,
        "the runtime sizing itself",
    ),
];

/// The lock-down a component worker needs on top of its backends'.
pub fn lockdown() -> crate::backend::Lockdown {
    crate::backend::Lockdown {
        calls: LOCKDOWN_CALLS,
        threads: true,
    }
}

/// The WIT `error` of a port call.
#[derive(ComponentType, Lift, Lower, Debug, Clone, Copy, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
pub enum PortError {
    /// See the WIT.
    #[component(name = "closed")]
    Closed,
    /// See the WIT.
    #[component(name = "peer-failed")]
    PeerFailed,
    /// See the WIT.
    #[component(name = "too-large")]
    TooLarge,
}

/// The WIT error for a core ABI result code, or the value itself when it is not one.
fn checked(value: i64) -> wasmtime::Result<Result<i64, PortError>> {
    if value >= 0 {
        return Ok(Ok(value));
    }
    Ok(Err(match i32::try_from(value).unwrap_or(i32::MIN) {
        code::CLOSED => PortError::Closed,
        code::PEER_FAILED => PortError::PeerFailed,
        code::TOO_LARGE => PortError::TooLarge,
        other => wasmtime::bail!("the host returned the unexpected code {other}"),
    }))
}

/// The memory that holds a component's port windows: a wasmtime memory of the same engine in
/// a store of its own (so, host memory that never moves), 64 KiB-aligned windows one after
/// another from 64 KiB.
struct Windows {
    store: Store<()>,
    memory: wasmtime::Memory,
}

impl Windows {
    fn new(engine: &Engine, bytes: u64) -> anyhow::Result<Windows> {
        let pages = bytes.div_ceil(65536) + 1;
        let module = wasmtime::Module::new(
            engine,
            format!("(module (memory (export \"windows\") {pages}))"),
        )?;
        let mut store = Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
        let memory = instance
            .get_memory(&mut store, "windows")
            .context("the windows' memory")?;
        Ok(Windows { store, memory })
    }

    fn view(&self, off: u32, len: u32) -> Option<Window<'_>> {
        Window::of(&self.memory, &self.store, off, len)
    }
}

/// A component plugin's store data: the host state every plugin has, its windows and WASI.
pub struct ComponentState {
    /// The host state, as for a core module.
    pub host: Host,
    windows: Windows,
    wasi: WasiCtx,
    table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl std::fmt::Debug for ComponentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentState")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl ComponentState {
    /// Forwards what the plugin wrote to stdout and stderr, line by line with its name (once,
    /// when `run` returned); returns what it wrote to stderr.
    pub fn forward_output(&mut self) -> String {
        let out = self.stdout.contents();
        let err = self.stderr.contents();
        self.host.output.write(0, &out);
        self.host.output.write(1, &err);
        self.host.output.flush();
        String::from_utf8_lossy(&err).into_owned()
    }
}

impl Ctx for ComponentState {
    fn host(&self) -> &Host {
        &self.host
    }

    fn host_mut(&mut self) -> &mut Host {
        &mut self.host
    }

    fn window_of(&mut self, i: usize) -> (Window<'_>, &mut Host) {
        let port = &self.host.ports[i];
        let win = self
            .windows
            .view(port.window, port.spec.window_len)
            .expect("windows were placed inside their memory at set-up");
        (win, &mut self.host)
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

type Cx<'a> = StoreContextMut<'a, ComponentState>;

/// A component's `run` export.
pub type Run = wasmtime::component::TypedFunc<(), (i32,)>;

/// A WIT port handle as the core ABI's: a handle `port` never returned stays one.
fn handle(port: u32) -> i32 {
    i32::try_from(port).unwrap_or(i32::MAX)
}

/// A list's length as the core ABI's; one over 2 GiB is refused as too large by the loan.
fn length(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// The leg whose window holds window-memory address `at`.
fn leg_at(host: &Host, at: u32) -> Option<usize> {
    host.ports
        .iter()
        .position(|p| at >= p.window && at - p.window < p.spec.window_len.max(1))
}

/// Copies `data` (in the guest's memory) into the window memory at `at` (a loan's address),
/// counting the copy on the loaning leg.
fn fill(cx: &mut Cx<'_>, at: i64, data: &WasmList<u8>) -> wasmtime::Result<()> {
    let at = u32::try_from(at)?;
    let len = u32::try_from(data.len())?;
    let mut meter = CopyMeter::default();
    let leg = {
        let state = cx.data();
        let leg = leg_at(&state.host, at)
            .ok_or_else(|| wasmtime::format_err!("a loan outside every window"))?;
        let win = state
            .windows
            .view(at, len)
            .ok_or_else(|| wasmtime::format_err!("a loan outside the windows' memory"))?;
        let src = data.as_le_slice(&*cx);
        win.copy_in(&mut meter, 0, std::iter::once(src))?;
        leg
    };
    cx.data_mut().host.ports[leg].meter.absorb(meter);
    Ok(())
}

/// Copies the message at `ptr << 32 | len` (a `receive` or `call` result) out of the window
/// memory into the list the host returns, counting that copy and the canonical ABI's copy of
/// the list into the guest.
fn take(state: &mut ComponentState, value: i64) -> wasmtime::Result<Vec<u8>> {
    let value = value.cast_unsigned();
    let at = u32::try_from(value >> 32)?;
    let len = u32::try_from(value & u64::from(u32::MAX))?;
    let leg = leg_at(&state.host, at)
        .ok_or_else(|| wasmtime::format_err!("a message outside every window"))?;
    let mut meter = CopyMeter::default();
    let bytes = state
        .windows
        .view(at, len)
        .ok_or_else(|| wasmtime::format_err!("a message outside the windows' memory"))?
        .copy_out(&mut meter, 0, len as usize)?;
    meter.count_lowering(bytes.len());
    state.host.ports[leg].meter.absorb(meter);
    Ok(bytes)
}

fn port(cx: Cx<'_>, (name,): (String,)) -> wasmtime::Result<(Option<u32>,)> {
    let host = &cx.data().host;
    let found = host
        .handles
        .iter()
        .position(|h| h.name(&host.ports) == name);
    Ok((found.and_then(|i| u32::try_from(i).ok()),))
}

fn publish(
    mut cx: Cx<'_>,
    (port, data): (u32, WasmList<u8>),
) -> wasmtime::Result<(Result<(), PortError>,)> {
    let (h, len) = (handle(port), length(data.len()));
    let at = match checked(abi::loan_in(cx.data_mut(), h, len)?.into())? {
        Ok(at) => at,
        Err(e) => return Ok((Err(e),)),
    };
    fill(&mut cx, at, &data)?;
    let sent = checked(abi::publish_in(cx.data_mut(), h, len)?.into())?;
    Ok((sent.map(drop),))
}

fn receive(mut cx: Cx<'_>, (port,): (u32,)) -> wasmtime::Result<(Result<Vec<u8>, PortError>,)> {
    let h = handle(port);
    let got = checked(abi::receive_in(cx.data_mut(), h)?)?;
    Ok((delivered(cx.data_mut(), h, got)?,))
}

/// What a `receive` or `call` of handle `h` got, as the list it returns: the message copied
/// out of the window (which is then released), or the error.
fn delivered(
    state: &mut ComponentState,
    h: i32,
    got: Result<i64, PortError>,
) -> wasmtime::Result<Result<Vec<u8>, PortError>> {
    let value = match got {
        Ok(v) => v,
        Err(e) => return Ok(Err(e)),
    };
    let bytes = take(state, value)?;
    if let Err(e) = checked(abi::release_in(state, h)?.into())? {
        return Ok(Err(e));
    }
    Ok(Ok(bytes))
}

fn client(mut cx: Cx<'_>, (port,): (u32,)) -> wasmtime::Result<(u32,)> {
    let k = abi::client_in(cx.data_mut(), handle(port))?;
    Ok((u32::try_from(k)?,))
}

fn reply(
    mut cx: Cx<'_>,
    (port, client, data): (u32, u32, WasmList<u8>),
) -> wasmtime::Result<(Result<(), PortError>,)> {
    let (h, len) = (handle(port), length(data.len()));
    let k = i32::try_from(client).unwrap_or(i32::MAX);
    let at = match checked(abi::reply_loan_in(cx.data_mut(), h, k, len)?.into())? {
        Ok(at) => at,
        Err(e) => return Ok((Err(e),)),
    };
    fill(&mut cx, at, &data)?;
    let sent = checked(abi::reply_in(cx.data_mut(), h, len)?.into())?;
    Ok((sent.map(drop),))
}

fn call(
    mut cx: Cx<'_>,
    (port, request): (u32, WasmList<u8>),
) -> wasmtime::Result<(Result<Vec<u8>, PortError>,)> {
    let (h, len) = (handle(port), length(request.len()));
    let at = match checked(abi::loan_in(cx.data_mut(), h, len)?.into())? {
        Ok(at) => at,
        Err(e) => return Ok((Err(e),)),
    };
    fill(&mut cx, at, &request)?;
    let got = checked(abi::call_in(cx.data_mut(), h, len)?)?;
    Ok((delivered(cx.data_mut(), h, got)?,))
}

fn config(cx: Cx<'_>, (key,): (String,)) -> wasmtime::Result<(Option<String>,)> {
    Ok((cx.data().host.config.get(&key).cloned(),))
}

fn report(mut cx: Cx<'_>, (key, value): (String, i64)) -> wasmtime::Result<()> {
    cx.data_mut().host.reports.insert(key, value);
    Ok(())
}

fn log(mut cx: Cx<'_>, (level, msg): (u32, String)) -> wasmtime::Result<()> {
    cx.data_mut().host.output.log(level, &msg);
    Ok(())
}

fn now(_cx: Cx<'_>, (): ()) -> wasmtime::Result<(u64,)> {
    Ok((sys::now_ns(),))
}

/// Defines [`HOST_INSTANCE`]'s functions in `linker`.
pub fn add_to_linker(linker: &mut Linker<ComponentState>) -> wasmtime::Result<()> {
    let mut host = linker.instance(HOST_INSTANCE)?;
    host.func_wrap("port", port)?;
    host.func_wrap("publish", publish)?;
    host.func_wrap("receive", receive)?;
    host.func_wrap("client", client)?;
    host.func_wrap("reply", reply)?;
    host.func_wrap("call", call)?;
    host.func_wrap("config", config)?;
    host.func_wrap("report", report)?;
    host.func_wrap("log", log)?;
    host.func_wrap("now", now)?;
    Ok(())
}

/// The linker every component plugin is instantiated with: WASI 0.2 and [`HOST_INSTANCE`].
fn linker(engine: &Engine) -> wasmtime::Result<Linker<ComponentState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    add_to_linker(&mut linker)?;
    Ok(linker)
}

/// Checks a component against the component world: every import is one the host serves
/// (WASI 0.2, [`HOST_INSTANCE`]) with the type the host gives it, and it exports `run`.
pub fn check(engine: &Engine, component: &Component) -> anyhow::Result<()> {
    let linker = linker(engine)?;
    if let Err(e) = linker.instantiate_pre(component) {
        anyhow::bail!(
            "does not meet the component world {PACKAGE} (wit/component/wasm-ipc.wit): {e:#}"
        );
    }
    anyhow::ensure!(
        component.get_export_index(None, "run").is_some(),
        "does not meet the component world {PACKAGE}: it exports no `run` (fix: export \
         `run: func() -> s32`)"
    );
    Ok(())
}

/// Instantiates a component plugin: places its ports' windows in a memory of their own,
/// opens its transports there, links WASI 0.2 (deny-by-default) and the host functions.
/// Returns the store and the `run` export.
pub fn instantiate(
    engine: &Engine,
    component: &Component,
    mut host: Host,
    ports: Vec<PortSpec>,
    fds: &mut dyn FdSource,
) -> anyhow::Result<(Store<ComponentState>, Run)> {
    let round = |n: u32| u64::from(n).div_ceil(65536) * 65536;
    let total: u64 = ports.iter().map(|p| round(p.window_len)).sum();
    anyhow::ensure!(
        total < 1 << 31,
        "the ports' windows take {total} bytes, more than 2 GiB"
    );
    let windows = Windows::new(engine, 65536 + total)?;
    let mut at = 65536u32;
    for spec in ports {
        let len = spec.window_len;
        let name = spec.name.clone();
        let view = windows
            .view(at, len)
            .context("a window beyond its memory")?;
        host.add_port(spec, at, view, fds)
            .with_context(|| format!("opening port `{name}`"))?;
        at += u32::try_from(round(len))?;
    }
    host.link_handles()?;
    // The runtime the synchronous WASI calls block on starts its threads now, before the
    // lock-down forbids starting them with other flags.
    wasmtime_wasi::runtime::in_tokio(async {});
    let budget = usize::try_from(super::wasi::OUTPUT_BUDGET)?;
    let stdout = MemoryOutputPipe::new(budget);
    let stderr = MemoryOutputPipe::new(budget);
    let wasi = WasiCtx::builder()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_ip_name_lookup(false)
        .allow_tcp(false)
        .allow_udp(false)
        .build();
    let linker = linker(engine)?;
    let stop = host.stop.clone();
    let mut store = Store::new(
        engine,
        ComponentState {
            host,
            windows,
            wasi,
            table: ResourceTable::new(),
            stdout,
            stderr,
        },
    );
    store.limiter(|state| &mut state.host.limiter);
    super::arm_epoch(&mut store, stop);
    let instance = linker
        .instantiate(&mut store, component)
        .map_err(anyhow::Error::from)
        .context("instantiating")?;
    let run = instance
        .get_typed_func::<(), (i32,)>(&mut store, "run")
        .map_err(anyhow::Error::from)
        .context("export `run`")?;
    Ok((store, run))
}

/// The guest's own account of its failure, from what it wrote to stderr: a Python traceback's
/// exception line and where it was raised (`ValueError: boom (at app.py:12, in step)`), a
/// JavaScript exception likewise (`RangeError: boom (at app.js:8, in step)`), else the last
/// line it wrote.
pub fn guest_error(stderr: &str) -> Option<String> {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    if let Some(t) = lines.iter().rposition(|l| l.starts_with("Traceback ")) {
        // The frames are indented; the first line after them that is not is the exception.
        let rest = &lines[t + 1..];
        let end = rest
            .iter()
            .position(|l| !l.starts_with(char::is_whitespace))
            .unwrap_or(rest.len());
        if let Some(exception) = rest.get(end) {
            let place = rest[..end]
                .iter()
                .rev()
                .find_map(|l| frame(l.trim()))
                .map(|(file, line, func)| format!(" (at {file}:{line}, in {func})"))
                .unwrap_or_default();
            return Some(format!("{exception}{place}"));
        }
    }
    // A JavaScript exception, as the SDK's `main` writes it (`Uncaught RangeError: …`, then
    // `Stack:` and frames `func@file:line:column`), else as the engine does (the message,
    // then `Stack:`).
    let uncaught = lines.iter().rposition(|l| l.starts_with("Uncaught "));
    let stack = lines.iter().rposition(|l| l.trim() == "Stack:");
    let said = match (uncaught, stack) {
        (Some(u), _) => Some((lines[u]["Uncaught ".len()..].to_string(), u)),
        (None, Some(s)) if s > 0 => Some((lines[s - 1].to_string(), s - 1)),
        _ => None,
    };
    if let Some((exception, at)) = said {
        let place = lines[at + 1..]
            .iter()
            .find_map(|l| js_frame(l.trim()))
            .map(|(file, line, func)| format!(" (at {file}:{line}, in {func})"))
            .unwrap_or_default();
        return Some(format!("{exception}{place}"));
    }
    lines.last().map(|l| l.to_string())
}

/// `fail@faulty.js:8:32` as (`faulty.js`, 8, `fail`).
fn js_frame(line: &str) -> Option<(&str, u32, &str)> {
    let (func, rest) = line.split_once('@')?;
    let mut parts = rest.rsplitn(3, ':');
    let _column = parts.next()?;
    let number = parts.next()?.parse().ok()?;
    let path = parts.next()?;
    let file = path.rsplit('/').next().unwrap_or(path);
    Some((file, number, if func.is_empty() { "?" } else { func }))
}

/// `File "/0/app.py", line 12, in step` as (`app.py`, 12, `step`).
fn frame(line: &str) -> Option<(&str, u32, &str)> {
    let rest = line.strip_prefix("File \"")?;
    let (path, rest) = rest.split_once("\", line ")?;
    let (number, func) = rest.split_once(", in ")?;
    let file = path.rsplit('/').next().unwrap_or(path);
    Some((file, number.parse().ok()?, func))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_traceback_gives_its_exception_and_where_it_was_raised() {
        let err = "Traceback (most recent call last):\n  File \"/0/app.py\", line 30, in run\n  \
                   File \"/0/app.py\", line 12, in step\nValueError: boom\n\nthread '<unnamed>' \
                   (1) panicked at runtime/src/lib.rs:1280:25:\nPython function threw an \
                   unexpected exception\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            guest_error(err).unwrap(),
            "ValueError: boom (at app.py:12, in step)"
        );
        assert_eq!(guest_error("just a line\n\n").unwrap(), "just a line");
        let js = "Uncaught RangeError: the fixture threw\nStack:\n  fail@faulty.js:8:32\n  \
                  run@faulty.js:24:7\nthe fixture threw\nStack:\n  fail@faulty.js:8:32\n\n\
                  Redirecting call to abort() to mozalloc_abort\n";
        assert_eq!(
            guest_error(js).unwrap(),
            "RangeError: the fixture threw (at faulty.js:8, in fail)"
        );
        let bare = "the fixture threw\nStack:\n  fail@/tmp/x/faulty.js:8:32\n";
        assert_eq!(
            guest_error(bare).unwrap(),
            "the fixture threw (at faulty.js:8, in fail)"
        );
        assert_eq!(guest_error(""), None);
    }

    #[test]
    fn components_and_modules_are_told_apart_by_their_header() {
        assert!(is_component(b"\0asm\x0d\x00\x01\x00"));
        assert!(!is_component(b"\0asm\x01\x00\x00\x00"));
        assert!(!is_component(b"\0as"));
    }
}
