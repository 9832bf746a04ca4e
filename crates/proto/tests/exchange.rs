//! Agent-side and daemon-side state machines driven against each other in
//! memory, with a network that drops, duplicates, reorders, replays and
//! tampers. Outcomes follow spec §2.4 where the classic peers define them,
//! and our stricter rules (replay guard) where they do not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vmfence_proto::history::{Duplicate, History, ReplayGuard, RequestId, HISTORY_WINDOW};
use vmfence_proto::hostlist::{encode_host_list, AnswerEvent, AnswerReader};
use vmfence_proto::{
    AuthError, Callback, Domain, FenceRequest, Handshake, HashType, HostState, Key, Op, Response, Role,
    UnverifiedRequest, VerifyError,
};

/// Deterministic "randomness" for the tests.
struct Rng(u64);
impl Rng {
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *b = (self.0 >> 56) as u8;
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    Decode,
    Verify(VerifyError),
    Duplicate(Duplicate),
    Replay,
    Auth(AuthError),
    Stalled,
}

/// A daemon: verification, history, replay guard, handshake, execution.
struct Daemon {
    key: Key,
    min_hash: HashType,
    auth: HashType,
    history: History,
    replay: ReplayGuard,
    executed: Vec<(Op, String)>,
    vms: HashMap<String, bool>,
    rng: Rng,
}

/// The agent side of one call back.
struct AgentConn {
    hs: Handshake,
    answer: AnswerReader,
    events: Vec<AnswerEvent>,
}

/// How the network treats the stream of one call back.
#[derive(Clone, Copy, PartialEq)]
enum Stream {
    Clean,
    /// Flip a bit in the n-th 64-byte message from the daemon.
    TamperDaemonMsg(usize),
}

impl Daemon {
    fn new(key: &[u8], min_hash: HashType, auth: HashType) -> Daemon {
        let mut vms = HashMap::new();
        vms.insert("vm1".to_string(), true);
        vms.insert("vm2".to_string(), false);
        Daemon {
            key: Key::from_bytes(key).unwrap(),
            min_hash,
            auth,
            history: History::new(HISTORY_WINDOW, 1024),
            replay: ReplayGuard::new(1024),
            executed: Vec::new(),
            vms,
            rng: Rng(42),
        }
    }

    fn execute(&mut self, op: Op, domain: Option<&Domain>) -> Vec<u8> {
        let name = domain.map(|d| d.as_str().to_string()).unwrap_or_default();
        self.executed.push((op, name.clone()));
        let code = match op {
            Op::Off => match self.vms.get_mut(&name) {
                Some(on) => {
                    *on = false;
                    Response::Success
                }
                None => Response::Fail,
            },
            Op::Status => match self.vms.get(&name) {
                Some(true) => Response::Success,
                _ => Response::Off,
            },
            Op::HostList => {
                let mut list: Vec<_> = self
                    .vms
                    .iter()
                    .map(|(n, on)| HostState {
                        name: n.clone(),
                        uuid: String::new(),
                        state: if *on { 1 } else { 5 },
                    })
                    .collect();
                list.sort_by(|a, b| a.name.cmp(&b.name));
                return encode_host_list(&list, Response::Success);
            }
            _ => Response::Success,
        };
        vec![code.code()]
    }

    /// Handle one datagram end to end against `agent` (the call back).
    fn handle(
        &mut self,
        datagram: &[u8],
        now: Instant,
        agent: Option<&mut AgentConn>,
        net: Stream,
    ) -> Result<(), Refusal> {
        let un = UnverifiedRequest::decode(datagram).map_err(|_| Refusal::Decode)?;
        let req = un
            .verify(Some(&self.key), self.min_hash)
            .map_err(Refusal::Verify)?;
        let id = RequestId::of(&req);
        self.history.begin(&id, now).map_err(Refusal::Duplicate)?;
        let Some(agent) = agent else {
            self.history.abandon(&id); // call back failed
            return Err(Refusal::Stalled);
        };
        assert!(matches!(req.callback(), Ok(Callback::To(_))));
        let mut hs = Handshake::new(Role::Daemon, self.auth, Some(&self.key), self.rng.bytes()).unwrap();
        let mut sent = 0usize;
        // Shuttle until both handshakes stop moving.
        loop {
            let mut moved = false;
            while let Some(m) = agent.hs.poll_transmit() {
                moved = true;
                if let Err(e) = hs.feed(&m) {
                    self.history.abandon(&id);
                    return Err(Refusal::Auth(e));
                }
            }
            while let Some(mut m) = hs.poll_transmit() {
                moved = true;
                if net == Stream::TamperDaemonMsg(sent) {
                    m[0] ^= 1;
                }
                sent += 1;
                if let Err(e) = agent.hs.feed(&m) {
                    self.history.abandon(&id);
                    return Err(Refusal::Auth(e));
                }
            }
            if !moved {
                break;
            }
        }
        if !(hs.is_done() && agent.hs.is_done()) {
            // Both wait for bytes that never come: each side's timeout.
            self.history.abandon(&id);
            return Err(Refusal::Stalled);
        }
        if !self.replay.insert(&req.signature()) {
            self.history.abandon(&id);
            return Err(Refusal::Replay);
        }
        let answer = self.execute(req.op().unwrap(), req.domain.as_ref());
        agent.events.extend(agent.answer.feed(&answer).unwrap());
        self.history.complete(&id, now);
        Ok(())
    }
}

