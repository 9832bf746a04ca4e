//! Command-line and standard-input parsing, both driven by the option table;
//! the parsers are the framework's (`vmfence-agentkit`), this module keeps
//! the fence-virt agents' tests of them.
//!
//! The classic rule is kept: when the program has any command-line argument
//! it reads no standard input; with none, it reads `key=value` lines from
//! standard input, which is how Pacemaker passes every parameter. The stdin
//! rules follow the fence-agents convention (`doc/FenceAgentAPI.md`): `#`
//! comments and blank lines are skipped, the last value of a key wins (also
//! across `plug`/`port`/`domain`), unknown keys are ignored with a note, and
//! values keep their inner spaces.

pub use vmfence_agentkit::parse::{parse, parse_argv, parse_stdin, MAX_STDIN};

/// Parsed options of `fence_xvm` or `fence_virt`.
pub type Parsed = vmfence_agentkit::parse::Parsed<crate::settings::Settings>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use vmfence_proto::HashType;

    use super::*;
    use crate::settings::{Action, ArgError, Family, Settings};
    use crate::table::Binary;

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
