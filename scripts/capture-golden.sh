#!/bin/bash
# capture-golden.sh - regenerate the golden wire vectors in
# crates/proto/tests/golden/ from REAL traffic between the classic C programs
# (Debian fence-virt / fence-virtd 4.12.1: fence_xvm, fence_virt, fence_virtd).
#
# What it does (root needed; no systemd):
#   1. builds a private network lab with ../shared/harness/netns-lab.sh
#      (prefix fvgold, 10.232.0.0/24: host ns fvgoldh with bridge fvbr0 =
#      10.232.0.1, guest ns fvgoldg1 with eth0 = 10.232.0.11);
#   2. multicast: C fence_virtd (multicast listener on fvbr0, libvirt backend
#      test:///default) in the host ns, C fence_xvm in the guest ns; tcpdump in
#      the guest ns records the UDP request(s) and the TCP callback;
#   3. tcp: C fence_virtd tcp listener bound to 10.232.0.1, C fence_virt -T;
#      plus one run with a wrong key;
#   4. serial: a libvirt test:///ABS/node.xml domain with a
#      <serial type='unix' mode='bind'> socket served by socat, bridged to a
#      pty; C fence_virtd -l serial, C fence_virt -D <pty>; socat -r/-R record
#      both directions;
#   5. extracts the payload bytes (tshark), verifies every signature and
#      challenge answer independently (python3 hashlib), writes *.bin,
#      *.client.txt, index.tsv and MANIFEST.md.
# The committed golden dir is only replaced when everything verified.
#
# Safety: multicast exists only inside the lab namespaces; no vsock; only the
# processes started here are stopped (by pid); the lab is torn down on exit,
# also on failure. Traffic: one request per client run, bounded by -t.
#
# Usage: sudo scripts/capture-golden.sh        (idempotent, safe to re-run)
# Env:   FV_SHARED=DIR   harness location (default: <repo>/../shared)
#        FV_KEEP=1       keep the work dir /tmp/fvgold-capture for inspection
#        FV_GOLDEN_OUT=DIR  write the vectors there instead of the committed dir
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${FV_SHARED:-$(dirname "$REPO")/shared}
H=$SHARED/harness
GOLDEN=${FV_GOLDEN_OUT:-$REPO/crates/proto/tests/golden}
W=/tmp/fvgold-capture
STAGE=$W/stage

# the lab: a prefix/net of our own, exported so every harness call sees it
export FVLAB_PREFIX=fvgold FVLAB_NET=10.232.0 FVLAB_NET6=fdfe:232:0:0
HNS=fvgoldh GNS=fvgoldg1
HOSTIP=10.232.0.1 GUESTIP=10.232.0.11
TEST_UUID=6695eb01-f6a4-8304-79aa-97f2502e193f

