//! Limits on what a plugin may take: linear memory beyond its windows, table elements, wasm
//! stack, CPU time. Each ends the plugin with a verdict naming the plugin, the resource, the
//! limit and what it tried, in the error and in the report's `limit` field.

use serde_json::Value;

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

/// Grows its memory to 3 GiB and touches every page.
const BOMB: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (local $p i32)
    (drop (memory.grow (i32.const 49151)))
    (block $done
      (loop $touch
        (br_if $done (i32.ge_u (local.get $p) (i32.const 0xC0000000)))
        (i32.store8 (local.get $p) (i32.const 1))
        (local.set $p (i32.add (local.get $p) (i32.const 65536)))
        (br $touch)))
    (i32.const 0)))"#;

/// Recurses without end.
const DEEP: &str = r#"(module
  (memory (export "memory") 1)
  (func $down (param i32) (result i32)
    (call $down (i32.add (local.get 0) (i32.const 1))))
  (func (export "run") (result i32) (call $down (i32.const 0))))"#;

/// Grows a table to a million elements.
const TABLE: &str = r#"(module
  (memory (export "memory") 1)
  (table 1 funcref)
  (func (export "run") (result i32)
    (drop (table.grow (ref.null func) (i32.const 1000000)))
    (i32.const 0)))"#;

/// Runs one plugin from `wat` with the plugin keys `keys`; returns the exit code and report.
fn run_alone(wat: &str, keys: &str) -> (Option<i32>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.wat"), wat).unwrap();
    let sc = util::scenario(
        dir.path(),
        "s.toml",
        &format!(
            "name = \"limits\"\n[[plugin]]\nname = \"greedy\"\nwasm = \"p.wat\"\n{keys}\n\
             [run]\nbackends = [\"shm\"]\ntimeout = \"60s\"\n"
        ),
    );
    let id = util::run_id("limits");
    let out = wasm_ipc(&["run", "--json", "--run-id", &id, sc.to_str().unwrap()]);
    assert_no_leftovers(&id);
    let rep = report(&out);
    let err = rep["runs"][0]["error"].as_str().unwrap_or("").to_string();
    (out.status.code(), rep, err)
}

fn process(rep: &Value) -> &Value {
    &rep["runs"][0]["processes"][0]
}

#[test]
fn a_memory_bomb_ends_with_a_verdict_naming_the_plugin_memory_its_limit_and_the_size() {
    let _g = heavy();
    let (code, rep, err) = run_alone(BOMB, "memory = \"64MiB\"");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("plugin `greedy` hit its memory limit")
            && err.contains("to 3221225472 B (3.0 GiB)")
            && err.contains("plugin.memory = 67108864 B"),
        "{err}"
    );
    let p = process(&rep);
    assert_eq!(p["status"], "failed");
    assert_eq!(p["limit"]["resource"], "memory");
    assert_eq!(p["limit"]["limit"], 64 << 20);
    assert_eq!(p["limit"]["tried"], 3u64 << 30);
    // It never got the memory: its worker stayed small.
    assert!(p["max_rss_kib"].as_u64().unwrap() < 200 * 1024, "{p}");
    // Without the key, the default limit (256 MiB) stops it too.
    let (code, rep, err) = run_alone(BOMB, "");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(process(&rep)["limit"]["limit"], 256 << 20, "{err}");
}

/// The limit counts beyond the windows: a producer whose `shm` window holds a 256 MiB ring
/// runs under `memory = "16MiB"` on both backends.
#[test]
fn the_memory_limit_leaves_out_the_windows_so_one_limit_fits_every_backend() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "w.toml",
        r#"
name = "windows"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 20, size = 1000 }
memory = "16MiB"
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
memory = "16MiB"
[[channel]]
from = "p.out"
to = "c.in"
slot_size = "256MiB"
capacity = 1
"#,
    );
    let out = wasm_ipc(&["compare", "--quick", "--json", sc.to_str().unwrap()]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    for run in rep["runs"].as_array().unwrap() {
        assert_eq!(run["ok"], true, "{}: {}", run["backend"], run["error"]);
    }
}

#[test]
fn a_plugin_that_recurses_forever_hits_its_stack_limit() {
    let _g = heavy();
    let (code, rep, err) = run_alone(DEEP, "stack = \"64KiB\"");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("plugin `greedy` trapped")
            && err.contains("stack limit of 65536 B (plugin.stack)"),
        "{err}"
    );
    assert_eq!(process(&rep)["limit"]["resource"], "stack");
    assert_eq!(process(&rep)["limit"]["limit"], 65536);
}

#[test]
fn a_plugin_that_grows_a_table_past_its_limit_is_stopped() {
    let _g = heavy();
    let (code, rep, err) = run_alone(TABLE, "table_elements = 1000");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("hit its table limit")
            && err.contains("1000001 elements")
            && err.contains("limit of 1000 (plugin.table_elements)"),
        "{err}"
    );
    assert_eq!(process(&rep)["limit"]["tried"], 1_000_001);
}

/// Writes `n` 4 KiB lines to stderr through WASI.
fn flood(n: u32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\04\00\00\00\10\00\00")
  (func (export "run") (result i32)
    (local $i i32)
    (i32.store8 (i32.const 5119) (i32.const 10))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const {n})))
      (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 64)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.const 0)))"#
    )
}

/// Output is capped at 1 MiB per worker, and the supervisor's memory does not grow with the
/// flood: 16 MiB and 256 MiB of output leave it the same size (within 8 MiB).
#[test]
fn an_output_flood_is_cut_at_its_budget_and_the_supervisor_does_not_grow() {
    let _g = heavy();
    let (_, small, _) = run_alone(&flood(4096), "");
    let (_, big, _) = run_alone(&flood(65536), "");
    let dropped = |r: &Value| process(r)["output_dropped"].as_u64().unwrap();
    assert!(dropped(&small) >= 14 << 20, "{}", process(&small));
    assert!(dropped(&big) >= 250 << 20, "{}", process(&big));
    let rss = |r: &Value| r["supervisor_max_rss_kib"].as_u64().unwrap();
    assert!(rss(&small) > 0);
    assert!(
        rss(&big) < rss(&small) + 8 * 1024,
        "supervisor grew: {} KiB -> {} KiB",
        rss(&small),
        rss(&big)
    );
}

/// CPU time counts everything the worker burns, long before the wall-clock deadline.
#[test]
fn a_plugin_that_burns_cpu_hits_its_cpu_limit_before_the_deadline() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "cpu.toml",
        r#"
name = "cpu"
[[plugin]]
name = "spinner"
wasm = "{wasm:hang}"
config = { where = "loop" }
cpu = "300ms"
[run]
backends = ["msg"]
timeout = "60s"
"#,
    );
    let out = wasm_ipc(&["run", "--json", sc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", util::stderr(&out));
    let rep = report(&out);
    let err = rep["runs"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("plugin `spinner` hit its CPU limit") && err.contains("300ms (plugin.cpu)"),
        "{err}"
    );
    let p = process(&rep);
    assert_eq!(p["status"], "failed");
    assert_eq!(p["limit"]["resource"], "cpu");
    assert!(p["limit"]["tried"].as_u64().unwrap() > 300_000_000, "{p}");
}
