//! Plugins: the wasmtime engine, compiling and checking modules, and the per-worker host state
//! behind the ABI (`abi.rs`, the list of host functions) and WASI preview 1 (`wasi.rs`).

pub mod abi;
pub mod cache;
pub mod component;
pub mod inspect;
pub mod wasi;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use wasmtime::{Config, Engine, Module};
use xxhash_rust::xxh3::Xxh3;

use crate::backend::{self, Delivery, Direction, FdSource, Leg, PortSpec, Receiver, Sender, Stop};
use crate::control::LimitHit;
use crate::scenario::Limits;
use crate::sys::{self, CopyMeter};
use wasm_ipc_wire::sequence::Ledger;
pub use wasm_ipc_wire::{Figures, LinkFigures};

/// Builds the engine every process of a run uses. Supervisor and workers must agree on it:
/// workers load the supervisor's compiled code.
pub fn engine() -> anyhow::Result<Engine> {
    engine_with_stack(crate::scenario::DEFAULT_STACK)
}

/// [`engine`] with a wasm stack limit of `stack` bytes (`plugin.stack`): a runtime setting, so
/// the supervisor's compiled code loads into it unchanged.
pub fn engine_with_stack(stack: u64) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config.max_wasm_stack(usize::try_from(stack)?);
    // Timeouts reach code that never calls the host: the worker's ticker bumps the epoch.
    config.epoch_interruption(true);
    // A store into a read-only page must become a trap, not a dead process.
    config.signals_based_traps(true);
    // Linear memory is the host's (`sys::HostMemory`): it never moves, so the `shm` backend
    // can map shared pages over a window. Copy-on-write images would map over it themselves
    // (and panic on modules with data segments), and the pooling allocator is never used: it
    // ignores host memory.
    config.with_host_memory(Arc::new(sys::HostMemoryCreator));
    config.memory_init_cow(false);
    // `WASM_IPC_BASELINE_CPU=1`: compile for the architecture's baseline, without the host's
    // CPU features, so that workers can run on a CPU that lacks them (valgrind's).
    if std::env::var_os("WASM_IPC_BASELINE_CPU").is_some_and(|v| v == "1") {
        config.target(&format!("{}-unknown-linux-gnu", std::env::consts::ARCH))?;
    }
    Ok(Engine::new(&config)?)
}

