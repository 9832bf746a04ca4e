//! The libvirt backend, on the official `virt` bindings.
//!
//! Several URIs may be configured (`uri`, `uri1`, `uri2`, … in
//! fence_virt.conf); a lookup tries them in order and the first hit wins, and
//! a list concatenates all of them (the classic daemon overwrote earlier
//! connections' entries). A dead connection is noticed before each
//! operation and reopened once; if that fails the operation fails at once
//! with the reason, instead of blocking the daemon as the classic loop did.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::enumutil::Enum;
use virt::error::ErrorNumber;
use vmfence_proto::is_uuid;

use crate::{power_of, vir_state, BackendError, Hypervisor, Outcome, Power, VmInfo};

/// How long `off` and `reboot` wait for libvirt to show the VM off.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);
/// Connections per URI, used in turn: libvirtd runs at most
/// `max_client_requests` (default 5) calls of one connection at once.
const POOL: usize = 4;

/// libvirt connections to one or more hypervisors.
#[derive(Debug)]
pub struct LibvirtHypervisor {
    uris: Vec<String>,
    conns: Mutex<Vec<Option<Connect>>>,
    next: AtomicUsize,
    settle: Duration,
}

impl LibvirtHypervisor {
    /// Open every URI. Fails only when none opens; the per-URI errors of
    /// the others are returned for logging.
    pub fn open(uris: &[String]) -> Result<(LibvirtHypervisor, Vec<String>), BackendError> {
        // libvirt's default error handler prints every error on stderr.
        virt::error::clear_error_callback();
        if uris.is_empty() {
            return Err(BackendError::Unavailable("no libvirt URI configured".into()));
        }
        let mut conns = Vec::new();
        let mut problems = Vec::new();
        for uri in uris {
            match Connect::open(Some(uri)) {
                Ok(c) => conns.push(Some(c)),
                Err(e) => {
                    problems.push(format!("{uri}: {}", e.message()));
                    conns.push(None);
                }
            }
            // the other connections of the pool open on first use
            conns.extend(std::iter::repeat_with(|| None).take(POOL - 1));
        }
        if conns.iter().all(Option::is_none) {
            return Err(BackendError::Unavailable(format!(
                "could not connect to any hypervisor ({})",
                problems.join("; ")
            )));
        }
        let h = LibvirtHypervisor {
            uris: uris.to_vec(),
            conns: Mutex::new(conns),
            next: AtomicUsize::new(0),
            settle: DEFAULT_SETTLE,
        };
        Ok((h, problems))
    }

    /// Change how long `off`/`reboot` wait for the VM to show as off.
    pub fn with_settle_time(mut self, settle: Duration) -> LibvirtHypervisor {
        self.settle = settle;
        self
    }

    /// The configured URIs.
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// Live connections, reopening dead ones once.
    fn connections(&self) -> Result<Vec<Connect>, BackendError> {
        self.connections_and_problems().map(|(live, _)| live)
    }

    /// Live connections, reopening dead ones once, and why the others are
    /// not (`URI: reason`); an error when none is live.
    fn connections_and_problems(&self) -> Result<(Vec<Connect>, Vec<String>), BackendError> {
        let mut slots = self
            .conns
            .lock()
            .map_err(|_| BackendError::Unavailable("connection lock poisoned".into()))?;
        let mut live = Vec::new();
        let mut problems = Vec::new();
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % POOL;
        for (u, uri) in self.uris.iter().enumerate() {
            // the test driver keeps its state per connection: one only
            let k = if uri.starts_with("test:") { 0 } else { turn };
            let slot = &mut slots[u * POOL + k];
            match refresh(slot, uri) {
                Ok(c) => live.push(c),
                Err(problem) => problems.push(problem),
            }
        }
        if live.is_empty() {
            return Err(BackendError::Unavailable(problems.join("; ")));
        }
        Ok((live, problems))
    }

