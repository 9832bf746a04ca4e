//! Test support: network-namespace labs, the classic C `fence_virtd` started
//! inside them, and running our agents as real processes in a guest
//! namespace.
//!
//! Safety rules kept here: multicast traffic only ever happens inside
//! namespaces made by the test (the agents are always run through
//! `ip netns exec`); every lab and daemon is torn down by `Drop`, also when
//! the test fails; only the processes started here are stopped, by pid.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The classic daemon.
pub const C_DAEMON: &str = "/usr/sbin/fence_virtd";
/// The libvirt test driver's only domain.
pub const TEST_VM: &str = "test";
/// Its UUID.
pub const TEST_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";
/// Host side of the lab bridge.
pub const HOST_V4: &str = "10.229.0.1";
/// Host side of the lab bridge, IPv6.
pub const HOST_V6: &str = "fdfe:229::1";

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Whether the lab tests can run here. Outside CI a missing prerequisite
/// skips the test with a printed reason; in CI it fails the test.
pub fn lab_prerequisites(what: &str) -> bool {
    let mut missing = Vec::new();
    if !nix_is_root() {
        missing.push("root (network namespaces)".to_owned());
    }
    if Command::new("ip")
        .arg("-V")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        missing.push("iproute2 (ip)".to_owned());
    }
    if what == "c-daemon" && !Path::new(C_DAEMON).exists() {
        missing.push(format!("{C_DAEMON} (Debian fence-virtd)"));
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("lab test needs {}", missing.join(", "));
    assert!(!in_ci(), "{msg} (CI is set: not skipping)");
    eprintln!("SKIPPED: {msg}");
    false
}

