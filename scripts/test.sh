#!/bin/bash
# test.sh - the one test command: installs what the tests need (Debian 12,
# root), then runs formatting and lint checks, every test of the workspace
# (unit, integration against the classic C peers, in network namespaces the
# tests make themselves) and a short fuzz run of every fuzz target.
#
# Usage: scripts/test.sh            (FUZZ_SECONDS=N to fuzz longer)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
bash scripts/install-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked 2>&1 | tee /tmp/vmfence-cargo-test.log
summary_cmd() { grep -E '^test result:' /tmp/vmfence-cargo-test.log |
    awk '{p += $4; f += $6; i += $8} END {printf "%d passed, %d failed, %d skipped", p, f, i}'; }

step "golden vectors: capture live from the classic C peers and check them"
live=$(mktemp -d /tmp/vmfence-golden.XXXXXX)
FV_GOLDEN_OUT=$live bash scripts/capture-golden.sh >/tmp/vmfence-capture.log 2>&1 ||
    { tail -n 30 /tmp/vmfence-capture.log; exit 1; }
VMFENCE_GOLDEN_DIR=$live cargo test -p vmfence-proto --locked --test golden 2>&1 | tee -a /tmp/vmfence-cargo-test.log | grep -E '^test |^test result'
rm -rf "$live"

step "fuzz smoke run"
bash scripts/fuzz-smoke.sh

step "summary"
echo "tests: $(summary_cmd)"
