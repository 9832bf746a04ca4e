//! The real `fence_xenapi` binary against the XenAPI simulator (`sim`), on
//! loopback only (127.0.0.2-127.0.0.9, an ephemeral port): every action,
//! TLS accepted and refused, the `HOST_IS_SLAVE` redirect, pool failover,
//! time-outs, a wrong password, unknown and duplicate VMs, the classic
//! options on stdin, and after every run, success or failure, no session
//! left open on the pool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sim::{Options, Sim, BLACKHOLE, DOWN, MASTER, PASSWORD, SLAVE, USER};

const BIN: &str = env!("CARGO_BIN_EXE_fence_xenapi");
const RNG: &str = "/usr/share/cluster/relaxng/metadata.rng";
const CLASSIC: &str = "/usr/sbin/fence_xenapi";

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Run `bin` with `args` and `stdin`; a run longer than 30 s is a failure.
fn run(bin: &str, args: &[String], stdin: Option<&str>) -> Out {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut w = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            if let Err(e) = w.write_all(s.as_bytes()) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
            }
        }
    }
    let deadline = started + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{bin} {args:?} still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
        took: started.elapsed(),
    }
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// Our agent with the pool's credentials, `session_url`, trust (the CA
/// file when the pool speaks TLS) and `args`.
fn ours(sim: &Sim, url: &str, args: &[&str]) -> Out {
    let mut a = strings(&["-s", url, "-l", USER, "-p", PASSWORD]);
    if url.starts_with("https") {
        a.push(format!("--cacert={}", sim.ca_file.display()));
    }
    a.extend(strings(args));
    run(BIN, &a, None)
}

