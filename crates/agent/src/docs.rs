//! Text generated from the option table: `-o metadata` XML (the fence-agents
//! `metadata.rng` schema that Pacemaker and pcs read), `-h` help, `-V`, and
//! the troff man page printed by `--manpage`.

use std::fmt::Write as _;

use crate::settings::Action;
use crate::table::{options_for, Arg, Binary, OptSpec, REBOOT_NOTE};

/// The classic protocol version the agents speak.
pub const PROTOCOL_VERSION: &str = "1.9.0";

const SHORTDESC: &str = "Fence agent for virtual machines";

/// The metadata XML.
pub fn metadata(bin: Binary) -> String {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" ?>\n");
    let _ = writeln!(
        x,
        "<resource-agent name=\"{}\" shortdesc=\"{}\">",
        bin.name(),
        xml_escape(SHORTDESC)
    );
    let _ = writeln!(
        x,
        "<longdesc>{}\n\n{}</longdesc>",
        xml_escape(bin.longdesc()),
        xml_escape(REBOOT_NOTE)
    );
    x.push_str("<vendor-url>https://libvirt.org</vendor-url>\n<parameters>\n");
    for o in options_for(bin).filter(|o| o.stdin) {
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
        let getopt = o.short.map(|c| format!("-{c}")).unwrap_or_default();
        let _ = writeln!(x, "\t\t<getopt mixed=\"{getopt}\" />");
        match o.default {
            Some(d) => {
                let _ = writeln!(
                    x,
                    "\t\t<content type=\"{}\" default=\"{}\" />",
                    o.content.name(),
                    xml_escape(d)
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
    for a in Action::ALL {
        let _ = writeln!(x, "\t<action name=\"{}\" />", a.name());
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
}

/// The `-V` line.
pub fn version(bin: Binary) -> String {
    format!(
        "{} {} (vmfence {}; fence-virt protocol {PROTOCOL_VERSION})\n",
        bin.name(),
        PROTOCOL_VERSION,
        env!("CARGO_PKG_VERSION")
    )
}

const HELP_WIDTH: usize = 79;
const HELP_COLUMN: usize = 30;

/// The `-h` text.
pub fn help(bin: Binary) -> String {
    let mut h = String::new();
    let _ = writeln!(h, "usage: {} [options]", bin.name());
    let _ = writeln!(h, "       {} < parameters", bin.name());
    h.push('\n');
    for line in wrap(bin.longdesc(), HELP_WIDTH) {
        let _ = writeln!(h, "{line}");
    }
    let _ = writeln!(h, "\n{REBOOT_NOTE}\n\nOptions:");
    for o in options_for(bin).filter(|o| o.argv) {
        let left = match o.short_usage() {
            Some(s) => format!("{s}, {}", o.long_usage()),
            None => o.long_usage(),
        };
        let mut desc = o.description.to_owned();
        if let Some(d) = o.default.filter(|_| o.arg != Arg::Flag) {
            let _ = write!(desc, " [{d}]");
        }
        put_entry(&mut h, &left, &desc);
    }
    h.push_str(
        "\nWith no argument at all, parameters are read from standard input, one\n\
         key=value per line (this is how Pacemaker runs fence agents). Keys:\n\n",
    );
    for o in options_for(bin).filter(|o| o.stdin) {
        let left = format!(
            "{}=<{}>",
            o.name,
            if o.arg == Arg::Flag { "n" } else { o.placeholder }
        );
        let mut desc = match o.short {
            Some(c) if o.argv => format!("as -{c}"),
            _ => "target VM".to_owned(),
        };
        if !o.aliases.is_empty() {
            let _ = write!(desc, "; also {}", o.aliases.join(", "));
        }
        if o.deprecated {
            desc.push_str(" (deprecated)");
        }
        put_entry(&mut h, &left, &desc);
    }
    h.push_str(
        "\nExit status: 0 success (status: VM on), 2 status: VM off, 1 failure,\n\
         3 permission denied by the daemon; other values are the daemon's answer.\n",
    );
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
fn wrap(text: &str, width: usize) -> Vec<String> {
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
pub fn manpage(bin: Binary) -> String {
    let name = bin.name();
    let upper = name.to_ascii_uppercase();
    let mut m = String::new();
    let _ = writeln!(
        m,
        ".TH {} 8 \"\" \"vmfence {}\" \"System Manager's Manual\"",
        upper,
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(m, ".SH NAME\n{} \\- {}", roff(name), roff(SHORTDESC));
    let _ = writeln!(m, ".SH SYNOPSIS");
    let _ = writeln!(m, ".B {}\n[\\fIOPTIONS\\fR]", roff(name));
    let _ = writeln!(m, ".br\n.B {}\n< \\fIPARAMETERS\\fR", roff(name));
    let _ = writeln!(m, ".SH DESCRIPTION\n{}", roff(bin.longdesc()));
    let _ = writeln!(m, ".PP\n{}", roff(REBOOT_NOTE));
    let _ = writeln!(
        m,
        ".PP\nWith no command-line argument the agent reads its parameters from standard input, \
         one \\fIkey\\fB=\\fIvalue\\fR per line, as Pacemaker passes them. Lines starting with \
         \\fB#\\fR and blank lines are skipped, the last value of a key wins, unknown keys are \
         ignored, and \\fBnodename\\fR, \\fBagent\\fR and \\fBself\\fR are accepted and ignored."
    );
    let _ = writeln!(m, ".SH OPTIONS");
    for o in options_for(bin) {
        man_option(&mut m, o);
    }
    let _ = writeln!(m, ".SH ACTIONS");
    for (a, text) in [
        (Action::Off, "Power the virtual machine off."),
        (Action::On, "Power the virtual machine on."),
        (
            Action::Reboot,
            "Power the virtual machine off, then on again (the default). A machine that is off stays off.",
        ),
        (
            Action::Status,
            "Exit 0 when the virtual machine is on, 2 when it is off.",
        ),
        (
            Action::Monitor,
            "Check that a daemon answers; no virtual machine is needed.",
        ),
        (
            Action::List,
            "Print every virtual machine the daemon may fence: name (in 32 columns), UUID, on or off.",
        ),
        (Action::ListStatus, "The same as list."),
        (Action::Null, "Send a request that does nothing."),
        (Action::Metadata, "Print the agent's metadata XML."),
        (
            Action::ValidateAll,
            "Check the parameters and the key file, then exit.",
        ),
    ] {
        let _ = writeln!(m, ".TP\n.B {}\n{}", roff(a.name()), roff(text));
    }
    let _ = writeln!(
        m,
        ".SH EXIT STATUS\n.TP\n.B 0\nSuccess; for status, the machine is on.\n.TP\n.B 1\nFailure, \
         including time-outs and bad parameters.\n.TP\n.B 2\nFor status, the machine is off.\n.TP\n.B 3\n\
         The daemon's permission map refused the request.\n.PP\nAny other value is the daemon's answer, \
         passed through."
    );
    let _ = writeln!(
        m,
        ".SH FILES\n.TP\n.I {}\nThe default shared key; it must hold the same bytes as the \
         daemon's key file.",
        roff(vmfence_proto::DEFAULT_KEY_FILE)
    );
    let _ = writeln!(m, ".SH SEE ALSO\n.BR fence_virtd (8),\n.BR fence_virt.conf (5)");
    m
}

fn man_option(m: &mut String, o: &OptSpec) {
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
    if let Some(d) = o.default {
        let _ = write!(text, " Default: \\fB{}\\fR.", roff(d));
    }
    if o.deprecated {
        text.push_str(" Deprecated.");
    }
    let _ = writeln!(m, "{text}");
}

/// Escape text for troff: backslashes, dashes and a leading dot or quote.
fn roff(s: &str) -> String {
    let mut out = s.replace('\\', "\\e").replace('-', "\\-");
    if out.starts_with('.') || out.starts_with('\'') {
        out.insert_str(0, "\\&");
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_visible_option_of_the_binary_and_only_those() {
        let h = help(Binary::Xvm);
        for s in [
            "-i <family>",
            "-a <address>",
            "-r <tenths>",
            "-u, --use-uuid",
            "-n <domain>",
            "-h, --help",
        ] {
            assert!(h.contains(s), "missing {s} in\n{h}");
        }
        assert!(!h.contains("-T <address>"));
        assert!(h.contains("-H <domain>, --port=<domain>"));
        assert!(h.contains("port=<domain>"));
        let v = help(Binary::Virt);
        for s in [
            "-T <address>",
            "-S[cid]",
            "-D <device>",
            "-P <params>",
            "-A <address>",
        ] {
            assert!(v.contains(s), "missing {s} in\n{v}");
        }
        assert!(!v.contains("-i <family>"));
        for line in h.lines().chain(v.lines()) {
            assert!(line.len() <= HELP_WIDTH, "too long: {line:?}");
        }
    }

    #[test]
    fn metadata_has_the_classic_parameter_names_in_order() {
        let m = metadata(Binary::Xvm);
        let names: Vec<&str> = m
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<parameter name=\""))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert_eq!(
            names,
            [
                "debug",
                "ip_family",
                "multicast_address",
                "ipport",
                "retrans",
                "auth",
                "hash",
                "key_file",
                "plug",
                "port",
                "use_uuid",
                "action",
                "timeout",
                "delay",
                "domain"
            ]
        );
    }

    #[test]
    fn manpage_is_troff() {
        let m = manpage(Binary::Virt);
        assert!(m.starts_with(".TH FENCE_VIRT 8"));
        assert!(m.contains("\\fB\\-T\\fR \\fIaddress\\fR"));
        assert!(m.contains(".SH EXIT STATUS"));
        assert!(!m.lines().any(|l| l.starts_with('-')));
    }

    #[test]
    fn wrapping() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert!(wrap("", 10).is_empty());
    }
}
