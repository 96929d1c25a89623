//! Run: `wasm-ipc compare scenarios/web-db.toml` (build: `plugins/build.sh`).
//!
//! The database server of the textbook's example: it builds a table of `rows` rows in its own
//! memory (rows of `min_row..=max_row` bytes, content derived from the key: `pattern::table`),
//! then answers every query on its server port `queries` — an 8-byte little-endian key — with
//! that row, written straight into the asking client's answer window, until every client is
//! done. A client that fails mid-call is skipped; the others are served.
//!
//! Config: `rows` (1024), `min_row` (100), `max_row` (65536), `table_seed` (1). Reports
//! `answered`, `clients_gone` (answers whose client had gone) and `table_bytes`.

use wasm_ipc_sdk::pattern::table;
use wasm_ipc_sdk::{Error, Server, config_or, report};

/// `run` returns this for a query that is not an 8-byte key.
const BAD_QUERY: Error = Error::Code(4);

fn db() -> Result<(), Error> {
    let rows: u64 = config_or::<u64>("rows", 1024).max(1);
    let min: usize = config_or("min_row", 100);
    let max: usize = config_or("max_row", 65536);
    let seed: u64 = config_or("table_seed", 1);
    let table: Vec<Vec<u8>> = (0..rows)
        .map(|key| {
            let mut row = vec![0; table::row_len(key, min, max, seed)];
            table::fill_row(&mut row, key, seed);
            row
        })
        .collect();
    report(
        "table_bytes",
        table.iter().map(|r| r.len() as i64).sum::<i64>(),
    );
    let mut queries = Server::open("queries")?;
    let (mut answered, mut gone) = (0i64, 0i64);
    while let Some(request) = queries.receive()? {
        let key = match <[u8; 8]>::try_from(&request[..]) {
            Ok(k) => u64::from_le_bytes(k) % rows,
            Err(_) => return Err(BAD_QUERY),
        };
        let row = &table[key as usize];
        match request.reply(row.len()) {
            Ok(mut reply) => {
                reply.copy_from_slice(row);
                match reply.send() {
                    Ok(()) => answered += 1,
                    Err(Error::Closed) => gone += 1,
                    Err(e) => return Err(e),
                }
            }
            // That client is gone (it failed mid-call): serve the others.
            Err(Error::Closed) => gone += 1,
            Err(e) => return Err(e),
        }
    }
    report("answered", answered);
    report("clients_gone", gone);
    Ok(())
}

wasm_ipc_sdk::main!(db);
