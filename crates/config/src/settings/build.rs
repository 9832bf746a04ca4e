//! The walk from [`Tree`] to [`Config`]: checks every block against the keys
//! and blocks it may hold, reads values with the classic lookup rules, and
//! gathers every error and warning on the way instead of stopping at the
//! first one (a bad value is replaced by its default so the walk goes on).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vmfence_proto::{HashType, DEFAULT_KEY_FILE, DEFAULT_MCAST_V4, DEFAULT_MCAST_V6, DEFAULT_PORT};

use super::{
    AuthSettings, BackendKind, BackendSettings, Config, CpgSettings, DaemonSettings, Family, Group,
    KeyFileSetting, LibvirtSettings, ListenAddress, ListenerKind, ListenerSettings, MulticastSettings,
    NameMode, SerialMode, SerialSettings, TcpSettings, VsockSettings,
};
use crate::diag::{ConfigError, ConfigErrors, Location, Warning, WarningKind};
use crate::suggest::did_you_mean;
use crate::syntax::{eq_name, Assignment, Block, Item, Tree};

/// Group entries longer than this are cut by the classic daemon.
const CLASSIC_GROUP_ENTRY_MAX: usize = 127;
/// Longest Linux interface name (IFNAMSIZ - 1).
const MAX_INTERFACE_LEN: usize = 15;
/// Backends of the classic man page that vmfence does not implement.
const UNSUPPORTED_BACKENDS: [&str; 1] = ["libvirt-qmf"];
const HASH_WORDS: [&str; 4] = ["none", "sha1", "sha256", "sha512"];

/// What a block may contain.
struct Schema {
    /// Single-valued keys (last wins).
    keys: &'static [&'static str],
    /// Keys that may repeat and are collected.
    list_keys: &'static [&'static str],
    /// A key that may carry a number suffix (`uri`, `uri1`, ...).
    numbered: Option<&'static str>,
    /// Child blocks (last wins).
    blocks: &'static [&'static str],
    /// Child blocks that may repeat and are collected.
    repeat_blocks: &'static [&'static str],
}

const TOP: Schema = Schema {
    keys: &[],
    list_keys: &[],
    numbered: None,
    blocks: &["fence_virtd", "listeners", "backends", "groups"],
    repeat_blocks: &[],
};
const DAEMON: Schema = Schema {
    keys: &[
        "listener",
        "backend",
        "module_path",
        "debug",
        "foreground",
        "wait_for_init",
        "wait_for_backend",
        "name_mode",
    ],
    list_keys: &[],
    numbered: None,
    blocks: &[],
    repeat_blocks: &[],
};
const LISTENERS: Schema = Schema {
    keys: &[],
    list_keys: &[],
    numbered: None,
    blocks: &["multicast", "tcp", "vsock", "serial"],
    repeat_blocks: &[],
};
const MULTICAST: Schema = Schema {
    keys: &[
        "key_file",
        "hash",
        "auth",
        "family",
        "address",
        "port",
        "interface",
    ],
    list_keys: &[],
    numbered: None,
    blocks: &[],
    repeat_blocks: &[],
};
const TCP: Schema = Schema {
    keys: &["key_file", "hash", "auth", "family", "address", "port"],
    list_keys: &[],
    numbered: None,
    blocks: &[],
    repeat_blocks: &[],
};
const VSOCK: Schema = Schema {
    keys: &["key_file", "hash", "auth", "port"],
    list_keys: &[],
    numbered: None,
    blocks: &[],
    repeat_blocks: &[],
};
const SERIAL: Schema = Schema {
    keys: &["uri", "path", "mode", "key_file", "unrestricted"],
    list_keys: &[],
    numbered: None,
    blocks: &[],
    repeat_blocks: &[],
};
const BACKENDS: Schema = Schema {
    keys: &[],
    list_keys: &[],
    numbered: None,
    blocks: &["libvirt", "cpg", "libvirt-qmf"],
    repeat_blocks: &[],
};
const LIBVIRT: Schema = Schema {
    keys: &[],
    list_keys: &[],
    numbered: Some("uri"),
    blocks: &[],
    repeat_blocks: &[],
};
const CPG: Schema = Schema {
    keys: &["name_mode"],
    list_keys: &[],
    numbered: Some("uri"),
    blocks: &[],
    repeat_blocks: &[],
};
const LIBVIRT_QMF: Schema = Schema {
    keys: &["host", "port", "username", "service", "gssapi"],
    list_keys: &[],
    numbered: None,
    blocks: &[],
    repeat_blocks: &[],
};
const GROUPS: Schema = Schema {
    keys: &[],
    list_keys: &[],
    numbered: None,
    blocks: &[],
    repeat_blocks: &["group"],
};
const GROUP: Schema = Schema {
    keys: &["name"],
    list_keys: &["uuid", "ip"],
    numbered: None,
    blocks: &[],
    repeat_blocks: &[],
};

