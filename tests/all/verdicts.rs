//! Verdicts a user can trust: a winner is named only when the paired rounds can tell, the same
//! runs repeated never name the other winner, and large real differences are still called.

use std::collections::BTreeMap;

use crate::util::{self, heavy, report, wasm_ipc};

/// The verdicts of one `compare --json`: (figure, a, b) → the winner, or `None`.
fn verdicts(args: &[&str]) -> BTreeMap<(String, String, String), Option<String>> {
    let out = wasm_ipc(args);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    let runs = rep["runs"].as_array().unwrap();
    // The plan: a warm-up per backend first (kept, marked), then rounds of every backend.
    let backends = rep["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|v| [v["a"].to_string(), v["b"].to_string()])
        .collect::<std::collections::BTreeSet<String>>()
        .len();
    assert!(
        runs[..backends].iter().all(|r| r["warmup"] == true),
        "the warm-ups come first"
    );
    assert!(runs[backends..].iter().all(|r| r["warmup"] == false));
    let rounds: Vec<u64> = runs[backends..]
        .iter()
        .map(|r| r["round"].as_u64().unwrap())
        .collect();
    let interleaved: Vec<u64> = (0..rounds.len() as u64)
        .map(|i| i / backends as u64)
        .collect();
    assert_eq!(rounds, interleaved, "rounds interleave the backends");
    rep["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let key = |k: &str| v[k].as_str().unwrap().to_string();
            let ratio = &v["ratio"];
            let (lo, hi) = (ratio["lo"].as_f64().unwrap(), ratio["hi"].as_f64().unwrap());
            assert!(
                lo <= ratio["median"].as_f64().unwrap() && ratio["median"].as_f64().unwrap() <= hi
            );
            let winner = v["winner"].as_str().map(String::from);
            // A winner only with the whole interval beyond 1 ± 5 %.
            if winner.is_some() {
                assert!(lo > 1.05 || hi < 0.95, "{v}");
            }
            ((key("figure"), key("a"), key("b")), winner)
        })
        .collect()
}

/// The main job, run three times with a small fixed budget (5 rounds of 20,000 messages after
/// a warm-up): no verdict names one winner in one run and the other in another (a verdict may
/// go from a winner to "no clear winner"), and shm against zenoh throughput (about 10× here)
/// is called every time. Then 8-byte messages, shm against msg (several times apart): called.
#[test]
fn verdicts_never_flip_and_large_differences_are_called() {
    let _g = heavy();
    util::plugins();
    let main = util::root().join("scenarios/producer-consumer.toml");
    let args = [
        "compare",
        "--json",
        "--repeat",
        "5",
        "--set",
        "plugin.producer.config.count=20000",
        "--set",
        "plugin.consumer.config.expect=20000",
        main.to_str().unwrap(),
    ];
    let mut seen: BTreeMap<(String, String, String), Vec<Option<String>>> = BTreeMap::new();
    for _ in 0..3 {
        for (k, w) in verdicts(&args) {
            seen.entry(k).or_default().push(w);
        }
    }
    for (k, winners) in &seen {
        let named: std::collections::BTreeSet<&String> = winners.iter().flatten().collect();
        assert!(
            named.len() <= 1,
            "{k:?} named different winners: {winners:?}"
        );
    }
    let key = |f: &str, a: &str, b: &str| (f.to_string(), a.to_string(), b.to_string());
    assert_eq!(
        seen[&key("throughput", "shm", "zenoh")],
        vec![Some("shm".to_string()); 3],
        "shm against zenoh throughput must be called"
    );
    let tiny = util::root().join("scenarios/tiny-messages.toml");
    let v = verdicts(&[
        "compare",
        "--json",
        "--repeat",
        "5",
        "--set",
        "run.backends=[\"shm\", \"msg\"]",
        "--set",
        "plugin.producer.config.count=20000",
        "--set",
        "plugin.consumer.config.expect=20000",
        tiny.to_str().unwrap(),
    ]);
    assert_eq!(
        v[&key("throughput", "shm", "msg")],
        Some("shm".to_string()),
        "8-byte messages: shm against msg throughput must be called"
    );
}

/// `--quick` makes one run per backend and no warm-up, says so, and its verdicts name no
/// winner: one round cannot tell.
#[test]
fn quick_runs_once_and_calls_no_winner() {
    let _g = heavy();
    util::plugins();
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--set",
        "plugin.producer.config.count=2000",
        "--set",
        "plugin.consumer.config.expect=2000",
    ]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let err = util::stderr(&out);
    assert!(err.contains("plan: one round, no warm-up"), "{err}");
    assert!(err.contains("--quick"), "{err}");
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("verdict, "))
        .collect();
    assert!(!lines.is_empty(), "{table}");
    for l in &lines {
        assert!(
            l.contains(": no clear winner: ratio ") && l.ends_with(", 1 round)"),
            "{l}"
        );
    }
    assert!(table.contains("too few rounds to call a winner"), "{table}");
}
