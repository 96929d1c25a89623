// Run: wasm-ipc run scenarios/producer-consumer.toml with this plugin's .wasm as the consumer
// (build: plugins/examples/assemblyscript/build.sh → plugins/target/lang/assemblyscript/).
//
// Receives on port "in" until the channel closes and checks each message against the pattern
// (plugins/sdk/rust/src/pattern.rs) of the index in its own word 0, and that the indices
// arrive in order 0, 1, 2, ... Config: `seed` (0) as the producer's; `expect` (absent): the
// number of messages that must arrive. The message is only read, never written (on shm it is
// mapped read-only).
//
// Reports `received`, `bytes`, `mismatches` and `checksum` (wrapping sum of every message's
// little-endian u64 words, last partial word zero-padded), also when it fails. Returns 2 when
// any message mismatched, 3 when `expect` is set and a different number arrived.

import {
  CLOSED, Input, Level, Scan, UNKNOWN_PORT, configU64, expectedIndex, failed, hasConfig, log,
  report, scan,
} from "wasm-ipc-sdk";
export { cabi_realloc } from "wasm-ipc-sdk";

/** `run` returns this when a message does not match. */
const MISMATCH: i32 = 2;
/** `run` returns this when `expect` is set and a different number of messages arrived. */
const WRONG_COUNT: i32 = 3;
/** Mismatches logged in detail; later ones are only counted. */
const LOGGED_MISMATCHES: u64 = 5;

export function run(): i32 {
  const seed = configU64("seed", 0);
  const expecting = hasConfig("expect");
  const expect = configU64("expect", 0);

  const input = Input.open("in");
  if (input == null) return failed("consume", UNKNOWN_PORT);

  let received: u64 = 0;
  let bytes: u64 = 0;
  let mismatches: u64 = 0;
  let sum: u64 = 0;
  // The index the next message should carry.
  let next: u64 = 0;
  const result = new Scan();
  let code: i32;
  while ((code = input.receive()) == 0) {
    const ptr = input.ptr;
    const len = <usize>input.len;
    const arrival = received;
    received++;
    bytes += <u64>len;

    const index = expectedIndex(ptr, len);
    // A message shorter than 8 bytes carries only the low bytes of its index.
    const width = len >= 8 ? u64.MAX_VALUE : (<u64>1 << (<u64>len * 8)) - 1;
    let problem: string | null = null;
    if (index != (next & width)) {
      problem = "carries index " + index.toString() + ", expected " + next.toString();
    }
    next = index == (next & width) ? next + 1 : index + 1;
    scan(ptr, len, index, seed, result);
    sum += result.checksum;
    if (!result.ok && problem == null) {
      problem = "does not match the pattern of index " + index.toString();
    }
    input.release();

    if (problem != null) {
      mismatches++;
      if (mismatches <= LOGGED_MISMATCHES) {
        log(Level.Warn,
          "message " + arrival.toString() + " (" + len.toString() + " bytes) " + problem);
      }
    }
  }
  report("received", <i64>received);
  report("bytes", <i64>bytes);
  report("mismatches", <i64>mismatches);
  report("checksum", <i64>sum);

  if (code != CLOSED) return failed("consume", code);
  if (mismatches > 0) {
    log(Level.Error, mismatches.toString() + " of " + received.toString() + " messages mismatched");
    return MISMATCH;
  }
  if (expecting && received != expect) {
    log(Level.Error,
      "expected " + expect.toString() + " messages, received " + received.toString());
    return WRONG_COUNT;
  }
  return 0;
}
