// The web worker of the web-db example in AssemblyScript (the Rust one is
// examples/rust/web): renders `pages` pages of `queries` rows each, every row a call to the
// server behind the client port `db`, and checks every row it gets (content derived from the
// key). Config as the Rust web: pages, queries, rows, min_row, max_row, table_seed, seed.
// Reports count.pages, queries, row_bytes. Returns 3 on a wrong answer.

import {
  Client, Level, UNKNOWN_PORT, checkRow, configU64, failed, log, patternWord, report, rowLen,
} from "wasm-ipc-sdk";
export { cabi_realloc } from "wasm-ipc-sdk";

/** `run` returns this when an answer is not the row that was asked for. */
const WRONG_ANSWER: i32 = 3;

export function run(): i32 {
  const pages = configU64("pages", 1000);
  const queries = configU64("queries", 4);
  let rows = configU64("rows", 1024);
  if (rows == 0) rows = 1;
  const min = configU64("min_row", 100);
  const max = configU64("max_row", 65536);
  const tableSeed = configU64("table_seed", 1);
  const seed = configU64("seed", 0);
  const instance = configU64("wasm-ipc.instance", 0);
  const db = Client.open("db");
  if (db == null) return failed("web", UNKNOWN_PORT);
  let rowBytes: u64 = 0;
  for (let page: u64 = 0; page < pages; page++) {
    for (let q: u64 = 0; q < queries; q++) {
      const key = patternWord(instance * pages + page, q + 1, seed) % rows;
      let err = db.request(8);
      if (err < 0) return failed("web", err);
      store<u64>(db.ptr, key);
      err = db.call();
      if (err < 0) return failed("web", err);
      if (!checkRow(db.answerPtr, db.answerLen, key, min, max, tableSeed)) {
        log(
          Level.Error,
          `web: the answer on port \`db\` to query ${q} of page ${page} is wrong: asked for row ${key} (${rowLen(key, min, max, tableSeed)} B), got ${db.answerLen} B`,
        );
        return WRONG_ANSWER;
      }
      rowBytes += db.answerLen;
      db.release();
    }
  }
  report("count.pages", <i64>pages);
  report("queries", <i64>(pages * queries));
  report("row_bytes", <i64>rowBytes);
  return 0;
}
