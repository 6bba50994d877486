//! Arbitrary query text: lex, parse, compile and evaluate against a fixed
//! event. Errors are fine; panics, hangs and runaway memory are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor_rules::Rule;
use std::sync::OnceLock;

fn event() -> &'static serde_json::Value {
    static E: OnceLock<serde_json::Value> = OnceLock::new();
    E.get_or_init(|| {
        serde_json::json!({
            "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "exec"},
            "process": {"name": "curl", "pid": 42, "args": ["curl", "-k", "-H", "Authorization: Bearer x", "https://127.0.0.1:6443/api"],
                        "interactive": true, "parent": {"name": "bash", "args": ["bash"]}, "tty": {"char_device": {"major": 136}}},
            "container": {"id": "abc"}, "source": {"ip": "10.1.2.3"}, "user.id": "0", "empty": [], "nul": null
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(rule) = Rule::from_eql("fuzz", "fuzz", &text) {
        let _ = rule.matches(event());
    }
    // The same text as a bare condition, which reaches the expression grammar directly.
    if let Ok(rule) = Rule::from_eql("fuzz", "fuzz", &format!("any where {text}")) {
        let _ = rule.matches(event());
    }
});