fn agent_conn(key: &[u8], auth: HashType, seed: u64) -> AgentConn {
    let key = Key::from_bytes(key).unwrap();
    AgentConn {
        hs: Handshake::new(Role::Agent, auth, Some(&key), Rng(seed).bytes()).unwrap(),
        answer: AnswerReader::default(),
        events: Vec::new(),
    }
}

/// One signed datagram of a multicast request (new random per copy).
fn datagram(op: Op, dom: &str, seqno: u32, key: &[u8], hash: HashType, rng: &mut Rng) -> Vec<u8> {
    FenceRequest::new(op, Domain::new(dom).ok(), seqno)
        .with_callback("10.229.0.11:1229".parse().unwrap())
        .encode_signed(hash, Some(&Key::from_bytes(key).unwrap()), rng.bytes())
        .unwrap()
        .to_vec()
}

const K: &[u8] = b"secretkey-abc";

#[test]
fn every_matching_hash_and_auth_pair_works() {
    for hash in HashType::ALL {
        for auth in HashType::ALL {
            let mut d = Daemon::new(K, hash, auth);
            let mut rng = Rng(1);
            let mut a = agent_conn(K, auth, 7);
            let dg = datagram(Op::Status, "vm1", 5, K, hash, &mut rng);
            d.handle(&dg, Instant::now(), Some(&mut a), Stream::Clean)
                .unwrap();
            assert_eq!(
                a.events,
                vec![AnswerEvent::Result(Response::Success)],
                "{hash}/{auth}"
            );
        }
    }
}

