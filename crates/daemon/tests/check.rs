//! `fence_virtd --check` run as a real process on configurations and keys in
//! a temporary directory (never `/etc`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_fence_virtd");
const DEFAULT_KEY: &str = "/etc/cluster/fence_xvm.key";

/// A temporary directory with a private key file in it.
struct Setup {
    dir: TempDir,
    key: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("fence_xvm.key");
        fs::write(&key, [0xa5u8; 512]).unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        Setup { dir, key }
    }

    /// Write a configuration, with the default key path pointing at our key.
    fn config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, text.replace(DEFAULT_KEY, &self.key.display().to_string())).unwrap();
        path
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN).args(args).output().unwrap();
    Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn check(config: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["-f", config.to_str().unwrap(), "--check"];
    args.extend_from_slice(extra);
    run(&args)
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/tests/data")
        .join(name);
    fs::read_to_string(path).unwrap()
}

#[test]
fn every_example_config_passes_the_check() {
    let setup = Setup::new();
    let key = setup.key.display().to_string();
    for name in [
        "rhel8-tutorial.conf",
        "guest-fencing-wiki.conf",
        "manpage-groups.conf",
        "upstream-example.conf",
    ] {
        let config = setup.config(name, &example(name));
        let r = check(&config, &[]);
        assert_eq!(r.code, Some(0), "{name}:\n{}\n{}", r.stdout, r.stderr);
        assert!(r
            .stdout
            .contains("listener multicast:\n  family: ipv4\n  address: 225.0.0.12\n  port: 1229\n"));
        assert!(
            r.stdout
                .contains("  hash: sha256 (weakest request signature accepted)\n"),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("  auth: sha256 (challenge-response)\n"));
        assert!(
            r.stdout.contains(&format!(
                "  key file: {key} (512 key bytes, file mode 0600, owner uid "
            )),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.lines().last().unwrap().starts_with("configuration OK"),
            "{}",
            r.stdout
        );
        assert!(!r.stderr.contains("error"), "{}", r.stderr);
    }
}

