//! Our `fence_virt` over a serial line and over VMChannel, against the
//! classic C `fence_virtd` serial listener (Debian fence-virtd 4.12.1,
//! libvirt test driver) and against scripted daemons.
//!
//! Serial: a test-driver domain owns `<serial type='unix'>` with a socket
//! that socat serves and bridges to a pseudo terminal, which plays the
//! guest's serial port; the C daemon connects to the socket, our agent opens
//! the pty with `-D`. VMChannel: the same daemon in `vmchannel` mode behind a
//! small stand-in for QEMU's guestfwd (a relay in this test plus socat
//! listening on 10.0.2.179:1229 in a guest namespace), so the agent runs
//! with no transport option at all.
//!
//! Every test that needs root, socat or the C daemon has its own lab
//! (`vmfs<letter>`) torn down on drop. No multicast, no vsock here (vsock is
//! tested without a peer in the library's unit tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use vmfence_proto::hostlist::TERMINATOR;
use vmfence_proto::serial::{encode_response, FramerEvent, RequestFramer, SerialRequest};
use vmfence_proto::{HostState, Op, Response};
use vmfence_testlab::*;

const VIRT: &str = env!("CARGO_BIN_EXE_fence_virt");
const LIMIT: Duration = Duration::from_secs(25);

fn expect(r: &Run, code: i32, what: &str) {
    assert_eq!(r.code, code, "{what}: {r:#?}");
}

/// g1 (the guest with the fence device), offvm (shut off), victim.
fn domains() -> Vec<TestDomain> {
    vec![
        TestDomain::new("g1", 1, true),
        TestDomain::new("offvm", 2, false),
        TestDomain::new("victim", 3, true),
    ]
}

/// The test-driver node: g1 carries the fence device, a `<serial>` port
/// or a VMChannel `<channel>` whose host side is the Unix socket `sock`.
fn node(sock: &Path, vmchannel: bool) -> String {
    let device = if vmchannel {
        format!(
            "<channel type='unix'><source mode='bind' path='{}'/>\
             <target type='guestfwd' address='10.0.2.179' port='1229'/></channel>",
            sock.display()
        )
    } else {
        format!(
            "<serial type='unix'><source mode='bind' path='{}'/><target port='1'/></serial>",
            sock.display()
        )
    };
    let mut xml = String::from(
        "<node>\n<cpu><nodes>1</nodes><sockets>1</sockets><cores>1</cores><threads>1</threads>\
         <active>1</active><mhz>2000</mhz><model>x86_64</model></cpu>\n<memory>1048576</memory>\n",
    );
    for (i, d) in domains().iter().enumerate() {
        let state = if d.running {
            ""
        } else {
            "<test:runstate>5</test:runstate>"
        };
        let devices = if i == 0 { device.as_str() } else { "" };
        xml.push_str(&format!(
            "<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
             <name>{}</name><uuid>{}</uuid><memory>65536</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os>{state}<devices>{devices}</devices></domain>\n",
            d.name, d.uuid
        ));
    }
    xml.push_str("</node>\n");
    xml
}

