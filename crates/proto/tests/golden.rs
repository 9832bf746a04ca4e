//! Golden vectors captured from the classic C fence-virt 4.12.1 (see
//! `golden/MANIFEST.md`; regenerate with `scripts/capture-golden.sh`).
//!
//! For every vector: the request decodes to the expected fields, re-encodes
//! byte-identically and its signature is recomputed equal; both roles of our
//! challenge-response state machine reproduce the captured exchange; the
//! daemon's answer parses to what the C client printed and re-encodes to the
//! same bytes except where the C daemon sends uninitialised memory.
//!
//! `VMFENCE_GOLDEN_DIR` points the test at another capture (CI captures a
//! fresh set from the live C peers and checks it too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use vmfence_proto::hostlist::{AnswerEvent, AnswerReader, HOST_STATE_LEN};
use vmfence_proto::serial::{self, SerialAnswer, SerialRequest};
use vmfence_proto::{
    Callback, Handshake, HashType, HostState, Key, Op, Response, Role, UnverifiedRequest, VerifyError,
    CHALLENGE_LEN, REQUEST_LEN,
};

struct Vector {
    name: String,
    transport: String,
    hash: HashType,
    auth: HashType,
    key: String,
    exit: i32,
    request: u8,
    result: Option<u8>,
    final_code: Option<u8>,
    entries: Option<usize>,
}

fn dir() -> PathBuf {
    std::env::var_os("VMFENCE_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"))
}

fn read(name: &str) -> Vec<u8> {
    let p = dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn opt<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s == "-" {
        None
    } else {
        Some(s.parse().ok().unwrap_or_else(|| panic!("bad field {s}")))
    }
}

fn vectors() -> Vec<Vector> {
    let text = String::from_utf8(read("index.tsv")).unwrap();
    let v: Vec<Vector> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 10, "index line {l}");
            Vector {
                name: f[0].into(),
                transport: f[1].into(),
                hash: f[2].parse().unwrap(),
                auth: f[3].parse().unwrap(),
                key: f[4].into(),
                exit: f[5].parse().unwrap(),
                request: f[6].parse().unwrap(),
                result: opt(f[7]),
                final_code: opt(f[8]),
                entries: opt(f[9]),
            }
        })
        .collect();
    assert!(
        v.len() >= 15,
        "expected the full set of vectors, found {}",
        v.len()
    );
    v
}

fn key(file: &str) -> Key {
    Key::from_bytes(&read(file)).unwrap()
}

fn chunk(b: &[u8], at: usize) -> [u8; CHALLENGE_LEN] {
    b[at..at + CHALLENGE_LEN].try_into().unwrap()
}

/// Compare two answers, ignoring the bytes the C daemon leaves
/// uninitialised in each host entry (offsets 63, 127 and 129).
fn same_answer_modulo_garbage(ours: &[u8], theirs: &[u8], entries_start: usize) {
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if i >= entries_start {
            let off = (i - entries_start) % HOST_STATE_LEN;
            if matches!(off, 63 | 127 | 129) {
                continue;
            }
        }
        assert_eq!(a, b, "answer byte {i} differs");
    }
}

#[test]
fn network_vectors() {
    let mut seen = HashMap::new();
    for v in vectors().iter().filter(|v| v.transport != "serial") {
        let k = key("key.bin");
        let client_key = key(&v.key);
        let raw = read(&format!("{}.request.bin", v.name));
        assert_eq!(raw.len(), REQUEST_LEN, "{}", v.name);

        // Fields.
        let un = UnverifiedRequest::decode(&raw).unwrap();
        let req = un.peek().clone();
        assert_eq!(req.request, v.request, "{}", v.name);
        assert_eq!(un.hash_type(), v.hash, "{}", v.name);
        if Op::from_code(v.request).is_some_and(Op::needs_domain) {
            assert!(req.domain.is_some(), "{}", v.name);
        }
        match v.transport.as_str() {
            "multicast" => {
                let Ok(Callback::To(to)) = req.callback() else {
                    panic!("{}: no call back", v.name)
                };
                assert!(to.is_ipv4() && to.port() == 1229, "{}: {to}", v.name);
                assert_eq!((req.addrlen, req.family), (4, 2), "{}", v.name);
            }
            _ => {
                assert_eq!(req.callback(), Ok(Callback::None), "{}", v.name);
                assert_eq!((req.addrlen, req.port, req.family), (0, 0, 0), "{}", v.name);
            }
        }
        assert!(req.seqno < 1_000_000, "C seqnos are tv_usec: {}", v.name);
        seen.insert(v.name.clone(), req.clone());

        // Signature, and byte-identical re-encoding with the same random bytes.
        let again = req.encode_signed(v.hash, Some(&client_key), un.random()).unwrap();
        assert_eq!(&again[..], &raw[..], "{}: re-encoding differs", v.name);
        let verdict = un.clone().verify(Some(&k), v.hash);
        if v.key == "key.bin" {
            verdict.unwrap_or_else(|e| panic!("{}: {e}", v.name));
        } else {
            assert_eq!(verdict, Err(VerifyError::Mismatch), "{}", v.name);
            assert!(un.verify(Some(&client_key), v.hash).is_ok());
        }

        // The streams.
        let a2d = read(&format!("{}.agent_to_daemon.bin", v.name));
        let d2a = read(&format!("{}.daemon_to_agent.bin", v.name));
        let a2d = if v.transport == "tcp" {
            assert_eq!(
                &a2d[..REQUEST_LEN],
                &raw[..],
                "{}: tcp stream starts with the request",
                v.name
            );
            &a2d[REQUEST_LEN..]
        } else {
            &a2d[..]
        };
        let Some(result) = v.result else {
            // Wrong key: the daemon closed without sending a byte.
            assert!(d2a.is_empty(), "{}", v.name);
            assert_eq!(v.exit, 1);
            continue;
        };
        let answer = if v.auth == HashType::None {
            assert!(a2d.is_empty(), "{}", v.name);
            &d2a[..]
        } else {
            assert_eq!(a2d.len(), 2 * CHALLENGE_LEN, "{}", v.name);
            let (c_agent, c_daemon) = (chunk(a2d, 0), chunk(&d2a, CHALLENGE_LEN));
            // Our agent role, with the agent's captured challenge.
            let mut agent = Handshake::new(Role::Agent, v.auth, Some(&k), c_agent).unwrap();
            assert_eq!(agent.poll_transmit(), Some(c_agent));
            assert_eq!(agent.feed(&d2a).unwrap(), 2 * CHALLENGE_LEN, "{}", v.name);
            assert_eq!(
                agent.poll_transmit(),
                Some(chunk(a2d, CHALLENGE_LEN)),
                "{}: agent answer",
                v.name
            );
            assert!(agent.is_done());
            // Our daemon role, with the daemon's captured challenge.
            let mut daemon = Handshake::new(Role::Daemon, v.auth, Some(&k), c_daemon).unwrap();
            assert_eq!(daemon.poll_transmit(), None);
            daemon.feed(&c_agent).unwrap();
            assert_eq!(
                daemon.poll_transmit(),
                Some(chunk(&d2a, 0)),
                "{}: daemon answer",
                v.name
            );
            assert_eq!(daemon.poll_transmit(), Some(c_daemon));
            daemon.feed(&a2d[CHALLENGE_LEN..]).unwrap();
            assert!(daemon.is_done(), "{}", v.name);
            // Digest padding as captured.
            assert!(d2a[v.auth.digest_len()..CHALLENGE_LEN].iter().all(|&b| b == 0));
            &d2a[2 * CHALLENGE_LEN..]
        };
        check_answer(v, result, answer, false);
    }
    // The C agent keeps seqno across the per-address copies but each run has
    // its own: no two vectors share one (sanity of the capture).
    assert!(seen.len() >= 14);
}

