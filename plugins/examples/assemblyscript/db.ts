// The database server of the web-db example in AssemblyScript (the Rust one is
// examples/rust/db): answers every 8-byte key on the server port `queries` with row
// `key mod rows` of the table (`rowLen`, `fill`: content derived from the key), written
// straight into the asking client's answer window, until every client is done. Config:
// rows, min_row, max_row, table_seed, as the web workers'. Reports answered, clients_gone.

import { CLOSED, Server, UNKNOWN_PORT, configU64, failed, fill, report, rowLen } from "wasm-ipc-sdk";
export { cabi_realloc } from "wasm-ipc-sdk";

/** `run` returns this for a query that is not an 8-byte key. */
const BAD_QUERY: i32 = 4;

export function run(): i32 {
  let rows = configU64("rows", 1024);
  if (rows == 0) rows = 1;
  const min = configU64("min_row", 100);
  const max = configU64("max_row", 65536);
  const seed = configU64("table_seed", 1);
  const queries = Server.open("queries");
  if (queries == null) return failed("db", UNKNOWN_PORT);
  let answered: i64 = 0;
  let gone: i64 = 0;
  for (;;) {
    const got = queries.receive();
    if (got == CLOSED) break;
    if (got < 0) return failed("db", got);
    if (queries.len != 8) return BAD_QUERY;
    const key = load<u64>(queries.ptr) % rows;
    const client = queries.client;
    queries.release();
    const len = <u32>rowLen(key, min, max, seed);
    const loaned = queries.replyLoan(client, len);
    if (loaned == CLOSED) {
      gone++; // that client failed mid-call: serve the others
      continue;
    }
    if (loaned < 0) return failed("db", loaned);
    fill(queries.replyPtr, len, key, seed);
    if (queries.reply() == 0) answered++;
    else gone++;
  }
  report("answered", answered);
  report("clients_gone", gone);
  return 0;
}