/// Checks a compiled module against ABI v0 (see [`inspect::inspect`]); the error lists every
/// failed point with its fix. `needs_windows` is true when the scenario gives the plugin ports.
pub fn check_module(module: &Module, needs_windows: bool) -> anyhow::Result<()> {
    let findings = inspect::inspect(module, needs_windows);
    let failed: Vec<String> = findings
        .iter()
        .filter(|f| f.verdict == inspect::Verdict::Fail)
        .map(|f| match &f.fix {
            Some(fix) => format!("{} (fix: {fix})", f.what),
            None => f.what.clone(),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("does not meet the plugin ABI: {}", failed.join("; "))
    }
}

/// Compiles `path` (.wasm or .wat).
pub fn compile(engine: &Engine, bytes: &[u8]) -> anyhow::Result<Module> {
    Ok(Module::new(engine, bytes)?)
}

/// Compiles plugin code: a component (told by its header) or a core module (.wasm or .wat).
pub fn compile_code(engine: &Engine, bytes: &[u8]) -> anyhow::Result<sys::Code> {
    Ok(if component::is_component(bytes) {
        sys::Code::Component(wasmtime::component::Component::new(engine, bytes)?)
    } else {
        sys::Code::Module(compile(engine, bytes)?)
    })
}

/// Checks compiled plugin code: a core module against the core ABI ([`check_module`]), a
/// component against the component world ([`component::check`]).
pub fn check_code(engine: &Engine, code: &sys::Code, needs_windows: bool) -> anyhow::Result<()> {
    match code {
        sys::Code::Module(m) => check_module(m, needs_windows),
        sys::Code::Component(c) => component::check(engine, c),
    }
}

/// A port of a running plugin.
pub(crate) struct Port {
    pub spec: PortSpec,
    /// Offset of the window in the plugin's memory.
    pub window: u32,
    pub side: Side,
    /// Payload the transport copied for this port, counted by the copy primitives.
    pub meter: CopyMeter,
}

pub(crate) enum Side {
    Out {
        tx: Box<dyn Sender>,
        /// Offset in the window and length of the current loan.
        loan: Option<(u32, u32)>,
        /// Digest of everything published (the same for every link of a fan-out).
        digest: Box<Xxh3>,
        messages: u64,
        /// `loan`s and `publish`es refused because every consumer was gone.
        refused: u64,
        /// The longest wait of a `loan` or `publish`, ns (`abi::CallWait`).
        longest_wait_ns: u64,
    },
    In {
        rx: Box<dyn Receiver>,
        held: Option<Delivery>,
        /// One digest per link.
        digests: Vec<Xxh3>,
        messages: u64,
        bytes: u64,
        /// Per link: messages received from it.
        per_link: Vec<u64>,
        /// Per link: the longest wait of a `receive` it ended, ns (`abi::CallWait`).
        longest_wait_ns: Vec<u64>,
        /// Whether `receive` returned end of stream.
        ended: bool,
        /// Per link: what its sequence numbers said of loss, duplication and order.
        ledgers: Vec<Ledger>,
        /// Per link: the count its end of stream carried ([`Receiver::ends`]), taken when the
        /// port detached.
        ends: Vec<Option<u32>>,
    },
}

/// What a port handle (`port`'s result) stands for: a stream port is one leg (one
/// [`Port`]); a request/reply port (ABI 0.2.0) is several.
pub(crate) enum Handle {
    /// A stream port: the index of its leg.
    Stream(usize),
    /// A client port.
    Client(Calling),
    /// A server port.
    Server(Box<Serving>),
}

impl Handle {
    fn name<'a>(&'a self, ports: &'a [Port]) -> &'a str {
        match self {
            Handle::Stream(i) => &ports[*i].spec.name,
            Handle::Client(c) => &c.name,
            Handle::Server(s) => &s.name,
        }
    }
}

/// A client port: requests go out on one leg, answers come back on the other.
pub(crate) struct Calling {
    pub name: String,
    /// The request leg (an output).
    pub request: usize,
    /// The reply leg (an input).
    pub reply: usize,
}

/// A server port and what it owes its clients.
pub(crate) struct Serving {
    pub name: String,
    /// The request leg (an input; link `k` is client `k`).
    pub requests: usize,
    /// The reply leg to each client (outputs).
    pub replies: Vec<usize>,
    /// Per client: a request was received and not answered yet.
    pub pending: Vec<bool>,
    /// Per client: its requests failed and the server forgot it. Its answers are not sent
    /// (`reply-loan` says closed) whatever its reply leg's transport has heard yet: on
    /// `zenoh` the news of a dead client reaches the two legs separately.
    pub lost: Vec<bool>,
    /// The client of the request `receive` returned last.
    pub current: Option<u32>,
    /// The client the current reply loan is for.
    pub answering: Option<u32>,
}

/// Enforces a plugin's memory and table limits (wasmtime's `ResourceLimiter`), and records the
/// first one it hit. Memory is limited to `plugin.memory` *beyond* the port windows, so one
/// limit lets the same plugin run on every backend, whose windows differ.
#[derive(Debug)]
pub struct Limiter {
    name: String,
    limits: Limits,
    windows: u64,
    /// The limit the plugin ran into.
    pub hit: Option<LimitHit>,
}

impl Limiter {
    /// A limiter for plugin `name` whose ports take `windows` bytes.
    pub fn new(name: &str, limits: Limits, windows: u64) -> Limiter {
        Limiter {
            name: name.to_string(),
            limits,
            windows,
            hit: None,
        }
    }

    fn memory_limit(&self) -> u64 {
        self.limits.memory.saturating_add(self.windows)
    }
}

impl Limiter {
    /// Records the first limit hit and refuses the growth with `message` (a trap, not a
    /// failed `memory.grow`: the verdict must name the limit).
    fn refuse(
        &mut self,
        resource: &str,
        limit: u64,
        tried: u64,
        message: String,
    ) -> wasmtime::Result<bool> {
        self.hit.get_or_insert(LimitHit {
            resource: resource.into(),
            limit,
            tried,
        });
        Err(wasmtime::Error::new(abi::HostTrap::Limit(message)))
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        let limit = self.memory_limit();
        if desired <= limit {
            return Ok(true);
        }
        let message = format!(
            "plugin `{}` hit its memory limit: it tried to grow its linear memory to {} B ({}), \
             beyond its limit of {} B: plugin.memory = {} B plus {} B of port windows",
            self.name,
            desired,
            crate::scenario::human_bytes(desired as f64),
            limit,
            self.limits.memory,
            self.windows
        );
        self.refuse("memory", limit, desired, message)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        let limit = self.limits.table_elements;
        if desired <= limit {
            return Ok(true);
        }
        let message = format!(
            "plugin `{}` hit its table limit: it tried to grow a table to {desired} elements, \
             beyond its limit of {limit} (plugin.table_elements)",
            self.name
        );
        self.refuse("table", limit, desired, message)
    }
}

/// Everything a plugin's host functions can reach: the store's data.
pub struct Host {
    /// Plugin name (prefix of its output and of error messages).
    pub name: String,
    pub(crate) config: BTreeMap<String, String>,
    /// Every leg of every port, in spec order.
    pub(crate) ports: Vec<Port>,
    /// What `port` hands out: index = handle.
    pub(crate) handles: Vec<Handle>,
    pub(crate) memory: Option<wasmtime::Memory>,
    pub(crate) stop: Arc<Stop>,
    pub(crate) verify: bool,
    pub(crate) reports: BTreeMap<String, i64>,
    pub(crate) output: wasi::Output,
    pub(crate) rng: u64,
    pub(crate) latency: Histogram<u64>,
    /// The host's timing of each answered `call`, request published → answer in the window.
    pub(crate) call_latency: Histogram<u64>,
    /// Answered calls.
    pub(crate) calls: u64,
    /// Requests received on server ports.
    pub(crate) served: u64,
    /// Clients that failed while a server port served them.
    pub(crate) clients_lost: u64,
    /// Set when a host call told the plugin that a peer failed.
    pub(crate) saw_peer_failure: Option<String>,
    pub(crate) windows: BTreeMap<String, u64>,
    /// Memory and table limits.
    pub limiter: Limiter,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("name", &self.name).finish()
    }
}

