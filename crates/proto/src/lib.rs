//! Sans-IO implementation of the fence-virt wire protocol.
//!
//! This crate turns bytes into typed messages and back, signs and verifies
//! requests, and runs the challenge-response exchange as state machines. It
//! opens no sockets, reads no clock and draws no random numbers: callers pass
//! bytes, keys, randomness and the current time in, and get bytes and events
//! out. Layouts follow `shared/spec/fence-virt-protocol.md` §1–§3; every
//! multi-byte integer is little-endian on the wire.

pub mod auth;
pub mod codes;
pub mod digest;
pub mod domain;
pub mod history;
pub mod hostlist;
pub mod key;
pub mod request;
pub mod serial;

pub use auth::{AuthError, Handshake, Role, CHALLENGE_LEN};
pub use codes::{HashType, Op, Response, RESP_HOSTLIST};
pub use domain::{is_uuid, Domain, DomainError};
pub use hostlist::{AnswerEvent, AnswerReader, HostListError, HostState, HOST_STATE_LEN};
pub use key::{Key, KeyError, MAX_KEY_LEN};
pub use request::{
    Callback, CallbackError, DecodeError, FenceRequest, SignError, UnverifiedRequest, VerifiedRequest,
    VerifyError, REQUEST_LEN,
};

/// The default port of every transport (UDP multicast, TCP, vsock, VMChannel).
pub const DEFAULT_PORT: u16 = 1229;
/// The default IPv4 multicast group.
pub const DEFAULT_MCAST_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(225, 0, 0, 12);
/// The default IPv6 multicast group (`ff05::3:1`).
pub const DEFAULT_MCAST_V6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xff05, 0, 0, 0, 0, 0, 3, 1);
/// Where the classic tools look for the shared key.
pub const DEFAULT_KEY_FILE: &str = "/etc/cluster/fence_xvm.key";