fn list_output() -> String {
    domains().iter().map(|d| d.list_line() + "\n").collect()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The C daemon's serial listener behind socat and a pty: `tty` is the
/// guest's end of the serial line. Field order is drop order: the daemon
/// first, then socat, then the lab.
struct SerialRig {
    daemon: CDaemon,
    _socat: Spawned,
    lab: Lab,
    tty: String,
    _dir: tempfile::TempDir,
}

impl SerialRig {
    fn start(prefix: &str, subnet: u8) -> SerialRig {
        let lab = Lab::with_subnet(prefix, 0, subnet);
        let dir = tempfile::tempdir().unwrap();
        let sockets = dir.path().join("serial");
        std::fs::create_dir(&sockets).unwrap();
        let sock = sockets.join("g1.sock");
        let tty = dir.path().join("tty");
        let node_file = dir.path().join("node.xml");
        std::fs::write(&node_file, node(&sock, false)).unwrap();
        let socat = Spawned::start(
            &lab.host,
            "socat",
            &[
                &format!("UNIX-LISTEN:{}", sock.display()),
                &format!("PTY,link={},raw,echo=0", tty.display()),
            ],
        );
        wait_for("socat's socket", Duration::from_secs(5), || sock.exists());
        let uri = format!("test://{}", node_file.display());
        let daemon = CDaemon::start(
            &lab.host,
            Listener::Serial {
                uri: &uri,
                path: sockets.to_str().unwrap(),
                vmchannel: false,
            },
            "",
        );
        // socat makes the pty once the daemon has connected.
        wait_for("the pty", Duration::from_secs(5), || tty.exists());
        SerialRig {
            daemon,
            _socat: socat,
            lab,
            tty: tty.display().to_string(),
            _dir: dir,
        }
    }

    fn agent(&self, args: &[&str]) -> Run {
        let mut all = vec!["-D", self.tty.as_str(), "-t", "10"];
        all.extend_from_slice(args);
        agent_in(&self.lab.host, VIRT, &all, None, LIMIT)
    }
}

fn c_serial_needs() -> bool {
    prerequisites(&[Need::Lab, Need::CDaemon, Need::Socat])
}

#[test]
fn serial_every_action_against_the_c_daemon() {
    if !c_serial_needs() {
        return;
    }
    let rig = SerialRig::start("vmfsa", 50);
    let x = |args: &[&str]| rig.agent(args);

    let r = x(&["-o", "list"]);
    expect(&r, 0, "list");
    assert_eq!(r.stdout, list_output());
    let r = x(&["-o", "list-status"]);
    assert_eq!(r.stdout, list_output(), "{r:#?}");
    expect(&x(&["-o", "monitor"]), 0, "monitor");

    let r = x(&["-o", "status", "-n", "victim"]);
    expect(&r, 0, "status");
    assert_eq!(r.stdout, "Status: ON\n");
    expect(&x(&["-o", "off", "-n", "victim"]), 0, "off");
    let r = x(&["-o", "status", "-n", "victim"]);
    expect(&r, 2, "status after off");
    assert_eq!(r.stdout, "Status: OFF\n");
    expect(&x(&["-o", "on", "-n", "victim"]), 0, "on");
    expect(&x(&["-o", "status", "-n", "victim"]), 0, "status after on");
    let uuid = TestDomain::uuid_of(3);
    expect(&x(&["-o", "reboot", "-n", &uuid]), 0, "reboot by UUID");
    expect(&x(&["-o", "status", "-n", "victim"]), 0, "status after reboot");
    expect(&x(&["-o", "status", "-n", "offvm"]), 2, "status of a shut-off VM");

    // The libvirt backend: an unknown VM is OFF for status, off fails.
    expect(&x(&["-o", "status", "-n", "no-such-vm"]), 2, "status unknown");
    let r = x(&["-o", "off", "-n", "no-such-vm"]);
    expect(&r, 1, "off unknown");
    assert!(r.stderr.contains("Operation failed"), "{r:#?}");
    expect(&x(&["-o", "null", "-n", "victim"]), 1, "null");

    // Line settings other than the default (the pty does not mind), and
    // Pacemaker style on standard input, without any key file.
    expect(
        &x(&["-P", "9600,7E2", "-o", "status", "-n", "victim"]),
        0,
        "-P 9600,7E2",
    );
    let stdin = format!(
        "action=status\nport=victim\nserial_device={}\nserial_params=57600\n\
         key_file=/nonexistent/key\nnodename=n1\n",
        rig.tty
    );
    let r = agent_in(&rig.lab.host, VIRT, &[], Some(&stdin), LIMIT);
    expect(&r, 0, "stdin");
    assert_eq!(r.stdout, "Status: ON\n");

    // The classic agent on the same line afterwards: nothing was left over.
    if prerequisites(&[Need::CAgents]) {
        let r = agent_in(
            &rig.lab.host,
            C_VIRT,
            &["-D", &rig.tty, "-t", "5", "-o", "status", "-n", "offvm"],
            None,
            LIMIT,
        );
        expect(&r, 2, "classic agent after ours");
        let r = x(&["-o", "list"]);
        assert_eq!(r.stdout, list_output(), "ours after the classic one: {r:#?}");
    }
    let log = rig.daemon.log_text();
    assert!(log.contains("target victim"), "{log}");
}

/// Take the same whole-device `fcntl` write lock the agents take.
fn hold_lock(path: &str) -> File {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .unwrap();
    let fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(&f, FcntlArg::F_SETLK(&fl)).unwrap();
    f
}

#[test]
fn agents_on_one_line_take_turns() {
    if !c_serial_needs() {
        return;
    }
    let rig = SerialRig::start("vmfsb", 51);

    // While someone holds the line, an agent waits within its -t and then
    // says who holds it.
    let held = hold_lock(&rig.tty);
    let r = rig.agent(&["-t", "1", "-o", "status", "-n", "victim"]);
    expect(&r, 1, "locked line");
    let me = std::process::id();
    assert!(r.stderr.contains(&format!("is locked by process {me}")), "{r:#?}");
    assert!(
        r.elapsed >= Duration::from_millis(900) && r.elapsed < Duration::from_secs(3),
        "{:?}",
        r.elapsed
    );

    // Two agents started while the line is held both wait, then both
    // succeed once it is free.
    let mut waiting = Vec::new();
    for (action, target) in [("status", "victim"), ("list", "")] {
        let mut args = vec!["-D", rig.tty.as_str(), "-t", "10", "-dd", "-o", action];
        if !target.is_empty() {
            args.extend(["-n", target]);
        }
        waiting.push(spawn_agent(&rig.lab.host, VIRT, &args));
    }
    for (_, lines) in &waiting {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).expect("agent never said it waits");
            if line.contains("waiting for the lock") {
                break;
            }
        }
    }
    thread::sleep(Duration::from_millis(300));
    for (child, _) in &mut waiting {
        assert!(child.try_wait().unwrap().is_none(), "an agent did not wait");
    }
    let released = Instant::now();
    drop(held);
    let mut outputs = Vec::new();
    for (child, _) in waiting {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        outputs.push(String::from_utf8(o.stdout).unwrap());
    }
    assert!(released.elapsed() < Duration::from_secs(5));
    assert_eq!(outputs[0], "Status: ON\n");
    assert_eq!(outputs[1], list_output());

    // A burst of agents at once, no one holding the line beforehand: the
    // lock serialises them and every answer reaches its own agent.
    let handles: Vec<JoinHandle<(usize, Run)>> = (0..4)
        .map(|i| {
            let (ns, tty) = (rig.lab.host.clone(), rig.tty.clone());
            thread::spawn(move || {
                let args: Vec<&str> = if i % 2 == 0 {
                    vec!["-D", &tty, "-t", "15", "-o", "list"]
                } else {
                    vec!["-D", &tty, "-t", "15", "-o", "status", "-n", "offvm"]
                };
                (i, agent_in(&ns, VIRT, &args, None, LIMIT))
            })
        })
        .collect();
    for h in handles {
        let (i, r) = h.join().unwrap();
        if i % 2 == 0 {
            expect(&r, 0, "list in a burst");
            assert_eq!(r.stdout, list_output());
        } else {
            expect(&r, 2, "status in a burst");
            assert_eq!(r.stdout, "Status: OFF\n");
        }
    }
}

