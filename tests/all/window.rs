//! A window you can see: every link states its window (`capacity`), the share of the run its
//! producer was held back and its consumer waited, and — where credits keep the window — the
//! round trip and the bound `window ÷ round trip`; the table says when the window, not the
//! consumer, bound a link.

use crate::util::{self, heavy};

const BACKENDS: [&str; 7] = ["shm", "msg", "pipe", "mq", "tcp", "udp", "zenoh"];

/// 64 B messages at capacity `capacity` to a consumer that keeps up (or takes `delay_ns` per
/// message), on `backends`.
fn scenario(
    dir: &std::path::Path,
    capacity: u32,
    count: u32,
    delay_ns: u64,
    backends: &[&str],
) -> std::path::PathBuf {
    util::scenario(
        dir,
        &format!("window-{capacity}-{delay_ns}.toml"),
        &format!(
            r#"name = "window"
[[plugin]]
name = "producer"
wasm = "{{wasm:producer}}"
config = {{ count = {count}, size = 64, seed = 4 }}
[[plugin]]
name = "consumer"
wasm = "{{wasm:consumer}}"
config = {{ seed = 4, expect = {count}, delay_ns = {delay_ns} }}
[[channel]]
from = "producer.out"
to = "consumer.in"
slot_size = 64
capacity = {capacity}
[run]
backends = {backends:?}
timeout = "60s"
"#
        ),
    )
}

fn measured(report: &serde_json::Value) -> Vec<serde_json::Value> {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["warmup"] != true)
        .cloned()
        .collect()
}

/// Every backend states each link's window and how long each end waited; the backends whose
/// window is kept by credits measure its round trip, and the bound is window ÷ round trip.
/// On zenoh a window of 4 is far below the engine's round trip times its rate: the link is
/// bound by it, and the table says so, naming the window and the round trip.
#[test]
fn every_link_states_its_window_and_the_table_names_a_window_that_binds() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), 4, 20_000, 0, &BACKENDS);
    let out = util::wasm_ipc(&["compare", "--repeat", "1", "--json", file.to_str().unwrap()]);
    let report = util::report(&out);
    let runs = measured(&report);
    assert_eq!(runs.len(), BACKENDS.len(), "{}", util::stderr(&out));
    for r in &runs {
        let b = r["backend"].as_str().unwrap();
        assert_eq!(r["ok"], true, "{b}: {}", r["error"]);
        let l = &r["links"][0];
        assert_eq!(l["window"], 4, "{b}: {l}");
        for share in ["blocked_share", "waiting_share"] {
            let x = l[share].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{b}: {share} {x}");
        }
        let credits = !["shm", "mq"].contains(&b);
        if credits {
            let rtt = l["round_trip_ns"]
                .as_u64()
                .unwrap_or_else(|| panic!("{b}: {l}"));
            assert!(rtt > 0, "{b}");
            let bound = l["window_bound_per_s"].as_f64().unwrap();
            assert!(
                (bound - 4.0 / (rtt as f64 / 1e9)).abs() < 1e-6 * bound,
                "{b}: {bound} against 4 / {rtt} ns"
            );
        } else {
            assert!(l["round_trip_ns"].is_null(), "{b}: {l}");
            assert!(l["window_bound_per_s"].is_null(), "{b}: {l}");
        }
    }
    let zenoh = runs.iter().find(|r| r["backend"] == "zenoh").unwrap();
    let l = &zenoh["links"][0];
    assert_eq!(l["window_bound"], true, "zenoh at capacity 4: {l}");
    // What the window lets through is what the link carried, give or take: the bound is real.
    let rate = zenoh["msgs_per_s"].as_f64().unwrap();
    let bound = l["window_bound_per_s"].as_f64().unwrap();
    assert!(
        rate < 1.5 * bound,
        "zenoh carried {rate} msg/s through a window that lets {bound} through"
    );

    let out = util::wasm_ipc(&[
        "compare",
        "--repeat",
        "1",
        "--set",
        "run.backends=[\"zenoh\"]",
        file.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|line| line.starts_with(
            "zenoh bound by its window on channel[0]:producer.out->consumer.in: 4 messages per "
        ) && line.ends_with("raise capacity")),
        "{text}"
    );
}

