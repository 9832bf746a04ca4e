//! Command-line and standard-input parsing, both driven by a program's
//! option table.
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

use crate::table::{Arg, OptSpec, Program};
use crate::value::ArgError;

/// Most bytes read from standard input; Pacemaker sends a few hundred.
pub const MAX_STDIN: u64 = 1 << 20;

/// Parsed options and the notes the parser wants shown at debug level.
#[derive(Debug, Clone)]
pub struct Parsed<S> {
    /// The settings.
    pub settings: S,
    /// Remarks such as ignored stdin keys, for the debug log.
    pub notes: Vec<String>,
    /// Whether the options came from standard input.
    pub from_stdin: bool,
}

/// Parse the command line when there is one, standard input otherwise.
/// `args` excludes the program name.
pub fn parse<P, I, S, R>(prog: P, args: I, stdin: R) -> Result<Parsed<P::Settings>, ArgError>
where
    P: Program,
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
    R: BufRead,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.is_empty() {
        let (settings, notes) = parse_stdin(prog, stdin)?;
        Ok(Parsed {
            settings,
            notes,
            from_stdin: true,
        })
    } else {
        Ok(Parsed {
            settings: parse_argv(prog, args)?,
            notes: Vec::new(),
            from_stdin: false,
        })
    }
}

