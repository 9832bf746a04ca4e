//! The option table of `fence_xenapi`.
//!
//! Every parameter of the classic agent's metadata is here under the same
//! name, letter and alias (`login`/`username`/`-l`, `passwd`/`password`/
//! `-p`, `passwd_script`/`password_script`/`-S`, `port`/`plug`/`-n`,
//! `session_url`/`-s`, the fencing.py timing and logging options), so
//! existing Pacemaker configurations keep working; new ones are `uuid`,
//! the TLS options and `method`. A few fencing.py options have nothing to
//! do here and are accepted and ignored with a debug line
//! ([`Field::Ignored`]).

use vmfence_agentkit::docs::Docs;
use vmfence_agentkit::{Arg, ArgError, Content, OptSpec, Program};

use crate::agent::settings::Settings;

/// The program `fence_xenapi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xenapi;

/// The program name.
pub const NAME: &str = "fence_xenapi";

/// What an option sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The action.
    Action,
    /// The XenAPI user.
    Login,
    /// The password.
    Password,
    /// A command whose output is the password.
    PasswordScript,
    /// The VM (`plug`, `port`): a name label or a UUID.
    Target,
    /// The VM by UUID; wins over `plug`.
    Uuid,
    /// The pool addresses.
    SessionUrl,
    /// Do not verify certificates.
    SslInsecure,
    /// Verify certificates (the default; `ssl`, `ssl_secure`).
    SslSecure,
    /// CA file.
    CaCert,
    /// Reboot method.
    Method,
    /// `list` field separator.
    Separator,
    /// `-v`: one more debug level.
    Verbose,
    /// The debug level.
    VerboseLevel,
    /// Debug log file.
    DebugFile,
    /// `-V`.
    Version,
    /// `-h`.
    Help,
    /// Seconds to wait before off and reboot.
    Delay,
    /// Connect and log-in limit.
    LoginTimeout,
    /// Power call and confirmation limit.
    PowerTimeout,
    /// Pause after a power call.
    PowerWait,
    /// Limit of every other call.
    ShellTimeout,
    /// Pause between power state polls.
    StatusSleep,
    /// Power-on attempts after the first.
    RetryOn,
    /// Accepted for compatibility, without effect.
    Ignored,
}

impl Program for Xenapi {
    type Field = Field;
    type Settings = Settings;

    fn name(self) -> &'static str {
        NAME
    }

    fn table() -> &'static [OptSpec<Xenapi>] {
        OPTIONS
    }

    fn ignored_keys(self) -> &'static [&'static str] {
        IGNORED_KEYS
    }

    fn defaults(self) -> Settings {
        Settings::default()
    }

    fn apply(
        s: &mut Settings,
        opt: &OptSpec<Xenapi>,
        value: Option<&str>,
        from_stdin: bool,
    ) -> Result<(), ArgError> {
        s.apply(opt, value, from_stdin)
    }

    fn docs(self) -> Docs {
        crate::agent::docs::docs()
    }
}

/// Standard-input keys accepted and ignored without a note: Pacemaker
/// always passes `nodename`.
pub const IGNORED_KEYS: &[&str] = &["nodename"];

const BASE: OptSpec<Xenapi> = OptSpec {
    name: "",
    short: None,
    aliases: &[],
    field: Field::Ignored,
    arg: Arg::Required,
    placeholder: "",
    content: Content::String,
    default: None,
    description: "",
    only: &[],
    stdin: true,
    argv: true,
    required: false,
    deprecated: false,
    obsoletes: None,
};

