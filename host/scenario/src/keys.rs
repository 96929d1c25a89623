//! Every scenario key, declared once: its path, type, default, limits, whether `--set` and
//! `[sweep]` may set it, and a one-line doc. Validation takes its limits from here,
//! [`crate::overrides::settable_path`] its paths, and [`key_reference`] renders the table.
//!
//! The serde types in `raw` still name the keys a file may hold (serde needs a struct); the
//! tests check that every field there has a declaration here and every declaration a field.

use std::fmt::Write as _;
use std::time::Duration;

use crate::model::{
    BackendKind, DEFAULT_CAPACITY, DEFAULT_MEMORY, DEFAULT_MIN_TIME, DEFAULT_SLOT_SIZE,
    DEFAULT_STACK, DEFAULT_TABLE_ELEMENTS, DEFAULT_TIMEOUT, MAX_CAPACITY, MAX_INSTANCES,
    MAX_MEMORY, MAX_MIN_TIME, MAX_REPEAT, MAX_SLOT_SIZE, MAX_STACK, MAX_TABLE_ELEMENTS,
    MAX_TIMEOUT, Overflow, Pattern, SyncMode, Verify, WaitMode,
};
use crate::units::show_size;

/// One scenario key.
///
/// Numbers (`default`, `min`, `max`) are in the key's unit: bytes for a [`KeyType::Size`],
/// milliseconds for a [`KeyType::Duration`], the count for a [`KeyType::Integer`].
#[derive(Debug, Clone, Copy)]
pub struct KeyDecl {
    /// The key's path as `--set` writes it, with `N` for a table's 0-based index, `NAME` for a
    /// plugin's name and `KEY` for a key of the plugin's choosing: `run.timeout`,
    /// `channel.N.slot_size`, `plugin.NAME.memory`, `plugin.NAME.config.KEY`.
    pub path: &'static str,
    /// What the value is.
    pub ty: KeyType,
    /// What a scenario that leaves the key out gets.
    pub default: KeyDefault,
    /// The smallest accepted value, where there is one.
    pub min: Option<u64>,
    /// The largest accepted value, where there is one.
    pub max: Option<u64>,
    /// Whether `--set PATH=VALUE` and a `[sweep]` axis may set it.
    pub settable: bool,
    /// What it is for, in one line.
    pub doc: &'static str,
}

