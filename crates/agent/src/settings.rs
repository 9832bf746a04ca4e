//! The typed settings an agent runs with, and how one option value is
//! applied to them.
//!
//! The parsers in [`crate::parse`] find *which* option a word or a line
//! names; [`Settings::apply`] turns its text into a typed value, and
//! [`Settings::check`] makes the cross-option checks (target present,
//! address and family agree). [`Settings::transport`] picks `fence_virt`'s
//! transport the way the classic agent does. Nothing here reads the process
//! environment.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use vmfence_agentkit::value::non_empty;
pub use vmfence_agentkit::value::{parse_bool, parse_number};
pub use vmfence_agentkit::ArgError;
use vmfence_proto::{Domain, HashType, Op};

use crate::table::{Binary, Field, OptSpec};

/// What the agent is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `null`: a request that does nothing (the daemon answers failure).
    Null,
    /// `on`.
    On,
    /// `off`.
    Off,
    /// `reboot` (the default).
    Reboot,
    /// `status`: exit 0 when on, 2 when off.
    Status,
    /// `monitor`: is the daemon reachable?
    Monitor,
    /// `list`.
    List,
    /// `list-status`.
    ListStatus,
    /// `metadata` (also `meta-data`).
    Metadata,
    /// `validate-all`.
    ValidateAll,
}

impl Action {
    /// Every action, in the order the metadata lists them.
    pub const ALL: [Action; 10] = [
        Action::Null,
        Action::On,
        Action::Off,
        Action::Reboot,
        Action::Metadata,
        Action::Status,
        Action::Monitor,
        Action::List,
        Action::ListStatus,
        Action::ValidateAll,
    ];

    /// The action's word.
    pub fn name(self) -> &'static str {
        match self {
            Action::Null => "null",
            Action::On => "on",
            Action::Off => "off",
            Action::Reboot => "reboot",
            Action::Status => "status",
            Action::Monitor => "monitor",
            Action::List => "list",
            Action::ListStatus => "list-status",
            Action::Metadata => "metadata",
            Action::ValidateAll => "validate-all",
        }
    }

    /// Parse an action word, case-insensitively; `meta-data` is `metadata`.
    pub fn parse(word: &str) -> Option<Action> {
        if word.eq_ignore_ascii_case("meta-data") {
            return Some(Action::Metadata);
        }
        Action::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(word))
    }

    /// The request sent for this action; `None` for local actions.
    pub fn op(self) -> Option<Op> {
        match self {
            Action::Null => Some(Op::Null),
            Action::On => Some(Op::On),
            Action::Off => Some(Op::Off),
            Action::Reboot => Some(Op::Reboot),
            Action::Status => Some(Op::Status),
            Action::Monitor => Some(Op::DevStatus),
            Action::List | Action::ListStatus => Some(Op::HostList),
            Action::Metadata | Action::ValidateAll => None,
        }
    }

    /// Whether the action acts on one VM and so needs a target.
    pub fn needs_target(self) -> bool {
        matches!(
            self,
            Action::Null | Action::On | Action::Off | Action::Reboot | Action::Status
        )
    }

    /// Whether `delay` applies (as with the classic agent: power actions and null).
    pub fn is_delayed(self) -> bool {
        matches!(self, Action::Null | Action::On | Action::Off | Action::Reboot)
    }
}

/// The `ip_family` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// From the multicast address; IPv4 without one.
    Auto,
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Which transport `fence_virt` uses, decided by the options present
/// (see [`Settings::transport`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `fence_xvm`: multicast (or unicast UDP) with a TCP call back.
    Multicast {
        /// Where the request goes.
        group: IpAddr,
    },
    /// `-T`: TCP to this host (literal or name).
    Tcp(String),
    /// `-S`: vsock to this CID.
    Vsock(u32),
    /// `-D`: a serial device.
    Serial {
        /// The device path.
        device: String,
        /// Line settings (`-P`).
        params: SerialParams,
    },
    /// The default of `fence_virt`: VMChannel, TCP to this address (QEMU's
    /// guest forwarding), speaking the serial protocol.
    VmChannel(String),
}

impl Transport {
    /// Whether the transport signs requests and runs the challenge-response
    /// (and so needs the key). Serial and VMChannel carry no key at all: the
    /// daemon knows the requester by the socket the bytes came in on.
    pub fn uses_key(&self) -> bool {
        !matches!(self, Transport::Serial { .. } | Transport::VmChannel(_))
    }
}

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// `N`.
    None,
    /// `E`.
    Even,
    /// `O`.
    Odd,
}

