//! The one option table of the agents.
//!
//! Every option of `fence_xvm` and `fence_virt` is declared exactly once here:
//! its standard-input key and the other keys accepted for it, its getopt
//! letter, its long command-line form, the value it takes, the default the
//! metadata advertises, its description, and which of the two programs has
//! it. The argv and stdin parsers, `-h`, `-o metadata` and `--manpage` are all
//! generated from [`OPTIONS`] by the framework (`vmfence-agentkit`), so they
//! cannot drift apart.

use std::fmt;

use vmfence_agentkit::docs::Docs;
use vmfence_agentkit::{ArgError, Program};

pub use vmfence_agentkit::{Arg, Content};

use crate::settings::Settings;

/// Which program is running. Both are built from this crate; they share the
/// table and differ in the options they accept and in their transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binary {
    /// `fence_xvm`: multicast request, TCP call back from the daemon.
    Xvm,
    /// `fence_virt`: TCP (`-T`), vsock (`-S`), serial or VMChannel.
    Virt,
}

impl Binary {
    /// The program name.
    pub fn name(self) -> &'static str {
        match self {
            Binary::Xvm => "fence_xvm",
            Binary::Virt => "fence_virt",
        }
    }

    /// The paragraph the metadata, help and man page open with.
    pub fn longdesc(self) -> &'static str {
        match self {
            Binary::Xvm => {
                "fence_xvm is a Power Fencing agent for virtual machines. It multicasts a signed \
                 request (IPv4 or IPv6) to the fence_virtd daemons of the virtualization hosts; \
                 the daemon that knows the VM calls the agent back over TCP, both sides prove \
                 they hold the shared key, and the daemon reports the outcome."
            }
            Binary::Virt => {
                "fence_virt is a Power Fencing agent for virtual machines. It sends a request \
                 to a fence_virtd daemon over TCP (ipaddr) or vsock, signed and followed by a \
                 challenge-response with the shared key, or without a key over a serial port \
                 (serial_device) or VMChannel (the default), where the daemon knows the VM by \
                 the line the request came on. The daemon reports the outcome."
            }
        }
    }
}

impl fmt::Display for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The note every classic agent prints about `reboot`.
pub const REBOOT_NOTE: &str = "NOTE: reboot-action does not power on nodes that are powered off.";

/// What an option sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Debug level.
    Debug,
    /// `auto`, `ipv4` or `ipv6`.
    IpFamily,
    /// Multicast group (or unicast daemon address).
    MulticastAddress,
    /// Serial device path.
    SerialDevice,
    /// Serial line parameters.
    SerialParams,
    /// VMChannel address.
    ChannelAddress,
    /// TCP daemon address; selects the TCP transport.
    IpAddr,
    /// vsock CID; selects the vsock transport.
    Vsock,
    /// Port of every transport.
    IpPort,
    /// Multicast retransmission period in tenths of a second.
    Retrans,
    /// Challenge-response digest.
    Auth,
    /// Request signature digest.
    Hash,
    /// Shared key path.
    KeyFile,
    /// The VM to act on (`plug`, `port`, `domain`).
    Target,
    /// Set the UUID flag of the request.
    UseUuid,
    /// The action.
    Action,
    /// Overall time limit in seconds.
    Timeout,
    /// Seconds to wait before a power action.
    Delay,
    /// Print help.
    Help,
    /// Print the version.
    Version,
    /// Print the man page.
    Manpage,
}

/// One option of the fence-virt agents' table.
pub type OptSpec = vmfence_agentkit::OptSpec<Binary>;

/// Options of `fence_xvm` only.
const XVM: &[Binary] = &[Binary::Xvm];
/// Options of `fence_virt` only.
const VIRT: &[Binary] = &[Binary::Virt];

const BASE: OptSpec = OptSpec {
    name: "",
    short: None,
    aliases: &[],
    field: Field::Help,
    arg: Arg::Required,
    placeholder: "",
    content: Content::String,
    default: None,
    description: "",
    only: &[],
    stdin: true,
    argv: true,
    required: false,
    deprecated: false,
    obsoletes: None,
};

