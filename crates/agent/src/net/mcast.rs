//! `fence_xvm`'s transport: the signed request goes by UDP to the multicast
//! group (one datagram per local address, each naming that address as the
//! call-back target), and the daemon that handles it connects back to the
//! agent over TCP.
//!
//! Wire-compatible improvements over the classic agent:
//! * the call back is awaited on the `-p` port when it is free, else on an
//!   ephemeral port (the request's `port` field carries it), so several
//!   agents can run at once on one machine;
//! * the first retransmissions come after 150, 300, 600 ms…, growing to the
//!   `retrans` period, so one lost datagram costs a fraction of a second;
//! * when no daemon calls back, the error says what to check.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain as SockDomain, Protocol, SockAddr, Socket, Type};
use vmfence_proto::{FenceRequest, HashType};

use super::exchange::{converse, Answer};
use super::ifaddrs::{local_addresses, LocalAddr};
use super::{family_name, random_bytes, remaining, Security, TransportError};
use crate::log::Log;

/// The pause before the first retransmission.
pub const FIRST_RESEND: Duration = Duration::from_millis(150);
/// Multicast TTL / IPv6 hop limit, as the classic agent uses.
pub const MULTICAST_HOPS: u32 = 2;
/// Backlog of the call-back listener.
const BACKLOG: i32 = 10;

/// Where the request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McastTarget {
    /// Group (or unicast daemon address).
    pub group: IpAddr,
    /// UDP port of the daemon; also the preferred call-back port.
    pub port: u16,
    /// The longest pause between retransmissions.
    pub retrans: Duration,
}

/// The pause after send round `round` (0-based): 150 ms doubling each
/// round, never more than `retrans` (and `retrans` from the start when it
/// is shorter than the first pause).
pub fn resend_interval(round: u32, retrans: Duration) -> Duration {
    FIRST_RESEND.saturating_mul(1u32 << round.min(16)).min(retrans)
}

/// No daemon called back before the deadline: everything needed to say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoAnswer {
    /// Where the requests went.
    pub to: SocketAddr,
    /// The local addresses they named.
    pub sources: Vec<IpAddr>,
    /// How many times each was sent.
    pub rounds: u32,
    /// How long the agent waited.
    pub waited: Duration,
    /// The TCP port the call back was awaited on.
    pub callback_port: u16,
    /// The preferred call-back port, when it was busy and another was used.
    pub busy_port: Option<u16>,
    /// The hash the requests were signed with.
    pub hash: HashType,
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sources: Vec<String> = self.sources.iter().map(IpAddr::to_string).collect();
        writeln!(
            f,
            "timed out after {:.1} s: no fence_virtd called back. The request went {} time(s) to {} \
             from {}, asking for a call back on TCP port {}.",
            self.waited.as_secs_f64(),
            self.rounds,
            self.to,
            sources.join(", "),
            self.callback_port
        )?;
        writeln!(f, "Likely causes:")?;
        writeln!(
            f,
            "  - no fence_virtd listens for {} requests on {} (daemon down, or configured for \
             another group, port or family);",
            family_name(self.to.ip()),
            self.to
        )?;
        writeln!(
            f,
            "  - the host's firewall drops UDP port {}, or the datagrams do not reach the host \
             (multicast not routed; the daemon's interface= is not the one facing this machine);",
            self.to.port()
        )?;
        writeln!(
            f,
            "  - the key file differs from the daemon's key_file, or hash={} is weaker than the \
             daemon's hash: the daemon drops such requests silently (its log says \"Key mismatch\" \
             or \"Hash type not strong enough\");",
            self.hash
        )?;
        write!(
            f,
            "  - a firewall here blocks incoming TCP port {} from the host, so the daemon's call back \
             fails",
            self.callback_port
        )?;
        if let Some(p) = self.busy_port {
            write!(
                f,
                " (port {p} was busy, probably another agent running, so the system picked this \
                 port; a firewall that opens only {p} blocks it)"
            )?;
        }
        write!(f, ".")
    }
}

