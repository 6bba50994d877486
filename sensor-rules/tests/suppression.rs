//! Alert suppression: Elastic's `[rule.alert_suppression]`, the agent-wide
//! default, and the per-(rule, container) rate cap, all on event time.

use sensor_rules::engine::{Engine, EngineConfig};
use sensor_rules::loader::{FileOutcome, load_str};
use sensor_rules::suppress::SuppressConfig;
use serde_json::{Value, json};
use std::path::Path;

fn rule(extra: &str) -> sensor_rules::Rule {
    let text = format!(
        "[rule]\nname = \"r\"\nrule_id = \"r\"\ntype = \"eql\"\nrisk_score = 21\nseverity = \"low\"\n\
         query = 'process where process.name == \"id\"'\n{extra}"
    );
    match load_str(&text, Path::new("r.toml")) {
        FileOutcome::Loaded(r) => *r,
        other => panic!("{other:?}"),
    }
}

fn exec(s: i64, cmd: &str, container: Option<&str>) -> Value {
    let mut e = json!({
        "@timestamp": sensor_rules::date::format_ns(1_796_083_200_000_000_000 + s * 1_000_000_000),
        "event": {"category": ["process"], "type": ["start"], "action": "exec"},
        "process": {"name": "id", "command_line": cmd},
        "host": {"name": "node"},
    });
    if let Some(c) = container {
        e["container"] = json!({"id": c});
    }
    e
}

fn engine(r: sensor_rules::Rule, window_s: u64, cap: u32) -> Engine {
    let cfg = EngineConfig {
        suppress: SuppressConfig {
            default_window_ms: window_s * 1000,
            rate_cap: cap,
            ..SuppressConfig::default()
        },
        ..EngineConfig::default()
    };
    Engine::new(vec![r], cfg)
}

fn feed(e: &mut Engine, events: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for x in events {
        e.process(x, &mut || x.clone(), &mut out);
    }
    out
}

fn docs_count(a: &Value) -> u64 {
    a["kibana"]["alert"]["suppression"]["docs_count"]
        .as_u64()
        .unwrap()
}

