//! Serial and VMChannel messages (spec §1.4, §1.5, §3.4): a 74-byte request
//! and a 5-byte response, both starting with the magic bytes `abba`.
//!
//! There is no key on this transport; the daemon identifies the requester
//! by the socket the bytes arrived on. Byte streams on a serial line may
//! carry noise, so both directions resynchronise on the magic with a proper
//! matcher (the classic agent's matcher misses overlapping prefixes).

use crate::codes::{Response, RESP_HOSTLIST};
use crate::domain::{Domain, DomainError, DOMAIN_FIELD_LEN};
use crate::hostlist::{Collected, EntryCollector, HostListError, HostState, TERMINATOR};

/// `0x61626261` in little-endian: ASCII `abba`.
pub const SERIAL_MAGIC: [u8; 4] = *b"abba";
/// Size of a serial request.
pub const SERIAL_REQUEST_LEN: usize = 74;
/// Size of a serial response.
pub const SERIAL_RESPONSE_LEN: usize = 5;

/// A request on a serial line or VMChannel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialRequest {
    /// Raw request code.
    pub request: u8,
    /// Flags (0 from the classic agent; ignored).
    pub flags: u8,
    /// Target VM, `None` for list and monitor.
    pub domain: Option<Domain>,
    /// Request identifier.
    pub seqno: u32,
}

/// Malformed serial data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    /// A serial request is exactly 74 bytes.
    #[error("serial request is {got} bytes, expected {SERIAL_REQUEST_LEN}")]
    Length {
        /// Bytes given.
        got: usize,
    },
    /// The first four bytes are not `abba`.
    #[error("bad magic {0:02x?}")]
    BadMagic([u8; 4]),
    /// Bad `domain` field.
    #[error("bad domain field: {0}")]
    Domain(#[from] DomainError),
    /// Bad host-list entry.
    #[error(transparent)]
    HostList(#[from] HostListError),
}

impl SerialRequest {
    /// Encode into 74 bytes.
    pub fn encode(&self) -> [u8; SERIAL_REQUEST_LEN] {
        let mut out = [0u8; SERIAL_REQUEST_LEN];
        out[..4].copy_from_slice(&SERIAL_MAGIC);
        out[4] = self.request;
        out[5] = self.flags;
        Domain::encode_field(self.domain.as_ref(), &mut out[6..6 + DOMAIN_FIELD_LEN]);
        out[70..].copy_from_slice(&self.seqno.to_le_bytes());
        out
    }

    /// Decode exactly 74 bytes (magic included).
    pub fn decode(bytes: &[u8]) -> Result<SerialRequest, SerialError> {
        let raw: &[u8; SERIAL_REQUEST_LEN] = bytes
            .try_into()
            .map_err(|_| SerialError::Length { got: bytes.len() })?;
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&raw[..4]);
        if magic != SERIAL_MAGIC {
            return Err(SerialError::BadMagic(magic));
        }
        let mut field = [0u8; DOMAIN_FIELD_LEN];
        field.copy_from_slice(&raw[6..70]);
        Ok(SerialRequest {
            request: raw[4],
            flags: raw[5],
            domain: Domain::decode_field(&field)?,
            seqno: u32::from_le_bytes([raw[70], raw[71], raw[72], raw[73]]),
        })
    }
}

/// Encode a 5-byte response record.
pub fn encode_response(code: Response) -> [u8; SERIAL_RESPONSE_LEN] {
    let mut out = [0u8; SERIAL_RESPONSE_LEN];
    out[..4].copy_from_slice(&SERIAL_MAGIC);
    out[4] = code.code();
    out
}

/// The bytes a daemon sends on a serial line for a list: `abba 0xFD`, the
/// entries, the terminator, then `abba <result>`.
pub fn encode_host_list<'a>(entries: impl IntoIterator<Item = &'a HostState>, result: Response) -> Vec<u8> {
    let mut out = encode_response(Response::HostList).to_vec();
    for e in entries {
        out.extend_from_slice(&e.encode());
    }
    out.extend_from_slice(&TERMINATOR);
    out.extend_from_slice(&encode_response(result));
    out
}

/// Finds the magic in a byte stream, handling overlapping prefixes
/// (`a a b b a` contains `abba`).
#[derive(Debug, Clone, Default)]
pub struct MagicScanner {
    matched: usize,
}

