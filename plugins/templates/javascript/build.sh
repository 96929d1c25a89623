#!/bin/sh
# Builds {{name}}.wasm here from app.js: a WebAssembly component with SpiderMonkey inside, on
# the component world {{root}}/wit/component/wasm-ipc.wit, with the wasm-ipc JavaScript SDK
# ({{root}}/plugins/sdk/javascript; its componentize-js comes from `npm ci` there).
set -eu
cd "$(dirname "$0")"
sh "{{root}}/plugins/sdk/javascript/build-plugin.sh" app.js "{{name}}.wasm"