#[test]
fn dropped_first_datagram_then_retransmission_executes_once() {
    let mut d = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    let mut rng = Rng(2);
    let t0 = Instant::now();
    let _lost = datagram(Op::Off, "vm1", 77, K, HashType::Sha256, &mut rng);
    let retrans = datagram(Op::Off, "vm1", 77, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(K, HashType::Sha256, 3);
    d.handle(&retrans, t0 + Duration::from_secs(2), Some(&mut a), Stream::Clean)
        .unwrap();
    assert_eq!(d.executed, vec![(Op::Off, "vm1".to_string())]);
    assert!(!d.vms["vm1"]);
}

#[test]
fn duplicated_and_reordered_copies_execute_once() {
    let mut d = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    let mut rng = Rng(4);
    let t0 = Instant::now();
    // Two per-address copies and a retransmission, delivered out of order
    // and one of them twice.
    let c1 = datagram(Op::Off, "vm1", 9, K, HashType::Sha256, &mut rng);
    let c2 = datagram(Op::Off, "VM1", 9, K, HashType::Sha256, &mut rng);
    let r1 = datagram(Op::Off, "vm1", 9, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(K, HashType::Sha256, 5);
    d.handle(&r1, t0, Some(&mut a), Stream::Clean).unwrap();
    for dg in [&c2, &c1, &c1] {
        let mut a = agent_conn(K, HashType::Sha256, 6);
        assert_eq!(
            d.handle(dg, t0 + Duration::from_millis(10), Some(&mut a), Stream::Clean),
            Err(Refusal::Duplicate(Duplicate::Recent))
        );
        assert!(a.events.is_empty());
    }
    assert_eq!(d.executed.len(), 1);
}

#[test]
fn replay_is_refused_inside_and_after_the_window() {
    let mut d = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    let mut rng = Rng(8);
    let t0 = Instant::now();
    let dg = datagram(Op::Off, "vm1", 1234, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(K, HashType::Sha256, 1);
    d.handle(&dg, t0, Some(&mut a), Stream::Clean).unwrap();
    let mut a = agent_conn(K, HashType::Sha256, 1);
    assert_eq!(
        d.handle(&dg, t0 + Duration::from_secs(5), Some(&mut a), Stream::Clean),
        Err(Refusal::Duplicate(Duplicate::Recent))
    );
    // After the window the classic daemon would run it again (spec §7.1.3),
    // even though the listener answering the call back holds the key.
    let mut a = agent_conn(K, HashType::Sha256, 1);
    assert_eq!(
        d.handle(&dg, t0 + Duration::from_secs(17), Some(&mut a), Stream::Clean),
        Err(Refusal::Replay)
    );
    assert_eq!(d.executed.len(), 1);
}

#[test]
fn tampered_datagram_and_wrong_key_are_dropped_before_any_call_back() {
    let mut d = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    let mut rng = Rng(9);
    let mut dg = datagram(Op::Off, "vm1", 1, K, HashType::Sha256, &mut rng);
    dg[10] ^= 0x20;
    assert_eq!(
        d.handle(&dg, Instant::now(), None, Stream::Clean),
        Err(Refusal::Verify(VerifyError::Mismatch))
    );
    let other = datagram(Op::Off, "vm1", 2, b"another key", HashType::Sha256, &mut rng);
    assert_eq!(
        d.handle(&other, Instant::now(), None, Stream::Clean),
        Err(Refusal::Verify(VerifyError::Mismatch))
    );
    assert!(
        d.history.is_empty(),
        "nothing is remembered for a rejected packet"
    );
    assert!(d.executed.is_empty());
}

#[test]
fn tampered_handshake_fails_and_the_retry_succeeds() {
    let mut d = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    let mut rng = Rng(10);
    let t0 = Instant::now();
    let dg = datagram(Op::Off, "vm1", 3, K, HashType::Sha256, &mut rng);
    // The daemon's answer to the agent's challenge is altered in flight.
    let mut a = agent_conn(K, HashType::Sha256, 11);
    assert_eq!(
        d.handle(&dg, t0, Some(&mut a), Stream::TamperDaemonMsg(0)),
        Err(Refusal::Auth(AuthError::BadAnswer))
    );
    // The daemon's own challenge is altered: the agent answers the altered
    // one, and the daemon refuses that answer.
    let dg2 = datagram(Op::Off, "vm1", 3, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(K, HashType::Sha256, 12);
    assert_eq!(
        d.handle(&dg2, t0, Some(&mut a), Stream::TamperDaemonMsg(1)),
        Err(Refusal::Auth(AuthError::BadAnswer))
    );
    assert!(d.executed.is_empty());
    let dg3 = datagram(Op::Off, "vm1", 3, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(K, HashType::Sha256, 13);
    d.handle(&dg3, t0 + Duration::from_secs(2), Some(&mut a), Stream::Clean)
        .unwrap();
    assert_eq!(d.executed.len(), 1);
}

#[test]
fn failed_call_back_is_not_remembered() {
    let mut d = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    let mut rng = Rng(14);
    let dg = datagram(Op::Status, "vm1", 3, K, HashType::Sha256, &mut rng);
    assert_eq!(
        d.handle(&dg, Instant::now(), None, Stream::Clean),
        Err(Refusal::Stalled)
    );
    let mut a = agent_conn(K, HashType::Sha256, 15);
    d.handle(&dg, Instant::now(), Some(&mut a), Stream::Clean)
        .unwrap();
}

#[test]
fn option_mismatch_matrix_of_spec_2_4() {
    let mut rng = Rng(16);
    // -c sha1 against a sha256 daemon: dropped (hash too weak).
    let mut d = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    let dg = datagram(Op::Status, "vm1", 1, K, HashType::Sha1, &mut rng);
    assert_eq!(
        d.handle(&dg, Instant::now(), None, Stream::Clean),
        Err(Refusal::Verify(VerifyError::HashTooWeak {
            got: HashType::Sha1,
            min: HashType::Sha256
        }))
    );
    // -c sha512: success.
    let dg = datagram(Op::Status, "vm1", 2, K, HashType::Sha512, &mut rng);
    let mut a = agent_conn(K, HashType::Sha256, 1);
    d.handle(&dg, Instant::now(), Some(&mut a), Stream::Clean)
        .unwrap();
    // -C sha512: the agent rejects the daemon's SHA-256 answer.
    let dg = datagram(Op::Status, "vm1", 3, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(K, HashType::Sha512, 1);
    assert_eq!(
        d.handle(&dg, Instant::now(), Some(&mut a), Stream::Clean),
        Err(Refusal::Auth(AuthError::BadAnswer))
    );
    // -C none: both ends wait for bytes that never come.
    let dg = datagram(Op::Status, "vm1", 4, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(K, HashType::None, 1);
    assert_eq!(
        d.handle(&dg, Instant::now(), Some(&mut a), Stream::Clean),
        Err(Refusal::Stalled)
    );
    // Wrong key on the stream only (right key on the packet is impossible
    // without the key, but a daemon with another auth key fails the agent).
    let mut d2 = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    d2.key = Key::from_bytes(K).unwrap();
    let dg = datagram(Op::Status, "vm1", 5, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(b"not the key", HashType::Sha256, 1);
    assert_eq!(
        d2.handle(&dg, Instant::now(), Some(&mut a), Stream::Clean),
        Err(Refusal::Auth(AuthError::BadAnswer))
    );
    assert_eq!(d.executed.len() + d2.executed.len(), 1);
}

#[test]
fn host_list_travels_through_the_exchange() {
    let mut d = Daemon::new(K, HashType::Sha256, HashType::Sha256);
    let mut rng = Rng(17);
    let dg = datagram(Op::HostList, "", 1, K, HashType::Sha256, &mut rng);
    let mut a = agent_conn(K, HashType::Sha256, 1);
    d.handle(&dg, Instant::now(), Some(&mut a), Stream::Clean)
        .unwrap();
    let names: Vec<_> = a
        .events
        .iter()
        .filter_map(|e| match e {
            AnswerEvent::Host(h) => Some((h.name.clone(), h.is_running())),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec![("vm1".to_string(), true), ("vm2".to_string(), false)]);
    assert_eq!(a.events.last(), Some(&AnswerEvent::ListResult(Response::Success)));
}
