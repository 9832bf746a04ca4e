//! The 64-byte challenge-response exchange (spec §2.3) as a state machine.
//!
//! Whoever opened the connection, the agent challenges first and then
//! answers; the daemon answers first and then challenges. Both directions
//! use 64-byte buffers; an answer is `H(key || challenge)` zero-padded.
//! The auth type is not negotiated: both ends must be configured alike.
//!
//! The driver loop is: send whatever [`Handshake::poll_transmit`] returns;
//! when [`Handshake::wanted`] is non-zero, read up to that many bytes and
//! [`Handshake::feed`] them; stop when [`Handshake::is_done`]. Timeouts are
//! the driver's business.

use crate::codes::HashType;
use crate::digest::{digest_eq, keyed_digest, DIGEST_FIELD_LEN};
use crate::key::Key;

/// Size of a challenge and of an answer.
pub const CHALLENGE_LEN: usize = DIGEST_FIELD_LEN;

/// Which end of the exchange this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The fence agent: challenges first, then answers.
    Agent,
    /// The daemon: answers first, then challenges.
    Daemon,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Waiting for the peer's answer to our challenge.
    AwaitAnswer,
    /// Waiting for the peer's challenge.
    AwaitChallenge,
    Done,
    Failed,
}

/// The exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The peer's answer to our challenge was wrong: a different key or a
    /// different auth type.
    #[error("the peer answered our challenge wrongly (different key or auth type)")]
    BadAnswer,
    /// Authentication needs a key.
    #[error("authentication with {0} needs a key")]
    MissingKey(HashType),
    /// The exchange already failed; nothing more is accepted.
    #[error("the exchange has already failed")]
    AlreadyFailed,
}

/// One end of the challenge-response exchange.
#[derive(Debug, Clone)]
pub struct Handshake {
    role: Role,
    auth: HashType,
    key: Option<Key>,
    challenge: [u8; CHALLENGE_LEN],
    step: Step,
    inbuf: Vec<u8>,
    outbox: Vec<[u8; CHALLENGE_LEN]>,
}

impl Handshake {
    /// Start an exchange. `challenge` is the 64 random bytes this side will
    /// send; `auth == None` makes the exchange empty (done at once).
    pub fn new(
        role: Role,
        auth: HashType,
        key: Option<&Key>,
        challenge: [u8; CHALLENGE_LEN],
    ) -> Result<Handshake, AuthError> {
        if auth != HashType::None && key.is_none() {
            return Err(AuthError::MissingKey(auth));
        }
        let mut hs = Handshake {
            role,
            auth,
            key: key.cloned(),
            challenge,
            step: Step::Done,
            inbuf: Vec::with_capacity(CHALLENGE_LEN),
            outbox: Vec::new(),
        };
        if auth != HashType::None {
            match role {
                Role::Agent => {
                    hs.outbox.push(challenge);
                    hs.step = Step::AwaitAnswer;
                }
                Role::Daemon => hs.step = Step::AwaitChallenge,
            }
        }
        Ok(hs)
    }

    /// The next 64 bytes to send, if any.
    pub fn poll_transmit(&mut self) -> Option<[u8; CHALLENGE_LEN]> {
        if self.outbox.is_empty() {
            None
        } else {
            Some(self.outbox.remove(0))
        }
    }

    /// How many more bytes the current step needs (0 when none).
    pub fn wanted(&self) -> usize {
        match self.step {
            Step::AwaitAnswer | Step::AwaitChallenge => CHALLENGE_LEN - self.inbuf.len(),
            Step::Done | Step::Failed => 0,
        }
    }

    /// Whether both sides have proven the key (and all output was taken).
    pub fn is_done(&self) -> bool {
        self.step == Step::Done && self.outbox.is_empty()
    }

    /// Which role this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Consume bytes from the peer. Returns how many were used: never more
    /// than [`Handshake::wanted`], so bytes that follow the exchange (the
    /// result) stay with the caller.
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, AuthError> {
        if self.step == Step::Failed {
            return Err(AuthError::AlreadyFailed);
        }
        let mut used = 0;
        while used < data.len() && self.wanted() > 0 {
            let take = self.wanted().min(data.len() - used);
            self.inbuf.extend_from_slice(&data[used..used + take]);
            used += take;
            if self.inbuf.len() == CHALLENGE_LEN {
                let mut msg = [0u8; CHALLENGE_LEN];
                msg.copy_from_slice(&self.inbuf);
                self.inbuf.clear();
                self.on_message(&msg)?;
            }
        }
        Ok(used)
    }

    fn key_bytes(&self) -> &[u8] {
        self.key.as_ref().map(Key::as_bytes).unwrap_or_default()
    }

    fn on_message(&mut self, msg: &[u8; CHALLENGE_LEN]) -> Result<(), AuthError> {
        match self.step {
            Step::AwaitAnswer => {
                let expected = keyed_digest(self.auth, self.key_bytes(), &self.challenge);
                if !digest_eq(&expected, msg) {
                    self.step = Step::Failed;
                    return Err(AuthError::BadAnswer);
                }
                self.step = match self.role {
                    Role::Agent => Step::AwaitChallenge,
                    Role::Daemon => Step::Done,
                };
            }
            Step::AwaitChallenge => {
                let answer = keyed_digest(self.auth, self.key_bytes(), msg);
                self.outbox.push(answer);
                match self.role {
                    Role::Agent => self.step = Step::Done,
                    Role::Daemon => {
                        self.outbox.push(self.challenge);
                        self.step = Step::AwaitAnswer;
                    }
                }
            }
            Step::Done | Step::Failed => {}
        }
        Ok(())
    }
}

