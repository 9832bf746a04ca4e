#!/bin/bash
# fuzz-smoke.sh - build every cargo-fuzz target and run each for a short
# time (default 5 s; FUZZ_SECONDS to change). Each target starts from the
# seeds in fuzz/seeds/<target> when present. Prints one line per target
# with the executions done; exits non-zero when a target finds a crash.
# The fuzzer needs unstable compiler flags: RUSTC_BOOTSTRAP=1 is set for
# this job only.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${FUZZ_SECONDS:-5}
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build -O $targets >/dev/null 2>&1 || cargo fuzz build -O
pass=0 fail=0
for t in $targets; do
    corpus=$(mktemp -d /tmp/vmfence-fuzz-$t.XXXXXX)
    [ -d "seeds/$t" ] && cp -r "seeds/$t/." "$corpus/"
    log=$corpus.log
    if cargo fuzz run -O "$t" "$corpus" -- -max_total_time="$SECS" -rss_limit_mb=2048 >"$log" 2>&1; then
        execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || true)
        [ -n "$execs" ] || execs=$(grep -Eo '^#[0-9]+' "$log" | tail -1 | tr -d '#')
        echo "fuzz $t: ok, ${execs:-?} executions in ${SECS}s"
        pass=$((pass + 1))
    else
        echo "fuzz $t: FAILED"; tail -n 40 "$log"
        fail=$((fail + 1))
    fi
    rm -rf "$corpus" "$log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
