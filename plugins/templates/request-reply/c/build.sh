#!/bin/sh
# Builds {{name}}.wasm (a wasm32-wasi reactor) next to this script: sh build.sh
set -eu
here=$(dirname "$0")
sdk="{{root}}/plugins/sdk/c"
CC=${CC:-clang}

missing() {
    echo "$1: install Debian packages clang lld wasi-libc libclang-rt-dev-wasm32" >&2
    exit 1
}
command -v "$CC" >/dev/null 2>&1 || missing "$CC not found"
command -v wasm-ld >/dev/null 2>&1 || missing "wasm-ld (lld) not found"
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing "wasi-libc not found (/usr/lib/wasm32-wasi/libc.a)"
[ -f "$("$CC" --target=wasm32-wasi -print-libgcc-file-name)" ] ||
    missing "the wasm32 compiler runtime (libclang_rt.builtins-wasm32.a) not found"
[ -f "$sdk/wasm_ipc.c" ] || { echo "the wasm-ipc C SDK is not at $sdk" >&2; exit 1; }

# -mexec-model=reactor: export _initialize, not _start; a small stack (64 KiB) keeps the
# initial memory small, and malloc grows memory for each port's window.
"$CC" --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -std=c11 -Wall -Wextra \
    -Wl,-z,stack-size=65536 -Wl,--strip-all \
    -I "$sdk" -o "$here/{{name}}.wasm" "$here/{{name}}.c" "$sdk/wasm_ipc.c"
echo "built $here/{{name}}.wasm"
