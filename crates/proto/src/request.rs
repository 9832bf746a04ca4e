//! The 176-byte fence request (`fence_req_t`, spec §1.2) and its signature
//! (spec §2.2).
//!
//! Decoding yields an [`UnverifiedRequest`]; only [`UnverifiedRequest::verify`]
//! turns it into a [`VerifiedRequest`], the one type a daemon may act on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::codes::{HashType, Op};
use crate::digest::{digest_eq, keyed_digest, DIGEST_FIELD_LEN};
use crate::domain::{Domain, DomainError, DOMAIN_FIELD_LEN};
use crate::key::Key;

/// Size of a request on the wire.
pub const REQUEST_LEN: usize = 176;
/// Size of the `address` field (Linux `sizeof(struct sockaddr_in6)`).
pub const ADDRESS_FIELD_LEN: usize = 28;
/// Size of the `random` field.
pub const RANDOM_LEN: usize = 6;
/// Linux `AF_INET`, as written on the wire whatever the platform.
pub const FAMILY_INET: u32 = 2;
/// Linux `AF_INET6`, as written on the wire whatever the platform.
pub const FAMILY_INET6: u32 = 10;
/// Request flag: the agent was told the target is a UUID (ignored by daemons).
pub const RF_UUID: u8 = 0x01;

const OFF_REQUEST: usize = 0;
const OFF_HASHTYPE: usize = 1;
const OFF_ADDRLEN: usize = 2;
const OFF_FLAGS: usize = 3;
const OFF_DOMAIN: usize = 4;
const OFF_ADDRESS: usize = OFF_DOMAIN + DOMAIN_FIELD_LEN; // 68
const OFF_PORT: usize = OFF_ADDRESS + ADDRESS_FIELD_LEN; // 96
const OFF_RANDOM: usize = OFF_PORT + 2; // 98
const OFF_SEQNO: usize = OFF_RANDOM + RANDOM_LEN; // 104
const OFF_FAMILY: usize = OFF_SEQNO + 4; // 108
const OFF_HASH: usize = OFF_FAMILY + 4; // 112

/// The meaning of a request, without its signature fields (`hashtype`,
/// `random`, `hash`), which are produced by [`FenceRequest::encode_signed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceRequest {
    /// Raw request code; see [`FenceRequest::op`].
    pub request: u8,
    /// `addrlen`: 4 or 16 for multicast, 0 otherwise. Ignored by daemons.
    pub addrlen: u8,
    /// Flags, e.g. [`RF_UUID`]. Ignored by daemons.
    pub flags: u8,
    /// Target VM name or UUID; `None` for list and monitor.
    pub domain: Option<Domain>,
    /// Multicast only: the agent's address in network byte order.
    pub address: [u8; ADDRESS_FIELD_LEN],
    /// Multicast only: the TCP port the agent waits on for the call back.
    pub port: u16,
    /// Request identifier chosen by the agent; constant across retransmissions.
    pub seqno: u32,
    /// Multicast only: [`FAMILY_INET`] or [`FAMILY_INET6`]; 0 otherwise.
    pub family: u32,
}

/// Where a multicast request asks to be called back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Callback {
    /// No call back (TCP and vsock requests).
    None,
    /// Connect to this address.
    To(SocketAddr),
}

/// The request's call-back fields make no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// `family` is neither 0, 2 nor 10.
    #[error("unknown address family {0}")]
    UnknownFamily(u32),
    /// A call back to port 0 cannot work.
    #[error("call-back port is 0")]
    ZeroPort,
}

impl FenceRequest {
    /// A request for `op` on `domain`, without call back (TCP / vsock form).
    pub fn new(op: Op, domain: Option<Domain>, seqno: u32) -> FenceRequest {
        FenceRequest {
            request: op.code(),
            addrlen: 0,
            flags: 0,
            domain,
            address: [0; ADDRESS_FIELD_LEN],
            port: 0,
            seqno,
            family: 0,
        }
    }