/// A pseudo terminal whose master end a scripted daemon drives: `slave` is
/// the device path the agent opens.
struct PtyDaemon {
    slave: String,
    _slave_fd: std::os::fd::OwnedFd,
    /// The requests seen, and the master end (alive until joined: closing
    /// it would make the slave disappear).
    handle: Option<JoinHandle<(Vec<SerialRequest>, File)>>,
}

impl PtyDaemon {
    /// Write `stale` on the line before any agent runs, then answer each
    /// request with `noise` followed by the answer `answers[i]`: its first
    /// part at once, its second part 300 ms later.
    fn start(stale: &[u8], noise: &'static [u8], answers: Vec<(Vec<u8>, Vec<u8>)>) -> PtyDaemon {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let pty = nix::pty::openpty(None, None).unwrap();
        // Raw, so that the stale bytes are neither echoed nor held for a
        // line end (the agent sets raw mode too, but only once it runs).
        let mut t = tcgetattr(&pty.slave).unwrap();
        cfmakeraw(&mut t);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &t).unwrap();
        let slave = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .unwrap()
            .display()
            .to_string();
        let mut master = File::from(pty.master);
        master.write_all(stale).unwrap();
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            let mut framer = RequestFramer::default();
            let mut buf = [0u8; 256];
            let deadline = Instant::now() + Duration::from_secs(20);
            for (answer, later) in answers {
                'request: loop {
                    assert!(Instant::now() < deadline, "no request came");
                    let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
                    if poll(&mut fds, PollTimeout::from(100u16)).unwrap() == 0 {
                        continue;
                    }
                    let n = match master.read(&mut buf) {
                        Ok(n) => n,
                        // EIO while no agent has the slave open: retry.
                        Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                            thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                        Err(e) => panic!("pty master: {e}"),
                    };
                    for ev in framer.feed(&buf[..n]) {
                        if let FramerEvent::Request { request, .. } = ev {
                            seen.push(request);
                            master.write_all(noise).unwrap();
                            for chunk in answer.chunks(11) {
                                master.write_all(chunk).unwrap();
                                thread::sleep(Duration::from_millis(2));
                            }
                            if !later.is_empty() {
                                thread::sleep(Duration::from_millis(300));
                                master.write_all(&later).unwrap();
                            }
                            break 'request;
                        }
                    }
                }
            }
            (seen, master)
        });
        PtyDaemon {
            slave,
            _slave_fd: pty.slave,
            handle: Some(handle),
        }
    }

    fn requests(mut self) -> Vec<SerialRequest> {
        self.handle.take().unwrap().join().unwrap().0
    }
}