/// Parse command-line arguments (without the program name), getopt style:
/// `-d -d`, `-dd`, `-o off`, `-ooff`, `-S`, `-S3`, plus long forms
/// `--action=off`, `--action off`, `--help`.
pub fn parse_argv<P, I, S>(prog: P, args: I) -> Result<P::Settings, ArgError>
where
    P: Program,
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let mut found: Vec<(&'static OptSpec<P>, Option<String>)> = Vec::new();
    // A bare option with an optional value (`-S`), as the user spelled it:
    // a word right after it is refused with a pointed message.
    let mut bare_optional: Option<(String, &'static OptSpec<P>)> = None;
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
            let opt = prog
                .by_long(name)
                .ok_or_else(|| ArgError::UnknownOption(format!("--{name}")))?;
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
                let opt = prog
                    .by_short(c)
                    .ok_or_else(|| ArgError::UnknownOption(format!("-{c}")))?;
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
    let mut settings = prog.defaults();
    for (opt, value) in found {
        P::apply(&mut settings, opt, value.as_deref(), false)?;
    }
    Ok(settings)
}

/// Parse `key=value` lines. Returns the settings and notes about what was
/// ignored. Errors name the offending key; reading stops at [`MAX_STDIN`].
pub fn parse_stdin<P: Program, R: BufRead>(
    prog: P,
    stdin: R,
) -> Result<(P::Settings, Vec<String>), ArgError> {
    let mut settings = prog.defaults();
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
        if prog.ignored_keys().iter().any(|k| k.eq_ignore_ascii_case(key)) {
            continue;
        }
        match prog.by_key(key) {
            Some(opt) if value.is_none() && opt.arg == Arg::Required => {
                notes.push(format!("line {lineno}: ignoring '{key}' without a value"));
            }
            Some(opt) => P::apply(&mut settings, opt, value, true)?,
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

    use super::*;
    use crate::docs::{self, Docs, Getopt, MetaAction};
    use crate::table::{check_table, Content};

    /// A toy agent: a target, a flag, a number, an old name for the target.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Toy;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum F {
        Target,
        Verbose,
        Wait,
    }

    #[derive(Debug, Default, PartialEq, Eq)]
    struct S {
        target: Option<String>,
        verbose: u32,
        wait: i64,
    }

    const BASE: OptSpec<Toy> = OptSpec {
        name: "",
        short: None,
        aliases: &[],
        field: F::Target,
        arg: Arg::Required,
        placeholder: "x",
        content: Content::String,
        default: None,
        description: "d",
        only: &[],
        stdin: true,
        argv: true,
        required: false,
        deprecated: false,
        obsoletes: None,
    };

    const TABLE: &[OptSpec<Toy>] = &[
        OptSpec {
            name: "plug",
            short: Some('n'),
            placeholder: "id",
            obsoletes: Some("port"),
            ..BASE
        },
        OptSpec {
            name: "port",
            argv: false,
            deprecated: true,
            ..BASE
        },
        OptSpec {
            name: "verbose",
            short: Some('v'),
            field: F::Verbose,
            arg: Arg::Flag,
            content: Content::Boolean,
            ..BASE
        },
        OptSpec {
            name: "power_wait",
            field: F::Wait,
            placeholder: "seconds",
            content: Content::Second,
            default: Some("0"),
            ..BASE
        },
    ];

    impl Program for Toy {
        type Field = F;
        type Settings = S;
        fn name(self) -> &'static str {
            "fence_toy"
        }
        fn table() -> &'static [OptSpec<Toy>] {
            TABLE
        }
        fn ignored_keys(self) -> &'static [&'static str] {
            &["nodename"]
        }
        fn defaults(self) -> S {
            S::default()
        }
        fn apply(
            s: &mut S,
            opt: &OptSpec<Toy>,
            value: Option<&str>,
            from_stdin: bool,
        ) -> Result<(), ArgError> {
            match (opt.field, value) {
                (F::Target, Some(v)) => s.target = Some(v.to_owned()),
                (F::Verbose, None) => s.verbose += 1,
                (F::Verbose, Some(v)) if from_stdin => {
                    s.verbose = u32::from(crate::value::parse_bool(v) == Some(true))
                }
                (F::Wait, Some(v)) => {
                    s.wait = crate::value::parse_number(v).ok_or_else(|| ArgError::InvalidValue {
                        option: opt.display_name(),
                        value: v.to_owned(),
                        reason: "expected seconds".to_owned(),
                    })?
                }
                _ => return Err(ArgError::MissingValue(opt.display_name())),
            }
            Ok(())
        }
        fn docs(self) -> Docs {
            Docs {
                shortdesc: "Toy",
                longdesc: "A toy agent.",
                note: None,
                vendor_url: "https://example.invalid",
                getopt: Getopt::Mixed,
                actions: &[MetaAction {
                    name: "on",
                    attrs: " automatic=\"0\"",
                }],
                man_actions: &[("on", "Power on.")],
                stdin_paragraph: "Standard input.",
                stdin_only: "old name",
                help_exit: "Exit status: 0 or 1.\n",
                man_exit: "0 or 1.",
                files: &[],
                see_also: ".BR fence_xvm (8)",
            }
        }
    }

    #[test]
    fn a_second_program_parses_argv_and_stdin_by_the_same_rules() {
        check_table(Toy).unwrap();
        let s = parse_argv(Toy, ["-vv", "--power-wait=3", "-n", "vm 1"]).unwrap();
        assert_eq!(
            s,
            S {
                target: Some("vm 1".into()),
                verbose: 2,
                wait: 3
            }
        );
        assert_eq!(
            parse_argv(Toy, ["--port=x"]),
            Err(ArgError::UnknownOption("--port".into()))
        );
        let (s, notes) = parse_stdin(
            Toy,
            "# comment\n\nnodename=n1\nport=a\nplug=b\nPOWER-WAIT=4\nverbose=yes\nfoo=1\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(s.target.as_deref(), Some("b"));
        assert_eq!((s.verbose, s.wait), (1, 4));
        assert_eq!(notes, ["line 8: ignoring unknown parameter 'foo'"]);
        let p = parse(Toy, Vec::<String>::new(), "port=c\n".as_bytes()).unwrap();
        assert!(p.from_stdin);
        assert_eq!(p.settings.target.as_deref(), Some("c"));
    }

    #[test]
    fn mixed_getopt_metadata_and_help() {
        let m = docs::metadata(Toy);
        assert!(m.contains("<getopt mixed=\"-n, --plug=[id]\" />"), "{m}");
        // The old name shows the form of the option that obsoletes it.
        assert!(
            m.contains("name=\"port\" unique=\"0\" required=\"0\" deprecated=\"1\">\n\t\t<getopt mixed=\"-n, --plug=[id]\""),
            "{m}"
        );
        assert!(m.contains("<getopt mixed=\"-v, --verbose\" />"), "{m}");
        assert!(m.contains("<getopt mixed=\"--power-wait=[seconds]\" />"), "{m}");
        assert!(m.contains("<content type=\"second\" default=\"0\" />"), "{m}");
        assert!(m.contains("<action name=\"on\" automatic=\"0\" />"), "{m}");
        assert!(m.contains("<longdesc>A toy agent.</longdesc>"), "{m}");
        let h = docs::help(Toy);
        assert!(
            h.contains(&format!("{:<28}as --power-wait", "power_wait=<seconds>")),
            "{h}"
        );
        assert!(
            h.contains(&format!("{:<28}old name (deprecated)", "port=<x>")),
            "{h}"
        );
        assert!(h.ends_with("Exit status: 0 or 1.\n"), "{h}");
        let man = docs::manpage(Toy);
        assert!(man.starts_with(".TH FENCE_TOY 8"), "{man}");
        assert!(!man.contains(".SH FILES"), "{man}");
    }
}
