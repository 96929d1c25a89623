//! Every JSON field has its doc line in `FIELDS`, and every column of the table and the CSV its
//! doc line in `COLUMNS` and its JSON fields in `FIELDS`: a field added to `RunReport` (or any
//! type in the JSON) without a `FIELDS` entry fails here, and so does an entry left behind.

mod fixtures;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use wasm_ipc_report::{COLUMNS, CsvColumn, FIELDS, TableRow, field, field_reference};

/// The documented path of `key` under `parent`: `parent.key`, or `parent.<name>` when `FIELDS`
/// says `parent`'s keys are data.
fn child(parent: &str, key: &str) -> String {
    let prefix = if parent.is_empty() {
        String::new()
    } else {
        format!("{parent}.")
    };
    let placeholder = FIELDS.iter().find(|f| {
        f.path
            .strip_prefix(&prefix)
            .is_some_and(|rest| rest.starts_with('<') && !rest.contains('.'))
    });
    match placeholder {
        Some(f) => f.path.to_string(),
        None => format!("{prefix}{key}"),
    }
}

/// Every path in `v` below `path`, with where each was first seen.
fn paths(v: &Value, path: &str, seen: &mut BTreeMap<String, String>, fixture: &str) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let p = child(path, k);
                seen.entry(p.clone()).or_insert_with(|| fixture.to_string());
                paths(v, &p, seen, fixture);
            }
        }
        Value::Array(items) => {
            for v in items {
                paths(v, &format!("{path}[]"), seen, fixture);
            }
        }
        _ => {}
    }
}

#[test]
fn every_json_field_has_its_doc_line_and_every_doc_line_a_field() {
    // Every fixture together sets every optional field and fills every map and array.
    let mut seen = BTreeMap::new();
    for (name, report) in fixtures::all() {
        let json = serde_json::to_value(&report).unwrap();
        paths(&json, "", &mut seen, name);
    }
    let documented: BTreeSet<&str> = FIELDS.iter().map(|f| f.path).collect();
    let undocumented: Vec<String> = seen
        .iter()
        .filter(|(p, _)| !documented.contains(p.as_str()))
        .map(|(p, fixture)| format!("{p} (in fixture `{fixture}`)"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "JSON fields without a line in FIELDS (host/report/src/fields.rs): {undocumented:?}"
    );
    let stale: Vec<&str> = documented
        .iter()
        .filter(|p| !seen.contains_key(**p))
        .copied()
        .collect();
    assert!(
        stale.is_empty(),
        "FIELDS documents fields no fixture's JSON has (gone, renamed, or the fixtures never \
         set them): {stale:?}"
    );
    assert_eq!(documented.len(), FIELDS.len(), "a path twice in FIELDS");
    for f in FIELDS {
        assert!(
            !f.doc.trim().is_empty() && !f.doc.contains(['\n', '|']),
            "{}: its doc must be one line, without `|`",
            f.path
        );
    }
}

#[test]
fn every_column_has_its_doc_line_and_documented_fields() {
    let (mut rows, mut csv) = (BTreeSet::new(), BTreeSet::new());
    for c in COLUMNS {
        let name = match (c.table, c.csv) {
            (Some(TableRow::One { name, .. }), _) | (_, Some(CsvColumn::One { name, .. })) => {
                name.to_string()
            }
            (Some(TableRow::PerRate), _) => "<what>/s".into(),
            (Some(TableRow::PerSyscall), _) => "<name>/message".into(),
            (_, Some(CsvColumn::PerAxis)) => "<axis>".into(),
            (None, None) => panic!("a column in neither the table nor the CSV: {c:?}"),
        };
        assert!(
            !c.doc.trim().is_empty() && !c.doc.contains(['\n', '|']),
            "column {name}: its doc must be one line, without `|`"
        );
        assert!(!c.json.is_empty(), "column {name} reads no JSON field");
        for j in c.json {
            assert!(
                field(&format!("runs[].{j}")).is_some(),
                "column {name} reads `{j}`, which FIELDS lacks as `runs[].{j}`"
            );
        }
        if let Some(TableRow::One { name, .. }) = c.table {
            assert!(rows.insert(name), "two table rows named {name}");
        }
        if let Some(CsvColumn::One { name, .. }) = c.csv {
            assert!(csv.insert(name), "two CSV columns named {name}");
        }
    }
}

#[test]
fn the_reference_lists_every_column_and_field() {
    let text = field_reference();
    for f in FIELDS {
        assert!(text.contains(&format!("| `{}` |", f.path)), "{}", f.path);
    }
    for c in COLUMNS {
        assert!(text.contains(c.doc), "{}", c.doc);
    }
    assert!(text.contains("| `runs[].latency_ns.p50` | ns | `hand-off p50` | `handoff_p50_ns` |"));
    assert!(text.contains("| `runs[].round_trip_ns.avg` | ns | `round trip avg` (when some"));
}
