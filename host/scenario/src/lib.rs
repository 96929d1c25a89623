//! Scenario files: which plugins run, how their ports are wired, and how to run them.
//!
//! A scenario is a TOML file (see DESIGN.md §6). It is read in two stages, as ripgrep reads
//! its arguments (`LowArgs` → `HiArgs`):
//!
//! 1. **Raw**: serde types with `deny_unknown_fields` and [`toml::Spanned`] wherever a later
//!    check needs the line. Syntax errors, unknown keys, missing keys and wrong types stop here.
//! 2. **Resolved**: [`Scenario`], where names are checked, endpoints are resolved to plugin
//!    indices, sizes and durations are parsed, and defaults are applied.
//!
//! Every error is a [`ScenarioError`] naming the file, the line and the dotted key path
//! (`channel[0].slot_size`), and saying what would have been valid.
//!
//! This crate depends on no wasmtime and runs nothing, so a fuzz target can drive
//! [`Scenario::parse`] alone; `parse` never panics and never touches the file system. The
//! host runs plugins' `build` commands itself (`wasm_ipc::build`).
//!
//! ```toml
//! name = "producer-consumer"
//!
//! [[plugin]]
//! name = "producer"
//! wasm = "../plugins/target/wasm32-wasip1/release/producer.wasm"
//! build = "cargo build --release --manifest-path ../plugins/Cargo.toml -p producer"
//! config = { count = 10000, size = 4096 }
//!
//! [[plugin]]
//! name = "consumer"
//! wasm = "../plugins/target/wasm32-wasip1/release/consumer.wasm"
//!
//! [[channel]]
//! from = "producer.out"
//! to = ["consumer.in"]
//! slot_size = "64KiB"
//! capacity = 16
//!
//! [run]
//! backends = ["shm", "msg"]
//! repeat = 3
//! timeout = "60s"
//! wait = "adaptive"
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

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
/// Longest accepted [`RunConfig::timeout`]: 7 days (a run's deadline is a 64-bit nanosecond
/// count, and no benchmark or soak runs longer).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

const SIZE_HINT: &str = "sizes look like 4096, \"4KiB\", \"1MiB\" (units: B, KiB, MiB, GiB)";
const DURATION_HINT: &str = "durations look like \"500ms\", \"60s\", \"2m\" or 60 (seconds)";
const ENDPOINT_HINT: &str = "expected \"plugin.port\", e.g. \"producer.out\"";
const NAME_HINT: &str = "use letters, digits, '_' and '-' only";

// ---- resolved scenario types ----

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
                for v in &axis.values {
                    let mut named = named.clone();
                    named.push((axis.name.clone(), v.trim_matches('"').to_string()));
                    let mut sets = sets.clone();
                    sets.extend(axis.paths.iter().map(|p| format!("{p}={v}")));
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

/// One plugin table as endpoints name it: its copies are `first .. first + count` in
/// [`Scenario::plugins`].
#[derive(Debug, Clone, Copy)]
struct Group {
    /// Index of the `[[plugin]]` table.
    table: usize,
    /// Line of its `name`.
    line: usize,
    first: usize,
    count: usize,
}

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
    /// Where the channel's keys are, for messages about them.
    pub lines: ChannelLines,
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
    /// `"zenoh"`: message passing over the Zenoh engine (TCP), which can cross machines.
    Zenoh,
    /// `"auto"`: per lane, `shm` when all its plugins are on one host, `zenoh` otherwise.
    Auto,
}

impl BackendKind {
    /// Every transport (`auto` is a choice among them, not one).
    pub const ALL: [BackendKind; 3] = [BackendKind::Shm, BackendKind::Msg, BackendKind::Zenoh];

    /// Every name `run.backends` and `--backend` accept.
    pub const CHOICES: [BackendKind; 4] = [
        BackendKind::Shm,
        BackendKind::Msg,
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
    /// `"spin"`: never sleep.
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
    /// Default 1; 1 ..= 1000.
    pub repeat: u32,
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
}

impl Default for RunConfig {
    fn default() -> RunConfig {
        RunConfig {
            backends: BackendKind::DEFAULT.to_vec(),
            repeat: 1,
            timeout: DEFAULT_TIMEOUT,
            wait: WaitMode::Adaptive,
            verify: Verify::Full,
            seed: 0,
            listen: None,
        }
    }
}

/// A scenario that could not be read, parsed or validated.
///
/// `Display`: "{file}:{line}: {key}: {message}" where key is the dotted TOML key path
/// (e.g. `channel[0].slot_size`, `plugin[1].wasm`, `run.wait`), and message says what was
/// wrong and what would be valid. For TOML syntax errors, the line where it happened.
/// Parts that are unknown are left out.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_error(.file, *.line, .key.as_deref(), .message))]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// Dotted key path such as `channel[0].slot_size`, when known.
    pub key: Option<String>,
    /// What was wrong and what would be valid.
    pub message: String,
}

fn render_error(file: &Path, line: Option<usize>, key: Option<&str>, message: &str) -> String {
    let mut s = file.display().to_string();
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
    }
    if let Some(key) = key {
        s.push_str(&format!(": {key}"));
    }
    s.push_str(&format!(": {message}"));
    s
}

impl Scenario {
    /// Read, parse, validate, and check that every plugin's wasm file exists or has `build`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::load_with(path, &[])
    }

    /// [`Scenario::load`] with `--set PATH=VALUE` overrides applied to the file's values
    /// first (see [`apply_overrides`]).
    pub fn load_with(path: &Path, sets: &[String]) -> Result<Scenario, ScenarioError> {
        let original = fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read the scenario file: {e}"),
        })?;
        let (mut scenario, mut wasm_lines) = parse_with_lines(path, &original)?;
        if !sets.is_empty() {
            let overridden = apply_overrides(&original, sets).map_err(|message| ScenarioError {
                file: path.to_path_buf(),
                line: None,
                key: Some("--set".into()),
                message,
            })?;
            // The rewritten text's lines are not the file's: an error names the overrides,
            // and the file's own lines are kept where its shape did not change.
            let (mut new, new_lines) = parse_with_lines(path, &overridden).map_err(|mut e| {
                e.line = None;
                e.message = format!("{} (after --set {})", e.message, sets.join(" --set "));
                e
            })?;
            for (ch, old) in new.channels.iter_mut().zip(&scenario.channels) {
                ch.lines = old.lines;
            }
            if new_lines.len() != wasm_lines.len() {
                wasm_lines = new_lines;
            }
            scenario = new;
        }
        for (plugin, (i, line)) in scenario.plugins.iter().zip(wasm_lines) {
            if plugin.build.is_none() && !plugin.wasm.exists() {
                return Err(ScenarioError {
                    file: path.to_path_buf(),
                    line: Some(line),
                    key: Some(format!("plugin[{i}].wasm")),
                    message: format!(
                        "{} does not exist; build it first, or add a `build` key with a shell \
                         command (run in {}) that creates it",
                        plugin.wasm.display(),
                        scenario.dir.display()
                    ),
                });
            }
        }
        Ok(scenario)
    }

    /// Parse and validate text (no file-system access: `wasm` existence is not checked).
    /// `path` is used for messages and to resolve relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        parse_with_lines(path, text).map(|(scenario, _)| scenario)
    }

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

