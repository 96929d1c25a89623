//! The resolved scenario: what [`Scenario::parse`] returns, with names checked, endpoints
//! resolved to plugin indices and defaults applied.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default [`Channel::slot_size`]: 64 KiB.
pub const DEFAULT_SLOT_SIZE: u32 = 64 * 1024;
/// Largest accepted [`Channel::slot_size`]: 256 MiB.
pub const MAX_SLOT_SIZE: u32 = 256 * 1024 * 1024;
/// Default [`Channel::capacity`].
pub const DEFAULT_CAPACITY: u32 = 16;
/// Largest accepted [`Channel::capacity`].
pub const MAX_CAPACITY: u32 = 65536;
/// Largest accepted [`RunConfig::repeat`].
pub const MAX_REPEAT: u32 = 1000;
/// Default [`RunConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default [`RunConfig::min_time`]: the measured time `compare` gathers per backend per sweep
/// point before it stops adding rounds.
pub const DEFAULT_MIN_TIME: Duration = Duration::from_secs(1);

/// Largest accepted [`RunConfig::min_time`].
pub const MAX_MIN_TIME: Duration = Duration::from_secs(3600);
/// Longest accepted [`RunConfig::timeout`]: 7 days (a run's deadline is a 64-bit nanosecond
/// count, and no benchmark or soak runs longer).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario file as given.
    pub path: PathBuf,
    /// Folder of the scenario file: relative paths and `build` commands start here.
    pub dir: PathBuf,
    /// The scenario's `name`.
    pub name: String,
    /// The scenario's optional `description`.
    pub description: Option<String>,
    /// The `[[host]]` tables, in file order; [`Plugin::host`] indexes this. Empty: every
    /// plugin runs on this machine.
    pub hosts: Vec<Host>,
    /// The `[[plugin]]` tables, in file order; [`Endpoint::plugin`] indexes this.
    pub plugins: Vec<Plugin>,
    /// The `[[channel]]` tables, in file order.
    pub channels: Vec<Channel>,
    /// The `[run]` table with defaults applied.
    pub run: RunConfig,
    /// The `[sweep]` table: the axes `compare` varies, in key order, the first varying slowest
    /// (empty: no sweep).
    pub sweep: Vec<SweepAxis>,
}

/// One axis of a `[sweep]`: the values it takes, each set at one or more paths of the
/// scenario (the paths of `--set`: `run.KEY`, `channel.N.KEY`, `plugin.NAME.KEY`,
/// `plugin.NAME.config.KEY`).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    /// The axis's name: its key in `[sweep]`.
    pub name: String,
    /// Where each value is set; several paths move as one (a payload size and its slot size).
    pub paths: Vec<String>,
    /// The values, as TOML text (`64`, `"4KiB"`, `"futex"`).
    pub values: Vec<String>,
    /// Companion paths (`with`), each with one value (TOML text) per value of the axis, set
    /// at the same point but not part of its name: a message count that shrinks as the
    /// payload grows, so every point runs about as long.
    pub with: Vec<(String, Vec<String>)>,
}

/// Most values one sweep axis may take.
pub const MAX_SWEEP_VALUES: usize = 64;
/// Most points (the product of the axes) one sweep may have.
pub const MAX_SWEEP_POINTS: usize = 1000;

/// One point of a sweep: the axis values as (axis name, value text), and the `PATH=VALUE`
/// overrides that make it.
pub type SweepPoint = (Vec<(String, String)>, Vec<String>);

impl Scenario {
    /// Every point of the sweep. One empty point when there is no sweep.
    pub fn sweep_points(&self) -> Vec<SweepPoint> {
        let mut points: Vec<SweepPoint> = vec![(Vec::new(), Vec::new())];
        for axis in &self.sweep {
            let mut next = Vec::with_capacity(points.len() * axis.values.len());
            for (named, sets) in &points {
                for (i, v) in axis.values.iter().enumerate() {
                    let mut named = named.clone();
                    named.push((axis.name.clone(), v.trim_matches('"').to_string()));
                    let mut sets = sets.clone();
                    sets.extend(axis.paths.iter().map(|p| format!("{p}={v}")));
                    sets.extend(axis.with.iter().map(|(p, w)| format!("{p}={}", w[i])));
                    next.push((named, sets));
                }
            }
            points = next;
        }
        points
    }
}

