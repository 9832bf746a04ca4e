//! `fence_virt -D DEVICE`: the request over a serial line to the host, and
//! the byte protocol it shares with VMChannel ([`super::vmchannel`]).
//!
//! The line carries a 74-byte request (`abba`, code, flags, domain, seqno)
//! and gets back `abba` and one response byte, or `abba 0xFD`, host-list
//! entries and a terminator. There is no key: the daemon knows the VM by the
//! socket the bytes arrived on. Noise before the answer is skipped by
//! scanning for the magic (overlapping prefixes such as `aabba` are found,
//! unlike the classic agent's matcher).
//!
//! The device is opened without becoming the controlling terminal and
//! without waiting for carrier, then locked with an `fcntl` write lock on the
//! whole device, the same lock the classic agent takes, so agents on one
//! guest never interleave on the line: a second agent waits for the lock
//! within its own time limit instead of failing at once. A terminal gets
//! the classic raw line settings (speed and bits from `-P`, `CLOCAL`,
//! `CREAD`, hardware flow control); a real serial port is then hung up for
//! 300 ms (speed 0 drops DTR and RTS), as the classic agent does. Pseudo
//! terminals skip the hang-up (they have no modem lines). A character device
//! that is no terminal at all, such as a virtio-serial port
//! (`/dev/virtio-ports/…`), is used as it is.
//!
//! Every step is bounded: writing the request by 3 s (as the classic agent),
//! everything by the one `-t` deadline.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{
    cfsetospeed, cfsetspeed, tcflush, tcgetattr, tcsetattr, BaudRate, ControlFlags, FlushArg, InputFlags,
    LocalFlags, OutputFlags, SetArg, SpecialCharacterIndices, Termios,
};
use vmfence_proto::serial::{AnswerReader, SerialAnswer, SerialError as WireError, SerialRequest};
use vmfence_proto::{FenceRequest, HostState};

use super::exchange::{Answer, Step};
use super::{remaining, TransportError};
use crate::log::Log;
use crate::settings::{Parity, SerialParams};

/// Longest time for writing the request (the classic agent's 3 s).
pub const WRITE_LIMIT: Duration = Duration::from_secs(3);
/// How long a real serial port is hung up before the request.
pub const HANGUP: Duration = Duration::from_millis(300);
/// How long to wait, after a list, for the daemon's closing `abba <code>`
/// record, so that it is not left on the line for the next agent.
pub const LIST_TRAILER_WAIT: Duration = Duration::from_secs(1);
/// How often a busy lock is retried.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// The serial device or the VMChannel connection failed.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The device could not be opened.
    #[error("cannot open serial device {path}: {source}{hint}", hint = open_hint(source))]
    Open {
        /// The device.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The path is a file, directory, socket or pipe.
    #[error(
        "{path} is not a character device (expected a serial port such as /dev/ttyS1, or a \
         virtio-serial port)"
    )]
    NotCharDevice {
        /// The path.
        path: PathBuf,
    },
    /// Another agent kept the line for the whole time limit.
    #[error(
        "serial device {path} is locked by {holder} and was not released within the time limit \
         (-t): only one agent at a time uses the line"
    )]
    LockTimeout {
        /// The device.
        path: PathBuf,
        /// Who holds the lock, as far as the system says.
        holder: String,
    },
    /// Locking failed for another reason than a holder.
    #[error("cannot lock serial device {path}: {source}")]
    Lock {
        /// The device.
        path: PathBuf,
        /// Why.
        source: Errno,
    },
    /// The terminal refused the line settings.
    #[error("cannot set the line settings {params} on {path}: {source}")]
    LineSettings {
        /// The device.
        path: PathBuf,
        /// What was asked for.
        params: SerialParams,
        /// Why.
        source: Errno,
    },
    /// The VMChannel TCP connection failed.
    #[error(
        "cannot connect to the VMChannel address {addr}: {source} (does this VM have a guestfwd \
         channel to that address, and does fence_virtd run the serial listener in vmchannel \
         mode? use -T for a TCP listener, -D for a serial port)"
    )]
    Connect {
        /// The address tried last.
        addr: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The conversation on the line failed.
    #[error("{peer}: {source}")]
    Exchange {
        /// `serial device /dev/ttyS1` or `VMChannel 10.0.2.179:1229`.
        peer: String,
        /// What went wrong.
        source: LineError,
    },
}

