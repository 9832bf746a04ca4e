//! Option tables: one [`OptSpec`] per option, and the [`Program`] trait that
//! ties a table to a program.
//!
//! An option is declared exactly once: its standard-input key and the other
//! keys accepted for it, its getopt letter, its long command-line form, the
//! value it takes, the default the metadata advertises, its description, and
//! which programs of the table have it. The parsers, `-h`, `-o metadata` and
//! the man page are all generated from the table, so they cannot drift apart.

use std::fmt;

use crate::docs::Docs;
use crate::value::ArgError;

/// A fence agent built on the framework. One type may stand for several
/// programs sharing a table (`fence_xvm` and `fence_virt` do), told apart by
/// [`OptSpec::only`].
pub trait Program: Copy + Eq + fmt::Debug + 'static {
    /// What an option sets: the program's own enum of settings.
    type Field: Copy + Eq + fmt::Debug + 'static;
    /// The typed settings a run is configured with.
    type Settings;

    /// The program name, as installed (`fence_xvm`).
    fn name(self) -> &'static str;

    /// Every option of the table, in metadata order.
    fn table() -> &'static [OptSpec<Self>];

    /// Standard-input keys that are accepted and ignored without a note
    /// (`nodename`, which Pacemaker always passes, at least).
    fn ignored_keys(self) -> &'static [&'static str];

    /// The settings before any option is applied.
    fn defaults(self) -> Self::Settings;

    /// Apply one occurrence of `opt`. `value` is `None` for a bare flag or a
    /// bare standard-input key; `from_stdin` tells the two sources apart
    /// (`debug=3` sets a level, `-d` raises it). Later calls override
    /// earlier ones.
    fn apply(
        settings: &mut Self::Settings,
        opt: &OptSpec<Self>,
        value: Option<&str>,
        from_stdin: bool,
    ) -> Result<(), ArgError>;

    /// The texts of help, metadata and man page that are not in the table.
    fn docs(self) -> Docs;

    /// The options of this program, in table order.
    fn options(self) -> impl Iterator<Item = &'static OptSpec<Self>> {
        Self::table().iter().filter(move |o| o.is_for(self))
    }

    /// The command-line option with getopt letter `c` (`?` is `h`).
    fn by_short(self, c: char) -> Option<&'static OptSpec<Self>> {
        let c = if c == '?' { 'h' } else { c };
        self.options().find(|o| o.argv && o.short == Some(c))
    }

    /// The command-line option with long name `name` (without dashes; `_`
    /// and `-` interchangeable).
    fn by_long(self, name: &str) -> Option<&'static OptSpec<Self>> {
        let name = name.replace('_', "-");
        self.options().find(|o| o.argv && o.long() == name)
    }

    /// The option that standard-input key `key` names.
    fn by_key(self, key: &str) -> Option<&'static OptSpec<Self>> {
        self.options().find(|o| o.stdin && o.matches_key(key))
    }
}

/// How an option takes its value on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// A flag: `-d`, `-u`. On stdin a value is optional (`debug=3`, `use_uuid=1`).
    Flag,
    /// A required value: `-o off`, `-ooff`, `--action=off`.
    Required,
    /// An optional value that must be attached: `-S`, `-S3`, `--vsock=3`.
    Optional,
}

/// The metadata content type of a parameter (the types `metadata.rng` allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// `boolean`.
    Boolean,
    /// `string`.
    String,
    /// `integer`.
    Integer,
    /// `second`: a duration in seconds.
    Second,
}

impl Content {
    /// The word used in metadata.
    pub fn name(self) -> &'static str {
        match self {
            Content::Boolean => "boolean",
            Content::String => "string",
            Content::Integer => "integer",
            Content::Second => "second",
        }
    }
}

