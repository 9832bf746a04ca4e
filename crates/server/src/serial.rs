//! The serial / VMChannel listener (spec §3.4).
//!
//! QEMU listens on a unix socket for each guest's fence serial port or
//! VMChannel; this listener connects to every such socket of every running
//! domain (found through a [`GuestDirectory`], rescanned periodically so
//! that domains starting, stopping and being defined are followed) and
//! serves the 74/5-byte serial protocol on each.
//!
//! The transport has no key. The requester is the domain that owns the
//! socket the bytes came on: the host knows that, the guest cannot forge
//! it. `groups` are checked against that domain's UUID and name. With no
//! `groups` at all, the listener refuses every request unless the
//! configuration says `unrestricted` (the classic daemon let every guest
//! fence every VM).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vmfence_backend::guests::{ChannelKind, Guest, GuestDirectory};
use vmfence_proto::history::RequestId;
use vmfence_proto::serial::{encode_host_list, encode_response, FramerEvent, RequestFramer, SerialRequest};
use vmfence_proto::{Op, Response};

use crate::core::{Core, RequestLine};
use crate::dispatch::{Answer, Executed};
use crate::permissions::Requester;

/// How long to wait for QEMU to accept our connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A request started but not finished within this time is dropped (noise
/// that happened to contain the magic, or a guest that stopped writing).
const FRAME_TIMEOUT: Duration = Duration::from_secs(1);

/// What the serial listener serves.
#[derive(Debug, Clone)]
pub struct SerialSpec {
    /// Label for logs.
    pub name: String,
    /// Where the running guests and their sockets come from.
    pub directory: Arc<dyn GuestDirectory>,
    /// `<serial>` (mode serial) or `<channel>` (mode vmchannel) sockets.
    pub kind: ChannelKind,
    /// Only sockets directly in this directory (`path`).
    pub path: Option<PathBuf>,
    /// Serve requests even without `groups`.
    pub unrestricted: bool,
    /// How often the directory is asked for running guests.
    pub rescan: Duration,
}

impl SerialSpec {
    /// Human description for logs and `--check`.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            ChannelKind::Serial => "serial ports",
            ChannelKind::Channel => "VMChannels",
        };
        match &self.path {
            Some(p) => format!("{what} of running domains, sockets in {}", p.display()),
            None => format!("{what} of running domains, sockets anywhere"),
        }
    }
}

struct Connection {
    uuid: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Serve the serial listener until `shutdown`; then stop every connection
/// after the request it is handling, if any.
pub async fn run_serial(core: Arc<Core>, spec: Arc<SerialSpec>, shutdown: CancellationToken) {
    let mut connections: HashMap<PathBuf, Connection> = HashMap::new();
    let mut last_problem: Option<String> = None;
    let mut tick = tokio::time::interval(spec.rescan.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let directory = Arc::clone(&spec.directory);
        let guests = match tokio::task::spawn_blocking(move || directory.running_guests()).await {
            Ok(Ok(g)) => g,
            Ok(Err(e)) => {
                let msg = e.to_string();
                if last_problem.as_deref() != Some(&msg) {
                    tracing::warn!(listener = %spec.name, error = %msg, "cannot list running domains; keeping current connections");
                    last_problem = Some(msg);
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(listener = %spec.name, error = %e, "domain scan failed");
                continue;
            }
        };
        if last_problem.take().is_some() {
            tracing::info!(listener = %spec.name, "listing running domains works again");
        }
        let mut wanted: HashMap<PathBuf, Guest> = HashMap::new();
        for g in &guests {
            for s in g.sockets_in(spec.kind, spec.path.as_deref()) {
                wanted.insert(s.path.clone(), g.clone());
            }
        }
        connections.retain(|path, c| {
            let keep = !c.task.is_finished() && wanted.get(path).is_some_and(|g| g.uuid == c.uuid);
            if !keep {
                c.stop.cancel();
            }
            keep
        });
        for (path, guest) in wanted {
            if connections.contains_key(&path) {
                continue;
            }
            let stop = shutdown.child_token();
            let task = tokio::spawn(serve_socket(
                Arc::clone(&core),
                Arc::clone(&spec),
                guest.clone(),
                path.clone(),
                stop.clone(),
            ));
            connections.insert(
                path,
                Connection {
                    uuid: guest.uuid,
                    stop,
                    task,
                },
            );
        }
    }
    for (_, c) in connections.drain() {
        c.stop.cancel();
        let _ = c.task.await;
    }
}

/// One guest's socket: connect, then read requests until the guest goes
/// away or we are told to stop (never in the middle of a request).
async fn serve_socket(
    core: Arc<Core>,
    spec: Arc<SerialSpec>,
    guest: Guest,
    path: PathBuf,
    stop: CancellationToken,
) {
    let shown = path.display().to_string();
    let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&path)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(listener = %spec.name, domain = %guest.name, socket = %shown, error = %e, "cannot connect; retrying at the next scan");
            return;
        }
        Err(_) => {
            tracing::debug!(listener = %spec.name, domain = %guest.name, socket = %shown, "connect timed out; retrying at the next scan");
            return;
        }
    };
    tracing::info!(listener = %spec.name, domain = %guest.name, uuid = %guest.uuid, socket = %shown, "serving guest socket");
    let who = Requester::guest(guest.name.clone(), guest.uuid.clone());
    let mut framer = RequestFramer::default();
    let mut frame_started: Option<Instant> = None;
    let mut buf = [0u8; 1024];
    let mut noise = 0usize;
    loop {
        let wait = match frame_started {
            Some(t) => FRAME_TIMEOUT.saturating_sub(t.elapsed()),
            None => Duration::from_secs(3600),
        };
        let n = tokio::select! {
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(wait, stream.read(&mut buf)) => match r {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::info!(listener = %spec.name, domain = %guest.name, error = %e, "guest socket failed");
                    break;
                }
                Err(_) => {
                    // A partial request that never completed: drop it.
                    framer = RequestFramer::default();
                    frame_started = None;
                    noise += 1;
                    continue;
                }
            },
        };
        for event in framer.feed(&buf[..n]) {
            match event {
                FramerEvent::Request { request, skipped } => {
                    noise += skipped;
                    if noise > 0 {
                        tracing::debug!(listener = %spec.name, domain = %guest.name, bytes = noise, "noise before request skipped");
                        noise = 0;
                    }
                    handle(&core, &spec, &who, &shown, request, &mut stream).await;
                }
                FramerEvent::Malformed(e) => {
                    tracing::warn!(listener = %spec.name, peer = %shown, src = %who, reason = "malformed", detail = %e, "request refused");
                    let _ = core
                        .write_answer(&mut stream, &encode_response(Response::Fail))
                        .await;
                }
            }
        }
        frame_started = match (framer.in_frame(), frame_started) {
            (true, None) => Some(Instant::now()),
            (true, started) => started,
            (false, _) => None,
        };
    }
    tracing::info!(listener = %spec.name, domain = %guest.name, socket = %shown, "guest socket closed");
}

