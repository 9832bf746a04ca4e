//! How a run ends: the one place that turns outcomes into exit codes and
//! into the final words on standard output and standard error.
//!
//! Exit codes follow the fence-agent contract and the classic agent: 0 for
//! success (and `status` of a running VM), 2 for `status` of a VM that is
//! off, 1 for any failure, 3 when the daemon's permission map refused, and
//! any other daemon answer `n` passed through as `n`.

use std::io::{self, Write};

use vmfence_agentkit::exit::Verdict;
use vmfence_proto::{HostState, Response};

use crate::keyfile::KeyFileError;
use crate::log::Log;
use crate::net::TransportError;
use crate::settings::{Action, ArgError};

/// The end of a run.
#[derive(Debug)]
pub enum Outcome {
    /// Done, nothing more to say (help, metadata, validate-all, a printed list).
    Done,
    /// The daemon answered `Response` to `Action`.
    Answer(Action, Response),
    /// Something failed before an answer.
    Failed(AgentError),
}

/// Why a run failed locally.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Bad options.
    #[error(transparent)]
    Args(#[from] ArgError),
    /// The key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The request or answer did not make it.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A transport of `fence_virt` that this build does not have yet.
    #[error("{0} is not implemented yet in this build")]
    NotImplemented(&'static str),
    /// A host list came back for an action that does not ask for one.
    #[error("the daemon answered '{0}' with a host list")]
    UnexpectedList(&'static str),
    /// Standard output failed.
    #[error("cannot write to standard output: {0}")]
    Output(#[source] io::Error),
}

/// The exit code of an outcome, through the framework's one mapping
/// ([`Verdict::code`]); the daemon's permission refusal (3) and unknown
/// answers pass through.
pub fn exit_code(outcome: &Outcome) -> u8 {
    let verdict = match outcome {
        Outcome::Done => Verdict::Success,
        Outcome::Answer(_, r) => match r {
            Response::Success | Response::HostList => Verdict::Success,
            Response::Fail => Verdict::Failure,
            Response::Off => Verdict::Off,
            Response::PermissionDenied => Verdict::Passthrough(3),
            Response::Other(n) => Verdict::Passthrough(*n),
        },
        Outcome::Failed(_) => Verdict::Failure,
    };
    verdict.code()
}

/// Print what the outcome calls for and return the exit code.
pub fn finish(outcome: &Outcome, out: &mut dyn Write, log: &mut Log<'_>) -> u8 {
    let mut code = exit_code(outcome);
    match outcome {
        Outcome::Done => {}
        Outcome::Answer(action, r) => {
            let printed = match (action, r) {
                (Action::Status, Response::Success) => writeln!(out, "Status: ON"),
                (Action::Status, Response::Off) => writeln!(out, "Status: OFF"),
                (_, Response::Fail) => {
                    log.raw("Operation failed");
                    Ok(())
                }
                (_, Response::PermissionDenied) => {
                    log.raw("Permission denied");
                    Ok(())
                }
                (_, Response::Other(n)) => {
                    log.raw(format_args!("Unknown response ({n})"));
                    Ok(())
                }
                _ => Ok(()),
            };
            if printed.and_then(|()| out.flush()).is_err() {
                code = 1;
            }
        }
        Outcome::Failed(e) => {
            log.error(e);
            if matches!(e, AgentError::Args(_)) {
                let prog = log.prog();
                log.raw(format_args!("Try '{prog} -h' for the options."));
            }
            log.raw("Operation failed");
        }
    }
    code
}

/// One line of `list` output, as the classic agent prints it: the name
/// left-justified in 32 columns, the UUID, and `on` only for a running VM.
/// Pacemaker's dynamic host lists split it on blanks and drop on/off, so
/// both the name and the UUID become targets.
pub fn host_line(h: &HostState) -> String {
    format!(
        "{:<32} {} {}",
        h.name,
        h.uuid,
        if h.is_running() { "on" } else { "off" }
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn exit_codes() {
        let a = |r| exit_code(&Outcome::Answer(Action::Status, r));
        assert_eq!(a(Response::Success), 0);
        assert_eq!(a(Response::Off), 2);
        assert_eq!(a(Response::Fail), 1);
        assert_eq!(a(Response::PermissionDenied), 3);
        assert_eq!(a(Response::Other(42)), 42);
        assert_eq!(a(Response::Other(255)), 255);
        assert_eq!(exit_code(&Outcome::Done), 0);
        let f = Outcome::Failed(AgentError::NotImplemented("vsock"));
        assert_eq!(exit_code(&f), 1);
        assert_eq!(exit_code(&Outcome::Answer(Action::Off, Response::Off)), 2);
    }

    #[test]
    fn final_words() {
        let run = |o: Outcome| {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let code = finish(&o, &mut out, &mut Log::new("fence_xvm", 0, &mut err));
            (
                code,
                String::from_utf8(out).unwrap(),
                String::from_utf8(err).unwrap(),
            )
        };
        assert_eq!(
            run(Outcome::Answer(Action::Status, Response::Success)),
            (0, "Status: ON\n".into(), "".into())
        );
        assert_eq!(
            run(Outcome::Answer(Action::Status, Response::Off)),
            (2, "Status: OFF\n".into(), "".into())
        );
        assert_eq!(
            run(Outcome::Answer(Action::Off, Response::Success)),
            (0, "".into(), "".into())
        );
        assert_eq!(
            run(Outcome::Answer(Action::Off, Response::Fail)),
            (1, "".into(), "Operation failed\n".into())
        );
        assert_eq!(
            run(Outcome::Answer(Action::On, Response::PermissionDenied)),
            (3, "".into(), "Permission denied\n".into())
        );
        assert_eq!(
            run(Outcome::Answer(Action::On, Response::Other(9))),
            (9, "".into(), "Unknown response (9)\n".into())
        );
        let (code, out, err) = run(Outcome::Failed(AgentError::Args(ArgError::NoTarget("off"))));
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(err.contains("fence_xvm: no virtual machine given"), "{err}");
        assert!(err.contains("Try 'fence_xvm -h'"), "{err}");
    }

    #[test]
    fn list_lines_match_the_classic_layout() {
        let h = HostState {
            name: "test".into(),
            uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
            state: 1,
        };
        assert_eq!(
            host_line(&h),
            "test                             6695eb01-f6a4-8304-79aa-97f2502e193f on"
        );
        let paused = HostState {
            state: 3,
            ..h.clone()
        };
        assert!(host_line(&paused).ends_with(" off"));
        let long = HostState {
            name: "n".repeat(40),
            ..h
        };
        assert!(host_line(&long).starts_with(&format!("{} 6695", "n".repeat(40))));
    }
}
