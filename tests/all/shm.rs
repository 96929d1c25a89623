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

/// The physical page frame behind virtual address `addr` of process `pid`, from
/// /proc/<pid>/pagemap (bit 63: present; bits 0–54: the frame; readable as root).
fn page_frame(pid: i32, addr: u64) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(format!("/proc/{pid}/pagemap")).ok()?;
    f.seek(SeekFrom::Start(addr / 4096 * 8)).ok()?;
    let mut entry = [0u8; 8];
    f.read_exact(&mut entry).ok()?;
    let entry = u64::from_le_bytes(entry);
    (entry >> 63 == 1).then_some(entry & ((1 << 55) - 1))
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
    let supervisor = i32::try_from(child.id()).unwrap();
    let slots = format!("wasm-ipc:{id}:slots:0:0");
    let start = Instant::now();
    let mut seen = std::collections::BTreeMap::new();
    let mut pids = std::collections::BTreeMap::new();
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
                pids.insert(name, pid);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Zero copies, shown by the hardware: every page of the ring is one physical frame in the
    // producer's window and in both consumers' windows (the ring is 16 slots of 4 KiB + 64 B,
    // 17 pages and more; the first 16 are compared).
    for page in 0..16u64 {
        let frames: Vec<Option<u64>> = ["p", "c1", "c2"]
            .iter()
            .map(|n| page_frame(pids[n], seen[n].0 + page * 4096))
            .collect();
        assert!(
            frames[0].is_some_and(|f| f != 0),
            "page {page}: no frame for the producer (not root?): {frames:?}"
        );
        assert!(
            frames.iter().all(|f| *f == frames[0]),
            "page {page}: the windows are not the same memory: {frames:?}"
        );
    }
    // …and a page of the producer's own memory outside the window is a frame of its own.
    let below = page_frame(pids["p"], seen["p"].0 - 65536);
    assert_ne!(below, page_frame(pids["c1"], seen["p"].0), "{below:?}");
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

/// On `shm` no process moves payload through a system call: each worker's kernel I/O counters
/// (`rchar + wchar`, every byte passed to read- and write-family calls) stay below 1 MiB —
/// the control protocol's lines and `/proc` reads, whatever the payload — while 64 MiB are
/// delivered. The same run on `msg` passes every payload byte through the kernel on both sides.
#[test]
fn shm_workers_pass_no_payload_through_the_kernel() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "io.toml",
        r#"
name = "io"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 16384, size = 4096 }
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
[[channel]]
from = "p.out"
to = "c.in"
slot_size = "4KiB"
capacity = 16
[run]
backends = ["shm", "msg"]
"#,
    );
    let out = wasm_ipc(&["compare", "--quick", "--json", sc.to_str().unwrap()]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    let payload = 16384 * 4096;
    for run in rep["runs"].as_array().unwrap() {
        assert_eq!(run["bytes"], payload);
        for p in run["processes"].as_array().unwrap() {
            let io = p["io_rchar"].as_u64().unwrap() + p["io_wchar"].as_u64().unwrap();
            let what = format!("{} on {}: rchar+wchar {io}", p["plugin"], run["backend"]);
            if run["backend"] == "shm" {
                assert!(io < 1 << 20, "{what}");
                assert_eq!(p["copied_bytes"], 0, "{what}");
            } else {
                assert!(io >= payload, "{what}");
            }
        }
    }
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

/// Processes that spin on every CPU beside a run with more plugins than CPUs: `adaptive`'s
/// yields hand the CPU to them, not to the peer, so each port notices (`yields_lost`) and
/// sleeps at once instead of yielding on every wait. Without that back-off a port yields on
/// nearly every wait of the run (tens of thousands of `sched_yields`, each a lost time
/// slice); with it, only until the first loss.
#[test]
fn adaptive_waiting_stops_yielding_when_other_processes_hold_the_cpus() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    // One producer and `cpus` consumers: more plugins than CPUs, so `adaptive` yields.
    let sc = util::scenario(
        dir.path(),
        "busy.toml",
        &format!(
            r#"
name = "busy"
[[plugin]]
name = "p"
wasm = "{{wasm:producer}}"
config = {{ count = 20000, size = 1000 }}
[[plugin]]
name = "c"
instances = {cpus}
wasm = "{{wasm:consumer}}"
config = {{ expect = 20000 }}
[[channel]]
from = "p.out"
to = "c[*].in"
slot_size = 1000
capacity = 4
[run]
backends = ["shm"]
wait = "adaptive"
timeout = "120s"
"#
        ),
    );
    // One spinning process per CPU, killed when the test ends, pass or fail.
    struct Spinners(Vec<std::process::Child>);
    impl Drop for Spinners {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let _spinners = Spinners(
        (0..cpus)
            .map(|_| {
                std::process::Command::new("sh")
                    // Bounded in count too (minutes of work), should the kill be missed.
                    .args(["-c", "i=0; while [ $i -lt 300000000 ]; do i=$((i+1)); done"])
                    .spawn()
                    .unwrap()
            })
            .collect(),
    );
    let out = wasm_ipc(&["run", "--json", sc.to_str().unwrap()]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let run = &report(&out)["runs"][0];
    assert_eq!(run["ok"], true);
    let sum = |name: &str| -> u64 {
        run["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["counters"][name].as_u64().unwrap_or(0))
            .sum()
    };
    let (lost, yields) = (sum("yields_lost"), sum("sched_yields"));
    assert!(
        lost >= 1,
        "no yield was lost beside {cpus} spinning processes: {run}"
    );
    // Each port yields until its first loss, then sleeps for 16384 waits: a few hundred yields
    // at most, against one per wait (tens of thousands) without the back-off.
    assert!(
        yields <= 2000,
        "{yields} sched_yields for {} messages: the ports kept yielding",
        run["messages"]
    );
}
