"""Streams `count` pattern messages of `size` bytes on port "out" (the shared pattern of every
SDK, so any language's consumer can check them). Config: `count` (1000), `size` (4096),
`seed` (0). Stops early, without error, when every consumer is gone. Reports `sent` and
`bytes`. Build: sh plugins/examples/python/build.sh."""

import wit_world
from wasm_ipc import Closed, Output, WARN, config_int, log, message, report


class WitWorld(wit_world.WitWorld):
    def run(self) -> int:
        count = config_int("count", 1000)
        size = config_int("size", 4096)
        seed = config_int("seed", 0)
        out = Output("out")
        sent = 0
        try:
            for i in range(count):
                out.publish(message(i, size, seed))
                sent += 1
        except Closed:
            log(WARN, f"every consumer is gone after {sent} of {count} messages")
        finally:
            report("sent", sent)
            report("bytes", sent * size)
        return 0
