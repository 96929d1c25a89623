//! `wasm-ipc bench --quick`: every contender runs, the table has every row and target, and
//! the results folder holds the raw samples, the table and the machine. (Figures from a quick
//! run are not worth quoting; the targets are judged in full runs, never in tests.)

use crate::util::{self, heavy};

#[test]
fn a_quick_bench_runs_every_contender_and_saves_its_results() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    // Every part but `languages` (its own test below: its components' cold compiles alone
    // take half a minute a round).
    let out = util::wasm_ipc(&[
        "bench",
        "--quick",
        "--rounds",
        "2",
        "--load",
        "1",
        "--only",
        "ping-pong,throughput,fan",
        "--out",
        dir.path().to_str().unwrap(),
        "--iceoryx2",
        "/nonexistent/iceoryx2-bench",
    ]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for row in [
        "memcpy, one thread",
        "cache line, 2 processes",
        "placement per round           1:",
        "native-shm",
        "wasm-shm",
        "native-msg",
        "wasm-msg",
        "wasm-zenoh",
        "wasm-msg / wasm-zenoh, messages/s",
        "native-pipe",
        "wasm-pipe / native-pipe, messages/s",
        "native-tcp",
        "wasm-tcp / native-tcp, messages/s",
        "native-mq",
        "wasm-mq / native-mq, messages/s",
        "native-udp",
        "wasm-udp / native-udp, messages/s",
        "not carried: beyond its message limit here",
        "1.0 MiB",
        "wasm-shm / native-shm, messages/s",
        "with --load 1, shm ≥ msg at 64 B",
        "fan-out and fan-in: deliveries per second",
        "with --load 1, shm ≥ msg on fan-out 1→2 at 64 B",
        "with --load 1, shm ≥ msg on fan-in 4→1 at 64.0 KiB",
        "[not measured] ping-pong one-way p50 at 64 B on shm ≤ 0.8 × iceoryx2",
        "a whole `wasm-ipc run`",
    ] {
        assert!(table.contains(row), "no {row:?} in:\n{table}");
    }
    assert!(
        util::stderr(&out).contains("the iceoryx2 contender is not built"),
        "{}",
        util::stderr(&out)
    );
    // One folder per run, named by date and machine, with the raw samples.
    let runs: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(runs.len(), 1);
    let run = runs[0].path();
    for f in ["raw.json", "table.txt", "machine.txt"] {
        assert!(run.join(f).exists(), "{f}");
    }
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("raw.json")).unwrap()).unwrap();
    let samples = raw["samples"].as_array().unwrap();
    // 2 rounds × (2 references + 20 ping-pong + 4 sizes × 19 throughput + 4 fan shapes × 3
    // sizes × 13 contenders), less what mq and udp do not carry (64 KiB and 1 MiB: 2 sizes
    // of throughput and 4 fan shapes at 64 KiB, native and wasm on each), then 3 one-off
    // rows. The contenders: native and wasm on shm, msg, pipe, mq, tcp and udp, and
    // wasm-zenoh (sealed); and the engine's own shapes, zenoh-native and zenoh-native-1t,
    // each on TCP and over TLS (`-tls`), in ping-pong and 1→1 throughput, beside
    // wasm-zenoh-plain, wasm-zenoh-spin and wasm-zenoh-spin-sealed (`wait = "spin"`) in
    // ping-pong and
    // wasm-zenoh-open (plain) and wasm-zenoh-open-sealed in throughput.
    assert_eq!(
        samples.len(),
        2 * (2 + 20 + (76 - 2 * 4) + (156 - 4 * 4)) + 3,
        "{raw}"
    );
    for (c, patterns) in [
        ("zenoh-native", &["ping-pong", "throughput"][..]),
        ("zenoh-native-1t", &["ping-pong", "throughput"]),
        ("zenoh-native-tls", &["ping-pong", "throughput"]),
        ("zenoh-native-1t-tls", &["ping-pong", "throughput"]),
        ("wasm-zenoh-plain", &["ping-pong"]),
        ("wasm-zenoh-spin", &["ping-pong"]),
        ("wasm-zenoh-spin-sealed", &["ping-pong"]),
        ("wasm-zenoh-open", &["throughput"]),
        ("wasm-zenoh-open-sealed", &["throughput"]),
    ] {
        for &pattern in patterns {
            assert!(
                samples
                    .iter()
                    .any(|s| s["contender"] == c && s["pattern"] == pattern),
                "{c} {pattern}"
            );
        }
    }
    let table = std::fs::read_to_string(run.join("table.txt")).unwrap();
    for line in [
        "zenoh round trip (mean), plain, at 64 B ≤ 1.25 × the engine's own (zenoh-native",
        "zenoh round trip (mean), sealed, at 64 B ≤ 1.25 × the engine's own (zenoh-native",
        "zenoh round trip (mean), plain, wait = \"spin\", at 64 B ≤ 1.25 × the engine's own \
         (zenoh-native",
        "zenoh round trip (mean), sealed, wait = \"spin\", at 64 B ≤ 1.25 × the engine's own \
         (zenoh-native",
        "wasm-zenoh-spin / zenoh-native-1t, one-way mean",
        "wasm-zenoh-spin-sealed / zenoh-native-1t-tls, one-way mean",
        "zenoh throughput, plain, window 4096, nothing touched, ≥ 0.7 × the engine's own \
         (zenoh-native",
        "zenoh throughput, sealed, window 4096, nothing touched, ≥ 0.7 × the engine's own \
         (zenoh-native",
        "wasm-zenoh / zenoh-native-1t, one-way mean",
        "wasm-zenoh / zenoh-native-1t-tls, one-way mean",
    ] {
        assert!(table.contains(line), "{line}\n{table}");
    }
    let flows = samples.iter().filter(|s| {
        s["pattern"] == "throughput" || s["pattern"].as_str().unwrap().starts_with("fan-")
    });
    for s in flows {
        assert!(s["msgs_per_s"].as_f64().unwrap() > 0.0, "{s}");
        assert!(s["cpu_ns_per_msg"].as_f64().unwrap() > 0.0, "{s}");
    }
    // A fan row counts deliveries: every consumer counts each message (quick: 16 messages of
    // 64 KiB per producer), the same on the native floor and the plugins.
    for c in [
        "native-shm",
        "wasm-shm",
        "native-msg",
        "wasm-msg",
        "native-pipe",
        "wasm-pipe",
        "native-tcp",
        "wasm-tcp",
        "wasm-zenoh",
    ] {
        let count = |pattern: &str| {
            samples
                .iter()
                .find(|s| s["contender"] == c && s["pattern"] == pattern && s["size"] == 65536)
                .map(|s| s["count"].as_u64().unwrap())
        };
        assert_eq!(count("fan-out 1→4"), Some(4 * 16), "{c}");
        assert_eq!(count("fan-in 4→1"), Some(4 * 16), "{c}");
        assert_eq!(count("fan-out 1→2"), Some(2 * 16), "{c}");
    }
    for s in samples.iter().filter(|s| s["pattern"] == "ping-pong") {
        let (p50, p99) = (
            s["one_way_p50_ns"].as_f64().unwrap(),
            s["one_way_p99_ns"].as_f64().unwrap(),
        );
        assert!(p50 > 0.0 && p99 >= p50, "{s}");
    }
    assert!(
        raw["machine"]["kernel"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
    assert!(raw["targets"].as_array().unwrap().len() >= 14);
    // The spinners of --load are gone.
    let spinners = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|p| {
            std::fs::read(p.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("\"role\":\"spin\""))
        })
        .count();
    assert_eq!(spinners, 0);
}

