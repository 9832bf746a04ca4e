//! Our `fence_xvm` and `fence_virt -T` against the classic C `fence_virtd`
//! (Debian fence-virtd 4.12.1, libvirt test driver), each test in its own
//! network-namespace lab (`vmfa<N>`), so the tests may run in parallel.
//!
//! Needs root, iproute2 and /usr/sbin/fence_virtd: without them the tests
//! skip with a reason, except under CI, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use vmfence_testlab::*;

const XVM: &str = env!("CARGO_BIN_EXE_fence_xvm");
const VIRT: &str = env!("CARGO_BIN_EXE_fence_virt");
const LIMIT: Duration = Duration::from_secs(20);

fn key_args(d: &CDaemon) -> Vec<String> {
    vec!["-k".into(), d.key.display().to_string()]
}

/// Run `bin` in `ns` with the daemon's key plus `args`.
fn run(ns: &str, bin: &str, d: &CDaemon, args: &[&str]) -> Run {
    let mut all = key_args(d);
    all.extend(args.iter().map(|s| s.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    agent_in(ns, bin, &all, None, LIMIT)
}

fn expect(r: &Run, code: i32, what: &str) {
    assert_eq!(r.code, code, "{what}: {r:#?}");
}

fn list_line(state: &str) -> String {
    format!("{TEST_VM:<32} {TEST_UUID} {state}\n")
}

#[test]
fn c_daemon_ipv4_multicast_every_action() {
    if !lab_prerequisites("c-daemon") {
        return;
    }
    let lab = Lab::new("vmfa1", 1);
    let d = CDaemon::start(&lab.host, Listener::Multicast { ipv6: false }, "");
    let g = lab.guest(1);
    let x = |args: &[&str]| run(g, XVM, &d, args);

    let r = x(&["-o", "list"]);
    expect(&r, 0, "list");
    assert_eq!(r.stdout, list_line("on"));
    let r = x(&["-o", "list-status"]);
    expect(&r, 0, "list-status");
    assert_eq!(r.stdout, list_line("on"));

    let r = x(&["-o", "status", "-n", TEST_VM]);
    expect(&r, 0, "status by name");
    assert_eq!(r.stdout, "Status: ON\n");
    let r = x(&["-o", "status", "-H", TEST_UUID]);
    expect(&r, 0, "status by UUID");

    expect(&x(&["-o", "off", "-n", TEST_VM]), 0, "off by name");
    let r = x(&["-o", "status", "-n", TEST_VM]);
    expect(&r, 2, "status after off");
    assert_eq!(r.stdout, "Status: OFF\n");
    let r = x(&["-o", "list"]);
    assert_eq!(r.stdout, list_line("off"));

    expect(&x(&["-o", "on", "-n", TEST_UUID]), 0, "on by UUID");
    expect(
        &x(&["-o", "status", "-u", "-n", TEST_UUID]),
        0,
        "status -u after on",
    );
    expect(&x(&["-o", "reboot", "-n", TEST_UUID]), 0, "reboot by UUID");
    expect(
        &x(&["-o", "off", "-n", &TEST_UUID.to_uppercase()]),
        0,
        "off by upper-case UUID",
    );
    expect(
        &x(&["-o", "status", "-n", TEST_VM]),
        2,
        "status after off by UUID",
    );
    expect(
        &x(&["-o", "reboot", "-n", TEST_VM]),
        0,
        "reboot of an off VM succeeds (stays off)",
    );
    expect(
        &x(&["-o", "status", "-n", TEST_VM]),
        2,
        "reboot does not power on",
    );
    expect(&x(&["-o", "on", "-n", TEST_VM]), 0, "on by name");
    expect(&x(&["-o", "monitor"]), 0, "monitor");

    // Unknown domain: the libvirt backend says OFF for status, fails off.
    let r = x(&["-o", "status", "-n", "no-such-vm"]);
    expect(&r, 2, "status of an unknown VM");
    let r = x(&["-o", "off", "-n", "no-such-vm"]);
    expect(&r, 1, "off of an unknown VM");
    assert!(r.stderr.contains("Operation failed"), "{r:#?}");
    expect(
        &x(&["-o", "null", "-n", TEST_VM]),
        1,
        "null (the backend answers failure)",
    );

    // Pacemaker style: everything on stdin, unknown keys and nodename ignored.
    let stdin = format!(
        "# pacemaker-fenced\naction=status\nnodename=node1\nport=wrong\nplug={TEST_VM}\n\
         key_file={}\npcmk_host_list=node1\ntimeout=10\n",
        d.key.display()
    );
    let r = agent_in(g, XVM, &[], Some(&stdin), LIMIT);
    expect(&r, 0, "stdin status");
    assert_eq!(r.stdout, "Status: ON\n");
    assert!(r.stderr.is_empty(), "stdin notes only at debug level: {r:#?}");
    let r = agent_in(g, XVM, &[], Some(&format!("{stdin}debug=1\n")), LIMIT);
    assert!(r.stderr.contains("pcmk_host_list"), "{r:#?}");
    let stdin = format!("action=list\nkey_file={}\n", d.key.display());
    let r = agent_in(g, XVM, &[], Some(&stdin), LIMIT);
    assert_eq!(r.stdout, list_line("on"));
}

#[test]
fn c_daemon_wrong_key_or_weak_hash_times_out_with_advice() {
    if !lab_prerequisites("c-daemon") {
        return;
    }
    let lab = Lab::new("vmfa2", 1);
    let d = CDaemon::start(&lab.host, Listener::Multicast { ipv6: false }, "");
    let g = lab.guest(1).to_owned();
    let wrong = d.dir.path().join("wrong.key");
    write_key(&wrong, 64);
    let wrong_s = wrong.display().to_string();
    let key_s = d.key.display().to_string();
    let g2 = g.clone();
    let weak = std::thread::spawn(move || {
        agent_in(
            &g2,
            XVM,
            &[
                "-k", &key_s, "-c", "sha1", "-o", "status", "-n", TEST_VM, "-t", "2",
            ],
            None,
            LIMIT,
        )
    });
    let r = agent_in(
        &g,
        XVM,
        &["-k", &wrong_s, "-o", "status", "-n", TEST_VM, "-t", "2"],
        None,
        LIMIT,
    );
    expect(&r, 1, "wrong key");
    assert!(r.stdout.is_empty());
    for needle in [
        "timed out after 2",
        "no fence_virtd called back",
        "key_file",
        "UDP port 1229",
        "TCP port",
    ] {
        assert!(r.stderr.contains(needle), "{needle} missing: {}", r.stderr);
    }
    assert!(
        r.elapsed < Duration::from_secs(4),
        "bounded by -t: {:?}",
        r.elapsed
    );
    let r = weak.join().unwrap();
    expect(&r, 1, "sha1 against a sha256 daemon");
    assert!(r.stderr.contains("hash=sha1 is weaker"), "{}", r.stderr);
    let log = d.log_text();
    assert!(
        log.contains("Key mismatch") || log.contains("not strong enough"),
        "{log}"
    );
}

#[test]
fn no_daemon_times_out_with_advice_within_the_timeout() {
    if !lab_prerequisites("lab") {
        return;
    }
    let lab = Lab::new("vmfa3", 1);
    let g = lab.guest(1);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    write_key(&key, 32);
    let r = agent_in(
        g,
        XVM,
        &["-k", key.to_str().unwrap(), "-o", "monitor", "-t", "1", "-dd"],
        None,
        LIMIT,
    );
    expect(&r, 1, "no daemon");
    assert!(r.stderr.contains("timed out after 1"), "{}", r.stderr);
    assert!(r.stderr.contains("Likely causes"), "{}", r.stderr);
    assert!(r.elapsed < Duration::from_millis(2500), "{:?}", r.elapsed);
    // Fast retransmission: 150, 300, 600 ms... so at least 3 rounds in 1 s.
    let rounds = r
        .stderr
        .split("The request went ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap();
    assert!(rounds >= 3, "{rounds} rounds: {}", r.stderr);

    // fence_virt -T with nobody listening fails at once.
    let r = agent_in(
        g,
        VIRT,
        &[
            "-k",
            key.to_str().unwrap(),
            "-T",
            HOST_V4,
            "-o",
            "status",
            "-n",
            TEST_VM,
        ],
        None,
        LIMIT,
    );
    expect(&r, 1, "tcp no daemon");
    assert!(
        r.stderr
            .contains("unable to connect to fence_virtd at 10.229.0.1:1229"),
        "{}",
        r.stderr
    );
    assert!(r.elapsed < Duration::from_secs(2));
}

#[test]
fn four_agents_at_once_on_one_guest() {
    if !lab_prerequisites("c-daemon") {
        return;
    }
    let lab = Lab::new("vmfa4", 1);
    let d = CDaemon::start(&lab.host, Listener::Multicast { ipv6: false }, "");
    let g = lab.guest(1).to_owned();
    let key = d.key.display().to_string();
    let start = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (g, key) = (g.clone(), key.clone());
            std::thread::spawn(move || {
                let (action, target) = if i % 2 == 0 {
                    ("status", TEST_VM)
                } else {
                    ("status", TEST_UUID)
                };
                agent_in(
                    &g,
                    XVM,
                    &["-k", &key, "-o", action, "-n", target, "-t", "10", "-dd"],
                    None,
                    LIMIT,
                )
            })
        })
        .collect();
    let runs: Vec<Run> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for r in &runs {
        expect(r, 0, "concurrent status");
        assert_eq!(r.stdout, "Status: ON\n");
    }
    // The classic agent makes the others wait 2 s for the fixed port.
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

#[test]
fn one_lost_datagram_costs_well_under_a_second() {
    if !lab_prerequisites("c-daemon") {
        return;
    }
    let lab = Lab::new("vmfa5", 1);
    let d = CDaemon::start(&lab.host, Listener::Multicast { ipv6: false }, "");
    let key = d.key.display().to_string();
    lab.port_forwarding(1, false);
    let (mut child, lines) = spawn_agent(
        lab.guest(1),
        XVM,
        &["-k", &key, "-o", "status", "-n", TEST_VM, "-dd"],
    );
    // Wait for the first send, then let the following ones through.
    let first = Instant::now();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(5))
            .expect("agent said nothing");
        if line.contains("sending to 225.0.0.12:1229 via 10.229.0.11") {
            break;
        }
    }
    lab.port_forwarding(1, true);
    let mut called_back = None;
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        if line.contains("call back from") {
            called_back = Some((first.elapsed(), line));
        }
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let (t, line) = called_back.expect("no call back");
    let rounds: u32 = line
        .split(" and ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(rounds >= 2, "the first datagram was to be lost: {line}");
    // Typically 150 ms (one lost datagram); the classic agent needs 2 s.
    assert!(t < Duration::from_millis(1000), "answer took {t:?} ({line})");
}

#[test]
fn c_daemon_ipv6_multicast() {
    if !lab_prerequisites("c-daemon") {
        return;
    }
    let lab = Lab::new("vmfa6", 1);
    let d = CDaemon::start(&lab.host, Listener::Multicast { ipv6: true }, "");
    let g = lab.guest(1);
    let x = |args: &[&str]| run(g, XVM, &d, args);
    let r = x(&["-i", "ipv6", "-o", "list", "-dd"]);
    expect(&r, 0, "v6 list");
    assert_eq!(r.stdout, list_line("on"));
    assert!(r.stderr.contains("call back from [fdfe:229::1]"), "{}", r.stderr);
    expect(
        &x(&["-a", "ff05::3:1", "-o", "off", "-n", TEST_VM]),
        0,
        "v6 off (family from -a)",
    );
    expect(
        &x(&["-i", "ipv6", "-o", "status", "-n", TEST_UUID]),
        2,
        "v6 status off",
    );
    expect(&x(&["-i", "ipv6", "-o", "on", "-n", TEST_VM]), 0, "v6 on");
    expect(
        &x(&["-i", "ipv6", "-o", "status", "-n", TEST_VM]),
        0,
        "v6 status on",
    );
    // The IPv4 group reaches nobody here.
    let r = x(&["-o", "monitor", "-t", "1"]);
    expect(&r, 1, "v4 to a v6 daemon");
}

#[test]
fn c_daemon_tcp_fence_virt() {
    if !lab_prerequisites("c-daemon") {
        return;
    }
    let mut lab = Lab::new("vmfa7", 1);
    lab.hosts_entry(1, "fencehost");
    let d = CDaemon::start(&lab.host, Listener::Tcp { address: HOST_V4 }, "");
    let g = lab.guest(1);
    let v = |args: &[&str]| {
        let mut all = vec!["-T", HOST_V4];
        all.extend_from_slice(args);
        run(g, VIRT, &d, &all)
    };
    let r = v(&["-o", "list"]);
    expect(&r, 0, "tcp list");
    assert_eq!(r.stdout, list_line("on"));
    let r = v(&["-o", "status", "-n", TEST_VM]);
    expect(&r, 0, "tcp status");
    assert_eq!(r.stdout, "Status: ON\n");
    expect(&v(&["-o", "off", "-n", TEST_UUID]), 0, "tcp off by UUID");
    expect(&v(&["-o", "status", "-n", TEST_VM]), 2, "tcp status off");
    expect(&v(&["-o", "on", "-n", TEST_VM]), 0, "tcp on");
    expect(&v(&["-o", "reboot", "-n", TEST_VM]), 0, "tcp reboot");
    expect(&v(&["-o", "monitor"]), 0, "tcp monitor");
    expect(&v(&["-o", "status", "-n", "no-such-vm"]), 2, "tcp status unknown");
    expect(&v(&["-o", "off", "-n", "no-such-vm"]), 1, "tcp off unknown");

    // A host name (the classic agent takes only literals).
    let r = run(g, VIRT, &d, &["-T", "fencehost", "-o", "status", "-n", TEST_VM]);
    expect(&r, 0, "tcp by host name");

    // stdin, as Pacemaker runs it.
    let stdin = format!(
        "action=status\nplug={TEST_VM}\nipaddr={HOST_V4}\nkey_file={}\n",
        d.key.display()
    );
    let r = agent_in(g, VIRT, &[], Some(&stdin), LIMIT);
    expect(&r, 0, "tcp stdin");

    // Wrong key: the daemon hangs up after reading the request.
    let wrong = d.dir.path().join("wrong.key");
    write_key(&wrong, 16);
    let r = agent_in(
        g,
        VIRT,
        &[
            "-k",
            wrong.to_str().unwrap(),
            "-T",
            HOST_V4,
            "-o",
            "status",
            "-n",
            TEST_VM,
        ],
        None,
        LIMIT,
    );
    expect(&r, 1, "tcp wrong key");
    assert!(
        r.stderr.contains("closed the connection during authentication"),
        "{}",
        r.stderr
    );
    // Different auth digest: the daemon's answer does not verify.
    let r = v(&["-C", "sha512", "-o", "status", "-n", TEST_VM]);
    expect(&r, 1, "tcp auth mismatch");
    assert!(
        r.stderr.contains("answered our challenge wrongly"),
        "{}",
        r.stderr
    );
    // A stronger hash than the daemon's minimum is fine.
    expect(
        &v(&["-c", "sha512", "-o", "status", "-n", TEST_VM]),
        0,
        "tcp sha512 request",
    );
}

#[test]
fn c_daemon_permission_map_gives_exit_3() {
    if !lab_prerequisites("c-daemon") {
        return;
    }
    let lab = Lab::new("vmfa8", 1);
    // The guest at 10.229.0.11 may fence only the VM by UUID.
    let groups =
        format!("groups {{\n group {{ name = \"g\"; ip = \"10.229.0.11\"; uuid = \"{TEST_UUID}\"; }}\n}}\n");
    let d = CDaemon::start(&lab.host, Listener::Multicast { ipv6: false }, &groups);
    let g = lab.guest(1);
    let r = run(g, XVM, &d, &["-o", "status", "-n", TEST_VM]);
    expect(&r, 3, "status by name is denied");
    assert!(r.stderr.contains("Permission denied"), "{r:#?}");
    expect(
        &run(g, XVM, &d, &["-o", "status", "-n", TEST_UUID]),
        0,
        "status by UUID allowed",
    );
}