/// Parse an answer (network or serial form) and re-encode it.
fn check_answer(v: &Vector, result: u8, answer: &[u8], serial_form: bool) {
    let hosts: Vec<HostState>;
    let final_code;
    if serial_form {
        let mut r = serial::AnswerReader::default();
        let events = r.feed(answer).unwrap();
        hosts = events
            .iter()
            .filter_map(|e| {
                if let SerialAnswer::Host(h) = e {
                    Some(h.clone())
                } else {
                    None
                }
            })
            .collect();
        final_code = events.iter().find_map(|e| match e {
            SerialAnswer::Result(c) | SerialAnswer::ListResult(c) => Some(c.code()),
            _ => None,
        });
        assert!(r.is_done(), "{}", v.name);
    } else {
        let mut r = AnswerReader::default();
        let events = r.feed(answer).unwrap();
        hosts = events
            .iter()
            .filter_map(|e| {
                if let AnswerEvent::Host(h) = e {
                    Some(h.clone())
                } else {
                    None
                }
            })
            .collect();
        final_code = events.iter().find_map(|e| match e {
            AnswerEvent::Result(c) | AnswerEvent::ListResult(c) => Some(c.code()),
            _ => None,
        });
        assert!(r.is_done(), "{}", v.name);
    }
    let client = String::from_utf8(read(&format!("{}.client.txt", v.name))).unwrap();
    assert!(
        client.starts_with(&format!("exit={}\n", v.exit)),
        "{}: {client}",
        v.name
    );
    if result == vmfence_proto::RESP_HOSTLIST {
        assert_eq!(Some(hosts.len()), v.entries, "{}", v.name);
        assert_eq!(final_code, v.final_code, "{}", v.name);
        for h in &hosts {
            // What the C client printed for this entry.
            let line = format!(
                "{:<32} {} {}",
                h.name,
                h.uuid,
                if h.is_running() { "on" } else { "off" }
            );
            assert!(
                client.lines().any(|l| l == line),
                "{}: missing line {line:?} in\n{client}",
                v.name
            );
        }
        let (ours, start) = if serial_form {
            (
                serial::encode_host_list(&hosts, Response::from_code(v.final_code.unwrap())),
                5,
            )
        } else {
            (
                vmfence_proto::hostlist::encode_host_list(&hosts, Response::from_code(v.final_code.unwrap())),
                1,
            )
        };
        same_answer_modulo_garbage(&ours, answer, start);
    } else {
        assert_eq!(final_code, Some(result), "{}", v.name);
        assert!(hosts.is_empty());
        let ours = if serial_form {
            serial::encode_response(Response::from_code(result)).to_vec()
        } else {
            vec![result]
        };
        assert_eq!(ours, answer, "{}", v.name);
    }
}

#[test]
fn serial_vectors() {
    let mut n = 0;
    for v in vectors().iter().filter(|v| v.transport == "serial") {
        n += 1;
        let g2h = read(&format!("{}.guest_to_host.bin", v.name));
        let h2g = read(&format!("{}.host_to_guest.bin", v.name));
        let req = SerialRequest::decode(&g2h).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(req.request, v.request);
        assert_eq!(&req.encode()[..], &g2h[..], "{}: re-encoding differs", v.name);
        check_answer(v, v.result.unwrap(), &h2g, true);
    }
    assert!(n >= 3, "serial vectors missing");
}

#[test]
fn the_key_is_the_documented_one() {
    if std::env::var_os("VMFENCE_GOLDEN_DIR").is_none() {
        assert_eq!(read("key.bin"), b"secretkey-abc");
    }
}
