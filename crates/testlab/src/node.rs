//! libvirt test-driver node files (`test:///ABS/node.xml`): domains with
//! fixed UUIDs, running or defined but shut off.

/// One domain of a test node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDomain {
    /// Its name.
    pub name: String,
    /// Its UUID, lower case.
    pub uuid: String,
    /// Running (`true`) or shut off.
    pub running: bool,
    /// Extra `<devices>` content (serial ports, channels, vsock).
    pub devices: String,
}

impl TestDomain {
    /// Domain `name` with UUID number `n` (see [`TestDomain::uuid_of`]).
    pub fn new(name: &str, n: usize, running: bool) -> TestDomain {
        TestDomain {
            name: name.to_owned(),
            uuid: TestDomain::uuid_of(n),
            running,
            devices: String::new(),
        }
    }

    /// Add a `<serial type='unix'>` whose host side QEMU would listen on at
    /// `socket` (the serial listener connects to it).
    pub fn with_serial(mut self, socket: &std::path::Path) -> TestDomain {
        self.devices.push_str(&format!(
            "<serial type='unix'><source mode='bind' path='{}'/><target port='1'/></serial>",
            socket.display()
        ));
        self
    }

    /// Add a VMChannel (`<channel type='unix'>` with a `guestfwd` target).
    pub fn with_channel(mut self, socket: &std::path::Path) -> TestDomain {
        self.devices.push_str(&format!(
            "<channel type='unix'><source mode='bind' path='{}'/>\
             <target type='guestfwd' address='10.0.2.179' port='1229'/></channel>",
            socket.display()
        ));
        self
    }

    /// Add a vsock device with a fixed CID.
    pub fn with_vsock(mut self, cid: u32) -> TestDomain {
        self.devices.push_str(&format!(
            "<vsock model='virtio'><cid auto='no' address='{cid}'/></vsock>"
        ));
        self
    }

    /// The fixed UUID number `n`: `fe0c0000-0000-4000-8000-<n as 12 hex digits>`.
    pub fn uuid_of(n: usize) -> String {
        format!("fe0c0000-0000-4000-8000-{n:012x}")
    }

    /// The line `fence_xvm -o list` prints for it (name padded to 32).
    pub fn list_line(&self) -> String {
        format!(
            "{:<32} {} {}",
            self.name,
            self.uuid,
            if self.running { "on" } else { "off" }
        )
    }
}

/// `n` domains `dom1..domN` with UUIDs 1..n; `off(i)` says which are shut off.
pub fn numbered_domains(n: usize, off: impl Fn(usize) -> bool) -> Vec<TestDomain> {
    (1..=n)
        .map(|i| TestDomain::new(&format!("dom{i}"), i, !off(i)))
        .collect()
}

/// The node XML for the libvirt test driver. Shut-off domains carry
/// `<test:runstate>5</test:runstate>` (VIR_DOMAIN_SHUTOFF) with the test
/// namespace declared on the domain element.
pub fn node_xml(domains: &[TestDomain]) -> String {
    let mut xml = String::from(
        "<node>\n  <cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>\
         <active>2</active><mhz>2000</mhz><model>x86_64</model></cpu>\n  <memory>16777216</memory>\n",
    );
    for d in domains {
        let state = if d.running {
            ""
        } else {
            "<test:runstate>5</test:runstate>"
        };
        xml.push_str(&format!(
            "  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
             <name>{}</name><uuid>{}</uuid><memory>65536</memory><vcpu>1</vcpu>\
             <os><type>hvm</type></os>{state}<devices>{}</devices></domain>\n",
            d.name, d.uuid, d.devices
        ));
    }
    xml.push_str("</node>\n");
    xml
}
