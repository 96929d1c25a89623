#!/bin/sh
# Builds every plugin of this workspace in release:
#   plugins/build.sh [cargo build options, e.g. -p producer]
# Output: plugins/target/wasm32-wasip1/release/<crate>.wasm
set -eu
here=$(dirname "$0")
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    rustup target add wasm32-wasip1
fi
# --target is explicit because .cargo/config.toml is only read when cargo runs inside plugins/.
exec cargo build --release --target wasm32-wasip1 --manifest-path "$here/Cargo.toml" "$@"
