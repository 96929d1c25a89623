#!/bin/sh
# Builds {{name}}.wasm next to this script.
set -eu
cd "$(dirname "$0")"
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    rustup target add wasm32-wasip1
fi
cargo build --release --target wasm32-wasip1 --quiet
cp "target/wasm32-wasip1/release/$(echo '{{name}}' | tr - _).wasm" '{{name}}.wasm'
