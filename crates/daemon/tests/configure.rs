//! `fence_virtd -c` run as a real process with scripted answers on standard
//! input, on files in a temporary directory (never `/etc`). Every answer
//! list is in the order of the questions; an empty string takes the
//! default. The last test feeds a file written by the configurator to the
//! classic C `fence_virtd` in a network-namespace lab.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;
use vmfence_config::{load_config, BackendSettings, Family, ListenerSettings, NameMode, SerialMode};
use vmfence_proto::HashType;

const BIN: &str = env!("CARGO_BIN_EXE_fence_virtd");
/// No dialogue may take longer than this.
const LIMIT: Duration = Duration::from_secs(20);

/// The answers that take every default of a new multicast + libvirt
/// configuration, up to (not including) the final question.
const DEFAULTS: [&str; 11] = [
    "", // Listeners
    "", // Multicast address
    "", // Multicast port
    "", // Interface
    "", // Key file
    "", // hash
    "", // auth
    "", // Backend
    "", // Libvirt URI
    "", // Another libvirt URI
    "", // Add a group
];

/// A temporary directory with a private key in it.
struct Setup {
    dir: TempDir,
    key: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("fence_xvm.key");
        fs::write(&key, [0x5au8; 256]).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let key = key.display().to_string();
        Setup { dir, key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run `fence_virtd -c -f file` with `answers`, one per line.
fn configure(file: &Path, answers: &[&str]) -> Outcome {
    let mut input = answers.join("\n");
    input.push('\n');
    run(&["-c", "-f", file.to_str().unwrap()], input.as_bytes())
}

/// Run the binary with `args` and `stdin`; killed (by pid) and the test
/// failed if it outlives [`LIMIT`].
fn run(args: &[&str], stdin: &[u8]) -> Outcome {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // The process may stop reading early (and close the pipe): ignore that.
    let writer = thread::spawn(move || {
        let _ = w.write_all(&stdin);
    });
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let out = child.wait_with_output();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(LIMIT).is_err() {
        let _ = Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
        let _ = waiter.join();
        panic!("fence_virtd {args:?} ran longer than {LIMIT:?}");
    }
    let _ = writer.join();
    let out = waiter.join().unwrap().unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn check(file: &Path) -> Outcome {
    run(&["--check", "-f", file.to_str().unwrap()], b"")
}

fn with_yes(answers: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = answers.iter().map(|s| s.to_string()).collect();
    all.push("y".into());
    all
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Assert that `needles` occur in `haystack` in this order.
fn in_order(haystack: &str, needles: &[&str]) {
    let mut rest = haystack;
    for needle in needles {
        match rest.find(needle) {
            Some(i) => rest = &rest[i + needle.len()..],
            None => panic!("missing (in this order) {needle:?} in:\n{haystack}"),
        }
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn no_stray_files(dir: &Path, expected: usize) {
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), expected, "{names:?}");
}

#[test]
fn from_scratch_with_every_default() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let started = Instant::now();
    let r = configure(&file, &strs(&with_yes(&DEFAULTS)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.code, Some(0), "{r:#?}");
    in_order(
        &r.stdout,
        &[
            "does not exist yet: starting a new configuration.",
            "Listeners [multicast]: \n",
            "Multicast address [225.0.0.12]: \n",
            "Using family ipv4.",
            "Multicast port [1229]: \n",
            "Interface [none]: \n",
            "Key file [/etc/cluster/fence_xvm.key]: \n",
            "Weakest request signature accepted (none, sha1, sha256, sha512) [sha256]: \n",
            "Challenge-response hash (none, sha1, sha256, sha512) [sha256]: \n",
            "Backend (libvirt or cpg) [libvirt]: \n",
            "Libvirt URI [qemu:///system]: \n",
            "Another libvirt URI [done]: \n",
            "Add a group [y/N]? \n",
            "Configuration complete.",
            "=== Begin Configuration ===\n",
            "=== End Configuration ===\n",
            &format!("Write the above to {} [y/N]? y\n", file.display()),
            &format!("Wrote {}.", file.display()),
        ],
    );
    let expected = "fence_virtd {\n\tlistener = \"multicast\";\n\tbackend = \"libvirt\";\n}\n\n\
        listeners {\n\tmulticast {\n\t\tfamily = \"ipv4\";\n\t\taddress = \"225.0.0.12\";\n\t\tport = \"1229\";\n\
        \t\tkey_file = \"/etc/cluster/fence_xvm.key\";\n\t\thash = \"sha256\";\n\t\tauth = \"sha256\";\n\t}\n}\n\n\
        backends {\n\tlibvirt {\n\t\turi = \"qemu:///system\";\n\t}\n}\n";
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text, expected);
    assert!(r.stdout.contains(&format!(
        "=== Begin Configuration ===\n{expected}=== End Configuration ==="
    )));
    assert_eq!(mode(&file), 0o600);
    no_stray_files(setup.dir.path(), 2);

    let config = load_config(&file).unwrap();
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let [ListenerSettings::Multicast(m)] = config.listeners.as_slice() else {
        panic!("{:?}", config.listeners)
    };
    assert_eq!(
        (m.address.to_string(), m.port, m.family),
        ("225.0.0.12".into(), 1229, Family::Ipv4)
    );
    assert_eq!(m.interface, None);
    assert_eq!(m.auth.key_file.path, Path::new("/etc/cluster/fence_xvm.key"));
    assert_eq!((m.auth.hash, m.auth.auth), (HashType::Sha256, HashType::Sha256));
    assert_eq!(config.backend.uris(), ["qemu:///system"]);
    assert!(config.groups.is_empty());

    // With the key pointed at ours, `--check` accepts it too.
    fs::write(&file, text.replace("/etc/cluster/fence_xvm.key", &setup.key)).unwrap();
    let c = check(&file);
    assert_eq!(c.code, Some(0), "{c:#?}");
    assert!(c.stdout.ends_with("configuration OK\n"), "{c:#?}");
}

#[test]
fn multicast_and_tcp_over_ipv6_pass_the_check() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let answers = [
        "multicast, tcp",
        "ff05::3:1",
        "",
        "none",
        &setup.key,
        "",
        "",
        // tcp
        "::",
        "1230",
        "", // key file: the multicast one is offered
        "sha512",
        "",
        // backend
        "",
        "test:///default",
        "",
        "",
        "y",
    ];
    let r = configure(&file, &answers);
    assert_eq!(r.code, Some(0), "{r:#?}");
    in_order(
        &r.stdout,
        &[
            "Listeners [multicast]: multicast, tcp\n",
            "Multicast address [225.0.0.12]: ff05::3:1\n",
            "Using family ipv6.",
            "-- tcp listener (fence_virt -T) --",
            "TCP listen address [127.0.0.1]: ::\n",
            "Using family ipv6.",
            "TCP port [1229]: 1230\n",
            &format!("Key file [{}]: \n", setup.key),
            "several listeners in `listener` is a vmfence extension",
        ],
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("\tlistener = \"multicast,tcp\";\n"), "{text}");
    let config = load_config(&file).unwrap();
    let [ListenerSettings::Multicast(m), ListenerSettings::Tcp(t)] = config.listeners.as_slice() else {
        panic!("{:?}", config.listeners)
    };
    assert_eq!(
        (m.family, m.address.to_string(), m.port),
        (Family::Ipv6, "ff05::3:1".into(), 1229)
    );
    assert_eq!(
        (t.family, t.address.to_string(), t.port),
        (Family::Ipv6, "::".into(), 1230)
    );
    assert_eq!((t.auth.hash, t.auth.auth), (HashType::Sha512, HashType::Sha256));
    assert_eq!(t.auth.key_file.path, Path::new(&setup.key));
    // tcp `auth` keeps its default and is left out (the classic daemon
    // would read it as `hash`).
    assert_eq!(text.matches("auth = ").count(), 1, "{text}");
    let c = check(&file);
    assert_eq!(c.code, Some(0), "{c:#?}");
}

#[test]
fn serial_listener_saves_its_uri_and_groups_name_the_guest() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
    let answers = [
        "serial",
        "qemu+ssh://root@host1/system",
        "/run/vmfence-no-such-dir/fence",
        "vmchannel",
        "",
        "",
        "",
        // groups
        "y",
        "guests",
        uuid,
        "node2",
        "",
        "", // no clients: serial requesters are VM UUIDs
        "",
        "y",
    ];
    let r = configure(&file, &answers);
    assert_eq!(r.code, Some(0), "{r:#?}");
    in_order(
        &r.stdout,
        &[
            "Libvirt URI for guest events (none: libvirt's default) [qemu:///system]: qemu+ssh://root@host1/system\n",
            "Socket directory [none]: /run/vmfence-no-such-dir/fence\n",
            "Note: /run/vmfence-no-such-dir/fence does not exist yet",
            "Mode (serial or vmchannel) [serial]: vmchannel\n",
            "Group name [group1]: guests\n",
            &format!("VM [done]: {uuid}\n"),
            "VM [done]: node2\n",
            "Client [done]: \n",
            "Add another group [y/N]? \n",
        ],
    );
    assert!(!r.stdout.contains("Key file"), "serial has no key: {}", r.stdout);
    let config = load_config(&file).unwrap();
    let [ListenerSettings::Serial(s)] = config.listeners.as_slice() else {
        panic!("{:?}", config.listeners)
    };
    assert_eq!(s.uri.as_deref(), Some("qemu+ssh://root@host1/system"));
    assert_eq!(
        s.path.as_deref(),
        Some(Path::new("/run/vmfence-no-such-dir/fence"))
    );
    assert_eq!(s.mode, SerialMode::Vmchannel);
    assert_eq!(config.groups.len(), 1);
    assert_eq!(config.groups[0].name.as_deref(), Some("guests"));
    assert_eq!(config.groups[0].uuids, [uuid, "node2"]);
    assert!(config.groups[0].ips.is_empty());
    let c = check(&file);
    assert_eq!(c.code, Some(0), "{c:#?}");
}

#[test]
fn vsock_with_other_hashes_and_the_cpg_backend() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let answers = [
        "vsock", "4000", &setup.key, "sha512", "sha1", // listener
        "cpg", "", "", "", // backend, URI, no more, name mode
        "", "y",
    ];
    let r = configure(&file, &answers);
    assert_eq!(r.code, Some(0), "{r:#?}");
    in_order(
        &r.stdout,
        &[
            "vsock port [1229]: 4000\n",
            "Warning: auth sha1 is weak",
            "Backend (libvirt or cpg) [libvirt]: cpg\n",
            "VM naming mode (name or uuid) [uuid]: \n",
            // The validation of the result notes the classic reading of auth.
            "Configuration complete.",
            "`auth` sets the challenge-response hash of the vsock listener",
        ],
    );
    let config = load_config(&file).unwrap();
    let [ListenerSettings::Vsock(v)] = config.listeners.as_slice() else {
        panic!("{:?}", config.listeners)
    };
    assert_eq!(v.port, 4000);
    assert_eq!((v.auth.hash, v.auth.auth), (HashType::Sha512, HashType::Sha1));
    let BackendSettings::Cpg(cpg) = &config.backend else {
        panic!("{:?}", config.backend)
    };
    assert_eq!(
        (cpg.uris.as_slice(), cpg.name_mode),
        (&["qemu:///system".to_owned()][..], NameMode::Uuid)
    );
    let c = check(&file);
    assert_eq!(c.code, Some(0), "{c:#?}");
}

