#!/bin/bash
# pacemaker-lab.sh - a throw-away one-node corosync + Pacemaker cluster in a
# network namespace, with a given fence_xvm standing in for /usr/sbin/fence_xvm,
# leaving no trace on the machine. Used by crates/agent/tests/pacemaker.rs;
# also usable by hand (root, Debian 12, corosync + pacemaker installed, no
# systemd needed).
#
# The cluster runs in private mount and pid namespaces made here, inside the
# network namespace NETNS (make it first, e.g. a guest of a testlab Lab):
#   * the agent is bind-mounted over /usr/sbin/fence_xvm (Pacemaker runs fence
#     agents from /usr/sbin only); the real file is untouched, and other
#     processes on the machine keep seeing the classic agent;
#   * /etc/corosync, /var/lib/corosync, /var/log/corosync, /var/lib/pacemaker
#     and /var/log/pacemaker are bind mounts of directories under WORKDIR;
#     /run and /dev/shm (libqb's IPC ring buffers) are fresh tmpfs mounts;
#   * libqb IPC sockets are abstract unix sockets, private to NETNS;
#   * logging goes to files under WORKDIR only (no syslog).
# This script is process 1 of the pid namespace: when it exits, the kernel
# kills every process left in it, and the mounts go with the last of them.
#
# Usage:
#   pacemaker-lab.sh start NETNS WORKDIR ADDR AGENT
#       Start the cluster (node "node1", corosync knet on ADDR, an address of
#       NETNS; first CIB with dc-deadtime=2s, nothing else configured) and
#       print "ready" once corosync is quorate and node1 is the DC (60 s at
#       most in all), as "ready pid=PID ...", PID being this command's
#       process id (the one "exec" needs).
#       Stays in the foreground until its standard input is closed, then stops
#       pacemakerd (SIGTERM, waits up to 60 s, then SIGKILL) and corosync
#       (15 s), and exits 0. Exits non-zero, with the logs' tails on standard
#       error, if either dies early or does not come up within 60 s.
#       The process this command becomes (ip netns exec and unshare exec) is
#       unshare, which ignores SIGTERM and SIGINT: close its standard input,
#       or send SIGTERM to its one child (this script, inside) for the same
#       clean stop. SIGKILL to it kills the whole cluster (--kill-child, then
#       the pid namespace goes).
#   pacemaker-lab.sh exec PID COMMAND [ARG...]
#       Run COMMAND inside the cluster started by the "start" process PID
#       (its mount, network and pid namespaces), e.g.
#       pacemaker-lab.sh exec PID stonith_admin -L
set -euo pipefail

die() { echo "pacemaker-lab: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

cmd=${1:-}
case "$cmd" in
start)
    [ $# -eq 5 ] || usage
    ns=$2 work=$3 addr=$4 agent=$5
    [ "$(id -u)" = 0 ] || die "must run as root"
    [ -d "$work" ] || die "no directory $work"
    [ -x "$agent" ] || die "no agent $agent"
    work=$(cd "$work" && pwd) agent=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent")
    self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
    [ -e "/run/netns/$ns" ] || die "no network namespace $ns"
    exec ip netns exec "$ns" unshare --mount --propagation private --pid --kill-child \
        --mount-proc -- /bin/bash "$self" inside "$work" "$addr" "$agent" "$$"
    ;;
exec)
    [ $# -ge 3 ] || usage
    pid=$2
    shift 2
    [ -e "/proc/$pid/ns/pid_for_children" ] || die "no cluster process $pid"
    exec nsenter --target "$pid" --mount --net --pid="/proc/$pid/ns/pid_for_children" --wd=/ -- "$@"
    ;;
inside) ;;
*) usage ;;
esac

