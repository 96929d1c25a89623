#!/bin/sh
# Builds the Zig example plugins: sh plugins/examples/zig/build.sh
# → plugins/target/lang/zig/{producer,consumer,db}.wasm (needs Zig 0.17 on PATH).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../target/lang/zig"
for plugin in producer consumer db; do
    sh "$here/../../sdk/zig/build-plugin.sh" "$here/$plugin.zig" "$out/$plugin.wasm"
    echo "built $(cd "$out" && pwd)/$plugin.wasm"
done
