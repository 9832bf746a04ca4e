//! A XenAPI simulator: the test stand-in for a XenServer / XCP-ng pool.
//!
//! There is no XenAPI server to install on a test machine, so this one
//! speaks the part of it `fence_xenapi` uses, the way xapi does: XML-RPC
//! over HTTP or HTTPS (a CA and a server certificate made with rcgen at
//! start), `POST /`, keep-alive, untyped string values, 64-bit integers as
//! strings, and every answer in the `Status`/`Value`/`ErrorDescription`
//! envelope with xapi's error codes and parameters. It parses requests
//! with its own code (roxmltree), not the client's.
//!
//! A pool is: the master on 127.0.0.3, a member on 127.0.0.2 that answers
//! every call with `HOST_IS_SLAVE ["127.0.0.3"]`, and optionally a
//! "blackhole" on 127.0.0.4 that accepts connections and never answers;
//! nothing listens on 127.0.0.9 ("down"). All share one port, as a real
//! pool shares 443. The VMs: two running, one halted, two with the same
//! name label, a paused and a suspended one, a template, a snapshot, and a
//! control domain. Sessions are tracked (log-ins, log-outs, originator),
//! and so is every call. Knobs: a delay before a method answers, a number
//! of power-state reads that still show the old state after a power
//! change, a failure injected into a method, sessions dropped by the
//! server.
//!
//! Not simulated: JSON-RPC, `Async.*` tasks, events, more than one pool,
//! HA, roles (RBAC), VM operations other than the ones above, the
//! 400-session limit itself (only its effect, `SESSION_INVALID`).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The master's address.
pub const MASTER: &str = "127.0.0.3";
/// A pool member that is not the master.
pub const SLAVE: &str = "127.0.0.2";
/// Accepts connections, never answers.
pub const BLACKHOLE: &str = "127.0.0.4";
/// Nothing listens there.
pub const DOWN: &str = "127.0.0.9";

/// The user and password the simulated pool accepts.
pub const USER: &str = "root";
/// The password.
pub const PASSWORD: &str = "s3cret pw";

/// UUIDs of the fixture VMs.
pub const NODE1_UUID: &str = "4a1f6c2e-0b7d-4c1e-9d3a-7f5e2b8c9d01";
/// Halted VM.
pub const NODE2_UUID: &str = "5b2e7d3f-1c8e-4d2f-8e4b-8a6f3c9dae02";
/// Running VM.
pub const NODE3_UUID: &str = "6c3f8e4a-2d9f-4e3a-9f5c-9b7a4dabf103";
/// The two VMs named "dup".
pub const DUP_A_UUID: &str = "7d4a9f5b-3eaa-4f4b-8a6d-ac8b5ebc0204";
/// Second "dup".
pub const DUP_B_UUID: &str = "8e5bab6c-4fbb-4a5c-9b7e-bd9c6fcd1305";
/// Paused VM.
pub const PAUSED_UUID: &str = "9f6cbc7d-5acc-4b6d-8c8f-ceadd7de2406";
/// Suspended VM.
pub const SUSPENDED_UUID: &str = "a07dcd8e-6bdd-4c7e-9d9a-dfbee8ef3507";
/// A template.
pub const TEMPLATE_UUID: &str = "b18ede9f-7cee-4d8f-8eab-e0cff9fa4608";
/// A snapshot of vm-node1.
pub const SNAPSHOT_UUID: &str = "c29fefa0-8dff-4e9a-9fbc-f1da0a0b5709";
/// The control domain.
pub const DOM0_UUID: &str = "d3a0f0b1-9eaa-4fab-8acd-a2eb1b1c680a";

