//! The fault table (the book, docs/src/guide/faults.md): every row is a test here or names the
//! test elsewhere. For each: exit status non-zero, one clear message naming the plugin (or the
//! file, line and key) and the cause, every other worker ends within the timeout, nothing is
//! left behind, and the JSON report says which runs failed and why.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

/// Host imports and a page allocator for WAT fixtures; `{body}` adds functions and exports.
fn wat(body: &str) -> String {
    format!(
        r#"(module
  (import "wasm-ipc:plugin/host@0.1.0" "port" (func $port (param i32 i32) (result i32)))
  (import "wasm-ipc:plugin/host@0.1.0" "loan" (func $loan (param i32 i32) (result i32)))
  (import "wasm-ipc:plugin/host@0.1.0" "publish" (func $publish (param i32 i32) (result i32)))
  (import "wasm-ipc:plugin/host@0.1.0" "receive" (func $receive (param i32) (result i64)))
  (import "wasm-ipc:plugin/host@0.1.0" "release" (func $release (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "out")
  (data (i32.const 32) "in")
  (func $pages (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (i32.shl
      (memory.grow (i32.shr_u (i32.add (local.get 3) (i32.const 65535)) (i32.const 16)))
      (i32.const 16)))
  {body})"#
    )
}

/// Publishes `n` 8-byte messages on "out", then does `then`.
fn producer(n: u32, then: &str) -> String {
    wat(&format!(
        r#"(func (export "run") (result i32)
    (local $h i32) (local $i i32) (local $p i32)
    (local.set $h (call $port (i32.const 16) (i32.const 3)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
      (local.set $p (call $loan (local.get $h) (i32.const 8)))
      (i64.store (local.get $p) (i64.extend_i32_u (local.get $i)))
      (drop (call $publish (local.get $h) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    {then})"#
    ))
}

/// Prints the verdict a fault produced (`--nocapture` shows them: the book's fault table quotes
/// these lines).
fn seen(fault: &str, message: &str) {
    eprintln!("FAULT {fault}: {message}");
}

struct Run {
    code: Option<i32>,
    report: Value,
    stderr: String,
}

impl Run {
    fn error(&self) -> String {
        self.report["runs"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn process(&self, name: &str) -> &Value {
        self.report["runs"][0]["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plugin"] == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }
}

/// Runs a scenario made of `files` (name, text) and `body` on `backend`.
fn run(files: &[(&str, &str)], body: &str, backend: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let sc = util::scenario(dir.path(), "s.toml", &format!("name = \"faults\"\n{body}"));
    let id = util::run_id("faults");
    let out = wasm_ipc(&[
        "run",
        "--json",
        "--backend",
        backend,
        "--run-id",
        &id,
        sc.to_str().unwrap(),
    ]);
    assert_no_leftovers(&id);
    let stderr = util::stderr(&out);
    let report = if out.stdout.is_empty() {
        Value::Null
    } else {
        report(&out)
    };
    Run {
        code: out.status.code(),
        report,
        stderr,
    }
}

const CONSUMER: &str = r#"
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
config = { check = "none" }
"#;

#[test]
fn a_producer_that_traps_mid_stream_fails_and_its_consumer_sees_peer_failed() {
    let _g = heavy();
    for backend in ["shm", "msg", "zenoh"] {
        let r = run(
            &[("p.wat", &producer(5, "unreachable"))],
            &format!(
                "[[plugin]]\nname = \"p\"\nwasm = \"p.wat\"\n{CONSUMER}\
                 [[channel]]\nfrom = \"p.out\"\nto = \"c.in\"\n"
            ),
            backend,
        );
        assert_eq!(r.code, Some(1), "{backend}: {}", r.stderr);
        let err = r.error();
        seen(&format!("producer trap on {backend}"), &err);
        assert!(
            err.contains("plugin `p` trapped") && err.contains("unreachable"),
            "{backend}: {err}"
        );
        assert_eq!(r.process("p")["status"], "failed");
        assert_eq!(r.process("c")["status"], "peer-failed", "{backend}");
        // It drained what was sent before it saw the failure.
        assert_eq!(r.process("c")["messages_received"], 5, "{backend}");
    }
}

#[test]
fn a_relay_that_traps_mid_stream_fails_and_both_neighbours_end() {
    let _g = heavy();
    let relay = wat(r#"(func (export "run") (result i32)
    (local $in i32) (local $out i32) (local $n i32)
    (local.set $in (call $port (i32.const 32) (i32.const 2)))
    (local.set $out (call $port (i32.const 16) (i32.const 3)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $n) (i32.const 3)))
      (drop (call $receive (local.get $in)))
      (drop (call $release (local.get $in)))
      (i64.store (call $loan (local.get $out) (i32.const 8)) (i64.extend_i32_u (local.get $n)))
      (drop (call $publish (local.get $out) (i32.const 8)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    unreachable)"#);
    for backend in ["shm", "msg", "zenoh"] {
        let r = run(
            &[("r.wat", &relay)],
            &format!(
                "[[plugin]]\nname = \"p\"\nwasm = \"{{wasm:producer}}\"\n\
                 config = {{ count = 100000, size = 64 }}\n\
                 [[plugin]]\nname = \"r\"\nwasm = \"r.wat\"\n{CONSUMER}\
                 [[channel]]\nfrom = \"p.out\"\nto = \"r.in\"\nslot_size = 64\n\
                 [[channel]]\nfrom = \"r.out\"\nto = \"c.in\"\nslot_size = 64\n"
            ),
            backend,
        );
        assert_eq!(r.code, Some(1), "{backend}: {}", r.stderr);
        assert!(
            r.error().contains("plugin `r` trapped"),
            "{backend}: {}",
            r.error()
        );
        assert_eq!(r.process("r")["status"], "failed");
        assert_eq!(r.process("c")["status"], "peer-failed", "{backend}");
        // The producer learns that its only consumer is gone: closed, its own choice to end.
        let p = r.process("p")["status"].as_str().unwrap().to_string();
        assert!(
            p == "failed" || p == "ok" || p == "peer-failed",
            "{backend}: {p}"
        );
    }
}

#[test]
fn an_out_of_bounds_access_traps_naming_the_plugin() {
    let _g = heavy();
    let oob = wat(r#"(func (export "run") (result i32)
    (i32.load (i32.const 0xFFFFFFF0)))"#);
    let r = run(
        &[("oob.wat", &oob)],
        "[[plugin]]\nname = \"wild\"\nwasm = \"oob.wat\"\n",
        "shm",
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let err = r.error();
    seen("out of bounds", &err);
    assert!(
        err.contains("plugin `wild` trapped") && err.contains("out of bounds memory access"),
        "{err}"
    );
}

/// A worker stopped with SIGSTOP never runs again: the deadline ends the run, and the verdict
/// says the plugin was frozen, not slow; its producer is told by the deadline, not held forever.
#[test]
fn a_frozen_worker_is_killed_at_the_deadline_with_a_verdict_that_says_frozen() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "frozen.toml",
        r#"
name = "frozen"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 100000000, size = 64 }
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
config = { check = "none" }
[[channel]]
from = "p.out"
to = "c.in"
[run]
backends = ["msg"]
timeout = "3s"
"#,
    );
    let id = util::run_id("frozen");
    let child = util::spawn(&["run", "--json", "--run-id", &id, sc.to_str().unwrap()]);
    let start = Instant::now();
    let pid = loop {
        if let Some(pid) = util::worker_pid(&id, "c") {
            break pid;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no consumer");
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP).unwrap();
    let out = util::wait_with_watchdog(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    let rep = report(&out);
    let run = &rep["runs"][0];
    let err = run["error"].as_str().unwrap();
    seen("frozen", err);
    assert!(
        err.contains("plugin `c`") && err.contains("frozen (stopped by a signal, state T)"),
        "{err}"
    );
    let procs = run["processes"].as_array().unwrap();
    let c = procs.iter().find(|p| p["plugin"] == "c").unwrap();
    let p = procs.iter().find(|p| p["plugin"] == "p").unwrap();
    assert_eq!(c["status"], "killed");
    // The producer, held back by the frozen consumer, was ended by the deadline and says why.
    assert_eq!(p["status"], "interrupted", "{p}");
    let perr = p["error"].as_str().unwrap();
    seen("frozen, its producer", perr);
    assert!(
        perr.contains("the link was full: the consumer on link channel[0]:p.out->c.in"),
        "{perr}"
    );
    assert_no_leftovers(&id);
}

/// On `shm` a consumer that never releases holds its producer back; the producer's verdict
/// names the consumer that held it.
#[test]
fn a_consumer_that_never_releases_is_named_by_the_producer_it_holds_back() {
    let _g = heavy();
    let hoarder = wat(r#"(func (export "run") (result i32)
    (local $in i32)
    (local.set $in (call $port (i32.const 32) (i32.const 2)))
    (drop (call $receive (local.get $in)))
    (loop $forever (br $forever))
    (i32.const 0))"#);
    let r = run(
        &[("h.wat", &hoarder)],
        "[[plugin]]\nname = \"p\"\nwasm = \"{wasm:producer}\"\n\
         config = { count = 1000, size = 64 }\n\
         [[plugin]]\nname = \"hoarder\"\nwasm = \"h.wat\"\n\
         [[channel]]\nfrom = \"p.out\"\nto = \"hoarder.in\"\nslot_size = 64\ncapacity = 4\n\
         [run]\ntimeout = \"2s\"\n",
        "shm",
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let p = r.process("p");
    assert_eq!(p["status"], "interrupted", "{p}");
    let perr = p["error"].as_str().unwrap();
    seen("never releases", perr);
    assert!(
        perr.contains("interrupted in `loan` on port `out`")
            && perr
                .contains("the ring was full: the consumer on link channel[0]:p.out->hoarder.in"),
        "{perr}"
    );
    assert_eq!(r.process("hoarder")["status"], "interrupted");
}

/// On `shm` a producer's window holds its whole ring, so it can rewrite a slot it published.
/// The contract promises what the consumer saw is what its digest says: a rewrite before the
/// consumer reads shows up as a digest mismatch naming the link.
#[test]
fn a_producer_that_rewrites_a_published_slot_is_caught_by_the_digests() {
    let _g = heavy();
    // Publishes message 0, then overwrites its slot; the consumer waits 50 ms in wasm first.
    let rewriter = wat(r#"(func (export "run") (result i32)
    (local $h i32) (local $p i32)
    (local.set $h (call $port (i32.const 16) (i32.const 3)))
    (local.set $p (call $loan (local.get $h) (i32.const 8)))
    (i64.store (local.get $p) (i64.const 1111))
    (drop (call $publish (local.get $h) (i32.const 8)))
    (i64.store (local.get $p) (i64.const 2222))
    (i32.const 0))"#);
    let late = wat(r#"(func (export "run") (result i32)
    (local $in i32) (local $n i64)
    (local.set $in (call $port (i32.const 32) (i32.const 2)))
    (loop $wait
      (local.set $n (i64.add (local.get $n) (i64.const 1)))
      (br_if $wait (i64.lt_u (local.get $n) (i64.const 100000000))))
    (drop (call $receive (local.get $in)))
    (drop (call $release (local.get $in)))
    (i32.const 0))"#);
    let r = run(
        &[("w.wat", &rewriter), ("l.wat", &late)],
        "[[plugin]]\nname = \"p\"\nwasm = \"w.wat\"\n\
         [[plugin]]\nname = \"c\"\nwasm = \"l.wat\"\n\
         [[channel]]\nfrom = \"p.out\"\nto = \"c.in\"\nslot_size = 64\n",
        "shm",
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    seen("rewrite after publish", &r.error());
    assert!(
        r.error()
            .contains("digest mismatch: what was received differs from what was sent on channel[0]:p.out->c.in"),
        "{}",
        r.error()
    );
}

/// `cabi_realloc` abuse: each window must be non-null, 64 KiB-aligned, inside memory, below
/// 2 GiB and apart from the others, and growing memory for it is bounded by the limit.
#[test]
fn a_cabi_realloc_that_lies_is_refused_before_the_start() {
    let _g = heavy();
    let with_realloc = |body: &str| {
        format!(
            r#"(module
  (memory (export "memory") 1)
  (global $calls (mut i32) (i32.const 0))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) {body})
  (func (export "run") (result i32) (i32.const 0)))"#
        )
    };
    let cases = [
        (
            "unaligned",
            with_realloc("(i32.const 65544)"),
            "64 KiB-aligned",
        ),
        (
            "outside",
            with_realloc("(i32.const 0x7fff0000)"),
            "outside the plugin's",
        ),
        (
            "overlapping",
            with_realloc("(drop (memory.grow (i32.const 40))) (i32.const 65536)"),
            "overlapping windows for ports",
        ),
        (
            "greedy",
            with_realloc("(i32.shl (memory.grow (i32.const 20000)) (i32.const 16))"),
            "hit its memory limit",
        ),
    ];
    for (what, text, says) in cases {
        let r = run(
            &[("bad.wat", &text)],
            "[[plugin]]\nname = \"p\"\nwasm = \"{wasm:producer}\"\nconfig = { count = 10 }\n\
             [[plugin]]\nname = \"bad\"\nwasm = \"bad.wat\"\nmemory = \"64MiB\"\n\
             [[channel]]\nfrom = \"p.out\"\nto = [\"bad.in\", \"bad.in2\"]\n",
            "shm",
        );
        assert_eq!(r.code, Some(1), "{what}: {}", r.stderr);
        let err = r.error();
        seen(&format!("cabi_realloc {what}"), &err);
        assert!(
            err.contains("plugin `bad` could not start") && err.contains(says),
            "{what}: {err}"
        );
        // The others were stopped before the start, not left waiting.
        assert_eq!(r.process("p")["status"], "interrupted", "{what}");
    }
}

/// Bad files: each is refused before any worker starts, exit 2, naming the plugin and file.
#[test]
fn bad_module_files_are_refused_before_any_worker_starts() {
    let _g = heavy();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not-wasm.wasm",
            b"this is not wasm".to_vec(),
            "is not WebAssembly: it does not start with the \\0asm header",
        ),
        (
            "truncated.wasm",
            std::fs::read(util::wasm("producer")).unwrap()[..4000].to_vec(),
            "compiling",
        ),
        (
            "memory64.wat",
            b"(module (memory (export \"memory\") i64 1) (func (export \"run\") (result i32) (i32.const 0)))".to_vec(),
            "memory",
        ),
        (
            "shared.wat",
            b"(module (memory (export \"memory\") 1 1 shared) (func (export \"run\") (result i32) (i32.const 0)))".to_vec(),
            "shared memor",
        ),
    ];
    for (file, bytes, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(file), &bytes).unwrap();
        let sc = util::scenario(
            dir.path(),
            "s.toml",
            &format!("name = \"bad\"\n[[plugin]]\nname = \"m\"\nwasm = \"{file}\"\n"),
        );
        let id = util::run_id("badfile");
        let out = wasm_ipc(&["run", "--run-id", &id, sc.to_str().unwrap()]);
        let err = util::stderr(&out);
        seen(file, err.trim());
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(
            err.contains("plugin `m`") && err.contains(file) && err.contains(says),
            "{file}: {err}"
        );
        assert_no_leftovers(&id);
    }
    // A data segment far outside its memory: the module compiles; instantiation refuses it.
    let huge = wat(r#"(data (i32.const 0x7fff0000) "x")
  (func (export "run") (result i32) (i32.const 0))"#);
    let r = run(
        &[("huge.wat", &huge)],
        "[[plugin]]\nname = \"m\"\nwasm = \"huge.wat\"\n",
        "shm",
    );
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    seen("huge data segment", &r.error());
    assert!(
        r.error().contains("plugin `m` could not start") && r.error().contains("out of bounds"),
        "{}",
        r.error()
    );
}

/// The supervisor killed with SIGKILL mid-run: its workers die with it (`PR_SET_PDEATHSIG`)
/// and no process, memfd or socket of the run remains.
#[test]
fn killing_the_supervisor_mid_run_leaves_nothing_behind() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "k.toml",
        r#"
name = "k"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 100000000, size = 64 }
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
config = { check = "none" }
[[channel]]
from = "p.out"
to = "c.in"
[run]
backends = ["shm"]
timeout = "120s"
"#,
    );
    let id = util::run_id("killsup");
    let mut child = util::spawn(&["run", "--run-id", &id, sc.to_str().unwrap()]);
    let start = Instant::now();
    while util::worker_pid(&id, "c").is_none() || util::worker_pid(&id, "p").is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "no workers");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    let _ = child.wait();
    assert_no_leftovers(&id);
}

/// The supervisor killed while it writes the compile cache leaves no file but complete ones:
/// the code goes into an unnamed O_TMPFILE and is linked under its name only when complete.
#[test]
fn killing_the_supervisor_while_it_writes_the_cache_leaves_no_temporary_file() {
    let _g = heavy();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "c.toml",
        "name = \"cache\"\n[[plugin]]\nname = \"p\"\nwasm = \"{wasm:producer}\"\n\
         config = { count = 1 }\n[[plugin]]\nname = \"c\"\nwasm = \"{wasm:consumer}\"\n\
         [[channel]]\nfrom = \"p.out\"\nto = \"c.in\"\n",
    );
    // Kill it at a range of moments around compiling and storing.
    for delay_ms in [20u64, 40, 60, 80, 100, 150, 200, 300] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-ipc"))
            .args(["run", sc.to_str().unwrap()])
            .env("WASM_IPC_CACHE_DIR", cache.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        for entry in std::fs::read_dir(cache.path()).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(name.ends_with(".cwasm"), "left behind: {name}");
        }
        for entry in std::fs::read_dir(cache.path()).unwrap().flatten() {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
}
