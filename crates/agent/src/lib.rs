//! The guest-side fence agents `fence_xvm` and `fence_virt`, and the small
//! fence-agent framework they are built on.
//!
//! One option table ([`table`]) drives command-line and standard-input
//! parsing ([`parse`]), `-h`, the metadata XML and the man page ([`docs`]).
//! [`run`] is the whole program: parse, check, read the key, send the request
//! over the selected transport ([`net`]), print the result, and map the
//! outcome to an exit code in one place ([`outcome`]). The binaries only hand
//! it their arguments and standard streams.

pub mod docs;
pub mod keyfile;
pub mod log;
pub mod net;
pub mod outcome;
pub mod parse;
pub mod settings;
pub mod table;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::time::Instant;

use vmfence_proto::request::RF_UUID;
use vmfence_proto::FenceRequest;

use crate::log::Log;
use crate::net::mcast::{fence_multicast, McastTarget};
use crate::net::serial::fence_serial;
use crate::net::tcp::fence_tcp;
use crate::net::vmchannel::fence_vmchannel;
use crate::net::vsock::fence_vsock;
use crate::net::{random_seqno, Answer, Security};
use crate::outcome::{finish, host_line, AgentError, Outcome};
use crate::settings::{Action, Settings, Transport};

pub use crate::table::Binary;

/// Run the agent `bin` with `args` (without the program name). Standard
/// input is read only when `args` is empty. Returns the exit code.
pub fn run<I, S>(
    bin: Binary,
    args: I,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut log = Log::new(bin.name(), 0, err);
    let outcome = execute(bin, args, stdin, out, &mut log);
    finish(&outcome, out, &mut log)
}

fn execute<I, S>(
    bin: Binary,
    args: I,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    log: &mut Log<'_>,
) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    match try_execute(bin, args, stdin, out, log) {
        Ok(o) => o,
        Err(e) => Outcome::Failed(e),
    }
}

fn try_execute<I, S>(
    bin: Binary,
    args: I,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    log: &mut Log<'_>,
) -> Result<Outcome, AgentError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let parsed = parse::parse(bin, args, stdin)?;
    let s = parsed.settings;
    log.set_level(s.debug);
    for note in &parsed.notes {
        log.debug(1, format_args!("standard input: {note}"));
    }
    let print = |out: &mut dyn Write, text: &str| -> Result<Outcome, AgentError> {
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(AgentError::Output)?;
        Ok(Outcome::Done)
    };
    if s.help {
        return print(out, &docs::help(bin));
    }
    if s.version {
        return print(out, &docs::version(bin));
    }
    if s.manpage {
        return print(out, &docs::manpage(bin));
    }
    if s.action == Action::Metadata {
        return print(out, &docs::metadata(bin));
    }
    s.check()?;
    let transport = s.transport()?;
    log_settings(&s, &transport, parsed.from_stdin, log);
    if !transport.uses_key() {
        log.debug(
            1,
            "serial and VMChannel carry no key: key_file, hash and auth are not used",
        );
    }
    let key = if s.needs_key() {
        Some(keyfile::read_key(&s.key_file)?)
    } else {
        None
    };
    if s.action == Action::ValidateAll {
        return Ok(Outcome::Done);
    }
    let Some(op) = s.action.op() else {
        return Ok(Outcome::Done);
    };
    if s.action.is_delayed() && !s.delay.is_zero() {
        log.debug(
            1,
            format_args!("waiting {} s before {}", s.delay.as_secs(), s.action.name()),
        );
        std::thread::sleep(s.delay);
    }
    let deadline = Instant::now() + s.timeout;
    let mut req = FenceRequest::new(op, s.target.clone(), random_seqno()?);
    if s.use_uuid {
        req.flags |= RF_UUID;
    }
    let sec = Security {
        hash: s.hash,
        auth: s.auth,
        key: key.as_ref(),
    };
    log.debug(1, format_args!("request {} seqno {}", op, req.seqno));
    let answer = match transport {
        Transport::Multicast { group } => {
            let target = McastTarget {
                group,
                port: s.port,
                retrans: s.retrans,
            };
            fence_multicast(target, &req, sec, deadline, log)?
        }
        Transport::Tcp(host) => fence_tcp(&host, s.port, &req, sec, deadline, log)?,
        Transport::Vsock(cid) => fence_vsock(cid, s.port, &req, sec, deadline, log)?,
        Transport::Serial { device, params } => fence_serial(&device, params, &req, deadline, log)?,
        Transport::VmChannel(address) => fence_vmchannel(&address, s.port, &req, deadline, log)?,
    };
    match answer {
        Answer::Result(r) => {
            log.debug(1, format_args!("daemon answered {r}"));
            Ok(Outcome::Answer(s.action, r))
        }
        Answer::List(hosts) if matches!(s.action, Action::List | Action::ListStatus) => {
            let mut text = String::new();
            for h in &hosts {
                text.push_str(&host_line(h));
                text.push('\n');
            }
            print(out, &text)
        }
        Answer::List(_) => Err(AgentError::UnexpectedList(s.action.name())),
    }
}

fn log_settings(s: &Settings, transport: &Transport, from_stdin: bool, log: &mut Log<'_>) {
    if log.level() == 0 {
        return;
    }
    log.debug(
        1,
        format_args!(
            "options from {}: action={} target={} transport={:?} port={} hash={} auth={} key_file={} \
             timeout={}s retrans={}ms delay={}s use_uuid={}",
            if from_stdin {
                "standard input"
            } else {
                "the command line"
            },
            s.action.name(),
            s.target.as_ref().map_or("(none)", |d| d.as_str()),
            transport,
            s.port,
            s.hash,
            s.auth,
            s.key_file.display(),
            s.timeout.as_secs(),
            s.retrans.as_millis(),
            s.delay.as_secs(),
            s.use_uuid
        ),
    );
}
