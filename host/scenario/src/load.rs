//! Reading a scenario: text to raw to resolved, and `--set` overrides.

use std::fs;
use std::path::{Path, PathBuf};

use crate::model::Scenario;
use crate::overrides::apply_overrides;
use crate::raw::RawScenario;
use crate::source::{ScenarioError, Source};
use crate::validate::validate;

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
}

/// The scenario and, per plugin instance, its table's index and the line of its `wasm`.
pub(crate) type WasmLines = Vec<(usize, usize)>;

/// Parses and validates `text`, read from `path`; also returns the line of each plugin's
/// `wasm` key, for [`Scenario::load`].
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

#[cfg(test)]
mod tests {
    use super::*;

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