impl Host {
    /// New host state for plugin `name`.
    pub fn new(
        name: &str,
        config: BTreeMap<String, String>,
        stop: Arc<Stop>,
        verify: bool,
        seed: u64,
        limiter: Limiter,
    ) -> Host {
        Host {
            name: name.to_string(),
            config,
            ports: Vec::new(),
            handles: Vec::new(),
            memory: None,
            stop,
            verify,
            reports: BTreeMap::new(),
            output: wasi::Output::new(name),
            rng: seed ^ xxhash_rust::xxh3::xxh3_64(name.as_bytes()) | 1,
            latency: Histogram::new(3).expect("3 significant figures is valid"),
            call_latency: Histogram::new(3).expect("3 significant figures is valid"),
            calls: 0,
            served: 0,
            clients_lost: 0,
            saw_peer_failure: None,
            windows: BTreeMap::new(),
            limiter,
        }
    }

    /// Opens `spec`'s transport over the window at `window` (its view is `view`), taking the
    /// port's fds from `fds`, and adds the port.
    pub fn add_port(
        &mut self,
        spec: PortSpec,
        window: u32,
        view: sys::Window<'_>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<()> {
        let window_key = match (spec.leg, spec.direction) {
            (Leg::Stream, _) => spec.name.clone(),
            (Leg::Request, _) => format!("{}(requests)", spec.name),
            (Leg::Reply { .. }, Direction::In) => format!("{}(replies)", spec.name),
            (Leg::Reply { client }, Direction::Out) => format!("{}(replies:{client})", spec.name),
        };
        self.windows.insert(window_key, view.addr() as u64);
        let imp = backend::of(spec.backend);
        let side = match spec.direction {
            Direction::Out => Side::Out {
                tx: imp.open_sender(&spec, view, fds)?,
                loan: None,
                digest: Box::new(Xxh3::new()),
                messages: 0,
                refused: 0,
                longest_wait_ns: 0,
            },
            Direction::In => Side::In {
                rx: imp.open_receiver(&spec, view, fds)?,
                held: None,
                digests: spec.links.iter().map(|_| Xxh3::new()).collect(),
                messages: 0,
                bytes: 0,
                per_link: vec![0; spec.links.len()],
                longest_wait_ns: vec![0; spec.links.len()],
                ended: false,
                ledgers: vec![Ledger::default(); spec.links.len()],
                ends: vec![None; spec.links.len()],
            },
        };
        self.ports.push(Port {
            spec,
            window,
            side,
            meter: CopyMeter::default(),
        });
        Ok(())
    }