// ---- size and duration syntax ----

/// Parses a size: `"4096"`, `"4096B"`, `"4KiB"`, `"1MiB"` or `"1GiB"` (a space before the
/// unit is allowed). Returns bytes; the error says what sizes look like.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, unit) = split_number(text);
    let n = parse_digits(digits).ok_or_else(|| format!("malformed size {text:?}; {SIZE_HINT}"))?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "K" | "k" | "KB" | "kB" | "kb" | "Kb" | "KIB" | "kib" | "Ki" => {
            return Err(format!(
                "unknown unit {unit:?}, did you mean \"KiB\"? {SIZE_HINT}"
            ));
        }
        "M" | "m" | "MB" | "mb" | "Mb" | "MIB" | "mib" | "Mi" => {
            return Err(format!(
                "unknown unit {unit:?}, did you mean \"MiB\"? {SIZE_HINT}"
            ));
        }
        "G" | "g" | "GB" | "gb" | "Gb" | "GIB" | "gib" | "Gi" => {
            return Err(format!(
                "unknown unit {unit:?}, did you mean \"GiB\"? {SIZE_HINT}"
            ));
        }
        _ => return Err(format!("malformed size {text:?}; {SIZE_HINT}")),
    };
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Parses a duration: `"500ms"`, `"60s"`, `"2m"`, or bare digits meaning seconds (a space
/// before the unit is allowed). Zero is accepted here; callers decide whether it is valid.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (digits, unit) = split_number(text);
    let n = parse_digits(digits)
        .ok_or_else(|| format!("malformed duration {text:?}; {DURATION_HINT}"))?;
    let too_long = || format!("duration {text:?} is too long");
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" | "min" => Ok(Duration::from_secs(n.checked_mul(60).ok_or_else(too_long)?)),
        "h" => Ok(Duration::from_secs(
            n.checked_mul(3600).ok_or_else(too_long)?,
        )),
        _ => Err(format!(
            "unknown unit {unit:?} in duration {text:?}; {DURATION_HINT}"
        )),
    }
}

/// Splits `"64 KiB"` into `("64", "KiB")`.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, rest) = text.split_at(end);
    (digits, rest.strip_prefix(' ').unwrap_or(rest))
}

fn parse_digits(digits: &str) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.parse().ok()
}

// ---- raw (serde) types ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    description: Option<String>,
    #[serde(default)]
    host: Vec<RawHost>,
    #[serde(default)]
    plugin: Vec<RawPlugin>,
    #[serde(default)]
    channel: Vec<RawChannel>,
    run: Option<RawRun>,
    sweep: Option<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    address: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    name: Spanned<String>,
    host: Option<Spanned<String>>,
    wasm: Spanned<String>,
    build: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    config: Option<BTreeMap<String, Spanned<toml::Value>>>,
    instances: Option<Spanned<toml::Value>>,
    memory: Option<Spanned<toml::Value>>,
    stack: Option<Spanned<toml::Value>>,
    table_elements: Option<Spanned<toml::Value>>,
    cpu: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    from: Spanned<RawEndpoints>,
    to: Spanned<RawEndpoints>,
    slot_size: Option<Spanned<toml::Value>>,
    capacity: Option<Spanned<toml::Value>>,
    pattern: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    backends: Option<Spanned<Vec<Spanned<String>>>>,
    repeat: Option<Spanned<toml::Value>>,
    timeout: Option<Spanned<toml::Value>>,
    wait: Option<Spanned<String>>,
    verify: Option<Spanned<String>>,
    seed: Option<Spanned<toml::Value>>,
    listen: Option<Spanned<String>>,
}

/// `"a.out"` or `["a.out", "b.out"]`, keeping each array element's span.
enum RawEndpoints {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for RawEndpoints {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawEndpoints, D::Error> {
        struct EndpointsVisitor;
        impl<'de> Visitor<'de> for EndpointsVisitor {
            type Value = RawEndpoints;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"plugin.port\" or an array of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEndpoints, E> {
                Ok(RawEndpoints::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawEndpoints, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(RawEndpoints::Many(items))
            }
        }
        deserializer.deserialize_any(EndpointsVisitor)
    }
}

// ---- stage 1: text -> raw ----

/// Where errors point: the file name for messages and the text for line numbers.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn error(
        &self,
        span: Option<Range<usize>>,
        key: Option<String>,
        message: String,
    ) -> ScenarioError {
        ScenarioError {
            file: self.file.to_path_buf(),
            line: span.map(|s| self.line_of(s.start)),
            key,
            message,
        }
    }

    /// An error at `span` for `key`.
    fn at(
        &self,
        span: Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.error(Some(span), Some(key.into()), message.into())
    }

    /// Converts a toml error: the span gives the line, and the parsed document (when there
    /// is one) gives the key path at that span.
    fn toml_error(
        &self,
        error: &toml::de::Error,
        doc: Option<&toml::de::DeTable<'_>>,
    ) -> ScenarioError {
        let mut message = error.message().trim().to_owned();
        // An empty span means "the whole document" (toml reports the root that way).
        let span = error.span().filter(|s| !s.is_empty() || doc.is_none());
        let mut key = match (doc, &span) {
            (Some(doc), Some(span)) => locate_in_table(doc, span.start, ""),
            _ => None,
        };
        if let Some(rest) = message.strip_prefix("missing field ") {
            let field = rest.trim_matches('`').to_owned();
            key = Some(join_key(key.as_deref().unwrap_or(""), &field));
            message = format!("missing required key `{field}`");
        } else if let Some(rest) = message.strip_prefix("unknown field ") {
            message = format!("unknown key {rest}");
        } else if message == "duplicate key"
            && let Some(dup) = span.as_ref().and_then(|s| self.text.get(s.clone()))
        {
            message = format!("duplicate key `{dup}`");
        }
        if matches!(key.as_deref(), Some("plugin" | "channel"))
            && message.contains("expected a sequence")
        {
            let table = key.as_deref().unwrap_or_default();
            message.push_str(&format!(
                "; write each {table} as an array-of-tables entry, [[{table}]], not [{table}]"
            ));
        }
        self.error(span, key, message)
    }
}

