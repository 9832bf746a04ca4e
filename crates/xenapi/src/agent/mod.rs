//! The `fence_xenapi` program: parse the options (framework rules), check
//! them, log in to the pool, act, log out, print, and map the outcome to
//! the exit code in one place ([`exit_code`]). The binary only hands
//! [`run`] its arguments and standard streams.

pub mod docs;
pub mod settings;
pub mod table;

use std::cell::RefCell;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmfence_agentkit::exit::Verdict;
use vmfence_agentkit::log::Log;
use vmfence_agentkit::{docs as kit, parse, ArgError};

use crate::agent::settings::{Action, Checked, Settings};
use crate::agent::table::{Xenapi, NAME};
use crate::client::{CallError, Client, Credentials, Limits, LoginError};
use crate::power::{self, Done, PowerError, PowerTiming};
use crate::transport::{HttpTransport, Scheme, TlsSetupError, Verify};
use crate::vm::LookupError;

/// The end of a run.
#[derive(Debug)]
pub enum Outcome {
    /// Text for standard output (metadata, help, a list), or nothing.
    Print(String),
    /// A power action's `Success: …` line.
    Success(String),
    /// `status`: whether the VM is on.
    Status(bool),
    /// A failure.
    Failed(AgentError),
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Bad options.
    #[error(transparent)]
    Args(#[from] ArgError),
    /// The debug file cannot be opened.
    #[error("cannot open debug file {}: {source}", .path.display())]
    DebugFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The password script failed.
    #[error("password script: {0}")]
    PasswordScript(String),
    /// The CA file cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// No session.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// The VM cannot be found.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// A call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A power action failed.
    #[error(transparent)]
    Power(#[from] PowerError),
    /// Standard output failed.
    #[error("cannot write to standard output: {0}")]
    Output(#[source] io::Error),
}

/// The exit code of an outcome: the framework's mapping (0 success or on,
/// 2 off, 1 failure).
pub fn exit_code(outcome: &Outcome) -> u8 {
    let verdict = match outcome {
        Outcome::Print(_) | Outcome::Success(_) | Outcome::Status(true) => Verdict::Success,
        Outcome::Status(false) => Verdict::Off,
        Outcome::Failed(_) => Verdict::Failure,
    };
    verdict.code()
}

/// Run `fence_xenapi` with `args` (without the program name); standard
/// input is read only when there are none. Returns the exit code.
pub fn run<I, S>(args: I, stdin: &mut dyn BufRead, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let parsed = match parse::parse(Xenapi, args, stdin) {
        Ok(p) => p,
        Err(e) => {
            let mut log = Log::new(NAME, 0, err);
            return finish(Outcome::Failed(e.into()), out, &mut log);
        }
    };
    let s = parsed.settings;
    let file = match &s.debug_file {
        None => None,
        Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Some(f),
            Err(source) => {
                let mut log = Log::new(NAME, 0, err);
                let e = AgentError::DebugFile {
                    path: path.clone(),
                    source,
                };
                return finish(Outcome::Failed(e), out, &mut log);
            }
        },
    };
    // With a debug file, every debug line goes there (level 2: each XenAPI
    // call too); standard error shows them only when -v asked for them.
    let level = if file.is_some() {
        s.verbose.max(2)
    } else {
        s.verbose
    };
    let mut sink = Sink::new(err, file, s.verbose > 0);
    let mut log = Log::new(NAME, level, &mut sink);
    for note in &parsed.notes {
        log.debug(1, format_args!("standard input: {note}"));
    }
    let outcome = {
        let log = RefCell::new(&mut log);
        match execute(&s, parsed.from_stdin, &log) {
            Ok(o) => o,
            Err(e) => Outcome::Failed(e),
        }
    };
    finish(outcome, out, &mut log)
}

fn debug(log: &RefCell<&mut Log<'_>>, level: u32, msg: impl std::fmt::Display) {
    log.borrow_mut().debug(level, msg);
}

fn execute(s: &Settings, from_stdin: bool, log: &RefCell<&mut Log<'_>>) -> Result<Outcome, AgentError> {
    if s.help {
        return Ok(Outcome::Print(kit::help(Xenapi)));
    }
    if s.version {
        return Ok(Outcome::Print(docs::version()));
    }
    match s.action {
        Action::Metadata => return Ok(Outcome::Print(kit::metadata(Xenapi))),
        Action::Manpage => return Ok(Outcome::Print(kit::manpage(Xenapi))),
        _ => {}
    }
    let checked = s.check()?;
    log_settings(s, &checked, from_stdin, log);
    // Reads the CA file or the system trust store: validate-all checks them too.
    let transport = HttpTransport::new(&checked.verify, s.login_timeout)?;
    for n in &transport.notes {
        debug(log, 2, n);
    }
    if s.action == Action::ValidateAll {
        return Ok(Outcome::Print(String::new()));
    }
    let password = match &s.password_script {
        Some(script) => run_password_script(script, s.login_timeout.max(Duration::from_secs(5)))?,
        None => s.password.clone().unwrap_or_default(),
    };
    if matches!(s.action, Action::Off | Action::Reboot) && !s.delay.is_zero() {
        debug(
            log,
            1,
            format_args!(
                "waiting {:.1} s before {} (delay)",
                s.delay.as_secs_f32(),
                s.action.name()
            ),
        );
        std::thread::sleep(s.delay);
    }
    let credentials = Credentials {
        user: s.login.clone().unwrap_or_default(),
        password,
    };
    let limits = Limits {
        login: s.login_timeout,
        call: s.shell_timeout,
    };
    let mut client = Client::new(transport, checked.pool.clone(), credentials, NAME, limits)
        .with_trace(|m| debug(log, 2, m));
    let mut session = client.login()?;
    debug(log, 1, format_args!("logged in to {}", session.endpoint()));
    let timing = PowerTiming {
        power_timeout: s.power_timeout,
        power_wait: s.power_wait,
        poll_interval: s.status_sleep,
    };
    let result = act(s, &checked, &mut session, &timing, log);
    // Dropping the session logs out too; this way the outcome is logged.
    match session.logout() {
        Ok(()) => debug(log, 1, "logged out"),
        Err(e) => log.borrow_mut().error(format_args!("logout failed: {e}")),
    }
    result
}

fn act<T: crate::transport::Transport>(
    s: &Settings,
    checked: &Checked,
    session: &mut crate::client::Session<'_, '_, T>,
    timing: &PowerTiming,
    log: &RefCell<&mut Log<'_>>,
) -> Result<Outcome, AgentError> {
    let target = checked.target.as_deref();
    match s.action {
        Action::List | Action::ListStatus => {
            let sep = &s.separator;
            let mut text = String::new();
            for vm in session.fenceable_vms()? {
                text.push_str(&vm.uuid);
                text.push_str(sep);
                text.push_str(&vm.name_label);
                if s.action == Action::ListStatus {
                    text.push_str(sep);
                    text.push_str(if vm.power_state.is_off() { "OFF" } else { "ON" });
                }
                text.push('\n');
            }
            return Ok(Outcome::Print(text));
        }
        Action::Monitor => {
            if let Some(t) = target {
                let vm = session.select_vm(t)?;
                debug(
                    log,
                    1,
                    format_args!("monitor: {} is {} ({})", vm.name_label, vm.power_state, vm.uuid),
                );
            }
            return Ok(Outcome::Print(String::new()));
        }
        _ => {}
    }
    let Some(target) = target else {
        return Err(ArgError::NoTarget(s.action.name()).into());
    };
    let vm = session.select_vm(target)?;
    debug(
        log,
        1,
        format_args!(
            "VM {} ({}) is {}{}",
            vm.name_label,
            vm.uuid,
            vm.power_state,
            vm.domid.map(|d| format!(", domid {d}")).unwrap_or_default()
        ),
    );
    let started = Instant::now();
    let outcome = match s.action {
        Action::Status => Outcome::Status(!vm.power_state.is_off()),
        Action::Off => match power::power_off(session, &vm, timing)? {
            Done::Already => Outcome::Success("Success: Already OFF".into()),
            _ => Outcome::Success("Success: Powered OFF".into()),
        },
        Action::On => match power::power_on(session, &vm, timing, 1 + s.retry_on)? {
            Done::Already => Outcome::Success("Success: Already ON".into()),
            _ => Outcome::Success("Success: Powered ON".into()),
        },
        Action::Reboot => {
            if let Done::OffOnly(why) = power::reboot(session, &vm, timing, s.method, s.retry_on.max(1))? {
                log.borrow_mut().error(format_args!(
                    "VM {} was switched off but did not come back on: {why}",
                    vm.name_label
                ));
            }
            Outcome::Success("Success: Rebooted".into())
        }
        _ => return Err(ArgError::NoTarget(s.action.name()).into()),
    };
    debug(
        log,
        1,
        format_args!("{} took {} ms", s.action.name(), started.elapsed().as_millis()),
    );
    Ok(outcome)
}

fn log_settings(s: &Settings, c: &Checked, from_stdin: bool, log: &RefCell<&mut Log<'_>>) {
    let pool: Vec<String> = c.pool.iter().map(|e| e.url()).collect();
    debug(
        log,
        1,
        format_args!(
            "options from {}: action={} target={} session_url={} login={} verify={} method={:?} \
             login_timeout={}s shell_timeout={}s power_timeout={}s power_wait={}s status_sleep={}s retry_on={}",
            if from_stdin { "standard input" } else { "the command line" },
            s.action.name(),
            c.target.as_deref().unwrap_or("(none)"),
            pool.join(","),
            s.login.as_deref().unwrap_or("(none)"),
            match &c.verify {
                Verify::System => "system trust store".to_owned(),
                Verify::CaFile(p) => format!("CA file {}", p.display()),
                Verify::Insecure => "off (ssl_insecure)".to_owned(),
            },
            s.method,
            s.login_timeout.as_secs_f32(),
            s.shell_timeout.as_secs_f32(),
            s.power_timeout.as_secs_f32(),
            s.power_wait.as_secs_f32(),
            s.status_sleep.as_secs_f32(),
            s.retry_on,
        ),
    );
    for name in &s.ignored {
        debug(
            log,
            1,
            format_args!("option {name} has no effect in {NAME}; ignored"),
        );
    }
    if c.pool.iter().any(|e| e.scheme == Scheme::Http) {
        debug(
            log,
            1,
            "an http:// session_url sends the password unencrypted; use https://",
        );
    }
    if s.plug.is_some() && s.uuid.is_some() {
        debug(log, 1, "both uuid and plug are given: uuid is used");
    }
}

/// Run the password script with `sh -c`, at most `limit`; its standard
/// output without trailing white space is the password.
fn run_password_script(script: &str, limit: Duration) -> Result<String, AgentError> {
    let fail = |m: String| AgentError::PasswordScript(m);
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run /bin/sh: {e}")))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        let mut e = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(1 << 20).read_to_end(&mut o);
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(1 << 16).read_to_end(&mut e);
        }
        (o, e)
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("no end after {} s", limit.as_secs_f32())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let (o, e) = reader.join().unwrap_or_default();
    if !status.success() {
        let msg = String::from_utf8_lossy(&e);
        let first = msg.lines().next().unwrap_or("").trim();
        return Err(fail(format!(
            "{status}{}",
            if first.is_empty() {
                String::new()
            } else {
                format!(": {first}")
            }
        )));
    }
    let text = String::from_utf8(o).map_err(|_| fail("its output is not UTF-8".to_owned()))?;
    Ok(text.trim_end().to_owned())
}

/// Print what the outcome calls for and return the exit code.
fn finish(outcome: Outcome, out: &mut dyn Write, log: &mut Log<'_>) -> u8 {
    let mut code = exit_code(&outcome);
    let printed = match &outcome {
        Outcome::Print(text) => out.write_all(text.as_bytes()),
        Outcome::Success(line) => writeln!(out, "{line}"),
        Outcome::Status(on) => writeln!(out, "Status: {}", if *on { "ON" } else { "OFF" }),
        Outcome::Failed(e) => {
            log.error(e);
            if matches!(e, AgentError::Args(_)) {
                log.raw(format_args!("Try '{NAME} -h' for the options."));
            }
            Ok(())
        }
    };
    if printed.and_then(|()| out.flush()).is_err() {
        log.error("cannot write to standard output");
        code = Verdict::Failure.code();
    }
    code
}

/// Standard error plus the debug file: whole lines, the file gets all of
/// them, standard error the debug lines only when `-v` asked for them.
struct Sink<'e> {
    err: &'e mut dyn Write,
    file: Option<File>,
    debug_to_err: bool,
    line: Vec<u8>,
}

