//! Loss, counted: with `overflow = "drop-newest"` a fast producer and a consumer that stalls
//! lose messages on every backend, and the receiving hosts' count from sequence numbers
//! equals what was published less what was delivered, link by link; with `block` nothing is
//! lost. Nothing here counts loss as sent − received: the report's `lost` comes from the
//! links' sequence numbers (`wasm_ipc_wire::sequence`), and this test checks it against the
//! counts.

use crate::util::{self, heavy};

const BACKENDS: [&str; 7] = ["shm", "msg", "pipe", "mq", "tcp", "udp", "zenoh"];
const COUNT: u64 = 4000;

/// One producer, a consumer that never stalls and one that stalls for 30 ms once after
/// `stall_after` messages (0: before its first), over a channel with `overflow`.
fn lossy(
    dir: &std::path::Path,
    overflow: &str,
    stall_after: u64,
    backends: &[&str],
) -> std::path::PathBuf {
    util::scenario(
        dir,
        &format!("lossy-{overflow}-{stall_after}.toml"),
        &format!(
            r#"name = "lossy"
[[plugin]]
name = "producer"
wasm = "{producer}"
config = {{ count = {COUNT}, size = 64, seed = 3 }}
[[plugin]]
name = "fast"
wasm = "{consumer}"
config = {{ seed = 3, ordered = false }}
[[plugin]]
name = "slow"
wasm = "{consumer}"
config = {{ seed = 3, ordered = false, stall_after = {stall_after}, stall_ns = 30000000 }}
[[channel]]
from = "producer.out"
to = ["fast.in", "slow.in"]
slot_size = 64
capacity = 8
overflow = "{overflow}"
[run]
backends = {backends:?}
timeout = "60s"
"#,
            producer = util::wasm("producer").display(),
            consumer = util::wasm("consumer").display(),
        ),
    )
}

fn int(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer `{key}` in {v}"))
}

/// The measured runs of `compare --repeat 1` on every backend, each checked to be ok.
fn runs(file: &std::path::Path, backends: &[&str]) -> Vec<serde_json::Value> {
    let out = util::wasm_ipc(&["compare", "--repeat", "1", "--json", file.to_str().unwrap()]);
    let report = util::report(&out);
    let runs: Vec<serde_json::Value> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["warmup"] != true)
        .cloned()
        .collect();
    let seen: Vec<&str> = runs
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(seen, backends, "{}", util::stderr(&out));
    for r in &runs {
        assert_eq!(r["ok"], true, "{}: {}", r["backend"], r["error"]);
    }
    runs
}

#[test]
fn a_stalled_consumer_loses_messages_on_every_backend_under_drop_newest_and_none_under_block() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    for stall_after in [0, COUNT / 2] {
        let when = if stall_after == 0 {
            "at the start"
        } else {
            "mid-stream"
        };
        for r in runs(
            &lossy(dir.path(), "drop-newest", stall_after, &BACKENDS),
            &BACKENDS,
        ) {
            check_lossy_run(&r, when);
        }
        for r in runs(
            &lossy(dir.path(), "block", stall_after, &BACKENDS),
            &BACKENDS,
        ) {
            let b = r["backend"].as_str().unwrap();
            for key in ["lost", "dropped", "duplicated", "reordered"] {
                assert_eq!(int(&r, key), 0, "{b}, block, stall {when}: {key}");
            }
            assert_eq!(r["delivered_fraction"].as_f64(), Some(1.0), "{b}");
            assert_eq!(r["digest_sent"], r["digest_received"], "{b}");
            for l in r["links"].as_array().unwrap() {
                assert_eq!(int(l, "received"), COUNT, "{b}: {l}");
            }
        }
    }
}

