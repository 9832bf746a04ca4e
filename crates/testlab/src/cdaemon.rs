//! The classic C `fence_virtd -F` in a namespace, on the libvirt test driver.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::prereq::C_DAEMON;
use crate::run::{set_mode_600, write_key};

/// Which listener the classic daemon runs.
#[derive(Clone, Copy, Debug)]
pub enum Listener<'a> {
    /// Multicast on fvbr0.
    Multicast {
        /// IPv6 (`ff05::3:1`) instead of IPv4 (`225.0.0.12`).
        ipv6: bool,
    },
    /// TCP on this address.
    Tcp {
        /// The address to listen on.
        address: &'a str,
    },
}

/// A classic `fence_virtd -F` running in a namespace, on libvirt's
/// `test:///default`. Killed (by pid) on drop.
#[derive(Debug)]
pub struct CDaemon {
    child: Child,
    /// Its working directory (configuration, key, log).
    pub dir: tempfile::TempDir,
    /// The key it uses.
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
