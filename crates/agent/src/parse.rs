//! Command-line and standard-input parsing, both driven by the option table.
//!
//! The classic rule is kept: when the program has any command-line argument
//! it reads no standard input; with none, it reads `key=value` lines from
//! standard input, which is how Pacemaker passes every parameter. The stdin
//! rules follow the fence-agents convention (`doc/FenceAgentAPI.md`): `#`
//! comments and blank lines are skipped, the last value of a key wins (also
//! across `plug`/`port`/`domain`), unknown keys are ignored with a note, and
//! values keep their inner spaces.

use std::ffi::OsString;
use std::io::BufRead;

use crate::settings::{ArgError, Settings};
use crate::table::{by_key, by_long, by_short, Arg, Binary, OptSpec, IGNORED_KEYS};

/// Most bytes read from standard input; Pacemaker sends a few hundred.
pub const MAX_STDIN: u64 = 1 << 20;

/// Parsed options and the notes the parser wants shown at debug level.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The settings.
    pub settings: Settings,
    /// Remarks such as ignored stdin keys, for the debug log.
    pub notes: Vec<String>,
    /// Whether the options came from standard input.
    pub from_stdin: bool,
}

/// Parse the command line when there is one, standard input otherwise.
/// `args` excludes the program name.
pub fn parse<I, S, R>(bin: Binary, args: I, stdin: R) -> Result<Parsed, ArgError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
    R: BufRead,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.is_empty() {
        let (settings, notes) = parse_stdin(bin, stdin)?;
        Ok(Parsed {
            settings,
            notes,
            from_stdin: true,
        })
    } else {
        Ok(Parsed {
            settings: parse_argv(bin, args)?,
            notes: Vec::new(),
            from_stdin: false,
        })
    }
}

/// Parse command-line arguments (without the program name), getopt style:
/// `-d -d`, `-dd`, `-o off`, `-ooff`, `-S`, `-S3`, plus long forms
/// `--action=off`, `--action off`, `--help`.
pub fn parse_argv<I, S>(bin: Binary, args: I) -> Result<Settings, ArgError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut found: Vec<(&'static OptSpec, Option<String>)> = Vec::new();
    // A bare option with an optional value (`-S`), as the user spelled it:
    // a word right after it is refused with a pointed message.
    let mut bare_optional: Option<(String, &'static OptSpec)> = None;
    let mut args = args.into_iter().map(Into::into);
    let next_string = |args: &mut dyn Iterator<Item = OsString>| -> Result<Option<String>, ArgError> {
        args.next()
            .map(|a| {
                a.into_string()
                    .map_err(|a| ArgError::NotUtf8(a.to_string_lossy().into_owned()))
            })
            .transpose()
    };
    while let Some(arg) = next_string(&mut args)? {
        let after_bare_optional = bare_optional.take();
        if arg == "--" {
            if let Some(stray) = next_string(&mut args)? {
                return Err(ArgError::StrayArgument(stray));
            }
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let opt = by_long(bin, name).ok_or_else(|| ArgError::UnknownOption(format!("--{name}")))?;
            let value = match opt.arg {
                Arg::Flag if attached.is_some() => {
                    return Err(ArgError::UnexpectedValue(format!("--{name}")))
                }
                Arg::Flag => attached,
                Arg::Optional => {
                    if attached.is_none() {
                        bare_optional = Some((format!("--{name}"), opt));
                    }
                    attached
                }
                Arg::Required => match attached {
                    Some(v) => Some(v),
                    None => Some(
                        next_string(&mut args)?.ok_or_else(|| ArgError::MissingValue(format!("--{name}")))?,
                    ),
                },
            };
            found.push((opt, value));
        } else if let Some(cluster) = arg.strip_prefix('-').filter(|c| !c.is_empty()) {
            for (i, c) in cluster.char_indices() {
                let opt = by_short(bin, c).ok_or_else(|| ArgError::UnknownOption(format!("-{c}")))?;
                let rest = &cluster[i + c.len_utf8()..];
                match opt.arg {
                    Arg::Flag => found.push((opt, None)),
                    Arg::Optional => {
                        if rest.is_empty() {
                            bare_optional = Some((format!("-{c}"), opt));
                        }
                        found.push((opt, Some(rest.to_owned()).filter(|r| !r.is_empty())));
                        break;
                    }
                    Arg::Required => {
                        let value = if rest.is_empty() {
                            next_string(&mut args)?.ok_or_else(|| ArgError::MissingValue(format!("-{c}")))?
                        } else {
                            rest.to_owned()
                        };
                        found.push((opt, Some(value)));
                        break;
                    }
                }
            }
        } else if let Some((option, opt)) = after_bare_optional {
            return Err(ArgError::DetachedValue {
                option,
                long: format!("--{}", opt.long()),
                value: arg,
            });
        } else {
            return Err(ArgError::StrayArgument(arg));
        }
    }
    let mut settings = Settings::new(bin);
    for (opt, value) in found {
        settings.apply(opt, value.as_deref(), false)?;
    }
    Ok(settings)
}

/// Parse `key=value` lines. Returns the settings and notes about what was
/// ignored. Errors name the offending key; reading stops at [`MAX_STDIN`].
pub fn parse_stdin<R: BufRead>(bin: Binary, stdin: R) -> Result<(Settings, Vec<String>), ArgError> {
    let mut settings = Settings::new(bin);
    let mut notes = Vec::new();
    let mut reader = stdin.take(MAX_STDIN);
    let mut raw = Vec::new();
    let mut lineno = 0usize;
    loop {
        raw.clear();
        let n = reader
            .read_until(b'\n', &mut raw)
            .map_err(|e| ArgError::Stdin(e.to_string()))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(strip_quotes(v.trim()))),
            None => (line, None),
        };
        if IGNORED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            continue;
        }
        match by_key(bin, key) {
            Some(opt) if value.is_none() && opt.arg == Arg::Required => {
                notes.push(format!("line {lineno}: ignoring '{key}' without a value"));
            }
            Some(opt) => settings.apply(opt, value, true)?,
            None => notes.push(format!("line {lineno}: ignoring unknown parameter '{key}'")),
        }
    }
    Ok((settings, notes))
}

