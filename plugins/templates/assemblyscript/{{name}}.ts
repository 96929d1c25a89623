// {{name}}: a wasm-ipc plugin in AssemblyScript. Build: sh build.sh (→ {{name}}.wasm);
// run: wasm-ipc compare scenario.toml.
//
// The SDK ({{root}}/plugins/sdk/assemblyscript/index.ts, imported as "wasm-ipc-sdk") wraps
// the host calls: ports, config, report, log. Calls that can fail return the ABI's negative
// codes (CLOSED, PEER_FAILED, ...); `failed` logs one and turns it into `run`'s exit code.
//
// What this plugin does depends on the ports the scenario gives it:
// - port "out": publishes `count` (100) pattern messages of `size` (64) bytes;
// - port "in": receives until the channel closes, checks each message against the pattern,
//   reports `received` and `mismatches`, and returns 2 on a mismatch.
// Both take `seed` (0), the pattern's seed.

import {
  CLOSED, Input, Output, check, configU32, configU64, failed, fill, report,
} from "wasm-ipc-sdk";
// The host asks this allocator for each port's window: every plugin re-exports it.
export { cabi_realloc } from "wasm-ipc-sdk";

/** `run` returns this when a message does not match the pattern. */
const MISMATCH: i32 = 2;

/** The plugin's main loop, called once by the host: 0 is success. */
export function run(): i32 {
  const seed = configU64("seed", 0);
  // `open` returns null when the scenario gives this plugin no such port.
  const out = Output.open("out");
  if (out != null) {
    const code = produce(out, seed);
    if (code != 0) return code;
  }
  const input = Input.open("in");
  if (input != null) return consume(input, seed);
  return 0;
}

function produce(out: Output, seed: u64): i32 {
  const count = configU64("count", 100);
  const size = configU32("size", 64);
  let sent: u64 = 0;
  for (let i: u64 = 0; i < count; i++) {
    // Loan `size` bytes in the port's window (blocks while the channel is full), write them
    // at out.ptr, publish: no copy on the way to the consumer.
    let code = out.loan(size);
    if (code == 0) {
      fill(out.ptr, size, i, seed);
      code = out.publish();
    }
    if (code == CLOSED) break; // every consumer is gone: stop, without error
    if (code < 0) return failed("{{name}} produce", code);
    sent++;
  }
  report("sent", <i64>sent);
  return 0;
}

function consume(input: Input, seed: u64): i32 {
  let received: u64 = 0;
  let mismatches: u64 = 0;
  let code: i32;
  // receive() returns 0 with the message at input.ptr (input.len bytes), CLOSED at the end.
  while ((code = input.receive()) == 0) {
    // The message is READ-ONLY (on shm it is mapped read-only): never write there.
    if (!check(input.ptr, input.len, received, seed)) mismatches++;
    received++;
    input.release(); // done with it: the producer may reuse the slot
  }
  report("received", <i64>received);
  report("mismatches", <i64>mismatches);
  if (code != CLOSED) return failed("{{name}} consume", code);
  return mismatches > 0 ? MISMATCH : 0;
}
