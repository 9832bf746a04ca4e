//! Our `fence_virtd` on a real libvirtd (`qemu:///system`) with real QEMU
//! guests, driven by the classic C `fence_xvm` over multicast inside a
//! namespace lab: off is answered only once libvirt shows the guest shut
//! off, reboot really restarts it, a libvirtd restart is survived without
//! restarting the daemon, and `-w` waits for libvirtd at start-up.
//!
//! libvirtd and virtlogd run in the root namespace, started (and stopped)
//! by the harness's `start-libvirtd.sh` with a state directory of our own;
//! the daemon in the lab's host namespace reaches libvirtd through its unix
//! socket. Guests (`vmfq1..`) are 32 MiB diskless TCG machines without a
//! network device, sitting in SeaBIOS.
//!
//! The tests run one at a time: a lock within this process and an exclusive
//! `flock` on `/tmp/vmfence-libvirtd.lock` across processes (the benchmarks
//! take the same lock). A libvirtd that someone else started is reused but
//! never stopped; the test that stops libvirtd runs only when no such
//! libvirtd is there. Guests are destroyed and undefined and the libvirtd we
//! started is stopped on every exit path, also when a test fails.
//!
//! Needs root, iproute2, the classic agents, libvirtd, virtlogd, QEMU and
//! the harness: without them the tests skip with a reason, except under CI,
//! where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use vmfence_testlab::*;

const FVD: &str = env!("CARGO_BIN_EXE_fence_virtd");
const URI: &str = "qemu:///system";
/// Prefix of the guests these tests define (the benchmarks use `vmfb`).
const PREFIX: &str = "vmfq";
/// Shared with every other user of the real libvirtd.
const LOCK: &str = "/tmp/vmfence-libvirtd.lock";
/// How long an agent may run at all (its own timeout is 30 s).
const LIMIT: Duration = Duration::from_secs(40);
/// A request while libvirtd is down must fail well within this.
const PROMPT: Duration = Duration::from_secs(5);
/// The daemon's `-w` retry period, and some slack.
const RETRY: Duration = Duration::from_secs(5);

static SERIAL: Mutex<()> = Mutex::new(());

fn fvd() -> &'static Path {
    Path::new(FVD)
}

fn needs() -> Vec<Need> {
    vec![Need::Lab, Need::CAgents, Need::Qemu]
}

/// The harness script's state directory for our libvirtd (pid files, logs,
/// guest XML): not the default one, so that a libvirtd started by someone
/// else is never taken for ours.
fn state_dir() -> PathBuf {
    PathBuf::from("/tmp/vmfence-qemu-tests-libvirtd")
}

// ---------------------------------------------------------------------------
// Exclusive use of the real libvirtd.

/// Held for the whole of a test: this process's lock, then the shared
/// `flock`.
struct Exclusive {
    _file: File,
    _serial: MutexGuard<'static, ()>,
}

fn exclusive() -> Exclusive {
    let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK)
        .unwrap();
    let start = Instant::now();
    let mut told = false;
    while !try_lock(&file) {
        if !told {
            eprintln!("waiting for {LOCK} (someone else uses the real libvirtd)");
            told = true;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "{LOCK} still taken after 15 minutes"
        );
        thread::sleep(Duration::from_millis(200));
    }
    if told {
        eprintln!("got {LOCK} after {:?}", start.elapsed());
    }
    Exclusive {
        _file: file,
        _serial: serial,
    }
}

/// An exclusive `flock`, without waiting; released when the file closes.
#[allow(unsafe_code)]
fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor that `file` keeps open for the call.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

// ---------------------------------------------------------------------------
// libvirtd through the harness script.

fn script(args: &[&str]) -> Output {
    Command::new("bash")
        .arg(harness_dir().join("start-libvirtd.sh"))
        .args(args)
        .env("FV_LIBVIRT_DIR", state_dir())
        .output()
        .unwrap()
}

