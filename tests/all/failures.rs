//! Failure paths with misbehaving fixture plugins: traps, hangs (timeouts in wasm code and in
//! blocking host calls), ABI misuse, bad modules; and plugin output forwarding.

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

/// Runs a scenario made of `body` (plugins and channels) on msg with `timeout`.
fn run(body: &str, timeout: &str) -> (std::process::Output, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "f.toml",
        &format!("name = \"f\"\n{body}\n[run]\nbackends = [\"msg\"]\ntimeout = \"{timeout}\"\n"),
    );
    let id = util::run_id("failures");
    let out = wasm_ipc(&["run", "--json", "--run-id", &id, sc.to_str().unwrap()]);
    let rep = report(&out);
    assert_no_leftovers(&id);
    (out, rep, id)
}

fn proc_named<'a>(rep: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    rep["runs"][0]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == name)
        .unwrap()
}

const PRODUCER_TO: &str = r#"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 100000, size = 64 }
"#;

#[test]
fn a_trap_fails_the_run_naming_the_plugin_and_its_producer_ends() {
    let _g = heavy();
    let body = format!(
        "{PRODUCER_TO}
[[plugin]]
name = \"t\"
wasm = \"{{wasm:trapper}}\"
config = {{ after = 10 }}
[[channel]]
from = \"p.out\"
to = \"t.in\"
"
    );
    let (out, rep, _) = run(&body, "60s");
    assert_eq!(out.status.code(), Some(1));
    let err = rep["runs"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("plugin `t` trapped") && err.contains("unreachable"),
        "{err}"
    );
    // wasmtime's own backtrace, frame by frame (`WasmBacktrace`), with code offsets.
    assert!(
        err.contains("[backtrace: <wasm function ") && err.contains(" at 0x"),
        "{err}"
    );
    assert_eq!(proc_named(&rep, "t")["status"], "failed");
    let p = proc_named(&rep, "p");
    assert!(p["status"] == "ok" || p["status"] == "peer-failed", "{p}");
}

#[test]
fn a_plugin_looping_in_wasm_and_one_blocked_in_receive_are_stopped_at_the_deadline() {
    let _g = heavy();
    let body = r#"
[[plugin]]
name = "spinner"
wasm = "{wasm:hang}"
config = { where = "loop" }
[[plugin]]
name = "waiter"
wasm = "{wasm:consumer}"
[[channel]]
from = "spinner.out"
to = "waiter.in"
"#;
    let (out, rep, _) = run(body, "1500ms");
    assert_eq!(out.status.code(), Some(1));
    let s = proc_named(&rep, "spinner");
    assert_eq!(s["status"], "interrupted", "{s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("interrupted in wasm code"),
        "{s}"
    );
    let w = proc_named(&rep, "waiter");
    assert_eq!(w["status"], "interrupted", "{w}");
    let e = w["error"].as_str().unwrap();
    assert!(
        e.contains("interrupted in `receive` on port `in`") && e.contains("timeout"),
        "{e}"
    );
}

