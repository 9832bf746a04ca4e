//! Duplicate suppression and replay protection for a daemon, with the
//! current time passed in.
//!
//! Two separate guards:
//!
//! * [`History`] reproduces the classic semantics the C agent relies on
//!   (spec §4.2): requests are the same when `(request, seqno, domain)`
//!   match, domain compared case-insensitively; a completed request is
//!   remembered for a window (10 s) so that the agent's retransmissions and
//!   its per-address copies are not executed again. Unlike the classic
//!   list scan, lookups are O(1), a request is also blocked while it is in
//!   flight (two copies arriving together run once), and memory is bounded.
//! * [`ReplayGuard`] remembers the signature of every request that was
//!   executed. A signature covers the random bytes, so each signed packet
//!   has its own; a captured packet replayed later — after the history
//!   window — is refused. Memory is bounded by a capacity; the oldest
//!   fingerprints are forgotten first, and [`ReplayGuard::forgotten`] says
//!   how many were.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::digest::DIGEST_FIELD_LEN;
use crate::request::FenceRequest;

/// The classic duplicate window.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(10);

/// Identity of a request for duplicate suppression: the request code, the
/// sequence number and a 64-bit FNV-1a digest of the lower-cased domain.
/// Sixteen bytes and no allocation, so a busy daemon's 10 s window stays
/// small; two different domains with the same code and sequence number
/// would have to collide in 64 bits to be taken for one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId {
    request: u8,
    seqno: u32,
    domain: u64,
}

