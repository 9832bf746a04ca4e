//! Running a set of listeners: bind them all first (so every error is
//! reported before the daemon says it is ready), then serve until the
//! shutdown token fires. A reload binds a new set and swaps it in; requests
//! already in flight finish on the core they started with.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::core::{Core, ListenerAuth};
use crate::serial::SerialSpec;
use crate::vsock::CidMap;
use crate::{listener, net, serial, vsock};

/// What to listen on.
#[derive(Debug, Clone)]
pub enum ListenerSpec {
    /// UDP multicast requests with TCP call back.
    Multicast {
        /// Keys and hashes.
        auth: ListenerAuth,
        /// Group to join.
        group: IpAddr,
        /// UDP port.
        port: u16,
        /// Interface to join on (None: the kernel's routing choice).
        interface: Option<String>,
    },
    /// TCP requests.
    Tcp {
        /// Keys and hashes.
        auth: ListenerAuth,
        /// Host name or address literal.
        host: String,
        /// Prefer IPv6 when resolving `host`.
        ipv6: bool,
        /// TCP port.
        port: u16,
    },
    /// vsock requests (TCP exchange on `AF_VSOCK`).
    Vsock {
        /// Keys and hashes.
        auth: ListenerAuth,
        /// vsock port.
        port: u32,
        /// Maps peer CIDs to domains.
        cids: Arc<CidMap>,
    },
    /// Serial ports or VMChannels of running domains.
    Serial(Arc<SerialSpec>),
}

impl ListenerSpec {
    /// Human description for logs and `--check`.
    pub fn describe(&self) -> String {
        match self {
            ListenerSpec::Multicast {
                group,
                port,
                interface,
                ..
            } => format!(
                "multicast {group} port {port} on {}",
                interface.as_deref().unwrap_or("the routed interface")
            ),
            ListenerSpec::Tcp { host, port, .. } => format!("tcp {host} port {port}"),
            ListenerSpec::Vsock { port, .. } => format!("vsock port {port}"),
            ListenerSpec::Serial(spec) => spec.describe(),
        }
    }
}

/// A bound, not yet serving, listener.
#[derive(Debug)]
pub enum Bound {
    /// Multicast socket.
    Multicast(Arc<ListenerAuth>, std::net::UdpSocket, String),
    /// TCP listening socket.
    Tcp(Arc<ListenerAuth>, std::net::TcpListener, String),
    /// vsock listening socket.
    Vsock(Arc<ListenerAuth>, std::os::fd::OwnedFd, Arc<CidMap>, String),
    /// The serial listener binds nothing: it connects to the guests'
    /// sockets as they appear.
    Serial(Arc<SerialSpec>),
}

/// Bind one listener; the error says which one and why.
pub fn bind(spec: &ListenerSpec) -> io::Result<Bound> {
    let ctx = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", spec.describe()));
    match spec {
        ListenerSpec::Multicast {
            auth,
            group,
            port,
            interface,
        } => {
            let s = net::multicast_socket(*group, *port, interface.as_deref()).map_err(ctx)?;
            Ok(Bound::Multicast(Arc::new(auth.clone()), s, spec.describe()))
        }
        ListenerSpec::Tcp {
            auth,
            host,
            ipv6,
            port,
        } => {
            let addr = resolve(host, *port, *ipv6).map_err(ctx)?;
            let s = net::tcp_listener(addr).map_err(ctx)?;
            Ok(Bound::Tcp(Arc::new(auth.clone()), s, spec.describe()))
        }
        ListenerSpec::Vsock { auth, port, cids } => {
            let fd = vsock::vsock_listener(*port).map_err(ctx)?;
            Ok(Bound::Vsock(
                Arc::new(auth.clone()),
                fd,
                Arc::clone(cids),
                spec.describe(),
            ))
        }
        ListenerSpec::Serial(s) => Ok(Bound::Serial(Arc::clone(s))),
    }
}

fn resolve(host: &str, port: u16, ipv6: bool) -> io::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv6() == ipv6)
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")))
}

/// Bind every listener, or fail with the first error.
pub fn bind_all(specs: &[ListenerSpec]) -> io::Result<Vec<Bound>> {
    specs.iter().map(bind).collect()
}

/// Serve bound listeners until `shutdown` fires. Returns when every
/// listener loop has stopped (in-flight requests are separate tasks).
pub async fn serve(core: Arc<Core>, bound: Vec<Bound>, shutdown: CancellationToken) -> io::Result<()> {
    let mut set = JoinSet::new();
    for b in bound {
        let core = Arc::clone(&core);
        let token = shutdown.clone();
        match b {
            Bound::Multicast(auth, s, what) => {
                let s = tokio::net::UdpSocket::from_std(s)?;
                tracing::info!(listener = %auth.name, "listening: {what}");
                set.spawn(listener::run_multicast(core, auth, s, token));
            }
            Bound::Tcp(auth, s, what) => {
                let s = tokio::net::TcpListener::from_std(s)?;
                tracing::info!(listener = %auth.name, "listening: {what}");
                set.spawn(listener::run_tcp(core, auth, s, token));
            }
            Bound::Vsock(auth, fd, cids, what) => {
                let s = tokio_vsock::VsockListener::from(fd);
                tracing::info!(listener = %auth.name, "listening: {what}");
                set.spawn(vsock::run_vsock(core, auth, s, cids, token));
            }
            Bound::Serial(spec) => {
                tracing::info!(listener = %spec.name, "serving {}", spec.describe());
                set.spawn(serial::run_serial(core, spec, token));
            }
        }
    }
    while set.join_next().await.is_some() {}
    Ok(())
}
