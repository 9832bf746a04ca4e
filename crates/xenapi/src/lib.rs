//! XenServer / XCP-ng fencing through XenAPI: a small XenAPI client and the
//! `fence_xenapi` agent built on it.
//!
//! The layers, bottom up:
//!
//! - [`xmlrpc`]: the XML-RPC codec, no I/O (encode calls, decode answers);
//! - [`api`]: XenAPI's `Status`/`Value`/`ErrorDescription` envelope and
//!   its error codes;
//! - [`transport`]: `session_url` parsing and HTTP(S) with certificate
//!   checks;
//! - [`client`]: calls, log-in with pool failover and `HOST_IS_SLAVE`
//!   redirects, sessions that always log out;
//! - [`vm`]: VM records, the VM calls, which VMs may be fenced, selecting
//!   one by name label or UUID;
//! - [`power`]: off/on/reboot confirmed by polling the power state;
//! - [`agent`]: the `fence_xenapi` program on the fence-agent framework
//!   (`vmfence-agentkit`).

pub mod agent;
pub mod api;
pub mod client;
pub mod power;
pub mod transport;
pub mod vm;
pub mod xmlrpc;