/// One `[[host]]` table: a machine that runs an agent (`wasm-ipc agent --listen ADDRESS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Unique name: letters, digits, `_` and `-` (not `local`, which names this machine).
    pub name: String,
    /// The agent's Zenoh endpoint, `tcp/IP:PORT`, as written.
    pub address: String,
    /// The same, parsed.
    pub addr: std::net::SocketAddr,
}

/// The name the report gives this machine (the supervisor's), which a `[[host]]` may not take.
pub const LOCAL_HOST: &str = "local";

impl Scenario {
    /// The name of the host plugin `i` runs on ([`LOCAL_HOST`] for this machine).
    pub fn host_name(&self, i: usize) -> &str {
        match self.plugins[i].host {
            Some(h) => &self.hosts[h].name,
            None => LOCAL_HOST,
        }
    }

    /// The first channel whose plugins are not all on one host, described for a message:
    /// `channel[0] (line 12) joins `a` on host `x` and `b` on this machine`.
    pub fn crossing(&self) -> Option<String> {
        for (c, ch) in self.channels.iter().enumerate() {
            let first = ch.from[0].plugin;
            let other = ch
                .from
                .iter()
                .chain(&ch.to)
                .map(|e| e.plugin)
                .find(|&p| self.plugins[p].host != self.plugins[first].host);
            if let Some(other) = other {
                let on = |p: usize| match self.plugins[p].host {
                    Some(h) => format!(
                        "`{}` on host `{}`",
                        self.plugins[p].name, self.hosts[h].name
                    ),
                    None => format!("`{}` on this machine", self.plugins[p].name),
                };
                return Some(format!(
                    "channel[{c}] joins {} and {}",
                    on(first),
                    on(other)
                ));
            }
        }
        None
    }
}

/// Parses `tcp/IP:PORT` (an IPv4 address, or an IPv6 one in brackets).
pub fn parse_endpoint(text: &str) -> Result<std::net::SocketAddr, String> {
    let Some(rest) = text.strip_prefix("tcp/") else {
        return Err(format!(
            "expected a Zenoh TCP endpoint \"tcp/IP:PORT\", e.g. \"tcp/198.18.0.2:7447\", got {text:?}"
        ));
    };
    rest.parse::<std::net::SocketAddr>().map_err(|_| {
        format!(
            "expected \"tcp/IP:PORT\" with a numeric IP address and a port, e.g. \"tcp/198.18.0.2:7447\", got {text:?}"
        )
    })
}

/// One `[[plugin]]` table.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// Unique name: letters, digits, `_` and `-`.
    pub name: String,
    /// Absolute (dir-joined) path to the .wasm or .wat file.
    pub wasm: PathBuf,
    /// Shell command run in `dir` through `sh -c` when `wasm` is missing or stale.
    pub build: Option<String>,
    /// Optional folder (dir-joined) whose files, when newer than `wasm`, make it stale.
    pub source: Option<PathBuf>,
    /// Config values as text: integers as decimal digits, strings without quotes, booleans
    /// as true/false, floats as Rust prints them.
    pub config: BTreeMap<String, String>,
    /// What the plugin may take.
    pub limits: Limits,
    /// Which copy this is, when the plugin table has `instances` > 1.
    pub instance: Option<Instance>,
    /// The host it runs on (index into [`Scenario::hosts`]); `None`: this machine.
    pub host: Option<usize>,
}

/// One of the copies that `plugin.instances = N` makes: named `name#0` … `name#N-1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The plugin table's `name`.
    pub of: String,
    /// 0-based index, told to the plugin as config key `wasm-ipc.instance`.
    pub index: u32,
    /// N.
    pub count: u32,
}

/// Largest accepted `plugin.instances`.
pub const MAX_INSTANCES: u32 = 256;

/// The resources a plugin may take; every run enforces them and names the one it hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory beyond the windows the scenario gives the plugin (`plugin.memory`).
    pub memory: u64,
    /// Native stack its wasm code may use (`plugin.stack`).
    pub stack: u64,
    /// Elements across its tables (`plugin.table_elements`).
    pub table_elements: u64,
    /// CPU time of its worker process, host calls included (`plugin.cpu`); `None`: the run's
    /// timeout is the bound.
    pub cpu: Option<Duration>,
}

