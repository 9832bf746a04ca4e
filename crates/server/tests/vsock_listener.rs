//! The vsock listener without a vsock peer: this machine is itself a guest
//! with no vsock loopback, and CID 2 is the real outer host, so nothing
//! here ever connects over `AF_VSOCK`. What is tested:
//! - the CID → domain map, read from test-driver domain XML with
//!   `<vsock><cid address='N'/></vsock>`;
//! - the whole request handling (signed request, challenge-response both
//!   ways, `groups` by CID or by the domain owning it, answer) over an
//!   in-memory stream, exactly as an accepted vsock stream would get it;
//! - binding the listening socket (listening sends nothing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use vmfence_backend::guests::LibvirtGuests;
use vmfence_backend::libvirt::LibvirtHypervisor;
use vmfence_proto::{Domain, FenceRequest, Handshake, HashType, Key, Op, Response, Role, CHALLENGE_LEN};
use vmfence_server::vsock::{serve_vsock_connection, vsock_listener, CidMap};
use vmfence_server::{Core, Dispatcher, Group, ListenerAuth, Permissions, Timeouts};
use vmfence_testlab::TestDomain;

const KEY: &[u8] = b"vsock listener test key";

struct Setup {
    _dir: tempfile::TempDir,
    core: Arc<Core>,
    cids: Arc<CidMap>,
    auth: Arc<ListenerAuth>,
}

/// node1 (CID 3) and node2 (CID 4) form a cluster by domain name; CID 9 is
/// allowed by a classic `ip` entry; node3 (CID 5) is in no group.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let domains = vec![
        TestDomain::new("node1", 1, true).with_vsock(3),
        TestDomain::new("node2", 2, true).with_vsock(4),
        TestDomain::new("node3", 3, true).with_vsock(5),
    ];
    let file = dir.path().join("node.xml");
    std::fs::write(&file, vmfence_testlab::node_xml(&domains)).unwrap();
    let uri = format!("test://{}", file.display());
    let (backend, _) = LibvirtHypervisor::open(std::slice::from_ref(&uri)).unwrap();
    let groups = vec![
        Group {
            name: "cluster".into(),
            ips: vec![],
            uuids: vec!["node1".into(), "node2".into()],
        },
        Group {
            name: "classic".into(),
            ips: vec!["9".into()],
            uuids: vec!["node2".into()],
        },
    ];
    let core = Arc::new(Core::new(
        Dispatcher::new(Arc::new(backend), Permissions::new(groups)),
        16,
        Timeouts::default(),
    ));
    let auth = Arc::new(ListenerAuth {
        name: "vsock".into(),
        key: Some(Key::from_bytes(KEY).unwrap()),
        min_hash: HashType::Sha256,
        auth: HashType::Sha256,
    });
    let cids = Arc::new(CidMap::new(Arc::new(LibvirtGuests::new(&uri))));
    Setup {
        _dir: dir,
        core,
        cids,
        auth,
    }
}

/// The agent's half over `s`: signed request, challenge-response, result.
async fn agent(mut s: DuplexStream, key: &Key, op: Op, domain: &str, seqno: u32) -> Option<u8> {
    let req = FenceRequest::new(op, Some(Domain::new(domain).unwrap()), seqno);
    let bytes = req.encode_signed(HashType::Sha256, Some(key), [7u8; 6]).unwrap();
    s.write_all(&bytes).await.ok()?;
    let mut hs = Handshake::new(Role::Agent, HashType::Sha256, Some(key), [0x5a; CHALLENGE_LEN]).unwrap();
    let mut buf = [0u8; CHALLENGE_LEN];
    loop {
        while let Some(m) = hs.poll_transmit() {
            s.write_all(&m).await.ok()?;
        }
        if hs.is_done() {
            break;
        }
        let n = s.read(&mut buf[..hs.wanted()]).await.ok()?;
        if n == 0 {
            return None;
        }
        hs.feed(&buf[..n]).ok()?;
    }
    let mut code = [0u8; 1];
    s.read_exact(&mut code).await.ok()?;
    Some(code[0])
}

async fn request(t: &Setup, cid: u32, key: &[u8], op: Op, domain: &str, seqno: u32) -> Option<u8> {
    let (daemon_end, agent_end) = tokio::io::duplex(4096);
    let (core, auth, cids) = (Arc::clone(&t.core), Arc::clone(&t.auth), Arc::clone(&t.cids));
    let daemon = tokio::spawn(async move {
        let mut s = daemon_end;
        serve_vsock_connection(&core, &auth, &cids, cid, 40000, &mut s).await;
    });
    let key = Key::from_bytes(key).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(15), agent(agent_end, &key, op, domain, seqno))
        .await
        .expect("bounded");
    tokio::time::timeout(Duration::from_secs(15), daemon)
        .await
        .unwrap()
        .unwrap();
    answer
}

#[test]
fn cids_map_to_the_domains_that_own_them() {
    let t = setup();
    let r = t.cids.requester(4);
    assert_eq!(r.address.as_deref(), Some("4"));
    assert_eq!(r.guest.as_ref().map(|g| g.name.as_str()), Some("node2"));
    assert_eq!(
        r.guest.as_ref().map(|g| g.uuid.clone()),
        Some(TestDomain::uuid_of(2))
    );
    let unknown = t.cids.requester(77);
    assert_eq!((unknown.address.as_deref(), unknown.guest), (Some("77"), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_are_checked_against_the_domain_owning_the_cid() {
    let t = setup();
    let ok = Response::Success.code();
    let denied = Response::PermissionDenied.code();
    // node1 (CID 3) may fence node2: same group, matched by domain name.
    assert_eq!(request(&t, 3, KEY, Op::Off, "node2", 1).await, Some(ok));
    assert_eq!(
        request(&t, 3, KEY, Op::Status, "node2", 2).await,
        Some(Response::Off.code())
    );
    assert_eq!(request(&t, 3, KEY, Op::On, "node2", 3).await, Some(ok));
    // node3 (CID 5) is in no group.
    assert_eq!(request(&t, 5, KEY, Op::Off, "node1", 4).await, Some(denied));
    // A classic `ip = "9"` entry still works for an unmapped CID.
    assert_eq!(request(&t, 9, KEY, Op::Status, "node2", 5).await, Some(ok));
    assert_eq!(request(&t, 9, KEY, Op::Status, "node1", 6).await, Some(denied));
    // A wrong key gets no answer and changes nothing.
    assert_eq!(request(&t, 3, b"wrong key", Op::Off, "node2", 7).await, None);
    assert_eq!(request(&t, 3, KEY, Op::Status, "node2", 8).await, Some(ok));
}

#[test]
fn the_listening_socket_binds() {
    // Listening on AF_VSOCK needs the vsock core module; it sends nothing.
    match vsock_listener(0x7fff_1229) {
        Ok(_) => {}
        Err(e) if e.raw_os_error() == Some(libc_eafnosupport()) => {
            assert!(
                std::env::var("CI").map_or(true, |v| v.is_empty() || v == "0" || v == "false"),
                "AF_VSOCK not supported by this kernel under CI"
            );
            eprintln!("SKIPPED: AF_VSOCK not supported here: {e}");
        }
        Err(e) => panic!("binding vsock failed: {e}"),
    }
}

fn libc_eafnosupport() -> i32 {
    97
}