#[test]
fn groups_are_kept_and_added() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    fs::write(
        &file,
        format!(
            "fence_virtd {{ listener = \"tcp\"; backend = \"libvirt\"; }}\n\
             listeners {{ tcp {{ key_file = \"{}\"; }} }}\n\
             groups {{\n\tgroup {{ name = \"cluster1\"; ip = \"192.168.1.1\"; uuid = \"node1\"; }}\n}}\n",
            setup.key
        ),
    )
    .unwrap();
    let answers = [
        "",
        "",
        "",
        "",
        "",
        "", // tcp
        "",
        "",
        "", // backend
        "", // keep the groups
        "y",
        "web",
        "web1",
        "6695EB01-F6A4-8304-79AA-97F2502E193F",
        "",
        "2001:DB8::0001",
        "10.0.0.7",
        "3",
        "",
        "y",
        "",
        "",
        "", // a group with nothing in it is not added
        "n",
        "y",
    ];
    let r = configure(&file, &answers);
    assert_eq!(r.code, Some(0), "{r:#?}");
    in_order(
        &r.stdout,
        &[
            "  cluster1: VMs node1; clients 192.168.1.1\n",
            "Keep them [Y/n]? \n",
            "Add another group [y/N]? y\n",
            "Group name [group2]: web\n",
            "Client [done]: 2001:DB8::0001\n",
            "Group name [group3]: \n",
            "The group lists nothing; it is not added.",
            "Add another group [y/N]? n\n",
        ],
    );
    let config = load_config(&file).unwrap();
    let groups: Vec<(&str, &[String], &[String])> = config
        .groups
        .iter()
        .map(|g| (g.label.as_str(), g.uuids.as_slice(), g.ips.as_slice()))
        .collect();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert_eq!(
        groups[0],
        (
            "cluster1",
            &["node1".to_owned()][..],
            &["192.168.1.1".to_owned()][..]
        )
    );
    assert_eq!(groups[1].0, "web");
    assert_eq!(groups[1].1, ["web1", "6695EB01-F6A4-8304-79AA-97F2502E193F"]);
    // Written the way the daemon compares them.
    assert_eq!(groups[1].2, ["2001:db8::1", "10.0.0.7", "3"]);
}

