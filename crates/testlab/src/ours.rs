//! Our `fence_virtd -F` in a namespace: configuration, key and libvirt
//! test-driver node written into a temporary directory; ready once its
//! sockets are bound; killed by pid on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::log::{strip_ansi, LogLine};
use crate::node::{node_xml, TestDomain};
use crate::run::{set_mode_600, write_key};

/// A listener of our daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OurListener {
    /// Multicast on the lab bridge `fvbr0`, port 1229.
    Multicast {
        /// `family = "ipv6"` (group `ff05::3:1`) instead of IPv4.
        ipv6: bool,
    },
    /// TCP on `address`, port 1229 (IPv6 when the address has a `:`).
    Tcp {
        /// The address to listen on.
        address: String,
    },
    /// Serial ports (or VMChannels) of the running domains whose sockets
    /// are directly in `path`.
    Serial {
        /// The socket directory.
        path: PathBuf,
        /// `mode = "vmchannel"` instead of `serial`.
        vmchannel: bool,
        /// `unrestricted = "1"`.
        unrestricted: bool,
    },
}

impl OurListener {
    fn kind(&self) -> &'static str {
        match self {
            OurListener::Multicast { .. } => "multicast",
            OurListener::Tcp { .. } => "tcp",
            OurListener::Serial { .. } => "serial",
        }
    }
}

/// One `groups` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSpec {
    /// `name`.
    pub name: String,
    /// `ip` entries.
    pub ips: Vec<String>,
    /// `uuid` entries (UUIDs or names).
    pub uuids: Vec<String>,
}

/// What to run: listeners, hashes, domains, groups.
#[derive(Debug, Clone)]
pub struct DaemonSetup {
    /// Listeners, in order; `listener = "a,b"` when there are several.
    pub listeners: Vec<OurListener>,
    /// Weakest request signature accepted.
    pub hash: String,
    /// Challenge-response digest.
    pub auth: String,
    /// Domains of a test node (`test:///DIR/node.xml`); `None` runs on
    /// `test:///default` (one domain, `test`).
    pub domains: Option<Vec<TestDomain>>,
    /// The `groups` section (none: wide open).
    pub groups: Vec<GroupSpec>,
    /// `-d` level.
    pub debug: u32,
    /// A libvirt URI (e.g. `qemu:///system`) used instead of a test node
    /// or `test:///default`; `domains` is then ignored.
    pub uri: Option<String>,
    /// More command-line arguments (e.g. `-w`), after `-F`.
    pub args: Vec<String>,
}

impl Default for DaemonSetup {
    fn default() -> Self {
        DaemonSetup {
            listeners: vec![OurListener::Multicast { ipv6: false }],
            hash: "sha256".into(),
            auth: "sha256".into(),
            domains: None,
            groups: Vec::new(),
            debug: 0,
            uri: None,
            args: Vec::new(),
        }
    }
}

impl DaemonSetup {
    /// Multicast (IPv4) on a test node with these domains.
    pub fn with_domains(domains: Vec<TestDomain>) -> DaemonSetup {
        DaemonSetup {
            domains: Some(domains),
            ..DaemonSetup::default()
        }
    }

    /// The configuration file text for key `key` and libvirt URI `uri`.
    pub fn config_text(&self, key: &Path, uri: &str) -> String {
        let key = key.display();
        let names: Vec<&str> = self.listeners.iter().map(OurListener::kind).collect();
        let mut t = format!(
            "# written by vmfence-testlab\nfence_virtd {{\n\tlistener = \"{}\";\n\tbackend = \"libvirt\";\n}}\n\nlisteners {{\n",
            names.join(",")
        );
        for l in &self.listeners {
            let auth = format!(
                "key_file = \"{key}\";\n\t\thash = \"{}\";\n\t\tauth = \"{}\";\n\t\tport = \"1229\";",
                self.hash, self.auth
            );
            match l {
                OurListener::Multicast { ipv6 } => t.push_str(&format!(
                    "\tmulticast {{\n\t\t{auth}\n\t\tfamily = \"{}\";\n\t\tinterface = \"fvbr0\";\n\t}}\n",
                    if *ipv6 { "ipv6" } else { "ipv4" }
                )),
                OurListener::Tcp { address } => t.push_str(&format!(
                    "\ttcp {{\n\t\t{auth}\n\t\tfamily = \"{}\";\n\t\taddress = \"{address}\";\n\t}}\n",
                    if address.contains(':') { "ipv6" } else { "ipv4" }
                )),
                OurListener::Serial {
                    path,
                    vmchannel,
                    unrestricted,
                } => t.push_str(&format!(
                    "\tserial {{\n\t\tpath = \"{}\";\n\t\tmode = \"{}\";\n\t\tunrestricted = \"{}\";\n\t}}\n",
                    path.display(),
                    if *vmchannel { "vmchannel" } else { "serial" },
                    u8::from(*unrestricted)
                )),
            }
        }
        t.push_str(&format!(
            "}}\n\nbackends {{\n\tlibvirt {{\n\t\turi = \"{uri}\";\n\t}}\n}}\n"
        ));
        if !self.groups.is_empty() {
            t.push_str("\ngroups {\n");
            for g in &self.groups {
                t.push_str("\tgroup {\n");
                if !g.name.is_empty() {
                    t.push_str(&format!("\t\tname = \"{}\";\n", g.name));
                }
                for ip in &g.ips {
                    t.push_str(&format!("\t\tip = \"{ip}\";\n"));
                }
                for u in &g.uuids {
                    t.push_str(&format!("\t\tuuid = \"{u}\";\n"));
                }
                t.push_str("\t}\n");
            }
            t.push_str("}\n");
        }
        t
    }
}