#[test]
fn default_window_folds_the_same_command_into_one_alert_and_a_count() {
    let mut e = engine(rule(""), 60, 0);
    let events: Vec<Value> = (0..20).map(|i| exec(i, "id -u", Some("c1"))).collect();
    let mut out = feed(&mut e, &events);
    assert_eq!(out.len(), 1);
    assert_eq!(docs_count(&out[0]), 0);
    e.finish(&mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(docs_count(&out[1]), 19);
    assert_eq!(
        out[1]["kibana"]["alert"]["uuid"],
        out[0]["kibana"]["alert"]["uuid"]
    );
    assert_eq!(e.stats().suppressed, 19);
}

#[test]
fn a_different_command_still_alerts_at_once() {
    let mut e = engine(rule(""), 60, 0);
    let out = feed(
        &mut e,
        &[exec(0, "id -u", Some("c1")), exec(1, "id -g", Some("c1"))],
    );
    assert_eq!(out.len(), 2);
}

#[test]
fn another_container_is_another_group() {
    let mut e = engine(rule(""), 60, 0);
    let out = feed(
        &mut e,
        &[
            exec(0, "id", Some("c1")),
            exec(1, "id", Some("c2")),
            exec(2, "id", None),
        ],
    );
    assert_eq!(out.len(), 3);
}

#[test]
fn the_window_closes_on_event_time_and_writes_its_count() {
    let mut e = engine(rule(""), 60, 0);
    let out = feed(
        &mut e,
        &[
            exec(0, "id", Some("c1")),
            exec(10, "id", Some("c1")),
            exec(61, "id", Some("c1")),
        ],
    );
    // first alert, then at 61 s: the count alert of the closed window and a new first alert.
    assert_eq!(out.len(), 3, "{out:#?}");
    let counts: Vec<u64> = out.iter().map(docs_count).collect();
    assert!(counts.contains(&1), "{counts:?}");
    let closed = out.iter().find(|a| docs_count(a) == 1).unwrap();
    let s = &closed["kibana"]["alert"]["suppression"];
    assert!(s["start"].as_str().unwrap() < s["end"].as_str().unwrap());
}

#[test]
fn zero_window_turns_the_default_off() {
    let mut e = engine(rule(""), 0, 0);
    let events: Vec<Value> = (0..5).map(|i| exec(i, "id", Some("c1"))).collect();
    assert_eq!(feed(&mut e, &events).len(), 5);
}

#[test]
fn rule_suppression_groups_by_its_own_fields_and_duration() {
    let r = rule(
        "[rule.alert_suppression]\ngroup_by = [\"host.name\"]\nduration = {value = 10, unit = \"s\"}\n",
    );
    let mut e = engine(r, 0, 0);
    let out = feed(
        &mut e,
        &[
            exec(0, "id -u", Some("c1")),
            exec(1, "id -g", Some("c2")),
            exec(11, "id", None),
        ],
    );
    assert_eq!(
        out.len(),
        3,
        "first, the 10 s window's count, then a new first"
    );
    assert_eq!(
        out[0]["kibana"]["alert"]["suppression"]["terms"][0]["field"],
        "host.name"
    );
    assert_eq!(
        out[0]["kibana"]["alert"]["suppression"]["terms"][0]["value"],
        "node"
    );
}

#[test]
fn missing_group_fields_suppress_together_by_default() {
    let r = rule("[rule.alert_suppression]\ngroup_by = [\"user.name\"]\n");
    let mut e = engine(r, 60, 0);
    assert_eq!(
        feed(&mut e, &[exec(0, "a", None), exec(1, "b", None)]).len(),
        1
    );
}

#[test]
fn do_not_suppress_writes_alerts_missing_the_group_fields() {
    let r = rule(
        "[rule.alert_suppression]\ngroup_by = [\"user.name\"]\nmissing_fields_strategy = \"doNotSuppress\"\n",
    );
    let mut e = engine(r, 60, 0);
    assert_eq!(
        feed(&mut e, &[exec(0, "a", None), exec(1, "b", None)]).len(),
        2
    );
}

#[test]
fn bad_suppression_settings_are_load_errors() {
    let text = "[rule]\nname = \"r\"\nrule_id = \"r\"\ntype = \"eql\"\nquery = 'any where true'\n\
                [rule.alert_suppression]\ngroup_by = [\"a\"]\nduration = {value = 1, unit = \"y\"}\n";
    match load_str(text, Path::new("r.toml")) {
        FileOutcome::Error(e) => assert!(e.message.contains("unit 'y'"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_cap_limits_one_container_and_counts_the_rest() {
    let mut e = engine(rule(""), 0, 3);
    let mut events: Vec<Value> = (0..10)
        .map(|i| exec(i, &format!("id {i}"), Some("c1")))
        .collect();
    events.push(exec(11, "id", Some("c2")));
    let out = feed(&mut e, &events);
    assert_eq!(out.len(), 4, "3 from c1, 1 from c2");
    assert_eq!(e.stats().capped, 7);
}

#[test]
fn replay_and_live_fold_the_same_way_because_time_is_event_time() {
    let events: Vec<Value> = (0..30).map(|i| exec(i * 5, "id", Some("c1"))).collect();
    let run = |events: &[Value]| {
        let mut e = engine(rule(""), 60, 0);
        let mut out = feed(&mut e, events);
        e.finish(&mut out);
        out.iter().map(docs_count).collect::<Vec<_>>()
    };
    // However fast they are fed, the same timestamps give the same alerts.
    assert_eq!(run(&events), run(&events));
    // Every event is either a written first alert (count 0) or counted in one.
    let counts = run(&events);
    let firsts = counts.iter().filter(|c| **c == 0).count() as u64;
    assert_eq!(counts.iter().sum::<u64>() + firsts, 30, "{counts:?}");
}

fn audit_alert_rule() -> sensor_rules::Rule {
    let text = "[rule]\nname = \"a\"\nrule_id = \"a\"\ntype = \"query\"\nlanguage = \"kuery\"\n\
                risk_score = 21\nseverity = \"low\"\nquery = 'event.dataset:\"kubernetes.audit_logs\" and event.action:create'\n";
    match load_str(text, Path::new("a.toml")) {
        FileOutcome::Loaded(r) => *r,
        other => panic!("{other:?}"),
    }
}

fn audit(s: i64, user: &str, uri: &str) -> Value {
    json!({
        "@timestamp": sensor_rules::date::format_ns(1_796_083_200_000_000_000 + s * 1_000_000_000),
        "event": {"dataset": "kubernetes.audit_logs", "action": "create"},
        "user": {"name": user},
        "host": {"name": "control-plane-1"},
        "kubernetes": {"audit": {"requestURI": uri}},
    })
}

#[test]
fn audit_alerts_group_by_user_and_request_not_by_the_reading_node() {
    let mut e = engine(audit_alert_rule(), 60, 0);
    let pods = "/api/v1/namespaces/default/pods";
    let out = feed(
        &mut e,
        &[
            audit(
                0,
                "system:serviceaccount:kube-system:replicaset-controller",
                pods,
            ),
            audit(
                1,
                "system:serviceaccount:kube-system:replicaset-controller",
                pods,
            ),
            audit(2, "mallory", pods),
            audit(3, "mallory", "/api/v1/namespaces/prod/pods"),
        ],
    );
    assert_eq!(out.len(), 3, "one per (user, request): {out:#?}");
    let terms = &out[0]["kibana"]["alert"]["suppression"]["terms"];
    assert_eq!(terms[0]["field"], "user.name");
    assert_eq!(terms[1]["field"], "kubernetes.audit.requestURI");
}