/// The deepest key path whose key or value span contains `offset`.
fn locate_in_table(table: &toml::de::DeTable<'_>, offset: usize, prefix: &str) -> Option<String> {
    for (key, value) in table.iter() {
        let path = join_key(prefix, key.get_ref());
        if let Some(deeper) = locate_in_value(value, offset, &path) {
            return Some(deeper);
        }
        if contains(&key.span(), offset) || contains(&value.span(), offset) {
            return Some(path);
        }
    }
    None
}

fn locate_in_value(
    value: &Spanned<toml::de::DeValue<'_>>,
    offset: usize,
    path: &str,
) -> Option<String> {
    match value.get_ref() {
        toml::de::DeValue::Table(table) => locate_in_table(table, offset, path),
        toml::de::DeValue::Array(items) => {
            // Items of an array of tables span only their `[[header]]`, so look inside
            // every item, not just the one whose span matches.
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                if let Some(deeper) = locate_in_value(item, offset, &item_path) {
                    return Some(deeper);
                }
                if contains(&item.span(), offset) {
                    return Some(item_path);
                }
            }
            None
        }
        _ => None,
    }
}

/// "an integer", "a string", ...
fn a_type(value: &toml::Value) -> String {
    let name = value.type_str();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

fn contains(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end
}

/// `prefix.key`, quoting `key` when it is not a bare TOML key.
fn join_key(prefix: &str, key: &str) -> String {
    let key = if is_bare_key(key) {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

// ---- stage 2: raw -> resolved ----

/// Parses and validates; also returns the line of each plugin's `wasm` key for `load`.
/// The scenario and, per plugin instance, its table's index and the line of its `wasm`.
type WasmLines = Vec<(usize, usize)>;

fn parse_with_lines(path: &Path, text: &str) -> Result<(Scenario, WasmLines), ScenarioError> {
    let src = Source { file: path, text };
    let doc = toml::de::DeTable::parse(text).map_err(|e| {
        let mut error = src.toml_error(&e, None);
        error.message = format!("TOML syntax: {}", error.message);
        error
    })?;
    let raw: RawScenario =
        toml::from_str(text).map_err(|e| src.toml_error(&e, Some(doc.get_ref())))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    validate(&src, raw, dir)
}

fn validate(
    src: &Source<'_>,
    raw: RawScenario,
    dir: PathBuf,
) -> Result<(Scenario, WasmLines), ScenarioError> {
    if raw.name.get_ref().trim().is_empty() {
        return Err(src.at(
            raw.name.span(),
            "name",
            "the scenario name must not be empty",
        ));
    }
    if raw.plugin.is_empty() {
        return Err(src.error(
            None,
            Some("plugin".into()),
            "no plugins; add at least one [[plugin]] table with `name` and `wasm`".into(),
        ));
    }

    let hosts = validate_hosts(src, &raw.host)?;
    let mut plugins = Vec::with_capacity(raw.plugin.len());
    let mut wasm_lines = Vec::with_capacity(raw.plugin.len());
    let mut by_name: HashMap<String, Group> = HashMap::new();
    for (i, plugin) in raw.plugin.into_iter().enumerate() {
        let key = |k: &str| format!("plugin[{i}].{k}");
        let host = match &plugin.host {
            None => None,
            Some(h) => match hosts.iter().position(|x| x.name == *h.get_ref()) {
                Some(index) => Some(index),
                None => {
                    let known: Vec<String> =
                        hosts.iter().map(|x| format!("{:?}", x.name)).collect();
                    return Err(src.at(
                        h.span(),
                        key("host"),
                        if hosts.is_empty() {
                            format!(
                                "unknown host {:?}: the scenario has no [[host]] tables; add \
                                 one with `name` and `address`, or remove `host` to run the \
                                 plugin on this machine",
                                h.get_ref()
                            )
                        } else {
                            format!(
                                "unknown host {:?}; the [[host]] tables name {} (leave out \
                                 `host` to run the plugin on this machine)",
                                h.get_ref(),
                                known.join(", ")
                            )
                        },
                    ));
                }
            },
        };
        let name = plugin.name.get_ref();
        if !is_bare_key(name) {
            return Err(src.at(
                plugin.name.span(),
                key("name"),
                format!(
                    "invalid plugin name {name:?}; {NAME_HINT} (no '.' or '#'), e.g. \"producer\""
                ),
            ));
        }
        let line = src.line_of(plugin.name.span().start);
        let count = match &plugin.instances {
            None => 1,
            Some(v) => {
                let n = integer_in(
                    src,
                    v,
                    &key("instances"),
                    "instances",
                    1,
                    u64::from(MAX_INSTANCES),
                )?;
                // `integer_in` bounded it by MAX_INSTANCES.
                usize::try_from(n).unwrap_or(1)
            }
        };
        let group = Group {
            table: i,
            line,
            first: plugins.len(),
            count,
        };
        if let Some(Group {
            table: first,
            line: first_line,
            ..
        }) = by_name.insert(name.clone(), group)
        {
            return Err(src.at(
                plugin.name.span(),
                key("name"),
                format!(
                    "duplicate plugin name {name:?}, already used by plugin[{first}] on line \
                     {first_line}; plugin names must be unique"
                ),
            ));
        }

        let wasm = plugin.wasm.get_ref();
        let extension = Path::new(wasm).extension().and_then(|e| e.to_str());
        if !matches!(extension, Some("wasm" | "wat")) {
            return Err(src.at(
                plugin.wasm.span(),
                key("wasm"),
                format!("expected a path to a .wasm or .wat file, got {wasm:?}"),
            ));
        }
        let wasm_line = src.line_of(plugin.wasm.span().start);

        let build = match plugin.build {
            Some(build) if build.get_ref().trim().is_empty() => {
                return Err(src.at(
                    build.span(),
                    key("build"),
                    "empty build command; give a shell command or remove `build`",
                ));
            }
            Some(build) => Some(build.into_inner()),
            None => None,
        };
        let source = match plugin.source {
            Some(source) if source.get_ref().is_empty() => {
                return Err(src.at(
                    source.span(),
                    key("source"),
                    "empty path; give the folder holding the plugin's sources or remove `source`",
                ));
            }
            Some(source) => Some(dir.join(source.get_ref())),
            None => None,
        };

        let mut config = BTreeMap::new();
        for (name, value) in plugin.config.unwrap_or_default() {
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(src.at(
                        value.span(),
                        join_key(&key("config"), &name),
                        format!(
                            "config values must be an integer, string, boolean or float, not {}",
                            a_type(other)
                        ),
                    ));
                }
            };
            config.insert(name, text);
        }

        let mut limits = Limits::default();
        if let Some(v) = &plugin.memory {
            limits.memory = size_in(src, v, &key("memory"), 64 << 10, MAX_MEMORY)?;
        }
        if let Some(v) = &plugin.stack {
            limits.stack = size_in(src, v, &key("stack"), 64 << 10, MAX_STACK)?;
        }
        if let Some(v) = &plugin.table_elements {
            limits.table_elements = integer_in(
                src,
                v,
                &key("table_elements"),
                "table_elements",
                1,
                MAX_TABLE_ELEMENTS,
            )?;
        }
        if let Some(v) = &plugin.cpu {
            let cpu = duration_value(src, v, &key("cpu"))?;
            if cpu.is_zero() || cpu > MAX_TIMEOUT {
                return Err(src.at(
                    v.span(),
                    key("cpu"),
                    format!(
                        "CPU limit {cpu:?} is out of range; expected more than 0, at most 168h"
                    ),
                ));
            }
            limits.cpu = Some(cpu);
        }
        let name = plugin.name.into_inner();
        for index in 0..count {
            // `#` cannot appear in a declared name, so a copy's name cannot clash with one.
            let (copy, instance) = if count == 1 {
                (name.clone(), None)
            } else {
                let instance = Instance {
                    of: name.clone(),
                    index: u32::try_from(index).unwrap_or(0),
                    count: u32::try_from(count).unwrap_or(0),
                };
                (format!("{name}#{index}"), Some(instance))
            };
            plugins.push(Plugin {
                name: copy,
                wasm: dir.join(wasm),
                build: build.clone(),
                source: source.clone(),
                config: config.clone(),
                limits,
                instance,
                host,
            });
            wasm_lines.push((i, wasm_line));
        }
    }

    let channels = validate_channels(src, raw.channel, &plugins, &by_name)?;
    let listed = raw.run.as_ref().and_then(|r| r.backends.clone());
    let listen_span = raw
        .run
        .as_ref()
        .and_then(|r| r.listen.as_ref())
        .map(|l| l.span());
    let mut run = match raw.run {
        Some(run) => validate_run(src, run)?,
        None => RunConfig::default(),
    };
    if !hosts.is_empty() && listed.is_none() {
        run.backends = BackendKind::DEFAULT_HOSTS.to_vec();
    }
    if let Some(span) = listen_span
        && hosts.is_empty()
    {
        return Err(src.at(
            span,
            "run.listen",
            "`listen` is this machine's endpoint for a scenario with [[host]] tables, and \
             this one has none; remove it or add the hosts",
        ));
    }

    let sweep = match &raw.sweep {
        Some(table) => validate_sweep(src, table)?,
        None => Vec::new(),
    };
    let scenario = Scenario {
        path: src.file.to_path_buf(),
        dir,
        name: raw.name.into_inner(),
        description: raw.description,
        hosts,
        plugins,
        channels,
        run,
        sweep,
    };
    if let Some(crossing) = scenario.crossing() {
        if let Some(list) = &listed
            && let Some((j, name)) = list.get_ref().iter().enumerate().find(|(_, n)| {
                BackendKind::from_name(n.get_ref()).is_some_and(|b| !b.crosses_hosts())
            })
        {
            return Err(src.at(
                name.span(),
                format!("run.backends[{j}]"),
                format!(
                    "backend {:?} cannot join plugins on different hosts ({crossing}); list \
                     \"zenoh\" or \"auto\" instead",
                    name.get_ref()
                ),
            ));
        }
        let local_producer = scenario.channels.iter().any(|ch| {
            ch.from
                .iter()
                .any(|f| scenario.plugins[f.plugin].host.is_none())
                && ch
                    .from
                    .iter()
                    .chain(&ch.to)
                    .any(|e| scenario.plugins[e.plugin].host.is_some())
        });
        if local_producer && scenario.run.listen.is_none() {
            return Err(src.error(
                None,
                Some("run.listen".into()),
                format!(
                    "plugins on this machine are linked with plugins on other hosts \
                     ({crossing}), so this machine needs an address the hosts can reach: add \
                     `listen = \"tcp/IP:PORT\"` to [run] (or pass --listen), or place those \
                     plugins on a [[host]] too"
                ),
            ));
        }
    }
    Ok((scenario, wasm_lines))
}

/// The `[[host]]` tables: unique names, `tcp/IP:PORT` addresses, no address twice.
fn validate_hosts(src: &Source<'_>, raw: &[RawHost]) -> Result<Vec<Host>, ScenarioError> {
    let mut hosts: Vec<Host> = Vec::with_capacity(raw.len());
    for (i, h) in raw.iter().enumerate() {
        let key = |k: &str| format!("host[{i}].{k}");
        let name = h.name.get_ref();
        if !is_bare_key(name) {
            return Err(src.at(
                h.name.span(),
                key("name"),
                format!("invalid host name {name:?}; {NAME_HINT}, e.g. \"b\""),
            ));
        }
        if name == LOCAL_HOST {
            return Err(src.at(
                h.name.span(),
                key("name"),
                format!(
                    "{LOCAL_HOST:?} names this machine (the supervisor's) in reports; give the \
                     host another name, or leave out `host` on plugins that run here"
                ),
            ));
        }
        if let Some(j) = hosts.iter().position(|x| x.name == *name) {
            return Err(src.at(
                h.name.span(),
                key("name"),
                format!("duplicate host name {name:?}, already used by host[{j}]"),
            ));
        }
        let addr = parse_endpoint(h.address.get_ref())
            .map_err(|m| src.at(h.address.span(), key("address"), m))?;
        if let Some(j) = hosts.iter().position(|x| x.addr == addr) {
            return Err(src.at(
                h.address.span(),
                key("address"),
                format!(
                    "host[{j}] (`{}`) has the same address {}; one agent serves one host",
                    hosts[j].name,
                    h.address.get_ref()
                ),
            ));
        }
        hosts.push(Host {
            name: name.clone(),
            address: h.address.get_ref().clone(),
            addr,
        });
    }
    Ok(hosts)
}

/// The paths `--set` and `[sweep]` may name: `run.KEY`, `channel.N.KEY`, `plugin.NAME.KEY`,
/// `plugin.NAME.config.KEY`.
fn settable_path(path: &str) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["run", k] => !k.is_empty(),
        ["channel", n, k] => n.parse::<usize>().is_ok() && !k.is_empty(),
        ["plugin", name, k] => !name.is_empty() && !k.is_empty() && *k != "config",
        ["plugin", name, "config", k] => !name.is_empty() && !k.is_empty(),
        _ => false,
    }
}

