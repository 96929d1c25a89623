//! Every run ends when it ends: no stall passes unseen, no worker outlives its run unreported,
//! an early leaver is named as such, paths that are not regular files are refused at once, and
//! each signal that ends a run is named.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

/// The bundled producer → consumer scenario with 20,000 messages of 4 KiB in 4 KiB slots: the
/// case that stalled for 5 s on `zenoh` (its end acknowledged from the engine's only thread).
const FOUR_KIB: [&str; 8] = [
    "--set",
    "plugin.producer.config.size=4096",
    "--set",
    "plugin.producer.config.count=20000",
    "--set",
    "plugin.consumer.config.expect=20000",
    "--set",
    "channel.0.slot_size=4KiB",
];

/// Runs of the 4 KiB case, many on each backend: each ends cleanly (ok, no worker killed, each
/// exited within the bound after its run), delivers what was sent, and no link waited in one
/// call longer than max(2 s, 4 × the median run): a 5 s stall in a 0.3 s run fails it. With
/// the end acknowledged from the engine's thread, 3 of 50 `zenoh` runs stalled (5.25 s), so 50
/// runs catch it but in 5 % of tries.
#[test]
fn repeated_runs_end_cleanly_without_a_stall_on_every_backend() {
    let _g = heavy();
    let sc = util::root().join("scenarios/producer-consumer.toml");
    util::plugins();
    for (backend, runs) in [("shm", "20"), ("msg", "20"), ("zenoh", "50")] {
        let id = util::run_id("endings-loop");
        let mut args = vec![
            "run",
            "--json",
            "--run-id",
            &id,
            "--backend",
            backend,
            "--repeat",
            runs,
        ];
        args.extend(FOUR_KIB);
        args.push(sc.to_str().unwrap());
        let out = wasm_ipc(&args);
        let rep = report(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{backend}: {}",
            util::stderr(&out)
        );
        let all = rep["runs"].as_array().unwrap();
        assert_eq!(all.len().to_string(), runs, "{backend}");
        let mut elapsed: Vec<f64> = all
            .iter()
            .map(|r| r["elapsed_s"].as_f64().unwrap())
            .collect();
        elapsed.sort_by(f64::total_cmp);
        let median = elapsed[elapsed.len() / 2];
        let bound_ns = (4.0 * median).max(2.0) * 1e9;
        for r in all {
            let n = &r["repeat"];
            assert_eq!(r["ok"], true, "{backend} run {n}: {}", r["error"]);
            assert_eq!(r["digest_sent"], r["digest_received"], "{backend} run {n}");
            for p in r["processes"].as_array().unwrap() {
                assert_eq!(p["status"], "ok", "{backend} run {n}: {p}");
                assert_eq!(p["exit_code"], 0, "{backend} run {n}: {p}");
                let exit = p["exit_after_run_ns"].as_u64().unwrap();
                assert!(exit < 2_000_000_000, "{backend} run {n}: {p}");
            }
            for l in r["links"].as_array().unwrap() {
                assert_eq!(l["published"], 20000, "{backend} run {n}: {l}");
                assert_eq!(l["received"], 20000, "{backend} run {n}: {l}");
                for wait in ["longest_room_wait_ns", "longest_message_wait_ns"] {
                    let w = l[wait].as_u64().unwrap() as f64;
                    assert!(
                        w < bound_ns,
                        "{backend} run {n}: {wait} {:.3} s, the median run {median:.3} s: a stall",
                        w / 1e9
                    );
                }
            }
            // The wall time holds the whole run, the workers' exits included.
            assert!(
                r["wall_s"].as_f64().unwrap() >= r["elapsed_s"].as_f64().unwrap(),
                "{backend} run {n}"
            );
        }
        assert_eq!(rep["digests_agree"], true, "{backend}");
        assert_no_leftovers(&id);
    }
}

/// A consumer that takes one message and returns 0 while its producer sends 10 is named as an
/// early leaver on every backend, every time, never reported as corruption: whether the
/// producer had published the rest (9 unread) or was refused because its consumer was gone.
#[test]
fn an_early_leaver_is_named_on_every_backend_every_time() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "leaver.toml",
        r#"name = "leaver"
[[plugin]]
name = "source"
wasm = "{wasm:producer}"
config = { count = 10, size = 64 }
[[plugin]]
name = "leaver"
wasm = "{wasm:consumer}"
config = { take = 1 }
[[channel]]
from = "source.out"
to = "leaver.in"
[run]
backends = ["shm", "msg", "zenoh"]
repeat = 6
timeout = "30s"
"#,
    );
    let id = util::run_id("endings-leaver");
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--json",
        "--run-id",
        &id,
        sc.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    let rep = report(&out);
    let runs = rep["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 18);
    for r in runs {
        let (b, n) = (&r["backend"], &r["repeat"]);
        assert_eq!(r["ok"], false, "{b} run {n}");
        let err = r["error"].as_str().unwrap();
        let l = &r["links"][0];
        assert_eq!(l["received"], 1, "{b} run {n}: {l}");
        // The producer published what it could before it learned its consumer was gone.
        let unread = l["published"].as_u64().unwrap() - 1;
        if unread > 0 {
            let s = if unread == 1 { "" } else { "s" };
            assert_eq!(
                err,
                format!("plugin `leaver` returned with {unread} message{s} unread on `in`"),
                "{b} run {n}"
            );
        } else {
            assert!(
                err.starts_with(
                    "plugin `leaver` returned before the end of stream on `in`, while `source` \
                     still had messages for it"
                ),
                "{b} run {n}: {err}"
            );
        }
        assert!(!err.contains("digest"), "{b} run {n}: {err}");
        for p in r["processes"].as_array().unwrap() {
            assert_eq!(p["status"], "ok", "{b} run {n}: {p}");
        }
    }
    assert_no_leftovers(&id);
}

