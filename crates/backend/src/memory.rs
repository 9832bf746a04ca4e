//! An in-memory hypervisor for unit tests of the daemon: VMs in a map,
//! with failures and delays that tests switch on.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use vmfence_proto::is_uuid;

use crate::{power_of, vir_state, BackendError, Hypervisor, Outcome, Power, VmInfo};

/// What the next operations should do instead of succeeding.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every call fails as if the hypervisor were down.
    pub unavailable: bool,
    /// `off` returns but leaves the VM running.
    pub off_is_ignored: bool,
    /// `on` fails.
    pub on_fails: bool,
    /// Every call sleeps this long first.
    pub delay: Option<Duration>,
}

/// The in-memory hypervisor.
#[derive(Debug, Default)]
pub struct MemoryHypervisor {
    vms: Mutex<BTreeMap<String, VmInfo>>,
    faults: Mutex<Faults>,
    calls: Mutex<Vec<String>>,
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
}

impl MemoryHypervisor {
    /// A hypervisor with these VMs: `(name, uuid, running)`.
    pub fn with_vms(vms: &[(&str, &str, bool)]) -> MemoryHypervisor {
        let h = MemoryHypervisor::default();
        if let Ok(mut map) = h.vms.lock() {
            for (name, uuid, on) in vms {
                let state = if *on {
                    vir_state::RUNNING
                } else {
                    vir_state::SHUTOFF
                };
                map.insert(
                    (*name).to_string(),
                    VmInfo {
                        name: (*name).into(),
                        uuid: (*uuid).into(),
                        state,
                    },
                );
            }
        }
        h
    }

    /// Replace the fault settings.
    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut f) = self.faults.lock() {
            *f = faults;
        }
    }

    /// The operations carried out so far, as `op:name`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The most operations that ever ran at the same time.
    pub fn max_concurrency(&self) -> usize {
        self.max_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn faults(&self) -> Faults {
        self.faults.lock().map(|f| f.clone()).unwrap_or_default()
    }

    fn enter(&self, op: &str, target: &str) -> Result<Faults, BackendError> {
        use std::sync::atomic::Ordering::SeqCst;
        let f = self.faults();
        if let Some(d) = f.delay {
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.max_in_flight.fetch_max(now, SeqCst);
            std::thread::sleep(d);
            self.in_flight.fetch_sub(1, SeqCst);
        }
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("{op}:{target}"));
        }
        if f.unavailable {
            return Err(BackendError::Unavailable("memory hypervisor switched off".into()));
        }
        Ok(f)
    }

    fn with_vm<T>(&self, target: &str, f: impl FnOnce(&mut VmInfo) -> T) -> Result<T, BackendError> {
        let mut map = self
            .vms
            .lock()
            .map_err(|_| BackendError::Unavailable("poisoned".into()))?;
        let by_uuid = is_uuid(target);
        map.values_mut()
            .find(|v| {
                if by_uuid {
                    v.uuid.eq_ignore_ascii_case(target)
                } else {
                    v.name == target
                }
            })
            .map(f)
            .ok_or_else(|| BackendError::NotFound(target.to_string()))
    }
}

impl Hypervisor for MemoryHypervisor {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn list(&self) -> Result<Vec<VmInfo>, BackendError> {
        self.enter("list", "")?;
        let map = self
            .vms
            .lock()
            .map_err(|_| BackendError::Unavailable("poisoned".into()))?;
        Ok(map.values().cloned().collect())
    }

    fn status(&self, target: &str) -> Result<Power, BackendError> {
        self.enter("status", target)?;
        self.with_vm(target, |v| power_of(v.state))
    }

    fn off(&self, target: &str) -> Result<Outcome, BackendError> {
        let f = self.enter("off", target)?;
        self.with_vm(target, |v| {
            if v.state == vir_state::SHUTOFF {
                return Ok(Outcome::AlreadyThere);
            }
            if f.off_is_ignored {
                return Err(BackendError::NotConfirmedOff {
                    action: "off",
                    domain: v.name.clone(),
                    state: v.state,
                });
            }
            v.state = vir_state::SHUTOFF;
            Ok(Outcome::Done)
        })?
    }

    fn on(&self, target: &str) -> Result<Outcome, BackendError> {
        let f = self.enter("on", target)?;
        self.with_vm(target, |v| {
            if v.state != vir_state::SHUTOFF {
                return Ok(Outcome::AlreadyThere);
            }
            if f.on_fails {
                return Err(BackendError::Failed {
                    action: "on",
                    domain: v.name.clone(),
                    reason: "injected".into(),
                });
            }
            v.state = vir_state::RUNNING;
            Ok(Outcome::Done)
        })?
    }

    fn reboot(&self, target: &str) -> Result<Outcome, BackendError> {
        let f = self.enter("reboot", target)?;
        self.with_vm(target, |v| {
            if v.state == vir_state::SHUTOFF {
                return Ok(Outcome::AlreadyThere);
            }
            if f.off_is_ignored {
                return Err(BackendError::NotConfirmedOff {
                    action: "reboot",
                    domain: v.name.clone(),
                    state: v.state,
                });
            }
            if f.on_fails {
                v.state = vir_state::SHUTOFF;
                return Ok(Outcome::OffButNotRestarted("injected".into()));
            }
            v.state = vir_state::RUNNING;
            Ok(Outcome::Done)
        })?
    }

    fn health(&self) -> Result<(), BackendError> {
        self.enter("health", "").map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const U1: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    #[test]
    fn lifecycle_and_lookup_by_uuid() {
        let h = MemoryHypervisor::with_vms(&[("vm1", U1, true)]);
        assert_eq!(h.status("vm1").unwrap(), Power::On(vir_state::RUNNING));
        assert_eq!(h.off(&U1.to_uppercase()).unwrap(), Outcome::Done);
        assert_eq!(h.status("vm1").unwrap(), Power::Off);
        assert_eq!(h.off("vm1").unwrap(), Outcome::AlreadyThere);
        assert_eq!(h.reboot("vm1").unwrap(), Outcome::AlreadyThere);
        assert_eq!(h.on("vm1").unwrap(), Outcome::Done);
        assert!(matches!(h.status("nope"), Err(BackendError::NotFound(_))));
    }

    #[test]
    fn faults() {
        let h = MemoryHypervisor::with_vms(&[("vm1", U1, true)]);
        h.set_faults(Faults {
            off_is_ignored: true,
            ..Faults::default()
        });
        assert!(matches!(h.off("vm1"), Err(BackendError::NotConfirmedOff { .. })));
        h.set_faults(Faults {
            unavailable: true,
            ..Faults::default()
        });
        assert!(matches!(h.list(), Err(BackendError::Unavailable(_))));
    }
}
