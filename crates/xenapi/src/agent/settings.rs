//! The typed settings of `fence_xenapi`: one option value applied at a
//! time ([`Settings::apply`]), then the cross-option checks
//! ([`Settings::check`]) that turn them into what a run needs. Nothing
//! here reads the environment or the network.

use std::path::PathBuf;
use std::time::Duration;

use vmfence_agentkit::value::{non_empty, parse_bool, parse_number};
use vmfence_agentkit::{ArgError, OptSpec};

use crate::agent::table::{Field, Xenapi};
use crate::power::RebootMethod;
use crate::transport::{Endpoint, Verify};
use crate::vm::looks_like_uuid;

/// What the agent is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Power on.
    On,
    /// Power off.
    Off,
    /// Reboot (the default).
    Reboot,
    /// Exit 0 when on, 2 when off.
    Status,
    /// Print `uuid,name` of every fenceable VM.
    List,
    /// Print `uuid,name,ON|OFF`.
    ListStatus,
    /// Log in (and find the VM, when one is named).
    Monitor,
    /// Print the metadata.
    Metadata,
    /// Print the man page.
    Manpage,
    /// Check the options.
    ValidateAll,
}

impl Action {
    /// Every action, in metadata order.
    pub const ALL: [Action; 10] = [
        Action::On,
        Action::Off,
        Action::Reboot,
        Action::Status,
        Action::List,
        Action::ListStatus,
        Action::Monitor,
        Action::Metadata,
        Action::Manpage,
        Action::ValidateAll,
    ];

    /// The action word.
    pub fn name(self) -> &'static str {
        match self {
            Action::On => "on",
            Action::Off => "off",
            Action::Reboot => "reboot",
            Action::Status => "status",
            Action::List => "list",
            Action::ListStatus => "list-status",
            Action::Monitor => "monitor",
            Action::Metadata => "metadata",
            Action::Manpage => "manpage",
            Action::ValidateAll => "validate-all",
        }
    }

    /// Parse an action word (any case; `meta-data` is `metadata`).
    pub fn parse(word: &str) -> Option<Action> {
        if word.eq_ignore_ascii_case("meta-data") {
            return Some(Action::Metadata);
        }
        Action::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(word))
    }

    /// Whether the action acts on one VM.
    pub fn needs_target(self) -> bool {
        matches!(self, Action::On | Action::Off | Action::Reboot | Action::Status)
    }

    /// Whether the action talks to the pool (or, for validate-all, needs
    /// what talking to it takes).
    pub fn needs_pool(self) -> bool {
        !matches!(self, Action::Metadata | Action::Manpage)
    }
}

/// Everything a run is configured with, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The action.
    pub action: Action,
    /// `username` / `login`.
    pub login: Option<String>,
    /// `password` / `passwd`.
    pub password: Option<String>,
    /// `password_script` / `passwd_script`.
    pub password_script: Option<String>,
    /// `plug` / `port`.
    pub plug: Option<String>,
    /// `uuid`.
    pub uuid: Option<String>,
    /// `session_url`, as given.
    pub session_url: Option<String>,
    /// `ssl_insecure`.
    pub ssl_insecure: bool,
    /// `ssl` / `ssl_secure` given and true.
    pub ssl_secure: bool,
    /// `cacert`.
    pub cacert: Option<PathBuf>,
    /// `method`.
    pub method: RebootMethod,
    /// `separator`.
    pub separator: String,
    /// Debug level.
    pub verbose: u32,
    /// `debug_file`.
    pub debug_file: Option<PathBuf>,
    /// `delay`.
    pub delay: Duration,
    /// `login_timeout`.
    pub login_timeout: Duration,
    /// `power_timeout`.
    pub power_timeout: Duration,
    /// `power_wait`.
    pub power_wait: Duration,
    /// `shell_timeout`.
    pub shell_timeout: Duration,
    /// `stonith_status_sleep`.
    pub status_sleep: Duration,
    /// `retry_on`.
    pub retry_on: u32,
    /// `-h`.
    pub help: bool,
    /// `-V`.
    pub version: bool,
    /// Options given that have no effect here (for the debug log).
    pub ignored: Vec<&'static str>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            action: Action::Reboot,
            login: None,
            password: None,
            password_script: None,
            plug: None,
            uuid: None,
            session_url: None,
            ssl_insecure: false,
            ssl_secure: false,
            cacert: None,
            method: RebootMethod::Cycle,
            separator: ",".to_owned(),
            verbose: 0,
            debug_file: None,
            delay: Duration::ZERO,
            login_timeout: Duration::from_secs(5),
            power_timeout: Duration::from_secs(20),
            power_wait: Duration::ZERO,
            shell_timeout: Duration::from_secs(5),
            status_sleep: Duration::from_secs(1),
            retry_on: 1,
            help: false,
            version: false,
            ignored: Vec::new(),
        }
    }
}

