#!/bin/bash
# demo.sh - set up and run the main job end to end on one machine (root,
# Debian 12): build vmfence, make a key, start our fence_virtd on libvirt's
# test driver inside a network-namespace "host", and fence the test VM from
# a "guest" namespace with our fence_xvm: list, status, off, status, on,
# status. Everything (multicast included) stays inside the two namespaces
# made here; they and the daemon are removed on exit, also on failure.
#
# Usage: scripts/demo.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
[ "$(id -u)" = 0 ] || { echo "demo: must run as root (network namespaces)" >&2; exit 1; }

HOST=vmfdemo-host GUEST=vmfdemo-guest BR=vmfdbr0 NET=10.231.7
W=$(mktemp -d /tmp/vmfence-demo.XXXXXX)
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill -TERM "$DPID" 2>/dev/null && sleep 0.5
    ip netns delete "$GUEST" 2>/dev/null || true
    ip netns delete "$HOST" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT

if [ "${1:-}" != --no-build ]; then
    bash scripts/install-deps.sh --no-fuzz
    echo "==> cargo build --release"
    cargo build --release --locked -p vmfence-daemon -p vmfence-agent 2>&1 | tail -n 1
fi
BIN=$PWD/target/release

echo "==> network lab: namespace $HOST (bridge $BR, $NET.1) and $GUEST ($NET.11)"
for ns in "$HOST" "$GUEST"; do
    ip netns delete "$ns" 2>/dev/null || true
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip -n "$HOST" link add "$BR" type bridge
ip -n "$HOST" link set "$BR" type bridge mcast_snooping 0
ip -n "$HOST" addr add "$NET.1/24" dev "$BR"
ip -n "$HOST" link set "$BR" up
ip -n "$HOST" link add vg1 type veth peer name eth0 netns "$GUEST"
ip -n "$HOST" link set vg1 master "$BR" up
ip -n "$GUEST" addr add "$NET.11/24" dev eth0
ip -n "$GUEST" link set eth0 up
ip -n "$GUEST" route add 224.0.0.0/4 dev eth0

echo "==> key and configuration in $W"
head -c 4096 /dev/urandom > "$W/fence_xvm.key"
chmod 600 "$W/fence_xvm.key"
cat > "$W/fence_virt.conf" <<CONF
fence_virtd {
	listener = "multicast";
	backend = "libvirt";
}
listeners {
	multicast {
		key_file = "$W/fence_xvm.key";
		interface = "$BR";
	}
}
backends {
	libvirt {
		uri = "test:///default";
	}
}
CONF
chmod 600 "$W/fence_virt.conf"
"$BIN/fence_virtd" -f "$W/fence_virt.conf" --check | sed 's/^/    /'

echo "==> starting fence_virtd in $HOST"
ip netns exec "$HOST" "$BIN/fence_virtd" -F -f "$W/fence_virt.conf" -p "$W/fence_virtd.pid" >"$W/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
    grep -q "listening" "$W/daemon.log" 2>/dev/null && break
    kill -0 "$DPID" 2>/dev/null || { cat "$W/daemon.log"; exit 1; }
    sleep 0.1
done

agent() {
    echo "--- guest\$ fence_xvm $*"
    set +e
    ip netns exec "$GUEST" "$BIN/fence_xvm" -k "$W/fence_xvm.key" -t 10 "$@"
    echo "    (exit $?)"
    set -e
}
agent -o list
agent -o status -H test
agent -o off -H test
agent -o status -H test
agent -o on -H test
agent -o status -H test

echo "==> the daemon's log"
sed 's/\x1b\[[0-9;]*m//g' "$W/daemon.log" | sed 's/^/    /'
echo "demo: done"
