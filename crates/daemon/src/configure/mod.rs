//! `fence_virtd -c`: the interactive configurator.
//!
//! It reads the configuration file (when there is one), asks about the
//! listeners (several may run at once: multicast, tcp, vsock, serial) and
//! each one's settings including `hash`, `auth` and the key file, about the
//! backend, and about `groups`; then it shows the resulting file and writes
//! it only when told to, atomically and with mode 0600.
//!
//! The answers edit the parsed syntax tree of the existing file in place, so
//! everything the dialogue does not ask about stays as it was: `debug`,
//! `foreground`, `wait_for_init`, `module_path` (plugin-era, never asked),
//! unused listener and backend blocks, unknown top-level blocks, the order
//! of statements and their comments ([`comments`]). The result must pass the
//! same validation as `--check` (`vmfence_config::parse_config`) before it
//! is offered for writing; key files are checked as `--check` does, but a
//! missing key only gets advice on how to make one, since the key is often
//! made after the configuration.
//!
//! Differences from the classic `fence_virtd -c` (spec §6.5): no module
//! path question; every listener, `hash`, `auth` and `groups` can be set;
//! the tcp listen address defaults to 127.0.0.1 (not the multicast group);
//! the serial listener's URI is saved; a refused answer is explained with
//! the value typed; siblings are not reversed on every rewrite; the end of
//! the input takes the defaults and so never writes the file.
//!
//! Exit status through the caller: 0 when the file was written, 1 when not
//! (answered no, end of input, invalid result, I/O error).

mod answers;
mod comments;
mod edit;
mod prompt;
mod write;

