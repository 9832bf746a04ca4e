//! Errors and warnings about a configuration file, each tied to a
//! [`Location`] and displayed as `FILE:LINE: message` (or `FILE: message`
//! when no single line is to blame), the format compilers use so editors can
//! jump to it.
//!
//! Errors make the file unusable; all of them are collected and returned
//! together as [`ConfigErrors`]. Warnings ([`Severity::Warning`]) point at
//! something probably wrong or risky; notes ([`Severity::Note`]) record where
//! vmfence reads a file differently from the classic daemon, or ignores
//! something on purpose.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::settings::Family;
use crate::suggest::hint;
use crate::syntax::SyntaxErrorKind;

/// A file and, usually, a 1-based line in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The configuration file as it was named to the loader.
    pub file: Arc<Path>,
    /// The line, when one line is to blame.
    pub line: Option<u32>,
}

impl Location {
    /// A location on a line of a file.
    pub fn new(file: &Arc<Path>, line: u32) -> Location {
        Location {
            file: Arc::clone(file),
            line: Some(line),
        }
    }

    /// The file as a whole.
    pub fn file(file: &Arc<Path>) -> Location {
        Location {
            file: Arc::clone(file),
            line: None,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file.display()),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

/// One reason a configuration is rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{at}: cannot read the configuration file: {source}")]
    Read {
        /// The file.
        at: Location,
        /// What the system said.
        source: io::Error,
    },
    /// The text does not follow the grammar.
    #[error("{at}: syntax error: {kind}")]
    Syntax {
        /// Where.
        at: Location,
        /// What is wrong.
        kind: SyntaxErrorKind,
    },
    /// A key that does not exist in this block.
    #[error("{at}: unknown key `{key}` in {place}{}", hint(suggestion))]
    UnknownKey {
        /// Where.
        at: Location,
        /// The key as written.
        key: String,
        /// The enclosing block path, e.g. `listeners/tcp`, or "the top level".
        place: String,
        /// The closest known key.
        suggestion: Option<String>,
    },
    /// A block that does not exist inside a known block.
    #[error("{at}: unknown block `{name}` in {place}{}", hint(suggestion))]
    UnknownBlock {
        /// Where.
        at: Location,
        /// The block name as written.
        name: String,
        /// The enclosing block path.
        place: String,
        /// The closest known block name.
        suggestion: Option<String>,
    },
    /// `name { ... }` where `name = "value";` was expected.
    #[error("{at}: `{name}` in {place} is a setting, write it as {name} = \"...\"; not as a block")]
    BlockNotKey {
        /// Where.
        at: Location,
        /// The name.
        name: String,
        /// The enclosing block path.
        place: String,
    },
    /// `name = "value";` where `name { ... }` was expected.
    #[error("{at}: `{name}` in {place} is a block, write it as {name} {{ ... }} not as a setting")]
    KeyNotBlock {
        /// Where.
        at: Location,
        /// The name.
        name: String,
        /// The enclosing block path.
        place: String,
    },
    /// No `fence_virtd` block at all.
    #[error("{at}: there is no `fence_virtd {{ ... }}` block; it must set `listener` and `backend`")]
    MissingDaemonBlock {
        /// The file.
        at: Location,
    },
    /// A required key of the `fence_virtd` block is absent.
    #[error(
        "{at}: the fence_virtd block has no `{key}`; it is required (for example {key} = \"{example}\";)"
    )]
    MissingKey {
        /// The `fence_virtd` block.
        at: Location,
        /// The missing key.
        key: &'static str,
        /// A typical value.
        example: &'static str,
    },
    /// A listener name that does not exist.
    #[error(
        "{at}: unknown listener `{name}` (known: multicast, tcp, vsock, serial){}",
        hint(suggestion)
    )]
    UnknownListener {
        /// Where.
        at: Location,
        /// The name.
        name: String,
        /// The closest known listener.
        suggestion: Option<String>,
    },
    /// The same listener twice in the `listener` list.
    #[error("{at}: listener `{name}` is listed more than once")]
    DuplicateListener {
        /// Where.
        at: Location,
        /// The name.
        name: String,
    },
    /// `listener` holds only separators.
    #[error("{at}: `listener` names no listener")]
    EmptyListenerList {
        /// Where.
        at: Location,
    },
    /// A backend name that does not exist.
    #[error("{at}: unknown backend `{name}` (known: libvirt, cpg){}", hint(suggestion))]
    UnknownBackend {
        /// Where.
        at: Location,
        /// The name.
        name: String,
        /// The closest known backend.
        suggestion: Option<String>,
    },
    /// A classic backend that vmfence does not implement.
    #[error("{at}: backend `{name}` is not supported by vmfence (supported: libvirt, cpg)")]
    UnsupportedBackend {
        /// Where.
        at: Location,
        /// The name.
        name: String,
    },
    /// `hash` or `auth` is not a hash name.
    #[error(
        "{at}: unknown {key} `{value}` (expected none, sha1, sha256 or sha512){}",
        hint(suggestion)
    )]
    BadHash {
        /// Where.
        at: Location,
        /// `hash` or `auth`.
        key: &'static str,
        /// The value.
        value: String,
        /// The closest hash name.
        suggestion: Option<String>,
    },
    /// `family` is neither ipv4 nor ipv6.
    #[error("{at}: unknown family `{value}` (expected ipv4 or ipv6)")]
    BadFamily {
        /// Where.
        at: Location,
        /// The value.
        value: String,
    },
    /// A multicast address that is not an IP address.
    #[error("{at}: `{value}` is not an IP address")]
    BadAddress {
        /// Where.
        at: Location,
        /// The value.
        value: String,
    },
    /// A TCP listen address that is neither an IP address nor a host name.
    #[error("{at}: `{value}` is neither an IP address nor a valid host name")]
    BadHost {
        /// Where.
        at: Location,
        /// The value.
        value: String,
    },
    /// A multicast listener address outside the multicast ranges.
    #[error(
        "{at}: {value} is not a multicast address (IPv4 multicast is 224.0.0.0/4, IPv6 multicast is ff00::/8)"
    )]
    NotMulticast {
        /// Where.
        at: Location,
        /// The address.
        value: String,
    },
    /// An address of the other family than `family`.
    #[error(
        "{at}: {value} is an {actual} address but the family is {family}{}; set family = \"{actual}\"; in this block",
        if *defaulted { " (the default)" } else { "" }
    )]
    FamilyMismatch {
        /// Where (the address).
        at: Location,
        /// The address.
        value: String,
        /// The family in force.
        family: Family,
        /// The family of the address.
        actual: Family,
        /// True when `family` was not set.
        defaulted: bool,
    },
    /// A port that is not a decimal number.
    #[error("{at}: port `{value}` is not a number")]
    PortNotNumber {
        /// Where.
        at: Location,
        /// The value.
        value: String,
    },
    /// A port outside the valid range.
    #[error("{at}: port {value} is out of range (1 to {max})")]
    PortOutOfRange {
        /// Where.
        at: Location,
        /// The value.
        value: String,
        /// The largest valid port.
        max: u32,
    },
    /// An impossible network interface name.
    #[error("{at}: `{value}` is not a valid interface name (at most 15 bytes, no `/` or white space)")]
    BadInterface {
        /// Where.
        at: Location,
        /// The value.
        value: String,
    },
    /// Serial `mode` is neither serial nor vmchannel.
    #[error(
        "{at}: unknown serial mode `{value}` (expected serial or vmchannel){}",
        hint(suggestion)
    )]
    BadMode {
        /// Where.
        at: Location,
        /// The value.
        value: String,
        /// The closest mode.
        suggestion: Option<String>,
    },
    /// cpg `name_mode` is neither name nor uuid.
    #[error("{at}: unknown name_mode `{value}` (expected name or uuid)")]
    BadNameMode {
        /// Where.
        at: Location,
        /// The value.
        value: String,
    },
    /// `debug`, `foreground`, `wait_for_init` is not a whole number.
    #[error("{at}: `{key}` must be a whole number (0 = off), not `{value}`")]
    NotANumber {
        /// Where.
        at: Location,
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
    },
}