fn nix_is_root() -> bool {
    // No libc here: ask id(1).
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A host namespace with a bridge (10.229.0.1/24, fdfe:229::1/64) and guest
/// namespaces with one veth each (10.229.0.(10+i), fdfe:229::(16+i)).
pub struct Lab {
    pub host: String,
    pub guests: Vec<String>,
    etc: Vec<PathBuf>,
}

impl Lab {
    /// Make the lab `prefix`h + `prefix`g1..N; a leftover one of the same
    /// name is removed first.
    pub fn new(prefix: &str, nguests: usize) -> Lab {
        let host = format!("{prefix}h");
        let guests: Vec<String> = (1..=nguests).map(|i| format!("{prefix}g{i}")).collect();
        for ns in std::iter::once(&host).chain(&guests) {
            ip_quiet(&["netns", "delete", ns]);
        }
        let lab = Lab {
            host: host.clone(),
            guests: guests.clone(),
            etc: Vec::new(),
        };
        ip(&["netns", "add", &host]);
        ip(&["-n", &host, "link", "set", "lo", "up"]);
        ip(&["-n", &host, "link", "add", "fvbr0", "type", "bridge"]);
        ip(&[
            "-n",
            &host,
            "link",
            "set",
            "fvbr0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        ip(&[
            "-n",
            &host,
            "addr",
            "add",
            &format!("{HOST_V4}/24"),
            "dev",
            "fvbr0",
        ]);
        ip(&[
            "-n",
            &host,
            "-6",
            "addr",
            "add",
            &format!("{HOST_V6}/64"),
            "dev",
            "fvbr0",
            "nodad",
        ]);
        ip(&["-n", &host, "link", "set", "fvbr0", "up"]);
        for (i, g) in guests.iter().enumerate() {
            let n = i + 1;
            ip(&["netns", "add", g]);
            ip(&["-n", g, "link", "set", "lo", "up"]);
            let port = format!("vg{n}");
            ip(&[
                "-n", &host, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", g,
            ]);
            ip(&["-n", &host, "link", "set", &port, "master", "fvbr0", "up"]);
            ip(&["-n", g, "link", "set", "eth0", "up"]);
            ip(&[
                "-n",
                g,
                "addr",
                "add",
                &format!("10.229.0.{}/24", 10 + n),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                g,
                "-6",
                "addr",
                "add",
                &format!("fdfe:229::{:x}/64", 16 + n),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", g, "route", "replace", "224.0.0.0/4", "dev", "eth0"]);
        }
        lab
    }

    /// Give guest `i` (1-based) a hosts file naming the host `name`
    /// (`ip netns exec` mounts /etc/netns/NS/hosts over /etc/hosts).
    pub fn hosts_entry(&mut self, i: usize, name: &str) {
        let dir = PathBuf::from("/etc/netns").join(&self.guests[i - 1]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hosts"),
            format!("127.0.0.1 localhost\n{HOST_V4} {name}\n"),
        )
        .unwrap();
        self.etc.push(dir);
    }

    /// Guest `i`'s namespace (1-based).
    pub fn guest(&self, i: usize) -> &str {
        &self.guests[i - 1]
    }

    /// Set the bridge port of guest `i` forwarding (`true`) or disabled:
    /// a way to lose datagrams without touching the guest.
    pub fn port_forwarding(&self, i: usize, on: bool) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.host, "bridge", "link", "set", "dev"])
            .arg(format!("vg{i}"))
            .args(["state", if on { "3" } else { "0" }])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bridge: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.guests.iter().chain(std::iter::once(&self.host)) {
            ip_quiet(&["netns", "delete", ns]);
        }
        for d in &self.etc {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Which listener the classic daemon runs.
#[derive(Clone, Copy, Debug)]
pub enum Listener<'a> {
    /// Multicast on fvbr0.
    Multicast { ipv6: bool },
    /// TCP on this address.
    Tcp { address: &'a str },
}

/// A classic `fence_virtd -F` running in a namespace, on libvirt's test
/// driver. Killed (by pid) on drop.
pub struct CDaemon {
    child: Child,
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    log: PathBuf,
}

impl CDaemon {
    /// Start it in `ns` with a fresh 128-byte key; `extra` is appended to
    /// the configuration (e.g. a `groups` block).
    pub fn start(ns: &str, listener: Listener<'_>, extra: &str) -> CDaemon {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("fence_xvm.key");
        write_key(&key, 128);
        let conf = dir.path().join("fence_virt.conf");
        let key_s = key.display();
        let (name, body) = match listener {
            Listener::Multicast { ipv6 } => (
                "multicast",
                format!(
                    "key_file = \"{key_s}\"; hash = \"sha256\"; auth = \"sha256\"; family = \"{}\"; \
                     port = \"1229\"; interface = \"fvbr0\";",
                    if ipv6 { "ipv6" } else { "ipv4" }
                ),
            ),
            Listener::Tcp { address } => (
                "tcp",
                format!(
                    "key_file = \"{key_s}\"; hash = \"sha256\"; auth = \"sha256\"; family = \"{}\"; \
                     address = \"{address}\"; port = \"1229\";",
                    if address.contains(':') { "ipv6" } else { "ipv4" }
                ),
            ),
        };
        let text = format!(
            "fence_virtd {{\n listener = \"{name}\";\n backend = \"libvirt\";\n module_path = \
             \"/usr/lib/x86_64-linux-gnu/fence-virt\";\n}}\nlisteners {{\n {name} {{ {body} }}\n}}\n\
             backends {{\n libvirt {{ uri = \"test:///default\"; }}\n}}\n{extra}\n"
        );
        std::fs::write(&conf, text).unwrap();
        set_mode_600(&conf);
        let log = dir.path().join("fence_virtd.log");
        let logf = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args([
                "netns", "exec", ns, "stdbuf", "-oL", "-eL", C_DAEMON, "-F", "-d", "2", "-f",
            ])
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("fence_virtd.pid"))
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap();
        let mut d = CDaemon { child, dir, key, log };
        let (ss_flag, port) = match listener {
            Listener::Multicast { .. } => ("-Hlun", "sport = :1229"),
            Listener::Tcp { .. } => ("-Hltn", "sport = :1229"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("fence_virtd exited ({st}):\n{}", d.log_text());
            }
            let out = Command::new("ip")
                .args(["netns", "exec", ns, "ss", ss_flag, port])
                .output()
                .unwrap();
            if !out.stdout.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "fence_virtd not ready:\n{}",
                d.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
        d
    }

    /// The daemon's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for CDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write an `n`-byte random key, mode 0600.
pub fn write_key(path: &Path, n: usize) {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    std::fs::write(path, bytes).unwrap();
    set_mode_600(path);
}

fn set_mode_600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A finished agent run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    fn from(out: Output, elapsed: Duration) -> Run {
        Run {
            code: code_of(out.status),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed,
        }
    }
}

fn code_of(st: ExitStatus) -> i32 {
    st.code().unwrap_or(-1)
}

/// Run agent binary `bin` in namespace `ns` with `args` and optional
/// standard input. Killed if it outlives `limit`.
pub fn agent_in(ns: &str, bin: &str, args: &[&str], stdin: Option<&str>, limit: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, bin])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        use std::io::Write;
        let mut w = child.stdin.take().unwrap();
        w.write_all(text.as_bytes()).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    let waiter = thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(limit).is_err() {
        // Our own child, by pid.
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        let _ = waiter.join();
        panic!("{bin} {args:?} ran longer than {limit:?}");
    }
    let out = waiter.join().unwrap().unwrap();
    Run::from(out, start.elapsed())
}

/// Start an agent and hand back its stderr lines as they come.
pub fn spawn_agent(ns: &str, bin: &str, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, bin])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}
