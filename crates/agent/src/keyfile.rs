//! Reading the shared key file.
//!
//! Unlike the classic agent, a key that cannot be read is an error naming
//! the file; the agent never falls back to unauthenticated requests on its
//! own (a daemon would drop them anyway, and the user would only see a
//! time-out). Running without a key needs `hash=none` and `auth=none`.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use vmfence_proto::{Key, MAX_KEY_LEN};

/// The key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Opening or reading failed.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is empty.
    #[error("key file {path} is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Read at most [`MAX_KEY_LEN`] bytes of `path` as the key, exactly as the
/// classic tools do (no trimming: a trailing newline is part of the key).
pub fn read_key(path: &Path) -> Result<Key, KeyFileError> {
    let read_err = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    Key::from_bytes(&bytes).map_err(|_| KeyFileError::Empty {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write;

    use super::*;

    #[test]
    fn reads_cuts_and_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::File::create(&p)
            .unwrap()
            .write_all(&[b'x'; 5000])
            .unwrap();
        assert_eq!(read_key(&p).unwrap().len(), MAX_KEY_LEN);
        std::fs::File::create(&p).unwrap();
        let e = read_key(&p).unwrap_err();
        assert!(matches!(e, KeyFileError::Empty { .. }));
        assert!(e.to_string().contains(p.to_str().unwrap()));
        let missing = dir.path().join("missing");
        let e = read_key(&missing).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let e = read_key(dir.path()).unwrap_err();
        assert!(matches!(e, KeyFileError::Read { .. }));
    }
}
