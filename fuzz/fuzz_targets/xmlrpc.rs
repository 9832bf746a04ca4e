//! Arbitrary bytes as a XenAPI answer body: the XML-RPC decoder, the
//! XenAPI envelope and the VM record reader never panic, and any value
//! that decodes is encoded back to a body that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmfence_xenapi::api::open_envelope;
use vmfence_xenapi::vm::VmRecord;
use vmfence_xenapi::xmlrpc::{decode_response, encode_response, Reply, Value};

fn has_nan(v: &Value) -> bool {
    match v {
        Value::Double(d) => d.is_nan(),
        Value::Array(a) => a.iter().any(has_nan),
        Value::Struct(m) => m.values().any(has_nan),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(Reply::Value(v)) = decode_response(data) else {
        return;
    };
    let _ = VmRecord::from_value("OpaqueRef:fuzz", &v);
    if let Some(records) = v.as_struct() {
        for (r, rec) in records {
            let _ = VmRecord::from_value(r, rec);
        }
    }
    if !has_nan(&v) {
        let body = encode_response(&v).unwrap_or_else(|e| panic!("a decoded value does not encode: {e}"));
        let again = decode_response(body.as_bytes())
            .unwrap_or_else(|e| panic!("re-encoded body does not decode: {e}\n{body}"));
        assert_eq!(
            again,
            Reply::Value(v.clone()),
            "round trip changed the value:\n{body}"
        );
    }
    let _ = open_envelope(v);
});
