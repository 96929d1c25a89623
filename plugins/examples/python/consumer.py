"""Receives on port "in" until the channel closes and checks each message against the shared
pattern, by the index in its own word 0. Config: `check` ("full": content and order, the
default; "stamp": order only, every byte still summed; "none": nothing read), `seed` (0),
`ordered` (true; false for fan-in), `strict` (true: the first mismatch fails the run with
code 2), `expect` (the number of messages that must arrive, else code 3). Reports
`received`, `bytes`, `mismatches` and `checksum` (not with check = "none").
Build: sh plugins/examples/python/build.sh."""

import wit_world
from wasm_ipc import (ERROR, Input, checksum, config, config_bool, config_int, index_of, log,
                      message, report)


class WitWorld(wit_world.WitWorld):
    def run(self) -> int:
        check = config("check", "full")
        if check not in ("full", "stamp", "none"):
            raise ValueError(f"config `check` = {check!r}: use full, stamp or none")
        seed = config_int("seed", 0)
        ordered = config_bool("ordered", True)
        strict = config_bool("strict", True)
        expect = config("expect")
        inp = Input("in")
        received = size = mismatches = total = 0
        code = 0
        next_index = 0
        while True:
            msg = inp.receive()
            if msg is None:
                break
            received += 1
            size += len(msg)
            if check == "none":
                continue
            index = index_of(msg)
            width = (1 << (8 * min(len(msg), 8))) - 1
            problem = None
            if ordered and index != next_index & width:
                problem = f"carries index {index}, expected {next_index}"
            next_index = next_index + 1 if index == next_index & width else index + 1
            if check == "full" and msg != message(index, len(msg), seed) and problem is None:
                problem = f"does not match the pattern of index {index}"
            total += checksum(msg)
            if problem is not None:
                mismatches += 1
                if mismatches <= 5:
                    log(ERROR, f"message {received - 1} ({len(msg)} bytes) {problem}")
                if strict:
                    code = 2
                    break
        report("received", received)
        report("bytes", size)
        report("mismatches", mismatches)
        if check != "none":
            report("checksum", total)
        if code == 0 and expect is not None and int(expect) != received:
            log(ERROR, f"expected {expect} messages, received {received}")
            code = 3
        return code
