//! `[[channel]] sync` on `shm`: the textbook's bounded buffer (`semaphores`, `mutex`) beside
//! the lock-free rings. The same plugins deliver the same bytes under each; the lock's
//! figures are in the report; a worker killed while it holds the lock ends the run with a
//! verdict that says so, within the timeout, and leaves nothing behind; and the key is
//! refused where it cannot be honoured.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, heavy};

const SYNCS: [&str; 3] = ["lock-free", "semaphores", "mutex"];

/// `producers` producers of 64 B messages into `consumers` consumers that check every byte,
/// on shm with `sync`.
fn channel_scenario(
    dir: &std::path::Path,
    producers: u32,
    consumers: u32,
    sync: &str,
) -> std::path::PathBuf {
    let count = 20_000 / producers;
    let expect = count * producers;
    let to: Vec<String> = (0..consumers).map(|q| format!("c{q}.in")).collect();
    let mut text = format!(
        r#"name = "sync-{sync}"
[[plugin]]
name = "p"
instances = {producers}
wasm = "{{wasm:producer}}"
config = {{ count = {count}, size = 64, seed = 9 }}
"#
    );
    for q in 0..consumers {
        text.push_str(&format!(
            r#"[[plugin]]
name = "c{q}"
wasm = "{{wasm:consumer}}"
config = {{ seed = 9, ordered = false, expect = {expect} }}
"#
        ));
    }
    text.push_str(&format!(
        r#"[[channel]]
from = "p[*].out"
to = {to:?}
slot_size = 64
capacity = 8
sync = "{sync}"
[run]
backends = ["shm"]
timeout = "60s"
"#
    ));
    util::scenario(
        dir,
        &format!("sync-{producers}-{consumers}-{sync}.toml"),
        &text,
    )
}

/// The measured run of `run --json`, checked ok.
fn run_ok(file: &std::path::Path) -> serde_json::Value {
    let out = util::wasm_ipc(&["run", "--json", file.to_str().unwrap()]);
    let report = util::report(&out);
    let run = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["warmup"] != true)
        .cloned()
        .unwrap_or_else(|| panic!("no measured run: {}", util::stderr(&out)));
    assert_eq!(run["ok"], true, "{}: {}", file.display(), run["error"]);
    run
}

/// Fan-in (4 producers contend for the one buffer's lock) and fan-out (each message freed
/// by the last of two consumers): the same digests under every `sync`, every message
/// delivered, and the lock counted only where there is one — at least one acquisition per
/// message for each side, since a producer takes the mutex to publish and a consumer to
/// receive.
#[test]
fn every_sync_delivers_the_same_bytes_and_counts_its_lock() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    for (producers, consumers) in [(4, 1), (1, 2)] {
        let mut digests = Vec::new();
        for sync in SYNCS {
            let run = run_ok(&channel_scenario(dir.path(), producers, consumers, sync));
            let delivered = run["messages"].as_u64().unwrap();
            assert_eq!(
                delivered,
                20_000 * u64::from(consumers),
                "{producers}→{consumers} {sync}"
            );
            assert_eq!(run["lost"], 0);
            digests.push((
                sync,
                run["digest_sent"].clone(),
                run["digest_received"].clone(),
            ));
            let locks = &run["locks"];
            if sync == "lock-free" {
                assert!(locks.is_null(), "lock-free has no lock: {locks}");
                continue;
            }
            assert_eq!(locks["sync"], sync, "{locks}");
            let per = locks["acquisitions_per_message"].as_f64().unwrap();
            // Producers: loan (semaphores) or loan and publish, per message published;
            // consumers: receive and release per message delivered.
            assert!(
                per >= 2.0,
                "{producers}→{consumers} {sync}: {per} acquisitions per message: {locks}"
            );
            assert!(
                locks["contended"].as_u64().unwrap() <= locks["acquisitions"].as_u64().unwrap()
            );
            // Counted where they happen: the workers' own counters add up to the total.
            let summed: u64 = run["processes"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|p| p["counters"]["lock_acquisitions"].as_u64())
                .sum();
            assert_eq!(summed, locks["acquisitions"].as_u64().unwrap());
        }
        let first = &digests[0];
        for d in &digests[1..] {
            assert_eq!(
                (&d.1, &d.2),
                (&first.1, &first.2),
                "{} against {}",
                d.0,
                first.0
            );
        }
        assert_eq!(first.1, first.2, "sent and received");
    }
}