/// The invariant of every run: the pool has no session left.
fn no_session_left(sim: &Sim, what: &str) {
    let open = sim.open_sessions();
    assert!(open.is_empty(), "{what}: sessions left open: {open:?}");
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Whether everything `needs` names (path, what provides it) is there;
/// when not: a failure under CI, else `SKIPPED: …` and false.
fn prerequisites(needs: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = needs
        .iter()
        .filter(|(p, _)| !Path::new(p).exists())
        .map(|(p, what)| format!("{p} ({what})"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("test needs {}", missing.join(", "));
    assert!(!in_ci(), "{msg} (CI is set: not skipping)");
    eprintln!("SKIPPED: {msg}");
    false
}

fn tls() -> Sim {
    Sim::start(Options {
        tls: true,
        ..Options::default()
    })
}

#[test]
fn status_by_name_and_uuid_exits_0_on_2_off() {
    let sim = tls();
    let m = sim.master();
    for (plug, code, line) in [
        ("vm-node1", 0, "Status: ON"),
        ("vm-node2", 2, "Status: OFF"),
        (sim::NODE2_UUID, 2, "Status: OFF"),
        (&sim::NODE1_UUID.to_ascii_uppercase(), 0, "Status: ON"),
        ("vm-paused", 0, "Status: ON"),
        ("vm-suspended", 0, "Status: ON"),
    ] {
        let o = ours(&sim, &m, &["-o", "status", "-n", plug]);
        assert_eq!(o.code, code, "{plug}: {o:?}");
        assert_eq!(o.stdout, format!("{line}\n"), "{plug}");
        assert!(o.stderr.is_empty(), "{plug}: {}", o.stderr);
        no_session_left(&sim, plug);
    }
    assert_eq!(sim.logins(), 6);
    // Log-in with version and originator; no power call was made.
    assert!(sim
        .methods()
        .iter()
        .all(|m| !m.contains("start") && !m.contains("hard_")));
    // uuid wins over plug.
    let o = ours(
        &sim,
        &m,
        &["-o", "status", "-n", "vm-node1", "--uuid", sim::NODE2_UUID],
    );
    assert_eq!(o.code, 2, "{o:?}");
    no_session_left(&sim, "uuid");
}

#[test]
fn off_on_reboot_are_done_and_confirmed() {
    let sim = tls();
    let m = sim.master();
    let node1 = sim::NODE1_UUID;
    let off = ours(&sim, &m, &["-o", "off", "-n", "vm-node1"]);
    assert_eq!(
        (off.code, off.stdout.as_str()),
        (0, "Success: Powered OFF\n"),
        "{off:?}"
    );
    assert_eq!(sim.vm(node1).power, "Halted");
    assert!(sim.methods().contains(&"VM.hard_shutdown".to_owned()));
    no_session_left(&sim, "off");

    sim.clear_calls();
    let again = ours(&sim, &m, &["-o", "off", "-n", "vm-node1"]);
    assert_eq!((again.code, again.stdout.as_str()), (0, "Success: Already OFF\n"));
    assert!(!sim.methods().contains(&"VM.hard_shutdown".to_owned()));

    sim.clear_calls();
    let on = ours(&sim, &m, &["-o", "on", "-n", node1]);
    assert_eq!(
        (on.code, on.stdout.as_str()),
        (0, "Success: Powered ON\n"),
        "{on:?}"
    );
    assert_eq!(sim.vm(node1).power, "Running");
    let start = sim.calls().into_iter().find(|c| c.method == "VM.start").unwrap();
    assert_eq!(start.vm.as_deref(), Some(sim.vm(node1).reference.as_str()));
    let again = ours(&sim, &m, &["-o", "on", "-n", node1]);
    assert_eq!((again.code, again.stdout.as_str()), (0, "Success: Already ON\n"));
    no_session_left(&sim, "on");

    // reboot of a running VM: one VM.hard_reboot (the classic agent never
    // called it), the domain is new.
    sim.clear_calls();
    let domid = sim.vm(node1).domid;
    let r = ours(&sim, &m, &["-n", "vm-node1"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "Success: Rebooted\n"), "{r:?}");
    let methods = sim.methods();
    assert!(methods.contains(&"VM.hard_reboot".to_owned()), "{methods:?}");
    assert!(!methods.contains(&"VM.hard_shutdown".to_owned()), "{methods:?}");
    assert_ne!(sim.vm(node1).domid, domid);
    assert_eq!(sim.vm(node1).power, "Running");
    no_session_left(&sim, "reboot");

    // reboot of a halted VM starts it.
    sim.clear_calls();
    let r = ours(&sim, &m, &["-o", "reboot", "-n", "vm-node2"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "Success: Rebooted\n"), "{r:?}");
    assert_eq!(sim.vm(sim::NODE2_UUID).power, "Running");
    assert!(sim.methods().contains(&"VM.start".to_owned()));

    // method onoff: off, then on, like the classic agent.
    sim.clear_calls();
    let r = ours(&sim, &m, &["-o", "reboot", "-n", "vm-node3", "--method=onoff"]);
    assert_eq!(r.code, 0, "{r:?}");
    let power: Vec<String> = sim
        .methods()
        .into_iter()
        .filter(|m| m.starts_with("VM.") && !m.contains("get"))
        .collect();
    assert_eq!(power, ["VM.hard_shutdown", "VM.start"]);

    // A suspended VM is shut down and started.
    sim.clear_calls();
    let r = ours(&sim, &m, &["-o", "reboot", "-n", "vm-suspended"]);
    assert_eq!(r.code, 0, "{r:?}");
    let power: Vec<String> = sim
        .methods()
        .into_iter()
        .filter(|m| m.starts_with("VM.") && !m.contains("get"))
        .collect();
    assert_eq!(power, ["VM.hard_shutdown", "VM.start"]);
    no_session_left(&sim, "reboot onoff");
}

#[test]
fn reboot_whose_restart_fails_is_still_a_fence() {
    let sim = Sim::start(Options::default());
    sim.set_failure("VM.hard_reboot", &["INTERNAL_ERROR", "restart failed"]);
    sim.set_failure("VM.start", &["HOST_NOT_ENOUGH_FREE_MEMORY", "1073741824", "0"]);
    let r = ours(
        &sim,
        &sim.master(),
        &["-o", "reboot", "-n", "vm-node1", "--power-timeout=1"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "Success: Rebooted\n"), "{r:?}");
    assert!(
        r.stderr.contains("was switched off but did not come back on"),
        "{}",
        r.stderr
    );
    assert_eq!(sim.vm(sim::NODE1_UUID).power, "Halted");
    no_session_left(&sim, "reboot, restart failed");
    // A refused reboot of a VM that stays on is a failure.
    let sim = Sim::start(Options::default());
    sim.set_failure(
        "VM.hard_shutdown",
        &["OTHER_OPERATION_IN_PROGRESS", "VM", "OpaqueRef:x", "migrate"],
    );
    let r = ours(&sim, &sim.master(), &["-o", "off", "-n", "vm-node1"]);
    assert_eq!((r.code, r.stdout.as_str()), (1, ""), "{r:?}");
    assert!(r.stderr.contains("OTHER_OPERATION_IN_PROGRESS"), "{}", r.stderr);
    no_session_left(&sim, "refused off");
}

#[test]
fn list_and_list_status_show_fenceable_vms_only() {
    let sim = tls();
    let o = ours(&sim, &sim.master(), &["-o", "list"]);
    assert_eq!(o.code, 0, "{o:?}");
    let want = [
        (sim::DUP_A_UUID, "dup", "ON"),
        (sim::DUP_B_UUID, "dup", "OFF"),
        (sim::NODE1_UUID, "vm-node1", "ON"),
        (sim::NODE2_UUID, "vm-node2", "OFF"),
        (sim::NODE3_UUID, "vm-node3", "ON"),
        (sim::PAUSED_UUID, "vm-paused", "ON"),
        (sim::SUSPENDED_UUID, "vm-suspended", "ON"),
    ];
    let list: String = want.iter().map(|(u, n, _)| format!("{u},{n}\n")).collect();
    assert_eq!(o.stdout, list);
    // One call for all records, not one per VM.
    let methods = sim.methods();
    assert_eq!(
        methods,
        [
            "session.login_with_password",
            "VM.get_all_records",
            "session.logout"
        ]
    );
    let o = ours(&sim, &sim.master(), &["-o", "list-status", "-C", ";"]);
    assert_eq!(o.code, 0, "{o:?}");
    let status: String = want.iter().map(|(u, n, s)| format!("{u};{n};{s}\n")).collect();
    assert_eq!(o.stdout, status);
    for never in [
        "Debian Bookworm 12",
        "Control domain",
        sim::SNAPSHOT_UUID,
        sim::TEMPLATE_UUID,
        sim::DOM0_UUID,
    ] {
        assert!(!o.stdout.contains(never), "{never}");
    }
    no_session_left(&sim, "list");
}

#[test]
fn monitor_logs_in_and_out() {
    let sim = tls();
    let o = ours(&sim, &sim.master(), &["-o", "monitor"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (0, "", ""),
        "{o:?}"
    );
    assert_eq!(sim.methods(), ["session.login_with_password", "session.logout"]);
    // With a VM it also looks the VM up.
    let o = ours(&sim, &sim.master(), &["-o", "monitor", "-n", "nope"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("no VM with the name label 'nope'"),
        "{}",
        o.stderr
    );
    no_session_left(&sim, "monitor");
    let s = sim.calls();
    assert!(s.iter().all(|c| c.host == MASTER));
}

#[test]
fn unknown_duplicate_and_untouchable_vms_fail_with_the_reason() {
    let sim = tls();
    let m = sim.master();
    for (plug, needle) in [
        ("nope", "no VM with the name label 'nope'".to_owned()),
        (
            "dup",
            format!(
                "2 VMs have the name label 'dup' (UUIDs {}, {}): use the UUID",
                sim::DUP_A_UUID,
                sim::DUP_B_UUID
            ),
        ),
        ("Debian Bookworm 12", "it names a template".to_owned()),
        (sim::TEMPLATE_UUID, "it names a template".to_owned()),
        (sim::DOM0_UUID, "it names a control domain".to_owned()),
        (sim::SNAPSHOT_UUID, "it names a snapshot".to_owned()),
        (
            "00000000-0000-0000-0000-000000000000",
            "no VM with the UUID or name label '00000000-0000-0000-0000-000000000000'".to_owned(),
        ),
    ] {
        for action in ["status", "off", "reboot"] {
            let o = ours(&sim, &m, &["-o", action, "-n", plug]);
            assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{action} {plug}: {o:?}");
            assert!(o.stderr.contains(&needle), "{action} {plug}: {}", o.stderr);
            no_session_left(&sim, plug);
        }
    }
    // vm-node1 is also the name of a snapshot: the VM alone is selected.
    let o = ours(&sim, &m, &["-o", "status", "-n", "vm-node1"]);
    assert_eq!(o.code, 0, "{o:?}");
    // Nothing was ever powered.
    assert!(sim
        .methods()
        .iter()
        .all(|m| !m.contains("start") && !m.contains("hard_")));
}

#[test]
fn tls_is_verified_and_refused_without_trust() {
    let sim = tls();
    let m = sim.master();
    let base = strings(&[
        "-s", &m, "-l", USER, "-p", PASSWORD, "-o", "status", "-n", "vm-node1",
    ]);
    let with = |extra: &[String]| {
        let mut a = base.clone();
        a.extend_from_slice(extra);
        run(BIN, &a, None)
    };
    // The system trust store does not know the simulator's CA.
    let o = with(&[]);
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{o:?}");
    assert!(o.stderr.contains("certificate is not accepted"), "{}", o.stderr);
    assert!(o.stderr.contains("cacert"), "{}", o.stderr);
    // Another CA.
    let o = with(&[format!("--cacert={}", sim.other_ca_file.display())]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("certificate is not accepted"), "{}", o.stderr);
    assert_eq!(sim.logins() + sim.refused_logins(), 0, "no password was sent");
    assert!(sim.calls().is_empty());
    // The right CA, and explicitly insecure.
    let o = with(&[format!("--cacert={}", sim.ca_file.display())]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Status: ON\n"), "{o:?}");
    let o = with(&strings(&["--ssl-insecure"]));
    assert_eq!((o.code, o.stdout.as_str()), (0, "Status: ON\n"), "{o:?}");
    // A CA file that is not one.
    let bogus = sim.dir().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").unwrap();
    let o = with(&[format!("--cacert={}", bogus.display())]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("no usable PEM certificate"), "{}", o.stderr);
    // validate-all checks it too, without the network.
    let o = run(
        BIN,
        &strings(&[
            "-o",
            "validate-all",
            "-s",
            &m,
            "-l",
            "r",
            &format!("--cacert={}", bogus.display()),
        ]),
        None,
    );
    assert_eq!(o.code, 1, "{o:?}");
    no_session_left(&sim, "tls");

    // A self-signed host certificate (what XenServer and XCP-ng hosts make
    // for themselves) given as cacert is trusted; without it, refused.
    let own = Sim::start(Options {
        tls: true,
        self_signed: true,
        ..Options::default()
    });
    let o = ours(&own, &own.master(), &["-o", "status", "-n", "vm-node1"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Status: ON\n"), "{o:?}");
    let o = run(
        BIN,
        &strings(&[
            "-s",
            &own.master(),
            "-l",
            USER,
            "-p",
            PASSWORD,
            "-o",
            "status",
            "-n",
            "vm-node1",
        ]),
        None,
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("certificate is not accepted"), "{}", o.stderr);
    no_session_left(&own, "self-signed");

    // A certificate for another address: the name does not match.
    let other = Sim::start(Options {
        tls: true,
        cert_ips: vec![sim::ip("10.9.9.9")],
        ..Options::default()
    });
    let o = ours(&other, &other.master(), &["-o", "status", "-n", "vm-node1"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("certificate is not accepted"), "{}", o.stderr);
    assert!(o.stderr.contains("NotValidForName"), "{}", o.stderr);
    assert_eq!(other.logins(), 0);
    let o = run(
        BIN,
        &strings(&[
            "-s",
            &other.master(),
            "-l",
            USER,
            "-p",
            PASSWORD,
            "-o",
            "status",
            "-n",
            "vm-node1",
            "--ssl-insecure",
        ]),
        None,
    );
    assert_eq!(o.code, 0, "{o:?}");
    no_session_left(&other, "insecure");
}

#[test]
fn a_member_that_is_not_the_master_is_followed() {
    for tls in [false, true] {
        let sim = Sim::start(Options {
            tls,
            ..Options::default()
        });
        let o = ours(
            &sim,
            &sim.url(SLAVE),
            &["-o", "off", "-n", "vm-node1", "-v", "-v"],
        );
        assert_eq!(
            (o.code, o.stdout.as_str()),
            (0, "Success: Powered OFF\n"),
            "{o:?}"
        );
        assert!(
            o.stderr.contains("HOST_IS_SLAVE, the master is 127.0.0.3"),
            "{}",
            o.stderr
        );
        let calls = sim.calls();
        assert_eq!(calls[0].host, SLAVE);
        assert_eq!(calls[0].method, "session.login_with_password");
        assert!(calls[1..].iter().all(|c| c.host == MASTER), "{calls:?}");
        assert_eq!(calls.last().map(|c| c.method.as_str()), Some("session.logout"));
        no_session_left(&sim, "redirect");
    }
}

#[test]
fn pool_addresses_are_tried_in_order() {
    let sim = Sim::start(Options {
        tls: true,
        blackhole: true,
        ..Options::default()
    });
    // Nothing on the first, no answer from the second, the member leads to
    // the master.
    let urls = format!("{},{} {}", sim.url(DOWN), sim.url(BLACKHOLE), sim.url(SLAVE));
    let o = ours(
        &sim,
        &urls,
        &["-o", "status", "-n", "vm-node2", "--login-timeout=1", "-v"],
    );
    assert_eq!((o.code, o.stdout.as_str()), (2, "Status: OFF\n"), "{o:?}");
    assert!(o.took < Duration::from_secs(5), "{:?}", o.took);
    assert!(
        o.stderr.contains("logged in to https://127.0.0.3"),
        "{}",
        o.stderr
    );
    no_session_left(&sim, "failover");
    // The member still names a master that is gone: the next address.
    sim.set_master_address(DOWN);
    let urls = format!("{},{}", sim.url(SLAVE), sim.master());
    let o = ours(&sim, &urls, &["-o", "status", "-n", "vm-node1", "-vv"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Status: ON\n"), "{o:?}");
    assert!(o.stderr.contains("the master is 127.0.0.9"), "{}", o.stderr);
    no_session_left(&sim, "stale master address");
    sim.set_master_address(MASTER);
    // No master at all: every address and its reason.
    let urls = format!("{},{}", sim.url(DOWN), sim.url(BLACKHOLE));
    let o = ours(
        &sim,
        &urls,
        &["-o", "status", "-n", "vm-node2", "--login-timeout=1"],
    );
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{o:?}");
    assert!(o.stderr.contains("no pool master reachable"), "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!(
            "{}/: session.login_with_password: cannot connect",
            sim.url(DOWN)
        )),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(&format!(
            "{}/: session.login_with_password: no answer within 1 s",
            sim.url(BLACKHOLE)
        )),
        "{}",
        o.stderr
    );
    no_session_left(&sim, "no master");
}

#[test]
fn a_wrong_password_stops_at_once() {
    let sim = Sim::start(Options::default());
    let urls = format!("{},{}", sim.master(), sim.url(SLAVE));
    let o = run(
        BIN,
        &strings(&[
            "-s", &urls, "-l", USER, "-p", "wrong", "-o", "status", "-n", "vm-node1",
        ]),
        None,
    );
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{o:?}");
    assert!(o.stderr.contains("login refused for user 'root'"), "{}", o.stderr);
    assert!(o.stderr.contains("SESSION_AUTHENTICATION_FAILED"), "{}", o.stderr);
    assert_eq!(sim.refused_logins(), 1, "the other address is not tried");
    assert_eq!(sim.calls().len(), 1);
    no_session_left(&sim, "wrong password");
}

#[test]
fn power_changes_are_polled_until_shown_or_time_out() {
    let sim = Sim::start(Options::default());
    let m = sim.master();
    // XenAPI shows the old state for three more reads.
    sim.set_power_lag(3);
    let o = ours(
        &sim,
        &m,
        &["-o", "off", "-n", "vm-node1", "--stonith-status-sleep=0.05"],
    );
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Success: Powered OFF\n"),
        "{o:?}"
    );
    let polls = sim
        .methods()
        .iter()
        .filter(|m| *m == "VM.get_power_state")
        .count();
    assert_eq!(polls, 4);
    no_session_left(&sim, "lag");
    // It never shows: the off is not confirmed, exit 1.
    sim.set_power_lag(1_000_000);
    let o = ours(
        &sim,
        &m,
        &[
            "-o",
            "off",
            "-n",
            "vm-node3",
            "--power-timeout=0.5",
            "--stonith-status-sleep=0.05",
        ],
    );
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{o:?}");
    assert!(o.stderr.contains("VM vm-node3: still Running"), "{}", o.stderr);
    assert!(o.took < Duration::from_secs(3), "{:?}", o.took);
    no_session_left(&sim, "not confirmed");
    // on: power_wait is waited before the first poll.
    sim.set_power_lag(0);
    let o = ours(&sim, &m, &["-o", "on", "-n", "vm-node2", "--power-wait=0.3"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.took >= Duration::from_millis(300), "{:?}", o.took);
    no_session_left(&sim, "power_wait");
}

#[test]
fn time_outs_still_log_out() {
    let sim = Sim::start(Options::default());
    let m = sim.master();
    // The power call does not answer in time.
    sim.set_delay("VM.hard_shutdown", Duration::from_secs(3));
    let o = ours(&sim, &m, &["-o", "off", "-n", "vm-node1", "--power-timeout=0.5"]);
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{o:?}");
    assert!(
        o.stderr.contains("VM.hard_shutdown: no answer within 0.5 s"),
        "{}",
        o.stderr
    );
    assert!(o.took < Duration::from_millis(2500), "{:?}", o.took);
    no_session_left(&sim, "power call time-out");
    // A look-up does not answer in time.
    sim.set_delay("VM.get_by_name_label", Duration::from_secs(3));
    let o = ours(
        &sim,
        &m,
        &["-o", "status", "-n", "vm-node1", "--shell-timeout=0.5"],
    );
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{o:?}");
    assert!(o.stderr.contains("no answer within 0.5 s"), "{}", o.stderr);
    no_session_left(&sim, "look-up time-out");
    // The log-in itself does not answer in time.
    sim.set_delay("session.login_with_password", Duration::from_millis(1500));
    let o = ours(
        &sim,
        &m,
        &["-o", "status", "-n", "vm-node1", "--login-timeout=0.5"],
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("no pool master reachable"), "{}", o.stderr);
    no_session_left(&sim, "log-in time-out");
    // The known limit: a log-in that the server completes after the agent
    // gave up makes a session nobody has the reference of, so nobody can
    // log it out; xapi expires it (after 24 h, or as the oldest of 400).
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.open_sessions().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sim.open_sessions().len(), 1);
}

#[test]
fn a_dropped_session_is_replaced_and_logged_out() {
    let sim = Sim::start(Options::default());
    sim.drop_session_on("VM.get_record");
    let o = ours(&sim, &sim.master(), &["-o", "status", "-n", "vm-node1"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Status: ON\n"), "{o:?}");
    assert_eq!(sim.logins(), 2);
    no_session_left(&sim, "dropped session");
}

#[test]
fn broken_http_answers_are_failures() {
    let sim = Sim::start(Options::default());
    sim.break_http();
    let o = ours(&sim, &sim.master(), &["-o", "status", "-n", "vm-node1"]);
    assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{o:?}");
    assert!(o.stderr.contains("HTTP status 500"), "{}", o.stderr);
}

#[test]
fn pacemaker_stdin_with_the_classic_names() {
    let sim = tls();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pw.sh");
    std::fs::write(&script, format!("#!/bin/sh\nprintf '%s\\n' '{PASSWORD}'\n")).unwrap();
    let debug = dir.path().join("debug.log");
    let input = format!(
        "# pacemaker-fenced\naction=off\nnodename=node1\nport=vm-node1\nlogin={USER}\n\
         passwd_script=sh {}\nsession_url={}\ncacert={}\npcmk_host_map=node1:vm-node1\n\
         disable_timeout=true\nshell_timeout=5\npower_timeout=10\nverbose=0\ndebug={}\n",
        script.display(),
        sim.url(SLAVE),
        sim.ca_file.display(),
        debug.display()
    );
    let o = run(BIN, &[], Some(&input));
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Success: Powered OFF\n"),
        "{o:?}"
    );
    assert!(
        o.stderr.is_empty(),
        "debug lines go to the file only: {}",
        o.stderr
    );
    let log = std::fs::read_to_string(&debug).unwrap();
    for needle in [
        "ignoring unknown parameter 'pcmk_host_map'",
        "option disable_timeout has no effect",
        "HOST_IS_SLAVE",
        "logged out",
    ] {
        assert!(log.contains(needle), "{needle} not in\n{log}");
    }
    assert!(!log.contains(PASSWORD), "the password is never logged:\n{log}");
    assert_eq!(sim.vm(sim::NODE1_UUID).power, "Halted");
    let session_origin = sim.calls();
    assert_eq!(session_origin[0].method, "session.login_with_password");
    no_session_left(&sim, "stdin");
    // status over stdin with plug and the new names.
    let input = format!(
        "action=status\nplug={}\nusername={USER}\npassword={PASSWORD}\nsession_url={}\nssl_insecure=1\n",
        sim::NODE1_UUID,
        sim.master()
    );
    let o = run(BIN, &[], Some(&input));
    assert_eq!((o.code, o.stdout.as_str()), (2, "Status: OFF\n"), "{o:?}");
    no_session_left(&sim, "stdin status");
}

#[test]
fn the_login_names_the_agent() {
    let sim = Sim::start(Options::default());
    sim.set_delay("VM.get_all_records", Duration::from_secs(1));
    let m = sim.master();
    let handle = std::thread::spawn(move || ours_owned(&m));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    while seen.is_empty() && Instant::now() < deadline {
        seen = sim.open_sessions();
        std::thread::sleep(Duration::from_millis(10));
    }
    let o = handle.join().unwrap();
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].originator, "fence_xenapi");
    assert_eq!(seen[0].version, "1.0");
    no_session_left(&sim, "originator");
}

fn ours_owned(master: &str) -> Out {
    run(
        BIN,
        &strings(&["-s", master, "-l", USER, "-p", PASSWORD, "-o", "list"]),
        None,
    )
}

#[test]
fn delay_applies_to_off_and_reboot_only() {
    let sim = Sim::start(Options::default());
    let m = sim.master();
    let o = ours(&sim, &m, &["-o", "status", "-n", "vm-node1", "--delay=10"]);
    assert_eq!(o.code, 0);
    assert!(o.took < Duration::from_secs(8), "{:?}", o.took);
    let o = ours(&sim, &m, &["-o", "off", "-n", "vm-node1", "--delay=0.4"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.took >= Duration::from_millis(400), "{:?}", o.took);
}

#[test]
fn argument_errors_exit_1_without_contacting_anyone() {
    for (args, needle) in [
        (
            &["-o", "status", "-n", "vm", "-l", "root"][..],
            "-s/session_url is required",
        ),
        (
            &["-o", "status", "-n", "vm", "-s", "https://x"][..],
            "-l/username is required",
        ),
        (
            &["-o", "off", "-s", "https://x", "-l", "root"][..],
            "no virtual machine given",
        ),
        (
            &["-o", "list", "-s", "ftp://x", "-l", "root"][..],
            "only http:// and https://",
        ),
        (
            &[
                "-o",
                "list",
                "-s",
                "https://x",
                "-l",
                "root",
                "--ssl-insecure",
                "--cacert=/x",
            ][..],
            "exclude each other",
        ),
        (&["-o", "fence"][..], "invalid value 'fence'"),
        (&["--power-timeout=0"][..], "more than 0"),
        (&["-x"][..], "unknown option '-x'"),
    ] {
        let o = run(BIN, &strings(args), None);
        assert_eq!((o.code, o.stdout.as_str()), (1, ""), "{args:?}: {o:?}");
        assert!(o.stderr.contains(needle), "{args:?}: {}", o.stderr);
        assert!(
            o.stderr.contains("Try 'fence_xenapi -h'"),
            "{args:?}: {}",
            o.stderr
        );
    }
    let o = run(
        BIN,
        &[],
        Some("action=validate-all\nsession_url=https://x\nlogin=root\n"),
    );
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""));
}

/// The classic agent's metadata parameters, as data (from fence-agents
/// 4.12's `fence_xenapi -o metadata`), without `help` and `version`,
/// which are command-line only here.
const CLASSIC_PARAMETERS: &[&str] = &[
    "action",
    "login",
    "passwd",
    "passwd_script",
    "password",
    "password_script",
    "plug",
    "port",
    "session_url",
    "username",
    "quiet",
    "verbose",
    "verbose_level",
    "debug",
    "debug_file",
    "plug_separator",
    "separator",
    "delay",
    "disable_timeout",
    "login_timeout",
    "power_timeout",
    "power_wait",
    "shell_timeout",
    "stonith_status_sleep",
    "retry_on",
];

fn parameters(xml: &str) -> Vec<(String, String)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("parameter"))
        .map(|p| {
            let getopt = p
                .children()
                .find(|c| c.has_tag_name("getopt"))
                .and_then(|g| g.attribute("mixed"))
                .unwrap_or("")
                .to_owned();
            (p.attribute("name").unwrap_or("").to_owned(), getopt)
        })
        .collect()
}

#[test]
fn metadata_keeps_every_classic_parameter_and_validates() {
    let o = run(BIN, &strings(&["-o", "metadata"]), None);
    assert_eq!(o.code, 0);
    let ours = parameters(&o.stdout);
    let names: Vec<&str> = ours.iter().map(|(n, _)| n.as_str()).collect();
    for p in CLASSIC_PARAMETERS {
        assert!(names.contains(p), "{p} missing");
    }
    for p in ["uuid", "ssl_insecure", "cacert", "method"] {
        assert!(names.contains(&p), "{p} missing");
    }
    // The old names show the classic getopt of their new name.
    let getopt = |n: &str| ours.iter().find(|(p, _)| p == n).map(|(_, g)| g.clone()).unwrap();
    assert_eq!(getopt("login"), "-l, --username=[name]");
    assert_eq!(getopt("passwd"), "-p, --password=[password]");
    assert_eq!(getopt("port"), "-n, --plug=[id]");
    assert_eq!(getopt("session_url"), "-s, --session-url=[url]");
    assert!(o.stdout.contains("<action name=\"on\" automatic=\"0\" />"));
    // stdin mode gives the same.
    let s = run(BIN, &[], Some("action=meta-data\n"));
    assert_eq!(s.stdout, o.stdout);
    // Live comparison with the classic agent, when installed.
    if Path::new(CLASSIC).exists() && Path::new("/usr/bin/python3").exists() {
        let c = run(CLASSIC, &strings(&["-o", "metadata"]), None);
        if c.code == 0 {
            for (name, g) in parameters(&c.stdout) {
                if name == "help" || name == "version" {
                    continue;
                }
                let mine = ours.iter().find(|(n, _)| *n == name);
                assert!(mine.is_some(), "classic parameter {name} missing");
                if let Some((_, ours_g)) = mine {
                    let letter = |s: &str| s.split(',').next().unwrap_or("").trim().to_owned();
                    if g.starts_with('-') && !g.starts_with("--") {
                        assert_eq!(letter(ours_g), letter(&g), "{name}");
                    }
                }
            }
        }
    }
    if !prerequisites(&[(RNG, "fence-agents"), ("/usr/bin/xmllint", "libxml2-utils")]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.xml");
    std::fs::write(&f, &o.stdout).unwrap();
    let v = Command::new("xmllint")
        .args(["--noout", "--relaxng", RNG])
        .arg(&f)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn help_version_and_manpage() {
    let h = run(BIN, &strings(&["-h"]), None);
    assert_eq!(h.code, 0);
    for needle in [
        "usage: fence_xenapi",
        "-s <url>, --session-url=<url>",
        "--ssl-insecure",
        "--cacert=<file>",
        "port=<id>",
    ] {
        assert!(h.stdout.contains(needle), "{needle} in\n{}", h.stdout);
    }
    for line in h.stdout.lines() {
        assert!(line.len() <= 79, "too long: {line}");
    }
    let v = run(BIN, &strings(&["-V"]), None);
    assert!(v.stdout.starts_with("fence_xenapi "), "{}", v.stdout);
    let m = run(BIN, &strings(&["-o", "manpage"]), None);
    assert_eq!(m.code, 0);
    assert!(m.stdout.starts_with(".TH FENCE_XENAPI 8"));
    for s in [".SH ACTIONS", ".SH EXIT STATUS", "\\fB\\-\\-ssl\\-insecure\\fR"] {
        assert!(m.stdout.contains(s), "{s}");
    }
}

/// The classic Python agent against the simulator: it reads the
/// simulator's answers as a real pool's (so the simulator speaks
/// XenAPI's XML-RPC as Python's xmlrpc.client expects it), and it leaves
/// one session per run behind, which ours never does.
#[test]
fn the_classic_agent_reads_the_simulator_and_leaks_sessions() {
    if !prerequisites(&[
        (CLASSIC, "fence-agents"),
        ("/usr/bin/python3", "python3"),
        ("/usr/share/fence/XenAPI.py", "fence-agents"),
    ]) {
        return;
    }
    let sim = Sim::start(Options::default());
    let base = strings(&["-s", &sim.master(), "-l", USER, "-p", PASSWORD]);
    let classic = |extra: &[&str]| {
        let mut a = base.clone();
        a.extend(strings(extra));
        run(CLASSIC, &a, None)
    };
    let o = classic(&["-o", "status", "-n", "vm-node3"]);
    assert_eq!((o.code, o.stdout.as_str()), (0, "Status: ON\n"), "{o:?}");
    // vm-node1 shares its name with its snapshot: the classic agent
    // counts the snapshot and gives up; ours skips snapshots.
    let o = classic(&["-o", "status", "-n", "vm-node1"]);
    assert_eq!((o.code, o.stdout.as_str()), (1, "MULTIPLE_VMS_FOUND\n"), "{o:?}");
    let mine = run(
        BIN,
        &[base.clone(), strings(&["-o", "status", "-n", "vm-node1"])].concat(),
        None,
    );
    assert_eq!((mine.code, mine.stdout.as_str()), (0, "Status: ON\n"), "{mine:?}");
    let o = classic(&["-o", "status", "-n", "vm-node2"]);
    assert_eq!((o.code, o.stdout.as_str()), (2, "Status: OFF\n"), "{o:?}");
    let o = classic(&["-o", "list"]);
    assert_eq!(o.code, 0, "{o:?}");
    let mut lines: Vec<&str> = o.stdout.lines().collect();
    lines.sort_unstable();
    let ours_list = run(BIN, &[base.clone(), strings(&["-o", "list"])].concat(), None);
    let mut mine: Vec<&str> = ours_list.stdout.lines().collect();
    mine.sort_unstable();
    // The classic agent skips templates and control domains but lists
    // snapshots; ours skips those too.
    let snapshot = format!("{},vm-node1", sim::SNAPSHOT_UUID);
    lines.retain(|l| *l != snapshot);
    assert_eq!(lines, mine);
    let o = classic(&["-o", "off", "-n", "vm-node3"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Success: Powered OFF\n"),
        "{o:?}"
    );
    assert_eq!(sim.vm(sim::NODE3_UUID).power, "Halted");
    // Five classic runs, five sessions left; our two runs left none.
    assert_eq!(sim.open_sessions().len(), 5);
    assert!(sim.open_sessions().iter().all(|s| s.originator.is_empty()));
}

/// pcs reads our metadata and accepts a classic-style configuration with a
/// host map. pcs looks agents up in /usr/sbin, so our binary is
/// bind-mounted over the classic one in a private mount namespace
/// (nothing changes outside it).
#[test]
fn pcs_accepts_a_classic_configuration() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !root {
        eprintln!("SKIPPED: pcs test needs root for a private mount namespace");
        return;
    }
    if !prerequisites(&[
        ("/usr/sbin/pcs", "pcs"),
        ("/usr/sbin/cibadmin", "pacemaker-cli-utils"),
        ("/usr/bin/unshare", "util-linux"),
        (CLASSIC, "fence-agents, to mount over"),
    ]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    let empty = Command::new("cibadmin").arg("--empty").output().unwrap();
    assert!(empty.status.success());
    std::fs::write(&cib, empty.stdout).unwrap();
    let script = format!(
        "mount --bind {BIN} {CLASSIC} && pcs stonith describe fence_xenapi && \
         pcs -f {cib} stonith create fence-xen fence_xenapi session_url=https://pool-master.example \
         login=root passwd=secret ssl_insecure=1 pcmk_host_map='node1:vm-node1;node2:vm-node2' && \
         pcs -f {cib} stonith create fence-xen2 fence_xenapi session_url=https://a,https://b \
         username=root password_script=/bin/true cacert=/etc/ssl/xen-ca.pem method=onoff && \
         ! pcs -f {cib} stonith create fence-xen3 fence_xenapi session_url=https://a ipaddr=1.2.3.4",
        cib = cib.display()
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("session_url (required): URL of the pool's XenAPI"),
        "{text}"
    );
    assert!(text.contains("invalid stonith option"), "{text}");
    let cib_text = std::fs::read_to_string(&cib).unwrap();
    assert!(
        cib_text.contains("pcmk_host_map") && cib_text.contains("cacert"),
        "{cib_text}"
    );
}
