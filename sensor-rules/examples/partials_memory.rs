//! Memory held by 100 000 pending partial sequences (for `cargo xtask
//! bench`): each started by a realistic exec document, each on its own key,
//! none able to complete. Prints the resident-size growth per partial.

use sensor_rules::Rule;
use sensor_rules::engine::{Engine, EngineConfig};
use serde_json::json;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rule = Rule::from_eql(
        "m",
        "m",
        r#"sequence by process.entity_id with maxspan=1h
             [process where event.type == "start" and process.name == "curl"]
             [process where event.type == "start" and process.name == "sh"]"#,
    )
    .expect("rule");
    let cfg = EngineConfig {
        max_partials_per_rule: n,
        ..EngineConfig::unsuppressed()
    };
    let mut engine = Engine::new(vec![rule], cfg);
    let mut out = Vec::new();
    let before = rss_kib();
    for i in 0..n {
        let ev = json!({
            "@timestamp": sensor_rules::date::format_ns(1_796_083_200_000_000_000 + i as i64 * 1000),
            "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "exec"},
            "process": {
                "pid": 1000 + i, "entity_id": format!("{i:016x}"), "name": "curl",
                "executable": "/usr/bin/curl", "args": ["curl", "-s", "http://198.51.100.7/x"],
                "args_count": 3, "command_line": "curl -s http://198.51.100.7/x",
                "working_directory": "/", "interactive": false, "user": {"id": "0"},
                "parent": {"pid": 900, "entity_id": "aa", "name": "sh", "executable": "/bin/sh"},
            },
            "container": {"id": "2f1b3d4c5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8"},
            "host": {"name": "node-1"},
        });
        let view = engine.fields().project(&ev);
        engine.process(&view, &mut || ev.clone(), &mut out);
    }
    let after = rss_kib();
    let held = engine.stats().partials;
    println!(
        "partials={held} rss_before_kib={before} rss_after_kib={after} bytes_per_partial={}",
        (after.saturating_sub(before) * 1024) / held.max(1)
    );
}