fn run_virt(args: &[&str]) -> Run {
    let start = Instant::now();
    let o = Command::new(VIRT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// Bytes that look almost like the magic: `ab`, `abb`, `aab`, an `abb`
/// broken by a NUL. The answer that follows starts with `aabba`, an
/// overlapping prefix the classic agent's matcher misses.
const NOISE: &[u8] = b"\xff\x00ab\rabb\x00\naab junk a";

/// A list answer: `abba 0xFD`, the entries, the terminator; and the
/// closing `abba <success>` record, returned apart.
fn list_answer(hosts: &[HostState]) -> (Vec<u8>, Vec<u8>) {
    let mut v = b"a".to_vec();
    v.extend_from_slice(&encode_response(Response::HostList));
    for h in hosts {
        v.extend_from_slice(&h.encode());
    }
    v.extend_from_slice(&TERMINATOR);
    (v, encode_response(Response::Success).to_vec())
}

fn joined((a, b): (Vec<u8>, Vec<u8>)) -> Vec<u8> {
    [a, b].concat()
}

#[test]
fn serial_noise_and_stale_bytes_do_not_fool_the_agent() {
    // Needs no root: a pty of this test plays both the line and the daemon.
    let mut off = b"a".to_vec();
    off.extend_from_slice(&encode_response(Response::Off));
    let hosts = vec![
        HostState {
            name: "abba".into(),
            uuid: TestDomain::uuid_of(1),
            state: 1,
        },
        HostState {
            name: "victim".into(),
            uuid: TestDomain::uuid_of(2),
            state: 5,
        },
    ];
    // A stale "success" record left on the line before the agent opens it:
    // the agent flushes it instead of taking it for its answer. The list's
    // closing record comes late (300 ms after the terminator): the agent
    // waits for it, so that the next agent does not read it as its answer.
    let d = PtyDaemon::start(
        b"abba\x00abba\x00",
        NOISE,
        vec![(off.clone(), Vec::new()), list_answer(&hosts), (off, Vec::new())],
    );
    let r = run_virt(&["-D", &d.slave, "-t", "5", "-o", "status", "-n", "victim"]);
    expect(&r, 2, "status through noise");
    assert_eq!(r.stdout, "Status: OFF\n");
    let r = run_virt(&["-D", &d.slave, "-t", "5", "-o", "list"]);
    expect(&r, 0, "list through noise");
    assert_eq!(
        r.stdout,
        format!(
            "{:<32} {} on\n{:<32} {} off\n",
            "abba",
            TestDomain::uuid_of(1),
            "victim",
            TestDomain::uuid_of(2)
        )
    );
    let r = run_virt(&["-D", &d.slave, "-t", "5", "-o", "status", "-n", "victim"]);
    expect(&r, 2, "status right after a list");
    let seen = d.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].request, Op::Status.code());
    assert_eq!(seen[0].domain.as_ref().unwrap().as_str(), "victim");
    assert_eq!(seen[0].flags, 0);
    assert_eq!(seen[1].request, Op::HostList.code());
    assert!(seen[1].domain.is_none());
    assert_ne!(seen[0].seqno, seen[1].seqno);

    // Silence: bounded by -t, with advice.
    let quiet = PtyDaemon::start(b"", b"", Vec::new());
    let r = run_virt(&["-D", &quiet.slave, "-t", "1", "-o", "status", "-n", "victim"]);
    expect(&r, 1, "no answer");
    assert!(
        r.stderr.contains("timed out") && r.stderr.contains("serial listener"),
        "{r:#?}"
    );
    assert!(r.elapsed < Duration::from_millis(2500), "{:?}", r.elapsed);
    drop(quiet);
}

