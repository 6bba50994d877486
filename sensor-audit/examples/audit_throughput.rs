//! Audit events per second on one core, through the mapping alone and
//! through mapping plus the rule engine (the shipped rules, or a directory
//! given as the first argument), over the vendored Falco audit events
//! (tests/fixtures/k8s-audit) replayed in a loop. Each pass parses the raw
//! JSON line, unwraps, maps, projects onto the rules' fields and evaluates:
//! what `sensor-agent audit` does per event, minus the stdout write.
//!
//! `cargo run --release -p sensor-audit --example audit_throughput [RULES_DIR]`

use std::{path::Path, time::Instant};

use sensor_rules::engine::{Engine, EngineConfig};

const EVENTS: usize = 400_000;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rules = std::env::args()
        .nth(1)
        .map(Into::into)
        .unwrap_or_else(|| root.join("rules"));
    let mut lines = Vec::new();
    for e in std::fs::read_dir(root.join("tests/fixtures/k8s-audit")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            for l in std::fs::read_to_string(&p).unwrap().lines() {
                if sensor_audit::map_line(l, "8.11.0").is_ok_and(|d| !d.is_empty()) {
                    lines.push(l.to_string());
                }
            }
        }
    }
    let bytes: usize = lines.iter().map(String::len).sum::<usize>() / lines.len();

    let t = Instant::now();
    for l in lines.iter().cycle().take(EVENTS) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        std::hint::black_box(v);
    }
    let parse_rate = EVENTS as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut docs = 0usize;
    for l in lines.iter().cycle().take(EVENTS) {
        docs += sensor_audit::map_line(l, "8.11.0").unwrap().len();
    }
    let map_rate = docs as f64 / t.elapsed().as_secs_f64();

    let report = sensor_rules::loader::load_dir(&rules).unwrap();
    let n_rules = report.rules.len();
    // Production defaults: suppression on, new_terms past learning.
    let mut cfg = EngineConfig::default();
    cfg.new_terms.learning_ms = Some(0);
    let mut engine = Engine::new(report.rules, cfg);
    let mut alerts = Vec::new();
    let t = Instant::now();
    for l in lines.iter().cycle().take(EVENTS) {
        // As the agent does when it writes events: rules read the full document.
        for doc in sensor_audit::map_line(l, "8.11.0").unwrap() {
            engine.process(&doc, &mut || doc.clone(), &mut alerts);
            alerts.clear();
        }
    }
    let full_rate = docs as f64 / t.elapsed().as_secs_f64();

    // The fast path (`--alerts-only`): parse only what the rules read.
    let projection = sensor_audit::Projection::new(engine.fields());
    let t = Instant::now();
    for l in lines.iter().cycle().take(EVENTS) {
        for view in projection.map_line(l, "8.11.0").unwrap() {
            engine.process(&view, &mut || unreachable_full(l), &mut alerts);
            alerts.clear();
        }
    }
    let projected_rate = docs as f64 / t.elapsed().as_secs_f64();
    println!(
        "audit events/s/core: JSON parse alone {:.0}, full mapping {:.0}, full mapping + {n_rules} rules {:.0}, \
         projected mapping + rules (alerts only) {:.0} ({} distinct raw events of {bytes} bytes on average, {EVENTS} passes)",
        parse_rate,
        map_rate,
        full_rate,
        projected_rate,
        lines.len()
    );
}

/// An alert's full document: the line mapped in full (as the agent does).
fn unreachable_full(line: &str) -> serde_json::Value {
    sensor_audit::map_line(line, "8.11.0")
        .ok()
        .and_then(|mut d| d.pop())
        .unwrap_or_default()
}
