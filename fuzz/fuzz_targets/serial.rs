//! Arbitrary serial-line bytes through the daemon's request framer and the
//! agent's answer reader: no panic, and every framed request re-encodes to
//! bytes that decode to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmfence_proto::serial::{AnswerReader, FramerEvent, RequestFramer, SerialRequest};

fuzz_target!(|data: &[u8]| {
    let mut framer = RequestFramer::default();
    for piece in data.chunks(7) {
        for event in framer.feed(piece) {
            if let FramerEvent::Request { request, .. } = event {
                assert_eq!(SerialRequest::decode(&request.encode()).ok(), Some(request));
            }
        }
    }
    let _ = SerialRequest::decode(data);
    let mut reader = AnswerReader::default();
    let _ = reader.feed(data);
});