#[test]
fn an_existing_file_keeps_what_is_not_asked_and_its_comments() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let original = format!(
        "# fence_virtd configuration of host1\n\
         # maintained by hand\n\
         \n\
         fence_virtd {{\n\
         \tlistener = \"multicast\";\n\
         \tbackend = \"libvirt\";\n\
         \tmodule_path = \"/usr/lib64/fence-virt\"; # plugin era\n\
         \tdebug = \"2\";\n\
         \tforeground = \"1\";\n\
         \twait_for_backend = \"1\";\n\
         }}\n\
         \n\
         listeners {{\n\
         \tmulticast {{\n\
         \t\tkey_file = \"{key}\";\n\
         \t\t# Needed on Fedora systems\n\
         \t\tinterface = \"lo\";\n\
         \t}}\n\
         \t# not used, kept for later\n\
         \ttcp {{ address = \"192.168.122.1\"; key_file = \"{key}\"; }}\n\
         }}\n\
         \n\
         backends {{\n\
         \tlibvirt {{ uri = \"test:///default\"; }}\n\
         \tlibvirt-qmf {{ host = \"h\"; }}\n\
         }}\n\
         \n\
         totem {{ version = \"2\"; }}\n",
        key = setup.key
    );
    fs::write(&file, &original).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let r = configure(&file, &strs(&with_yes(&DEFAULTS)));
    assert_eq!(r.code, Some(0), "{r:#?}");
    in_order(
        &r.stdout,
        &[
            "settings not asked about below are kept, and so are its comments.",
            "Interface [lo]: \n",
            &format!("Key file [{}]: \n", setup.key),
            "Libvirt URI [test:///default]: \n",
            &format!("Replace {} with the above [y/N]? y\n", file.display()),
        ],
    );
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(mode(&file), 0o600);
    in_order(
        &text,
        &[
            "# fence_virtd configuration of host1\n# maintained by hand\nfence_virtd {\n",
            "\tmodule_path = \"/usr/lib64/fence-virt\"; # plugin era\n",
            "\tdebug = \"2\";\n\tforeground = \"1\";\n\twait_for_backend = \"1\";\n",
            "\t\t# Needed on Fedora systems\n\t\tinterface = \"lo\";\n",
            "\t\tfamily = \"ipv4\";\n",
            "\t# not used, kept for later\n\ttcp {\n\t\taddress = \"192.168.122.1\";\n",
            "\tlibvirt-qmf {\n\t\thost = \"h\";\n\t}\n",
            "totem {\n\tversion = \"2\";\n}\n",
        ],
    );
    let config = load_config(&file).unwrap();
    assert_eq!(config.daemon.debug, 2);
    assert!(config.daemon.foreground && config.daemon.wait_for_init);
    assert_eq!(
        config.daemon.module_path.as_deref(),
        Some("/usr/lib64/fence-virt")
    );
    let [ListenerSettings::Multicast(m)] = config.listeners.as_slice() else {
        panic!("{:?}", config.listeners)
    };
    assert_eq!(m.interface.as_deref(), Some("lo"));
    assert_eq!(config.backend.uris(), ["test:///default"]);
    assert_eq!(check(&file).code, Some(0));

    // Running it again with every default changes nothing.
    let r = configure(&file, &strs(&with_yes(&DEFAULTS)));
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn bad_answers_are_explained_and_asked_again() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let answers = [
        "multicst",
        "bogus, tcp",
        "tcp, tcp",
        "multicast",
        "300.1.1.1",
        "10.0.0.1",
        "239.1.2.3",
        "0",
        "70000",
        "12a",
        "1300",
        "bad/name",
        "",
        "relative.key",
        &setup.key,
        "sha265",
        "",
        "",
        "libvrt",
        "",
        "not a uri",
        "",
        "",
        "",
        "maybe",
        "y",
    ];
    let r = configure(&file, &answers);
    assert_eq!(r.code, Some(0), "{r:#?}");
    in_order(
        &r.stdout,
        &[
            "Listeners [multicast]: multicst\nThere is no listener `multicst` (known: multicast, tcp, vsock, serial). Did you mean `multicast`?\n",
            "Listeners [multicast]: bogus, tcp\nThere is no listener `bogus` (known: multicast, tcp, vsock, serial).\n",
            "Listeners [multicast]: tcp, tcp\nThe listener `tcp` is listed twice.\n",
            "Multicast address [225.0.0.12]: 300.1.1.1\n`300.1.1.1` is not an IP address.\n",
            "Multicast address [225.0.0.12]: 10.0.0.1\n10.0.0.1 is not a multicast address",
            "Multicast port [1229]: 0\nPort 0 is out of range (1 to 65535).\n",
            "Multicast port [1229]: 70000\nPort 70000 is out of range (1 to 65535).\n",
            "Multicast port [1229]: 12a\nPort `12a` is not a number.\n",
            "Interface [none]: bad/name\n`bad/name` is not an interface name",
            "Key file [/etc/cluster/fence_xvm.key]: relative.key\n`relative.key` is not an absolute path",
            "[sha256]: sha265\n`sha265` is not a hash (none, sha1, sha256, sha512). Did you mean `sha256`?\n",
            "Backend (libvirt or cpg) [libvirt]: libvrt\nThere is no backend `libvrt` (known: libvirt, cpg). Did you mean `libvirt`?\n",
            "Libvirt URI [qemu:///system]: not a uri\n`not a uri` is not a libvirt URI",
            "[y/N]? maybe\nPlease answer y or n (not `maybe`).\n",
        ],
    );
    let config = load_config(&file).unwrap();
    let [ListenerSettings::Multicast(m)] = config.listeners.as_slice() else {
        panic!("{:?}", config.listeners)
    };
    assert_eq!((m.address.to_string(), m.port), ("239.1.2.3".into(), 1300));
}

