// The database server of the textbook's example, in JavaScript: it builds a table of `rows`
// rows (rows of `min_row..=max_row` bytes, content derived from the key: the web-db table every
// SDK shares), then answers every query on its server port `queries` — an 8-byte little-endian
// key — with that row, until every client is done. A client that fails mid-call is skipped.
// Config: `rows` (1024), `min_row` (100), `max_row` (65536), `table_seed` (1). Reports
// `answered`, `clients_gone` and `table_bytes`. Build: sh plugins/examples/javascript/build.sh.
import { Server, configInt, indexOf, main, message, report, rowLen } from "./wasm_ipc.js";

export const run = main(() => {
  const rows = Math.max(configInt("rows", 1024), 1);
  const lo = configInt("min_row", 100), hi = configInt("max_row", 65536);
  const seed = configInt("table_seed", 1);
  const table = [];
  let tableBytes = 0;
  for (let key = 0; key < rows; key++) {
    table.push(message(key, rowLen(key, lo, hi, seed), seed));
    tableBytes += table[key].length;
  }
  report("table_bytes", tableBytes);
  const queries = new Server("queries");
  let answered = 0, gone = 0;
  for (let got; (got = queries.receive()) !== null; ) {
    const [client, request] = got;
    if (request.length !== 8) return 4;
    if (queries.reply(client, table[Number(indexOf(request) % BigInt(rows))])) answered++;
    else gone++; // that client failed mid-call: serve the others
  }
  report("answered", answered);
  report("clients_gone", gone);
  return 0;
});
