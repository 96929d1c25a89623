//! `compare --explain`: the textbook's table, filled from runs it made.

use serde_json::{Value, json};

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

/// The experiment `id`'s runs on `backend`.
fn runs<'a>(rep: &'a Value, id: &str, backend: &str) -> Vec<&'a Value> {
    rep["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no experiment {id}"))["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backend"] == backend)
        .collect()
}

fn row<'a>(rep: &'a Value, aspect: &str) -> &'a Value {
    rep["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["aspect"].as_str().unwrap().starts_with(aspect))
        .unwrap_or_else(|| panic!("no row {aspect}"))
}

/// Every row is filled, names the experiments it read, and its figures are those runs' own:
/// the copies, system calls and throughput cells are recomputed here from the runs in the
/// same JSON, the isolation rows from the misbehaving plugins' own statuses.
#[test]
fn the_textbook_table_is_filled_from_runs_it_made() {
    let _g = heavy();
    util::plugins();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("explain.html");
    let id = util::run_id("explain");
    // Three rounds of small counts: enough for a verdict to name a winner.
    let out = wasm_ipc(&[
        "compare",
        "--explain",
        "--quick",
        "--repeat",
        "3",
        "--json",
        "--html",
        html.to_str().unwrap(),
        "--run-id",
        &id,
    ]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    assert_eq!(rep["schema"], 1);
    assert_eq!(rep["quick"], true);
    assert_eq!(rep["problems"].as_array().unwrap().len(), 0, "{rep:#}");
    let rows = rep["rows"].as_array().unwrap();
    let ids: Vec<&str> = rep["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    for r in rows {
        let aspect = r["aspect"].as_str().unwrap();
        for cell in ["textbook", "shm", "msg", "verdict"] {
            let text = r[cell].as_str().unwrap();
            assert!(!text.is_empty() && text != "-", "{aspect}: {cell} empty");
            assert!(!text.contains("NaN"), "{aspect}: {cell}: {text}");
        }
        let from = r["from"].as_array().unwrap();
        if aspect == "crosses machines" {
            // Not measurable with one machine's backends; the row says so.
            assert!(from.is_empty());
            assert!(r["verdict"].as_str().unwrap().contains("not measured"));
            assert!(r["agrees"].is_null());
        } else {
            assert!(!from.is_empty(), "{aspect}: names no run");
            for f in from {
                assert!(ids.contains(&f.as_str().unwrap()), "{aspect}: {f}");
            }
        }
    }
    let aspects: Vec<&str> = rows.iter().map(|r| r["aspect"].as_str().unwrap()).collect();
    for a in [
        "copies per message",
        "copies per message, a plugin that cannot see shared memory",
        "system calls per message",
        "context switches per message",
        "CPU per message",
        "throughput, tiny messages",
        "throughput, large messages",
        "latency, one hand-off",
        "request/reply",
        "synchronisation",
        "memory",
        "isolation: a consumer writes",
        "isolation: a consumer breaks the protocol",
        "a slow consumer",
        "crosses machines",
        "kernel mechanisms side by side",
        "limited by message size and system constraints",
        "message loss or duplication",
        "synchronisation: the textbook's semaphores against a lock-free ring",
        "the window: bandwidth × delay",
    ] {
        assert!(aspects.iter().any(|x| x.starts_with(a)), "no row {a}");
    }

    // Every experiment ran on both backends (the synchronisation ones on shm alone: `sync` is
    // shm's key), with digests that agree.
    for e in rep["experiments"].as_array().unwrap() {
        assert_eq!(e["digests_agree"], true, "{}", e["id"]);
        let id = e["id"].as_str().unwrap();
        if id.starts_with("sync-") || id == "window" {
            continue;
        }
        for b in ["shm", "msg"] {
            assert!(!runs(&rep, e["id"].as_str().unwrap(), b).is_empty());
        }
    }

    // Copies: shm 0 B, msg twice the payload, as the stream runs counted them.
    let copies = row(&rep, "copies per message");
    assert_eq!(copies["agrees"], true, "{copies:#}");
    assert!(
        copies["shm"]
            .as_str()
            .unwrap()
            .starts_with("0 B per 4.0 KiB")
    );
    // A component cannot see the shared window: the boundary's copies, on both backends.
    let py = row(
        &rep,
        "copies per message, a plugin that cannot see shared memory",
    );
    for (cell, want) in [
        (
            "shm",
            "Rust 0 B (0.0 copies), Python 12.0 KiB (3.0 copies) per message",
        ),
        (
            "msg",
            "Rust 8.0 KiB (2.0 copies), Python 20.0 KiB (5.0 copies) per message",
        ),
    ] {
        assert_eq!(py[cell], want, "{py:#}");
    }
    let msg = runs(&rep, "stream", "msg")[0];
    let per = msg["copied_bytes"].as_f64().unwrap() / msg["messages"].as_f64().unwrap();
    assert_eq!(per, 8192.0);
    assert!(
        copies["msg"]
            .as_str()
            .unwrap()
            .starts_with("8.0 KiB per 4.0 KiB message (2.0 copies)")
    );

    // System calls: the cell's total is the median of the runs' own syscalls_per_message.
    let calls = row(&rep, "system calls per message");
    for b in ["shm", "msg"] {
        let mut v: Vec<f64> = runs(&rep, "stream", b)
            .iter()
            .map(|r| r["syscalls_per_message"].as_f64().unwrap())
            .collect();
        v.sort_by(f64::total_cmp);
        let want = format!("{:.2}", v[1]);
        assert!(
            calls[b].as_str().unwrap().starts_with(&want),
            "{b}: {} against {want}",
            calls[b]
        );
    }

    // Throughput of tiny messages: the cell is the median of the runs' msgs_per_s, and the
    // verdict's interval is that of the three per-round ratios (min–max of three).
    let small = row(&rep, "throughput, tiny messages");
    let rates = |b: &str| -> Vec<f64> {
        runs(&rep, "small", b)
            .iter()
            .map(|r| r["msgs_per_s"].as_f64().unwrap())
            .collect()
    };
    for b in ["shm", "msg"] {
        let mut v = rates(b);
        assert_eq!(v.len(), 3, "{b}");
        v.sort_by(f64::total_cmp);
        assert_eq!(small[b], format!("{:.0} msg/s", v[1]).as_str());
    }
    let mut ratios: Vec<f64> = rates("shm")
        .iter()
        .zip(rates("msg"))
        .map(|(s, m)| s / m)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let ratio = &small["ratio"];
    assert_eq!(ratio["n"], 3);
    // (JSON's text of a float may read back one unit in the last place away.)
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
    assert!(
        close(ratio["lo"].as_f64().unwrap(), ratios[0]),
        "{ratio} {ratios:?}"
    );
    assert!(
        close(ratio["hi"].as_f64().unwrap(), ratios[2]),
        "{ratio} {ratios:?}"
    );
    // 8-byte messages: shm's lead is far beyond the noise in every round.
    assert_eq!(small["outcome"], "agrees", "{small:#}");
    assert_eq!(small["agrees"], true);
    let verdict = small["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("shm wins messages per second by ") && verdict.ends_with(", 3 rounds)"),
        "{verdict}"
    );
    // Every row's outcome follows the rule: a figure row agrees or differs only when its
    // ratio's interval lies beyond 1 ± 5 % (else "within the noise"); other rows carry none.
    for r in rows {
        let outcome = r["outcome"].as_str().unwrap();
        let verdict = r["verdict"].as_str().unwrap();
        match r["ratio"].as_object() {
            Some(ratio) if r["aspect"].as_str().unwrap().starts_with("memory") => {
                assert_eq!(outcome, "no claim", "{r:#}");
                assert_eq!(ratio["n"], 3);
            }
            Some(ratio) => {
                let (lo, hi) = (ratio["lo"].as_f64().unwrap(), ratio["hi"].as_f64().unwrap());
                let clear = lo > 1.05 || hi < 0.95;
                let want = if !clear {
                    "within the noise"
                } else if r["agrees"] == true {
                    "agrees"
                } else {
                    "differs"
                };
                assert_eq!(outcome, want, "{r:#}");
                assert!(verdict.ends_with("3 rounds)"), "{verdict}");
            }
            None => assert_ne!(outcome, "within the noise", "{r:#}"),
        }
    }

    // Isolation: the scribbler traps on shm (read-only window) and writes its own copy on msg;
    // the liar is refused on both; the producer and the honest consumer finish every time.
    let scribbler = row(&rep, "isolation: a consumer writes");
    let shm = scribbler["shm"].as_str().unwrap();
    assert!(
        shm.starts_with("scribbler: failed") && shm.contains("read-only"),
        "{shm}"
    );
    assert!(
        scribbler["msg"]
            .as_str()
            .unwrap()
            .starts_with("scribbler: ok")
    );
    let liar = row(&rep, "isolation: a consumer breaks the protocol");
    for b in ["shm", "msg"] {
        let cell = liar[b].as_str().unwrap();
        assert!(cell.starts_with("liar: failed"), "{cell}");
        assert!(cell.contains("producer and honest consumer ok"), "{cell}");
        let run = runs(&rep, "liar", b)[0];
        assert_eq!(run["ok"], false);
    }

    // Back-pressure: every message delivered, the waits bounded.
    let slow = row(&rep, "a slow consumer");
    assert!(
        slow["verdict"].as_str().unwrap().starts_with("both hold"),
        "{slow:#}"
    );

    // The bounded buffer against the lock-free rings: every shape ran each `sync` in three
    // interleaved rounds (lock-free, semaphores, mutex per round), every run ok; the lock is
    // counted under semaphores and mutex and absent under lock-free; and the verdict's ratio
    // for four producers, idle, is the median of the per-round ratios of the runs here.
    let bounded = row(&rep, "synchronisation: the textbook's semaphores");
    for id in [
        "sync-1p-idle",
        "sync-4p-idle",
        "sync-1p-loaded",
        "sync-4p-loaded",
    ] {
        let all = runs(&rep, id, "shm");
        let measured: Vec<&&Value> = all.iter().filter(|r| r["warmup"] != true).collect();
        assert_eq!(measured.len(), 9, "{id}");
        let order: Vec<&str> = measured
            .iter()
            .map(|r| r["locks"]["sync"].as_str().unwrap_or("lock-free"))
            .collect();
        assert_eq!(
            order,
            [
                "lock-free",
                "semaphores",
                "mutex",
                "lock-free",
                "semaphores",
                "mutex",
                "lock-free",
                "semaphores",
                "mutex"
            ],
            "{id}: rounds interleave the three"
        );
        for r in &measured {
            assert_eq!(r["ok"], true, "{id}: {}", r["error"]);
            if r["locks"].is_null() {
                continue;
            }
            assert!(r["locks"]["acquisitions"].as_u64().unwrap() > 0, "{id}");
        }
    }
    let ratios: Vec<f64> = (0..3)
        .map(|round| {
            let rate = |sync: &str| {
                runs(&rep, "sync-4p-idle", "shm")
                    .into_iter()
                    .find(|r| {
                        r["warmup"] != true
                            && r["round"] == round
                            && r["locks"]["sync"].as_str().unwrap_or("lock-free") == sync
                    })
                    .unwrap()["msgs_per_s"]
                    .as_f64()
                    .unwrap()
            };
            rate("semaphores") / rate("lock-free")
        })
        .collect();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    let verdict = bounded["verdict"].as_str().unwrap();
    assert!(
        verdict.contains(&format!(
            "4 producers, idle: semaphores {:.2}× ({:.2}–{:.2}, 3 rounds",
            sorted[1], sorted[0], sorted[2]
        )),
        "{verdict} against {ratios:?}"
    );
    for shape in ["1 producer, idle", "4 producers, loaded"] {
        for sync in ["lock-free", "semaphores", "mutex"] {
            let shm = bounded["shm"].as_str().unwrap();
            assert!(shm.contains(shape) && shm.contains(sync), "{shm}");
        }
    }

    // The window: window-sweep.toml ran on tcp and zenoh at every capacity; zenoh's link with
    // one message in flight was bound by its window (the report's rule, in the run), and the
    // row names exactly the capacities whose runs say so.
    let window = row(&rep, "the window: bandwidth × delay");
    let shown: Vec<&str> = window["others"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["backend"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["tcp", "zenoh"]);
    for b in ["tcp", "zenoh"] {
        let runs = runs(&rep, "window", b);
        let mut bound: Vec<u64> = Vec::new();
        for r in &runs {
            assert_eq!(r["ok"], true, "{b}: {}", r["error"]);
            let l = &r["links"][0];
            assert!(l["round_trip_ns"].as_u64().unwrap() > 0, "{b}: {l}");
            if l["window_bound"] == true {
                bound.push(r["sweep"]["capacity"].as_str().unwrap().parse().unwrap());
            }
        }
        assert_eq!(runs.len(), 6, "{b}: one run per capacity");
        if b == "zenoh" {
            assert!(
                bound.contains(&1),
                "zenoh at capacity 1 is bound by its window"
            );
        }
        bound.sort_unstable();
        let said = if bound.is_empty() {
            format!("{b} at no capacity")
        } else {
            format!(
                "{b} at capacity {}",
                bound
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let verdict = window["verdict"].as_str().unwrap();
        assert!(verdict.contains(&said), "{said}: {verdict}");
    }

    // Message loss: under drop-newest every backend lost messages to the stalled consumer,
    // and each link's loss (from sequence numbers) is exactly what did not arrive; under block
    // nothing was lost; nothing was duplicated or reordered; the row shows every backend.
    let loss = row(&rep, "message loss or duplication");
    let shown: Vec<&str> = loss["others"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["backend"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["pipe", "mq", "tcp", "udp", "zenoh"]);
    for b in ["shm", "msg", "pipe", "mq", "tcp", "udp", "zenoh"] {
        let dropping = runs(&rep, "loss-drop", b);
        let blocking = runs(&rep, "loss-block", b);
        assert!(
            !dropping.is_empty() && dropping.len() == blocking.len(),
            "{b}"
        );
        for d in &dropping {
            assert!(d["lost"].as_u64().unwrap() > 0, "{b}: {d:#}");
            for l in d["links"].as_array().unwrap() {
                let (p, r) = (
                    l["published"].as_u64().unwrap(),
                    l["received"].as_u64().unwrap(),
                );
                assert_eq!(l["lost"].as_u64().unwrap(), p - r, "{b}: {l:#}");
            }
        }
        for k in &blocking {
            assert_eq!(k["lost"], 0, "{b}");
        }
        for r in dropping.iter().chain(&blocking) {
            assert_eq!(
                (&r["duplicated"], &r["reordered"]),
                (&json!(0), &json!(0)),
                "{b}"
            );
        }
    }
    let verdict = loss["verdict"].as_str().unwrap();
    assert!(
        verdict.contains("nothing was lost on any backend")
            && verdict.contains("Duplicated 0 and reordered 0"),
        "{verdict}"
    );

    // The kernel's mechanisms side by side: all six ran at 64 B, three rounds each; at 64 KiB
    // `check` refused mq and udp with their limits and the others ran; pipe's ratio against
    // msg is the median and min–max of the per-round ratios of the runs in this JSON.
    let kernel = row(&rep, "kernel mechanisms side by side");
    let others: Vec<&str> = kernel["others"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["backend"].as_str().unwrap())
        .collect();
    assert_eq!(others, ["pipe", "mq", "tcp", "udp"]);
    let figure = |b: &str| {
        kernel["others"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["backend"] == b)
            .unwrap()["figure"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let experiment = |id: &str| {
        rep["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id)
            .unwrap()
            .clone()
    };
    for b in ["shm", "msg", "pipe", "mq", "tcp", "udp"] {
        assert_eq!(runs(&rep, "kernel-64", b).len(), 3, "{b}");
    }
    let refused = experiment("kernel-64k")["refused"].clone();
    let refused: Vec<(String, String)> = serde_json::from_value(refused).unwrap();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0].0 == "mq" && refused[0].1.contains("fs.mqueue.msgsize_max"));
    assert!(refused[1].0 == "udp" && refused[1].1.contains("65507"));
    for b in ["mq", "udp"] {
        assert!(runs(&rep, "kernel-64k", b).is_empty());
        assert!(
            figure(b).contains("64 KiB: refused by check"),
            "{}",
            figure(b)
        );
    }
    for b in ["shm", "msg", "pipe", "tcp"] {
        assert_eq!(runs(&rep, "kernel-64k", b).len(), 3, "{b}");
    }
    let rate = |b: &str| -> Vec<f64> {
        let mut v: Vec<(u64, f64)> = runs(&rep, "kernel-64", b)
            .iter()
            .map(|r| {
                (
                    r["round"].as_u64().unwrap(),
                    r["msgs_per_s"].as_f64().unwrap(),
                )
            })
            .collect();
        v.sort_by_key(|x| x.0);
        v.into_iter().map(|x| x.1).collect()
    };
    let mut ratios: Vec<f64> = rate("pipe")
        .iter()
        .zip(rate("msg"))
        .map(|(p, m)| p / m)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let want = format!(
        "pipe/msg {:.2} ({:.2}–{:.2}, 3 rounds)",
        ratios[1], ratios[0], ratios[2]
    );
    assert!(
        figure("pipe").contains(&want),
        "{} against {want}",
        figure("pipe")
    );

    // Limited by message size: the largest message each backend carries is what this
    // machine's settings say, read here from /proc, and one byte more is refused naming them.
    let limits = rep["limits"].as_array().unwrap();
    let limit = |b: &str, capacity: u64| {
        limits
            .iter()
            .find(|l| l["backend"] == b && l["capacity"] == capacity)
            .unwrap_or_else(|| panic!("no limit for {b} at {capacity}"))
    };
    let sysctl = |path: &str| -> u64 {
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let msgsize_max = sysctl("/proc/sys/fs/mqueue/msgsize_max");
    for capacity in [1, 8] {
        let mq = limit("mq", capacity);
        assert_eq!(mq["largest"], msgsize_max - 16, "{mq}");
        assert!(
            mq["above"]
                .as_str()
                .unwrap()
                .contains("fs.mqueue.msgsize_max")
        );
        let udp = limit("udp", capacity);
        assert_eq!(udp["largest"], 65507 - 16, "{udp}");
    }
    // One in flight, the stream mechanisms take any message the key allows; eight must fit
    // the kernel's buffer, and shm's eight its window.
    let key_bound = 256u64 << 20;
    for b in ["shm", "msg", "pipe", "tcp"] {
        assert_eq!(limit(b, 1)["largest"], key_bound, "{b}");
        assert!(limit(b, 8)["largest"].as_u64().unwrap() < key_bound, "{b}");
    }
    assert!(limit("shm", 8)["above"].as_str().unwrap().contains("2 GiB"));
    assert!(
        limit("msg", 8)["above"]
            .as_str()
            .unwrap()
            .contains("net.core.wmem_max")
    );
    assert!(
        limit("pipe", 8)["above"]
            .as_str()
            .unwrap()
            .contains("fs.pipe-max-size")
    );
    let limited = row(&rep, "limited by message size");
    assert_eq!(limited["agrees"], true, "{limited:#}");
    // Past the pipe's buffer a message goes in pieces: a 16 MiB message through a pipe of at
    // most fs.pipe-max-size takes at least that many writes; a 64 KiB one, one.
    let writes = |size: u64| -> f64 {
        let run = runs(&rep, "across-the-buffer", "pipe")
            .into_iter()
            .find(|r| r["sweep"]["size"].as_str().and_then(|s| s.parse().ok()) == Some(size))
            .unwrap_or_else(|| panic!("no pipe run at {size}"));
        let p = run["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plugin"] == "producer")
            .unwrap();
        p["counters"]["writes"].as_f64().unwrap() / p["messages_sent"].as_f64().unwrap()
    };
    let pieces = (16u64 << 20).div_ceil(sysctl("/proc/sys/fs/pipe-max-size")) as f64;
    assert!(
        writes(16 << 20) >= pieces,
        "{} < {pieces}",
        writes(16 << 20)
    );
    assert!(writes(64 << 10) < 1.5, "{}", writes(64 << 10));
    assert!(
        limited["verdict"].as_str().unwrap().contains("pipe "),
        "{limited:#}"
    );

    // The page: the table and every run, nothing fetched from elsewhere.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<table id=\"explain\""));
    for a in &aspects {
        assert!(page.contains(&a.replace('&', "&amp;")), "{a}");
    }
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
    // In the report's layout: a row per aspect with its outcome, the JSON folded, and it
    // fits a 1280-pixel window.
    let dom = crate::page::rendered(&html, dir.path());
    assert_eq!(dom.matches("<tr class=\"aspect ").count(), aspects.len());
    assert!(dom.contains("<tr class=\"aspect agrees\">"));
    assert!(dom.contains("<details id=\"raw\">"));
    crate::page::assert_fits(&dom);
    assert_no_leftovers(&id);
}

/// --explain runs its own experiments: options that name a scenario's values are refused.
#[test]
fn explain_refuses_options_it_cannot_honour() {
    let out = wasm_ipc(&["compare", "--explain", "--set", "run.repeat=2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(util::stderr(&out).contains("--explain runs its own experiments"));
    let out = wasm_ipc(&["compare", "--explain", "scenarios/ping-pong.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

/// One round cannot tell: with `--quick` alone every row that compares a timed figure says
/// "within the noise", with its one-round ratio, and none names a winner.
#[test]
fn one_round_puts_every_timed_row_within_the_noise() {
    let _g = heavy();
    util::plugins();
    let out = wasm_ipc(&["compare", "--explain", "--quick", "--json"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    let timed: Vec<&Value> = rep["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ratio"].is_object())
        .collect();
    assert!(timed.len() >= 6, "{rep:#}");
    for r in timed {
        assert_eq!(r["ratio"]["n"], 1, "{r:#}");
        let aspect = r["aspect"].as_str().unwrap();
        if !aspect.starts_with("memory") {
            assert_eq!(r["outcome"], "within the noise", "{r:#}");
            assert!(r["agrees"].is_null(), "{r:#}");
            let verdict = r["verdict"].as_str().unwrap();
            assert!(verdict.starts_with("no clear winner in "), "{verdict}");
        }
    }
    let text = wasm_ipc(&["compare", "--explain", "--quick"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("measured: within the noise: no clear winner in "),
        "{text}"
    );
    // Each row cites its runs: per backend, and for the synchronisation experiments per `sync`.
    assert!(
        text.contains(
            "stall_after=1000 on mq, msg, pipe, shm, tcp, udp, zenoh (1 run per backend)"
        ),
        "{text}"
    );
    assert!(
        text.contains("on shm under sync = lock-free, mutex, semaphores (1 run per backend)"),
        "{text}"
    );
}
