//! Every scenario in scenarios/ runs on each of its backends: every run ok, digests equal
//! within and across runs, exact message counts, and copies counted where they happen.

use std::collections::BTreeMap;

use serde_json::Value;
use wasm_ipc::scenario::{Overflow, Scenario};

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

/// The top-level scenarios. `scenarios/explain/` is left out on purpose: its misbehaving
/// consumers fail their runs by design, and `explain::the_textbook_table_is_filled_from_runs_it_made`
/// runs them. `scenarios/hosts/` needs agents on other hosts: `hosts::the_bundled_two_hosts…`
/// runs it with an agent in each of two network namespaces it makes.
fn scenario_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(util::root().join("scenarios"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected the bundled scenarios, found {files:?}"
    );
    files
}

fn process<'a>(run: &'a Value, plugin: &str) -> &'a Value {
    run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == plugin)
        .unwrap_or_else(|| panic!("no process for {plugin}"))
}

/// Checks one run of `sc` against the scenario's own topology and the plugins' reports.
fn check_run(sc: &Scenario, run: &Value, supervisor_pid: u64) {
    let what = format!("{} on {}", sc.name, run["backend"]);
    assert_eq!(run["ok"], true, "{what}: {}", run["error"]);
    assert!(run["error"].is_null());
    // A channel that drops (`overflow = "drop-newest"`, `lossy.toml`) delivers less than was
    // sent: what arrived is the rest, exactly, as the sequence numbers count it.
    let lossy = sc.channels.iter().any(|c| c.overflow != Overflow::Block);
    let lost = run["lost"].as_u64().unwrap();
    let dropped = run["dropped"].as_u64().unwrap();
    assert_eq!(run["duplicated"], 0, "{what}");
    assert_eq!(run["reordered"], 0, "{what}");
    if lossy {
        assert!(
            lost > 0,
            "{what}: a stalled consumer on a dropping channel lost nothing"
        );
    } else {
        assert_eq!((lost, dropped), (0, 0), "{what}");
        assert_eq!(run["digest_sent"], run["digest_received"], "{what}");
    }
    assert!(
        run["digest_sent"].as_str().is_some_and(|d| d.len() == 16),
        "{what}"
    );
    // Exact counts: each channel delivers what its producers sent to each of its consumers.
    let mut expected = 0;
    for ch in &sc.channels {
        for from in &ch.from {
            let p = &sc.plugins[from.plugin];
            let sent = process(run, &p.name)["messages_sent"].as_u64().unwrap();
            if let Some(count) = p.config.get("count") {
                assert_eq!(sent.to_string(), *count, "{what}: {} sent", p.name);
            }
            expected += sent * ch.to.len() as u64;
        }
        // Request/reply: every request the clients sent was answered (one message back each).
        if ch.pattern == wasm_ipc::scenario::Pattern::RequestReply {
            let calls: u64 = ch
                .from
                .iter()
                .map(|f| {
                    process(run, &sc.plugins[f.plugin].name)["calls"]
                        .as_u64()
                        .unwrap()
                })
                .sum();
            assert_eq!(run["requests"]["calls"], calls, "{what}");
            assert_eq!(run["requests"]["served"], calls, "{what}");
            expected += calls;
        }
    }
    assert!(expected > 0, "{what}");
    assert_eq!(
        run["messages"].as_u64().unwrap(),
        expected - lost,
        "{what}: delivered"
    );
    // Plugins count what they received themselves; it must match the host's count.
    for p in run["processes"].as_array().unwrap() {
        if let Some(r) = p["reports"].get("received") {
            assert_eq!(r, &p["messages_received"], "{what}: {}", p["plugin"]);
        }
        if let Some(m) = p["reports"].get("mismatches") {
            assert_eq!(m, 0, "{what}: {}", p["plugin"]);
        }
    }
    // One process per plugin, none of them the supervisor.
    let mut pids: Vec<u64> = run["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), sc.plugins.len());
    assert!(!pids.contains(&supervisor_pid), "{what}");
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), sc.plugins.len(), "{what}: pids must differ");
    // Copies: msg, pipe, mq, tcp and udp copy each delivered payload twice (into and out of the kernel), counted
    // by the workers where they call writev/read; shm copies nothing; zenoh copies a message
    // once out of the producer's window (every consumer shares that copy) and once into each
    // consumer's window.
    let bytes = run["bytes"].as_u64().unwrap();
    let copied = run["copied_bytes"].as_u64().unwrap();
    match run["backend"].as_str().unwrap() {
        // A datagram the kernel dropped (udp under drop-newest takes no credits) was copied
        // into the kernel but never out: one copy of a message of the run's one size.
        "udp" if lossy => {
            let size = bytes / run["messages"].as_u64().unwrap();
            assert_eq!(copied, 2 * bytes + (lost - dropped) * size, "{what}");
        }
        "msg" | "pipe" | "mq" | "tcp" | "udp" => assert_eq!(copied, 2 * bytes, "{what}"),
        "shm" => assert_eq!(copied, 0, "{what}"),
        "zenoh" => {
            let fan_out = sc.channels.iter().map(|c| c.to.len() as u64).max().unwrap();
            if fan_out == 1 {
                assert_eq!(copied, 2 * bytes, "{what}");
            } else {
                assert_eq!(sc.channels.len(), 1, "{what}: one fan-out channel expected");
                assert_eq!(copied, bytes + bytes / fan_out, "{what}");
            }
        }
        b => panic!("unknown backend {b}"),
    }
}

