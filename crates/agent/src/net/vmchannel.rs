//! `fence_virt` without `-T`, `-S` or `-D`: VMChannel. QEMU forwards TCP
//! connections from the guest to `channel_address:ipport` (default
//! 10.0.2.179:1229, a libvirt `<channel type='unix'>` with a `guestfwd`
//! target) to a Unix socket on the host, where fence_virtd's serial listener
//! (in `vmchannel` mode) reads. On that connection the agent speaks the
//! serial protocol of [`super::serial`]: no key, the daemon knows the VM by
//! its socket.
//!
//! The connection gets 3 s (as with the classic agent) or what is left of
//! `-t`, whichever is shorter; the request 3 s more; the answer the rest of
//! `-t`. The address may be a literal (IPv4 or IPv6) or a host name.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use vmfence_proto::FenceRequest;

use super::exchange::Answer;
use super::serial::{converse_line, serial_request, SerialError, WRITE_LIMIT};
use super::tcp::resolve;
use super::{remaining, TransportError};
use crate::log::Log;

/// Longest time for the TCP connection (the classic agent's 3 s).
pub const CONNECT_LIMIT: Duration = Duration::from_secs(3);

/// Send `req` over VMChannel to `address`:`port` and return the answer.
pub fn fence_vmchannel(
    address: &str,
    port: u16,
    req: &FenceRequest,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, TransportError> {
    let addrs = resolve(address, port)?;
    let connect_by = deadline.min(Instant::now() + CONNECT_LIMIT);
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        let Some(left) = remaining(connect_by) else { break };
        log.debug(2, format_args!("VMChannel: connecting to {addr}"));
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                stream = Some((s, addr));
                break;
            }
            Err(e) => {
                log.debug(1, format_args!("VMChannel: connect to {addr}: {e}"));
                last = Some((addr, e));
            }
        }
    }
    let (mut stream, peer) = match (stream, last) {
        (Some(s), _) => s,
        (None, Some((addr, source))) => return Err(SerialError::Connect { addr, source }.into()),
        (None, None) => {
            return Err(SerialError::Connect {
                addr: SocketAddr::new(IpAddr::from([0u8; 4]), port),
                source: std::io::ErrorKind::TimedOut.into(),
            }
            .into())
        }
    };
    let exchange = |source| {
        TransportError::Serial(SerialError::Exchange {
            peer: format!("VMChannel {peer}"),
            source,
        })
    };
    let io = |source| super::serial::LineError::Io {
        step: super::exchange::Step::Request,
        source,
    };
    stream.set_nonblocking(true).map_err(io).map_err(exchange)?;
    let _ = stream.set_nodelay(true);
    let bytes = serial_request(req).encode();
    let write_by = deadline.min(Instant::now() + WRITE_LIMIT);
    log.debug(
        2,
        format_args!("VMChannel: sending {}-byte request to {peer}", bytes.len()),
    );
    converse_line(&mut stream, &bytes, write_by, deadline, log).map_err(exchange)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;

    use vmfence_proto::serial::{encode_response, FramerEvent, RequestFramer};
    use vmfence_proto::{Domain, Op, Response};

    use super::*;

    #[test]
    fn a_status_over_loopback() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut framer = RequestFramer::default();
            let mut buf = [0u8; 100];
            loop {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                if let Some(FramerEvent::Request { request, .. }) = framer.feed(&buf[..n]).pop() {
                    s.write_all(b"ab\x00ab").unwrap();
                    s.write_all(&encode_response(Response::Success)).unwrap();
                    return request;
                }
            }
        });
        let req = FenceRequest::new(Op::Status, Some(Domain::new("g").unwrap()), 9);
        let mut err = Vec::new();
        let mut log = Log::new("fence_virt", 0, &mut err);
        let d = Instant::now() + Duration::from_secs(5);
        let a = fence_vmchannel("127.0.0.1", port, &req, d, &mut log).unwrap();
        assert_eq!(a, Answer::Result(Response::Success));
        assert_eq!(h.join().unwrap().seqno, 9);
    }

    #[test]
    fn refused_connection_names_the_address() {
        // Bind then drop: a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let req = FenceRequest::new(Op::HostList, None, 1);
        let mut err = Vec::new();
        let mut log = Log::new("fence_virt", 0, &mut err);
        let d = Instant::now() + Duration::from_secs(5);
        let e = fence_vmchannel("127.0.0.1", port, &req, d, &mut log).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("VMChannel") && text.contains("guestfwd"), "{text}");
    }
}
