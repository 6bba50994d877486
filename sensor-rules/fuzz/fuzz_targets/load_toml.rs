//! Arbitrary rule-file text through the TOML loader and its error-position mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = sensor_rules::loader::load_str(&text, Path::new("fuzz.toml"));
});
