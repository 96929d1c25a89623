//! Component plugins (Python through componentize-py, JavaScript through componentize-js, on
//! the world `wit/component`): the same
//! scenarios, backends, digests and verdicts as core modules, with the copies at the
//! component boundary counted exactly.

use crate::util::{self, heavy, lang_wasm, report, wasm_ipc};

/// Every backend of one machine.
const BACKENDS: &str = r#"["shm", "msg", "pipe", "mq", "tcp", "udp", "zenoh"]"#;

const COUNT: u64 = 300;
const SIZE: u64 = 1000;

fn plugin(lang: &str, name: &str) -> String {
    if lang == "rust" {
        util::wasm(name).display().to_string()
    } else {
        lang_wasm(lang, name).display().to_string()
    }
}

/// `producer` → `consumer` on every backend, `compare --quick --json`.
fn pair(dir: &std::path::Path, producer: &str, consumer: &str) -> serde_json::Value {
    let sc = util::scenario(
        dir,
        &format!("{producer}-{consumer}.toml"),
        &format!(
            r#"
name = "{producer}-to-{consumer}"
[[plugin]]
name = "p"
wasm = "{p}"
config = {{ count = {COUNT}, size = {SIZE}, seed = 9 }}
[[plugin]]
name = "c"
wasm = "{c}"
config = {{ seed = 9, expect = {COUNT} }}
[[channel]]
from = "p.out"
to = "c.in"
slot_size = 4096
capacity = 8
[run]
backends = {BACKENDS}
"#,
            p = plugin(producer, "producer"),
            c = plugin(consumer, "consumer"),
        ),
    );
    let out = wasm_ipc(&["compare", "--quick", "--json", sc.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{producer} -> {consumer}: {}",
        util::stderr(&out)
    );
    report(&out)
}

#[test]
fn every_language_feeds_and_is_fed_by_another_on_every_backend_with_one_digest() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let mut digest: Option<String> = None;
    // Every language as producer and as consumer, opposite another language, on every
    // backend (the 25 pairs of core languages run on shm and msg in languages.rs).
    let pairs = [
        ("python", "c"),
        ("javascript", "rust"),
        ("zig", "python"),
        ("wat", "javascript"),
        ("python", "javascript"),
        ("javascript", "python"),
        ("rust", "assemblyscript"),
        ("assemblyscript", "zig"),
        ("c", "wat"),
    ];
    for (producer, consumer) in pairs {
        let rep = pair(dir.path(), producer, consumer);
        let runs = rep["runs"].as_array().unwrap();
        assert_eq!(
            runs.len(),
            7,
            "{producer} -> {consumer}: one run per backend"
        );
        for run in runs {
            let what = format!("{producer} -> {consumer} on {}", run["backend"]);
            assert_eq!(run["ok"], true, "{what}: {}", run["error"]);
            assert_eq!(run["messages"], COUNT, "{what}");
            assert_eq!(run["digest_sent"], run["digest_received"], "{what}");
            let c = &run["processes"][1];
            assert_eq!(c["reports"]["received"], COUNT, "{what}");
            assert_eq!(c["reports"]["mismatches"], 0, "{what}");
            let d = run["digest_received"].as_str().unwrap().to_string();
            // Same count, size and seed in every language: the very same bytes.
            assert_eq!(digest.get_or_insert(d.clone()), &d, "{what}");
            if run["backend"] == "shm" {
                // No kernel copies on shm: only the component boundary's, one per message
                // out of a component producer, two per message into a component consumer.
                let component = |lang: &str| matches!(lang, "python" | "javascript");
                let boundary = u64::from(component(producer)) + 2 * u64::from(component(consumer));
                assert_eq!(
                    run["copied_bytes"],
                    boundary * COUNT * SIZE,
                    "{what}: the boundary copies, no more, no less"
                );
            }
        }
    }
}

/// Runs `lang`'s fixture that fails as `fault` says, feeding a Rust consumer on `msg`.
fn faulty(dir: &std::path::Path, lang: &str, fault: &str) -> serde_json::Value {
    let out = faulty_run(dir, lang, fault);
    assert!(!out.status.success(), "a failing plugin fails the run");
    report(&out)
}