/// Our `fence_virtd -F -f CONF -p PIDFILE` running in a namespace.
/// Killed (SIGKILL, by pid) on drop unless it already stopped.
#[derive(Debug)]
pub struct OurDaemon {
    child: Child,
    /// The namespace it runs in.
    pub ns: String,
    /// Its working directory.
    pub dir: tempfile::TempDir,
    /// The key (128 random bytes).
    pub key: PathBuf,
    /// The configuration file.
    pub conf: PathBuf,
    /// The pid file it was told to write.
    pub pid_file: PathBuf,
    /// The libvirt URI in its configuration.
    pub uri: String,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl OurDaemon {
    /// Start binary `bin` in namespace `ns` with `setup`; returns once
    /// every listener's socket is bound (panics with the log if the daemon
    /// exits or is not ready within 15 s).
    pub fn start(bin: &Path, ns: &str, setup: &DaemonSetup) -> OurDaemon {
        let mut d = OurDaemon::spawn(bin, ns, setup);
        d.wait_bound(&setup.listeners, Duration::from_secs(15));
        d
    }

    /// Like [`OurDaemon::start`], but returns at once, without waiting for
    /// anything: for a daemon that is expected to exit (see
    /// [`OurDaemon::wait_exit`]).
    pub fn spawn(bin: &Path, ns: &str, setup: &DaemonSetup) -> OurDaemon {
        let dir = tempfile::Builder::new().prefix("vmfence-fvd-").tempdir().unwrap();
        let key = dir.path().join("fence_xvm.key");
        write_key(&key, 128);
        let uri = match (&setup.uri, &setup.domains) {
            (Some(uri), _) => uri.clone(),
            (None, Some(domains)) => {
                let node = dir.path().join("node.xml");
                std::fs::write(&node, node_xml(domains)).unwrap();
                format!("test://{}", node.display())
            }
            (None, None) => "test:///default".to_owned(),
        };
        let conf = dir.path().join("fence_virt.conf");
        std::fs::write(&conf, setup.config_text(&key, &uri)).unwrap();
        set_mode_600(&conf);
        let pid_file = dir.path().join("fence_virtd.pid");
        let log = dir.path().join("fence_virtd.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(bin).arg("-F");
        if setup.debug > 0 {
            cmd.args(["-d", &setup.debug.to_string()]);
        }
        cmd.args(&setup.args);
        // `ip netns exec` execs the command: the child's pid is the daemon's.
        let child = cmd
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap();
        OurDaemon {
            child,
            ns: ns.to_owned(),
            dir,
            key,
            conf,
            pid_file,
            uri,
            log,
            exited: None,
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until every one of `listeners` has a socket bound by this
    /// process (`ss -p` in its namespace).
    pub fn wait_bound(&mut self, listeners: &[OurListener], limit: Duration) {
        let deadline = Instant::now() + limit;
        let pid = format!("pid={},", self.pid());
        loop {
            if let Some(st) = self.try_exit() {
                panic!("fence_virtd exited ({st}):\n{}", self.log_text());
            }
            let bound = |flags: &str| {
                let out = Command::new("ip")
                    .args(["netns", "exec", &self.ns, "ss", flags, "sport = :1229"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).contains(&pid)
            };
            let all = listeners.iter().all(|l| match l {
                OurListener::Multicast { .. } => bound("-Hlunp"),
                OurListener::Tcp { .. } => bound("-Hltnp"),
                // Binds nothing; ready once it has started looking.
                OurListener::Serial { .. } => self.log_text().contains("serving "),
            });
            if all {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "fence_virtd not ready after {limit:?}:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Replace the configuration (for a reload).
    pub fn write_config(&self, setup: &DaemonSetup) {
        std::fs::write(&self.conf, setup.config_text(&self.key, &self.uri)).unwrap();
    }

    /// Send a signal (`HUP`, `TERM`, ...) to the daemon, by pid.
    pub fn signal(&self, name: &str) {
        let st = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(st.success(), "kill -{name} {}", self.pid());
    }

    /// Whether it still runs.
    pub fn alive(&mut self) -> bool {
        self.try_exit().is_none()
    }

    fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().unwrap();
        }
        self.exited
    }

    /// Wait for it to exit, at most `limit`; `None` if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_exit() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its log (standard output and error) so far, ANSI escapes removed.
    pub fn log_text(&self) -> String {
        strip_ansi(&self.log_raw())
    }

    /// Its log exactly as written.
    pub fn log_raw(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its log as parsed `tracing` events.
    pub fn log_lines(&self) -> Vec<LogLine> {
        self.log_text().lines().filter_map(LogLine::parse).collect()
    }

    /// Lines of executed requests (message `request`).
    pub fn requests(&self) -> Vec<LogLine> {
        self.log_lines()
            .into_iter()
            .filter(|l| l.message == "request")
            .collect()
    }

    /// Lines of refused requests (message `request refused`).
    pub fn refusals(&self) -> Vec<LogLine> {
        self.log_lines()
            .into_iter()
            .filter(|l| l.message == "request refused")
            .collect()
    }

    /// Wait until a log line satisfies `pred`, at most `limit`.
    pub fn wait_log(&self, limit: Duration, pred: impl Fn(&LogLine) -> bool) -> Option<LogLine> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(l) = self.log_lines().into_iter().find(|l| pred(l)) {
                return Some(l);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for OurDaemon {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
