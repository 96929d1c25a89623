// Run: wasm-ipc run scenarios/producer-consumer.toml with this plugin's .wasm as the producer
// (build: plugins/examples/assemblyscript/build.sh → plugins/target/lang/assemblyscript/).
//
// Streams `count` pattern messages of `size` bytes on port "out" (the payload of
// plugins/sdk/rust/src/pattern.rs, bit for bit). Config: `count` (1000), `size` (4096),
// `seed` (0). Stops early, without error, when every consumer is gone. Reports `sent` and
// `bytes`, also when it fails.

import {
  CLOSED, Level, Output, UNKNOWN_PORT, configU32, configU64, failed, fill, log, report,
} from "wasm-ipc-sdk";
export { cabi_realloc } from "wasm-ipc-sdk";

export function run(): i32 {
  const count = configU64("count", 1000);
  const size = configU32("size", 4096);
  const seed = configU64("seed", 0);

  const out = Output.open("out");
  if (out == null) return failed("produce", UNKNOWN_PORT);

  let sent: u64 = 0;
  let code: i32 = 0;
  for (let i: u64 = 0; i < count; i++) {
    code = out.loan(size);
    if (code == 0) {
      fill(out.ptr, size, i, seed);
      code = out.publish();
    }
    if (code == CLOSED) {
      log(Level.Info, "every consumer is gone: stopping after " + i.toString() + " of " +
        count.toString() + " messages");
      code = 0;
      break;
    }
    if (code < 0) break;
    sent++;
  }
  report("sent", <i64>sent);
  report("bytes", <i64>(sent * <u64>size));
  return code < 0 ? failed("produce", code) : 0;
}