fn faulty_run(dir: &std::path::Path, lang: &str, fault: &str) -> std::process::Output {
    let sc = util::scenario(
        dir,
        &format!("faulty-{lang}-{fault}.toml"),
        &format!(
            r#"
name = "faulty-{lang}-{fault}"
[[plugin]]
name = "faulty"
wasm = "{p}"
config = {{ fault = "{fault}", after = 10 }}
memory = "64MiB"
[[plugin]]
name = "c"
wasm = "{c}"
config = {{ check = "none" }}
[[channel]]
from = "faulty.out"
to = "c.in"
slot_size = 64
capacity = 16
[run]
backends = ["msg"]
timeout = "3s"
"#,
            p = lang_wasm(lang, "faulty").display(),
            c = util::wasm("consumer").display(),
        ),
    );
    wasm_ipc(&["run", "--json", sc.to_str().unwrap()])
}

#[test]
fn a_python_plugin_reaches_no_file_directory_environment_argument_or_socket() {
    let dir = tempfile::tempdir().unwrap();
    let out = faulty_run(dir.path(), "python", "escape");
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    let reports = &rep["runs"][0]["processes"][0]["reports"];
    for door in [
        "read_file",
        "write_file",
        "list_root",
        "list_cwd",
        "environ",
        "argv",
        "socket",
    ] {
        assert_eq!(reports[door], 0, "{door} should stay shut: {reports}");
    }
    assert!(!std::path::Path::new("/tmp/wasm-ipc-escape").exists());
}

#[test]
fn a_component_that_raises_hogs_or_spins_gets_a_core_modules_verdict_naming_its_error() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    // Where each fixture raises, read from its source.
    let line_of = |file: &str, needle: &str| {
        let text = std::fs::read_to_string(util::root().join(file)).unwrap();
        1 + text.lines().position(|l| l.contains(needle)).unwrap()
    };
    let py = line_of(
        "plugins/component-fixtures/python/faulty.py",
        "raise ValueError",
    );
    let js = line_of(
        "plugins/component-fixtures/javascript/faulty.js",
        "throw new RangeError",
    );
    for (lang, raised) in [
        (
            "python",
            format!("ValueError: the fixture raised on purpose (at faulty.py:{py}, in fail)"),
        ),
        (
            "javascript",
            format!("RangeError: the fixture threw on purpose (at faulty.js:{js}, in fail)"),
        ),
    ] {
        let rep = faulty(dir.path(), lang, "raise");
        let p = &rep["runs"][0]["processes"][0];
        assert_eq!(p["status"], "failed", "{lang}: {p}");
        let err = p["error"].as_str().unwrap();
        assert!(
            err.contains(&format!("plugin `faulty` failed in its own code: {raised}")),
            "{lang}: the guest's exception, message, file and line: {err}"
        );
        let hog = faulty(dir.path(), lang, "hog");
        let p = &hog["runs"][0]["processes"][0];
        assert_eq!(p["status"], "failed", "{lang}: {p}");
        let err = p["error"].as_str().unwrap();
        assert!(
            err.contains("plugin `faulty` hit its memory limit"),
            "{lang}: the memory limit, as for a core module: {err}"
        );
        let spin = faulty(dir.path(), lang, "spin");
        let p = &spin["runs"][0]["processes"][0];
        assert_eq!(p["status"], "interrupted", "{lang}: {p}");
        let err = p["error"].as_str().unwrap();
        assert!(
            err.contains("plugin `faulty` interrupted in wasm code: the run's timeout passed"),
            "{lang}: the timeout reaches code that never calls the host: {err}"
        );
        // The consumer got what was published before the fault (at the timeout it is stopped
        // too, inside `receive`, before it could report).
        for r in [&rep, &hog] {
            assert_eq!(
                r["runs"][0]["processes"][1]["reports"]["received"], 10,
                "{lang}"
            );
        }
    }
}

#[test]
fn inspect_tells_a_component_from_a_module_and_checks_it_against_its_world() {
    for lang in ["python", "javascript"] {
        let out = wasm_ipc(&["inspect", "--json", &plugin(lang, "producer")]);
        assert!(out.status.success(), "{lang}: {}", util::stderr(&out));
        let v = report(&out);
        assert_eq!(v["kind"], "component", "{lang}");
        assert_eq!(v["world"], "wasm-ipc:component@0.1.0", "{lang}");
        assert_eq!(v["meets_abi"], true, "{lang}");
        let imports: Vec<&str> = v["imports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_str().unwrap())
            .collect();
        assert!(
            imports.contains(&"wasm-ipc:component/host@0.1.0"),
            "{lang}: {imports:?}"
        );
    }
    let out = wasm_ipc(&["inspect", "--json", &plugin("rust", "producer")]);
    assert_eq!(report(&out)["kind"], "module");
}
