"""The Python SDK's pure parts, in the machine's CPython (no host there: its imports are
stubbed): python3 plugins/sdk/python/test_wasm_ipc.py (scripts/test.sh). The pattern and the
web-db table must match every other SDK's."""

import sys
import types

sys.modules["componentize_py_types"] = types.SimpleNamespace(Err=Exception)
imports = types.ModuleType("wit_world.imports")
imports.host = None
sys.modules["wit_world"] = types.ModuleType("wit_world")
sys.modules["wit_world.imports"] = imports

import wasm_ipc as w  # noqa: E402

# The lengths every SDK pins (Rust's pattern::table tests).
assert [w.row_len(k, 100, 65536, 3) for k in range(6)] == [2997, 64109, 10017, 52126, 31900, 14273]
assert w.row_len(9, 4096, 4096, 1) == 4096
# Message 5 of 20 bytes with seed 3: word 0 is the index, then the words of the pattern.
m = w.message(5, 20, 3)
assert len(m) == 20 and w.index_of(m) == 5
assert int.from_bytes(m[8:16], "little") == w.word(5, 1, 3)
assert int.from_bytes(m[16:20], "little") == w.word(5, 2, 3) & 0xFFFFFFFF
assert w.message(258, 3) == bytes([2, 1, 0])
# The checksum: the wrapping sum of the words, the last one zero-padded.
assert w.checksum(bytes([1, 0, 0, 0, 0, 0, 0, 0, 2])) == 3
print("python sdk: ok")