/// Validate `tree` and build the typed configuration.
pub(super) fn build(tree: &Tree, file: Arc<Path>) -> Result<Config, ConfigErrors> {
    let mut builder = Builder {
        file,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let config = builder.config(tree);
    builder.finish(config)
}

struct Builder {
    file: Arc<Path>,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

/// What the `fence_virtd` block says, before the other blocks are read.
struct DaemonBlock {
    settings: DaemonSettings,
    listeners: Vec<ListenerKind>,
    /// Location of the `listener` key (defaults of absent listener blocks
    /// are reported there).
    listener_at: Location,
    backend: Option<BackendKind>,
    backend_at: Location,
    /// `fence_virtd/name_mode`, if valid, and its line, if present.
    legacy_name_mode: Option<NameMode>,
    legacy_name_mode_line: Option<u32>,
}

impl Builder {
    fn at(&self, line: u32) -> Location {
        Location::new(&self.file, line)
    }

    fn warn(&mut self, line: u32, kind: WarningKind) {
        let at = self.at(line);
        self.warnings.push(Warning { at, kind });
    }

    fn config(&mut self, tree: &Tree) -> Option<Config> {
        self.check_items(&tree.items, None, &TOP);

        let daemon = match tree.block("fence_virtd") {
            Some(block) => Some(self.daemon(block)),
            None => {
                self.errors.push(ConfigError::MissingDaemonBlock {
                    at: Location::file(&self.file),
                });
                None
            }
        };
        let groups = self.groups(tree.block("groups"));

        let listeners_block = tree.block("listeners");
        if let Some(block) = listeners_block {
            self.check_items(&block.items, Some("listeners"), &LISTENERS);
        }
        let wanted: &[ListenerKind] = daemon.as_ref().map_or(&[], |d| &d.listeners);
        let mut listeners = Vec::new();
        for kind in ListenerKind::ALL {
            let block = listeners_block.and_then(|b| b.block(kind.name()));
            let position = wanted.iter().position(|&k| k == kind);
            match (block, position, &daemon) {
                (Some(block), None, _) => {
                    self.listener(kind, Some(block), None);
                    self.warn(block.line, WarningKind::UnusedListenerBlock { name: kind.name() });
                }
                (block, Some(position), Some(d)) => {
                    let settings = self.listener(kind, block, Some(&d.listener_at));
                    listeners.push((position, settings));
                }
                (None, _, _) | (Some(_), Some(_), None) => {}
            }
        }
        listeners.sort_by_key(|(position, _)| *position);
        let listeners: Vec<ListenerSettings> = listeners.into_iter().map(|(_, l)| l).collect();

        let backend = daemon
            .as_ref()
            .and_then(|d| self.backends(tree.block("backends"), d));

        for listener in &listeners {
            if let Some(auth) = listener.auth() {
                if !auth.needs_key() {
                    let kind = WarningKind::NoAuthentication {
                        listener: listener.kind().name(),
                    };
                    self.warnings.push(Warning {
                        at: listener.at().clone(),
                        kind,
                    });
                }
            }
            if let ListenerSettings::Serial(serial) = listener {
                if groups.is_empty() {
                    self.warnings.push(Warning {
                        at: serial.at.clone(),
                        kind: WarningKind::SerialWithoutGroups {
                            unrestricted: serial.unrestricted,
                        },
                    });
                }
            }
        }

        let daemon = daemon?;
        let backend = backend?;
        if listeners.is_empty() {
            return None;
        }
        Some(Config {
            source: Arc::clone(&self.file),
            daemon: daemon.settings,
            listeners,
            backend,
            groups,
            warnings: Vec::new(),
        })
    }

    fn finish(mut self, config: Option<Config>) -> Result<Config, ConfigErrors> {
        self.errors.sort_by_key(|e| e.location().line);
        self.warnings.sort_by_key(|w| w.at.line);
        match config {
            Some(mut config) if self.errors.is_empty() => {
                config.warnings = self.warnings;
                Ok(config)
            }
            _ => {
                if self.errors.is_empty() {
                    // Unreachable by construction: every path that yields no
                    // config records why. Keep the promise of a non-empty list.
                    self.errors.push(ConfigError::MissingDaemonBlock {
                        at: Location::file(&self.file),
                    });
                }
                Err(ConfigErrors {
                    errors: self.errors,
                    warnings: self.warnings,
                })
            }
        }
    }

    /// Report unknown keys and blocks, misplaced keys/blocks, repeated keys
    /// and repeated blocks of one block's items. `place` is the block path;
    /// `None` is the top level, where unknown blocks are only warnings.
    fn check_items(&mut self, items: &[Item], place: Option<&str>, schema: &Schema) {
        let place_text = place.unwrap_or("the top level").to_owned();
        let mut keys: HashMap<String, Vec<(String, u32)>> = HashMap::new();
        let mut blocks: HashMap<String, Vec<(String, u32)>> = HashMap::new();
        for item in items {
            match item {
                Item::Assignment(a) => match canonical_key(&a.key, schema) {
                    Some(canon) => {
                        if !contains(schema.list_keys, &a.key) {
                            keys.entry(canon).or_default().push((a.key.clone(), a.key_line));
                        }
                    }
                    None if contains(schema.blocks, &a.key) || contains(schema.repeat_blocks, &a.key) => {
                        self.errors.push(ConfigError::KeyNotBlock {
                            at: self.at(a.key_line),
                            name: a.key.clone(),
                            place: place_text.clone(),
                        });
                    }
                    None => {
                        let candidates = schema
                            .keys
                            .iter()
                            .chain(schema.list_keys)
                            .chain(schema.numbered.iter())
                            .copied();
                        self.errors.push(ConfigError::UnknownKey {
                            at: self.at(a.key_line),
                            key: a.key.clone(),
                            place: place_text.clone(),
                            suggestion: did_you_mean(&a.key, candidates),
                        });
                    }
                },
                Item::Block(b) => {
                    if contains(schema.blocks, &b.name) {
                        blocks
                            .entry(b.name.to_ascii_lowercase())
                            .or_default()
                            .push((b.name.clone(), b.line));
                        if b.value.is_some() {
                            self.warn(b.line, WarningKind::BlockValueIgnored { name: b.name.clone() });
                        }
                    } else if contains(schema.repeat_blocks, &b.name) {
                        // Collected; a value is this group's name.
                    } else if place.is_none() {
                        let suggestion = did_you_mean(&b.name, schema.blocks.iter().copied());
                        self.warn(
                            b.line,
                            WarningKind::UnknownTopLevelBlock {
                                name: b.name.clone(),
                                suggestion,
                            },
                        );
                    } else if contains(schema.keys, &b.name)
                        || contains(schema.list_keys, &b.name)
                        || canonical_key(&b.name, schema).is_some()
                    {
                        self.errors.push(ConfigError::BlockNotKey {
                            at: self.at(b.line),
                            name: b.name.clone(),
                            place: place_text.clone(),
                        });
                    } else {
                        let candidates = schema.blocks.iter().chain(schema.repeat_blocks).copied();
                        self.errors.push(ConfigError::UnknownBlock {
                            at: self.at(b.line),
                            name: b.name.clone(),
                            place: place_text.clone(),
                            suggestion: did_you_mean(&b.name, candidates),
                        });
                    }
                }
            }
        }
        for occurrences in sorted_groups(keys) {
            if let Some((_, used_line)) = occurrences.last().cloned() {
                for (key, line) in &occurrences[..occurrences.len() - 1] {
                    self.warn(
                        *line,
                        WarningKind::DuplicateKey {
                            key: key.clone(),
                            place: place_text.clone(),
                            used_line,
                        },
                    );
                }
            }
        }
        for occurrences in sorted_groups(blocks) {
            if let Some((_, used_line)) = occurrences.last().cloned() {
                for (name, line) in &occurrences[..occurrences.len() - 1] {
                    let path = match place {
                        Some(p) => format!("{p}/{name}"),
                        None => name.clone(),
                    };
                    self.warn(*line, WarningKind::DuplicateBlock { path, used_line });
                }
            }
        }
    }

    fn daemon(&mut self, block: &Block) -> DaemonBlock {
        self.check_items(&block.items, Some("fence_virtd"), &DAEMON);
        let block_at = self.at(block.line);

        let mut listener_at = block_at.clone();
        let mut listeners = Vec::new();
        match block.value("listener") {
            Some(a) => {
                listener_at = self.at(a.value_line);
                listeners = self.listener_list(a);
            }
            None => self.errors.push(ConfigError::MissingKey {
                at: block_at.clone(),
                key: "listener",
                example: "multicast",
            }),
        }

        let mut backend_at = block_at.clone();
        let mut backend = None;
        match block.value("backend") {
            Some(a) => {
                backend_at = self.at(a.value_line);
                backend = self.backend_name(a);
            }
            None => self.errors.push(ConfigError::MissingKey {
                at: block_at.clone(),
                key: "backend",
                example: "libvirt",
            }),
        }

        let module_path = block.value("module_path").map(|a| {
            self.warn(a.key_line, WarningKind::ModulePathIgnored);
            a.value.clone()
        });
        let debug = block
            .value("debug")
            .and_then(|a| self.number(a, "debug"))
            .unwrap_or(0);
        let foreground = block
            .value("foreground")
            .and_then(|a| self.number(a, "foreground"))
            .unwrap_or(0)
            != 0;
        let wait_for_init = block
            .value("wait_for_init")
            .and_then(|a| self.number(a, "wait_for_init"));
        let wait_for_backend = block.value("wait_for_backend").and_then(|a| {
            self.warn(
                a.key_line,
                WarningKind::LegacyWaitForBackend {
                    overridden: block.value("wait_for_init").is_some(),
                },
            );
            self.number(a, "wait_for_backend")
        });
        let wait_for_init = wait_for_init.or(wait_for_backend).unwrap_or(0) != 0;
        let legacy = block.value("name_mode");
        let legacy_name_mode = legacy.and_then(|a| self.name_mode(a));

        DaemonBlock {
            settings: DaemonSettings {
                module_path,
                debug,
                foreground,
                wait_for_init,
                at: block_at,
            },
            listeners,
            listener_at,
            backend,
            backend_at,
            legacy_name_mode,
            legacy_name_mode_line: legacy.map(|a| a.key_line),
        }
    }

    /// `listener = "multicast"` or, as an extension, `"multicast, tcp"`.
    fn listener_list(&mut self, a: &Assignment) -> Vec<ListenerKind> {
        let at = self.at(a.value_line);
        let mut kinds = Vec::new();
        let names: Vec<&str> = a
            .value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        for name in &names {
            match name.parse::<ListenerKind>() {
                Ok(kind) if kinds.contains(&kind) => self.errors.push(ConfigError::DuplicateListener {
                    at: at.clone(),
                    name: kind.name().to_owned(),
                }),
                Ok(kind) => kinds.push(kind),
                Err(_) => self.errors.push(ConfigError::UnknownListener {
                    at: at.clone(),
                    name: (*name).to_owned(),
                    suggestion: did_you_mean(name, ListenerKind::ALL.map(ListenerKind::name)),
                }),
            }
        }
        if names.is_empty() {
            self.errors.push(ConfigError::EmptyListenerList { at });
        } else if names.len() > 1 {
            self.warn(a.value_line, WarningKind::ListenerList);
        }
        kinds
    }

    fn backend_name(&mut self, a: &Assignment) -> Option<BackendKind> {
        match a.value.parse::<BackendKind>() {
            Ok(kind) => Some(kind),
            Err(_) if contains(&UNSUPPORTED_BACKENDS, &a.value) => {
                self.errors.push(ConfigError::UnsupportedBackend {
                    at: self.at(a.value_line),
                    name: a.value.clone(),
                });
                None
            }
            Err(_) => {
                self.errors.push(ConfigError::UnknownBackend {
                    at: self.at(a.value_line),
                    name: a.value.clone(),
                    suggestion: did_you_mean(&a.value, BackendKind::ALL.map(BackendKind::name)),
                });
                None
            }
        }
    }

    /// Validate one listener block (or defaults when `block` is `None`).
    /// `fallback` locates the defaults when there is no block.
    fn listener(
        &mut self,
        kind: ListenerKind,
        block: Option<&Block>,
        fallback: Option<&Location>,
    ) -> ListenerSettings {
        let at = match (block, fallback) {
            (Some(b), _) => self.at(b.line),
            (None, Some(f)) => f.clone(),
            (None, None) => Location::file(&self.file),
        };
        let place = format!("listeners/{}", kind.name());
        if let Some(block) = block {
            let schema = match kind {
                ListenerKind::Multicast => &MULTICAST,
                ListenerKind::Tcp => &TCP,
                ListenerKind::Vsock => &VSOCK,
                ListenerKind::Serial => &SERIAL,
            };
            self.check_items(&block.items, Some(&place), schema);
        }
        let get = |key: &str| block.and_then(|b| b.value(key));
        match kind {
            ListenerKind::Multicast => {
                let auth = self.auth(kind, block, &at);
                let family = self.family(get("family"));
                let address = match get("address") {
                    Some(a) => self.multicast_address(a, family, get("family").is_none()),
                    None => None,
                };
                let address = address.unwrap_or(match family {
                    Family::Ipv4 => IpAddr::V4(DEFAULT_MCAST_V4),
                    Family::Ipv6 => IpAddr::V6(DEFAULT_MCAST_V6),
                });
                let port = self.ip_port(get("port"));
                let interface = get("interface").and_then(|a| self.interface(a));
                ListenerSettings::Multicast(MulticastSettings {
                    auth,
                    family,
                    address,
                    port,
                    interface,
                    at,
                })
            }
            ListenerKind::Tcp => {
                let auth = self.auth(kind, block, &at);
                let family = self.family(get("family"));
                let address =
                    get("address").and_then(|a| self.listen_address(a, family, get("family").is_none()));
                let address = address.unwrap_or(ListenAddress::Ip(match family {
                    Family::Ipv4 => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                    Family::Ipv6 => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                }));
                let port = self.ip_port(get("port"));
                ListenerSettings::Tcp(TcpSettings {
                    auth,
                    family,
                    address,
                    port,
                    at,
                })
            }
            ListenerKind::Vsock => {
                let auth = self.auth(kind, block, &at);
                // VMADDR_PORT_ANY (u32::MAX) is not a port one can listen on by name.
                let port = get("port")
                    .and_then(|a| self.port(a, u32::MAX - 1))
                    .unwrap_or(u32::from(DEFAULT_PORT));
                ListenerSettings::Vsock(VsockSettings { auth, port, at })
            }
            ListenerKind::Serial => {
                if let Some(a) = get("key_file") {
                    self.warn(a.key_line, WarningKind::SerialKeyFileIgnored);
                }
                let uri = get("uri").map(|a| a.value.clone());
                let path = get("path").map(|a| PathBuf::from(&a.value));
                let mode = get("mode").and_then(|a| self.serial_mode(a)).unwrap_or_default();
                let unrestricted = get("unrestricted")
                    .and_then(|a| self.number(a, "unrestricted"))
                    .is_some_and(|n| n != 0);
                ListenerSettings::Serial(SerialSettings {
                    uri,
                    path,
                    mode,
                    unrestricted,
                    at,
                })
            }
        }
    }

    fn auth(&mut self, kind: ListenerKind, block: Option<&Block>, at: &Location) -> AuthSettings {
        let get = |key: &str| block.and_then(|b| b.value(key));
        let key_file = match get("key_file") {
            Some(a) => {
                if !Path::new(&a.value).is_absolute() {
                    self.warn(
                        a.value_line,
                        WarningKind::RelativeKeyFile {
                            path: a.value.clone(),
                        },
                    );
                }
                KeyFileSetting {
                    path: PathBuf::from(&a.value),
                    at: self.at(a.value_line),
                    explicit: true,
                }
            }
            None => KeyFileSetting {
                path: PathBuf::from(DEFAULT_KEY_FILE),
                at: at.clone(),
                explicit: false,
            },
        };
        let hash = get("hash").and_then(|a| self.hash(a, "hash")).unwrap_or_default();
        let auth_value = get("auth");
        let auth = auth_value.and_then(|a| self.hash(a, "auth")).unwrap_or_default();
        if let Some(a) = auth_value {
            let same_for_classic = auth == hash && auth == HashType::default();
            if matches!(kind, ListenerKind::Tcp | ListenerKind::Vsock) && !same_for_classic {
                self.warn(
                    a.key_line,
                    WarningKind::AuthDiffersFromClassic {
                        listener: kind.name(),
                    },
                );
            }
        }
        AuthSettings { key_file, hash, auth }
    }

    fn hash(&mut self, a: &Assignment, key: &'static str) -> Option<HashType> {
        match a.value.parse::<HashType>() {
            Ok(h) => Some(h),
            Err(_) => {
                self.errors.push(ConfigError::BadHash {
                    at: self.at(a.value_line),
                    key,
                    value: a.value.clone(),
                    suggestion: did_you_mean(&a.value, HASH_WORDS),
                });
                None
            }
        }
    }

    fn family(&mut self, a: Option<&Assignment>) -> Family {
        let Some(a) = a else { return Family::default() };
        if a.value.eq_ignore_ascii_case("ipv4") {
            Family::Ipv4
        } else if a.value.eq_ignore_ascii_case("ipv6") {
            Family::Ipv6
        } else {
            self.errors.push(ConfigError::BadFamily {
                at: self.at(a.value_line),
                value: a.value.clone(),
            });
            Family::default()
        }
    }

    fn multicast_address(&mut self, a: &Assignment, family: Family, defaulted: bool) -> Option<IpAddr> {
        let at = self.at(a.value_line);
        let Ok(addr) = a.value.parse::<IpAddr>() else {
            self.errors.push(ConfigError::BadAddress {
                at,
                value: a.value.clone(),
            });
            return None;
        };
        let actual = Family::of(&addr);
        if actual != family {
            self.errors.push(ConfigError::FamilyMismatch {
                at,
                value: a.value.clone(),
                family,
                actual,
                defaulted,
            });
            return None;
        }
        if !addr.is_multicast() {
            self.errors.push(ConfigError::NotMulticast {
                at,
                value: a.value.clone(),
            });
            return None;
        }
        Some(addr)
    }

    fn listen_address(&mut self, a: &Assignment, family: Family, defaulted: bool) -> Option<ListenAddress> {
        let at = self.at(a.value_line);
        if let Ok(addr) = a.value.parse::<IpAddr>() {
            let actual = Family::of(&addr);
            if actual != family {
                self.errors.push(ConfigError::FamilyMismatch {
                    at,
                    value: a.value.clone(),
                    family,
                    actual,
                    defaulted,
                });
                return None;
            }
            return Some(ListenAddress::Ip(addr));
        }
        if is_host_name(&a.value) {
            Some(ListenAddress::Host(a.value.clone()))
        } else {
            self.errors.push(ConfigError::BadHost {
                at,
                value: a.value.clone(),
            });
            None
        }
    }

    /// A TCP/UDP port, 1229 when absent or bad.
    fn ip_port(&mut self, a: Option<&Assignment>) -> u16 {
        a.and_then(|a| self.port(a, u32::from(u16::MAX)))
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(DEFAULT_PORT)
    }

    fn port(&mut self, a: &Assignment, max: u32) -> Option<u32> {
        let text = a.value.trim();
        let at = self.at(a.value_line);
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            self.errors.push(ConfigError::PortNotNumber {
                at,
                value: a.value.clone(),
            });
            return None;
        }
        match text.parse::<u32>() {
            Ok(port) if (1..=max).contains(&port) => Some(port),
            _ => {
                self.errors.push(ConfigError::PortOutOfRange {
                    at,
                    value: text.to_owned(),
                    max,
                });
                None
            }
        }
    }

    fn interface(&mut self, a: &Assignment) -> Option<String> {
        let name = &a.value;
        let valid = name.len() <= MAX_INTERFACE_LEN
            && name != "."
            && name != ".."
            && !name
                .chars()
                .any(|c| c == '/' || c.is_whitespace() || c.is_control());
        if valid {
            Some(name.clone())
        } else {
            self.errors.push(ConfigError::BadInterface {
                at: self.at(a.value_line),
                value: name.clone(),
            });
            None
        }
    }

    fn serial_mode(&mut self, a: &Assignment) -> Option<SerialMode> {
        let value = a.value.as_str();
        if value.eq_ignore_ascii_case("serial") {
            return Some(SerialMode::Serial);
        }
        if value.eq_ignore_ascii_case("vmchannel") {
            return Some(SerialMode::Vmchannel);
        }
        let trimmed = value.trim();
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            // The classic listener falls back to atoi(): non-zero is vmchannel.
            let vmchannel = trimmed.bytes().any(|b| b != b'0');
            self.warn(
                a.value_line,
                WarningKind::NumericSerialMode {
                    value: value.to_owned(),
                    vmchannel,
                },
            );
            return Some(if vmchannel {
                SerialMode::Vmchannel
            } else {
                SerialMode::Serial
            });
        }
        self.errors.push(ConfigError::BadMode {
            at: self.at(a.value_line),
            value: value.to_owned(),
            suggestion: did_you_mean(value, ["serial", "vmchannel"]),
        });
        None
    }

    fn name_mode(&mut self, a: &Assignment) -> Option<NameMode> {
        if a.value.eq_ignore_ascii_case("name") {
            Some(NameMode::Name)
        } else if a.value.eq_ignore_ascii_case("uuid") {
            Some(NameMode::Uuid)
        } else {
            self.errors.push(ConfigError::BadNameMode {
                at: self.at(a.value_line),
                value: a.value.clone(),
            });
            None
        }
    }

    fn number(&mut self, a: &Assignment, key: &'static str) -> Option<u32> {
        let text = a.value.trim();
        match text.parse::<u32>() {
            Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                self.errors.push(ConfigError::NotANumber {
                    at: self.at(a.value_line),
                    key,
                    value: a.value.clone(),
                });
                None
            }
        }
    }

    /// Validate every backend block; return the selected backend's settings.
    fn backends(&mut self, backends: Option<&Block>, daemon: &DaemonBlock) -> Option<BackendSettings> {
        if let Some(block) = backends {
            self.check_items(&block.items, Some("backends"), &BACKENDS);
            for name in UNSUPPORTED_BACKENDS {
                if let Some(b) = block.block(name) {
                    self.check_items(&b.items, Some(&format!("backends/{name}")), &LIBVIRT_QMF);
                    self.warn(
                        b.line,
                        WarningKind::UnsupportedBackendBlock { name: b.name.clone() },
                    );
                }
            }
        }
        if let Some(line) = daemon.legacy_name_mode_line {
            let overridden = backends
                .and_then(|b| b.block("cpg"))
                .and_then(|b| b.value("name_mode"))
                .is_some();
            self.warn(line, WarningKind::LegacyNameMode { overridden });
        }
        let mut selected = None;
        for kind in BackendKind::ALL {
            let block = backends.and_then(|b| b.block(kind.name()));
            let chosen = daemon.backend == Some(kind);
            if block.is_none() && !chosen {
                continue;
            }
            let at = match block {
                Some(b) => self.at(b.line),
                None => daemon.backend_at.clone(),
            };
            let place = format!("backends/{}", kind.name());
            if let Some(b) = block {
                let schema = match kind {
                    BackendKind::Libvirt => &LIBVIRT,
                    BackendKind::Cpg => &CPG,
                };
                self.check_items(&b.items, Some(&place), schema);
            }
            let uris = block.map(|b| self.uris(b)).unwrap_or_default();
            let settings = match kind {
                BackendKind::Libvirt => BackendSettings::Libvirt(LibvirtSettings { uris, at }),
                BackendKind::Cpg => {
                    let own = block.and_then(|b| b.value("name_mode"));
                    let own_mode = own.and_then(|a| self.name_mode(a));
                    let name_mode = own_mode.or(daemon.legacy_name_mode).unwrap_or_default();
                    BackendSettings::Cpg(CpgSettings { uris, name_mode, at })
                }
            };
            if chosen {
                if settings.uris().is_empty() {
                    let at = backend_location(&settings).clone();
                    self.warnings.push(Warning {
                        at,
                        kind: WarningKind::NoBackendUri { backend: kind.name() },
                    });
                }
                selected = Some(settings);
            } else if let Some(b) = block {
                self.warn(b.line, WarningKind::UnusedBackendBlock { name: kind.name() });
            }
        }
        selected
    }

    /// `uri`, then `uriN` in numeric order; last wins for a repeated key.
    fn uris(&mut self, block: &Block) -> Vec<String> {
        let mut numbered: Vec<(Option<u32>, &Assignment)> = Vec::new();
        for item in &block.items {
            if let Item::Assignment(a) = item {
                if let Some(n) = uri_number(&a.key) {
                    numbered.retain(|(m, _)| *m != n);
                    numbered.push((n, a));
                }
            }
        }
        numbered.sort_by_key(|(n, _)| *n);
        // The classic daemon reads `uri`, `uri1`, `uri2`, ... (exact names)
        // and stops at the first one missing; it never looks at `uri0`.
        let mut expected = Some(0u32); // 0 stands for the plain `uri`
        for (n, a) in &numbered {
            let read = match n {
                None => expected == Some(0),
                Some(0) => false,
                Some(k) => expected == Some(*k) && a.key.eq_ignore_ascii_case(&format!("uri{k}")),
            };
            if read {
                expected = n.map_or(Some(1), |k| k.checked_add(1));
            } else {
                if *n != Some(0) {
                    expected = None;
                }
                self.warn(
                    a.key_line,
                    WarningKind::UriIgnoredByClassic { key: a.key.clone() },
                );
            }
        }
        numbered.into_iter().map(|(_, a)| a.value.clone()).collect()
    }

    fn groups(&mut self, groups: Option<&Block>) -> Vec<Group> {
        let Some(groups) = groups else { return Vec::new() };
        self.check_items(&groups.items, Some("groups"), &GROUPS);
        let blocks: Vec<&Block> = groups.blocks("group").collect();
        let total = blocks.len();
        let mut out = Vec::new();
        let mut classic_stop_reported = false;
        // Walk from the end, as the classic loader does, to know which empty
        // group stops it.
        for (position, block) in blocks.iter().enumerate().rev() {
            self.check_items(&block.items, Some("groups/group"), &GROUP);
            let name = block
                .value("name")
                .map(|a| a.value.clone())
                .or_else(|| block.value.as_ref().map(|v| v.text.clone()));
            let label = name
                .clone()
                .unwrap_or_else(|| format!("unnamed-{}", total - position));
            let uuids = self.group_entries(block, "uuid");
            let ips = self.group_entries(block, "ip");
            if uuids.is_empty() && ips.is_empty() {
                let stops_classic = block.value.is_none() && !classic_stop_reported;
                classic_stop_reported |= stops_classic;
                let ignored_by_classic = if stops_classic {
                    blocks[..position]
                        .iter()
                        .filter(|b| b.values("uuid").next().is_some() || b.values("ip").next().is_some())
                        .count()
                } else {
                    0
                };
                self.warn(
                    block.line,
                    WarningKind::EmptyGroup {
                        label,
                        ignored_by_classic,
                    },
                );
                continue;
            }
            out.push(Group {
                name,
                label,
                uuids,
                ips,
                at: self.at(block.line),
            });
        }
        out.reverse();
        out
    }

    fn group_entries(&mut self, block: &Block, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for a in block.values(key) {
            if a.value.len() > CLASSIC_GROUP_ENTRY_MAX {
                self.warn(
                    a.value_line,
                    WarningKind::LongGroupEntry {
                        key: a.key.clone(),
                        len: a.value.len(),
                    },
                );
            }
            out.push(a.value.clone());
        }
        out
    }
}

