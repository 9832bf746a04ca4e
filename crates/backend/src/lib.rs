//! Hypervisor backends behind one trait.
//!
//! The daemon's dispatcher knows only [`Hypervisor`]; only modules of this
//! crate talk to a hypervisor. Operations are blocking (libvirt's API is);
//! the daemon runs them on worker threads, one VM at a time.
//!
//! Rule every implementation keeps: a VM is reported off, or an `off`
//! successful, only when the hypervisor showed it off after the action
//! ("never report a VM off without proof").

pub mod guests;
pub mod libvirt;
pub mod memory;

use std::fmt;

pub use vmfence_proto::hostlist::vir_state;

/// One VM as listed by a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    /// Name.
    pub name: String,
    /// UUID, lower-case text.
    pub uuid: String,
    /// Raw libvirt state (see [`vir_state`]).
    pub state: u8,
}

/// Power state as far as fencing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// Running, paused, blocked, crashed...: anything but shut off. The raw
    /// libvirt state is kept for logs.
    On(u8),
    /// Shut off.
    Off,
}

/// What a power action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The action was carried out and its effect confirmed.
    Done,
    /// The VM was already in the wanted state; nothing was done.
    AlreadyThere,
    /// Reboot: the VM was confirmed off but did not start again. Fencing
    /// succeeded (the node stopped); the restart failure is reported.
    OffButNotRestarted(String),
}

/// Why an operation failed. Each variant is a reason a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// No VM with that name or UUID on any connection.
    #[error("no domain named or with UUID '{0}'")]
    NotFound(String),
    /// The hypervisor cannot be reached.
    #[error("hypervisor unavailable: {0}")]
    Unavailable(String),
    /// The hypervisor refused or failed the action.
    #[error("{action} of '{domain}' failed: {reason}")]
    Failed {
        /// off, on, reboot, status, list.
        action: &'static str,
        /// Target.
        domain: String,
        /// The hypervisor's message.
        reason: String,
    },
    /// The hypervisor did not answer within the daemon's time limit. The
    /// call may still complete later; nothing is claimed about the VM.
    #[error("{action}: no answer from the hypervisor within {seconds} s")]
    TimedOut {
        /// off, on, reboot, status, list, monitor.
        action: &'static str,
        /// The limit.
        seconds: u64,
    },
    /// The action returned but the VM was still not off when we looked.
    #[error("'{domain}' still in state {state} after {action}; not confirmed off")]
    NotConfirmedOff {
        /// off or reboot.
        action: &'static str,
        /// Target.
        domain: String,
        /// Last raw state seen.
        state: u8,
    },
}

/// A hypervisor (or a group of them) that can fence VMs.
pub trait Hypervisor: Send + Sync + fmt::Debug {
    /// Short name for logs (`libvirt`, `memory`).
    fn kind(&self) -> &'static str;
    /// Every VM, running or not.
    fn list(&self) -> Result<Vec<VmInfo>, BackendError>;
    /// Power state of one VM, looked up by UUID when `target` is a UUID,
    /// by name otherwise.
    fn status(&self, target: &str) -> Result<Power, BackendError>;
    /// Power off hard and confirm the VM is off.
    fn off(&self, target: &str) -> Result<Outcome, BackendError>;
    /// Start the VM.
    fn on(&self, target: &str) -> Result<Outcome, BackendError>;
    /// Power off hard, confirm, and start again. A VM that is off stays
    /// off (classic behaviour, advertised in the agents' metadata).
    fn reboot(&self, target: &str) -> Result<Outcome, BackendError>;
    /// Whether the hypervisor answers at all (for `monitor`).
    fn health(&self) -> Result<(), BackendError>;
}

/// Map a raw libvirt state to [`Power`].
pub fn power_of(state: u8) -> Power {
    if state == vir_state::SHUTOFF {
        Power::Off
    } else {
        Power::On(state)
    }
}
