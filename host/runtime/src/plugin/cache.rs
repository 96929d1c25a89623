//! Compiled plugin code (core modules and components): a disk cache across runs, and sealed memfds within a run.
//!
//! The cache lives in `$WASM_IPC_CACHE_DIR`, else `$XDG_CACHE_HOME/wasm-ipc`, else
//! `~/.cache/wasm-ipc` (mode 0700). A file's name is the module's xxh3-128 and the engine's
//! compatibility hash, and it is written to a temporary name and renamed into place, so a
//! reader never sees half a file. Loading compiled code runs it, so the cache is used only
//! when this user alone can write it. It is the one file that intentionally outlives a run.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use wasmtime::Engine;

use crate::sys::Code;

use crate::sys;

/// Plugin code compiled (or loaded from the cache) by the supervisor.
#[derive(Debug)]
pub struct Compiled {
    /// The module or component, for checks in the supervisor.
    pub code: Code,
    /// Serialized code in a sealed memfd, handed to every worker that runs it.
    pub memfd: File,
    /// Whether it was compiled now (false: loaded from the cache).
    pub compiled_now: bool,
}

/// The cache folder, created private if missing; `None` when there is no usable one.
pub fn cache_dir() -> Option<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("WASM_IPC_CACHE_DIR") {
        PathBuf::from(d)
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(d).join("wasm-ipc")
    } else {
        PathBuf::from(std::env::var_os("HOME")?).join(".cache/wasm-ipc")
    };
    if dir.as_os_str().is_empty() || dir == Path::new("off") {
        return None;
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .ok()?;
    Some(dir)
}

fn cache_key(engine: &Engine, bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!(
        "{:032x}-{:016x}.cwasm",
        xxhash_rust::xxh3::xxh3_128(bytes),
        h.finish()
    )
}

/// Compiles `bytes` (from `path`, for messages), or loads it from the cache, and puts the
/// serialized code into a sealed memfd named after `tag`.
pub fn load_or_compile(
    engine: &Engine,
    bytes: &[u8],
    tag: &str,
    dir: Option<&Path>,
) -> anyhow::Result<Compiled> {
    let cached = dir.map(|d| d.join(cache_key(engine, bytes)));
    if let Some(path) = &cached
        && path.exists()
    {
        match sys::deserialize_cached(engine, path) {
            Ok(loaded) => {
                let code = std::fs::read(path)?;
                let memfd = sys::sealed_memfd(tag, &code)?;
                return Ok(Compiled {
                    code: loaded,
                    memfd,
                    compiled_now: false,
                });
            }
            Err(e) => eprintln!("wasm-ipc: ignoring the module cache: {e:#}"),
        }
    }
    let compiled = super::compile_code(engine, bytes)?;
    let code = compiled.serialize()?;
    if let Some(path) = &cached {
        // A cache that cannot be written only costs the next run a compile.
        let _ = store(path, &code);
    }
    let memfd = sys::sealed_memfd(tag, &code).context("creating the module memfd")?;
    Ok(Compiled {
        code: compiled,
        memfd,
        compiled_now: true,
    })
}

/// Writes the cache file so that no partial or temporary file can ever be left behind, even
/// when the process is killed mid-write: the bytes go into an unnamed `O_TMPFILE` in the cache
/// folder, and only the complete, synced file is given its name (`linkat`). A name that exists
/// already (another run wrote it first) is kept.
fn store(path: &Path, code: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)?;
    f.write_all(code)?;
    f.sync_all()?;
    let fd_path = format!("/proc/self/fd/{}", f.as_raw_fd());
    match nix::unistd::linkat(
        nix::fcntl::AT_FDCWD,
        fd_path.as_str(),
        nix::fcntl::AT_FDCWD,
        path,
        nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
    ) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
