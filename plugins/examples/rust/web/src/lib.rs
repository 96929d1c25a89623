//! Run: `wasm-ipc compare scenarios/web-db.toml` (build: `plugins/build.sh`).
//!
//! A web worker of the textbook's example: it renders `pages` pages, and every page needs
//! `queries` rows from the database server behind its client port `db`. It checks every row
//! it gets against the table's definition (`pattern::table`: content derived from the key),
//! so a wrong, cut or misrouted answer fails the run with a message naming the key and the
//! port. Which rows a page needs depends on the instance (`wasm-ipc.instance`), so several web
//! workers ask for different rows.
//!
//! Config: `pages` (1000), `queries` (4 per page), `rows` (1024), `min_row` (100), `max_row`
//! (65536), `table_seed` (1), `seed` (0) — the table keys must match the db's. Reports
//! `count.pages` (the report shows pages/s), `queries` and `row_bytes`.

use wasm_ipc_sdk::pattern::{self, table};
use wasm_ipc_sdk::{Client, Error, Level, config_or, config_str_or, log, report};

/// `run` returns this when an answer is not the row that was asked for.
const WRONG_ANSWER: Error = Error::Code(3);

fn web() -> Result<(), Error> {
    let pages: u64 = config_or("pages", 1000);
    let queries: u64 = config_or("queries", 4);
    let rows: u64 = config_or::<u64>("rows", 1024).max(1);
    let min: usize = config_or("min_row", 100);
    let max: usize = config_or("max_row", 65536);
    let table_seed: u64 = config_or("table_seed", 1);
    let seed: u64 = config_or("seed", 0);
    let instance: u64 = config_or("wasm-ipc.instance", 0);
    let me = config_str_or("wasm-ipc.plugin", "web");
    let mut db = Client::open("db")?;
    let mut row_bytes = 0u64;
    for page in 0..pages {
        for q in 0..queries {
            let key = pattern::word(instance.wrapping_mul(pages) + page, q + 1, seed) % rows;
            let answer = db.call_with(&key.to_le_bytes())?;
            if !table::check_row(&answer, key, min, max, table_seed) {
                log(
                    Level::Error,
                    &format!(
                        "{me}: the answer on port `db` to query {q} of page {page} is wrong: \
                         asked for row {key} ({} B), got {} B starting with row number {}",
                        table::row_len(key, min, max, table_seed),
                        answer.len(),
                        pattern::expected_index(&answer)
                    ),
                );
                return Err(WRONG_ANSWER);
            }
            row_bytes += answer.len() as u64;
        }
    }
    report("count.pages", pages as i64);
    report("queries", (pages * queries) as i64);
    report("row_bytes", row_bytes as i64);
    Ok(())
}

wasm_ipc_sdk::main!(web);
