//! The real binaries, without any network: help, version, metadata (checked
//! with xmllint against fence-agents' metadata.rng), man page,
//! validate-all, argument errors and their exit codes, stdin mode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const XVM: &str = env!("CARGO_BIN_EXE_fence_xvm");
const VIRT: &str = env!("CARGO_BIN_EXE_fence_virt");
const RNG: &str = "/usr/share/cluster/relaxng/metadata.rng";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn agent(bin: &str, args: &[&str], stdin: Option<&str>) -> Out {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut w = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            // With arguments the agent never reads standard input and may
            // have exited already.
            if let Err(e) = w.write_all(s.as_bytes()) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
            }
        }
    }
    let o = child.wait_with_output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

#[test]
fn metadata_validates_against_fence_agents_rng() {
    let have_xmllint = Command::new("xmllint").arg("--version").output().is_ok();
    if !have_xmllint || !Path::new(RNG).exists() {
        let msg =
            "metadata check needs xmllint (libxml2-utils) and fence-agents' metadata.rng (fence-agents)";
        assert!(!in_ci(), "{msg}; CI is set, not skipping");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (bin, args, stdin) in [
        (XVM, &["-o", "metadata"][..], None),
        (VIRT, &["-o", "metadata"][..], None),
        (XVM, &[][..], Some("action=metadata\n")),
        (VIRT, &[][..], Some("action=meta-data\n")),
    ] {
        let o = agent(bin, args, stdin);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let f = dir.path().join("m.xml");
        std::fs::write(&f, &o.stdout).unwrap();
        let v = Command::new("xmllint")
            .args(["--noout", "--relaxng", RNG])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "{bin}: {}\n{}",
            String::from_utf8_lossy(&v.stderr),
            o.stdout
        );
    }
}

/// name → (getopt, content type, default, required, deprecated, obsoletes)
type Params = BTreeMap<String, [String; 6]>;

fn attr(tag: &str, name: &str) -> String {
    let pat = format!("{name}=\"");
    tag.split(&pat)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or("")
        .to_owned()
}

fn params_and_actions(xml: &str) -> (Params, Vec<String>) {
    let mut params = Params::new();
    let mut actions = Vec::new();
    let mut cur: Option<(String, [String; 6])> = None;
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<parameter ") {
            let mut v: [String; 6] = Default::default();
            v[3] = attr(line, "required");
            v[4] = attr(line, "deprecated");
            v[5] = attr(line, "obsoletes");
            cur = Some((attr(line, "name"), v));
        } else if line.starts_with("<getopt") {
            cur.as_mut().unwrap().1[0] = attr(line, "mixed");
        } else if line.starts_with("<content") {
            let c = cur.as_mut().unwrap();
            c.1[1] = attr(line, "type");
            c.1[2] = attr(line, "default");
        } else if line.starts_with("</parameter>") {
            let (k, v) = cur.take().unwrap();
            params.insert(k, v);
        } else if line.starts_with("<action ") {
            actions.push(attr(line, "name"));
        }
    }
    actions.sort();
    (params, actions)
}

/// The parameters and actions of the classic agents' metadata (spec §5.5
/// and §5.6), as data: our metadata must offer exactly the same set.
fn classic(bin: &str) -> (Params, Vec<String>) {
    let p =
        |g: &str, t: &str, d: &str, r: &str, dep: &str, obs: &str| [g, t, d, r, dep, obs].map(str::to_owned);
    let mut m = Params::new();
    m.insert("debug".into(), p("-d", "boolean", "", "0", "", ""));
    m.insert("ipport".into(), p("-p", "string", "1229", "0", "", ""));
    m.insert("auth".into(), p("-C", "string", "sha256", "0", "", ""));
    m.insert("hash".into(), p("-c", "string", "sha256", "0", "", ""));
    m.insert(
        "key_file".into(),
        p("-k", "string", "/etc/cluster/fence_xvm.key", "0", "", ""),
    );
    m.insert("plug".into(), p("-n", "string", "", "1", "", "port"));
    m.insert("port".into(), p("-H", "string", "", "1", "1", ""));
    m.insert("action".into(), p("-o", "string", "reboot", "0", "", ""));
    m.insert("timeout".into(), p("-t", "string", "30", "0", "", ""));
    m.insert("delay".into(), p("-w", "string", "0", "0", "", ""));
    m.insert("domain".into(), p("", "string", "", "0", "1", ""));
    if bin == XVM {
        m.insert("ip_family".into(), p("-i", "string", "auto", "0", "", ""));
        m.insert("multicast_address".into(), p("-a", "string", "", "0", "", ""));
        m.insert("retrans".into(), p("-r", "string", "20", "0", "", ""));
        m.insert("use_uuid".into(), p("-u", "string", "0", "0", "", ""));
    } else {
        // The classic metadata says default="/dev/ttyS1", but without the
        // option the classic agent uses VMChannel (spec §7.3 item 2): ours
        // advertises no default.
        m.insert("serial_device".into(), p("-D", "string", "", "0", "", ""));
        m.insert(
            "serial_params".into(),
            p("-P", "string", "115200,8N1", "0", "", ""),
        );
        m.insert(
            "channel_address".into(),
            p("-A", "string", "10.0.2.179", "0", "", ""),
        );
        m.insert("ipaddr".into(), p("-T", "string", "127.0.0.1", "0", "", ""));
        m.insert("vsock".into(), p("-S", "integer", "2", "0", "", ""));
    }
    let mut actions: Vec<String> = [
        "null",
        "on",
        "off",
        "reboot",
        "metadata",
        "status",
        "monitor",
        "list",
        "list-status",
        "validate-all",
    ]
    .map(str::to_owned)
    .into();
    actions.sort();
    (m, actions)
}

