//! Our `fence_virtd` as a real process in network-namespace labs, driven by
//! the classic C agents (Debian fence-virt 4.12.1), by our own agents and by
//! the shared harness's raw-packet client: a drop-in for the classic daemon,
//! and robust where the classic one is not (spec §7).
//!
//! Every test makes its own lab (`vmfd<letter>`, subnet 10.229.N.0/24) and
//! tears it down on drop, so the tests run in parallel. Multicast happens
//! only inside those namespaces; nothing here uses vsock.
//!
//! Needs root, iproute2, the classic agents, python3 and the harness
//! (`../shared/harness`): without them the tests skip with a reason, except
//! under CI, where they fail. Our agents are found next to the daemon binary
//! (cargo builds them for `cargo test --workspace`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use vmfence_proto::{Domain, FenceRequest, HashType, Key, Op};
use vmfence_testlab::*;

const FVD: &str = env!("CARGO_BIN_EXE_fence_virtd");
const LIMIT: Duration = Duration::from_secs(20);

fn fvd() -> &'static Path {
    Path::new(FVD)
}

/// One of our agents: cargo puts every binary of the workspace in the same
/// directory.
fn our_bin(name: &str) -> PathBuf {
    fvd().with_file_name(name)
}

fn fvclient() -> String {
    harness_dir().join("fvclient.py").display().to_string()
}

/// alpha and beta running, gamma defined but shut off.
fn domains() -> Vec<TestDomain> {
    vec![
        TestDomain::new("alpha", 1, true),
        TestDomain::new("beta", 2, true),
        TestDomain::new("gamma", 3, false),
    ]
}

fn uuid(n: usize) -> String {
    TestDomain::uuid_of(n)
}

fn expect(r: &Run, code: i32, what: &str) {
    assert_eq!(r.code, code, "{what}: {r:#?}");
}

/// The classic agents print their messages on standard output, ours on
/// standard error.
fn said(r: &Run, what: &str) -> bool {
    r.stdout.contains(what) || r.stderr.contains(what)
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn list_of(domains: &[TestDomain]) -> Vec<String> {
    let mut v: Vec<String> = domains.iter().map(TestDomain::list_line).collect();
    v.sort();
    v
}

/// Runs one agent binary from one namespace with a key, and remembers what
/// the daemon should have logged for every request it executed.
struct Driver<'a> {
    ns: &'a str,
    bin: String,
    key: PathBuf,
    /// Arguments before the action (transport, family).
    pre: Vec<String>,
    /// The listener the daemon names in its log.
    listener: &'static str,
    /// (listener, op, domain, code) per executed request.
    executed: Vec<(String, String, String, String)>,
}

impl<'a> Driver<'a> {
    fn new(ns: &'a str, bin: impl AsRef<Path>, key: &Path, pre: &[&str], listener: &'static str) -> Self {
        Driver {
            ns,
            bin: bin.as_ref().display().to_string(),
            key: key.to_owned(),
            pre: pre.iter().map(|s| s.to_string()).collect(),
            listener,
            executed: Vec::new(),
        }
    }

    fn raw(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = vec!["-k", self.key.to_str().unwrap()];
        all.extend(self.pre.iter().map(String::as_str));
        all.extend_from_slice(args);
        agent_in(self.ns, &self.bin, &all, None, LIMIT)
    }

    /// `action` on `target` ("" for none) must exit `code`; the daemon
    /// logs it as operation `op`.
    fn op_as(&mut self, action: &str, op: &str, target: &str, code: i32) -> Run {
        let mut args = vec!["-o", action];
        if !target.is_empty() {
            args.extend(["-H", target]);
        }
        let r = self.raw(&args);
        expect(&r, code, &format!("{} -o {action} {target}", self.bin));
        self.executed.push((
            self.listener.to_owned(),
            op.to_owned(),
            target.to_owned(),
            code.to_string(),
        ));
        r
    }

    fn op(&mut self, action: &str, target: &str, code: i32) -> Run {
        self.op_as(action, action, target, code)
    }
}

