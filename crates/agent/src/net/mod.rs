//! The agent's transports: multicast with a TCP call back (`fence_xvm`),
//! TCP (`fence_virt -T`) and vsock (`fence_virt -S`), which all end in the
//! same conversation on a stream ([`exchange`]): challenge-response, then
//! the daemon's answer; and the keyless serial protocol of `fence_virt -D`
//! ([`serial`]) and VMChannel ([`vmchannel`]).
//!
//! Every blocking step is bounded by one deadline, computed from `-t` when
//! the request starts; a time-out anywhere is reported with what was being
//! waited for.

pub mod exchange;
pub mod ifaddrs;
pub mod mcast;
pub mod serial;
pub mod tcp;
pub mod vmchannel;
pub mod vsock;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use vmfence_proto::{HashType, SignError};

pub use exchange::{Answer, ExchangeError};
pub use mcast::NoAnswer;

/// A transport could not deliver the request or get the answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No local address of the family to send from.
    #[error(
        "no usable local {family} address to send the request from (loopback and link-local IPv6 \
         addresses are not used)"
    )]
    NoLocalAddress {
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
    /// Listing local addresses failed.
    #[error("cannot list the local addresses: {0}")]
    Interfaces(io::Error),
    /// The call-back listener could not be set up.
    #[error("cannot listen for the daemon's call back on TCP port {port}: {source}")]
    Listen {
        /// The port tried.
        port: u16,
        /// Why.
        source: io::Error,
    },
    /// Waiting for the call back failed for another reason than time.
    #[error("waiting for the daemon's call back failed: {0}")]
    Accept(io::Error),
    /// Not one request datagram could be sent.
    #[error("could not send the request to {to} from any local address (last error: {last})")]
    NoSend {
        /// The destination.
        to: SocketAddr,
        /// The last error seen.
        last: io::Error,
    },
    /// No daemon called back in time.
    #[error("{0}")]
    NoAnswer(Box<NoAnswer>),
    /// The `-T` host name does not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// Why.
        source: io::Error,
    },
    /// The TCP connection to the daemon failed.
    #[error("unable to connect to fence_virtd at {addr}: {source}")]
    Connect {
        /// The address tried last.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Sign(#[from] SignError),
    /// The system's random source failed.
    #[error("cannot get random bytes: {0}")]
    Random(String),
    /// The conversation with the daemon failed.
    #[error("{peer}: {source}")]
    Exchange {
        /// The daemon's address.
        peer: SocketAddr,
        /// What went wrong.
        source: ExchangeError,
    },
    /// The vsock connection failed.
    #[error("unable to connect to fence_virtd at vsock {cid}:{port}: {source}")]
    VsockConnect {
        /// The CID.
        cid: u32,
        /// The port.
        port: u16,
        /// Why.
        source: io::Error,
    },
    /// The conversation over vsock failed.
    #[error("vsock {cid}:{port}: {source}")]
    Vsock {
        /// The CID.
        cid: u32,
        /// The port.
        port: u16,
        /// What went wrong.
        source: ExchangeError,
    },
    /// The serial device or VMChannel failed.
    #[error(transparent)]
    Serial(#[from] serial::SerialError),
}

/// What a transport needs besides its own address settings.
#[derive(Debug, Clone, Copy)]
pub struct Security<'k> {
    /// Request signature digest.
    pub hash: HashType,
    /// Challenge-response digest.
    pub auth: HashType,
    /// The key (`None` only when both digests are `none`).
    pub key: Option<&'k vmfence_proto::Key>,
}

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], TransportError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| TransportError::Random(e.to_string()))?;
    Ok(b)
}

/// A random request identifier (the classic agents use the clock's
/// microseconds, which collide between guests fenced at the same moment).
pub fn random_seqno() -> Result<u32, TransportError> {
    random_bytes::<4>().map(u32::from_le_bytes)
}

/// Time left until `deadline`; `None` when it has passed.
pub fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

/// The family word of an address, for messages.
pub fn family_name(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}