fn backend_location(settings: &BackendSettings) -> &Location {
    match settings {
        BackendSettings::Libvirt(l) => &l.at,
        BackendSettings::Cpg(c) => &c.at,
    }
}

fn contains(list: &[&str], name: &str) -> bool {
    list.iter().any(|k| eq_name(k, name))
}

/// The canonical (lower-case) form of a known key, `None` if unknown.
/// Numbered keys become `uri` or `uri#N`.
fn canonical_key(key: &str, schema: &Schema) -> Option<String> {
    if contains(schema.keys, key) || contains(schema.list_keys, key) {
        return Some(key.to_ascii_lowercase());
    }
    if schema.numbered.is_some() {
        if let Some(n) = uri_number(key) {
            return Some(match n {
                None => "uri".to_owned(),
                Some(n) => format!("uri#{n}"),
            });
        }
    }
    None
}

/// `uri` → Some(None); `uri7` → Some(Some(7)); anything else → None.
fn uri_number(key: &str) -> Option<Option<u32>> {
    let prefix = key.get(..3)?;
    if !prefix.eq_ignore_ascii_case("uri") {
        return None;
    }
    let digits = &key[3..];
    if digits.is_empty() {
        return Some(None);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().map(Some)
}

/// The occurrence lists with more than one entry, in first-line order.
fn sorted_groups(map: HashMap<String, Vec<(String, u32)>>) -> Vec<Vec<(String, u32)>> {
    let mut groups: Vec<Vec<(String, u32)>> = map.into_values().filter(|v| v.len() > 1).collect();
    groups.sort_by_key(|v| v.first().map(|(_, line)| *line));
    groups
}

/// A plausible DNS host name: dot-separated labels of letters, digits, `-`
/// and `_`, none empty, at most 253 bytes in all.
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}