/// The daemon logged exactly one `request` line per executed request.
fn assert_one_line_per_request(d: &OurDaemon, drivers: &[&Driver<'_>]) {
    let mut want: Vec<_> = drivers.iter().flat_map(|d| d.executed.clone()).collect();
    want.sort();
    // The line is written right after the answer: give the last one a moment.
    let mut got = Vec::new();
    for _ in 0..40 {
        got = d
            .requests()
            .iter()
            .map(|l| {
                (
                    l.get("listener").to_owned(),
                    l.get("op").to_owned(),
                    l.get("domain").to_owned(),
                    l.get("code").to_owned(),
                )
            })
            .collect();
        got.sort();
        if got.len() >= want.len() {
            break;
        }
        thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(got, want, "request lines vs requests run:\n{}", d.log_text());
}

fn refused_with(d: &OurDaemon, reason: &str, peer_ip: &str) -> bool {
    d.refusals()
        .iter()
        .any(|l| l.get("reason") == reason && l.get("peer").contains(peer_ip))
}

fn wrong_key(dir: &Path) -> PathBuf {
    let k = dir.join("wrong.key");
    write_key(&k, 128);
    k
}

fn c_needs() -> Vec<Need> {
    vec![Need::Lab, Need::CAgents]
}

/// a. The classic `fence_xvm` over IPv4 multicast, every action, by name and
/// by UUID (any case); unknown domains fail (not "off": deliberate); a wrong
/// key and a too-weak hash time out and are logged with their reasons.
#[test]
fn c_fence_xvm_ipv4_every_action_and_refusals() {
    if !prerequisites(&c_needs()) {
        return;
    }
    let lab = Lab::with_subnet("vmfda", 3, 1);
    let d = OurDaemon::start(fvd(), &lab.host, &DaemonSetup::with_domains(domains()));
    let g1 = lab.guest(1);

    // The refused ones in the background (2 s each), from guests of their
    // own: the classic agent takes TCP port 1229 for its call back.
    let wrong = {
        let g = lab.guest(2).to_owned();
        let k = wrong_key(d.dir.path()).display().to_string();
        thread::spawn(move || {
            agent_in(
                &g,
                C_XVM,
                &["-k", &k, "-o", "status", "-H", "alpha", "-t", "2"],
                None,
                LIMIT,
            )
        })
    };
    let weak = {
        let g = lab.guest(3).to_owned();
        let k = d.key.display().to_string();
        thread::spawn(move || {
            agent_in(
                &g,
                C_XVM,
                &["-k", &k, "-c", "sha1", "-o", "status", "-H", "alpha", "-t", "2"],
                None,
                LIMIT,
            )
        })
    };

    let mut x = Driver::new(g1, C_XVM, &d.key, &[], "multicast");
    let r = x.op("list", "", 0);
    assert_eq!(sorted_lines(&r.stdout), list_of(&domains()), "{r:#?}");
    let r = x.op("status", "alpha", 0);
    assert_eq!(r.stdout, "Status: ON\n");
    let r = x.op("status", "gamma", 2);
    assert_eq!(r.stdout, "Status: OFF\n");
    x.op("status", &uuid(1), 0);
    x.op("status", &uuid(1).to_uppercase(), 0);
    x.op("status", &uuid(3).to_uppercase(), 2);

    x.op("off", "alpha", 0);
    x.op("status", "alpha", 2);
    let r = x.op("list", "", 0);
    let mut now = domains();
    now[0].running = false;
    assert_eq!(sorted_lines(&r.stdout), list_of(&now), "{r:#?}");
    x.op("on", &uuid(1), 0);
    x.op("status", "alpha", 0);
    x.op("reboot", &uuid(1).to_uppercase(), 0);
    x.op("status", "alpha", 0);
    x.op("off", &uuid(2).to_uppercase(), 0);
    x.op("status", "beta", 2);
    x.op("on", "beta", 0);
    x.op("status", &uuid(2), 0);
    x.op("reboot", "beta", 0);
    // reboot never powers on an off VM (classic semantics), and succeeds
    x.op("reboot", "gamma", 0);
    x.op("status", "gamma", 2);
    x.op("monitor", "", 0);

    // Unknown domain: a failure, not "off" (the classic libvirt backend says
    // OFF for status, which would let a cluster believe a typo is fenced).
    let r = x.op("status", "no-such-vm", 1);
    assert!(said(&r, "Operation failed"), "{r:#?}");
    x.op("off", "no-such-vm", 1);
    x.op("on", &uuid(99), 1);

    let wrong = wrong.join().unwrap();
    expect(&wrong, 1, "wrong key");
    assert!(said(&wrong, "Timed out"), "{wrong:#?}");
    let weak = weak.join().unwrap();
    expect(&weak, 1, "sha1 against a sha256 daemon");
    assert!(said(&weak, "Timed out"), "{weak:#?}");

    assert_one_line_per_request(&d, &[&x]);
    let reqs = d.requests();
    assert!(
        reqs.iter().all(|l| l.get("src") == lab.guest_v4(1)),
        "{}",
        d.log_text()
    );
    let unknown = reqs.iter().find(|l| l.get("domain") == "no-such-vm").unwrap();
    assert_eq!(unknown.get("outcome"), "unknown-domain", "{}", unknown.raw);
    assert!(
        refused_with(&d, "bad-signature", &lab.guest_v4(2)),
        "{}",
        d.log_text()
    );
    assert!(
        refused_with(&d, "hash-too-weak", &lab.guest_v4(3)),
        "{}",
        d.log_text()
    );
}

/// b. The classic `fence_xvm` over IPv6 multicast (`-i ipv6`, `-a ff05::3:1`)
/// against `family = "ipv6"` on the bridge.
#[test]
fn c_fence_xvm_ipv6() {
    if !prerequisites(&c_needs()) {
        return;
    }
    let lab = Lab::with_subnet("vmfdb", 2, 2);
    let setup = DaemonSetup {
        listeners: vec![OurListener::Multicast { ipv6: true }],
        ..DaemonSetup::with_domains(domains())
    };
    let d = OurDaemon::start(fvd(), &lab.host, &setup);
    let wrong = {
        let (g2, k) = (
            lab.guest(2).to_owned(),
            wrong_key(d.dir.path()).display().to_string(),
        );
        thread::spawn(move || {
            agent_in(
                &g2,
                C_XVM,
                &["-k", &k, "-i", "ipv6", "-o", "status", "-H", "alpha", "-t", "2"],
                None,
                LIMIT,
            )
        })
    };
    let mut x = Driver::new(lab.guest(1), C_XVM, &d.key, &["-i", "ipv6"], "multicast");
    let r = x.op("list", "", 0);
    assert_eq!(sorted_lines(&r.stdout), list_of(&domains()), "{r:#?}");
    x.op("status", "alpha", 0);
    x.op("status", &uuid(3), 2);
    x.pre = vec!["-a".into(), "ff05::3:1".into()];
    x.op("off", "alpha", 0);
    x.op("status", &uuid(1).to_uppercase(), 2);
    x.op("on", "alpha", 0);
    x.op("reboot", &uuid(1), 0);
    x.op("status", "alpha", 0);
    x.op("monitor", "", 0);
    x.op("status", "no-such-vm", 1);
    expect(&wrong.join().unwrap(), 1, "wrong key over IPv6");

    assert_one_line_per_request(&d, &[&x]);
    let g1 = lab.guest_v6(1);
    for l in d.requests() {
        assert_eq!(l.get("src"), g1, "{}", l.raw);
        assert_eq!(l.get("peer"), format!("[{g1}]:1229"), "{}", l.raw);
    }
    assert!(
        refused_with(&d, "bad-signature", &lab.guest_v6(2)),
        "{}",
        d.log_text()
    );
}

/// c. The classic `fence_virt -T` against our tcp listener, in a daemon that
/// also runs the multicast listener (`listener = "multicast,tcp"`): both
/// work, on one backend.
#[test]
fn c_fence_virt_tcp_with_both_listeners_at_once() {
    if !prerequisites(&c_needs()) {
        return;
    }
    let lab = Lab::with_subnet("vmfdc", 2, 3);
    let host = lab.host_v4();
    let setup = DaemonSetup {
        listeners: vec![
            OurListener::Multicast { ipv6: false },
            OurListener::Tcp {
                address: host.clone(),
            },
        ],
        ..DaemonSetup::with_domains(domains())
    };
    let d = OurDaemon::start(fvd(), &lab.host, &setup);
    assert!(
        d.log_text().contains("listening: tcp") && d.log_text().contains("listening: multicast"),
        "{}",
        d.log_text()
    );
    let mut v = Driver::new(lab.guest(1), C_VIRT, &d.key, &["-T", &host], "tcp");
    let mut x = Driver::new(lab.guest(2), C_XVM, &d.key, &[], "multicast");
    let r = v.op("list", "", 0);
    assert_eq!(sorted_lines(&r.stdout), list_of(&domains()), "{r:#?}");
    let r = v.op("status", "alpha", 0);
    assert_eq!(r.stdout, "Status: ON\n");
    v.op("off", &uuid(1), 0);
    v.op("status", "alpha", 2);
    x.op("status", "alpha", 2);
    x.op("on", "alpha", 0);
    v.op("status", &uuid(1).to_uppercase(), 0);
    v.op("reboot", "alpha", 0);
    v.op("monitor", "", 0);
    v.op("status", "gamma", 2);
    v.op("status", "no-such-vm", 1);
    v.op("off", "no-such-vm", 1);
    x.op("off", "beta", 0);
    v.op("on", "beta", 0);
    x.op("status", "beta", 0);

    let wrong = wrong_key(d.dir.path());
    let r = agent_in(
        lab.guest(1),
        C_VIRT,
        &[
            "-k",
            wrong.to_str().unwrap(),
            "-T",
            &host,
            "-o",
            "status",
            "-H",
            "alpha",
        ],
        None,
        LIMIT,
    );
    expect(&r, 1, "tcp wrong key");

    assert_one_line_per_request(&d, &[&v, &x]);
    for l in d.requests() {
        let g = if l.get("listener") == "tcp" { 1 } else { 2 };
        assert_eq!(l.get("src"), lab.guest_v4(g), "{}", l.raw);
    }
    assert!(
        d.refusals()
            .iter()
            .any(|l| l.get("listener") == "tcp" && l.get("reason") == "bad-signature"),
        "{}",
        d.log_text()
    );
}

/// d. Our own `fence_xvm` (multicast) and `fence_virt -T` (tcp) against our
/// daemon: every action.
#[test]
fn our_agents_every_action() {
    let (xvm, virt) = (our_bin("fence_xvm"), our_bin("fence_virt"));
    if !prerequisites(&[Need::Lab, Need::Built(xvm.clone()), Need::Built(virt.clone())]) {
        return;
    }
    let lab = Lab::with_subnet("vmfdd", 1, 4);
    let host = lab.host_v4();
    let setup = DaemonSetup {
        listeners: vec![
            OurListener::Multicast { ipv6: false },
            OurListener::Tcp {
                address: host.clone(),
            },
        ],
        ..DaemonSetup::with_domains(domains())
    };
    let d = OurDaemon::start(fvd(), &lab.host, &setup);
    let g = lab.guest(1);
    let mut x = Driver::new(g, &xvm, &d.key, &[], "multicast");
    let mut v = Driver::new(g, &virt, &d.key, &["-T", &host], "tcp");
    for a in [&mut x, &mut v] {
        let r = a.op("list", "", 0);
        assert_eq!(sorted_lines(&r.stdout), list_of(&domains()), "{r:#?}");
        let r = a.op_as("list-status", "list", "", 0);
        assert_eq!(sorted_lines(&r.stdout), list_of(&domains()), "{r:#?}");
        let r = a.op("status", "alpha", 0);
        assert_eq!(r.stdout, "Status: ON\n");
        let r = a.op("status", &uuid(3), 2);
        assert_eq!(r.stdout, "Status: OFF\n");
        a.op("off", "alpha", 0);
        a.op("status", &uuid(1).to_uppercase(), 2);
        a.op("on", &uuid(1), 0);
        a.op("reboot", "alpha", 0);
        a.op("status", "alpha", 0);
        a.op("monitor", "", 0);
        // null: the daemon answers failure, as the classic libvirt backend
        a.op("null", "alpha", 1);
        let r = a.op("off", "no-such-vm", 1);
        assert!(!r.stderr.is_empty(), "a failure says why: {r:#?}");
        // local actions: no request
        let r = a.raw(&["-o", "metadata"]);
        expect(&r, 0, "metadata");
        assert!(r.stdout.contains("<resource-agent"), "{r:#?}");
        let r = a.raw(&["-o", "validate-all", "-H", "alpha"]);
        expect(&r, 0, "validate-all");
    }
    assert_one_line_per_request(&d, &[&x, &v]);
}

/// d2. Our fence_xvm over IPv6 against our daemon, a wrong key, and four of
/// our agents at once on one guest (by name and by UUID).
#[test]
fn our_fence_xvm_ipv6_wrong_key_and_four_at_once() {
    let xvm = our_bin("fence_xvm");
    if !prerequisites(&[Need::Lab, Need::Built(xvm.clone())]) {
        return;
    }
    let lab = Lab::with_subnet("vmfdi", 1, 9);
    let setup = DaemonSetup {
        listeners: vec![OurListener::Multicast { ipv6: true }],
        ..DaemonSetup::with_domains(domains())
    };
    let d = OurDaemon::start(fvd(), &lab.host, &setup);
    let g = lab.guest(1);
    let mut x = Driver::new(g, &xvm, &d.key, &["-i", "ipv6"], "multicast");
    let r = x.op("list", "", 0);
    assert_eq!(sorted_lines(&r.stdout), list_of(&domains()), "{r:#?}");
    x.op("status", "alpha", 0);
    x.op("status", &uuid(3), 2);
    x.op("off", &uuid(1), 0);
    x.op("status", "alpha", 2);
    x.op("on", "alpha", 0);
    x.op("reboot", "alpha", 0);
    x.op("monitor", "", 0);
    x.op("off", "no-such-vm", 1);

    let k = wrong_key(d.dir.path()).display().to_string();
    let r = agent_in(
        g,
        xvm.to_str().unwrap(),
        &["-k", &k, "-i", "ipv6", "-o", "status", "-H", "alpha", "-t", "2"],
        None,
        LIMIT,
    );
    expect(&r, 1, "wrong key");
    assert!(
        r.stderr.to_lowercase().contains("key"),
        "the time-out names the key: {r:#?}"
    );
    assert!(
        refused_with(&d, "bad-signature", &lab.guest_v6(1)),
        "{}",
        d.log_text()
    );
    assert_one_line_per_request(&d, &[&x]);

    let key = d.key.display().to_string();
    let start = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (g, key, xvm) = (g.to_owned(), key.clone(), xvm.clone());
            thread::spawn(move || {
                let target = if i % 2 == 0 { "beta".to_owned() } else { uuid(2) };
                agent_in(
                    &g,
                    xvm.to_str().unwrap(),
                    &[
                        "-k", &key, "-i", "ipv6", "-o", "status", "-H", &target, "-t", "10",
                    ],
                    None,
                    LIMIT,
                )
            })
        })
        .collect();
    for h in handles {
        let r = h.join().unwrap();
        expect(&r, 0, "four at once");
        assert_eq!(r.stdout, "Status: ON\n");
    }
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

/// e. A node with 121 domains (`test` + dom1..dom120, every tenth shut off):
/// `list` returns all of them, running or not, and status works on any.
#[test]
fn list_of_a_node_with_121_domains() {
    if !prerequisites(&c_needs()) {
        return;
    }
    let mut doms = vec![TestDomain::new("test", 0, true)];
    doms.extend(numbered_domains(120, |i| i % 10 == 0));
    let lab = Lab::with_subnet("vmfde", 1, 5);
    let d = OurDaemon::start(fvd(), &lab.host, &DaemonSetup::with_domains(doms.clone()));
    let mut x = Driver::new(lab.guest(1), C_XVM, &d.key, &[], "multicast");
    let r = x.op("list", "", 0);
    let lines = sorted_lines(&r.stdout);
    assert_eq!(lines.len(), 121, "{}", r.stdout);
    assert_eq!(lines, list_of(&doms));
    assert_eq!(r.stdout.matches(" off\n").count(), 12, "{}", r.stdout);
    x.op("status", "dom1", 0);
    x.op("status", "dom10", 2);
    x.op("status", "dom120", 2);
    x.op("status", &uuid(77), 0);
    x.op("status", "test", 0);
    x.op("off", "dom119", 0);
    x.op("status", &uuid(119).to_uppercase(), 2);
    let ours = our_bin("fence_xvm");
    if ours.exists() {
        let r = agent_in(
            lab.guest(1),
            ours.to_str().unwrap(),
            &["-k", d.key.to_str().unwrap(), "-o", "list"],
            None,
            LIMIT,
        );
        expect(&r, 0, "our list");
        assert_eq!(sorted_lines(&r.stdout).len(), 121, "{}", r.stdout);
        x.executed
            .push(("multicast".into(), "list".into(), String::new(), "0".into()));
    }
    assert_one_line_per_request(&d, &[&x]);
}

/// f. Floods of malformed packets (`fvclient.py --raw ...`, 300 each) are
/// refused with their reason, the refusal lines are rate-limited, and the
/// daemon keeps running and answering promptly.
#[test]
fn bad_input_floods_are_refused_and_the_daemon_keeps_answering() {
    let mut needs = c_needs();
    needs.extend([Need::Python, Need::Harness]);
    if !prerequisites(&needs) {
        return;
    }
    let lab = Lab::with_subnet("vmfdf", 1, 6);
    let mut d = OurDaemon::start(fvd(), &lab.host, &DaemonSetup::with_domains(domains()));
    let g = lab.guest(1);
    let src = lab.guest_v4(1);
    let (fv, key) = (fvclient(), d.key.display().to_string());
    let start = Instant::now();
    let kinds = [
        ("garbage", "bad-length"),
        ("truncated", "bad-length"),
        ("badhash", "bad-signature"),
        ("hashnone", "hash-too-weak"),
        ("badfamily", "bad-callback"),
        ("longname", "malformed"),
    ];
    for (kind, reason) in kinds {
        let count = |d: &OurDaemon| d.refusals().iter().filter(|l| l.get("reason") == reason).count();
        let before = count(&d);
        let r = agent_in(
            g,
            python(),
            &[&fv, "-k", &key, "--src", &src, "--raw", kind, "--count", "300"],
            None,
            LIMIT,
        );
        expect(&r, 0, kind);
        assert!(r.stdout.contains("\"sent\": 300"), "{r:#?}");
        let deadline = Instant::now() + Duration::from_secs(3);
        while count(&d) == before {
            assert!(
                Instant::now() < deadline,
                "{kind}: no refusal with reason {reason}:\n{}",
                d.log_text()
            );
            thread::sleep(Duration::from_millis(25));
        }
        // Let the refusal log's one-second window pass, so the next kind
        // gets lines of its own.
        thread::sleep(Duration::from_millis(1050));
    }
    assert!(d.alive(), "daemon died:\n{}", d.log_text());
    assert!(Path::new(&format!("/proc/{}", d.pid())).exists());
    let r = agent_in(
        g,
        C_XVM,
        &["-k", &key, "-o", "status", "-H", "alpha", "-t", "5"],
        None,
        LIMIT,
    );
    expect(&r, 0, "status after the floods");
    assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
    let refusals = d.refusals();
    let windows = start.elapsed().as_secs() as usize + 2;
    assert!(
        refusals.len() <= 20 * windows,
        "{} refusal lines in {windows} s: not rate-limited",
        refusals.len()
    );
    assert!(
        d.log_lines()
            .iter()
            .any(|l| l.message.contains("log lines suppressed")),
        "{}",
        d.log_text()
    );
    // Nothing of the floods was executed: the only request is the status.
    let reqs = d.requests();
    assert_eq!(reqs.len(), 1, "{}", d.log_text());
    assert_eq!(reqs[0].get("op"), "status");
}

const STALL_PY: &str = r#"
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(4)
print("listening", flush=True)
c, a = s.accept()
print("accepted", a[0], flush=True)
time.sleep(20)
"#;

/// g. A call-back peer that accepts the daemon's connection and then says
/// nothing delays nobody else (the classic daemon blocks everyone for 10 s
/// per authentication step); when it hangs up, its request is refused.
#[test]
fn a_stalled_callback_peer_delays_nobody() {
    let mut needs = c_needs();
    needs.extend([Need::Python, Need::Harness]);
    if !prerequisites(&needs) {
        return;
    }
    let lab = Lab::with_subnet("vmfdg", 2, 7);
    let d = OurDaemon::start(fvd(), &lab.host, &DaemonSetup::with_domains(domains()));
    let (g1, g2) = (lab.guest(1), lab.guest(2));
    let g2ip = lab.guest_v4(2);
    let mut stall = Spawned::start(g2, python(), &["-c", STALL_PY, &g2ip, "1240"]);
    stall
        .wait_line("listening", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("stalling peer did not start: {}", stall.output()));
    let key = d.key.display().to_string();
    let r = agent_in(
        g2,
        python(),
        &[
            &fvclient(),
            "-k",
            &key,
            "--src",
            &g2ip,
            "--raw",
            "signed",
            "--cb-port",
            "1240",
            "-o",
            "status",
            "-H",
            "alpha",
        ],
        None,
        LIMIT,
    );
    expect(&r, 0, "send one signed request");
    stall
        .wait_line("accepted", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the daemon never called back:\n{}", d.log_text()));

    // While that connection stalls, another guest is served at once.
    for target in ["alpha", "beta"] {
        let r = agent_in(
            g1,
            C_XVM,
            &["-k", &key, "-o", "status", "-H", target, "-t", "8"],
            None,
            LIMIT,
        );
        expect(&r, 0, "status while a peer stalls");
        assert!(r.elapsed < Duration::from_secs(3), "took {:?}", r.elapsed);
    }
    assert_eq!(d.requests().len(), 2, "{}", d.log_text());

    // The stalled peer hangs up: its request is refused, not executed.
    drop(stall);
    let peer = format!("{g2ip}:1240");
    let line = d.wait_log(Duration::from_secs(3), |l| {
        l.message == "request refused" && l.get("peer") == peer
    });
    let line = line.unwrap_or_else(|| panic!("no refusal for {peer}:\n{}", d.log_text()));
    assert_eq!(line.get("reason"), "auth-failed", "{}", line.raw);
    assert_eq!(d.requests().len(), 2, "{}", d.log_text());
}

/// The agent side of the call back, holding the key: challenges the daemon,
/// answers its challenge, prints the result byte (or `closed`). Serves
/// connections until killed. Arguments: KEY IP PORT DELAY_S.
const RESPONDER_PY: &str = r#"
import hashlib, os, socket, sys, time
key = open(sys.argv[1], "rb").read(4096)
delay = float(sys.argv[4])
def recvn(c, n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x:
            raise EOFError("closed after %d bytes" % len(b))
        b += x
    return b
def answer(ch):
    return hashlib.sha256(key + ch).digest().ljust(64, b"\0")
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[2], int(sys.argv[3])))
s.listen(8)
print("listening", flush=True)
while True:
    c, a = s.accept()
    c.settimeout(15)
    print("accepted", a[0], flush=True)
    try:
        time.sleep(delay)
        ch = os.urandom(64)
        c.sendall(ch)
        ok = recvn(c, 64) == answer(ch)
        c.sendall(answer(recvn(c, 64)))
        code = c.recv(1)
        print("result", "daemon-ok" if ok else "daemon-wrong", code[0] if code else "closed", flush=True)
    except Exception as e:
        print("error", repr(e), flush=True)
    c.close()
"#;

/// A signed request for `op` on `target` with the call back to `to`.
fn signed_packet(key_file: &Path, op: Op, target: &str, to: std::net::SocketAddr) -> Vec<u8> {
    let key = Key::from_bytes(&std::fs::read(key_file).unwrap()).unwrap();
    let mut rnd = [0u8; 10];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut rnd).unwrap();
    let mut random = [0u8; 6];
    random.copy_from_slice(&rnd[..6]);
    let seqno = u32::from_le_bytes([rnd[6], rnd[7], rnd[8], rnd[9]]);
    FenceRequest::new(op, Some(Domain::new(target).unwrap()), seqno)
        .with_callback(to)
        .encode_signed(HashType::Sha256, Some(&key), random)
        .unwrap()
        .to_vec()
}

