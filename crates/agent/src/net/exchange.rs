//! The conversation on an established stream, the same for the multicast
//! call back, `-T` (TCP) and `-S` (vsock): the agent challenges the daemon,
//! answers the daemon's challenge, then reads one result byte or a host
//! list. Every read and write is bounded by the caller's deadline.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use vmfence_proto::{
    AnswerEvent, AnswerReader, AuthError, Handshake, HashType, HostListError, HostState, Response, Role,
    CHALLENGE_LEN, HOST_STATE_LEN,
};

use super::{random_bytes, remaining, Security};
use crate::log::Log;

/// A connected stream the conversation can run on: TCP, vsock, or (in
/// tests) one end of a Unix socket pair.
pub trait Stream: Read + Write {
    /// Bound the next reads (`None`: no bound).
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    /// Bound the next writes (`None`: no bound).
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, t)
    }
}

impl Stream for UnixStream {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        UnixStream::set_write_timeout(self, t)
    }
}

impl Stream for socket2::Socket {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        socket2::Socket::set_read_timeout(self, t)
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        socket2::Socket::set_write_timeout(self, t)
    }
}

/// What the daemon answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A one-byte result.
    Result(Response),
    /// A complete host list.
    List(Vec<HostState>),
}

/// Where the conversation stood when something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Sending the request (TCP transport only).
    Request,
    /// Challenge-response.
    Auth,
    /// Waiting for the result byte.
    Result,
    /// Reading host-list entries.
    List,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Request => "sending the request",
            Step::Auth => "authentication",
            Step::Result => "waiting for the result",
            Step::List => "reading the host list",
        })
    }
}

/// The conversation failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The daemon's answer to our challenge is wrong.
    #[error(
        "the daemon answered our challenge wrongly: its key or its auth type differs from ours \
         (key file, auth={0})"
    )]
    BadAnswer(HashType),
    /// The daemon closed the stream during authentication.
    #[error(
        "the daemon closed the connection during authentication: it rejected the request's \
         signature (a different key, or hash={hash} weaker than the daemon's hash setting) or our \
         answer to its challenge (its auth setting is not {auth}), or it took the request for a \
         duplicate"
    )]
    ClosedDuringAuth {
        /// Our hash setting.
        hash: HashType,
        /// Our auth setting.
        auth: HashType,
    },
    /// The stream closed at another step.
    #[error("the daemon closed the connection while {0}")]
    Closed(Step),
    /// The deadline passed.
    #[error("timed out while {step}{hint}")]
    TimedOut {
        /// The step.
        step: Step,
        /// An explanation, if one is likely.
        hint: &'static str,
    },
    /// The host list is malformed.
    #[error("malformed host list: {0}")]
    HostList(#[from] HostListError),
    /// A socket error.
    #[error("network error while {step}: {source}")]
    Io {
        /// The step.
        step: Step,
        /// The error.
        source: io::Error,
    },
    /// The system's random source failed.
    #[error("cannot get random bytes: {0}")]
    Random(String),
}

const AUTH_TIMEOUT_HINT: &str = " (is the daemon's auth setting the same as ours? one side with auth \
                                 none and the other not makes both wait)";

const NO_AUTH_HINT: &str = " (we use auth none: if the daemon's auth is not none, it is waiting for a \
                            challenge that never comes)";

/// Run the conversation after the request has been delivered (multicast) or
/// written (TCP).
pub fn converse<S: Stream>(
    stream: &mut S,
    sec: Security<'_>,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, ExchangeError> {
    let challenge = random_bytes::<CHALLENGE_LEN>().map_err(|e| ExchangeError::Random(e.to_string()))?;
    let mut hs = Handshake::new(Role::Agent, sec.auth, sec.key, challenge).map_err(|_| {
        // Only possible without a key, which the caller rules out.
        ExchangeError::BadAnswer(sec.auth)
    })?;
    let mut buf = [0u8; HOST_STATE_LEN];
    while !hs.is_done() {
        while let Some(out) = hs.poll_transmit() {
            write_all_by(stream, &out, deadline, Step::Auth)?;
        }
        let want = hs.wanted().min(buf.len());
        if want == 0 {
            break;
        }
        let n = read_some_by(stream, &mut buf[..want], deadline, Step::Auth)?;
        if n == 0 {
            return Err(ExchangeError::ClosedDuringAuth {
                hash: sec.hash,
                auth: sec.auth,
            });
        }
        hs.feed(&buf[..n]).map_err(|e| match e {
            AuthError::BadAnswer | AuthError::AlreadyFailed | AuthError::MissingKey(_) => {
                ExchangeError::BadAnswer(sec.auth)
            }
        })?;
    }
    if sec.auth != HashType::None {
        log.debug(2, format_args!("challenge-response with {} done", sec.auth));
    }
    read_answer(stream, deadline).map_err(|e| match e {
        ExchangeError::TimedOut {
            step: Step::Result,
            hint: "",
        } if sec.auth == HashType::None => ExchangeError::TimedOut {
            step: Step::Result,
            hint: NO_AUTH_HINT,
        },
        e => e,
    })
}

fn read_answer<S: Stream>(stream: &mut S, deadline: Instant) -> Result<Answer, ExchangeError> {
    let mut reader = AnswerReader::default();
    let mut hosts = Vec::new();
    let mut buf = [0u8; HOST_STATE_LEN];
    loop {
        let step = if hosts.is_empty() && reader.wanted() == 1 {
            Step::Result
        } else {
            Step::List
        };
        let want = reader.wanted().clamp(1, buf.len());
        let n = read_some_by(stream, &mut buf[..want], deadline, step)?;
        if n == 0 {
            return Err(ExchangeError::Closed(step));
        }
        for ev in reader.feed(&buf[..n])? {
            match ev {
                AnswerEvent::Result(r) => return Ok(Answer::Result(r)),
                AnswerEvent::Host(h) => hosts.push(h),
                // The final result byte after a list is not awaited (as
                // with the classic agent): the list is complete.
                AnswerEvent::EndOfList | AnswerEvent::ListResult(_) => return Ok(Answer::List(hosts)),
            }
        }
    }
}

/// Write all of `data` before `deadline`.
pub fn write_all_by<S: Stream>(
    stream: &mut S,
    data: &[u8],
    deadline: Instant,
    step: Step,
) -> Result<(), ExchangeError> {
    let left = remaining(deadline).ok_or(ExchangeError::TimedOut { step, hint: "" })?;
    stream
        .set_write_timeout(Some(left))
        .map_err(|source| ExchangeError::Io { step, source })?;
    stream.write_all(data).map_err(|source| match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ExchangeError::TimedOut { step, hint: "" },
        _ => ExchangeError::Io { step, source },
    })
}

/// Read at least one byte (0 = end of stream) before `deadline`.
fn read_some_by<S: Stream>(
    stream: &mut S,
    buf: &mut [u8],
    deadline: Instant,
    step: Step,
) -> Result<usize, ExchangeError> {
    let hint = if step == Step::Auth { AUTH_TIMEOUT_HINT } else { "" };
    loop {
        let left = remaining(deadline).ok_or(ExchangeError::TimedOut { step, hint })?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|source| ExchangeError::Io { step, source })?;
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(ExchangeError::TimedOut { step, hint })
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && step == Step::Auth => return Ok(0),
            Err(source) => return Err(ExchangeError::Io { step, source }),
        }
    }
}