/// One datagram, ready to go, and the socket it leaves from.
struct Sender {
    from: LocalAddr,
    socket: Socket,
    datagram: [u8; vmfence_proto::REQUEST_LEN],
}

/// Multicast `req` (its call-back fields are filled here) and return the
/// answer of the daemon that calls back.
pub fn fence_multicast(
    target: McastTarget,
    req: &FenceRequest,
    sec: Security<'_>,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, TransportError> {
    let start = Instant::now();
    let v6 = target.group.is_ipv6();
    let family = family_name(target.group);
    let locals = local_addresses(v6).map_err(TransportError::Interfaces)?;
    if locals.is_empty() {
        return Err(TransportError::NoLocalAddress { family });
    }
    let (listener, callback_port, busy_port) = callback_listener(v6, target.port, log)?;
    let to = SocketAddr::new(target.group, target.port);
    let mut senders = Vec::new();
    let mut last_err = None;
    for local in locals {
        let request = req
            .clone()
            .with_callback(SocketAddr::new(local.ip, callback_port));
        let datagram = request.encode_signed(sec.hash, sec.key, random_bytes()?)?;
        match sender_socket(&local, target.group) {
            Ok(socket) => senders.push(Sender {
                from: local,
                socket,
                datagram,
            }),
            Err(e) => {
                log.debug(
                    1,
                    format_args!("not sending from {} ({}): {e}", local.ip, local.ifname),
                );
                last_err = Some(e);
            }
        }
    }
    let dest = SockAddr::from(to);
    let mut rounds = 0u32;
    loop {
        let mut sent = 0;
        for s in &senders {
            match s.socket.send_to(&s.datagram, &dest) {
                Ok(_) => {
                    sent += 1;
                    if rounds == 0 {
                        log.debug(
                            2,
                            format_args!("sending to {to} via {} ({})", s.from.ip, s.from.ifname),
                        );
                    }
                }
                Err(e) => {
                    log.debug(1, format_args!("send to {to} via {}: {e}", s.from.ip));
                    last_err = Some(e);
                }
            }
        }
        if sent == 0 && rounds == 0 {
            return Err(TransportError::NoSend {
                to,
                last: last_err.unwrap_or_else(|| io::ErrorKind::AddrNotAvailable.into()),
            });
        }
        let pause = resend_interval(rounds, target.retrans);
        rounds += 1;
        let wait_until = (Instant::now() + pause).min(deadline);
        log.debug(
            3,
            format_args!("round {rounds}: waiting {pause:?} for the call back"),
        );
        if let Some((stream, peer)) = accept_until(&listener, wait_until)? {
            drop(listener);
            log.debug(
                2,
                format_args!(
                    "call back from {peer} after {:?} and {rounds} round(s)",
                    start.elapsed()
                ),
            );
            return talk(stream, peer, sec, deadline, log);
        }
        if remaining(deadline).is_none() {
            return Err(TransportError::NoAnswer(Box::new(NoAnswer {
                to,
                sources: senders.iter().map(|s| s.from.ip).collect(),
                rounds,
                waited: start.elapsed(),
                callback_port,
                busy_port,
                hash: sec.hash,
            })));
        }
    }
}

fn talk(
    mut stream: TcpStream,
    peer: SocketAddr,
    sec: Security<'_>,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, TransportError> {
    let exchange = |source| TransportError::Exchange { peer, source };
    stream.set_nonblocking(false).map_err(|source| {
        exchange(super::ExchangeError::Io {
            step: super::exchange::Step::Auth,
            source,
        })
    })?;
    let _ = stream.set_nodelay(true);
    converse(&mut stream, sec, deadline, log).map_err(exchange)
}

