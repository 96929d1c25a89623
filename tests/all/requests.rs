//! Request/reply (ABI 0.2.0) on every backend: the web-db scenario with 1, 2 and 4 web
//! workers, servers that answer wrongly, answer the wrong client or trap mid-request, a
//! client killed mid-call, the misuse traps, and 0.1.0 and 0.2.0 plugins in one run.

use std::time::{Duration, Instant};

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

const TABLE: &str = "rows = 256, min_row = 100, max_row = 65536, table_seed = 9";

/// A web-db scenario: `webs` web workers (of `web_wasm`) calling one server (`db_wasm` with
/// `db_config`), on `backends`.
fn web_db(webs: u32, pages: u32, db_wasm: &str, db_config: &str, backends: &str) -> String {
    format!(
        r#"name = "rr"
[[plugin]]
name = "web"
instances = {webs}
wasm = "{{wasm:web}}"
config = {{ pages = {pages}, queries = 3, {TABLE} }}
[[plugin]]
name = "db"
wasm = "{{wasm:{db_wasm}}}"
config = {{ {TABLE}{db_config} }}
[[channel]]
pattern = "request-reply"
from = "web[*].db"
to = "db.queries"
[run]
backends = [{backends}]
timeout = "60s"
"#
    )
}

fn run_text(text: &str, tag: &str) -> (std::process::Output, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(dir.path(), "rr.toml", text);
    let id = util::run_id(tag);
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--json",
        "--run-id",
        &id,
        sc.to_str().unwrap(),
    ]);
    let rep = report(&out);
    assert_no_leftovers(&id);
    (out, rep)
}

/// The name of web worker `w` of `webs` (one copy keeps the plain name).
fn web_name(webs: u32, w: u32) -> String {
    if webs == 1 {
        "web".into()
    } else {
        format!("web#{w}")
    }
}

fn procs(run: &serde_json::Value) -> &Vec<serde_json::Value> {
    run["processes"].as_array().unwrap()
}

fn proc_named<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    procs(run).iter().find(|p| p["plugin"] == name).unwrap()
}

#[test]
fn every_answer_matches_its_request_on_every_backend_with_1_2_and_4_web_workers() {
    let _g = heavy();
    let pages = 40;
    let mut digests = Vec::new();
    for webs in [1, 2, 4] {
        let (out, rep) = run_text(&web_db(webs, pages, "db", "", "\"shm\", \"msg\""), "rr-ok");
        assert!(out.status.success(), "{webs} webs: {}", util::stderr(&out));
        assert_eq!(rep["digests_agree"], true);
        let runs = rep["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2);
        for run in runs {
            let calls = u64::from(webs * pages * 3);
            let rq = &run["requests"];
            assert_eq!(rq["calls"], calls, "{run}");
            assert_eq!(rq["served"], calls, "{run}");
            assert!(rq["round_trip_ns"]["p50"].as_u64().unwrap() > 0);
            assert!(rq["round_trip_ns"]["p99"].as_u64() >= rq["round_trip_ns"]["p50"].as_u64());
            assert!(rq["per_s"].as_f64().unwrap() > 0.0);
            assert!(run["rates"]["pages"].as_f64().unwrap() > 0.0, "{run}");
            // Every web worker checked every row it got (it fails the run otherwise).
            for w in 0..webs {
                let p = proc_named(run, &web_name(webs, w));
                assert_eq!(p["status"], "ok");
                assert_eq!(p["reports"]["queries"], pages * 3);
                assert_eq!(p["calls"], pages * 3);
            }
            assert_eq!(proc_named(run, "db")["reports"]["answered"], calls);
            // Requests and answers both cross the backend: every lane has a digest.
            digests.push(run["digest_received"].as_str().unwrap().to_string());
        }
        let shm = &runs[0];
        assert_eq!(shm["backend"], "shm");
        assert_eq!(shm["copied_bytes"], 0, "shm answers are zero-copy");
        assert!(runs[1]["copied_bytes"].as_u64().unwrap() > 0);
    }
}

/// Runs `webs` web workers against `bad_db` with `fault` on each backend and returns each run's
/// error, after checking that the run failed.
fn bad_server_errors(webs: u32, fault: &str) -> Vec<String> {
    ["shm", "msg"]
        .iter()
        .map(|backend| {
            let db = format!(", fault = \"{fault}\"");
            let text = web_db(webs, 20, "bad_db", &db, &format!("\"{backend}\""));
            let (out, rep) = run_text(&text, "rr-bad");
            assert_eq!(out.status.code(), Some(1), "{fault} on {backend}");
            format!("{backend}: {}", rep["runs"][0]["error"].as_str().unwrap())
        })
        .collect()
}

#[test]
fn a_server_that_answers_one_query_wrongly_fails_the_run_naming_the_answer() {
    let _g = heavy();
    for e in bad_server_errors(1, "wrong-row") {
        assert!(
            e.contains("plugin `web` returned 3")
                && e.contains("the answer on port `db` to query")
                && e.contains("is wrong"),
            "{e}"
        );
    }
}

#[test]
fn a_server_that_answers_the_wrong_client_is_caught_by_that_client() {
    let _g = heavy();
    for e in bad_server_errors(2, "wrong-client") {
        assert!(
            e.contains("is wrong: asked for row") && e.contains("plugin `web#"),
            "{e}"
        );
    }
}

#[test]
fn a_server_that_traps_mid_request_gives_its_clients_peer_failed_not_a_hang() {
    let _g = heavy();
    for backend in ["shm", "msg"] {
        let start = Instant::now();
        let (out, rep) = run_text(
            &web_db(
                2,
                50,
                "bad_db",
                ", fault = \"trap\"",
                &format!("\"{backend}\""),
            ),
            "rr-trap",
        );
        assert_eq!(out.status.code(), Some(1), "{backend}");
        // Well before the 60 s deadline: the clients learnt of the failure, they did not wait.
        assert!(start.elapsed() < Duration::from_secs(30), "{backend}");
        let run = &rep["runs"][0];
        assert_eq!(proc_named(run, "db")["status"], "failed");
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .contains("plugin `db` trapped"),
            "{run}"
        );
        for w in ["web#0", "web#1"] {
            assert_eq!(
                proc_named(run, w)["status"],
                "peer-failed",
                "{backend}: {run}"
            );
        }
    }
}

