//! End to end with Pacemaker: a one-node corosync + Pacemaker cluster
//! (node1) whose fence devices use our `fence_xvm`, against our
//! `fence_virtd` on a libvirt test-driver node. `stonith_admin --fence`,
//! `--unfence` and `--reboot` of node2 (not a cluster member; its VM is
//! `vm2`) must change vm2's state through our daemon, and a fence that
//! cannot be proven (unknown VM, wrong key) must be reported as failed.
//!
//! The lab (`vmfpm`, 10.229.60.0/24): our daemon in the host namespace, the
//! cluster in the guest namespace, started by `scripts/pacemaker-lab.sh` in
//! private mount and pid namespaces there, with our agent bind-mounted over
//! `/usr/sbin/fence_xvm` (the real file, used by other tests, is untouched)
//! and every directory corosync and Pacemaker write replaced by a temporary
//! one. Multicast stays inside the lab.
//!
//! Needs root, iproute2, corosync, Pacemaker and our `fence_virtd` built next
//! to our agents (`cargo test --workspace` builds it): without them the test
//! skips with a reason, except under CI, where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use vmfence_testlab::*;

const XVM: &str = env!("CARGO_BIN_EXE_fence_xvm");
/// For agent runs and short cluster commands.
const LIMIT: Duration = Duration::from_secs(20);
/// For stonith_admin fencing commands (their own --timeout is 30 s).
const FENCE_LIMIT: Duration = Duration::from_secs(60);

/// Our daemon: cargo puts every binary of the workspace in one directory.
fn fvd() -> PathBuf {
    Path::new(XVM).with_file_name("fence_virtd")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pacemaker-lab.sh")
}

/// A one-node cluster run by `scripts/pacemaker-lab.sh start`. Dropping it
/// closes the script's standard input, which stops pacemakerd, then
/// corosync; if that takes too long, the namespace holder is killed by pid,
/// and with it (unshare --kill-child, pid namespace) every cluster process.
struct Cluster {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// The network namespace it runs in.
    ns: String,
    work: tempfile::TempDir,
}