/// The type of a key's value.
#[derive(Debug, Clone, Copy)]
pub enum KeyType {
    /// A string.
    String,
    /// A path, relative to the scenario's folder.
    Path,
    /// A size: bytes as an integer, or a string such as `"4KiB"`.
    Size,
    /// A duration: seconds as an integer, or a string such as `"500ms"`.
    Duration,
    /// An integer.
    Integer,
    /// `true` or `false`.
    Bool,
    /// One of these names.
    OneOf(fn() -> Vec<&'static str>),
    /// An array of these names.
    ListOf(fn() -> Vec<&'static str>),
    /// `"plugin.port"`, or an array of them.
    Endpoints,
    /// `"tcp/IP:PORT"`.
    Address,
    /// An inline table of integers, strings, booleans and floats.
    Config,
    /// A table.
    Table,
    /// An array of tables.
    Tables,
}

/// What a scenario that leaves a key out gets.
#[derive(Debug, Clone, Copy)]
pub enum KeyDefault {
    /// Nothing: the key must be given.
    Required,
    /// This number, in the key's unit.
    Number(u64),
    /// This value, as a scenario writes it (`"stream"`, `{}`).
    Text(&'static str),
    /// No value; what leaving it out means (`none: this machine`).
    Note(&'static str),
}

impl KeyDecl {
    /// The key as its table writes it: the last part of the path that is not a placeholder
    /// (`slot_size` of `channel.N.slot_size`, `config` of `plugin.NAME.config.KEY`).
    pub fn name(&self) -> &'static str {
        self.path
            .rsplit('.')
            .find(|part| !PLACEHOLDERS.contains(part))
            .unwrap_or(self.path)
    }

    /// Whether `path` (as `--set` writes it: `channel.0.capacity`) names this key.
    pub fn matches(&self, path: &str) -> bool {
        let mut want = self.path.split('.');
        let mut have = path.split('.');
        loop {
            match (want.next(), have.next()) {
                (None, None) => return true,
                (Some("N"), Some(n)) if n.parse::<usize>().is_ok() => {}
                (Some("NAME" | "KEY"), Some(s)) if !s.is_empty() => {}
                (Some(w), Some(h)) if w == h && !PLACEHOLDERS.contains(&w) => {}
                _ => return false,
            }
        }
    }

    /// `min ..= max` as a [`Duration`] range, for a duration key.
    pub(crate) fn duration_bounds(&self) -> (Duration, Duration) {
        (
            Duration::from_millis(self.min.unwrap_or(0)),
            Duration::from_millis(self.max.unwrap_or(u64::MAX)),
        )
    }

    /// The key's type, for the reference.
    fn type_text(&self) -> String {
        let quoted = |names: Vec<&str>| {
            let names: Vec<String> = names.iter().map(|n| format!("`\"{n}\"`")).collect();
            names.join(", ")
        };
        match self.ty {
            KeyType::String => "string".into(),
            KeyType::Path => "path".into(),
            KeyType::Size => "size".into(),
            KeyType::Duration => "duration".into(),
            KeyType::Integer => "integer".into(),
            KeyType::Bool => "boolean".into(),
            KeyType::OneOf(names) => quoted(names()),
            KeyType::ListOf(names) => format!("array of {}", quoted(names())),
            KeyType::Endpoints => "`\"plugin.port\"` or array of them".into(),
            KeyType::Address => "`\"tcp/IP:PORT\"`".into(),
            KeyType::Config => "inline table".into(),
            KeyType::Table => "table".into(),
            KeyType::Tables => "array of tables".into(),
        }
    }

    /// A number of this key as a scenario writes it: `"64KiB"`, `"60s"`, `16`.
    fn number_text(&self, n: u64) -> String {
        match self.ty {
            KeyType::Size => match size_text(n) {
                Some(text) => format!("\"{text}\""),
                None => n.to_string(),
            },
            KeyType::Duration => format!("\"{}\"", duration_text(n)),
            _ => n.to_string(),
        }
    }

    /// The default, for the reference.
    fn default_text(&self) -> String {
        match self.default {
            KeyDefault::Required => "required".into(),
            KeyDefault::Number(n) => format!("`{}`", self.number_text(n)),
            KeyDefault::Text(text) => format!("`{text}`"),
            KeyDefault::Note(note) => note.into(),
        }
    }

    /// The limits, for the reference and for messages: `64 KiB ..= 4 GiB`, `1 ..= 65536`.
    pub(crate) fn limits_text(&self) -> String {
        let show = |n: u64| match self.ty {
            KeyType::Size => show_size(n),
            KeyType::Duration => duration_text(n),
            _ => n.to_string(),
        };
        match (self.min, self.max) {
            (Some(min), Some(max)) => format!("{} ..= {}", show(min), show(max)),
            (Some(min), None) => format!("at least {}", show(min)),
            (None, Some(max)) => format!("at most {}", show(max)),
            (None, None) => String::new(),
        }
    }
}

/// The parts of a [`KeyDecl::path`] that stand for a name or index.
const PLACEHOLDERS: [&str; 3] = ["N", "NAME", "KEY"];

/// `64KiB`, `4GiB`: a size as a scenario writes it, when a unit divides it.
fn size_text(b: u64) -> Option<String> {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if b >= 1 << shift && b.is_multiple_of(1 << shift) {
            return Some(format!("{}{unit}", b >> shift));
        }
    }
    None
}

/// `500ms`, `60s`, `168h`: milliseconds as a scenario writes them.
pub(crate) fn duration_text(ms: u64) -> String {
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        format!("{s}s")
    }
}

/// Milliseconds of a whole number of seconds.
const fn millis(d: Duration) -> u64 {
    d.as_secs() * 1000
}

/// The smallest `plugin.memory` and `plugin.stack`: 64 KiB, one wasm page.
const MIN_PLUGIN_SIZE: u64 = 64 << 10;

/// A key without a default or limits; `settable` and `default` set below.
const fn key(path: &'static str, ty: KeyType, doc: &'static str) -> KeyDecl {
    KeyDecl {
        path,
        ty,
        default: KeyDefault::Required,
        min: None,
        max: None,
        settable: false,
        doc,
    }
}

impl KeyDecl {
    const fn default(mut self, default: KeyDefault) -> KeyDecl {
        self.default = default;
        self
    }

