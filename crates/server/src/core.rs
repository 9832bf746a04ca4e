//! What every listener shares: the dispatcher, duplicate history, replay
//! guard, the concurrency bound and time limits; and the stream half of a
//! request (challenge-response, execution, answer, one log line).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vmfence_proto::history::{Duplicate, History, ReplayGuard, RequestId, HISTORY_WINDOW};
use vmfence_proto::hostlist::encode_host_list;
use vmfence_proto::{Handshake, HashType, Key, Op, Response, Role, VerifiedRequest, CHALLENGE_LEN};

use crate::dispatch::{Answer, Dispatcher, Executed};
use crate::permissions::Requester;

/// Time limits of the stream phase. Every wait has one.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Reading a request on a TCP or vsock connection.
    pub request_read: Duration,
    /// Connecting back to a multicast agent.
    pub connect: Duration,
    /// Each step of the challenge-response exchange.
    pub auth_step: Duration,
    /// Writing the whole answer.
    pub answer_write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            request_read: Duration::from_secs(5),
            connect: Duration::from_secs(5),
            auth_step: Duration::from_secs(10),
            answer_write: Duration::from_secs(10),
        }
    }
}

/// Authentication settings of one listener.
#[derive(Debug, Clone)]
pub struct ListenerAuth {
    /// Label for logs (`multicast`, `tcp`, ...).
    pub name: String,
    /// The shared key; `None` only when `hash` and `auth` are both `none`.
    pub key: Option<Key>,
    /// Weakest request signature accepted.
    pub min_hash: HashType,
    /// Challenge-response digest.
    pub auth: HashType,
}

/// State shared by all listeners of a daemon.
#[derive(Debug)]
pub struct Core {
    /// The dispatcher.
    pub dispatcher: Dispatcher,
    history: Arc<Mutex<History>>,
    replay: Arc<Mutex<ReplayGuard>>,
    limit: Arc<Semaphore>,
    max_in_flight: usize,
    /// Time limits.
    pub timeouts: Timeouts,
}

impl Core {
    /// A core with at most `max_in_flight` requests handled at once.
    pub fn new(dispatcher: Dispatcher, max_in_flight: usize, timeouts: Timeouts) -> Core {
        Core {
            dispatcher,
            history: Arc::new(Mutex::new(History::new(HISTORY_WINDOW, 65_536))),
            replay: Arc::new(Mutex::new(ReplayGuard::new(1 << 20))),
            limit: Arc::new(Semaphore::new(max_in_flight.max(1))),
            max_in_flight: max_in_flight.max(1),
            timeouts,
        }
    }