/// Default [`Limits::memory`]: 256 MiB beyond the windows.
pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// Largest [`Limits::memory`]: a 32-bit memory's 4 GiB.
pub const MAX_MEMORY: u64 = 4 << 30;
/// Default [`Limits::stack`]: 512 KiB (wasmtime's own default).
pub const DEFAULT_STACK: u64 = 512 << 10;
/// Largest [`Limits::stack`]: 4 MiB, well inside the worker thread's 8 MiB native stack.
pub const MAX_STACK: u64 = 4 << 20;
/// Default [`Limits::table_elements`].
pub const DEFAULT_TABLE_ELEMENTS: u64 = 100_000;
/// Largest [`Limits::table_elements`].
pub const MAX_TABLE_ELEMENTS: u64 = 10_000_000;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory: DEFAULT_MEMORY,
            stack: DEFAULT_STACK,
            table_elements: DEFAULT_TABLE_ELEMENTS,
            cpu: None,
        }
    }
}

/// `plugin.port`: index into `Scenario::plugins` and the port name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Index into [`Scenario::plugins`].
    pub plugin: usize,
    /// The port's name within that plugin.
    pub port: String,
}

/// One `[[channel]]` table.
#[derive(Debug, Clone)]
pub struct Channel {
    /// One or more producers (`from = "a.out"` or `from = ["a.out", "b.out"]`).
    pub from: Vec<Endpoint>,
    /// One or more consumers.
    pub to: Vec<Endpoint>,
    /// Largest message in bytes (1 ..= 256 MiB). Default 64 KiB.
    pub slot_size: u32,
    /// Messages in flight per producer->consumer link (1 ..= 65536). Default 16. On a
    /// request-reply channel it is 1: a client has one call in flight.
    pub capacity: u32,
    /// A one-way stream, or request/reply (`pattern`).
    pub pattern: Pattern,
    /// What a publish that finds its link full does (`overflow`).
    pub overflow: Overflow,
    /// How an `shm` channel synchronises its producers and consumers (`sync`).
    pub sync: SyncMode,
    /// Where the channel's keys are, for messages about them.
    pub lines: ChannelLines,
}

/// What a publish does when a link has no room (`overflow`): the textbook's choice between
/// a sender that waits and a lossy network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// `"block"` (the default): the producer waits for room; nothing is ever lost.
    #[default]
    Block,
    /// `"drop-newest"`: a message that finds no room on a link (no free slot, no credit) is
    /// dropped for that link by the sending host and counted, and `publish` still succeeds,
    /// as a send into a lossy network does. On `udp` the sender does not wait for credits at
    /// all, so the kernel may drop too.
    DropNewest,
    /// `"drop-oldest"` (`shm` only): a publish that finds a link full replaces the oldest
    /// message its consumer has not started to read (iceoryx2's safe overflow), so the
    /// consumer always gets the newest; that message is counted as dropped for that link.
    /// Other backends refuse it: their unread messages are in the kernel's or the engine's
    /// buffers, out of the sender's reach.
    DropOldest,
}

impl Overflow {
    /// Every policy, in the order error messages list them.
    pub const ALL: [Overflow; 3] = [Overflow::Block, Overflow::DropNewest, Overflow::DropOldest];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Overflow::Block => "block",
            Overflow::DropNewest => "drop-newest",
            Overflow::DropOldest => "drop-oldest",
        }
    }
}

/// How an `shm` channel synchronises its producers and consumers (`sync`): the lock-free
/// rings, or the textbook's bounded buffer guarded by a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// `"lock-free"` (the default): one single-producer ring per producer, cursors moved by
    /// atomic stores, a futex only for a side that sleeps.
    #[default]
    LockFree,
    /// `"semaphores"`: the textbook's bounded buffer, one per channel shared by all its
    /// producers: counting semaphores `empty` and `full` and a mutex over the buffer's
    /// indices, in the shared region, built on futexes.
    Semaphores,
    /// `"mutex"`: the same buffer guarded by one mutex and two condition variables
    /// (`not-full`, `not-empty`).
    Mutex,
}

