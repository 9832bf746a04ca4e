//! Numeric codes that travel on the wire: request operations, hash types and
//! response bytes (spec §1.1).

use std::fmt;
use std::str::FromStr;

/// A fencing operation as carried in the `request` byte of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `null`: does nothing; the classic backends answer failure.
    Null,
    /// `off`: power the VM off (libvirt destroy).
    Off,
    /// `reboot`: power the VM off, then start it again.
    Reboot,
    /// `on`: start the VM.
    On,
    /// `status`: is the VM running?
    Status,
    /// `monitor` (FENCE_DEVSTATUS): is the fencing device reachable?
    DevStatus,
    /// `list` / `list-status` (FENCE_HOSTLIST): stream the VMs.
    HostList,
}

impl Op {
    /// Every operation that may be sent on the wire, in code order.
    pub const ALL: [Op; 7] = [
        Op::Null,
        Op::Off,
        Op::Reboot,
        Op::On,
        Op::Status,
        Op::DevStatus,
        Op::HostList,
    ];

    /// The wire code of this operation.
    pub fn code(self) -> u8 {
        match self {
            Op::Null => 0,
            Op::Off => 1,
            Op::Reboot => 2,
            Op::On => 3,
            Op::Status => 4,
            Op::DevStatus => 5,
            Op::HostList => 6,
        }
    }

    /// The operation for a wire code; `None` for codes no peer may send
    /// (7 and 8 are client-local, anything above is undefined).
    pub fn from_code(code: u8) -> Option<Op> {
        Op::ALL.get(usize::from(code)).copied()
    }

    /// The word used for this operation in logs and on the agent command line.
    pub fn name(self) -> &'static str {
        match self {
            Op::Null => "null",
            Op::Off => "off",
            Op::Reboot => "reboot",
            Op::On => "on",
            Op::Status => "status",
            Op::DevStatus => "monitor",
            Op::HostList => "list",
        }
    }

    /// Whether the operation needs a target domain.
    pub fn needs_domain(self) -> bool {
        !matches!(self, Op::DevStatus | Op::HostList)
    }

    /// Whether the operation changes the power state of a VM.
    pub fn is_power_action(self) -> bool {
        matches!(self, Op::Off | Op::Reboot | Op::On)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A digest algorithm, used both for request signing (`hash`) and for the
/// challenge-response exchange (`auth`). Ordered by strength, so that the
/// "weakest allowed hash" rule is a plain comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum HashType {
    /// No digest at all.
    None,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-256 (32 bytes), the default everywhere.
    #[default]
    Sha256,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl HashType {
    /// All hash types, weakest first.
    pub const ALL: [HashType; 4] = [HashType::None, HashType::Sha1, HashType::Sha256, HashType::Sha512];

    /// The wire code (`hashtype` byte).
    pub fn code(self) -> u8 {
        match self {
            HashType::None => 0,
            HashType::Sha1 => 1,
            HashType::Sha256 => 2,
            HashType::Sha512 => 3,
        }
    }

    /// The hash type for a wire code, if it is one of the four defined.
    pub fn from_code(code: u8) -> Option<HashType> {
        HashType::ALL.get(usize::from(code)).copied()
    }

    /// The configuration word (`none`, `sha1`, `sha256`, `sha512`).
    pub fn name(self) -> &'static str {
        match self {
            HashType::None => "none",
            HashType::Sha1 => "sha1",
            HashType::Sha256 => "sha256",
            HashType::Sha512 => "sha512",
        }
    }

    /// Length of the raw digest in bytes (0 for `none`).
    pub fn digest_len(self) -> usize {
        match self {
            HashType::None => 0,
            HashType::Sha1 => 20,
            HashType::Sha256 => 32,
            HashType::Sha512 => 64,
        }
    }
}

impl fmt::Display for HashType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The word was not one of `none`, `sha1`, `sha256`, `sha512`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hash type '{0}' (expected none, sha1, sha256 or sha512)")]
pub struct UnknownHashType(pub String);

impl FromStr for HashType {
    type Err = UnknownHashType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HashType::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownHashType(s.to_owned()))
    }
}

/// The one-byte answer of a daemon (spec §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Response {
    /// 0: success; for `status`, the VM is on.
    Success,
    /// 1: failure.
    Fail,
    /// 2: the VM is off.
    Off,
    /// 3: refused by the `groups` permission map.
    PermissionDenied,
    /// 253: a host list follows.
    HostList,
    /// Any other byte, passed through to the agent's exit status.
    Other(u8),
}

impl Response {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            Response::Success => 0,
            Response::Fail => 1,
            Response::Off => 2,
            Response::PermissionDenied => 3,
            Response::HostList => RESP_HOSTLIST,
            Response::Other(c) => c,
        }
    }

    /// Interpret a wire byte.
    pub fn from_code(code: u8) -> Response {
        match code {
            0 => Response::Success,
            1 => Response::Fail,
            2 => Response::Off,
            3 => Response::PermissionDenied,
            RESP_HOSTLIST => Response::HostList,
            c => Response::Other(c),
        }
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Response::Success => f.write_str("success"),
            Response::Fail => f.write_str("failure"),
            Response::Off => f.write_str("off"),
            Response::PermissionDenied => f.write_str("permission denied"),
            Response::HostList => f.write_str("host list"),
            Response::Other(c) => write!(f, "unknown response {c}"),
        }
    }
}

/// The marker byte that announces a host list.
pub const RESP_HOSTLIST: u8 = 0xFD;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_codes_round_trip_and_reject_local_codes() {
        for op in Op::ALL {
            assert_eq!(Op::from_code(op.code()), Some(op));
        }
        assert_eq!(Op::from_code(7), None);
        assert_eq!(Op::from_code(8), None);
        assert_eq!(Op::from_code(255), None);
    }

    #[test]
    fn hash_words_and_order() {
        assert_eq!("SHA256".parse::<HashType>(), Ok(HashType::Sha256));
        assert!("md5".parse::<HashType>().is_err());
        assert!(HashType::Sha1 < HashType::Sha256);
        assert!(HashType::None < HashType::Sha1);
        assert_eq!(HashType::from_code(4), None);
    }

    #[test]
    fn responses_round_trip() {
        for c in 0..=255u8 {
            assert_eq!(Response::from_code(c).code(), c);
        }
    }
}
