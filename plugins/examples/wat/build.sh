#!/bin/sh
# Run: sh plugins/examples/wat/build.sh
# Builds the hand-written WAT plugins to plugins/target/lang/wat/{producer,consumer}.wasm with
# wat2wasm from wabt. (The host also loads producer.wat / consumer.wat directly.)
set -eu
here=$(dirname "$0")
out="$here/../../target/lang/wat"
if ! command -v wat2wasm >/dev/null 2>&1; then
    echo "wat2wasm not found: install the Debian package wabt (apt-get install wabt)" >&2
    exit 1
fi
mkdir -p "$out"
for plugin in producer consumer db; do
    # --debug-names keeps the $names in a name section, so traps show function names.
    wat2wasm --debug-names "$here/$plugin.wat" -o "$out/$plugin.wasm"
    echo "built $out/$plugin.wasm"
done