#[test]
fn metadata_offers_the_classic_parameters_defaults_and_actions() {
    for bin in [XVM, VIRT] {
        let o = agent(bin, &["-o", "metadata"], None);
        assert_eq!(o.code, 0);
        let ours = params_and_actions(&o.stdout);
        let want = classic(bin);
        assert_eq!(ours.0, want.0, "{bin} parameters");
        assert_eq!(ours.1, want.1, "{bin} actions");
        let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
        assert!(o.stdout.contains(&format!("<resource-agent name=\"{name}\"")));
    }
}

#[test]
fn help_version_and_manpage() {
    for bin in [XVM, VIRT] {
        for flag in ["-h", "-?", "--help"] {
            let o = agent(bin, &[flag], None);
            assert_eq!(o.code, 0);
            assert!(o.stdout.starts_with("usage: fence_"), "{}", o.stdout);
            assert!(o.stdout.contains("-o <action>"));
            assert!(o.stdout.contains("plug=<domain>"));
            assert!(o.stderr.is_empty());
        }
        let o = agent(bin, &["-V"], None);
        assert_eq!(o.code, 0);
        assert!(o.stdout.contains("1.9.0"));
        let o = agent(bin, &["--manpage"], None);
        assert_eq!(o.code, 0);
        assert!(o.stdout.starts_with(".TH FENCE_"));
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH ACTIONS",
            ".SH EXIT STATUS",
        ] {
            assert!(o.stdout.contains(section), "{section}");
        }
    }
    let x = agent(XVM, &["-h"], None).stdout;
    assert!(x.contains("-i <family>") && !x.contains("-T <address>"));
    let v = agent(VIRT, &["-h"], None).stdout;
    assert!(v.contains("-T <address>") && !v.contains("-i <family>"));
    // man renders it, when installed.
    if Command::new("man").arg("--version").output().is_ok() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("fence_xvm.8");
        std::fs::write(&f, agent(XVM, &["--manpage"], None).stdout).unwrap();
        let o = Command::new("man")
            .arg("-l")
            .arg(&f)
            .env("MANWIDTH", "80")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("multicast-address"), "{text}");
    }
}

#[test]
fn argument_errors_exit_1_with_a_message_on_stderr() {
    for (bin, args, needle) in [
        (XVM, &["-o", "off"][..], "no virtual machine given"),
        (XVM, &["-M"][..], "unknown option '-M'"),
        (XVM, &["-T", "1.2.3.4"][..], "unknown option '-T'"),
        (VIRT, &["-u"][..], "unknown option '-u'"),
        (XVM, &["-o", "fence", "-n", "x"][..], "invalid value 'fence'"),
        (XVM, &["-t", "0", "-n", "x"][..], "-t/timeout"),
        (XVM, &["-n", &"v".repeat(64)][..], "63"),
        (
            XVM,
            &["-o", "list", "-i", "ipv6", "-a", "225.0.0.12"][..],
            "not an IPv6 address",
        ),
        (XVM, &["stray"][..], "unexpected argument"),
    ] {
        let o = agent(bin, args, None);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(o.stderr.contains(needle), "{args:?}: {}", o.stderr);
    }
}

