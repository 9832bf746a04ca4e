//! decode -> encode -> decode: any request that decodes re-encodes (with
//! its own hash type and random bytes, under a fixed key) into bytes that
//! decode to the same fields and verify under that key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmfence_proto::{Key, UnverifiedRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(first) = UnverifiedRequest::decode(data) else { return };
    let key = Key::from_bytes(b"round trip key").unwrap_or_else(|_| unreachable!());
    let bytes = first
        .peek()
        .encode_signed(first.hash_type(), Some(&key), first.random())
        .unwrap_or_else(|e| panic!("re-encoding failed: {e}"));
    let second = UnverifiedRequest::decode(&bytes).unwrap_or_else(|e| panic!("re-decoding failed: {e}"));
    assert_eq!(first.peek(), second.peek());
    assert_eq!(first.hash_type(), second.hash_type());
    let verified = second
        .verify(Some(&key), first.hash_type())
        .unwrap_or_else(|e| panic!("own signature rejected: {e}"));
    assert_eq!(verified.request(), first.peek());
});
