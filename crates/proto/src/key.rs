//! The shared secret: raw bytes, at most [`MAX_KEY_LEN`] of them, never empty.
//!
//! Reading the key file is the caller's job (this crate does no I/O); this
//! type only enforces what a key may be.

use std::fmt;

use zeroize::Zeroizing;

/// The classic implementations read at most this many bytes of a key file.
pub const MAX_KEY_LEN: usize = 4096;

/// A shared key. Its bytes are wiped from memory when it is dropped and are
/// never printed by `Debug`.
#[derive(Clone)]
pub struct Key(Zeroizing<Vec<u8>>);

/// Why bytes cannot be a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An empty key would make every signature a plain hash of public data.
    #[error("the key is empty")]
    Empty,
}

impl Key {
    /// Make a key from the contents of a key file. Like the classic
    /// implementations, only the first [`MAX_KEY_LEN`] bytes count; nothing is
    /// trimmed (a trailing newline is part of the key).
    pub fn from_bytes(bytes: &[u8]) -> Result<Key, KeyError> {
        if bytes.is_empty() {
            return Err(KeyError::Empty);
        }
        let used = &bytes[..bytes.len().min(MAX_KEY_LEN)];
        Ok(Key(Zeroizing::new(used.to_vec())))
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Number of key bytes in use.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a key is never empty. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_key_is_refused() {
        assert_eq!(Key::from_bytes(b"").unwrap_err(), KeyError::Empty);
    }

    #[test]
    fn long_key_is_cut_like_the_classic_reader() {
        let bytes = vec![7u8; MAX_KEY_LEN + 100];
        let key = Key::from_bytes(&bytes).unwrap();
        assert_eq!(key.len(), MAX_KEY_LEN);
    }

    #[test]
    fn trailing_newline_is_kept_and_debug_hides_bytes() {
        let key = Key::from_bytes(b"secret\n").unwrap();
        assert_eq!(key.as_bytes(), b"secret\n");
        assert_eq!(format!("{key:?}"), "Key(7 bytes)");
    }
}
