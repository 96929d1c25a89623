// A web worker of the textbook's example, in JavaScript: it renders `pages` pages, and every
// page needs `queries` rows from the database server behind its client port `db`; every row is
// checked against the table's definition, so a wrong, cut or misrouted answer fails the run
// (code 3). Config: `pages` (1000), `queries` (4), `rows` (1024), `min_row` (100), `max_row`
// (65536), `table_seed` (1), `seed` (0), as the Rust web worker's (the same keys, so any
// language's db serves it). Reports `count.pages`, `queries` and `row_bytes`.
// Build: sh plugins/examples/javascript/build.sh.
import {
  Client, ERROR, config, configInt, equal, log, main, message, report, rowLen, word,
} from "./wasm_ipc.js";

export const run = main(() => {
  const pages = configInt("pages", 1000), perPage = configInt("queries", 4);
  const rows = Math.max(configInt("rows", 1024), 1);
  const lo = configInt("min_row", 100), hi = configInt("max_row", 65536);
  const tableSeed = configInt("table_seed", 1), seed = configInt("seed", 0);
  const instance = configInt("wasm-ipc.instance", 0);
  const me = config("wasm-ipc.plugin", "web");
  const db = new Client("db");
  let rowBytes = 0;
  for (let page = 0; page < pages; page++) {
    for (let q = 0; q < perPage; q++) {
      const key = Number(word(BigInt(instance * pages + page), BigInt(q + 1), BigInt(seed)) % BigInt(rows));
      const request = new Uint8Array(8);
      new DataView(request.buffer).setBigUint64(0, BigInt(key), true);
      const answer = db.call(request);
      if (!equal(answer, message(key, rowLen(key, lo, hi, tableSeed), tableSeed))) {
        log(ERROR, `${me}: the answer on port \`db\` to query ${q} of page ${page} is wrong: asked for row ${key}, got ${answer.length} B`);
        return 3;
      }
      rowBytes += answer.length;
    }
  }
  report("count.pages", pages);
  report("queries", pages * perPage);
  report("row_bytes", rowBytes);
  return 0;
});
