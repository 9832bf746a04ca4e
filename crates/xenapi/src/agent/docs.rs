//! The texts of `fence_xenapi` that are not in its option table; the
//! framework writes help, metadata and man page from them and the table.

use vmfence_agentkit::docs::{Docs, Getopt, MetaAction};

use crate::agent::table::NAME;

const LONGDESC: &str = "fence_xenapi is a Power Fencing agent for virtual machines of a XenServer or \
XCP-ng pool. It logs in to the pool master's XenAPI (XML-RPC over HTTPS, certificate verified), \
finds the VM by name label or UUID (never a template, snapshot or control domain), switches it \
with VM.hard_shutdown, VM.start or VM.hard_reboot, reports success only once XenAPI shows the new \
power state, and always logs out. Several pool members may be given; one that is not the master \
is followed to the master.";

const ACTIONS: &[MetaAction] = &[
    MetaAction {
        name: "on",
        attrs: " automatic=\"0\"",
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
        name: "status",
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
        name: "monitor",
        attrs: "",
    },
    MetaAction {
        name: "metadata",
        attrs: "",
    },
    MetaAction {
        name: "manpage",
        attrs: "",
    },
    MetaAction {
        name: "validate-all",
        attrs: "",
    },
];

const MAN_ACTIONS: &[(&str, &str)] = &[
    (
        "off",
        "VM.hard_shutdown, then wait until the VM is Halted. A halted VM is left alone.",
    ),
    (
        "on",
        "VM.start, then wait until the VM is no longer Halted (retry_on more attempts).",
    ),
    (
        "reboot",
        "The default. Method cycle: VM.hard_reboot of a running or paused VM, VM.start of a halted \
         one. Method onoff: off, then on. Success once the VM was off, even if it does not come back.",
    ),
    (
        "status",
        "Print Status: ON or Status: OFF; exit 0 when on (Running, Paused or Suspended), 2 when Halted.",
    ),
    (
        "list",
        "Print uuid,name of every VM that may be fenced (running or not; never templates, snapshots \
         or control domains), from one VM.get_all_records call.",
    ),
    ("list-status", "The same, with ON or OFF as a third field."),
    (
        "monitor",
        "Log in and out (and look the VM up, when one is given): checks address, certificate and \
         credentials.",
    ),
    ("metadata", "Print the agent's metadata XML."),
    ("manpage", "Print this manual page."),
    (
        "validate-all",
        "Check the parameters (and the CA file), without contacting the pool.",
    ),
];

/// The texts.
pub fn docs() -> Docs {
    Docs {
        shortdesc: "Fence agent for XenServer and XCP-ng over XenAPI",
        longdesc: LONGDESC,
        note: None,
        vendor_url: "https://xcp-ng.org",
        getopt: Getopt::Mixed,
        actions: ACTIONS,
        man_actions: MAN_ACTIONS,
        stdin_paragraph: "With no command-line argument the agent reads its parameters from standard input, \
                          one \\fIkey\\fB=\\fIvalue\\fR per line, as Pacemaker passes them. Lines starting with \
                          \\fB#\\fR and blank lines are skipped, the last value of a key wins, unknown keys are \
                          ignored (shown with \\fB\\-v\\fR), and \\fBnodename\\fR is accepted and ignored. \
                          Flags such as \\fBssl_insecure\\fR take 1/yes/on/true or 0/no/off/false.",
        stdin_only: "old name",
        help_exit: "Exit status: 0 success (status: VM on), 2 status: VM off, 1 failure.\n",
        man_exit: ".TP\n.B 0\nSuccess; for status, the VM is on.\n.TP\n.B 1\nFailure: bad parameters, no \
                   pool master reachable, login refused, no such VM or several with the name, a power \
                   change XenAPI refused or did not show within power_timeout.\n.TP\n.B 2\nFor status, \
                   the VM is off (Halted).",
        files: &[],
        see_also: ".BR fence_xvm (8),\n.BR stonith_admin (8),\n.BR pcs (8)",
    }
}

/// The `-V` line.
pub fn version() -> String {
    format!("{NAME} {} (vmfence)\n", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::settings::Action;

    #[test]
    fn every_action_is_documented() {
        let meta: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
        let all: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(meta, all);
        let mut man: Vec<&str> = MAN_ACTIONS.iter().map(|a| a.0).collect();
        let mut all = all;
        man.sort_unstable();
        all.sort_unstable();
        assert_eq!(man, all);
    }
}
