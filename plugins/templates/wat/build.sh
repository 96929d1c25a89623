#!/bin/sh
# Builds {{name}}.wasm next to this script from {{name}}.wat (wat2wasm, from wabt).
set -eu
cd "$(dirname "$0")"
if ! command -v wat2wasm >/dev/null 2>&1; then
    echo "wat2wasm not found: install the Debian package wabt (apt-get install wabt)" >&2
    exit 1
fi
# --debug-names keeps the $names in a name section, so traps show function names.
wat2wasm --debug-names '{{name}}.wat' -o '{{name}}.wasm'