/// The answer to `challenge`: `H(key || challenge)` padded to 64 bytes.
pub fn answer(auth: HashType, key: &Key, challenge: &[u8; CHALLENGE_LEN]) -> [u8; CHALLENGE_LEN] {
    keyed_digest(auth, key.as_bytes(), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &[u8]) -> Key {
        Key::from_bytes(s).unwrap()
    }

    /// Shuttle bytes between the two ends until neither moves.
    fn run(a: &mut Handshake, d: &mut Handshake) -> Result<(), AuthError> {
        for _ in 0..10 {
            let mut moved = false;
            while let Some(m) = a.poll_transmit() {
                d.feed(&m)?;
                moved = true;
            }
            while let Some(m) = d.poll_transmit() {
                a.feed(&m)?;
                moved = true;
            }
            if !moved {
                break;
            }
        }
        Ok(())
    }

    #[test]
    fn same_key_same_auth_completes() {
        for auth in [HashType::Sha1, HashType::Sha256, HashType::Sha512] {
            let k = key(b"k1");
            let mut a = Handshake::new(Role::Agent, auth, Some(&k), [1; 64]).unwrap();
            let mut d = Handshake::new(Role::Daemon, auth, Some(&k), [2; 64]).unwrap();
            run(&mut a, &mut d).unwrap();
            assert!(a.is_done() && d.is_done());
        }
    }

    #[test]
    fn message_order_is_agent_challenge_first() {
        let k = key(b"k1");
        let mut a = Handshake::new(Role::Agent, HashType::Sha256, Some(&k), [1; 64]).unwrap();
        let mut d = Handshake::new(Role::Daemon, HashType::Sha256, Some(&k), [2; 64]).unwrap();
        assert_eq!(d.poll_transmit(), None, "the daemon speaks only after the agent");
        let c = a.poll_transmit().unwrap();
        assert_eq!(c, [1; 64]);
        assert_eq!(d.feed(&c).unwrap(), 64);
        assert_eq!(d.poll_transmit(), Some(answer(HashType::Sha256, &k, &[1; 64])));
        assert_eq!(d.poll_transmit(), Some([2; 64]));
    }

    #[test]
    fn wrong_key_fails_on_the_agent_side_first() {
        let mut a = Handshake::new(Role::Agent, HashType::Sha256, Some(&key(b"a")), [1; 64]).unwrap();
        let mut d = Handshake::new(Role::Daemon, HashType::Sha256, Some(&key(b"b")), [2; 64]).unwrap();
        assert_eq!(run(&mut a, &mut d), Err(AuthError::BadAnswer));
        assert!(!d.is_done());
        assert_eq!(a.feed(&[0; 64]), Err(AuthError::AlreadyFailed));
    }

    #[test]
    fn mismatched_auth_type_fails() {
        let k = key(b"k");
        let mut a = Handshake::new(Role::Agent, HashType::Sha512, Some(&k), [1; 64]).unwrap();
        let mut d = Handshake::new(Role::Daemon, HashType::Sha256, Some(&k), [2; 64]).unwrap();
        assert_eq!(run(&mut a, &mut d), Err(AuthError::BadAnswer));
    }

    #[test]
    fn daemon_rejects_a_bad_answer_and_feed_stops_at_the_end() {
        let k = key(b"k");
        let mut d = Handshake::new(Role::Daemon, HashType::Sha256, Some(&k), [2; 64]).unwrap();
        let mut input = vec![9u8; 64];
        input.extend_from_slice(&answer(HashType::Sha256, &k, &[2; 64]));
        input.push(0xEE); // a stray byte after the exchange
        assert_eq!(d.feed(&input).unwrap(), 128);
        assert!(!d.is_done(), "output still pending");
        d.poll_transmit();
        d.poll_transmit();
        assert!(d.is_done());

        let mut d2 = Handshake::new(Role::Daemon, HashType::Sha256, Some(&k), [2; 64]).unwrap();
        d2.feed(&[9; 64]).unwrap();
        assert_eq!(d2.feed(&[0; 64]), Err(AuthError::BadAnswer));
    }

    #[test]
    fn byte_by_byte_feeding() {
        let k = key(b"k");
        let mut a = Handshake::new(Role::Agent, HashType::Sha1, Some(&k), [5; 64]).unwrap();
        let mut d = Handshake::new(Role::Daemon, HashType::Sha1, Some(&k), [6; 64]).unwrap();
        let c = a.poll_transmit().unwrap();
        for b in c {
            assert_eq!(d.feed(&[b]).unwrap(), 1);
        }
        let mut stream = Vec::new();
        while let Some(m) = d.poll_transmit() {
            stream.extend_from_slice(&m);
        }
        for b in stream {
            a.feed(&[b]).unwrap();
        }
        let r = a.poll_transmit().unwrap();
        d.feed(&r).unwrap();
        assert!(a.is_done() && d.is_done());
    }

    #[test]
    fn none_is_empty_and_missing_key_is_an_error() {
        let mut a = Handshake::new(Role::Agent, HashType::None, None, [0; 64]).unwrap();
        assert!(a.is_done());
        assert_eq!(a.poll_transmit(), None);
        assert_eq!(a.wanted(), 0);
        assert_eq!(
            Handshake::new(Role::Daemon, HashType::Sha256, None, [0; 64]).unwrap_err(),
            AuthError::MissingKey(HashType::Sha256)
        );
    }
}