/// h. A captured signed `off` is executed once. Sent again within 10 s it
/// is a duplicate (no call back); sent from another host it is refused
/// before any call back (the packet's address is not its source); sent
/// again after the classic 10 s history window — when the classic daemon
/// would execute it again — it is refused as a replay and the VM, powered on
/// in between, stays on.
#[test]
fn a_replayed_request_is_never_executed_twice() {
    let mut needs = c_needs();
    needs.extend([Need::Python, Need::Harness]);
    if !prerequisites(&needs) {
        return;
    }
    let lab = Lab::with_subnet("vmfdh", 2, 8);
    let d = OurDaemon::start(fvd(), &lab.host, &DaemonSetup::with_domains(domains()));
    let g = lab.guest(1);
    let ip = lab.guest_v4(1);
    let key = d.key.display().to_string();
    let mut responder = Spawned::start(g, python(), &["-c", RESPONDER_PY, &key, &ip, "1230", "0"]);
    responder
        .wait_line("listening", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("responder: {}", responder.output()));
    let packet = d.dir.path().join("off-alpha.bin");
    let to = format!("{ip}:1230").parse().unwrap();
    std::fs::write(&packet, signed_packet(&d.key, Op::Off, "alpha", to)).unwrap();
    let packet = packet.display().to_string();
    let send_from = |ns: &str, src: &str| {
        let r = agent_in(
            ns,
            python(),
            &[&fvclient(), "-k", &key, "--src", src, "--raw", "replay", &packet],
            None,
            LIMIT,
        );
        expect(&r, 0, "fvclient replay");
    };
    let send = || send_from(g, &ip);
    let status = |want: i32, what: &str| {
        let r = agent_in(
            g,
            C_XVM,
            &["-k", &key, "-o", "status", "-H", "alpha"],
            None,
            LIMIT,
        );
        expect(&r, want, what);
    };

    let first = Instant::now();
    send();
    let line = responder.wait_line("result", Duration::from_secs(5));
    assert_eq!(
        line.as_deref(),
        Some("result daemon-ok 0"),
        "first execution: {}\n{}",
        responder.output(),
        d.log_text()
    );
    status(2, "off was executed");

    // Within the window: a duplicate, dropped before any call back.
    send();
    assert!(
        responder
            .wait_line("accepted", Duration::from_millis(800))
            .is_none(),
        "duplicate was called back:\n{}",
        d.log_text()
    );

    // From another host: refused at once, nobody is called back.
    let other = lab.guest_v4(2);
    send_from(lab.guest(2), &other);
    d.wait_log(Duration::from_secs(2), |l| {
        l.message == "request refused"
            && l.get("reason") == "source-mismatch"
            && l.get("peer").starts_with(&format!("{other}:"))
    })
    .unwrap_or_else(|| panic!("no source-mismatch refusal:\n{}", d.log_text()));
    assert!(
        responder
            .wait_line("accepted", Duration::from_millis(300))
            .is_none(),
        "a packet from another host was called back:\n{}",
        d.log_text()
    );

    let r = agent_in(g, C_XVM, &["-k", &key, "-o", "on", "-H", "alpha"], None, LIMIT);
    expect(&r, 0, "power alpha back on");
    status(0, "alpha on again");

    // After the history window: the classic daemon would execute it again.
    let wait = Duration::from_millis(10_600).saturating_sub(first.elapsed());
    thread::sleep(wait);
    send();
    let line = responder.wait_line("result", Duration::from_secs(5));
    assert_eq!(
        line.as_deref(),
        Some("result daemon-ok closed"),
        "replay: {}\n{}",
        responder.output(),
        d.log_text()
    );
    let refused = d
        .wait_log(Duration::from_secs(2), |l| {
            l.message == "request refused" && l.get("reason") == "replay"
        })
        .unwrap_or_else(|| panic!("no replay refusal:\n{}", d.log_text()));
    assert_eq!(refused.get("op"), "off", "{}", refused.raw);
    assert_eq!(refused.get("domain"), "alpha", "{}", refused.raw);
    status(0, "the replay did not power alpha off");
    let offs: Vec<_> = d
        .requests()
        .into_iter()
        .filter(|l| l.get("op") == "off")
        .collect();
    assert_eq!(offs.len(), 1, "{}", d.log_text());
    assert!(first.elapsed() < Duration::from_secs(25));
}