fn domain_digest(domain: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    domain.bytes().fold(OFFSET, |h, b| {
        (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(PRIME)
    })
}

impl RequestId {
    /// The identity of `req` (domain folded to lower case).
    pub fn of(req: &FenceRequest) -> RequestId {
        Self::from_parts(req.request, req.seqno, req.domain.as_ref().map(|d| d.as_str()))
    }

    /// The identity from its parts (serial requests have the same three).
    pub fn from_parts(request: u8, seqno: u32, domain: Option<&str>) -> RequestId {
        RequestId {
            request,
            seqno,
            domain: domain_digest(domain.unwrap_or("")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    InFlight,
    Done(Instant),
}

/// Why [`History::begin`] refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Duplicate {
    /// The same request is being handled right now.
    #[error("the same request is already being handled")]
    InFlight,
    /// The same request completed within the window.
    #[error("the same request completed less than {}s ago", HISTORY_WINDOW.as_secs())]
    Recent,
    /// Too many requests in flight or remembered; the request is dropped
    /// (the agent retransmits) rather than risk running one twice.
    #[error("duplicate history is full")]
    Full,
}

/// Duplicate suppression with classic semantics (see the module docs).
#[derive(Debug)]
pub struct History {
    window: Duration,
    capacity: usize,
    entries: HashMap<RequestId, Entry>,
    done_order: VecDeque<(Instant, RequestId)>,
}

impl History {
    /// A history remembering completed requests for `window`, holding at
    /// most `capacity` entries (in flight plus remembered).
    pub fn new(window: Duration, capacity: usize) -> History {
        History {
            window,
            capacity,
            entries: HashMap::new(),
            done_order: VecDeque::new(),
        }
    }

    /// Start handling a request: refused if it is in flight or completed
    /// within the window. On success the request is in flight until
    /// [`History::complete`] or [`History::abandon`].
    pub fn begin(&mut self, id: &RequestId, now: Instant) -> Result<(), Duplicate> {
        self.expire(now);
        match self.entries.get(id) {
            Some(Entry::InFlight) => return Err(Duplicate::InFlight),
            Some(Entry::Done(_)) => return Err(Duplicate::Recent),
            None => {}
        }
        if self.entries.len() >= self.capacity {
            // Forgetting a recent request early could let one of its
            // retransmissions run again: refuse instead; the agent retries.
            return Err(Duplicate::Full);
        }
        self.entries.insert(*id, Entry::InFlight);
        Ok(())
    }

    /// The request was answered: remember it for the window.
    pub fn complete(&mut self, id: &RequestId, now: Instant) {
        self.entries.insert(*id, Entry::Done(now));
        self.done_order.push_back((now, *id));
    }

    /// The request failed before it was executed (call back or
    /// authentication failed): forget it, so a retransmission may succeed.
    pub fn abandon(&mut self, id: &RequestId) {
        if self.entries.get(id) == Some(&Entry::InFlight) {
            self.entries.remove(id);
        }
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.done_order.front() {
            if now.saturating_duration_since(*at) <= self.window {
                break;
            }
            if let Some((at, id)) = self.done_order.pop_front() {
                // Only remove if this is still the entry we recorded.
                if self.entries.get(&id) == Some(&Entry::Done(at)) {
                    self.entries.remove(&id);
                }
            }
        }
    }
}

/// Fingerprint of a signed packet: the first 8 bytes of its signature.
/// The signature is a digest under the key, so nobody without the key can
/// aim at a fingerprint, and among a million remembered requests a chance
/// collision (which would refuse one genuine request) has a probability
/// around 3·10⁻⁸. Eight bytes instead of the whole signature keep a full
/// guard near 20 MiB.
type Fingerprint = u64;

fn fingerprint(signature: &[u8; DIGEST_FIELD_LEN]) -> Fingerprint {
    let mut b = [0u8; 8];
    b.copy_from_slice(&signature[..8]);
    u64::from_le_bytes(b)
}

/// Remembers the signatures of executed requests (see the module docs).
#[derive(Debug)]
pub struct ReplayGuard {
    capacity: usize,
    seen: HashSet<Fingerprint>,
    order: VecDeque<Fingerprint>,
    forgotten: u64,
}

impl ReplayGuard {
    /// A guard holding at most `capacity` fingerprints.
    pub fn new(capacity: usize) -> ReplayGuard {
        ReplayGuard {
            capacity: capacity.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
            forgotten: 0,
        }
    }

    /// Record a signature; false if it was executed before (a replay).
    /// Unsigned requests (all-zero signature) cannot be told apart and are
    /// always accepted here; listeners that allow them have no replay
    /// protection at all.
    pub fn insert(&mut self, signature: &[u8; DIGEST_FIELD_LEN]) -> bool {
        if signature.iter().all(|&b| b == 0) {
            return true;
        }
        let fp = fingerprint(signature);
        if !self.seen.insert(fp) {
            return false;
        }
        self.order.push_back(fp);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
                self.forgotten += 1;
            }
        }
        true
    }

    /// Whether a signature was executed before.
    pub fn contains(&self, signature: &[u8; DIGEST_FIELD_LEN]) -> bool {
        self.seen.contains(&fingerprint(signature))
    }

    /// How many fingerprints were dropped to stay within the capacity.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Op;
    use crate::domain::Domain;

    fn id(seq: u32, dom: &str) -> RequestId {
        RequestId::of(&FenceRequest::new(Op::Off, Some(Domain::new(dom).unwrap()), seq))
    }

    #[test]
    fn classic_window_semantics() {
        let t0 = Instant::now();
        let mut h = History::new(HISTORY_WINDOW, 100);
        h.begin(&id(1, "VM1"), t0).unwrap();
        assert_eq!(h.begin(&id(1, "vm1"), t0), Err(Duplicate::InFlight));
        h.complete(&id(1, "vm1"), t0);
        assert_eq!(
            h.begin(&id(1, "Vm1"), t0 + Duration::from_secs(5)),
            Err(Duplicate::Recent)
        );
        assert!(
            h.begin(&id(2, "vm1"), t0).is_ok(),
            "another seqno is another request"
        );
        assert!(
            h.begin(&id(1, "vm1"), t0 + Duration::from_secs(11)).is_ok(),
            "window over"
        );
    }

    #[test]
    fn abandoned_requests_can_be_retried() {
        let t0 = Instant::now();
        let mut h = History::new(HISTORY_WINDOW, 100);
        h.begin(&id(1, "a"), t0).unwrap();
        h.abandon(&id(1, "a"));
        assert!(h.begin(&id(1, "a"), t0).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut h = History::new(HISTORY_WINDOW, 8);
        for i in 0..8 {
            h.begin(&id(i, "a"), t0).unwrap();
        }
        assert_eq!(h.begin(&id(100, "a"), t0), Err(Duplicate::Full));
        for i in 0..8 {
            h.complete(&id(i, "a"), t0);
        }
        assert_eq!(
            h.begin(&id(100, "a"), t0),
            Err(Duplicate::Full),
            "recent entries are kept"
        );
        let later = t0 + HISTORY_WINDOW + Duration::from_millis(1);
        for i in 100..1000 {
            h.begin(&id(i, "a"), later + Duration::from_secs(u64::from(i) * 11))
                .unwrap();
            h.complete(&id(i, "a"), later + Duration::from_secs(u64::from(i) * 11));
            assert!(h.len() <= 8);
        }
    }

    #[test]
    fn replay_guard_refuses_a_second_execution() {
        let mut g = ReplayGuard::new(2);
        let s1 = [1u8; 64];
        let s2 = [2u8; 64];
        let s3 = [3u8; 64];
        assert!(g.insert(&s1));
        assert!(!g.insert(&s1));
        assert!(g.insert(&s2));
        assert!(g.insert(&s3));
        assert_eq!(g.forgotten(), 1);
        assert!(!g.contains(&s1));
        assert!(
            g.insert(&[0u8; 64]) && g.insert(&[0u8; 64]),
            "unsigned requests are not tracked"
        );
    }
}