/// Overrides that run a bundled scenario sized for `compare`'s rounds (a measured run of at
/// least 0.3 s on shm) with a tenth of its messages: every plugin's `count` and `expect`
/// divided by 10, so the suite checks shapes, not figures. `--set` wins over a sweep, so a
/// sweep's own counts (`with`) give way to these too.
fn smaller_counts(sc: &Scenario) -> Vec<String> {
    let mut sets = Vec::new();
    for key in ["count", "expect"] {
        for p in &sc.plugins {
            // A plugin table with `instances` is several plugins (`sensor#0`, …), set once.
            let table = p.name.split('#').next().unwrap_or(&p.name);
            if let Some(v) = p.config.get(key).and_then(|v| v.parse::<u64>().ok()) {
                let set = format!("plugin.{table}.config.{key}={}", (v / 10).max(1));
                if !sets.contains(&set) {
                    sets.push(set);
                }
            }
        }
    }
    sets
}

/// Each sweep point of `sc` (one without a sweep): its axis values as the report names them
/// (`run["sweep"]`), and the scenario it is, with `small` on top.
fn point_scenarios(
    file: &std::path::Path,
    sc: &Scenario,
    small: &[String],
) -> Vec<(Value, Scenario)> {
    sc.sweep_points()
        .into_iter()
        .map(|(named, sets)| {
            let at: serde_json::Map<String, Value> = named
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let sets: Vec<String> = sets.into_iter().chain(small.iter().cloned()).collect();
            (Value::Object(at), Scenario::load_with(file, &sets).unwrap())
        })
        .collect()
}

#[test]
fn every_bundled_scenario_runs_on_each_of_its_backends_with_equal_digests() {
    util::plugins();
    for file in scenario_files() {
        let _g = heavy();
        let sc = Scenario::load(&file).unwrap();
        let id = util::run_id("scenarios");
        let mut args = vec!["compare", "--quick", "--json", "--run-id", &id];
        let small = smaller_counts(&sc);
        let sc = Scenario::load_with(&file, &small).unwrap();
        for set in &small {
            args.extend(["--set", set]);
        }
        args.push(file.to_str().unwrap());
        let out = wasm_ipc(&args);
        let rep = report(&out);
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            util::stderr(&out)
        );
        // No thread of any worker panicked (a zenoh engine thread that could not start a
        // thread under the lock-down would, and the run could still end well).
        let stderr = util::stderr(&out);
        assert!(!stderr.contains("panicked"), "{}: {stderr}", file.display());
        assert_eq!(rep["schema"], 1);
        assert_eq!(rep["digests_agree"], true);
        let runs = rep["runs"].as_array().unwrap();
        let points = sc.sweep_points().len();
        assert_eq!(
            runs.len(),
            sc.run.backends.len() * sc.run.repeat.unwrap_or(1) as usize * points
        );
        let supervisor = rep["supervisor_pid"].as_u64().unwrap();
        let points = point_scenarios(&file, &sc, &small);
        for run in runs {
            // Each run is checked against its own sweep point's scenario.
            let (_, here) = points.iter().find(|(at, _)| *at == run["sweep"]).unwrap();
            check_run(here, run, supervisor);
            // Every run of one sweep point delivered the same bytes (a run that lost messages
            // delivered what got through: `check_run` held its count to the sequence numbers).
            if run["lost"] != 0 {
                continue;
            }
            let first = runs
                .iter()
                .find(|r| r["sweep"] == run["sweep"] && r["lost"] == 0)
                .unwrap();
            assert_eq!(
                run["digest_received"],
                first["digest_received"],
                "{}",
                file.display()
            );
        }
        assert_no_leftovers(&id);
    }
}