#[test]
fn key_file_rules() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    let m = missing.to_str().unwrap();
    let o = agent(XVM, &["-o", "validate-all", "-n", "vm", "-k", m], None);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("cannot read key file") && o.stderr.contains(m),
        "{}",
        o.stderr
    );
    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, b"").unwrap();
    let o = agent(XVM, &["-o", "validate-all", "-k", empty.to_str().unwrap()], None);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("is empty"), "{}", o.stderr);
    // hash none alone still needs a key for auth.
    let o = agent(XVM, &["-o", "validate-all", "-c", "none", "-k", m], None);
    assert_eq!(o.code, 1);
    // Both none: no key needed.
    let o = agent(
        XVM,
        &["-o", "validate-all", "-c", "none", "-C", "none", "-k", m],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    // Metadata never needs the key.
    assert_eq!(agent(XVM, &["-o", "metadata", "-k", m], None).code, 0);
    let good = dir.path().join("good.key");
    std::fs::write(&good, b"secret\n").unwrap();
    let g = good.to_str().unwrap();
    let o = agent(
        XVM,
        &[],
        Some(&format!("action=validate-all\nport=vm\nkey_file={g}\n")),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.is_empty());
    // validate-all does not need a target.
    let o = agent(
        VIRT,
        &[],
        Some(&format!("action=validate-all\nipaddr=h\nkey_file={g}\n")),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn stdin_mode_and_notes() {
    let o = agent(XVM, &[], Some("action=list\nnosuchkey=1\nfoo bar\ntimeout=x\n"));
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("timeout"), "{}", o.stderr);
    // With arguments, stdin is not read.
    let o = agent(XVM, &["-o", "metadata"], Some("action=garbage\n"));
    assert_eq!(o.code, 0);
    // Unknown keys are noted at debug level only.
    let o = agent(XVM, &[], Some("action=metadata\nwhatever=1\n"));
    assert_eq!(o.code, 0);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
    let o = agent(XVM, &[], Some("debug=1\naction=metadata\nwhatever=1\n"));
    assert!(
        o.stderr.contains("ignoring unknown parameter 'whatever'"),
        "{}",
        o.stderr
    );
}

/// Transport failures that need no peer: a device that is missing or no
/// device, a refused VMChannel connection, bad serial settings, `-S 3`.
/// vsock is only ever validated here, never connected (the test machine's
/// CID 2 is a real host).
#[test]
fn fence_virt_transport_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing_key = dir.path().join("no.key");
    let nk = missing_key.to_str().unwrap();
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"x").unwrap();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let nodev = dir.path().join("ttyS9");
    for (args, needle) in [
        (
            &[
                "-o",
                "status",
                "-n",
                "vm",
                "-D",
                nodev.to_str().unwrap(),
                "-t",
                "2",
            ][..],
            "cannot open serial device",
        ),
        (
            &["-o", "status", "-n", "vm", "-D", plain.to_str().unwrap()][..],
            "not a character device",
        ),
        (
            &["-o", "status", "-n", "vm", "-A", "127.0.0.1", "-p", &closed_port][..],
            "cannot connect to the VMChannel address 127.0.0.1:",
        ),
        (
            &["-o", "status", "-n", "vm", "-D", "/dev/null", "-t", "2"][..],
            "closed the line",
        ),
        (&["-o", "validate-all", "-P", "300,8N1"][..], "-P/serial_params"),
        (&["-o", "validate-all", "-P", "9600,8X1"][..], "8N1"),
        (&["-o", "status", "-n", "vm", "-S", "3"][..], "-S3 or --vsock=3"),
        (&["-o", "validate-all", "-S1"][..], "CID"),
        // A missing key matters for the keyed transports only.
        (
            &["-o", "validate-all", "-S3", "-k", nk][..],
            "cannot read key file",
        ),
        (
            &["-o", "validate-all", "-T", "h", "-k", nk][..],
            "cannot read key file",
        ),
    ] {
        let o = agent(VIRT, args, None);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{args:?}");
        assert!(o.stderr.contains(needle), "{args:?}: {}", o.stderr);
    }
    // Serial and VMChannel carry no key: a missing key file is no error.
    for args in [
        &["-o", "validate-all", "-k", nk][..],
        &[
            "-o",
            "validate-all",
            "-D",
            "/dev/ttyS1",
            "-k",
            nk,
            "-P",
            "9600,7e2",
        ][..],
        &["-o", "validate-all", "-S3", "-c", "none", "-C", "none", "-k", nk][..],
    ] {
        let o = agent(VIRT, args, None);
        assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
    }
}

/// pcs, the tool users create the stonith resource with, reads our
/// metadata: it describes the agent and rejects options we do not declare.
/// pcs looks agents up in /usr/sbin, so our binary is bind-mounted over the
/// classic one in a private mount namespace (nothing changes outside it).
/// Optional: skipped when pcs, unshare or root is missing.
#[test]
fn pcs_reads_the_metadata() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let have = |p: &str| Path::new(p).exists();
    if !root || !have("/usr/sbin/pcs") || !have("/usr/bin/unshare") || !have("/usr/sbin/fence_virt") {
        eprintln!("SKIPPED: needs root, pcs, unshare and /usr/sbin/fence_virt to mount over");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    let empty = Command::new("cibadmin").arg("--empty").output().ok();
    let Some(empty) = empty.filter(|o| o.status.success()) else {
        eprintln!("SKIPPED: cibadmin --empty failed");
        return;
    };
    std::fs::write(&cib, empty.stdout).unwrap();
    for (bin, good, bad) in [
        (
            XVM,
            "ip_family=ipv4 multicast_address=225.0.0.12",
            "ipaddr=10.0.0.1",
        ),
        (VIRT, "ipaddr=10.0.0.1", "multicast_address=225.0.0.12"),
    ] {
        let name = Path::new(bin).file_name().unwrap().to_str().unwrap();
        let script = format!(
            "mount --bind {bin} /usr/sbin/fence_virt && mount --bind {bin} /usr/sbin/{name} && \
             pcs stonith describe {name} && \
             pcs -f {cib} stonith create f-{name} {name} plug=vm4 pcmk_host_list=node4 {good} && \
             ! pcs -f {cib} stonith create g-{name} {name} plug=vm4 {bad}",
            cib = cib.display()
        );
        let o = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{name}: {text}");
        assert!(text.contains("plug: Name or UUID"), "{text}");
        assert!(text.contains("invalid stonith option"), "{text}");
    }
}