log() { printf '[capture-golden] %s\n' "$*"; }
die() { printf '[capture-golden] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, tcpdump)"
for t in ip tcpdump tshark socat python3 /usr/sbin/fence_virtd /usr/sbin/fence_virt /usr/sbin/fence_xvm; do
    command -v "$t" >/dev/null || die "missing $t"
done
for s in netns-lab.sh start-c-daemon.sh; do [ -x "$H/$s" ] || die "missing $H/$s"; done

# ---------------------------------------------------------------- cleanup
DAEMON_DIRS=()   # workdirs of daemons started via start-c-daemon.sh
BG_PIDS=()       # tcpdump / socat pids started here

pid_is() {  # pid_is PID COMM : PID alive and its comm is COMM
    [ -n "$1" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}
stop_bg() {  # stop_bg PID COMM
    local pid=$1 comm=$2 i
    pid_is "$pid" "$comm" || return 0
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do pid_is "$pid" "$comm" || break; sleep 0.1; done
    pid_is "$pid" "$comm" && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$? d p
    set +e
    for d in "${DAEMON_DIRS[@]}"; do "$H/start-c-daemon.sh" stop "$d"; done
    for p in "${BG_PIDS[@]}"; do stop_bg "${p%%:*}" "${p#*:}"; done
    "$H/netns-lab.sh" down
    if [ "${FV_KEEP:-0}" != 1 ]; then rm -rf "$W"; else log "kept $W"; fi
    [ $rc = 0 ] || log "FAILED (exit $rc); lab torn down, golden dir unchanged"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# leftovers of an interrupted earlier run (only what that run recorded)
if [ -d "$W" ]; then
    for d in "$W"/d-*; do [ -d "$d" ] && "$H/start-c-daemon.sh" stop "$d"; done
    if [ -f "$W/bg.pids" ]; then
        while read -r p; do stop_bg "${p%%:*}" "${p#*:}"; done < "$W/bg.pids"
    fi
    rm -rf "$W"
fi
mkdir -p "$STAGE"
: > "$W/bg.pids"
bg_started() { BG_PIDS+=("$1:$2"); echo "$1:$2" >> "$W/bg.pids"; }

# ---------------------------------------------------------------- keys
# fixed keys: the committed key.bin is the 13 bytes "secretkey-abc" (no
# newline); wrongkey.bin differs in the last three bytes.
printf 'secretkey-abc' > "$STAGE/key.bin"
printf 'secretkey-xyz' > "$STAGE/wrongkey.bin"
# the daemon chmods its key to 0600; work on copies, never the repo files
install -m 600 "$STAGE/key.bin" "$W/key.bin"
install -m 600 "$STAGE/wrongkey.bin" "$W/wrongkey.bin"
KEY=$W/key.bin WRONGKEY=$W/wrongkey.bin

# index of runs for the python step: name kind hash auth keyname exit daemon client
META=$W/meta.tsv
: > "$META"

# ---------------------------------------------------------------- lab
log "lab up: $HNS ($HOSTIP, bridge fvbr0) + $GNS ($GUESTIP)"
"$H/netns-lab.sh" up 1 >/dev/null

CUR_DAEMON=""
start_daemon() {  # start_daemon TAG start-c-daemon options...
    local tag=$1; shift
    stop_daemon
    CUR_DAEMON=$W/d-$tag
    DAEMON_DIRS+=("$CUR_DAEMON")
    local pid
    pid=$("$H/start-c-daemon.sh" -w "$CUR_DAEMON" -k "$KEY" "$@")
    log "fence_virtd [$tag] pid $pid: start-c-daemon.sh $*"
}
stop_daemon() {
    [ -n "$CUR_DAEMON" ] || return 0
    "$H/start-c-daemon.sh" stop "$CUR_DAEMON"
    CUR_DAEMON=""
}

TD_PID=""
capture_start() {  # capture_start NAME : tcpdump in the guest ns, all ifaces
    local name=$1 i
    : > "$W/$name.tcpdump.err"
    # small snaplen + big buffer: in immediate mode libpcap uses one ring
    # frame per packet sized by the snaplen; with -s 0 (256 KiB) the default
    # 2 MiB ring holds ~8 packets and a burst on a busy machine gets dropped.
    ip netns exec "$GNS" tcpdump -Z root --immediate-mode -U -n -c 500 -s 1600 -B 8192 -i any \
        -w "$W/$name.pcap" 'udp port 1229 or tcp port 1229' \
        </dev/null >/dev/null 2>"$W/$name.tcpdump.err" &
    TD_PID=$!
    bg_started "$TD_PID" tcpdump
    for ((i = 0; i < 100; i++)); do
        grep -q 'listening on' "$W/$name.tcpdump.err" && return 0
        kill -0 "$TD_PID" 2>/dev/null || break   # (comm is "ip" until it execs)
        sleep 0.05
    done
    cat "$W/$name.tcpdump.err" >&2
    die "tcpdump did not start"
}
capture_stop() {  # capture_stop NAME
    sleep 0.3   # let the last FIN/ACKs arrive
    stop_bg "$TD_PID" tcpdump
    TD_PID=""
    if ! grep -q '^0 packets dropped by kernel' "$W/$1.tcpdump.err"; then
        cat "$W/$1.tcpdump.err" >&2
        die "$1: tcpdump lost packets; re-run"
    fi
}

# runner: stdout and stderr on two pipes, read in arrival order, so we keep
# both the combined text (NAME.client.txt) and which stream each byte was on
# (NAME.stdout / NAME.stderr in the work dir, shown in MANIFEST.md).
cat > "$W/run.py" <<'PY'
import os, select, subprocess, sys, time
name, outdir, stagedir = sys.argv[1:4]
cmd = sys.argv[4:]
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
fds = {p.stdout.fileno(): b"", p.stderr.fileno(): b""}
combined, deadline = b"", time.monotonic() + 60
while fds and time.monotonic() < deadline:
    r, _, _ = select.select(list(fds), [], [], 0.5)
    for fd in r:
        chunk = os.read(fd, 65536)
        if not chunk:
            key = "stdout" if fd == p.stdout.fileno() else "stderr"
            open(os.path.join(outdir, f"{name}.{key}"), "wb").write(fds.pop(fd))
        else:
            fds[fd] += chunk
            combined += chunk
if fds:
    p.kill()
rc = p.wait()
with open(os.path.join(stagedir, f"{name}.client.txt"), "wb") as f:
    f.write(b"exit=%d\n" % rc + combined)
sys.exit(rc)
PY

run_client() {  # run_client NAME EXPECTED_EXIT CMD... (in the guest ns)
    local name=$1 exp=$2 rc=0; shift 2
    python3 "$W/run.py" "$name" "$W" "$STAGE" ip netns exec "$GNS" "$@" || rc=$?
    log "  $name: $* -> exit $rc"
    [ "$rc" = "$exp" ] || { cat "$STAGE/$name.client.txt" >&2; die "$name: exit $rc, expected $exp"; }
}

# net_vector NAME KIND HASH AUTH KEYNAME EXIT "DAEMON-DESC" CLIENT-ARGV...
net_vector() {
    local name=$1 kind=$2 hash=$3 auth=$4 keyname=$5 exp=$6 ddesc=$7; shift 7
    local shown="$*"
    shown=${shown//$W\//}
    capture_start "$name"
    run_client "$name" "$exp" "$@"
    capture_stop "$name"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$hash" "$auth" "$keyname" \
        "$exp" "$ddesc" "$shown" >> "$META"
}

XVM=(fence_xvm -t 10)           # -t bounds every run; defaults otherwise
MCD="multicast listener 225.0.0.12:1229 on fvbr0, backend libvirt test:///default"

# ---------------------------------------------------------------- 1. multicast
log "1. multicast (fence_xvm in $GNS -> fence_virtd multicast in $HNS)"
start_daemon mc-sha256 -n "$HNS" -l multicast -H sha256 -A sha256
D="$MCD, hash sha256, auth sha256, key key.bin"
net_vector mc_status        mc sha256 sha256 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o status -H test
net_vector mc_list          mc sha256 sha256 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o list
net_vector mc_off           mc sha256 sha256 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o off -H test
net_vector mc_status_off    mc sha256 sha256 key.bin 2 "$D" "${XVM[@]}" -k "$KEY" -o status -H test
net_vector mc_on            mc sha256 sha256 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o on -H test
net_vector mc_status_uuid   mc sha256 sha256 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o status -H "${TEST_UUID^^}"
net_vector mc_monitor       mc sha256 sha256 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o monitor
net_vector mc_status_nosuch mc sha256 sha256 key.bin 2 "$D" "${XVM[@]}" -k "$KEY" -o status -H nosuchdomain

start_daemon mc-sha1 -n "$HNS" -l multicast -H sha1 -A sha256
D="$MCD, hash sha1, auth sha256, key key.bin"
net_vector mc_status_sha1 mc sha1 sha256 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o status -H test -c sha1

start_daemon mc-sha1sha1 -n "$HNS" -l multicast -H sha1 -A sha1
D="$MCD, hash sha1, auth sha1, key key.bin"
net_vector mc_status_sha1_auth_sha1 mc sha1 sha1 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o status -H test -c sha1 -C sha1

start_daemon mc-none -n "$HNS" -l multicast -H none -A none
D="$MCD, hash none, auth none, key key.bin (present, unused)"
net_vector mc_status_none mc none none key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o status -H test -c none -C none

start_daemon mc-sha512 -n "$HNS" -l multicast -H sha256 -A sha512
D="$MCD, hash sha256 (minimum), auth sha512, key key.bin"
net_vector mc_status_sha512 mc sha512 sha512 key.bin 0 "$D" "${XVM[@]}" -k "$KEY" -o status -H test -c sha512 -C sha512

# ---------------------------------------------------------------- 2./3. tcp
log "2. tcp (fence_virt -T $HOSTIP in $GNS -> fence_virtd tcp in $HNS)"
start_daemon tcp -n "$HNS" -l tcp -a "$HOSTIP" -H sha256 -A sha256
D="tcp listener $HOSTIP:1229, backend libvirt test:///default, hash sha256, auth sha256, key key.bin"
FVT=(fence_virt -T "$HOSTIP" -t 10)
net_vector tcp_status tcp sha256 sha256 key.bin 0 "$D" "${FVT[@]}" -k "$KEY" -o status -n test
net_vector tcp_list   tcp sha256 sha256 key.bin 0 "$D" "${FVT[@]}" -k "$KEY" -o list
net_vector tcp_reboot tcp sha256 sha256 key.bin 0 "$D" "${FVT[@]}" -k "$KEY" -o reboot -n test
log "3. wrong key over tcp"
net_vector tcp_wrongkey tcp sha256 sha256 wrongkey.bin 1 "$D" fence_virt -T "$HOSTIP" -t 5 -k "$WRONGKEY" -o status -n test
stop_daemon

# ---------------------------------------------------------------- 4. serial
log "4. serial (fence_virt -D pty in $GNS -> socat -> fence_virtd serial in $HNS)"
S=$W/d-serial
mkdir -p "$S/serial"
cat > "$W/node.xml" <<EOF
<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>1</cores><threads>1</threads><active>1</active><mhz>2000</mhz><model>x86_64</model></cpu>
  <memory>1048576</memory>
  <domain type='test'><name>g1</name><uuid>fe0c0000-0000-0000-0000-0000000000b1</uuid><memory>65536</memory>
    <vcpu>1</vcpu><os><type>hvm</type></os>
    <devices><serial type='unix'><source mode='bind' path='$S/serial/g1.sock'/><target port='1'/></serial></devices></domain>
  <domain type='test'><name>victim</name><uuid>fe0c0000-0000-0000-0000-0000000000b2</uuid><memory>65536</memory>
    <vcpu>1</vcpu><os><type>hvm</type></os></domain>
</node>
EOF
# left = the domain's unix socket (fence_virtd connects) = host side,
# right = the pty the guest agent opens. -r: left->right (host_to_guest),
# -R: right->left (guest_to_host).
socat -r "$W/ser.h2g" -R "$W/ser.g2h" "UNIX-LISTEN:$S/serial/g1.sock" \
    "PTY,link=$W/tty,raw,echo=0" </dev/null >"$W/socat.log" 2>&1 &
bg_started $! socat
for _ in $(seq 100); do [ -S "$S/serial/g1.sock" ] && break; sleep 0.05; done
[ -S "$S/serial/g1.sock" ] || die "socat did not create $S/serial/g1.sock"
start_daemon serial -n "$HNS" -l serial -u "test://$W/node.xml" -w "$S"
for _ in $(seq 100); do [ -e "$W/tty" ] && break; sleep 0.05; done
[ -e "$W/tty" ] || die "socat pty $W/tty missing (daemon did not connect?)"
D="serial listener (mode serial, path DIR/serial), uri test:///ABS/node.xml (domains g1 with <serial type='unix' mode='bind'>, victim), key key.bin (stat()ed only)"
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
settle() {  # wait until both record files stop growing (<= 3 s)
    local a b a2 b2 i
    a=$(fsize "$W/ser.h2g"); b=$(fsize "$W/ser.g2h")
    for ((i = 0; i < 30; i++)); do
        sleep 0.1
        a2=$(fsize "$W/ser.h2g"); b2=$(fsize "$W/ser.g2h")
        [ "$a" = "$a2" ] && [ "$b" = "$b2" ] && [ $i -ge 2 ] && break
        a=$a2 b=$b2
    done
}
echo "start 0 0" > "$W/ser.offsets"
ser_vector() {  # ser_vector NAME EXIT CLIENT-ARGV...
    local name=$1 exp=$2; shift 2
    local shown="$*"
    shown=${shown//$W\//}
    run_client "$name" "$exp" "$@"
    settle
    echo "$name $(fsize "$W/ser.g2h") $(fsize "$W/ser.h2g")" >> "$W/ser.offsets"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" ser none none - "$exp" "$D" "$shown" >> "$META"
}
ser_vector ser_status 0 fence_virt -D "$W/tty" -t 5 -o status -n victim
ser_vector ser_off    0 fence_virt -D "$W/tty" -t 5 -o off -n victim
ser_vector ser_list   0 fence_virt -D "$W/tty" -t 5 -o list
stop_daemon   # closes the unix socket; socat then exits by itself
for p in "${BG_PIDS[@]}"; do [ "${p#*:}" = socat ] && stop_bg "${p%%:*}" socat; done

# ---------------------------------------------------------------- 5. extract + verify
log "5. extracting payloads (tshark) and verifying signatures (python3)"
python3 - "$W" "$STAGE" "$GUESTIP" "$HOSTIP" <<'PY'
import hashlib, os, subprocess, sys, datetime

W, STAGE, GUESTIP, HOSTIP = sys.argv[1:5]
KEYS = {n: open(os.path.join(STAGE, n), "rb").read() for n in ("key.bin", "wrongkey.bin")}
HASHES = {"none": None, "sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}
HNUM = {0: "none", 1: "sha1", 2: "sha256", 3: "sha512"}
REQ = {0: "NULL", 1: "OFF", 2: "REBOOT", 3: "ON", 4: "STATUS", 5: "DEVSTATUS", 6: "HOSTLIST"}
RESP = {0: "SUCCESS", 1: "FAIL", 2: "OFF", 3: "PERM", 0xFD: "HOSTLIST"}
errors = []

def err(name, msg):
    errors.append(f"{name}: {msg}")
    print(f"  FAIL {name}: {msg}", file=sys.stderr)

def pad64(h, data):
    d = HASHES[h](data).digest()
    return d + bytes(64 - len(d))

def tshark(pcap, flt, fields):
    out = subprocess.run(["tshark", "-r", pcap, "-Y", flt, "-T", "fields", "-E", "separator=/t"]
                         + sum((["-e", f] for f in fields), []),
                         check=True, capture_output=True, text=True).stdout
    return [dict(zip(fields, l.split("\t"))) for l in out.splitlines() if l.strip()]

def flag(v):
    return v in ("1", "True", "true")

def cstr(b):
    return b.split(b"\0", 1)[0].decode("latin-1")

def decode_req(r):
    fam = int.from_bytes(r[108:112], "little")
    addr = r[68:96]
    if fam == 2:
        a = ".".join(str(x) for x in addr[:4])
    elif fam == 10:
        import ipaddress; a = str(ipaddress.IPv6Address(addr[:16]))
    else:
        a = "(none)" if not any(addr) else addr.hex()
    return dict(request=r[0], hashtype=r[1], addrlen=r[2], flags=r[3], domain=cstr(r[4:68]),
                domain_b67=r[67], address=a, address_tail_zero=not any(addr[4 if fam == 2 else 16:]) if fam in (2, 10) else True,
                port=int.from_bytes(r[96:98], "little"), random=r[98:104].hex(),
                seqno=int.from_bytes(r[104:108], "little"), family=fam, hash=r[112:176])

def check_sig(name, r, key, expect_hash):
    d = decode_req(r)
    h = HNUM.get(d["hashtype"])
    if h != expect_hash:
        err(name, f"hashtype {d['hashtype']} != expected {expect_hash}")
        return d
    if h == "none":
        if any(r[112:176]) or any(r[98:104]):
            err(name, "hashtype none but hash/random not zero")
    else:
        want = pad64(h, key + r[:112] + bytes(64))
        if r[112:176] != want:
            err(name, f"request hash != {h}(key || request with hash zeroed)")
    return d

def parse_hostlist(name, buf, entry_hdr=b""):
    """buf starts right after the 0xFD marker. Returns entries, terminator offset, rest."""
    entries, off = [], 0
    while True:
        e = buf[off:off + 130]
        if len(e) < 130:
            err(name, "host list truncated"); return entries, off, b""
        off += 130
        if cstr(e[0:63]) == "" and cstr(e[64:127]) == "":
            if any(e):
                err(name, "terminator entry not all zero")
            return entries, off, buf[off:]
        entries.append(dict(domain=cstr(e[0:63]), uuid=cstr(e[64:127]), state=e[128],
                            b63=e[63], b127=e[127], b129=e[129]))

def tcp_dirs(name, pcap):
    rows = tshark(pcap, "tcp", ["frame.number", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
                                "tcp.stream", "tcp.seq", "tcp.len", "tcp.flags.syn", "tcp.flags.ack",
                                "tcp.flags.fin", "tcp.flags.reset", "tcp.payload"])
    streams = sorted({r["tcp.stream"] for r in rows})
    if len(streams) != 1:
        err(name, f"expected exactly one TCP connection, saw {len(streams)}")
        if not streams:
            return None
    rows = [r for r in rows if r["tcp.stream"] == streams[0]]
    syn = [r for r in rows if flag(r["tcp.flags.syn"]) and not flag(r["tcp.flags.ack"])]
    connector = syn[0]["ip.src"] if syn else None
    segs = {}
    closes = []
    for r in rows:
        if flag(r["tcp.flags.fin"]):
            closes.append(f"FIN from {r['ip.src']}")
        if flag(r["tcp.flags.reset"]):
            closes.append(f"RST from {r['ip.src']}")
        n = int(r["tcp.len"] or 0)
        if n:
            segs.setdefault(r["ip.src"], {})[int(r["tcp.seq"])] = bytes.fromhex(r["tcp.payload"])
    data = {}
    for ip, d in segs.items():
        out, nxt = b"", None
        for s in sorted(d):
            if nxt is not None and s != nxt:
                err(name, f"TCP gap/overlap from {ip} at seq {s} (expected {nxt})")
            out += d[s]; nxt = s + len(d[s])
        data[ip] = out
    seg_sizes = [(r["ip.src"], int(r["tcp.len"])) for r in rows if int(r["tcp.len"] or 0)]
    return dict(connector=connector, data=data, closes=closes, segs=seg_sizes)

def check_auth(name, auth, key, a2d, d2a):
    """a2d/d2a without any TCP request. Returns (offset in d2a after auth, notes)."""
    if auth == "none":
        return 0, 0
    if len(a2d) < 128 or len(d2a) < 128:
        err(name, f"short challenge exchange (a2d {len(a2d)}, d2a {len(d2a)})"); return 128, 0
    c_agent, r_daemon_ans = a2d[0:64], d2a[0:64]
    c_daemon, r_agent_ans = d2a[64:128], a2d[64:128]
    if r_daemon_ans != pad64(auth, key + c_agent):
        err(name, "daemon's answer != H(key || agent challenge)")
    if r_agent_ans != pad64(auth, key + c_daemon):
        err(name, "agent's answer != H(key || daemon challenge)")
    if len(a2d) != 128:
        err(name, f"agent sent {len(a2d)} bytes after the request, expected 128")
    return 128, 2

meta = [l.rstrip("\n").split("\t") for l in open(os.path.join(W, "meta.tsv")) if l.strip()]
ser_off = {}
prev = (0, 0)
for l in open(os.path.join(W, "ser.offsets")):
    n, g, h = l.split(); g, h = int(g), int(h)
    if n != "start":
        ser_off[n] = (prev, (g, h))
    prev = (g, h)
g2h_all = open(os.path.join(W, "ser.g2h"), "rb").read() if os.path.exists(os.path.join(W, "ser.g2h")) else b""
h2g_all = open(os.path.join(W, "ser.h2g"), "rb").read() if os.path.exists(os.path.join(W, "ser.h2g")) else b""

def save(name, suffix, data):
    with open(os.path.join(STAGE, f"{name}.{suffix}"), "wb") as f:
        f.write(data)

vectors = []
verified = 0
for name, kind, hsh, auth, keyname, exp, ddesc, cmd in meta:
    nerr = len(errors)
    v = dict(name=name, kind=kind, hash=hsh, auth=auth, keyname=keyname, exit=int(exp),
             daemon=ddesc, client=cmd, files=[], notes=[], checks=0)
    if kind in ("mc", "tcp"):
        key = KEYS[keyname]
        pcap = os.path.join(W, f"{name}.pcap")
        t = tcp_dirs(name, pcap)
        if t is None:
            continue
        agent_ip = GUESTIP
        daemon_ip = HOSTIP
        a2d = t["data"].get(agent_ip, b"")
        d2a = t["data"].get(daemon_ip, b"")
        v["closes"] = t["closes"]; v["segs"] = t["segs"]
        if kind == "mc":
            if t["connector"] != daemon_ip:
                err(name, f"TCP callback opened by {t['connector']}, expected the daemon {daemon_ip}")
            dg = tshark(pcap, "udp.dstport == 1229",
                        ["frame.number", "ip.src", "ip.dst", "udp.srcport", "udp.payload"])
            seen, grams = set(), []
            for r in dg:
                p = bytes.fromhex(r["udp.payload"])
                if p in seen:
                    continue
                seen.add(p); grams.append((r["ip.src"], r["ip.dst"], p))
            v["datagrams"] = [(s, d, len(p), decode_req(p)["address"]) for s, d, p, in grams]
            for i, (s, d, p) in enumerate(grams):
                if len(p) != 176:
                    err(name, f"datagram {i} is {len(p)} bytes")
                check_sig(f"{name}[datagram {i} from {s}]", p, key, hsh)
                v["checks"] += 1
            called = [p for s, d, p in grams if decode_req(p)["address"] == agent_ip]
            if not called:
                err(name, "no datagram carries the called-back address"); continue
            req = called[0]
            if len({decode_req(p)["seqno"] for s, d, p in grams}) != 1:
                err(name, "datagrams of one run carry different seqnos")
            save(name, "request.bin", req); v["files"].append(f"{name}.request.bin")
            auth_a2d = a2d
        else:
            if t["connector"] != agent_ip:
                err(name, f"TCP connection opened by {t['connector']}, expected the agent")
            req = a2d[:176]
            save(name, "request.bin", req); v["files"].append(f"{name}.request.bin")
            auth_a2d = a2d[176:]
        save(name, "agent_to_daemon.bin", a2d); v["files"].append(f"{name}.agent_to_daemon.bin")
        save(name, "daemon_to_agent.bin", d2a); v["files"].append(f"{name}.daemon_to_agent.bin")
        d = check_sig(name, req, key, hsh); v["checks"] += 1
        v["req"] = d
        if keyname == "wrongkey.bin":
            # wrong key: the request must NOT verify under the daemon's key
            good = KEYS["key.bin"]
            if req[112:176] == pad64(hsh, good + req[:112] + bytes(64)):
                err(name, "wrong-key request verifies under key.bin?!")
            v["checks"] += 1
            v["a2d_len"], v["d2a_len"] = len(a2d), len(d2a)
            if d2a:
                err(name, f"daemon sent {len(d2a)} bytes to a wrong-key client")
        else:
            off, n = check_auth(name, auth, key, auth_a2d, d2a); v["checks"] += n
            rest = d2a[off:]
            if not rest:
                err(name, "no result byte")
            else:
                v["result"] = rest[0]
                if rest[0] == 0xFD:
                    ents, toff, tail = parse_hostlist(name, rest[1:])
                    v["entries"] = ents
                    if len(tail) != 1:
                        err(name, f"expected 1 final byte after the terminator, got {len(tail)}")
                    else:
                        v["final"] = tail[0]
                elif len(rest) != 1:
                    err(name, f"{len(rest) - 1} unexpected bytes after the result")
    else:  # serial
        (g0, h0), (g1, h1) = ser_off[name]
        g2h, h2g = g2h_all[g0:g1], h2g_all[h0:h1]
        save(name, "guest_to_host.bin", g2h); v["files"].append(f"{name}.guest_to_host.bin")
        save(name, "host_to_guest.bin", h2g); v["files"].append(f"{name}.host_to_guest.bin")
        if len(g2h) != 74:
            err(name, f"guest_to_host is {len(g2h)} bytes, expected 74")
        v["sreq"] = dict(magic=g2h[0:4].hex(), request=g2h[4], flags=g2h[5], domain=cstr(g2h[6:70]),
                         seqno=int.from_bytes(g2h[70:74], "little"))
        if g2h[0:4] != b"abba":
            err(name, "request magic is not abba")
        if h2g[0:4] != b"abba":
            err(name, "response magic is not abba")
        else:
            v["result"] = h2g[4]
            if h2g[4] == 0xFD:
                ents, toff, tail = parse_hostlist(name, h2g[5:])
                v["entries"] = ents
                if len(tail) != 5 or tail[0:4] != b"abba":
                    err(name, f"expected a 5-byte abba record after the terminator, got {tail.hex()}")
                else:
                    v["final"] = tail[4]
            elif len(h2g) != 5:
                err(name, f"host_to_guest is {len(h2g)} bytes, expected 5")
        v["checks"] += 1
    # the result byte must agree with the client's exit status
    if "result" in v and v["result"] != 0xFD and keyname != "wrongkey.bin":
        want_exit = {0: 0, 2: 2}.get(v["result"], 1)
        if want_exit != v["exit"]:
            err(name, f"result {v['result']} but client exit {v['exit']}")
    ok = len(errors) == nerr
    if ok:
        verified += 1
    print(f"  {'ok  ' if ok else 'FAIL'} {name}: {', '.join(f + ' (' + str(os.path.getsize(os.path.join(STAGE, f))) + ' B)' for f in v['files'])}")
    vectors.append(v)

# ------------------------------------------------------------- index.tsv
with open(os.path.join(STAGE, "index.tsv"), "w") as f:
    f.write("# name\ttransport\thash\tauth\tkey\texit\trequest\tresult\tfinal\tentries\n")
    for v in vectors:
        rq = v.get("req", {}).get("request", v.get("sreq", {}).get("request", ""))
        f.write("\t".join(str(x) for x in (
            v["name"], {"mc": "multicast", "tcp": "tcp", "ser": "serial"}[v["kind"]], v["hash"], v["auth"],
            v["keyname"], v["exit"], rq, v.get("result", "-"), v.get("final", "-"),
            len(v.get("entries", [])) if "entries" in v else "-")) + "\n")

# ------------------------------------------------------------- MANIFEST.md
M = []
A = M.append
A("# Golden wire vectors from the classic C fence-virt 4.12.1\n")
A("Generated by `scripts/capture-golden.sh` (run it as root to regenerate; it rewrites this whole")
A(f"directory). Last run: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. "
  "Random bytes, challenges and seqnos differ on every run; the layouts below do not.\n")
A("Peers: Debian bookworm `fence-virt` / `fence-virtd` 4.12.1-1 (`/usr/sbin/fence_xvm` -> `fence_virt`,")
A("`/usr/sbin/fence_virtd`), daemon configs written by `shared/harness/start-c-daemon.sh`.\n")
A("## Keys\n")
A("* `key.bin`: exactly the 13 ASCII bytes `secretkey-abc` (no newline). Used by both sides of every")
A("  vector except `tcp_wrongkey`, for every hash/auth type.")
A("* `wrongkey.bin`: the 13 bytes `secretkey-xyz`: the client's key in `tcp_wrongkey` (daemon uses key.bin).\n")
A("## Lab\n")
A(f"Network namespaces from `netns-lab.sh up 1` (prefix `fvgold`): host ns `fvgoldh`, bridge `fvbr0` = {HOSTIP}/24;")
A(f"guest ns `fvgoldg1`, `eth0` = {GUESTIP}/24 plus `lo` = 127.0.0.1. Daemons run in the host ns, clients in")
A("the guest ns. tcpdump (`-i any`, guest ns) records the traffic; payload bytes are extracted with tshark")
A("(`udp.payload`, `tcp.payload` per segment, reassembled by sequence number). The serial path has no")
A("network: socat's `-r`/`-R` record files give the two directions.\n")
A("## File naming and byte layouts\n")
A("All integers little-endian. `H_h` = SHA-1/256/512 per hash type, `pad64(x)` = x followed by zeros to 64 bytes.\n")
A("* `NAME.request.bin` - the 176-byte `fence_req_t` (spec §1.2): `request`@0, `hashtype`@1, `addrlen`@2,")
A("  `flags`@3, `domain`[64]@4, `address`[28]@68, `port` u16@96, `random`[6]@98, `seqno` u32@104, `family` u32@108,")
A("  `hash`[64]@112 = pad64(H_hash(key || bytes 0..176 with the hash field zeroed)); all zero for hash none.")
A("  Multicast: the UDP datagram that was called back (its `address` equals the TCP peer). TCP: the first")
A("  176 bytes the agent sent on the connection (also the start of `agent_to_daemon.bin`).")
A("* `NAME.agent_to_daemon.bin` / `NAME.daemon_to_agent.bin` - every TCP payload byte of one connection")
A("  per direction, in order (agent = fence_xvm/fence_virt, daemon = fence_virtd). With auth != none:")
A("  * multicast callback (daemon connected to the agent):")
A("    `agent_to_daemon` = C_agent[64] @0, then pad64(H_auth(key || C_daemon)) @64 (128 bytes);")
A("    `daemon_to_agent` = pad64(H_auth(key || C_agent)) @0, C_daemon[64] @64, result byte @128.")
A("  * tcp (agent connected to the daemon): identical, except `agent_to_daemon` starts with the 176-byte")
A("    request: C_agent @176, answer @240 (304 bytes). `daemon_to_agent` as above.")
A("  * with auth none (`mc_status_none`): `agent_to_daemon` is empty, `daemon_to_agent` is just the result byte.")
A("  * if the result byte is 0xFD (host list): 0xFD, then N x 130-byte `host_state_t` (domain[64]@0,")
A("    uuid[64]@64, state@128, pad@129), then a 130-byte all-zero terminator, then the final result byte")
A("    (0 = success from the libvirt backend). The C client stops reading at the terminator.")
A("* `NAME.guest_to_host.bin` - serial: the 74-byte `serial_req_t` (magic `abba`@0, request@4, flags@5,")
A("  domain[64]@6, seqno u32@70). No key, no hash, no challenge.")
A("* `NAME.host_to_guest.bin` - serial: one 5-byte `serial_resp_t` (`abba` + response), or for list:")
A("  `abba` 0xFD, N x 130-byte entries, 130-byte terminator, `abba` + final result (never read by the C client).")
A("* `NAME.client.txt` - the C client's exit status (first line `exit=N`), then its stdout+stderr (")
A("  captured on two pipes and merged in arrival order; the MANIFEST shows each stream separately).")
A("* `index.tsv` - one line per vector: name, transport, hash, auth, key, exit, request code,")
A("  result byte, final byte after a host list, number of host-list entries (`-` = not applicable).\n")
A("Challenges are not stored separately: take them from the stream files at the offsets above.\n")
A("## Vectors\n")
A("| vector | transport | client command (in the guest ns) | client exit | result byte |")
A("|---|---|---|---|---|")
for v in vectors:
    res = v.get("result")
    rs = "-" if res is None else f"0x{res:02X} {RESP.get(res, '?')}"
    A(f"| `{v['name']}` | {v['kind']} | `{v['client']}` | {v['exit']} | {rs} |")
A("")
for v in vectors:
    A(f"### {v['name']}\n")
    A(f"* client: `{v['client']}`" + (f" (key `{v['keyname']}`, hash {v['hash']}, auth {v['auth']})" if v["kind"] != "ser" else " (serial: no key, no hash, no auth)"))
    A(f"* daemon: {v['daemon']}")
    A("* files: " + ", ".join(f"`{f}` ({os.path.getsize(os.path.join(STAGE, f))} B)" for f in v["files"] + [v["name"] + ".client.txt"]))
    if "req" in v:
        d = v["req"]
        hs = HNUM.get(d["hashtype"], "?")
        dl = {"sha1": 20, "sha256": 32, "sha512": 64}.get(hs, 0)
        A(f"* request: request={d['request']} ({REQ.get(d['request'], '?')}), hashtype={d['hashtype']} ({hs}), "
          f"addrlen={d['addrlen']}, flags={d['flags']}, domain=`{d['domain']}`, address={d['address']}, "
          f"port={d['port']}, random={d['random']}, seqno={d['seqno']}, family={d['family']}")
        A(f"* hash field: {dl}-byte digest `{d['hash'][:dl].hex()}` + {64 - dl} zero bytes" if dl else
          "* hash field: 64 zero bytes (and `random` is zero)")
    if "sreq" in v:
        s = v["sreq"]
        A(f"* serial request: magic={s['magic']}, request={s['request']} ({REQ.get(s['request'], '?')}), "
          f"flags={s['flags']}, domain=`{s['domain']}`, seqno={s['seqno']}")
    if "datagrams" in v:
        A(f"* UDP datagrams sent by fence_xvm in this run: {len(v['datagrams'])} (one per local IPv4 address, same seqno, "
          "own random/hash each): " + "; ".join(f"{s} -> {d}, address field {a}" for s, d, n, a in v["datagrams"])
          + f". Kept: the one with address {GUESTIP} (the TCP peer); the 127.0.0.1 one never leaves the guest ns.")
    if "segs" in v:
        A("* TCP segments (sender, payload bytes): " + ", ".join(f"{'agent' if s == GUESTIP else 'daemon'} {n}" for s, n in v["segs"])
          + "; close: " + (", ".join(("agent" if GUESTIP in c else "daemon") + " " + c.split()[0] for c in v["closes"]) or "-"))
    if v["keyname"] == "wrongkey.bin":
        A(f"* wrong key: agent sent {v['a2d_len']} bytes (the 176-byte request + {v['a2d_len'] - 176} bytes of its "
          f"challenge), daemon sent {v['d2a_len']} bytes before closing; client exit {v['exit']}.")
    if "result" in v:
        A(f"* result byte: 0x{v['result']:02X} ({RESP.get(v['result'], '?')})"
          + (f", final byte after the list: 0x{v['final']:02X}" if "final" in v else ""))
    if "entries" in v:
        A("* host-list entries (state = raw virDomainState; bytes at entry offsets 63/127/129 are not written by the C server):")
        for e in v["entries"]:
            A(f"  * `{e['domain']}` `{e['uuid']}` state={e['state']}  [off63=0x{e['b63']:02x} off127=0x{e['b127']:02x} off129=0x{e['b129']:02x}]")
    A(f"* client exit status {v['exit']}; output by stream (`{v['name']}.client.txt` has both, in arrival order):\n")
    for stream in ("stdout", "stderr"):
        txt = open(os.path.join(W, f"{v['name']}.{stream}"), "rb").read().decode("utf-8", "replace")
        if not txt:
            A(f"  {stream}: (empty)\n")
            continue
        A(f"  {stream}" + ("" if txt.endswith("\n") else " (no trailing newline)") + ":\n")
        A("  ```")
        for l in txt.rstrip("\n").split("\n"):
            A("  " + l)
        A("  ```\n")
A("## Observations\n")
garb = [(v["name"], e) for v in vectors for e in v.get("entries", []) if e["b63"] or e["b127"] or e["b129"]]
if garb:
    A("* Host-list entries carry non-zero bytes at offsets 63, 127 and/or 129 (uninitialised stack in the C")
    A("  server, spec §1.3): " + "; ".join(f"{n}/{e['domain']}: {e['b63']:02x} {e['b127']:02x} {e['b129']:02x}" for n, e in garb)
      + ". Parsers must ignore them.")
else:
    A("* In this run every host-list entry had zeros at offsets 63, 127, 129 (the C server does not guarantee it).")
A("* fence_xvm sends one datagram per local IPv4 address (here 127.0.0.1 and the guest's eth0 address),")
A("  all with the same seqno; only the eth0 one reaches the daemon and is called back.")
A("* The daemon's challenge answer is the padded digest even for SHA-1 (20 + 44 zero bytes).")
A("* Serial list: the C server ends with an extra `abba` + final-result record after the terminator.")
A("* Serial over a pty: fence_virt prints `ioctl1: Inappropriate ioctl for device` on stderr (its DTR/RTS")
A("  \"hangup\" uses modem-control ioctls a pty does not support) and carries on; a real serial port would not")
A("  print it. It is part of the recorded output, not of the protocol.")
A("* TCP closes: after a host list the daemon closes first and the agent, which never reads the final")
A("  result byte, closes with unread data, so the kernel sends RST. With a wrong key the daemon closes")
A("  right after reading the 176-byte request; the agent's 64-byte challenge is already in flight, so the")
A("  daemon's kernel answers it with RST (sometimes after a FIN, depending on timing). The daemon sends no")
A("  payload byte at all. The client's message is printed on stdout without a newline, and its errno text")
A("  depends on that timing: `Error reading challenge response: Broken pipe` or `... Connection reset by")
A("  peer`, directly followed by `Invalid response to challenge`, then `Operation failed`; exit 1.")
with open(os.path.join(STAGE, "MANIFEST.md"), "w") as f:
    f.write("\n".join(M) + "\n")

if errors:
    print(f"{verified} vectors verified, {len(errors)} problem(s):", file=sys.stderr)
    for e in errors:
        print("  " + e, file=sys.stderr)
    sys.exit(1)
print(f"{verified} vectors verified")
PY

# ---------------------------------------------------------------- install
log "installing into $GOLDEN"
mkdir -p "$GOLDEN"
# remove only what this script generates, then copy the fresh set
find "$GOLDEN" -maxdepth 1 -type f \( -name '*.bin' -o -name '*.client.txt' -o -name 'index.tsv' -o -name 'MANIFEST.md' \) -delete
cp "$STAGE"/* "$GOLDEN"/
chmod 644 "$GOLDEN"/*
log "wrote $(find "$GOLDEN" -maxdepth 1 -type f | wc -l) files ($(du -sb "$GOLDEN" | cut -f1) bytes) to ${GOLDEN#"$REPO"/}"
