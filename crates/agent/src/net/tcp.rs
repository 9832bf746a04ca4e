//! `fence_virt -T`: the request over a TCP connection to the daemon's TCP
//! listener, then the common conversation. Host names are resolved (the
//! classic agent took only numeric addresses); each address is tried in turn
//! within the deadline.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Instant;

use socket2::SockRef;
use vmfence_proto::FenceRequest;

use super::exchange::{converse, write_all_by, Answer, Step};
use super::{random_bytes, remaining, Security, TransportError};
use crate::log::Log;

/// Send `req` to the daemon at `host`:`port` and return its answer.
pub fn fence_tcp(
    host: &str,
    port: u16,
    req: &FenceRequest,
    sec: Security<'_>,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, TransportError> {
    let addrs = resolve(host, port)?;
    let bytes = req.encode_signed(sec.hash, sec.key, random_bytes()?)?;
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        let Some(left) = remaining(deadline) else { break };
        log.debug(2, format_args!("connecting to {addr}"));
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                stream = Some((s, addr));
                break;
            }
            Err(e) => {
                log.debug(1, format_args!("connect to {addr}: {e}"));
                last = Some((addr, e));
            }
        }
    }
    let (mut stream, peer) = match (stream, last) {
        (Some(s), _) => s,
        (None, Some((addr, source))) => return Err(TransportError::Connect { addr, source }),
        (None, None) => {
            return Err(TransportError::Connect {
                addr: SocketAddr::new(IpAddr::from([0u8; 4]), port),
                source: std::io::ErrorKind::TimedOut.into(),
            })
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = SockRef::from(&stream).set_keepalive(true);
    let exchange = |source| TransportError::Exchange { peer, source };
    log.debug(2, format_args!("sending {}-byte request to {peer}", bytes.len()));
    write_all_by(&mut stream, &bytes, deadline, Step::Request).map_err(exchange)?;
    converse(&mut stream, sec, deadline, log).map_err(exchange)
}

/// A literal address (brackets allowed around IPv6) or a host name.
pub(crate) fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, TransportError> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let resolve_err = |source| TransportError::Resolve {
        host: host.to_owned(),
        source,
    };
    let addrs: Vec<SocketAddr> = (bare, port).to_socket_addrs().map_err(resolve_err)?.collect();
    if addrs.is_empty() {
        return Err(resolve_err(std::io::ErrorKind::NotFound.into()));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_do_not_resolve() {
        let v = resolve("[::1]", 1229).ok();
        assert_eq!(
            v,
            Some(vec!["[::1]:1229"
                .parse()
                .unwrap_or(SocketAddr::from(([0u8; 4], 0)))])
        );
        let v = resolve("10.0.0.1", 7).ok();
        assert_eq!(v.map(|v| v.len()), Some(1));
        let v = resolve("localhost", 1).ok();
        assert!(v.is_some_and(|v| !v.is_empty() && v.iter().all(|a| a.ip().is_loopback())));
    }
}
