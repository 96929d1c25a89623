"""A Python plugin that fails on purpose, as config `fault` says: "raise" (a ValueError after
`after` messages), "hog" (allocates without bound), "spin" (loops forever without calling the
host). Publishes on port "out" until then. For the tests of component faults."""

import wit_world
from wasm_ipc import Output, config, config_int, message


def fail(fault: str) -> None:
    if fault == "raise":
        raise ValueError("the fixture raised on purpose")
    if fault == "hog":
        kept = []
        while True:
            kept.append(bytearray(1 << 20))
    if fault == "spin":
        n = 0
        while True:
            n += 1


class WitWorld(wit_world.WitWorld):
    def run(self) -> int:
        fault = config("fault", "raise")
        after = config_int("after", 10)
        out = Output("out")
        for i in range(after):
            out.publish(message(i, 64))
        fail(fault)
        return 0
