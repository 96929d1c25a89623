#!/bin/sh
# Builds the AssemblyScript producer and consumer: plugins/target/lang/assemblyscript/*.wasm.
# Usage: sh plugins/examples/assemblyscript/build.sh   (needs node >= 18 and npm)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
sdk=$(cd "$here/../../sdk/assemblyscript" && pwd)
out=$here/../../target/lang/assemblyscript
mkdir -p "$out"
out=$(cd "$out" && pwd)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node/npm not found: install Debian packages nodejs npm (node >= 18)" >&2
    exit 1
fi
# The compiler (assemblyscript, pinned in the SDK's package-lock.json) lives in the SDK folder.
if [ ! -d "$sdk/node_modules" ]; then
    (cd "$sdk" && npm ci --no-audit --no-fund)
fi
# Plugins import the SDK as "wasm-ipc-sdk": asc resolves that through ./node_modules (relative
# to where it runs, hence the cd).
cd "$here"
mkdir -p node_modules
ln -sfn "$sdk" node_modules/wasm-ipc-sdk

for plugin in producer consumer web db; do
    # --runtime incremental: TLSF heap + GC; windows come from heap.alloc (never collected).
    # --exportStart _initialize: the host calls it before cabi_realloc; it starts the heap.
    # --use abort=...: log and trap instead of importing env.abort (the host refuses env.*).
    "$sdk/node_modules/.bin/asc" "$plugin.ts" \
        -O3 \
        --runtime incremental \
        --exportStart _initialize \
        --use abort=~lib/wasm-ipc-sdk/index/abortHandler \
        --outFile "$out/$plugin.wasm"
done
echo "built $out/producer.wasm $out/consumer.wasm $out/web.wasm $out/db.wasm"
