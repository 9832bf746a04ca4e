//! The vsock listener (spec §3.3): the TCP exchange (signed request,
//! challenge-response both ways, answer) on an `AF_VSOCK` stream.
//!
//! The requester is the peer's CID, which the host's kernel vouches for,
//! and the running domain that owns that CID (from the domain XML). Groups
//! match either: the CID among `ip` entries, as in the classic daemon, or
//! the domain's UUID or name among `uuid` entries.
//!
//! The connection handling is generic over the stream and takes the CID as
//! a number, so tests drive it without a vsock peer; only
//! [`run_vsock`]'s accept loop needs a real `AF_VSOCK` socket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use vmfence_backend::guests::{Guest, GuestDirectory};

use crate::core::{Core, ListenerAuth, RefusalLog};
use crate::listener::serve_stream;
use crate::permissions::{GuestId, Requester};

/// How long a CID → domain map is trusted before it is read again. A CID
/// that is not in the map causes a fresh read at most this often.
const CID_MAP_TTL: Duration = Duration::from_secs(2);

/// Which running domain owns which CID, read from a [`GuestDirectory`] and
/// cached briefly.
#[derive(Debug)]
pub struct CidMap {
    directory: Arc<dyn GuestDirectory>,
    cache: Mutex<Option<(Instant, HashMap<u32, Guest>)>>,
}

impl CidMap {
    /// A map over `directory`.
    pub fn new(directory: Arc<dyn GuestDirectory>) -> CidMap {
        CidMap {
            directory,
            cache: Mutex::new(None),
        }
    }

    /// The requester for a connection from `cid`: the CID, plus the domain
    /// owning it when one does. Blocking (may ask the hypervisor).
    pub fn requester(&self, cid: u32) -> Requester {
        let guest = self.lookup(cid).map(|g| GuestId {
            name: g.name,
            uuid: g.uuid,
        });
        Requester {
            address: Some(cid.to_string()),
            guest,
        }
    }

    fn lookup(&self, cid: u32) -> Option<Guest> {
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        let fresh = cache.as_ref().is_some_and(|(at, _)| at.elapsed() < CID_MAP_TTL);
        if fresh {
            if let Some((_, map)) = cache.as_ref() {
                return map.get(&cid).cloned();
            }
        }
        match self.directory.running_guests() {
            Ok(guests) => {
                let map: HashMap<u32, Guest> = guests
                    .into_iter()
                    .filter_map(|g| g.vsock_cid.map(|c| (c, g)))
                    .collect();
                let found = map.get(&cid).cloned();
                *cache = Some((Instant::now(), map));
                found
            }
            Err(e) => {
                tracing::warn!(cid, error = %e, "cannot map vsock CID to a domain; matching groups by CID only");
                None
            }
        }
    }
}

/// One accepted vsock connection from `cid`: read the request, check it,
/// then the common stream phase. Logs exactly one line.
pub async fn serve_vsock_connection<S>(
    core: &Core,
    listener: &ListenerAuth,
    cids: &Arc<CidMap>,
    cid: u32,
    port: u32,
    stream: &mut S,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let map = Arc::clone(cids);
    let src = tokio::task::spawn_blocking(move || map.requester(cid))
        .await
        .unwrap_or_else(|_| Requester::address(cid.to_string()));
    let peer = format!("cid {cid} port {port}");
    serve_stream(core, listener, stream, &peer, &src).await;
}

/// Serve a bound vsock listener until `shutdown`.
pub async fn run_vsock(
    core: Arc<Core>,
    listener: Arc<ListenerAuth>,
    socket: tokio_vsock::VsockListener,
    cids: Arc<CidMap>,
    shutdown: CancellationToken,
) {
    let mut refusals = RefusalLog::new(20);
    loop {
        let (mut stream, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(listener = %listener.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = core.try_slot() else {
            refusals.refuse(
                &listener.name,
                &format!("cid {}", from.cid()),
                "busy",
                "too many requests in flight",
            );
            continue;
        };
        let core = Arc::clone(&core);
        let listener = Arc::clone(&listener);
        let cids = Arc::clone(&cids);
        tokio::spawn(async move {
            let _slot = slot;
            serve_vsock_connection(&core, &listener, &cids, from.cid(), from.port(), &mut stream).await;
        });
    }
}

/// Bind `AF_VSOCK` (any CID, `port`). Listening only; nothing is sent.
pub fn vsock_listener(port: u32) -> std::io::Result<std::os::fd::OwnedFd> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let s = Socket::new(Domain::VSOCK, Type::STREAM, None)?;
    s.bind(&SockAddr::vsock(libc::VMADDR_CID_ANY, port))?;
    s.listen(64)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}