/// How the pool is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// HTTPS instead of HTTP.
    pub tls: bool,
    /// Also start the blackhole.
    pub blackhole: bool,
    /// The addresses the server certificate is for (default: the
    /// simulator's three).
    pub cert_ips: Vec<IpAddr>,
    /// A self-signed server certificate (not a CA), as XenServer and
    /// XCP-ng hosts make for themselves; `ca_file` is then that
    /// certificate.
    pub self_signed: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: false,
            blackhole: false,
            cert_ips: [MASTER, SLAVE, BLACKHOLE]
                .iter()
                .map(|a| a.parse().unwrap())
                .collect(),
            self_signed: false,
        }
    }
}

/// A VM of the simulated pool.
#[derive(Debug, Clone)]
pub struct Vm {
    /// `OpaqueRef:…`.
    pub reference: String,
    /// UUID.
    pub uuid: String,
    /// Name label.
    pub name: String,
    /// Halted, Running, Paused or Suspended.
    pub power: String,
    /// Template.
    pub template: bool,
    /// Snapshot.
    pub snapshot: bool,
    /// Control domain.
    pub control: bool,
    /// Domain id, -1 when halted.
    pub domid: i64,
    /// Power-state reads that still show `shown`.
    lag: u32,
    shown: String,
}

/// An open session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The reference.
    pub reference: String,
    /// The host it was opened on.
    pub host: String,
    /// `originator` given at log-in ("" when not given).
    pub originator: String,
    /// `version` given at log-in.
    pub version: String,
}

/// One call seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The host that received it.
    pub host: String,
    /// The method.
    pub method: String,
    /// The VM reference it named, if any.
    pub vm: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    vms: Vec<Vm>,
    sessions: BTreeMap<String, SessionInfo>,
    next_session: u64,
    next_domid: i64,
    logins: u32,
    refused_logins: u32,
    calls: Vec<Call>,
    power_lag: u32,
    delays: BTreeMap<String, Duration>,
    failures: BTreeMap<String, Vec<String>>,
    drop_session_on: Option<String>,
    bad_http: bool,
    master_address: String,
}

/// A running simulated pool; dropping it stops it.
pub struct Sim {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    /// The port every host listens on.
    pub port: u16,
    tls: bool,
    threads: Vec<JoinHandle<()>>,
    listeners: Vec<SocketAddr>,
    dir: tempfile::TempDir,
    /// PEM file of the CA that signed the server certificate (TLS only).
    pub ca_file: PathBuf,
    /// PEM file of a CA that signed nothing here.
    pub other_ca_file: PathBuf,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("port", &self.port)
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Master,
    Slave,
    Blackhole,
}

fn vm(i: usize, uuid: &str, name: &str, power: &str) -> Vm {
    Vm {
        reference: format!("OpaqueRef:{:08x}-vm{i}", 0x5eed_0000u32 + i as u32),
        uuid: uuid.to_owned(),
        name: name.to_owned(),
        power: power.to_owned(),
        template: false,
        snapshot: false,
        control: false,
        domid: if power == "Halted" { -1 } else { 10 + i as i64 },
        lag: 0,
        shown: power.to_owned(),
    }
}

fn fixture() -> Vec<Vm> {
    let mut v = vec![
        vm(1, NODE1_UUID, "vm-node1", "Running"),
        vm(2, NODE2_UUID, "vm-node2", "Halted"),
        vm(3, NODE3_UUID, "vm-node3", "Running"),
        vm(4, DUP_A_UUID, "dup", "Running"),
        vm(5, DUP_B_UUID, "dup", "Halted"),
        vm(6, PAUSED_UUID, "vm-paused", "Paused"),
        vm(7, SUSPENDED_UUID, "vm-suspended", "Suspended"),
        vm(8, TEMPLATE_UUID, "Debian Bookworm 12", "Halted"),
        vm(9, SNAPSHOT_UUID, "vm-node1", "Halted"),
        vm(10, DOM0_UUID, "Control domain on host: xen1", "Running"),
    ];
    v[7].template = true;
    // A snapshot is a template too, and has its VM's name.
    v[8].template = true;
    v[8].snapshot = true;
    v[9].control = true;
    v[9].domid = 0;
    v
}

