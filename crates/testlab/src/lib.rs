//! Test support shared by vmfence's integration tests (dev-only, never
//! published): network-namespace labs, the classic C `fence_virtd` and our
//! own `fence_virtd` started inside them, agents run as real processes in a
//! guest namespace, libvirt test-driver node files, and a reader for our
//! daemon's log lines.
//!
//! Safety rules kept here (see `../shared/harness/README.md`):
//! * multicast traffic only ever happens inside namespaces made by the test:
//!   daemons and agents are always run through `ip netns exec`;
//! * every lab and daemon is torn down by `Drop`, also when the test fails;
//! * only the processes started here are stopped, by pid;
//! * nothing here uses vsock.
//!
//! Failing is this crate's way of reporting: helpers panic with the
//! evidence (a daemon's log, an agent's output) when something is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cdaemon;
mod guestfwd;
mod lab;
mod log;
mod node;
mod ours;
mod prereq;
mod run;

pub use cdaemon::{CDaemon, Listener};
pub use guestfwd::GuestFwd;
pub use lab::{Lab, HOST_V4, HOST_V6};
pub use log::{strip_ansi, LogLine};
pub use node::{node_xml, numbered_domains, TestDomain};
pub use ours::{DaemonSetup, GroupSpec, OurDaemon, OurListener};
pub use prereq::{
    harness_dir, in_ci, lab_prerequisites, prerequisites, python, Need, C_DAEMON, C_VIRT, C_XVM,
};
pub use run::{agent_in, spawn_agent, write_key, Run, Spawned};

/// The libvirt test driver's (`test:///default`) only domain.
pub const TEST_VM: &str = "test";
/// Its UUID.
pub const TEST_UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";