    /// Set the multicast call-back address (also sets `addrlen` and `family`).
    pub fn with_callback(mut self, to: SocketAddr) -> FenceRequest {
        self.address = [0; ADDRESS_FIELD_LEN];
        match to.ip() {
            IpAddr::V4(a) => {
                self.address[..4].copy_from_slice(&a.octets());
                self.addrlen = 4;
                self.family = FAMILY_INET;
            }
            IpAddr::V6(a) => {
                self.address[..16].copy_from_slice(&a.octets());
                self.addrlen = 16;
                self.family = FAMILY_INET6;
            }
        }
        self.port = to.port();
        self
    }

    /// The operation, if the code is one a peer may send.
    pub fn op(&self) -> Option<Op> {
        Op::from_code(self.request)
    }

    /// Where to call the agent back, from `family`, `address` and `port`
    /// (`addrlen` is ignored, as the classic daemon does).
    pub fn callback(&self) -> Result<Callback, CallbackError> {
        let ip = match self.family {
            0 => return Ok(Callback::None),
            FAMILY_INET => {
                let mut o = [0u8; 4];
                o.copy_from_slice(&self.address[..4]);
                IpAddr::V4(Ipv4Addr::from(o))
            }
            FAMILY_INET6 => {
                let mut o = [0u8; 16];
                o.copy_from_slice(&self.address[..16]);
                IpAddr::V6(Ipv6Addr::from(o))
            }
            other => return Err(CallbackError::UnknownFamily(other)),
        };
        if self.port == 0 {
            return Err(CallbackError::ZeroPort);
        }
        Ok(Callback::To(SocketAddr::new(ip, self.port)))
    }

    /// Encode and sign. `random` fills the `random` field when `hash` is not
    /// `none` (it stays zero otherwise, as with the classic agent).
    pub fn encode_signed(
        &self,
        hash: HashType,
        key: Option<&Key>,
        random: [u8; RANDOM_LEN],
    ) -> Result<[u8; REQUEST_LEN], SignError> {
        let mut out = [0u8; REQUEST_LEN];
        self.encode_signed_into(hash, key, random, &mut out)?;
        Ok(out)
    }

    /// Like [`FenceRequest::encode_signed`], into the first [`REQUEST_LEN`]
    /// bytes of `out`, whatever they held before.
    pub fn encode_signed_into(
        &self,
        hash: HashType,
        key: Option<&Key>,
        random: [u8; RANDOM_LEN],
        out: &mut [u8],
    ) -> Result<(), SignError> {
        let out = out
            .get_mut(..REQUEST_LEN)
            .ok_or(SignError::BufferTooSmall { len: 0 })?;
        let key = match (hash, key) {
            (HashType::None, _) => None,
            (_, Some(k)) => Some(k),
            (_, None) => return Err(SignError::MissingKey),
        };
        self.write_unsigned(hash, out);
        if let Some(key) = key {
            out[OFF_RANDOM..OFF_SEQNO].copy_from_slice(&random);
            let digest = keyed_digest(hash, key.as_bytes(), out);
            out[OFF_HASH..].copy_from_slice(&digest);
        }
        Ok(())
    }

    /// Everything but the signature: `random` and `hash` are zero.
    fn write_unsigned(&self, hash: HashType, out: &mut [u8]) {
        out[OFF_REQUEST] = self.request;
        out[OFF_HASHTYPE] = hash.code();
        out[OFF_ADDRLEN] = self.addrlen;
        out[OFF_FLAGS] = self.flags;
        Domain::encode_field(self.domain.as_ref(), &mut out[OFF_DOMAIN..OFF_ADDRESS]);
        out[OFF_ADDRESS..OFF_PORT].copy_from_slice(&self.address);
        out[OFF_PORT..OFF_RANDOM].copy_from_slice(&self.port.to_le_bytes());
        out[OFF_RANDOM..OFF_SEQNO].fill(0);
        out[OFF_SEQNO..OFF_FAMILY].copy_from_slice(&self.seqno.to_le_bytes());
        out[OFF_FAMILY..OFF_HASH].copy_from_slice(&self.family.to_le_bytes());
        out[OFF_HASH..REQUEST_LEN].fill(0);
    }
}

