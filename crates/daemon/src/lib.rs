//! `fence_virtd`: the host daemon that receives fencing requests from guests
//! and carries them out through a hypervisor backend.
//!
//! [`cli`] parses the command line and owns `--check`; [`run`] is daemon
//! mode (configuration → keys → backend → listeners from `vmfence-server`);
//! [`configure`] is the interactive configurator (`-c`); [`logging`] sends
//! `tracing` output to stderr or syslog.

pub mod cli;
pub mod configure;
pub mod logging;
pub mod run;