/// One option of a table.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec<P: Program> {
    /// The standard-input key and metadata parameter name; the long option
    /// is the same with `-` for `_`.
    pub name: &'static str,
    /// The getopt letter, if any.
    pub short: Option<char>,
    /// Other standard-input keys accepted for the same option.
    pub aliases: &'static [&'static str],
    /// What it sets.
    pub field: P::Field,
    /// How it takes a value on the command line.
    pub arg: Arg,
    /// The value's name in help and man page (`family` → `<family>`).
    pub placeholder: &'static str,
    /// Metadata content type.
    pub content: Content,
    /// The default the metadata advertises.
    pub default: Option<&'static str>,
    /// One-line description.
    pub description: &'static str,
    /// The programs of the table that have it; empty means all of them.
    pub only: &'static [P],
    /// Whether it is accepted on standard input and listed in the metadata.
    pub stdin: bool,
    /// Whether it is accepted on the command line.
    pub argv: bool,
    /// Metadata `required="1"`.
    pub required: bool,
    /// Metadata `deprecated="1"`.
    pub deprecated: bool,
    /// Metadata `obsoletes="…"`.
    pub obsoletes: Option<&'static str>,
}

impl<P: Program> OptSpec<P> {
    /// Whether `prog` has this option.
    pub fn is_for(&self, prog: P) -> bool {
        self.only.is_empty() || self.only.contains(&prog)
    }

    /// The long command-line name, without the leading dashes.
    pub fn long(&self) -> String {
        self.name.replace('_', "-")
    }

    /// Whether `key` names this option on standard input (case-insensitive,
    /// `-` and `_` interchangeable, like the fence-agents library).
    pub fn matches_key(&self, key: &str) -> bool {
        let same = |n: &str| {
            n.len() == key.len()
                && n.bytes().zip(key.bytes()).all(|(a, b)| {
                    let norm = |c: u8| if c == b'-' { b'_' } else { c.to_ascii_lowercase() };
                    norm(a) == norm(b)
                })
        };
        same(self.name) || self.aliases.iter().any(|a| same(a))
    }

    /// `-n <domain>` / `-d` / `-S[cid]`, as help shows the short form.
    pub fn short_usage(&self) -> Option<String> {
        let c = self.short?;
        Some(match self.arg {
            Arg::Flag => format!("-{c}"),
            Arg::Required => format!("-{c} <{}>", self.placeholder),
            Arg::Optional => format!("-{c}[{}]", self.placeholder),
        })
    }

    /// `--plug=<domain>` / `--debug` / `--vsock[=<cid>]`.
    pub fn long_usage(&self) -> String {
        match self.arg {
            Arg::Flag => format!("--{}", self.long()),
            Arg::Required => format!("--{}=<{}>", self.long(), self.placeholder),
            Arg::Optional => format!("--{}[=<{}>]", self.long(), self.placeholder),
        }
    }

    /// How error messages name the option: `-t/timeout`.
    pub fn display_name(&self) -> String {
        match (self.short, self.stdin) {
            (Some(c), true) => format!("-{c}/{}", self.name),
            (Some(c), false) => format!("-{c}"),
            (None, _) => self.name.to_owned(),
        }
    }
}

/// Checks every table should pass, for the programs' unit tests: within
/// one program no two options share a name, a getopt letter, a long name
/// or a standard-input key. Returns the first clash found.
pub fn check_table<P: Program>(prog: P) -> Result<(), String> {
    let opts: Vec<_> = prog.options().collect();
    for (i, a) in opts.iter().enumerate() {
        for b in &opts[i + 1..] {
            if a.name == b.name {
                return Err(format!("{}: name {} twice", prog.name(), a.name));
            }
            if a.short.is_some() && a.short == b.short && a.argv && b.argv {
                return Err(format!(
                    "{}: -{:?} for {} and {}",
                    prog.name(),
                    a.short,
                    a.name,
                    b.name
                ));
            }
            for k in std::iter::once(&a.name).chain(a.aliases) {
                if b.stdin && b.matches_key(k) {
                    return Err(format!(
                        "{}: key {k} is ambiguous ({} / {})",
                        prog.name(),
                        a.name,
                        b.name
                    ));
                }
            }
        }
    }
    Ok(())
}
