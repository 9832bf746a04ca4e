//! Which guests run here and how they can reach the daemon without a
//! network: the host side of their serial ports and VMChannels (unix
//! sockets that QEMU listens on) and their vsock CIDs.
//!
//! The serial and vsock listeners identify a requester by the channel its
//! request came on; this module is where that channel is tied to a domain.
//! The libvirt implementation reads each running domain's XML; the memory
//! one is for tests.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use virt::connect::Connect;

use crate::BackendError;

/// Which kind of guest device a socket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// `<serial type='unix'>`: the guest sees a serial port.
    Serial,
    /// `<channel type='unix'>`: a VMChannel (e.g. `guestfwd` TCP endpoint).
    Channel,
}

/// One host-side socket of a guest device (`<source mode='bind'>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GuestSocket {
    /// Serial port or channel.
    pub kind: ChannelKind,
    /// Where QEMU listens.
    pub path: PathBuf,
}

/// A running guest and its non-network ways to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guest {
    /// Domain name.
    pub name: String,
    /// Domain UUID, lower-case.
    pub uuid: String,
    /// Unix sockets in bind mode.
    pub sockets: Vec<GuestSocket>,
    /// The vsock CID, when the domain has a vsock device with an address.
    pub vsock_cid: Option<u32>,
}

impl Guest {
    /// The sockets of `kind` that lie directly in `dir` (any directory when
    /// `dir` is `None`).
    pub fn sockets_in<'a>(
        &'a self,
        kind: ChannelKind,
        dir: Option<&'a Path>,
    ) -> impl Iterator<Item = &'a GuestSocket> + 'a {
        self.sockets
            .iter()
            .filter(move |s| s.kind == kind && dir.map_or(true, |d| s.path.parent() == Some(d)))
    }
}

/// Source of the running guests.
pub trait GuestDirectory: Send + Sync + std::fmt::Debug {
    /// Every running guest. Blocking.
    fn running_guests(&self) -> Result<Vec<Guest>, BackendError>;

    /// The running guest that owns vsock `cid`, if any.
    fn guest_by_cid(&self, cid: u32) -> Result<Option<Guest>, BackendError> {
        Ok(self
            .running_guests()?
            .into_iter()
            .find(|g| g.vsock_cid == Some(cid)))
    }
}

/// The devices of one domain XML that matter here: unix sockets in bind
/// mode of `<serial>` and `<channel>` elements, and the vsock CID.
pub fn parse_domain_xml(xml: &str) -> Result<(Vec<GuestSocket>, Option<u32>), String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("domain XML: {e}"))?;
    let mut sockets = Vec::new();
    let mut cid = None;
    let devices = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("devices"))
        .flat_map(|d| d.children().filter(roxmltree::Node::is_element));
    for dev in devices {
        let kind = match dev.tag_name().name() {
            "serial" => ChannelKind::Serial,
            "channel" => ChannelKind::Channel,
            "vsock" => {
                cid = dev
                    .children()
                    .find(|n| n.has_tag_name("cid"))
                    .and_then(|c| c.attribute("address"))
                    .and_then(|a| a.parse::<u32>().ok())
                    .filter(|&c| c > 2);
                continue;
            }
            _ => continue,
        };
        if dev.attribute("type") != Some("unix") {
            continue;
        }
        let source = dev
            .children()
            .find(|n| n.has_tag_name("source") && n.attribute("mode") == Some("bind"));
        if let Some(path) = source.and_then(|s| s.attribute("path")) {
            sockets.push(GuestSocket {
                kind,
                path: PathBuf::from(path),
            });
        }
    }
    Ok((sockets, cid))
}

/// Running guests as libvirt sees them on one or more URIs.
#[derive(Debug)]
pub struct LibvirtGuests {
    uris: Vec<String>,
    conns: Mutex<Vec<Option<Connect>>>,
}

impl LibvirtGuests {
    /// A directory over `uri`; connects lazily and reconnects when the
    /// connection died.
    pub fn new(uri: &str) -> LibvirtGuests {
        LibvirtGuests::many(&[uri.to_owned()])
    }

    /// A directory over several URIs (the guests of all of them).
    pub fn many(uris: &[String]) -> LibvirtGuests {
        LibvirtGuests {
            uris: uris.to_vec(),
            conns: Mutex::new(uris.iter().map(|_| None).collect()),
        }
    }

    /// The URIs.
    pub fn uris(&self) -> &[String] {
        &self.uris
    }

    /// Live connections (reopening dead ones); fails only when none works.
    fn connections(&self) -> Result<Vec<Connect>, BackendError> {
        let mut slots = self
            .conns
            .lock()
            .map_err(|_| BackendError::Unavailable("connection lock poisoned".into()))?;
        let mut live = Vec::new();
        let mut problems = Vec::new();
        for (slot, uri) in slots.iter_mut().zip(&self.uris) {
            match crate::libvirt::refresh(slot, uri) {
                Ok(c) => live.push(c),
                Err(problem) => problems.push(problem),
            }
        }
        if live.is_empty() {
            return Err(BackendError::Unavailable(if problems.is_empty() {
                "no libvirt URI configured".into()
            } else {
                problems.join("; ")
            }));
        }
        Ok(live)
    }
}