    /// Waits until every port's transport is connected (`Sender::connect`,
    /// `Receiver::connect`): after this nothing published can be lost for want of a peer.
    pub fn connect_ports(&mut self) -> anyhow::Result<()> {
        for port in &mut self.ports {
            let r = match &mut port.side {
                Side::Out { tx, .. } => tx.connect(&self.stop),
                Side::In { rx, .. } => rx.connect(&self.stop),
            };
            r.with_context(|| format!("connecting port `{}`", port.spec.name))?;
        }
        Ok(())
    }

    /// Groups the legs added by [`Host::add_port`] into the handles `port` returns: a stream
    /// leg is a port; the legs of one request/reply port (same name) are one client or server
    /// port.
    pub fn link_handles(&mut self) -> anyhow::Result<()> {
        let mut handles: Vec<Handle> = Vec::new();
        for (i, port) in self.ports.iter().enumerate() {
            let spec = &port.spec;
            if spec.leg == Leg::Stream {
                handles.push(Handle::Stream(i));
                continue;
            }
            let known = handles
                .iter()
                .position(|h| h.name(&self.ports) == spec.name);
            let bad = || anyhow::anyhow!("port `{}`: inconsistent request/reply legs", spec.name);
            match (spec.leg, spec.direction, known) {
                (Leg::Request, Direction::Out, None) => handles.push(Handle::Client(Calling {
                    name: spec.name.clone(),
                    request: i,
                    reply: usize::MAX,
                })),
                (Leg::Request, Direction::In, None) => {
                    handles.push(Handle::Server(Box::new(Serving {
                        name: spec.name.clone(),
                        requests: i,
                        replies: Vec::new(),
                        pending: Vec::new(),
                        lost: Vec::new(),
                        current: None,
                        answering: None,
                    })))
                }
                (Leg::Reply { .. }, Direction::In, Some(h)) => match &mut handles[h] {
                    Handle::Client(c) if c.reply == usize::MAX => c.reply = i,
                    _ => return Err(bad()),
                },
                (Leg::Reply { client }, Direction::Out, Some(h)) => match &mut handles[h] {
                    Handle::Server(s) if client as usize == s.replies.len() => {
                        s.replies.push(i);
                        s.pending.push(false);
                        s.lost.push(false);
                    }
                    _ => return Err(bad()),
                },
                _ => return Err(bad()),
            }
        }
        for h in &handles {
            let whole = match h {
                Handle::Stream(_) => true,
                Handle::Client(c) => c.reply != usize::MAX,
                Handle::Server(s) => s.replies.len() == self.ports[s.requests].spec.links.len(),
            };
            anyhow::ensure!(
                whole,
                "port `{}`: its request/reply legs are incomplete",
                h.name(&self.ports)
            );
        }
        self.handles = handles;
        Ok(())
    }

    /// Ends every port once `run` returned: outputs close cleanly (end of stream) when the
    /// plugin succeeded and abort otherwise; inputs detach.
    pub fn close_ports(&mut self, succeeded: bool) {
        // Outputs first: a server's clients learn how it ended from its answers, not from
        // requests that no longer go through.
        for port in &mut self.ports {
            match &mut port.side {
                Side::Out { tx, .. } if succeeded => tx.close(&self.stop),
                Side::Out { tx, .. } => tx.abort(),
                Side::In { .. } => {}
            }
        }
        for port in &mut self.ports {
            if let Side::In { rx, ends, .. } = &mut port.side {
                *ends = rx.ends();
                rx.detach();
            }
        }
    }

