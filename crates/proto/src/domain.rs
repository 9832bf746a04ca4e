//! VM names and UUIDs as they travel in the 64-byte `domain` fields.

use std::fmt;

/// Size of the NUL-padded `domain` field of requests.
pub const DOMAIN_FIELD_LEN: usize = 64;
/// Longest domain text a request can carry (the last byte is always NUL).
pub const MAX_DOMAIN_LEN: usize = DOMAIN_FIELD_LEN - 1;

/// A VM name or UUID string: 1 to 63 bytes of UTF-8 without NUL.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

/// Why a string cannot be a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// No text.
    #[error("the domain name is empty")]
    Empty,
    /// More than 63 bytes do not fit the wire field.
    #[error("the domain name is {len} bytes long; at most {MAX_DOMAIN_LEN} fit in a request")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// NUL would end the name early on the wire.
    #[error("the domain name contains a NUL byte")]
    ContainsNul,
    /// The field's bytes are not UTF-8.
    #[error("the domain name is not valid UTF-8")]
    NotUtf8,
    /// A field of 64 bytes without any NUL terminator.
    #[error("the domain field has no NUL terminator")]
    NotTerminated,
}

impl Domain {
    /// Check and wrap a name or UUID.
    pub fn new(name: &str) -> Result<Domain, DomainError> {
        if name.is_empty() {
            return Err(DomainError::Empty);
        }
        if name.len() > MAX_DOMAIN_LEN {
            return Err(DomainError::TooLong { len: name.len() });
        }
        if name.contains('\0') {
            return Err(DomainError::ContainsNul);
        }
        Ok(Domain(name.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text is a canonical 36-character UUID (any case); the
    /// daemon then looks the VM up by UUID instead of by name (spec §1.6).
    pub fn is_uuid(&self) -> bool {
        is_uuid(&self.0)
    }

    /// Case-insensitive comparison, as the history and the `groups` map use.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }

    /// Decode a NUL-padded request field: `Ok(None)` when it is empty.
    /// Bytes after the first NUL are ignored (they are covered by the
    /// signature, not by the meaning).
    pub(crate) fn decode_field(field: &[u8; DOMAIN_FIELD_LEN]) -> Result<Option<Domain>, DomainError> {
        let end = field
            .iter()
            .position(|&b| b == 0)
            .ok_or(DomainError::NotTerminated)?;
        if end == 0 {
            return Ok(None);
        }
        let text = std::str::from_utf8(&field[..end]).map_err(|_| DomainError::NotUtf8)?;
        Ok(Some(Domain(text.to_owned())))
    }

    /// Write into a NUL-padded field (the whole field is overwritten).
    pub(crate) fn encode_field(domain: Option<&Domain>, field: &mut [u8]) {
        field.fill(0);
        if let Some(d) = domain {
            field[..d.0.len()].copy_from_slice(d.0.as_bytes());
        }
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Domain {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::new(s)
    }
}

/// Whether `s` is a UUID in the canonical 8-4-4-4-12 hexadecimal form, in
/// any letter case — the strings `uuid_parse` accepts and re-formats equally.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(Domain::new(""), Err(DomainError::Empty));
        assert!(Domain::new(&"a".repeat(63)).is_ok());
        assert_eq!(
            Domain::new(&"a".repeat(64)),
            Err(DomainError::TooLong { len: 64 })
        );
        assert_eq!(Domain::new("a\0b"), Err(DomainError::ContainsNul));
    }

    #[test]
    fn uuid_detection() {
        assert!(is_uuid("6695eb01-f6a4-8304-79aa-97f2502e193f"));
        assert!(is_uuid("6695EB01-F6A4-8304-79AA-97F2502E193F"));
        assert!(!is_uuid("6695eb01f6a4830479aa97f2502e193f"));
        assert!(!is_uuid("6695eb01-f6a4-8304-79aa-97f2502e193"));
        assert!(!is_uuid("6695eb01-f6a4-8304-79aa-97f2502e193g"));
        assert!(!is_uuid("test"));
    }

    #[test]
    fn field_round_trip() {
        let d = Domain::new("vm1").unwrap();
        let mut field = [0xAAu8; DOMAIN_FIELD_LEN];
        Domain::encode_field(Some(&d), &mut field);
        assert_eq!(Domain::decode_field(&field), Ok(Some(d)));
        Domain::encode_field(None, &mut field);
        assert_eq!(Domain::decode_field(&field), Ok(None));
        assert_eq!(Domain::decode_field(&[b'A'; 64]), Err(DomainError::NotTerminated));
        let mut bad = [0u8; 64];
        bad[0] = 0xff;
        assert_eq!(Domain::decode_field(&bad), Err(DomainError::NotUtf8));
    }
}
