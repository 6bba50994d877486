//! Builds the ECS alert line for a (rule, event) match, per docs/events.md.

use crate::rule::Rule;
use serde_json::{Map, Value, json};

/// The `rule.ruleset` value stamped on every alert.
pub const RULESET: &str = "sensor";

/// The triggering event with `event.kind: "alert"`, the rule's severity and
/// risk score, `rule.*`, `threat.*` and `kibana.alert.rule.*` added. Every
/// other field of the event is kept as it was.
pub fn build_alert(rule: &Rule, event: &Value) -> Value {
    let m = &rule.meta;
    let mut alert = match event {
        Value::Object(map) => map.clone(),
        // Not an object (cannot match a field anyway): keep it under `event.original`.
        other => {
            let mut map = Map::new();
            map.insert("event".into(), json!({"original": other.to_string()}));
            map
        }
    };
    let risk = m.risk_score;
    let risk_int = if risk.fract() == 0.0 {
        json!(risk as i64)
    } else {
        json!(risk)
    };
    let ev = alert
        .entry("event")
        .or_insert_with(|| Value::Object(Map::new()));
    if !ev.is_object() {
        *ev = Value::Object(Map::new());
    }
    if let Value::Object(ev) = ev {
        ev.insert("kind".into(), json!("alert"));
        ev.insert("severity".into(), json!(risk.round() as i64));
        ev.insert("risk_score".into(), json!(risk));
    }
    let mut r = Map::new();
    r.insert("id".into(), json!(m.rule_id));
    r.insert("uuid".into(), json!(m.rule_id));
    r.insert("name".into(), json!(m.name));
    r.insert("description".into(), json!(m.description));
    if let Some(first) = m.references.first() {
        r.insert("reference".into(), json!(first));
    }
    r.insert("ruleset".into(), json!(RULESET));
    if let Some(v) = &m.version {
        r.insert("version".into(), json!(v));
    }
    if !m.license.is_empty() {
        r.insert("license".into(), json!(m.license));
    }
    r.insert("author".into(), json!(m.author));
    r.insert("severity".into(), json!(m.severity));
    r.insert("risk_score".into(), risk_int);
    r.insert("tags".into(), json!(m.tags));
    alert.insert("rule".into(), Value::Object(r));
    if !m.threat.is_empty() {
        alert.insert(
            "threat".into(),
            serde_json::to_value(&m.threat).unwrap_or(Value::Null),
        );
    }
    alert.insert(
        "kibana".into(),
        json!({"alert": {"rule": {"name": m.name, "rule_id": m.rule_id, "references": m.references}}}),
    );
    Value::Object(alert)
}
