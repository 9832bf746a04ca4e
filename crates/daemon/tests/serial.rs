//! Our fence_virtd's serial and VMChannel listener, driven by the classic
//! C `fence_virt` and by ours, on libvirt's test driver.
//!
//! Each guest's fence device is a `<serial type='unix'><source mode='bind'>`
//! (or a VMChannel `<channel type='unix'>`) in the test node. Nothing runs
//! QEMU, so `socat` plays it: it listens on the domain's socket (the daemon
//! connects there) and bridges it to a pty that plays the guest's serial
//! port, which the agent opens with `-D`. For VMChannel a small bridge in
//! this file plays QEMU's `guestfwd`: TCP from the agent ↔ the domain's
//! unix socket.
//!
//! No network traffic: unix sockets, ptys and loopback TCP inside the
//! lab's namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use vmfence_testlab::*;

const FVD: &str = env!("CARGO_BIN_EXE_fence_virtd");
const LIMIT: Duration = Duration::from_secs(20);

fn our_virt() -> PathBuf {
    Path::new(FVD).with_file_name("fence_virt")
}

fn need() -> bool {
    prerequisites(&[Need::Lab, Need::CAgents, Need::Socat, Need::Built(our_virt())])
}

/// `socat` bridging a domain's socket to a pty; killed by pid on drop.
struct Socat {
    child: Child,
    tty: PathBuf,
}

impl Socat {
    fn start(socket: &Path, tty: &Path) -> Socat {
        let child = Command::new("socat")
            .arg(format!("UNIX-LISTEN:{}", socket.display()))
            .arg(format!("PTY,link={},raw,echo=0", tty.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "socat did not create {}",
                socket.display()
            );
            thread::sleep(Duration::from_millis(20));
        }
        Socat {
            child,
            tty: tty.to_owned(),
        }
    }

