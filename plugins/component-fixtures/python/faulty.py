"""A Python plugin that fails on purpose, as config `fault` says: "raise" (a ValueError after
`after` messages), "hog" (allocates without bound), "spin" (loops forever without calling the
host); or "escape", which tries what WASI would let a plugin reach beyond the ABI (files,
directories, the environment, arguments, sockets) and reports what it got. Publishes on port
"out" first. For the tests of component faults and isolation."""

import os
import sys

import wit_world
from wasm_ipc import Output, config, config_int, message, report


def escape() -> None:
    """Reports 1 for every door that opened, 0 for every one that stayed shut."""
    def tried(key, attempt):
        try:
            attempt()
            report(key, 1)
        except Exception:  # noqa: BLE001 - any refusal is a shut door
            report(key, 0)
    tried("read_file", lambda: open("/etc/hostname").read())
    tried("write_file", lambda: open("/tmp/wasm-ipc-escape", "w").write("x"))
    tried("list_root", lambda: os.listdir("/"))
    tried("list_cwd", lambda: os.listdir("."))
    report("environ", len(os.environ))
    report("argv", len([a for a in sys.argv if a]))

    def connect():
        import socket
        s = socket.socket()
        s.settimeout(1)
        s.connect(("127.0.0.1", 22))
    tried("socket", connect)


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
        if fault == "escape":
            escape()
        else:
            fail(fault)
        return 0
