//! Stage two: the syntax tree turned into typed, validated settings.
//!
//! Every key documented by the classic man page `fence_virt.conf(5)` and read
//! by the classic daemon (spec §6.4) is understood. Lookups follow the classic
//! rules: names are case-insensitive; a key set twice in one block takes the
//! last value; of two blocks with the same name only the last one is used
//! (both with a warning); `ip` and `uuid` in a group, and `uri`, `uri1`, ... in
//! a backend, are lists. Unknown keys and blocks are errors naming
//! `FILE:LINE` with a did-you-mean suggestion, except unknown top-level
//! blocks, which are warnings. Bad values are errors. All errors of a file
//! are collected, not just the first.
//!
//! Deliberate differences from the classic daemon (each also reported as a
//! note when a file is affected):
//!
//! * tcp and vsock `auth` set the challenge-response hash, as documented; the
//!   classic daemon stores it into `hash` (spec §7.1 item 8).
//! * Backend URIs are `uri`, then every `uriN` in numeric order, including
//!   `uri0` and numbers after a gap, which the classic daemon never reads.
//! * A group without `uuid` and `ip` is skipped; the classic daemon stops
//!   reading groups there.
//!
//! # Several listeners (vmfence extension)
//!
//! The classic `fence_virtd { listener = "multicast"; }` names one listener.
//! vmfence also accepts a list separated by commas and/or white space,
//! `listener = "multicast, tcp";`, and runs every listener named, in that
//! order. Each is configured by its own block, `listeners/multicast` and
//! `listeners/tcp`; there is one block per listener kind, so a kind can be
//! listed at most once (listing it twice is an error). A file naming a
//! single listener means exactly what it means to the classic daemon.
//! Listener blocks that `listener` does not name are parsed and validated
//! like the others, but not run: classic files often carry unused blocks, so
//! this is a note, not an error. A file using a list is marked with a note,
//! because the classic daemon refuses it ("Could not find listener").

mod build;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use vmfence_proto::HashType;

use crate::diag::{ConfigErrors, Location, Warning};
use crate::syntax::Tree;

/// A whole validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from (as named to the loader).
    pub source: Arc<Path>,
    /// The `fence_virtd` block.
    pub daemon: DaemonSettings,
    /// The listeners to run, in the order `listener` names them; never empty.
    pub listeners: Vec<ListenerSettings>,
    /// The selected backend.
    pub backend: BackendSettings,
    /// The static permission map (spec §4.3), in file order. Empty means no
    /// restriction ("wide open").
    pub groups: Vec<Group>,
    /// Warnings and notes, in line order.
    pub warnings: Vec<Warning>,
}

impl Config {
    /// Validate a parsed tree. `file` names the source in messages.
    pub fn from_tree(tree: &Tree, file: &Path) -> Result<Config, ConfigErrors> {
        build::build(tree, Arc::from(file))
    }
}

/// Daemon-wide settings from the `fence_virtd` block (its `listener` and
/// `backend` are turned into [`Config::listeners`] and [`Config::backend`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// `module_path`, kept for writing the file back; vmfence ignores it.
    pub module_path: Option<String>,
    /// `debug` level (0 = off); the `-d` option overrides it.
    pub debug: u32,
    /// `foreground`: do not daemonize.
    pub foreground: bool,
    /// `wait_for_init` (or the legacy `wait_for_backend`): retry listener and
    /// backend start-up instead of exiting.
    pub wait_for_init: bool,
    /// The `fence_virtd` block.
    pub at: Location,
}

/// The listener kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListenerKind {
    /// UDP multicast request, TCP call-back (fence_xvm).
    Multicast,
    /// TCP (fence_virt -T).
    Tcp,
    /// AF_VSOCK (fence_virt -S).
    Vsock,
    /// Serial / VMChannel sockets of guests.
    Serial,
}

impl ListenerKind {
    /// All kinds, in documentation order.
    pub const ALL: [ListenerKind; 4] = [
        ListenerKind::Multicast,
        ListenerKind::Tcp,
        ListenerKind::Vsock,
        ListenerKind::Serial,
    ];