/// Wait for one incoming connection until `until`.
fn accept_until(
    listener: &Socket,
    until: Instant,
) -> Result<Option<(TcpStream, SocketAddr)>, TransportError> {
    loop {
        let Some(left) = remaining(until) else {
            return Ok(None);
        };
        // accept() honours SO_RCVTIMEO on Linux.
        listener
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .map_err(TransportError::Accept)?;
        match listener.accept() {
            Ok((sock, addr)) => {
                let peer = addr
                    .as_socket()
                    .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
                return Ok(Some((sock.into(), peer)));
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
            Err(e) => return Err(TransportError::Accept(e)),
        }
    }
}

/// The TCP listener for the call back, on the wildcard address: on
/// `preferred` when it is free, else on a port the system picks. Returns the
/// socket, its port, and the preferred port when it was busy.
fn callback_listener(
    v6: bool,
    preferred: u16,
    log: &mut Log<'_>,
) -> Result<(Socket, u16, Option<u16>), TransportError> {
    let bind = |port: u16| -> io::Result<Socket> {
        let addr = if v6 {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
        } else {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
        };
        let s = Socket::new(SockDomain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        if v6 {
            let _ = s.set_only_v6(false);
        }
        s.bind(&addr.into())?;
        s.listen(BACKLOG)?;
        Ok(s)
    };
    let listen_err = |port| move |source| TransportError::Listen { port, source };
    let (socket, busy) = match bind(preferred) {
        Ok(s) => (s, None),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            log.debug(
                1,
                format_args!("TCP port {preferred} is busy; the call back comes to another port"),
            );
            (bind(0).map_err(listen_err(0))?, Some(preferred))
        }
        Err(e) => return Err(listen_err(preferred)(e)),
    };
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .ok_or_else(|| listen_err(0)(io::ErrorKind::AddrNotAvailable.into()))?;
    log.debug(2, format_args!("waiting for the call back on TCP port {port}"));
    Ok((socket, port, busy))
}

/// A UDP socket sending from `local`, with the multicast interface and hop
/// limit set when `group` is a multicast address.
fn sender_socket(local: &LocalAddr, group: IpAddr) -> io::Result<Socket> {
    let from = match local.ip {
        IpAddr::V4(a) => SocketAddr::new(IpAddr::V4(a), 0),
        IpAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(a, 0, 0, 0)),
    };
    let s = Socket::new(SockDomain::for_address(from), Type::DGRAM, Some(Protocol::UDP))?;
    s.bind(&from.into())?;
    match (local.ip, group) {
        (IpAddr::V4(a), IpAddr::V4(g)) if g.is_multicast() => {
            s.set_multicast_if_v4(&a)?;
            s.set_multicast_ttl_v4(MULTICAST_HOPS)?;
            s.set_multicast_loop_v4(true)?;
        }
        (IpAddr::V6(_), IpAddr::V6(g)) if g.is_multicast() => {
            s.set_multicast_if_v6(local.ifindex)?;
            s.set_multicast_hops_v6(MULTICAST_HOPS)?;
            s.set_multicast_loop_v6(true)?;
        }
        _ => {}
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_start_fast_and_back_off_to_retrans() {
        let two = Duration::from_secs(2);
        let got: Vec<u128> = (0..7).map(|r| resend_interval(r, two).as_millis()).collect();
        assert_eq!(got, [150, 300, 600, 1200, 2000, 2000, 2000]);
        assert_eq!(
            resend_interval(0, Duration::from_millis(100)),
            Duration::from_millis(100)
        );
        assert_eq!(resend_interval(40, two), two);
        // One lost datagram costs one first pause.
        assert!(resend_interval(0, two) < Duration::from_millis(300));
    }

    #[test]
    fn time_out_message_names_the_causes() {
        let n = NoAnswer {
            to: "225.0.0.12:1229"
                .parse()
                .unwrap_or(SocketAddr::from(([0u8; 4], 0))),
            sources: vec![IpAddr::from([10, 0, 0, 5])],
            rounds: 7,
            waited: Duration::from_secs(3),
            callback_port: 40000,
            busy_port: Some(1229),
            hash: HashType::Sha256,
        };
        let s = n.to_string();
        for needle in [
            "timed out after 3.0 s",
            "10.0.0.5",
            "UDP port 1229",
            "key_file",
            "hash=sha256",
            "TCP port 40000",
            "port 1229 was busy",
        ] {
            assert!(s.contains(needle), "{needle} missing from {s}");
        }
    }
}
