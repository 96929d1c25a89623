//! `compare --explain`: the textbook's table, filled from runs it made.

use serde_json::Value;

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
    let out = wasm_ipc(&[
        "compare",
        "--explain",
        "--quick",
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
    ] {
        assert!(aspects.iter().any(|x| x.starts_with(a)), "no row {a}");
    }

    // Every experiment ran on both backends, with digests that agree.
    for e in rep["experiments"].as_array().unwrap() {
        assert_eq!(e["digests_agree"], true, "{}", e["id"]);
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
    let msg = runs(&rep, "stream", "msg")[0];
    let per = msg["copied_bytes"].as_f64().unwrap() / msg["messages"].as_f64().unwrap();
    assert_eq!(per, 8192.0);
    assert!(
        copies["msg"]
            .as_str()
            .unwrap()
            .starts_with("8.0 KiB per 4.0 KiB message (2.0 copies)")
    );

    // System calls: the cell's total is the run's own syscalls_per_message.
    let calls = row(&rep, "system calls per message");
    for b in ["shm", "msg"] {
        let run = runs(&rep, "stream", b)[0];
        let want = format!("{:.2}", run["syscalls_per_message"].as_f64().unwrap());
        assert!(
            calls[b].as_str().unwrap().starts_with(&want),
            "{b}: {} against {want}",
            calls[b]
        );
    }

    // Throughput of tiny messages: the cell is the run's msgs_per_s.
    let small = row(&rep, "throughput, tiny messages");
    for b in ["shm", "msg"] {
        let run = runs(&rep, "small", b)[0];
        let want = format!("{:.0} msg/s", run["msgs_per_s"].as_f64().unwrap());
        assert_eq!(small[b], want.as_str());
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

    // The page: the table and every run, nothing fetched from elsewhere.
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<table id=\"explain\""));
    for a in &aspects {
        assert!(page.contains(&a.replace('&', "&amp;")), "{a}");
    }
    assert!(!page.contains("src=\"http") && !page.contains("href=\"http"));
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
