//! Lookup semantics shared with the classic daemon (case-insensitive names,
//! last key wins, last block wins, list keys), the defaults, the multi-listener
//! extension and every warning and note.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv6Addr};
use std::path::Path;

use vmfence_config::{
    parse, parse_config, BackendSettings, Config, Family, ListenAddress, ListenerKind, ListenerSettings,
    NameMode, SerialMode, Severity, WarningKind,
};
use vmfence_proto::HashType;

fn config(text: &str) -> Config {
    match parse_config(text, Path::new("test.conf")) {
        Ok(c) => c,
        Err(e) => panic!("rejected:\n{e}"),
    }
}

fn warnings(config: &Config) -> Vec<(Option<u32>, WarningKind)> {
    config
        .warnings
        .iter()
        .map(|w| (w.at.line, w.kind.clone()))
        .collect()
}

fn kinds(config: &Config) -> Vec<ListenerKind> {
    config.listeners.iter().map(ListenerSettings::kind).collect()
}

#[test]
fn last_key_wins_with_a_warning() {
    let c = config(
        "fence_virtd {\n\
         \tlistener = \"tcp\";\n\
         \tlistener = \"multicast\";\n\
         \tbackend = \"libvirt\";\n\
         }\n",
    );
    assert_eq!(kinds(&c), [ListenerKind::Multicast]);
    assert_eq!(
        warnings(&c),
        vec![
            (
                Some(2),
                WarningKind::DuplicateKey {
                    key: "listener".into(),
                    place: "fence_virtd".into(),
                    used_line: 3
                }
            ),
            (Some(4), WarningKind::NoBackendUri { backend: "libvirt" }),
        ]
    );
    assert_eq!(
        c.warnings[0].to_string(),
        "test.conf:2: warning: `listener` in fence_virtd is set again on line 3; the last value wins and this one \
         is ignored"
    );
}

