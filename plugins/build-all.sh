#!/bin/sh
# Builds every plugin in every language:
#   Rust (this workspace) → plugins/target/wasm32-wasip1/release/*.wasm
#   C, AssemblyScript, Zig, WAT examples → plugins/target/lang/<lang>/{producer,consumer}.wasm
#   Python and JavaScript examples (components) → plugins/target/lang/{python,javascript}/*.wasm
# A missing toolchain stops the build with a message saying what to install
# (scripts/setup.sh installs all of them).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sh "$here/build.sh"
for lang in c assemblyscript zig wat python javascript; do
    echo "building $lang plugins" >&2
    sh "$here/examples/$lang/build.sh"
done