    /// The plugin's figures, once `run` returned.
    pub fn figures(&self) -> Figures {
        let mut f = Figures {
            reports: self.reports.clone(),
            windows: self.windows.clone(),
            ..Figures::default()
        };
        let mut add = |counters: backend::Counters| {
            for (k, v) in counters {
                *f.counters.entry(k.to_string()).or_default() += v;
            }
        };
        for port in &self.ports {
            let counters = match &port.side {
                Side::Out {
                    tx,
                    digest,
                    messages,
                    refused,
                    longest_wait_ns,
                    ..
                } => {
                    f.messages_sent += messages;
                    let dropped = tx.dropped();
                    let round_trips = tx.round_trips();
                    for (k, key) in port.spec.links.iter().enumerate() {
                        f.sent
                            .insert(key.clone(), format!("{:016x}", digest.digest()));
                        f.links_out.insert(
                            key.clone(),
                            LinkFigures {
                                port: port.spec.name.clone(),
                                messages: *messages,
                                refused: *refused,
                                ended: false,
                                longest_wait_ns: *longest_wait_ns,
                                wait_ns: tx.waited_ns(),
                                window: port.spec.capacity,
                                round_trip_ns: round_trips.get(k).copied().flatten(),
                                dropped: dropped.get(k).copied().unwrap_or(0),
                                ..LinkFigures::default()
                            },
                        );
                    }
                    tx.counters()
                }
                Side::In {
                    rx,
                    digests,
                    messages,
                    bytes,
                    per_link,
                    longest_wait_ns,
                    ended,
                    ledgers,
                    ends,
                    ..
                } => {
                    f.messages_received += messages;
                    f.bytes_received += bytes;
                    for (k, (key, d)) in port.spec.links.iter().zip(digests).enumerate() {
                        f.received
                            .insert(key.clone(), format!("{:016x}", d.digest()));
                        let mut ledger = ledgers.get(k).cloned().unwrap_or_default();
                        if let Some(Some(count)) = ends.get(k) {
                            ledger.end(*count);
                        }
                        f.links_in.insert(
                            key.clone(),
                            LinkFigures {
                                port: port.spec.name.clone(),
                                messages: per_link.get(k).copied().unwrap_or(0),
                                refused: 0,
                                ended: *ended,
                                longest_wait_ns: longest_wait_ns.get(k).copied().unwrap_or(0),
                                // The port's: a wait ends with whichever link delivers.
                                wait_ns: rx.waited_ns(),
                                lost: ledger.lost,
                                duplicated: ledger.duplicated,
                                reordered: ledger.reordered,
                                ..LinkFigures::default()
                            },
                        );
                    }
                    rx.counters()
                }
            };
            f.copied_bytes += port.meter.bytes();
            add(counters);
        }
        f.futex_waits = f.counters.get("futex_waits").copied().unwrap_or(0);
        f.lost_wakeups = f.counters.get("lost_wakeups").copied().unwrap_or(0);
        f.latency = self
            .latency
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        f.output_dropped = self.output.dropped();
        f.calls = self.calls;
        f.call_latency = self
            .call_latency
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect();
        f.served = self.served;
        f.clients_lost = self.clients_lost;
        f
    }
}

/// A plugin instantiated in its worker, ready to run: a core module or a component.
pub enum Running {
    /// A core module: its store and its `run`.
    Core(wasmtime::Store<Host>, wasmtime::TypedFunc<(), i32>),
    /// A component: its store and its `run`.
    Component(wasmtime::Store<component::ComponentState>, component::Run),
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_component() {
            "Running::Component"
        } else {
            "Running::Core"
        })
    }
}

impl Running {
    /// Instantiates `code` with `host`, opening `ports` (their fds from `fds`).
    pub fn new(
        engine: &Engine,
        code: &sys::Code,
        mut host: Host,
        ports: Vec<PortSpec>,
        fds: &mut dyn FdSource,
    ) -> anyhow::Result<Running> {
        Ok(match code {
            sys::Code::Module(m) => {
                let (store, run) = instantiate(engine, m, host, ports, fds)?;
                Running::Core(store, run)
            }
            sys::Code::Component(c) => {
                // A component's windows are not in its memory: its limit is its own.
                host.limiter.windows = 0;
                let (store, run) = component::instantiate(engine, c, host, ports, fds)?;
                Running::Component(store, run)
            }
        })
    }

    /// Whether the plugin is a component.
    pub fn is_component(&self) -> bool {
        matches!(self, Running::Component(..))
    }

    /// Calls the plugin's `run`.
    pub fn run(&mut self) -> wasmtime::Result<i32> {
        match self {
            Running::Core(store, run) => run.call(store, ()),
            Running::Component(store, run) => {
                let (code,) = run.call(&mut *store, ())?;
                Ok(code)
            }
        }
    }

    /// The host state.
    pub fn host_mut(&mut self) -> &mut Host {
        match self {
            Running::Core(store, _) => store.data_mut(),
            Running::Component(store, _) => &mut store.data_mut().host,
        }
    }

    /// Once `run` returned: forwards what a component wrote to stdout and stderr, and returns
    /// its own account of a failure (a Python traceback's last frame and exception, a
    /// JavaScript error), if it wrote one. A core module's output went out as it wrote it.
    pub fn finish_output(&mut self) -> Option<String> {
        match self {
            Running::Core(..) => None,
            Running::Component(store, _) => {
                component::guest_error(&store.data_mut().forward_output())
            }
        }
    }
}