struct Tls {
    config: Arc<rustls::ServerConfig>,
    ca_pem: String,
    other_ca_pem: String,
}

fn make_tls(ips: &[IpAddr], self_signed: bool) -> Tls {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "xapi simulator CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "xen1");
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    let cert = if self_signed {
        params.self_signed(&key).unwrap()
    } else {
        params.signed_by(&key, &issuer).unwrap()
    };
    let other_key = KeyPair::generate().unwrap();
    let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    other.distinguished_name.push(DnType::CommonName, "some other CA");
    let other_cert = other.self_signed(&other_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .unwrap();
    Tls {
        config: Arc::new(config),
        ca_pem: if self_signed { cert.pem() } else { ca_cert.pem() },
        other_ca_pem: other_cert.pem(),
    }
}

impl Sim {
    /// Start a pool: the master and the member (and the blackhole when
    /// asked), all on one free port.
    pub fn start(opts: Options) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let tls = opts.tls.then(|| make_tls(&opts.cert_ips, opts.self_signed));
        let ca_file = dir.path().join("ca.pem");
        let other_ca_file = dir.path().join("other-ca.pem");
        if let Some(t) = &tls {
            std::fs::write(&ca_file, &t.ca_pem).unwrap();
            std::fs::write(&other_ca_file, &t.other_ca_pem).unwrap();
        }
        let mut hosts = vec![(MASTER, Role::Master), (SLAVE, Role::Slave)];
        if opts.blackhole {
            hosts.push((BLACKHOLE, Role::Blackhole));
        }
        // One port for every host: take a free one on the master's address
        // and retry when another host's address has it taken.
        let (port, listeners) = 'found: {
            for _ in 0..50 {
                let first = TcpListener::bind((MASTER, 0)).unwrap();
                let port = first.local_addr().unwrap().port();
                let mut ls = vec![first];
                for (addr, _) in &hosts[1..] {
                    match TcpListener::bind((*addr, port)) {
                        Ok(l) => ls.push(l),
                        Err(_) => break,
                    }
                }
                if ls.len() == hosts.len() && TcpStream::connect((DOWN, port)).is_err() {
                    break 'found (port, ls);
                }
            }
            panic!("no common free port on the simulator's addresses");
        };
        let state = Arc::new(Mutex::new(State {
            vms: fixture(),
            next_domid: 100,
            master_address: MASTER.to_owned(),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let tls_config = tls.map(|t| t.config);
        let mut threads = Vec::new();
        let mut addrs = Vec::new();
        for ((addr, role), listener) in hosts.into_iter().zip(listeners) {
            addrs.push(listener.local_addr().unwrap());
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            let tls = tls_config.clone();
            threads.push(std::thread::spawn(move || {
                serve(listener, addr, role, state, stop, tls);
            }));
        }
        Sim {
            state,
            stop,
            port,
            tls: opts.tls,
            threads,
            listeners: addrs,
            dir,
            ca_file,
            other_ca_file,
        }
    }

    /// The URL of the host at `addr`.
    pub fn url(&self, addr: &str) -> String {
        format!(
            "{}://{addr}:{}",
            if self.tls { "https" } else { "http" },
            self.port
        )
    }

    /// The master's URL.
    pub fn master(&self) -> String {
        self.url(MASTER)
    }

    /// The open sessions.
    pub fn open_sessions(&self) -> Vec<SessionInfo> {
        self.state.lock().unwrap().sessions.values().cloned().collect()
    }

    /// Successful log-ins so far.
    pub fn logins(&self) -> u32 {
        self.state.lock().unwrap().logins
    }

    /// Refused log-ins so far.
    pub fn refused_logins(&self) -> u32 {
        self.state.lock().unwrap().refused_logins
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The methods called so far, in order.
    pub fn methods(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.method).collect()
    }

    /// Forget the calls seen so far.
    pub fn clear_calls(&self) {
        self.state.lock().unwrap().calls.clear();
    }

    /// The VM with this UUID.
    pub fn vm(&self, uuid: &str) -> Vm {
        self.state
            .lock()
            .unwrap()
            .vms
            .iter()
            .find(|v| v.uuid == uuid)
            .cloned()
            .unwrap()
    }

    /// Set a VM's power state directly.
    pub fn set_power(&self, uuid: &str, power: &str) {
        let mut st = self.state.lock().unwrap();
        let domid = st.next_domid;
        st.next_domid += 1;
        let v = st.vms.iter_mut().find(|v| v.uuid == uuid).unwrap();
        v.power = power.to_owned();
        v.shown = power.to_owned();
        v.lag = 0;
        v.domid = if power == "Halted" { -1 } else { domid };
    }

    /// After a power change, this many power-state reads still show the
    /// old state.
    pub fn set_power_lag(&self, reads: u32) {
        self.state.lock().unwrap().power_lag = reads;
    }

    /// `method` answers only after `delay`.
    pub fn set_delay(&self, method: &str, delay: Duration) {
        self.state.lock().unwrap().delays.insert(method.to_owned(), delay);
    }

    /// `method` fails with this `ErrorDescription` (and changes nothing,
    /// except `VM.hard_reboot`, which leaves the VM halted as when the
    /// restart part fails).
    pub fn set_failure(&self, method: &str, desc: &[&str]) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(method.to_owned(), desc.iter().map(|s| (*s).to_owned()).collect());
    }

    /// The next call of `method` finds its session destroyed (as xapi does
    /// to the oldest session beyond its limit).
    pub fn drop_session_on(&self, method: &str) {
        self.state.lock().unwrap().drop_session_on = Some(method.to_owned());
    }

    /// The member names `addr` as the master (e.g. [`DOWN`]: the master it
    /// knows of is gone).
    pub fn set_master_address(&self, addr: &str) {
        self.state.lock().unwrap().master_address = addr.to_owned();
    }

    /// The master answers every request with HTTP 500 and an HTML page.
    pub fn break_http(&self) {
        self.state.lock().unwrap().bad_http = true;
    }

    /// The directory of the simulator's files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for a in &self.listeners {
            let _ = TcpStream::connect_timeout(a, Duration::from_secs(1));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

fn serve(
    listener: TcpListener,
    addr: &'static str,
    role: Role,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut held = Vec::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if role == Role::Blackhole {
            held.push(stream);
            continue;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let state = Arc::clone(&state);
        let tls = tls.clone();
        std::thread::spawn(move || {
            let conn: Box<dyn Conn> = match tls {
                Some(cfg) => match rustls::ServerConnection::new(cfg) {
                    Ok(c) => Box::new(rustls::StreamOwned::new(c, stream)),
                    Err(_) => return,
                },
                None => Box::new(stream),
            };
            handle(conn, addr, role, &state);
        });
    }
    for s in held {
        let _ = s.shutdown(Shutdown::Both);
    }
}

/// HTTP/1.1 with keep-alive: requests until the client closes.
fn handle(conn: Box<dyn Conn>, addr: &str, role: Role, state: &Mutex<State>) {
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let request_line = line.trim_end().to_owned();
        let mut length = None;
        let mut close = false;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                }
                if k.eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close") {
                    close = true;
                }
            }
        }
        let (status, body) = if !request_line.starts_with("POST ") {
            (405, html("405 Method Not Allowed"))
        } else if let Some(n) = length.filter(|&n| n <= 1 << 20) {
            let mut body = vec![0; n];
            if r.read_exact(&mut body).is_err() {
                return;
            }
            if state.lock().unwrap().bad_http {
                (500, html("500 Internal Server Error"))
            } else {
                match parse_call(&body) {
                    Some((method, params)) => (200, answer(addr, role, state, &method, &params)),
                    None => (500, html("500 Internal Server Error: cannot parse the request")),
                }
            }
        } else {
            (411, html("411 Length Required"))
        };
        let reason = match status {
            200 => "OK",
            405 => "Method Not Allowed",
            411 => "Length Required",
            _ => "Internal Server Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\ncontent-type: {}\r\nconnection: {}\r\n\
             cache-control: no-cache\r\nuser-agent: xapi/simulator\r\n\r\n",
            body.len(),
            if status == 200 { "text/xml" } else { "text/html" },
            if close { "close" } else { "keep-alive" },
        );
        let w = r.get_mut();
        if w.write_all(head.as_bytes())
            .and_then(|()| w.write_all(body.as_bytes()))
            .and_then(|()| w.flush())
            .is_err()
        {
            return;
        }
        if close {
            return;
        }
    }
}