#[test]
fn the_check_prints_backend_groups_and_diagnostics() {
    let setup = Setup::new();
    let config = setup.config("m.conf", &example("manpage-groups.conf"));
    let r = check(&config, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("backend cpg:\n  uri: (libvirt default)\n  name_mode: name\n"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(
        "group cluster1:\n  uuid: 44179d3f-6c63-474f-a212-20c8b4b25b16, 1ce02c4b-dfa1-42cb-b5b1-f0b1091ece60, \
         node1, node2\n  ip: 192.168.1.1, 192.168.1.2\n"
    ));
    assert!(
        r.stdout
            .ends_with("configuration OK (2 warnings or notes on standard error)\n"),
        "{}",
        r.stdout
    );
    let file = config.display();
    assert!(
        r.stderr
            .contains(&format!("{file}:3: warning: backend `cpg` has no `uri`")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains(&format!(
        "{file}:15: note: backends/libvirt is checked but not used"
    )));

    let config = setup.config("r.conf", &example("rhel8-tutorial.conf"));
    let r = check(&config, &["-d", "3", "-w"]);
    assert!(
        r.stdout
            .contains("  debug: 3 (from -d)\n  foreground: no\n  wait_for_init: yes\n"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("  module_path: /usr/lib64/fence-virt (ignored)\n"));
    assert!(r.stdout.contains("  interface: virbr0\n"));
    assert!(r.stdout.contains("backend libvirt:\n  uri: qemu:///system\n"));
    assert!(r.stdout.contains("groups: none (no restriction"));
}

#[test]
fn syntax_error_names_file_and_line() {
    let setup = Setup::new();
    let config = setup.config(
        "bad.conf",
        "fence_virtd {\n\tlistener = \"tcp\"\n\tbackend = \"libvirt\";\n}\n",
    );
    let r = check(&config, &[]);
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.is_empty());
    let file = config.display();
    assert_eq!(
        r.stderr,
        format!(
            "{file}:2: syntax error: missing `;` after the value of `listener` (found `backend`)\n\
             fence_virtd: {file}: configuration rejected (1 error)\n"
        )
    );
}

#[test]
fn unknown_key_names_file_line_and_suggestion() {
    let setup = Setup::new();
    let text = example("upstream-example.conf").replace("address = ", "adress = ");
    let config = setup.config("typo.conf", &text);
    let r = check(&config, &[]);
    assert_eq!(r.code, Some(1));
    let file = config.display();
    assert!(
        r.stderr.contains(&format!(
            "{file}:9: unknown key `adress` in listeners/multicast (did you mean `address`?)\n"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.ends_with(&format!(
        "fence_virtd: {file}: configuration rejected (1 error)\n"
    )));
}

#[test]
fn several_errors_are_all_reported() {
    let setup = Setup::new();
    let config = setup.config(
        "many.conf",
        "fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"libvrt\";\n}\nlisteners { tcp { port = \"0\"; } }\n",
    );
    let r = check(&config, &[]);
    assert_eq!(r.code, Some(1));
    let file = config.display();
    assert!(
        r.stderr.contains(&format!("{file}:3: unknown backend `libvrt`")),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains(&format!("{file}:5: port 0 is out of range (1 to 65535)")));
    assert!(r.stderr.contains("configuration rejected (2 errors)"));
}

#[test]
fn missing_key_file_is_an_error_not_a_fallback() {
    let setup = Setup::new();
    let config = setup.config("k.conf", &example("rhel8-tutorial.conf"));
    fs::remove_file(&setup.key).unwrap();
    let r = check(&config, &[]);
    assert_eq!(r.code, Some(1));
    assert!(r.stdout.is_empty());
    let (file, key) = (config.display(), setup.key.display());
    assert!(
        r.stderr.contains(&format!(
            "{file}:14: listener multicast: key file {key} does not exist\n"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.ends_with(&format!(
        "fence_virtd: {file}: key file check failed (1 problem)\n"
    )));
}

#[test]
fn unusable_key_files_are_refused() {
    let setup = Setup::new();
    let config = setup.config("k.conf", &example("rhel8-tutorial.conf"));
    // Empty: no silent downgrade to "no authentication".
    fs::write(&setup.key, b"").unwrap();
    let r = check(&config, &[]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr
            .contains("is empty; refusing to run without authentication"),
        "{}",
        r.stderr
    );
    // A directory: the classic daemon's fail-open case.
    fs::remove_file(&setup.key).unwrap();
    fs::create_dir(&setup.key).unwrap();
    let r = check(&config, &[]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("is a directory, not a file"), "{}", r.stderr);
}

#[test]
fn world_readable_key_is_refused_unless_allowed() {
    let setup = Setup::new();
    let config = setup.config("k.conf", &example("rhel8-tutorial.conf"));
    fs::set_permissions(&setup.key, fs::Permissions::from_mode(0o644)).unwrap();
    let key = setup.key.display();
    let warning = format!(
        "warning: key file {key} is readable by group, readable by others (mode 0644); run chmod 600 {key}\n"
    );

    let r = check(&config, &[]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains(&warning), "{}", r.stderr);
    assert!(
        r.stderr.contains("pass --allow-insecure-key to use it anyway"),
        "{}",
        r.stderr
    );

    let r = check(&config, &["--allow-insecure-key"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains(&warning));
    assert!(r.stdout.contains("file mode 0644"));
    // Nothing was chmod-ed.
    assert_eq!(
        fs::metadata(&setup.key).unwrap().permissions().mode() & 0o777,
        0o644
    );
}

#[test]
fn serial_needs_no_key_and_unauthenticated_listeners_load_none() {
    let setup = Setup::new();
    let config = setup.config(
        "s.conf",
        "fence_virtd { listener = \"serial,tcp\"; backend = \"libvirt\"; }\n\
         listeners {\n\tserial { path = \"/run/fence\"; }\n\
         \ttcp { key_file = \"/nonexistent/key\"; hash = \"none\"; auth = \"none\"; }\n}\n\
         backends { libvirt { uri = \"test:///default\"; } }\n\
         groups { group { uuid = \"vm1\"; } }\n",
    );
    let r = check(&config, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("listener serial:\n  mode: serial\n  path: /run/fence\n"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("  key file: /nonexistent/key (not used: hash and auth are none)\n"));
    assert!(r
        .stderr
        .contains("warning: the tcp listener accepts requests without any authentication"));
    assert!(r
        .stderr
        .contains("note: several listeners in `listener` is a vmfence extension"));
}

#[test]
fn a_missing_configuration_file() {
    let setup = Setup::new();
    let missing = setup.dir.path().join("nope.conf");
    let r = check(&missing, &[]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.starts_with(&format!(
        "{}: cannot read the configuration file:",
        missing.display()
    )));
}

#[test]
fn help_list_usage_errors_and_unimplemented_modes() {
    let r = run(&["-h"]);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.starts_with("Usage: fence_virtd [options]\n"));
    assert!(r.stdout.contains("--check"));

    let r = run(&["-l"]);
    assert_eq!(r.code, Some(0));
    assert_eq!(
        r.stdout,
        "Available backends:\n    libvirt\n    cpg (configuration is checked; running it is not available yet)\nAvailable listeners:\n    multicast\n    tcp\n    vsock\n    serial\n"
    );

    let r = run(&["-q"]);
    assert_eq!(r.code, Some(2));
    assert_eq!(
        r.stderr,
        "fence_virtd: unknown option `-q`\nTry 'fence_virtd -h' for help.\n"
    );

    // Daemon mode reports a listener it cannot bind and exits 1 before
    // doing anything. (The interface does not exist, so nothing is joined:
    // a test must never run a multicast listener in the root namespace.)
    let setup = Setup::new();
    let text = example("rhel8-tutorial.conf").replace("virbr0", "vmfence-noif0");
    let config = setup.config("r.conf", &text);
    let pid = setup.dir.path().join("pid");
    let r = run(&["-F", "-f", config.to_str().unwrap(), "-p", pid.to_str().unwrap()]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("cannot listen") && r.stderr.contains("no network interface named 'vmfence-noif0'"),
        "{}",
        r.stderr
    );
    assert!(!pid.exists(), "no pid file is left behind");
}
