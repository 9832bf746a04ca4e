//! The dispatcher: turns an authenticated request into backend calls and an
//! answer (spec §4.4), with the `groups` check, and serialises requests for
//! the same VM. It knows nothing of sockets; listeners hand it requests and
//! write the answer it returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vmfence_backend::{BackendError, Hypervisor, Outcome, Power};
use vmfence_proto::{Domain, HostState, Op, Response};

use crate::permissions::{Permissions, Requester};

/// What to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// One result code.
    Code(Response),
    /// A host list and its final code.
    List(Vec<HostState>, Response),
}

/// The result of one request, for the answer and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// What to send.
    pub answer: Answer,
    /// Short outcome word for logs (`done`, `on`, `off`, `denied`, ...).
    pub outcome: &'static str,
    /// The reason behind a failure or anything noteworthy.
    pub detail: Option<String>,
}

impl Executed {
    fn code(code: Response, outcome: &'static str, detail: Option<String>) -> Executed {
        Executed {
            answer: Answer::Code(code),
            outcome,
            detail,
        }
    }

    fn failed(e: &BackendError) -> Executed {
        let outcome = match e {
            BackendError::NotFound(_) => "unknown-domain",
            BackendError::Unavailable(_) => "backend-down",
            BackendError::NotConfirmedOff { .. } => "not-confirmed-off",
            BackendError::TimedOut { .. } => "backend-timeout",
            BackendError::Failed { .. } => "failed",
        };
        Executed::code(Response::Fail, outcome, Some(e.to_string()))
    }
}

/// How long a backend call may take before the request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendLimits {
    /// status, list, monitor.
    pub query: Duration,
    /// off, on, reboot (these include waiting for the VM to show off).
    pub power: Duration,
}

impl Default for BackendLimits {
    /// Queries 10 s; power actions 40 s: longer than the libvirt backend's
    /// 15 s wait for a VM to show off plus a restart, shorter than the
    /// point where waiting longer helps nobody.
    fn default() -> Self {
        BackendLimits {
            query: Duration::from_secs(10),
            power: Duration::from_secs(40),
        }
    }
}

/// Dispatches requests to one backend.
#[derive(Debug)]
pub struct Dispatcher {
    backend: Arc<dyn Hypervisor>,
    permissions: Permissions,
    vm_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    limits: BackendLimits,
}

impl Dispatcher {
    /// A dispatcher over `backend` with the `groups` map.
    pub fn new(backend: Arc<dyn Hypervisor>, permissions: Permissions) -> Dispatcher {
        Dispatcher {
            backend,
            permissions,
            vm_locks: Mutex::new(HashMap::new()),
            limits: BackendLimits::default(),
        }
    }

    /// Change the time limits of backend calls.
    pub fn with_limits(mut self, limits: BackendLimits) -> Dispatcher {
        self.limits = limits;
        self
    }

    /// The permission map in force.
    pub fn permissions(&self) -> &Permissions {
        &self.permissions
    }

    /// Carry out request `code` on `domain` for requester `src`.
    pub async fn execute(&self, code: u8, domain: Option<&Domain>, src: &Requester) -> Executed {
        let Some(op) = Op::from_code(code) else {
            return Executed::code(
                Response::Fail,
                "unknown-request",
                Some(format!("request code {code}")),
            );
        };
        match op {
            Op::Null => Executed::code(Response::Fail, "null", None),
            Op::DevStatus => match self
                .blocking("monitor", self.limits.query, None, |b| b.health())
                .await
            {
                Ok(()) => Executed::code(Response::Success, "ok", None),
                Err(e) => Executed::failed(&e),
            },
            Op::HostList => self.list(src).await,
            Op::Status | Op::Off | Op::On | Op::Reboot => {
                let Some(domain) = domain else {
                    return Executed::code(
                        Response::Fail,
                        "no-domain",
                        Some("request names no domain".into()),
                    );
                };
                if !self.permissions.allows(src, domain.as_str()) {
                    return Executed::code(
                        Response::PermissionDenied,
                        "denied",
                        Some(format!("{src} may not act on {domain} (groups)")),
                    );
                }
                self.power(op, domain.as_str()).await
            }
        }
    }

