// Streams `count` pattern messages of `size` bytes on port "out" (the shared pattern of every
// SDK, so any language's consumer can check them). Config: `count` (1000), `size` (4096),
// `seed` (0). Stops early, without error, when every consumer is gone. Reports `sent` and
// `bytes`. Build: sh plugins/examples/javascript/build.sh.
import { Closed, Output, WARN, configInt, log, main, message, report } from "./wasm_ipc.js";

export const run = main(() => {
  const count = configInt("count", 1000);
  const size = configInt("size", 4096);
  const seed = configInt("seed", 0);
  const out = new Output("out");
  let sent = 0;
  try {
    for (let i = 0; i < count; i++) {
      out.publish(message(i, size, seed));
      sent++;
    }
  } catch (e) {
    if (!(e instanceof Closed)) throw e;
    log(WARN, `every consumer is gone after ${sent} of ${count} messages`);
  } finally {
    report("sent", sent);
    report("bytes", sent * size);
  }
  return 0;
});
