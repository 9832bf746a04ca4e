//! Listeners: take an already-bound socket and a shutdown token, receive
//! requests, check them cheaply (length, source, signature, duplicates)
//! before any work, and hand each accepted one to its own task.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use vmfence_proto::history::RequestId;
use vmfence_proto::{Callback, UnverifiedRequest, VerifiedRequest, REQUEST_LEN};

use crate::core::{Core, ListenerAuth, RefusalLog};
use crate::net::{requester_id, same_ip};
use crate::permissions::Requester;

/// Check a received request: decode and verify. The error is the log reason.
fn check(listener: &ListenerAuth, bytes: &[u8]) -> Result<VerifiedRequest, (&'static str, String)> {
    if bytes.len() != REQUEST_LEN {
        return Err((
            "bad-length",
            format!("{} bytes, expected {REQUEST_LEN}", bytes.len()),
        ));
    }
    let un = UnverifiedRequest::decode(bytes).map_err(|e| ("malformed", e.to_string()))?;
    un.verify(listener.key.as_ref(), listener.min_hash).map_err(|e| {
        let reason = match e {
            vmfence_proto::VerifyError::HashTooWeak { .. } => "hash-too-weak",
            vmfence_proto::VerifyError::NoKey(_) => "no-key",
            vmfence_proto::VerifyError::Mismatch => "bad-signature",
        };
        (reason, e.to_string())
    })
}

/// Serve a multicast listener until `shutdown`.
pub async fn run_multicast(
    core: Arc<Core>,
    listener: Arc<ListenerAuth>,
    socket: UdpSocket,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 2048];
    let mut refusals = RefusalLog::new(20);
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // Never let a receive error end the daemon (classic bug).
                    tracing::warn!(listener = %listener.name, error = %e, "receive failed");
                    continue;
                }
            },
        };
        let peer = from.to_string();
        let req = match check(&listener, &buf[..n]) {
            Ok(r) => r,
            Err((reason, detail)) => {
                refusals.refuse(&listener.name, &peer, reason, &detail);
                continue;
            }
        };
        let to = match req.callback() {
            Ok(Callback::To(to)) => to,
            Ok(Callback::None) => {
                refusals.refuse(
                    &listener.name,
                    &peer,
                    "no-callback",
                    "multicast request without call-back address",
                );
                continue;
            }
            Err(e) => {
                refusals.refuse(&listener.name, &peer, "bad-callback", &e.to_string());
                continue;
            }
        };
        // The call back goes to the address the packet claims; it must be
        // the address the packet came from, so that a captured packet
        // cannot be bounced at somebody else.
        if !same_ip(to.ip(), from.ip()) {
            refusals.refuse(
                &listener.name,
                &peer,
                "source-mismatch",
                &format!("packet claims {} but came from {}", to.ip(), from.ip()),
            );
            continue;
        }
        let id = RequestId::of(&req);
        if let Err(dup) = core.begin(&id) {
            tracing::debug!(listener = %listener.name, peer, seqno = req.seqno, %dup, "duplicate dropped");
            continue;
        }
        let Some(slot) = core.try_slot() else {
            core.abandon(&id);
            refusals.refuse(&listener.name, &peer, "busy", "too many requests in flight");
            continue;
        };
        let core = Arc::clone(&core);
        let listener = Arc::clone(&listener);
        tokio::spawn(async move {
            let _slot = slot;
            call_back(&core, &listener, req, id, to).await;
        });
    }
}

async fn call_back(
    core: &Core,
    listener: &ListenerAuth,
    req: VerifiedRequest,
    id: RequestId,
    to: SocketAddr,
) {
    let peer = to.to_string();
    let mut stream = match tokio::time::timeout(core.timeouts.connect, TcpStream::connect(to)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            core.abandon(&id);
            tracing::warn!(listener = %listener.name, peer, seqno = req.seqno, reason = "callback-failed", detail = %e, "request refused");
            return;
        }
        Err(_) => {
            core.abandon(&id);
            tracing::warn!(listener = %listener.name, peer, seqno = req.seqno, reason = "callback-timeout", "request refused");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let src = Requester::address(requester_id(to.ip()));
    core.serve(listener, req, &src, &peer, &mut stream).await;
}

/// Serve a TCP listener until `shutdown`.
pub async fn run_tcp(
    core: Arc<Core>,
    listener: Arc<ListenerAuth>,
    socket: TcpListener,
    shutdown: CancellationToken,
) {
    let mut refusals = RefusalLog::new(20);
    loop {
        let (stream, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of dying.
                    tracing::warn!(listener = %listener.name, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = core.try_slot() else {
            refusals.refuse(
                &listener.name,
                &from.to_string(),
                "busy",
                "too many requests in flight",
            );
            continue;
        };
        let core = Arc::clone(&core);
        let listener = Arc::clone(&listener);
        tokio::spawn(async move {
            let _slot = slot;
            serve_tcp(&core, &listener, stream, from).await;
        });
    }
}

async fn serve_tcp(core: &Core, listener: &ListenerAuth, mut stream: TcpStream, from: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let src = Requester::address(requester_id(from.ip()));
    serve_stream(core, listener, &mut stream, &from.to_string(), &src).await;
}

/// A request arriving on a stream (TCP, vsock): read it within the time
/// limit, check it, then the common stream phase. Logs exactly one line.
pub(crate) async fn serve_stream<S>(
    core: &Core,
    listener: &ListenerAuth,
    stream: &mut S,
    peer: &str,
    src: &Requester,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = [0u8; REQUEST_LEN];
    match tokio::time::timeout(core.timeouts.request_read, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            tracing::warn!(listener = %listener.name, peer, reason = "short-request", detail = %e, "request refused");
            return;
        }
        Err(_) => {
            tracing::warn!(listener = %listener.name, peer, reason = "request-timeout", "request refused");
            return;
        }
    }
    let req = match check(listener, &buf) {
        Ok(r) => r,
        Err((reason, detail)) => {
            tracing::warn!(listener = %listener.name, peer, reason, detail, "request refused");
            return;
        }
    };
    let id = RequestId::of(&req);
    if let Err(dup) = core.begin(&id) {
        tracing::warn!(listener = %listener.name, peer, seqno = req.seqno, reason = "duplicate", detail = %dup, "request refused");
        return;
    }
    core.serve(listener, req, src, peer, stream).await;
}