impl SyncMode {
    /// Every variant, in the order error messages list them.
    pub const ALL: [SyncMode; 3] = [SyncMode::LockFree, SyncMode::Semaphores, SyncMode::Mutex];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::LockFree => "lock-free",
            SyncMode::Semaphores => "semaphores",
            SyncMode::Mutex => "mutex",
        }
    }
}

/// What a channel carries (`pattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pattern {
    /// `"stream"` (the default): messages flow from every `from` port to every `to` port.
    #[default]
    Stream,
    /// `"request-reply"`: every `from` port is a client that calls the one `to` port, the
    /// server, which answers each call (ABI 0.2.0). Client `k` is the `k`-th `from` port.
    RequestReply,
}

impl Pattern {
    /// Every pattern, in the order error messages list them.
    pub const ALL: [Pattern; 2] = [Pattern::Stream, Pattern::RequestReply];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Stream => "stream",
            Pattern::RequestReply => "request-reply",
        }
    }
}

/// 1-based lines of a channel's keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChannelLines {
    /// The `from` key.
    pub from: usize,
    /// The `slot_size` key, when given.
    pub slot_size: Option<usize>,
    /// The `capacity` key, when given.
    pub capacity: Option<usize>,
    /// The `overflow` key, when given.
    pub overflow: Option<usize>,
    /// The `sync` key, when given.
    pub sync: Option<usize>,
    /// The `to` key.
    pub to: usize,
}

/// An IPC backend a scenario can run on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `"shm"`: shared-memory rings.
    Shm,
    /// `"msg"`: message passing over sockets.
    Msg,
    /// `"pipe"`: message passing over anonymous pipes (one for data, one for credits, per
    /// link).
    Pipe,
    /// `"tcp"`: message passing over TCP on the loopback interface (one connection per link).
    Tcp,
    /// `"mq"`: message passing over POSIX message queues (one queue per link).
    Mq,
    /// `"udp"`: message passing over UDP datagrams on the loopback interface (one connected
    /// pair of sockets per link).
    Udp,
    /// `"zenoh"`: message passing over the Zenoh engine (TCP), which can cross machines.
    Zenoh,
    /// `"auto"`: per lane, `shm` when all its plugins are on one host, `zenoh` otherwise.
    Auto,
}

impl BackendKind {
    /// Every transport (`auto` is a choice among them, not one).
    pub const ALL: [BackendKind; 7] = [
        BackendKind::Shm,
        BackendKind::Msg,
        BackendKind::Pipe,
        BackendKind::Mq,
        BackendKind::Tcp,
        BackendKind::Udp,
        BackendKind::Zenoh,
    ];

    /// Every name `run.backends` and `--backend` accept.
    pub const CHOICES: [BackendKind; 8] = [
        BackendKind::Shm,
        BackendKind::Msg,
        BackendKind::Pipe,
        BackendKind::Mq,
        BackendKind::Tcp,
        BackendKind::Udp,
        BackendKind::Zenoh,
        BackendKind::Auto,
    ];

    /// The backends a scenario with `[[host]]` tables runs on when `[run] backends` is not
    /// given.
    pub const DEFAULT_HOSTS: [BackendKind; 2] = [BackendKind::Zenoh, BackendKind::Auto];

    /// Whether it can join plugins on different hosts.
    pub fn crosses_hosts(self) -> bool {
        matches!(self, BackendKind::Zenoh | BackendKind::Auto)
    }

    /// The backends a one-host scenario runs on when `[run] backends` is not given.
    pub const DEFAULT: [BackendKind; 2] = [BackendKind::Shm, BackendKind::Msg];

    /// The name used in scenario files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Shm => "shm",
            BackendKind::Msg => "msg",
            BackendKind::Pipe => "pipe",
            BackendKind::Tcp => "tcp",
            BackendKind::Mq => "mq",
            BackendKind::Udp => "udp",
            BackendKind::Zenoh => "zenoh",
            BackendKind::Auto => "auto",
        }
    }

    /// The backend called `name` (`"shm"`, `"msg"`, `"zenoh"` or `"auto"`), if any.
    pub fn from_name(name: &str) -> Option<BackendKind> {
        BackendKind::CHOICES.into_iter().find(|b| b.name() == name)
    }
}

