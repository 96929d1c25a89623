//! Loading compiled plugin code (a core module or a component): the code the supervisor hands a
//! worker, and the disk cache.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::Handover;

/// Compiled plugin code: a core module or a component.
#[derive(Clone)]
pub enum Code {
    /// A core module (the core ABI).
    Module(wasmtime::Module),
    /// A component (the component world).
    Component(wasmtime::component::Component),
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Code::Module(_) => "Code::Module",
            Code::Component(_) => "Code::Component",
        })
    }
}

impl Code {
    /// The serialized machine code, for a memfd or the disk cache.
    pub fn serialize(&self) -> anyhow::Result<Vec<u8>> {
        Ok(match self {
            Code::Module(m) => m.serialize()?,
            Code::Component(c) => c.serialize()?,
        })
    }
}

/// Deserializes an open file of serialized code, of whichever kind it holds.
///
/// # Safety
///
/// `file` must hold what [`Code::serialize`] wrote with an engine configured like `engine`, by
/// this same binary, and must not change while it is used: deserialising runs that machine
/// code, and wasmtime checks only its header.
unsafe fn deserialize_open(engine: &wasmtime::Engine, file: File) -> anyhow::Result<Code> {
    // Through the fd's own path, which stays valid while `file` is open here.
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    Ok(match wasmtime::Engine::detect_precompiled_file(&path)? {
        Some(wasmtime::Precompiled::Component) => {
            // SAFETY: the caller guarantees the contents (see `# Safety`); the path names the
            // very file the caller vouched for.
            Code::Component(unsafe {
                wasmtime::component::Component::deserialize_file(engine, &path)
            }?)
        }
        // SAFETY: as above; a file that holds neither kind is refused by wasmtime's header
        // check.
        _ => Code::Module(unsafe { wasmtime::Module::deserialize_open_file(engine, file) }?),
    })
}

/// Loads compiled code from a sealed memfd.
///
/// # Safety
///
/// `fd` must hold exactly what [`Code::serialize`] wrote (directly, or through the disk cache
/// of [`deserialize_cached`]) with an engine configured like `engine`, by this same binary:
/// deserialising runs that machine code, and wasmtime checks only its header.
pub unsafe fn load_handed_code(engine: &wasmtime::Engine, fd: OwnedFd) -> anyhow::Result<Code> {
    use std::os::unix::fs::MetadataExt;
    let file = File::from(fd);
    // SAFETY: F_GET_SEALS only queries the fd.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    let need = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    if seals < 0 || seals & need != need || file.metadata()?.size() == 0 {
        anyhow::bail!("the module fd is not a sealed module memfd from the supervisor");
    }
    // SAFETY: the caller guarantees the contents (see `# Safety`); the seals checked above
    // mean they cannot change any more.
    unsafe { deserialize_open(engine, file) }
}

impl Handover {
    /// Loads the compiled module the supervisor handed over as fd `fd` (a sealed memfd).
    ///
    /// Only a process that starts this binary as a worker can hand it fds; the supervisor
    /// writes into that memfd only what `Module::serialize` of this binary made with
    /// `plugin::engine()`'s configuration, and seals it before the spawn. Whoever else can
    /// start this binary with a crafted fd already chooses what this process runs.
    pub fn code(
        &mut self,
        engine: &wasmtime::Engine,
        fd: std::os::fd::RawFd,
    ) -> anyhow::Result<Code> {
        let file = self.take(fd)?;
        // SAFETY: `file` crossed exec from the supervisor that started this worker (`take`
        // checked it), which fills it as `load_handed_code` requires (see above).
        unsafe { load_handed_code(engine, file) }
    }
}

/// Loads compiled code from the disk cache after checking that only this user can write it.
pub fn deserialize_cached(
    engine: &wasmtime::Engine,
    path: &std::path::Path,
) -> anyhow::Result<Code> {
    use std::os::unix::fs::MetadataExt;
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let dir_meta = std::fs::metadata(path.parent().unwrap_or(path))?;
    let uid = nix::unistd::getuid().as_raw();
    if meta.uid() != uid
        || meta.mode() & 0o022 != 0
        || dir_meta.uid() != uid
        || dir_meta.mode() & 0o077 != 0
    {
        anyhow::bail!(
            "refusing cached module {}: it or its folder is writable by others",
            path.display()
        );
    }
    // SAFETY: the cache folder is private to this user (checked above), its files are written
    // only by `Code::serialize` of this binary and linked into place complete, and the file
    // name contains the engine's compatibility hash, so a file from another wasmtime or
    // configuration is never looked up; wasmtime also checks its header on load.
    unsafe { deserialize_open(engine, file) }
}
