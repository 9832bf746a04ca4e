//! Our fence_virtd's serial and VMChannel listener, driven by the classic
//! C `fence_virt` and by ours, on libvirt's test driver.
//!
//! Each guest's fence device is a `<serial type='unix'><source mode='bind'>`
//! (or a VMChannel `<channel type='unix'>`) in the test node. Nothing runs
//! QEMU, so `socat` plays it: it listens on the domain's socket (the daemon
//! connects there) and bridges it to a pty that plays the guest's serial
//! port, which the agent opens with `-D`. For VMChannel, socat and
//! testlab's `GuestFwd` play QEMU's `guestfwd`: TCP from the agent ↔ the
//! domain's unix socket.
//!
//! No network traffic: unix sockets, ptys and loopback TCP inside the
//! lab's namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
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

/// `socat` in `ns` bridging a domain's socket to a pty (the guest's serial
/// port, `tty`), as QEMU's chardev would; killed by pid on drop.
struct Socat {
    _process: Spawned,
    tty: PathBuf,
}

impl Socat {
    fn start(ns: &str, socket: &Path, tty: &Path) -> Socat {
        let process = Spawned::start(
            ns,
            "socat",
            &[
                &format!("UNIX-LISTEN:{}", socket.display()),
                &format!("PTY,link={},raw,echo=0", tty.display()),
            ],
        );
        wait_for(&format!("socat's {}", socket.display()), || socket.exists());
        Socat {
            _process: process,
            tty: tty.to_owned(),
        }
    }

    /// The pty appears once the daemon has connected to the socket.
    fn wait_tty(&self) {
        wait_for("the daemon to connect to the guest's socket", || {
            self.tty.exists()
        });
    }
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "waited {LIMIT:?} for {what}");
        thread::sleep(Duration::from_millis(20));
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
    let g1 = Socat::start(&lab.host, &fence.join("g1.sock"), &work.path().join("tty1"));
    let g2 = Socat::start(&lab.host, &fence.join("g2.sock"), &work.path().join("tty2"));
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
        let g1 = Socat::start(&lab.host, &fence.join("g1.sock"), &work.path().join("tty1"));
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

#[test]
fn vmchannel_guests_fence_over_guestfwd() {
    if !need() {
        return;
    }
    // QEMU's guestfwd in miniature, all inside the lab's host namespace:
    // socat takes the guest's TCP connections on 127.0.0.1:1229 and hands
    // them to the relay, which forwards them to the domain's channel
    // socket, where the daemon is connected.
    let lab = Lab::with_subnet("vmfsf", 0, 72);
    let work = tempfile::tempdir().unwrap();
    let fence = work.path().join("fence");
    std::fs::create_dir(&fence).unwrap();
    let domains = vec![
        TestDomain::new("g1", 1, true).with_channel(&fence.join("g1.sock")),
        TestDomain::new("victim", 2, true),
    ];
    let guest_sock = work.path().join("guest.sock");
    let _fwd = GuestFwd::start(&fence.join("g1.sock"), &guest_sock);
    let _socat = Spawned::start(
        &lab.host,
        "socat",
        &[
            "TCP-LISTEN:1229,bind=127.0.0.1,reuseaddr,fork",
            &format!("UNIX-CONNECT:{}", guest_sock.display()),
        ],
    );
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
    let ours = our_virt();
    for bin in [C_VIRT, ours.to_str().unwrap()] {
        let run = |args: &[&str], t: &str| {
            let mut all = vec!["-A", "127.0.0.1", "-t", t];
            all.extend_from_slice(args);
            agent_in(&lab.host, bin, &all, None, LIMIT)
        };
        // The daemon connects within one rescan; the first request may
        // arrive before that, so wait for a success first.
        wait_for("a VMChannel answer", || {
            run(&["-o", "status", "-n", "victim"], "2").code == 0
        });
        for (args, code) in [
            (["-o", "off", "-n", "victim"], 0),
            (["-o", "status", "-n", "victim"], 2),
            (["-o", "on", "-n", "victim"], 0),
            (["-o", "off", "-n", "nosuch"], 3),
        ] {
            let r = run(&args, "5");
            assert_eq!(r.code, code, "{bin} {args:?}: {r:#?}");
        }
    }
}
