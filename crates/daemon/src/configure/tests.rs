//! The whole dialogue in memory (the binary is tested in
//! `tests/configure.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;

use vmfence_config::{load_config, ListenerSettings};

use super::*;

/// Run the dialogue on `file` with `answers` (one per line); the transcript
/// and the outcome.
fn dialogue(file: &Path, answers: &[&str]) -> (String, Result<(), ConfigureError>) {
    let mut input = answers.join("\n");
    input.push('\n');
    let mut out = Vec::new();
    let result = configure(file, input.as_bytes(), &mut out, true);
    (String::from_utf8(out).unwrap(), result)
}

#[test]
fn end_of_input_never_loops_even_when_the_file_holds_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.conf");
    let text = "fence_virtd { listener = \"multicst\"; backend = \"libvirtx\"; }\n\
                listeners { multicast { address = \"10.0.0.1\"; port = \"0\"; hash = \"md5\"; } }\n";
    fs::write(&file, text).unwrap();
    let (t, r) = dialogue(&file, &[]);
    assert!(
        matches!(r, Err(ConfigureError::NotWritten { existed: true, .. })),
        "{r:?}\n{t}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
    // The bad values were reported and not offered as defaults.
    assert!(t.contains("Listeners [multicast]:"), "{t}");
    assert!(t.contains("Multicast address [225.0.0.12]:"), "{t}");
    assert!(t.contains("Multicast port [1229]:"), "{t}");
    assert!(t.contains("(The file's listeners/multicast/port is not offered as the default: Port 0 is out of range (1 to 65535).)"), "{t}");
    assert!(t.contains("Backend (libvirt or cpg) [libvirt]:"), "{t}");
    // The result would have been valid: the defaults replaced every bad value.
    assert!(t.contains("Configuration complete."), "{t}");
}

#[test]
fn uris_keep_their_order_and_are_renumbered_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.conf");
    fs::write(
        &file,
        "fence_virtd { listener = \"tcp\"; backend = \"libvirt\"; }\n\
         backends { libvirt { uri3 = \"test:///c\"; uri = \"test:///a\"; uri0 = \"test:///b\"; } }\n",
    )
    .unwrap();
    let answers = [
        "",
        "",
        "",
        "/k",
        "",
        "", // listeners, tcp address, port, key, hash, auth
        "",
        "", // backend, first URI
        "", // keep the others
        "test:///d",
        "", // one more
        "", // no group
        "y",
    ];
    let (t, r) = dialogue(&file, &answers);
    r.unwrap();
    assert!(t.contains("Libvirt URI [test:///a]:"), "{t}");
    let config = load_config(&file).unwrap();
    assert_eq!(
        config.backend.uris(),
        ["test:///a", "test:///b", "test:///c", "test:///d"]
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("uri = \"test:///a\";\n\t\turi1 = \"test:///b\";\n\t\turi2 = \"test:///c\";\n\t\turi3 = \"test:///d\";"), "{text}");
    let ListenerSettings::Tcp(tcp) = &config.listeners[0] else {
        panic!()
    };
    assert_eq!(tcp.address.to_string(), "127.0.0.1");
}

#[test]
fn removing_the_groups_drops_their_block_and_comments() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.conf");
    fs::write(
        &file,
        "fence_virtd { listener = \"vsock\"; backend = \"libvirt\"; }\n\
         # the groups\n\
         groups {\n\t# first group\n\tgroup { name = \"g\"; ip = \"3\"; uuid = \"vm1\"; }\n}\n\
         # tail\n",
    )
    .unwrap();
    let answers = [
        "", "", "/k", "", "", // listeners, vsock port, key, hash, auth
        "", "", "",  // backend, uri, no more
        "n", // do not keep the groups
        "",  // add none
        "y",
    ];
    let (t, r) = dialogue(&file, &answers);
    r.unwrap();
    assert!(t.contains("  g: VMs vm1; clients 3\nKeep them [Y/n]? n\n"), "{t}");
    let text = fs::read_to_string(&file).unwrap();
    assert!(!text.contains("group"), "{text}");
    assert!(text.ends_with("\n}\n\n# tail\n"), "{text}");
    assert!(load_config(&file).unwrap().groups.is_empty());
}

#[test]
fn an_invalid_result_is_refused_with_its_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.conf");
    // A misspelt key the dialogue does not ask about survives the answers.
    let text = "fence_virtd { listener = \"tcp\"; backend = \"libvirt\"; debgu = \"1\"; }\n";
    fs::write(&file, text).unwrap();
    let answers = ["", "", "", "/k", "", "", "", "", "", "", "y"];
    let (t, r) = dialogue(&file, &answers);
    assert!(
        matches!(r, Err(ConfigureError::Invalid { count: 1, .. })),
        "{r:?}\n{t}"
    );
    assert!(t.contains("The file has problems"), "{t}");
    assert!(t.contains("The resulting configuration is not valid:"), "{t}");
    assert!(
        t.contains("unknown key `debgu` in fence_virtd (did you mean `debug`?)"),
        "{t}"
    );
    assert!(!t.contains("Replace"), "{t}");
    assert_eq!(fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn numbered_uri_keys() {
    assert_eq!(uri_number("uri"), None);
    assert_eq!(uri_number("URI7"), Some(7));
    assert_eq!(uri_number("uri0"), Some(0));
    assert_eq!(uri_number("urix"), None);
    assert_eq!(uri_number("ur\u{e9}1"), None);
    assert_eq!(uri_number("uri99999999999999999999999"), Some(u64::MAX));
}

#[test]
fn a_serial_listener_without_groups_asks_whether_to_open_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.conf");
    let answers = [
        "serial", "", "", "", // uri, directory, mode
        "", "", "",  // backend
        "",  // no group
        "y", // every guest may fence every VM
        "y",
    ];
    let (t, r) = dialogue(&file, &answers);
    r.unwrap();
    assert!(t.contains("Let every guest fence every VM [y/N]? y\n"), "{t}");
    let config = load_config(&file).unwrap();
    let [ListenerSettings::Serial(serial)] = config.listeners.as_slice() else {
        panic!()
    };
    assert!(serial.unrestricted);
    assert_eq!(serial.uri.as_deref(), Some("qemu:///system"));

    // Again, now closing it: the default is the file's setting.
    let answers = ["", "", "", "", "", "", "", "", "n", "y"];
    let (t, r) = dialogue(&file, &answers);
    r.unwrap();
    assert!(t.contains("Let every guest fence every VM [Y/n]? n\n"), "{t}");
    let config = load_config(&file).unwrap();
    let [ListenerSettings::Serial(serial)] = config.listeners.as_slice() else {
        panic!()
    };
    assert!(!serial.unrestricted);
    assert!(!fs::read_to_string(&file).unwrap().contains("unrestricted"));
}

#[test]
fn a_file_value_that_could_not_be_answered_is_not_offered() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.conf");
    fs::write(
        &file,
        "fence_virtd { listener = \"vsock\"; backend = \"libvirt\"; }\n\
         listeners { vsock { key_file = \"/a\nb\"; } }\n",
    )
    .unwrap();
    let (t, r) = dialogue(&file, &[]);
    assert!(matches!(r, Err(ConfigureError::NotWritten { .. })), "{r:?}\n{t}");
    assert!(t.contains("Key file [/etc/cluster/fence_xvm.key]:"), "{t}");
}