/// i. `groups`: guest 1 may act on alpha by UUID only; by name it is denied
/// (exit 3, as classic), guest 2 is denied, and `list` shows each requester
/// only what it may fence.
#[test]
fn groups_restrict_requesters_and_lists() {
    if !prerequisites(&c_needs()) {
        return;
    }
    let lab = Lab::with_subnet("vmfdi", 2, 9);
    let setup = DaemonSetup {
        groups: vec![GroupSpec {
            name: "guest1".into(),
            ips: vec![lab.guest_v4(1)],
            uuids: vec![uuid(1)],
        }],
        ..DaemonSetup::with_domains(domains())
    };
    let d = OurDaemon::start(fvd(), &lab.host, &setup);
    let mut one = Driver::new(lab.guest(1), C_XVM, &d.key, &[], "multicast");
    let mut two = Driver::new(lab.guest(2), C_XVM, &d.key, &[], "multicast");
    let r = one.op("status", "alpha", 3);
    assert!(said(&r, "Permission denied"), "{r:#?}");
    one.op("status", &uuid(1), 0);
    one.op("status", &uuid(1).to_uppercase(), 0);
    one.op("off", &uuid(2), 3);
    one.op("reboot", &uuid(1), 0);
    let r = one.op("list", "", 0);
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), [domains()[0].list_line()]);
    two.op("status", &uuid(1), 3);
    two.op("off", &uuid(1), 3);
    let r = two.op("list", "", 0);
    assert_eq!(r.stdout, "", "{r:#?}");
    // monitor is never checked
    two.op("monitor", "", 0);
    assert_one_line_per_request(&d, &[&one, &two]);
    assert!(
        d.requests()
            .iter()
            .filter(|l| l.get("code") == "3")
            .all(|l| l.get("outcome") == "denied"),
        "{}",
        d.log_text()
    );
}

