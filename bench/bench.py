#!/usr/bin/env python3
"""bench.py - vmfence against the classic C fence-virt, measured in one run.

Issues #3 (daemon) and #4 (agents). Every number is measured twice in the same
run, once with the classic C peer and once with ours, and printed as a ratio
ours/C next to its target. Nothing here is a test: a missed target is reported
with the real numbers, never retried until it passes.

Layout: two network-namespace labs made with the harness's netns-lab.sh, one
per daemon, so both daemons run side by side and the latency loops can
alternate between them (background load hits both alike):
  vmfbch + vmfbcg1..N   the classic /usr/sbin/fence_virtd
  vmfboh + vmfbog1..N   our fence_virtd
Both daemons are started by the harness's start-c-daemon.sh (ours through
FENCE_VIRTD=), so they read the very same configuration. All multicast stays
inside these namespaces. Clients run in the guest namespaces through a small
timing helper (this file, "_runner"), which spawns each agent and times the
whole process.

Parts (--only, comma separated; default all):
  status      #1 classic fence_xvm -o status against each daemon (and #6:
              our agent + our daemon vs the C agent + the C daemon), interleaved
  agent       alias of status (the same loop measures #1 and #6)
  lost        #7 the first request datagram dropped in the host namespace
              (iptables quota rule), whole-process time of each agent
  throughput  #2 fvclient.py, 16 concurrent clients for >= 20 s, req/s and the
              daemon's CPU time per request (/proc/PID/stat utime+stime)
  list        #3 classic fence_xvm -o list on a 1001-domain test node
  storm       #5 16 concurrent fence_xvm -o off on real QEMU guests
              (qemu:///system, under flock /tmp/vmfence-libvirtd.lock)
  #4 (peak RSS, VmHWM) is read from every daemon after its runs.

Run through bench/run.sh (builds our release binaries first). As root.
"""

import argparse
import datetime
import errno
import fcntl
import json
import math
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
HARNESS = os.environ.get("VMFENCE_HARNESS") or os.path.normpath(
    os.path.join(REPO, "..", "shared", "harness"))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

C_FVD = "/usr/sbin/fence_virtd"
C_XVM = "/usr/sbin/fence_xvm"
LIBVIRT_LOCK = "/tmp/vmfence-libvirtd.lock"
GUEST_PREFIX = "vmfb"           # libvirt guests vmfb1..vmfb16 (storm)
LAB_C, LAB_O = "vmfbc", "vmfbo"  # netns prefixes
NET_C, NET_O = "10.229.61", "10.229.62"
STORM_N = 16
CHUNK_S = 2.5                   # throughput: seconds per fvclient run
TICK = os.sysconf("SC_CLK_TCK")
PARTS = ["status", "lost", "throughput", "list", "storm"]


def log(msg):
    print("==> " + msg, file=sys.stderr, flush=True)


