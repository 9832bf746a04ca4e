//! Text generated from an option table: `-o metadata` XML (the fence-agents
//! `metadata.rng` schema that Pacemaker and pcs read), `-h` help, and the
//! troff man page. What is not in the table comes from the program's
//! [`Docs`].

use std::fmt::Write as _;

use crate::table::{Arg, OptSpec, Program};

/// How the metadata's `<getopt mixed="…">` names an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Getopt {
    /// The letter only, `-d` (the fence-virt agents' metadata).
    Letter,
    /// The fence-agents library form: `-s, --session-url=[url]`,
    /// `-q, --quiet`, `--delay=[seconds]`.
    Mixed,
}

/// One action in the metadata.
#[derive(Debug, Clone, Copy)]
pub struct MetaAction {
    /// The action word.
    pub name: &'static str,
    /// Extra attributes, written as given (` automatic="0"`), or empty.
    pub attrs: &'static str,
}

/// The texts of a program that are not in its option table.
#[derive(Debug, Clone)]
pub struct Docs {
    /// Metadata `shortdesc` and the man page's NAME line.
    pub shortdesc: &'static str,
    /// The paragraph metadata, help and man page open with.
    pub longdesc: &'static str,
    /// A note shown after the long description (metadata, help, man page).
    pub note: Option<&'static str>,
    /// Metadata `vendor-url`.
    pub vendor_url: &'static str,
    /// Metadata getopt form.
    pub getopt: Getopt,
    /// Metadata actions, in order.
    pub actions: &'static [MetaAction],
    /// Man page ACTIONS: action word and text.
    pub man_actions: &'static [(&'static str, &'static str)],
    /// Man page paragraph (troff) on how standard input is read.
    pub stdin_paragraph: &'static str,
    /// Help text of the standard-input keys that have no command-line form.
    pub stdin_only: &'static str,
    /// The help text's last paragraph (exit status).
    pub help_exit: &'static str,
    /// Man page EXIT STATUS section body (troff).
    pub man_exit: &'static str,
    /// Man page FILES: path and text; no section when empty.
    pub files: &'static [(&'static str, &'static str)],
    /// Man page SEE ALSO section body (troff).
    pub see_also: &'static str,
}

/// The metadata XML.
pub fn metadata<P: Program>(prog: P) -> String {
    let d = prog.docs();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" ?>\n");
    let _ = writeln!(
        x,
        "<resource-agent name=\"{}\" shortdesc=\"{}\">",
        prog.name(),
        xml_escape(d.shortdesc)
    );
    match d.note {
        Some(note) => {
            let _ = writeln!(
                x,
                "<longdesc>{}\n\n{}</longdesc>",
                xml_escape(d.longdesc),
                xml_escape(note)
            );
        }
        None => {
            let _ = writeln!(x, "<longdesc>{}</longdesc>", xml_escape(d.longdesc));
        }
    }
    let _ = writeln!(
        x,
        "<vendor-url>{}</vendor-url>\n<parameters>",
        xml_escape(d.vendor_url)
    );
    for o in prog.options().filter(|o| o.stdin) {
        let _ = write!(
            x,
            "\t<parameter name=\"{}\" unique=\"0\" required=\"{}\"",
            o.name,
            u8::from(o.required)
        );
        if let Some(old) = o.obsoletes {
            let _ = write!(x, " obsoletes=\"{old}\"");
        }
        if o.deprecated {
            x.push_str(" deprecated=\"1\"");
        }
        x.push_str(">\n");
        let getopt = match d.getopt {
            Getopt::Letter => o.short.map(|c| format!("-{c}")).unwrap_or_default(),
            Getopt::Mixed => mixed_getopt(prog, o),
        };
        let _ = writeln!(x, "\t\t<getopt mixed=\"{}\" />", xml_escape(&getopt));
        match o.default {
            Some(def) => {
                let _ = writeln!(
                    x,
                    "\t\t<content type=\"{}\" default=\"{}\" />",
                    o.content.name(),
                    xml_escape(def)
                );
            }
            None => {
                let _ = writeln!(x, "\t\t<content type=\"{}\" />", o.content.name());
            }
        }
        let _ = writeln!(
            x,
            "\t\t<shortdesc lang=\"en\">{}</shortdesc>",
            xml_escape(o.description)
        );
        x.push_str("\t</parameter>\n");
    }
    x.push_str("</parameters>\n<actions>\n");
    for a in d.actions {
        let _ = writeln!(x, "\t<action name=\"{}\"{} />", a.name, a.attrs);
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
}