/// A request cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// Signing with a digest needs a key.
    #[error("a key is needed to sign with a hash other than none")]
    MissingKey,
    /// The output buffer is shorter than a request.
    #[error("output buffer too small for a {REQUEST_LEN}-byte request")]
    BufferTooSmall {
        /// Unused; kept for a stable shape.
        len: usize,
    },
}

/// Bytes that are not a well-formed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A request is exactly 176 bytes.
    #[error("request is {got} bytes, expected {REQUEST_LEN}")]
    Length {
        /// Bytes received.
        got: usize,
    },
    /// `hashtype` is not 0..=3.
    #[error("unknown hash type code {0}")]
    UnknownHashType(u8),
    /// The `domain` field is malformed.
    #[error("bad domain field: {0}")]
    Domain(#[from] DomainError),
}

/// A decoded request whose signature has not been checked. Its fields may be
/// read for logging, never acted upon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedRequest {
    raw: [u8; REQUEST_LEN],
    hash: HashType,
    request: FenceRequest,
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Signed with a weaker digest than the listener requires.
    #[error("hash type not strong enough ({got} < {min})")]
    HashTooWeak {
        /// The request's hash type.
        got: HashType,
        /// The listener's minimum.
        min: HashType,
    },
    /// The request is signed but this side has no key to check it with.
    #[error("request is signed with {0} but no key is configured")]
    NoKey(HashType),
    /// The digest does not match: wrong key, or a modified packet.
    #[error("signature mismatch (wrong key or modified packet)")]
    Mismatch,
}

impl UnverifiedRequest {
    /// Decode exactly [`REQUEST_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<UnverifiedRequest, DecodeError> {
        let raw: [u8; REQUEST_LEN] = bytes
            .try_into()
            .map_err(|_| DecodeError::Length { got: bytes.len() })?;
        let hash =
            HashType::from_code(raw[OFF_HASHTYPE]).ok_or(DecodeError::UnknownHashType(raw[OFF_HASHTYPE]))?;
        let mut domain = [0u8; DOMAIN_FIELD_LEN];
        domain.copy_from_slice(&raw[OFF_DOMAIN..OFF_ADDRESS]);
        let mut address = [0u8; ADDRESS_FIELD_LEN];
        address.copy_from_slice(&raw[OFF_ADDRESS..OFF_PORT]);
        let request = FenceRequest {
            request: raw[OFF_REQUEST],
            addrlen: raw[OFF_ADDRLEN],
            flags: raw[OFF_FLAGS],
            domain: Domain::decode_field(&domain)?,
            address,
            port: u16::from_le_bytes([raw[OFF_PORT], raw[OFF_PORT + 1]]),
            seqno: le32(&raw[OFF_SEQNO..OFF_FAMILY]),
            family: le32(&raw[OFF_FAMILY..OFF_HASH]),
        };
        Ok(UnverifiedRequest { raw, hash, request })
    }

    /// The fields, for logging only.
    pub fn peek(&self) -> &FenceRequest {
        &self.request
    }

    /// The hash type the sender claims to have used.
    pub fn hash_type(&self) -> HashType {
        self.hash
    }

    /// The received bytes.
    pub fn as_bytes(&self) -> &[u8; REQUEST_LEN] {
        &self.raw
    }

    /// The `random` field.
    pub fn random(&self) -> [u8; RANDOM_LEN] {
        let mut r = [0u8; RANDOM_LEN];
        r.copy_from_slice(&self.raw[OFF_RANDOM..OFF_SEQNO]);
        r
    }

    /// The 64-byte `hash` field.
    pub fn signature(&self) -> [u8; DIGEST_FIELD_LEN] {
        let mut h = [0u8; DIGEST_FIELD_LEN];
        h.copy_from_slice(&self.raw[OFF_HASH..]);
        h
    }

    /// Check the signature against `key`, accepting no digest weaker than
    /// `min_hash` (spec §2.2). A request with hash `none` is accepted only
    /// when `min_hash` is `none`.
    pub fn verify(self, key: Option<&Key>, min_hash: HashType) -> Result<VerifiedRequest, VerifyError> {
        if self.hash < min_hash {
            return Err(VerifyError::HashTooWeak {
                got: self.hash,
                min: min_hash,
            });
        }
        if self.hash != HashType::None {
            let key = key.ok_or(VerifyError::NoKey(self.hash))?;
            let mut unsigned = self.raw;
            unsigned[OFF_HASH..].fill(0);
            let expected = keyed_digest(self.hash, key.as_bytes(), &unsigned);
            if !digest_eq(&expected, &self.signature()) {
                return Err(VerifyError::Mismatch);
            }
        }
        Ok(VerifiedRequest(self))
    }
}