/// Every bundled scenario on each kernel mechanism (`pipe`, `mq`, `tcp`, `udp`, whichever it
/// does not list itself): it runs with every check of the test above where `check` admits it,
/// and where `check` does not, the refusal names the limit and how to change it. Most
/// scenarios must run on every one of them.
#[test]
fn every_bundled_scenario_runs_on_each_kernel_mechanism_where_its_sizes_fit() {
    util::plugins();
    let mut ran = Vec::new();
    let mut refused = Vec::new();
    for file in scenario_files() {
        let sc = Scenario::load(&file).unwrap();
        if sc.crossing().is_some() {
            // Across hosts is zenoh's (and auto's) alone; the hosts suite runs those.
            continue;
        }
        let small = smaller_counts(&sc);
        let sc = Scenario::load_with(&file, &small).unwrap();
        for backend in ["pipe", "mq", "tcp", "udp"] {
            if sc.run.backends.iter().any(|b| b.name() == backend) {
                continue;
            }
            let mut what = format!("{} on {backend}", file.display());
            // Where `check` says "lower capacity to N" for a channel, its advice is taken (a
            // capacity never changes what the plugins send) and the scenario checked again.
            let mut small = small.clone();
            let admitted = loop {
                let mut check = vec!["check", "--backend", backend];
                for set in &small {
                    check.extend(["--set", set]);
                }
                check.push(file.to_str().unwrap());
                let out = wasm_ipc(&check);
                if out.status.success() {
                    break true;
                }
                let err = util::stderr(&out);
                assert!(
                    ["sysctl", "ulimit", "one UDP datagram"]
                        .iter()
                        .any(|n| err.contains(n)),
                    "{what}: refused without naming a limit: {err}"
                );
                let number_after = |text: &str, at: &str| -> Option<u64> {
                    let rest = &text[text.find(at)? + at.len()..];
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                };
                match (
                    number_after(&err, "channel["),
                    number_after(&err, "lower capacity to "),
                ) {
                    (Some(c), Some(n)) if n > 0 && small.len() < 40 => {
                        small.push(format!("channel.{c}.capacity={n}"));
                        what = format!("{what} (channel.{c}.capacity = {n}, as check advised)");
                    }
                    _ => break false,
                }
            };
            if !admitted {
                refused.push(what);
                continue;
            }
            let _g = heavy();
            let id = util::run_id("mechanisms");
            let mut args = vec!["run", "--json", "--run-id", &id, "--backend", backend];
            for set in &small {
                args.extend(["--set", set]);
            }
            args.push(file.to_str().unwrap());
            let out = wasm_ipc(&args);
            assert!(out.status.success(), "{what}: {}", util::stderr(&out));
            let rep = report(&out);
            let supervisor = rep["supervisor_pid"].as_u64().unwrap();
            let points = point_scenarios(&file, &sc, &small);
            for run in rep["runs"].as_array().unwrap() {
                assert_eq!(run["backend"], backend, "{what}");
                assert_eq!(run["ok"], true, "{what}: {run}");
                assert_eq!(run["digest_sent"], run["digest_received"], "{what}");
                let (_, here) = points.iter().find(|(at, _)| *at == run["sweep"]).unwrap();
                check_run(here, run, supervisor);
            }
            assert_no_leftovers(&id);
            ran.push(what);
        }
    }
    eprintln!("ran: {ran:#?}\nrefused by check: {refused:#?}");
    assert!(
        ran.len() >= 3 * refused.len(),
        "most scenarios must run on the kernel mechanisms: ran {ran:?}, refused {refused:?}"
    );
}

