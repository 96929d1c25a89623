//! Shared helpers: the binary, plugins built once, a watchdog around every run, leftovers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The project root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `wasm-ipc` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wasm-ipc"))
}

/// Builds every plugin once per test run (plugins/build.sh), then returns the folder that
/// holds the .wasm files. A missing toolchain fails the test: nothing is skipped.
pub fn plugins() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let out = Command::new("sh")
            .arg(root().join("plugins/build.sh"))
            .stdout(Stdio::inherit())
            .output()
            .map_err(|e| format!("running plugins/build.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "plugins/build.sh failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    root().join("plugins/target/wasm32-wasip1/release")
}

/// Path of a built plugin by crate name.
pub fn wasm(name: &str) -> PathBuf {
    plugins().join(format!("{name}.wasm"))
}

/// Serialises process-heavy tests.
pub fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh run id for tagging one test's processes and memfds.
pub fn run_id(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "t{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Starts `wasm-ipc args…` with piped output and the tests' module cache.
pub fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(bin())
        .args(args)
        .env("WASM_IPC_CACHE_DIR", cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting wasm-ipc")
}

/// Runs `wasm-ipc args…` under a watchdog: a hang kills the child and fails the test.
pub fn wasm_ipc(args: &[&str]) -> Output {
    wait_with_watchdog(spawn(args), Duration::from_secs(180))
}

/// The module cache the tests share (inside target/, private to this user).
pub fn cache_dir() -> PathBuf {
    let d = root().join("target/test-module-cache");
    std::fs::create_dir_all(&d).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// Waits for `child`, killing it and failing the test after `limit`. Its stdout and stderr are
/// drained meanwhile, so a large report cannot block it on a full pipe.
pub fn wait_with_watchdog(mut child: std::process::Child, limit: Duration) -> Output {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        match child.try_wait().expect("waiting for wasm-ipc") {
            Some(status) => break status,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                let err = stderr.join().unwrap_or_default();
                panic!(
                    "watchdog: wasm-ipc still running after {limit:?}; stderr:\n{}",
                    String::from_utf8_lossy(&err)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Parses a `--json` report from stdout.
pub fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not a JSON report ({e}); stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Writes a scenario into a temporary folder; `{wasm:NAME}` expands to a built plugin's path.
pub fn scenario(dir: &Path, file: &str, text: &str) -> PathBuf {
    let mut text = text.to_string();
    while let Some(start) = text.find("{wasm:") {
        let end = start + text[start..].find('}').unwrap();
        let name = text[start + 6..end].to_string();
        text.replace_range(start..=end, &wasm(&name).display().to_string());
    }
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// Processes and open fds anywhere on the machine that carry `run_id`: worker command lines
/// and memfd names. Empty when a run left nothing behind.
pub fn leftovers(run_id: &str) -> Vec<String> {
    let mut found = Vec::new();
    // Message queues of the run (`mq`): named after it while they have a name at all.
    for q in std::fs::read_dir(mqueue_dir()).unwrap().flatten() {
        let name = q.file_name().to_string_lossy().into_owned();
        if name.contains(run_id) {
            found.push(format!("message queue /dev/mqueue/{name}"));
        }
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return found;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(p.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(run_id) {
                found.push(format!("process {pid}: {cmd}"));
            }
        }
        if let Ok(fds) = std::fs::read_dir(p.path().join("fd")) {
            for fd in fds.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path())
                    && target.to_string_lossy().contains(run_id)
                {
                    found.push(format!(
                        "pid {pid} fd {:?} -> {}",
                        fd.file_name(),
                        target.display()
                    ));
                }
            }
        }
    }
    found
}

/// `/dev/mqueue`, where POSIX message queues show: mounted (the mqueue filesystem) when it
/// is not, so that a leftover queue cannot hide. A machine where it cannot be mounted fails.
pub fn mqueue_dir() -> &'static Path {
    static MOUNTED: OnceLock<()> = OnceLock::new();
    let dir = Path::new("/dev/mqueue");
    MOUNTED.get_or_init(|| {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        if mounts
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/dev/mqueue"))
        {
            return;
        }
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "mqueue", "mqueue", "/dev/mqueue"])
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "mounting the mqueue filesystem at /dev/mqueue: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    dir
}

/// Asserts that nothing of `run_id` is left, allowing the kernel a moment to reap.
pub fn assert_no_leftovers(run_id: &str) {
    let start = Instant::now();
    loop {
        let left = leftovers(run_id);
        if left.is_empty() {
            return;
        }
        if start.elapsed() > Duration::from_secs(5) {
            panic!("run {run_id} left things behind:\n{}", left.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Builds the plugins of every language once per test run (plugins/build-all.sh) and returns
/// the path of `lang`'s `name` plugin. A missing toolchain fails the test.
pub fn lang_wasm(lang: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let _rust = plugins();
    let result = BUILT.get_or_init(|| {
        let out = Command::new("sh")
            .arg(root().join("plugins/build-all.sh"))
            .output()
            .map_err(|e| format!("running plugins/build-all.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "plugins/build-all.sh failed (scripts/setup.sh installs the toolchains):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    if lang == "rust" {
        wasm(name)
    } else {
        root().join(format!("plugins/target/lang/{lang}/{name}.wasm"))
    }
}

/// Pid of the worker of `plugin` in run `id`, from /proc/*/cmdline.
pub fn worker_pid(id: &str, plugin: &str) -> Option<i32> {
    for p in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|&b| b == 0)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        let has = |k: &str, v: &str| args.windows(2).any(|w| w[0] == k && w[1] == v);
        if args.iter().any(|a| a == "worker") && has("--run-id", id) && has("--plugin", plugin) {
            return Some(pid);
        }
    }
    None
}

/// The socket inodes a process holds (`/proc/PID/fd/* -> socket:[INODE]`).
pub fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}