/// Every option of both programs. Within one program, the order is the
/// order of the classic getopt string, which is also the metadata order.
pub const OPTIONS: &[OptSpec] = &[
    OptSpec {
        name: "debug",
        short: Some('d'),
        field: Field::Debug,
        arg: Arg::Flag,
        content: Content::Boolean,
        description: "Debug output on standard error: each -d raises the level; on standard input \
                      debug=N sets it",
        ..BASE
    },
    OptSpec {
        name: "ip_family",
        short: Some('i'),
        field: Field::IpFamily,
        placeholder: "family",
        default: Some("auto"),
        description: "IP family of the multicast request: auto (from the address, else IPv4), \
                      ipv4 or ipv6",
        only: XVM,
        ..BASE
    },
    OptSpec {
        name: "multicast_address",
        short: Some('a'),
        field: Field::MulticastAddress,
        placeholder: "address",
        description: "Multicast group the daemons listen on (default 225.0.0.12, or ff05::3:1 for \
                      IPv6); a unicast host address works too",
        only: XVM,
        ..BASE
    },
    OptSpec {
        name: "serial_device",
        short: Some('D'),
        field: Field::SerialDevice,
        placeholder: "device",
        // No default: without it the agent uses VMChannel (the classic
        // metadata advertised /dev/ttyS1, which was never used by default).
        default: None,
        description: "Serial device to the host, e.g. /dev/ttyS1; setting it selects the serial \
                      transport (unless ipaddr or vsock is set); without it VMChannel is used",
        only: VIRT,
        ..BASE
    },
    OptSpec {
        name: "serial_params",
        short: Some('P'),
        field: Field::SerialParams,
        placeholder: "params",
        default: Some("115200,8N1"),
        description: "Serial line settings SPEED[,XYZ]: speed 2400 to 115200, data bits 5-8, \
                      parity N/E/O, stop bits 1 or 2",
        only: VIRT,
        ..BASE
    },
    OptSpec {
        name: "channel_address",
        short: Some('A'),
        field: Field::ChannelAddress,
        placeholder: "address",
        default: Some("10.0.2.179"),
        description: "VMChannel address (the guestfwd address of the VM's fence channel), used \
                      when none of ipaddr, vsock and serial_device is set",
        only: VIRT,
        ..BASE
    },
    OptSpec {
        name: "ipport",
        short: Some('p'),
        field: Field::IpPort,
        placeholder: "port",
        default: Some("1229"),
        description: "Port of the daemon (multicast, TCP, vsock or VMChannel)",
        ..BASE
    },
    OptSpec {
        name: "retrans",
        short: Some('r'),
        field: Field::Retrans,
        placeholder: "tenths",
        default: Some("20"),
        description: "Longest pause between multicast retransmissions, in tenths of a second \
                      (the first ones come sooner)",
        only: XVM,
        ..BASE
    },
    OptSpec {
        name: "auth",
        short: Some('C'),
        field: Field::Auth,
        placeholder: "auth",
        default: Some("sha256"),
        description: "Challenge-response digest: none, sha1, sha256 or sha512; must equal the \
                      daemon's auth",
        ..BASE
    },
    OptSpec {
        name: "hash",
        short: Some('c'),
        field: Field::Hash,
        placeholder: "hash",
        default: Some("sha256"),
        description: "Request signature digest: none, sha1, sha256 or sha512; at least the \
                      daemon's hash",
        ..BASE
    },
    OptSpec {
        name: "key_file",
        short: Some('k'),
        field: Field::KeyFile,
        placeholder: "file",
        default: Some(vmfence_proto::DEFAULT_KEY_FILE),
        description: "Shared key file, the same bytes as the daemon's key_file",
        ..BASE
    },
    OptSpec {
        name: "plug",
        short: Some('n'),
        field: Field::Target,
        placeholder: "domain",
        description: "Name or UUID of the virtual machine to act on",
        required: true,
        obsoletes: Some("port"),
        ..BASE
    },
    OptSpec {
        name: "port",
        short: Some('H'),
        field: Field::Target,
        placeholder: "domain",
        description: "Name or UUID of the virtual machine to act on (old name of plug)",
        required: true,
        deprecated: true,
        ..BASE
    },
    OptSpec {
        name: "use_uuid",
        short: Some('u'),
        field: Field::UseUuid,
        arg: Arg::Flag,
        default: Some("0"),
        description: "Mark the target as a UUID in the request; daemons decide by its form \
                      anyway, so this is only for old fence_xvmd",
        only: XVM,
        ..BASE
    },
    OptSpec {
        name: "action",
        short: Some('o'),
        aliases: &["option"],
        field: Field::Action,
        placeholder: "action",
        default: Some("reboot"),
        description: "Action: null, off, on, reboot, status, list, list-status, monitor, \
                      validate-all or metadata",
        ..BASE
    },
    OptSpec {
        name: "timeout",
        short: Some('t'),
        field: Field::Timeout,
        placeholder: "seconds",
        default: Some("30"),
        description: "Give up after this many seconds",
        ..BASE
    },
    OptSpec {
        name: "ipaddr",
        short: Some('T'),
        field: Field::IpAddr,
        placeholder: "address",
        default: Some("127.0.0.1"),
        description: "Address or host name of a daemon with a TCP listener; setting it selects \
                      the TCP transport",
        only: VIRT,
        ..BASE
    },
    OptSpec {
        name: "vsock",
        short: Some('S'),
        field: Field::Vsock,
        arg: Arg::Optional,
        placeholder: "cid",
        content: Content::Integer,
        default: Some("2"),
        description: "vsock CID of the daemon (2, the host, when bare; on the command line \
                      attached: -S3); setting it selects the vsock transport, even with ipaddr",
        only: VIRT,
        ..BASE
    },
    OptSpec {
        name: "delay",
        short: Some('w'),
        field: Field::Delay,
        placeholder: "seconds",
        default: Some("0"),
        description: "Wait this many seconds before null, on, off and reboot",
        ..BASE
    },
    OptSpec {
        name: "domain",
        field: Field::Target,
        placeholder: "domain",
        description: "Name or UUID of the virtual machine to act on (deprecated; use plug)",
        deprecated: true,
        argv: false,
        ..BASE
    },
    OptSpec {
        name: "help",
        short: Some('h'),
        aliases: &[],
        field: Field::Help,
        arg: Arg::Flag,
        description: "Print this help and exit (-? too)",
        stdin: false,
        ..BASE
    },
    OptSpec {
        name: "version",
        short: Some('V'),
        field: Field::Version,
        arg: Arg::Flag,
        description: "Print the version and exit",
        stdin: false,
        ..BASE
    },
    OptSpec {
        name: "manpage",
        field: Field::Manpage,
        arg: Arg::Flag,
        description: "Print the manual page (troff) and exit",
        stdin: false,
        ..BASE
    },
];