    /// A power request; requests for one VM run one at a time. The VM's
    /// lock is held by the backend work itself, so a call that outlives
    /// its time limit keeps the VM locked until it really ends.
    async fn power(&self, op: Op, target: &str) -> Executed {
        let t = target.to_string();
        let lock = Some(self.vm_lock(target));
        match op {
            Op::Status => match self
                .blocking("status", self.limits.query, lock, move |b| b.status(&t))
                .await
            {
                Ok(Power::On(_)) => Executed::code(Response::Success, "on", None),
                Ok(Power::Off) => Executed::code(Response::Off, "off", None),
                Err(e) => Executed::failed(&e),
            },
            _ => {
                let result = self
                    .blocking(op.name(), self.limits.power, lock, move |b| match op {
                        Op::Off => b.off(&t),
                        Op::On => b.on(&t),
                        _ => b.reboot(&t),
                    })
                    .await;
                match result {
                    Ok(Outcome::Done) => Executed::code(Response::Success, "done", None),
                    Ok(Outcome::AlreadyThere) => Executed::code(
                        Response::Success,
                        "already",
                        Some(format!("already {}", if op == Op::On { "on" } else { "off" })),
                    ),
                    Ok(Outcome::OffButNotRestarted(why)) => Executed::code(
                        Response::Success,
                        "off-not-restarted",
                        Some(format!("powered off, but did not start again: {why}")),
                    ),
                    Err(e) => Executed::failed(&e),
                }
            }
        }
    }

    async fn list(&self, src: &Requester) -> Executed {
        match self.blocking("list", self.limits.query, None, |b| b.list()).await {
            Ok(vms) => {
                let entries: Vec<HostState> = vms
                    .into_iter()
                    .filter(|v| self.permissions.shows(src, &v.name, &v.uuid))
                    .map(|v| HostState {
                        name: v.name,
                        uuid: v.uuid,
                        state: v.state,
                    })
                    .collect();
                Executed {
                    answer: Answer::List(entries, Response::Success),
                    outcome: "listed",
                    detail: None,
                }
            }
            Err(e) => Executed::failed(&e),
        }
    }

    fn vm_lock(&self, target: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.vm_locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        if locks.len() > 4096 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(target.to_ascii_lowercase()).or_default().clone()
    }