impl<'e> Sink<'e> {
    fn new(err: &'e mut dyn Write, file: Option<File>, debug_to_err: bool) -> Self {
        Sink {
            err,
            file,
            debug_to_err,
            line: Vec::new(),
        }
    }

    fn flush_line(&mut self) -> io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        let is_debug = self.line.starts_with(format!("{NAME}: debug: ").as_bytes());
        if let Some(f) = self.file.as_mut() {
            let _ = f.write_all(&self.line);
        }
        if !is_debug || self.debug_to_err {
            self.err.write_all(&self.line)?;
        }
        self.line.clear();
        Ok(())
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            self.line.push(b);
            if b == b'\n' {
                self.flush_line()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_line()?;
        self.err.flush()
    }
}

impl Drop for Sink<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn run_args(args: &[&str]) -> (u8, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = run(args.iter().copied(), &mut &b""[..], &mut out, &mut err);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn local_actions() {
        let (code, out, err) = run_args(&["-o", "metadata"]);
        assert_eq!((code, err.as_str()), (0, ""));
        assert!(out.starts_with("<?xml"));
        let (code, out, _) = run_args(&["-h"]);
        assert_eq!(code, 0);
        assert!(out.starts_with("usage: fence_xenapi"));
        let (code, out, _) = run_args(&["-V"]);
        assert_eq!((code, out.starts_with("fence_xenapi ")), (0, true));
        let (code, out, err) = run_args(&["-o", "validate-all", "-s", "https://x", "-l", "root"]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
        let (code, out, err) = run_args(&["-o", "off", "-s", "https://x", "-l", "root"]);
        assert_eq!((code, out.as_str()), (1, ""));
        assert!(
            err.contains("fence_xenapi: no virtual machine given") && err.contains("Try 'fence_xenapi -h'"),
            "{err}"
        );
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&Outcome::Status(true)), 0);
        assert_eq!(exit_code(&Outcome::Status(false)), 2);
        assert_eq!(exit_code(&Outcome::Success("x".into())), 0);
        assert_eq!(exit_code(&Outcome::Print(String::new())), 0);
        assert_eq!(exit_code(&Outcome::Failed(ArgError::NoTarget("off").into())), 1);
    }

    #[test]
    fn password_script() {
        assert_eq!(
            run_password_script("printf 'se cret \\n\\n'", Duration::from_secs(5)).unwrap(),
            "se cret"
        );
        let e = run_password_script("echo nope >&2; exit 3", Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(e.contains("exit status: 3") && e.contains("nope"), "{e}");
        let e = run_password_script("sleep 5", Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no end after"), "{e}");
    }

    #[test]
    fn sink_splits_debug_lines() {
        let mut err = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.log");
        {
            let f = File::create(&path).unwrap();
            let mut sink = Sink::new(&mut err, Some(f), false);
            let mut log = Log::new(NAME, 1, &mut sink);
            log.debug(1, "quiet detail");
            log.error("loud");
        }
        assert_eq!(String::from_utf8(err).unwrap(), "fence_xenapi: loud\n");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "fence_xenapi: debug: quiet detail\nfence_xenapi: loud\n"
        );
    }
}