# --- inside: process 1 of the new pid namespace, in the new mount namespace.
[ $# -eq 5 ] || usage
work=$2 addr=$3 agent=$4 outer=$5 # outer: the start process, as seen outside
[ $$ = 1 ] || die "inside: not process 1 of a pid namespace"

# Directories the cluster writes, owned as the packages own them.
for d in etc-corosync var-lib-corosync var-log-corosync; do
    mkdir -p "$work/$d"
done
for d in var-lib-pacemaker/cib var-lib-pacemaker/pengine var-lib-pacemaker/blackbox \
    var-lib-pacemaker/cores var-log-pacemaker; do
    mkdir -p "$work/$d"
done
# The first CIB: a one-node cluster need not wait the default 20 s for
# another DC to show up before electing itself. The rest (stonith-enabled,
# devices) is left to the user: cibadmin, crm_attribute or pcs.
if [ ! -e "$work/var-lib-pacemaker/cib/cib.xml" ]; then
    cat >"$work/var-lib-pacemaker/cib/cib.xml" <<'CIB'
<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="2s"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
CIB
    chmod 600 "$work/var-lib-pacemaker/cib/cib.xml"
fi
chown -R hacluster:haclient "$work/var-lib-pacemaker" "$work/var-log-pacemaker"
chmod 750 "$work"/var-lib-pacemaker/*
chmod 770 "$work/var-log-pacemaker"

mount -t tmpfs -o mode=0755,size=64m vmfence-run /run
mount -t tmpfs -o mode=1777,size=256m vmfence-shm /dev/shm
mount --bind "$work/etc-corosync" /etc/corosync
mount --bind "$work/var-lib-corosync" /var/lib/corosync
mount --bind "$work/var-log-corosync" /var/log/corosync
mount --bind "$work/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$work/var-log-pacemaker" /var/log/pacemaker
# /usr/sbin/fence_xvm is a symlink (to fence_virt) on Debian: the bind mount
# lands on the file it points to, in this mount namespace only.
mount --bind "$agent" /usr/sbin/fence_xvm
cmp -s "$agent" /usr/sbin/fence_xvm || die "the agent bind mount did not take"

cat >/etc/corosync/corosync.conf <<EOF
# written by scripts/pacemaker-lab.sh
totem {
	version: 2
	cluster_name: vmfence-lab
	transport: knet
	crypto_cipher: none
	crypto_hash: none
}
nodelist {
	node {
		name: node1
		nodeid: 1
		ring0_addr: $addr
	}
}
quorum {
	provider: corosync_votequorum
}
logging {
	to_stderr: no
	to_logfile: yes
	logfile: /var/log/corosync/corosync.log
	to_syslog: no
	timestamp: on
}
EOF

export PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none PCMK_logpriority=crit
export PCMK_debug=${PCMK_debug:-no}

cpid="" ppid=""
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
tails() {
    for f in /var/log/corosync/corosync.log /var/log/pacemaker/pacemaker.log "$work/corosync.out" "$work/pacemakerd.out"; do
        [ -s "$f" ] && { echo "--- $f" >&2; tail -n 40 "$f" >&2; }
    done
    return 0
}
# Stop one process by pid: signal, wait up to $2 seconds, then SIGKILL.
stop_pid() {
    local pid=$1 limit=$2 i
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
        alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    echo "pacemaker-lab: pid $pid did not stop in ${limit}s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
stopping=0
stop_all() {
    [ "$stopping" = 1 ] && return 0
    stopping=1
    stop_pid "$ppid" 60
    stop_pid "$cpid" 15
}
trap 'stop_all; exit 0' TERM INT HUP

corosync -f >"$work/corosync.out" 2>&1 </dev/null &
cpid=$!
deadline=$((SECONDS + 60))
until corosync-quorumtool -s 2>/dev/null | grep -q '^Quorate: *Yes'; do
    alive "$cpid" || { echo "pacemaker-lab: corosync exited" >&2; tails; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "pacemaker-lab: corosync not quorate in 60 s" >&2; tails; stop_all; exit 1; }
    sleep 0.2
done

pacemakerd >"$work/pacemakerd.out" 2>&1 </dev/null &
ppid=$!
until crm_mon -1 2>/dev/null | grep -q '^ *\* Current DC: node1 '; do
    alive "$ppid" || { echo "pacemaker-lab: pacemakerd exited" >&2; tails; stop_all; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "pacemaker-lab: no DC within 60 s" >&2; tails; stop_all; exit 1; }
    sleep 0.3
done
echo "ready pid=$outer (corosync=$cpid pacemakerd=$ppid inside)"

# Until standard input closes: watch both daemons once a second.
status=0
while true; do
    if read -r -t 1 _; then
        continue
    elif [ $? -le 128 ]; then
        break # end of input
    fi
    if ! alive "$cpid" || ! alive "$ppid"; then
        echo "pacemaker-lab: a cluster daemon exited" >&2
        tails
        status=1
        break
    fi
done
stop_all
exit "$status"
