//! The table, the CSV and the JSON of the fixtures, byte for byte, against the texts in
//! `tests/golden/` (made by the code before the report was split into modules and before the
//! table and the CSV came from `COLUMNS`). Scripts parse these texts: a change here is a change
//! users see. `UPDATE_GOLDEN=1 cargo test -p wasm-ipc-report --test golden` rewrites them.

mod fixtures;

use std::path::PathBuf;

#[test]
fn table_csv_and_json_are_unchanged() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut differ = Vec::new();
    for (name, report) in fixtures::all() {
        let texts = [
            ("table", report.table()),
            ("csv", report.csv()),
            (
                "json",
                serde_json::to_string_pretty(&report).unwrap() + "\n",
            ),
        ];
        for (ext, text) in texts {
            let path = dir.join(format!("{name}.{ext}"));
            if update {
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                differ.push(format!("{}:\n{text}", path.display()));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "differ from the golden texts:\n{}",
        differ.join("\n")
    );
}