/// Every option, in metadata order.
pub const OPTIONS: &[OptSpec<Xenapi>] = &[
    OptSpec {
        name: "action",
        short: Some('o'),
        field: Field::Action,
        placeholder: "action",
        default: Some("reboot"),
        description: "Fencing action: on, off, reboot, status, list, list-status, monitor, metadata, \
                      manpage or validate-all",
        ..BASE
    },
    OptSpec {
        name: "login",
        field: Field::Login,
        placeholder: "name",
        description: "Login name (old name of username)",
        argv: false,
        deprecated: true,
        ..BASE
    },
    OptSpec {
        name: "passwd",
        field: Field::Password,
        placeholder: "password",
        description: "Login password or passphrase (old name of password)",
        argv: false,
        deprecated: true,
        ..BASE
    },
    OptSpec {
        name: "passwd_script",
        field: Field::PasswordScript,
        placeholder: "script",
        description: "Script to run to retrieve the password (old name of password_script)",
        argv: false,
        deprecated: true,
        ..BASE
    },
    OptSpec {
        name: "password",
        short: Some('p'),
        field: Field::Password,
        placeholder: "password",
        description: "Login password or passphrase",
        obsoletes: Some("passwd"),
        ..BASE
    },
    OptSpec {
        name: "password_script",
        short: Some('S'),
        field: Field::PasswordScript,
        placeholder: "script",
        description: "Script to run to retrieve the password (run with sh -c; its output, without \
                      trailing white space, is the password; it wins over password)",
        obsoletes: Some("passwd_script"),
        ..BASE
    },
    OptSpec {
        name: "plug",
        short: Some('n'),
        field: Field::Target,
        placeholder: "id",
        description: "Name label or UUID of the VM to act on",
        required: true,
        obsoletes: Some("port"),
        ..BASE
    },
    OptSpec {
        name: "port",
        field: Field::Target,
        placeholder: "id",
        description: "Name label or UUID of the VM to act on (old name of plug)",
        argv: false,
        required: true,
        deprecated: true,
        ..BASE
    },
    OptSpec {
        name: "uuid",
        short: Some('U'),
        field: Field::Uuid,
        placeholder: "uuid",
        description: "UUID of the VM to act on; when given, plug is not used",
        ..BASE
    },
    OptSpec {
        name: "session_url",
        short: Some('s'),
        field: Field::SessionUrl,
        placeholder: "url",
        description: "URL of the pool's XenAPI, e.g. https://pool-master.example; several pool \
                      members separated by commas or spaces are tried in order, and a member \
                      that is not the master is followed to the master",
        required: true,
        ..BASE
    },
    OptSpec {
        name: "username",
        short: Some('l'),
        field: Field::Login,
        placeholder: "name",
        description: "Login name",
        obsoletes: Some("login"),
        ..BASE
    },
    OptSpec {
        name: "ssl",
        short: Some('z'),
        field: Field::SslSecure,
        arg: Arg::Flag,
        content: Content::Boolean,
        description: "Verify the TLS certificate of https URLs (the default)",
        ..BASE
    },
    OptSpec {
        name: "ssl_secure",
        field: Field::SslSecure,
        arg: Arg::Flag,
        content: Content::Boolean,
        description: "Verify the TLS certificate of https URLs (the default)",
        ..BASE
    },
    OptSpec {
        name: "ssl_insecure",
        field: Field::SslInsecure,
        arg: Arg::Flag,
        content: Content::Boolean,
        description: "Do not verify the TLS certificate (unsafe: whoever is in the path sees the \
                      password and can fake the answers)",
        ..BASE
    },
    OptSpec {
        name: "cacert",
        field: Field::CaCert,
        placeholder: "file",
        description: "PEM file with the CA certificate(s) the pool's certificates are checked \
                      against, instead of the system's trust store (for self-signed host \
                      certificates: the hosts' certificates themselves)",
        ..BASE
    },
    OptSpec {
        name: "method",
        short: Some('m'),
        field: Field::Method,
        placeholder: "method",
        default: Some("cycle"),
        description: "How reboot is done: cycle (VM.hard_reboot; a halted VM is started) or \
                      onoff (hard shutdown, then start)",
        ..BASE
    },
    OptSpec {
        name: "quiet",
        short: Some('q'),
        field: Field::Ignored,
        arg: Arg::Flag,
        content: Content::Boolean,
        description: "Accepted for compatibility; errors are always reported on standard error",
        ..BASE
    },
    OptSpec {
        name: "verbose",
        short: Some('v'),
        field: Field::Verbose,
        arg: Arg::Flag,
        content: Content::Boolean,
        description: "Verbose mode: each -v raises the debug level (2 shows every XenAPI call)",
        ..BASE
    },
    OptSpec {
        name: "verbose_level",
        field: Field::VerboseLevel,
        placeholder: "level",
        content: Content::Integer,
        description: "Debug level (default: the number of -v, or 1 for verbose=1 on standard input)",
        ..BASE
    },
    OptSpec {
        name: "debug",
        field: Field::DebugFile,
        placeholder: "file",
        description: "Write debug information to this file (old name of debug_file)",
        argv: false,
        deprecated: true,
        ..BASE
    },
    OptSpec {
        name: "debug_file",
        short: Some('D'),
        field: Field::DebugFile,
        placeholder: "file",
        description: "Write debug information to this file (appended)",
        obsoletes: Some("debug"),
        ..BASE
    },
    OptSpec {
        name: "version",
        short: Some('V'),
        field: Field::Version,
        arg: Arg::Flag,
        description: "Print the version and exit",
        stdin: false,
        ..BASE
    },
    OptSpec {
        name: "help",
        short: Some('h'),
        field: Field::Help,
        arg: Arg::Flag,
        description: "Print this help and exit (-? too)",
        stdin: false,
        ..BASE
    },
    OptSpec {
        name: "plug_separator",
        field: Field::Ignored,
        placeholder: "char",
        default: Some(","),
        description: "Accepted for compatibility; plug always names one VM",
        ..BASE
    },
    OptSpec {
        name: "separator",
        short: Some('C'),
        field: Field::Separator,
        placeholder: "char",
        default: Some(","),
        description: "Separator of the fields that list prints",
        ..BASE
    },
    OptSpec {
        name: "delay",
        field: Field::Delay,
        placeholder: "seconds",
        content: Content::Second,
        default: Some("0"),
        description: "Wait this many seconds before off and reboot",
        ..BASE
    },
    OptSpec {
        name: "disable_timeout",
        field: Field::Ignored,
        placeholder: "true/false",
        description: "Accepted for compatibility; the time limits below always apply, so that \
                      the agent fails in time for Pacemaker to retry",
        ..BASE
    },
    OptSpec {
        name: "login_timeout",
        field: Field::LoginTimeout,
        placeholder: "seconds",
        content: Content::Second,
        default: Some("5"),
        description: "Limit for connecting and logging in to one pool address",
        ..BASE
    },
    OptSpec {
        name: "power_timeout",
        field: Field::PowerTimeout,
        placeholder: "seconds",
        content: Content::Second,
        default: Some("20"),
        description: "Limit for a power call, and then for XenAPI to show the new power state",
        ..BASE
    },
    OptSpec {
        name: "power_wait",
        field: Field::PowerWait,
        placeholder: "seconds",
        content: Content::Second,
        default: Some("0"),
        description: "Wait this many seconds after a power call before checking the state",
        ..BASE
    },
    OptSpec {
        name: "shell_timeout",
        field: Field::ShellTimeout,
        placeholder: "seconds",
        content: Content::Second,
        default: Some("5"),
        description: "Limit for each other XenAPI call (look-ups, state polls, list, logout)",
        ..BASE
    },
    OptSpec {
        name: "stonith_status_sleep",
        field: Field::StatusSleep,
        placeholder: "seconds",
        content: Content::Second,
        default: Some("1"),
        description: "Pause between power state polls",
        ..BASE
    },
    OptSpec {
        name: "retry_on",
        field: Field::RetryOn,
        placeholder: "attempts",
        content: Content::Integer,
        default: Some("1"),
        description: "Extra attempts to power on (on: 1 + this many; the on part of an onoff \
                      reboot: this many, at least one)",
        ..BASE
    },
];

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use vmfence_agentkit::table::check_table;

    use super::*;

    #[test]
    fn table_is_consistent() {
        check_table(Xenapi).unwrap();
        // The classic agent's letters (fencing.py) keep their meaning.
        for (c, name) in [
            ('o', "action"),
            ('l', "username"),
            ('p', "password"),
            ('S', "password_script"),
            ('n', "plug"),
            ('s', "session_url"),
            ('q', "quiet"),
            ('v', "verbose"),
            ('D', "debug_file"),
            ('V', "version"),
            ('h', "help"),
            ('C', "separator"),
        ] {
            assert_eq!(Xenapi.by_short(c).map(|o| o.name), Some(name), "-{c}");
        }
        for (key, name) in [
            ("login", "login"),
            ("Username", "username"),
            ("passwd", "passwd"),
            ("password-script", "password_script"),
            ("port", "port"),
            ("session-url", "session_url"),
            ("ssl_insecure", "ssl_insecure"),
        ] {
            assert_eq!(Xenapi.by_key(key).map(|o| o.name), Some(name), "{key}");
        }
        assert!(Xenapi.by_key("help").is_none());
        assert!(Xenapi.by_long("port").is_none());
    }
}