fn script_ok(args: &[&str]) -> String {
    let out = script(args);
    assert!(
        out.status.success(),
        "start-libvirtd.sh {args:?}: {}{}\nlibvirtd.log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        log_tail(&state_dir().join("libvirtd.log"))
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn virsh(args: &[&str]) -> Output {
    Command::new("virsh")
        .args(["-q", "-c", URI])
        .args(args)
        .output()
        .unwrap()
}

fn virsh_ok(args: &[&str]) -> String {
    let out = virsh(args);
    assert!(
        out.status.success(),
        "virsh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn domstate(name: &str) -> String {
    virsh_ok(&["domstate", name])
}

/// Whether `pid` is a process that has not exited (zombies have).
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X' | 'x'))
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// The libvirtd our state directory records, if it runs.
fn recorded_libvirtd() -> Option<u32> {
    let text = std::fs::read_to_string(state_dir().join("libvirtd.pid")).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    (running(pid) && comm(pid) == "libvirtd").then_some(pid)
}

/// A running libvirtd that these tests did not start.
fn foreign_libvirtd() -> Option<u32> {
    let out = Command::new("pgrep").args(["-x", "libvirtd"]).output().unwrap();
    let ours = recorded_libvirtd();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .find(|&pid| Some(pid) != ours && running(pid))
}

/// A guest: name, UUID.
#[derive(Debug, Clone)]
struct Guest {
    name: String,
    uuid: String,
}

impl Guest {
    fn domid(&self) -> String {
        virsh_ok(&["domid", &self.name])
    }

    /// The pid of its QEMU process, from libvirt's pid file.
    fn qemu_pid(&self) -> u32 {
        let path = format!("/run/libvirt/qemu/{}.pid", self.name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.trim().parse().unwrap()
    }
}

/// The real libvirtd for one test, with the exclusive lock. On drop: our
/// guests destroyed and undefined, and the libvirtd we started stopped
/// (restarted first if a test failed while it was down, so that the guests
/// can be removed).
struct Libvirtd {
    /// The libvirtd we started; `None` when someone else's is reused.
    ours: Option<u32>,
    /// We stopped it and it has not been started again.
    down: bool,
    _exclusive: Exclusive,
}

impl Libvirtd {
    /// libvirtd running: ours, or someone else's reused.
    fn any() -> Libvirtd {
        let exclusive = exclusive();
        let mut lv = Libvirtd {
            ours: None,
            down: false,
            _exclusive: exclusive,
        };
        lv.start();
        lv
    }

    /// A libvirtd of our own (one that we may stop), or `None` after
    /// saying why not (skip; a failure under CI) when another one runs and
    /// does not go away.
    fn own() -> Option<Libvirtd> {
        let exclusive = exclusive();
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(pid) = foreign_libvirtd() {
            if Instant::now() >= deadline {
                let msg = format!(
                    "a libvirtd that these tests did not start runs (pid {pid}); \
                     this test stops and starts libvirtd, which it may do only to its own"
                );
                assert!(!in_ci(), "{msg} (CI is set: not skipping)");
                eprintln!("SKIPPED: {msg}");
                return None;
            }
            thread::sleep(Duration::from_millis(250));
        }
        let mut lv = Libvirtd {
            ours: None,
            down: false,
            _exclusive: exclusive,
        };
        lv.start();
        assert!(lv.ours.is_some(), "libvirtd started but not recorded as ours");
        Some(lv)
    }

    /// `start-libvirtd.sh start`: reuses a running one, else starts one
    /// and records its pid in our state directory.
    fn start(&mut self) {
        let t = Instant::now();
        let pid: u32 = script_ok(&["start"]).trim().parse().unwrap();
        self.ours = (recorded_libvirtd() == Some(pid)).then_some(pid);
        self.down = false;
        eprintln!(
            "libvirtd {pid} ({}) answering after {:?}",
            if self.ours.is_some() {
                "ours"
            } else {
                "someone else's"
            },
            t.elapsed()
        );
    }

    /// Stop our libvirtd alone (virtlogd and the guests keep running), as
    /// a `systemctl restart libvirtd` would; returns once it has exited.
    fn stop_daemon(&mut self) {
        let pid = self.ours.expect("only our own libvirtd is stopped");
        let t = Instant::now();
        let st = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while running(pid) {
            if Instant::now() >= deadline {
                // Ours, by pid.
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                panic!("libvirtd {pid} still running 20 s after SIGTERM (killed)");
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.down = true;
        eprintln!("libvirtd {pid} stopped after {:?}", t.elapsed());
        assert!(
            !virsh(&["version"]).status.success(),
            "libvirt still answers with libvirtd stopped"
        );
    }

    /// Guests `vmfq1..vmfqN`, running.
    fn guests(&self, n: usize) -> Vec<Guest> {
        let t = Instant::now();
        let names = script_ok(&["guests", &n.to_string(), PREFIX]);
        let guests: Vec<Guest> = names
            .lines()
            .map(|name| Guest {
                name: name.trim().to_owned(),
                uuid: virsh_ok(&["domuuid", name.trim()]).to_ascii_lowercase(),
            })
            .collect();
        assert_eq!(guests.len(), n, "{names}");
        for g in &guests {
            assert_eq!(domstate(&g.name), "running", "{g:?}");
        }
        eprintln!("{n} guest(s) running after {:?}", t.elapsed());
        guests
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        if self.down {
            let _ = script(&["start"]);
        }
        let undefined = script(&["undefine", PREFIX]);
        if !undefined.status.success() {
            eprintln!(
                "cleanup: undefine {PREFIX}*: {}",
                String::from_utf8_lossy(&undefined.stderr)
            );
        }
        if self.ours.is_some() || self.down {
            // Stops only what our state directory recorded, by pid.
            let _ = script(&["stop"]);
        }
    }
}

// ---------------------------------------------------------------------------
// The agent.

/// The classic `fence_xvm` from one guest namespace with the daemon's key.
struct Agent<'a> {
    ns: &'a str,
    key: String,
    /// (action, target, wall time) of every run, for the timing report.
    times: Vec<(String, String, Duration)>,
}

impl<'a> Agent<'a> {
    fn new(ns: &'a str, d: &OurDaemon) -> Agent<'a> {
        Agent {
            ns,
            key: d.key.display().to_string(),
            times: Vec::new(),
        }
    }

    fn run(&mut self, action: &str, target: &str, extra: &[&str]) -> Run {
        let mut args = vec!["-k", &self.key, "-o", action];
        if !target.is_empty() {
            args.extend(["-H", target]);
        }
        args.extend_from_slice(extra);
        let r = agent_in(self.ns, C_XVM, &args, None, LIMIT);
        self.times.push((action.to_owned(), target.to_owned(), r.elapsed));
        r
    }

    /// `action` on `target` must exit `code`.
    fn expect(&mut self, action: &str, target: &str, code: i32) -> Run {
        let r = self.run(action, target, &[]);
        assert_eq!(r.code, code, "fence_xvm -o {action} -H {target}: {r:#?}");
        r
    }

    fn report(&self, test: &str) {
        for (action, target, t) in &self.times {
            eprintln!("[{test}] fence_xvm -o {action} {target}: {t:?}");
        }
    }
}

/// `fence_xvm -o list` lines of our guests: (name, uuid, on/off).
fn listed(r: &Run) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = r
        .stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (name, uuid, state) = (w.next()?, w.next()?, w.next()?);
            name.starts_with(PREFIX)
                .then(|| (name.to_owned(), uuid.to_owned(), state.to_owned()))
        })
        .collect();
    v.sort();
    v
}

fn list_of(guests: &[Guest], states: &[&str]) -> Vec<(String, String, String)> {
    guests
        .iter()
        .zip(states)
        .map(|(g, s)| (g.name.clone(), g.uuid.clone(), (*s).to_owned()))
        .collect()
}

/// The daemon's `request` line for `op` on `domain` (the last one), waiting
/// a moment for it: it is written right after the answer.
fn request_line(d: &OurDaemon, op: &str, domain: &str) -> LogLine {
    let mut found = None;
    for _ in 0..40 {
        found = d
            .requests()
            .into_iter()
            .rfind(|l| l.get("op") == op && l.get("domain") == domain);
        if found.is_some() {
            break;
        }
        thread::sleep(Duration::from_millis(25));
    }
    found.unwrap_or_else(|| panic!("no request line for {op} {domain}:\n{}", d.log_text()))
}

fn qemu_setup() -> DaemonSetup {
    DaemonSetup {
        uri: Some(URI.into()),
        ..DaemonSetup::default()
    }
}

// ---------------------------------------------------------------------------
// The tests.

/// 1. Every action on real QEMU guests, by name and by UUID: off succeeds
///    only once libvirt shows the guest shut off; status says OFF (2) after
///    off and ON (0) after on; reboot restarts a running guest (new domain
///    id, new QEMU process) and leaves an off one off; list shows both
///    guests with their UUIDs and states; an unknown VM fails, with the
///    reason in the daemon's log.
#[test]
fn real_qemu_guests_off_on_reboot_status_list() {
    if !prerequisites(&needs()) {
        return;
    }
    let whole = Instant::now();
    let lv = Libvirtd::any();
    let guests = lv.guests(2);
    let (g1, g2) = (&guests[0], &guests[1]);
    let lab = Lab::with_subnet("vmfqa", 1, 40);
    let d = OurDaemon::start(fvd(), &lab.host, &qemu_setup());
    let mut x = Agent::new(lab.guest(1), &d);

    let r = x.expect("list", "", 0);
    assert_eq!(listed(&r), list_of(&guests, &["on", "on"]), "{r:#?}");
    let r = x.expect("status", &g1.name, 0);
    assert_eq!(r.stdout, "Status: ON\n");
    x.expect("status", &g2.uuid.to_uppercase(), 0);

    // off: answered only once libvirt shows the guest shut off.
    x.expect("off", &g1.name, 0);
    assert_eq!(domstate(&g1.name), "shut off", "right after off answered");
    assert_eq!(request_line(&d, "off", &g1.name).get("outcome"), "done");
    let r = x.expect("status", &g1.name, 2);
    assert_eq!(r.stdout, "Status: OFF\n");
    x.expect("status", &g1.uuid, 2);
    let r = x.expect("list", "", 0);
    assert_eq!(listed(&r), list_of(&guests, &["off", "on"]), "{r:#?}");
    // Already off: success, nothing done; reboot does not start it.
    x.expect("off", &g1.uuid, 0);
    x.expect("reboot", &g1.name, 0);
    assert_eq!(domstate(&g1.name), "shut off", "reboot started an off guest");

    // on, by UUID.
    x.expect("on", &g1.uuid.to_uppercase(), 0);
    assert_eq!(domstate(&g1.name), "running", "right after on answered");
    x.expect("status", &g1.name, 0);

    // reboot of a running (persistent) guest, by name then by UUID: a new
    // domain id and a new QEMU process each time, running when answered.
    for target in [g2.name.clone(), g2.uuid.clone()] {
        let (id, pid) = (g2.domid(), g2.qemu_pid());
        x.expect("reboot", &target, 0);
        assert_eq!(domstate(&g2.name), "running", "right after reboot {target}");
        let (id2, pid2) = (g2.domid(), g2.qemu_pid());
        assert_ne!(id, id2, "reboot {target}: same domain id");
        assert_ne!(pid, pid2, "reboot {target}: same QEMU process");
        assert!(running(pid2), "new QEMU process {pid2} not running");
        assert!(!running(pid), "old QEMU process {pid} still running");
        assert_eq!(
            request_line(&d, "reboot", &target).get("outcome"),
            "done",
            "{}",
            d.log_text()
        );
    }
    x.expect("status", &g2.name, 0);
    let r = x.expect("list", "", 0);
    assert_eq!(listed(&r), list_of(&guests, &["on", "on"]), "{r:#?}");

    // Unknown VMs fail (never "off"), with the reason logged.
    let r = x.expect("status", "vmfq-no-such-vm", 1);
    assert!(r.stdout.contains("Operation failed"), "{r:#?}");
    x.expect("off", "vmfq-no-such-vm", 1);
    x.expect("on", "fe0c0000-0000-4000-8000-00000000beef", 1);
    for (op, target) in [
        ("status", "vmfq-no-such-vm"),
        ("off", "vmfq-no-such-vm"),
        ("on", "fe0c0000-0000-4000-8000-00000000beef"),
    ] {
        let l = request_line(&d, op, target);
        assert_eq!(l.get("outcome"), "unknown-domain", "{}", l.raw);
        assert!(l.get("detail").contains(target), "{}", l.raw);
    }
    assert_eq!(
        d.requests().len(),
        x.times.len(),
        "one request line per request:\n{}",
        d.log_text()
    );

    x.report("qemu ops");
    drop(d);
    drop(lab);
    let t = Instant::now();
    drop(lv);
    eprintln!(
        "[qemu ops] cleanup (undefine, stop) {:?}; whole test {:?}",
        t.elapsed(),
        whole.elapsed()
    );
}

/// 2 and 3. libvirtd stopped under a running daemon: a request fails
/// promptly with the reason logged, and the daemon stays up. Meanwhile a
/// daemon started with `-w` keeps retrying and one started without it
/// exits non-zero with the reason. libvirtd started again: the first
/// daemon answers again (same process, connection reopened) and the `-w`
/// one becomes ready and answers.
#[test]
fn libvirtd_restart_is_survived_and_w_waits_for_it() {
    if !prerequisites(&needs()) {
        return;
    }
    let whole = Instant::now();
    let Some(mut lv) = Libvirtd::own() else {
        return;
    };
    let guests = lv.guests(1);
    let g = &guests[0];
    let lab = Lab::with_subnet("vmfqb", 1, 41);
    let mut a = OurDaemon::start(fvd(), &lab.host, &qemu_setup());
    let a_pid = a.pid();
    let mut x = Agent::new(lab.guest(1), &a);
    x.expect("status", &g.name, 0);

    lv.stop_daemon();

    // Prompt failure with a reason, the daemon unharmed.
    let r = x.run("status", &g.name, &["-t", "10"]);
    assert_eq!(r.code, 1, "status with libvirtd down: {r:#?}");
    assert!(
        r.elapsed < PROMPT,
        "status with libvirtd down took {:?}",
        r.elapsed
    );
    let l = request_line(&a, "status", &g.name);
    assert_eq!(l.get("outcome"), "backend-down", "{}", l.raw);
    assert_eq!(l.get("code"), "1", "{}", l.raw);
    assert!(
        l.get("detail").contains("hypervisor unavailable") && l.get("detail").contains(URI),
        "{}",
        l.raw
    );
    assert!(a.alive(), "daemon died with libvirtd:\n{}", a.log_text());
    // A power action too: refused at once, the guest untouched.
    let r = x.run("off", &g.name, &["-t", "10"]);
    assert_eq!(r.code, 1, "off with libvirtd down: {r:#?}");
    assert!(r.elapsed < PROMPT, "off with libvirtd down took {:?}", r.elapsed);
    assert_eq!(request_line(&a, "off", &g.name).get("outcome"), "backend-down");

    // Start-up with libvirtd down, with and without -w, in a second lab.
    let lab2 = Lab::with_subnet("vmfqc", 1, 42);
    let waiting_setup = DaemonSetup {
        args: vec!["-w".into()],
        ..qemu_setup()
    };
    let t_w = Instant::now();
    let mut w = OurDaemon::start(fvd(), &lab2.host, &waiting_setup);
    let plain_setup = DaemonSetup {
        listeners: vec![OurListener::Tcp {
            address: "127.0.0.1".into(),
        }],
        ..qemu_setup()
    };
    let t_plain = Instant::now();
    let mut plain = OurDaemon::spawn(fvd(), &lab2.host, &plain_setup);
    let st = plain
        .wait_exit(PROMPT)
        .unwrap_or_else(|| panic!("without -w, still running:\n{}", plain.log_text()));
    eprintln!(
        "[libvirtd restart] without -w: exited ({st}) after {:?}",
        t_plain.elapsed()
    );
    assert_eq!(st.code(), Some(1), "{}", plain.log_text());
    let log = plain.log_text();
    assert!(
        log.contains("backend libvirt failed to initialise") && log.contains(URI),
        "{log}"
    );
    assert!(!log.contains("ready"), "{log}");
    assert!(!plain.pid_file.exists(), "pid file left behind");

    // A request while -w waits goes unanswered; it is dropped once the
    // backend is there, never carried out late.
    let mut y = Agent::new(lab2.guest(1), &w);
    let r = y.run("status", &g.name, &["-t", "2"]);
    assert_eq!(r.code, 1, "status to a daemon waiting for libvirt: {r:#?}");

    let retries = |d: &OurDaemon| {
        d.log_lines()
            .iter()
            .filter(|l| {
                l.level == "WARN"
                    && l.message.contains("backend libvirt failed to initialise")
                    && l.message.contains("retrying")
            })
            .count()
    };
    let deadline = Instant::now() + RETRY * 2 + Duration::from_secs(2);
    while retries(&w) < 2 {
        assert!(w.alive(), "-w: exited:\n{}", w.log_text());
        assert!(
            Instant::now() < deadline,
            "-w: no second attempt:\n{}",
            w.log_text()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(w.alive(), "-w: exited:\n{}", w.log_text());
    assert!(
        !w.log_lines().iter().any(|l| l.message == "ready"),
        "-w: ready without a backend:\n{}",
        w.log_text()
    );
    eprintln!("[libvirtd restart] -w: two attempts after {:?}", t_w.elapsed());

    // libvirtd back.
    lv.start();
    assert!(lv.ours.is_some());
    assert_eq!(
        domstate(&g.name),
        "running",
        "the guest survived libvirtd's restart"
    );
    let r = x.expect("status", &g.name, 0);
    assert!(
        r.elapsed < PROMPT,
        "status after libvirtd came back took {:?}",
        r.elapsed
    );
    assert_eq!(request_line(&a, "status", &g.name).get("outcome"), "on");
    assert!(a.alive() && a.pid() == a_pid, "the daemon was restarted");
    let r = x.expect("list", "", 0);
    assert_eq!(listed(&r), list_of(&guests, &["on"]), "{r:#?}");

    let t_ready = Instant::now();
    let ready = w.wait_log(RETRY + Duration::from_secs(5), |l| l.message == "ready");
    assert!(
        ready.is_some(),
        "-w: not ready with libvirtd back:\n{}",
        w.log_text()
    );
    eprintln!(
        "[libvirtd restart] -w: ready {:?} after libvirtd came back",
        t_ready.elapsed()
    );
    w.wait_bound(&waiting_setup.listeners, Duration::from_secs(5));
    y.expect("status", &g.name, 0);
    y.expect("status", &g.uuid, 0);
    assert!(w.alive(), "{}", w.log_text());
    let stale = w
        .log_lines()
        .into_iter()
        .find(|l| l.message.starts_with("dropped requests that arrived"))
        .unwrap_or_else(|| panic!("-w: the early request was not dropped:\n{}", w.log_text()));
    assert!(stale.get("dropped").parse::<u32>().unwrap() >= 1, "{}", stale.raw);
    let served: Vec<String> = w.requests().iter().map(|l| l.get("domain").to_owned()).collect();
    assert_eq!(served, [g.name.clone(), g.uuid.clone()], "{}", w.log_text());
    assert!(w.refusals().is_empty(), "{}", w.log_text());

    // A hung libvirtd (stopped with SIGSTOP, so it accepts nothing and
    // answers nothing): the request fails within the daemon's 10 s limit
    // for queries, with the reason, instead of hanging; after SIGCONT the
    // next request is served.
    let pid = lv.ours.expect("our libvirtd").to_string();
    let frozen = Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    assert!(frozen.success());
    let r = x.run("status", &g.name, &["-t", "30"]);
    let thawed = Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    assert!(thawed.success());
    assert_eq!(r.code, 1, "status with libvirtd hung: {r:#?}");
    assert!(
        r.elapsed < Duration::from_secs(20),
        "status with libvirtd hung took {:?}",
        r.elapsed
    );
    let l = request_line(&a, "status", &g.name);
    assert_eq!(l.get("outcome"), "backend-timeout", "{}", l.raw);
    eprintln!("[libvirtd hung] status failed after {:?}", r.elapsed);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = x.run("status", &g.name, &["-t", "10"]);
        if r.code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after SIGCONT: {r:#?}\n{}",
            a.log_text()
        );
        thread::sleep(Duration::from_millis(500));
    }

    x.report("libvirtd restart");
    y.report("libvirtd restart, -w");
    drop((a, w, plain, lab, lab2));
    let t = Instant::now();
    drop(lv);
    eprintln!(
        "[libvirtd restart] cleanup (undefine, stop) {:?}; whole test {:?}",
        t.elapsed(),
        whole.elapsed()
    );
}
