//! Soak: fan-out, fan-in and a pipeline at once across 8 plugins on every backend, digests
//! equal across backends, exact counts, and no worker memory that grows with the message
//! count. CI runs it with 3 × 20,000 messages per producer; the full run is
//! `WASM_IPC_SOAK_COUNT=170000 cargo test --release --test all soak` (about a million
//! messages delivered per backend and count).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

fn soak_count() -> u64 {
    std::env::var("WASM_IPC_SOAK_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// p1 → [c1, r1] (fan-out), r1 → c2 (pipeline), [p2, p3, p4] → c3 (fan-in): 8 plugins.
fn scenario(count: u64, leak: u64) -> String {
    let producer = |name: &str, seed: u64| {
        format!(
            "[[plugin]]\nname = \"{name}\"\nwasm = \"{{wasm:producer}}\"\n\
             config = {{ count = {count}, size = 256, seed = {seed} }}\n"
        )
    };
    let consumer = |name: &str, extra: &str| {
        format!(
            "[[plugin]]\nname = \"{name}\"\nwasm = \"{{wasm:consumer}}\"\nconfig = {{ {extra} }}\n"
        )
    };
    let mut s = String::from("name = \"soak\"\n");
    s += &producer("p1", 1);
    s += &consumer("c1", "seed = 1");
    s += "[[plugin]]\nname = \"r1\"\nwasm = \"{wasm:relay}\"\n";
    s += &consumer("c2", "seed = 1");
    for p in ["p2", "p3", "p4"] {
        s += &producer(p, 2);
    }
    s += &consumer("c3", &format!("seed = 2, ordered = false, leak = {leak}"));
    s += "[[channel]]\nfrom = \"p1.out\"\nto = [\"c1.in\", \"r1.in\"]\nslot_size = 256\n";
    s += "[[channel]]\nfrom = \"r1.out\"\nto = \"c2.in\"\nslot_size = 256\n";
    s += "[[channel]]\nfrom = [\"p2.out\", \"p3.out\", \"p4.out\"]\nto = \"c3.in\"\nslot_size = 256\n";
    s += "[run]\nbackends = [\"shm\", \"msg\"]\ntimeout = \"600s\"\n";
    s
}

/// Runs the soak at `count`; per backend, every plugin's peak RSS in KiB.
fn soak(count: u64, leak: u64) -> (Value, BTreeMap<String, BTreeMap<String, u64>>) {
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(dir.path(), "soak.toml", &scenario(count, leak));
    let id = util::run_id("soak");
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--json",
        "--run-id",
        &id,
        sc.to_str().unwrap(),
    ]);
    assert_no_leftovers(&id);
    let rep = report(&out);
    let mut rss = BTreeMap::new();
    for run in rep["runs"].as_array().unwrap() {
        let per: BTreeMap<String, u64> = run["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["plugin"].as_str().unwrap().to_string(),
                    p["max_rss_kib"].as_u64().unwrap(),
                )
            })
            .collect();
        rss.insert(run["backend"].as_str().unwrap().to_string(), per);
    }
    (rep, rss)
}

/// The plugins whose peak RSS grew by more than `bound_kib` from the short run to the long.
fn grew(
    short: &BTreeMap<String, BTreeMap<String, u64>>,
    long: &BTreeMap<String, BTreeMap<String, u64>>,
    bound_kib: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    for (backend, plugins) in long {
        for (plugin, &kib) in plugins {
            let before = short[backend][plugin];
            if kib > before + bound_kib {
                out.push(format!("{plugin} on {backend}: {before} KiB -> {kib} KiB"));
            }
        }
    }
    out
}

/// A leak check with a generous bound: 8 MiB more peak RSS for three times the messages.
const BOUND_KIB: u64 = 8 * 1024;

#[test]
fn a_long_mixed_run_delivers_everything_identically_and_no_worker_grows_with_the_count() {
    let _g = heavy();
    let n = soak_count();
    let (short_rep, short) = soak(n, 0);
    let (long_rep, long) = soak(3 * n, 0);
    for (rep, count) in [(&short_rep, n), (&long_rep, 3 * n)] {
        assert_eq!(rep["digests_agree"], true);
        for run in rep["runs"].as_array().unwrap() {
            assert_eq!(run["ok"], true, "{}: {}", run["backend"], run["error"]);
            // c1 and r1 get p1's, c2 gets r1's, c3 gets three producers'.
            assert_eq!(
                run["messages"].as_u64(),
                Some(6 * count),
                "{}",
                run["backend"]
            );
        }
    }
    let leaks = grew(&short, &long, BOUND_KIB);
    assert!(
        leaks.is_empty(),
        "memory grew with the message count: {leaks:?}"
    );
}

/// The check above catches a leak: a consumer that keeps 1 KiB per message is named (at the
/// CI count whatever `WASM_IPC_SOAK_COUNT` says, so the leak stays inside its memory limit).
#[test]
fn the_leak_check_catches_an_injected_leak() {
    let _g = heavy();
    let n = 20_000;
    let (_, short) = soak(n, 1024);
    let (_, long) = soak(3 * n, 1024);
    let leaks = grew(&short, &long, BOUND_KIB);
    assert!(
        !leaks.is_empty() && leaks.iter().all(|l| l.starts_with("c3 on")),
        "{leaks:?}"
    );
}