impl MagicScanner {
    /// Push one byte; true when it completes the magic.
    pub fn push(&mut self, byte: u8) -> bool {
        // Longest proper border of each prefix of "abba": only "abba"
        // itself has one ("a"); every other prefix restarts from zero.
        loop {
            if byte == SERIAL_MAGIC[self.matched] {
                self.matched += 1;
                if self.matched == SERIAL_MAGIC.len() {
                    self.matched = 1; // the final 'a' may start the next magic
                    return true;
                }
                return false;
            }
            if self.matched == 0 {
                return false;
            }
            self.matched = 0;
        }
    }

    /// Forget any partial match.
    pub fn reset(&mut self) {
        self.matched = 0;
    }
}

/// Daemon side: turns the byte stream from one guest into requests,
/// skipping noise between them.
#[derive(Debug, Clone, Default)]
pub struct RequestFramer {
    scanner: MagicScanner,
    body: Option<Vec<u8>>,
    skipped: usize,
}

/// What the daemon's framer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramerEvent {
    /// A request; `skipped` noise bytes preceded it.
    Request {
        /// The request.
        request: SerialRequest,
        /// Bytes discarded before its magic.
        skipped: usize,
    },
    /// A framed request whose body was malformed; it was dropped.
    Malformed(SerialError),
}

impl RequestFramer {
    /// Consume bytes; return the requests (and malformed frames) completed.
    pub fn feed(&mut self, data: &[u8]) -> Vec<FramerEvent> {
        let mut events = Vec::new();
        for &b in data {
            match &mut self.body {
                Some(body) => {
                    body.push(b);
                    if body.len() == SERIAL_REQUEST_LEN {
                        let event = match SerialRequest::decode(body) {
                            Ok(request) => FramerEvent::Request {
                                request,
                                skipped: self.skipped,
                            },
                            Err(e) => FramerEvent::Malformed(e),
                        };
                        events.push(event);
                        self.body = None;
                        self.skipped = 0;
                        self.scanner.reset();
                    }
                }
                None => {
                    self.skipped += 1;
                    if self.scanner.push(b) {
                        self.skipped -= SERIAL_MAGIC.len().min(self.skipped);
                        self.body = Some(SERIAL_MAGIC.to_vec());
                    }
                }
            }
        }
        events
    }

    /// Whether a request is partly read.
    pub fn in_frame(&self) -> bool {
        self.body.is_some()
    }
}

/// What the agent learns from a serial answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialAnswer {
    /// A plain result.
    Result(Response),
    /// One VM of a list.
    Host(HostState),
    /// The list's terminator (the classic agent stops here).
    EndOfList,
    /// The `abba <code>` record after a list.
    ListResult(Response),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnswerPhase {
    SeekMagic,
    Code,
    Entries,
    SeekFinalMagic,
    FinalCode,
    Done,
}

/// Agent side: reads the daemon's answer from a serial stream, skipping
/// any noise before the magic.
#[derive(Debug, Clone)]
pub struct AnswerReader {
    phase: AnswerPhase,
    scanner: MagicScanner,
    entries: EntryCollector,
}

impl Default for AnswerReader {
    fn default() -> Self {
        AnswerReader {
            phase: AnswerPhase::SeekMagic,
            scanner: MagicScanner::default(),
            entries: EntryCollector::new(crate::hostlist::AnswerReader::DEFAULT_MAX_ENTRIES),
        }
    }
}

impl AnswerReader {
    /// Whether nothing more is expected.
    pub fn is_done(&self) -> bool {
        self.phase == AnswerPhase::Done
    }

    /// Whether a list's terminator has been read.
    pub fn list_complete(&self) -> bool {
        matches!(
            self.phase,
            AnswerPhase::SeekFinalMagic | AnswerPhase::FinalCode | AnswerPhase::Done
        )
    }