/// One request: exactly one answer (unless it is a duplicate, which the
/// classic agent never sends on this transport) and one log line.
async fn handle(
    core: &Core,
    spec: &SerialSpec,
    who: &Requester,
    peer: &str,
    req: SerialRequest,
    stream: &mut UnixStream,
) {
    let started = Instant::now();
    let op = Op::from_code(req.request).map(Op::name).unwrap_or("unknown");
    let domain = req.domain.as_ref().map(|d| d.as_str()).unwrap_or("");
    let seqno = req.seqno;
    let refuse = |code: Response, reason: &'static str, detail: String| {
        tracing::warn!(listener = %spec.name, peer, src = %who, op, domain, seqno, reason, detail, "request refused");
        encode_response(code)
    };
    let id = RequestId::from_parts(req.request, req.seqno, req.domain.as_ref().map(|d| d.as_str()));
    if let Err(dup) = core.begin(&id) {
        tracing::warn!(listener = %spec.name, peer, src = %who, op, domain, seqno, reason = "duplicate", detail = %dup, "request refused");
        return;
    }
    if core.dispatcher.permissions().is_open() && !spec.unrestricted {
        core.abandon(&id);
        let bytes = refuse(
            Response::PermissionDenied,
            "no-groups",
            "the serial listener has no key; without groups it accepts nothing \
             (add groups, or unrestricted = \"1\" in listeners/serial)"
                .into(),
        );
        let _ = core.write_answer(stream, &bytes).await;
        return;
    }
    let Some(_slot) = core.try_slot() else {
        core.abandon(&id);
        let bytes = refuse(Response::Fail, "busy", "too many requests in flight".into());
        let _ = core.write_answer(stream, &bytes).await;
        return;
    };
    let Executed {
        answer,
        outcome,
        detail,
    } = core
        .dispatcher
        .execute(req.request, req.domain.as_ref(), who)
        .await;
    let (bytes, code) = match &answer {
        Answer::Code(c) => (encode_response(*c).to_vec(), c.code()),
        Answer::List(entries, fin) => (encode_host_list(entries, *fin), fin.code()),
    };
    let delivery = core.write_answer(stream, &bytes).await;
    core.complete(&id);
    RequestLine {
        listener: &spec.name,
        peer,
        src: who,
        op,
        domain,
        seqno,
    }
    .executed(outcome, code, delivery, detail, started);
}