    /// The pty appears once the daemon has connected to the socket.
    fn wait_tty(&self) {
        let deadline = Instant::now() + LIMIT;
        while !self.tty.exists() {
            assert!(
                Instant::now() < deadline,
                "the daemon never connected to the guest's socket ({} missing)",
                self.tty.display()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Socat {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An agent with `-D tty` in the lab's namespace, exit code checked.
fn serial_agent(ns: &str, bin: &str, tty: &Path, args: &[&str], code: i32) -> Run {
    let mut all = vec!["-D", tty.to_str().unwrap(), "-t", "5"];
    all.extend_from_slice(args);
    let r = agent_in(ns, bin, &all, None, LIMIT);
    assert_eq!(r.code, code, "{bin} {all:?}: {r:#?}");
    r
}

fn listed(r: &Run) -> Vec<String> {
    r.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// g1 and g2 have fence serial ports; g1 and victim form a cluster
/// (`ghost` is in the group but does not exist); g2 is in no group.
#[test]
fn serial_guests_fence_within_their_groups_with_the_c_agent_and_ours() {
    if !need() {
        return;
    }
    let lab = Lab::with_subnet("vmfsd", 0, 70);
    let work = tempfile::tempdir().unwrap();
    let fence = work.path().join("fence");
    std::fs::create_dir(&fence).unwrap();
    let domains = vec![
        TestDomain::new("g1", 1, true).with_serial(&fence.join("g1.sock")),
        TestDomain::new("g2", 2, true).with_serial(&fence.join("g2.sock")),
        TestDomain::new("victim", 3, true),
        TestDomain::new("offvm", 4, false),
    ];
    let g1 = Socat::start(&fence.join("g1.sock"), &work.path().join("tty1"));
    let g2 = Socat::start(&fence.join("g2.sock"), &work.path().join("tty2"));
    let listener = OurListener::Serial {
        path: fence.clone(),
        vmchannel: false,
        unrestricted: false,
    };
    let setup = DaemonSetup {
        listeners: vec![listener],
        groups: vec![GroupSpec {
            name: "c1".into(),
            ips: vec![],
            uuids: vec![TestDomain::uuid_of(1), "victim".into(), "ghost".into()],
        }],
        ..DaemonSetup::with_domains(domains)
    };
    let fvd = OurDaemon::start(Path::new(FVD), &lab.host, &setup);
    g1.wait_tty();
    g2.wait_tty();
    let ns = lab.host.as_str();
    let ours = our_virt();
    let ours = ours.to_str().unwrap();

    for bin in [C_VIRT, ours] {
        serial_agent(ns, bin, &g1.tty, &["-o", "status", "-n", "victim"], 0);
        serial_agent(ns, bin, &g1.tty, &["-o", "off", "-n", "victim"], 0);
        serial_agent(ns, bin, &g1.tty, &["-o", "status", "-n", "victim"], 2);
        serial_agent(ns, bin, &g1.tty, &["-o", "on", "-n", "victim"], 0);
        serial_agent(ns, bin, &g1.tty, &["-o", "reboot", "-n", "victim"], 0);
        serial_agent(ns, bin, &g1.tty, &["-o", "status", "-n", "victim"], 0);
        // By UUID: g1 is in the group by UUID.
        serial_agent(
            ns,
            bin,
            &g1.tty,
            &["-o", "status", "-n", &TestDomain::uuid_of(1)],
            0,
        );
        // In the group but unknown to libvirt: a failure, not "off".
        serial_agent(ns, bin, &g1.tty, &["-o", "status", "-n", "ghost"], 1);
        // Outside the group: permission denied (exit 3), nothing done.
        serial_agent(ns, bin, &g1.tty, &["-o", "off", "-n", "g2"], 3);
        serial_agent(ns, bin, &g2.tty, &["-o", "off", "-n", "victim"], 3);
        // The list shows what g1's group may see.
        let r = serial_agent(ns, bin, &g1.tty, &["-o", "list"], 0);
        assert_eq!(listed(&r), ["g1", "victim"], "{bin}: {r:#?}");
    }
    // g2 was never fenced; victim is on.
    serial_agent(ns, ours, &g1.tty, &["-o", "status", "-n", "victim"], 0);

    // Noise on the line before a request: the listener resynchronises.
    {
        let mut tty = std::fs::OpenOptions::new().write(true).open(&g1.tty).unwrap();
        tty.write_all(b"\x00\xffnoise abb aab ab\r\n").unwrap();
    }
    serial_agent(ns, C_VIRT, &g1.tty, &["-o", "status", "-n", "victim"], 0);

    // One log line per request, with the guest as requester.
    let requests = fvd.requests();
    assert!(
        requests
            .iter()
            .any(|l| l.get("listener") == "serial" && l.get("src").starts_with("g1 (")),
        "{}",
        fvd.log_text()
    );
    let refusals = fvd.refusals();
    assert!(
        refusals.iter().any(|l| l.get("src").starts_with("g2 (")) || fvd.log_text().contains("denied"),
        "{}",
        fvd.log_text()
    );
    drop(fvd);
}

#[test]
fn serial_without_groups_refuses_unless_unrestricted() {
    if !need() {
        return;
    }
    let lab = Lab::with_subnet("vmfse", 0, 71);
    for unrestricted in [false, true] {
        let work = tempfile::tempdir().unwrap();
        let fence = work.path().join("fence");
        std::fs::create_dir(&fence).unwrap();
        let domains = vec![
            TestDomain::new("g1", 1, true).with_serial(&fence.join("g1.sock")),
            TestDomain::new("victim", 2, true),
        ];
        let g1 = Socat::start(&fence.join("g1.sock"), &work.path().join("tty1"));
        let setup = DaemonSetup {
            listeners: vec![OurListener::Serial {
                path: fence.clone(),
                vmchannel: false,
                unrestricted,
            }],
            ..DaemonSetup::with_domains(domains)
        };
        let fvd = OurDaemon::start(Path::new(FVD), &lab.host, &setup);
        g1.wait_tty();
        let (off, status) = if unrestricted { (0, 2) } else { (3, 3) };
        serial_agent(&lab.host, C_VIRT, &g1.tty, &["-o", "off", "-n", "victim"], off);
        serial_agent(
            &lab.host,
            C_VIRT,
            &g1.tty,
            &["-o", "status", "-n", "victim"],
            status,
        );
        let log = fvd.log_text();
        if unrestricted {
            assert!(
                log.contains("unrestricted"),
                "the start-up warning names the setting:\n{log}"
            );
        } else {
            assert!(log.contains("no-groups"), "the refusal names its reason:\n{log}");
        }
    }
}

/// QEMU's `guestfwd` in miniature: every TCP connection from the guest is
/// piped to the (one, persistent) connection the daemon made to the
/// domain's unix socket.
struct GuestFwd {
    port: u16,
}

impl GuestFwd {
    fn start(socket: &Path) -> GuestFwd {
        let unix = UnixListener::bind(socket).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        thread::spawn(move || {
            let Ok((daemon, _)) = unix.accept() else { return };
            for guest in tcp.incoming() {
                let Ok(mut guest) = guest else { return };
                let mut to_daemon = daemon.try_clone().unwrap();
                let mut from_daemon = daemon.try_clone().unwrap();
                let mut guest_w = guest.try_clone().unwrap();
                let up = thread::spawn(move || {
                    let mut buf = [0u8; 512];
                    while let Ok(n) = guest.read(&mut buf) {
                        if n == 0 || to_daemon.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
                // Down: until the guest hangs up (write fails) or the
                // upward half ends.
                from_daemon
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut buf = [0u8; 512];
                while !up.is_finished() {
                    match from_daemon.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if guest_w.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        Err(_) => {}
                    }
                }
                let _ = guest_w.shutdown(std::net::Shutdown::Both);
                let _ = up.join();
            }
        });
        GuestFwd { port }
    }
}

#[test]
fn vmchannel_guests_fence_over_guestfwd() {
    if !need() {
        return;
    }
    // The bridge listens on loopback in this (the test's) namespace and
    // the agents run here too; the daemon reaches the unix socket from
    // the lab's namespace (unix sockets are not per network namespace).
    let lab = Lab::with_subnet("vmfsf", 0, 72);
    let work = tempfile::tempdir().unwrap();
    let fence = work.path().join("fence");
    std::fs::create_dir(&fence).unwrap();
    let domains = vec![
        TestDomain::new("g1", 1, true).with_channel(&fence.join("g1.sock")),
        TestDomain::new("victim", 2, true),
    ];
    let fwd = GuestFwd::start(&fence.join("g1.sock"));
    let setup = DaemonSetup {
        listeners: vec![OurListener::Serial {
            path: fence.clone(),
            vmchannel: true,
            unrestricted: false,
        }],
        groups: vec![GroupSpec {
            name: "c".into(),
            ips: vec![],
            uuids: vec!["g1".into(), "victim".into()],
        }],
        ..DaemonSetup::with_domains(domains)
    };
    let _fvd = OurDaemon::start(Path::new(FVD), &lab.host, &setup);
    let port = fwd.port.to_string();
    let ours = our_virt();
    for bin in [C_VIRT, ours.to_str().unwrap()] {
        let run = |args: &[&str], code: i32| {
            let mut all = vec!["-A", "127.0.0.1", "-p", &port, "-t", "5"];
            all.extend_from_slice(args);
            let out = Command::new(bin)
                .args(&all)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(code),
                "{bin} {all:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // The daemon connects within one rescan; the first request may
        // arrive before that, so wait for a success first.
        let deadline = Instant::now() + LIMIT;
        loop {
            let ok = Command::new(bin)
                .args([
                    "-A",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-t",
                    "2",
                    "-o",
                    "status",
                    "-n",
                    "victim",
                ])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if ok.status.code() == Some(0) {
                break;
            }
            assert!(Instant::now() < deadline, "VMChannel never answered");
            thread::sleep(Duration::from_millis(200));
        }
        run(&["-o", "off", "-n", "victim"], 0);
        run(&["-o", "status", "-n", "victim"], 2);
        run(&["-o", "on", "-n", "victim"], 0);
        run(&["-o", "off", "-n", "nosuch"], 3);
    }
    drop(lab);
    let _ = TcpStream::connect(("127.0.0.1", fwd.port));
}
