//! The `fence_virtd` command line: one option table drives argument parsing
//! and `-h`; [`run`] executes the request and maps the outcome to the exit
//! status in one place.
//!
//! Options are those of the classic daemon (`-F -f -d -c -l -w -p -h`) plus
//! `--check` and `--allow-insecure-key`. Without `-c`, `-l`, `-h` or
//! `--check`, `fence_virtd` runs the daemon ([`crate::run`]); `-c` runs the
//! interactive configurator ([`crate::configure`]) on the `-f` file.
//!
//! `--check` reads the configuration (default `/etc/fence_virt.conf`),
//! validates it, loads the key file of every configured listener that
//! authenticates (multicast, tcp, vsock with a `hash` or `auth` other than
//! `none`; serial uses none), and prints the effective settings on standard
//! output. Diagnostics go to standard error: configuration errors and warnings
//! as `FILE:LINE: message`. A key file readable or writable by group or others
//! is refused — the classic daemon would silently chmod it, and a key others
//! can read is no secret — unless `--allow-insecure-key` is given, in which
//! case it is only warned about. Nothing is ever modified.
//!
//! Exit status: 0 success; 1 configuration or key rejected, daemon failure,
//! or `-c` not writing the file; 2 bad command line.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use vmfence_config::keyfile::describe_access;
use vmfence_config::{
    load_config, load_key_file, BackendSettings, Config, KeyFileWarning, ListenerKind, ListenerSettings,
    LoadedKey, DEFAULT_CONFIG_FILE,
};

const PROGRAM: &str = "fence_virtd";

/// What each option does, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Config,
    Check,
    AllowInsecureKey,
    Foreground,
    Debug,
    Wait,
    PidFile,
    Configure,
    List,
    Help,
}

/// One row of the option table.
#[derive(Debug)]
struct OptSpec {
    opt: Opt,
    short: Option<char>,
    long: &'static str,
    /// Name of the value, for options that take one.
    value: Option<&'static str>,
    help: &'static str,
}

const OPTIONS: &[OptSpec] = &[
    OptSpec {
        opt: Opt::Config,
        short: Some('f'),
        long: "config",
        value: Some("FILE"),
        help: "configuration file (default /etc/fence_virt.conf)",
    },
    OptSpec {
        opt: Opt::Check,
        short: None,
        long: "check",
        value: None,
        help: "validate the configuration and its key files, print the effective settings and exit",
    },
    OptSpec {
        opt: Opt::AllowInsecureKey,
        short: None,
        long: "allow-insecure-key",
        value: None,
        help: "accept key files readable or writable by group or others (warn only)",
    },
    OptSpec {
        opt: Opt::Foreground,
        short: Some('F'),
        long: "foreground",
        value: None,
        help: "do not daemonize",
    },
    OptSpec {
        opt: Opt::Debug,
        short: Some('d'),
        long: "debug",
        value: Some("LEVEL"),
        help: "debug level; overrides fence_virtd/debug (0 = keep the file's level)",
    },
    OptSpec {
        opt: Opt::Wait,
        short: Some('w'),
        long: "wait",
        value: None,
        help: "wait for listener and backend initialization instead of giving up",
    },
    OptSpec {
        opt: Opt::PidFile,
        short: Some('p'),
        long: "pid-file",
        value: Some("FILE"),
        help: "record the process id in FILE (default /var/run/fence_virtd.pid)",
    },
    OptSpec {
        opt: Opt::Configure,
        short: Some('c'),
        long: "configure",
        value: None,
        help: "interactive configuration of the -f file: asks, shows the result, writes it if confirmed",
    },
    OptSpec {
        opt: Opt::List,
        short: Some('l'),
        long: "list",
        value: None,
        help: "list the built-in listeners and backends",
    },
    OptSpec {
        opt: Opt::Help,
        short: Some('h'),
        long: "help",
        value: None,
        help: "show this help",
    },
];