/// A request whose signature was checked (or whose listener allows unsigned
/// requests). Only this type reaches the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest(UnverifiedRequest);

impl VerifiedRequest {
    /// The request's fields.
    pub fn request(&self) -> &FenceRequest {
        &self.0.request
    }

    /// The hash type it was signed with.
    pub fn hash_type(&self) -> HashType {
        self.0.hash
    }

    /// The received bytes.
    pub fn as_bytes(&self) -> &[u8; REQUEST_LEN] {
        &self.0.raw
    }

    /// The 64-byte signature, unique per signed packet (it covers `random`).
    pub fn signature(&self) -> [u8; DIGEST_FIELD_LEN] {
        self.0.signature()
    }
}

impl std::ops::Deref for VerifiedRequest {
    type Target = FenceRequest;

    fn deref(&self) -> &FenceRequest {
        &self.0.request
    }
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key::from_bytes(b"secretkey-abc").unwrap()
    }

    fn sample() -> FenceRequest {
        FenceRequest::new(Op::Status, Some(Domain::new("test").unwrap()), 0x0008_e4f2)
            .with_callback("127.0.0.1:1229".parse().unwrap())
    }

    #[test]
    fn layout_of_a_multicast_status_request() {
        let raw = sample()
            .encode_signed(
                HashType::Sha256,
                Some(&key()),
                [0x09, 0xfc, 0x6b, 0x14, 0x03, 0xc2],
            )
            .unwrap();
        assert_eq!(&raw[..8], &[4, 2, 4, 0, b't', b'e', b's', b't']);
        assert_eq!(&raw[68..72], &[127, 0, 0, 1]);
        assert_eq!(&raw[96..98], &[0xcd, 0x04]);
        assert_eq!(&raw[98..104], &[0x09, 0xfc, 0x6b, 0x14, 0x03, 0xc2]);
        assert_eq!(&raw[104..108], &[0xf2, 0xe4, 0x08, 0x00]);
        assert_eq!(&raw[108..112], &[2, 0, 0, 0]);
        assert!(raw[144..].iter().all(|&b| b == 0), "sha256 is padded");
    }

    #[test]
    fn sign_verify_round_trip_for_every_hash() {
        for h in HashType::ALL {
            let raw = sample().encode_signed(h, Some(&key()), [1; 6]).unwrap();
            let un = UnverifiedRequest::decode(&raw).unwrap();
            assert_eq!(un.peek(), &sample());
            let v = un.verify(Some(&key()), h).unwrap();
            assert_eq!(v.request(), &sample());
            assert_eq!(v.callback(), Ok(Callback::To("127.0.0.1:1229".parse().unwrap())));
        }
    }

    #[test]
    fn unsigned_request_has_zero_random_and_hash() {
        let raw = sample().encode_signed(HashType::None, None, [9; 6]).unwrap();
        assert!(raw[98..104].iter().all(|&b| b == 0));
        assert!(raw[112..].iter().all(|&b| b == 0));
    }

    #[test]
    fn weakest_allowed_hash_rule() {
        let k = key();
        let sha1 = sample().encode_signed(HashType::Sha1, Some(&k), [1; 6]).unwrap();
        let err = UnverifiedRequest::decode(&sha1)
            .unwrap()
            .verify(Some(&k), HashType::Sha256);
        assert_eq!(
            err,
            Err(VerifyError::HashTooWeak {
                got: HashType::Sha1,
                min: HashType::Sha256
            })
        );
        let sha512 = sample()
            .encode_signed(HashType::Sha512, Some(&k), [1; 6])
            .unwrap();
        assert!(UnverifiedRequest::decode(&sha512)
            .unwrap()
            .verify(Some(&k), HashType::Sha256)
            .is_ok());
        let none = sample().encode_signed(HashType::None, None, [0; 6]).unwrap();
        assert!(UnverifiedRequest::decode(&none)
            .unwrap()
            .verify(Some(&k), HashType::Sha256)
            .is_err());
        assert!(UnverifiedRequest::decode(&none)
            .unwrap()
            .verify(Some(&k), HashType::None)
            .is_ok());
        assert_eq!(
            UnverifiedRequest::decode(&sha512)
                .unwrap()
                .verify(None, HashType::None),
            Err(VerifyError::NoKey(HashType::Sha512))
        );
    }

    #[test]
    fn wrong_key_and_any_flipped_bit_are_rejected() {
        let raw = sample()
            .encode_signed(HashType::Sha256, Some(&key()), [3; 6])
            .unwrap();
        let other = Key::from_bytes(b"secretkey-abd").unwrap();
        assert_eq!(
            UnverifiedRequest::decode(&raw)
                .unwrap()
                .verify(Some(&other), HashType::Sha256),
            Err(VerifyError::Mismatch)
        );
        for i in 0..REQUEST_LEN {
            if i == OFF_HASHTYPE {
                continue; // changes the algorithm; covered elsewhere
            }
            let mut t = raw;
            t[i] ^= 0x01;
            if let Ok(un) = UnverifiedRequest::decode(&t) {
                assert!(
                    un.verify(Some(&key()), HashType::Sha256).is_err(),
                    "bit flip at {i} accepted"
                );
            }
        }
    }

    #[test]
    fn every_wrong_length_is_rejected() {
        let raw = sample()
            .encode_signed(HashType::Sha256, Some(&key()), [3; 6])
            .unwrap();
        for n in 0..REQUEST_LEN {
            assert_eq!(
                UnverifiedRequest::decode(&raw[..n]),
                Err(DecodeError::Length { got: n })
            );
        }
        let mut long = raw.to_vec();
        long.push(0);
        assert!(UnverifiedRequest::decode(&long).is_err());
    }

    #[test]
    fn encoding_overwrites_garbage() {
        let mut buf = [0xA5u8; REQUEST_LEN + 3];
        sample()
            .encode_signed_into(HashType::Sha256, Some(&key()), [3; 6], &mut buf)
            .unwrap();
        let clean = sample()
            .encode_signed(HashType::Sha256, Some(&key()), [3; 6])
            .unwrap();
        assert_eq!(&buf[..REQUEST_LEN], &clean[..]);
        assert_eq!(&buf[REQUEST_LEN..], &[0xA5; 3]);
        let mut short = [0u8; 10];
        assert!(sample()
            .encode_signed_into(HashType::None, None, [0; 6], &mut short)
            .is_err());
    }

    #[test]
    fn callback_fields() {
        let v6 =
            FenceRequest::new(Op::HostList, None, 1).with_callback("[fdfe:229::11]:4000".parse().unwrap());
        assert_eq!((v6.addrlen, v6.family), (16, FAMILY_INET6));
        assert_eq!(
            v6.callback(),
            Ok(Callback::To("[fdfe:229::11]:4000".parse().unwrap()))
        );
        let mut bad = v6.clone();
        bad.family = 12345;
        assert_eq!(bad.callback(), Err(CallbackError::UnknownFamily(12345)));
        bad.family = FAMILY_INET;
        bad.port = 0;
        assert_eq!(bad.callback(), Err(CallbackError::ZeroPort));
        assert_eq!(
            FenceRequest::new(Op::Status, None, 1).callback(),
            Ok(Callback::None)
        );
    }

    #[test]
    fn missing_key_for_signed_encoding() {
        assert_eq!(
            sample().encode_signed(HashType::Sha1, None, [0; 6]),
            Err(SignError::MissingKey)
        );
    }

    #[test]
    fn unknown_hash_code_is_a_decode_error() {
        let mut raw = sample().encode_signed(HashType::None, None, [0; 6]).unwrap();
        raw[1] = 4;
        assert_eq!(
            UnverifiedRequest::decode(&raw),
            Err(DecodeError::UnknownHashType(4))
        );
    }
}
