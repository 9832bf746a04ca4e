//! fence_virtd's runtime: listeners that receive requests, the dispatcher
//! that carries them out through a [`vmfence_backend::Hypervisor`], and the
//! shared core (history, replay guard, concurrency bound, time limits).
//!
//! Listeners take sockets that are already bound (see [`net`]) and a
//! shutdown token, so binding, privileges and readiness stay with the
//! binary, and tests can run a whole daemon inside one process.

pub mod core;
pub mod dispatch;
pub mod listener;
pub mod net;
pub mod permissions;
pub mod serial;
pub mod server;
pub mod vsock;

pub use crate::core::{Core, ListenerAuth, Timeouts};
pub use dispatch::Dispatcher;
pub use permissions::{Group, Permissions, Requester};
