// {{name}}: a wasm-ipc plugin in JavaScript (a WebAssembly component). Build: `sh build.sh` →
// {{name}}.wasm; run: `wasm-ipc compare scenario.toml`. SDK:
// {{root}}/plugins/sdk/javascript/wasm_ipc.js (imported as "./wasm_ipc.js"; the build bundles it).
//
// The same plugin plays both roles; which one depends on the ports the scenario gives it:
// - with a port "out" it publishes `count` (100) pattern messages of `size` (64) bytes;
// - with a port "in" it receives until the channel closes, checks every message against the
//   pattern, reports "received" and "mismatches", and fails with code 2 on a mismatch.
// Config `seed` (0) changes the pattern; producer and consumer must agree on it.
import {
  Closed, Input, Output, configInt, equal, hostHasPort, indexOf, main, message, report,
} from "./wasm_ipc.js";

export const run = main(() => {
  const seed = configInt("seed", 0);
  let status = 0;
  if (hostHasPort("out")) produce(new Output("out"), seed);
  if (hostHasPort("in")) status = consume(new Input("in"), seed);
  return status;
});

function produce(out, seed) {
  const count = configInt("count", 100), size = configInt("size", 64);
  let sent = 0;
  try {
    for (let i = 0; i < count; i++) {
      out.publish(message(i, size, seed));
      sent++;
    }
  } catch (e) {
    if (!(e instanceof Closed)) throw e; // every consumer is gone
  }
  report("sent", sent);
}

function consume(input, seed) {
  let received = 0, mismatches = 0;
  // receive() gives null once every producer is done and the channel is drained.
  for (let msg; (msg = input.receive()) !== null; ) {
    if (!equal(msg, message(Number(indexOf(msg)), msg.length, seed))) mismatches++;
    received++;
  }
  report("received", received);
  report("mismatches", mismatches);
  return mismatches ? 2 : 0;
}
