#!/bin/sh
# Builds the JavaScript example plugins: sh plugins/examples/javascript/build.sh
# → plugins/target/lang/javascript/{producer,consumer,db,web,faulty}.wasm: components on
# the world wit/component/wasm-ipc.wit, with SpiderMonkey inside (componentize-js 0.23:
# scripts/setup.sh installs it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root="$here/../../.."
out="$root/plugins/target/lang/javascript"
for plugin in producer consumer db web; do
    sh "$root/plugins/sdk/javascript/build-plugin.sh" "$here/$plugin.js" "$out/$plugin.wasm"
    echo "built $(cd "$out" && pwd)/$plugin.wasm"
done
# The tests' fixture: a plugin that throws, hogs memory or spins, as its config says.
sh "$root/plugins/sdk/javascript/build-plugin.sh" "$root/plugins/component-fixtures/javascript/faulty.js" "$out/faulty.wasm"
echo "built $(cd "$out" && pwd)/faulty.wasm"
