//! Loading the shared key a listener names in `key_file` (spec §2.1).
//!
//! The key is the raw bytes of the file, at most [`MAX_KEY_LEN`] of them,
//! nothing trimmed. Unlike the classic daemon, which silently runs without
//! authentication when its key cannot be read (spec §7.1 item 7), every
//! problem here is an error: a missing file, a directory or other non-regular
//! file, a read failure, and an empty file. Loose permissions and an
//! over-long file are reported as warnings with the facts (mode, owner) so
//! the caller can decide to refuse; nothing is chmod-ed.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use vmfence_proto::{Key, MAX_KEY_LEN};
use zeroize::Zeroizing;

/// A key read from a file, with what was noticed about the file.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The file.
    pub path: PathBuf,
    /// The key (the first [`MAX_KEY_LEN`] bytes of the file).
    pub key: Key,
    /// Size of the file in bytes.
    pub file_len: u64,
    /// Permission bits of the file (`mode & 0o7777`).
    pub mode: u32,
    /// Owner of the file.
    pub owner_uid: u32,
    /// Problems that do not prevent using the key.
    pub warnings: Vec<KeyFileWarning>,
}

/// Something wrong with a key file that still yields a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileWarning {
    /// Readable or writable by group or others (any of the `0o077` bits).
    Permissions {
        /// The permission bits.
        mode: u32,
    },
    /// Longer than [`MAX_KEY_LEN`]; the rest is ignored, as the classic
    /// tools do.
    TooLong {
        /// The file size.
        len: u64,
    },
}

impl fmt::Display for KeyFileWarning {
    /// Reads as the end of "key file X ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileWarning::Permissions { mode } => {
                write!(f, "is {} (mode {mode:04o})", describe_access(*mode))
            }
            KeyFileWarning::TooLong { len } => {
                write!(
                    f,
                    "is {len} bytes long; only the first {MAX_KEY_LEN} bytes are used"
                )
            }
        }
    }
}

/// Why a key file yields no key.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// No such file.
    #[error("key file {} does not exist", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The path is a directory.
    #[error("key file {} is a directory, not a file", path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// A device, FIFO or socket.
    #[error("key file {} is not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// Permission denied or an I/O error.
    #[error("cannot read key file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Zero bytes: refusing rather than running without authentication.
    #[error(
        "key file {} is empty; refusing to run without authentication (make a key with \
         dd if=/dev/urandom of={} bs=4096 count=1)",
        path.display(),
        path.display()
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Read a key file. See the module documentation for what is refused.
pub fn load_key_file(path: &Path) -> Result<LoadedKey, KeyFileError> {
    let owned = || path.to_path_buf();
    // Look before opening, so that opening a FIFO cannot block.
    let meta = fs::metadata(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => KeyFileError::Missing { path: owned() },
        _ => KeyFileError::Unreadable {
            path: owned(),
            source,
        },
    })?;
    check_type(&meta, path)?;
    let file = File::open(path).map_err(|source| KeyFileError::Unreadable {
        path: owned(),
        source,
    })?;
    // The file that was opened is the one described, even if the path changed.
    let meta = file.metadata().map_err(|source| KeyFileError::Unreadable {
        path: owned(),
        source,
    })?;
    check_type(&meta, path)?;

    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_LEN));
    file.take(MAX_KEY_LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(|source| KeyFileError::Unreadable {
            path: owned(),
            source,
        })?;
    let key = Key::from_bytes(&bytes).map_err(|_| KeyFileError::Empty { path: owned() })?;

    let mode = meta.mode() & 0o7777;
    let mut warnings = Vec::new();
    if mode & 0o077 != 0 {
        warnings.push(KeyFileWarning::Permissions { mode });
    }
    if meta.len() > MAX_KEY_LEN as u64 {
        warnings.push(KeyFileWarning::TooLong { len: meta.len() });
    }
    Ok(LoadedKey {
        path: owned(),
        key,
        file_len: meta.len(),
        mode,
        owner_uid: meta.uid(),
        warnings,
    })
}

fn check_type(meta: &fs::Metadata, path: &Path) -> Result<(), KeyFileError> {
    if meta.is_dir() {
        return Err(KeyFileError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    if !meta.is_file() {
        return Err(KeyFileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// "readable by others", "readable and writable by group, readable by
/// others", ... for the group and other bits of `mode`.
pub fn describe_access(mode: u32) -> String {
    let part = |bits: u32, who: &str| -> Option<String> {
        let what = match (bits & 0o4 != 0, bits & 0o2 != 0) {
            (true, true) => "readable and writable",
            (true, false) => "readable",
            (false, true) => "writable",
            (false, false) if bits & 0o1 != 0 => "executable",
            (false, false) => return None,
        };
        Some(format!("{what} by {who}"))
    };
    let parts: Vec<String> = [part((mode >> 3) & 0o7, "group"), part(mode & 0o7, "others")]
        .into_iter()
        .flatten()
        .collect();
    if parts.is_empty() {
        "private".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_private_key_is_read_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "k", b"secret\n", 0o600);
        let loaded = load_key_file(&path).unwrap();
        assert_eq!(loaded.key.as_bytes(), b"secret\n");
        assert_eq!((loaded.file_len, loaded.mode), (7, 0o600));
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn loose_permissions_and_long_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "k", &vec![1u8; MAX_KEY_LEN + 10], 0o644);
        let loaded = load_key_file(&path).unwrap();
        assert_eq!(loaded.key.len(), MAX_KEY_LEN);
        assert_eq!(
            loaded.warnings,
            vec![
                KeyFileWarning::Permissions { mode: 0o644 },
                KeyFileWarning::TooLong { len: 4106 }
            ]
        );
        assert_eq!(
            loaded.warnings[0].to_string(),
            "is readable by group, readable by others (mode 0644)"
        );
        assert_eq!(
            loaded.warnings[1].to_string(),
            "is 4106 bytes long; only the first 4096 bytes are used"
        );
    }

    #[test]
    fn missing_directory_and_empty_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            load_key_file(&missing),
            Err(KeyFileError::Missing { .. })
        ));
        assert!(matches!(
            load_key_file(dir.path()),
            Err(KeyFileError::IsDirectory { .. })
        ));
        let empty = write(dir.path(), "e", b"", 0o600);
        let err = load_key_file(&empty).unwrap_err();
        assert!(matches!(err, KeyFileError::Empty { .. }));
        assert!(err.to_string().contains("refusing to run without authentication"));
        assert!(matches!(
            load_key_file(Path::new("/dev/null")),
            Err(KeyFileError::NotRegular { .. })
        ));
    }

    #[test]
    fn access_descriptions() {
        assert_eq!(describe_access(0o600), "private");
        assert_eq!(describe_access(0o640), "readable by group");
        assert_eq!(describe_access(0o604), "readable by others");
        assert_eq!(describe_access(0o622), "writable by group, writable by others");
        assert_eq!(
            describe_access(0o666),
            "readable and writable by group, readable and writable by others"
        );
        assert_eq!(describe_access(0o610), "executable by group");
    }
}
