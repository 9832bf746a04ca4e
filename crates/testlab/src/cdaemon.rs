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
    /// The serial listener: it connects to the Unix sockets (directly in
    /// `path`) of the running domains of libvirt `uri`, which is also the
    /// backend's URI. Ready once it has registered a domain's socket.
    Serial {
        /// libvirt URI, e.g. `test:///DIR/node.xml`.
        uri: &'a str,
        /// The socket directory.
        path: &'a str,
        /// `mode = "vmchannel"` (`<channel>` devices) instead of
        /// `"serial"` (`<serial>` devices).
        vmchannel: bool,
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
        let mut backend_uri = "test:///default";
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
            Listener::Serial { uri, path, vmchannel } => {
                backend_uri = uri;
                (
                    "serial",
                    // key_file: unused by this listener, but the daemon
                    // refuses to start when it does not exist.
                    format!(
                        "key_file = \"{key_s}\"; uri = \"{uri}\"; path = \"{path}\"; mode = \"{}\";",
                        if vmchannel { "vmchannel" } else { "serial" }
                    ),
                )
            }
        };
        let text = format!(
            "fence_virtd {{\n listener = \"{name}\";\n backend = \"libvirt\";\n module_path = \
             \"/usr/lib/x86_64-linux-gnu/fence-virt\";\n}}\nlisteners {{\n {name} {{ {body} }}\n}}\n\
             backends {{\n libvirt {{ uri = \"{backend_uri}\"; }}\n}}\n{extra}\n"
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
            Listener::Serial { .. } => ("", ""),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("fence_virtd exited ({st}):\n{}", d.log_text());
            }
            let ready = if ss_flag.is_empty() {
                // "Registered <uuid> on <fd>": connected to a domain socket.
                d.log_text().contains("Registered ")
            } else {
                let out = Command::new("ip")
                    .args(["netns", "exec", ns, "ss", ss_flag, port])
                    .output()
                    .unwrap();
                !out.stdout.is_empty()
            };
            if ready {
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