/// How a shared-memory endpoint waits for its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitMode {
    /// `"adaptive"`: spin briefly, then sleep on a futex.
    Adaptive,
    /// `"spin"`: never sleep (`zenoh`'s ports yield the CPU between looks: its engine's
    /// threads make what they wait for).
    Spin,
    /// `"futex"`: sleep on a futex at once.
    Futex,
}

impl WaitMode {
    /// Every mode, in the order error messages list them.
    pub const ALL: [WaitMode; 3] = [WaitMode::Adaptive, WaitMode::Spin, WaitMode::Futex];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            WaitMode::Adaptive => "adaptive",
            WaitMode::Spin => "spin",
            WaitMode::Futex => "futex",
        }
    }
}

/// Whether the host computes digests of what is published and received (`verify` in `[run]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// `"full"`: check every message.
    Full,
    /// `"off"`: check nothing.
    Off,
}

impl Verify {
    /// Every setting, in the order error messages list them.
    pub const ALL: [Verify; 2] = [Verify::Full, Verify::Off];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Verify::Full => "full",
            Verify::Off => "off",
        }
    }
}

/// The `[run]` table.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Default ["shm", "msg"]; no duplicates; non-empty.
    pub backends: Vec<BackendKind>,
    /// Rounds, when given: exactly this many measured runs per backend per sweep point;
    /// 1 ..= 1000. Without it `compare` adds rounds until its plan is met (at least 5, and
    /// [`RunConfig::min_time`] measured per backend) and `run` makes one.
    pub repeat: Option<u32>,
    /// Default 1 s; 0 ..= 1 h. The measured time (`elapsed_s` summed) `compare` gathers per
    /// backend per sweep point when `repeat` is not given.
    pub min_time: Duration,
    /// Default 60 s. Durations: "500ms", "60s", "2m" (also a bare integer = seconds).
    /// 0 < timeout <= [`MAX_TIMEOUT`].
    pub timeout: Duration,
    /// Default Adaptive.
    pub wait: WaitMode,
    /// Default Full.
    pub verify: Verify,
    /// Seed for the plugins' WASI random_get. Default 0.
    pub seed: u64,
    /// This machine's endpoint for a scenario with hosts (`tcp/IP:PORT`): its workers listen
    /// for links from other hosts on IP, and the supervisor's control sessions on IP:PORT
    /// (0: any free port). `--listen` overrides it.
    pub listen: Option<std::net::SocketAddr>,
    /// Default true: every `zenoh` link (data and credits) is TLS with mutual authentication
    /// under a certificate authority made for the run. False only when every plugin runs on
    /// this machine (to measure what TLS costs).
    pub seal: bool,
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            backends: BackendKind::DEFAULT.to_vec(),
            repeat: None,
            min_time: DEFAULT_MIN_TIME,
            timeout: DEFAULT_TIMEOUT,
            wait: WaitMode::Adaptive,
            verify: Verify::Full,
            seed: 0,
            listen: None,
            seal: true,
        }
    }
}

impl Scenario {
    /// Inputs of plugin `i`: (port name, channel index), in channel order.
    pub fn inputs_of(&self, i: usize) -> Vec<(String, usize)> {
        self.ports_of(i, |c| &c.to)
    }

    /// Outputs of plugin `i`: (port name, channel index), in channel order.
    pub fn outputs_of(&self, i: usize) -> Vec<(String, usize)> {
        self.ports_of(i, |c| &c.from)
    }

    /// `plugin.port` as written in the scenario file.
    pub fn endpoint_name(&self, endpoint: &Endpoint) -> String {
        match self.plugins.get(endpoint.plugin) {
            Some(plugin) => format!("{}.{}", plugin.name, endpoint.port),
            None => format!("#{}.{}", endpoint.plugin, endpoint.port),
        }
    }

    fn ports_of(
        &self,
        i: usize,
        side: impl Fn(&Channel) -> &Vec<Endpoint>,
    ) -> Vec<(String, usize)> {
        let mut ports = Vec::new();
        for (c, channel) in self.channels.iter().enumerate() {
            for endpoint in side(channel) {
                if endpoint.plugin == i {
                    ports.push((endpoint.port.clone(), c));
                }
            }
        }
        ports
    }
}
