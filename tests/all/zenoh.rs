//! How a `zenoh` port waits: what it waits for is made by its engine's threads, so under
//! `[run] wait = "spin"` it yields the CPU between looks instead of spinning them off it, and
//! never sleeps; under the default it never yields.

use crate::util::{self, heavy};

/// A ping-pong of 2,000 round trips on zenoh: under `wait = "spin"` both workers yield
/// between looks (their `sched_yields` counters) and never sleep; under the default waiting
/// they sleep and never yield. Both deliver every message with equal digests.
#[test]
fn a_spinning_zenoh_port_yields_to_its_engine_and_never_sleeps() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let file = util::scenario(
        dir.path(),
        "zenoh-wait.toml",
        r#"name = "zenoh-wait"
[[plugin]]
name = "pinger"
wasm = "{wasm:pinger}"
config = { count = 2000, size = 64, seed = 4 }
[[plugin]]
name = "echo"
wasm = "{wasm:relay}"
[[channel]]
from = "pinger.out"
to = "echo.in"
slot_size = 64
capacity = 4
[[channel]]
from = "echo.out"
to = "pinger.in"
slot_size = 64
capacity = 4
[run]
backends = ["zenoh"]
timeout = "60s"
"#,
    );
    for wait in ["spin", "adaptive"] {
        let out = util::wasm_ipc(&[
            "run",
            "--json",
            "--set",
            &format!("run.wait=\"{wait}\""),
            file.to_str().unwrap(),
        ]);
        let report = util::report(&out);
        let r = &report["runs"][0];
        assert_eq!(r["ok"], true, "{wait}: {}", r["error"]);
        assert_eq!(r["digest_sent"], r["digest_received"], "{wait}: {r}");
        assert_eq!(r["messages"], 4000, "{wait}: {r}");
        for p in r["processes"].as_array().unwrap() {
            let c = &p["counters"];
            let yields = c["sched_yields"].as_u64().unwrap();
            let sleeps = c["sleeps"].as_u64().unwrap();
            if wait == "spin" {
                assert!(yields > 0, "{wait}: {} never yielded: {c}", p["plugin"]);
                assert_eq!(sleeps, 0, "{wait}: {} slept: {c}", p["plugin"]);
            } else {
                assert_eq!(yields, 0, "{wait}: {} yielded: {c}", p["plugin"]);
                assert!(sleeps > 0, "{wait}: {} never slept: {c}", p["plugin"]);
            }
        }
    }
}
