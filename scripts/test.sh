#!/usr/bin/env bash
# The test suite: installs what is missing, builds every plugin, runs every test of both
# workspaces. A test whose toolchain is missing fails; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
sh plugins/build-all.sh
cargo test --release --manifest-path plugins/Cargo.toml -p wasm-ipc-sdk --target x86_64-unknown-linux-gnu
# The C SDK's pure parts, natively against a stub host.
mkdir -p target
cc -std=c11 -w -I plugins/sdk/c -o target/c-sdk-test plugins/sdk/c/test_native.c plugins/sdk/c/wasm_ipc.c
target/c-sdk-test
# Zig's and AssemblyScript's SDK tests (the exit-code table every SDK shares, among others).
zig test plugins/sdk/zig/wasm_ipc.zig
(cd plugins/sdk/assemblyscript && node_modules/.bin/asc test/exit_codes.ts --use abort= \
    --outFile ../../../target/as-sdk-test.wasm && node test/run.mjs ../../../target/as-sdk-test.wasm)
# The Python and JavaScript SDKs' pure parts (the pattern and the web-db table), natively.
(cd plugins/sdk/python && python3 test_wasm_ipc.py)
(cd plugins/sdk/javascript && node --import ./test/register.mjs test/run.mjs)
cargo test --release --workspace
# The decoders of untrusted input, fuzzed for a bounded number of inputs each.
scripts/fuzz.sh