/// The parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `-f`: the configuration file.
    pub config: PathBuf,
    /// `--check`.
    pub check: bool,
    /// `--allow-insecure-key`.
    pub allow_insecure_key: bool,
    /// `-F`.
    pub foreground: bool,
    /// `-d`: `None` when absent or 0 (the classic daemon ignores `-d0`).
    pub debug: Option<u32>,
    /// `-w`.
    pub wait_for_init: bool,
    /// `-p`.
    pub pid_file: Option<PathBuf>,
    /// `-c`.
    pub configure: bool,
    /// `-l`.
    pub list: bool,
    /// `-h`, `-?`.
    pub help: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            config: PathBuf::from(DEFAULT_CONFIG_FILE),
            check: false,
            allow_insecure_key: false,
            foreground: false,
            debug: None,
            wait_for_init: false,
            pid_file: None,
            configure: false,
            list: false,
            help: false,
        }
    }
}

/// A command line that cannot be understood (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// Not in the option table.
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    /// An option that needs a value came last.
    #[error("option `{0}` needs a value")]
    MissingValue(String),
    /// A flag given a value with `--flag=value`.
    #[error("option `--{0}` takes no value")]
    UnexpectedValue(String),
    /// `-d` with something other than a number.
    #[error("debug level must be a whole number, not `{0}`")]
    BadDebugLevel(String),
    /// A word that is not an option.
    #[error("unexpected argument `{0}` (fence_virtd takes no operands)")]
    UnexpectedArgument(String),
    /// An option that is not valid text.
    #[error("option {0:?} is not valid UTF-8")]
    NotUnicode(OsString),
}

/// Parse the arguments after the program name. Short options cluster like
/// getopt (`-Fw`, `-d4`, `-ffile`); long ones take `--opt value` or
/// `--opt=value`.
pub fn parse_args<I, T>(args: I) -> Result<Options, UsageError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let mut options = Options::default();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(UsageError::NotUnicode(arg));
        };
        if let Some(long) = text.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(OsString::from(v))),
                None => (long, None),
            };
            let spec = OPTIONS
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| UsageError::UnknownOption(text.to_owned()))?;
            let value = match (spec.value, inline) {
                (Some(_), Some(v)) => Some(v),
                (Some(_), None) => Some(
                    args.next()
                        .ok_or_else(|| UsageError::MissingValue(text.to_owned()))?,
                ),
                (None, Some(_)) => return Err(UsageError::UnexpectedValue(name.to_owned())),
                (None, None) => None,
            };
            apply(&mut options, spec.opt, value)?;
        } else if let Some(shorts) = text.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (i, c) in shorts.char_indices() {
                if c == '?' {
                    options.help = true;
                    continue;
                }
                let spec = OPTIONS
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| UsageError::UnknownOption(format!("-{c}")))?;
                if spec.value.is_none() {
                    apply(&mut options, spec.opt, None)?;
                    continue;
                }
                let rest = &shorts[i + c.len_utf8()..];
                let value = if rest.is_empty() {
                    args.next()
                        .ok_or_else(|| UsageError::MissingValue(format!("-{c}")))?
                } else {
                    OsString::from(rest)
                };
                apply(&mut options, spec.opt, Some(value))?;
                break;
            }
        } else {
            return Err(UsageError::UnexpectedArgument(text.to_owned()));
        }
    }
    Ok(options)
}

fn apply(options: &mut Options, opt: Opt, value: Option<OsString>) -> Result<(), UsageError> {
    let value = value.unwrap_or_default();
    match opt {
        Opt::Config => options.config = PathBuf::from(value),
        Opt::Check => options.check = true,
        Opt::AllowInsecureKey => options.allow_insecure_key = true,
        Opt::Foreground => options.foreground = true,
        Opt::Debug => {
            let text = value.to_string_lossy();
            let level = text
                .parse::<u32>()
                .map_err(|_| UsageError::BadDebugLevel(text.clone().into_owned()))?;
            options.debug = (level != 0).then_some(level);
        }
        Opt::Wait => options.wait_for_init = true,
        Opt::PidFile => options.pid_file = Some(PathBuf::from(value)),
        Opt::Configure => options.configure = true,
        Opt::List => options.list = true,
        Opt::Help => options.help = true,
    }
    Ok(())
}

