// Receives on port "in" until the channel closes and checks each message against the shared
// pattern, by the index in its own word 0. Config: `check` ("full": content and order, the
// default; "stamp": order only, every byte still summed; "none": nothing read), `seed` (0),
// `ordered` (true; false for fan-in), `strict` (true: the first mismatch fails the run with
// code 2), `expect` (the number of messages that must arrive, else code 3). Reports
// `received`, `bytes`, `mismatches` and `checksum` (not with check = "none").
// Build: sh plugins/examples/javascript/build.sh.
import {
  ERROR, Input, checksum, config, configBool, configInt, equal, indexOf, log, main, message,
  report,
} from "./wasm_ipc.js";

export const run = main(() => {
  const check = config("check", "full");
  if (!["full", "stamp", "none"].includes(check)) {
    throw new Error(`config \`check\` = ${JSON.stringify(check)}: use full, stamp or none`);
  }
  const seed = configInt("seed", 0);
  const ordered = configBool("ordered", true);
  const strict = configBool("strict", true);
  const expect = config("expect");
  const input = new Input("in");
  let received = 0, bytes = 0, mismatches = 0, total = 0n, code = 0;
  let next = 0n;
  for (;;) {
    const msg = input.receive();
    if (msg === null) break;
    received++;
    bytes += msg.length;
    if (check === "none") continue;
    const index = indexOf(msg);
    const width = (1n << BigInt(8 * Math.min(msg.length, 8))) - 1n;
    let problem = null;
    if (ordered && index !== (next & width)) problem = `carries index ${index}, expected ${next}`;
    next = index === (next & width) ? next + 1n : index + 1n;
    if (check === "full" && problem === null && !equal(msg, message(Number(index), msg.length, seed))) {
      problem = `does not match the pattern of index ${index}`;
    }
    total = (total + checksum(msg)) & ((1n << 64n) - 1n);
    if (problem !== null) {
      mismatches++;
      if (mismatches <= 5) log(ERROR, `message ${received - 1} (${msg.length} bytes) ${problem}`);
      if (strict) { code = 2; break; }
    }
  }
  report("received", received);
  report("bytes", bytes);
  report("mismatches", mismatches);
  if (check !== "none") report("checksum", total);
  if (code === 0 && expect !== undefined && Number(expect) !== received) {
    log(ERROR, `expected ${expect} messages, received ${received}`);
    code = 3;
  }
  return code;
});
