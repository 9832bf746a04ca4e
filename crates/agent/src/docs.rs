//! Text generated from the option table: `-o metadata` XML (the fence-agents
//! `metadata.rng` schema that Pacemaker and pcs read), `-h` help, `-V`, and
//! the troff man page printed by `--manpage`. The generators are the
//! framework's; this module holds the fence-virt agents' own texts.

use vmfence_agentkit::docs::{self as kit, Docs, Getopt, MetaAction};

use crate::table::{Binary, REBOOT_NOTE};

/// The classic protocol version the agents speak.
pub const PROTOCOL_VERSION: &str = "1.9.0";

const SHORTDESC: &str = "Fence agent for virtual machines";

const ACTIONS: &[MetaAction] = &[
    MetaAction {
        name: "null",
        attrs: "",
    },
    MetaAction {
        name: "on",
        attrs: "",
    },
    MetaAction {
        name: "off",
        attrs: "",
    },
    MetaAction {
        name: "reboot",
        attrs: "",
    },
    MetaAction {
        name: "metadata",
        attrs: "",
    },
    MetaAction {
        name: "status",
        attrs: "",
    },
    MetaAction {
        name: "monitor",
        attrs: "",
    },
    MetaAction {
        name: "list",
        attrs: "",
    },
    MetaAction {
        name: "list-status",
        attrs: "",
    },
    MetaAction {
        name: "validate-all",
        attrs: "",
    },
];

const MAN_ACTIONS: &[(&str, &str)] = &[
    ("off", "Power the virtual machine off."),
    ("on", "Power the virtual machine on."),
    (
        "reboot",
        "Power the virtual machine off, then on again (the default). A machine that is off stays off.",
    ),
    (
        "status",
        "Exit 0 when the virtual machine is on, 2 when it is off.",
    ),
    (
        "monitor",
        "Check that a daemon answers; no virtual machine is needed.",
    ),
    (
        "list",
        "Print every virtual machine the daemon may fence: name (in 32 columns), UUID, on or off.",
    ),
    ("list-status", "The same as list."),
    ("null", "Send a request that does nothing."),
    ("metadata", "Print the agent's metadata XML."),
    (
        "validate-all",
        "Check the parameters and the key file, then exit.",
    ),
];

/// The texts of `bin` that are not in the option table.
pub fn docs(bin: Binary) -> Docs {
    Docs {
        shortdesc: SHORTDESC,
        longdesc: bin.longdesc(),
        note: Some(REBOOT_NOTE),
        vendor_url: "https://libvirt.org",
        getopt: Getopt::Letter,
        actions: ACTIONS,
        man_actions: MAN_ACTIONS,
        stdin_paragraph: "With no command-line argument the agent reads its parameters from standard input, \
                          one \\fIkey\\fB=\\fIvalue\\fR per line, as Pacemaker passes them. Lines starting with \
                          \\fB#\\fR and blank lines are skipped, the last value of a key wins, unknown keys are \
                          ignored, and \\fBnodename\\fR, \\fBagent\\fR and \\fBself\\fR are accepted and ignored.",
        stdin_only: "target VM",
        help_exit: "Exit status: 0 success (status: VM on), 2 status: VM off, 1 failure,\n\
                    3 permission denied by the daemon; other values are the daemon's answer.\n",
        man_exit: ".TP\n.B 0\nSuccess; for status, the machine is on.\n.TP\n.B 1\nFailure, \
                   including time-outs and bad parameters.\n.TP\n.B 2\nFor status, the machine is off.\n.TP\n.B 3\n\
                   The daemon's permission map refused the request.\n.PP\nAny other value is the daemon's answer, \
                   passed through.",
        files: &[(
            vmfence_proto::DEFAULT_KEY_FILE,
            "The default shared key; it must hold the same bytes as the daemon's key file.",
        )],
        see_also: ".BR fence_virtd (8),\n.BR fence_virt.conf (5)",
    }
}

/// The metadata XML.
pub fn metadata(bin: Binary) -> String {
    kit::metadata(bin)
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

/// The `-h` text.
pub fn help(bin: Binary) -> String {
    kit::help(bin)
}

/// The man page, in troff `man` macros.
pub fn manpage(bin: Binary) -> String {
    kit::manpage(bin)
}

#[cfg(test)]
mod tests {
    use vmfence_agentkit::docs::wrap;

    use super::*;
    use crate::settings::Action;

    const HELP_WIDTH: usize = 79;

    #[test]
    fn metadata_actions_are_the_actions() {
        let names: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
        let all: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names, all);
        let mut man: Vec<&str> = MAN_ACTIONS.iter().map(|a| a.0).collect();
        let mut all = all;
        man.sort_unstable();
        all.sort_unstable();
        assert_eq!(man, all);
    }

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