impl ConfigError {
    /// Where the error is.
    pub fn location(&self) -> &Location {
        match self {
            ConfigError::Read { at, .. }
            | ConfigError::Syntax { at, .. }
            | ConfigError::UnknownKey { at, .. }
            | ConfigError::UnknownBlock { at, .. }
            | ConfigError::BlockNotKey { at, .. }
            | ConfigError::KeyNotBlock { at, .. }
            | ConfigError::MissingDaemonBlock { at }
            | ConfigError::MissingKey { at, .. }
            | ConfigError::UnknownListener { at, .. }
            | ConfigError::DuplicateListener { at, .. }
            | ConfigError::EmptyListenerList { at }
            | ConfigError::UnknownBackend { at, .. }
            | ConfigError::UnsupportedBackend { at, .. }
            | ConfigError::BadHash { at, .. }
            | ConfigError::BadFamily { at, .. }
            | ConfigError::BadAddress { at, .. }
            | ConfigError::BadHost { at, .. }
            | ConfigError::NotMulticast { at, .. }
            | ConfigError::FamilyMismatch { at, .. }
            | ConfigError::PortNotNumber { at, .. }
            | ConfigError::PortOutOfRange { at, .. }
            | ConfigError::BadInterface { at, .. }
            | ConfigError::BadMode { at, .. }
            | ConfigError::BadNameMode { at, .. }
            | ConfigError::NotANumber { at, .. } => at,
        }
    }
}

