#!/bin/sh
# Builds the C example plugins: plugins/examples/c/build.sh
# Output: plugins/target/lang/c/producer.wasm and consumer.wasm (wasm32-wasi reactors).
set -eu
here=$(dirname "$0")
sdk="$here/../../sdk/c"
out="$here/../../target/lang/c"
CC=${CC:-clang}

missing() {
    echo "$1: install Debian packages clang lld wasi-libc libclang-rt-dev-wasm32" >&2
    exit 1
}
command -v "$CC" >/dev/null 2>&1 || missing "$CC not found"
command -v wasm-ld >/dev/null 2>&1 || missing "wasm-ld (lld) not found"
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing "wasi-libc not found (/usr/lib/wasm32-wasi/libc.a)"

# -mexec-model=reactor: exports _initialize instead of _start (a command module would run
#   libc destructors after every exported call);
# stack-size: 64 KiB instead of lld's default 1 MiB... keeps the initial memory small; the
#   heap (and every port's window) grows from there with memory.grow;
# --strip-all: no name section.
CFLAGS="--target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -std=c11 -Wall -Wextra"
LDFLAGS="-Wl,-z,stack-size=65536 -Wl,--strip-all"

mkdir -p "$out"
for plugin in producer consumer; do
    # shellcheck disable=SC2086
    "$CC" $CFLAGS $LDFLAGS -I "$sdk" -o "$out/$plugin.wasm" \
        "$here/$plugin.c" "$sdk/wasm_ipc.c" || missing "building $plugin.wasm failed"
    echo "built $out/$plugin.wasm"
done
