//! Host lists: the 130-byte `host_state_t` entry (spec §1.3) and the stream
//! a daemon sends after authentication (spec §3.5): either one result byte,
//! or the marker `0xFD`, entries, a 130-byte zero terminator and a final
//! result byte.

use crate::codes::{Response, RESP_HOSTLIST};

/// Size of one host-list entry.
pub const HOST_STATE_LEN: usize = 130;
/// Size of each of the `domain` and `uuid` fields of an entry.
pub const HOST_FIELD_LEN: usize = 64;
/// The classic daemon copies at most this many bytes per field and leaves
/// byte 63 uninitialised; readers only look at the first 63 bytes.
pub const HOST_FIELD_TEXT_LEN: usize = 63;

/// libvirt's `virDomainState` values, as carried in [`HostState::state`].
pub mod vir_state {
    /// No state.
    pub const NOSTATE: u8 = 0;
    /// Running.
    pub const RUNNING: u8 = 1;
    /// Blocked on a resource.
    pub const BLOCKED: u8 = 2;
    /// Paused by the user.
    pub const PAUSED: u8 = 3;
    /// Being shut down.
    pub const SHUTDOWN: u8 = 4;
    /// Shut off.
    pub const SHUTOFF: u8 = 5;
    /// Crashed.
    pub const CRASHED: u8 = 6;
    /// Suspended by guest power management.
    pub const PMSUSPENDED: u8 = 7;
}

/// One VM of a host list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostState {
    /// VM name (at most 63 bytes survive the wire).
    pub name: String,
    /// VM UUID as text.
    pub uuid: String,
    /// Raw libvirt state, see [`vir_state`].
    pub state: u8,
}

impl HostState {
    /// Whether the classic agent would print `on` (only `state == 1`).
    pub fn is_running(&self) -> bool {
        self.state == vir_state::RUNNING
    }

    /// Encode into 130 bytes; every byte not carrying text is zero (the
    /// classic daemon leaks stack bytes at offsets 63, 127 and 129; we do
    /// not). Text longer than 63 bytes is cut at a character boundary.
    pub fn encode(&self) -> [u8; HOST_STATE_LEN] {
        let mut out = [0u8; HOST_STATE_LEN];
        put_text(&mut out[..HOST_FIELD_LEN], &self.name);
        put_text(&mut out[HOST_FIELD_LEN..2 * HOST_FIELD_LEN], &self.uuid);
        out[2 * HOST_FIELD_LEN] = self.state;
        out
    }

    /// Decode 130 bytes: `Ok(None)` for the terminator (both texts empty).
    /// Offsets 63, 127 and 129 are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Option<HostState>, HostListError> {
        let raw: &[u8; HOST_STATE_LEN] = bytes
            .try_into()
            .map_err(|_| HostListError::EntryLength { got: bytes.len() })?;
        let name = get_text(&raw[..HOST_FIELD_TEXT_LEN]);
        let uuid = get_text(&raw[HOST_FIELD_LEN..HOST_FIELD_LEN + HOST_FIELD_TEXT_LEN]);
        if name.is_empty() && uuid.is_empty() {
            return Ok(None);
        }
        Ok(Some(HostState {
            name,
            uuid,
            state: raw[2 * HOST_FIELD_LEN],
        }))
    }
}

/// The entry that ends a list.
pub const TERMINATOR: [u8; HOST_STATE_LEN] = [0; HOST_STATE_LEN];

/// The complete bytes a daemon sends for a list: marker, entries,
/// terminator, final result.
pub fn encode_host_list<'a>(entries: impl IntoIterator<Item = &'a HostState>, result: Response) -> Vec<u8> {
    let mut out = vec![RESP_HOSTLIST];
    for e in entries {
        out.extend_from_slice(&e.encode());
    }
    out.extend_from_slice(&TERMINATOR);
    out.push(result.code());
    out
}