/// The `[sweep]` table: `"PATH" = [values]`, or `NAME = { set = ["PATH", …], values = [...] }`.
fn validate_sweep(
    src: &Source<'_>,
    table: &Spanned<toml::Table>,
) -> Result<Vec<SweepAxis>, ScenarioError> {
    let at = |key: &str, message: String| src.at(table.span(), key, message);
    let mut axes = Vec::new();
    let mut points: usize = 1;
    for (name, value) in table.get_ref() {
        let key = format!("sweep.{name}");
        let (paths, values) = match value {
            toml::Value::Array(values) => (vec![name.clone()], values.clone()),
            toml::Value::Table(t) => {
                for k in t.keys() {
                    if k != "set" && k != "values" {
                        return Err(at(
                            &key,
                            format!("unknown key `{k}`: an axis table has `set` and `values`"),
                        ));
                    }
                }
                let set = match t.get("set") {
                    Some(toml::Value::Array(a)) => a
                        .iter()
                        .map(|p| p.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| at(&key, "`set` must list paths as strings".into()))?,
                    Some(toml::Value::String(p)) => vec![p.clone()],
                    _ => return Err(at(&key, "`set` must list the paths this axis sets".into())),
                };
                let values = match t.get("values") {
                    Some(toml::Value::Array(v)) => v.clone(),
                    _ => return Err(at(&key, "`values` must be an array".into())),
                };
                (set, values)
            }
            other => {
                return Err(at(
                    &key,
                    format!(
                        "expected an array of values or a table {{ set = [paths], values = [...] }}, \
                         got {}",
                        a_type(other)
                    ),
                ));
            }
        };
        if paths.is_empty() {
            return Err(at(&key, "an axis must set at least one path".into()));
        }
        for p in &paths {
            if !settable_path(p) {
                return Err(at(
                    &key,
                    format!(
                        "`{p}` is not a path a sweep can set: use run.KEY, channel.N.KEY, \
                         plugin.NAME.KEY or plugin.NAME.config.KEY"
                    ),
                ));
            }
        }
        if values.is_empty() || values.len() > MAX_SWEEP_VALUES {
            return Err(at(
                &key,
                format!(
                    "an axis takes 1 ..= {MAX_SWEEP_VALUES} values, got {}",
                    values.len()
                ),
            ));
        }
        if let Some(bad) = values
            .iter()
            .find(|v| matches!(v, toml::Value::Array(_) | toml::Value::Table(_)))
        {
            return Err(at(
                &key,
                format!(
                    "a sweep value is a number, string or boolean, got {}",
                    a_type(bad)
                ),
            ));
        }
        points = points.saturating_mul(values.len());
        if points > MAX_SWEEP_POINTS {
            return Err(at(
                &key,
                format!("the sweep has more than {MAX_SWEEP_POINTS} points; drop values or axes"),
            ));
        }
        axes.push(SweepAxis {
            name: name.clone(),
            paths,
            values: values.iter().map(toml::Value::to_string).collect(),
        });
    }
    Ok(axes)
}