#[test]
fn answering_no_leaves_the_file_untouched() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let original = "fence_virtd { listener = \"tcp\"; backend = \"libvirt\"; }\n";
    fs::write(&file, original).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(past)
        .unwrap();
    let mut answers = vec![""; 10];
    answers.push("n");
    let r = configure(&file, &answers);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(r
        .stdout
        .contains(&format!("Replace {} with the above [y/N]? n\n", file.display())));
    assert_eq!(
        r.stderr,
        format!("fence_virtd: {} not written; it is unchanged\n", file.display())
    );
    assert_eq!(fs::read(&file).unwrap(), original.as_bytes());
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), past);
    assert_eq!(mode(&file), 0o644);
    no_stray_files(setup.dir.path(), 2);
}

#[test]
fn end_of_input_at_once_writes_nothing() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let original = "fence_virtd { listener = \"multicast\"; backend = \"libvirt\"; }\n";
    fs::write(&file, original).unwrap();
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(past)
        .unwrap();
    let r = run(&["-c", "-f", file.to_str().unwrap()], b"");
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stdout.matches("(end of input").count(), 1, "{r:#?}");
    assert!(r.stdout.ends_with("with the above [y/N]? \n"), "{r:#?}");
    assert_eq!(fs::read(&file).unwrap(), original.as_bytes());
    assert_eq!(fs::metadata(&file).unwrap().modified().unwrap(), past);

    // No file: none is made.
    let new = setup.path("new.conf");
    let r = run(&["-c", "-f", new.to_str().unwrap()], b"");
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stderr, format!("fence_virtd: {} not written\n", new.display()));
    assert!(!new.exists());
    no_stray_files(setup.dir.path(), 2);
}