/// Every error found in a configuration, in line order, plus the warnings
/// gathered before giving up (they often explain the errors).
#[derive(Debug)]
pub struct ConfigErrors {
    /// The errors; never empty.
    pub errors: Vec<ConfigError>,
    /// Warnings and notes found along the way.
    pub warnings: Vec<Warning>,
}

impl fmt::Display for ConfigErrors {
    /// One error per line, `FILE:LINE: message`; warnings are not included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// How serious a [`Warning`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Information: a deliberate difference or something ignored on purpose.
    Note,
    /// Probably a mistake or a risk; the file is still used.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
        })
    }
}

/// Something worth telling about an accepted file. Displays as
/// `FILE:LINE: warning: message` or `FILE:LINE: note: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub at: Location,
    /// What.
    pub kind: WarningKind,
}

impl Warning {
    /// How serious it is.
    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.at, self.severity(), self.kind)
    }
}

/// The things a [`Warning`] can say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// A top-level block vmfence does not know; it is skipped.
    UnknownTopLevelBlock {
        /// Its name.
        name: String,
        /// The closest known block.
        suggestion: Option<String>,
    },
    /// An earlier block with the same name as a later one; only the last is
    /// used (blocks are not merged).
    DuplicateBlock {
        /// Block path, e.g. `fence_virtd` or `listeners/tcp`.
        path: String,
        /// Line of the block that is used.
        used_line: u32,
    },
    /// An earlier occurrence of a key set again later in the same block.
    DuplicateKey {
        /// The key.
        key: String,
        /// The block path.
        place: String,
        /// Line of the occurrence that is used.
        used_line: u32,
    },
    /// `module_path`: there are no plugins to load.
    ModulePathIgnored,
    /// `wait_for_backend`, the old name of `wait_for_init`.
    LegacyWaitForBackend {
        /// True when `wait_for_init` is also set and takes precedence.
        overridden: bool,
    },
    /// `fence_virtd/name_mode`, the old place of `backends/cpg/name_mode`.
    LegacyNameMode {
        /// True when `backends/cpg/name_mode` is also set and takes precedence.
        overridden: bool,
    },
    /// A listener block that `listener` does not name: checked, not run.
    UnusedListenerBlock {
        /// The listener.
        name: &'static str,
    },
    /// A backend block other than the selected backend's: checked, not used.
    UnusedBackendBlock {
        /// The backend.
        name: &'static str,
    },
    /// A backend block of a classic backend vmfence does not implement.
    UnsupportedBackendBlock {
        /// The backend.
        name: String,
    },
    /// The backend has no `uri`.
    NoBackendUri {
        /// The backend.
        backend: &'static str,
    },
    /// A `uriN` key the classic daemon never reads (uri0, a leading zero, or
    /// after a gap in the numbering); vmfence uses it.
    UriIgnoredByClassic {
        /// The key as written.
        key: String,
    },
    /// tcp/vsock `auth` set: the classic daemon stores it into `hash`.
    AuthDiffersFromClassic {
        /// The listener.
        listener: &'static str,
    },
    /// `key_file` in the serial block: the serial listener uses no key.
    SerialKeyFileIgnored,
    /// `hash` and `auth` are both `none`.
    NoAuthentication {
        /// The listener.
        listener: &'static str,
    },
    /// The serial listener runs and there are no groups.
    SerialWithoutGroups {
        /// Whether `unrestricted` opens it up (classic behaviour) or the
        /// listener refuses everything.
        unrestricted: bool,
    },
    /// A group with neither `uuid` nor `ip`.
    EmptyGroup {
        /// Its label.
        label: String,
        /// Groups above it in the file, which the classic daemon ignores.
        ignored_by_classic: usize,
    },
    /// A group entry longer than the 127 bytes the classic daemon keeps.
    LongGroupEntry {
        /// `uuid` or `ip`.
        key: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A value attached to a block other than `group`.
    BlockValueIgnored {
        /// The block name.
        name: String,
    },
    /// A relative `key_file` path.
    RelativeKeyFile {
        /// The path.
        path: String,
    },
    /// Serial `mode` given as a number, as the classic daemon allows.
    NumericSerialMode {
        /// The value.
        value: String,
        /// True when it means vmchannel.
        vmchannel: bool,
    },
    /// `listener` names several listeners (vmfence extension).
    ListenerList,
}

