//! The serial listener in this process against libvirt's test driver: a
//! node file whose domains carry `<serial type='unix' mode='bind'>`
//! sockets, with the test playing QEMU (it listens on those sockets, the
//! listener connects) and the guest (it writes requests on the accepted
//! connection). The C agent over a real pty is in the daemon's tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use vmfence_backend::guests::{ChannelKind, GuestDirectory, LibvirtGuests, MemoryGuests};
use vmfence_backend::libvirt::LibvirtHypervisor;
use vmfence_proto::serial::{AnswerReader, SerialAnswer, SerialRequest};
use vmfence_proto::{Domain, Op, Response};
use vmfence_server::serial::{run_serial, SerialSpec};
use vmfence_server::{Core, Dispatcher, Group, Permissions, Timeouts};
use vmfence_testlab::TestDomain;

const STEP: Duration = Duration::from_secs(5);

struct Node {
    dir: tempfile::TempDir,
    uri: String,
    domains: Vec<TestDomain>,
}

/// g1 and g2 have fence serial sockets in `DIR/fence`, stray has one in
/// another directory, victim and offvm have none.
fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let fence = dir.path().join("fence");
    let other = dir.path().join("other");
    std::fs::create_dir_all(&fence).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    let domains = vec![
        TestDomain::new("g1", 1, true).with_serial(&fence.join("g1.sock")),
        TestDomain::new("g2", 2, true).with_serial(&fence.join("g2.sock")),
        TestDomain::new("stray", 3, true).with_serial(&other.join("stray.sock")),
        TestDomain::new("victim", 4, true),
        TestDomain::new("offvm", 5, false),
    ];
    let file = dir.path().join("node.xml");
    std::fs::write(&file, vmfence_testlab::node_xml(&domains)).unwrap();
    let uri = format!("test://{}", file.display());
    Node { dir, uri, domains }
}

impl Node {
    fn socket(&self, name: &str) -> PathBuf {
        let sub = if name == "stray" { "other" } else { "fence" };
        self.dir.path().join(sub).join(format!("{name}.sock"))
    }

    fn uuid(&self, name: &str) -> String {
        self.domains.iter().find(|d| d.name == name).unwrap().uuid.clone()
    }
}

struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(STEP, self.task).await.unwrap().unwrap();
    }
}