#[test]
fn a_missing_directory_is_refused_before_any_question() {
    let setup = Setup::new();
    let file = setup.path("no-such-dir/fence_virt.conf");
    let r = configure(&file, &["y"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        format!(
            "fence_virtd: cannot configure {}: the directory {} does not exist\n",
            file.display(),
            setup.path("no-such-dir").display()
        )
    );
}

#[test]
fn an_unreadable_file_offers_to_start_from_scratch() {
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let original = "fence_virtd { listener = multicast; }\n";
    fs::write(&file, original).unwrap();

    let r = configure(&file, &["n"]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    in_order(
        &r.stdout,
        &[
            &format!(
                "{}:1: syntax error: value of `listener` must be in double quotes",
                file.display()
            ),
            "Start from scratch [y/N]? n\n",
        ],
    );
    assert!(r.stderr.contains("not written; it is unchanged"), "{r:#?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), original);

    let mut answers = vec!["y"];
    answers.extend(DEFAULTS);
    answers.push("y");
    let r = configure(&file, &answers);
    assert_eq!(r.code, Some(0), "{r:#?}");
    assert!(r
        .stdout
        .contains(&format!("Replace {} with the above [y/N]? y\n", file.display())));
    load_config(&file).unwrap();
}

/// The classic daemon has no check mode: run it (foreground, in a network
/// namespace, libvirt test driver) on a file our configurator wrote, and
/// let the classic `fence_xvm` list the VMs through it.
#[test]
fn the_classic_daemon_runs_on_a_configured_file() {
    use vmfence_testlab::{agent_in, prerequisites, Lab, Need, Spawned, C_DAEMON, C_XVM, TEST_UUID, TEST_VM};

    if !prerequisites(&[Need::Lab, Need::CDaemon, Need::CAgents]) {
        return;
    }
    let setup = Setup::new();
    let file = setup.path("fence_virt.conf");
    let answers = [
        "multicast",
        "225.0.0.12",
        "1229",
        "fvbr0",
        &setup.key,
        "",
        "", // listener
        "libvirt",
        "test:///default",
        "", // backend
        "",
        "y",
    ];
    let r = configure(&file, &answers);
    assert_eq!(r.code, Some(0), "{r:#?}");

    let lab = Lab::with_subnet("vmfcfg", 1, 40);
    let pid_file = setup.path("fence_virtd.pid");
    let mut daemon = Spawned::start(
        &lab.host,
        "stdbuf",
        &[
            "-oL",
            "-eL",
            C_DAEMON,
            "-F",
            "-d",
            "1",
            "-f",
            file.to_str().unwrap(),
            "-p",
            pid_file.to_str().unwrap(),
        ],
    );
    // Ready when the multicast socket is bound.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.host, "ss", "-Hlun", "sport = :1229"])
            .output()
            .unwrap();
        if !out.stdout.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the classic fence_virtd did not start on our file:\n{}",
            daemon.output()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let r = agent_in(
        lab.guest(1),
        C_XVM,
        &["-k", &setup.key, "-o", "list", "-t", "5"],
        None,
        LIMIT,
    );
    assert_eq!(r.code, 0, "{r:#?}\n{}", daemon.output());
    assert_eq!(r.stdout, format!("{TEST_VM:<32} {TEST_UUID} on\n"));
}