    /// Claim a slot for a new request, or `None` when the daemon is at its
    /// concurrency bound.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.limit).try_acquire_owned().ok()
    }

    /// A core with another dispatcher (after a reload) that shares this
    /// one's history, replay guard and concurrency bound, so nothing
    /// executed before the reload can be replayed after it.
    pub fn reconfigured(&self, dispatcher: Dispatcher) -> Core {
        Core {
            dispatcher,
            history: Arc::clone(&self.history),
            replay: Arc::clone(&self.replay),
            limit: Arc::clone(&self.limit),
            max_in_flight: self.max_in_flight,
            timeouts: self.timeouts,
        }
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> usize {
        self.max_in_flight - self.limit.available_permits()
    }

    /// Wait until no request is in flight, at most `limit`; returns how
    /// many were still running when it gave up.
    pub async fn drain(&self, limit: Duration) -> usize {
        let all = u32::try_from(self.max_in_flight).unwrap_or(u32::MAX);
        match tokio::time::timeout(limit, self.limit.acquire_many(all)).await {
            Ok(Ok(permits)) => {
                drop(permits);
                0
            }
            _ => self.in_flight(),
        }
    }

    /// Begin a request in the duplicate history.
    pub fn begin(&self, id: &RequestId) -> Result<(), Duplicate> {
        lock(&self.history).begin(id, Instant::now())
    }

    /// Forget a request that was not executed.
    pub fn abandon(&self, id: &RequestId) {
        lock(&self.history).abandon(id);
    }

    /// Record a request as executed in the duplicate history.
    pub fn complete(&self, id: &RequestId) {
        lock(&self.history).complete(id, Instant::now());
    }

    fn first_execution(&self, req: &VerifiedRequest) -> bool {
        lock(&self.replay).insert(&req.signature())
    }

    /// The stream phase of an accepted request: prove the key both ways,
    /// refuse replays, execute, answer. Logs exactly one line. The request
    /// must have been begun in the history; it is completed or abandoned
    /// here.
    pub async fn serve<S>(
        &self,
        listener: &ListenerAuth,
        req: VerifiedRequest,
        src: &Requester,
        peer: &str,
        stream: &mut S,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let started = Instant::now();
        let id = RequestId::of(&req);
        let op = req.op().map(Op::name).unwrap_or("unknown");
        let domain = req.domain.as_ref().map(|d| d.as_str()).unwrap_or("");
        let seqno = req.seqno;
        let log_refusal = |reason: &str, detail: &str| {
            tracing::warn!(
                listener = %listener.name, peer, op, domain, seqno, reason, detail,
                latency_ms = started.elapsed().as_millis() as u64, "request refused"
            );
        };
        if let Err(e) = self.authenticate(listener, stream).await {
            self.abandon(&id);
            log_refusal("auth-failed", &e);
            return;
        }
        if !self.first_execution(&req) {
            self.abandon(&id);
            log_refusal("replay", "this exact signed request was executed before");
            return;
        }
        let Executed {
            answer,
            outcome,
            detail,
        } = self
            .dispatcher
            .execute(req.request, req.domain.as_ref(), src)
            .await;
        let (bytes, code) = match &answer {
            Answer::Code(c) => (vec![c.code()], c.code()),
            Answer::List(entries, fin) => (encode_host_list(entries, *fin), fin.code()),
        };
        let delivery = self.write_answer(stream, &bytes).await;
        self.complete(&id);
        RequestLine {
            listener: &listener.name,
            peer,
            src,
            op,
            domain,
            seqno,
        }
        .executed(outcome, code, delivery, detail, started);
    }

    /// Write a whole answer within the time limit; says how it went
    /// (`sent`, `peer-gone`, `write-timeout`) for the log line.
    pub async fn write_answer<S>(&self, stream: &mut S, bytes: &[u8]) -> &'static str
    where
        S: AsyncWrite + Unpin,
    {
        let written = tokio::time::timeout(self.timeouts.answer_write, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => "sent",
            Ok(Err(_)) => "peer-gone",
            Err(_) => "write-timeout",
        }
    }

    async fn authenticate<S>(&self, listener: &ListenerAuth, stream: &mut S) -> Result<(), String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut challenge = [0u8; CHALLENGE_LEN];
        getrandom::getrandom(&mut challenge).map_err(|e| format!("no randomness: {e}"))?;
        let mut hs = Handshake::new(Role::Daemon, listener.auth, listener.key.as_ref(), challenge)
            .map_err(|e| e.to_string())?;
        let step = self.timeouts.auth_step;
        let mut buf = [0u8; CHALLENGE_LEN];
        loop {
            while let Some(msg) = hs.poll_transmit() {
                match tokio::time::timeout(step, stream.write_all(&msg)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(format!("write: {e}")),
                    Err(_) => return Err("timed out writing to the agent".into()),
                }
            }
            if hs.is_done() {
                return Ok(());
            }
            let want = hs.wanted();
            let n = match tokio::time::timeout(step, stream.read(&mut buf[..want])).await {
                Ok(Ok(0)) => return Err("the agent closed the connection during authentication".into()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Err(_) => {
                    return Err(format!(
                        "no challenge-response bytes from the agent for {}s (auth setting differs?)",
                        step.as_secs()
                    ))
                }
            };
            hs.feed(&buf[..n]).map_err(|e| e.to_string())?;
        }
    }
}

/// What every request's log line names, whatever the listener.
#[derive(Debug)]
pub struct RequestLine<'a> {
    /// Listener label.
    pub listener: &'a str,
    /// Where the bytes came from (address, socket, CID).
    pub peer: &'a str,
    /// The requester as permissions see it.
    pub src: &'a Requester,
    /// Operation name.
    pub op: &'a str,
    /// Target domain as requested ("" for none).
    pub domain: &'a str,
    /// Request sequence number.
    pub seqno: u32,
}

impl RequestLine<'_> {
    /// The one line of an executed request: a warning when it failed or
    /// the answer did not get through.
    pub fn executed(
        &self,
        outcome: &str,
        code: u8,
        delivery: &str,
        detail: Option<String>,
        started: Instant,
    ) {
        let RequestLine {
            listener,
            peer,
            src,
            op,
            domain,
            seqno,
        } = *self;
        let latency_ms = started.elapsed().as_millis() as u64;
        let detail = detail.unwrap_or_default();
        if code == Response::Fail.code() || delivery != "sent" {
            tracing::warn!(listener, peer, src = %src, op, domain, seqno, outcome, code, delivery, detail, latency_ms, "request");
        } else {
            tracing::info!(listener, peer, src = %src, op, domain, seqno, outcome, code, delivery, detail, latency_ms, "request");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Rate limit for refusal log lines, so a flood of garbage cannot flood the
/// journal: at most `per_second` lines, then one summary of what was
/// suppressed.
#[derive(Debug)]
pub struct RefusalLog {
    per_second: u32,
    window_start: Instant,
    in_window: u32,
    suppressed: u64,
}

impl RefusalLog {
    /// A limiter.
    pub fn new(per_second: u32) -> RefusalLog {
        RefusalLog {
            per_second,
            window_start: Instant::now(),
            in_window: 0,
            suppressed: 0,
        }
    }

    /// Log one refusal (or count it when over the limit).
    pub fn refuse(&mut self, listener: &str, peer: &str, reason: &str, detail: &str) {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::warn!(
                    listener,
                    suppressed = self.suppressed,
                    "more requests refused; log lines suppressed"
                );
            }
            self.window_start = now;
            self.in_window = 0;
            self.suppressed = 0;
        }
        if self.in_window < self.per_second {
            self.in_window += 1;
            tracing::warn!(listener, peer, reason, detail, "request refused");
        } else {
            self.suppressed += 1;
        }
    }
}