/// The help text, generated from the option table.
pub fn usage() -> String {
    let mut text = format!("Usage: {PROGRAM} [options]\n\nOptions:\n");
    for spec in OPTIONS {
        let short = spec.short.map_or("    ".to_owned(), |c| format!("-{c}, "));
        let long = match spec.value {
            Some(v) => format!("--{} {v}", spec.long),
            None => format!("--{}", spec.long),
        };
        text.push_str(&format!("  {short}{long:<22} {}\n", spec.help));
    }
    text.push_str(
        "\nWithout -c, -l, -h or --check, fence_virtd runs the daemon (in the background unless -F).\n\
         Exit status: 0 success; 1 configuration or key rejected, daemon failure, or -c did not\n\
         write the file; 2 usage error.\n",
    );
    text
}

/// Run `fence_virtd` with the process arguments (program name first) on the
/// process's standard output and error.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    // Unlocked handles: in daemon mode this call lasts the whole process
    // and other threads log to standard error too. Answers to `-c` are
    // echoed when they do not come from a terminal.
    let stdin = io::stdin();
    let input = Input {
        echo: !stdin.is_terminal(),
        reader: &mut stdin.lock(),
    };
    ExitCode::from(run_with_input(args, input, &mut io::stdout(), &mut io::stderr()))
}

/// Where `-c` reads its answers.
pub struct Input<'a> {
    /// The answers.
    pub reader: &'a mut dyn BufRead,
    /// Repeat each answer in the transcript (input that is not a terminal).
    pub echo: bool,
}

impl fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Input")
            .field("echo", &self.echo)
            .finish_non_exhaustive()
    }
}

/// [`run`] with explicit output streams and no answers for `-c` (it takes
/// its defaults and writes nothing); returns the exit status.
pub fn run_with<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let input = Input {
        reader: &mut io::empty(),
        echo: true,
    };
    run_with_input(args, input, out, err)
}

/// [`run`] with explicit streams; returns the exit status.
pub fn run_with_input<I, T>(args: I, input: Input<'_>, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let result = parse_args(args.into_iter().skip(1))
        .map_err(anyhow::Error::from)
        .and_then(|options| execute(&options, input, out, err));
    exit_status(result, err)
}

/// The one place where outcomes become exit statuses.
fn exit_status(result: anyhow::Result<()>, err: &mut dyn Write) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) if e.is::<UsageError>() => {
            let _ = writeln!(err, "{PROGRAM}: {e}\nTry '{PROGRAM} -h' for help.");
            2
        }
        Err(e) => {
            let _ = writeln!(err, "{e:#}");
            1
        }
    }
}

/// The configuration or a key was refused; the lines say why.
#[derive(Debug)]
struct Rejected {
    /// `FILE:LINE: message` lines.
    lines: Vec<String>,
    /// The closing verdict.
    summary: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        write!(f, "{PROGRAM}: {}", self.summary)
    }
}

impl std::error::Error for Rejected {}

fn execute(
    options: &Options,
    input: Input<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    if options.help {
        return out
            .write_all(usage().as_bytes())
            .context("writing to standard output");
    }
    if options.list {
        return list(out).context("writing to standard output");
    }
    if options.configure {
        return crate::configure::configure(&options.config, input.reader, out, input.echo)
            .map_err(|e| anyhow::anyhow!("{PROGRAM}: {e}"));
    }
    if options.check {
        return check(options, out, err);
    }
    crate::run::daemon(options, err)
}

fn list(out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "Available backends:")?;
    for kind in vmfence_config::BackendKind::ALL {
        if kind == vmfence_config::BackendKind::Cpg {
            writeln!(
                out,
                "    {kind} (configuration is checked; running it is not available yet)"
            )?;
        } else {
            writeln!(out, "    {kind}")?;
        }
    }
    writeln!(out, "Available listeners:")?;
    for kind in ListenerKind::ALL {
        writeln!(out, "    {kind}")?;
    }
    Ok(())
}