/// A worker whose exit stalls after its plugin's run returned (here `exit_group` held for 3 s
/// by strace, as a session that never closes holds it) is killed at the bound, and the run is
/// not ok, naming the plugin, its backend and the time.
#[test]
fn a_worker_that_does_not_exit_after_its_run_is_killed_and_named() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "linger.toml",
        r#"name = "linger"
[[plugin]]
name = "source"
wasm = "{wasm:producer}"
config = { count = 100, size = 64 }
[[plugin]]
name = "sink"
wasm = "{wasm:consumer}"
[[channel]]
from = "source.out"
to = "sink.in"
[run]
backends = ["msg"]
timeout = "30s"
"#,
    );
    let id = util::run_id("endings-linger");
    let child = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=exit_group",
            "-e",
            "inject=exit_group:delay_enter=3000000",
        ])
        .arg(util::bin())
        .args(["run", "--json", "--run-id", &id, sc.to_str().unwrap()])
        .env("WASM_IPC_CACHE_DIR", util::cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace is installed by scripts/setup.sh");
    let out = util::wait_with_watchdog(child, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    let rep = report(&out);
    let r = &rep["runs"][0];
    let err = r["error"].as_str().unwrap();
    assert!(
        err.contains("on `msg` did not exit within 2.00 s after its plugin's run returned"),
        "{err}"
    );
    assert!(
        err.starts_with("plugin `source`") || err.starts_with("plugin `sink`"),
        "{err}"
    );
    for p in r["processes"].as_array().unwrap() {
        assert_eq!(p["status"], "killed", "{p}");
        assert_eq!(p["exit_signal"], 9, "{p}");
        assert!(
            p["exit_after_run_ns"].as_u64().unwrap() >= 2_000_000_000,
            "{p}"
        );
        assert!(p["error"].as_str().unwrap().contains("killed"), "{p}");
    }
    // What the plugins did still counts: the messages are there.
    assert_eq!(r["messages"], 100);
    assert!(r["wall_s"].as_f64().unwrap() >= 2.0, "{r}");
    assert_no_leftovers(&id);
}

/// A scenario or a module that is a FIFO or a character device is refused at once, naming the
/// path and its kind; nothing blocks reading it.
#[test]
fn paths_that_are_not_regular_files_are_refused_at_once() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("scenario.toml");
    nix::unistd::mkfifo(
        &fifo,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    let fifo_wasm = dir.path().join("plugin.wasm");
    nix::unistd::mkfifo(
        &fifo_wasm,
        nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR,
    )
    .unwrap();
    let module_is = |file: &str, wasm: &str| {
        util::scenario(
            dir.path(),
            file,
            &format!(
                "name = \"m\"\n[[plugin]]\nname = \"p\"\nwasm = \"{wasm}\"\n[run]\nbackends = [\"msg\"]\n"
            ),
        )
    };
    let fifo_module = module_is("fifo-module.toml", fifo_wasm.to_str().unwrap());
    // A module path must end in .wasm or .wat: a link with that name to the device.
    let zero_wasm = dir.path().join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero_wasm).unwrap();
    let zero_module = module_is("zero-module.toml", zero_wasm.to_str().unwrap());
    let cases = [
        (fifo.to_str().unwrap(), "is a FIFO"),
        ("/dev/zero", "is a character device"),
        (fifo_module.to_str().unwrap(), "is a FIFO"),
        (zero_module.to_str().unwrap(), "is a character device"),
    ];
    for (path, kind) in cases {
        for cmd in ["check", "run"] {
            let start = Instant::now();
            let out = util::wait_with_watchdog(util::spawn(&[cmd, path]), Duration::from_secs(30));
            let err = util::stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{cmd} {path}: {err}");
            assert!(err.contains(kind), "{cmd} {path}: {err}");
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{cmd} {path} took {:?}",
                start.elapsed()
            );
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP each end a run at once (exit 130), and the report names the
/// signal that did.
#[test]
fn sigint_sigterm_and_sighup_are_each_named() {
    use nix::sys::signal::Signal;
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "long.toml",
        r#"name = "long"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 1000000000, size = 64 }
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
[[channel]]
from = "p.out"
to = "c.in"
[run]
backends = ["msg"]
timeout = "120s"
"#,
    );
    for (signal, name) in [
        (Signal::SIGINT, "SIGINT (Ctrl-C)"),
        (Signal::SIGTERM, "SIGTERM"),
        (Signal::SIGHUP, "SIGHUP"),
    ] {
        let id = util::run_id("endings-signal");
        let mut cmd = Command::new(util::bin());
        cmd.args(["run", "--json", "--run-id", &id, sc.to_str().unwrap()])
            .env("WASM_IPC_CACHE_DIR", util::cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A process group of its own: a signal to the test's group never reaches it.
            .process_group(0);
        let child = cmd.spawn().unwrap();
        let supervisor = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        // Wait until both workers run.
        let start = Instant::now();
        while util::worker_pid(&id, "p").is_none() || util::worker_pid(&id, "c").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "workers never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        nix::sys::signal::kill(supervisor, signal).unwrap();
        let out = util::wait_with_watchdog(child, Duration::from_secs(60));
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "{name}: {:?}",
            sent.elapsed()
        );
        assert_eq!(
            out.status.code(),
            Some(130),
            "{name}: {}",
            util::stderr(&out)
        );
        let rep = report(&out);
        assert_eq!(
            rep["runs"][0]["error"].as_str(),
            Some(format!("interrupted by {name}").as_str()),
            "{name}"
        );
        assert_no_leftovers(&id);
    }
}