use std::io::{self, BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use vmfence_config::syntax::{Block, Item};
use vmfence_config::{
    load_key_file, parse, parse_config, write_tree, BackendKind, Config, Family, KeyFileError,
    KeyFileWarning, ListenAddress, ListenerKind, NameMode, Tree, WriteError,
};
use vmfence_proto::{HashType, DEFAULT_KEY_FILE, DEFAULT_MCAST_V4, DEFAULT_MCAST_V6, DEFAULT_PORT};

use self::comments::Comments;
pub use self::prompt::{DialogueError, Prompter};

/// Why no configuration was written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    /// The dialogue itself failed.
    #[error(transparent)]
    Dialogue(#[from] DialogueError),
    /// The file's directory is missing or not a directory.
    #[error("cannot configure {}: the directory {} {problem}", file.display(), dir.display())]
    Directory {
        /// The configuration file.
        file: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// "does not exist", "is not a directory", ...
        problem: String,
    },
    /// The existing file could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Read {
        /// The configuration file.
        file: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The answers produced something the file format cannot hold.
    #[error("cannot write the configuration: {0}")]
    Unwritable(#[from] WriteError),
    /// The result does not pass validation; the errors were shown.
    #[error("{} not written: the resulting configuration is not valid ({count} error{})", file.display(), if *count == 1 { "" } else { "s" })]
    Invalid {
        /// The configuration file.
        file: PathBuf,
        /// How many errors.
        count: usize,
    },
    /// The user said no (or the input ended).
    #[error("{} not written{}", file.display(), if *existed { "; it is unchanged" } else { "" })]
    NotWritten {
        /// The configuration file.
        file: PathBuf,
        /// Whether there is an old file that stays as it was.
        existed: bool,
    },
    /// Writing failed.
    #[error("cannot write {}: {source}", file.display())]
    Write {
        /// The configuration file.
        file: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Run the dialogue for `file` reading answers from `input` and writing the
/// conversation to `out`. `echo` repeats answers in the transcript (for
/// input that is not a terminal). `Ok` means the file was written.
pub fn configure<R: BufRead, W: Write>(
    file: &Path,
    input: R,
    out: W,
    echo: bool,
) -> Result<(), ConfigureError> {
    check_directory(file)?;
    let mut p = Prompter::new(input, out, echo);
    p.say(&format!("Interactive configuration of {}", file.display()))?;
    let Some(start) = start(&mut p, file)? else {
        return Err(ConfigureError::NotWritten {
            file: file.to_path_buf(),
            existed: true,
        });
    };
    let mut s = Session {
        p,
        file: file.to_path_buf(),
        tree: start.tree,
        comments: start.comments,
        existed: start.existed,
        key_files: Vec::new(),
        kinds: Vec::new(),
    };
    s.listeners()?;
    s.backend()?;
    s.groups()?;
    s.finish()
}

/// Text shown before the listener question.
const LISTENERS_TEXT: &str = "\
Listeners receive the fencing requests of the guests:
  multicast  fence_xvm: a UDP multicast request, answered over TCP
  tcp        fence_virt -T: TCP connections to an address of this host
  vsock      fence_virt -S: AF_VSOCK connections, no network needed
  serial     fence_virt over a serial port or VMChannel of each guest
Several can run at once: list them separated by commas (a vmfence
extension; the classic fence_virtd runs only one).";

const KEY_TEXT: &str = "\
Requests are authenticated with a shared key file. The same file must be on
this host and in every guest that fences through it.";

const HASH_TEXT: &str = "\
Clients sign each request; `hash` is the weakest signature accepted and
`auth` the hash of the challenge-response that follows. sha256 (the default)
or sha512 are recommended; sha1 is weak; none turns the check off.";

const BACKEND_TEXT: &str = "\
The backend carries the requests out:
  libvirt  the hypervisor(s) of this host; for VMs that stay on one host
  cpg      libvirt on every host of a corosync cluster, for VMs that migrate";

const GROUPS_TEXT: &str = "\
Groups limit which client may fence which VM. Without any group, every client
that passes authentication may fence every VM of this host; the serial
listener, which has no key, then refuses every request unless told otherwise.";

/// Where the dialogue starts from.
struct Start {
    tree: Tree,
    comments: Comments,
    existed: bool,
}

/// Refuse before asking anything when the file could never be written.
fn check_directory(file: &Path) -> Result<(), ConfigureError> {
    let dir = write::parent_dir(file);
    let problem = match std::fs::metadata(&dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => "is not a directory".to_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => "does not exist".to_owned(),
        Err(e) => format!("cannot be used: {e}"),
    };
    Err(ConfigureError::Directory {
        file: file.to_path_buf(),
        dir,
        problem,
    })
}

/// Read the existing file; `None` when it cannot be used and the user does
/// not want to start from scratch.
fn start<R: BufRead, W: Write>(p: &mut Prompter<R, W>, file: &Path) -> Result<Option<Start>, ConfigureError> {
    let name = file.display().to_string();
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            p.say(&format!(
                "{name} does not exist yet: starting a new configuration."
            ))?;
            return Ok(Some(Start {
                tree: Tree::new(),
                comments: Comments::default(),
                existed: false,
            }));
        }
        Err(source) => {
            return Err(ConfigureError::Read {
                file: file.to_path_buf(),
                source,
            })
        }
    };
    let parsed = match String::from_utf8(bytes) {
        Ok(text) => parse(&text)
            .map(|tree| (tree, text))
            .map_err(|e| format!("{name}:{}: syntax error: {}", e.line, e.kind)),
        Err(_) => Err(format!("{name}: the file is not UTF-8 text")),
    };
    match parsed {
        Ok((tree, text)) => {
            let comments = Comments::scan(&text);
            p.say(&format!(
                "Read {name}; settings not asked about below are kept{}.",
                if comments.is_empty() {
                    ""
                } else {
                    ", and so are its comments"
                }
            ))?;
            match Config::from_tree(&tree, file) {
                Ok(config) => {
                    for w in &config.warnings {
                        p.say(&format!("  {w}"))?;
                    }
                }
                Err(errors) => {
                    p.say("The file has problems; the answers below can correct values, anything else must be fixed by hand:")?;
                    for e in &errors.errors {
                        p.say(&format!("  {e}"))?;
                    }
                }
            }
            Ok(Some(Start {
                tree,
                comments,
                existed: true,
            }))
        }
        Err(why) => {
            p.say(&why)?;
            p.say(&format!("{name} cannot be read as a configuration."))?;
            if p.yes_no("Start from scratch", false)? {
                Ok(Some(Start {
                    tree: Tree::new(),
                    comments: Comments::default(),
                    existed: true,
                }))
            } else {
                Ok(None)
            }
        }
    }
}

struct Session<R, W> {
    p: Prompter<R, W>,
    file: PathBuf,
    tree: Tree,
    comments: Comments,
    existed: bool,
    /// Key files of the listeners that use one, in order, once each.
    key_files: Vec<String>,
    /// The listeners chosen.
    kinds: Vec<ListenerKind>,
}

impl<R: BufRead, W: Write> Session<R, W> {
    /// The default for a question: the file's value at `path`/`key` when it
    /// passes `check`, else `fallback` (saying why the file's value is not
    /// offered).
    fn current<T>(
        &mut self,
        path: &[&str],
        key: &str,
        check: impl Fn(&str) -> Result<T, String>,
        fallback: &str,
    ) -> Result<String, DialogueError> {
        let Some(value) = edit::value(&self.tree, path, key).map(str::to_owned) else {
            return Ok(fallback.to_owned());
        };
        match prompt::writable(&value).and_then(|()| check(&value)) {
            Ok(_) => Ok(value),
            Err(why) => {
                self.p.say(&format!(
                    "(The file's {}/{key} is not offered as the default: {why})",
                    path.join("/")
                ))?;
                Ok(fallback.to_owned())
            }
        }
    }

    fn block_mut(&mut self, path: &[&str]) -> &mut Block {
        edit::block_mut(&mut self.tree, path)
    }

    fn listeners(&mut self) -> Result<(), ConfigureError> {
        self.p.blank()?;
        self.p.say("== Listeners ==")?;
        self.p.say(LISTENERS_TEXT)?;
        self.p.blank()?;
        let default = self.current(
            &["fence_virtd"],
            "listener",
            answers::listeners,
            ListenerKind::Multicast.name(),
        )?;
        let default = answers::listeners(&default).map_or(default.clone(), |k| names(&k));
        let kinds = self.p.valid("Listeners", &default, answers::listeners)?;
        edit::set(self.block_mut(&["fence_virtd"]), "listener", &names(&kinds));
        self.kinds.clone_from(&kinds);
        let mut last_key = None;
        for kind in kinds {
            self.p.blank()?;
            match kind {
                ListenerKind::Multicast => self.multicast()?,
                ListenerKind::Tcp => self.tcp()?,
                ListenerKind::Vsock => self.vsock()?,
                ListenerKind::Serial => self.serial()?,
            }
            if kind != ListenerKind::Serial {
                last_key = Some(self.auth(kind, last_key)?);
            }
        }
        Ok(())
    }

    fn multicast(&mut self) -> Result<(), ConfigureError> {
        const PATH: [&str; 2] = ["listeners", "multicast"];
        self.p.say("-- multicast listener (fence_xvm) --")?;
        self.p
            .say("Guests send their requests to a multicast group and port; the")?;
        self.p.say("address also sets the family (IPv4 or IPv6).")?;
        let fallback = match edit::value(&self.tree, &PATH, "family").map(answers::family) {
            Some(Ok(Family::Ipv6)) => IpAddr::V6(DEFAULT_MCAST_V6),
            _ => IpAddr::V4(DEFAULT_MCAST_V4),
        };
        let default = self.current(
            &PATH,
            "address",
            answers::multicast_address,
            &fallback.to_string(),
        )?;
        let address = self
            .p
            .valid("Multicast address", &default, answers::multicast_address)?;
        let family = Family::of(&address);
        self.p.say(&format!("Using family {family}."))?;
        let port = self.port(&PATH, "Multicast port", u32::from(u16::MAX))?;
        self.p
            .say("Without an interface the kernel picks the one to join the group on from")?;
        self.p
            .say("its routes. If the guests reach this host over a bridge such as virbr0,")?;
        self.p.say("name it here. `none` means no interface.")?;
        let default = self.current(&PATH, "interface", answers::interface, "none")?;
        let interface = self.p.valid("Interface", &default, answers::interface)?;
        if let Some(name) = &interface {
            let sys = Path::new("/sys/class/net");
            if sys.is_dir() && !sys.join(name).exists() {
                self.p.say(&format!(
                    "Note: this host has no interface {name} right now; the listener cannot start until it exists."
                ))?;
            }
        }
        let block = self.block_mut(&PATH);
        edit::set(block, "family", family.name());
        edit::set(block, "address", &address.to_string());
        edit::set(block, "port", &port.to_string());
        match interface {
            Some(name) => edit::set(block, "interface", &name),
            None => edit::remove(block, "interface"),
        }
        Ok(())
    }

    fn tcp(&mut self) -> Result<(), ConfigureError> {
        const PATH: [&str; 2] = ["listeners", "tcp"];
        self.p.say("-- tcp listener (fence_virt -T) --")?;
        self.p
            .say("The TCP listener accepts connections on one address of this host.")?;
        self.p
            .say("127.0.0.1 (the default) serves this host only; for guests give an address")?;
        self.p
            .say("they can reach (192.168.122.1 on libvirt's default network), or 0.0.0.0")?;
        self.p.say("or :: for every address.")?;
        let fallback = match edit::value(&self.tree, &PATH, "family").map(answers::family) {
            Some(Ok(Family::Ipv6)) => "::1",
            _ => "127.0.0.1",
        };
        let default = self.current(&PATH, "address", answers::listen_address, fallback)?;
        let address = self
            .p
            .valid("TCP listen address", &default, answers::listen_address)?;
        let family = match &address {
            ListenAddress::Ip(ip) => Family::of(ip),
            ListenAddress::Host(host) => {
                let default = self.current(&PATH, "family", answers::family, "ipv4")?;
                self.p.valid(
                    &format!("Address family to resolve {host} in (ipv4 or ipv6)"),
                    &default,
                    answers::family,
                )?
            }
        };
        self.p.say(&format!("Using family {family}."))?;
        let port = self.port(&PATH, "TCP port", u32::from(u16::MAX))?;
        let block = self.block_mut(&PATH);
        edit::set(block, "family", family.name());
        edit::set(block, "address", &address.to_string());
        edit::set(block, "port", &port.to_string());
        Ok(())
    }

    fn vsock(&mut self) -> Result<(), ConfigureError> {
        const PATH: [&str; 2] = ["listeners", "vsock"];
        self.p.say("-- vsock listener (fence_virt -S) --")?;
        self.p
            .say("Guests connect to a vsock port of this host (context id 2 as seen from")?;
        self.p
            .say("the guest); no network between guest and host is needed.")?;
        let port = self.port(&PATH, "vsock port", u32::MAX - 1)?;
        edit::set(self.block_mut(&PATH), "port", &port.to_string());
        Ok(())
    }

    fn serial(&mut self) -> Result<(), ConfigureError> {
        const PATH: [&str; 2] = ["listeners", "serial"];
        self.p
            .say("-- serial listener (fence_virt over serial or VMChannel) --")?;
        self.p
            .say("The serial listener follows libvirt to find each guest's fence socket.")?;
        self.p
            .say("Its requests carry no signature, so groups (below) say which guest may")?;
        self.p.say("fence which VM.")?;
        let default = self.current(&PATH, "uri", answers::uri_or_none, "qemu:///system")?;
        let uri = self.p.valid(
            "Libvirt URI for guest events (none: libvirt's default)",
            &default,
            answers::uri_or_none,
        )?;
        self.p
            .say("With a socket directory only sockets directly inside it are used, so the")?;
        self.p
            .say("listener does not take every Unix socket a guest has; /var/run/cluster/fence")?;
        self.p.say("is a common choice. `none` means any directory.")?;
        let default = self.current(&PATH, "path", answers::socket_dir, "none")?;
        let dir = self.p.valid("Socket directory", &default, answers::socket_dir)?;
        if let Some(dir) = &dir {
            if !Path::new(dir).is_dir() {
                self.p.say(&format!(
                    "Note: {dir} does not exist yet; create it before starting fence_virtd."
                ))?;
            }
        }
        self.p
            .say("Guests talk over a serial port (serial) or a VMChannel (vmchannel).")?;
        let default = self.current(&PATH, "mode", answers::serial_mode, "serial")?;
        let default = answers::serial_mode(&default).map_or(default.clone(), |m| m.name().to_owned());
        let mode = self
            .p
            .valid("Mode (serial or vmchannel)", &default, answers::serial_mode)?;
        let block = self.block_mut(&PATH);
        match uri {
            Some(uri) => edit::set(block, "uri", &uri),
            None => edit::remove(block, "uri"),
        }
        match dir {
            Some(dir) => edit::set(block, "path", &dir),
            None => edit::remove(block, "path"),
        }
        edit::set(block, "mode", mode.name());
        Ok(())
    }

    /// A port question for the listener block at `path`.
    fn port(&mut self, path: &[&str], prompt: &str, max: u32) -> Result<u32, ConfigureError> {
        let check = |a: &str| answers::port(a, max);
        let default = self.current(path, "port", check, &DEFAULT_PORT.to_string())?;
        Ok(self.p.valid(prompt, &default, check)?)
    }

    /// Key file, `hash` and `auth` of an authenticating listener; returns
    /// the key file (the next listener's default).
    fn auth(&mut self, kind: ListenerKind, last_key: Option<String>) -> Result<String, ConfigureError> {
        let path = ["listeners", kind.name()];
        let first = last_key.is_none();
        if first {
            self.p.say(KEY_TEXT)?;
        }
        let fallback = last_key.unwrap_or_else(|| DEFAULT_KEY_FILE.to_owned());
        let default = self.current(&path, "key_file", answers::key_file, &fallback)?;
        let key = self.p.valid("Key file", &default, answers::key_file)?;
        if first {
            self.p.say(HASH_TEXT)?;
        }
        let hash = self.hash(
            &path,
            "hash",
            "Weakest request signature accepted (none, sha1, sha256, sha512)",
        )?;
        let auth = self.hash(
            &path,
            "auth",
            "Challenge-response hash (none, sha1, sha256, sha512)",
        )?;
        if hash == HashType::None && auth == HashType::None {
            self.p.say(&format!(
                "Warning: the {kind} listener will not authenticate anything: anyone who can reach it can fence."
            ))?;
        } else if !self.key_files.contains(&key) {
            self.key_files.push(key.clone());
        }
        let block = self.block_mut(&path);
        edit::set(block, "key_file", &key);
        edit::set(block, "hash", hash.name());
        // The classic daemon reads tcp and vsock `auth` as `hash`: leave it
        // out while it has its default (as vmfence-config's writer does).
        let classic_misreads = matches!(kind, ListenerKind::Tcp | ListenerKind::Vsock);
        if classic_misreads && auth == HashType::default() {
            edit::remove(block, "auth");
        } else {
            edit::set(block, "auth", auth.name());
        }
        Ok(key)
    }

    fn hash(&mut self, path: &[&str], key: &str, prompt: &str) -> Result<HashType, ConfigureError> {
        let default = self.current(path, key, answers::hash, HashType::default().name())?;
        let default = answers::hash(&default).map_or(default.clone(), |h| h.name().to_owned());
        let hash = self.p.valid(prompt, &default, answers::hash)?;
        match hash {
            HashType::None => self.p.say(&format!(
                "Warning: {key} none: {}",
                if key == "hash" {
                    "unsigned requests are accepted from anyone who can reach the listener."
                } else {
                    "the challenge-response is skipped; nothing proves the peer holds the key."
                }
            ))?,
            HashType::Sha1 => self.p.say(&format!(
                "Warning: {key} sha1 is weak; use sha256 or sha512 unless old clients need sha1."
            ))?,
            HashType::Sha256 | HashType::Sha512 => {}
        }
        Ok(hash)
    }

    fn backend(&mut self) -> Result<(), ConfigureError> {
        self.p.blank()?;
        self.p.say("== Backend ==")?;
        self.p.say(BACKEND_TEXT)?;
        let default = self.current(
            &["fence_virtd"],
            "backend",
            answers::backend,
            BackendKind::Libvirt.name(),
        )?;
        let default = answers::backend(&default).map_or(default.clone(), |b| b.name().to_owned());
        let kind = self
            .p
            .valid("Backend (libvirt or cpg)", &default, answers::backend)?;
        edit::set(self.block_mut(&["fence_virtd"]), "backend", kind.name());
        self.uris(kind)?;
        if kind == BackendKind::Cpg {
            self.name_mode()?;
        }
        Ok(())
    }

    /// The backend's libvirt URIs: `uri`, then `uri1`, `uri2`, ... (the
    /// numbering the classic daemon reads).
    fn uris(&mut self, kind: BackendKind) -> Result<(), ConfigureError> {
        let path = ["backends", kind.name()];
        let mut existing = edit::block(&self.tree, &path).map(uris_of).unwrap_or_default();
        let check = answers::uri;
        let first = if existing.is_empty() {
            "qemu:///system".to_owned()
        } else {
            existing.remove(0)
        };
        let first = match check(&first) {
            Ok(_) => first,
            Err(why) => {
                self.p
                    .say(&format!("(The file's URI is not offered as the default: {why})"))?;
                "qemu:///system".to_owned()
            }
        };
        self.p
            .say("The backend connects to libvirt at this URI (qemu:///system for this host).")?;
        let uri = self.p.valid("Libvirt URI", &first, check)?;
        let mut extra: Vec<String> = existing.into_iter().filter(|u| check(u).is_ok()).collect();
        if !extra.is_empty() {
            self.p.say("The file names more hypervisors:")?;
            for u in &extra {
                self.p.say(&format!("  {u}"))?;
            }
            if !self.p.yes_no("Keep them", true)? {
                extra.clear();
            }
        }
        self.p
            .say("More hypervisors can be added, one URI at a time (an empty line ends the list).")?;
        while let Some(u) = self.p.list_item("Another libvirt URI", check)? {
            extra.push(u);
        }
        let block = self.block_mut(&path);
        edit::set(block, "uri", &uri);
        edit::remove_where(block, |k| uri_number(k).is_some());
        for (i, u) in extra.iter().enumerate() {
            block.push_value(format!("uri{}", i + 1), u.clone());
        }
        Ok(())
    }

    fn name_mode(&mut self) -> Result<(), ConfigureError> {
        const PATH: [&str; 2] = ["backends", "cpg"];
        self.p
            .say("The cpg backend tracks VMs by UUID or by name. Names need not be unique")?;
        self.p.say("across a cluster, so uuid is strongly recommended.")?;
        let legacy = edit::value(&self.tree, &["fence_virtd"], "name_mode").map(str::to_owned);
        let fallback = legacy
            .filter(|v| answers::name_mode(v).is_ok())
            .unwrap_or_else(|| NameMode::Uuid.name().to_owned());
        let default = self.current(&PATH, "name_mode", answers::name_mode, &fallback)?;
        let default = answers::name_mode(&default).map_or(default.clone(), |m| m.name().to_owned());
        let mode = self
            .p
            .valid("VM naming mode (name or uuid)", &default, answers::name_mode)?;
        if mode == NameMode::Name {
            self.p
                .say("Warning: with name mode, make sure no two VMs of the cluster share a name.")?;
        }
        edit::set(self.block_mut(&PATH), "name_mode", mode.name());
        Ok(())
    }

    fn groups(&mut self) -> Result<(), ConfigureError> {
        self.p.blank()?;
        self.p.say("== Groups ==")?;
        self.p.say(GROUPS_TEXT)?;
        let existing: Vec<(String, Vec<String>, Vec<String>)> = edit::block(&self.tree, &["groups"])
            .map(|g| {
                let blocks: Vec<&Block> = g.blocks("group").collect();
                let total = blocks.len();
                blocks
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let label = b
                            .value("name")
                            .map(|a| a.value.clone())
                            .or_else(|| b.value.as_ref().map(|v| v.text.clone()))
                            .unwrap_or_else(|| format!("unnamed-{}", total - i));
                        let list = |key| b.values(key).map(|a| a.value.clone()).collect::<Vec<_>>();
                        (label, list("uuid"), list("ip"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut count = existing.len();
        if !existing.is_empty() {
            self.p.say("The file has these groups:")?;
            for (label, vms, clients) in &existing {
                self.p.say(&format!(
                    "  {label}: VMs {}; clients {}",
                    list_or_none(vms),
                    list_or_none(clients)
                ))?;
            }
            if !self.p.yes_no("Keep them", true)? {
                self.remove_groups();
                count = 0;
            }
        }
        loop {
            let prompt = if count == 0 {
                "Add a group"
            } else {
                "Add another group"
            };
            if !self.p.yes_no(prompt, false)? {
                break;
            }
            let name = self
                .p
                .valid("Group name", &format!("group{}", count + 1), answers::group_name)?;
            self.p
                .say("VMs the group's clients may fence, by UUID or name. For the serial")?;
            self.p
                .say("listener the client is a guest known by its UUID: list that UUID here too.")?;
            let mut vms = Vec::new();
            while let Some(vm) = self.p.list_item("VM", answers::vm)? {
                vms.push(vm);
            }
            self.p
                .say("Clients that may fence them: IP addresses (multicast, tcp) or context ids (vsock).")?;
            let mut clients = Vec::new();
            while let Some(client) = self.p.list_item("Client", answers::client)? {
                clients.push(client);
            }
            if vms.is_empty() && clients.is_empty() {
                self.p.say("The group lists nothing; it is not added.")?;
                continue;
            }
            if vms.is_empty() {
                self.p
                    .say("Note: the group lists no VM, so its clients may fence nothing.")?;
            }
            let mut group = Block::new("group");
            group.push_value("name", name);
            for vm in vms {
                group.push_value("uuid", vm);
            }
            for client in clients {
                group.push_value("ip", client);
            }
            self.block_mut(&["groups"]).push_block(group);
            count += 1;
        }
        if count == 0 && self.kinds.contains(&ListenerKind::Serial) {
            self.unrestricted()?;
        }
        Ok(())
    }

    /// Serial listener without groups: refuse everything (the default) or
    /// let every guest fence every VM as the classic daemon does.
    fn unrestricted(&mut self) -> Result<(), ConfigureError> {
        const PATH: [&str; 2] = ["listeners", "serial"];
        let current = edit::value(&self.tree, &PATH, "unrestricted")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n != 0);
        self.p
            .say("Without groups the serial listener refuses every request. It can instead")?;
        self.p
            .say("let every guest with a fence socket fence every VM (as the classic daemon")?;
        self.p
            .say("does), which only suits a host whose guests all trust each other.")?;
        let open = self.p.yes_no("Let every guest fence every VM", current)?;
        let block = self.block_mut(&PATH);
        if open {
            edit::set(block, "unrestricted", "1");
        } else {
            edit::remove(block, "unrestricted");
        }
        Ok(())
    }

    /// Drop the group blocks of the groups block in force (and the block
    /// itself when nothing else is left in it), with their comments.
    fn remove_groups(&mut self) {
        let Some(index) =
            self.tree.items.iter().rposition(
                |i| matches!(i, Item::Block(b) if vmfence_config::syntax::eq_name(&b.name, "groups")),
            )
        else {
            return;
        };
        let Some(Item::Block(groups)) = self.tree.items.get_mut(index) else {
            return;
        };
        for g in edit::remove_blocks(&mut groups.items, "group") {
            self.comments.forget(g.line, g.end_line);
        }
        if groups.items.is_empty() {
            let (line, end) = (groups.line, groups.end_line);
            self.tree.items.remove(index);
            self.comments.forget(line, end);
        }
    }

    fn finish(mut self) -> Result<(), ConfigureError> {
        let plain = write_tree(&self.tree)?;
        let mut text = comments::render(&self.tree, self.comments.clone());
        let same = parse(&text).is_ok_and(|t| t.same_content(&self.tree));
        if !same {
            self.p.say("Note: the comments of the file could not be kept.")?;
            text = plain;
        }
        self.p.blank()?;
        let config = match parse_config(&text, &self.file) {
            Ok(config) => config,
            Err(errors) => {
                self.p.say("The resulting configuration is not valid:")?;
                for e in &errors.errors {
                    self.p.say(&format!("  {e}"))?;
                }
                self.show(&text)?;
                return Err(ConfigureError::Invalid {
                    file: self.file,
                    count: errors.errors.len(),
                });
            }
        };
        self.p.say("Configuration complete.")?;
        for w in &config.warnings {
            self.p.say(&format!("  {w}"))?;
        }
        self.check_keys()?;
        self.show(&text)?;
        let name = self.file.display().to_string();
        let question = if self.existed {
            format!("Replace {name} with the above")
        } else {
            format!("Write the above to {name}")
        };
        if !self.p.yes_no(&question, false)? {
            return Err(ConfigureError::NotWritten {
                existed: self.existed && self.file.exists(),
                file: self.file,
            });
        }
        write::replace_file(&self.file, &text).map_err(|source| ConfigureError::Write {
            file: self.file.clone(),
            source,
        })?;
        self.p.say(&format!("Wrote {name}."))?;
        Ok(())
    }

    fn show(&mut self, text: &str) -> Result<(), DialogueError> {
        self.p.say("=== Begin Configuration ===")?;
        self.p.say(text.trim_end_matches('\n'))?;
        self.p.say("=== End Configuration ===")
    }

    /// The key files as `--check` loads them; a missing one gets the
    /// command that makes it.
    fn check_keys(&mut self) -> Result<(), DialogueError> {
        for path in self.key_files.clone() {
            match load_key_file(Path::new(&path)) {
                Ok(loaded) => {
                    for w in &loaded.warnings {
                        match w {
                            KeyFileWarning::Permissions { .. } => self.p.say(&format!(
                                "Warning: key file {path} {w}; fence_virtd refuses it until you run chmod 600 {path}"
                            ))?,
                            KeyFileWarning::TooLong { .. } => {
                                self.p.say(&format!("Warning: key file {path} {w}"))?
                            }
                        }
                    }
                }
                Err(KeyFileError::Missing { .. }) => {
                    self.p.say(&format!(
                        "Warning: the key file {path} does not exist yet. Make one with"
                    ))?;
                    let dir = write::parent_dir(Path::new(&path));
                    if !dir.is_dir() {
                        self.p.say(&format!("  mkdir -p {}", dir.display()))?;
                    }
                    self.p
                        .say(&format!("  dd if=/dev/urandom of={path} bs=4096 count=1"))?;
                    self.p.say(&format!("  chmod 600 {path}"))?;
                    self.p.say("and copy it to the guests.")?;
                }
                Err(e) => self.p.say(&format!("Warning: {e}"))?,
            }
        }
        Ok(())
    }
}

/// `multicast,tcp`: the `listener` value for a list.
fn names(kinds: &[ListenerKind]) -> String {
    kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
}

/// The number of a `uriN` key (N ≥ 0); `None` for anything else,
/// including `uri` itself.
fn uri_number(key: &str) -> Option<u64> {
    let prefix = key.get(..3)?;
    let digits = key.get(3..)?;
    if !prefix.eq_ignore_ascii_case("uri") || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // Too many digits for a number: still a numbered key, sorted last.
    Some(digits.parse::<u64>().unwrap_or(u64::MAX))
}

/// The URIs of a backend block in vmfence's order: `uri`, then `uriN` by
/// number; the last of equal keys wins.
fn uris_of(block: &Block) -> Vec<String> {
    let mut numbered: Vec<(Option<u64>, String)> = Vec::new();
    for item in &block.items {
        let Item::Assignment(a) = item else { continue };
        let n = if a.key.eq_ignore_ascii_case("uri") {
            None
        } else {
            match uri_number(&a.key) {
                Some(n) => Some(n),
                None => continue,
            }
        };
        numbered.retain(|(m, _)| *m != n);
        numbered.push((n, a.value.clone()));
    }
    numbered.sort_by_key(|(n, _)| *n);
    numbered.into_iter().map(|(_, u)| u).collect()
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests;