/// Serial line settings, `-P SPEED[,XYZ]` (e.g. `115200,8N1`): the speed
/// and, in any order, the data bits (5-8), the parity (`N`, `E` or `O`, any
/// case) and the stop bits (1 or 2). Without the `,XYZ` part: 8N1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialParams {
    /// Bits per second, one of [`SerialParams::SPEEDS`].
    pub speed: u32,
    /// 5, 6, 7 or 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
}

impl SerialParams {
    /// The default, as the classic agent and its metadata have it.
    pub const DEFAULT: SerialParams = SerialParams {
        speed: 115_200,
        data_bits: 8,
        parity: Parity::None,
        stop_bits: 1,
    };

    /// The speeds accepted: the classic agent's (2400, 9600 … 115200) plus
    /// 4800, the one standard rate in that range it left out.
    pub const SPEEDS: [u32; 7] = [2400, 4800, 9600, 19_200, 38_400, 57_600, 115_200];

    /// Parse `SPEED[,XYZ]`; the error says what is expected.
    pub fn parse(text: &str) -> Result<SerialParams, String> {
        let (speed, bits) = match text.split_once(',') {
            Some((s, b)) => (s.trim(), Some(b.trim())),
            None => (text.trim(), None),
        };
        let speed = speed
            .parse::<u32>()
            .ok()
            .filter(|s| SerialParams::SPEEDS.contains(s))
            .ok_or_else(|| {
                let list: Vec<String> = SerialParams::SPEEDS.iter().map(u32::to_string).collect();
                format!("expected SPEED[,XYZ] with SPEED one of {}", list.join(", "))
            })?;
        let mut p = SerialParams {
            speed,
            ..SerialParams::DEFAULT
        };
        let Some(bits) = bits else { return Ok(p) };
        let what = "after the comma expected three characters, in any order: data bits 5-8,                     parity N, E or O, stop bits 1 or 2 (e.g. 8N1)";
        if bits.chars().count() != 3 {
            return Err(what.to_owned());
        }
        let (mut data, mut parity, mut stop) = (None, None, None);
        for c in bits.chars() {
            let slot_was_empty = match c {
                '5'..='8' => data.replace(c as u8 - b'0').is_none(),
                'n' | 'N' => parity.replace(Parity::None).is_none(),
                'e' | 'E' => parity.replace(Parity::Even).is_none(),
                'o' | 'O' => parity.replace(Parity::Odd).is_none(),
                '1' | '2' => stop.replace(c as u8 - b'0').is_none(),
                _ => false,
            };
            if !slot_was_empty {
                return Err(what.to_owned());
            }
        }
        match (data, parity, stop) {
            (Some(d), Some(par), Some(st)) => {
                p.data_bits = d;
                p.parity = par;
                p.stop_bits = st;
                Ok(p)
            }
            _ => Err(what.to_owned()),
        }
    }
}

impl Default for SerialParams {
    fn default() -> Self {
        SerialParams::DEFAULT
    }
}

impl fmt::Display for SerialParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parity = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        write!(f, "{},{}{parity}{}", self.speed, self.data_bits, self.stop_bits)
    }
}

/// Everything an agent run is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Which program this is.
    pub binary: Binary,
    /// The action (default `reboot`).
    pub action: Action,
    /// The target VM, checked to fit the wire field.
    pub target: Option<Domain>,
    /// Debug level (0 = quiet).
    pub debug: u32,
    /// `ip_family`.
    pub family: Family,
    /// `multicast_address`, when given.
    pub multicast_address: Option<IpAddr>,
    /// Port of the daemon.
    pub port: u16,
    /// Longest pause between retransmissions.
    pub retrans: Duration,
    /// Challenge-response digest.
    pub auth: HashType,
    /// Request signature digest.
    pub hash: HashType,
    /// Shared key file.
    pub key_file: PathBuf,
    /// Set the UUID flag.
    pub use_uuid: bool,
    /// Overall time limit.
    pub timeout: Duration,
    /// Pause before power actions.
    pub delay: Duration,
    /// `-T`.
    pub ipaddr: Option<String>,
    /// `-S`.
    pub vsock: Option<u32>,
    /// `-D`.
    pub serial_device: Option<String>,
    /// `-P`.
    pub serial_params: SerialParams,
    /// `-A`.
    pub channel_address: String,
    /// `-h` was given.
    pub help: bool,
    /// `-V` was given.
    pub version: bool,
    /// `--manpage` was given.
    pub manpage: bool,
}

