#!/bin/sh
# Builds the C example plugins: sh plugins/examples/c/build.sh
# Output: plugins/target/lang/c/{producer,consumer,web,db}.wasm (wasm32-wasi reactors).
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
[ -f "$("$CC" --target=wasm32-wasi -print-libgcc-file-name)" ] ||
    missing "the wasm32 compiler runtime (libclang_rt.builtins-wasm32.a) not found"

# -mexec-model=reactor: crt1-reactor.o exports _initialize instead of _start (a command module
#   would run libc's destructors after every exported call);
# -z stack-size=65536: a 64 KiB stack (lld's default, made explicit): the initial memory is
#   2 pages, and malloc grows memory with memory.grow for each port's window;
# --strip-all: no name section.
CFLAGS="--target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -std=c11 -Wall -Wextra"
LDFLAGS="-Wl,-z,stack-size=65536 -Wl,--strip-all"

mkdir -p "$out"
for plugin in producer consumer web db; do
    # shellcheck disable=SC2086 # the flags are words on purpose
    "$CC" $CFLAGS $LDFLAGS -I "$sdk" -o "$out/$plugin.wasm" "$here/$plugin.c" "$sdk/wasm_ipc.c"
    echo "built $out/$plugin.wasm"
done