/// j. SIGHUP reloads (here: adds the tcp listener and a `groups` map)
/// without dropping a request in flight; a broken file is refused and the
/// running configuration kept; SIGTERM stops with status 0 and removes the
/// pid file.
#[test]
fn sighup_reloads_and_sigterm_stops_cleanly() {
    let mut needs = c_needs();
    needs.extend([Need::Python, Need::Harness]);
    if !prerequisites(&needs) {
        return;
    }
    let lab = Lab::with_subnet("vmfdj", 1, 10);
    let mut setup = DaemonSetup::with_domains(domains());
    let mut d = OurDaemon::start(fvd(), &lab.host, &setup);
    let pid_text = std::fs::read_to_string(&d.pid_file).unwrap();
    assert_eq!(pid_text.trim(), d.pid().to_string());
    let g = lab.guest(1);
    let ip = lab.guest_v4(1);
    let host = lab.host_v4();
    let key = d.key.display().to_string();

    // A request in flight across the reload: the responder waits 1.5 s
    // before its challenge.
    let mut responder = Spawned::start(g, python(), &["-c", RESPONDER_PY, &key, &ip, "1230", "1.5"]);
    responder
        .wait_line("listening", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("responder: {}", responder.output()));
    let r = agent_in(
        g,
        python(),
        &[
            &fvclient(),
            "-k",
            &key,
            "--src",
            &ip,
            "--raw",
            "signed",
            "--cb-port",
            "1230",
            "-o",
            "status",
            "-H",
            "alpha",
        ],
        None,
        LIMIT,
    );
    expect(&r, 0, "send the in-flight request");
    responder
        .wait_line("accepted", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no call back:\n{}", d.log_text()));

    setup.listeners.push(OurListener::Tcp {
        address: host.clone(),
    });
    setup.groups = vec![GroupSpec {
        name: "g".into(),
        ips: vec![ip.clone()],
        uuids: vec![uuid(2)],
    }];
    d.write_config(&setup);
    d.signal("HUP");
    d.wait_bound(&setup.listeners, Duration::from_secs(5));
    d.wait_log(Duration::from_secs(5), |l| l.message == "configuration reloaded")
        .unwrap_or_else(|| panic!("no reload:\n{}", d.log_text()));

    // The request in flight finished on the old configuration (no groups).
    let line = responder.wait_line("result", Duration::from_secs(5));
    assert_eq!(
        line.as_deref(),
        Some("result daemon-ok 0"),
        "in flight across the reload: {}\n{}",
        responder.output(),
        d.log_text()
    );
    drop(responder);

    // The new one: tcp works, groups apply.
    let r = agent_in(
        g,
        C_VIRT,
        &["-k", &key, "-T", &host, "-o", "status", "-H", &uuid(2)],
        None,
        LIMIT,
    );
    expect(&r, 0, "tcp after reload");
    let r = agent_in(
        g,
        C_XVM,
        &["-k", &key, "-o", "status", "-H", &uuid(1)],
        None,
        LIMIT,
    );
    expect(&r, 3, "groups after reload");

    // A broken file is refused; the daemon keeps serving the old one.
    std::fs::write(&d.conf, "fence_virtd { listener = \"nonsense\"; }\n").unwrap();
    d.signal("HUP");
    d.wait_log(Duration::from_secs(5), |l| {
        l.message.starts_with("reload refused")
    })
    .unwrap_or_else(|| panic!("no refusal of the broken file:\n{}", d.log_text()));
    let r = agent_in(
        g,
        C_XVM,
        &["-k", &key, "-o", "status", "-H", &uuid(2)],
        None,
        LIMIT,
    );
    expect(&r, 0, "still serving after a refused reload");

    d.signal("TERM");
    let st = d
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no exit after SIGTERM:\n{}", d.log_text()));
    assert_eq!(st.code(), Some(0), "{st}\n{}", d.log_text());
    assert!(!d.pid_file.exists(), "pid file left behind");
}

/// Our daemon started by the harness script; stopped by pid through it.
struct HarnessDaemon {
    script: PathBuf,
    work: PathBuf,
}

impl Drop for HarnessDaemon {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.work)
            .output();
    }
}

