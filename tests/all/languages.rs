//! Plugins in every language run unchanged on both backends, and any producer feeds any
//! consumer: the same bytes (equal digests) for every pair, no copies on shm. Also `inspect`
//! on good and broken modules, and `new` templates that build and pass.

use crate::util::{self, heavy, lang_wasm, report, wasm_ipc};

const LANGS: [&str; 5] = ["rust", "c", "assemblyscript", "zig", "wat"];

fn pair(dir: &std::path::Path, producer: &str, consumer: &str, size: u32) -> serde_json::Value {
    let sc = util::scenario(
        dir,
        &format!("{producer}-{consumer}.toml"),
        &format!(
            r#"
name = "{producer}-to-{consumer}"
[[plugin]]
name = "p"
wasm = "{p}"
config = {{ count = 300, size = {size}, seed = 9 }}
[[plugin]]
name = "c"
wasm = "{c}"
config = {{ seed = 9, expect = 300 }}
[[channel]]
from = "p.out"
to = "c.in"
slot_size = 65536
capacity = 16
[run]
backends = ["shm", "msg"]
"#,
            p = lang_wasm(producer, "producer").display(),
            c = lang_wasm(consumer, "consumer").display(),
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
fn every_language_feeds_every_language_on_both_backends_with_identical_bytes() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let mut digest: Option<String> = None;
    for producer in LANGS {
        for consumer in LANGS {
            let rep = pair(dir.path(), producer, consumer, 1000);
            assert_eq!(rep["digests_agree"], true, "{producer} -> {consumer}");
            for run in rep["runs"].as_array().unwrap() {
                let what = format!("{producer} -> {consumer} on {}", run["backend"]);
                assert_eq!(run["ok"], true, "{what}: {}", run["error"]);
                assert_eq!(run["messages"], 300, "{what}");
                assert_eq!(run["digest_sent"], run["digest_received"], "{what}");
                let c = &run["processes"][1];
                assert_eq!(c["reports"]["received"], 300, "{what}");
                assert_eq!(c["reports"]["mismatches"], 0, "{what}");
                if run["backend"] == "shm" {
                    assert_eq!(run["copied_bytes"], 0, "{what}");
                }
                let d = run["digest_received"].as_str().unwrap().to_string();
                // Same count, size and seed: every pair delivers the very same bytes.
                assert_eq!(digest.get_or_insert(d.clone()), &d, "{what}");
            }
        }
    }
}

#[test]
fn odd_sizes_match_across_languages() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    for size in [1, 7, 8, 13] {
        let mut digest: Option<String> = None;
        for lang in LANGS {
            let rep = pair(dir.path(), lang, lang, size);
            let d = rep["runs"][0]["digest_received"]
                .as_str()
                .unwrap()
                .to_string();
            assert_eq!(
                digest.get_or_insert(d.clone()),
                &d,
                "{lang} at {size} bytes"
            );
        }
    }
}

fn inspect(file: &std::path::Path) -> (Option<i32>, String) {
    let out = wasm_ipc(&["inspect", file.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        util::stderr(&out)
    );
    (out.status.code(), text)
}

#[test]
fn inspect_passes_every_example_and_names_what_is_wrong_with_broken_modules() {
    for lang in LANGS {
        for name in ["producer", "consumer"] {
            let (code, text) = inspect(&lang_wasm(lang, name));
            assert_eq!(code, Some(0), "{lang} {name}:\n{text}");
            assert!(text.contains("meets the plugin ABI"), "{text}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let good = r#"(module
        (import "wasm-ipc:plugin/host@0.1.0" "now" (func (result i64)))
        (memory (export "memory") 1)
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 65536)
        (func (export "run") (result i32) i32.const 0))"#;
    let cases = [
        (
            "no-memory.wat",
            good.replace("(memory (export \"memory\") 1)", "(memory 1)"),
            "no `memory` export",
        ),
        (
            "no-run.wat",
            good.replace("(export \"run\")", ""),
            "no `run` export",
        ),
        (
            "foreign.wat",
            good.replace(
                "\"wasm-ipc:plugin/host@0.1.0\" \"now\"",
                "\"env\" \"abort\"",
            ),
            "imports `env`.`abort`, which the host does not provide",
        ),
        (
            "wrong-sig.wat",
            good.replace("(func (result i64))", "(func (result i32))"),
            "imports `wasm-ipc:plugin/host@0.1.0`.`now` as (func (param) (result i32))",
        ),
        (
            "no-realloc.wat",
            good.replace("(export \"cabi_realloc\")", ""),
            "no `cabi_realloc` export",
        ),
    ];
    for (file, text, want) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let (code, out) = inspect(&path);
        assert_eq!(code, Some(1), "{file}:\n{out}");
        assert!(
            out.contains(want) && out.contains("fix:"),
            "{file}: want {want:?} in\n{out}"
        );
        assert!(out.contains("does NOT meet the plugin ABI"), "{out}");
    }
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"this is not wasm").unwrap();
    let (code, out) = inspect(&junk);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("not WebAssembly at all"), "{out}");
    let (code, out) = inspect(&dir.path().join("missing.wasm"));
    assert_eq!(code, Some(2), "{out}");
}

#[test]
fn templates_from_new_build_and_pass_in_every_language() {
    let _g = heavy();
    let _ = lang_wasm("rust", "producer"); // toolchains and SDK dependencies are in place
    let dir = tempfile::tempdir().unwrap();
    // Python's and JavaScript's templates are components (tests/all/components.rs has the
    // rest of them).
    for lang in LANGS.into_iter().chain(["python", "javascript"]) {
        let name = format!("demo-{lang}");
        let out = wasm_ipc(&[
            "new",
            "--lang",
            lang,
            &name,
            "--dir",
            dir.path().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{lang}: {}", util::stderr(&out));
        let scenario = dir.path().join(&name).join("scenario.toml");
        assert!(scenario.exists(), "{lang}");
        let out = wasm_ipc(&["compare", "--quick", "--json", scenario.to_str().unwrap()]);
        assert!(out.status.success(), "{lang}: {}", util::stderr(&out));
        let rep = report(&out);
        // The components' templates run on every backend; the others on shm and msg.
        let backends = if matches!(lang, "python" | "javascript") {
            7
        } else {
            2
        };
        assert_eq!(rep["runs"].as_array().unwrap().len(), backends, "{lang}");
        for run in rep["runs"].as_array().unwrap() {
            assert_eq!(run["ok"], true, "{lang}: {}", run["error"]);
            assert_eq!(run["messages"], 1000, "{lang}");
            let consumer = &run["processes"][1];
            assert_eq!(consumer["reports"]["received"], 1000, "{lang}");
            assert_eq!(consumer["reports"]["mismatches"], 0, "{lang}");
        }
        assert_eq!(rep["digests_agree"], true, "{lang}");
    }
    // `--kind request-reply`: two client instances call one server, every answer checked.
    for lang in ["rust", "c"] {
        let name = format!("rr-{lang}");
        let out = wasm_ipc(&[
            "new",
            "--lang",
            lang,
            "--kind",
            "request-reply",
            &name,
            "--dir",
            dir.path().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{lang}: {}", util::stderr(&out));
        let scenario = dir.path().join(&name).join("scenario.toml");
        let out = wasm_ipc(&["compare", "--quick", "--json", scenario.to_str().unwrap()]);
        assert!(out.status.success(), "{lang}: {}", util::stderr(&out));
        let rep = report(&out);
        for run in rep["runs"].as_array().unwrap() {
            assert_eq!(run["ok"], true, "{lang}: {}", run["error"]);
            assert_eq!(run["requests"]["calls"], 1000, "{lang}");
            let server = run["processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["plugin"] == format!("{name}-server"))
                .unwrap();
            assert_eq!(server["reports"]["served"], 1000, "{lang}");
        }
    }
    let out = wasm_ipc(&[
        "new",
        "--lang",
        "zig",
        "--kind",
        "request-reply",
        "rr-zig",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        util::stderr(&out).contains("no request-reply template for zig"),
        "{}",
        util::stderr(&out)
    );
    // A second `new` with the same name refuses to overwrite.
    let out = wasm_ipc(&[
        "new",
        "--lang",
        "rust",
        "demo-rust",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(util::stderr(&out).contains("already exists"));
}
