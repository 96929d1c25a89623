//! The `shm` backend across real processes: the mapping is real (read from /proc/<pid>/maps),
//! a consumer cannot write what it received, idle consumers sleep, and the hand-off survives
//! a stress run under every wait mode.

use std::time::{Duration, Instant};

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

/// The line of /proc/<pid>/maps that maps `needle`, as (start address, permissions).
fn mapping(pid: i32, needle: &str) -> Option<(u64, String)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let line = maps.lines().find(|l| l.contains(needle))?;
    let mut parts = line.split_whitespace();
    let range = parts.next()?;
    let perms = parts.next()?.to_string();
    let start = u64::from_str_radix(range.split('-').next()?, 16).ok()?;
    Some((start, perms))
}

#[test]
fn the_slot_area_is_mapped_over_each_window_writable_only_for_the_producer() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "maps.toml",
        r#"
name = "maps"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 1000000, size = 64 }
[[plugin]]
name = "c1"
wasm = "{wasm:consumer}"
config = { delay_ns = 200000 }
[[plugin]]
name = "c2"
wasm = "{wasm:consumer}"
[[channel]]
from = "p.out"
to = ["c1.in", "c2.in"]
slot_size = "4KiB"
capacity = 16
[run]
backends = ["shm"]
timeout = "120s"
"#,
    );
    let id = util::run_id("maps");
    let child = util::spawn(&["run", "--json", "--run-id", &id, sc.to_str().unwrap()]);
    let supervisor = child.id() as i32;
    let slots = format!("wasm-ipc:{id}:slots:0:0");
    let start = Instant::now();
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "mappings never appeared: {seen:?}"
        );
        for name in ["p", "c1", "c2"] {
            if let Some(pid) = util::worker_pid(&id, name)
                && let Some(m) = mapping(pid, &slots)
            {
                seen.insert(name, m);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Ctrl-C: the supervisor stops every worker and still reports.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
    let out = util::wait_with_watchdog(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(130), "{}", util::stderr(&out));
    let rep = report(&out);
    let procs = rep["runs"][0]["processes"].as_array().unwrap();
    for (name, (addr, perms)) in &seen {
        let p = procs.iter().find(|p| p["plugin"] == *name).unwrap();
        let port = if *name == "p" { "out" } else { "in" };
        assert_eq!(
            p["windows"][port].as_u64(),
            Some(*addr),
            "{name}: the slot area sits at the window"
        );
        let want = if *name == "p" { "rw-s" } else { "r--s" };
        assert_eq!(perms, want, "{name}");
    }
    assert_eq!(rep["runs"][0]["copied_bytes"], 0);
    assert_no_leftovers(&id);
}

#[test]
fn a_consumer_that_writes_into_a_message_fails_cleanly_naming_itself() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "scribble.toml",
        r#"
name = "scribble"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 100000, size = 64 }
[[plugin]]
name = "scribbler"
wasm = "{wasm:scribbler}"
[[plugin]]
name = "honest"
wasm = "{wasm:consumer}"
[[channel]]
from = "p.out"
to = ["scribbler.in", "honest.in"]
[run]
backends = ["shm"]
timeout = "60s"
"#,
    );
    let id = util::run_id("scribble");
    let out = wasm_ipc(&["run", "--json", "--run-id", &id, sc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    let rep = report(&out);
    let run = &rep["runs"][0];
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains("plugin `scribbler` trapped")
            && err.contains("read-only shared region of input port `in`"),
        "{err}"
    );
    let procs = run["processes"].as_array().unwrap();
    let get = |n: &str| procs.iter().find(|p| p["plugin"] == n).unwrap();
    assert_eq!(get("scribbler")["status"], "failed");
    // The producer and the other consumer go on and finish: the scribbler was detached.
    assert_eq!(get("p")["status"], "ok");
    assert_eq!(get("honest")["status"], "ok");
    assert_eq!(get("honest")["messages_received"], 100000);
    assert_no_leftovers(&id);
}

#[test]
fn an_idle_consumer_sleeps_under_adaptive_waiting() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    // Three messages at 1 per second: the consumer waits idle for about two seconds.
    let sc = util::scenario(
        dir.path(),
        "idle.toml",
        r#"
name = "idle"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 3, size = 64, rate = 1 }
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
[[channel]]
from = "p.out"
to = "c.in"
[run]
backends = ["shm"]
wait = "adaptive"
"#,
    );
    let out = wasm_ipc(&["run", "--json", sc.to_str().unwrap()]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    let run = &rep["runs"][0];
    assert!(run["elapsed_s"].as_f64().unwrap() >= 1.9, "{run}");
    let c = run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == "c")
        .unwrap();
    let cpu = c["user_s"].as_f64().unwrap() + c["sys_s"].as_f64().unwrap();
    // Start-up (loading the module, instantiating) is included; spinning for 2 s would be ~2 s.
    assert!(cpu < 0.25, "idle consumer used {cpu} s of CPU: {c}");
    assert!(
        c["futex_waits"].as_u64().unwrap() >= 2,
        "it slept on the futex: {c}"
    );
}

#[test]
fn the_hand_off_between_two_processes_survives_a_stress_run_in_every_wait_mode() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    for wait in ["adaptive", "spin", "futex"] {
        let sc = util::scenario(
            dir.path(),
            "stress.toml",
            &format!(
                r#"
name = "stress"
[[plugin]]
name = "p"
wasm = "{{wasm:producer}}"
config = {{ count = 200000, size = 100 }}
[[plugin]]
name = "c"
wasm = "{{wasm:consumer}}"
config = {{ expect = 200000 }}
[[channel]]
from = "p.out"
to = "c.in"
slot_size = 128
capacity = 4
[run]
backends = ["shm"]
wait = "{wait}"
timeout = "120s"
"#
            ),
        );
        let out = wasm_ipc(&["run", "--json", sc.to_str().unwrap()]);
        assert!(out.status.success(), "{wait}: {}", util::stderr(&out));
        let run = &report(&out)["runs"][0];
        assert_eq!(run["messages"], 200000, "{wait}");
        assert_eq!(run["digest_sent"], run["digest_received"], "{wait}");
        assert_eq!(run["copied_bytes"], 0, "{wait}");
        let c = &run["processes"][1];
        assert_eq!(c["reports"]["mismatches"], 0, "{wait}");
        if wait == "spin" {
            assert_eq!(c["futex_waits"], 0, "spin never sleeps");
        }
    }
}