/// `copied_bytes` is what the transport moved, not a formula: it must agree with the kernel's
/// own per-process I/O counters (/proc/<pid>/io), which also see frame headers and control
/// traffic, so the counter lies between the copied bytes and that plus a small overhead.
/// A `[sweep]` runs the product of its axes on every backend; `--set` wins over the sweep;
/// `--csv` has a row per run with the axis as a column; the table ends with ratios and a
/// verdict per figure.
#[test]
fn a_sweep_runs_every_point_on_every_backend_and_reports_ratios() {
    let _g = heavy();
    util::plugins();
    let file = util::root().join("scenarios/sweep-size.toml");
    let small = [
        "--set",
        "plugin.producer.config.count=50",
        "--set",
        "plugin.consumer.config.expect=50",
    ];
    let mut args = vec!["compare", "--quick", "--json"];
    args.extend(small);
    args.push(file.to_str().unwrap());
    let out = wasm_ipc(&args);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    let runs = rep["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4 * 3);
    let sizes: Vec<&str> = runs
        .iter()
        .map(|r| r["sweep"]["size"].as_str().unwrap())
        .collect();
    assert_eq!(
        sizes,
        [
            "64", "64", "64", "4096", "4096", "4096", "65536", "65536", "65536", "1048576",
            "1048576", "1048576"
        ]
    );
    for r in runs {
        let size: u64 = r["sweep"]["size"].as_str().unwrap().parse().unwrap();
        // The payload and the slot moved as one, and the user's count won over the file's.
        assert_eq!(r["messages"], 50);
        assert_eq!(r["bytes"], 50 * size, "{r}");
    }
    assert_eq!(rep["digests_agree"], true);
    let mut args = vec!["compare", "--quick", "--csv"];
    args.extend(small);
    args.push(file.to_str().unwrap());
    let out = wasm_ipc(&args);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let csv = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 12, "{csv}");
    assert!(
        lines[0].starts_with("scenario,size,backend,repeat,ok,messages"),
        "{csv}"
    );
    assert!(
        lines[1].starts_with("sweep-size,64,shm,0,true,50,3200,"),
        "{csv}"
    );
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sweep.svg");
    let mut args = vec!["compare", "--quick", "--plot", svg.to_str().unwrap()];
    args.extend(small);
    args.push(file.to_str().unwrap());
    let out = wasm_ipc(&args);
    assert!(out.status.success(), "{}", util::stderr(&out));
    // The plot: one SVG with three panels, a line and a legend entry per backend in each.
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{}", &text[..text.len().min(200)]);
    for caption in [
        "throughput (messages/s) against size",
        "hand-off p99 (ns) against size",
        "CPU per message (ns) against size",
    ] {
        assert!(text.contains(caption), "no {caption:?} in the plot");
    }
    assert!(text.matches("<polyline").count() >= 9, "fewer than 9 lines");
    // plotters writes each text on its own line.
    let labels = |name: &str| text.lines().filter(|l| l.trim() == name).count();
    assert_eq!((labels("shm"), labels("msg"), labels("zenoh")), (3, 3, 3));
    let table = String::from_utf8_lossy(&out.stdout);
    for want in [
        "size=1048576: throughput",
        "verdict, throughput: ",
        "verdict, cpu per message: ",
        "over 4 sweep points)",
        "crossover, throughput along size: ",
        "verdict, throughput, shm vs zenoh: ",
        "verdict, throughput, msg vs zenoh: ",
        "crossover, throughput along size, msg vs zenoh: ",
        "the runs of each sweep point delivered identical bytes",
    ] {
        assert!(table.contains(want), "no {want:?} in:\n{table}");
    }
    // Without a sweep there is nothing to plot against, and it says so.
    let plain = util::root().join("scenarios/producer-consumer.toml");
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--plot",
        svg.to_str().unwrap(),
        "--set",
        "plugin.producer.config.count=10",
        "--set",
        "plugin.consumer.config.expect=10",
        plain.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        util::stderr(&out).contains("--plot needs a sweep"),
        "{}",
        util::stderr(&out)
    );
}

