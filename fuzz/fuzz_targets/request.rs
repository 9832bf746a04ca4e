//! Arbitrary bytes as a 176-byte request: decoding, verification and the
//! call-back fields must never panic, and a request signed with a key we
//! do not hold must never verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmfence_proto::{HashType, Key, UnverifiedRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(un) = UnverifiedRequest::decode(data) else { return };
    let _ = un.peek().op();
    let _ = un.peek().callback();
    let key = Key::from_bytes(b"fuzz key").unwrap_or_else(|_| unreachable!());
    for min in HashType::ALL {
        if let Ok(v) = un.clone().verify(Some(&key), min) {
            // Random bytes only verify when unsigned and allowed.
            assert_eq!(v.hash_type(), HashType::None);
            assert_eq!(min, HashType::None);
        }
    }
});