/// What a run needs, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The pool addresses, in order.
    pub pool: Vec<Endpoint>,
    /// How certificates are checked.
    pub verify: Verify,
    /// The VM: `uuid` if given, else `plug`.
    pub target: Option<String>,
}

/// Longest time option accepted: a day.
const MAX_SECONDS: f64 = 86_400.0;

impl Settings {
    /// Apply one option occurrence (see [`vmfence_agentkit::Program::apply`]).
    pub fn apply(
        &mut self,
        opt: &OptSpec<Xenapi>,
        value: Option<&str>,
        from_stdin: bool,
    ) -> Result<(), ArgError> {
        let bad = |v: &str, reason: &str| ArgError::InvalidValue {
            option: opt.display_name(),
            value: v.to_owned(),
            reason: reason.to_owned(),
        };
        let need = || value.ok_or_else(|| ArgError::MissingValue(opt.display_name()));
        // A flag: bare, or on standard input a boolean (0/no/off/false unset it).
        let flag = || -> Result<bool, ArgError> {
            match value {
                None => Ok(true),
                Some(v) => parse_bool(v).ok_or_else(|| bad(v, "expected 1/yes/on/true or 0/no/off/false")),
            }
        };
        let seconds = |min_exclusive: bool| -> Result<Duration, ArgError> {
            let v = need()?;
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s <= MAX_SECONDS)
                .filter(|s| !min_exclusive || *s > 0.0)
                .ok_or_else(|| {
                    bad(
                        v,
                        if min_exclusive {
                            "expected seconds, more than 0"
                        } else {
                            "expected seconds, 0 or more"
                        },
                    )
                })?;
            Ok(Duration::from_secs_f64(secs))
        };
        match opt.field {
            Field::Action => {
                let v = need()?;
                self.action = Action::parse(v).ok_or_else(|| {
                    bad(
                        v,
                        "expected on, off, reboot, status, list, list-status, monitor, metadata, \
                         manpage or validate-all",
                    )
                })?;
            }
            Field::Login => self.login = Some(non_empty(need()?, bad)?.to_owned()),
            // An empty password is a password.
            Field::Password => self.password = Some(need()?.to_owned()),
            Field::PasswordScript => self.password_script = Some(non_empty(need()?, bad)?.to_owned()),
            Field::Target => self.plug = Some(non_empty(need()?, bad)?.to_owned()),
            Field::Uuid => {
                let v = need()?;
                if !looks_like_uuid(v) {
                    return Err(bad(v, "expected a UUID (8-4-4-4-12 hexadecimal digits)"));
                }
                self.uuid = Some(v.to_ascii_lowercase());
            }
            Field::SessionUrl => self.session_url = Some(non_empty(need()?, bad)?.to_owned()),
            Field::SslInsecure => self.ssl_insecure = flag()?,
            Field::SslSecure => self.ssl_secure = flag()?,
            Field::CaCert => self.cacert = Some(PathBuf::from(non_empty(need()?, bad)?)),
            Field::Method => {
                let v = need()?;
                self.method = match v.to_ascii_lowercase().as_str() {
                    "cycle" => RebootMethod::Cycle,
                    "onoff" => RebootMethod::OnOff,
                    _ => return Err(bad(v, "expected cycle or onoff")),
                };
            }
            Field::Separator => self.separator = non_empty(need()?, bad)?.to_owned(),
            Field::Verbose => match value {
                None => self.verbose = self.verbose.saturating_add(1),
                Some(v) if from_stdin => {
                    self.verbose = match parse_bool(v) {
                        Some(b) => u32::from(b),
                        None => parse_number(v)
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| bad(v, "expected a number or a boolean"))?,
                    }
                }
                Some(_) => return Err(ArgError::UnexpectedValue(opt.display_name())),
            },
            Field::VerboseLevel => {
                let v = need()?;
                self.verbose = parse_number(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| n <= 9)
                    .ok_or_else(|| bad(v, "expected a level from 0 to 9"))?;
            }
            Field::DebugFile => self.debug_file = Some(PathBuf::from(non_empty(need()?, bad)?)),
            Field::Version => self.version = true,
            Field::Help => self.help = true,
            Field::Delay => self.delay = seconds(false)?,
            Field::LoginTimeout => self.login_timeout = seconds(true)?,
            Field::PowerTimeout => self.power_timeout = seconds(true)?,
            Field::PowerWait => self.power_wait = seconds(false)?,
            Field::ShellTimeout => self.shell_timeout = seconds(true)?,
            Field::StatusSleep => self.status_sleep = seconds(false)?,
            Field::RetryOn => {
                let v = need()?;
                self.retry_on = parse_number(v)
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|&n| n <= 100)
                    .ok_or_else(|| bad(v, "expected a count from 0 to 100"))?;
            }
            Field::Ignored => {
                if !self.ignored.contains(&opt.name) {
                    self.ignored.push(opt.name);
                }
            }
        }
        Ok(())
    }

    /// The cross-option checks: a VM for the actions on one VM, a
    /// `session_url` that parses and a login for the actions that talk to
    /// the pool, TLS options that agree.
    pub fn check(&self) -> Result<Checked, ArgError> {
        let action = self.action.name();
        let target = self.uuid.clone().or_else(|| self.plug.clone());
        if self.action.needs_target() && target.is_none() {
            return Err(ArgError::NoTarget(action));
        }
        if self.ssl_insecure && self.cacert.is_some() {
            return Err(ArgError::Conflict("--ssl-insecure".into(), "--cacert".into()));
        }
        if self.ssl_insecure && self.ssl_secure {
            return Err(ArgError::Conflict(
                "--ssl-insecure".into(),
                "--ssl-secure/-z".into(),
            ));
        }
        let verify = match (&self.cacert, self.ssl_insecure) {
            (_, true) => Verify::Insecure,
            (Some(ca), false) => Verify::CaFile(ca.clone()),
            (None, false) => Verify::System,
        };
        let mut pool = Vec::new();
        if self.action.needs_pool() {
            let urls = self.session_url.as_deref().ok_or_else(|| ArgError::Required {
                option: "-s/session_url".into(),
                action,
            })?;
            for url in urls.split([',', ' ', '\t']).filter(|u| !u.trim().is_empty()) {
                let e = Endpoint::parse(url).map_err(|e| ArgError::InvalidValue {
                    option: "-s/session_url".into(),
                    value: url.to_owned(),
                    reason: e.to_string(),
                })?;
                if !pool.contains(&e) {
                    pool.push(e);
                }
            }
            if pool.is_empty() {
                return Err(ArgError::Required {
                    option: "-s/session_url".into(),
                    action,
                });
            }
            if self.login.is_none() {
                return Err(ArgError::Required {
                    option: "-l/username".into(),
                    action,
                });
            }
        }
        Ok(Checked { pool, verify, target })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use vmfence_agentkit::parse::{parse_argv, parse_stdin};

    use super::*;
    use crate::transport::Scheme;

    fn argv(a: &[&str]) -> Result<Settings, ArgError> {
        parse_argv(Xenapi, a.iter().copied())
    }

    fn stdin(text: &str) -> (Settings, Vec<String>) {
        parse_stdin(Xenapi, text.as_bytes()).unwrap()
    }

    #[test]
    fn classic_command_line() {
        let s = argv(&[
            "-s",
            "https://xen1",
            "-l",
            "root",
            "-p",
            "secret",
            "-n",
            "vm 1",
            "-o",
            "off",
            "-vv",
            "--power-timeout=2.5",
            "--ssl-insecure",
        ])
        .unwrap();
        assert_eq!(s.action, Action::Off);
        assert_eq!(s.login.as_deref(), Some("root"));
        assert_eq!(s.password.as_deref(), Some("secret"));
        assert_eq!(s.plug.as_deref(), Some("vm 1"));
        assert_eq!(s.verbose, 2);
        assert_eq!(s.power_timeout, Duration::from_millis(2500));
        let c = s.check().unwrap();
        assert_eq!(c.verify, Verify::Insecure);
        assert_eq!(c.pool[0].scheme, Scheme::Https);
        assert_eq!(c.target.as_deref(), Some("vm 1"));
    }

    #[test]
    fn pacemaker_stdin_with_old_names_and_ignored_options() {
        let (s, notes) = stdin(
            "action=reboot\nnodename=node1\nport=vm-node1\nlogin=root\npasswd=pw\n\
             session_url=https://a, https://b:8443\npcmk_host_map=node1:vm-node1\n\
             disable_timeout=true\nplug_separator=,\nquiet=1\nverbose=1\nssl_insecure=0\n\
             power_wait=0.1\nretry_on=2\n",
        );
        assert_eq!(notes, ["line 7: ignoring unknown parameter 'pcmk_host_map'"]);
        assert_eq!(s.ignored, ["disable_timeout", "plug_separator", "quiet"]);
        assert_eq!(s.verbose, 1);
        assert!(!s.ssl_insecure, "ssl_insecure=0 means verify");
        assert_eq!(s.retry_on, 2);
        let c = s.check().unwrap();
        assert_eq!(c.verify, Verify::System);
        let urls: Vec<String> = c.pool.iter().map(Endpoint::url).collect();
        assert_eq!(urls, ["https://a/", "https://b:8443/"]);
        assert_eq!(c.target.as_deref(), Some("vm-node1"));
        // The new names win when they come later, and the other way round.
        let (s, _) = stdin("username=a\nlogin=b\npassword=x\npasswd=y\nplug=p\nport=q\n");
        assert_eq!(
            (s.login.as_deref(), s.password.as_deref(), s.plug.as_deref()),
            (Some("b"), Some("y"), Some("q"))
        );
    }

    #[test]
    fn uuid_wins_over_plug() {
        let s = argv(&[
            "-s",
            "x",
            "-l",
            "r",
            "-o",
            "status",
            "-n",
            "vm",
            "-U",
            "6695EB01-f6a4-8304-79aa-97f2502e193f",
        ])
        .unwrap();
        assert_eq!(
            s.check().unwrap().target.as_deref(),
            Some("6695eb01-f6a4-8304-79aa-97f2502e193f")
        );
        assert!(matches!(argv(&["-U", "vm"]), Err(ArgError::InvalidValue { .. })));
    }

    #[test]
    fn checks() {
        let err = |a: &[&str]| argv(a).unwrap().check().unwrap_err().to_string();
        assert!(err(&["-o", "off", "-s", "x", "-l", "r"]).contains("no virtual machine"));
        assert!(err(&["-o", "list", "-l", "r"]).contains("-s/session_url is required"));
        assert!(err(&["-o", "list", "-s", "x"]).contains("-l/username is required"));
        assert!(err(&["-o", "list", "-s", "ftp://x", "-l", "r"]).contains("only http:// and https://"));
        assert!(err(&["-o", "list", "-s", " , ", "-l", "r"]).contains("required"));
        assert!(err(&[
            "-o",
            "list",
            "-s",
            "x",
            "-l",
            "r",
            "--ssl-insecure",
            "--cacert=/ca"
        ])
        .contains("exclude"));
        assert!(err(&["-o", "list", "-s", "x", "-l", "r", "--ssl-insecure", "-z"]).contains("exclude"));
        assert!(argv(&["-o", "metadata"]).unwrap().check().is_ok());
        let c = argv(&["-o", "list", "-s", "http://x,http://x", "-l", "r", "--cacert=/ca"])
            .unwrap()
            .check()
            .unwrap();
        assert_eq!(c.pool.len(), 1, "duplicates dropped");
        assert_eq!(c.verify, Verify::CaFile("/ca".into()));
        for bad in [
            &["--power-timeout=0"][..],
            &["--power-timeout=-1"],
            &["--login-timeout=x"],
            &["--delay=1e9"],
            &["--delay=NaN"],
            &["-m", "kick"],
            &["-o", "fence"],
            &["--retry-on=-1"],
            &["--verbose-level=10"],
            &["-n", ""],
        ] {
            assert!(argv(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Action::parse("META-DATA"), Some(Action::Metadata));
    }
}
