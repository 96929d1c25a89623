//! The locked-down worker: a seccomp filter with `no_new_privs` on every thread, seen from
//! outside in `/proc/<pid>/status`; the worker's own probes of openat, socket, execve and fork
//! refused (and not refused without the filter, so the self-check can fail); an environment
//! the supervisor builds.

use std::time::{Duration, Instant};

use crate::util::{self, heavy};

#[test]
fn the_self_check_sees_every_forbidden_call_refused_and_fails_without_the_filter() {
    let out = util::wasm_ipc(&["lockdown-check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", util::stderr(&out));
    for call in ["openat", "socket", "execve", "fork (clone)"] {
        assert!(text.contains(&format!("{call}: refused")), "{text}");
    }
    // The same probes without the filter: the self-check notices.
    let out = util::wasm_ipc(&["lockdown-check", "--without-filter"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let err = util::stderr(&out);
    assert!(err.contains("the lock-down does not hold"), "{err}");
    for call in ["openat", "socket", "execve", "fork (clone)"] {
        assert!(text.contains(&format!("{call}: NOT refused")), "{text}");
        assert!(err.contains(&format!("{call} was not refused")), "{err}");
    }
}

/// One status line of `/proc/<pid>/status`.
fn status_field(pid: i32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
}

#[test]
fn running_workers_are_filtered_with_no_new_privs_and_only_the_environment_they_need() {
    for backend in ["shm", "zenoh"] {
        workers_are_filtered(backend);
    }
}

/// A zenoh worker's engine threads are filtered too, and its environment adds only the
/// engine's thread settings.
fn workers_are_filtered(backend: &str) {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "locked.toml",
        &r#"
name = "locked"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 1000000, size = 64 }
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
config = { delay_ns = 200000 }
[[channel]]
from = "p.out"
to = "c.in"
[run]
backends = ["{backend}"]
timeout = "120s"
"#
        .replace("{backend}", backend),
    );
    let id = util::run_id("locked");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-ipc"));
    cmd.args(["run", "--json", "--run-id", &id, sc.to_str().unwrap()])
        .env("WASM_IPC_CACHE_DIR", util::cache_dir())
        .env("WASM_IPC_TEST_SECRET", "must-not-reach-a-worker")
        .env("WASM_IPC_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let supervisor = i32::try_from(child.id()).unwrap();
    let start = Instant::now();
    let mut checked = Vec::new();
    while checked.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "workers never appeared"
        );
        for name in ["p", "c"] {
            if checked.contains(&name) {
                continue;
            }
            let Some(pid) = util::worker_pid(&id, name) else {
                continue;
            };
            // The filter is installed just before the worker says it is ready.
            if status_field(pid, "Seccomp:").as_deref() != Some("2") {
                continue;
            }
            assert_eq!(
                status_field(pid, "NoNewPrivs:").as_deref(),
                Some("1"),
                "{name}"
            );
            // Every thread is filtered (TSYNC).
            for task in std::fs::read_dir(format!("/proc/{pid}/task"))
                .unwrap()
                .flatten()
            {
                let status = std::fs::read_to_string(task.path().join("status")).unwrap();
                assert!(
                    status.contains("Seccomp:\t2"),
                    "{name} on {backend}: a thread is unfiltered"
                );
            }
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
            let vars: Vec<String> = env
                .split(|&b| b == 0)
                .filter(|v| !v.is_empty())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            let mut expected = vec!["WASM_IPC_LOG=info".to_string()];
            if backend == "zenoh" {
                expected.push(format!(
                    "ZENOH_RUNTIME={}",
                    wasm_ipc::backend::zenoh::RUNTIME
                ));
            }
            assert_eq!(vars, expected, "{name} on {backend}");
            checked.push(name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let out = util::wait_with_watchdog(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(130), "{}", util::stderr(&out));
    util::assert_no_leftovers(&id);
}

/// The profiling knobs (scripts/callgrind.sh): `WASM_IPC_UNLOCKED=1` runs workers without the
/// filter, each saying so, and only then; `WASM_IPC_BASELINE_CPU=1` compiles code that still
/// runs here. Both reach the workers, and nothing else does.
#[test]
fn only_an_explicit_unlocked_run_goes_without_the_filter_and_it_says_so() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "unlocked.toml",
        r#"
name = "unlocked"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 300, size = 64, rate = 100 }
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
[[channel]]
from = "p.out"
to = "c.in"
[run]
backends = ["msg"]
timeout = "60s"
"#,
    );
    for unlocked in [true, false] {
        let id = util::run_id("unlocked");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-ipc"));
        cmd.args(["run", "--json", "--run-id", &id, sc.to_str().unwrap()])
            .env("WASM_IPC_CACHE_DIR", "off")
            .env("WASM_IPC_BASELINE_CPU", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if unlocked {
            cmd.env("WASM_IPC_UNLOCKED", "1");
        }
        let child = cmd.spawn().unwrap();
        let start = Instant::now();
        let pid = loop {
            if let Some(pid) = util::worker_pid(&id, "c")
                && status_field(pid, "State:").is_some()
            {
                break pid;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "no worker");
            std::thread::sleep(Duration::from_millis(10));
        };
        // Ready within the 3 s the producer takes: then its filter state is final.
        std::thread::sleep(Duration::from_millis(1000));
        let seccomp = status_field(pid, "Seccomp:");
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let out = util::wait_with_watchdog(child, Duration::from_secs(60));
        assert!(out.status.success(), "{}", util::stderr(&out));
        let warned = util::stderr(&out).contains("running WITHOUT the seccomp lock-down");
        let vars = String::from_utf8_lossy(&env).replace('\0', " ");
        assert!(vars.contains("WASM_IPC_BASELINE_CPU=1"), "{vars}");
        if unlocked {
            assert_eq!(seccomp.as_deref(), Some("0"), "unlocked run");
            assert!(warned, "{}", util::stderr(&out));
            assert!(vars.contains("WASM_IPC_UNLOCKED=1"), "{vars}");
        } else {
            assert_eq!(seccomp.as_deref(), Some("2"), "locked run");
            assert!(!warned);
        }
        util::assert_no_leftovers(&id);
    }
}
