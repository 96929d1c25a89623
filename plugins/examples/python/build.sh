#!/bin/sh
# Builds the Python example plugins: sh plugins/examples/python/build.sh
# → plugins/target/lang/python/{producer,consumer,db,web,faulty}.wasm: components on the world
# wit/component/wasm-ipc.wit, with CPython inside (needs componentize-py 0.25.1:
# scripts/setup.sh installs it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root="$here/../../.."
out="$root/plugins/target/lang/python"
mkdir -p "$out"
command -v componentize-py >/dev/null || {
    echo "componentize-py is missing: run scripts/setup.sh (pip install componentize-py==0.25.1)" >&2
    exit 1
}
build() { # build DIR MODULE
    componentize-py -q -d "$root/wit/component" -w plugin componentize \
        -p "$1" -p "$root/plugins/sdk/python" "$2" -o "$out/$2.wasm"
    echo "built $(cd "$out" && pwd)/$2.wasm"
}
for plugin in producer consumer db web; do
    build "$here" "$plugin"
done
# The tests' fixture: a plugin that raises, hogs memory or spins, as its config says.
build "$root/plugins/component-fixtures/python" faulty
