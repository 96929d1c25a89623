#!/usr/bin/env bash
# The main job: build everything and compare the backends on the bundled scenario.
#   scripts/compare.sh [SCENARIO] [--json]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
sh plugins/build.sh
cargo build --release --bin wasm-ipc
exec target/release/wasm-ipc compare "$@"