/// The conversation on an open line failed.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The deadline passed.
    #[error("timed out while {step}{}", timeout_hint(*step, *received))]
    TimedOut {
        /// The step.
        step: Step,
        /// Bytes received so far.
        received: usize,
    },
    /// The other end closed or hung up.
    #[error("the other end closed the line while {0}")]
    Closed(Step),
    /// An I/O error.
    #[error("I/O error while {step}: {source}")]
    Io {
        /// The step.
        step: Step,
        /// The error.
        source: io::Error,
    },
    /// The host list is malformed.
    #[error("malformed host list: {0}")]
    HostList(#[from] WireError),
}

fn open_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => " (no such device here; note that without -D fence_virt uses VMChannel)",
        io::ErrorKind::PermissionDenied => " (fence agents normally run as root)",
        _ if e.raw_os_error() == Some(libc::EBUSY) => " (another program holds it exclusively)",
        _ => "",
    }
}

fn timeout_hint(step: Step, received: usize) -> String {
    match (step, received) {
        (Step::Result, 0) => " (nothing came back: is fence_virtd running with the serial listener, \
                              and does this line lead to the socket it watches?)"
            .to_owned(),
        (Step::Result, n) => format!(" ({n} bytes came back, but no answer record 'abba' + code)"),
        _ => String::new(),
    }
}

/// The request as the serial protocol carries it.
pub fn serial_request(req: &FenceRequest) -> SerialRequest {
    SerialRequest {
        request: req.request,
        // The classic agent always sends 0; daemons ignore the field.
        flags: 0,
        domain: req.domain.clone(),
        seqno: req.seqno,
    }
}

