//! Builds the ECS alert line for a (rule, event) match, per docs/events.md.

use crate::rule::Rule;
use serde_json::{Map, Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

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
    alert.insert("rule".into(), Value::Object(r));
    // ECS has no rule.severity/risk_score/tags: the numbers are in
    // `event.*` above, the tags top-level, and the rule's own words in
    // Kibana's alert schema.
    if !m.tags.is_empty() {
        alert.insert("tags".into(), json!(m.tags));
    }
    if !m.threat.is_empty() {
        alert.insert(
            "threat".into(),
            serde_json::to_value(&m.threat).unwrap_or(Value::Null),
        );
    }
    alert.insert(
        "kibana".into(),
        json!({"alert": {
            "severity": m.severity,
            "risk_score": risk_int,
            "rule": {"name": m.name, "rule_id": m.rule_id, "references": m.references, "tags": m.tags},
        }}),
    );
    let mut alert = Value::Object(alert);
    if m.building_block {
        // The rule is a building block (Elastic hides its alerts by default).
        set_kibana_alert(&mut alert, "building_block_type", json!("default"));
    }
    alert
}

/// A short stable id: the hex of a hash of the parts.
pub fn alert_id(parts: &[&dyn std::fmt::Display]) -> String {
    let mut h = DefaultHasher::new();
    for p in parts {
        p.to_string().hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// Sets `kibana.alert.<key> = v` on an alert built by [`build_alert`].
pub fn set_kibana_alert(alert: &mut Value, key: &str, v: Value) {
    if let Some(a) = alert
        .pointer_mut("/kibana/alert")
        .and_then(Value::as_object_mut)
    {
        a.insert(key.into(), v);
    }
}

/// The fields every event has with the same value (objects compared field
/// by field): the shell alert of a sequence carries what its events share.
fn common(values: &[&Value]) -> Option<Value> {
    let first = values[0];
    match first {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let mut vs = vec![v];
                for other in &values[1..] {
                    match other.get(k) {
                        Some(x) => vs.push(x),
                        None => break,
                    }
                }
                if vs.len() == values.len()
                    && let Some(c) = common(&vs)
                {
                    out.insert(k.clone(), c);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        other => values.iter().all(|v| *v == other).then(|| other.clone()),
    }
}

/// The alerts of one matched sequence, in Elastic's shape: a shell alert
/// with the fields all its events share, then one building-block alert per
/// event with that event's full fields, all linked by `kibana.alert.group.id`.
pub fn build_sequence_alerts(rule: &Rule, events: &[&Value], group_id: &str) -> Vec<Value> {
    let shared = if events.is_empty() {
        Value::Object(Map::new())
    } else {
        common(events).unwrap_or_else(|| Value::Object(Map::new()))
    };
    let mut shell = build_alert(rule, &shared);
    set_kibana_alert(&mut shell, "uuid", json!(group_id));
    set_kibana_alert(&mut shell, "group", json!({"id": group_id}));
    let mut out = vec![shell];
    for (i, ev) in events.iter().enumerate() {
        let mut a = build_alert(rule, ev);
        set_kibana_alert(&mut a, "uuid", json!(alert_id(&[&group_id, &i])));
        set_kibana_alert(&mut a, "building_block_type", json!("default"));
        set_kibana_alert(&mut a, "group", json!({"id": group_id, "index": i}));
        out.push(a);
    }
    out
}