fn html(msg: &str) -> String {
    format!("<html><body><h1>{msg}</h1></body></html>")
}

/// A parameter as the simulator needs it.
#[derive(Debug, Clone, PartialEq)]
enum P {
    S(String),
    B(bool),
    Other,
}

fn parse_call(body: &[u8]) -> Option<(String, Vec<P>)> {
    let text = std::str::from_utf8(body).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    let root = doc.root_element();
    if !root.has_tag_name("methodCall") {
        return None;
    }
    let method = root
        .children()
        .find(|n| n.has_tag_name("methodName"))?
        .text()?
        .trim()
        .to_owned();
    let mut params = Vec::new();
    if let Some(ps) = root.children().find(|n| n.has_tag_name("params")) {
        for p in ps.children().filter(|n| n.has_tag_name("param")) {
            let v = p.children().find(|n| n.has_tag_name("value"))?;
            let typed = v.children().find(|n| n.is_element());
            let text_of = |n: roxmltree::Node<'_, '_>| -> String {
                n.children()
                    .filter(|c| c.is_text())
                    .filter_map(|c| c.text())
                    .collect()
            };
            params.push(match typed {
                None => P::S(text_of(v)),
                Some(t) if t.has_tag_name("string") => P::S(text_of(t)),
                Some(t) if t.has_tag_name("boolean") => match text_of(t).trim() {
                    "1" => P::B(true),
                    "0" => P::B(false),
                    _ => P::Other,
                },
                Some(_) => P::Other,
            });
        }
    }
    Some((method, params))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// xapi writes strings untyped.
fn s(v: &str) -> String {
    format!("<value>{}</value>", esc(v))
}

fn b(v: bool) -> String {
    format!("<value><boolean>{}</boolean></value>", u8::from(v))
}

fn array(items: &[String]) -> String {
    format!("<value><array><data>{}</data></array></value>", items.concat())
}

fn strukt(members: &[(&str, String)]) -> String {
    let m: String = members
        .iter()
        .map(|(k, v)| format!("<member><name>{}</name>{v}</member>", esc(k)))
        .collect();
    format!("<value><struct>{m}</struct></value>")
}

fn envelope(inner: &str) -> String {
    format!("<?xml version=\"1.0\"?><methodResponse><params><param>{inner}</param></params></methodResponse>")
}

fn success(value: &str) -> String {
    envelope(&strukt(&[("Status", s("Success")), ("Value", value.to_owned())]))
}

fn failure(desc: &[String]) -> String {
    let items: Vec<String> = desc.iter().map(|d| s(d)).collect();
    envelope(&strukt(&[
        ("Status", s("Failure")),
        ("ErrorDescription", array(&items)),
    ]))
}

fn fail(desc: &[&str]) -> String {
    failure(&desc.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>())
}

fn record(v: &Vm) -> String {
    let ops: Vec<String> = match v.shown.as_str() {
        "Halted" => vec![s("start"), s("clone")],
        _ => vec![s("hard_shutdown"), s("hard_reboot"), s("pause")],
    };
    strukt(&[
        ("uuid", s(&v.uuid)),
        ("allowed_operations", array(&ops)),
        ("power_state", s(&v.shown)),
        ("name_label", s(&v.name)),
        ("name_description", s("")),
        ("user_version", s("1")),
        ("is_a_template", b(v.template)),
        ("is_default_template", b(false)),
        ("is_a_snapshot", b(v.snapshot)),
        (
            "snapshot_time",
            "<value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value>".to_owned(),
        ),
        ("is_control_domain", b(v.control)),
        ("domid", s(&v.domid.to_string())),
        ("memory_static_max", s("1073741824")),
        ("VCPUs_max", s("2")),
        (
            "resident_on",
            s(if v.shown == "Halted" {
                "OpaqueRef:NULL"
            } else {
                "OpaqueRef:host-xen1"
            }),
        ),
        (
            "other_config",
            strukt(&[("base_template_name", s("Other install media"))]),
        ),
        ("tags", array(&[])),
    ])
}

fn answer(addr: &str, role: Role, state: &Mutex<State>, method: &str, params: &[P]) -> String {
    let delay = state.lock().unwrap().delays.get(method).copied();
    if let Some(d) = delay {
        std::thread::sleep(d);
    }
    let mut st = state.lock().unwrap();
    let vm_param = match params.get(1) {
        Some(P::S(r)) if r.starts_with("OpaqueRef:") => Some(r.clone()),
        _ => None,
    };
    st.calls.push(Call {
        host: addr.to_owned(),
        method: method.to_owned(),
        vm: vm_param,
    });
    if role == Role::Slave {
        let master = st.master_address.clone();
        return fail(&["HOST_IS_SLAVE", &master]);
    }
    let text = |i: usize| match params.get(i) {
        Some(P::S(v)) => Some(v.clone()),
        _ => None,
    };
    let count = |want: usize| -> Option<String> {
        (params.len() != want).then(|| {
            fail(&[
                "MESSAGE_PARAMETER_COUNT_MISMATCH",
                method,
                &want.to_string(),
                &params.len().to_string(),
            ])
        })
    };
    if method == "session.login_with_password" {
        if !(2..=4).contains(&params.len()) {
            return fail(&[
                "MESSAGE_PARAMETER_COUNT_MISMATCH",
                method,
                "4",
                &params.len().to_string(),
            ]);
        }
        let user = text(0).unwrap_or_default();
        if user != USER || text(1).as_deref() != Some(PASSWORD) {
            st.refused_logins += 1;
            return fail(&["SESSION_AUTHENTICATION_FAILED", &user, "Authentication failure"]);
        }
        st.next_session += 1;
        let reference = format!("OpaqueRef:5e551000-0000-4000-8000-{:012x}", st.next_session);
        let info = SessionInfo {
            reference: reference.clone(),
            host: addr.to_owned(),
            originator: text(3).unwrap_or_default(),
            version: text(2).unwrap_or_default(),
        };
        st.sessions.insert(reference.clone(), info);
        st.logins += 1;
        return success(&s(&reference));
    }
    // Every other call starts with a live session.
    let session = text(0).unwrap_or_default();
    if st.drop_session_on.as_deref() == Some(method) {
        st.drop_session_on = None;
        st.sessions.remove(&session);
    }
    if !st.sessions.contains_key(&session) {
        return fail(&["SESSION_INVALID", &session]);
    }
    if let Some(desc) = st.failures.get(method).cloned() {
        if method == "VM.hard_reboot" {
            if let Some(v) = text(1).and_then(|r| st.vms.iter_mut().find(|v| v.reference == r)) {
                v.power = "Halted".to_owned();
                v.shown = "Halted".to_owned();
                v.domid = -1;
            }
        }
        return failure(&desc);
    }
    let find = |st: &State, r: &Option<String>| -> Result<usize, String> {
        r.as_ref()
            .and_then(|r| st.vms.iter().position(|v| &v.reference == r))
            .ok_or_else(|| fail(&["HANDLE_INVALID", "VM", r.as_deref().unwrap_or("")]))
    };
    match method {
        "session.logout" => {
            if let Some(e) = count(1) {
                return e;
            }
            st.sessions.remove(&session);
            success(&s(""))
        }
        "VM.get_by_uuid" => {
            if let Some(e) = count(2) {
                return e;
            }
            let u = text(1).unwrap_or_default();
            match st.vms.iter().find(|v| v.uuid == u) {
                Some(v) => success(&s(&v.reference)),
                None => fail(&["UUID_INVALID", "VM", &u]),
            }
        }
        "VM.get_by_name_label" => {
            if let Some(e) = count(2) {
                return e;
            }
            let n = text(1).unwrap_or_default();
            let refs: Vec<String> = st
                .vms
                .iter()
                .filter(|v| v.name == n)
                .map(|v| s(&v.reference))
                .collect();
            success(&array(&refs))
        }
        "VM.get_all" => {
            if let Some(e) = count(1) {
                return e;
            }
            let refs: Vec<String> = st.vms.iter().map(|v| s(&v.reference)).collect();
            success(&array(&refs))
        }
        "VM.get_record" => {
            if let Some(e) = count(2) {
                return e;
            }
            match find(&st, &text(1)) {
                Ok(i) => success(&record(&st.vms[i])),
                Err(e) => e,
            }
        }
        "VM.get_all_records" => {
            if let Some(e) = count(1) {
                return e;
            }
            let members: Vec<(&str, String)> =
                st.vms.iter().map(|v| (v.reference.as_str(), record(v))).collect();
            success(&strukt(&members))
        }
        "VM.get_power_state" => {
            if let Some(e) = count(2) {
                return e;
            }
            match find(&st, &text(1)) {
                Ok(i) => {
                    let v = &mut st.vms[i];
                    if v.lag > 0 {
                        v.lag -= 1;
                    } else {
                        v.shown = v.power.clone();
                    }
                    success(&s(&v.shown))
                }
                Err(e) => e,
            }
        }
        "VM.start" | "VM.hard_shutdown" | "VM.hard_reboot" => {
            let want = if method == "VM.start" { 4 } else { 2 };
            if let Some(e) = count(want) {
                return e;
            }
            if method == "VM.start" && !(matches!(params[2], P::B(_)) && matches!(params[3], P::B(_))) {
                return fail(&["FIELD_TYPE_ERROR", "start_paused"]);
            }
            let i = match find(&st, &text(1)) {
                Ok(i) => i,
                Err(e) => return e,
            };
            let lag = st.power_lag;
            let domid = st.next_domid;
            st.next_domid += 1;
            let v = &mut st.vms[i];
            if v.control {
                return fail(&[
                    "OPERATION_NOT_ALLOWED",
                    "This operation is not allowed on a control domain",
                ]);
            }
            if v.template {
                return fail(&["VM_IS_TEMPLATE", &v.reference, method.trim_start_matches("VM.")]);
            }
            let lower = v.power.to_ascii_lowercase();
            let (ok, expected, to) = match method {
                "VM.start" => (v.power == "Halted", "halted", "Running"),
                "VM.hard_shutdown" => (v.power != "Halted", "running", "Halted"),
                _ => (v.power == "Running" || v.power == "Paused", "running", "Running"),
            };
            if !ok {
                return fail(&["VM_BAD_POWER_STATE", &v.reference, expected, &lower]);
            }
            v.shown = v.power.clone();
            v.power = to.to_owned();
            v.domid = if to == "Halted" { -1 } else { domid };
            v.lag = lag;
            if lag == 0 {
                v.shown = v.power.clone();
            }
            success(&s(""))
        }
        _ => fail(&["MESSAGE_METHOD_UNKNOWN", method]),
    }
}

/// The address as an `IpAddr`.
pub fn ip(a: &str) -> IpAddr {
    a.parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}