    /// The configuration word.
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Multicast => "multicast",
            ListenerKind::Tcp => "tcp",
            ListenerKind::Vsock => "vsock",
            ListenerKind::Serial => "serial",
        }
    }
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The word is not a listener name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown listener `{0}`")]
pub struct UnknownName(pub String);

impl FromStr for ListenerKind {
    type Err = UnknownName;

    /// Case-insensitive, like the classic plugin lookup.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ListenerKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// One listener's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerSettings {
    /// `listeners/multicast`.
    Multicast(MulticastSettings),
    /// `listeners/tcp`.
    Tcp(TcpSettings),
    /// `listeners/vsock`.
    Vsock(VsockSettings),
    /// `listeners/serial`.
    Serial(SerialSettings),
}

impl ListenerSettings {
    /// Which listener.
    pub fn kind(&self) -> ListenerKind {
        match self {
            ListenerSettings::Multicast(_) => ListenerKind::Multicast,
            ListenerSettings::Tcp(_) => ListenerKind::Tcp,
            ListenerSettings::Vsock(_) => ListenerKind::Vsock,
            ListenerSettings::Serial(_) => ListenerKind::Serial,
        }
    }

    /// Key and hash settings; `None` for serial, which has no authentication.
    pub fn auth(&self) -> Option<&AuthSettings> {
        match self {
            ListenerSettings::Multicast(m) => Some(&m.auth),
            ListenerSettings::Tcp(t) => Some(&t.auth),
            ListenerSettings::Vsock(v) => Some(&v.auth),
            ListenerSettings::Serial(_) => None,
        }
    }

    /// The listener block, or the `listener` key when the block is absent.
    pub fn at(&self) -> &Location {
        match self {
            ListenerSettings::Multicast(m) => &m.at,
            ListenerSettings::Tcp(t) => &t.at,
            ListenerSettings::Vsock(v) => &v.at,
            ListenerSettings::Serial(s) => &s.at,
        }
    }
}

/// Authentication settings shared by multicast, tcp and vsock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// The shared key.
    pub key_file: KeyFileSetting,
    /// Weakest request-signing hash accepted (`hash`, default sha256).
    pub hash: HashType,
    /// Challenge-response hash (`auth`, default sha256).
    pub auth: HashType,
}

impl AuthSettings {
    /// The key is read only when something uses it (spec §2.1).
    pub fn needs_key(&self) -> bool {
        self.hash != HashType::None || self.auth != HashType::None
    }
}

/// A `key_file` setting and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFileSetting {
    /// The path (default `/etc/cluster/fence_xvm.key`).
    pub path: PathBuf,
    /// The `key_file` line, or the listener block (or `listener` key) when
    /// the default is used.
    pub at: Location,
    /// True when `key_file` was written in the file.
    pub explicit: bool,
}

/// IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    /// `ipv4` (default).
    #[default]
    Ipv4,
    /// `ipv6`.
    Ipv6,
}

impl Family {
    /// The configuration word.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        }
    }

    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `listeners/multicast`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticastSettings {
    /// Key and hashes.
    pub auth: AuthSettings,
    /// `family`.
    pub family: Family,
    /// `address`: the group to join; a multicast address of `family`
    /// (default 225.0.0.12 or ff05::3:1).
    pub address: IpAddr,
    /// `port` (default 1229).
    pub port: u16,
    /// `interface` for the group join; `None` lets the kernel choose.
    pub interface: Option<String>,
    /// The block (or the `listener` key when there is no block).
    pub at: Location,
}

/// A TCP listen address: an IP literal or a host name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddress {
    /// A literal address.
    Ip(IpAddr),
    /// A host name, resolved when the listener starts.
    Host(String),
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddress::Ip(ip) => write!(f, "{ip}"),
            ListenAddress::Host(h) => f.write_str(h),
        }
    }
}

/// `listeners/tcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSettings {
    /// Key and hashes.
    pub auth: AuthSettings,
    /// `family`.
    pub family: Family,
    /// `address` (default 127.0.0.1 or ::1).
    pub address: ListenAddress,
    /// `port` (default 1229).
    pub port: u16,
    /// The block (or the `listener` key).
    pub at: Location,
}

