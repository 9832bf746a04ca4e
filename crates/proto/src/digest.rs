//! The keyed digest both ends compute: `H(key || data)`, zero-padded to 64
//! bytes (spec §2.2, §2.3). Not an HMAC; it must be reproduced exactly for
//! interoperability.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::codes::HashType;

/// Size of every digest field and challenge buffer on the wire.
pub const DIGEST_FIELD_LEN: usize = 64;

/// `H(key || data)` zero-padded to 64 bytes; all zero for [`HashType::None`].
pub fn keyed_digest(hash: HashType, key: &[u8], data: &[u8]) -> [u8; DIGEST_FIELD_LEN] {
    let mut out = [0u8; DIGEST_FIELD_LEN];
    match hash {
        HashType::None => {}
        HashType::Sha1 => copy_prefix(
            &mut out,
            &Sha1::new().chain_update(key).chain_update(data).finalize(),
        ),
        HashType::Sha256 => copy_prefix(
            &mut out,
            &Sha256::new().chain_update(key).chain_update(data).finalize(),
        ),
        HashType::Sha512 => copy_prefix(
            &mut out,
            &Sha512::new().chain_update(key).chain_update(data).finalize(),
        ),
    }
    out
}

/// Compare two 64-byte digest fields in constant time.
pub fn digest_eq(a: &[u8; DIGEST_FIELD_LEN], b: &[u8; DIGEST_FIELD_LEN]) -> bool {
    a.ct_eq(b).into()
}

fn copy_prefix(out: &mut [u8; DIGEST_FIELD_LEN], digest: &[u8]) {
    out[..digest.len()].copy_from_slice(digest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sha256_of_key_and_data_is_padded() {
        // sha256("ab") computed independently (e.g. `printf ab | sha256sum`).
        let d = keyed_digest(HashType::Sha256, b"a", b"b");
        assert_eq!(
            &d[..32],
            &[
                0xfb, 0x8e, 0x20, 0xfc, 0x2e, 0x4c, 0x3f, 0x24, 0x8c, 0x60, 0xc3, 0x9b, 0xd6, 0x52, 0xf3,
                0xc1, 0x34, 0x72, 0x98, 0xbb, 0x97, 0x7b, 0x8b, 0x4d, 0x59, 0x03, 0xb8, 0x50, 0x55, 0x62,
                0x06, 0x03
            ]
        );
        assert!(d[32..].iter().all(|&b| b == 0));
    }

    #[test]
    fn digest_lengths_match_the_padding() {
        for h in HashType::ALL {
            let d = keyed_digest(h, b"k", b"data");
            assert!(d[h.digest_len()..].iter().all(|&b| b == 0));
            if h != HashType::None {
                assert!(d[..h.digest_len()].iter().any(|&b| b != 0));
            }
        }
    }

    #[test]
    fn comparison() {
        let a = keyed_digest(HashType::Sha512, b"k", b"x");
        let mut b = a;
        assert!(digest_eq(&a, &b));
        b[63] ^= 1;
        assert!(!digest_eq(&a, &b));
    }
}