    /// Find a domain by UUID (when `target` is one) or name. Not found
    /// while some hypervisor does not answer is "unavailable", not "no such
    /// domain": it may well be there.
    fn lookup(&self, target: &str) -> Result<Domain, BackendError> {
        let by_uuid = is_uuid(target);
        let (live, problems) = self.connections_and_problems()?;
        for conn in live {
            let found = if by_uuid {
                conn.lookup_domain_by_uuid_string(target)
            } else {
                conn.lookup_domain_by_name(target)
            };
            match found {
                Ok(d) => return Ok(d),
                Err(e) if e.code() == Enum::Known(ErrorNumber::NoDomain) => continue,
                Err(e) => return Err(BackendError::Unavailable(e.message().to_string())),
            }
        }
        if !problems.is_empty() {
            return Err(BackendError::Unavailable(format!(
                "no domain named or with UUID '{target}' on the hypervisors that answer; not reachable: {}",
                problems.join("; ")
            )));
        }
        Err(BackendError::NotFound(target.to_string()))
    }

    /// Raw state of a domain; a domain that vanished (transient, destroyed)
    /// counts as shut off.
    fn state_of(dom: &Domain) -> Result<u8, virt::error::Error> {
        match dom.state() {
            Ok((s, _)) => Ok(raw_state(s)),
            Err(e) if e.code() == Enum::Known(ErrorNumber::NoDomain) => Ok(vir_state::SHUTOFF),
            Err(e) => Err(e),
        }
    }