/// A producer stopped inside the critical section by the test-only hook and SIGKILLed there:
/// the supervisor sees from the mutex word that the dead worker held it, breaks the lock and
/// fails the channel; the consumer, asleep on that lock or on its semaphore, wakes and the
/// run ends with a verdict naming the lock — long before its timeout, on this test's clock —
/// and leaves no process, memfd or fd behind.
#[test]
fn a_worker_killed_holding_the_lock_ends_the_run_with_a_verdict() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    for sync in ["semaphores", "mutex"] {
        let sc = channel_scenario(dir.path(), 1, 1, sync);
        let id = util::run_id(&format!("sync-kill-{sync}"));
        let child = Command::new(util::bin())
            .args(["run", "--json", "--run-id", &id, sc.to_str().unwrap()])
            .env("WASM_IPC_CACHE_DIR", util::cache_dir())
            // Hold the lock from the 500th publish on.
            .env("WASM_IPC_TEST_HOLD_LOCK", "500")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        // Wait until the producer sleeps inside the critical section (the hook sleeps in
        // `nanosleep`, system call 35, or `clock_nanosleep`, 230, on x86-64; nothing else in
        // a producer's worker sleeps that way).
        let pid = loop {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the producer never held the lock"
            );
            if let Some(pid) = util::worker_pid(&id, "p#0").or(util::worker_pid(&id, "p"))
                && let Ok(sys) = std::fs::read_to_string(format!("/proc/{pid}/syscall"))
                && matches!(sys.split_whitespace().next(), Some("35" | "230"))
            {
                break pid;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // It stays there: a second look 100 ms later finds it still asleep in the lock.
        std::thread::sleep(Duration::from_millis(100));
        let sys = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap();
        assert!(
            matches!(sys.split_whitespace().next(), Some("35" | "230")),
            "{sys}"
        );
        let killed = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let out = util::wait_with_watchdog(child, Duration::from_secs(90));
        let took = killed.elapsed();
        assert!(
            took < Duration::from_secs(20),
            "{sync}: the run ended {took:?} after the kill (timeout 60 s)"
        );
        let report = util::report(&out);
        let run = &report["runs"][0];
        assert_eq!(run["ok"], false);
        let errors: Vec<String> = run["processes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["error"].as_str().map(String::from))
            .collect();
        let all = errors.join("\n");
        assert!(all.contains("killed by signal 9"), "{all}");
        assert!(
            all.contains(
                "the producer on link channel[0]:p.out->c0.in died holding the channel's lock"
            ) && all.contains(&format!("sync = \"{sync}\"")),
            "{sync}: the verdict does not name the lock: {all}"
        );
        util::assert_no_leftovers(&id);
    }
}

/// Where `sync` cannot be honoured, `check` says so naming the key: on another backend, with
/// an overflow that drops, and on a request-reply channel.
#[test]
fn sync_is_refused_where_it_cannot_be_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let sc = channel_scenario(dir.path(), 1, 1, "mutex");
    let sc = sc.to_str().unwrap();
    let out = util::wasm_ipc(&["check", sc, "--set", "run.backends=[\"msg\"]"]);
    let err = util::stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("channel[0].sync") && err.contains("on msg") && err.contains("only shm"),
        "{err}"
    );
    let out = util::wasm_ipc(&["check", sc, "--set", "channel.0.overflow=\"drop-newest\""]);
    let err = util::stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("channel[0].overflow") && err.contains("needs sync = \"lock-free\""),
        "{err}"
    );
    let rr = util::scenario(
        dir.path(),
        "rr.toml",
        r#"name = "rr"
[[plugin]]
name = "client"
wasm = "{wasm:client}"
[[plugin]]
name = "server"
wasm = "{wasm:server}"
[[channel]]
from = "client.call"
to = "server.serve"
pattern = "request-reply"
sync = "semaphores"
[run]
backends = ["shm"]
"#,
    );
    let out = util::wasm_ipc(&["check", rr.to_str().unwrap()]);
    let err = util::stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("channel[0].sync") && err.contains("request-reply"),
        "{err}"
    );
    // And where it can, it is accepted.
    let out = util::wasm_ipc(&["check", sc]);
    assert!(out.status.success(), "{}", util::stderr(&out));
}
