//! The classic C `fence_virt -T` (Debian fence-virt 4.12.1) drives our TCP
//! listener, running in this process on 127.0.0.1 with libvirt's test
//! driver as backend. Loopback TCP only: no namespace needed.
//!
//! When the C client is missing the tests fail under `CI=true` and are
//! skipped with a message otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use vmfence_backend::libvirt::LibvirtHypervisor;
use vmfence_proto::{HashType, Key};
use vmfence_server::{listener, net, Core, Dispatcher, Group, ListenerAuth, Permissions, Timeouts};

const C_CLIENT: &str = "/usr/sbin/fence_virt";
const KEY: &[u8] = b"interop key for the tcp listener\n";

fn c_client_present() -> bool {
    if Path::new(C_CLIENT).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "{C_CLIENT} missing under CI: run scripts/install-deps.sh"
    );
    eprintln!("skipping: {C_CLIENT} not installed (scripts/install-deps.sh installs it)");
    false
}

struct Daemon {
    port: u16,
    shutdown: CancellationToken,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Daemon {
    /// A daemon whose backend is a private test-driver node with the
    /// classic `test` domain (state is per node file, not shared between
    /// tests running in parallel).
    fn start(hash: HashType, auth: HashType, groups: Vec<Group>) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node.xml");
        std::fs::write(
            &node,
            format!(
                "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>1</cores><threads>1</threads>\
                 <active>1</active><mhz>2000</mhz><model>x86_64</model></cpu><memory>1048576</memory>\
                 <domain type='test'><name>test</name><uuid>{TEST_UUID}</uuid><memory>65536</memory>\
                 <vcpu>1</vcpu><os><type>hvm</type></os></domain></node>"
            ),
        )
        .unwrap();
        let uri = format!("test://{}", node.display());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (backend, _) = LibvirtHypervisor::open(&[uri]).unwrap();
        let core = Arc::new(Core::new(
            Dispatcher::new(Arc::new(backend), Permissions::new(groups)),
            64,
            Timeouts {
                auth_step: std::time::Duration::from_secs(2),
                ..Timeouts::default()
            },
        ));
        let auth = Arc::new(ListenerAuth {
            name: "tcp".into(),
            key: Some(Key::from_bytes(KEY).unwrap()),
            min_hash: hash,
            auth,
        });
        let std_listener = net::tcp_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = std_listener.local_addr().unwrap().port();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        rt.spawn(async move {
            let l = tokio::net::TcpListener::from_std(std_listener).unwrap();
            listener::run_tcp(core, auth, l, token).await;
        });
        let mut f = std::fs::File::create(dir.path().join("key")).unwrap();
        f.write_all(KEY).unwrap();
        Daemon {
            port,
            shutdown,
            rt,
            dir,
        }
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("key")
    }

    /// Run the C client with these extra arguments; (exit code, stdout+stderr).
    fn c(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(C_CLIENT)
            .args(["-T", "127.0.0.1", "-p", &self.port.to_string(), "-t", "5"])
            .arg("-k")
            .arg(self.key_path())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = &self.rt;
    }
}

const TEST_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

#[test]
fn every_action_by_name_and_uuid() {
    if !c_client_present() {
        return;
    }
    let d = Daemon::start(HashType::Sha256, HashType::Sha256, vec![]);
    let (rc, out) = d.c(&["-o", "list"]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("test ") && l.contains(TEST_UUID) && l.ends_with(" on")),
        "{out}"
    );
    assert_eq!(d.c(&["-o", "status", "-n", "test"]), (0, "Status: ON\n".into()));
    assert_eq!(d.c(&["-o", "monitor"]).0, 0);
    assert_eq!(d.c(&["-o", "off", "-n", "test"]).0, 0);
    assert_eq!(
        d.c(&["-o", "status", "-n", &TEST_UUID.to_uppercase()]),
        (2, "Status: OFF\n".into())
    );
    let (rc, out) = d.c(&["-o", "list"]);
    assert!(rc == 0 && out.contains(" off"), "{out}");
    assert_eq!(
        d.c(&["-o", "reboot", "-n", "test"]).0,
        0,
        "reboot of an off VM succeeds and leaves it off"
    );
    assert_eq!(d.c(&["-o", "status", "-n", "test"]).0, 2);
    assert_eq!(d.c(&["-o", "on", "-n", TEST_UUID]).0, 0);
    assert_eq!(d.c(&["-o", "status", "-n", "test"]).0, 0);
    assert_eq!(d.c(&["-o", "reboot", "-n", "test"]).0, 0);
    assert_eq!(d.c(&["-o", "status", "-n", "test"]).0, 0);
    // Unknown domain: a failure with a reason, not "off".
    assert_eq!(d.c(&["-o", "off", "-n", "nosuchvm"]).0, 1);
    assert_eq!(d.c(&["-o", "status", "-n", "nosuchvm"]).0, 1);
}

#[test]
fn wrong_key_and_weak_hash_are_refused() {
    if !c_client_present() {
        return;
    }
    let d = Daemon::start(HashType::Sha256, HashType::Sha256, vec![]);
    let other = d.dir.path().join("other");
    std::fs::write(&other, b"a different key").unwrap();
    let out = Command::new(C_CLIENT)
        .args([
            "-T",
            "127.0.0.1",
            "-p",
            &d.port.to_string(),
            "-t",
            "3",
            "-o",
            "status",
            "-n",
            "test",
        ])
        .arg("-k")
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(d.c(&["-c", "sha1", "-o", "status", "-n", "test"]).0, 1);
    assert_eq!(
        d.c(&["-c", "sha512", "-o", "status", "-n", "test"]).0,
        0,
        "stronger hash than the minimum"
    );
    // The agent checks our answer with SHA-512 while we answer with SHA-256.
    assert_eq!(d.c(&["-C", "sha512", "-o", "status", "-n", "test"]).0, 1);
    // Still serving after all that.
    assert_eq!(d.c(&["-o", "status", "-n", "test"]).0, 0);
}

#[test]
fn groups_refuse_with_permission_denied() {
    if !c_client_present() {
        return;
    }
    let groups = vec![Group {
        name: "g".into(),
        ips: vec!["127.0.0.1".into()],
        uuids: vec![TEST_UUID.into()],
    }];
    let d = Daemon::start(HashType::Sha256, HashType::Sha256, groups);
    assert_eq!(d.c(&["-o", "status", "-n", TEST_UUID]).0, 0);
    let (rc, out) = d.c(&["-o", "status", "-n", "test"]);
    assert_eq!(
        rc, 3,
        "listed by UUID only: the name is refused, as in the classic daemon: {out}"
    );
    assert!(out.contains("Permission denied"), "{out}");
}
