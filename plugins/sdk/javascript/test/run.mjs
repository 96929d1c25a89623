// The JavaScript SDK's pure parts, in Node: node --import ./test/register.mjs test/run.mjs
// (scripts/test.sh). The pattern and the web-db table must match every other SDK's.
import assert from "node:assert/strict";
import { checksum, indexOf, message, rowLen, word } from "../wasm_ipc.js";

// The lengths every SDK pins (Rust's pattern::table tests).
assert.deepEqual([0, 1, 2, 3, 4, 5].map((k) => rowLen(k, 100, 65536, 3)),
  [2997, 64109, 10017, 52126, 31900, 14273]);
assert.equal(rowLen(9, 4096, 4096, 1), 4096);
// Message 5 of 20 bytes with seed 3: word 0 is the index, then the words of the pattern.
const m = message(5, 20, 3);
assert.equal(m.length, 20);
assert.equal(indexOf(m), 5n);
const w1 = new DataView(m.buffer, m.byteOffset).getBigUint64(8, true);
assert.equal(w1, word(5n, 1n, 3n));
assert.deepEqual([...message(258, 3)], [2, 1, 0]);
// The checksum: the wrapping sum of the words, the last one zero-padded.
assert.equal(checksum(new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 2])), 3n);
console.log("javascript sdk: ok");
