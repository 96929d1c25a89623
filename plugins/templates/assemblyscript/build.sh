#!/bin/sh
# Builds {{name}}.wasm next to this script with AssemblyScript. The SDK and the compiler it pins
# (assemblyscript 0.28, in its package-lock.json) live in {{root}}/plugins/sdk/assemblyscript.
set -eu
cd "$(dirname "$0")"
sdk='{{root}}/plugins/sdk/assemblyscript'

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node/npm not found: install Debian packages nodejs npm (node >= 18)" >&2
    exit 1
fi
if [ ! -f "$sdk/index.ts" ]; then
    echo "no wasm-ipc AssemblyScript SDK at $sdk (moved? set the path in build.sh)" >&2
    exit 1
fi
if [ ! -d "$sdk/node_modules" ]; then
    (cd "$sdk" && npm ci --no-audit --no-fund)
fi
# The source imports the SDK as "wasm-ipc-sdk": asc finds it through ./node_modules.
mkdir -p node_modules
ln -sfn "$sdk" node_modules/wasm-ipc-sdk

# --runtime incremental: TLSF heap + GC (the port windows are heap blocks the GC never sees);
# --exportStart _initialize: the host calls it first, and it starts the heap before the host
#   asks cabi_realloc for windows;
# --use abort=...: aborts log and trap instead of importing env.abort, which the host refuses.
"$sdk/node_modules/.bin/asc" '{{name}}.ts' \
    -O3 \
    --runtime incremental \
    --exportStart _initialize \
    --use abort=~lib/wasm-ipc-sdk/index/abortHandler \
    --outFile '{{name}}.wasm'