/// k. The harness's `start-c-daemon.sh` starts ours (`FENCE_VIRTD=`), with
/// its classic configuration (`module_path` and all); the classic agent
/// works against it and the script's `stop` ends it.
#[test]
fn the_harness_script_starts_our_daemon() {
    let mut needs = c_needs();
    needs.push(Need::Harness);
    if !prerequisites(&needs) {
        return;
    }
    let lab = Lab::with_subnet("vmfdk", 1, 11);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("fence_xvm.key");
    write_key(&key, 128);
    let work = dir.path().join("work");
    let script = harness_dir().join("start-c-daemon.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(["-n", &lab.host, "-w"])
        .arg(&work)
        .arg("-k")
        .arg(&key)
        .env("FENCE_VIRTD", FVD)
        .output()
        .unwrap();
    let guard = HarnessDaemon {
        script: script.clone(),
        work: work.clone(),
    };
    assert!(
        out.status.success(),
        "start-c-daemon.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "fence_virtd");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_eq!(exe, fvd().canonicalize().unwrap(), "it is ours");

    let k = key.display().to_string();
    let r = agent_in(
        lab.guest(1),
        C_XVM,
        &["-k", &k, "-o", "status", "-H", TEST_VM],
        None,
        LIMIT,
    );
    expect(&r, 0, "status of test:///default's VM");
    let r = agent_in(lab.guest(1), C_XVM, &["-k", &k, "-o", "list"], None, LIMIT);
    expect(&r, 0, "list");
    assert!(r.stdout.contains(TEST_UUID), "{r:#?}");
    let log = strip_ansi(&std::fs::read_to_string(work.join("fence_virtd.log")).unwrap());
    assert!(log.contains("request"), "{log}");

    drop(guard);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim()
                != "fence_virtd",
        "still running after stop"
    );
    assert!(!work.join("fence_virtd.pid").exists(), "pid file left behind");
}

/// Written to a file (not a terminal), the log must be plain text: under
/// systemd standard error goes to the journal, and `journalctl` shows a
/// message with escape bytes as `[N blob data]`.
#[test]
fn log_to_a_file_has_no_terminal_escapes() {
    if !prerequisites(&[Need::Lab]) {
        return;
    }
    let lab = Lab::with_subnet("vmfdl", 0, 12);
    let setup = DaemonSetup {
        listeners: vec![OurListener::Tcp {
            address: "127.0.0.1".into(),
        }],
        ..DaemonSetup::default()
    };
    let d = OurDaemon::start(fvd(), &lab.host, &setup);
    let raw = d.log_raw();
    assert!(raw.contains("ready"), "{raw}");
    assert!(!raw.contains('\u{1b}'), "escape codes in the log: {raw:?}");
}
