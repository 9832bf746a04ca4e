//! Writing and reading back: parse → write → parse keeps the tree (in file
//! order), and typed settings → text → settings reaches a fixed point.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use vmfence_config::{load_config, parse, parse_config, write_config, write_tree, Config};

fn data_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

const EVERYTHING: &str = r#"# every construct of the grammar
top = "level";
fence_virtd {
    listener = "tcp,serial";   # two listeners
    backend = "cpg";
    debug = "2";
}
listeners {
    tcp { address = "::1"; family = "ipv6"; port = "2000"; hash = "sha512"; auth = "sha1"; key_file = "/k"; }
    serial { path = "/run/fence"; mode = "vmchannel"; uri = "qemu:///system"; }
    multicast { }
}
backends {
    cpg { uri = "qemu:///system"; uri1 = "qemu+ssh://other/system"; name_mode = "uuid"; }
}
groups {
    group = "g1" {
        uuid = "vm one
with a newline";
        ip = "::1";
    }
    group { name = "g2"; uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f"; }
}
"#;

#[test]
fn parse_write_parse_keeps_the_tree() {
    let mut texts: Vec<String> = data_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.push(EVERYTHING.to_owned());
    for text in texts {
        let tree = parse(&text).unwrap();
        let written = write_tree(&tree).unwrap();
        let again = parse(&written).unwrap();
        assert!(again.same_content(&tree), "changed by a round trip:\n{written}");
        // Writing is deterministic and idempotent.
        assert_eq!(write_tree(&again).unwrap(), written);
    }
}

#[test]
fn file_order_is_kept_not_reversed() {
    let text = "b { y = \"2\"; x = \"1\"; }\na { }\n";
    let written = write_tree(&parse(text).unwrap()).unwrap();
    assert_eq!(written, "b {\n\ty = \"2\";\n\tx = \"1\";\n}\n\na {\n}\n");
}

fn typed_fixed_point(config: &Config) -> String {
    let first = write_config(config).unwrap();
    let reread = parse_config(&first, Path::new("written.conf")).unwrap();
    let second = write_config(&reread).unwrap();
    assert_eq!(first, second);
    // The values survive (locations differ, so compare field by field).
    assert_eq!(reread.listeners.len(), config.listeners.len());
    for (a, b) in reread.listeners.iter().zip(&config.listeners) {
        assert_eq!(a.kind(), b.kind());
        assert_eq!(
            a.auth().map(|x| (x.hash, x.auth)),
            b.auth().map(|x| (x.hash, x.auth))
        );
        assert_eq!(
            a.auth().map(|x| &x.key_file.path),
            b.auth().map(|x| &x.key_file.path)
        );
    }
    assert_eq!(reread.backend.kind(), config.backend.kind());
    assert_eq!(reread.backend.uris(), config.backend.uris());
    assert_eq!(reread.daemon.debug, config.daemon.debug);
    let groups = |c: &Config| {
        c.groups
            .iter()
            .map(|g| (g.name.clone(), g.uuids.clone(), g.ips.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(groups(&reread), groups(config));
    first
}

#[test]
fn typed_settings_reach_a_fixed_point() {
    for path in data_files() {
        typed_fixed_point(&load_config(&path).unwrap());
    }
    let everything = EVERYTHING.replace("top = \"level\";\n", "");
    let config = parse_config(&everything, Path::new("everything.conf")).unwrap();
    let written = typed_fixed_point(&config);
    // Unused blocks (listeners/multicast) are not part of the typed settings.
    assert!(!written.contains("multicast"));
    assert!(written.contains("listener = \"tcp,serial\";"));
    assert!(written.contains("\t\tauth = \"sha1\";"));
}

#[test]
fn uris_are_renumbered_so_the_classic_daemon_reads_them_all() {
    let config = parse_config(
        "fence_virtd { listener = \"tcp\"; backend = \"libvirt\"; }\n\
         backends { libvirt { uri = \"a\"; uri0 = \"b\"; uri5 = \"c\"; } }\n",
        Path::new("t.conf"),
    )
    .unwrap();
    let written = write_config(&config).unwrap();
    assert!(
        written.contains("\t\turi = \"a\";\n\t\turi1 = \"b\";\n\t\turi2 = \"c\";\n"),
        "{written}"
    );
    let tree = parse(&written).unwrap();
    assert_eq!(tree.get("backends/libvirt/@uri2"), Some("c"));
}

#[test]
fn default_tcp_auth_is_not_written() {
    // Classic fence_virtd would read a written tcp `auth` as `hash`.
    let config = parse_config(
        "fence_virtd { listener = \"tcp\"; backend = \"libvirt\"; }\nlisteners { tcp { hash = \"sha1\"; } }\n",
        Path::new("t.conf"),
    )
    .unwrap();
    let written = write_config(&config).unwrap();
    assert!(written.contains("hash = \"sha1\";"));
    assert!(!written.contains("auth ="), "{written}");
}
