#!/bin/sh
# Builds one JavaScript plugin into a WebAssembly component on the world
# wit/component/wasm-ipc.wit: sh build-plugin.sh SOURCE.js OUT.wasm
# The source imports the SDK as "./wasm_ipc.js"; both are bundled by componentize-js 0.23
# (pinned in this folder's package-lock.json; scripts/setup.sh runs `npm ci` here). The
# components leave out WASI HTTP (`-d http fetch-event`): the host serves no network.
set -eu
sdk=$(cd "$(dirname "$0")" && pwd)
root="$sdk/../../.."
src=$1
out=$2
tool="$sdk/node_modules/.bin/componentize-js"
[ -x "$tool" ] || {
    echo "componentize-js is missing: run scripts/setup.sh (npm ci in plugins/sdk/javascript)" >&2
    exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Under its own name, so that a stack says where in the plugin's source.
name=$(basename "$src")
cp "$src" "$work/$name"
cp "$sdk/wasm_ipc.js" "$work/wasm_ipc.js"
mkdir -p "$(dirname "$out")"
"$tool" "$work/$name" -w "$root/wit/component" -n plugin -d http fetch-event -o "$out" >/dev/null