#[test]
fn a_client_killed_mid_call_does_not_stop_the_server_serving_the_others() {
    let _g = heavy();
    for backend in ["shm", "msg", "zenoh"] {
        let dir = tempfile::tempdir().unwrap();
        // The server holds web#1's first call unanswered, so web#1 is inside `call` when it is
        // killed; web#0 and web#2 must still get every answer.
        let text = web_db(
            3,
            400,
            "bad_db",
            ", fault = \"hold\", victim = 1",
            &format!("\"{backend}\""),
        );
        let sc = util::scenario(dir.path(), "rr.toml", &text);
        let id = util::run_id("rr-kill");
        let child = util::spawn(&["run", "--json", "--run-id", &id, sc.to_str().unwrap()]);
        let start = Instant::now();
        let victim = loop {
            if let Some(pid) = util::worker_pid(&id, "web#1") {
                break pid;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "web#1 never appeared"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(500));
        let killed = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(victim),
            nix::sys::signal::SIGKILL,
        );
        let out = util::wait_with_watchdog(child, Duration::from_secs(90));
        // web#1 waits for an answer the server holds: it must still be there to be killed.
        assert!(
            killed.is_ok(),
            "{backend}: web#1 was gone before the kill ({killed:?}): {}\n{}",
            util::stderr(&out),
            String::from_utf8_lossy(&out.stdout)
        );
        let rep = report(&out);
        assert_no_leftovers(&id);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{backend}: {}",
            util::stderr(&out)
        );
        let run = &rep["runs"][0];
        assert_eq!(proc_named(run, "web#1")["status"], "killed", "{run}");
        let db = proc_named(run, "db");
        assert_eq!(db["status"], "ok", "{backend}: {run}");
        for w in ["web#0", "web#2"] {
            let p = proc_named(run, w);
            assert_eq!(p["status"], "ok", "{backend}: {w}");
            assert_eq!(p["reports"]["queries"], 1200, "{backend}: {w}");
        }
        // The server learnt of the loss (its receive skipped web#1) and its held answer to
        // web#1 said closed.
        assert_eq!(run["requests"]["clients_lost"], 1, "{backend}: {run}");
        assert_eq!(db["reports"]["clients_gone"], 1, "{backend}: {run}");
    }
}

