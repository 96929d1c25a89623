"""wasm-ipc's Python SDK: ports, config, reports and the shared test pattern, over the
component world `wit/component/wasm-ipc.wit` (package wasm-ipc:component@0.1.0).

A plugin is a module defining `class WitWorld(wit_world.WitWorld)` with `run(self) -> int`
(0 is success), built into a component with componentize-py (see `plugins/examples/python`):

    import wit_world
    from wasm_ipc import Output, config_int

    class WitWorld(wit_world.WitWorld):
        def run(self) -> int:
            out = Output("out")
            for i in range(config_int("count", 10)):
                out.publish(b"hello %d" % i)
            return 0

Port errors are exceptions: `Closed` (every producer finished / every consumer is gone),
`PeerFailed` (a plugin on the other side failed), `TooLarge` (longer than the slot).
`Input.receive()` returns None at the end of the stream instead of raising `Closed`.
An exception that leaves `run` fails the plugin; the report names its type, message and line.
"""

from array import array

from componentize_py_types import Err
from wit_world.imports import host

__all__ = [
    "Closed", "PeerFailed", "TooLarge", "Output", "Input", "Client", "Server", "host_has_port",
    "config", "config_int", "config_bool", "report", "log", "now",
    "message", "checksum", "index_of", "word", "row_len", "ERROR", "WARN", "INFO", "DEBUG",
]

ERROR, WARN, INFO, DEBUG = 0, 1, 2, 3


class PortError(Exception):
    """A port call did not do what it was asked."""


class Closed(PortError):
    """Every producer finished (receive), every consumer is gone (publish), the server
    finished (call), or that client is gone (reply)."""


class PeerFailed(PortError):
    """A plugin on the other side of the port failed."""


class TooLarge(PortError):
    """Longer than the channel's slot size."""


def _raise(e: Err, port: str):
    kind = {
        host.Error.CLOSED: Closed,
        host.Error.PEER_FAILED: PeerFailed,
        host.Error.TOO_LARGE: TooLarge,
    }[e.value]
    raise kind(f"port `{port}`") from None


def host_has_port(name: str) -> bool:
    """Whether the scenario gives this plugin a port `name` (for plugins with optional ports)."""
    return host.port(name) is not None


def _handle(name: str) -> int:
    h = host.port(name)
    if h is None:
        raise LookupError(f"this plugin has no port `{name}` in the scenario")
    return h


class Output:
    """An output port."""

    def __init__(self, name: str = "out"):
        self.name = name
        self.handle = _handle(name)

    def publish(self, data: bytes) -> None:
        """Sends `data`; blocks while the channel is full."""
        try:
            host.publish(self.handle, data)
        except Err as e:
            _raise(e, self.name)


class Input:
    """An input port."""

    def __init__(self, name: str = "in"):
        self.name = name
        self.handle = _handle(name)

    def receive(self):
        """The next message (bytes), or None once every producer finished."""
        try:
            return host.receive(self.handle)
        except Err as e:
            if e.value == host.Error.CLOSED:
                return None
            _raise(e, self.name)


class Client:
    """The client side of a request/reply port."""

    def __init__(self, name: str):
        self.name = name
        self.handle = _handle(name)

    def call(self, request: bytes) -> bytes:
        """Sends `request` and waits for the answer."""
        try:
            return host.call(self.handle, request)
        except Err as e:
            _raise(e, self.name)


class Server:
    """The server side of a request/reply port."""

    def __init__(self, name: str):
        self.name = name
        self.handle = _handle(name)

    def receive(self):
        """(client, request) of the next request, or None once every client finished."""
        try:
            request = host.receive(self.handle)
        except Err as e:
            if e.value == host.Error.CLOSED:
                return None
            _raise(e, self.name)
        return host.client(self.handle), request

    def reply(self, client: int, answer: bytes) -> bool:
        """Answers `client`'s call; False when that client is gone."""
        try:
            host.reply(self.handle, client, answer)
            return True
        except Err as e:
            if e.value == host.Error.CLOSED:
                return False
            _raise(e, self.name)


