#!/usr/bin/env bash
# Fuzzes the three decoders of untrusted input (scenario files, msg frame headers, control-
# protocol lines) with cargo-fuzz on the machine's stable toolchain (RUSTC_BOOTSTRAP=1 lets it
# take the sanitizer flags), each for a bounded number of inputs and time, and prints how many
# inputs each executed. A crash fails the script; its input is left in fuzz/artifacts/ and
# becomes a regression test. FUZZ_RUNS (default 200000) and FUZZ_SECONDS (default 60) bound
# each target. The targets link no wasmtime, so the instrumented build takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --quiet
fi
runs=${FUZZ_RUNS:-200000}
seconds=${FUZZ_SECONDS:-60}
for target in scenario frame control; do
    log=$(mktemp)
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -runs="$runs" -max_total_time="$seconds" \
        >"$log" 2>&1; then
        tail -40 "$log" >&2
        rm -f "$log"
        echo "fuzz: $target found a crash (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" || true)
    rm -f "$log"
    echo "fuzz: $target: ${done_line:-no summary line}"
done
