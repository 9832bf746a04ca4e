//! Every example configuration in `tests/data` (copies of the public
//! examples in `shared/examples` and the upstream example of spec §6.4) is
//! accepted and yields the expected typed values and notes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use vmfence_config::{
    load_config, BackendSettings, Config, Family, ListenerSettings, MulticastSettings, NameMode, Severity,
    WarningKind,
};
use vmfence_proto::HashType;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load(name: &str) -> Config {
    match load_config(&data(name)) {
        Ok(config) => config,
        Err(e) => panic!("{name} rejected:\n{e}"),
    }
}

fn only_multicast(config: &Config) -> &MulticastSettings {
    assert_eq!(config.listeners.len(), 1);
    match &config.listeners[0] {
        ListenerSettings::Multicast(m) => m,
        other => panic!("expected multicast, got {other:?}"),
    }
}

/// (line, kind) of every warning and note.
fn warnings(config: &Config) -> Vec<(Option<u32>, WarningKind)> {
    config
        .warnings
        .iter()
        .map(|w| (w.at.line, w.kind.clone()))
        .collect()
}

#[test]
fn every_example_in_the_data_directory_is_accepted() {
    let mut seen = 0;
    for entry in std::fs::read_dir(data("")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "conf") {
            if let Err(e) = load_config(&path) {
                panic!("{} rejected:\n{e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "only {seen} examples found");
}

#[test]
fn rhel8_tutorial() {
    let config = load("rhel8-tutorial.conf");
    let m = only_multicast(&config);
    assert_eq!(m.auth.key_file.path, Path::new("/etc/cluster/fence_xvm.key"));
    assert_eq!(m.auth.key_file.at.line, Some(14));
    assert!(m.auth.key_file.explicit);
    assert_eq!((m.auth.hash, m.auth.auth), (HashType::Sha256, HashType::Sha256));
    assert_eq!(m.family, Family::Ipv4);
    assert_eq!(m.address, IpAddr::V4(Ipv4Addr::new(225, 0, 0, 12)));
    assert_eq!(m.port, 1229);
    assert_eq!(m.interface.as_deref(), Some("virbr0"));
    assert_eq!(m.at.line, Some(9));
    assert_eq!(config.backend.uris(), ["qemu:///system"]);
    assert!(matches!(config.backend, BackendSettings::Libvirt(_)));
    assert!(config.groups.is_empty());
    assert_eq!(
        config.daemon.module_path.as_deref(),
        Some("/usr/lib64/fence-virt")
    );
    assert_eq!(
        (
            config.daemon.debug,
            config.daemon.foreground,
            config.daemon.wait_for_init
        ),
        (0, false, false)
    );
    assert_eq!(
        warnings(&config),
        vec![(Some(20), WarningKind::ModulePathIgnored)]
    );
    assert_eq!(config.warnings[0].severity(), Severity::Note);
}

#[test]
fn guest_fencing_wiki() {
    let config = load("guest-fencing-wiki.conf");
    let m = only_multicast(&config);
    assert_eq!(m.auth.key_file.path, Path::new("/etc/cluster/fence_xvm.key"));
    assert_eq!(m.interface.as_deref(), Some("virbr0"));
    assert_eq!((m.family, m.port), (Family::Ipv4, 1229));
    assert_eq!(m.address, IpAddr::V4(Ipv4Addr::new(225, 0, 0, 12)));
    assert_eq!(config.backend.uris(), ["qemu:///system"]);
    assert_eq!(
        warnings(&config),
        vec![(Some(20), WarningKind::ModulePathIgnored)]
    );
}

#[test]
fn manpage_groups_with_cpg_backend() {
    let config = load("manpage-groups.conf");
    let m = only_multicast(&config);
    // Only key_file is set: everything else is the default.
    assert_eq!(m.auth.key_file.path, Path::new("/etc/cluster/fence_xvm.key"));
    assert_eq!(
        (m.family, m.port, m.interface.as_deref()),
        (Family::Ipv4, 1229, None)
    );
    assert_eq!(m.address, IpAddr::V4(Ipv4Addr::new(225, 0, 0, 12)));
    let BackendSettings::Cpg(cpg) = &config.backend else {
        panic!("cpg expected")
    };
    assert!(cpg.uris.is_empty());
    assert_eq!(cpg.name_mode, NameMode::Name);

    assert_eq!(config.groups.len(), 1);
    let group = &config.groups[0];
    assert_eq!(group.name.as_deref(), Some("cluster1"));
    assert_eq!(group.label, "cluster1");
    assert_eq!(group.ips, ["192.168.1.1", "192.168.1.2"]);
    assert_eq!(
        group.uuids,
        [
            "44179d3f-6c63-474f-a212-20c8b4b25b16",
            "1ce02c4b-dfa1-42cb-b5b1-f0b1091ece60",
            "node1",
            "node2"
        ]
    );
    assert_eq!(group.at.line, Some(21));

    assert_eq!(
        warnings(&config),
        vec![
            (Some(3), WarningKind::NoBackendUri { backend: "cpg" }),
            (Some(15), WarningKind::UnusedBackendBlock { name: "libvirt" }),
        ]
    );
    assert_eq!(config.warnings[0].severity(), Severity::Warning);
    assert_eq!(
        config.warnings[1].to_string(),
        format!(
            "{}:15: note: backends/libvirt is checked but not used: `backend` in fence_virtd selects another",
            data("manpage-groups.conf").display()
        )
    );
}

#[test]
fn upstream_example_of_spec_6_4() {
    let config = load("upstream-example.conf");
    let m = only_multicast(&config);
    assert_eq!(m.auth.key_file.path, Path::new("/etc/cluster/fence_xvm.key"));
    assert_eq!(m.address, IpAddr::V4(Ipv4Addr::new(225, 0, 0, 12)));
    assert_eq!(m.interface.as_deref(), Some("virbr0"));
    assert_eq!((m.family, m.port), (Family::Ipv4, 1229));
    assert_eq!(config.backend.uris(), ["qemu:///system"]);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}