/// Which ports are in use so far, and where: an output port belongs to one channel, an input
/// port to one channel, and no port is both.
#[derive(Default)]
struct PortUse {
    outputs: HashMap<Endpoint, Seen>,
    inputs: HashMap<Endpoint, Seen>,
}

/// The channel, and the line, where an endpoint was first used.
#[derive(Clone, Copy)]
struct Seen {
    channel: usize,
    line: usize,
}

impl PortUse {
    /// Records `endpoint` as an output (`from`) or input (`to`) of channel `c`, or explains
    /// why it cannot be one.
    fn claim(
        &mut self,
        src: &Source<'_>,
        plugins: &[Plugin],
        c: usize,
        side: Side,
        item: &ResolvedEndpoint,
    ) -> Result<(), ScenarioError> {
        let ResolvedEndpoint {
            endpoint,
            span,
            key,
        } = item;
        let name = format!("{}.{}", plugins[endpoint.plugin].name, endpoint.port);
        let (same, other) = match side {
            Side::From => (&mut self.outputs, &self.inputs),
            Side::To => (&mut self.inputs, &self.outputs),
        };
        let message = if let Some(seen) = other.get(endpoint) {
            let (was, now) = match side {
                Side::From => ("an input", "an output"),
                Side::To => ("an output", "an input"),
            };
            format!(
                "port {name} is {was} in channel[{}] (line {}) and cannot also be {now}; \
                 a port is either an input or an output",
                seen.channel, seen.line
            )
        } else if let Some(seen) = same.get(endpoint) {
            match side {
                _ if seen.channel == c => format!(
                    "{name} appears twice in this channel's `{}`; list each endpoint once",
                    side.key()
                ),
                Side::From => format!(
                    "output port {name} already feeds channel[{}] (line {}); an output port \
                     belongs to one channel, so list every consumer in that channel's `to`",
                    seen.channel, seen.line
                ),
                Side::To => format!(
                    "input port {name} is already fed by channel[{}] (line {}); an input port \
                     belongs to one channel, so list every producer in that channel's `from`",
                    seen.channel, seen.line
                ),
            }
        } else {
            let line = src.line_of(span.start);
            same.insert(endpoint.clone(), Seen { channel: c, line });
            return Ok(());
        };
        Err(src.at(span.clone(), key, message))
    }
}

/// The two ends of a channel.
#[derive(Clone, Copy)]
enum Side {
    From,
    To,
}

impl Side {
    fn key(self) -> &'static str {
        match self {
            Side::From => "from",
            Side::To => "to",
        }
    }
}

/// An endpoint with the span and key path of the string that named it.
struct ResolvedEndpoint {
    endpoint: Endpoint,
    span: Range<usize>,
    key: String,
}