/// Remove one pair of surrounding double quotes, as the fence-agents
/// library does.
fn strip_quotes(v: &str) -> &str {
    v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use vmfence_proto::HashType;

    use super::*;
    use crate::settings::{Action, Family};

    fn argv(bin: Binary, a: &[&str]) -> Result<Settings, ArgError> {
        parse_argv(bin, a.iter().copied())
    }

    fn stdin(bin: Binary, text: &str) -> Result<(Settings, Vec<String>), ArgError> {
        parse_stdin(bin, text.as_bytes())
    }

    #[test]
    fn argv_short_options_values_and_clusters() {
        let s = argv(
            Binary::Xvm,
            &[
                "-dd",
                "-ooff",
                "-n",
                "vm1",
                "-t",
                "0x0a",
                "-r5",
                "-c",
                "sha512",
                "-uk/tmp/k",
            ],
        )
        .unwrap();
        assert_eq!(s.debug, 2);
        assert_eq!(s.action, Action::Off);
        assert_eq!(s.target.as_ref().map(|d| d.as_str()), Some("vm1"));
        assert_eq!(s.timeout, Duration::from_secs(10));
        assert_eq!(s.retrans, Duration::from_millis(500));
        assert_eq!(s.hash, HashType::Sha512);
        assert!(s.use_uuid);
        assert_eq!(s.key_file.to_str(), Some("/tmp/k"));
    }

    #[test]
    fn argv_long_options() {
        let s = argv(
            Binary::Xvm,
            &[
                "--action=status",
                "--plug",
                "vm2",
                "--ip-family=ipv6",
                "--debug",
                "--key_file=/k",
            ],
        )
        .unwrap();
        assert_eq!(s.action, Action::Status);
        assert_eq!(s.target.unwrap().as_str(), "vm2");
        assert_eq!(s.family, Family::V6);
        assert_eq!(s.debug, 1);
        assert!(matches!(
            argv(Binary::Xvm, &["--debug=2"]),
            Err(ArgError::UnexpectedValue(_))
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["--plug"]),
            Err(ArgError::MissingValue(_))
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["--domain=x"]),
            Err(ArgError::UnknownOption(_))
        ));
    }

    #[test]
    fn argv_last_target_wins_and_h_is_port() {
        let s = argv(Binary::Xvm, &["-n", "a", "-H", "b"]).unwrap();
        assert_eq!(s.target.unwrap().as_str(), "b");
    }

    #[test]
    fn argv_errors() {
        assert_eq!(
            argv(Binary::Xvm, &["-M"]),
            Err(ArgError::UnknownOption("-M".into()))
        );
        assert_eq!(
            argv(Binary::Xvm, &["-T", "1.2.3.4"]),
            Err(ArgError::UnknownOption("-T".into()))
        );
        assert_eq!(
            argv(Binary::Virt, &["-i", "ipv4"]),
            Err(ArgError::UnknownOption("-i".into()))
        );
        assert!(matches!(
            argv(Binary::Xvm, &["-o"]),
            Err(ArgError::MissingValue(_))
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["stray"]),
            Err(ArgError::StrayArgument(_))
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["-t", "0"]),
            Err(ArgError::InvalidValue { .. })
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["-p", "65536"]),
            Err(ArgError::InvalidValue { .. })
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["-o", "fence"]),
            Err(ArgError::InvalidValue { .. })
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["-c", "md5"]),
            Err(ArgError::InvalidValue { .. })
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["-i", "ipx"]),
            Err(ArgError::InvalidValue { .. })
        ));
        assert!(matches!(
            argv(Binary::Xvm, &["-a", "host"]),
            Err(ArgError::InvalidValue { .. })
        ));
        let long = "x".repeat(64);
        assert!(matches!(
            argv(Binary::Xvm, &["-n", &long]),
            Err(ArgError::InvalidValue { .. })
        ));
        assert!(argv(Binary::Xvm, &["-n", &long[..63]]).is_ok());
        assert!(matches!(
            argv(Binary::Xvm, &["--", "x"]),
            Err(ArgError::StrayArgument(_))
        ));
    }

    #[test]
    fn argv_help_version_and_question_mark() {
        assert!(argv(Binary::Xvm, &["-?"]).unwrap().help);
        assert!(argv(Binary::Virt, &["-h"]).unwrap().help);
        assert!(argv(Binary::Virt, &["-V"]).unwrap().version);
        assert!(argv(Binary::Virt, &["--manpage"]).unwrap().manpage);
    }

    #[test]
    fn argv_vsock_optional_value_must_be_attached() {
        assert_eq!(argv(Binary::Virt, &["-S"]).unwrap().vsock, Some(2));
        assert_eq!(argv(Binary::Virt, &["-S7"]).unwrap().vsock, Some(7));
        assert_eq!(argv(Binary::Virt, &["--vsock=9"]).unwrap().vsock, Some(9));
        // The classic agent took `-S 3` as CID 2 plus an ignored word.
        let err = argv(Binary::Virt, &["-S", "3"]).unwrap_err();
        assert_eq!(
            err,
            ArgError::DetachedValue {
                option: "-S".into(),
                long: "--vsock".into(),
                value: "3".into()
            }
        );
        assert!(err.to_string().contains("-S3 or --vsock=3"), "{err}");
        assert!(matches!(
            argv(Binary::Virt, &["--vsock", "3"]),
            Err(ArgError::DetachedValue { .. })
        ));
        assert!(matches!(
            argv(Binary::Virt, &["-dS", "3"]),
            Err(ArgError::DetachedValue { .. })
        ));
        assert_eq!(argv(Binary::Virt, &["-S", "-d"]).unwrap().vsock, Some(2));
        assert!(matches!(
            argv(Binary::Virt, &["-S3", "4"]),
            Err(ArgError::StrayArgument(_))
        ));
        assert!(matches!(
            argv(Binary::Virt, &["-S1"]),
            Err(ArgError::InvalidValue { .. })
        ));
    }

    #[test]
    fn stdin_pacemaker_style() {
        let text = "# written by pacemaker-fenced\n\
                    action=off\n\
                    nodename=node4\n\
                    \n\
                    port=vm4\n\
                    key_file=/etc/k\n\
                    agent=fence_xvm\n\
                    pcmk_host_list=node4\n\
                    timeout=20\n";
        let (s, notes) = stdin(Binary::Xvm, text).unwrap();
        assert_eq!(s.action, Action::Off);
        assert_eq!(s.target.unwrap().as_str(), "vm4");
        assert_eq!(s.key_file.to_str(), Some("/etc/k"));
        assert_eq!(s.timeout, Duration::from_secs(20));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("pcmk_host_list"));
    }

    #[test]
    fn stdin_last_value_wins_across_aliases() {
        let (s, _) = stdin(Binary::Xvm, "port=a\nplug=b\n").unwrap();
        assert_eq!(s.target.unwrap().as_str(), "b");
        let (s, _) = stdin(Binary::Xvm, "plug=b\ndomain=c\nport=d\n").unwrap();
        assert_eq!(s.target.unwrap().as_str(), "d");
        let (s, _) = stdin(Binary::Xvm, "action=on\noption=status\n").unwrap();
        assert_eq!(s.action, Action::Status);
    }

    #[test]
    fn stdin_values_keep_spaces_and_lose_quotes_and_crlf() {
        let (s, _) = stdin(Binary::Xvm, "  plug = my vm \r\naction=\"status\"\r\n").unwrap();
        assert_eq!(s.target.unwrap().as_str(), "my vm");
        assert_eq!(s.action, Action::Status);
    }

    #[test]
    fn stdin_meta_data_and_flags() {
        let (s, _) = stdin(Binary::Xvm, "action=meta-data\n").unwrap();
        assert_eq!(s.action, Action::Metadata);
        let (s, _) = stdin(Binary::Xvm, "debug\ndebug\nuse_uuid\n").unwrap();
        assert_eq!(s.debug, 2);
        assert!(s.use_uuid);
        let (s, _) = stdin(Binary::Xvm, "debug=3\nuse_uuid=0\n").unwrap();
        assert_eq!(s.debug, 3);
        assert!(!s.use_uuid);
        let (s, _) = stdin(Binary::Xvm, "debug=true\nuse_uuid=yes\n").unwrap();
        assert_eq!(s.debug, 1);
        assert!(s.use_uuid);
        let (s, _) = stdin(Binary::Virt, "vsock\n").unwrap();
        assert_eq!(s.vsock, Some(2));
    }

    #[test]
    fn stdin_other_binary_keys_are_unknown_and_bare_keys_ignored() {
        let (s, notes) = stdin(Binary::Xvm, "ipaddr=1.2.3.4\nport\n").unwrap();
        assert!(s.target.is_none());
        assert_eq!(notes.len(), 2);
        let (s, notes) = stdin(Binary::Virt, "ipaddr=1.2.3.4\nmulticast_address=225.0.0.1\n").unwrap();
        assert_eq!(s.ipaddr.as_deref(), Some("1.2.3.4"));
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn stdin_errors_name_the_key() {
        let err = stdin(Binary::Xvm, "timeout=soon\n").unwrap_err();
        assert!(err.to_string().contains("timeout"), "{err}");
        assert!(matches!(
            stdin(Binary::Xvm, "port=\n"),
            Err(ArgError::InvalidValue { .. })
        ));
    }

    #[test]
    fn command_line_present_means_stdin_unread() {
        let p = parse(Binary::Xvm, ["-o", "list"], "action=off\n".as_bytes()).unwrap();
        assert_eq!(p.settings.action, Action::List);
        assert!(!p.from_stdin);
        let p = parse(Binary::Xvm, Vec::<String>::new(), "action=off\n".as_bytes()).unwrap();
        assert_eq!(p.settings.action, Action::Off);
        assert!(p.from_stdin);
    }

    #[test]
    fn checks_after_parsing() {
        let s = argv(Binary::Xvm, &["-o", "off"]).unwrap();
        assert_eq!(s.check(), Err(ArgError::NoTarget("off")));
        for a in ["list", "list-status", "monitor", "metadata", "validate-all"] {
            assert_eq!(argv(Binary::Xvm, &["-o", a]).unwrap().check(), Ok(()));
        }
        let s = argv(Binary::Xvm, &["-o", "list", "-i", "ipv6", "-a", "225.0.0.12"]).unwrap();
        assert!(matches!(s.check(), Err(ArgError::FamilyMismatch { .. })));
    }
}
