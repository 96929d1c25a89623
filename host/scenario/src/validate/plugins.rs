//! The `[[plugin]]` tables: names, files, config, limits and copies.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::keys::{self, duration_text};
use crate::load::WasmLines;
use crate::model::{Host, Instance, Limits, Plugin};
use crate::raw::RawPlugin;
use crate::source::{ScenarioError, Source, is_bare_key, join_key};
use crate::validate::NAME_HINT;
use crate::validate::values::{a_type, duration_value, integer_in, size_in};

/// One plugin table as endpoints name it: its copies are `first .. first + count` in
/// [`crate::Scenario::plugins`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    /// Index of the `[[plugin]]` table.
    pub(super) table: usize,
    /// Line of its `name`.
    pub(super) line: usize,
    pub(super) first: usize,
    pub(super) count: usize,
}

/// The resolved `[[plugin]]` tables.
pub(super) struct Plugins {
    /// Every copy of every table, in file order.
    pub(super) plugins: Vec<Plugin>,
    /// Per copy, its table's index and the line of its `wasm`.
    pub(super) wasm_lines: WasmLines,
    /// Each table by its `name`.
    pub(super) by_name: HashMap<String, Group>,
}

pub(super) fn validate_plugins(
    src: &Source<'_>,
    raw: Vec<RawPlugin>,
    hosts: &[Host],
    dir: &Path,
) -> Result<Plugins, ScenarioError> {
    let mut out = Plugins {
        plugins: Vec::with_capacity(raw.len()),
        wasm_lines: Vec::with_capacity(raw.len()),
        by_name: HashMap::new(),
    };
    for (i, plugin) in raw.into_iter().enumerate() {
        validate_plugin(src, i, plugin, hosts, dir, &mut out)?;
    }
    Ok(out)
}

/// Checks plugin table `i` and adds its copies to `out`.
fn validate_plugin(
    src: &Source<'_>,
    i: usize,
    plugin: RawPlugin,
    hosts: &[Host],
    dir: &Path,
    out: &mut Plugins,
) -> Result<(), ScenarioError> {
    let host = plugin_host(src, i, &plugin, hosts)?;
    let count = plugin_group(src, i, &plugin, out)?;
    let Files {
        wasm,
        wasm_line,
        build,
        source,
    } = plugin_files(src, i, &plugin, dir)?;
    let config = plugin_config(src, i, plugin.config.as_ref())?;
    let limits = plugin_limits(src, i, &plugin)?;

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
        out.plugins.push(Plugin {
            name: copy,
            wasm: wasm.clone(),
            build: build.clone(),
            source: source.clone(),
            config: config.clone(),
            limits,
            instance,
            host,
        });
        out.wasm_lines.push((i, wasm_line));
    }
    Ok(())
}

/// The plugin's name, checked and recorded in `out.by_name`, and how many copies it has.
fn plugin_group(
    src: &Source<'_>,
    i: usize,
    plugin: &RawPlugin,
    out: &mut Plugins,
) -> Result<usize, ScenarioError> {
    let key = |k: &str| format!("plugin[{i}].{k}");
    let name = plugin.name.get_ref();
    if !is_bare_key(name) {
        return Err(src.at(
            plugin.name.span(),
            key("name"),
            format!("invalid plugin name {name:?}; {NAME_HINT} (no '.' or '#'), e.g. \"producer\""),
        ));
    }
    let line = src.line_of(plugin.name.span().start);
    let count = match &plugin.instances {
        None => 1,
        Some(v) => {
            let n = integer_in(src, v, &key("instances"), &keys::INSTANCES)?;
            // `integer_in` bounded it by MAX_INSTANCES.
            usize::try_from(n).unwrap_or(1)
        }
    };
    let group = Group {
        table: i,
        line,
        first: out.plugins.len(),
        count,
    };
    if let Some(Group {
        table: first,
        line: first_line,
        ..
    }) = out.by_name.insert(name.clone(), group)
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
    Ok(count)
}

/// A plugin's files, resolved against the scenario's folder.
struct Files {
    wasm: PathBuf,
    /// The line of the `wasm` key.
    wasm_line: usize,
    build: Option<String>,
    source: Option<PathBuf>,
}

/// `wasm`, `build` and `source`.
fn plugin_files(
    src: &Source<'_>,
    i: usize,
    plugin: &RawPlugin,
    dir: &Path,
) -> Result<Files, ScenarioError> {
    let key = |k: &str| format!("plugin[{i}].{k}");
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

    let build = match &plugin.build {
        Some(build) if build.get_ref().trim().is_empty() => {
            return Err(src.at(
                build.span(),
                key("build"),
                "empty build command; give a shell command or remove `build`",
            ));
        }
        Some(build) => Some(build.get_ref().clone()),
        None => None,
    };
    let source = match &plugin.source {
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
    Ok(Files {
        wasm: dir.join(wasm),
        wasm_line,
        build,
        source,
    })
}

/// The host plugin table `i` names, as an index into `hosts`; `None`: this machine.
fn plugin_host(
    src: &Source<'_>,
    i: usize,
    plugin: &RawPlugin,
    hosts: &[Host],
) -> Result<Option<usize>, ScenarioError> {
    let Some(h) = &plugin.host else {
        return Ok(None);
    };
    if let Some(index) = hosts.iter().position(|x| x.name == *h.get_ref()) {
        return Ok(Some(index));
    }
    let known: Vec<String> = hosts.iter().map(|x| format!("{:?}", x.name)).collect();
    Err(src.at(
        h.span(),
        format!("plugin[{i}].host"),
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
    ))
}

/// Config values as text: integers, strings, booleans and floats; nothing nested.
fn plugin_config(
    src: &Source<'_>,
    i: usize,
    raw: Option<&BTreeMap<String, toml::Spanned<toml::Value>>>,
) -> Result<BTreeMap<String, String>, ScenarioError> {
    let mut config = BTreeMap::new();
    for (name, value) in raw.into_iter().flatten() {
        let text = match value.get_ref() {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(src.at(
                    value.span(),
                    join_key(&format!("plugin[{i}].config"), name),
                    format!(
                        "config values must be an integer, string, boolean or float, not {}",
                        a_type(other)
                    ),
                ));
            }
        };
        config.insert(name.clone(), text);
    }
    Ok(config)
}

/// `memory`, `stack`, `table_elements` and `cpu`, each in range, with defaults.
fn plugin_limits(src: &Source<'_>, i: usize, plugin: &RawPlugin) -> Result<Limits, ScenarioError> {
    let key = |k: &str| format!("plugin[{i}].{k}");
    let mut limits = Limits::default();
    if let Some(v) = &plugin.memory {
        limits.memory = size_in(src, v, &key("memory"), &keys::MEMORY)?;
    }
    if let Some(v) = &plugin.stack {
        limits.stack = size_in(src, v, &key("stack"), &keys::STACK)?;
    }
    if let Some(v) = &plugin.table_elements {
        limits.table_elements = integer_in(src, v, &key("table_elements"), &keys::TABLE_ELEMENTS)?;
    }
    if let Some(v) = &plugin.cpu {
        let cpu = duration_value(src, v, &key("cpu"))?;
        let (min, max) = keys::CPU.duration_bounds();
        // Durations are whole milliseconds, so below the 1 ms minimum is zero.
        if cpu < min || cpu > max {
            return Err(src.at(
                v.span(),
                key("cpu"),
                format!(
                    "CPU limit {cpu:?} is out of range; expected more than 0, at most {}",
                    duration_text(keys::CPU.max.unwrap_or_default())
                ),
            ));
        }
        limits.cpu = Some(cpu);
    }
    Ok(limits)
}
