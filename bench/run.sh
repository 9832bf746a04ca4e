#!/bin/bash
# bench/run.sh - the benchmarks of issues #3 (daemon) and #4 (agents): builds
# our fence_virtd and fence_xvm in release mode, then runs bench/bench.py,
# which measures them against the classic C fence-virt in the same run inside
# network-namespace labs and prints a table of ours/C ratios and targets.
#
# Usage: bench/run.sh [--no-build] [--only status,lost,throughput,list,storm] [--quick]
#                     [--results FILE] [--keep] [--lock-wait SECS]
# A full run (no --only, no --quick) writes bench/RESULTS.md and takes about
# five minutes. Root only. Prerequisites: scripts/install-deps.sh (classic
# fence-virt/fence-virtd, libvirt, QEMU, iptables, python3) and the shared
# harness (../shared/harness, or VMFENCE_HARNESS=DIR).
# Exit: 0 every target met, 1 a target missed, 2 a measurement failed or a
# prerequisite is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "bench: must run as root (network namespaces)" >&2; exit 2; }

build=1
args=()
for a in "$@"; do
    case $a in
        --no-build) build=0 ;;
        *) args+=("$a") ;;
    esac
done
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
if [ $build = 1 ]; then
    echo "==> cargo build --release (target dir $TARGET)" >&2
    cargo build --release --locked -p vmfence-daemon -p vmfence-agent 2>&1 | tail -n 1 >&2
fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" bench/bench.py --bin-dir "$TARGET/release" "${args[@]}"
