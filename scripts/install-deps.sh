#!/bin/bash
# install-deps.sh - install everything the build and the tests need on a
# fresh Debian 12 machine (run as root). Idempotent and quiet; packaged
# services are kept from starting. The Rust toolchain itself is expected to
# be present (rustup); cargo-fuzz is installed from crates.io when missing.
#
# Usage: scripts/install-deps.sh [--no-fuzz]
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-deps: must run as root" >&2; exit 1; }

PKGS=(
    # build
    pkg-config libvirt-dev gcc
    # the classic C peers, libvirt's test driver and virsh
    fence-virt fence-virtd libvirt-clients libvirt0 libvirt-daemon
    # labs and captures
    iproute2 procps tcpdump tshark socat python3 libxml2-utils iptables
    # metadata.rng for agent metadata validation, pcs to read it as users' tools do
    fence-agents pcs pacemaker-cli-utils
    # a real libvirtd with tiny QEMU (TCG) guests, and a one-node cluster for
    # the end-to-end Pacemaker test
    libvirt-daemon-system libvirt-daemon-driver-qemu qemu-system-x86
    corosync pacemaker
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    echo "install-deps: apt-get install ${missing[*]}"
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    APT=(apt-get -q -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    log=$(mktemp /tmp/install-deps.XXXXXX.log)
    "${APT[@]}" update >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    "${APT[@]}" install --no-install-recommends "${missing[@]}" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
    rm -f "$log"
fi

if [ "${1:-}" != --no-fuzz ] && ! command -v cargo-fuzz >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    echo "install-deps: cargo install cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
echo "install-deps: ok"