fn validate_channels(
    src: &Source<'_>,
    raw: Vec<RawChannel>,
    plugins: &[Plugin],
    by_name: &HashMap<String, Group>,
) -> Result<Vec<Channel>, ScenarioError> {
    let mut ports = PortUse::default();
    let mut channels = Vec::with_capacity(raw.len());
    for (c, channel) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("channel[{c}].{k}");
        let from = resolve_endpoints(src, &channel.from, &key("from"), by_name)?;
        let to = resolve_endpoints(src, &channel.to, &key("to"), by_name)?;
        for item in &from {
            ports.claim(src, plugins, c, Side::From, item)?;
        }
        for item in &to {
            ports.claim(src, plugins, c, Side::To, item)?;
        }
        let pattern = match &channel.pattern {
            None => Pattern::Stream,
            Some(p) => one_of(src, p, &key("pattern"), &Pattern::ALL, |p| p.name())?,
        };
        if pattern == Pattern::RequestReply {
            if to.len() != 1 {
                return Err(src.at(
                    channel.to.span(),
                    key("to"),
                    format!(
                        "a request-reply channel has one server: `to` names one port, got {}; \
                         its clients are the ports in `from`",
                        to.len()
                    ),
                ));
            }
            if let Some(both) = from
                .iter()
                .find(|f| f.endpoint.plugin == to[0].endpoint.plugin)
            {
                let name = &plugins[both.endpoint.plugin].name;
                return Err(src.at(
                    both.span.clone(),
                    &both.key,
                    format!(
                        "plugin `{name}` is both a client and the server of this request-reply \
                         channel; a plugin cannot call itself (its call would wait for its own \
                         answer)"
                    ),
                ));
            }
            if let Some(cap) = &channel.capacity {
                return Err(src.at(
                    cap.span(),
                    key("capacity"),
                    "capacity does not apply to a request-reply channel: each client has one \
                     call in flight, so every link holds one message"
                        .to_string(),
                ));
            }
        }
        let slot_size = match &channel.slot_size {
            None => DEFAULT_SLOT_SIZE,
            Some(value) => slot_size(src, value, &key("slot_size"))?,
        };
        let capacity = match &channel.capacity {
            None if pattern == Pattern::RequestReply => 1,
            None => DEFAULT_CAPACITY,
            Some(value) => {
                let max = u64::from(MAX_CAPACITY);
                let n = integer_in(src, value, &key("capacity"), "capacity", 1, max)?;
                // `integer_in` bounded it by MAX_CAPACITY, a u32.
                u32::try_from(n).unwrap_or(MAX_CAPACITY)
            }
        };
        let lines = ChannelLines {
            from: src.line_of(channel.from.span().start),
            slot_size: channel
                .slot_size
                .as_ref()
                .map(|v| src.line_of(v.span().start)),
            capacity: channel
                .capacity
                .as_ref()
                .map(|v| src.line_of(v.span().start)),
            to: src.line_of(channel.to.span().start),
        };
        channels.push(Channel {
            from: from.into_iter().map(|r| r.endpoint).collect(),
            to: to.into_iter().map(|r| r.endpoint).collect(),
            slot_size,
            capacity,
            pattern,
            lines,
        });
    }
    Ok(channels)
}

/// A slot size in 1 ..= [`MAX_SLOT_SIZE`]: an integer, or a string for [`parse_size`].
/// A size in `min ..= max` bytes: an integer, or a string for [`parse_size`].
fn size_in(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
    min: u64,
    max: u64,
) -> Result<u64, ScenarioError> {
    let bytes = size_value(src, value, key)?;
    if (min..=max).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(src.at(
            value.span(),
            key,
            format!(
                "size of {bytes} bytes is out of range; expected {} ..= {}",
                show_size(min),
                show_size(max)
            ),
        ))
    }
}

/// `64 KiB`, `4 GiB`, `100 B`: a limit for messages.
fn show_size(b: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if b >= 1 << shift && b.is_multiple_of(1 << shift) {
            return format!("{} {unit}", b >> shift);
        }
    }
    format!("{b} B")
}

fn size_value(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
) -> Result<u64, ScenarioError> {
    Ok(match value.get_ref() {
        toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| {
            let message = format!("size must be positive, got {n}; {SIZE_HINT}");
            src.at(value.span(), key, message)
        })?,
        toml::Value::String(s) => parse_size(s).map_err(|m| src.at(value.span(), key, m))?,
        other => {
            let message = format!("expected a size, got {}; {SIZE_HINT}", a_type(other));
            return Err(src.at(value.span(), key, message));
        }
    })
}

/// A duration: an integer number of seconds, or a string for [`parse_duration`].
fn duration_value(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
) -> Result<Duration, ScenarioError> {
    match value.get_ref() {
        toml::Value::Integer(n) => Ok(Duration::from_secs(u64::try_from(*n).map_err(|_| {
            src.at(
                value.span(),
                key,
                format!("a duration must be positive, got {n}; {DURATION_HINT}"),
            )
        })?)),
        toml::Value::String(s) => parse_duration(s).map_err(|m| src.at(value.span(), key, m)),
        other => Err(src.at(
            value.span(),
            key,
            format!(
                "expected a duration, got {}; {DURATION_HINT}",
                a_type(other)
            ),
        )),
    }
}

fn slot_size(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
) -> Result<u32, ScenarioError> {
    let bytes = size_value(src, value, key)?;
    match u32::try_from(bytes) {
        Ok(bytes) if (1..=MAX_SLOT_SIZE).contains(&bytes) => Ok(bytes),
        _ => Err(src.at(
            value.span(),
            key,
            format!(
                "slot size of {bytes} bytes is out of range; expected 1 ..= 256 MiB, \
                 e.g. 4096, \"4KiB\", \"1MiB\""
            ),
        )),
    }
}