/// The fence-agents form of an option for `<getopt mixed>`. An old name
/// that exists on standard input only shows the command-line form of the
/// option that obsoletes it (`passwd` shows `-p, --password=[password]`).
fn mixed_getopt<P: Program>(prog: P, o: &OptSpec<P>) -> String {
    let o = if o.argv {
        o
    } else {
        match prog.options().find(|n| n.argv && n.obsoletes == Some(o.name)) {
            Some(n) => n,
            None => return String::new(),
        }
    };
    let long = match o.arg {
        Arg::Flag => format!("--{}", o.long()),
        Arg::Required => format!("--{}=[{}]", o.long(), o.placeholder),
        Arg::Optional => format!("--{}[=[{}]]", o.long(), o.placeholder),
    };
    match o.short {
        Some(c) => format!("-{c}, {long}"),
        None => long,
    }
}

const HELP_WIDTH: usize = 79;
const HELP_COLUMN: usize = 30;

/// The `-h` text.
pub fn help<P: Program>(prog: P) -> String {
    let d = prog.docs();
    let mut h = String::new();
    let _ = writeln!(h, "usage: {} [options]", prog.name());
    let _ = writeln!(h, "       {} < parameters", prog.name());
    h.push('\n');
    for line in wrap(d.longdesc, HELP_WIDTH) {
        let _ = writeln!(h, "{line}");
    }
    if let Some(note) = d.note {
        let _ = writeln!(h, "\n{note}");
    }
    let _ = writeln!(h, "\nOptions:");
    for o in prog.options().filter(|o| o.argv) {
        let left = match o.short_usage() {
            Some(s) => format!("{s}, {}", o.long_usage()),
            None => o.long_usage(),
        };
        let mut desc = o.description.to_owned();
        if let Some(def) = o.default.filter(|_| o.arg != Arg::Flag) {
            let _ = write!(desc, " [{def}]");
        }
        put_entry(&mut h, &left, &desc);
    }
    h.push_str(
        "\nWith no argument at all, parameters are read from standard input, one\n\
         key=value per line (this is how Pacemaker runs fence agents). Keys:\n\n",
    );
    for o in prog.options().filter(|o| o.stdin) {
        let left = format!(
            "{}=<{}>",
            o.name,
            if o.arg == Arg::Flag { "n" } else { o.placeholder }
        );
        let mut desc = match o.short {
            Some(c) if o.argv => format!("as -{c}"),
            None if o.argv => format!("as --{}", o.long()),
            _ => d.stdin_only.to_owned(),
        };
        if !o.aliases.is_empty() {
            let _ = write!(desc, "; also {}", o.aliases.join(", "));
        }
        if o.deprecated {
            desc.push_str(" (deprecated)");
        }
        put_entry(&mut h, &left, &desc);
    }
    let _ = write!(h, "\n{}", d.help_exit);
    h
}

fn put_entry(h: &mut String, left: &str, desc: &str) {
    let lines = wrap(desc, HELP_WIDTH - HELP_COLUMN);
    let mut first = true;
    if left.len() + 2 >= HELP_COLUMN {
        let _ = writeln!(h, "  {left}");
        first = false;
    }
    for line in lines {
        if first {
            let _ = writeln!(h, "  {left:<width$}{line}", width = HELP_COLUMN - 2);
            first = false;
        } else {
            let _ = writeln!(h, "{:HELP_COLUMN$}{line}", "");
        }
    }
}

