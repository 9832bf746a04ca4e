//! A network-namespace lab: a host namespace with a bridge and guest
//! namespaces with one veth each, removed on drop.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Host side of the bridge of a lab on subnet 0.
pub const HOST_V4: &str = "10.229.0.1";
/// Host side of the bridge of a lab on subnet 0, IPv6.
pub const HOST_V6: &str = "fdfe:229::1";

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

/// A host namespace `<prefix>h` with bridge `fvbr0` (10.229.S.1/24,
/// fdfe:229:S::1/64) and guest namespaces `<prefix>g1..N` with one veth
/// `eth0` each (10.229.S.(10+i), fdfe:229:S::(16+i) in hex), where S is the
/// lab's subnet number. Labs with different prefixes can exist side by side
/// (the subnet only keeps addresses in logs apart).
#[derive(Debug)]
pub struct Lab {
    /// The host namespace.
    pub host: String,
    /// The guest namespaces.
    pub guests: Vec<String>,
    subnet: u8,
    etc: Vec<PathBuf>,
}

impl Lab {
    /// Make the lab `prefix`h + `prefix`g1..N on subnet 0; a leftover one
    /// of the same names is removed first.
    pub fn new(prefix: &str, nguests: usize) -> Lab {
        Lab::with_subnet(prefix, nguests, 0)
    }

    /// Like [`Lab::new`], on subnet `subnet` (10.229.`subnet`.0/24).
    pub fn with_subnet(prefix: &str, nguests: usize, subnet: u8) -> Lab {
        assert!(nguests <= 200, "at most 200 guests");
        let host = format!("{prefix}h");
        let guests: Vec<String> = (1..=nguests).map(|i| format!("{prefix}g{i}")).collect();
        for ns in std::iter::once(&host).chain(&guests) {
            ip_quiet(&["netns", "delete", ns]);
        }
        // Constructed first, so that a failure below still tears down
        // whatever was made.
        let lab = Lab {
            host: host.clone(),
            guests: guests.clone(),
            subnet,
            etc: Vec::new(),
        };
        let host_v4 = format!("{}/24", lab.host_v4());
        let host_v6 = format!("{}/64", lab.host_v6());
        ip(&["netns", "add", &host]);
        ip(&["-n", &host, "link", "set", "lo", "up"]);
        ip(&["-n", &host, "link", "add", "fvbr0", "type", "bridge"]);
        // No IGMP snooping (no querier here): flood multicast to every port.
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
        ip(&["-n", &host, "addr", "add", &host_v4, "dev", "fvbr0"]);
        ip(&[
            "-n", &host, "-6", "addr", "add", &host_v6, "dev", "fvbr0", "nodad",
        ]);
        ip(&["-n", &host, "link", "set", "fvbr0", "up"]);
        for (i, g) in guests.iter().enumerate() {
            let n = i + 1;
            let v4 = format!("{}/24", lab.guest_v4(n));
            let v6 = format!("{}/64", lab.guest_v6(n));
            ip(&["netns", "add", g]);
            ip(&["-n", g, "link", "set", "lo", "up"]);
            let port = format!("vg{n}");
            ip(&[
                "-n", &host, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", g,
            ]);
            ip(&["-n", &host, "link", "set", &port, "master", "fvbr0", "up"]);
            ip(&["-n", g, "link", "set", "eth0", "up"]);
            ip(&["-n", g, "addr", "add", &v4, "dev", "eth0"]);
            ip(&["-n", g, "-6", "addr", "add", &v6, "dev", "eth0", "nodad"]);
            ip(&["-n", g, "route", "replace", "224.0.0.0/4", "dev", "eth0"]);
        }
        lab
    }

    /// The host's bridge address.
    pub fn host_v4(&self) -> String {
        Ipv4Addr::new(10, 229, self.subnet, 1).to_string()
    }

    /// The host's bridge address, IPv6.
    pub fn host_v6(&self) -> String {
        Ipv6Addr::new(0xfdfe, 0x229, u16::from(self.subnet), 0, 0, 0, 0, 1).to_string()
    }

    /// Guest `i`'s address (1-based).
    pub fn guest_v4(&self, i: usize) -> String {
        let last = u8::try_from(10 + i).expect("guest number");
        Ipv4Addr::new(10, 229, self.subnet, last).to_string()
    }

    /// Guest `i`'s IPv6 address (1-based).
    pub fn guest_v6(&self, i: usize) -> String {
        let last = u16::try_from(16 + i).expect("guest number");
        Ipv6Addr::new(0xfdfe, 0x229, u16::from(self.subnet), 0, 0, 0, 0, last).to_string()
    }

    /// Give guest `i` (1-based) a hosts file naming the host `name`
    /// (`ip netns exec` mounts /etc/netns/NS/hosts over /etc/hosts).
    pub fn hosts_entry(&mut self, i: usize, name: &str) {
        let dir = PathBuf::from("/etc/netns").join(&self.guests[i - 1]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hosts"),
            format!("127.0.0.1 localhost\n{} {name}\n", self.host_v4()),
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