impl Cluster {
    /// Start it in `ns` on address `addr` with `agent` as fence_xvm; returns
    /// once node1 is the DC (the script gives up after 60 s).
    fn start(ns: &str, addr: &str, agent: &str) -> Cluster {
        let work = tempfile::Builder::new()
            .prefix("vmfence-pcmk-")
            .tempdir()
            .unwrap();
        let mut child = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(ns)
            .arg(work.path())
            .arg(addr)
            .arg(agent)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let tx2 = tx.clone();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        thread::spawn(move || forward(BufReader::new(out), &tx));
        thread::spawn(move || forward(BufReader::new(err), &tx2));
        let stdin = child.stdin.take();
        let mut c = Cluster {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            ns: ns.to_owned(),
            work,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match c.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("ready ");
                    // The pid `exec` needs is the one we started.
                    let pid = format!("ready pid={} ", c.child.id());
                    assert!(!ready || line.starts_with(&pid), "{line}");
                    c.seen.push(line);
                    if ready {
                        return c;
                    }
                }
                Err(_) => panic!("the cluster did not start:\n{}", c.output()),
            }
        }
    }

    /// Run `args` inside the cluster's namespaces.
    fn exec(&self, args: &[&str], limit: Duration) -> Run {
        let pid = self.child.id().to_string();
        let mut all = vec!["exec", pid.as_str()];
        all.extend_from_slice(args);
        agent_in(&self.ns, script().to_str().unwrap(), &all, None, limit)
    }

    /// Run `args` inside; it must succeed.
    fn ok(&self, args: &[&str]) -> Run {
        let r = self.exec(args, LIMIT);
        assert_eq!(r.code, 0, "{args:?}: {r:#?}\n{}", self.logs());
        r
    }

    /// Wait at most `limit` for `args` to print `needle`.
    fn wait_output(&self, args: &[&str], needle: &str, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        loop {
            let r = self.exec(args, LIMIT);
            if r.stdout.contains(needle) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "{args:?} did not print {needle:?} within {limit:?}: {r:#?}\n{}",
                self.logs()
            );
            thread::sleep(Duration::from_millis(250));
        }
    }

    /// Add a fence device to the CIB.
    fn add_device(&self, id: &str, params: &[(&str, &str)], monitor: bool) {
        let mut xml =
            format!("<primitive id=\"{id}\" class=\"stonith\" type=\"fence_xvm\"><instance_attributes id=\"{id}-ia\">");
        for (name, value) in params {
            xml.push_str(&format!(
                "<nvpair id=\"{id}-{name}\" name=\"{name}\" value=\"{value}\"/>"
            ));
        }
        xml.push_str("</instance_attributes>");
        if monitor {
            xml.push_str(&format!(
                "<operations><op id=\"{id}-monitor\" name=\"monitor\" interval=\"60s\"/></operations>"
            ));
        }
        xml.push_str("</primitive>");
        self.ok(&["cibadmin", "--create", "-o", "resources", "--xml-text", &xml]);
    }

    /// The script's output so far.
    fn output(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }

    /// The end of Pacemaker's log, for failure messages.
    fn logs(&self) -> String {
        let log = self.work.path().join("var-log-pacemaker/pacemaker.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(60)..].join("\n");
        format!("--- end of {}:\n{tail}", log.display())
    }

    /// Stop it the normal way; its exit status (0: both daemons ran until
    /// asked to stop, and stopped).
    fn stop(&mut self, limit: Duration) -> Option<i32> {
        self.stdin = None;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.stop(Duration::from_secs(90)).is_none() {
            // The namespace holder, our own child, by pid: the kernel then
            // kills everything in its pid namespace.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn forward(r: impl BufRead, tx: &mpsc::Sender<String>) {
    for line in r.lines() {
        let Ok(line) = line else { break };
        if tx.send(line).is_err() {
            break;
        }
    }
}

/// What corosync and Pacemaker would leave on the machine if they were not
/// confined: the entries of their directories and libqb's files in /dev/shm.
fn traces() -> Vec<String> {
    let mut v = Vec::new();
    for d in [
        "/etc/corosync",
        "/var/lib/corosync",
        "/var/log/corosync",
        "/var/lib/pacemaker/cib",
        "/var/lib/pacemaker/pengine",
        "/var/log/pacemaker",
        "/run/crm",
    ] {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                v.push(e.path().display().to_string());
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir("/dev/shm") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("qb-") {
                v.push(format!("/dev/shm/{name}"));
            }
        }
    }
    v.sort();
    v
}

/// Every descendant of `pid` (by /proc/PID/task/TID/children).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
                out.push(k);
                todo.push(k);
            }
        }
    }
    out
}

fn fence_ops(d: &OurDaemon, op: &str, domain: &str) -> Vec<LogLine> {
    d.requests()
        .into_iter()
        .filter(|l| l.get("op") == op && l.get("domain") == domain)
        .collect()
}