#[test]
fn msg_copied_bytes_agree_with_the_kernels_io_counters() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let count = 3000u64;
    let sc = util::scenario(
        dir.path(),
        "io.toml",
        &format!(
            r#"
name = "io"
[[plugin]]
name = "p"
wasm = "{{wasm:producer}}"
config = {{ count = {count}, size = 10000 }}
[[plugin]]
name = "c"
wasm = "{{wasm:consumer}}"
[[channel]]
from = "p.out"
to = "c.in"
slot_size = "16KiB"
[run]
backends = ["msg"]
"#
        ),
    );
    let out = wasm_ipc(&["run", "--json", sc.to_str().unwrap()]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    let run = &rep["runs"][0];
    let p = process(run, "p");
    let c = process(run, "c");
    let payload = count * 10000;
    assert_eq!(p["copied_bytes"], payload);
    assert_eq!(c["copied_bytes"], payload);
    assert_eq!(run["copied_bytes"], 2 * payload);
    let headers = 16 * (count + 1);
    let slack = headers + 256 * 1024;
    let wchar = p["io_wchar"].as_u64().unwrap();
    let rchar = c["io_rchar"].as_u64().unwrap();
    assert!(
        wchar >= payload && wchar <= payload + slack,
        "producer wchar {wchar}, payload {payload}"
    );
    assert!(
        rchar >= payload && rchar <= payload + slack,
        "consumer rchar {rchar}, payload {payload}"
    );
}

/// Payloads of 16 MiB go through both backends intact (msg frames larger than any socket
/// buffer stream through it, which `check` admits at capacity 1; shm's slot mapped over a
/// 16 MiB window).
#[test]
fn sixteen_mebibyte_messages_cross_both_backends() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "big.toml",
        r#"
name = "big"
[[plugin]]
name = "p"
wasm = "{wasm:producer}"
config = { count = 12, size = 16777216, seed = 3 }
[[plugin]]
name = "c"
wasm = "{wasm:consumer}"
config = { seed = 3, expect = 12 }
[[channel]]
from = "p.out"
to = "c.in"
slot_size = "16MiB"
capacity = 1
[run]
backends = ["shm", "msg"]
timeout = "120s"
"#,
    );
    let out = wasm_ipc(&["compare", "--quick", "--json", sc.to_str().unwrap()]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    assert_eq!(rep["digests_agree"], true);
    for run in rep["runs"].as_array().unwrap() {
        assert_eq!(run["ok"], true, "{}", run["error"]);
        assert_eq!(run["messages"], 12);
        assert_eq!(run["bytes"], 12 * 16777216u64);
        assert_eq!(run["digest_sent"], run["digest_received"]);
        assert_eq!(process(run, "c")["reports"]["mismatches"], 0);
    }
}