impl WarningKind {
    /// How serious it is.
    pub fn severity(&self) -> Severity {
        match self {
            WarningKind::UnknownTopLevelBlock { .. }
            | WarningKind::DuplicateBlock { .. }
            | WarningKind::DuplicateKey { .. }
            | WarningKind::NoBackendUri { .. }
            | WarningKind::NoAuthentication { .. }
            | WarningKind::SerialWithoutGroups { .. }
            | WarningKind::EmptyGroup { .. }
            | WarningKind::LongGroupEntry { .. }
            | WarningKind::BlockValueIgnored { .. }
            | WarningKind::RelativeKeyFile { .. } => Severity::Warning,
            WarningKind::ModulePathIgnored
            | WarningKind::LegacyWaitForBackend { .. }
            | WarningKind::LegacyNameMode { .. }
            | WarningKind::UnusedListenerBlock { .. }
            | WarningKind::UnusedBackendBlock { .. }
            | WarningKind::UnsupportedBackendBlock { .. }
            | WarningKind::UriIgnoredByClassic { .. }
            | WarningKind::AuthDiffersFromClassic { .. }
            | WarningKind::SerialKeyFileIgnored
            | WarningKind::NumericSerialMode { .. }
            | WarningKind::ListenerList => Severity::Note,
        }
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WarningKind::UnknownTopLevelBlock { name, suggestion } => {
                write!(f, "unknown top-level block `{name}` is ignored{}", hint(suggestion))
            }
            WarningKind::DuplicateBlock { path, used_line } => write!(
                f,
                "block `{path}` appears again on line {used_line}; blocks are not merged: only the last \
                 one is used and this one is ignored"
            ),
            WarningKind::DuplicateKey { key, place, used_line } => write!(
                f,
                "`{key}` in {place} is set again on line {used_line}; the last value wins and this one is ignored"
            ),
            WarningKind::ModulePathIgnored => {
                f.write_str("`module_path` is ignored: vmfence has its listeners and backends built in")
            }
            WarningKind::LegacyWaitForBackend { overridden } => {
                f.write_str("`wait_for_backend` is the old name of `wait_for_init`")?;
                if *overridden {
                    f.write_str("; `wait_for_init` is also set and takes precedence")?;
                }
                Ok(())
            }
            WarningKind::LegacyNameMode { overridden } => {
                f.write_str("`name_mode` belongs in backends/cpg; fence_virtd/name_mode is the old place")?;
                if *overridden {
                    f.write_str(" and is overridden by backends/cpg/name_mode")?;
                }
                Ok(())
            }
            WarningKind::UnusedListenerBlock { name } => write!(
                f,
                "listeners/{name} is checked but not run: `listener` in fence_virtd does not name it"
            ),
            WarningKind::UnusedBackendBlock { name } => {
                write!(f, "backends/{name} is checked but not used: `backend` in fence_virtd selects another")
            }
            WarningKind::UnsupportedBackendBlock { name } => {
                write!(f, "backends/{name} is ignored: vmfence does not implement that backend")
            }
            WarningKind::NoBackendUri { backend } => write!(
                f,
                "backend `{backend}` has no `uri`: vmfence will use libvirt's default connection, while \
                 classic fence_virtd fails to start this backend; add uri = \"qemu:///system\"; to \
                 backends/{backend}"
            ),
            WarningKind::UriIgnoredByClassic { key } => write!(
                f,
                "`{key}` is used by vmfence, but classic fence_virtd never reads it (it reads uri, uri1, \
                 uri2, ... and stops at the first one missing)"
            ),
            WarningKind::AuthDiffersFromClassic { listener } => write!(
                f,
                "`auth` sets the challenge-response hash of the {listener} listener; classic fence_virtd \
                 wrongly stores it into `hash` instead, so the two daemons read this block differently"
            ),
            WarningKind::SerialKeyFileIgnored => {
                f.write_str("`key_file` is ignored: the serial listener does not use a key")
            }
            WarningKind::NoAuthentication { listener } => write!(
                f,
                "the {listener} listener accepts requests without any authentication (hash and auth are \
                 both none)"
            ),
            WarningKind::SerialWithoutGroups { unrestricted: true } => f.write_str(
                "the serial listener has no authentication, there are no groups and `unrestricted` is \
                 set: every guest with a fence socket can fence every VM on this host; add a groups block",
            ),
            WarningKind::SerialWithoutGroups { unrestricted: false } => f.write_str(
                "the serial listener has no authentication and there are no groups, so it refuses every \
                 request (the classic daemon would let any guest fence every VM); add a groups block, or \
                 set unrestricted = \"1\" in listeners/serial to accept that risk",
            ),
            WarningKind::EmptyGroup { label, ignored_by_classic } => {
                write!(f, "group `{label}` has no `uuid` and no `ip` and is skipped")?;
                if *ignored_by_classic > 0 {
                    write!(
                        f,
                        "; classic fence_virtd stops reading groups here and ignores the {ignored_by_classic} \
                         group(s) above it"
                    )?;
                }
                Ok(())
            }
            WarningKind::LongGroupEntry { key, len } => write!(
                f,
                "`{key}` value is {len} bytes long; classic fence_virtd cuts group entries to 127 bytes"
            ),
            WarningKind::BlockValueIgnored { name } => {
                write!(f, "the value given to block `{name}` is ignored (only `group` blocks use one, as a name)")
            }
            WarningKind::RelativeKeyFile { path } => write!(
                f,
                "key_file `{path}` is a relative path; it is resolved from the daemon's working directory"
            ),
            WarningKind::NumericSerialMode { value, vmchannel } => write!(
                f,
                "mode `{value}` is read as {}, as classic fence_virtd does; write mode = \"{}\"; instead",
                if *vmchannel { "vmchannel" } else { "serial" },
                if *vmchannel { "vmchannel" } else { "serial" }
            ),
            WarningKind::ListenerList => f.write_str(
                "several listeners in `listener` is a vmfence extension: classic fence_virtd cannot run \
                 this file",
            ),
        }
    }
}