/// A scripted VMChannel daemon on 127.0.0.1: one connection per answer.
fn tcp_stub(answers: Vec<Vec<u8>>) -> (u16, JoinHandle<Vec<SerialRequest>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = thread::spawn(move || {
        let mut seen = Vec::new();
        for answer in answers {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut framer = RequestFramer::default();
            let mut buf = [0u8; 128];
            'conn: loop {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "agent closed without a request");
                for ev in framer.feed(&buf[..n]) {
                    if let FramerEvent::Request { request, .. } = ev {
                        seen.push(request);
                        s.write_all(NOISE).unwrap();
                        s.write_all(&answer).unwrap();
                        break 'conn;
                    }
                }
            }
            // Keep the connection until the agent closes it.
            let _ = s.read(&mut buf);
        }
        seen
    });
    (port, h)
}

#[test]
fn vmchannel_against_a_scripted_daemon() {
    // Loopback TCP only; no root needed.
    let mut perm = b"a".to_vec();
    perm.extend_from_slice(&encode_response(Response::PermissionDenied));
    let hosts = vec![HostState {
        name: "victim".into(),
        uuid: TestDomain::uuid_of(2),
        state: 1,
    }];
    let (port, h) = tcp_stub(vec![perm, joined(list_answer(&hosts))]);
    let p = port.to_string();
    let r = run_virt(&["-A", "127.0.0.1", "-p", &p, "-o", "off", "-n", "victim"]);
    expect(&r, 3, "permission denied");
    assert!(r.stderr.contains("Permission denied"), "{r:#?}");
    // stdin, as Pacemaker passes it; no key file needed.
    let mut child = Command::new(VIRT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("action=list\nchannel_address=localhost\nipport={p}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!("{:<32} {} on\n", "victim", TestDomain::uuid_of(2))
    );
    let seen = h.join().unwrap();
    assert_eq!(seen[0].request, Op::Off.code());
    assert_eq!(seen[1].request, Op::HostList.code());

    // Nobody at the address: a clear error at once.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let r = run_virt(&["-A", "127.0.0.1", "-p", &closed, "-o", "status", "-n", "v"]);
    expect(&r, 1, "refused");
    assert!(
        r.stderr.contains("cannot connect to the VMChannel address"),
        "{r:#?}"
    );
    assert!(r.elapsed < Duration::from_secs(2));
}

#[test]
fn vmchannel_by_default_against_the_c_daemon() {
    if !c_serial_needs() {
        return;
    }
    let lab = Lab::with_subnet("vmfsc", 1, 52);
    let g = lab.guest(1).to_owned();
    let out = Command::new("ip")
        .args(["-n", &g, "addr", "add", "10.0.2.179/32", "dev", "lo"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = tempfile::tempdir().unwrap();
    let sockets = dir.path().join("channels");
    std::fs::create_dir(&sockets).unwrap();
    let channel = sockets.join("g1.sock");
    let guest_sock: PathBuf = dir.path().join("guest.sock");
    let node_file = dir.path().join("node.xml");
    std::fs::write(&node_file, node(&channel, true)).unwrap();
    let fwd = GuestFwd::start(&channel, &guest_sock);
    let socat = Spawned::start(
        &g,
        "socat",
        &[
            "TCP-LISTEN:1229,bind=10.0.2.179,reuseaddr,fork",
            &format!("UNIX-CONNECT:{}", guest_sock.display()),
        ],
    );
    let uri = format!("test://{}", node_file.display());
    let daemon = CDaemon::start(
        &lab.host,
        Listener::Serial {
            uri: &uri,
            path: sockets.to_str().unwrap(),
            vmchannel: true,
        },
        "",
    );
    wait_for("socat listening in the guest", Duration::from_secs(5), || {
        let o = Command::new("ip")
            .args(["netns", "exec", &g, "ss", "-Hltn", "sport = :1229"])
            .output()
            .unwrap();
        !o.stdout.is_empty()
    });
    // No transport option at all: VMChannel to 10.0.2.179:1229.
    let x = |args: &[&str]| {
        let mut all = vec!["-t", "10"];
        all.extend_from_slice(args);
        agent_in(&g, VIRT, &all, None, LIMIT)
    };
    let r = x(&["-o", "list"]);
    expect(&r, 0, "list");
    assert_eq!(r.stdout, list_output());
    let r = x(&["-o", "status", "-n", "victim"]);
    expect(&r, 0, "status");
    assert_eq!(r.stdout, "Status: ON\n");
    expect(&x(&["-o", "off", "-n", "victim"]), 0, "off");
    expect(&x(&["-o", "status", "-n", "victim"]), 2, "status after off");
    expect(&x(&["-o", "on", "-n", "victim"]), 0, "on");
    expect(&x(&["-o", "reboot", "-n", "victim"]), 0, "reboot");
    expect(&x(&["-o", "status", "-n", "victim"]), 0, "status after reboot");
    expect(&x(&["-o", "status", "-n", "no-such-vm"]), 2, "status unknown");
    expect(&x(&["-o", "off", "-n", "no-such-vm"]), 1, "off unknown");
    let stdin = "action=status\nplug=offvm\n";
    let r = agent_in(&g, VIRT, &[], Some(stdin), LIMIT);
    expect(&r, 2, "stdin, all defaults");
    assert!(
        daemon.log_text().contains("target offvm"),
        "{}",
        daemon.log_text()
    );
    drop(daemon);
    drop(socat);
    drop(fwd);
}