/// The report names what it measured: the host's hand-off stamp, and beside it the round
/// trip the pinger measured itself (one-way = half of it), on both backends.
#[test]
fn ping_pong_reports_the_applications_round_trip_beside_the_hand_off() {
    let _g = heavy();
    let sc = util::root().join("scenarios/ping-pong.toml");
    // A fortieth of the file's round trips, which are sized for rounds of 0.3 s.
    let fewer = ["--set", "plugin.pinger.config.count=5000"];
    let out = wasm_ipc(
        &[
            &["compare", "--quick", "--json"][..],
            &fewer,
            &[sc.to_str().unwrap()],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    for run in rep["runs"].as_array().unwrap() {
        let rt = &run["round_trip_ns"];
        let avg = rt["avg"].as_u64().unwrap();
        assert!(avg > 0, "{}: {rt}", run["backend"]);
        assert_eq!(rt["one_way_avg"].as_u64().unwrap(), avg / 2);
        assert!(rt["min"].as_u64().unwrap() <= avg, "{rt}");
        let pinger = run["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["reports"].get("rtt_ns_avg").is_some())
            .unwrap();
        assert_eq!(pinger["reports"]["rtt_ns_avg"].as_u64(), Some(avg));
    }
    let table = wasm_ipc(&[&["compare", "--quick"][..], &fewer, &[sc.to_str().unwrap()]].concat());
    let text = String::from_utf8_lossy(&table.stdout);
    for row in ["hand-off p50", "round trip avg", "one-way (rtt/2)"] {
        assert!(text.contains(row), "{text}");
    }
    // A stream without a pinger has no round trip.
    let pc = util::root().join("scenarios/producer-consumer.toml");
    let out = wasm_ipc(&["run", "--json", pc.to_str().unwrap()]);
    assert!(report(&out)["runs"][0]["round_trip_ns"].is_null());
}

/// `--set` and `--repeat` shrink a bundled scenario from the command line, shapes unchanged.
#[test]
fn set_and_repeat_override_a_scenario_from_the_command_line() {
    let _g = heavy();
    let sc = util::root().join("scenarios/producer-consumer.toml");
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--json",
        "--set",
        "plugin.producer.config.count=100",
        "--set",
        "plugin.consumer.config.expect=100",
        "--repeat",
        "2",
        sc.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    let runs = rep["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6, "3 backends × 2 repeats");
    for run in runs {
        assert_eq!(run["ok"], true, "{}", run["error"]);
        assert_eq!(run["messages"], 100);
    }
    assert_eq!(rep["digests_agree"], true);
}

/// A progress bar on a terminal (a pseudo-terminal made by `script`), plain progress lines
/// when stderr is a pipe, and no bar with `--json`.
#[test]
fn progress_is_a_bar_on_a_terminal_and_lines_on_a_pipe() {
    let _g = heavy();
    util::plugins();
    let file = util::root().join("scenarios/producer-consumer.toml");
    let args = format!(
        "{} compare --repeat 2 --set plugin.producer.config.count=100000 --set plugin.consumer.config.expect=100000 {}",
        util::bin().display(),
        file.display()
    );
    let on_tty = |extra: &str| {
        let out = std::process::Command::new("script")
            .args(["-qec", &format!("{args} {extra}"), "/dev/null"])
            .env("WASM_IPC_CACHE_DIR", util::cache_dir())
            .output()
            .expect("script (util-linux) runs the command on a pseudo-terminal");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tty = on_tty("");
    // A warm-up run per backend and two rounds: 9 runs, the plan said first.
    assert!(tty.contains("/~9 runs"), "no bar on a terminal:\n{tty}");
    assert!(
        tty.contains("plan: a warm-up run per backend, then 2 rounds × 3 backends"),
        "{tty}"
    );
    assert!(
        !tty.contains("wasm-ipc: producer-consumer on shm (round 1)"),
        "{tty}"
    );
    let json = on_tty("--json");
    assert!(!json.contains("/~9 runs"), "a bar with --json:\n{json}");
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--set",
        "plugin.producer.config.count=1000",
        "--set",
        "plugin.consumer.config.expect=1000",
        file.to_str().unwrap(),
    ]);
    let err = util::stderr(&out);
    assert!(
        err.contains("wasm-ipc: producer-consumer on shm (round 1)"),
        "{err}"
    );
    assert!(!err.contains("/3 runs"), "a bar on a pipe:\n{err}");
}

/// `--html`: one self-contained page, which headless Chromium loads from a file with no
/// network: title, plots inline (three panels), the table with its verdicts, every run.
#[test]
fn the_html_report_is_one_self_contained_page_that_a_browser_renders() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let file = util::root().join("scenarios/sweep-size.toml");
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--html",
        page.to_str().unwrap(),
        "--set",
        "plugin.producer.config.count=50",
        "--set",
        "plugin.consumer.config.expect=50",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    // Nothing is fetched from elsewhere (the SVG's xmlns is a name, not a fetch).
    for outside in ["<script", "<link", "src=", "href=", "url(", "@import"] {
        assert!(!html.contains(outside), "the page refers to {outside:?}");
    }
    let without_ns = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_ns.contains("http"), "the page names a web address");
    // Rendered by the page tests' Chromium (no background networking), and it fits 1280 px.
    let dom = crate::page::rendered(&page, dir.path());
    crate::page::assert_fits(&dom);
    for want in [
        "id=\"title\">wasm-ipc: sweep-size</h1>",
        "id=\"plots\"",
        "throughput (messages/s) against size",
        "CPU per message (ns) against size",
        "id=\"verdicts\"",
        "data-pair=\"shm-msg\"",
        "<table class=\"results\" data-point=\"size=64\">",
        "<table class=\"results\" data-point=\"size=1048576\">",
        "id=\"crossovers\"",
        "crossover, throughput along size:",
        "id=\"json\"",
    ] {
        assert!(dom.contains(want), "the rendered page has no {want:?}");
    }
    assert!(
        dom.matches("<polyline").count() >= 3,
        "the plots lost their lines"
    );
    // An error bar per plotted point: 3 panels × 3 backends × 4 sizes, each bar's mark a
    // circle drawn at the bars' own opacity.
    let bar = format!("opacity=\"{}\"", wasm_ipc::plot::ERROR_BAR_OPACITY);
    let bars = dom
        .match_indices("<circle")
        .filter(|(i, _)| dom[*i..].split('>').next().unwrap().contains(&bar))
        .count();
    assert_eq!(bars, 3 * 3 * 4, "error bars");
}

/// Runs the bundled scenario (5000 messages) on `backend` under `strace -f -c`: per syscall,
/// the calls strace saw, and the report's own `syscalls`.
fn under_strace(backend: &str) -> (BTreeMap<String, u64>, Value) {
    let file = util::root().join("scenarios/producer-consumer.toml");
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("strace.txt");
    let out = std::process::Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&summary)
        .arg(util::bin())
        .args(["run", "--json", "--backend", backend])
        .args(["--set", "plugin.producer.config.count=5000"])
        .args(["--set", "plugin.consumer.config.expect=5000"])
        .arg(&file)
        .env("WASM_IPC_CACHE_DIR", util::cache_dir())
        .output()
        .expect("strace (Debian) runs the command; scripts/setup.sh installs it");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    // "% time  seconds  usecs/call  calls  [errors]  syscall"
    let mut calls = BTreeMap::new();
    for line in std::fs::read_to_string(&summary).unwrap().lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 5
            && let Ok(n) = f[3].parse::<u64>()
        {
            *calls.entry(f[f.len() - 1].to_string()).or_default() += n;
        }
    }
    (calls, rep["runs"][0]["syscalls"].clone())
}

