//! `fence_virt -S[CID]`: the TCP transport's conversation (signed request,
//! challenge-response, answer) on an `AF_VSOCK` stream to `(CID, ipport)`.
//! CID 2 is the host, the usual peer of a guest. Unlike the classic agent,
//! the connection is bounded by the `-t` deadline.
//!
//! The conversation itself ([`exchange_on`]) takes any stream, so it is
//! tested on Unix socket pairs: vsock has no loopback transport on the test
//! machines, and those are VMs whose CID 2 is a real outer host.

use std::time::Instant;

use socket2::{Domain, SockAddr, Socket, Type};
use vmfence_proto::FenceRequest;

use super::exchange::{converse, write_all_by, Answer, ExchangeError, Step, Stream};
use super::{random_bytes, remaining, Security, TransportError};
use crate::log::Log;

/// The address of `(cid, port)`.
pub fn vsock_addr(cid: u32, port: u16) -> SockAddr {
    SockAddr::vsock(cid, u32::from(port))
}

/// Send `req` to the daemon at vsock `cid`:`port` and return its answer.
pub fn fence_vsock(
    cid: u32,
    port: u16,
    req: &FenceRequest,
    sec: Security<'_>,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, TransportError> {
    let bytes = req.encode_signed(sec.hash, sec.key, random_bytes()?)?;
    let connect_err = |source| TransportError::VsockConnect { cid, port, source };
    let left = remaining(deadline).ok_or_else(|| connect_err(std::io::ErrorKind::TimedOut.into()))?;
    log.debug(2, format_args!("connecting to vsock {cid}:{port}"));
    let mut sock = Socket::new(Domain::VSOCK, Type::STREAM, None).map_err(connect_err)?;
    sock.connect_timeout(&vsock_addr(cid, port), left)
        .map_err(connect_err)?;
    exchange_on(&mut sock, &bytes, sec, deadline, log).map_err(|source| TransportError::Vsock {
        cid,
        port,
        source,
    })
}

/// Write the signed request `bytes`, then hold the conversation.
pub fn exchange_on<S: Stream>(
    stream: &mut S,
    bytes: &[u8],
    sec: Security<'_>,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, ExchangeError> {
    log.debug(2, format_args!("sending {}-byte request", bytes.len()));
    write_all_by(stream, bytes, deadline, Step::Request)?;
    converse(stream, sec, deadline, log)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::thread;
    use std::time::Duration;

    use vmfence_proto::hostlist::TERMINATOR;
    use vmfence_proto::{
        Domain, Handshake, HashType, HostState, Key, Op, Response, Role, UnverifiedRequest, REQUEST_LEN,
        RESP_HOSTLIST,
    };

    use super::*;

    #[test]
    fn the_address_is_vsock_cid_and_port() {
        // Built only; never connected (CID 2 is the real host of this VM).
        let a = vsock_addr(3, 1229);
        assert_eq!(a.as_vsock_address(), Some((3, 1229)));
        assert_eq!(a.domain(), socket2::Domain::VSOCK);
        let a = vsock_addr(0xFFFF_FFFE, 65535);
        assert_eq!(a.as_vsock_address(), Some((0xFFFF_FFFE, 65535)));
    }

    /// The daemon side of the conversation on the other end of a pair:
    /// verify the request, respond, challenge, then send `answer`.
    fn daemon(mut s: UnixStream, key: &'static [u8], answer: Vec<u8>) -> thread::JoinHandle<FenceRequest> {
        thread::spawn(move || {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut raw = [0u8; REQUEST_LEN];
            s.read_exact(&mut raw).unwrap();
            let key = Key::from_bytes(key).unwrap();
            let req = UnverifiedRequest::decode(&raw)
                .unwrap()
                .verify(Some(&key), HashType::Sha256)
                .expect("signature verifies");
            let mut hs = Handshake::new(Role::Daemon, HashType::Sha256, Some(&key), [9u8; 64]).unwrap();
            let mut buf = [0u8; 64];
            while !hs.is_done() {
                while let Some(m) = hs.poll_transmit() {
                    s.write_all(&m).unwrap();
                }
                let want = hs.wanted();
                if want == 0 {
                    break;
                }
                let n = s.read(&mut buf[..want.min(64)]).unwrap();
                assert!(n > 0);
                hs.feed(&buf[..n]).expect("agent answers the challenge");
            }
            s.write_all(&answer).unwrap();
            req.request().clone()
        })
    }

    fn agent_side(answer: Vec<u8>, op: Op, domain: Option<&str>) -> (Answer, FenceRequest) {
        const KEY: &[u8] = b"vsock test key";
        let (mut a, b) = UnixStream::pair().unwrap();
        let h = daemon(b, KEY, answer);
        let key = Key::from_bytes(KEY).unwrap();
        let sec = Security {
            hash: HashType::Sha256,
            auth: HashType::Sha256,
            key: Some(&key),
        };
        let req = FenceRequest::new(op, domain.map(|d| Domain::new(d).unwrap()), 77);
        let bytes = req.encode_signed(sec.hash, sec.key, [1; 6]).unwrap();
        let mut err = Vec::new();
        let mut log = Log::new("fence_virt", 0, &mut err);
        let d = Instant::now() + Duration::from_secs(5);
        let answer = exchange_on(&mut a, &bytes, sec, d, &mut log).unwrap();
        (answer, h.join().unwrap())
    }

    #[test]
    fn the_tcp_conversation_runs_on_any_stream() {
        let (a, req) = agent_side(vec![2], Op::Status, Some("vm1"));
        assert_eq!(a, Answer::Result(Response::Off));
        assert_eq!(req.domain.unwrap().as_str(), "vm1");
        assert_eq!((req.addrlen, req.family, req.port), (0, 0, 0));
        let h = HostState {
            name: "vm1".into(),
            uuid: "fe0c0000-0000-4000-8000-000000000001".into(),
            state: 1,
        };
        let mut list = vec![RESP_HOSTLIST];
        list.extend_from_slice(&h.encode());
        list.extend_from_slice(&TERMINATOR);
        list.push(0);
        let (a, _) = agent_side(list, Op::HostList, None);
        assert_eq!(a, Answer::List(vec![h]));
    }

    #[test]
    fn a_wrong_key_is_reported_as_an_exchange_error() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let h = thread::spawn(move || {
            let mut raw = [0u8; REQUEST_LEN];
            b.read_exact(&mut raw).unwrap();
            // Read the challenge and close, as a daemon with another key does.
            let mut c = [0u8; 64];
            b.read_exact(&mut c).unwrap();
        });
        let key = Key::from_bytes(b"k").unwrap();
        let sec = Security {
            hash: HashType::Sha256,
            auth: HashType::Sha256,
            key: Some(&key),
        };
        let req = FenceRequest::new(Op::Off, Some(Domain::new("vm").unwrap()), 1);
        let bytes = req.encode_signed(sec.hash, sec.key, [1; 6]).unwrap();
        let mut err = Vec::new();
        let mut log = Log::new("fence_virt", 0, &mut err);
        let d = Instant::now() + Duration::from_secs(5);
        let e = exchange_on(&mut a, &bytes, sec, d, &mut log).unwrap_err();
        h.join().unwrap();
        assert!(matches!(e, ExchangeError::ClosedDuringAuth { .. }), "{e:?}");
        let t = TransportError::Vsock {
            cid: 2,
            port: 1229,
            source: e,
        };
        assert!(t.to_string().starts_with("vsock 2:1229: "), "{t}");
    }
}