def config(key: str, default=None):
    """The config value of `key` as text, or `default`."""
    value = host.config(key)
    return default if value is None else value


def config_int(key: str, default: int) -> int:
    """The config value of `key` as an integer, or `default`."""
    value = host.config(key)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"config `{key}` = {value!r} is not an integer") from None


def config_bool(key: str, default: bool) -> bool:
    """The config value of `key` as a boolean, or `default`."""
    value = host.config(key)
    if value is None:
        return default
    if value not in ("true", "false"):
        raise ValueError(f"config `{key}` = {value!r} is not true or false")
    return value == "true"


def report(key: str, value: int) -> None:
    """A figure for the report (a u64 is reported as its two's-complement s64)."""
    value &= MASK
    host.report(key, value - (1 << 64) if value >= 1 << 63 else value)


def log(level: int, msg: str) -> None:
    """A log line (ERROR, WARN, INFO, DEBUG) on the supervisor's stderr."""
    host.log(level, msg)


def now() -> int:
    """CLOCK_MONOTONIC in nanoseconds, the host's clock."""
    return host.now()


# The shared test pattern (`wasm_ipc_sdk::pattern` in Rust, and every other SDK): message `i`
# of `size` bytes with `seed` is little-endian u64 words; word 0 is `i`, word `w >= 1` is
# `i * INDEX_MUL ^ w * WORD_MUL ^ seed` (wrapping); a trailing partial word takes the low
# bytes of its word; a message shorter than 8 bytes is the low `size` bytes of `i`. Built with
# big-integer XOR, so a message costs a few C-speed operations, not a Python loop per word.

MASK = (1 << 64) - 1
INDEX_MUL = 0x9E3779B97F4A7C15
WORD_MUL = 0xD1B54A32D192ED03

_tables = {}


def _table(words: int) -> int:
    """`w * WORD_MUL` for every word `w < words`, as one little-endian integer."""
    t = _tables.get(words)
    if t is None:
        raw = b"".join(((w * WORD_MUL) & MASK).to_bytes(8, "little") for w in range(words))
        t = _tables[words] = int.from_bytes(raw, "little")
    return t


def message(i: int, size: int, seed: int = 0) -> bytes:
    """Message `i` of `size` bytes with `seed`."""
    head = (i & MASK).to_bytes(8, "little")
    if size <= 8:
        return head[:size]
    words = (size + 7) // 8
    base = ((i * INDEX_MUL) ^ seed) & MASK
    spread = int.from_bytes(base.to_bytes(8, "little") * words, "little")
    body = (_table(words) ^ spread).to_bytes(8 * words, "little")
    return head + body[8:size]


def word(i: int, w: int, seed: int = 0) -> int:
    """Word `w` of message `i` with `seed`."""
    if w == 0:
        return i & MASK
    return ((i * INDEX_MUL) ^ (w * WORD_MUL) ^ seed) & MASK


def row_len(key: int, lo: int, hi: int, seed: int) -> int:
    """The length of row `key` of the web-db table (`pattern::table` in every SDK): spread
    over `lo..=hi` on a logarithmic scale. Row `key` is `message(key, row_len(...), seed)`."""
    lo = max(lo, 1)
    hi = max(hi, lo)
    h = word(key, 7, seed ^ 0x7AB1E000)
    octaves = (hi // lo).bit_length()
    low = lo << (h % octaves)
    high = min(low << 1, hi + 1)
    span = max(high - low, 1)
    return min(low + (h >> 16) % span, hi)


def index_of(msg: bytes) -> int:
    """The index a message carries in its word 0 (the low bytes of it, if shorter)."""
    return int.from_bytes(msg[:8], "little")


def checksum(msg: bytes) -> int:
    """The wrapping sum of the message's little-endian u64 words, a last partial word
    zero-padded."""
    words = array("Q")
    words.frombytes(msg + bytes(-len(msg) % 8))
    return sum(words) & MASK