    const fn range(mut self, min: u64, max: u64) -> KeyDecl {
        self.min = Some(min);
        self.max = Some(max);
        self
    }

    const fn settable(mut self) -> KeyDecl {
        self.settable = true;
        self
    }
}

fn patterns() -> Vec<&'static str> {
    Pattern::ALL.map(Pattern::name).to_vec()
}

fn overflows() -> Vec<&'static str> {
    Overflow::ALL.map(Overflow::name).to_vec()
}

fn syncs() -> Vec<&'static str> {
    SyncMode::ALL.map(SyncMode::name).to_vec()
}

fn backends() -> Vec<&'static str> {
    BackendKind::CHOICES.map(BackendKind::name).to_vec()
}

fn wait_modes() -> Vec<&'static str> {
    WaitMode::ALL.map(WaitMode::name).to_vec()
}

fn verify_settings() -> Vec<&'static str> {
    Verify::ALL.map(Verify::name).to_vec()
}

pub(crate) const INSTANCES: KeyDecl = key(
    "plugin.NAME.instances",
    KeyType::Integer,
    "copies of the plugin, each its own process, named `name#0` … `name#N-1`",
)
.default(KeyDefault::Number(1))
.range(1, MAX_INSTANCES as u64)
.settable();

pub(crate) const MEMORY: KeyDecl = key(
    "plugin.NAME.memory",
    KeyType::Size,
    "linear memory the plugin may have beyond the windows the scenario gives it",
)
.default(KeyDefault::Number(DEFAULT_MEMORY))
.range(MIN_PLUGIN_SIZE, MAX_MEMORY)
.settable();

pub(crate) const STACK: KeyDecl = key(
    "plugin.NAME.stack",
    KeyType::Size,
    "native stack the plugin's wasm code may use",
)
.default(KeyDefault::Number(DEFAULT_STACK))
.range(MIN_PLUGIN_SIZE, MAX_STACK)
.settable();

pub(crate) const TABLE_ELEMENTS: KeyDecl = key(
    "plugin.NAME.table_elements",
    KeyType::Integer,
    "elements a table of the plugin may grow to",
)
.default(KeyDefault::Number(DEFAULT_TABLE_ELEMENTS))
.range(1, MAX_TABLE_ELEMENTS)
.settable();

pub(crate) const CPU: KeyDecl = key(
    "plugin.NAME.cpu",
    KeyType::Duration,
    "CPU time (user + system) the plugin's worker process may use, host calls included",
)
.default(KeyDefault::Note("none: the run's `timeout` bounds it"))
.range(1, millis(MAX_TIMEOUT))
.settable();

pub(crate) const SLOT_SIZE: KeyDecl = key(
    "channel.N.slot_size",
    KeyType::Size,
    "the largest message the channel carries",
)
.default(KeyDefault::Number(DEFAULT_SLOT_SIZE as u64))
.range(1, MAX_SLOT_SIZE as u64)
.settable();

pub(crate) const CAPACITY: KeyDecl = key(
    "channel.N.capacity",
    KeyType::Integer,
    "messages in flight per producer→consumer link; not on a request-reply channel",
)
.default(KeyDefault::Number(DEFAULT_CAPACITY as u64))
.range(1, MAX_CAPACITY as u64)
.settable();

pub(crate) const REPEAT: KeyDecl = key(
    "run.repeat",
    KeyType::Integer,
    "exactly this many measured rounds (each backend once per round) per sweep point",
)
.default(KeyDefault::Note(
    "none: `compare` runs rounds until `min_time` and 5 rounds; `run` runs once",
))
.range(1, MAX_REPEAT as u64)
.settable();