fn start(node: &Node, directory: Arc<dyn GuestDirectory>, groups: Vec<Group>, unrestricted: bool) -> Running {
    let (backend, _) = LibvirtHypervisor::open(std::slice::from_ref(&node.uri)).unwrap();
    let core = Arc::new(Core::new(
        Dispatcher::new(Arc::new(backend), Permissions::new(groups)),
        16,
        Timeouts::default(),
    ));
    let spec = Arc::new(SerialSpec {
        name: "serial".into(),
        directory,
        kind: ChannelKind::Serial,
        path: Some(node.dir.path().join("fence")),
        unrestricted,
        rescan: Duration::from_millis(100),
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_serial(core, spec, shutdown.clone()));
    Running { shutdown, task }
}

/// Play QEMU: listen on the guest's socket, return the listener.
fn qemu(path: &Path) -> UnixListener {
    UnixListener::bind(path).unwrap()
}

async fn accepted(l: &UnixListener) -> UnixStream {
    tokio::time::timeout(STEP, l.accept())
        .await
        .expect("the listener connects to the guest's socket")
        .unwrap()
        .0
}

fn request(op: Op, domain: Option<&str>, seqno: u32) -> [u8; 74] {
    SerialRequest {
        request: op.code(),
        flags: 0,
        domain: domain.map(|d| Domain::new(d).unwrap()),
        seqno,
    }
    .encode()
}

/// Send one request (after `noise`) and read the whole answer.
async fn ask(
    s: &mut UnixStream,
    noise: &[u8],
    op: Op,
    domain: Option<&str>,
    seqno: u32,
) -> Vec<SerialAnswer> {
    s.write_all(noise).await.unwrap();
    s.write_all(&request(op, domain, seqno)).await.unwrap();
    let mut reader = AnswerReader::default();
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while !reader.is_done() {
        let n = tokio::time::timeout(STEP, s.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(n > 0, "listener closed the socket");
        out.extend(reader.feed(&buf[..n]).unwrap());
    }
    out
}

async fn code(s: &mut UnixStream, op: Op, domain: &str, seqno: u32) -> Response {
    match ask(s, b"", op, Some(domain), seqno).await.as_slice() {
        [SerialAnswer::Result(r)] => *r,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guests_fence_through_their_serial_sockets_within_their_groups() {
    let n = node();
    let g1l = qemu(&n.socket("g1"));
    let g2l = qemu(&n.socket("g2"));
    let strayl = qemu(&n.socket("stray"));
    // g1 and victim form a cluster; g2 is in no group.
    let groups = vec![Group {
        name: "c1".into(),
        ips: vec![],
        uuids: vec![n.uuid("g1"), "victim".into()],
    }];
    let run = start(&n, Arc::new(LibvirtGuests::new(&n.uri)), groups, false);
    let mut g1 = accepted(&g1l).await;
    let mut g2 = accepted(&g2l).await;

    assert_eq!(code(&mut g1, Op::Status, "victim", 1).await, Response::Success);
    // Noise before the magic is skipped, including overlapping prefixes.
    match ask(&mut g1, b"\x00garbage aabb abb ab", Op::Off, Some("victim"), 2)
        .await
        .as_slice()
    {
        [SerialAnswer::Result(Response::Success)] => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(code(&mut g1, Op::Status, "victim", 3).await, Response::Off);
    assert_eq!(code(&mut g1, Op::On, "victim", 4).await, Response::Success);
    assert_eq!(code(&mut g1, Op::Reboot, "victim", 5).await, Response::Success);
    assert_eq!(code(&mut g1, Op::Status, "victim", 6).await, Response::Success);
    // Outside its group: denied, and nothing happened.
    assert_eq!(code(&mut g1, Op::Off, "g2", 7).await, Response::PermissionDenied);
    // g2 is in no group: denied everything.
    assert_eq!(
        code(&mut g2, Op::Off, "victim", 1).await,
        Response::PermissionDenied
    );
    assert_eq!(
        code(&mut g1, Op::Status, "g2", 8).await,
        Response::PermissionDenied
    );
    // The list shows what the group may see: g1 (by UUID) and victim.
    let list = ask(&mut g1, b"", Op::HostList, None, 9).await;
    let names: Vec<String> = list
        .iter()
        .filter_map(|a| match a {
            SerialAnswer::Host(h) => Some(h.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["g1", "victim"]);
    assert_eq!(list.last(), Some(&SerialAnswer::ListResult(Response::Success)));

    // A partial request that never completes is dropped after a second;
    // the next request is served.
    g1.write_all(b"abba\x04\x00vic").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(code(&mut g1, Op::Status, "victim", 10).await, Response::Success);

    // The socket outside `path` was never used.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), strayl.accept())
            .await
            .is_err(),
        "a socket outside the configured directory must not be used"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_groups_nothing_is_accepted_unless_unrestricted() {
    let n = node();
    let g1l = qemu(&n.socket("g1"));
    let run = start(&n, Arc::new(LibvirtGuests::new(&n.uri)), vec![], false);
    let mut g1 = accepted(&g1l).await;
    assert_eq!(
        code(&mut g1, Op::Off, "victim", 1).await,
        Response::PermissionDenied
    );
    assert_eq!(
        code(&mut g1, Op::Status, "victim", 2).await,
        Response::PermissionDenied
    );
    run.stop().await;

    let run = start(&n, Arc::new(LibvirtGuests::new(&n.uri)), vec![], true);
    let mut g1 = accepted(&g1l).await;
    assert_eq!(code(&mut g1, Op::Off, "victim", 3).await, Response::Success);
    assert_eq!(code(&mut g1, Op::Status, "victim", 4).await, Response::Off);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn domains_coming_and_going_are_followed() {
    let n = node();
    let g1l = qemu(&n.socket("g1"));
    let g2l = qemu(&n.socket("g2"));
    let all = LibvirtGuests::new(&n.uri).running_guests().unwrap();
    let g1_only: Vec<_> = all.iter().filter(|g| g.name == "g1").cloned().collect();
    let dir = Arc::new(MemoryGuests::new(g1_only));
    let run = start(&n, dir.clone(), vec![], true);
    let mut g1 = accepted(&g1l).await;
    // g2 is not running yet: not connected.
    assert!(tokio::time::timeout(Duration::from_millis(300), g2l.accept())
        .await
        .is_err());
    // g2 starts: connected; g1 stops: its connection is closed.
    dir.set(all.iter().filter(|g| g.name == "g2").cloned().collect());
    let mut g2 = accepted(&g2l).await;
    let mut buf = [0u8; 8];
    let n1 = tokio::time::timeout(STEP, g1.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n1, 0, "the stopped domain's socket is closed");
    assert_eq!(code(&mut g2, Op::Status, "victim", 1).await, Response::Success);
    // g1 starts again (new QEMU, new connection).
    dir.set(all.iter().filter(|g| g.name.starts_with('g')).cloned().collect());
    let mut g1 = accepted(&g1l).await;
    assert_eq!(code(&mut g1, Op::Status, "offvm", 1).await, Response::Off);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_guests_are_served_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let count = 24;
    let domains: Vec<TestDomain> = (1..=count)
        .map(|i| {
            TestDomain::new(&format!("g{i}"), i, true).with_serial(&dir.path().join(format!("g{i}.sock")))
        })
        .collect();
    let file = dir.path().join("node.xml");
    std::fs::write(&file, vmfence_testlab::node_xml(&domains)).unwrap();
    let uri = format!("test://{}", file.display());
    let listeners: Vec<UnixListener> = (1..=count)
        .map(|i| qemu(&dir.path().join(format!("g{i}.sock"))))
        .collect();
    let (backend, _) = LibvirtHypervisor::open(std::slice::from_ref(&uri)).unwrap();
    let core = Arc::new(Core::new(
        Dispatcher::new(Arc::new(backend), Permissions::default()),
        64,
        Timeouts::default(),
    ));
    let spec = Arc::new(SerialSpec {
        name: "serial".into(),
        directory: Arc::new(LibvirtGuests::new(&uri)),
        kind: ChannelKind::Serial,
        path: Some(dir.path().to_path_buf()),
        unrestricted: true,
        rescan: Duration::from_millis(100),
    });
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_serial(core, spec, shutdown.clone()));
    let mut jobs = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        jobs.push(tokio::spawn(async move {
            let mut s = accepted(&l).await;
            // Each guest fences the next one.
            let target = format!("g{}", (i + 1) % count + 1);
            assert_eq!(code(&mut s, Op::Off, &target, i as u32).await, Response::Success);
        }));
    }
    for j in jobs {
        j.await.unwrap();
    }
    shutdown.cancel();
    tokio::time::timeout(STEP, task).await.unwrap().unwrap();
}