/// `listeners/vsock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsockSettings {
    /// Key and hashes.
    pub auth: AuthSettings,
    /// `port` (default 1229); vsock ports are 32-bit.
    pub port: u32,
    /// The block (or the `listener` key).
    pub at: Location,
}

/// Which guest devices the serial listener uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SerialMode {
    /// Serial ports (default).
    #[default]
    Serial,
    /// VMChannel (guestfwd) channels.
    Vmchannel,
}

impl SerialMode {
    /// The configuration word.
    pub fn name(self) -> &'static str {
        match self {
            SerialMode::Serial => "serial",
            SerialMode::Vmchannel => "vmchannel",
        }
    }
}

impl fmt::Display for SerialMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `listeners/serial`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSettings {
    /// `uri` for domain events; `None` means libvirt's default.
    pub uri: Option<String>,
    /// `path`: only sockets directly in this directory are used.
    pub path: Option<PathBuf>,
    /// `mode`.
    pub mode: SerialMode,
    /// `unrestricted = "1"`: with no `groups`, every guest may act on every
    /// VM, as in the classic daemon. Without it (the default), a serial
    /// listener with no `groups` refuses every request: the transport has
    /// no key, so the groups are the only control there is.
    pub unrestricted: bool,
    /// The block (or the `listener` key).
    pub at: Location,
}

/// The backend kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// A single host's libvirt.
    Libvirt,
    /// corosync CPG + libvirt.
    Cpg,
}

impl BackendKind {
    /// All kinds.
    pub const ALL: [BackendKind; 2] = [BackendKind::Libvirt, BackendKind::Cpg];

    /// The configuration word.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Libvirt => "libvirt",
            BackendKind::Cpg => "cpg",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = UnknownName;

    /// Case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownName(s.to_owned()))
    }
}

/// The selected backend's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSettings {
    /// `backends/libvirt`.
    Libvirt(LibvirtSettings),
    /// `backends/cpg`.
    Cpg(CpgSettings),
}

impl BackendSettings {
    /// Which backend.
    pub fn kind(&self) -> BackendKind {
        match self {
            BackendSettings::Libvirt(_) => BackendKind::Libvirt,
            BackendSettings::Cpg(_) => BackendKind::Cpg,
        }
    }

    /// The libvirt URIs, in order (`uri`, then `uri0`, `uri1`, ...). Empty
    /// means libvirt's default connection.
    pub fn uris(&self) -> &[String] {
        match self {
            BackendSettings::Libvirt(l) => &l.uris,
            BackendSettings::Cpg(c) => &c.uris,
        }
    }
}

/// `backends/libvirt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibvirtSettings {
    /// Hypervisor URIs in order.
    pub uris: Vec<String>,
    /// The block (or the `backend` key when there is no block).
    pub at: Location,
}

/// How the cpg backend identifies VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NameMode {
    /// By name (the classic default).
    #[default]
    Name,
    /// By UUID (recommended).
    Uuid,
}

impl NameMode {
    /// The configuration word.
    pub fn name(self) -> &'static str {
        match self {
            NameMode::Name => "name",
            NameMode::Uuid => "uuid",
        }
    }
}

impl fmt::Display for NameMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `backends/cpg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpgSettings {
    /// Hypervisor URIs in order.
    pub uris: Vec<String>,
    /// `name_mode` (also read from the legacy `fence_virtd/name_mode`).
    pub name_mode: NameMode,
    /// The block (or the `backend` key when there is no block).
    pub at: Location,
}

/// One `groups/group` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `name`, else the block's own value (`group = "g1" { }`), if any.
    pub name: Option<String>,
    /// The name, or `unnamed-N` as the classic daemon calls it (N counts
    /// groups from the end of the file).
    pub label: String,
    /// `uuid` entries in file order; VM names are allowed too.
    pub uuids: Vec<String>,
    /// `ip` entries in file order (IP addresses, or CIDs for vsock).
    pub ips: Vec<String>,
    /// The block.
    pub at: Location,
}
