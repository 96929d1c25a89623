// Runs the AssemblyScript SDK's native checks: `node test/run.mjs <compiled.wasm>`.
import { readFileSync } from "node:fs";

const path = process.argv[2];
const { instance } = await WebAssembly.instantiate(readFileSync(path), {});
const bad = instance.exports.failures();
if (bad !== 0) {
  console.error(`assemblyscript sdk: ${bad} exit-code entries disagree with the shared table`);
  process.exit(1);
}
console.log("assemblyscript sdk: exit-code table ok");
