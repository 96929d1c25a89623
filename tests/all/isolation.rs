//! Plugins run in their own processes: killing one worker fails only that plugin, the others
//! end, and nothing of the run is left behind.

use std::time::{Duration, Instant};

use crate::util::{self, assert_no_leftovers, heavy, report};

#[test]
fn killing_one_worker_fails_only_that_plugin() {
    // zenoh: the others learn of it when the dead worker's sessions end (its tokens vanish).
    for backend in ["msg", "zenoh"] {
        kill_the_relay(backend);
    }
}

fn kill_the_relay(backend: &str) {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    // A slow consumer keeps the run going for many seconds unless something ends it.
    let sc = util::scenario(
        dir.path(),
        "kill.toml",
        &r#"
name = "kill"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 1000000, size = 64 }
[[plugin]]
name = "r"
wasm = "{wasm:relay}"
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
config = { delay_ns = 100000 }
[[channel]]
from = "p.out"
to = "r.in"
[[channel]]
from = "r.out"
to = "c.in"
[run]
backends = ["{backend}"]
timeout = "120s"
"#
        .replace("{backend}", backend),
    );
    let id = util::run_id("kill");
    let child = util::spawn(&["run", "--json", "--run-id", &id, sc.to_str().unwrap()]);
    let start = Instant::now();
    let victim = loop {
        if let Some(pid) = util::worker_pid(&id, "r") {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "worker r never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let messages flow, then kill the relay in the middle.
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let out = util::wait_with_watchdog(child, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{backend}: {}",
        util::stderr(&out)
    );
    let rep = report(&out);
    let run = &rep["runs"][0];
    let err = run["error"].as_str().unwrap();
    assert!(
        err.contains("plugin `r`") && err.contains("killed by signal 9"),
        "{err}"
    );
    let procs = run["processes"].as_array().unwrap();
    let status = |n: &str| procs.iter().find(|p| p["plugin"] == n).unwrap()["status"].clone();
    assert_eq!(status("r"), "killed");
    // The others ended on their own, well before the 120 s timeout: not failed, not killed.
    for n in ["p", "c"] {
        let s = status(n);
        assert!(s == "ok" || s == "peer-failed", "{backend}: {n}: {s}");
    }
    assert!(run["elapsed_s"].as_f64().unwrap() < 100.0);
    let c = procs.iter().find(|p| p["plugin"] == "c").unwrap();
    assert!(
        c["messages_received"].as_u64().unwrap() > 0,
        "messages flowed before the kill"
    );
    assert_eq!(
        procs.iter().find(|p| p["plugin"] == "r").unwrap()["pid"],
        victim
    );
    assert_no_leftovers(&id);
}