/// One run of a dropping channel: per link, what the sequence numbers say is lost is exactly
/// what was published and not delivered, the sender's count of drops agrees (except on
/// udp, whose kernel drops too), nothing is duplicated or reordered, and the consumer that
/// stalled lost something.
fn check_lossy_run(r: &serde_json::Value, when: &str) {
    let b = r["backend"].as_str().unwrap().to_string();
    let links = r["links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "{b}");
    let (mut published, mut received) = (0, 0);
    for l in links {
        let key = l["link"].as_str().unwrap();
        // Exactly: every message published and not delivered is one the sequence
        // numbers say is missing, no more, no less.
        assert_eq!(
            int(l, "lost"),
            int(l, "published") - int(l, "received"),
            "{b}, stall {when}, {key}: {l}"
        );
        assert_eq!(int(l, "published"), COUNT, "{b}: {l}");
        assert_eq!(
            (int(l, "duplicated"), int(l, "reordered")),
            (0, 0),
            "{b}: {l}"
        );
        // Only udp's kernel drops without the sender knowing.
        if b != "udp" {
            assert_eq!(int(l, "dropped"), int(l, "lost"), "{b}: {l}");
        }
        published += int(l, "published");
        received += int(l, "received");
    }
    let slow = links
        .iter()
        .find(|l| l["to"] == "slow.in")
        .expect("the slow consumer's link");
    assert!(
        int(slow, "lost") > 0,
        "{b}: the consumer that stalled {when} lost nothing: {slow}"
    );
    assert_eq!(int(r, "lost"), published - received, "{b}");
    let fraction = r["delivered_fraction"].as_f64().unwrap();
    assert!(
        (fraction - received as f64 / published as f64).abs() < 1e-9,
        "{b}: delivered_fraction {fraction}"
    );
    assert!(fraction < 1.0, "{b}: {fraction}");
}

/// `overflow = "drop-oldest"` on shm: the stalled consumer loses its oldest unread messages
/// (the producer never waits), counted exactly as under drop-newest; every other backend is
/// refused by `check`, naming the key and the reason.
#[test]
fn drop_oldest_loses_the_oldest_on_shm_and_is_refused_elsewhere() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    for (stall_after, when) in [(0, "at the start"), (COUNT / 2, "mid-stream")] {
        for r in runs(
            &lossy(dir.path(), "drop-oldest", stall_after, &["shm"]),
            &["shm"],
        ) {
            check_lossy_run(&r, when);
        }
    }
    let file = lossy(dir.path(), "drop-oldest", 0, &BACKENDS);
    for b in &BACKENDS[1..] {
        let out = util::wasm_ipc(&["check", "--backend", b, file.to_str().unwrap()]);
        let err = util::stderr(&out);
        assert!(!out.status.success(), "{b}: {err}");
        assert!(
            err.contains("channel[0].overflow")
                && err.contains("drop-oldest")
                && err.contains("only shm"),
            "{b}: {err}"
        );
    }
    let out = util::wasm_ipc(&["check", "--backend", "shm", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", util::stderr(&out));
}

#[test]
fn overflow_names_its_choices_and_does_not_apply_to_request_reply() {
    let dir = tempfile::tempdir().unwrap();
    let bad = lossy(dir.path(), "drop-oldest-maybe", 0, &BACKENDS);
    let out = util::wasm_ipc(&["check", bad.to_str().unwrap()]);
    let err = util::stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("channel[0].overflow")
            && err.contains("\"drop-oldest-maybe\"")
            && err.contains("block, drop-newest, drop-oldest"),
        "{err}"
    );
    let rr = util::scenario(
        dir.path(),
        "rr.toml",
        &format!(
            r#"name = "rr"
[[plugin]]
name = "client"
wasm = "{}"
[[plugin]]
name = "server"
wasm = "{}"
[[channel]]
from = "client.db"
to = "server.db"
pattern = "request-reply"
overflow = "drop-newest"
"#,
            util::wasm("pinger").display(),
            util::wasm("db").display()
        ),
    );
    let out = util::wasm_ipc(&["check", rr.to_str().unwrap()]);
    let err = util::stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("channel[0].overflow") && err.contains("request-reply"),
        "{err}"
    );
}
