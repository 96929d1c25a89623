//! Plugins' `build` commands: run when a plugin's `.wasm` is missing or older than its source.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context as _, bail};

use crate::scenario::{Plugin, Scenario};

/// Runs each plugin's `build` command (sh -c, cwd = the scenario's folder, the build's stdout
/// and stderr go to our stderr) when its wasm is missing or older than the newest file under
/// `source`. Afterwards the wasm must exist. Errors name the plugin and the command.
///
/// A command shared by several plugins runs at most once per call. Under `source`, folders
/// named `target` or `node_modules` and hidden folders are skipped.
pub fn build_stale(sc: &Scenario) -> anyhow::Result<()> {
    let mut built: HashSet<&str> = HashSet::new();
    for plugin in &sc.plugins {
        let Some(cmd) = plugin.build.as_deref() else {
            continue;
        };
        let stale = is_stale(plugin).with_context(|| {
            format!(
                "plugin {}: checking whether {} is up to date",
                plugin.name,
                plugin.wasm.display()
            )
        })?;
        if !stale {
            continue;
        }
        if built.insert(cmd) {
            eprintln!("building plugin {}: {cmd}", plugin.name);
            let stdout = std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .context("duplicating stderr for the build's output")?;
            let status = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .current_dir(&sc.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(stdout))
                .status()
                .with_context(|| {
                    format!(
                        "plugin {}: running build command `{cmd}` in {}",
                        plugin.name,
                        sc.dir.display()
                    )
                })?;
            if !status.success() {
                bail!(
                    "plugin {}: build command `{cmd}` failed ({status}) in {}",
                    plugin.name,
                    sc.dir.display()
                );
            }
        }
        if !plugin.wasm.exists() {
            bail!(
                "plugin {}: build command `{cmd}` did not create {}; \
                 check `wasm` and `build` in {}",
                plugin.name,
                plugin.wasm.display(),
                sc.path.display()
            );
        }
    }
    Ok(())
}

fn is_stale(plugin: &Plugin) -> io::Result<bool> {
    let wasm_time = match fs::metadata(&plugin.wasm) {
        Ok(meta) => meta.modified()?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    let Some(source) = &plugin.source else {
        return Ok(false);
    };
    let meta = fs::metadata(source)
        .map_err(|e| io::Error::new(e.kind(), format!("source {}: {e}", source.display())))?;
    if meta.is_file() {
        return Ok(meta.modified()? > wasm_time);
    }
    newer_file_under(source, wasm_time)
}

/// Whether any regular file under `dir` was modified after `time`; skips folders named
/// `target` or `node_modules` and hidden folders.
fn newer_file_under(dir: &Path, time: SystemTime) -> io::Result<bool> {
    let entries = fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry?;
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name == "target" || name == "node_modules" || name.starts_with('.') {
                continue;
            }
            if newer_file_under(&entry.path(), time)? {
                return Ok(true);
            }
        } else if kind.is_file() {
            match entry.metadata() {
                Ok(meta) if meta.modified()? > time => return Ok(true),
                Ok(_) => {}
                // Deleted while we looked: it cannot be newer.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(false)
}