#[test]
fn bench_only_runs_the_parts_it_is_given_and_names_the_parts_it_knows() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    let out = util::wasm_ipc(&[
        "bench",
        "--quick",
        "--rounds",
        "1",
        "--only",
        "ping-pong",
        "--out",
        dir.path().to_str().unwrap(),
        "--iceoryx2",
        "/nonexistent/iceoryx2-bench",
    ]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("ping-pong, 64 B"), "{table}");
    for absent in ["throughput, one producer", "fan-out and fan-in"] {
        assert!(!table.contains(absent), "{absent:?} in:\n{table}");
    }
    let out = util::wasm_ipc(&[
        "bench",
        "--only",
        "fan,pong",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = util::stderr(&out);
    assert!(
        err.contains("no part \"pong\"") && err.contains("ping-pong, throughput, fan"),
        "{err}"
    );
}

#[test]
fn the_languages_part_measures_every_language() {
    let _g = heavy();
    util::plugins();
    util::lang_wasm("python", "producer"); // every language's examples are built
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "--quick",
        "--rounds",
        "1",
        "--only",
        "languages",
        "--out",
        dir.path().to_str().unwrap(),
        "--iceoryx2",
        "/nonexistent/iceoryx2-bench",
    ];
    // The two components' cold compiles take about half a minute on an idle machine.
    let out = util::wait_with_watchdog(util::spawn(&args), std::time::Duration::from_secs(600));
    assert!(out.status.success(), "{}", util::stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("languages: producer and consumer in the same language, on shm"),
        "{table}"
    );
    for absent in ["ping-pong, 64 B", "throughput, one producer"] {
        assert!(!table.contains(absent), "{absent} in:\n{table}");
    }
    let run = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let raw: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("raw.json")).unwrap()).unwrap();
    let samples = raw["samples"].as_array().unwrap();
    let languages = [
        "rust",
        "c",
        "assemblyscript",
        "zig",
        "wat",
        "python",
        "javascript",
    ];
    for lang in languages {
        assert!(
            table.contains(&format!("\n  {lang} ")),
            "no row {lang}:\n{table}"
        );
        for size in [64, 4096] {
            let s = samples
                .iter()
                .find(|s| {
                    s["contender"] == format!("lang-{lang}")
                        && s["pattern"] == "language"
                        && s["size"] == size
                })
                .unwrap_or_else(|| panic!("no sample for {lang} at {size} B"));
            for note in [
                "module_bytes",
                "compile_cold_ns",
                "compile_cached_ns",
                "ready_ns",
                "rss_kib",
            ] {
                let v: f64 = s["notes"][note].as_str().unwrap().parse().unwrap();
                assert!(v > 0.0, "{lang} {note}: {s}");
            }
            assert!(s["msgs_per_s"].as_f64().unwrap() > 0.0, "{lang}");
        }
    }
    assert_eq!(
        samples
            .iter()
            .filter(|s| s["pattern"] == "language")
            .count(),
        languages.len() * 2
    );
}
