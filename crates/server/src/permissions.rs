//! The `groups` permission map (spec §4.3).
//!
//! A requester is identified by a string: the IP address it calls from
//! (multicast, TCP), its vsock CID, or — for serial — the UUID of the VM
//! whose socket the request came on. A group lists requesters (`ip`
//! entries, or `uuid` entries when the requester is a VM UUID) and the VMs
//! they may act on (`uuid` entries, which may also hold VM names). With no
//! groups at all, every requester may act on every VM, as in the classic
//! daemon; the daemon warns about that at start.

use vmfence_proto::is_uuid;

/// One group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    /// Informational name.
    pub name: String,
    /// Requester addresses (IPs, CIDs).
    pub ips: Vec<String>,
    /// VMs, by UUID or name; also requester identities for serial.
    pub uuids: Vec<String>,
}

/// Who sent a request, as far as the daemon can tell.
///
/// Multicast and TCP requesters are the address they call from; a vsock
/// requester is its CID (written in decimal, as the classic daemon did, so
/// classic `ip = "3"` entries keep working) and, when a running domain owns
/// that CID, that domain; a serial requester is the domain whose socket the
/// request came on. The domain identity is attested by the host (the
/// socket or the CID), not claimed by the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester {
    /// IP address or vsock CID.
    pub address: Option<String>,
    /// The domain the request came from.
    pub guest: Option<GuestId>,
}

/// A domain as a requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestId {
    /// Domain name.
    pub name: String,
    /// Domain UUID.
    pub uuid: String,
}

impl Requester {
    /// A requester known by its address (or CID) only.
    pub fn address(address: impl Into<String>) -> Requester {
        Requester {
            address: Some(address.into()),
            guest: None,
        }
    }

    /// A requester known as a domain.
    pub fn guest(name: impl Into<String>, uuid: impl Into<String>) -> Requester {
        Requester {
            address: None,
            guest: Some(GuestId {
                name: name.into(),
                uuid: uuid.into(),
            }),
        }
    }
}

impl std::fmt::Display for Requester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.address, &self.guest) {
            (Some(a), None) => f.write_str(a),
            (None, Some(g)) => write!(f, "{} ({})", g.name, g.uuid),
            (Some(a), Some(g)) => write!(f, "{a}={} ({})", g.name, g.uuid),
            (None, None) => f.write_str("unknown"),
        }
    }
}

/// The whole map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Permissions {
    groups: Vec<Group>,
}

impl Permissions {
    /// A map from groups; an empty list allows everything.
    pub fn new(groups: Vec<Group>) -> Permissions {
        Permissions { groups }
    }

    /// Whether no group restricts anything.
    pub fn is_open(&self) -> bool {
        self.groups.is_empty()
    }

    /// The groups `who` belongs to: by address among the `ip` entries (an
    /// address that is a UUID is looked up among the `uuid` entries, as the
    /// classic daemon did for serial requesters), and by domain UUID or
    /// name among the `uuid` entries.
    fn groups_of<'a>(&'a self, who: &'a Requester) -> impl Iterator<Item = &'a Group> + 'a {
        let same = |list: &[String], id: &str| list.iter().any(|i| i.eq_ignore_ascii_case(id));
        self.groups.iter().filter(move |g| {
            let by_address = who.address.as_deref().is_some_and(|a| {
                if is_uuid(a) {
                    same(&g.uuids, a)
                } else {
                    same(&g.ips, a)
                }
            });
            let by_guest = who
                .guest
                .as_ref()
                .is_some_and(|v| same(&g.uuids, &v.uuid) || same(&g.uuids, &v.name));
            by_address || by_guest
        })
    }

    /// May `who` act on `target` (the domain string exactly as requested)?
    pub fn allows(&self, who: &Requester, target: &str) -> bool {
        self.is_open()
            || self
                .groups_of(who)
                .any(|g| g.uuids.iter().any(|u| u.eq_ignore_ascii_case(target)))
    }

    /// May `who` see the VM with this name and UUID in a list?
    pub fn shows(&self, who: &Requester, name: &str, uuid: &str) -> bool {
        self.is_open()
            || self.groups_of(who).any(|g| {
                g.uuids
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(uuid) || u.eq_ignore_ascii_case(name))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> Permissions {
        Permissions::new(vec![Group {
            name: "cluster1".into(),
            ips: vec!["192.168.1.1".into(), "192.168.1.2".into()],
            uuids: vec!["44179d3f-6c63-474f-a212-20c8b4b25b16".into(), "node2".into()],
        }])
    }

    #[test]
    fn open_without_groups() {
        assert!(Permissions::default().allows(&Requester::address("1.2.3.4"), "anything"));
    }

    #[test]
    fn classic_rules() {
        let m = map();
        let ip = Requester::address;
        assert!(m.allows(&ip("192.168.1.1"), "44179D3F-6C63-474F-A212-20C8B4B25B16"));
        assert!(m.allows(&ip("192.168.1.2"), "node2"));
        assert!(
            !m.allows(&ip("192.168.1.3"), "node2"),
            "requester not in any group"
        );
        // Listed by UUID only: the name is refused, as in the classic daemon.
        assert!(!m.allows(&ip("192.168.1.1"), "node1"));
        assert!(m.shows(
            &ip("192.168.1.1"),
            "node1",
            "44179d3f-6c63-474f-a212-20c8b4b25b16"
        ));
        assert!(m.shows(
            &ip("192.168.1.1"),
            "node2",
            "00000000-0000-0000-0000-000000000000"
        ));
        assert!(!m.shows(&ip("10.0.0.1"), "node2", "x"));
    }

    #[test]
    fn serial_requesters_are_matched_by_uuid() {
        let ip = Requester::address;
        let m = Permissions::new(vec![Group {
            name: "g".into(),
            ips: vec![],
            uuids: vec!["fe0c0000-0000-0000-0000-0000000000b1".into(), "victim".into()],
        }]);
        assert!(m.allows(&ip("FE0C0000-0000-0000-0000-0000000000B1"), "victim"));
        assert!(!m.allows(&ip("fe0c0000-0000-0000-0000-0000000000b9"), "victim"));
    }

    #[test]
    fn guests_are_matched_by_uuid_or_name_and_cids_by_ip_entries() {
        let m = Permissions::new(vec![Group {
            name: "g".into(),
            ips: vec!["5".into()],
            uuids: vec![
                "fe0c0000-0000-0000-0000-0000000000b1".into(),
                "victim".into(),
                "me".into(),
            ],
        }]);
        let by_uuid = Requester::guest("other-name", "FE0C0000-0000-0000-0000-0000000000B1");
        assert!(m.allows(&by_uuid, "victim"));
        let by_name = Requester::guest("me", "00000000-0000-0000-0000-00000000000a");
        assert!(m.allows(&by_name, "victim"));
        let stranger = Requester::guest("x", "00000000-0000-0000-0000-00000000000b");
        assert!(!m.allows(&stranger, "victim"));
        assert!(!m.shows(&stranger, "victim", "u"));
        // vsock: the CID alone (classic `ip = "5"`), or the domain owning it.
        assert!(m.allows(&Requester::address("5"), "victim"));
        let cid_and_vm = Requester {
            address: Some("6".into()),
            guest: Some(GuestId {
                name: "me".into(),
                uuid: "u".into(),
            }),
        };
        assert!(m.allows(&cid_and_vm, "victim"));
        assert!(!m.allows(&Requester::address("6"), "victim"));
        assert_eq!(cid_and_vm.to_string(), "6=me (u)");
    }
}
