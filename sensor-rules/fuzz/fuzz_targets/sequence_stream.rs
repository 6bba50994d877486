//! Random sequence rule sets and random event streams through the Engine:
//! nothing panics, state stays under its caps, and every partial sequence
//! is accounted for.
//!
//! The input's first bytes pick the rules (stage conditions, keys, maxspan,
//! until, runs, missing stages) from small menus, so most sets compile; the
//! rest of the bytes are events, 4 bytes each: name, key, category/type,
//! time step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sensor_rules::Rule;
use sensor_rules::engine::{Engine, EngineConfig};
use sensor_rules::suppress::SuppressConfig;
use serde_json::json;

const CONDS: &[&str] = &[
    r#"process where process.name == "a""#,
    r#"process where process.name : ("b", "c*")"#,
    r#"any where process.name like~ "?""#,
    r#"file where file.path : "/tmp/*""#,
    r#"process where event.type == "end""#,
    r#"any where true"#,
];
const KEYS: &[&str] = &["", "by k", "by k, ?j", "by process.entity_id"];
const SPANS: &[&str] = &["", "with maxspan=5ms", "with maxspan=1s", "with maxspan=1h"];
const CAP: usize = 64;

fn stage(b: u8) -> String {
    let cond = CONDS[(b as usize) % CONDS.len()];
    let missing = if b & 0x40 != 0 { "!" } else { "" };
    let runs = if b & 0x80 != 0 && missing.is_empty() { " with runs=2" } else { "" };
    format!("{missing}[{cond}]{runs}")
}

fn query(bytes: &[u8]) -> String {
    let keys = KEYS[(bytes[0] as usize) % KEYS.len()];
    let span = SPANS[(bytes[1] as usize) % SPANS.len()];
    let n = 2 + (bytes[2] as usize) % 3;
    let stages: Vec<String> = bytes[3..3 + n].iter().map(|b| stage(*b)).collect();
    let until = if bytes[2] & 0x80 != 0 {
        format!(" until [{}]", CONDS[(bytes[3] as usize) % CONDS.len()])
    } else {
        String::new()
    };
    // Keys go first or after maxspan, as the grammar allows both.
    if bytes[1] & 0x80 != 0 {
        format!("sequence {span} {keys} {}{until}", stages.join(" "))
    } else {
        format!("sequence {keys} {span} {}{until}", stages.join(" "))
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (head, stream) = data.split_at(16);
    let mut rules = Vec::new();
    for (i, chunk) in head.chunks(8).enumerate() {
        if let Ok(r) = Rule::from_eql(&format!("s{i}"), &format!("s{i}"), &query(chunk)) {
            rules.push(r);
        }
    }
    if let Ok(r) = Rule::from_eql("e", "e", r#"process where process.name == "a""#) {
        rules.push(r);
    }
    let nrules = rules.len();
    let cfg = EngineConfig {
        max_partials_per_rule: CAP,
        suppress: SuppressConfig {
            default_window_ms: u64::from(head[0] % 3) * 10,
            rate_cap: u32::from(head[1] % 4),
            max_windows: 32,
        },
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(rules, cfg);
    let mut t: i64 = 1_796_083_200_000_000_000;
    let mut out = Vec::new();
    for ev in stream.chunks(4) {
        let [name, key, kind, step] = [ev[0], *ev.get(1).unwrap_or(&0), *ev.get(2).unwrap_or(&0), *ev.get(3).unwrap_or(&0)];
        // Mostly forward, sometimes a little back (clocks of other CPUs).
        t += i64::from(step as i8) * 1_000_000;
        let names = ["a", "b", "c", "x", "cc", "end"];
        let (cat, ty) = match kind % 4 {
            0 => ("process", "start"),
            1 => ("process", "end"),
            2 => ("file", "creation"),
            _ => ("network", "info"),
        };
        let mut e = json!({
            "@timestamp": sensor_rules::date::format_ns(t),
            "event": {"category": [cat], "type": [ty]},
            "process": {"name": names[(name as usize) % names.len()], "entity_id": format!("e{}", key % 5)},
            "file": {"path": if key & 1 == 0 { "/tmp/x" } else { "/etc/x" }},
            "container": {"id": format!("c{}", key % 3)},
        });
        if key & 0x10 != 0 {
            e["k"] = json!(key % 7);
        }
        if key & 0x20 != 0 {
            e["j"] = json!("J");
        }
        engine.process(&e, &mut || e.clone(), &mut out);
        let s = engine.stats();
        assert!(
            s.partials <= (CAP * nrules) as u64,
            "{} partials over a cap of {CAP} x {nrules} rules",
            s.partials
        );
        for a in out.drain(..) {
            assert_eq!(a["event"]["kind"], "alert");
        }
    }
    engine.finish(&mut out);
    let s = engine.stats();
    assert_eq!(s.partials, 0, "finish leaves no state: {s:?}");
});
