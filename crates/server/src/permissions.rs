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

    fn groups_of<'a>(&'a self, src: &'a str) -> impl Iterator<Item = &'a Group> + 'a {
        let by_uuid = is_uuid(src);
        self.groups.iter().filter(move |g| {
            let ids = if by_uuid { &g.uuids } else { &g.ips };
            ids.iter().any(|i| i.eq_ignore_ascii_case(src))
        })
    }

    /// May `src` act on `target` (the domain string exactly as requested)?
    pub fn allows(&self, src: &str, target: &str) -> bool {
        self.is_open()
            || self
                .groups_of(src)
                .any(|g| g.uuids.iter().any(|u| u.eq_ignore_ascii_case(target)))
    }

    /// May `src` see the VM with this name and UUID in a list?
    pub fn shows(&self, src: &str, name: &str, uuid: &str) -> bool {
        self.is_open()
            || self.groups_of(src).any(|g| {
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
        assert!(Permissions::default().allows("1.2.3.4", "anything"));
    }

    #[test]
    fn classic_rules() {
        let m = map();
        assert!(m.allows("192.168.1.1", "44179D3F-6C63-474F-A212-20C8B4B25B16"));
        assert!(m.allows("192.168.1.2", "node2"));
        assert!(!m.allows("192.168.1.3", "node2"), "requester not in any group");
        // Listed by UUID only: the name is refused, as in the classic daemon.
        assert!(!m.allows("192.168.1.1", "node1"));
        assert!(m.shows("192.168.1.1", "node1", "44179d3f-6c63-474f-a212-20c8b4b25b16"));
        assert!(m.shows("192.168.1.1", "node2", "00000000-0000-0000-0000-000000000000"));
        assert!(!m.shows("10.0.0.1", "node2", "x"));
    }

    #[test]
    fn serial_requesters_are_matched_by_uuid() {
        let m = Permissions::new(vec![Group {
            name: "g".into(),
            ips: vec![],
            uuids: vec!["fe0c0000-0000-0000-0000-0000000000b1".into(), "victim".into()],
        }]);
        assert!(m.allows("FE0C0000-0000-0000-0000-0000000000B1", "victim"));
        assert!(!m.allows("fe0c0000-0000-0000-0000-0000000000b9", "victim"));
    }
}