/// The system calls a backend counts where it makes them are the calls the kernel saw:
/// `strace -f -c` over a whole `msg` run counts the same reads, writes and polls, plus a few
/// of start-up and control traffic; on `shm`, no more futex calls than strace saw (the runtime
/// makes futex calls of its own).
#[test]
fn counted_system_calls_agree_with_strace() {
    let _g = heavy();
    util::plugins();
    let (kernel, ours) = under_strace("msg");
    let n = |k: &str| ours[k].as_u64().unwrap_or(0);
    let k = |names: &[&str]| {
        names
            .iter()
            .map(|s| kernel.get(*s).copied().unwrap_or(0))
            .sum::<u64>()
    };
    for (what, counted, seen) in [
        ("reads", n("reads"), k(&["read"])),
        ("writes", n("writes"), k(&["write", "writev"])),
        ("polls", n("polls"), k(&["poll", "ppoll"])),
    ] {
        assert!(counted > 0, "{what}: none counted");
        assert!(
            counted <= seen && seen - counted <= 300,
            "{what}: the backend counted {counted}, strace saw {seen}"
        );
    }
    // 5000 messages of 4 KiB: at least a header read, a payload read and a writev each.
    assert!(n("reads") >= 10_000 && n("writes") >= 5000, "{ours}");
    let (kernel, ours) = under_strace("shm");
    let counted =
        ours["futex_waits"].as_u64().unwrap_or(0) + ours["futex_wakes"].as_u64().unwrap_or(0);
    let seen = kernel.get("futex").copied().unwrap_or(0);
    assert!(
        counted <= seen,
        "shm: counted {counted} futex calls, strace saw {seen}"
    );
    assert_eq!(
        ours["reads"].as_u64().unwrap_or(0),
        0,
        "shm reads nothing: {ours}"
    );
}
