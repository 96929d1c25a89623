#!/bin/sh
# Builds {{name}}.wasm here from app.py: a WebAssembly component with CPython inside, on the
# component world {{root}}/wit/component/wasm-ipc.wit, with the wasm-ipc Python SDK
# ({{root}}/plugins/sdk/python). Needs componentize-py 0.25.1.
set -eu
cd "$(dirname "$0")"
if ! command -v componentize-py >/dev/null 2>&1; then
    echo "componentize-py not found: pip install componentize-py==0.25.1" >&2
    exit 1
fi
componentize-py -q -d "{{root}}/wit/component" -w plugin componentize \
    -p . -p "{{root}}/plugins/sdk/python" app -o "{{name}}.wasm"
