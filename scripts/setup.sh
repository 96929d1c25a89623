#!/usr/bin/env bash
# Installs what building and testing wasm-ipc needs and this machine lacks. Idempotent.
#   - the wasm32 Rust targets (plugins are built for wasm32-wasip1)
#   - wabt (wasm-objdump, wat2wasm): used to inspect plugins
set -euo pipefail
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    rustup target add wasm32-wasip1
fi
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
missing=()
command -v wasm-objdump >/dev/null || missing+=(wabt)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    fi
fi