    /// Destroy and wait until libvirt shows the domain off (or gone).
    fn destroy_confirmed(
        &self,
        dom: &Domain,
        action: &'static str,
        target: &str,
    ) -> Result<(), BackendError> {
        let failed = |reason: String| BackendError::Failed {
            action,
            domain: target.to_string(),
            reason,
        };
        if let Err(e) = dom.destroy() {
            // It may have stopped by itself meanwhile: only the state counts.
            if Self::state_of(dom).map_err(|e2| failed(e2.message().into()))? != vir_state::SHUTOFF {
                return Err(failed(e.message().into()));
            }
        }
        let deadline = Instant::now() + self.settle;
        loop {
            let state = Self::state_of(dom).map_err(|e| failed(e.message().into()))?;
            if state == vir_state::SHUTOFF {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BackendError::NotConfirmedOff {
                    action,
                    domain: target.to_string(),
                    state,
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The raw libvirt number of a state.
fn raw_state(s: Enum<DomainState, u32>) -> u8 {
    match s {
        Enum::Known(DomainState::NoState) => vir_state::NOSTATE,
        Enum::Known(DomainState::Running) => vir_state::RUNNING,
        Enum::Known(DomainState::Blocked) => vir_state::BLOCKED,
        Enum::Known(DomainState::Paused) => vir_state::PAUSED,
        Enum::Known(DomainState::Shutdown) => vir_state::SHUTDOWN,
        Enum::Known(DomainState::Shutoff) => vir_state::SHUTOFF,
        Enum::Known(DomainState::Crashed) => vir_state::CRASHED,
        Enum::Known(DomainState::PMSuspended) => vir_state::PMSUSPENDED,
        Enum::Unknown(n) => u8::try_from(n).unwrap_or(u8::MAX),
    }
}

/// The connection in `slot`, reopened on `uri` when it is missing or dead;
/// the error is `URI: reason`. The liveness check is a cheap round trip
/// that takes no domain lock: counting domains, say, waits for every
/// domain job in progress (a destroy takes ~2 s on QEMU), which made
/// concurrent requests wait for each other.
pub(crate) fn refresh(slot: &mut Option<Connect>, uri: &str) -> Result<Connect, String> {
    let alive = slot
        .as_ref()
        .is_some_and(|c| c.is_alive().unwrap_or(false) && c.lib_version().is_ok());
    if !alive {
        *slot = None; // drops (closes) the dead connection
        virt::error::clear_error_callback();
        let c = Connect::open(Some(uri)).map_err(|e| format!("{uri}: {}", e.message()))?;
        *slot = Some(c);
    }
    slot.clone().ok_or_else(|| format!("{uri}: not connected"))
}

impl Hypervisor for LibvirtHypervisor {
    fn kind(&self) -> &'static str {
        "libvirt"
    }

    fn list(&self) -> Result<Vec<VmInfo>, BackendError> {
        let mut out = Vec::new();
        for conn in self.connections()? {
            let doms = conn.list_all_domains(0).map_err(|e| BackendError::Failed {
                action: "list",
                domain: String::new(),
                reason: e.message().into(),
            })?;
            for d in doms {
                // A domain may vanish between listing and asking: skip it.
                let (Ok(name), Ok(uuid)) = (d.name(), d.uuid_string()) else {
                    continue;
                };
                let Ok(state) = Self::state_of(&d) else { continue };
                out.push(VmInfo {
                    name,
                    uuid: uuid.to_ascii_lowercase(),
                    state,
                });
            }
        }
        out.sort_by_key(|v| v.name.to_ascii_lowercase());
        Ok(out)
    }

    fn status(&self, target: &str) -> Result<Power, BackendError> {
        let dom = self.lookup(target)?;
        let state = Self::state_of(&dom).map_err(|e| BackendError::Failed {
            action: "status",
            domain: target.into(),
            reason: e.message().into(),
        })?;
        Ok(power_of(state))
    }

    fn off(&self, target: &str) -> Result<Outcome, BackendError> {
        let dom = self.lookup(target)?;
        if Self::state_of(&dom).ok() == Some(vir_state::SHUTOFF) {
            return Ok(Outcome::AlreadyThere);
        }
        self.destroy_confirmed(&dom, "off", target)?;
        Ok(Outcome::Done)
    }

    fn on(&self, target: &str) -> Result<Outcome, BackendError> {
        let dom = self.lookup(target)?;
        let failed = |reason: String| BackendError::Failed {
            action: "on",
            domain: target.to_string(),
            reason,
        };
        match Self::state_of(&dom) {
            Ok(s) if s != vir_state::SHUTOFF => return Ok(Outcome::AlreadyThere),
            Ok(_) => {}
            Err(e) => return Err(failed(e.message().into())),
        }
        dom.create().map_err(|e| failed(e.message().into()))?;
        Ok(Outcome::Done)
    }

    fn reboot(&self, target: &str) -> Result<Outcome, BackendError> {
        let dom = self.lookup(target)?;
        if Self::state_of(&dom).ok() == Some(vir_state::SHUTOFF) {
            return Ok(Outcome::AlreadyThere);
        }
        let persistent = dom.is_persistent().unwrap_or(true);
        // A transient domain disappears when destroyed: keep its definition.
        let xml = if persistent { None } else { dom.xml_desc(0).ok() };
        self.destroy_confirmed(&dom, "reboot", target)?;
        let restarted = if persistent {
            dom.create().map(|_| ())
        } else {
            match (&xml, self.connections()?.first()) {
                (Some(xml), Some(conn)) => conn.create_domain_xml(xml, 0).map(|_| ()),
                _ => {
                    return Ok(Outcome::OffButNotRestarted(
                        "domain definition unavailable".into(),
                    ))
                }
            }
        };
        match restarted {
            Ok(()) => Ok(Outcome::Done),
            Err(e) => Ok(Outcome::OffButNotRestarted(e.message().into())),
        }
    }

    fn health(&self) -> Result<(), BackendError> {
        self.connections().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // libvirt's built-in test driver: one running domain `test` with this
    // UUID; its state lives as long as this process holds a connection.
    const TEST_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    fn node_file(doms: &[(&str, &str, bool)]) -> tempfile_path::TempNode {
        tempfile_path::TempNode::new(doms)
    }

    #[test]
    fn unknown_uri_is_unavailable() {
        let err = LibvirtHypervisor::open(&["bogus:///nowhere".into()]).unwrap_err();
        assert!(matches!(err, BackendError::Unavailable(_)), "{err}");
    }

    #[test]
    fn full_cycle_on_a_test_node() {
        let node = node_file(&[
            ("alpha", "fe0c0000-0000-0000-0000-000000000001", true),
            ("beta", "fe0c0000-0000-0000-0000-000000000002", false),
        ]);
        let (h, problems) = LibvirtHypervisor::open(&[node.uri()]).unwrap();
        assert!(problems.is_empty());
        let names: Vec<_> = h.list().unwrap().into_iter().map(|v| (v.name, v.state)).collect();
        assert_eq!(
            names,
            vec![
                ("alpha".into(), vir_state::RUNNING),
                ("beta".into(), vir_state::SHUTOFF)
            ]
        );
        assert_eq!(h.status("alpha").unwrap(), Power::On(vir_state::RUNNING));
        assert_eq!(
            h.status("FE0C0000-0000-0000-0000-000000000002").unwrap(),
            Power::Off
        );
        assert_eq!(h.off("alpha").unwrap(), Outcome::Done);
        assert_eq!(h.status("alpha").unwrap(), Power::Off);
        assert_eq!(h.off("alpha").unwrap(), Outcome::AlreadyThere);
        assert_eq!(
            h.reboot("alpha").unwrap(),
            Outcome::AlreadyThere,
            "reboot does not start an off VM"
        );
        assert_eq!(h.on("alpha").unwrap(), Outcome::Done);
        assert_eq!(h.on("alpha").unwrap(), Outcome::AlreadyThere);
        assert_eq!(
            h.reboot("fe0c0000-0000-0000-0000-000000000001").unwrap(),
            Outcome::Done
        );
        assert_eq!(h.status("alpha").unwrap(), Power::On(vir_state::RUNNING));
        assert!(matches!(h.off("gamma"), Err(BackendError::NotFound(_))));
        assert!(matches!(h.status("gamma"), Err(BackendError::NotFound(_))));
        h.health().unwrap();
    }

    #[test]
    fn several_uris_are_all_listed_and_searched() {
        let a = node_file(&[("a1", "fe0c0000-0000-0000-0000-0000000000a1", true)]);
        let b = node_file(&[
            ("b1", "fe0c0000-0000-0000-0000-0000000000b1", true),
            ("b2", "fe0c0000-0000-0000-0000-0000000000b2", true),
        ]);
        let (h, _) = LibvirtHypervisor::open(&[a.uri(), "bogus:///x".into(), b.uri()]).unwrap();
        let names: Vec<_> = h.list().unwrap().into_iter().map(|v| v.name).collect();
        assert_eq!(names, vec!["a1", "b1", "b2"]);
        assert_eq!(h.off("b2").unwrap(), Outcome::Done);
        assert_eq!(h.status("b2").unwrap(), Power::Off);
        assert_eq!(h.status("a1").unwrap(), Power::On(vir_state::RUNNING));
        // Not on the hypervisors that answer, but bogus:///x does not: it
        // may be there, so not "no such domain".
        match h.off("c1") {
            Err(BackendError::Unavailable(why)) => {
                assert!(why.contains("'c1'") && why.contains("bogus:///x"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_found_when_every_hypervisor_answers() {
        let a = node_file(&[("a1", "fe0c0000-0000-0000-0000-0000000000a1", true)]);
        let (h, _) = LibvirtHypervisor::open(&[a.uri()]).unwrap();
        assert_eq!(h.status("c1").unwrap_err(), BackendError::NotFound("c1".into()));
    }

    #[test]
    fn default_test_driver_by_uuid() {
        let (h, _) = LibvirtHypervisor::open(&["test:///default".into()]).unwrap();
        assert_eq!(h.status(TEST_UUID).unwrap(), Power::On(vir_state::RUNNING));
    }

    /// Writes a libvirt test-driver node file into a temporary directory.
    mod tempfile_path {
        use std::path::PathBuf;

        pub struct TempNode(PathBuf);

        impl TempNode {
            pub fn new(doms: &[(&str, &str, bool)]) -> TempNode {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let dir = std::env::temp_dir().join(format!("vmfence-backend-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&dir).unwrap();
                let mut xml = String::from("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>1</cores><threads>1</threads><active>1</active><mhz>2000</mhz><model>x86_64</model></cpu><memory>1048576</memory>\n");
                for (name, uuid, on) in doms {
                    let state = if *on {
                        ""
                    } else {
                        "<test:runstate>5</test:runstate>"
                    };
                    xml.push_str(&format!("<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><name>{name}</name><uuid>{uuid}</uuid><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>{state}</domain>\n"));
                }
                xml.push_str("</node>\n");
                let path = dir.join("node.xml");
                std::fs::write(&path, xml).unwrap();
                TempNode(path)
            }

            pub fn uri(&self) -> String {
                format!("test://{}", self.0.display())
            }
        }

        impl Drop for TempNode {
            fn drop(&mut self) {
                if let Some(dir) = self.0.parent() {
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
    }
}
