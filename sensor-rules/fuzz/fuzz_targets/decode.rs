//! Arbitrary bytes as one ring-buffer record: decoding may refuse them,
//! never panic or read past the record; a decoded exec's strings are owned
//! and valid UTF-8 (bad bytes replaced).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor_decode::{Record, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(Record::Exec(e)) = decode(data) {
        let bytes: usize = e.args.iter().map(|a| a.len()).sum();
        assert!(bytes <= data.len() * 3, "args come from the record's bytes");
        assert!(e.filename.len() <= data.len() * 3);
    }
});
