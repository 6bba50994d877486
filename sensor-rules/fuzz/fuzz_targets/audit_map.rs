//! Arbitrary bytes as one line of an audit log (or webhook body): unwrap
//! envelopes and map to ECS. Errors are fine; panics are not, and every
//! mapped document must serialise back to one line of JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(docs) = sensor_audit::map_line(&text, "9.4.0") {
        for d in docs {
            let line = serde_json::to_string(&d).expect("a mapped document serialises");
            assert!(!line.contains('\n'));
        }
    }
});