#[test]
fn names_and_words_are_case_insensitive() {
    let c = config(
        "FENCE_VIRTD {\n\
         \tListener = \"TCP\";\n\
         \tBACKEND = \"LibVirt\";\n\
         }\n\
         Listeners { Tcp { HASH = \"SHA512\"; Auth = \"Sha1\"; Family = \"IPv6\"; Port = \"99\"; } }\n\
         backends { LIBVIRT { URI = \"test:///default\"; } }\n",
    );
    let ListenerSettings::Tcp(tcp) = &c.listeners[0] else {
        panic!("tcp expected")
    };
    assert_eq!((tcp.auth.hash, tcp.auth.auth), (HashType::Sha512, HashType::Sha1));
    assert_eq!(tcp.family, Family::Ipv6);
    assert_eq!(tcp.address, ListenAddress::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(tcp.port, 99);
    assert_eq!(c.backend.uris(), ["test:///default"]);
}

#[test]
fn repeated_blocks_use_only_the_last_one() {
    let c = config(
        "fence_virtd {\n\
         \tlistener = \"tcp\";\n\
         \tbackend = \"libvirt\";\n\
         \tdebug = \"3\";\n\
         }\n\
         fence_virtd {\n\
         \tlistener = \"vsock\";\n\
         \tbackend = \"libvirt\";\n\
         }\n\
         listeners { vsock { port = \"1\"; } }\n\
         listeners { vsock { port = \"2\"; } }\n",
    );
    // Not merged: the debug of the first block is gone.
    assert_eq!(c.daemon.debug, 0);
    assert_eq!(c.daemon.at.line, Some(6));
    assert_eq!(kinds(&c), [ListenerKind::Vsock]);
    let ListenerSettings::Vsock(v) = &c.listeners[0] else {
        panic!("vsock expected")
    };
    assert_eq!(v.port, 2);
    let w = warnings(&c);
    assert!(w.contains(&(
        Some(1),
        WarningKind::DuplicateBlock {
            path: "fence_virtd".into(),
            used_line: 6
        }
    )));
    assert!(w.contains(&(
        Some(10),
        WarningKind::DuplicateBlock {
            path: "listeners".into(),
            used_line: 11
        }
    )));
    assert_eq!(
        c.warnings[0].to_string(),
        "test.conf:1: warning: block `fence_virtd` appears again on line 6; blocks are not merged: only the last \
         one is used and this one is ignored"
    );
}

#[test]
fn the_tree_lookup_matches_the_classic_paths() {
    let tree = parse(
        "groups { group { ip = \"a\"; } group = \"g\" { uuid = \"1\"; uuid = \"2\"; } }\n\
         backends { libvirt { uri = \"x\"; uri1 = \"y\"; } }\n",
    )
    .unwrap();
    assert_eq!(tree.get("groups/group[1]"), Some("g"));
    assert_eq!(tree.get("groups/group[1]/@uuid"), Some("2"));
    assert_eq!(tree.get("groups/group[1]/@uuid[2]"), Some("1"));
    assert_eq!(tree.get("groups/group[2]/@ip"), Some("a"));
    assert_eq!(tree.get("Backends/LIBVIRT/@URI1"), Some("y"));
}

const DAEMON_TCP: &str = "fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"libvirt\";\n}\n";

#[test]
fn defaults_when_blocks_are_absent() {
    let c = config(DAEMON_TCP);
    let ListenerSettings::Tcp(tcp) = &c.listeners[0] else {
        panic!("tcp expected")
    };
    assert_eq!(tcp.auth.key_file.path, Path::new("/etc/cluster/fence_xvm.key"));
    assert!(!tcp.auth.key_file.explicit);
    // Reported at the listener name when there is no block.
    assert_eq!(tcp.auth.key_file.at.line, Some(2));
    assert_eq!(
        (tcp.auth.hash, tcp.auth.auth),
        (HashType::Sha256, HashType::Sha256)
    );
    assert_eq!((tcp.family, tcp.port), (Family::Ipv4, 1229));
    assert_eq!(tcp.address.to_string(), "127.0.0.1");

    let c = config(
        "fence_virtd { listener = \"multicast\"; backend = \"libvirt\"; }\n\
         listeners { multicast { family = \"ipv6\"; } }\n",
    );
    let ListenerSettings::Multicast(m) = &c.listeners[0] else {
        panic!("multicast expected")
    };
    assert_eq!(m.address.to_string(), "ff05::3:1");

    let c = config("fence_virtd { listener = \"serial\"; backend = \"libvirt\"; }\n");
    let ListenerSettings::Serial(s) = &c.listeners[0] else {
        panic!("serial expected")
    };
    assert_eq!(
        (s.uri.as_deref(), s.path.as_deref(), s.mode),
        (None, None, SerialMode::Serial)
    );
    assert!(c.listeners[0].auth().is_none());

    let c = config("fence_virtd { listener = \"vsock\"; backend = \"libvirt\"; }\n");
    let ListenerSettings::Vsock(v) = &c.listeners[0] else {
        panic!("vsock expected")
    };
    assert_eq!(v.port, 1229);
}

#[test]
fn tcp_addresses_may_be_host_names() {
    let c = config(&format!(
        "{DAEMON_TCP}listeners {{ tcp {{ address = \"fence-host.example.com\"; }} }}\n"
    ));
    let ListenerSettings::Tcp(tcp) = &c.listeners[0] else {
        panic!("tcp expected")
    };
    assert_eq!(tcp.address, ListenAddress::Host("fence-host.example.com".into()));
}

#[test]
fn auth_is_the_challenge_hash_not_the_classic_bug() {
    let c = config(&format!(
        "{DAEMON_TCP}listeners {{\n\ttcp {{\n\t\tauth = \"sha512\";\n\t}}\n}}\n"
    ));
    let auth = c.listeners[0].auth().unwrap();
    // Classic fence_virtd would set hash = sha512 and keep auth = sha256.
    assert_eq!((auth.hash, auth.auth), (HashType::Sha256, HashType::Sha512));
    assert!(warnings(&c).contains(&(Some(7), WarningKind::AuthDiffersFromClassic { listener: "tcp" })));

    // When both daemons end up with the same values there is nothing to say.
    let c = config(&format!(
        "{DAEMON_TCP}listeners {{ tcp {{ auth = \"sha256\"; }} }}\n"
    ));
    assert!(c
        .warnings
        .iter()
        .all(|w| !matches!(w.kind, WarningKind::AuthDiffersFromClassic { .. })));
    // Multicast never had the bug.
    let c = config(
        "fence_virtd { listener = \"multicast\"; backend = \"libvirt\"; }\n\
         listeners { multicast { auth = \"sha1\"; } }\n",
    );
    assert_eq!(c.listeners[0].auth().unwrap().auth, HashType::Sha1);
    assert!(c
        .warnings
        .iter()
        .all(|w| !matches!(w.kind, WarningKind::AuthDiffersFromClassic { .. })));
}

#[test]
fn no_authentication_is_a_warning_and_needs_no_key() {
    let c = config(&format!(
        "{DAEMON_TCP}listeners {{ tcp {{ hash = \"none\"; auth = \"none\"; }} }}\n"
    ));
    let auth = c.listeners[0].auth().unwrap();
    assert!(!auth.needs_key());
    let w = c
        .warnings
        .iter()
        .find(|w| matches!(w.kind, WarningKind::NoAuthentication { .. }))
        .unwrap();
    assert_eq!(w.severity(), Severity::Warning);
    assert_eq!(
        w.to_string(),
        "test.conf:5: warning: the tcp listener accepts requests without any authentication (hash and auth are \
         both none)"
    );
}

#[test]
fn several_listeners_in_the_order_named() {
    let c = config(
        "fence_virtd {\n\
         \tlistener = \"tcp, multicast serial\";\n\
         \tbackend = \"libvirt\";\n\
         }\n\
         listeners {\n\
         \tvsock { port = \"5\"; }\n\
         \tmulticast { interface = \"lo\"; }\n\
         }\n\
         groups { group { uuid = \"vm1\"; } }\n",
    );
    assert_eq!(
        kinds(&c),
        [ListenerKind::Tcp, ListenerKind::Multicast, ListenerKind::Serial]
    );
    let ListenerSettings::Multicast(m) = &c.listeners[1] else {
        panic!("multicast expected")
    };
    assert_eq!(m.interface.as_deref(), Some("lo"));
    assert_eq!(
        warnings(&c),
        vec![
            (Some(2), WarningKind::ListenerList),
            (Some(3), WarningKind::NoBackendUri { backend: "libvirt" }),
            (Some(6), WarningKind::UnusedListenerBlock { name: "vsock" }),
        ]
    );
    assert_eq!(
        c.warnings[2].to_string(),
        "test.conf:6: note: listeners/vsock is checked but not run: `listener` in fence_virtd does not name it"
    );
}

#[test]
fn backend_uris_in_numeric_order() {
    let c = config(&format!(
        "{DAEMON_TCP}backends {{\n\tlibvirt {{\n\
         \t\turi2 = \"c\";\n\
         \t\turi = \"a\";\n\
         \t\turi1 = \"b\";\n\
         \t\turi10 = \"e\";\n\
         \t\turi0 = \"z\";\n\
         \t\tURI4 = \"d\";\n\
         \t}}\n}}\n"
    ));
    assert_eq!(c.backend.uris(), ["a", "z", "b", "c", "d", "e"]);
    assert_eq!(
        warnings(&c),
        vec![
            (Some(10), WarningKind::UriIgnoredByClassic { key: "uri10".into() }),
            (Some(11), WarningKind::UriIgnoredByClassic { key: "uri0".into() }),
            (Some(12), WarningKind::UriIgnoredByClassic { key: "URI4".into() }),
        ]
    );
}

#[test]
fn a_repeated_uri_takes_the_last_value() {
    let c = config(&format!(
        "{DAEMON_TCP}backends {{ libvirt {{ uri = \"a\"; uri = \"b\"; }} }}\n"
    ));
    assert_eq!(c.backend.uris(), ["b"]);
    assert!(matches!(c.warnings[0].kind, WarningKind::DuplicateKey { .. }));
}

#[test]
fn cpg_name_mode_and_its_legacy_place() {
    let c = config(
        "fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"cpg\";\n\tname_mode = \"uuid\";\n}\n\
         backends { cpg { uri = \"qemu:///system\"; } }\n",
    );
    let BackendSettings::Cpg(cpg) = &c.backend else {
        panic!("cpg expected")
    };
    assert_eq!(cpg.name_mode, NameMode::Uuid);
    assert_eq!(
        warnings(&c),
        vec![(Some(4), WarningKind::LegacyNameMode { overridden: false })]
    );

    let c = config(
        "fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"cpg\";\n\tname_mode = \"uuid\";\n}\n\
         backends { cpg { uri = \"qemu:///system\"; name_mode = \"name\"; } }\n",
    );
    let BackendSettings::Cpg(cpg) = &c.backend else {
        panic!("cpg expected")
    };
    assert_eq!(cpg.name_mode, NameMode::Name);
    assert_eq!(
        warnings(&c),
        vec![(Some(4), WarningKind::LegacyNameMode { overridden: true })]
    );
}

#[test]
fn daemon_flags_and_the_legacy_wait_for_backend() {
    let c = config(
        "fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"libvirt\";\n\
         \tdebug = \"4\";\n\tforeground = \"1\";\n\twait_for_backend = \"1\";\n}\n\
         backends { libvirt { uri = \"x\"; } }\n",
    );
    assert_eq!(
        (c.daemon.debug, c.daemon.foreground, c.daemon.wait_for_init),
        (4, true, true)
    );
    assert_eq!(
        warnings(&c),
        vec![(Some(6), WarningKind::LegacyWaitForBackend { overridden: false })]
    );

    let c = config(
        "fence_virtd {\n\tlistener = \"tcp\";\n\tbackend = \"libvirt\";\n\
         \twait_for_init = \"0\";\n\twait_for_backend = \"1\";\n}\n\
         backends { libvirt { uri = \"x\"; } }\n",
    );
    assert!(!c.daemon.wait_for_init);
}

#[test]
fn groups_labels_lists_and_empty_groups() {
    let c = config(&format!(
        "{DAEMON_TCP}backends {{ libvirt {{ uri = \"x\"; }} }}\n\
         groups {{\n\
         \tgroup {{ ip = \"10.0.0.1\"; ip = \"10.0.0.2\"; uuid = \"vm1\"; }}\n\
         \tgroup = \"by-value\" {{ uuid = \"vm2\"; }}\n\
         \tgroup {{ name = \"empty\"; }}\n\
         \tgroup {{ name = \"named\"; uuid = \"vm3\"; }}\n\
         }}\n"
    ));
    let labels: Vec<&str> = c.groups.iter().map(|g| g.label.as_str()).collect();
    // Unnamed groups are numbered from the end of the file, as the classic daemon does.
    assert_eq!(labels, ["unnamed-4", "by-value", "named"]);
    assert_eq!(c.groups[0].ips, ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(c.groups[0].name, None);
    assert_eq!(c.groups[1].name.as_deref(), Some("by-value"));
    assert_eq!(
        warnings(&c),
        vec![(
            Some(9),
            WarningKind::EmptyGroup {
                label: "empty".into(),
                ignored_by_classic: 2
            }
        )]
    );
    assert_eq!(
        c.warnings[0].to_string(),
        "test.conf:9: warning: group `empty` has no `uuid` and no `ip` and is skipped; classic fence_virtd stops \
         reading groups here and ignores the 2 group(s) above it"
    );
}

#[test]
fn long_group_entries_are_flagged() {
    let long = "x".repeat(128);
    let c = config(&format!(
        "{DAEMON_TCP}backends {{ libvirt {{ uri = \"x\"; }} }}\ngroups {{ group {{ uuid = \"{long}\"; }} }}\n"
    ));
    assert_eq!(
        warnings(&c),
        vec![(
            Some(6),
            WarningKind::LongGroupEntry {
                key: "uuid".into(),
                len: 128
            }
        )]
    );
}

#[test]
fn serial_listener_notes() {
    let c = config(
        "fence_virtd { listener = \"serial\"; backend = \"libvirt\"; }\n\
         listeners {\n\tserial {\n\t\tmode = \"1\";\n\t\tkey_file = \"/k\";\n\t\tpath = \"/run/fence\";\n\t}\n}\n\
         backends { libvirt { uri = \"x\"; } }\n",
    );
    let ListenerSettings::Serial(s) = &c.listeners[0] else {
        panic!("serial expected")
    };
    assert_eq!(
        (s.mode, s.path.as_deref()),
        (SerialMode::Vmchannel, Some(Path::new("/run/fence")))
    );
    assert_eq!(
        warnings(&c),
        vec![
            (Some(3), WarningKind::SerialWithoutGroups { unrestricted: false }),
            (
                Some(4),
                WarningKind::NumericSerialMode {
                    value: "1".into(),
                    vmchannel: true
                }
            ),
            (Some(5), WarningKind::SerialKeyFileIgnored),
        ]
    );
}

#[test]
fn serial_unrestricted_is_explicit() {
    let text = |v: &str| {
        format!(
            "fence_virtd {{ listener = \"serial\"; backend = \"libvirt\"; }}\n\
             listeners {{ serial {{ unrestricted = \"{v}\"; }} }}\n\
             backends {{ libvirt {{ uri = \"x\"; }} }}\n"
        )
    };
    let open = config(&text("1"));
    let ListenerSettings::Serial(s) = &open.listeners[0] else {
        panic!("serial expected")
    };
    assert!(s.unrestricted);
    assert_eq!(
        warnings(&open),
        vec![(Some(2), WarningKind::SerialWithoutGroups { unrestricted: true })]
    );
    let closed = config(&text("0"));
    let ListenerSettings::Serial(s) = &closed.listeners[0] else {
        panic!("serial expected")
    };
    assert!(!s.unrestricted);
    let bad = vmfence_config::parse_config(&text("yes"), Path::new("t.conf"));
    assert!(bad.is_err(), "a word is not a number: {bad:?}");
}

#[test]
fn top_level_oddities_are_warnings() {
    let c = config(&format!(
        "{DAEMON_TCP}backends {{ libvirt {{ uri = \"x\"; }} }}\n\
         listenres {{ }}\n\
         listeners = \"v\" {{ tcp {{ key_file = \"relative.key\"; }} }}\n"
    ));
    assert_eq!(
        warnings(&c),
        vec![
            (
                Some(6),
                WarningKind::UnknownTopLevelBlock {
                    name: "listenres".into(),
                    suggestion: Some("listeners".into())
                }
            ),
            (
                Some(7),
                WarningKind::BlockValueIgnored {
                    name: "listeners".into()
                }
            ),
            (
                Some(7),
                WarningKind::RelativeKeyFile {
                    path: "relative.key".into()
                }
            ),
        ]
    );
    assert_eq!(
        c.warnings[0].to_string(),
        "test.conf:6: warning: unknown top-level block `listenres` is ignored (did you mean `listeners`?)"
    );
}

#[test]
fn unsupported_classic_backend_blocks_are_checked_and_ignored() {
    let c = config(&format!(
        "{DAEMON_TCP}backends {{\n\tlibvirt {{ uri = \"x\"; }}\n\
         \tlibvirt-qmf {{ host = \"127.0.0.1\"; port = \"5672\"; gssapi = \"0\"; }}\n}}\n"
    ));
    assert_eq!(
        warnings(&c),
        vec![(
            Some(7),
            WarningKind::UnsupportedBackendBlock {
                name: "libvirt-qmf".into()
            }
        )]
    );
}