#[test]
fn pacemaker_fences_unfences_and_reboots_through_our_daemon() {
    if !prerequisites(&[Need::Lab, Need::Pacemaker, Need::Built(fvd())]) {
        return;
    }
    let started = Instant::now();
    let before = traces();
    let lab = Lab::with_subnet("vmfpm", 1, 60);
    let domains = vec![TestDomain::new("vm1", 1, true), TestDomain::new("vm2", 2, true)];
    let d = OurDaemon::start(&fvd(), &lab.host, &DaemonSetup::with_domains(domains));
    let g = lab.guest(1);
    let key = d.key.display().to_string();
    let status = |vm: &str| -> Run { agent_in(g, XVM, &["-k", &key, "-o", "status", "-n", vm], None, LIMIT) };
    assert_eq!(status("vm2").code, 0, "vm2 starts on");

    let mut cluster = Cluster::start(g, &lab.guest_v4(1), XVM);
    eprintln!("cluster up after {:?}", started.elapsed());

    // Inside, /usr/sbin/fence_xvm is ours; outside it is still the classic
    // symlink; Pacemaker reads our metadata.
    let ours = Command::new(XVM).args(["-o", "metadata"]).output().unwrap();
    let ours = String::from_utf8(ours.stdout).unwrap();
    let r = cluster.ok(&["/usr/sbin/fence_xvm", "-o", "metadata"]);
    assert_eq!(r.stdout, ours, "the bind mount shows our agent");
    if let Ok(target) = std::fs::read_link(C_XVM) {
        assert_eq!(target, Path::new("fence_virt"), "the real {C_XVM} is untouched");
        // (metadata only: no request leaves the root namespace)
        let classic = Command::new(C_XVM).args(["-o", "metadata"]).output().unwrap();
        assert_ne!(
            String::from_utf8_lossy(&classic.stdout),
            ours,
            "outside the cluster, {C_XVM} is still the classic agent"
        );
    }
    let r = cluster.ok(&["stonith_admin", "--metadata", "--agent", "fence_xvm"]);
    let longdesc = ours
        .split("<longdesc>")
        .nth(1)
        .and_then(|s| s.lines().next())
        .unwrap();
    assert!(
        r.stdout.contains(longdesc),
        "the fencer shows our metadata: {r:#?}"
    );

    // The configuration users make with pcs, made with the tools pcs uses.
    cluster.ok(&[
        "crm_attribute",
        "--type",
        "crm_config",
        "--name",
        "stonith-enabled",
        "--update",
        "true",
    ]);
    cluster.add_device(
        "fence-node2",
        &[
            ("port", "vm2"),
            ("pcmk_host_list", "node2"),
            ("key_file", &key),
            ("timeout", "10"),
        ],
        true,
    );
    // The other ways users name the VM: plug= (pcs calls port= deprecated)
    // and a host map (Pacemaker then passes the VM as the host argument).
    cluster.add_device(
        "fence-node6",
        &[("plug", "vm1"), ("pcmk_host_list", "node6"), ("key_file", &key)],
        false,
    );
    cluster.add_device(
        "fence-map",
        &[("pcmk_host_map", "node7:vm1"), ("key_file", &key)],
        false,
    );
    // A device for node3 whose VM the daemon does not know.
    cluster.add_device(
        "fence-node3",
        &[
            ("port", "no-such-vm"),
            ("pcmk_host_list", "node3"),
            ("key_file", &key),
            ("timeout", "10"),
        ],
        false,
    );
    let r = cluster.wait_output(
        &["stonith_admin", "--list-registered"],
        "4 fence devices found",
        Duration::from_secs(30),
    );
    for dev in ["fence-node2", "fence-node3", "fence-node6", "fence-map"] {
        assert!(r.stdout.lines().any(|l| l == dev), "{dev}: {r:#?}");
    }
    cluster.wait_output(
        &["crm_mon", "-1"],
        "fence-node2\t(stonith:fence_xvm):\t Started node1",
        Duration::from_secs(30),
    );
    let r = cluster.ok(&["stonith_admin", "--list", "node2"]);
    assert_eq!(r.stdout.trim(), "fence-node2\n1 fence device found", "{r:#?}");
    // The targets the device reports: our agent's list, through the daemon.
    let r = cluster.ok(&["stonith_admin", "--list-targets", "fence-node2"]);
    for t in ["vm1", "vm2", &TestDomain::uuid_of(2)] {
        assert!(r.stdout.lines().any(|l| l == t), "{t} in {r:#?}");
    }
    cluster.ok(&["stonith_admin", "--query", "fence-node2"]);
    eprintln!("devices registered after {:?}", started.elapsed());

    let fence = |what: &str, node: &str| -> Run {
        cluster.exec(&["stonith_admin", what, node, "--timeout", "30"], FENCE_LIMIT)
    };
    let must = |r: Run, what: &str| {
        assert_eq!(
            r.code,
            0,
            "{what}: {r:#?}\n{}\n--- daemon:\n{}",
            cluster.logs(),
            d.log_text()
        );
    };

    // --fence: vm2 off, shown by the daemon.
    must(fence("--fence", "node2"), "fence node2");
    let r = status("vm2");
    assert_eq!((r.code, r.stdout.as_str()), (2, "Status: OFF\n"), "{r:#?}");
    let offs = fence_ops(&d, "off", "vm2");
    assert_eq!(offs.len(), 1, "one off request: {offs:#?}");
    assert_eq!(offs[0].get("code"), "0", "{offs:#?}");
    assert_eq!(status("vm1").code, 0, "vm1 untouched");

    // --unfence: vm2 on again.
    must(fence("--unfence", "node2"), "unfence node2");
    let r = status("vm2");
    assert_eq!((r.code, r.stdout.as_str()), (0, "Status: ON\n"), "{r:#?}");
    let ons = fence_ops(&d, "on", "vm2");
    assert_eq!(ons.len(), 1, "one on request: {ons:#?}");
    assert_eq!(ons[0].get("code"), "0", "{ons:#?}");

    // --reboot: one reboot request, vm2 on afterwards.
    must(fence("--reboot", "node2"), "reboot node2");
    let reboots = fence_ops(&d, "reboot", "vm2");
    assert_eq!(reboots.len(), 1, "one reboot request: {reboots:#?}");
    assert_eq!(reboots[0].get("code"), "0", "{reboots:#?}");
    assert_eq!(status("vm2").code, 0, "vm2 on after the reboot");
    assert_eq!(fence_ops(&d, "off", "vm2").len(), 1, "no extra off");
    let r = cluster.ok(&["stonith_admin", "--history", "node2"]);
    assert!(r.stdout.contains("successful"), "{r:#?}");
    // plug= and the host map reach vm1.
    must(fence("--fence", "node6"), "fence node6 (plug=vm1)");
    assert_eq!(status("vm1").code, 2, "vm1 off");
    assert_eq!(status("vm2").code, 0, "vm2 untouched");
    must(fence("--unfence", "node7"), "unfence node7 (host map to vm1)");
    assert_eq!(status("vm1").code, 0, "vm1 on");
    assert_eq!(fence_ops(&d, "off", "vm1").len(), 1, "{}", d.log_text());
    assert_eq!(fence_ops(&d, "on", "vm1").len(), 1, "{}", d.log_text());
    eprintln!("fence, unfence, reboot done after {:?}", started.elapsed());

    // Never "off" without proof. An unknown VM: the daemon answers failure,
    // stonith_admin reports it.
    let r = fence("--fence", "node3");
    assert_ne!(r.code, 0, "fence of node3 (unknown VM) must fail: {r:#?}");
    let tried = fence_ops(&d, "off", "no-such-vm");
    assert!(!tried.is_empty(), "the agent asked the daemon");
    assert!(tried.iter().all(|l| l.get("code") == "1"), "{tried:#?}");
    // No device at all for the node.
    let r = fence("--fence", "node9");
    assert_ne!(r.code, 0, "fence of node9 (no device) must fail: {r:#?}");
    // A wrong key: the daemon refuses the request, nobody calls back, the
    // agent times out and Pacemaker is told so.
    let wrong = d.dir.path().join("wrong.key");
    write_key(&wrong, 128);
    cluster.add_device(
        "fence-node5",
        &[
            ("port", "vm1"),
            ("pcmk_host_list", "node5"),
            ("key_file", wrong.to_str().unwrap()),
            ("timeout", "3"),
            ("pcmk_off_retries", "1"),
        ],
        false,
    );
    cluster.wait_output(
        &["stonith_admin", "--list", "node5"],
        "fence-node5",
        Duration::from_secs(30),
    );
    let refused = d.refusals().len();
    let r = fence("--fence", "node5");
    assert_ne!(r.code, 0, "fence with a wrong key must fail: {r:#?}");
    assert!(d.refusals().len() > refused, "the daemon saw and refused it");
    assert_eq!(
        fence_ops(&d, "off", "vm1").len(),
        1,
        "no new off: {}",
        d.log_text()
    );
    assert_eq!(status("vm1").code, 0, "vm1 still on");
    let r = cluster.ok(&["stonith_admin", "--history", "*", "--verbose"]);
    for node in ["node3", "node5"] {
        assert!(
            r.stdout.lines().any(|l| l.contains(node) && l.contains("failed")),
            "failed fencing of {node} in the history: {r:#?}"
        );
    }
    eprintln!("failures reported after {:?}", started.elapsed());

    // A clean stop: the script exits 0 only if both daemons ran until asked
    // to stop. Then nothing is left behind.
    let procs = descendants(cluster.child.id());
    assert!(
        procs.len() >= 8,
        "script, corosync, pacemakerd and its six: {procs:?}"
    );
    let code = cluster.stop(Duration::from_secs(90));
    let out = cluster.output();
    assert_eq!(code, Some(0), "cluster stop: {out}\n{}", cluster.logs());
    let left: Vec<u32> = procs
        .into_iter()
        .filter(|p| Path::new(&format!("/proc/{p}")).exists())
        .collect();
    assert!(left.is_empty(), "cluster processes left: {left:?}");
    assert_eq!(
        traces(),
        before,
        "corosync and Pacemaker left files on the machine"
    );
    eprintln!("stopped after {:?}", started.elapsed());
}