#[test]
fn request_reply_misuse_traps_naming_the_plugin_and_the_call() {
    let _g = heavy();
    let server_cases = [
        (
            "reply-to-nobody",
            "misused `reply-loan`: client 5 of port `queries` has no outstanding call",
        ),
        (
            "reply-before-receive",
            "misused `reply-loan`: client 0 of port `queries` has no outstanding call",
        ),
        (
            "two-replies",
            "misused `reply-loan`: client 0 of port `queries` has no outstanding call",
        ),
        (
            "reply-without-loan",
            "misused `reply`: no `reply-loan` on port `queries`",
        ),
        (
            "publish-on-server",
            "misused `loan`: port `queries` is a server port",
        ),
        (
            "client-before-request",
            "misused `client`: no request was received on port `queries`",
        ),
    ];
    for (mode, want) in server_cases {
        let text = web_db(
            1,
            5,
            "rr_misuse",
            &format!(", mode = \"{mode}\""),
            "\"msg\"",
        );
        let (out, rep) = run_text(&text, "rr-misuse");
        assert_eq!(out.status.code(), Some(1), "{mode}");
        let db = proc_named(&rep["runs"][0], "db");
        let e = db["error"].as_str().unwrap();
        assert!(
            e.contains("plugin `db` misused") && e.contains(want),
            "{mode}: {e}"
        );
    }
    let client_cases = [
        (
            "call-while-held",
            "misused `call`: a `call` on port `db` while the previous answer is held",
        ),
        (
            "publish-on-client",
            "misused `publish`: port `db` is a client port",
        ),
        (
            "receive-on-client",
            "misused `receive`: port `db` is a client port",
        ),
        ("call-without-loan", "misused `call`: no loan on port `db`"),
        (
            "lying-call",
            "misused `call`: 64 bytes sent on port `db`, but only 8 were loaned",
        ),
    ];
    for (mode, want) in client_cases {
        let text = web_db(1, 5, "db", "", "\"shm\"")
            .replace("{wasm:web}", "{wasm:rr_misuse}")
            .replace("pages = 5,", &format!("mode = \"{mode}\","));
        let (out, rep) = run_text(&text, "rr-misuse");
        assert_eq!(out.status.code(), Some(1), "{mode}");
        let web = proc_named(&rep["runs"][0], "web");
        let e = web["error"].as_str().unwrap();
        assert!(
            e.contains("plugin `web` misused") && e.contains(want),
            "{mode}: {e}"
        );
    }
}

#[test]
fn abi_0_1_0_and_0_2_0_plugins_run_side_by_side_in_one_scenario() {
    let _g = heavy();
    let producer = util::lang_wasm("wat", "producer");
    let consumer = util::lang_wasm("wat", "consumer");
    for (wasm, abi) in [
        (&producer, "0.1.0"),
        (&consumer, "0.1.0"),
        (&util::wasm("web"), "0.2.0"),
    ] {
        let out = wasm_ipc(&["inspect", "--json", wasm.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["abi"], abi, "{}", wasm.display());
        assert_eq!(v["meets_abi"], true);
    }
    let text = web_db(2, 20, "db", "", "\"shm\", \"msg\"").replace(
        "[run]",
        &format!(
            r#"[[plugin]]
name = "p"
wasm = "{}"
config = {{ count = 500, size = 256 }}
[[plugin]]
name = "c"
wasm = "{}"
config = {{ expect = 500 }}
[[channel]]
from = "p.out"
to = "c.in"
[run]"#,
            producer.display(),
            consumer.display()
        ),
    );
    let (out, rep) = run_text(&text, "rr-mixed");
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert_eq!(rep["digests_agree"], true);
    for run in rep["runs"].as_array().unwrap() {
        assert_eq!(run["requests"]["calls"], 120);
        assert_eq!(proc_named(run, "c")["messages_received"], 500);
    }
}

#[test]
fn clients_and_servers_of_every_language_answer_each_other_on_every_backend() {
    let _g = heavy();
    let (c_web, c_db) = (util::lang_wasm("c", "web"), util::lang_wasm("c", "db"));
    let (rust_web, rust_db) = (util::wasm("web"), util::wasm("db"));
    let (as_web, as_db) = (
        util::lang_wasm("assemblyscript", "web"),
        util::lang_wasm("assemblyscript", "db"),
    );
    let (zig_db, wat_db) = (util::lang_wasm("zig", "db"), util::lang_wasm("wat", "db"));
    // Components: a Python or JavaScript client or server opposite another language.
    let (py_web, py_db) = (
        util::lang_wasm("python", "web"),
        util::lang_wasm("python", "db"),
    );
    let (js_web, js_db) = (
        util::lang_wasm("javascript", "web"),
        util::lang_wasm("javascript", "db"),
    );
    for (web, db) in [
        (&c_web, &rust_db),
        (&rust_web, &c_db),
        (&as_web, &zig_db),
        (&c_web, &wat_db),
        (&as_web, &rust_db),
        (&rust_web, &as_db),
        (&py_web, &rust_db),
        (&rust_web, &js_db),
        (&js_web, &py_db),
    ] {
        let text = web_db(2, 30, "db", "", "\"shm\", \"msg\"")
            .replace("{wasm:web}", &web.display().to_string())
            .replace("{wasm:db}", &db.display().to_string());
        let (out, rep) = run_text(&text, "rr-lang");
        assert!(
            out.status.success(),
            "{} → {}: {}",
            web.display(),
            db.display(),
            util::stderr(&out)
        );
        assert_eq!(rep["digests_agree"], true);
        for run in rep["runs"].as_array().unwrap() {
            assert_eq!(run["requests"]["calls"], 180, "{run}");
            assert_eq!(proc_named(run, "db")["reports"]["answered"], 180);
        }
    }
}
