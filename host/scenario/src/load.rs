//! Reading a scenario: text to raw to resolved, and `--set` overrides.

use std::fs;
use std::path::{Path, PathBuf};

use crate::model::Scenario;
use crate::overrides::apply_overrides;
use crate::raw::RawScenario;
use crate::source::{ScenarioError, Source};
use crate::validate::validate;

/// The largest scenario file read: 4 MiB (a scenario is a page of TOML).
pub const MAX_SCENARIO_BYTES: u64 = 4 << 20;

/// The largest module file read: 1 GiB (a Python or JavaScript component, interpreter
/// included, is tens of MiB).
pub const MAX_MODULE_BYTES: u64 = 1 << 30;

/// What the file behind `meta` is when it is not a regular file: `"a FIFO"`, `"a character
/// device"`, ….
pub fn not_regular(meta: &fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Reads the regular file at `path`, at most `cap` bytes. Anything else — a FIFO, a device
/// such as `/dev/zero`, a directory — is refused at once, naming what it is: the file is
/// opened without blocking (a FIFO's open would wait for a writer) and checked as opened, so
/// nothing swapped in between can make the read block or run forever.
pub fn read_regular(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if let Some(kind) = not_regular(&meta) {
        return Err(std::io::Error::other(format!(
            "it is {kind}, not a regular file"
        )));
    }
    if meta.len() > cap {
        return Err(std::io::Error::other(format!(
            "it is {} bytes, more than the {cap} this reads",
            meta.len()
        )));
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::other(format!(
            "it grew past the {cap} bytes this reads while it was read"
        )));
    }
    Ok(bytes)
}

impl Scenario {
    /// Read, parse, validate, and check that every plugin's wasm file exists or has `build`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::load_with(path, &[])
    }

    /// [`Scenario::load`] with `--set PATH=VALUE` overrides applied to the file's values
    /// first (see [`apply_overrides`]).
    pub fn load_with(path: &Path, sets: &[String]) -> Result<Scenario, ScenarioError> {
        let original = read_regular(path, MAX_SCENARIO_BYTES)
            .and_then(|bytes| {
                String::from_utf8(bytes).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")
                })
            })
            .map_err(|e| ScenarioError {
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
            if let Some(kind) = fs::metadata(&plugin.wasm)
                .ok()
                .as_ref()
                .and_then(not_regular)
            {
                return Err(ScenarioError {
                    file: path.to_path_buf(),
                    line: Some(line),
                    key: Some(format!("plugin[{i}].wasm")),
                    message: format!(
                        "{} is {kind}, not a regular file: name a .wasm or .wat module",
                        plugin.wasm.display()
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
