//! Every numeric key at the edges of its range, and the products that matter: each value
//! either runs (a small count, every backend ok, digests equal, exact counts) or is refused
//! before any worker starts — by `check` and by `run` alike — with `file:line: key`, the
//! computed size and the keys to change. Never a trap, a hang or a wrong figure.

use crate::util::{self, assert_no_leftovers, heavy, report, wasm_ipc};

/// What a row expects on one backend.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Runs: `count` messages per consumer arrive, the run is ok.
    Runs,
    /// Refused with an error at the line of `key`, containing every one of `says`.
    Refused {
        key: &'static str,
        says: &'static [&'static str],
    },
}

use Expect::{Refused, Runs};

struct Row {
    what: &'static str,
    /// The channel's keys (after `from`/`to`) and an optional `[run]` body.
    channel: &'static str,
    run: &'static str,
    /// Producers feeding the one consumer (fan-in), 1 for a plain pipe; 0 for a relay chain
    /// producer → relay → consumer with `channel` on both links.
    producers: usize,
    shm: Expect,
    msg: Expect,
}

const ROWS: &[Row] = &[
    Row {
        what: "smallest slot",
        channel: "slot_size = 1",
        run: "",
        producers: 1,
        shm: Runs,
        msg: Runs,
    },
    Row {
        what: "largest slot, one slot in flight",
        channel: "slot_size = \"256MiB\"\ncapacity = 1",
        run: "",
        producers: 1,
        shm: Runs,
        msg: Runs,
    },
    Row {
        what: "slot one byte over the maximum",
        channel: "slot_size = 268435457",
        run: "",
        producers: 1,
        shm: Refused {
            key: "channel[0].slot_size",
            says: &["256 MiB"],
        },
        msg: Refused {
            key: "channel[0].slot_size",
            says: &["256 MiB"],
        },
    },
    Row {
        what: "largest capacity",
        channel: "slot_size = 64\ncapacity = 65536",
        run: "",
        producers: 1,
        shm: Runs,
        msg: Refused {
            key: "channel[0].slot_size",
            says: &["net.core.wmem_max", "sysctl -w net.core.wmem_max=N"],
        },
    },
    Row {
        what: "capacity one over the maximum",
        channel: "capacity = 65537",
        run: "",
        producers: 1,
        shm: Refused {
            key: "channel[0].capacity",
            says: &["65536"],
        },
        msg: Refused {
            key: "channel[0].capacity",
            says: &["65536"],
        },
    },
    Row {
        what: "largest slot × largest capacity: a 16 TiB ring",
        channel: "slot_size = \"256MiB\"\ncapacity = 65536",
        run: "",
        producers: 1,
        shm: Refused {
            key: "channel[0].slot_size",
            says: &[
                "16.0 TiB (17592190238720 B)",
                "65536 slots × 268435520 B",
                "lower channel[0].slot_size or channel[0].capacity",
            ],
        },
        msg: Refused {
            key: "channel[0].slot_size",
            says: &["net.core.wmem_max", "sysctl -w net.core.wmem_max=N"],
        },
    },
    Row {
        what: "16 MiB × 200: a 3.1 GiB ring",
        channel: "slot_size = \"16MiB\"\ncapacity = 200",
        run: "",
        producers: 1,
        shm: Refused {
            key: "channel[0].slot_size",
            says: &["3.1 GiB (3355508736 B)", "32-bit", "2130706432 B"],
        },
        msg: Refused {
            key: "channel[0].slot_size",
            says: &["net.core.wmem_max", "sysctl -w net.core.wmem_max=N"],
        },
    },
    Row {
        what: "fan-in: four 512 MiB rings in one consumer's window",
        channel: "slot_size = \"64MiB\"\ncapacity = 8",
        run: "",
        producers: 4,
        shm: Refused {
            key: "channel[0].slot_size",
            says: &[
                "a consumer's window",
                "all 4 producers",
                "the producers in `from`",
            ],
        },
        msg: Refused {
            key: "channel[0].slot_size",
            says: &["net.core.wmem_max", "sysctl -w net.core.wmem_max=N"],
        },
    },
    Row {
        what: "a relay whose two windows fit alone but not together",
        channel: "slot_size = \"64MiB\"\ncapacity = 16",
        run: "",
        producers: 0,
        shm: Refused {
            key: "channel[0].slot_size",
            says: &["plugin `relay`'s windows would need", "together"],
        },
        msg: Refused {
            key: "channel[0].slot_size",
            says: &["net.core.wmem_max", "sysctl -w net.core.wmem_max=N"],
        },
    },
    Row {
        what: "largest repeat",
        channel: "slot_size = 64",
        run: "repeat = 1000",
        producers: 1,
        shm: Runs,
        msg: Runs,
    },
    Row {
        what: "repeat one over the maximum",
        channel: "",
        run: "repeat = 1001",
        producers: 1,
        shm: Refused {
            key: "run.repeat",
            says: &["1000"],
        },
        msg: Refused {
            key: "run.repeat",
            says: &["1000"],
        },
    },
    Row {
        what: "longest timeout",
        channel: "slot_size = 64",
        run: "timeout = \"168h\"",
        producers: 1,
        shm: Runs,
        msg: Runs,
    },
    Row {
        what: "timeout one hour over the maximum",
        channel: "",
        run: "timeout = \"169h\"",
        producers: 1,
        shm: Refused {
            key: "run.timeout",
            says: &["longer than the largest accepted, 168h"],
        },
        msg: Refused {
            key: "run.timeout",
            says: &["longer than the largest accepted, 168h"],
        },
    },
    Row {
        what: "timeout whose nanoseconds overflow 64 bits",
        channel: "",
        run: "timeout = \"9999999999h\"",
        producers: 1,
        shm: Refused {
            key: "run.timeout",
            says: &["longer than the largest accepted"],
        },
        msg: Refused {
            key: "run.timeout",
            says: &["longer than the largest accepted"],
        },
    },
];