    /// Run `f` on a worker thread, holding `lock` (a VM's) while it runs,
    /// within `limit` (the lock wait counts against it); `action` names the
    /// call in a time-out error.
    async fn blocking<T: Send + 'static>(
        &self,
        action: &'static str,
        limit: Duration,
        lock: Option<Arc<tokio::sync::Mutex<()>>>,
        f: impl FnOnce(&dyn Hypervisor) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let backend = Arc::clone(&self.backend);
        let work = async move {
            let guard = match lock {
                Some(l) => Some(l.lock_owned().await),
                None => None,
            };
            tokio::task::spawn_blocking(move || {
                let _guard = guard;
                f(backend.as_ref())
            })
            .await
            .unwrap_or_else(|e| Err(BackendError::Unavailable(format!("backend task failed: {e}"))))
        };
        tokio::time::timeout(limit, work)
            .await
            .unwrap_or(Err(BackendError::TimedOut {
                action,
                seconds: limit.as_secs(),
            }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use vmfence_backend::memory::{Faults, MemoryHypervisor};

    use super::*;
    use crate::permissions::Group;

    fn h() -> Requester {
        Requester::address("h")
    }

    const U1: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    fn setup(groups: Vec<Group>) -> (Arc<MemoryHypervisor>, Dispatcher) {
        let mem = Arc::new(MemoryHypervisor::with_vms(&[
            ("vm1", U1, true),
            ("vm2", "fe0c0000-0000-0000-0000-000000000002", false),
        ]));
        let d = Dispatcher::new(mem.clone(), Permissions::new(groups));
        (mem, d)
    }

    fn dom(s: &str) -> Domain {
        Domain::new(s).unwrap()
    }

    #[tokio::test]
    async fn codes_follow_the_classic_table() {
        let (_, d) = setup(vec![]);
        let code = |e: Executed| match e.answer {
            Answer::Code(c) => c,
            Answer::List(..) => panic!("list"),
        };
        assert_eq!(
            code(d.execute(4, Some(&dom("vm1")), &h()).await),
            Response::Success
        );
        assert_eq!(code(d.execute(4, Some(&dom("vm2")), &h()).await), Response::Off);
        assert_eq!(code(d.execute(1, Some(&dom(U1)), &h()).await), Response::Success);
        assert_eq!(code(d.execute(4, Some(&dom("vm1")), &h()).await), Response::Off);
        assert_eq!(
            code(d.execute(3, Some(&dom("vm1")), &h()).await),
            Response::Success
        );
        assert_eq!(
            code(d.execute(2, Some(&dom("vm1")), &h()).await),
            Response::Success
        );
        assert_eq!(code(d.execute(0, None, &h()).await), Response::Fail);
        assert_eq!(code(d.execute(5, None, &h()).await), Response::Success);
        assert_eq!(code(d.execute(9, None, &h()).await), Response::Fail);
        let unknown = d.execute(1, Some(&dom("nope")), &h()).await;
        assert_eq!(
            (unknown.answer, unknown.outcome),
            (Answer::Code(Response::Fail), "unknown-domain")
        );
        // Unlike the classic daemon, an unknown VM is not reported off.
        assert_eq!(code(d.execute(4, Some(&dom("nope")), &h()).await), Response::Fail);
    }

    #[tokio::test]
    async fn groups_deny_and_filter() {
        let (mem, d) = setup(vec![Group {
            name: "g".into(),
            ips: vec!["10.0.0.1".into()],
            uuids: vec![U1.into()],
        }]);
        let e = d
            .execute(1, Some(&dom("vm2")), &Requester::address("10.0.0.1"))
            .await;
        assert_eq!(e.answer, Answer::Code(Response::PermissionDenied));
        let e = d
            .execute(1, Some(&dom(U1)), &Requester::address("10.0.0.9"))
            .await;
        assert_eq!(e.answer, Answer::Code(Response::PermissionDenied));
        assert!(mem.calls().is_empty(), "nothing reached the backend");
        match d.execute(6, None, &Requester::address("10.0.0.1")).await.answer {
            Answer::List(l, Response::Success) => assert_eq!(l.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn backend_down_and_unconfirmed_off_fail_with_reasons() {
        let (mem, d) = setup(vec![]);
        mem.set_faults(Faults {
            unavailable: true,
            ..Faults::default()
        });
        let e = d.execute(6, None, &h()).await;
        assert_eq!(
            (e.answer, e.outcome),
            (Answer::Code(Response::Fail), "backend-down")
        );
        mem.set_faults(Faults {
            off_is_ignored: true,
            ..Faults::default()
        });
        let e = d.execute(1, Some(&dom("vm1")), &h()).await;
        assert_eq!(
            (e.answer, e.outcome),
            (Answer::Code(Response::Fail), "not-confirmed-off")
        );
        assert!(e.detail.unwrap().contains("not confirmed off"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn same_vm_is_serialised_other_vms_run_in_parallel() {
        let (mem, d) = setup(vec![]);
        mem.set_faults(Faults {
            delay: Some(Duration::from_millis(300)),
            ..Faults::default()
        });
        let (v1, v1b, v2) = (dom("vm1"), dom("vm1"), dom("vm2"));
        let h = h();
        let (a, b) = tokio::join!(d.execute(4, Some(&v1), &h), d.execute(4, Some(&v1b), &h));
        assert_eq!((a.outcome, b.outcome), ("on", "on"));
        assert_eq!(mem.max_concurrency(), 1, "requests for one VM never overlap");
        let (a, b) = tokio::join!(d.execute(4, Some(&v1), &h), d.execute(4, Some(&v2), &h));
        assert_eq!((a.outcome, b.outcome), ("on", "off"));
        assert_eq!(mem.max_concurrency(), 2, "requests for different VMs overlap");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_hung_backend_fails_the_request_and_keeps_the_vm_locked() {
        let (mem, d) = setup(vec![]);
        let d = d.with_limits(BackendLimits {
            query: Duration::from_millis(150),
            power: Duration::from_millis(150),
        });
        mem.set_faults(Faults {
            delay: Some(Duration::from_millis(600)),
            ..Faults::default()
        });
        let e = d.execute(1, Some(&dom("vm1")), &h()).await;
        assert_eq!(
            (e.answer, e.outcome),
            (Answer::Code(Response::Fail), "backend-timeout")
        );
        assert!(e.detail.unwrap().contains("no answer from the hypervisor"));
        // The off is still running: a status of the same VM may not
        // overlap it, and with a longer limit it sees its result.
        let d = d.with_limits(BackendLimits {
            query: Duration::from_secs(5),
            power: Duration::from_secs(5),
        });
        let e = d.execute(4, Some(&dom("vm1")), &h()).await;
        assert_eq!(e.outcome, "off");
        assert_eq!(mem.max_concurrency(), 1, "calls for one VM never overlap");
    }
}