    /// Consume bytes; bytes after the end are ignored (a serial line may
    /// carry anything afterwards).
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<SerialAnswer>, SerialError> {
        let mut events = Vec::new();
        for &b in data {
            match self.phase {
                AnswerPhase::SeekMagic | AnswerPhase::SeekFinalMagic => {
                    if self.scanner.push(b) {
                        self.scanner.reset();
                        self.phase = if self.phase == AnswerPhase::SeekMagic {
                            AnswerPhase::Code
                        } else {
                            AnswerPhase::FinalCode
                        };
                    }
                }
                AnswerPhase::Code => {
                    if b == RESP_HOSTLIST {
                        self.phase = AnswerPhase::Entries;
                    } else {
                        self.phase = AnswerPhase::Done;
                        events.push(SerialAnswer::Result(Response::from_code(b)));
                    }
                }
                AnswerPhase::Entries => match self.entries.take(&[b])?.1 {
                    Some(Collected::Host(h)) => events.push(SerialAnswer::Host(h)),
                    Some(Collected::End) => {
                        self.phase = AnswerPhase::SeekFinalMagic;
                        events.push(SerialAnswer::EndOfList);
                    }
                    None => {}
                },
                AnswerPhase::FinalCode => {
                    self.phase = AnswerPhase::Done;
                    events.push(SerialAnswer::ListResult(Response::from_code(b)));
                }
                AnswerPhase::Done => {}
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::Op;

    fn req() -> SerialRequest {
        SerialRequest {
            request: Op::Status.code(),
            flags: 0,
            domain: Some(Domain::new("guest2").unwrap()),
            seqno: 942_142,
        }
    }

    #[test]
    fn layout_matches_the_captured_exchange() {
        let raw = req().encode();
        assert_eq!(&raw[..6], b"abba\x04\x00");
        assert_eq!(&raw[6..12], b"guest2");
        assert_eq!(&raw[70..], &[0x3e, 0x60, 0x0e, 0x00]);
        assert_eq!(SerialRequest::decode(&raw), Ok(req()));
        assert_eq!(encode_response(Response::Success), *b"abba\x00");
        for n in 0..SERIAL_REQUEST_LEN {
            assert!(SerialRequest::decode(&raw[..n]).is_err());
        }
    }

    #[test]
    fn scanner_finds_overlapping_magic() {
        let mut s = MagicScanner::default();
        let hits: Vec<bool> = b"aabba".iter().map(|&b| s.push(b)).collect();
        assert_eq!(hits, [false, false, false, false, true]);
        let mut s = MagicScanner::default();
        let hits: Vec<usize> = b"abbabba"
            .iter()
            .enumerate()
            .filter(|(_, &b)| s.push(b))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(hits, [3, 6], "the last 'a' of one magic starts the next");
        let mut s = MagicScanner::default();
        assert!(!b"abbxabb".iter().any(|&b| s.push(b)));
    }

    #[test]
    fn framer_skips_noise_and_survives_garbage() {
        let mut stream = b"\xff\xfeabb\x00noise a".to_vec();
        stream.extend_from_slice(&req().encode());
        stream.extend_from_slice(b"zz");
        stream.extend_from_slice(&req().encode());
        let mut f = RequestFramer::default();
        let mut events = Vec::new();
        for c in stream.chunks(5) {
            events.extend(f.feed(c));
        }
        assert_eq!(events.len(), 2);
        assert!(matches!(&events[0], FramerEvent::Request { request, .. } if *request == req()));
        assert_eq!(
            events[1],
            FramerEvent::Request {
                request: req(),
                skipped: 2
            }
        );
    }

    #[test]
    fn framer_reports_a_malformed_body_and_recovers() {
        let mut bad = req().encode();
        bad[6..70].fill(b'A'); // no NUL terminator
        let mut f = RequestFramer::default();
        let mut events = f.feed(&bad);
        events.extend(f.feed(&req().encode()));
        assert!(matches!(
            events[0],
            FramerEvent::Malformed(SerialError::Domain(_))
        ));
        assert!(matches!(&events[1], FramerEvent::Request { request, .. } if *request == req()));
    }

    #[test]
    fn answer_reader_with_noise_and_list() {
        let hosts = [HostState {
            name: "victim".into(),
            uuid: "u".into(),
            state: 1,
        }];
        let mut bytes = b"ab\x00aab".to_vec();
        bytes.extend_from_slice(&encode_host_list(&hosts, Response::Success));
        let mut r = AnswerReader::default();
        let events = r.feed(&bytes).unwrap();
        assert_eq!(
            events,
            vec![
                SerialAnswer::Host(hosts[0].clone()),
                SerialAnswer::EndOfList,
                SerialAnswer::ListResult(Response::Success)
            ]
        );
        assert!(r.is_done());
        let mut r = AnswerReader::default();
        assert_eq!(
            r.feed(b"xxabba\x02").unwrap(),
            vec![SerialAnswer::Result(Response::Off)]
        );
    }
}
