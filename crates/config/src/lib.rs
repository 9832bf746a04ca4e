//! `fence_virt.conf`, the configuration file of `fence_virtd`, read in stages
//! and written back.
//!
//! 1. [`syntax`]: text → [`syntax::Tree`], in file order, with the line of
//!    every key, value and block; syntax errors say what is wrong and where.
//! 2. [`settings`]: tree → typed, validated [`Config`] with the classic
//!    lookup semantics (case-insensitive names, last value wins) and every
//!    error of the file collected as `FILE:LINE: message`.
//! 3. [`keyfile`]: loading the shared key a listener names, refusing missing,
//!    unreadable and empty files and reporting loose permissions.
//! 4. [`writer`]: tree or config → text the classic daemon also parses.
//!
//! The file format, key meanings and defaults follow
//! `shared/spec/fence-virt-protocol.md` §6.3–§6.4; differences are listed in
//! the [`settings`] module documentation.

pub mod diag;
pub mod keyfile;
pub mod settings;
mod suggest;
pub mod syntax;
pub mod writer;

use std::path::Path;
use std::sync::Arc;

pub use diag::{ConfigError, ConfigErrors, Location, Severity, Warning, WarningKind};
pub use keyfile::{load_key_file, KeyFileError, KeyFileWarning, LoadedKey};
pub use settings::{
    AuthSettings, BackendKind, BackendSettings, Config, CpgSettings, DaemonSettings, Family, Group,
    KeyFileSetting, LibvirtSettings, ListenAddress, ListenerKind, ListenerSettings, MulticastSettings,
    NameMode, SerialMode, SerialSettings, TcpSettings, VsockSettings,
};
pub use suggest::did_you_mean;
pub use syntax::{parse, SyntaxError, Tree};
pub use writer::{write_config, write_tree, WriteError};

/// The file `fence_virtd` reads when no `-f` is given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/fence_virt.conf";

/// Read, parse and validate a configuration file.
pub fn load_config(path: &Path) -> Result<Config, ConfigErrors> {
    let file: Arc<Path> = Arc::from(path);
    let bytes = std::fs::read(path).map_err(|source| ConfigErrors {
        errors: vec![ConfigError::Read {
            at: Location::file(&file),
            source,
        }],
        warnings: Vec::new(),
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse_config(&text, path),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
            let line = u32::try_from(line).unwrap_or(u32::MAX);
            Err(ConfigErrors {
                errors: vec![ConfigError::Syntax {
                    at: Location::new(&file, line),
                    kind: syntax::SyntaxErrorKind::NotUtf8,
                }],
                warnings: Vec::new(),
            })
        }
    }
}

/// Parse and validate configuration text; `file` names it in messages.
pub fn parse_config(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let tree = parse(text).map_err(|e| {
        let file: Arc<Path> = Arc::from(file);
        ConfigErrors {
            errors: vec![ConfigError::Syntax {
                at: Location::new(&file, e.line),
                kind: e.kind,
            }],
            warnings: Vec::new(),
        }
    })?;
    Config::from_tree(&tree, file)
}