const COUNT: u64 = 3;

/// The scenario text for a row, and the 1-based line of each `key = ` in it.
fn scenario_text(row: &Row) -> String {
    let mut text = String::from("name = \"edges\"\n");
    let producer = |name: &str| {
        format!(
            "[[plugin]]\nname = \"{name}\"\nwasm = \"{{wasm:producer}}\"\n\
             config = {{ count = {COUNT}, size = 1 }}\n"
        )
    };
    // With several producers the consumer sees their sequences interleaved.
    let consumer = format!(
        "[[plugin]]\nname = \"c\"\nwasm = \"{{wasm:consumer}}\"\nconfig = {{ ordered = {} }}\n",
        row.producers <= 1
    );
    let channel = |from: &str, to: &str| {
        format!(
            "[[channel]]\nfrom = {from}\nto = \"{to}\"\n{}\n",
            row.channel
        )
    };
    if row.producers == 0 {
        text += &producer("p");
        text += "[[plugin]]\nname = \"relay\"\nwasm = \"{wasm:relay}\"\n";
        text += &consumer;
        text += &channel("\"p.out\"", "relay.in");
        text += &channel("\"relay.out\"", "c.in");
    } else {
        let names: Vec<String> = (0..row.producers).map(|i| format!("p{i}")).collect();
        for n in &names {
            text += &producer(n);
        }
        text += &consumer;
        let from: Vec<String> = names.iter().map(|n| format!("\"{n}.out\"")).collect();
        text += &channel(&format!("[{}]", from.join(", ")), "c.in");
    }
    text += &format!("[run]\nbackends = [\"shm\", \"msg\"]\n{}\n", row.run);
    text
}

/// The line of the first `name = ` under the table the key path names.
fn line_of(text: &str, key: &str) -> usize {
    let leaf = key.rsplit('.').next().unwrap();
    let table = if key.starts_with("run.") {
        "[run]"
    } else {
        "[[channel]]"
    };
    let start = text.find(table).unwrap();
    let at = start + text[start..].find(&format!("{leaf} = ")).unwrap();
    text[..at].matches('\n').count() + 1
}