pub(crate) const MIN_TIME: KeyDecl = key(
    "run.min_time",
    KeyType::Duration,
    "measured time `compare` gathers per backend per sweep point when `repeat` is not given",
)
.default(KeyDefault::Number(millis(DEFAULT_MIN_TIME)))
.range(0, millis(MAX_MIN_TIME))
.settable();

pub(crate) const TIMEOUT: KeyDecl = key(
    "run.timeout",
    KeyType::Duration,
    "deadline of each run, counted from its start (worker start-up included, compilation not)",
)
.default(KeyDefault::Number(millis(DEFAULT_TIMEOUT)))
.range(1, millis(MAX_TIMEOUT))
.settable();

pub(crate) const SEED: KeyDecl = key(
    "run.seed",
    KeyType::Integer,
    "seeds WASI `random_get` (mixed with the plugin's name), so runs repeat",
)
.default(KeyDefault::Number(0))
.range(0, i64::MAX.unsigned_abs())
.settable();

/// Every scenario key, in the order of the book's reference (docs/src/reference/scenario-keys.md).
pub static KEYS: &[KeyDecl] = &[
    key("name", KeyType::String, "the scenario's name; not empty"),
    key(
        "description",
        KeyType::String,
        "what the scenario is for, in words",
    )
    .default(KeyDefault::Note("none")),
    key(
        "host",
        KeyType::Tables,
        "machines that run an agent; without them every plugin runs on this machine",
    )
    .default(KeyDefault::Note("none")),
    key(
        "host.N.name",
        KeyType::String,
        "the host's unique name: letters, digits, `_` and `-`; not `local`",
    ),
    key(
        "host.N.address",
        KeyType::Address,
        "the agent's `--listen` endpoint, a numeric IP (IPv6 in brackets); unique",
    ),
    key(
        "plugin",
        KeyType::Tables,
        "the plugins, at least one; `[plugin]` (a single table) is an error",
    ),
    key(
        "plugin.NAME.host",
        KeyType::String,
        "the `[[host]]` whose agent runs the plugin's workers",
    )
    .default(KeyDefault::Note("none: this machine"))
    .settable(),
    key(
        "plugin.NAME.name",
        KeyType::String,
        "the plugin's unique name: letters, digits, `_` and `-`",
    )
    .settable(),
    key(
        "plugin.NAME.wasm",
        KeyType::Path,
        "the `.wasm` or `.wat` file; it must exist unless `build` is set",
    )
    .settable(),
    key(
        "plugin.NAME.build",
        KeyType::String,
        "shell command that makes `wasm`, run when it is missing or older than `source`",
    )
    .default(KeyDefault::Note("none"))
    .settable(),
    key(
        "plugin.NAME.source",
        KeyType::Path,
        "folder (or file) whose files, when newer than `wasm`, make `build` run",
    )
    .default(KeyDefault::Note("none"))
    .settable(),
    key(
        "plugin.NAME.config.KEY",
        KeyType::Config,
        "values (integer, string, boolean or float) handed to the plugin as text",
    )
    .default(KeyDefault::Text("{}"))
    .settable(),
    INSTANCES,
    MEMORY,
    STACK,
    TABLE_ELEMENTS,
    CPU,
    key(
        "channel",
        KeyType::Tables,
        "the channels; a scenario may have none",
    )
    .default(KeyDefault::Note("none")),
    key(
        "channel.N.from",
        KeyType::Endpoints,
        "the producers' ports; several (or `\"plugin[*].port\"`) mean fan-in",
    )
    .settable(),
    key(
        "channel.N.to",
        KeyType::Endpoints,
        "the consumers' ports; several mean fan-out (every consumer gets every message)",
    )
    .settable(),
    SLOT_SIZE,
    CAPACITY,
    key(
        "channel.N.pattern",
        KeyType::OneOf(patterns),
        "`request-reply`: every `from` port is a client calling the one `to` port",
    )
    .default(KeyDefault::Text("\"stream\""))
    .settable(),
    key(
        "channel.N.overflow",
        KeyType::OneOf(overflows),
        "a publish that finds a link full: wait for room (`block`), drop the new message for \
         that link (`drop-newest`, every backend), or replace the oldest unread one \
         (`drop-oldest`, `shm` only); a drop is counted and `publish` succeeds; not on a \
         request-reply channel",
    )
    .default(KeyDefault::Text("\"block\""))
    .settable(),
    key(
        "channel.N.sync",
        KeyType::OneOf(syncs),
        "how an `shm` channel synchronises: its lock-free rings (`lock-free`), or the \
         textbook's bounded buffer, one per channel shared by all its producers, guarded by \
         counting semaphores and a mutex (`semaphores`) or by a mutex and two condition \
         variables (`mutex`); other backends refuse anything but `lock-free`; not with \
         `overflow` other than `block`, nor on a request-reply channel",
    )
    .default(KeyDefault::Text("\"lock-free\""))
    .settable(),
    key(
        "sweep",
        KeyType::Table,
        "axes `compare` and `run` vary: `\"PATH\" = [values]` or `NAME = { set, values[, with] }`",
    )
    .default(KeyDefault::Note("none")),
    key("run", KeyType::Table, "how the scenario runs").default(KeyDefault::Note("all defaults")),
    key(
        "run.backends",
        KeyType::ListOf(backends),
        "the backends each run uses, each once; `auto` picks `shm` or `zenoh` per lane",
    )
    .default(KeyDefault::Note(
        "`[\"shm\", \"msg\"]`; with `[[host]]` tables `[\"zenoh\", \"auto\"]`",
    ))
    .settable(),
    key(
        "run.listen",
        KeyType::Address,
        "this machine's endpoint as the hosts reach it; only with `[[host]]` tables",
    )
    .default(KeyDefault::Note("none"))
    .settable(),
    key(
        "run.seal",
        KeyType::Bool,
        "every `zenoh` link is TLS with mutual authentication under a certificate authority \
         made for the run, so nobody outside the run can read or inject its messages; `false` \
         only without `[[host]]` tables (to measure what TLS costs)",
    )
    .default(KeyDefault::Text("true"))
    .settable(),
    REPEAT,
    MIN_TIME,
    TIMEOUT,
    key(
        "run.wait",
        KeyType::OneOf(wait_modes),
        "how a blocked call waits: spin, never sleeping (`zenoh` yields the CPU between looks, to its engine's threads), sleep at once (`futex`), or spin briefly then sleep",
    )
    .default(KeyDefault::Text("\"adaptive\""))
    .settable(),
    key(
        "run.verify",
        KeyType::OneOf(verify_settings),
        "`off`: the host computes no digests of what is published and received",
    )
    .default(KeyDefault::Text("\"full\""))
    .settable(),
    SEED,
];