#[test]
fn abi_misuse_traps_with_a_message_naming_the_plugin_and_the_call() {
    let _g = heavy();
    let cases = [
        (
            "publish-without-loan",
            "misused `publish`: no loan on port `out`",
        ),
        (
            "double-receive",
            "misused `receive`: a second `receive` on port `in`",
        ),
        (
            "release-without-receive",
            "misused `release`: nothing received",
        ),
        (
            "bad-port",
            "misused `loan`: port handle 999 was never returned",
        ),
        ("input-as-output", "misused `loan`: port `in` is an input"),
        (
            "output-as-input",
            "misused `receive`: port `out` is an output",
        ),
        (
            "lying-length",
            "32 bytes published on port `out`, but only 16 were loaned",
        ),
        ("bad-utf8", "misused `port`: the string is not UTF-8"),
        ("oob-string", "misused `port`"),
        ("oob-config", "misused `config`"),
    ];
    for (mode, want) in cases {
        let body = format!(
            "{PRODUCER_TO}
[[plugin]]
name = \"m\"
wasm = \"{{wasm:misuse}}\"
config = {{ mode = \"{mode}\" }}
[[plugin]]
name = \"c\"
wasm = \"{{wasm:consumer}}\"
config = {{ strict = false }}
[[channel]]
from = \"p.out\"
to = \"m.in\"
[[channel]]
from = \"m.out\"
to = \"c.in\"
"
        );
        let (out, rep, _) = run(&body, "30s");
        assert_eq!(out.status.code(), Some(1), "{mode}");
        let m = proc_named(&rep, "m");
        assert_eq!(m["status"], "failed", "{mode}: {m}");
        let e = m["error"].as_str().unwrap();
        assert!(
            e.contains("plugin `m` misused") && e.contains(want),
            "{mode}: {e}"
        );
    }
}

#[test]
fn plugin_output_goes_to_stderr_with_its_name_and_the_report_to_stdout() {
    let _g = heavy();
    let body = r#"
[[plugin]]
name = "chatty"
wasm = "{wasm:chatty}"
"#;
    let (out, rep, _) = run(body, "30s");
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert_eq!(rep["runs"][0]["ok"], true);
    let err = util::stderr(&out);
    for line in [
        "[chatty] hello from chatty stdout",
        "[chatty] hello from chatty stderr",
        "[chatty] INFO hello from chatty log",
    ] {
        assert!(err.contains(line), "missing {line:?} in stderr:\n{err}");
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hello"));
}

#[test]
fn a_module_that_breaks_the_abi_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.wat"),
        r#"(module (import "env" "f" (func)) (memory (export "memory") 1))"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"not wasm at all").unwrap();
    for (file, want) in [
        ("bad.wat", "imports `env`.`f`"),
        ("junk.wasm", "is not WebAssembly"),
    ] {
        let sc = util::scenario(
            dir.path(),
            "s.toml",
            &format!(
                "name = \"s\"\n[[plugin]]\nname = \"x\"\nwasm = \"{file}\"\n[run]\nbackends = [\"msg\"]\n"
            ),
        );
        let out = wasm_ipc(&["run", sc.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = util::stderr(&out);
        assert!(
            err.contains("plugin `x`") && err.contains(want),
            "{file}: {err}"
        );
        if file == "bad.wat" {
            assert!(err.contains("no `run` export"), "{err}");
        }
    }
}

#[test]
fn a_plugin_that_cannot_start_is_blamed_and_the_others_are_stopped_before_the_start() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    // `cabi_realloc` hands out an unaligned window: set-up fails in the worker.
    std::fs::write(
        dir.path().join("unaligned.wat"),
        r#"(module
            (memory (export "memory") 2)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 4)
            (func (export "run") (result i32) i32.const 0))"#,
    )
    .unwrap();
    let body = format!(
        "{PRODUCER_TO}
[[plugin]]
name = \"bad\"
wasm = \"{}\"
[[channel]]
from = \"p.out\"
to = \"bad.in\"
",
        dir.path().join("unaligned.wat").display()
    );
    for backend in ["msg", "shm", "zenoh"] {
        let body = body.clone();
        let sc = util::scenario(
            dir.path(),
            "s.toml",
            &format!("name = \"f\"\n{body}\n[run]\nbackends = [\"{backend}\"]\n"),
        );
        let id = util::run_id("nostart");
        let out = wasm_ipc(&["run", "--json", "--run-id", &id, sc.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{backend}");
        let rep = report(&out);
        let err = rep["runs"][0]["error"].as_str().unwrap();
        assert!(
            err.contains("plugin `bad` could not start") && err.contains("64 KiB-aligned"),
            "{backend}: {err}"
        );
        let p = proc_named(&rep, "p");
        assert_eq!(p["status"], "interrupted", "{backend}: {p}");
        assert!(
            p["error"]
                .as_str()
                .unwrap()
                .contains("stopped before the start"),
            "{p}"
        );
        util::assert_no_leftovers(&id);
    }
}