def note(msg):
    print("    " + msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def sh(argv, env=None, timeout=120, check=True, quiet=False):
    """Run a command (not timed), return stdout; raise BenchError on failure."""
    e = dict(os.environ)
    if env:
        e.update(env)
    try:
        p = subprocess.run(argv, env=e, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("timed out after %ss: %s" % (timeout, " ".join(argv)))
    if check and p.returncode != 0:
        raise BenchError("%s: exit %d\n%s%s" % (" ".join(argv), p.returncode,
                                                "" if quiet else p.stdout[-2000:], p.stderr[-2000:]))
    return p.stdout


# ---------------------------------------------------------------- the runner

def runner_main():
    """Inside a namespace: read one JSON request per line, run the command,
    answer with exit code, wall time (perf_counter) and CLOCK_MONOTONIC stamps."""
    current = {"p": None}

    def on_term(_sig, _frm):
        p = current["p"]
        if p is not None and p.poll() is None:
            p.kill()
        os._exit(1)

    signal.signal(signal.SIGTERM, on_term)
    for line in sys.stdin:
        req = json.loads(line)
        out, err, rc = b"", b"", None
        t_start = time.monotonic()
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(req["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            current["p"] = p
            out, err = p.communicate(timeout=req.get("timeout", 60))
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            rc = "timeout"
        except OSError as e:
            rc = "spawn: %s" % e
        dt = time.perf_counter() - t0
        t_end = time.monotonic()
        current["p"] = None
        res = {"rc": rc, "s": dt, "t_start": t_start, "t_end": t_end,
               "lines": out.count(b"\n"), "out": out[:300].decode(errors="replace"),
               "err": err[-600:].decode(errors="replace")}
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


class Runner:
    """A timing helper living in namespace `ns` (spawned by pid, killed by pid)."""

    def __init__(self, ns):
        self.ns = ns
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, PY, os.path.abspath(__file__), "_runner"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def send(self, argv, timeout):
        self.p.stdin.write(json.dumps({"argv": argv, "timeout": timeout}) + "\n")
        self.p.stdin.flush()

    def receive(self, timeout):
        r, _, _ = select.select([self.p.stdout], [], [], timeout + 15)
        if not r:
            raise BenchError("runner in %s did not answer" % self.ns)
        line = self.p.stdout.readline()
        if not line:
            raise BenchError("runner in %s died" % self.ns)
        return json.loads(line)

    def run(self, argv, timeout=30):
        self.send(argv, timeout)
        return self.receive(timeout)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
                self.p.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                self.p.terminate()
                try:
                    self.p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.p.kill()
                    self.p.wait()


# ------------------------------------------------------------ labs, daemons

class Lab:
    def __init__(self, prefix, net, nguests):
        self.prefix, self.net, self.n = prefix, net, nguests
        self.env = {"FVLAB_PREFIX": prefix, "FVLAB_NET": net}
        self.host = prefix + "h"
        self.up = False

    def create(self):
        self.up = True
        sh(["bash", os.path.join(HARNESS, "netns-lab.sh"), "up", str(self.n)], env=self.env, timeout=180)

    def guest(self, i):
        return "%sg%d" % (self.prefix, i)

    def addr(self, i):
        return "%s.%d" % (self.net, 10 + i)

    def destroy(self):
        if self.up:
            sh(["bash", os.path.join(HARNESS, "netns-lab.sh"), "down"], env=self.env, check=False)
            self.up = False


def read_stat(pid):
    """utime+stime (ticks) of a live process, all threads included."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def read_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError("no %s for pid %d" % (field, pid))


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


class Daemon:
    """A fence_virtd started by start-c-daemon.sh in `lab.host`."""

    def __init__(self, kind, binary, lab, uri, key, workdir):
        self.kind, self.binary, self.lab, self.uri, self.key = kind, binary, lab, uri, key
        self.workdir = workdir
        self.pid = None

    def start(self):
        os.makedirs(self.workdir, exist_ok=True)
        out = sh(["bash", os.path.join(HARNESS, "start-c-daemon.sh"), "-n", self.lab.host, "-u", self.uri,
                  "-k", self.key, "-w", self.workdir, "-W", "30"],
                 env={"FENCE_VIRTD": self.binary}, timeout=60)
        self.pid = int(out.strip().splitlines()[-1])
        note("%s fence_virtd pid %d in %s (%s)" % (self.kind, self.pid, self.lab.host, self.uri))
        return self

    def alive(self):
        return self.pid is not None and comm(self.pid) == "fence_virtd"

    def cpu_ticks(self):
        if not self.alive():
            raise BenchError("%s daemon (pid %s) is gone; log %s/fence_virtd.log" %
                             (self.kind, self.pid, self.workdir))
        return read_stat(self.pid)

    def hwm_kb(self):
        self.cpu_ticks()  # liveness check
        return read_status_kb(self.pid, "VmHWM")

    def stop(self):
        if self.pid is None:
            return
        sh(["bash", os.path.join(HARNESS, "start-c-daemon.sh"), "stop", self.workdir], check=False)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.pid = None


# ------------------------------------------------------------------- stats

def pctl(xs, p):
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(p * len(s)) - 1))]


def summary(times):
    if not times:
        return {"n": 0}
    return {"n": len(times), "median": statistics.median(times), "p90": pctl(times, 0.9),
            "min": min(times), "max": max(times), "mean": statistics.fmean(times)}


def ms(x):
    return "—" if x is None else "%.2f ms" % (x * 1e3)


# --------------------------------------------------------------- the bench

class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = os.path.abspath(a.bin_dir)
        self.our_fvd = os.path.join(self.bin, "fence_virtd")
        self.our_xvm = os.path.join(self.bin, "fence_xvm")
        self.work = tempfile.mkdtemp(prefix="vmfence-bench-")
        self.key = os.path.join(self.work, "fence_xvm.key")
        self.labs = []
        self.daemons = []
        self.runners = []
        self.rows = []        # table rows
        self.details = []     # markdown lines for RESULTS.md
        self.rss = []         # (phase, c_kb, ours_kb)
        self.failed = False   # a measurement could not be made / had errors
        self.lock_fd = None
        self.libvirt_dir = os.path.join(self.work, "libvirt")
        self.libvirt_used = False
        self.guests_made = False
        self.spawn_base = None

    # -- helpers

    def start_pair(self, uri_c, uri_o, tag):
        c = Daemon("C", C_FVD, self.lab_c, uri_c, self.key, os.path.join(self.work, "c-" + tag))
        o = Daemon("ours", self.our_fvd, self.lab_o, uri_o, self.key, os.path.join(self.work, "o-" + tag))
        self.daemons += [c, o]
        c.start()
        o.start()
        return c, o

    def stop_pair(self, c, o, phase):
        try:
            self.rss.append((phase, c.hwm_kb(), o.hwm_kb()))
        except BenchError as e:
            self.fail("RSS after %s: %s" % (phase, e))
        c.stop()
        o.stop()

    def runner(self, ns):
        r = Runner(ns)
        self.runners.append(r)
        return r

    def fail(self, msg):
        self.failed = True
        print("FAILED: " + msg, file=sys.stderr, flush=True)
        self.details.append("- **FAILED**: " + msg.replace("\n", " "))

    def row(self, num, name, c, o, fmt, target=None, limit=None, absolute=None, note_=""):
        """One table row; target is "ratio <= limit" unless `absolute` (ours <= absolute)."""
        ratio = (o / c) if (c and o is not None) else None
        ok = None
        if absolute is not None and o is not None:
            ok = o <= absolute
        elif limit is not None and ratio is not None:
            ok = ratio <= limit
        self.rows.append({"num": num, "name": name, "c": fmt(c) if c is not None else "—",
                          "ours": fmt(o) if o is not None else "—",
                          "ratio": "%.2f" % ratio if ratio is not None else "—",
                          "target": target or "—", "ok": ok, "note": note_})

    def agent_cmd(self, agent, op, dom, extra=()):
        cmd = [agent, "-k", self.key, "-o", op]
        if dom:
            cmd += ["-H", dom]
        return cmd + list(extra)

    # -- setup

    def setup(self, parts):
        need_guests = STORM_N if "storm" in parts else 1
        log("work directory %s" % self.work)
        sh(["bash", os.path.join(HARNESS, "start-c-daemon.sh"), "genkey", self.key])
        self.lab_c = Lab(LAB_C, NET_C, need_guests)
        self.lab_o = Lab(LAB_O, NET_O, need_guests)
        log("labs %sh + %d guests, %sh + %d guests" % (LAB_C, need_guests, LAB_O, need_guests))
        for lab in (self.lab_c, self.lab_o):
            self.labs.append(lab)
            lab.create()
        self.node_small = os.path.join(self.work, "node16.xml")
        self.node_big = os.path.join(self.work, "node1001.xml")
        sh([PY, os.path.join(HARNESS, "gen-test-node.py"), "16", self.node_small])
        sh([PY, os.path.join(HARNESS, "gen-test-node.py"), "1001", self.node_big])

    # -- #1 and #6: status round trips, interleaved

    def part_status(self, rc, ro):
        n = self.a.status_runs
        combos = [
            ("cc", "C fence_xvm → C fence_virtd", rc, C_XVM),
            ("co", "C fence_xvm → our fence_virtd", ro, C_XVM),
            ("oo", "our fence_xvm → our fence_virtd", ro, self.our_xvm),
            ("oc", "our fence_xvm → C fence_virtd", rc, self.our_xvm),
            ("base", "spawn baseline (/bin/true, no network)", rc, "/bin/true"),
        ]
        log("status round trips: %d runs per combination, interleaved (+5 warm-up)" % n)
        times = {k: [] for k, *_ in combos}
        errors = {k: [] for k, *_ in combos}
        for i in range(-5, n):
            shift = i % len(combos)
            for key, _name, r, agent in combos[shift:] + combos[:shift]:
                cmd = ["/bin/true"] if key == "base" else self.agent_cmd(agent, "status", "dom1", ["-t", "10"])
                res = r.run(cmd, timeout=20)
                good = res["rc"] == 0 and (key == "base" or "Status: ON" in res["out"])
                if i < 0:
                    continue
                if good:
                    times[key].append(res["s"])
                else:
                    errors[key].append("rc=%s %s" % (res["rc"], res["err"].strip()[-200:]))
        st = {k: summary(v) for k, v in times.items()}
        self.details.append("### #1 / #6 status round trips (whole `fence_xvm -o status -H dom1` "
                            "process, node with 17 domains, %d runs each, interleaved)" % n)
        self.details.append("")
        self.details.append("| client → daemon | n | median | p90 | min | mean | max | errors |")
        self.details.append("|---|---|---|---|---|---|---|---|")
        for key, name, *_ in combos:
            s = st[key]
            self.details.append("| %s | %d | %s | %s | %s | %s | %s | %d |" % (
                name, s["n"], ms(s.get("median")), ms(s.get("p90")), ms(s.get("min")),
                ms(s.get("mean")), ms(s.get("max")), len(errors[key])))
            for e in errors[key][:3]:
                self.details.append("|  error sample | %s | | | | | | |" % e.replace("|", "/"))
        self.details.append("")
        for key in times:
            if errors[key]:
                self.fail("status %s: %d of %d runs failed, e.g. %s" % (key, len(errors[key]), n, errors[key][0]))
        med = lambda k: st[k].get("median")
        p90 = lambda k: st[k].get("p90")
        fm = lambda x: "%.2f ms" % (x * 1e3)
        self.row("1", "status round trip, classic agent, median", med("cc"), med("co"), fm,
                 note_="same client (C fence_xvm) for both daemons")
        self.row("1", "status round trip, classic agent, p90", p90("cc"), p90("co"), fm)
        self.row("6", "status: our agent+daemon vs C agent+daemon, median", med("cc"), med("oo"), fm,
                 target="≤ 0.5×", limit=0.5)
        self.row("6", "status: our agent+daemon vs C agent+daemon, p90", p90("cc"), p90("oo"), fm)
        self.spawn_base = med("base")

    # -- #7: the first request datagram is lost

    def ipt(self, lab, *args):
        return sh(["ip", "netns", "exec", lab.host, "iptables", "-w", "5"] + list(args), timeout=30)

    def part_lost(self, rc, ro):
        n = self.a.lost_runs
        combos = [
            ("cc", "C fence_xvm → C fence_virtd", rc, self.lab_c, C_XVM),
            ("oo", "our fence_xvm → our fence_virtd", ro, self.lab_o, self.our_xvm),
            ("oc", "our fence_xvm → C fence_virtd", rc, self.lab_c, self.our_xvm),
        ]
        log("first datagram lost: %d runs per combination (iptables quota rule in the host namespace)" % n)
        times = {k: [] for k, *_ in combos}
        errors = {k: [] for k, *_ in combos}
        for i in range(n):
            for key, _name, r, lab, agent in combos:
                # drops exactly one datagram: 20 (IPv4) + 8 (UDP) + 176 bytes
                self.ipt(lab, "-I", "INPUT", "1", "-i", "fvbr0", "-p", "udp", "--dport", "1229",
                         "-m", "quota", "--quota", "204", "-j", "DROP")
                try:
                    res = r.run(self.agent_cmd(agent, "status", "dom1", ["-t", "15"]), timeout=30)
                    line = self.ipt(lab, "-L", "INPUT", "1", "-v", "-n", "-x").split()
                finally:
                    self.ipt(lab, "-D", "INPUT", "1")
                dropped = int(line[0]) if line and line[0].isdigit() else -1
                if res["rc"] == 0 and "Status: ON" in res["out"] and dropped == 1:
                    times[key].append(res["s"])
                else:
                    errors[key].append("rc=%s dropped=%d %s" % (res["rc"], dropped, res["err"].strip()[-200:]))
        st = {k: summary(v) for k, v in times.items()}
        self.details.append("### #7 first request datagram lost (%d runs each; one 204-byte datagram "
                            "dropped by `iptables -m quota` on the daemon's side, checked per run)" % n)
        self.details.append("")
        self.details.append("| client → daemon | n | median | p90 | min | max | errors |")
        self.details.append("|---|---|---|---|---|---|---|")
        for key, name, *_ in combos:
            s = st[key]
            self.details.append("| %s | %d | %s | %s | %s | %s | %d |" % (
                name, s["n"], ms(s.get("median")), ms(s.get("p90")), ms(s.get("min")), ms(s.get("max")),
                len(errors[key])))
        self.details.append("")
        for key in times:
            if errors[key]:
                self.fail("lost %s: %d of %d runs failed, e.g. %s" % (key, len(errors[key]), n, errors[key][0]))
        fs = lambda x: "%.3f s" % x
        self.row("7", "first datagram lost: our agent+daemon vs C agent+daemon, median",
                 st["cc"].get("median"), st["oo"].get("median"), fs, target="ours ≤ 0.3 s", absolute=0.3)

    # -- #2: sustained throughput and CPU per request

    def fvclient(self, lab, n, out):
        cmd = ["ip", "netns", "exec", lab.guest(1), PY, os.path.join(HARNESS, "fvclient.py"),
               "--bench", str(n), "-c", "16", "--keep-listener", "--src", lab.addr(1), "-k", self.key,
               "-o", "status", "-H", "dom1", "--json", out]
        sh(cmd, timeout=max(120, n / 200), check=False)
        try:
            with open(out) as f:
                return json.load(f)
        except (OSError, ValueError):
            raise BenchError("fvclient wrote no result (%s)" % " ".join(cmd))

    def throughput_one(self, d, lab):
        target = self.a.tput_seconds
        t0 = d.cpu_ticks()
        chunks = []
        ok = errs = 0
        wall = 0.0
        n = 500
        # chunks of about CHUNK_S at the last measured rate (the C daemon
        # slows down as its history fills), until `target` seconds in all
        while wall < target and len(chunks) < 60:
            res = self.fvclient(lab, n, os.path.join(self.work, "fvclient-%s-%d.json" % (d.kind, len(chunks))))
            chunks.append(res)
            ok += res["ok"]
            errs += res["errors"]
            wall += res["wall_s"]
            rate = max(res["rps"], 20.0)
            left = max(target - wall, 0.5)
            n = max(160, int(rate * min(CHUNK_S, left)) + 1)
        ticks = d.cpu_ticks() - t0
        return {"ok": ok, "errors": errs, "wall": wall, "rps": ok / wall if wall else 0.0,
                "cpu_s": ticks / TICK, "cpu_per_req": (ticks / TICK) / ok if ok else None,
                "chunks": [(c["requests"], c["wall_s"], c["rps"], c["lat_ms_p50"], c["lat_ms_p90"], c["errors"])
                           for c in chunks]}

    def part_throughput(self, c, o):
        log("throughput: fvclient.py -c 16 status for >= %.0f s against each daemon" % self.a.tput_seconds)
        res = {}
        for d, lab in ((c, self.lab_c), (o, self.lab_o)):
            res[d.kind] = self.throughput_one(d, lab)
            r = res[d.kind]
            note("%s: %d ok, %d errors in %.1f s = %.0f req/s, daemon CPU %.2f s" %
                 (d.kind, r["ok"], r["errors"], r["wall"], r["rps"], r["cpu_s"]))
        self.details.append("### #2 sustained status throughput (fvclient.py, 16 concurrent clients, "
                            "`--keep-listener`, one guest namespace)")
        self.details.append("")
        self.details.append("| daemon | answered | errors | seconds | req/s | daemon CPU s | CPU µs/request |")
        self.details.append("|---|---|---|---|---|---|---|")
        for k in ("C", "ours"):
            r = res[k]
            self.details.append("| %s | %d | %d | %.1f | %.0f | %.2f | %s |" % (
                k, r["ok"], r["errors"], r["wall"], r["rps"], r["cpu_s"],
                "%.1f" % (r["cpu_per_req"] * 1e6) if r["cpu_per_req"] else "—"))
        self.details.append("")
        self.details.append("Runs (requests, seconds, req/s, p50 ms, p90 ms, errors): C %s; ours %s" % (
            fmt_chunks(res["C"]["chunks"]), fmt_chunks(res["ours"]["chunks"])))
        self.details.append("")
        for k in ("C", "ours"):
            if res[k]["errors"]:
                self.fail("throughput %s: %d requests failed" % (k, res[k]["errors"]))
        self.row("2", "sustained status throughput, 16 clients", res["C"]["rps"], res["ours"]["rps"],
                 lambda x: "%.0f req/s" % x, note_="higher is better; info")
        self.row("2", "daemon CPU time per request", res["C"]["cpu_per_req"], res["ours"]["cpu_per_req"],
                 lambda x: "%.1f µs" % (x * 1e6), target="≤ 0.25×", limit=0.25)

    # -- #3: list with 1001 domains

    def part_list(self, rc, ro):
        n = self.a.list_runs
        combos = [
            ("cc", "C fence_xvm → C fence_virtd", rc, C_XVM),
            ("co", "C fence_xvm → our fence_virtd", ro, C_XVM),
            ("oo", "our fence_xvm → our fence_virtd", ro, self.our_xvm),
        ]
        log("list with 1001+1 domains: %d runs per combination, interleaved (+2 warm-up)" % n)
        times = {k: [] for k, *_ in combos}
        errors = {k: [] for k, *_ in combos}
        for i in range(-2, n):
            shift = i % len(combos)
            for key, _name, r, agent in combos[shift:] + combos[:shift]:
                res = r.run(self.agent_cmd(agent, "list", None, ["-t", "10"]), timeout=30)
                if i < 0:
                    continue
                if res["rc"] == 0 and res["lines"] == 1002:
                    times[key].append(res["s"])
                else:
                    errors[key].append("rc=%s lines=%d %s" % (res["rc"], res["lines"], res["err"].strip()[-200:]))
        st = {k: summary(v) for k, v in times.items()}
        self.details.append("### #3 `fence_xvm -o list`, test node with 1002 domains (%d runs each, interleaved)" % n)
        self.details.append("")
        self.details.append("| client → daemon | n | median | p90 | min | max | errors |")
        self.details.append("|---|---|---|---|---|---|---|")
        for key, name, *_ in combos:
            s = st[key]
            self.details.append("| %s | %d | %s | %s | %s | %s | %d |" % (
                name, s["n"], ms(s.get("median")), ms(s.get("p90")), ms(s.get("min")), ms(s.get("max")),
                len(errors[key])))
        self.details.append("")
        for key in times:
            if errors[key]:
                self.fail("list %s: %d of %d runs failed, e.g. %s" % (key, len(errors[key]), n, errors[key][0]))
        fm = lambda x: "%.2f ms" % (x * 1e3)
        self.row("3", "list, 1002 domains, classic agent, median", st["cc"].get("median"),
                 st["co"].get("median"), fm, target="≤ 0.5×", limit=0.5)

    # -- #5: fencing storm on real QEMU guests

    def take_libvirt_lock(self):
        self.lock_fd = open(LIBVIRT_LOCK, "a")
        deadline = time.monotonic() + self.a.lock_wait
        told = False
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            if not told:
                note("waiting (<= %ds) for %s (another user of libvirtd)" % (self.a.lock_wait, LIBVIRT_LOCK))
                told = True
            if time.monotonic() > deadline:
                raise BenchError("libvirtd lock %s still held after %ds" % (LIBVIRT_LOCK, self.a.lock_wait))
            time.sleep(1)

    def virsh(self, *args, check=True, timeout=120):
        return sh(["virsh", "-q", "-c", "qemu:///system"] + list(args), check=check, timeout=timeout)

    def libvirt_script(self, *args, timeout=300):
        return sh(["bash", os.path.join(HARNESS, "start-libvirtd.sh")] + list(args),
                  env={"FV_LIBVIRT_DIR": self.libvirt_dir}, timeout=timeout)

    def guest_states(self):
        return {name: self.virsh("domstate", name).strip() for name in self.guest_names()}

    def guest_names(self):
        return ["%s%d" % (GUEST_PREFIX, i) for i in range(1, STORM_N + 1)]

    def wait_all(self, state, secs=120):
        deadline = time.monotonic() + secs
        while True:
            st = self.guest_states()
            if all(v == state for v in st.values()):
                return
            if time.monotonic() > deadline:
                raise BenchError("guests not all %s after %ds: %s" % (state, secs, st))
            time.sleep(0.5)

    def storm_one(self, d, lab, runners):
        names = self.guest_names()
        t0 = time.monotonic()
        for i, r in enumerate(runners):
            r.send(self.agent_cmd(C_XVM, "off", names[i], ["-t", "120"]), timeout=150)
        results = [r.receive(150) for r in runners]
        t_first = min(x["t_start"] for x in results)
        t_last = max(x["t_end"] for x in results)
        bad = ["%s rc=%s %s" % (names[i], x["rc"], x["err"].strip()[-150:])
               for i, x in enumerate(results) if x["rc"] != 0]
        states = self.guest_states()
        not_off = [k for k, v in states.items() if v != "shut off"]
        return {"makespan": t_last - t_first, "launch_spread": t_first - t0,
                "each": sorted(x["t_end"] - t_first for x in results), "bad": bad, "not_off": not_off}

    def part_storm(self):
        log("fencing storm: %d guests %s1..%d on qemu:///system" % (STORM_N, GUEST_PREFIX, STORM_N))
        self.take_libvirt_lock()
        self.libvirt_used = True
        pid = self.libvirt_script("start").strip()
        note("libvirtd pid %s" % pid)
        self.guests_made = True
        self.libvirt_script("guests", str(STORM_N), GUEST_PREFIX)
        self.wait_all("running")
        res = {}
        for kind, lab in (("C", self.lab_c), ("ours", self.lab_o)):
            if kind == "ours":
                log("restarting the guests (virsh start)")
                for name, state in self.guest_states().items():
                    if state != "running":
                        self.virsh("start", name)
                self.wait_all("running")
            time.sleep(self.a.settle)
            d = Daemon(kind, C_FVD if kind == "C" else self.our_fvd, lab, "qemu:///system", self.key,
                       os.path.join(self.work, "%s-storm" % kind.lower()))
            self.daemons.append(d)
            d.start()
            runners = [self.runner(lab.guest(i)) for i in range(1, STORM_N + 1)]
            # every runner has answered once before the clock starts
            for r in runners:
                r.run(["/bin/true"], timeout=10)
            res[kind] = self.storm_one(d, lab, runners)
            r_ = res[kind]
            note("%s: makespan %.2f s, %d failed, %d not shut off" %
                 (kind, r_["makespan"], len(r_["bad"]), len(r_["not_off"])))
            for r in runners:
                r.close()
                self.runners.remove(r)
            try:
                res[kind]["hwm"] = d.hwm_kb()
            except BenchError as e:
                self.fail("storm %s: %s" % (kind, e))
                res[kind]["hwm"] = None
            d.stop()
        self.rss.append(("storm (qemu:///system, 16 × off)", res["C"]["hwm"], res["ours"]["hwm"]))
        self.details.append("### #5 fencing storm: %d concurrent classic `fence_xvm -o off` from %d guest "
                            "namespaces, real QEMU (TCG) guests via qemu:///system" % (STORM_N, STORM_N))
        self.details.append("")
        self.details.append("| daemon | makespan (first start → last exit) | completion times (s after first start) | failures |")
        self.details.append("|---|---|---|---|")
        for k in ("C", "ours"):
            r = res[k]
            self.details.append("| %s | %.2f s | %s | %d |" % (
                k, r["makespan"], " ".join("%.2f" % x for x in r["each"]), len(r["bad"]) + len(r["not_off"])))
        self.details.append("")
        for k in ("C", "ours"):
            if res[k]["bad"] or res[k]["not_off"]:
                self.fail("storm %s: failed %s; not shut off %s" % (k, res[k]["bad"][:3], res[k]["not_off"]))
        self.row("5", "fencing storm, 16 × off, makespan", res["C"]["makespan"], res["ours"]["makespan"],
                 lambda x: "%.2f s" % x, target="≤ 0.2×", limit=0.2)

    def finish_storm(self):
        if self.guests_made:
            try:
                self.libvirt_script("undefine", GUEST_PREFIX)
            except BenchError as e:
                print("cleanup: undefine: %s" % e, file=sys.stderr)
        if self.libvirt_used:
            # stops only what this run started (pid files in our own directory)
            try:
                self.libvirt_script("stop")
            except BenchError as e:
                print("cleanup: libvirtd stop: %s" % e, file=sys.stderr)
        if self.lock_fd is not None:
            self.lock_fd.close()
            self.lock_fd = None

    # -- run everything

    def run(self, parts):
        self.setup(parts)
        small = "test://" + self.node_small
        if any(p in parts for p in ("status", "lost", "throughput")):
            log("daemons on a test node with 17 domains")
            c, o = self.start_pair(small, small, "small")
            rc, ro = self.runner(self.lab_c.guest(1)), self.runner(self.lab_o.guest(1))
            for part, fn in (("status", lambda: self.part_status(rc, ro)),
                             ("lost", lambda: self.part_lost(rc, ro)),
                             ("throughput", lambda: self.part_throughput(c, o))):
                if part in parts:
                    self.guarded(part, fn)
            self.stop_pair(c, o, "status, lost datagram, throughput (17 domains)")
        if "list" in parts:
            big = "test://" + self.node_big
            log("daemons on a test node with 1002 domains")
            c, o = self.start_pair(big, big, "big")
            rc, ro = self.runner(self.lab_c.guest(1)), self.runner(self.lab_o.guest(1))
            self.guarded("list", lambda: self.part_list(rc, ro))
            self.stop_pair(c, o, "list (1002 domains)")
        if "storm" in parts:
            try:
                self.guarded("storm", self.part_storm)
            finally:
                self.finish_storm()
        for phase, ckb, okb in self.rss:
            self.row("4", "peak RSS (VmHWM) after: " + phase, ckb, okb, lambda x: "%.1f MiB" % (x / 1024),
                     target="≤ 1×", limit=1.0)

    def guarded(self, part, fn):
        try:
            fn()
        except BenchError as e:
            self.fail("%s: %s" % (part, e))

    def cleanup(self):
        for r in self.runners:
            try:
                r.close()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        self.runners = []
        for d in self.daemons:
            d.stop()
        self.daemons = []
        try:
            self.finish_storm()
        finally:
            for lab in self.labs:
                lab.destroy()
            self.labs = []


def fmt_chunks(chunks):
    return ", ".join("(%d, %.1f, %.0f, %.1f, %.1f, %d)" % c for c in chunks)


# ---------------------------------------------------------------- reporting

def machine_info(bin_dir):
    def q(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024
    pkgs = q(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "fence-virtd", "fence-virt",
              "libvirt0", "libvirt-daemon", "qemu-system-x86", "iptables"])
    commit = q(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = q(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": cpu, "mem_mib": mem, "kernel": platform.release(),
        "debian": q(["cat", "/etc/debian_version"]),
        "packages": pkgs.replace("\n", ", "),
        "rustc": q(["rustc", "--version"]),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "ours": os.path.join(bin_dir, "fence_virtd") + ", " + os.path.join(bin_dir, "fence_xvm"),
        "python": platform.python_version(),
    }


def verdict(ok):
    return {True: "PASS", False: "MISS", None: "info"}[ok]


def table(rows):
    head = ["#", "measurement", "C", "ours", "ours/C", "target", "result"]
    body = [[r["num"], r["name"], r["c"], r["ours"], r["ratio"], r["target"], verdict(r["ok"])] for r in rows]
    w = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    line = lambda cells: "  ".join(c.ljust(w[i]) for i, c in enumerate(cells))
    out = [line(head), line(["-" * x for x in w])] + [line(b) for b in body]
    md = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(b) + " |" for b in body]
    return "\n".join(out), "\n".join(md)


def write_results(path, info, md_table, details, args, load0, load1, failed, took, full):
    with open(path, "w") as f:
        f.write("# Benchmark results: vmfence vs the classic C fence-virt\n\n")
        shown = []
        skip = False
        for x in args:
            if skip:
                skip = False
            elif x == "--bin-dir":
                skip = True
            elif not x.startswith("--bin-dir="):
                shown.append(x)
        f.write("Written by `bench/run.sh%s`%s. Both peers are measured in the same run; ratios are "
                "ours/C. Regenerate with `bench/run.sh`.\n\n" % (
                    "".join(" " + x for x in shown), "" if full else " (a partial or --quick run)"))
        f.write("- date: %s; duration %.0f s\n" % (info["date"], took))
        f.write("- machine: nproc %s, %s, %s MiB RAM, kernel %s, Debian %s\n" % (
            info["nproc"], info["cpu"], info["mem_mib"], info["kernel"], info["debian"]))
        f.write("- load average (1/5/15 min) at start: %s; at end: %s (the machine is shared with "
                "other builds; latency loops alternate between the peers so both see the same load)\n" % (load0, load1))
        f.write("- packages: %s\n" % info["packages"])
        f.write("- vmfence commit %s, %s, release build; Python %s\n" % (info["commit"], info["rustc"], info["python"]))
        f.write("\n## Summary\n\n")
        f.write(md_table + "\n\n")
        if failed:
            f.write("**Some measurements failed; see below.**\n\n")
        f.write("PASS/MISS: target met or not; info: no target. Times are whole processes spawned by a "
                "Python helper inside the guest namespace (spawn cost included for both peers alike).\n\n")
        f.write("## Details\n\n")
        f.write("\n".join(details) + "\n")


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def prereqs(parts, bin_dir):
    miss = []
    if os.geteuid() != 0:
        miss.append("root (network namespaces)")
    for tool in ("ip", "ss"):
        if not shutil.which(tool):
            miss.append("%s (iproute2)" % tool)
    for p, why in ((C_FVD, "Debian fence-virtd"), (C_XVM, "Debian fence-virt"),
                   (os.path.join(bin_dir, "fence_virtd"), "cargo build --release"),
                   (os.path.join(bin_dir, "fence_xvm"), "cargo build --release")):
        if not os.path.exists(p):
            miss.append("%s (%s)" % (p, why))
    for s in ("netns-lab.sh", "start-c-daemon.sh", "fvclient.py", "gen-test-node.py", "start-libvirtd.sh"):
        if not os.path.exists(os.path.join(HARNESS, s)):
            miss.append("%s/%s (shared harness; VMFENCE_HARNESS)" % (HARNESS, s))
    if "lost" in parts and not shutil.which("iptables"):
        miss.append("iptables (Debian iptables)")
    if "storm" in parts:
        for tool, pkg in (("libvirtd", "libvirt-daemon-system"), ("virsh", "libvirt-clients"),
                          ("qemu-system-x86_64", "qemu-system-x86")):
            if not shutil.which(tool):
                miss.append("%s (Debian %s)" % (tool, pkg))
    return miss


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "_runner":
        return runner_main()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", default=os.path.join(REPO, "target", "release"),
                   help="directory with our release fence_virtd and fence_xvm")
    p.add_argument("--only", default="", help="comma-separated parts: " + ",".join(PARTS) + " (agent = status)")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, not for RESULTS.md)")
    p.add_argument("--results", help="write the results markdown here (default: bench/RESULTS.md for a "
                   "full run, else WORKDIR/RESULTS.md)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    p.add_argument("--lock-wait", type=int, default=300, help="seconds to wait for the libvirtd lock")
    a = p.parse_args()
    parts = PARTS if not a.only else []
    for x in filter(None, a.only.split(",")):
        x = {"agent": "status", "rss": None}.get(x, x)
        if x is None:
            continue
        if x not in PARTS:
            p.error("unknown part %r (parts: %s)" % (x, ", ".join(PARTS)))
        if x not in parts:
            parts.append(x)
    if not parts:
        p.error("nothing to run (rss is read from the daemons of the other parts)")
    a.status_runs = 60 if a.quick else 300
    a.lost_runs = 3 if a.quick else 10
    a.list_runs = 8 if a.quick else 30
    a.tput_seconds = 5.0 if a.quick else 20.0
    a.settle = 2.0
    full = set(parts) == set(PARTS) and not a.quick

    miss = prereqs(parts, a.bin_dir)
    if miss:
        print("bench: missing prerequisites (scripts/install-deps.sh installs the packages; "
              "bench/run.sh builds ours):\n  " + "\n  ".join(miss), file=sys.stderr)
        return 2

    b = Bench(a)

    def on_signal(sig, _frm):
        raise SystemExit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    load0 = loadavg()
    t0 = time.monotonic()
    ok = False
    try:
        b.run(parts)
        ok = True
    except BenchError as e:
        b.fail(str(e))
    except (SystemExit, KeyboardInterrupt):
        print("bench: interrupted; cleaned up; work directory kept: %s" % b.work, file=sys.stderr)
        raise
    finally:
        b.cleanup()
    took = time.monotonic() - t0
    load1 = loadavg()
    txt, md = table(b.rows)
    print()
    print("vmfence vs classic fence-virt (ours/C; %s; load %s → %s; %.0f s)" % (
        ", ".join(parts), load0, load1, took))
    print(txt)
    if b.spawn_base is not None:
        print("(spawn baseline /bin/true in the same helper: %.2f ms median)" % (b.spawn_base * 1e3))
    path = a.results or (os.path.join(HERE, "RESULTS.md") if full else os.path.join(b.work, "RESULTS.md"))
    keep = a.keep or b.failed or not ok or path.startswith(b.work)
    write_results(path, machine_info(b.bin), md, b.details, sys.argv[1:], load0, load1, b.failed or not ok, took,
                  full)
    print("results: %s" % path)
    if keep:
        print("work directory kept: %s" % b.work)
    else:
        shutil.rmtree(b.work, ignore_errors=True)
    if b.failed or not ok:
        return 2
    return 1 if any(r["ok"] is False for r in b.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