/// The key reference: a Markdown table of [`KEYS`] (key, type, default, limits, doc).
pub fn key_reference() -> String {
    let mut out = String::from("| key | type | default | limits | doc |\n|---|---|---|---|---|\n");
    for key in KEYS {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            key.path,
            key.type_text(),
            key.default_text(),
            key.limits_text(),
            key.doc
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

    use super::*;
    use crate::raw::{RawChannel, RawHost, RawPlugin, RawRun, RawScenario};
    use crate::{Scenario, apply_overrides};

    /// The field names serde's derive gives `deserialize_struct` for `T`: the keys its table
    /// accepts (`deny_unknown_fields` refuses every other).
    fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
        #[derive(Debug)]
        struct Stop;
        impl std::fmt::Display for Stop {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("stop")
            }
        }
        impl std::error::Error for Stop {}
        impl de::Error for Stop {
            fn custom<M: std::fmt::Display>(_: M) -> Stop {
                Stop
            }
        }
        struct Catch<'a>(&'a mut &'static [&'static str]);
        impl<'de> Deserializer<'de> for Catch<'_> {
            type Error = Stop;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
                Err(Stop)
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Stop> {
                *self.0 = fields;
                Err(Stop)
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
                byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
                identifier ignored_any
            }
        }
        let mut fields: &'static [&'static str] = &[];
        assert!(T::deserialize(Catch(&mut fields)).is_err());
        assert!(
            !fields.is_empty(),
            "{} is not a struct",
            std::any::type_name::<T>()
        );
        fields
    }

    /// Each serde table with the prefix its keys' paths have.
    fn tables() -> [(&'static str, &'static [&'static str]); 5] {
        [
            ("", fields_of::<RawScenario>()),
            ("host.N.", fields_of::<RawHost>()),
            ("plugin.NAME.", fields_of::<RawPlugin>()),
            ("channel.N.", fields_of::<RawChannel>()),
            ("run.", fields_of::<RawRun>()),
        ]
    }

    /// Whether `decl` declares `field` of the table whose paths start with `prefix`: its path
    /// is `prefix` + `field`, followed by placeholders only (`plugin.NAME.config.KEY`).
    fn declares(decl: &KeyDecl, prefix: &str, field: &str) -> bool {
        let Some(rest) = decl.path.strip_prefix(prefix) else {
            return false;
        };
        let mut parts = rest.split('.');
        parts.next() == Some(field) && parts.all(|p| PLACEHOLDERS.contains(&p))
    }

    #[test]
    fn every_key_serde_accepts_is_declared_once_with_a_doc_line() {
        for (prefix, fields) in tables() {
            for field in fields {
                let decls: Vec<&KeyDecl> =
                    KEYS.iter().filter(|d| declares(d, prefix, field)).collect();
                assert_eq!(
                    decls.len(),
                    1,
                    "`{prefix}{field}` is a key of the scenario format (a field of its serde \
                     struct) and needs exactly one declaration in KEYS (keys.rs)"
                );
                let doc = decls[0].doc;
                assert!(
                    !doc.trim().is_empty() && !doc.contains(['\n', '|']),
                    "`{prefix}{field}`: the doc is one line without `|`: {doc:?}"
                );
            }
        }
        for decl in KEYS {
            assert!(
                tables()
                    .iter()
                    .any(|(prefix, fields)| fields.iter().any(|f| declares(decl, prefix, f))),
                "`{}` is declared but no serde struct accepts it",
                decl.path
            );
        }
    }

    #[test]
    fn every_declared_key_is_in_the_reference() {
        let reference = key_reference();
        assert_eq!(reference.lines().count(), KEYS.len() + 2, "{reference}");
        for decl in KEYS {
            let row = reference
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", decl.path)))
                .unwrap_or_else(|| panic!("`{}` is not in:\n{reference}", decl.path));
            assert!(row.ends_with(&format!("| {} |", decl.doc)), "{row}");
            assert_eq!(row.matches(" | ").count(), 4, "{row}");
        }
        assert!(reference.contains(
            "| `channel.N.slot_size` | size | `\"64KiB\"` | 1 B ..= 256 MiB | the largest message"
        ));
        assert!(reference.contains("| `run.timeout` | duration | `\"60s\"` | 1ms ..= 168h |"));
        assert!(
            reference.contains(
                "| `run.wait` | `\"adaptive\"`, `\"spin\"`, `\"futex\"` | `\"adaptive\"` |"
            )
        );
    }

    /// Three plugins, `p` first and in no channel (so `instances` may be anything), and one
    /// channel.
    const BASE: &str = "name = \"t\"\n\
        [[plugin]]\nname = \"p\"\nwasm = \"p.wat\"\n\
        [[plugin]]\nname = \"a\"\nwasm = \"a.wat\"\n\
        [[plugin]]\nname = \"b\"\nwasm = \"b.wat\"\n\
        [[channel]]\nfrom = \"a.out\"\nto = \"b.in\"\n";

    /// `BASE` with `decl` set to `n` (in its unit), parsed.
    fn with(decl: &KeyDecl, n: u64) -> Result<Scenario, crate::ScenarioError> {
        let path = decl.path.replace(".NAME.", ".p.").replace(".N.", ".0.");
        let value = match decl.ty {
            KeyType::Duration => format!("\"{n}ms\""),
            _ => n.to_string(),
        };
        let text = apply_overrides(BASE, &[format!("{path}={value}")]).unwrap();
        Scenario::parse(Path::new("/t/s.toml"), &text)
    }

    #[test]
    fn the_limits_in_the_table_are_the_ones_validation_enforces() {
        let mut checked = 0;
        for decl in KEYS {
            let key = decl.path.replace(".NAME.", "[0].").replace(".N.", "[0].");
            let refused = |n: u64| match with(decl, n) {
                Ok(_) => panic!("{} = {n} was accepted", decl.path),
                Err(e) => assert_eq!(e.key.as_deref(), Some(key.as_str()), "{e}"),
            };
            if let Some(max) = decl.max {
                with(decl, max).unwrap_or_else(|e| panic!("{} at its max: {e}", decl.path));
                refused(max + 1);
                checked += 1;
            }
            if let Some(min) = decl.min {
                with(decl, min).unwrap_or_else(|e| panic!("{} at its min: {e}", decl.path));
                if min > 0 {
                    refused(min - 1);
                }
            }
        }
        assert_eq!(checked, 11, "the keys with limits");
    }

    #[test]
    fn the_defaults_in_the_table_are_the_ones_parsing_applies() {
        let sc = Scenario::parse(Path::new("/t/s.toml"), BASE).unwrap();
        let (p, ch) = (&sc.plugins[0], &sc.channels[0]);
        for decl in KEYS {
            let resolved: Option<u64> = match decl.path {
                "plugin.NAME.instances" => Some(1 + u64::from(p.instance.is_some())),
                "plugin.NAME.memory" => Some(p.limits.memory),
                "plugin.NAME.stack" => Some(p.limits.stack),
                "plugin.NAME.table_elements" => Some(p.limits.table_elements),
                "channel.N.slot_size" => Some(u64::from(ch.slot_size)),
                "channel.N.capacity" => Some(u64::from(ch.capacity)),
                "run.repeat" => sc.run.repeat.map(u64::from),
                "run.min_time" => u64::try_from(sc.run.min_time.as_millis()).ok(),
                "run.timeout" => u64::try_from(sc.run.timeout.as_millis()).ok(),
                "run.seed" => Some(sc.run.seed),
                _ => None,
            };
            let named = match decl.path {
                "channel.N.pattern" => Some(ch.pattern.name()),
                "channel.N.overflow" => Some(ch.overflow.name()),
                "channel.N.sync" => Some(ch.sync.name()),
                "run.wait" => Some(sc.run.wait.name()),
                "run.verify" => Some(sc.run.verify.name()),
                _ => None,
            };
            match decl.default {
                KeyDefault::Number(n) => assert_eq!(resolved, Some(n), "{}", decl.path),
                KeyDefault::Text(text) if named.is_some() => {
                    assert_eq!(named.map(|n| format!("\"{n}\"")).as_deref(), Some(text));
                }
                _ => assert!(resolved.is_none() && named.is_none(), "{}", decl.path),
            }
        }
        assert_eq!(p.limits.cpu, None);
        assert_eq!(sc.run.backends, BackendKind::DEFAULT);
        assert!(p.config.is_empty() && p.host.is_none() && sc.run.listen.is_none());
    }

    #[test]
    fn paths_are_unique_and_match_as_set_writes_them() {
        for (i, decl) in KEYS.iter().enumerate() {
            assert!(
                KEYS[..i].iter().all(|d| d.path != decl.path),
                "{} is declared twice",
                decl.path
            );
        }
        let cap = KEYS
            .iter()
            .find(|d| d.path == "channel.N.capacity")
            .unwrap();
        assert!(cap.matches("channel.12.capacity"));
        assert!(!cap.matches("channel.x.capacity") && !cap.matches("channel.0"));
        assert!(!cap.matches("channel.N.capacity") && !cap.matches("channel.0.capacity.x"));
        let config = KEYS.iter().find(|d| d.name() == "config").unwrap();
        assert!(config.matches("plugin.p.config.size") && !config.matches("plugin.p.config"));
        assert!(!config.matches("plugin..config.size") && !config.matches("plugin.p.config."));
        assert_eq!(duration_text(500), "500ms");
        assert_eq!(duration_text(60_000), "60s");
        assert_eq!(duration_text(7_200_000), "2h");
        assert_eq!(size_text(4096).as_deref(), Some("4KiB"));
        assert_eq!(size_text(100), None);
    }
}
