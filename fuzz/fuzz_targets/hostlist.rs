//! Arbitrary daemon answers, in arbitrary chunks, through the agent's
//! reader: no panic, bounded output, and entries re-encode to what decodes
//! the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmfence_proto::hostlist::{AnswerEvent, AnswerReader, HostState};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut reader = AnswerReader::new(64);
    for piece in rest.chunks(chunk) {
        match reader.feed(piece) {
            Ok(events) => {
                for e in events {
                    if let AnswerEvent::Host(h) = e {
                        let again = HostState::decode(&h.encode()).ok().flatten();
                        if !h.name.contains('\u{fffd}') && !h.uuid.contains('\u{fffd}') {
                            assert_eq!(again.as_ref(), Some(&h));
                        }
                    }
                }
            }
            Err(_) => break,
        }
    }
});
