// A JavaScript plugin that fails on purpose, as config `fault` says: "raise" (throws a
// RangeError after `after` messages), "hog" (allocates without bound), "spin" (loops forever
// without calling the host). Publishes on port "out" until then. For the tests of component
// faults.
import { Output, config, configInt, main, message } from "./wasm_ipc.js";

function fail(fault) {
  if (fault === "raise") throw new RangeError("the fixture threw on purpose");
  if (fault === "hog") {
    const kept = [];
    for (;;) kept.push(new Uint8Array(1 << 20).fill(1));
  }
  if (fault === "spin") {
    let n = 0;
    for (;;) n++;
  }
}

export const run = main(() => {
  const fault = config("fault", "raise");
  const after = configInt("after", 10);
  const out = new Output("out");
  for (let i = 0; i < after; i++) out.publish(message(i, 64));
  fail(fault);
  return 0;
});