/// Split `text` into lines of at most `width` characters at spaces.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The man page, in troff `man` macros.
pub fn manpage<P: Program>(prog: P) -> String {
    let d = prog.docs();
    let name = prog.name();
    let upper = name.to_ascii_uppercase();
    let mut m = String::new();
    let _ = writeln!(
        m,
        ".TH {} 8 \"\" \"vmfence {}\" \"System Manager's Manual\"",
        upper,
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(m, ".SH NAME\n{} \\- {}", roff(name), roff(d.shortdesc));
    let _ = writeln!(m, ".SH SYNOPSIS");
    let _ = writeln!(m, ".B {}\n[\\fIOPTIONS\\fR]", roff(name));
    let _ = writeln!(m, ".br\n.B {}\n< \\fIPARAMETERS\\fR", roff(name));
    let _ = writeln!(m, ".SH DESCRIPTION\n{}", roff(d.longdesc));
    if let Some(note) = d.note {
        let _ = writeln!(m, ".PP\n{}", roff(note));
    }
    let _ = writeln!(m, ".PP\n{}", d.stdin_paragraph);
    let _ = writeln!(m, ".SH OPTIONS");
    for o in prog.options() {
        man_option(&mut m, o);
    }
    let _ = writeln!(m, ".SH ACTIONS");
    for (a, text) in d.man_actions {
        let _ = writeln!(m, ".TP\n.B {}\n{}", roff(a), roff(text));
    }
    let _ = writeln!(m, ".SH EXIT STATUS\n{}", d.man_exit);
    if !d.files.is_empty() {
        let _ = writeln!(m, ".SH FILES");
        for (path, text) in d.files {
            let _ = writeln!(m, ".TP\n.I {}\n{}", roff(path), roff(text));
        }
    }
    let _ = writeln!(m, ".SH SEE ALSO\n{}", d.see_also);
    m
}

fn man_option<P: Program>(m: &mut String, o: &OptSpec<P>) {
    let mut head = Vec::new();
    if let Some(c) = o.short.filter(|_| o.argv) {
        head.push(match o.arg {
            Arg::Flag => format!("\\fB\\-{c}\\fR"),
            Arg::Required => format!("\\fB\\-{c}\\fR \\fI{}\\fR", o.placeholder),
            Arg::Optional => format!("\\fB\\-{c}\\fR[\\fI{}\\fR]", o.placeholder),
        });
    }
    if o.argv {
        let long = roff(&o.long());
        head.push(match o.arg {
            Arg::Flag => format!("\\fB\\-\\-{long}\\fR"),
            Arg::Required => format!("\\fB\\-\\-{long}\\fR=\\fI{}\\fR", o.placeholder),
            Arg::Optional => format!("\\fB\\-\\-{long}\\fR[=\\fI{}\\fR]", o.placeholder),
        });
    }
    if o.stdin {
        for k in std::iter::once(&o.name).chain(o.aliases) {
            head.push(format!("\\fB{}\\fR=\\fI{}\\fR", roff(k), o.placeholder));
        }
    }
    let _ = writeln!(m, ".TP\n{}", head.join(", "));
    let mut text = roff(o.description);
    if let Some(def) = o.default {
        let _ = write!(text, " Default: \\fB{}\\fR.", roff(def));
    }
    if o.deprecated {
        text.push_str(" Deprecated.");
    }
    let _ = writeln!(m, "{text}");
}

/// Escape text for troff: backslashes, dashes and a leading dot or quote.
pub fn roff(s: &str) -> String {
    let mut out = s.replace('\\', "\\e").replace('-', "\\-");
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

/// Escape text for an XML attribute or element.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert!(wrap("", 10).is_empty());
    }

    #[test]
    fn escaping() {
        assert_eq!(xml_escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
        assert_eq!(roff(".x-y\\"), "\\&.x\\-y\\e");
    }
}
