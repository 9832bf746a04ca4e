//! `fence_virt -T` against a scripted daemon on 127.0.0.1, built from the
//! protocol crate: answers no real daemon gives (unknown result bytes,
//! garbage in host-list padding, a list cut short, silence), and a look at
//! the request the agent sends. Loopback TCP only; no root needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use vmfence_proto::hostlist::TERMINATOR;
use vmfence_proto::{
    FenceRequest, Handshake, HashType, HostState, Key, Role, UnverifiedRequest, REQUEST_LEN, RESP_HOSTLIST,
};

const VIRT: &str = env!("CARGO_BIN_EXE_fence_virt");
const KEY: &[u8] = b"a test key\n";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn fence_virt(key: &std::path::Path, addr: SocketAddr, args: &[&str]) -> Out {
    let start = Instant::now();
    let o = Command::new(VIRT)
        .args([
            "-k",
            key.to_str().unwrap(),
            "-T",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
        elapsed: start.elapsed(),
    }
}

/// Accept one connection, check the request, run the daemon side of the
/// handshake with `daemon_key`, then hand the stream and request to `then`.
fn daemon<F>(daemon_key: &'static [u8], then: F) -> (SocketAddr, JoinHandle<FenceRequest>)
where
    F: FnOnce(&mut TcpStream) + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut raw = [0u8; REQUEST_LEN];
        s.read_exact(&mut raw).unwrap();
        let key = Key::from_bytes(daemon_key).unwrap();
        // The signature is checked by the tests that care (a daemon with
        // another key goes on regardless, to reach the challenge).
        let req = UnverifiedRequest::decode(&raw).unwrap().peek().clone();
        let signed_ok = UnverifiedRequest::decode(&raw)
            .unwrap()
            .verify(Some(&key), HashType::Sha256)
            .is_ok();
        assert!(
            signed_ok || daemon_key != KEY,
            "the agent's signature does not verify"
        );
        let mut hs = Handshake::new(Role::Daemon, HashType::Sha256, Some(&key), [7u8; 64]).unwrap();
        let mut buf = [0u8; 64];
        while !hs.is_done() {
            while let Some(m) = hs.poll_transmit() {
                if s.write_all(&m).is_err() {
                    return req;
                }
            }
            let want = hs.wanted();
            if want == 0 {
                break;
            }
            let Ok(n) = s.read(&mut buf[..want]) else {
                return req;
            };
            if n == 0 || hs.feed(&buf[..n]).is_err() {
                return req;
            }
        }
        then(&mut s);
        req
    });
    (addr, h)
}

fn key_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("key");
    std::fs::write(&p, KEY).unwrap();
    (d, p)
}

#[test]
fn unknown_and_permission_answers_pass_through() {
    let (_d, key) = key_file();
    for (byte, code, words) in [
        (42u8, 42, "Unknown response (42)"),
        (3, 3, "Permission denied"),
        (1, 1, "Operation failed"),
    ] {
        let (addr, h) = daemon(KEY, move |s| s.write_all(&[byte]).unwrap());
        let o = fence_virt(&key, addr, &["-o", "off", "-n", "vm1"]);
        assert_eq!(o.code, code, "{}", o.stderr);
        assert!(o.stderr.contains(words), "{}", o.stderr);
        assert!(o.stdout.is_empty());
        let req = h.join().unwrap();
        assert_eq!(req.request, 1);
        assert_eq!(req.domain.as_ref().map(|d| d.as_str()), Some("vm1"));
        assert_eq!(
            (req.family, req.port, req.addrlen),
            (0, 0, 0),
            "TCP requests carry no call back"
        );
    }
}

#[test]
fn requests_use_random_sequence_numbers() {
    let (_d, key) = key_file();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        let (addr, h) = daemon(KEY, |s| s.write_all(&[0]).unwrap());
        assert_eq!(fence_virt(&key, addr, &["-o", "status", "-n", "vm1"]).code, 0);
        seen.insert(h.join().unwrap().seqno);
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn host_list_with_garbage_padding_and_a_paused_vm() {
    let (_d, key) = key_file();
    let (addr, h) = daemon(KEY, |s| {
        let mut out = vec![RESP_HOSTLIST];
        for (name, uuid, state) in [
            ("alpha", "11111111-2222-3333-4444-555555555555", 1u8),
            ("paused", "22222222-2222-3333-4444-555555555555", 3),
            ("off", "33333333-2222-3333-4444-555555555555", 5),
        ] {
            let mut e = HostState {
                name: name.into(),
                uuid: uuid.into(),
                state,
            }
            .encode();
            // What the classic daemon leaves there: stack garbage.
            e[63] = 0x33;
            e[127] = 0xe5;
            e[129] = 0xf6;
            out.extend_from_slice(&e);
        }
        out.extend_from_slice(&TERMINATOR);
        out.push(0);
        s.write_all(&out).unwrap();
    });
    let o = fence_virt(&key, addr, &["-o", "list"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout,
        format!(
            "{:<32} 11111111-2222-3333-4444-555555555555 on\n{:<32} 22222222-2222-3333-4444-555555555555 off\n\
             {:<32} 33333333-2222-3333-4444-555555555555 off\n",
            "alpha", "paused", "off"
        )
    );
    let req = h.join().unwrap();
    assert_eq!(req.request, 6);
    assert!(req.domain.is_none());
}

#[test]
fn a_list_cut_short_is_a_failure_with_nothing_on_stdout() {
    let (_d, key) = key_file();
    let (addr, h) = daemon(KEY, |s| {
        let mut out = vec![RESP_HOSTLIST];
        out.extend_from_slice(
            &HostState {
                name: "a".into(),
                uuid: "u".into(),
                state: 1,
            }
            .encode(),
        );
        out.extend_from_slice(&[1, 2, 3]);
        s.write_all(&out).unwrap();
    });
    let o = fence_virt(&key, addr, &["-o", "list"]);
    h.join().unwrap();
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.is_empty(),
        "a partial list must not reach Pacemaker: {}",
        o.stdout
    );
    assert!(
        o.stderr
            .contains("closed the connection while reading the host list"),
        "{}",
        o.stderr
    );
}

#[test]
fn a_silent_daemon_is_bounded_by_the_timeout() {
    let (_d, key) = key_file();
    let (addr, h) = daemon(KEY, |s| {
        // Say nothing until the agent gives up.
        let mut b = [0u8; 1];
        let _ = s.read(&mut b);
    });
    let o = fence_virt(&key, addr, &["-o", "status", "-n", "vm", "-t", "1"]);
    h.join().unwrap();
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("timed out while waiting for the result"),
        "{}",
        o.stderr
    );
    assert!(o.elapsed < Duration::from_secs(3), "{:?}", o.elapsed);
}

#[test]
fn a_daemon_with_another_key_is_caught_by_the_challenge() {
    let (_d, key) = key_file();
    let (addr, h) = daemon(b"another key", |_| {});
    let o = fence_virt(&key, addr, &["-o", "status", "-n", "vm"]);
    h.join().unwrap();
    assert_eq!(o.code, 1);
    // Our fake daemon skips its own signature check, so the agent sees the
    // wrong answer to its challenge.
    assert!(
        o.stderr.contains("answered our challenge wrongly"),
        "{}",
        o.stderr
    );
}