impl Settings {
    /// The defaults of `binary`.
    pub fn new(binary: Binary) -> Settings {
        Settings {
            binary,
            action: Action::Reboot,
            target: None,
            debug: 0,
            family: Family::Auto,
            multicast_address: None,
            port: vmfence_proto::DEFAULT_PORT,
            retrans: Duration::from_secs(2),
            auth: HashType::Sha256,
            hash: HashType::Sha256,
            key_file: PathBuf::from(vmfence_proto::DEFAULT_KEY_FILE),
            use_uuid: false,
            timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            ipaddr: None,
            vsock: None,
            serial_device: None,
            serial_params: SerialParams::DEFAULT,
            channel_address: "10.0.2.179".to_owned(),
            help: false,
            version: false,
            manpage: false,
        }
    }

    /// Apply one option occurrence. `value` is `None` for a bare flag (or a
    /// bare stdin key); `from_stdin` selects the stdin meaning of flags
    /// (`debug=N` sets, `-d` adds one). Later calls override earlier ones.
    pub fn apply(&mut self, opt: &OptSpec, value: Option<&str>, from_stdin: bool) -> Result<(), ArgError> {
        let bad = |v: &str, reason: &str| ArgError::InvalidValue {
            option: opt.display_name(),
            value: v.to_owned(),
            reason: reason.to_owned(),
        };
        let need = || value.ok_or_else(|| ArgError::MissingValue(opt.display_name()));
        match opt.field {
            Field::Debug => match value {
                None => self.debug = self.debug.saturating_add(1),
                Some(v) if from_stdin => {
                    self.debug = match parse_bool(v) {
                        Some(b) => u32::from(b),
                        None => parse_number(v)
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| bad(v, "expected a number or a boolean"))?,
                    }
                }
                Some(_) => return Err(ArgError::UnexpectedValue(opt.display_name())),
            },
            Field::UseUuid => match value {
                None => self.use_uuid = true,
                Some(v) => {
                    self.use_uuid = match parse_bool(v) {
                        Some(b) => b,
                        None => parse_number(v).ok_or_else(|| bad(v, "expected 0 or 1"))? != 0,
                    }
                }
            },
            Field::Help => self.help = true,
            Field::Version => self.version = true,
            Field::Manpage => self.manpage = true,
            Field::IpFamily => {
                let v = need()?;
                self.family = match v.to_ascii_lowercase().as_str() {
                    "auto" => Family::Auto,
                    "ipv4" => Family::V4,
                    "ipv6" => Family::V6,
                    _ => return Err(bad(v, "expected auto, ipv4 or ipv6")),
                };
            }
            Field::MulticastAddress => {
                let v = need()?;
                let addr: IpAddr = v
                    .trim_matches(['[', ']'])
                    .parse()
                    .map_err(|_| bad(v, "expected an IP address"))?;
                self.multicast_address = Some(addr);
            }
            Field::SerialDevice => self.serial_device = Some(non_empty(need()?, bad)?.to_owned()),
            Field::SerialParams => {
                let v = need()?;
                self.serial_params = SerialParams::parse(v).map_err(|reason| bad(v, &reason))?;
            }
            Field::ChannelAddress => self.channel_address = non_empty(need()?, bad)?.to_owned(),
            Field::IpAddr => self.ipaddr = Some(non_empty(need()?, bad)?.to_owned()),
            Field::Vsock => {
                self.vsock = Some(match value {
                    None => 2,
                    Some(v) => parse_number(v)
                        .filter(|n| (2..=0xFFFF_FFFE).contains(n))
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad(v, "expected a CID from 2 to 4294967294"))?,
                })
            }
            Field::IpPort => {
                let v = need()?;
                self.port = parse_number(v)
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| bad(v, "expected a port from 1 to 65535"))?;
            }
            Field::Retrans => {
                let v = need()?;
                let tenths = parse_number(v)
                    .filter(|n| (1..=36_000).contains(n))
                    .ok_or_else(|| bad(v, "expected tenths of a second, 1 or more"))?;
                self.retrans = Duration::from_millis(tenths.unsigned_abs() * 100);
            }
            Field::Auth | Field::Hash => {
                let v = need()?;
                let h: HashType = v
                    .parse()
                    .map_err(|_| bad(v, "expected none, sha1, sha256 or sha512"))?;
                if opt.field == Field::Auth {
                    self.auth = h;
                } else {
                    self.hash = h;
                }
            }
            Field::KeyFile => self.key_file = PathBuf::from(non_empty(need()?, bad)?),
            Field::Target => {
                let v = need()?;
                self.target = Some(Domain::new(v).map_err(|e| bad(v, &e.to_string()))?);
            }
            Field::Action => {
                let v = need()?;
                self.action = Action::parse(v).ok_or_else(|| {
                    bad(
                        v,
                        "expected null, on, off, reboot, status, monitor, list, list-status, \
                         metadata or validate-all",
                    )
                })?;
            }
            Field::Timeout => {
                let v = need()?;
                let secs = parse_number(v)
                    .filter(|n| (1..=86_400).contains(n))
                    .ok_or_else(|| bad(v, "expected seconds, 1 or more"))?;
                self.timeout = Duration::from_secs(secs.unsigned_abs());
            }
            Field::Delay => {
                let v = need()?;
                let secs = parse_number(v)
                    .filter(|n| (0..=86_400).contains(n))
                    .ok_or_else(|| bad(v, "expected seconds, 0 or more"))?;
                self.delay = Duration::from_secs(secs.unsigned_abs());
            }
        }
        Ok(())
    }

    /// Cross-option checks, made once all options are in.
    pub fn check(&self) -> Result<(), ArgError> {
        if self.action.needs_target() && self.target.is_none() {
            return Err(ArgError::NoTarget(self.action.name()));
        }
        if self.binary == Binary::Xvm {
            self.multicast_group()?;
        }
        Ok(())
    }

    /// The address the multicast request goes to, from `multicast_address`
    /// and `ip_family`.
    pub fn multicast_group(&self) -> Result<IpAddr, ArgError> {
        let mismatch = |addr, family| Err(ArgError::FamilyMismatch { addr, family });
        match (self.multicast_address, self.family) {
            (None, Family::Auto | Family::V4) => Ok(IpAddr::V4(vmfence_proto::DEFAULT_MCAST_V4)),
            (None, Family::V6) => Ok(IpAddr::V6(vmfence_proto::DEFAULT_MCAST_V6)),
            (Some(a), Family::Auto) => Ok(a.to_canonical()),
            (Some(a), Family::V4) => match a.to_canonical() {
                v4 @ IpAddr::V4(_) => Ok(v4),
                IpAddr::V6(_) => mismatch(a, "IPv4"),
            },
            (Some(a @ IpAddr::V6(_)), Family::V6) => Ok(a),
            (Some(a), Family::V6) => mismatch(a, "IPv6"),
        }
    }

    /// The transport the options select. For `fence_virt` the precedence
    /// is the classic one: a vsock CID wins, then a TCP address, then a
    /// serial device; with none of them, VMChannel to `channel_address`.
    pub fn transport(&self) -> Result<Transport, ArgError> {
        Ok(match self.binary {
            Binary::Xvm => Transport::Multicast {
                group: self.multicast_group()?,
            },
            Binary::Virt => match (self.vsock, &self.ipaddr, &self.serial_device) {
                (Some(cid), _, _) => Transport::Vsock(cid),
                (None, Some(host), _) => Transport::Tcp(host.clone()),
                (None, None, Some(dev)) => Transport::Serial {
                    device: dev.clone(),
                    params: self.serial_params,
                },
                (None, None, None) => Transport::VmChannel(self.channel_address.clone()),
            },
        })
    }

    /// Whether a key is needed: the transport uses one and some digest is
    /// not `none`.
    pub fn needs_key(&self) -> bool {
        let keyless = self.transport().is_ok_and(|t| !t.uses_key());
        !keyless && (self.hash != HashType::None || self.auth != HashType::None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("1229"), Some(1229));
        assert_eq!(parse_number("0x4cd"), Some(1229));
        assert_eq!(parse_number("010"), Some(10));
        assert_eq!(parse_number("-1"), Some(-1));
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("12a"), None);
        assert_eq!(parse_number("0x"), None);
    }

    #[test]
    fn actions() {
        assert_eq!(Action::parse("META-DATA"), Some(Action::Metadata));
        assert_eq!(Action::parse("List-Status"), Some(Action::ListStatus));
        assert_eq!(Action::parse("fence"), None);
        assert!(!Action::ValidateAll.needs_target());
        assert!(Action::Status.needs_target());
    }

    #[test]
    fn groups_follow_family_and_address() {
        let mut s = Settings::new(Binary::Xvm);
        assert_eq!(
            s.multicast_group().ok(),
            Some("225.0.0.12".parse().unwrap_or(IpAddr::from([0; 4])))
        );
        s.family = Family::V6;
        assert_eq!(s.multicast_group().ok(), "ff05::3:1".parse().ok());
        s.multicast_address = "225.1.2.3".parse().ok();
        assert!(matches!(
            s.multicast_group(),
            Err(ArgError::FamilyMismatch { .. })
        ));
        s.family = Family::Auto;
        s.multicast_address = "::ffff:225.1.2.3".parse().ok();
        assert_eq!(s.multicast_group().ok(), "225.1.2.3".parse().ok());
    }

    #[test]
    fn fence_virt_transport_choice() {
        let mut s = Settings::new(Binary::Virt);
        assert_eq!(s.transport(), Ok(Transport::VmChannel("10.0.2.179".into())));
        assert!(!s.needs_key(), "VMChannel carries no key");
        s.serial_device = Some("/dev/ttyS1".into());
        let serial = Transport::Serial {
            device: "/dev/ttyS1".into(),
            params: SerialParams::DEFAULT,
        };
        assert_eq!(s.transport(), Ok(serial.clone()));
        assert!(!s.needs_key(), "serial carries no key");
        s.ipaddr = Some("host".into());
        assert_eq!(s.transport(), Ok(Transport::Tcp("host".into())));
        assert!(s.needs_key());
        s.vsock = Some(2);
        assert_eq!(s.transport(), Ok(Transport::Vsock(2)), "vsock wins over TCP");
        assert!(s.needs_key());
        s.ipaddr = None;
        assert_eq!(s.transport(), Ok(Transport::Vsock(2)), "vsock wins over a device");
        s.vsock = None;
        assert_eq!(s.transport(), Ok(serial), "a device without -T/-S is serial");
        s.hash = HashType::None;
        s.auth = HashType::None;
        s.ipaddr = Some("host".into());
        assert!(!s.needs_key(), "TCP with both digests none");
        let x = Settings::new(Binary::Xvm);
        assert!(x.needs_key());
        assert!(x.transport().unwrap().uses_key());
    }

    #[test]
    fn serial_params_forms() {
        let p = |t: &str| SerialParams::parse(t);
        assert_eq!(p("115200,8N1"), Ok(SerialParams::DEFAULT));
        assert_eq!(p("115200"), Ok(SerialParams::DEFAULT));
        assert_eq!(
            p("9600,7e2"),
            Ok(SerialParams {
                speed: 9600,
                data_bits: 7,
                parity: Parity::Even,
                stop_bits: 2
            })
        );
        assert_eq!(
            p("2400,O15"),
            Ok(SerialParams {
                speed: 2400,
                data_bits: 5,
                parity: Parity::Odd,
                stop_bits: 1
            })
        );
        assert_eq!(p(" 4800 , 1n6 ").map(|s| s.to_string()), Ok("4800,6N1".into()));
        for speed in SerialParams::SPEEDS {
            assert_eq!(p(&speed.to_string()).map(|s| s.speed), Ok(speed));
        }
        for bad in [
            "",
            "300",
            "1200",
            "230400",
            "115200,",
            "115200,8N",
            "115200,8N11",
            "115200,88N",
            "115200,8NE",
            "115200,912",
            "115200,4N1",
            "115200,8N3",
            "115200,8X1",
            "fast",
            "115200;8N1",
            "-9600",
            "0x2580",
        ] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(SerialParams::DEFAULT.to_string(), "115200,8N1");
        let mut s = Settings::new(Binary::Virt);
        let opt = crate::table::by_key(Binary::Virt, "serial_params").unwrap();
        assert!(s.apply(opt, Some("57600,8e1"), true).is_ok());
        assert_eq!(s.serial_params.to_string(), "57600,8E1");
        let err = s.apply(opt, Some("57600,8e"), true).unwrap_err().to_string();
        assert!(err.contains("serial_params") && err.contains("8N1"), "{err}");
        let err = s.apply(opt, Some("300"), false).unwrap_err().to_string();
        assert!(err.contains("115200"), "{err}");
    }
}