/// `--check`: see the module documentation.
fn check(options: &Options, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let (config, keys) = load_validated(options, err)?;
    print_settings(out, options, &config, &keys).context("writing to standard output")?;
    Ok(())
}

/// Read and validate the configuration and every key file it needs,
/// printing warnings on `err`. Shared by `--check`, daemon start and reload.
pub(crate) fn load_validated(
    options: &Options,
    err: &mut dyn Write,
) -> anyhow::Result<(Config, BTreeMap<PathBuf, LoadedKey>)> {
    let file = options.config.display().to_string();
    let config = match load_config(&options.config) {
        Ok(config) => config,
        Err(errors) => {
            for warning in &errors.warnings {
                writeln!(err, "{warning}")?;
            }
            let n = errors.errors.len();
            return Err(Rejected {
                lines: errors.errors.iter().map(ToString::to_string).collect(),
                summary: format!("{file}: configuration rejected ({n} error{})", plural(n)),
            }
            .into());
        }
    };
    for warning in &config.warnings {
        writeln!(err, "{warning}")?;
    }
    let keys = load_keys(&config, options.allow_insecure_key, err)?;
    Ok((config, keys))
}

/// Load every key file an authenticating listener needs, once per path.
/// Errors (and refused insecure keys) are collected into one [`Rejected`].
fn load_keys(
    config: &Config,
    allow_insecure: bool,
    err: &mut dyn Write,
) -> anyhow::Result<BTreeMap<PathBuf, LoadedKey>> {
    let mut keys = BTreeMap::new();
    let mut problems = Vec::new();
    for listener in &config.listeners {
        let Some(auth) = listener.auth() else { continue };
        if !auth.needs_key() || keys.contains_key(&auth.key_file.path) {
            continue;
        }
        let at = &auth.key_file.at;
        let kind = listener.kind();
        match load_key_file(&auth.key_file.path) {
            Ok(loaded) => {
                let path = loaded.path.display().to_string();
                for warning in &loaded.warnings {
                    match warning {
                        KeyFileWarning::Permissions { mode } => {
                            writeln!(
                                err,
                                "warning: key file {path} is {} (mode {mode:04o}); run chmod 600 {path}",
                                describe_access(*mode)
                            )?;
                            if !allow_insecure {
                                problems.push(format!(
                                    "{at}: listener {kind}: refusing key file {path}: it is {} (mode {mode:04o}); \
                                     run chmod 600 {path}, or pass --allow-insecure-key to use it anyway",
                                    describe_access(*mode)
                                ));
                            }
                        }
                        KeyFileWarning::TooLong { .. } => {
                            writeln!(err, "warning: key file {path} {warning}")?
                        }
                    }
                }
                keys.insert(auth.key_file.path.clone(), loaded);
            }
            Err(e) => problems.push(format!("{at}: listener {kind}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        let n = problems.len();
        Err(Rejected {
            lines: problems,
            summary: format!(
                "{}: key file check failed ({n} problem{})",
                config.source.display(),
                plural(n)
            ),
        }
        .into())
    }
}

fn print_settings(
    out: &mut dyn Write,
    options: &Options,
    config: &Config,
    keys: &BTreeMap<PathBuf, LoadedKey>,
) -> io::Result<()> {
    let daemon = &config.daemon;
    writeln!(out, "configuration: {}", config.source.display())?;
    writeln!(out, "daemon:")?;
    match options.debug {
        Some(level) => writeln!(out, "  debug: {level} (from -d)")?,
        None => writeln!(out, "  debug: {}", daemon.debug)?,
    }
    writeln!(
        out,
        "  foreground: {}",
        yes_no(daemon.foreground || options.foreground)
    )?;
    writeln!(
        out,
        "  wait_for_init: {}",
        yes_no(daemon.wait_for_init || options.wait_for_init)
    )?;
    if let Some(path) = &daemon.module_path {
        writeln!(out, "  module_path: {path} (ignored)")?;
    }
    for listener in &config.listeners {
        print_listener(out, listener, keys)?;
    }
    print_backend(out, &config.backend)?;
    if config.groups.is_empty() {
        writeln!(
            out,
            "groups: none (no restriction: every client that passes authentication may fence every VM)"
        )?;
    }
    for group in &config.groups {
        writeln!(out, "group {}:", group.label)?;
        writeln!(out, "  uuid: {}", list_or_none(&group.uuids))?;
        writeln!(out, "  ip: {}", list_or_none(&group.ips))?;
    }
    match config.warnings.len() {
        0 => writeln!(out, "configuration OK"),
        n => writeln!(
            out,
            "configuration OK ({n} warning{} or note{} on standard error)",
            plural(n),
            plural(n)
        ),
    }
}

fn print_listener(
    out: &mut dyn Write,
    listener: &ListenerSettings,
    keys: &BTreeMap<PathBuf, LoadedKey>,
) -> io::Result<()> {
    writeln!(out, "listener {}:", listener.kind())?;
    match listener {
        ListenerSettings::Multicast(m) => {
            writeln!(out, "  family: {}", m.family)?;
            writeln!(out, "  address: {}", m.address)?;
            writeln!(out, "  port: {}", m.port)?;
            writeln!(
                out,
                "  interface: {}",
                m.interface.as_deref().unwrap_or("(chosen by the kernel)")
            )?;
        }
        ListenerSettings::Tcp(t) => {
            writeln!(out, "  family: {}", t.family)?;
            writeln!(out, "  address: {}", t.address)?;
            writeln!(out, "  port: {}", t.port)?;
        }
        ListenerSettings::Vsock(v) => writeln!(out, "  port: {}", v.port)?,
        ListenerSettings::Serial(s) => {
            writeln!(out, "  mode: {}", s.mode)?;
            writeln!(
                out,
                "  path: {}",
                s.path.as_deref().map_or("(any)".into(), Path::to_string_lossy)
            )?;
            writeln!(
                out,
                "  uri: {}",
                s.uri.as_deref().unwrap_or("(the backend's URIs)")
            )?;
            writeln!(
                out,
                "  authentication: none (the requester is the domain owning the socket)"
            )?;
            writeln!(
                out,
                "  unrestricted: {}",
                if s.unrestricted {
                    "yes (without groups every guest may fence every VM)"
                } else {
                    "no (without groups every request is refused)"
                }
            )?;
        }
    }
    if let Some(auth) = listener.auth() {
        writeln!(out, "  hash: {} (weakest request signature accepted)", auth.hash)?;
        writeln!(out, "  auth: {} (challenge-response)", auth.auth)?;
        let path = &auth.key_file.path;
        match keys.get(path) {
            Some(key) => writeln!(
                out,
                "  key file: {} ({} key bytes, file mode {:04o}, owner uid {})",
                path.display(),
                key.key.len(),
                key.mode,
                key.owner_uid
            )?,
            None => writeln!(
                out,
                "  key file: {} (not used: hash and auth are none)",
                path.display()
            )?,
        }
    }
    Ok(())
}

fn print_backend(out: &mut dyn Write, backend: &BackendSettings) -> io::Result<()> {
    writeln!(out, "backend {}:", backend.kind())?;
    if backend.uris().is_empty() {
        if matches!(backend, BackendSettings::Libvirt(_)) {
            writeln!(out, "  uri: qemu:///system (default)")?;
        } else {
            writeln!(out, "  uri: (libvirt default)")?;
        }
    }
    for uri in backend.uris() {
        writeln!(out, "  uri: {uri}")?;
    }
    if let BackendSettings::Cpg(cpg) = backend {
        writeln!(out, "  name_mode: {}", cpg.name_mode)?;
    }
    Ok(())
}

fn yes_no(flag: bool) -> &'static str {
    if flag {
        "yes"
    } else {
        "no"
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse(args: &[&str]) -> Result<Options, UsageError> {
        parse_args(args.iter().copied())
    }

    #[test]
    fn classic_short_options_cluster_like_getopt() {
        let o = parse(&["-Fw", "-d4", "-f", "/x.conf", "-p/run/p.pid"]).unwrap();
        assert!(o.foreground && o.wait_for_init);
        assert_eq!(o.debug, Some(4));
        assert_eq!(o.config, Path::new("/x.conf"));
        assert_eq!(o.pid_file.as_deref(), Some(Path::new("/run/p.pid")));
        assert_eq!(parse(&["-ffile.conf"]).unwrap().config, Path::new("file.conf"));
        assert_eq!(parse(&["-d", "0"]).unwrap().debug, None);
        assert!(parse(&["-?"]).unwrap().help);
    }

    #[test]
    fn long_options() {
        let o = parse(&["--check", "--config=/a", "--allow-insecure-key", "--debug", "2"]).unwrap();
        assert!(o.check && o.allow_insecure_key);
        assert_eq!((o.config.as_path(), o.debug), (Path::new("/a"), Some(2)));
        assert_eq!(parse(&[]).unwrap(), Options::default());
    }

    #[test]
    fn usage_errors() {
        assert_eq!(
            parse(&["-x"]).unwrap_err(),
            UsageError::UnknownOption("-x".into())
        );
        assert_eq!(
            parse(&["--nope"]).unwrap_err(),
            UsageError::UnknownOption("--nope".into())
        );
        assert_eq!(parse(&["-f"]).unwrap_err(), UsageError::MissingValue("-f".into()));
        assert_eq!(
            parse(&["--config"]).unwrap_err(),
            UsageError::MissingValue("--config".into())
        );
        assert_eq!(
            parse(&["--check=yes"]).unwrap_err(),
            UsageError::UnexpectedValue("check".into())
        );
        assert_eq!(
            parse(&["-d", "lots"]).unwrap_err(),
            UsageError::BadDebugLevel("lots".into())
        );
        assert_eq!(
            parse(&["file"]).unwrap_err(),
            UsageError::UnexpectedArgument("file".into())
        );
        assert_eq!(
            parse(&["-"]).unwrap_err(),
            UsageError::UnexpectedArgument("-".into())
        );
    }

    #[test]
    fn help_lists_every_option_of_the_table() {
        let text = usage();
        for spec in OPTIONS {
            assert!(text.contains(&format!("--{}", spec.long)), "{}", spec.long);
            if let Some(c) = spec.short {
                assert!(text.contains(&format!("-{c}, ")), "{c}");
            }
        }
    }

    #[test]
    fn exit_statuses() {
        let mut out = Vec::new();
        let mut err = Vec::new();
        assert_eq!(run_with(["fence_virtd", "-h"], &mut out, &mut err), 0);
        assert!(String::from_utf8(out).unwrap().starts_with("Usage: fence_virtd"));
        let mut out = Vec::new();
        assert_eq!(run_with(["fence_virtd", "--bogus"], &mut out, &mut err), 2);
        let missing = ["fence_virtd", "-F", "-f", "/nonexistent/vmfence/fence_virt.conf"];
        assert_eq!(run_with(missing, &mut out, &mut err), 1);
        let configure = ["fence_virtd", "-c", "-f", "/nonexistent/vmfence/fence_virt.conf"];
        assert_eq!(run_with(configure, &mut out, &mut err), 1);
        let err = String::from_utf8(err).unwrap();
        assert!(
            err.contains("fence_virtd: unknown option `--bogus`\nTry 'fence_virtd -h' for help."),
            "{err}"
        );
        assert!(err.contains("/nonexistent/vmfence/fence_virt.conf"), "{err}");
        assert!(
            err.contains(
                "fence_virtd: cannot configure /nonexistent/vmfence/fence_virt.conf: the directory \
                 /nonexistent/vmfence does not exist"
            ),
            "{err}"
        );
    }
}
