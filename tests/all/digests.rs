//! Digests can fail: a producer that drops, reorders or corrupts one message in its second
//! run makes the two runs' digests differ, and the exit status says so.

use crate::util::{self, heavy, report, wasm_ipc};

fn faulty(fault: &str) -> (std::process::Output, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let sc = util::scenario(
        dir.path(),
        "faulty.toml",
        &format!(
            r#"
name = "faulty"
[[plugin]]
name = "p"
wasm = "{{wasm:faulty_producer}}"
config = {{ count = 200, size = 256, fault = "{fault}", at = 100, fault_repeat = "1" }}
[[plugin]]
name = "c"
wasm = "{{wasm:consumer}}"
config = {{ strict = false }}
[[channel]]
from = "p.out"
to = "c.in"
slot_size = 256
[run]
backends = ["msg"]
repeat = 2
"#
        ),
    );
    let out = wasm_ipc(&["compare", "--quick", "--json", sc.to_str().unwrap()]);
    let rep = report(&out);
    (out, rep)
}

#[test]
fn a_clean_producer_gives_equal_digests_and_exit_0() {
    let _g = heavy();
    let (out, rep) = faulty("none");
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert_eq!(rep["digests_agree"], true);
    assert_eq!(
        rep["runs"][0]["digest_received"],
        rep["runs"][1]["digest_received"]
    );
}

#[test]
fn a_dropped_reordered_or_corrupted_message_changes_the_digest_and_exits_1() {
    let _g = heavy();
    for fault in ["drop", "reorder", "corrupt"] {
        let (out, rep) = faulty(fault);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{fault}: {}",
            util::stderr(&out)
        );
        assert_eq!(rep["digests_agree"], false, "{fault}");
        let runs = rep["runs"].as_array().unwrap();
        // Each run on its own delivered what was sent; they differ from each other.
        for r in runs {
            assert_eq!(r["ok"], true, "{fault}: {}", r["error"]);
            assert_eq!(r["digest_sent"], r["digest_received"], "{fault}");
        }
        assert_ne!(
            runs[0]["digest_received"], runs[1]["digest_received"],
            "{fault}"
        );
        assert_eq!(runs[1]["processes"][0]["reports"]["faulted"], 1, "{fault}");
        let c = &runs[1]["processes"][1];
        assert!(
            c["reports"]["mismatches"].as_u64().unwrap() > 0,
            "{fault}: the consumer saw it too"
        );
    }
}
