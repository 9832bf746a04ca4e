#!/bin/bash
# agent-install-deps.sh - Debian packages the agent tests (crates/agent) need
# beyond the build: the classic C daemon they interoperate with, iproute2 for
# the namespace labs, xmllint and fence-agents' metadata.rng for the metadata
# check; pcs (optional, --pcs) for the pcs test. Run as root; idempotent.
#
# Usage: scripts/agent-install-deps.sh [--pcs]
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "agent-install-deps: must run as root" >&2; exit 1; }

PKGS=(fence-virtd libvirt0 iproute2 libxml2-utils fence-agents)
[ "${1:-}" = --pcs ] && PKGS+=(pcs pacemaker-cli-utils)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "agent-install-deps: ok"; exit 0; }

made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -q -y -o DPkg::Lock::Timeout=600)
log=$(mktemp /tmp/agent-install-deps.XXXXXX.log)
echo "agent-install-deps: apt-get install ${missing[*]}"
"${APT[@]}" update >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
"${APT[@]}" install --no-install-recommends "${missing[@]}" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; exit 1; }
rm -f "$log"
echo "agent-install-deps: ok"