impl GuestDirectory for LibvirtGuests {
    fn running_guests(&self) -> Result<Vec<Guest>, BackendError> {
        let mut out = Vec::new();
        for conn in self.connections()? {
            let doms = conn
                .list_all_domains(virt::sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                .map_err(|e| BackendError::Unavailable(e.message().to_string()))?;
            for d in doms {
                // A domain may stop between listing and asking: skip it.
                let (Ok(name), Ok(uuid), Ok(xml)) = (d.name(), d.uuid_string(), d.xml_desc(0)) else {
                    continue;
                };
                let Ok((sockets, vsock_cid)) = parse_domain_xml(&xml) else {
                    continue;
                };
                out.push(Guest {
                    name,
                    uuid: uuid.to_ascii_lowercase(),
                    sockets,
                    vsock_cid,
                });
            }
        }
        Ok(out)
    }
}

/// A fixed, editable list of guests, for tests.
#[derive(Debug, Default)]
pub struct MemoryGuests {
    guests: Mutex<Vec<Guest>>,
}

impl MemoryGuests {
    /// A directory holding `guests`.
    pub fn new(guests: Vec<Guest>) -> MemoryGuests {
        MemoryGuests {
            guests: Mutex::new(guests),
        }
    }

    /// Replace the running guests.
    pub fn set(&self, guests: Vec<Guest>) {
        if let Ok(mut g) = self.guests.lock() {
            *g = guests;
        }
    }
}

impl GuestDirectory for MemoryGuests {
    fn running_guests(&self) -> Result<Vec<Guest>, BackendError> {
        self.guests
            .lock()
            .map(|g| g.clone())
            .map_err(|_| BackendError::Unavailable("lock poisoned".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<domain type='kvm'>
  <name>g1</name>
  <uuid>fe0c0000-0000-0000-0000-0000000000b1</uuid>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <serial type='unix'><source mode='bind' path='/run/fence/g1.sock'/><target port='1'/></serial>
    <serial type='unix'><source mode='connect' path='/run/other/x.sock'/></serial>
    <channel type='unix'>
      <source mode='bind' path='/run/fence/g1-ch.sock'/>
      <target type='guestfwd' address='10.0.2.179' port='1229'/>
    </channel>
    <vsock model='virtio'><cid auto='no' address='7'/></vsock>
  </devices>
</domain>"#;

    #[test]
    fn finds_bind_sockets_and_cid() {
        let (sockets, cid) = parse_domain_xml(XML).expect("parses");
        assert_eq!(
            sockets,
            vec![
                GuestSocket {
                    kind: ChannelKind::Serial,
                    path: "/run/fence/g1.sock".into()
                },
                GuestSocket {
                    kind: ChannelKind::Channel,
                    path: "/run/fence/g1-ch.sock".into()
                },
            ]
        );
        assert_eq!(cid, Some(7));
    }

    #[test]
    fn reserved_cids_and_missing_addresses_are_none() {
        for v in [
            "<vsock model='virtio'><cid auto='yes'/></vsock>",
            "<vsock><cid address='2'/></vsock>",
            "<vsock><cid address='x'/></vsock>",
        ] {
            let xml = format!("<domain><devices>{v}</devices></domain>");
            assert_eq!(parse_domain_xml(&xml).expect("parses").1, None, "{v}");
        }
        assert!(parse_domain_xml("<domain>").is_err());
    }

    #[test]
    fn sockets_only_directly_in_the_directory() {
        let (sockets, _) = parse_domain_xml(XML).expect("parses");
        let g = Guest {
            name: "g1".into(),
            uuid: "u".into(),
            sockets,
            vsock_cid: None,
        };
        let dir = Path::new("/run/fence");
        assert_eq!(g.sockets_in(ChannelKind::Serial, Some(dir)).count(), 1);
        assert_eq!(
            g.sockets_in(ChannelKind::Serial, Some(Path::new("/run"))).count(),
            0
        );
        assert_eq!(g.sockets_in(ChannelKind::Channel, None).count(), 1);
    }

    #[test]
    fn memory_directory_finds_by_cid() {
        let d = MemoryGuests::new(vec![Guest {
            name: "a".into(),
            uuid: "u".into(),
            sockets: vec![],
            vsock_cid: Some(5),
        }]);
        assert_eq!(d.guest_by_cid(5).expect("ok").map(|g| g.name), Some("a".into()));
        assert_eq!(d.guest_by_cid(6).expect("ok"), None);
    }
}
