"""{{name}}: a wasm-ipc plugin in Python (a WebAssembly component). Build: `sh build.sh` →
{{name}}.wasm; run: `wasm-ipc compare scenario.toml`. SDK: {{root}}/plugins/sdk/python/wasm_ipc.py.

The same plugin plays both roles; which one depends on the ports the scenario gives it:
- with a port "out" it publishes `count` (100) pattern messages of `size` (64) bytes;
- with a port "in" it receives until the channel closes, checks every message against the
  pattern, reports "received" and "mismatches", and fails with code 2 on a mismatch.
Config `seed` (0) changes the pattern; producer and consumer must agree on it."""

import wit_world
from wasm_ipc import Closed, Input, Output, config_int, host_has_port, index_of, message, report


class WitWorld(wit_world.WitWorld):
    def run(self) -> int:
        seed = config_int("seed", 0)
        status = 0
        if host_has_port("out"):
            produce(Output("out"), seed)
        if host_has_port("in"):
            status = consume(Input("in"), seed)
        return status


def produce(out: Output, seed: int) -> None:
    count, size = config_int("count", 100), config_int("size", 64)
    sent = 0
    try:
        for i in range(count):
            out.publish(message(i, size, seed))
            sent += 1
    except Closed:
        pass  # every consumer is gone
    report("sent", sent)


def consume(inp: Input, seed: int) -> int:
    received = mismatches = 0
    # receive() gives None once every producer is done and the channel is drained.
    while (msg := inp.receive()) is not None:
        if msg != message(index_of(msg), len(msg), seed):
            mismatches += 1
        received += 1
    report("received", received)
    report("mismatches", mismatches)
    return 2 if mismatches else 0