#[test]
fn every_size_the_scenario_allows_runs_or_is_refused_with_the_numbers() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    for (i, row) in ROWS.iter().enumerate() {
        let text = scenario_text(row);
        let file = format!("edge{i}.toml");
        let path = util::scenario(dir.path(), &file, &text);
        let path_s = path.to_str().unwrap();
        for (backend, expect) in [("shm", row.shm), ("msg", row.msg)] {
            let what = format!("row {i} ({}) on {backend}", row.what);
            match expect {
                Refused { key, says } => {
                    let at = format!("{file}:{}: {key}: ", line_of(&text, key));
                    for args in [
                        vec!["check", "--backend", backend, path_s],
                        vec!["run", "--backend", backend, "--json", path_s],
                    ] {
                        let out = wasm_ipc(&args);
                        let err = util::stderr(&out);
                        assert_eq!(out.status.code(), Some(2), "{what}, {args:?}: {err}");
                        assert!(out.stdout.is_empty(), "{what}: no report, no run");
                        assert!(err.contains(&at), "{what}: expected `{at}` in: {err}");
                        for s in says {
                            assert!(err.contains(s), "{what}: expected `{s}` in: {err}");
                        }
                    }
                }
                Runs => {
                    let id = util::run_id("edge");
                    let out = wasm_ipc(&[
                        "run",
                        "--backend",
                        backend,
                        "--json",
                        "--run-id",
                        &id,
                        path_s,
                    ]);
                    assert!(out.status.success(), "{what}: {}", util::stderr(&out));
                    let rep = report(&out);
                    let runs = rep["runs"].as_array().unwrap();
                    assert!(!runs.is_empty(), "{what}");
                    for run in runs {
                        assert_eq!(run["ok"], true, "{what}: {}", run["error"]);
                        assert_eq!(run["digest_sent"], run["digest_received"], "{what}");
                        let producers = row.producers.max(1) as u64;
                        let hops = if row.producers == 0 { 2 } else { 1 };
                        assert_eq!(
                            run["messages"].as_u64(),
                            Some(COUNT * producers * hops),
                            "{what}"
                        );
                    }
                    assert!(rep["digests_agree"].as_bool().unwrap(), "{what}");
                    assert_no_leftovers(&id);
                }
            }
        }
    }
}

/// `instances` at its edges: 256 copies of a producer fan in to one consumer on every backend
/// (257 processes); 257 copies are refused before any worker starts.
#[test]
fn the_most_instances_run_and_one_more_is_refused() {
    let _g = heavy();
    let dir = tempfile::tempdir().unwrap();
    let text = |n: u32| {
        format!(
            "name = \"many\"\n[[plugin]]\nname = \"p\"\nwasm = \"{{wasm:producer}}\"\n\
             instances = {n}\nconfig = {{ count = 2, size = 8 }}\n\
             [[plugin]]\nname = \"c\"\nwasm = \"{{wasm:consumer}}\"\n\
             config = {{ ordered = false, expect = {} }}\n\
             [[channel]]\nfrom = \"p[*].out\"\nto = \"c.in\"\nslot_size = 64\ncapacity = 2\n\
             [run]\ntimeout = \"300s\"\n",
            2 * n
        )
    };
    let ok = util::scenario(dir.path(), "many.toml", &text(256));
    let id = util::run_id("many");
    let out = wasm_ipc(&[
        "compare",
        "--quick",
        "--json",
        "--run-id",
        &id,
        ok.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let rep = report(&out);
    for run in rep["runs"].as_array().unwrap() {
        assert_eq!(run["ok"], true, "{}: {}", run["backend"], run["error"]);
        assert_eq!(run["messages"], 512);
        assert_eq!(run["processes"].as_array().unwrap().len(), 257);
    }
    assert_no_leftovers(&id);
    let over = util::scenario(dir.path(), "over.toml", &text(257));
    for args in [
        vec!["check", over.to_str().unwrap()],
        vec!["run", "--json", over.to_str().unwrap()],
    ] {
        let out = wasm_ipc(&args);
        let err = util::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("over.toml:5: plugin[0].instances: "), "{err}");
        assert!(err.contains("256"), "{err}");
    }
}
