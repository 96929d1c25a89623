#!/bin/sh
# Counts the instructions each worker executes under valgrind's callgrind, for comparing a
# change's cost without wall-clock noise:
#   scripts/callgrind.sh SCENARIO [wasm-ipc run options, e.g. --backend shm --set …]
# Prints one line per worker (pid, instructions) and their sum; the callgrind files stay in
# the folder it names (callgrind_annotate FILE shows where the instructions went).
#
# Under valgrind a worker cannot install its seccomp filter (valgrind does not implement
# seccomp) nor run code compiled for the host's CPU features, so this runs with
# WASM_IPC_UNLOCKED=1 (no lock-down: only for your own, trusted plugins) and
# WASM_IPC_BASELINE_CPU=1 (baseline x86-64 code), with the compile cache off. Use
# --set run.wait=futex: spinning waits would count as instructions. callgrind sees user
# space only: what the kernel does for msg (copies, syscalls) is not in the counts.
set -eu
if [ "$#" -lt 1 ]; then
    echo "usage: $0 SCENARIO [wasm-ipc run options]" >&2
    exit 2
fi
command -v valgrind >/dev/null 2>&1 || {
    echo "valgrind not found: apt-get install valgrind" >&2
    exit 1
}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/target/release/wasm-ipc"
[ -x "$bin" ] || { echo "build the host first: cargo build --release" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/wasm-ipc-callgrind.XXXXXX")
wrapper="$out/worker.sh"
cat > "$wrapper" <<WRAP
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.%p.out "$bin" "\$@"
WRAP
chmod +x "$wrapper"
WASM_IPC_UNLOCKED=1 WASM_IPC_BASELINE_CPU=1 WASM_IPC_CACHE_DIR=off WASM_IPC_WORKER_EXE="$wrapper" \
    "$bin" run --json "$@" > "$out/report.json" 2> "$out/stderr.txt" || {
    echo "the run failed; see $out/stderr.txt and $out/report.json" >&2
    exit 1
}
total=0
for f in "$out"/callgrind.*.out; do
    n=$(sed -n 's/^summary: //p' "$f")
    echo "worker $(basename "$f" .out | cut -d. -f2): $n instructions"
    total=$((total + n))
done
echo "all workers: $total instructions (files in $out)"
