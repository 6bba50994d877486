//! Managed-cluster envelopes around audit events, unwrapped to the raw
//! `audit.k8s.io` event the API server wrote, as Elastic's
//! `kubernetes.audit_logs` integration does:
//!
//! - **EKS** (CloudWatch Logs): a subscription payload
//!   `{"logEvents": [{"message": "<event JSON>"}, ...]}`, one log event
//!   `{"message": "<event JSON>", "timestamp": ...}`, or an export line
//!   `2026-12-01T10:00:00.000Z {<event JSON>}`;
//! - **AKS** (diagnostic settings): `{"category": "kube-audit",
//!   "properties": {"log": "<event JSON>", ...}}`, alone or in an Event
//!   Hubs `{"records": [...]}` batch; the envelope's fields are kept under
//!   `kubernetes.audit.aks_metadata`;
//! - **GKE** (Cloud Audit Logs): a `LogEntry` with `protoPayload`, which
//!   carries no raw event; its fields are moved where the integration puts
//!   them (labels → annotations, operation.id → auditID, ...).
//!
//! Plain events and `EventList` batches (the webhook's body) pass through.

use serde_json::{Map, Value};

/// One raw audit event, and what its envelope said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrapped {
    pub event: Value,
    /// Fields to merge into `kubernetes.audit` (AKS metadata, GKE fields).
    pub extra: Map<String, Value>,
}

impl Unwrapped {
    fn plain(event: Value) -> Unwrapped {
        Unwrapped {
            event,
            extra: Map::new(),
        }
    }
}

/// Why a record is not an audit event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("a JSON {0} is not an audit event (expected an object)")]
    NotAnObject(&'static str),
    #[error("{0}")]
    Inner(String),
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The top-level keys of the envelopes (and of `EventList`) that
/// [`unwrap_value`] reads, besides an event's own fields.
pub const ENVELOPE_KEYS: &[&str] = &[
    "kind",
    "apiVersion",
    "records",
    "logEvents",
    "message",
    "properties",
    "category",
    "operationName",
    "resourceId",
    "serviceBuild",
    "time",
    "protoPayload",
    "labels",
    "operation",
    "timestamp",
    "receiveTimestamp",
    "resource",
    "logName",
];

/// A CloudWatch export line is an RFC 3339 time, a space, then the event:
/// the event's text.
pub fn strip_export_prefix(t: &str) -> &str {
    if !t.starts_with(['{', '['])
        && let Some((ts, rest)) = t.split_once(' ')
        && ts.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && rest.trim_start().starts_with('{')
    {
        return rest.trim_start();
    }
    t
}

/// Parses one line (or body) of text into the raw events it holds.
pub fn unwrap_text(text: &str) -> Result<Vec<Unwrapped>, EnvelopeError> {
    let t = strip_export_prefix(text.trim());
    let v: Value = serde_json::from_str(t).map_err(|e| EnvelopeError::Json(e.to_string()))?;
    unwrap_value(v)
}

/// Unwraps one parsed JSON value.
pub fn unwrap_value(v: Value) -> Result<Vec<Unwrapped>, EnvelopeError> {
    let Value::Object(mut map) = v else {
        return match v {
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(unwrap_value(item)?);
                }
                Ok(out)
            }
            other => Err(EnvelopeError::NotAnObject(kind_of(&other))),
        };
    };
    if map.get("kind").and_then(Value::as_str) == Some("EventList") {
        let items = match map.remove("items") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => Vec::new(),
            Some(other) => {
                return Err(EnvelopeError::Inner(format!(
                    "EventList.items is a {}, not an array",
                    kind_of(&other)
                )));
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if !item.is_object() {
                return Err(EnvelopeError::Inner(format!(
                    "EventList.items holds a {}, not an event object",
                    kind_of(&item)
                )));
            }
            out.push(Unwrapped::plain(item));
        }
        return Ok(out);
    }
    // Batches of envelopes: taken out of the map, not copied.
    if !map.contains_key("kind")
        && matches!(map.get("records"), Some(Value::Array(_)))
        && let Some(Value::Array(records)) = map.remove("records")
    {
        let mut out = Vec::new();
        for r in records {
            out.extend(unwrap_value(r)?);
        }
        return Ok(out);
    }
    if matches!(map.get("logEvents"), Some(Value::Array(_)))
        && let Some(Value::Array(events)) = map.remove("logEvents")
    {
        let mut out = Vec::new();
        for e in events {
            out.extend(unwrap_value(e)?);
        }
        return Ok(out);
    }
    if let Some(Value::String(msg)) = map.get("message")
        && !map.contains_key("kind")
        && msg.trim_start().starts_with('{')
    {
        return unwrap_text(msg);
    }
    if let Some(Value::Object(props)) = map.get("properties")
        && let Some(Value::String(log)) = props.get("log")
    {
        return aks(&map, log);
    }
    if map.contains_key("protoPayload") {
        return Ok(vec![gke(map)]);
    }
    Ok(vec![Unwrapped::plain(Value::Object(map))])
}