/// Makes every epoch tick (the worker's ticker) check the stop and the deadline, so that wasm
/// code that never calls the host is interrupted too.
pub(crate) fn arm_epoch<T: 'static>(store: &mut wasmtime::Store<T>, stop: Arc<Stop>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_ctx| {
        if stop.interrupted() || sys::now_ns() >= stop.deadline_ns() {
            Err(wasmtime::Error::new(abi::HostTrap::Interrupted(format!(
                "interrupted in wasm code: {}",
                match stop.error() {
                    crate::backend::PortError::Interrupted(why) => why,
                    _ => "the run's timeout passed".into(),
                }
            ))))
        } else {
            Ok(wasmtime::UpdateDeadline::Continue(1))
        }
    });
}

/// Instantiates a plugin: links the ABI and WASI, calls `_initialize`, and asks the plugin for
/// one window per port (`cabi_realloc`). Returns the store and the `run` function.
pub fn instantiate(
    engine: &Engine,
    module: &Module,
    host: Host,
    ports: Vec<PortSpec>,
    fds: &mut dyn FdSource,
) -> anyhow::Result<(wasmtime::Store<Host>, wasmtime::TypedFunc<(), i32>)> {
    let needs_windows = !ports.is_empty();
    check_module(module, needs_windows)?;
    let mut linker = wasmtime::Linker::new(engine);
    abi::add_to_linker(&mut linker)?;
    wasi::add_to_linker(&mut linker, module)?;
    let stop = host.stop.clone();
    let mut store = wasmtime::Store::new(engine, host);
    store.limiter(|host| &mut host.limiter);
    arm_epoch(&mut store, stop);
    let instance = linker
        .instantiate(&mut store, module)
        .map_err(anyhow::Error::from)
        .context("instantiating")?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .context("no `memory` export")?;
    store.data_mut().memory = Some(memory);
    if let Some(init) = instance.get_func(&mut store, "_initialize") {
        init.typed::<(), ()>(&store)?
            .call(&mut store, ())
            .map_err(anyhow::Error::from)
            .context("calling `_initialize`")?;
    }
    if needs_windows {
        let realloc =
            instance.get_typed_func::<(i32, i32, i32, i32), i32>(&mut store, "cabi_realloc")?;
        for spec in ports {
            let len = spec.window_len;
            let Ok(size_arg) = i32::try_from(len) else {
                bail!(
                    "port `{}` needs a {len}-byte window, more than a 32-bit plugin can allocate",
                    spec.name
                );
            };
            let ptr = realloc
                .call(&mut store, (0, 0, 65536, size_arg))
                .map_err(anyhow::Error::from)
                .with_context(|| format!("calling `cabi_realloc` for port `{}`", spec.name))?
                .cast_unsigned();
            let size = memory.data_size(&store) as u64;
            if ptr == 0 || !ptr.is_multiple_of(65536) {
                bail!(
                    "`cabi_realloc(0, 0, 65536, {len})` for port `{}` returned {ptr:#x}: a window must be a non-null, 64 KiB-aligned allocation",
                    spec.name
                );
            }
            if ptr as u64 + len as u64 > size || ptr as u64 + len as u64 > 1 << 31 {
                bail!(
                    "`cabi_realloc` for port `{}` returned {ptr:#x}+{len}, outside the plugin's {size}-byte memory (or above 2 GiB)",
                    spec.name
                );
            }
            if let Some(other) = store
                .data()
                .ports
                .iter()
                .find(|p| p.window < ptr + len && ptr < p.window + p.spec.window_len)
            {
                bail!(
                    "`cabi_realloc` returned overlapping windows for ports `{}` and `{}`",
                    other.spec.name,
                    spec.name
                );
            }
            let name = spec.name.clone();
            let (bytes, host) = memory.data_and_store_mut(&mut store);
            let view = sys::Window::in_memory(bytes, ptr, len).expect("checked above");
            host.add_port(spec, ptr, view, fds)
                .with_context(|| format!("opening port `{name}`"))?;
        }
    }
    store.data_mut().link_handles()?;
    let run = instance
        .get_typed_func::<(), i32>(&mut store, "run")
        .map_err(anyhow::Error::from)
        .context("export `run`")?;
    Ok((store, run))
}
