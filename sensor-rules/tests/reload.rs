//! `Engine::reload`: a new rule set between two events, keeping the state
//! of the rules that did not change.

use sensor_rules::engine::{Engine, EngineConfig};
use sensor_rules::loader::{FileOutcome, load_str};
use sensor_rules::suppress::SuppressConfig;
use serde_json::{Value, json};
use std::path::Path;

fn rule(id: &str, query: &str) -> sensor_rules::Rule {
    let text = format!(
        "[rule]\nname = \"{id}\"\nrule_id = \"{id}\"\ntype = \"eql\"\nrisk_score = 21\n\
         severity = \"low\"\nquery = '''{query}'''\n"
    );
    match load_str(&text, Path::new("r.toml")) {
        FileOutcome::Loaded(r) => *r,
        other => panic!("{other:?}"),
    }
}

const SEQ: &str = "sequence by process.entity_id [process where process.name == \"a\"] \
                   [process where process.name == \"b\"]";

fn exec(s: i64, name: &str) -> Value {
    json!({
        "@timestamp": sensor_rules::date::format_ns(1_796_083_200_000_000_000 + s * 1_000_000_000),
        "event": {"category": ["process"], "type": ["start"], "action": "exec"},
        "process": {"name": name, "command_line": name, "entity_id": "p1"},
        "host": {"name": "node"},
    })
}

fn feed(e: &mut Engine, events: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for x in events {
        e.process(x, &mut || x.clone(), &mut out);
    }
    out
}

fn names(alerts: &[Value]) -> Vec<&str> {
    alerts
        .iter()
        .map(|a| a["rule"]["id"].as_str().unwrap())
        .collect()
}

fn windowed(window_s: u64) -> EngineConfig {
    EngineConfig {
        suppress: SuppressConfig {
            default_window_ms: window_s * 1000,
            rate_cap: 0,
            ..SuppressConfig::default()
        },
        ..EngineConfig::default()
    }
}

#[test]
fn an_unchanged_sequence_rule_keeps_its_partial_sequence_across_a_reload() {
    let mut e = Engine::new(vec![rule("seq", SEQ)], EngineConfig::unsuppressed());
    assert!(feed(&mut e, &[exec(0, "a")]).is_empty());
    let r = e.reload(vec![
        rule("seq", SEQ),
        rule("other", "process where process.name == \"z\""),
    ]);
    assert_eq!((r.kept, r.added, r.changed, r.removed), (1, 1, 0, 0));
    let alerts = feed(&mut e, &[exec(1, "b")]);
    assert!(
        names(&alerts).contains(&"seq"),
        "the sequence completed after the reload"
    );
}

#[test]
fn a_changed_sequence_rule_starts_over() {
    let mut e = Engine::new(vec![rule("seq", SEQ)], EngineConfig::unsuppressed());
    feed(&mut e, &[exec(0, "a")]);
    let changed = SEQ.replace("\"b\"]", "\"c\"]");
    let r = e.reload(vec![rule("seq", &changed)]);
    assert_eq!((r.kept, r.changed, r.partials_dropped), (0, 1, 1));
    assert!(
        feed(&mut e, &[exec(1, "c")]).is_empty(),
        "the old partial is gone"
    );
}

#[test]
fn an_unchanged_rule_keeps_its_suppression_window() {
    let q = "process where process.name == \"id\"";
    let mut e = Engine::new(vec![rule("r", q)], windowed(60));
    assert_eq!(feed(&mut e, &[exec(0, "id")]).len(), 1);
    e.reload(vec![
        rule("new", "process where process.name == \"x\""),
        rule("r", q),
    ]);
    assert!(
        feed(&mut e, &[exec(5, "id")]).is_empty(),
        "still suppressed in the same window, though the rule's index moved"
    );
    let mut out = Vec::new();
    e.finish(&mut out);
    assert_eq!(out.len(), 1, "the count alert at close");
    assert_eq!(out[0]["kibana"]["alert"]["suppression"]["docs_count"], 1);
}

#[test]
fn a_removed_rule_writes_its_suppressed_count_at_the_next_advance() {
    let q = "process where process.name == \"id\"";
    let mut e = Engine::new(vec![rule("r", q)], windowed(60));
    feed(&mut e, &[exec(0, "id"), exec(1, "id"), exec(2, "id")]);
    let r = e.reload(vec![]);
    assert_eq!(r.removed, 1);
    let mut out = Vec::new();
    e.advance(1_796_083_200_000_000_000 + 3_000_000_000, &mut out);
    assert_eq!(out.len(), 1, "nothing suppressed is lost");
    assert_eq!(out[0]["kibana"]["alert"]["suppression"]["docs_count"], 2);
}

#[test]
fn counters_survive_a_reload() {
    let q = "process where process.name == \"id\"";
    let mut e = Engine::new(vec![rule("r", q)], EngineConfig::unsuppressed());
    feed(&mut e, &[exec(0, "id"), exec(1, "id")]);
    e.reload(vec![rule("r", q)]);
    feed(&mut e, &[exec(2, "id")]);
    let s = e.stats();
    assert_eq!((s.events, s.alerts), (3, 3));
}