fn aks(envelope: &Map<String, Value>, log: &str) -> Result<Vec<Unwrapped>, EnvelopeError> {
    let mut events =
        unwrap_text(log).map_err(|e| EnvelopeError::Inner(format!("AKS properties.log: {e}")))?;
    let mut meta = Map::new();
    let top = [
        ("category", "category"),
        ("operationName", "operation_name"),
        ("resourceId", "resource_id"),
        ("serviceBuild", "service_build"),
        ("time", "time"),
    ];
    for (from, to) in top {
        if let Some(v) = envelope.get(from) {
            meta.insert(to.into(), v.clone());
        }
    }
    if let Some(Value::Object(props)) = envelope.get("properties") {
        for (from, to) in [
            ("containerID", "container_id"),
            ("pod", "pod"),
            ("stream", "stream"),
        ] {
            if let Some(v) = props.get(from) {
                meta.insert(to.into(), v.clone());
            }
        }
    }
    for e in &mut events {
        e.extra
            .insert("aks_metadata".into(), Value::Object(meta.clone()));
    }
    Ok(events)
}

/// A GKE `LogEntry`: the integration keeps the payload and moves the
/// entry's own fields to where a raw event has them.
fn gke(mut entry: Map<String, Value>) -> Unwrapped {
    let mut ev = Map::new();
    if let Some(labels) = entry.remove("labels") {
        ev.insert("annotations".into(), labels);
    }
    if let Some(id) = entry.get("operation").and_then(|o| o.get("id")).cloned() {
        ev.insert("auditID".into(), id);
    }
    if let Some(t) = entry.remove("receiveTimestamp") {
        ev.insert("requestReceivedTimestamp".into(), t);
    }
    if let Some(t) = entry.remove("timestamp") {
        ev.insert("stageTimestamp".into(), t);
    }
    if let Some(Value::Object(p)) = entry.get_mut("protoPayload")
        && let Some(status) = p.remove("status")
    {
        let code = status.get("code").cloned().unwrap_or(Value::Null);
        ev.insert("responseStatus".into(), serde_json::json!({"code": code}));
    }
    let mut extra = Map::new();
    for key in ["logName", "operation", "protoPayload", "resource"] {
        if let Some(v) = entry.remove(key) {
            extra.insert(key.into(), v);
        }
    }
    Unwrapped {
        event: Value::Object(ev),
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EVENT: &str =
        r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","verb":"get"}"#;

    #[test]
    fn a_plain_event_passes_through() {
        let u = unwrap_text(EVENT).unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].event["auditID"], "a1");
    }

    #[test]
    fn an_event_list_yields_its_items() {
        let list = format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{EVENT},{EVENT}]}}"#
        );
        assert_eq!(unwrap_text(&list).unwrap().len(), 2);
    }

    #[test]
    fn an_event_list_with_a_non_object_item_is_refused_whole() {
        let e = unwrap_text(r#"{"kind":"EventList","items":[1]}"#).unwrap_err();
        assert!(e.to_string().contains("EventList.items"), "{e}");
    }

    #[test]
    fn eks_cloudwatch_subscription_and_export_lines_unwrap() {
        let sub = json!({"messageType": "DATA_MESSAGE", "logGroup": "/aws/eks/c/cluster",
            "logEvents": [{"id": "1", "timestamp": 1, "message": EVENT}]});
        assert_eq!(unwrap_value(sub).unwrap()[0].event["verb"], "get");
        let line = format!("2026-12-01T10:00:00.000Z {EVENT}");
        assert_eq!(unwrap_text(&line).unwrap()[0].event["auditID"], "a1");
    }

    #[test]
    fn aks_diagnostic_records_keep_their_metadata() {
        let rec = json!({"category": "kube-audit", "operationName": "op", "time": "t",
            "properties": {"log": EVENT, "pod": "kube-apiserver-1", "containerID": "c", "stream": "stdout"}});
        let u = unwrap_value(json!({"records": [rec]})).unwrap();
        assert_eq!(u[0].event["auditID"], "a1");
        assert_eq!(u[0].extra["aks_metadata"]["pod"], "kube-apiserver-1");
        assert_eq!(u[0].extra["aks_metadata"]["operation_name"], "op");
    }

    #[test]
    fn gke_entries_move_fields_where_the_integration_puts_them() {
        let e = json!({"protoPayload": {"methodName": "io.k8s.get", "status": {"code": 0}},
            "operation": {"id": "op1"}, "labels": {"authorization.k8s.io/decision": "allow"},
            "timestamp": "t1", "receiveTimestamp": "t2", "insertId": "x"});
        let u = &unwrap_value(e).unwrap()[0];
        assert_eq!(u.event["auditID"], "op1");
        assert_eq!(u.event["stageTimestamp"], "t1");
        assert_eq!(u.event["responseStatus"]["code"], 0);
        assert!(u.extra["protoPayload"].get("status").is_none());
    }

    #[test]
    fn non_json_and_non_objects_are_errors_that_say_so() {
        assert!(matches!(unwrap_text("nope"), Err(EnvelopeError::Json(_))));
        assert_eq!(
            unwrap_text("42").unwrap_err(),
            EnvelopeError::NotAnObject("number")
        );
    }
}
