//! `--set PATH=VALUE` overrides, and the paths they (and `[sweep]` axes) may name.

use crate::keys::KEYS;

/// Whether `--set` and `[sweep]` may name `path`: `run.KEY`, `channel.N.KEY`,
/// `plugin.NAME.KEY` or `plugin.NAME.config.KEY`, where KEY is one that [`KEYS`] declares
/// settable.
pub(crate) fn settable_path(path: &str) -> bool {
    KEYS.iter().any(|key| key.settable && key.matches(path))
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
        let table = table_at(&mut doc, &parts, set)?;
        let key = parts.last().expect("a path has parts");
        table.insert((*key).to_string(), value);
    }
    toml::to_string(&doc).map_err(|e| format!("writing the overridden scenario: {e}"))
}

/// The table that `parts` (a `--set` path split at dots) sets a key of, made when it is
/// `[run]` or a plugin's `config` and missing. Errors quote `set`, the whole `PATH=VALUE`.
fn table_at<'d>(
    doc: &'d mut toml::Table,
    parts: &[&str],
    set: &str,
) -> Result<&'d mut toml::Table, String> {
    let bad = |why: &str| format!("{set:?}: {why}");
    Ok(match parts {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settable_paths_are_the_declared_keys_of_run_channels_and_plugins() {
        for path in [
            "run.wait",
            "run.backends",
            "channel.0.slot_size",
            "channel.10.pattern",
            "plugin.p.instances",
            "plugin.p.memory",
            "plugin.p.config.size",
            "plugin.p-2.config.a_b",
        ] {
            assert!(settable_path(path), "{path}");
        }
        for path in [
            "",
            "name",
            "run",
            "run.",
            "run.bogus",
            "host.0.name",
            "sweep.x",
            "channel.x.capacity",
            "channel.0",
            "plugin.p",
            "plugin.p.config",
            "plugin.p.config.",
            "plugin..memory",
            "plugin.p.config.a.b",
        ] {
            assert!(!settable_path(path), "{path}");
        }
    }
}