/// Standard-input keys that Pacemaker or old configurations pass and that
/// are accepted and ignored without a note.
pub const IGNORED_KEYS: &[&str] = &["nodename", "agent", "self"];

impl Program for Binary {
    type Field = Field;
    type Settings = Settings;

    fn name(self) -> &'static str {
        Binary::name(self)
    }

    fn table() -> &'static [OptSpec] {
        OPTIONS
    }

    fn ignored_keys(self) -> &'static [&'static str] {
        IGNORED_KEYS
    }

    fn defaults(self) -> Settings {
        Settings::new(self)
    }

    fn apply(s: &mut Settings, opt: &OptSpec, value: Option<&str>, from_stdin: bool) -> Result<(), ArgError> {
        s.apply(opt, value, from_stdin)
    }

    fn docs(self) -> Docs {
        crate::docs::docs(self)
    }
}

/// The options of `bin`, in table order.
pub fn options_for(bin: Binary) -> impl Iterator<Item = &'static OptSpec> {
    bin.options()
}

/// The option of `bin` with getopt letter `c` (`?` is help).
pub fn by_short(bin: Binary, c: char) -> Option<&'static OptSpec> {
    bin.by_short(c)
}

/// The option of `bin` with long name `name` (without dashes; `_` or `-`).
pub fn by_long(bin: Binary, name: &str) -> Option<&'static OptSpec> {
    bin.by_long(name)
}

/// The option of `bin` that standard-input key `key` names.
pub fn by_key(bin: Binary, key: &str) -> Option<&'static OptSpec> {
    bin.by_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_names_and_keys_are_unique_per_binary() {
        for bin in [Binary::Xvm, Binary::Virt] {
            let opts: Vec<_> = options_for(bin).collect();
            for (i, a) in opts.iter().enumerate() {
                for b in &opts[i + 1..] {
                    assert_ne!(a.name, b.name);
                    if a.short.is_some() {
                        assert_ne!(a.short, b.short, "{} / {}", a.name, b.name);
                    }
                    for k in std::iter::once(&a.name).chain(a.aliases) {
                        assert!(!b.matches_key(k), "{k} is ambiguous");
                    }
                }
            }
        }
    }

    #[test]
    fn getopt_letters_match_the_classic_strings() {
        // The classic getopt strings minus -M (an error there) and -?/-h.
        let xvm: String = options_for(Binary::Xvm).filter_map(|o| o.short).collect();
        let virt: String = options_for(Binary::Virt).filter_map(|o| o.short).collect();
        let mut x: Vec<char> = xvm.chars().collect();
        let mut v: Vec<char> = virt.chars().collect();
        x.sort_unstable();
        v.sort_unstable();
        let mut cx: Vec<char> = "diaprCcknHuotVwh".chars().collect();
        let mut cv: Vec<char> = "dDPApnHotVTSCckwh".chars().collect();
        cx.sort_unstable();
        cv.sort_unstable();
        assert_eq!(x, cx);
        assert_eq!(v, cv);
    }

    #[test]
    fn keys_are_case_insensitive_and_dash_tolerant() {
        assert_eq!(by_key(Binary::Xvm, "KEY-FILE").map(|o| o.name), Some("key_file"));
        assert_eq!(by_key(Binary::Xvm, "option").map(|o| o.name), Some("action"));
        assert!(by_key(Binary::Xvm, "ipaddr").is_none());
        assert!(by_key(Binary::Virt, "ipaddr").is_some());
        assert!(by_key(Binary::Xvm, "help").is_none());
        assert_eq!(by_short(Binary::Xvm, '?').map(|o| o.name), Some("help"));
        assert!(by_short(Binary::Xvm, 'T').is_none());
        assert_eq!(by_long(Binary::Xvm, "key-file").map(|o| o.name), Some("key_file"));
        assert!(by_long(Binary::Xvm, "domain").is_none());
    }
}