fn put_text(field: &mut [u8], text: &str) {
    let mut end = text.len().min(HOST_FIELD_TEXT_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    field[..end].copy_from_slice(&text.as_bytes()[..end]);
}

fn get_text(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// Malformed host-list data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostListError {
    /// An entry is exactly 130 bytes.
    #[error("host-list entry is {got} bytes, expected {HOST_STATE_LEN}")]
    EntryLength {
        /// Bytes given.
        got: usize,
    },
    /// More entries than the reader accepts (a runaway or hostile peer).
    #[error("host list longer than {0} entries")]
    TooLong(usize),
    /// Bytes arrived after the answer was complete.
    #[error("{0} unexpected bytes after the end of the answer")]
    TrailingBytes(usize),
}

/// Collects 130-byte host entries from a byte stream, bounded in number.
/// Shared by the network and the serial answer readers.
#[derive(Debug, Clone)]
pub(crate) struct EntryCollector {
    buf: Vec<u8>,
    entries: usize,
    max_entries: usize,
}

/// A complete entry: a VM, or the terminator that ends the list.
pub(crate) enum Collected {
    Host(HostState),
    End,
}

impl EntryCollector {
    pub(crate) fn new(max_entries: usize) -> EntryCollector {
        EntryCollector {
            buf: Vec::with_capacity(HOST_STATE_LEN),
            entries: 0,
            max_entries,
        }
    }

    /// Take bytes up to the end of the current entry. Returns how many were
    /// used and the entry, once complete.
    pub(crate) fn take(&mut self, data: &[u8]) -> Result<(usize, Option<Collected>), HostListError> {
        let used = (HOST_STATE_LEN - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..used]);
        if self.buf.len() < HOST_STATE_LEN {
            return Ok((used, None));
        }
        let entry = HostState::decode(&self.buf)?;
        self.buf.clear();
        let collected = match entry {
            Some(h) => {
                self.entries += 1;
                if self.entries > self.max_entries {
                    return Err(HostListError::TooLong(self.max_entries));
                }
                Collected::Host(h)
            }
            None => Collected::End,
        };
        Ok((used, Some(collected)))
    }

    /// Bytes still missing from the current entry.
    pub(crate) fn missing(&self) -> usize {
        HOST_STATE_LEN - self.buf.len()
    }
}

/// What the agent learns from the daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerEvent {
    /// A plain one-byte answer (not a list).
    Result(Response),
    /// One VM of a list.
    Host(HostState),
    /// The terminator of a list was read; the list is complete. The final
    /// result byte may still follow, and the classic agent does not wait
    /// for it.
    EndOfList,
    /// The final result byte after a list.
    ListResult(Response),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    First,
    Entries,
    Final,
    Done,
}

/// Incremental reader of a daemon's answer; feed it bytes as they arrive
/// (in any chunking) and take events out.
#[derive(Debug, Clone)]
pub struct AnswerReader {
    phase: Phase,
    entries: EntryCollector,
}

impl Default for AnswerReader {
    fn default() -> Self {
        AnswerReader::new(AnswerReader::DEFAULT_MAX_ENTRIES)
    }
}

impl AnswerReader {
    /// Default bound on the number of entries accepted in one list.
    pub const DEFAULT_MAX_ENTRIES: usize = 1 << 20;

    /// A reader that refuses lists longer than `max_entries`.
    pub fn new(max_entries: usize) -> AnswerReader {
        AnswerReader {
            phase: Phase::First,
            entries: EntryCollector::new(max_entries),
        }
    }

    /// Bytes the reader wants next: 1 while waiting for a result byte, 130
    /// minus what it holds while reading entries, 0 when done.
    pub fn wanted(&self) -> usize {
        match self.phase {
            Phase::First | Phase::Final => 1,
            Phase::Entries => self.entries.missing(),
            Phase::Done => 0,
        }
    }

    /// Whether the answer is complete (a result, or a list's final byte).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Whether a list's terminator has been read (its final byte optional).
    pub fn list_complete(&self) -> bool {
        matches!(self.phase, Phase::Final | Phase::Done)
    }

