//! What a lab test needs, and the skip-or-fail rule: outside CI a missing
//! prerequisite skips the test with a printed reason; under `CI=true` it
//! fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The classic daemon (Debian fence-virtd).
pub const C_DAEMON: &str = "/usr/sbin/fence_virtd";
/// The classic multicast agent (Debian fence-virt; a symlink to `fence_virt`).
pub const C_XVM: &str = "/usr/sbin/fence_xvm";
/// The classic agent for the tcp, vsock and serial listeners.
pub const C_VIRT: &str = "/usr/sbin/fence_virt";

/// Whether we run under CI (`CI` set to something other than empty, `0`
/// or `false`).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// One prerequisite of a lab test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Root and iproute2: network namespaces.
    Lab,
    /// The classic `fence_virtd`.
    CDaemon,
    /// The classic `fence_xvm` and `fence_virt`.
    CAgents,
    /// A `python3` interpreter.
    Python,
    /// `socat` (Debian socat), e.g. to play a guest's serial port.
    Socat,
    /// The shared harness scripts (`fvclient.py`, `start-c-daemon.sh`).
    Harness,
    /// A real libvirtd and QEMU (Debian libvirt-daemon-system,
    /// libvirt-daemon-driver-qemu, qemu-system-x86) and the harness's
    /// `start-libvirtd.sh`.
    Qemu,
    /// corosync and Pacemaker (Debian corosync, pacemaker) with
    /// `stonith_admin`, for the end-to-end cluster test.
    Pacemaker,
    /// A file that a build should have made (e.g. our agents, which cargo
    /// builds only for `cargo test --workspace` or `cargo build`).
    Built(PathBuf),
}

/// Whether every one of `needs` is met. When not: under CI the test fails
/// (panic), otherwise it prints `SKIPPED: reason` and the caller returns.
pub fn prerequisites(needs: &[Need]) -> bool {
    let mut missing = Vec::new();
    for need in needs {
        match need {
            Need::Lab => {
                if !is_root() {
                    missing.push("root (network namespaces)".to_owned());
                }
                if !runs("ip", &["-V"]) {
                    missing.push("iproute2 (ip)".to_owned());
                }
                if !runs("ss", &["-V"]) {
                    missing.push("iproute2 (ss)".to_owned());
                }
            }
            Need::CDaemon => {
                if !Path::new(C_DAEMON).exists() {
                    missing.push(format!("{C_DAEMON} (Debian fence-virtd)"));
                }
            }
            Need::CAgents => {
                for p in [C_XVM, C_VIRT] {
                    if !Path::new(p).exists() {
                        missing.push(format!("{p} (Debian fence-virt)"));
                    }
                }
            }
            Need::Python => {
                if !runs(python(), &["-c", "pass"]) {
                    missing.push("python3".to_owned());
                }
            }
            Need::Socat => {
                if !runs("socat", &["-V"]) {
                    missing.push("socat (Debian socat)".to_owned());
                }
            }
            Need::Harness => {
                let dir = harness_dir();
                for f in ["fvclient.py", "start-c-daemon.sh"] {
                    if !dir.join(f).exists() {
                        missing.push(format!("{} (the shared test harness)", dir.join(f).display()));
                    }
                }
            }
            Need::Qemu => {
                for p in [
                    "/usr/sbin/libvirtd",
                    "/usr/sbin/virtlogd",
                    "/usr/bin/qemu-system-x86_64",
                ] {
                    if !Path::new(p).exists() {
                        missing.push(format!("{p} (scripts/install-deps.sh installs it)"));
                    }
                }
                let script = harness_dir().join("start-libvirtd.sh");
                if !script.exists() {
                    missing.push(format!("{} (the shared test harness)", script.display()));
                }
            }
            Need::Pacemaker => {
                for p in [
                    "/usr/sbin/corosync",
                    "/usr/sbin/pacemakerd",
                    "/usr/sbin/stonith_admin",
                ] {
                    if !Path::new(p).exists() {
                        missing.push(format!("{p} (scripts/install-deps.sh installs it)"));
                    }
                }
            }
            Need::Built(p) => {
                if !p.exists() {
                    missing.push(format!(
                        "{} (build it: cargo build --workspace, or run cargo test --workspace)",
                        p.display()
                    ));
                }
            }
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("lab test needs {}", missing.join(", "));
    assert!(!in_ci(), "{msg} (CI is set: not skipping)");
    eprintln!("SKIPPED: {msg}");
    false
}

/// The agent tests' original check: `"c-daemon"` needs the lab and the
/// classic daemon, anything else just the lab.
pub fn lab_prerequisites(what: &str) -> bool {
    if what == "c-daemon" {
        prerequisites(&[Need::Lab, Need::CDaemon])
    } else {
        prerequisites(&[Need::Lab])
    }
}

/// The shared harness directory: `$VMFENCE_HARNESS`, else `shared/harness`
/// next to the repository (`<repo>/../shared/harness`).
pub fn harness_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("VMFENCE_HARNESS") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/harness")
}

/// The Python interpreter to run: the system one when present (it starts in
/// a few milliseconds, unlike version-manager shims), else `python3`.
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
