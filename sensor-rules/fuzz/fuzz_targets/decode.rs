//! Arbitrary bytes as one ring-buffer record: decoding may refuse them,
//! never panic or read past the record; a decoded exec's strings are owned
//! and valid UTF-8 (bad bytes replaced).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor_decode::{Record, decode};

fuzz_target!(|data: &[u8]| {
    if let Ok(Record::Exec(mut e)) = decode(data) {
        let bytes: usize = e.args.iter().map(|a| a.len()).sum();
        assert!(bytes <= data.len() * 3, "args come from the record's bytes");
        assert!(e.filename.len() <= data.len() * 3);
        // Keeping some entries keeps exactly those, in order.
        let keep = |n: &[u8]| n.first().is_some_and(|c| c % 2 == 0);
        let want: Vec<String> = e.env_vars(keep).collect();
        e.retain_env(keep);
        let got: Vec<String> = e.env_vars(|_| true).collect();
        assert_eq!(got, want);
    }
});