    /// Consume bytes, returning the events they complete. Bytes beyond the
    /// end of the answer are an error.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<Vec<AnswerEvent>, HostListError> {
        let mut events = Vec::new();
        while !data.is_empty() {
            match self.phase {
                Phase::First => {
                    let code = data[0];
                    data = &data[1..];
                    if code == RESP_HOSTLIST {
                        self.phase = Phase::Entries;
                    } else {
                        self.phase = Phase::Done;
                        events.push(AnswerEvent::Result(Response::from_code(code)));
                    }
                }
                Phase::Entries => {
                    let (used, entry) = self.entries.take(data)?;
                    data = &data[used..];
                    match entry {
                        Some(Collected::Host(h)) => events.push(AnswerEvent::Host(h)),
                        Some(Collected::End) => {
                            self.phase = Phase::Final;
                            events.push(AnswerEvent::EndOfList);
                        }
                        None => {}
                    }
                }
                Phase::Final => {
                    let code = data[0];
                    data = &data[1..];
                    self.phase = Phase::Done;
                    events.push(AnswerEvent::ListResult(Response::from_code(code)));
                }
                Phase::Done => return Err(HostListError::TrailingBytes(data.len())),
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, state: u8) -> HostState {
        HostState {
            name: name.into(),
            uuid: "6695eb01-f6a4-8304-79aa-97f2502e193f".into(),
            state,
        }
    }

    #[test]
    fn entry_round_trip_and_terminator() {
        let h = vm("test", vir_state::RUNNING);
        let raw = h.encode();
        assert_eq!(raw[63], 0);
        assert_eq!(raw[127], 0);
        assert_eq!(raw[129], 0);
        assert_eq!(HostState::decode(&raw), Ok(Some(h)));
        assert_eq!(HostState::decode(&TERMINATOR), Ok(None));
        for n in 0..HOST_STATE_LEN {
            assert!(HostState::decode(&raw[..n]).is_err());
        }
    }

    #[test]
    fn classic_garbage_bytes_are_ignored() {
        let name = "n".repeat(63);
        let mut raw = HostState {
            name: name.clone(),
            uuid: "u".repeat(63),
            state: 5,
        }
        .encode();
        raw[63] = 0x33;
        raw[127] = 0xe5;
        raw[129] = 0x96;
        let h = HostState::decode(&raw).unwrap().unwrap();
        assert_eq!(h.name, name);
        assert_eq!(h.uuid.len(), 63);
        assert!(!h.is_running());
    }

    #[test]
    fn long_names_are_cut_on_char_boundaries() {
        let h = HostState {
            name: "é".repeat(40),
            uuid: String::new(),
            state: 1,
        };
        let back = HostState::decode(&h.encode()).unwrap().unwrap();
        assert_eq!(back.name, "é".repeat(31));
    }

    #[test]
    fn reader_handles_any_chunking() {
        let list = [vm("a", 1), vm("b", 5), vm("c", 3)];
        let bytes = encode_host_list(&list, Response::Success);
        for chunk in [1, 2, 7, 130, 131, 1000] {
            let mut r = AnswerReader::default();
            let mut events = Vec::new();
            for c in bytes.chunks(chunk) {
                events.extend(r.feed(c).unwrap());
            }
            assert!(r.is_done());
            let hosts: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    AnswerEvent::Host(h) => Some(h.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(hosts, list);
            assert_eq!(events.last(), Some(&AnswerEvent::ListResult(Response::Success)));
        }
    }

    #[test]
    fn plain_result_and_trailing_bytes() {
        let mut r = AnswerReader::default();
        assert_eq!(r.feed(&[2]).unwrap(), vec![AnswerEvent::Result(Response::Off)]);
        assert_eq!(r.feed(&[0]), Err(HostListError::TrailingBytes(1)));
    }

    #[test]
    fn list_length_is_bounded() {
        let list = [vm("a", 1), vm("b", 1)];
        let mut r = AnswerReader::new(1);
        assert_eq!(
            r.feed(&encode_host_list(&list, Response::Success)),
            Err(HostListError::TooLong(1))
        );
    }
}