/// Resolves `"plugin.port"` strings; each result keeps the span of its string.
fn resolve_endpoints(
    src: &Source<'_>,
    raw: &Spanned<RawEndpoints>,
    key: &str,
    by_name: &HashMap<String, Group>,
) -> Result<Vec<ResolvedEndpoint>, ScenarioError> {
    let items: Vec<(String, &str, Range<usize>)> = match raw.get_ref() {
        RawEndpoints::One(s) => vec![(key.to_owned(), s.as_str(), raw.span())],
        RawEndpoints::Many(list) => {
            if list.is_empty() {
                return Err(src.at(
                    raw.span(),
                    key,
                    "empty list; expected \"plugin.port\" or a non-empty array of them, \
                     e.g. [\"consumer.in\"]",
                ));
            }
            list.iter()
                .enumerate()
                .map(|(j, s)| (format!("{key}[{j}]"), s.get_ref().as_str(), s.span()))
                .collect()
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (item_key, text, span) in items {
        let Some((plugin, port)) = text.split_once('.') else {
            return Err(src.at(
                span,
                item_key,
                format!("{text:?} has no port; {ENDPOINT_HINT}"),
            ));
        };
        // `name`, `name#i` (one copy) or `name[*]` (every copy, in index order).
        let (base, which) = if let Some(base) = plugin.strip_suffix("[*]") {
            (base, Which::All)
        } else if let Some((base, digits)) = plugin.split_once('#') {
            // Plain decimal digits only: `#01`, `#+1` or `#` name no instance.
            let canonical = digits
                .parse::<usize>()
                .ok()
                .filter(|i| i.to_string() == digits);
            match canonical {
                Some(i) => (base, Which::One(i)),
                None => (plugin, Which::Bad),
            }
        } else {
            (plugin, Which::Plain)
        };
        if !is_bare_key(base) || !is_bare_key(port) || matches!(which, Which::Bad) {
            return Err(src.at(
                span,
                item_key,
                format!(
                    "malformed endpoint {text:?}; {ENDPOINT_HINT}, or \"plugin#0.port\" for one \
                     instance, \"plugin[*].port\" for all (plugin and port names: {NAME_HINT})"
                ),
            ));
        }
        let Some(group) = by_name.get(base) else {
            let mut known: Vec<(&str, usize)> =
                by_name.iter().map(|(n, g)| (n.as_str(), g.table)).collect();
            known.sort_unstable_by_key(|&(_, table)| table);
            let known: Vec<&str> = known.into_iter().map(|(n, _)| n).collect();
            return Err(src.at(
                span,
                item_key,
                format!(
                    "unknown plugin {base:?} in {text:?}; plugins are: {}",
                    known.join(", ")
                ),
            ));
        };
        let copies: Vec<usize> = match which {
            Which::Plain if group.count == 1 => vec![group.first],
            Which::Plain => {
                return Err(src.at(
                    span,
                    item_key,
                    format!(
                        "plugin {base:?} has {} instances; name one as \"{base}#0.{port}\" … \
                         \"{base}#{}.{port}\", or all of them as \"{base}[*].{port}\"",
                        group.count,
                        group.count - 1
                    ),
                ));
            }
            Which::One(i) if group.count > 1 && i < group.count => vec![group.first + i],
            Which::One(_) => {
                return Err(src.at(
                    span,
                    item_key,
                    format!(
                        "{text:?}: plugin {base:?} has {} instance(s){}",
                        group.count,
                        if group.count == 1 {
                            format!("; name it as \"{base}.{port}\"")
                        } else {
                            format!(", #0 … #{}", group.count - 1)
                        }
                    ),
                ));
            }
            Which::All => (group.first..group.first + group.count).collect(),
            Which::Bad => unreachable!("refused above"),
        };
        for index in copies {
            out.push(ResolvedEndpoint {
                endpoint: Endpoint {
                    plugin: index,
                    port: port.to_owned(),
                },
                span: span.clone(),
                key: item_key.clone(),
            });
        }
    }
    Ok(out)
}

/// Applies `--set PATH=VALUE` overrides to a scenario's text and returns the new text.
///
/// Paths: `run.KEY`, `channel.N.KEY` (N: 0-based index), `plugin.NAME.KEY` and
/// `plugin.NAME.config.KEY`, where NAME is a plugin table's `name`. VALUE is read as a TOML
/// value (`64`, `"4KiB"`, `true`, `["shm"]`), or else as a string (`4KiB`, `futex`). The
/// result is then checked like any scenario, so a wrong key or value is refused as usual.
pub fn apply_overrides(text: &str, sets: &[String]) -> Result<String, String> {
    let mut doc: toml::Table =
        toml::from_str(text).map_err(|e| format!("the scenario does not parse: {e}"))?;
    for set in sets {
        let (path, value) = set
            .split_once('=')
            .ok_or_else(|| format!("{set:?}: expected PATH=VALUE, e.g. run.repeat=3"))?;
        let value = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        let parts: Vec<&str> = path.split('.').collect();
        let bad = |why: &str| format!("{set:?}: {why}");
        let table: &mut toml::Table = match parts.as_slice() {
            ["run", _] => doc
                .entry("run")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| bad("`run` is not a table"))?,
            ["channel", n, _] => {
                let n: usize = n.parse().map_err(|_| bad("expected channel.N.KEY"))?;
                let channels = doc
                    .get_mut("channel")
                    .and_then(toml::Value::as_array_mut)
                    .ok_or_else(|| bad("the scenario has no channels"))?;
                let count = channels.len();
                channels
                    .get_mut(n)
                    .and_then(toml::Value::as_table_mut)
                    .ok_or_else(|| {
                        bad(&format!(
                            "there are {count} channels, 0 … {}",
                            count.saturating_sub(1)
                        ))
                    })?
            }
            ["plugin", name, rest @ ..] if !rest.is_empty() && rest.len() <= 3 => {
                let plugins = doc
                    .get_mut("plugin")
                    .and_then(toml::Value::as_array_mut)
                    .ok_or_else(|| bad("the scenario has no plugins"))?;
                let names: Vec<String> = plugins
                    .iter()
                    .filter_map(|p| p.get("name")?.as_str().map(str::to_string))
                    .collect();
                let plugin = plugins
                    .iter_mut()
                    .find(|p| p.get("name").and_then(toml::Value::as_str) == Some(name))
                    .and_then(toml::Value::as_table_mut)
                    .ok_or_else(|| {
                        bad(&format!(
                            "no plugin {name:?}; plugins are {}",
                            names.join(", ")
                        ))
                    })?;
                match rest {
                    [_] => plugin,
                    ["config", _] => plugin
                        .entry("config")
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                        .as_table_mut()
                        .ok_or_else(|| bad("`config` is not a table"))?,
                    _ => return Err(bad("expected plugin.NAME.KEY or plugin.NAME.config.KEY")),
                }
            }
            _ => {
                return Err(bad(
                    "unknown path; use run.KEY, channel.N.KEY, plugin.NAME.KEY or \
                     plugin.NAME.config.KEY",
                ));
            }
        };
        let key = parts.last().expect("a path has parts");
        table.insert((*key).to_string(), value);
    }
    toml::to_string(&doc).map_err(|e| format!("writing the overridden scenario: {e}"))
}

/// How an endpoint names a plugin's copies.
enum Which {
    Plain,
    One(usize),
    All,
    Bad,
}

fn validate_run(src: &Source<'_>, raw: RawRun) -> Result<RunConfig, ScenarioError> {
    let mut run = RunConfig::default();
    if let Some(list) = &raw.backends {
        let valid = BackendKind::CHOICES.map(BackendKind::name).join(", ");
        if list.get_ref().is_empty() {
            return Err(src.at(
                list.span(),
                "run.backends",
                format!("empty list; expected some of {valid}, e.g. [\"shm\", \"msg\"]"),
            ));
        }
        run.backends.clear();
        for (j, name) in list.get_ref().iter().enumerate() {
            let key = format!("run.backends[{j}]");
            let Some(kind) = BackendKind::from_name(name.get_ref()) else {
                return Err(src.at(
                    name.span(),
                    key,
                    format!(
                        "unknown backend {:?}; expected one of {valid}",
                        name.get_ref()
                    ),
                ));
            };
            if run.backends.contains(&kind) {
                return Err(src.at(
                    name.span(),
                    key,
                    format!(
                        "backend {:?} is listed twice; list each backend once",
                        kind.name()
                    ),
                ));
            }
            run.backends.push(kind);
        }
    }
    if let Some(value) = &raw.repeat {
        let repeat = integer_in(src, value, "run.repeat", "repeat", 1, u64::from(MAX_REPEAT))?;
        // `integer_in` bounded it by MAX_REPEAT, a u32.
        run.repeat = u32::try_from(repeat).unwrap_or(MAX_REPEAT);
    }
    if let Some(value) = &raw.timeout {
        let timeout = match value.get_ref() {
            toml::Value::Integer(n) => Duration::from_secs(u64::try_from(*n).map_err(|_| {
                src.at(
                    value.span(),
                    "run.timeout",
                    format!("timeout must be positive, got {n}; {DURATION_HINT}"),
                )
            })?),
            toml::Value::String(s) => {
                parse_duration(s).map_err(|m| src.at(value.span(), "run.timeout", m))?
            }
            other => {
                return Err(src.at(
                    value.span(),
                    "run.timeout",
                    format!(
                        "expected a duration, got {}; {DURATION_HINT}",
                        a_type(other)
                    ),
                ));
            }
        };
        if timeout.is_zero() {
            return Err(src.at(
                value.span(),
                "run.timeout",
                format!("timeout must be greater than zero; {DURATION_HINT}"),
            ));
        }
        if timeout > MAX_TIMEOUT {
            return Err(src.at(
                value.span(),
                "run.timeout",
                format!(
                    "timeout {timeout:?} is longer than the largest accepted, {}h (7 days)",
                    MAX_TIMEOUT.as_secs() / 3600
                ),
            ));
        }
        run.timeout = timeout;
    }
    if let Some(wait) = &raw.wait {
        run.wait = one_of(src, wait, "run.wait", &WaitMode::ALL, |w| w.name())?;
    }
    if let Some(verify) = &raw.verify {
        run.verify = one_of(src, verify, "run.verify", &Verify::ALL, |v| v.name())?;
    }
    if let Some(value) = &raw.seed {
        run.seed = integer_in(src, value, "run.seed", "seed", 0, i64::MAX as u64)?;
    }
    if let Some(listen) = &raw.listen {
        run.listen = Some(
            parse_endpoint(listen.get_ref()).map_err(|m| src.at(listen.span(), "run.listen", m))?,
        );
    }
    Ok(run)
}

/// An integer value in `min ..= max`.
fn integer_in(
    src: &Source<'_>,
    value: &Spanned<toml::Value>,
    key: &str,
    what: &str,
    min: u64,
    max: u64,
) -> Result<u64, ScenarioError> {
    let expected = format!("expected an integer in {min} ..= {max}");
    match value.get_ref() {
        toml::Value::Integer(n) => match u64::try_from(*n) {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(src.at(
                value.span(),
                key,
                format!("{what} {n} is out of range; {expected}"),
            )),
        },
        other => Err(src.at(
            value.span(),
            key,
            format!(
                "{what} must be an integer, got {}; {expected}",
                a_type(other)
            ),
        )),
    }
}

/// The item of `all` whose name is `value`.
fn one_of<T: Copy>(
    src: &Source<'_>,
    value: &Spanned<String>,
    key: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<T, ScenarioError> {
    all.iter()
        .copied()
        .find(|&t| name(t) == value.get_ref())
        .ok_or_else(|| {
            let valid: Vec<&str> = all.iter().map(|&t| name(t)).collect();
            src.at(
                value.span(),
                key,
                format!(
                    "unknown value {:?}; expected one of {}",
                    value.get_ref(),
                    valid.join(", ")
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in [
            "",
            "KiB",
            "4.5KiB",
            "-1",
            "4 kb",
            "4KB",
            "4Kib",
            "x",
            "4  KiB",
            " 4",
            "99999999999999999999",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(
                err.contains("sizes look like") || err.contains("too large"),
                "{bad}: {err}"
            );
        }
        assert!(
            parse_size("4KB")
                .unwrap_err()
                .contains("did you mean \"KiB\"")
        );
        assert!(
            parse_size("18446744073709551615GiB")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "s", "1.5s", "10x", "-3s", "1 d"] {
            assert!(
                parse_duration(bad)
                    .unwrap_err()
                    .contains("durations look like"),
                "{bad}"
            );
        }
        assert!(
            parse_duration("18446744073709551615m")
                .unwrap_err()
                .contains("too long")
        );
    }

    #[test]
    fn key_paths() {
        assert_eq!(join_key("", "run"), "run");
        assert_eq!(
            join_key("plugin[0].config", "a b"),
            "plugin[0].config.\"a b\""
        );
        let text = "name = \"x\"\n[[plugin]]\nname = \"a\"\n[[plugin]]\nname = \"b\"\nconfig = { k = 1 }\n";
        let doc = toml::de::DeTable::parse(text).unwrap();
        let at = |needle: &str| locate_in_table(doc.get_ref(), text.rfind(needle).unwrap(), "");
        assert_eq!(at("k =").as_deref(), Some("plugin[1].config.k"));
        assert_eq!(at("\"a\"").as_deref(), Some("plugin[0].name"));
        assert_eq!(at("[[plugin]]").as_deref(), Some("plugin[1]"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let p = Path::new("odd.toml");
        for text in [
            "",
            "\u{feff}",
            "[[plugin]]",
            "plugin = 3",
            "run = []",
            "name = 1",
            "[a.b.c]\nx=1",
            "name=\"x\"\n[[plugin]]\nname=\"\"\nwasm=\"\"",
        ] {
            assert!(Scenario::parse(p, text).is_err(), "{text:?}");
        }
    }
}