/// A consumer that takes 1 ms per message holds its producer back just as a small window
/// does, but then messages wait to be read, not on their way: the consumer hardly waits, so
/// the window is not what bounds the link, and the table does not say it is.
#[test]
fn a_slow_consumer_is_not_taken_for_a_window_that_binds() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let file = scenario(dir.path(), 4, 300, 1_000_000, &["msg", "zenoh"]);
    let out = util::wasm_ipc(&["compare", "--repeat", "1", "--json", file.to_str().unwrap()]);
    let report = util::report(&out);
    for r in measured(&report) {
        let b = r["backend"].as_str().unwrap();
        assert_eq!(r["ok"], true, "{b}: {}", r["error"]);
        let l = &r["links"][0];
        assert!(
            l["blocked_share"].as_f64().unwrap() > 0.5,
            "{b}: the producer is held back: {l}"
        );
        assert!(
            l["waiting_share"].as_f64().unwrap() < 0.25,
            "{b}: the consumer is busy: {l}"
        );
        assert_eq!(l["window_bound"], false, "{b}: {l}");
    }
    let out = util::wasm_ipc(&["compare", "--repeat", "1", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("every run delivered identical bytes"),
        "{text}"
    );
    assert!(!text.contains("bound by its window"), "{text}");
}

/// Each end's longest wait is its own, on every backend: a consumer that stalls 300 ms in its
/// own code after 50 messages holds its producer back for most of that in one `loan` (the
/// producer's longest wait for room), while it never waits that long for a message itself;
/// a producer that sends 20 messages a second makes its consumer wait about 50 ms in a
/// `receive`. The longest waits come from the ports' own timing of their waits (no clock
/// read on a call that did not wait), so they would read 0 if that timing were lost.
#[test]
fn each_end_s_longest_wait_is_its_own_on_every_backend() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, producer: &str, consumer: &str| {
        util::scenario(
            dir.path(),
            &format!("{name}.toml"),
            &format!(
                r#"name = "{name}"
[[plugin]]
name = "producer"
wasm = "{{wasm:producer}}"
config = {{ size = 64, seed = 5, {producer} }}
[[plugin]]
name = "consumer"
wasm = "{{wasm:consumer}}"
config = {{ seed = 5, {consumer} }}
[[channel]]
from = "producer.out"
to = "consumer.in"
slot_size = 64
capacity = 4
[run]
backends = {BACKENDS:?}
timeout = "60s"
"#
            ),
        )
    };
    let runs = |file: std::path::PathBuf| {
        let out = util::wasm_ipc(&["compare", "--repeat", "1", "--json", file.to_str().unwrap()]);
        let runs = measured(&util::report(&out));
        assert_eq!(runs.len(), BACKENDS.len(), "{}", util::stderr(&out));
        runs
    };
    let ms = |l: &serde_json::Value, k: &str| l[k].as_u64().unwrap() as f64 / 1e6;

    let stalled = file(
        "stalled-consumer",
        "count = 200",
        "expect = 200, stall_after = 50, stall_ns = 300000000",
    );
    for r in runs(stalled) {
        let b = r["backend"].as_str().unwrap();
        assert_eq!(r["ok"], true, "{b}: {}", r["error"]);
        let l = &r["links"][0];
        let room = ms(l, "longest_room_wait_ns");
        let message = ms(l, "longest_message_wait_ns");
        assert!(
            room > 150.0,
            "{b}: the producer waited {room:.1} ms at most for room: {l}"
        );
        assert!(
            message < 150.0,
            "{b}: the consumer's own stall counted as its wait ({message:.1} ms): {l}"
        );
    }

    let paced = file("paced-producer", "count = 10, rate = 20", "expect = 10");
    for r in runs(paced) {
        let b = r["backend"].as_str().unwrap();
        assert_eq!(r["ok"], true, "{b}: {}", r["error"]);
        let l = &r["links"][0];
        let message = ms(l, "longest_message_wait_ns");
        assert!(
            message > 25.0,
            "{b}: the consumer waited {message:.1} ms at most for a message: {l}"
        );
    }
}