/// Send `req` over the serial device `path` and return the daemon's answer.
pub fn fence_serial(
    path: &str,
    params: SerialParams,
    req: &FenceRequest,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, TransportError> {
    let mut line = open_line(Path::new(path), params, deadline, log)?;
    let bytes = serial_request(req).encode();
    let write_by = deadline.min(Instant::now() + WRITE_LIMIT);
    log.debug(2, format_args!("sending {}-byte request on {path}", bytes.len()));
    converse_line(&mut line, &bytes, write_by, deadline, log).map_err(|source| {
        TransportError::Serial(SerialError::Exchange {
            peer: format!("serial device {path}"),
            source,
        })
    })
    // Dropping the file closes it, which releases the lock.
}

/// Open, lock and set up the device. The file is non-blocking.
pub fn open_line(
    path: &Path,
    params: SerialParams,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<File, SerialError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        // Never our controlling terminal; do not wait for carrier.
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| SerialError::Open {
            path: path.to_owned(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| SerialError::Open {
        path: path.to_owned(),
        source,
    })?;
    if !meta.file_type().is_char_device() {
        return Err(SerialError::NotCharDevice {
            path: path.to_owned(),
        });
    }
    lock_line(&file, path, deadline, log)?;
    let settings_err = |source| SerialError::LineSettings {
        path: path.to_owned(),
        params,
        source,
    };
    match tcgetattr(&file) {
        Ok(old) => {
            let raw = line_settings(old, params).map_err(settings_err)?;
            tcflush(&file, FlushArg::TCIOFLUSH).map_err(settings_err)?;
            tcsetattr(&file, SetArg::TCSANOW, &raw).map_err(settings_err)?;
            if is_pty(&meta) {
                log.debug(
                    2,
                    format_args!("{} is a pseudo terminal: {params}, no hang-up", path.display()),
                );
            } else {
                log.debug(2, format_args!("{} is a terminal: {params}", path.display()));
                hangup(&file, &raw, deadline, log).map_err(settings_err)?;
            }
            tcflush(&file, FlushArg::TCIFLUSH).map_err(settings_err)?;
        }
        Err(Errno::ENOTTY) => {
            log.debug(
                2,
                format_args!(
                    "{} is a character device but no terminal (a virtio-serial port?): used as it is",
                    path.display()
                ),
            );
            drain(&file);
        }
        Err(e) => return Err(settings_err(e)),
    }
    Ok(file)
}

/// The classic agent's raw settings: only `c_cflag` set (speed, bits,
/// `CLOCAL`, `CREAD`, `CRTSCTS`), every other flag off.
pub fn line_settings(mut t: Termios, p: SerialParams) -> nix::Result<Termios> {
    t.input_flags = InputFlags::empty();
    t.output_flags = OutputFlags::empty();
    t.local_flags = LocalFlags::empty();
    let mut c = ControlFlags::CLOCAL | ControlFlags::CREAD | ControlFlags::CRTSCTS;
    c |= match p.data_bits {
        5 => ControlFlags::CS5,
        6 => ControlFlags::CS6,
        7 => ControlFlags::CS7,
        _ => ControlFlags::CS8,
    };
    c |= match p.parity {
        Parity::None => ControlFlags::empty(),
        Parity::Even => ControlFlags::PARENB,
        Parity::Odd => ControlFlags::PARENB | ControlFlags::PARODD,
    };
    if p.stop_bits == 2 {
        c |= ControlFlags::CSTOPB;
    }
    t.control_flags = c;
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    cfsetspeed(&mut t, baud(p.speed))?;
    Ok(t)
}

fn baud(speed: u32) -> BaudRate {
    match speed {
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19_200 => BaudRate::B19200,
        38_400 => BaudRate::B38400,
        57_600 => BaudRate::B57600,
        _ => BaudRate::B115200,
    }
}

/// Unix98 pseudo-terminal slaves have majors 136 to 143.
fn is_pty(meta: &std::fs::Metadata) -> bool {
    (136..=143).contains(&nix::sys::stat::major(meta.rdev()))
}

/// Drop DTR and RTS for [`HANGUP`] (output speed 0), then restore `t`.
/// Best effort: a device that refuses speed 0 is left alone; failing to
/// restore the settings is an error.
pub fn hangup(file: &File, t: &Termios, deadline: Instant, log: &mut Log<'_>) -> nix::Result<()> {
    let mut down = t.clone();
    let dropped = cfsetospeed(&mut down, BaudRate::B0).and_then(|()| tcsetattr(file, SetArg::TCSANOW, &down));
    if let Err(e) = dropped {
        log.debug(2, format_args!("hang-up skipped: {e}"));
        return Ok(());
    }
    std::thread::sleep(remaining(deadline).map_or(Duration::ZERO, |left| left.min(HANGUP)));
    tcsetattr(file, SetArg::TCSANOW, t)
}

/// Whole-device `fcntl` write lock, retried until `deadline`.
fn lock_line(file: &File, path: &Path, deadline: Instant, log: &mut Log<'_>) -> Result<(), SerialError> {
    let want = whole_file_lock(libc::F_WRLCK);
    let mut noted = false;
    loop {
        match fcntl(file, FcntlArg::F_SETLK(&want)) {
            Ok(_) => {
                if noted {
                    log.debug(1, format_args!("got the lock on {}", path.display()));
                }
                return Ok(());
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN | Errno::EACCES) => {
                let holder = lock_holder(file);
                if remaining(deadline).is_none() {
                    return Err(SerialError::LockTimeout {
                        path: path.to_owned(),
                        holder,
                    });
                }
                if !noted {
                    log.debug(
                        1,
                        format_args!("{} is locked by {holder}: waiting for the lock", path.display()),
                    );
                    noted = true;
                }
                std::thread::sleep(remaining(deadline).map_or(Duration::ZERO, |l| l.min(LOCK_RETRY)));
            }
            Err(source) => {
                return Err(SerialError::Lock {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

fn whole_file_lock(kind: libc::c_int) -> libc::flock {
    libc::flock {
        // The constants are small (0..2); the field is a short.
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

fn lock_holder(file: &File) -> String {
    let mut probe = whole_file_lock(libc::F_WRLCK);
    match fcntl(file, FcntlArg::F_GETLK(&mut probe)) {
        Ok(_) if probe.l_type != libc::F_UNLCK as libc::c_short && probe.l_pid > 0 => {
            format!("process {}", probe.l_pid)
        }
        _ => "another process".to_owned(),
    }
}

/// Read and drop whatever is waiting on a non-blocking device.
fn drain(file: &File) {
    let mut buf = [0u8; 512];
    let mut f = file;
    for _ in 0..64 {
        match f.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

/// The serial protocol on an open, non-blocking line (a device or a
/// socket): write `request` by `write_by`, then read the answer by
/// `deadline`, skipping noise before the magic.
pub fn converse_line<L>(
    line: &mut L,
    request: &[u8],
    write_by: Instant,
    deadline: Instant,
    log: &mut Log<'_>,
) -> Result<Answer, LineError>
where
    L: Read + Write + AsFd,
{
    write_all_by(line, request, write_by)?;
    let mut reader = AnswerReader::default();
    let mut hosts: Vec<HostState> = Vec::new();
    let mut received = 0usize;
    let mut buf = [0u8; 512];
    loop {
        let step = if reader.list_complete() || !hosts.is_empty() {
            Step::List
        } else {
            Step::Result
        };
        let n = match read_by(line, &mut buf, deadline, step) {
            Ok(n) => n,
            Err(LineError::TimedOut { .. }) if step == Step::Result => {
                return Err(LineError::TimedOut { step, received })
            }
            Err(e) => return Err(e),
        };
        received += n;
        for ev in reader.feed(&buf[..n])? {
            match ev {
                SerialAnswer::Result(r) => {
                    log.debug(2, format_args!("answer after {received} bytes"));
                    return Ok(Answer::Result(r));
                }
                SerialAnswer::Host(h) => hosts.push(h),
                SerialAnswer::EndOfList => {
                    // The rest of this chunk has been read already; the
                    // closing record may have been in it.
                    log.debug(2, format_args!("host list of {} entries", hosts.len()));
                    finish_list(line, &mut reader, deadline, log);
                    return Ok(Answer::List(hosts));
                }
                // Only ever after the end of a list, handled above.
                SerialAnswer::ListResult(_) => return Ok(Answer::List(hosts)),
            }
        }
    }
}

/// After a list's terminator, read the daemon's closing `abba <code>`
/// record (briefly), so that it does not wait on the line for the next
/// request and pass for that request's answer.
fn finish_list<L: Read + Write + AsFd>(
    line: &mut L,
    reader: &mut AnswerReader,
    deadline: Instant,
    log: &mut Log<'_>,
) {
    let until = deadline.min(Instant::now() + LIST_TRAILER_WAIT);
    let mut buf = [0u8; 16];
    while !reader.is_done() {
        match read_by(line, &mut buf, until, Step::List) {
            Ok(n) => {
                if reader.feed(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(_) => {
                log.debug(2, "no closing record after the list");
                break;
            }
        }
    }
}

fn poll_for(line: &impl AsFd, events: PollFlags, until: Instant) -> io::Result<bool> {
    loop {
        let Some(left) = remaining(until) else {
            return Ok(false);
        };
        // Round up, so as not to spin on sub-millisecond remainders.
        let ms = left.as_millis().saturating_add(1).min(10_000);
        let timeout = PollTimeout::from(u16::try_from(ms).unwrap_or(10_000));
        let mut fds = [PollFd::new(line.as_fd(), events)];
        match poll(&mut fds, timeout) {
            Ok(0) => continue,
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn write_all_by<L: Write + AsFd>(line: &mut L, mut data: &[u8], until: Instant) -> Result<(), LineError> {
    let step = Step::Request;
    while !data.is_empty() {
        if !poll_for(line, PollFlags::POLLOUT, until).map_err(|source| LineError::Io { step, source })? {
            return Err(LineError::TimedOut { step, received: 0 });
        }
        match line.write(data) {
            Ok(0) => return Err(LineError::Closed(step)),
            Ok(n) => data = &data[n..],
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) if is_hangup(&e) => return Err(LineError::Closed(step)),
            Err(source) => return Err(LineError::Io { step, source }),
        }
    }
    Ok(())
}

/// Read at least one byte by `until`.
fn read_by<L: Read + AsFd>(
    line: &mut L,
    buf: &mut [u8],
    until: Instant,
    step: Step,
) -> Result<usize, LineError> {
    loop {
        if !poll_for(line, PollFlags::POLLIN, until).map_err(|source| LineError::Io { step, source })? {
            return Err(LineError::TimedOut { step, received: 0 });
        }
        match line.read(buf) {
            Ok(0) => return Err(LineError::Closed(step)),
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) if is_hangup(&e) => return Err(LineError::Closed(step)),
            Err(source) => return Err(LineError::Io { step, source }),
        }
    }
}

/// A terminal whose other side went away reads `EIO`; a socket resets.
fn is_hangup(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EIO)
        || matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
        )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::net::UnixStream;
    use std::thread;

    use vmfence_proto::serial::{encode_host_list, encode_response, FramerEvent, RequestFramer};
    use vmfence_proto::{Domain, Op, Response};

    use super::*;

    fn request(op: Op, domain: Option<&str>) -> FenceRequest {
        FenceRequest::new(op, domain.map(|d| Domain::new(d).unwrap()), 0x0102_0304)
    }

    /// A daemon side on the other end of a socket pair: reads one request
    /// (after any noise) and writes `answer`; hands the socket back, so it
    /// stays open until the test joins.
    fn stub(mut peer: UnixStream, answer: Vec<u8>) -> thread::JoinHandle<(SerialRequest, UnixStream)> {
        thread::spawn(move || {
            peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut framer = RequestFramer::default();
            let mut buf = [0u8; 64];
            loop {
                let n = peer.read(&mut buf).unwrap();
                assert!(n > 0, "agent closed before a whole request");
                if let Some(FramerEvent::Request { request, skipped }) = framer.feed(&buf[..n]).pop() {
                    assert_eq!(skipped, 0, "the agent sends no noise");
                    for chunk in answer.chunks(7) {
                        peer.write_all(chunk).unwrap();
                    }
                    return (request, peer);
                }
            }
        })
    }

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn run(
        answer: Vec<u8>,
        req: &FenceRequest,
        limit: Duration,
    ) -> (Result<Answer, LineError>, SerialRequest, String) {
        let (mut agent, daemon) = pair();
        let h = stub(daemon, answer);
        let mut err = Vec::new();
        let start = Instant::now();
        let bytes = serial_request(req).encode();
        let r = {
            let mut log = Log::new("fence_virt", 3, &mut err);
            converse_line(&mut agent, &bytes, start + limit, start + limit, &mut log)
        };
        (r, h.join().unwrap().0, String::from_utf8(err).unwrap())
    }

    #[test]
    fn plain_answer_after_noise_with_overlapping_prefix() {
        let mut answer = b"\x00\xffab\x61\x61\x62garbage aab".to_vec();
        answer.extend_from_slice(b"aabba\x02");
        let req = request(Op::Status, Some("victim"));
        let (r, seen, _) = run(answer, &req, Duration::from_secs(5));
        assert_eq!(r.unwrap(), Answer::Result(Response::Off));
        assert_eq!(seen.request, Op::Status.code());
        assert_eq!(seen.domain.unwrap().as_str(), "victim");
        assert_eq!(seen.seqno, 0x0102_0304);
        assert_eq!(seen.flags, 0);
    }

    #[test]
    fn list_with_closing_record_and_noise() {
        let hosts = vec![
            HostState {
                name: "abba".into(),
                uuid: "fe0c0000-0000-4000-8000-000000000001".into(),
                state: 1,
            },
            HostState {
                name: "victim".into(),
                uuid: "fe0c0000-0000-4000-8000-000000000002".into(),
                state: 5,
            },
        ];
        let mut answer = b"noise".to_vec();
        answer.extend_from_slice(&encode_host_list(&hosts, Response::Success));
        let (r, seen, log) = run(answer, &request(Op::HostList, None), Duration::from_secs(5));
        assert_eq!(r.unwrap(), Answer::List(hosts));
        assert_eq!(seen.request, Op::HostList.code());
        assert!(seen.domain.is_none());
        assert!(!log.contains("no closing record"), "{log}");
    }

    #[test]
    fn list_without_closing_record_still_succeeds() {
        let mut answer = encode_response(Response::HostList).to_vec();
        answer.extend_from_slice(&vmfence_proto::hostlist::TERMINATOR);
        let start = Instant::now();
        let (r, _, log) = run(answer, &request(Op::HostList, None), Duration::from_secs(5));
        assert_eq!(r.unwrap(), Answer::List(Vec::new()));
        assert!(log.contains("no closing record"), "{log}");
        assert!(start.elapsed() < LIST_TRAILER_WAIT + Duration::from_secs(1));
    }

    #[test]
    fn silence_times_out_within_the_deadline() {
        let (mut agent, daemon) = pair();
        let mut err = Vec::new();
        let mut log = Log::new("fence_virt", 0, &mut err);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(300);
        let r = converse_line(&mut agent, &[0u8; 74], deadline, deadline, &mut log);
        let e = r.unwrap_err();
        assert!(
            matches!(
                e,
                LineError::TimedOut {
                    step: Step::Result,
                    received: 0
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("nothing came back"), "{e}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(2),
            "{took:?}"
        );
        drop(daemon);
    }

    #[test]
    fn noise_without_magic_times_out_and_says_so() {
        let (r, _, _) = run(
            b"ababab abb".to_vec(),
            &request(Op::Off, Some("x")),
            Duration::from_millis(300),
        );
        let e = r.unwrap_err();
        assert!(matches!(e, LineError::TimedOut { received: 10, .. }), "{e:?}");
        assert!(e.to_string().contains("10 bytes came back"), "{e}");
    }

    #[test]
    fn closed_line_is_reported() {
        let (mut agent, daemon) = pair();
        drop(daemon);
        let mut err = Vec::new();
        let mut log = Log::new("fence_virt", 0, &mut err);
        let d = Instant::now() + Duration::from_secs(2);
        let e = converse_line(&mut agent, &[0u8; 74], d, d, &mut log).unwrap_err();
        assert!(matches!(e, LineError::Closed(_)), "{e:?}");
    }

    #[test]
    fn settings_are_the_classic_raw_ones() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let t = tcgetattr(&pty.slave).unwrap();
        let p = SerialParams::parse("9600,7E2").unwrap();
        let raw = line_settings(t, p).unwrap();
        let c = raw.control_flags;
        for f in [
            ControlFlags::CLOCAL,
            ControlFlags::CREAD,
            ControlFlags::CRTSCTS,
            ControlFlags::PARENB,
            ControlFlags::CSTOPB,
        ] {
            assert!(c.contains(f), "{f:?} missing");
        }
        assert!(!c.contains(ControlFlags::PARODD));
        assert_eq!(c & ControlFlags::CSIZE, ControlFlags::CS7);
        assert!(raw.input_flags.is_empty() && raw.output_flags.is_empty() && raw.local_flags.is_empty());
        assert_eq!(nix::sys::termios::cfgetospeed(&raw), BaudRate::B9600);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &raw).unwrap();
        let back = tcgetattr(&pty.slave).unwrap();
        assert_eq!(nix::sys::termios::cfgetispeed(&back), BaudRate::B9600);
    }

    #[test]
    fn hangup_on_a_pty_restores_the_settings() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let file = File::from(pty.slave);
        let raw = line_settings(tcgetattr(&file).unwrap(), SerialParams::DEFAULT).unwrap();
        tcsetattr(&file, SetArg::TCSANOW, &raw).unwrap();
        let mut err = Vec::new();
        let mut log = Log::new("fence_virt", 2, &mut err);
        let start = Instant::now();
        hangup(&file, &raw, start + Duration::from_secs(5), &mut log).unwrap();
        let took = start.elapsed();
        assert!(took >= HANGUP, "{took:?}");
        let back = tcgetattr(&file).unwrap();
        assert_eq!(nix::sys::termios::cfgetospeed(&back), BaudRate::B115200);
        // Bounded by the deadline too.
        let start = Instant::now();
        hangup(&file, &raw, start + Duration::from_millis(50), &mut log).unwrap();
        assert!(start.elapsed() < HANGUP);
    }

    #[test]
    fn opening_checks_the_device() {
        let dir = tempfile::tempdir().unwrap();
        let mut err = Vec::new();
        let mut log = Log::new("fence_virt", 0, &mut err);
        let d = Instant::now() + Duration::from_secs(1);
        let missing = dir.path().join("ttyS9");
        let e = open_line(&missing, SerialParams::DEFAULT, d, &mut log).unwrap_err();
        assert!(matches!(e, SerialError::Open { .. }), "{e:?}");
        assert!(e.to_string().contains("VMChannel"), "{e}");
        let plain = dir.path().join("file");
        std::fs::write(&plain, b"x").unwrap();
        let e = open_line(&plain, SerialParams::DEFAULT, d, &mut log).unwrap_err();
        assert!(matches!(e, SerialError::NotCharDevice { .. }), "{e:?}");
        // /dev/null: a character device but no terminal: used as it is.
        assert!(open_line(Path::new("/dev/null"), SerialParams::DEFAULT, d, &mut log).is_ok());
    }

    #[test]
    fn a_pty_is_opened_locked_and_set_raw() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let name = std::fs::read_link(format!("/proc/self/fd/{}", {
            use std::os::fd::AsRawFd;
            pty.slave.as_raw_fd()
        }))
        .unwrap();
        let mut err = Vec::new();
        let start = Instant::now();
        let p = SerialParams::parse("19200,8O1").unwrap();
        let f = {
            let mut log = Log::new("fence_virt", 2, &mut err);
            open_line(&name, p, start + Duration::from_secs(2), &mut log).unwrap()
        };
        assert!(start.elapsed() < HANGUP, "no hang-up on a pty");
        let t = tcgetattr(&f).unwrap();
        assert_eq!(nix::sys::termios::cfgetospeed(&t), BaudRate::B19200);
        assert!(t.control_flags.contains(ControlFlags::PARODD));
        let text = String::from_utf8(err).unwrap();
        assert!(text.contains("pseudo terminal"), "{text}");
    }
}
