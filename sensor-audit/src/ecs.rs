//! A raw audit event → the ECS document Elastic's `kubernetes.audit_logs`
//! integration writes for it, so Elastic's rules match unmodified.
//!
//! What the integration's ingest pipeline and its pipeline tests
//! (`_dev/test/pipeline/*-expected.json`, which decide where an older copy
//! of the pipeline differs) do, and so what this does:
//!
//! - `kubernetes.audit.*` is the event, with `requestObject.metadata` and
//!   `responseObject.metadata` removed, annotation keys' dots turned into
//!   underscores (`authorization_k8s_io/decision`), and empty values
//!   (`""`, `{}`, `[]`, null) dropped;
//! - `event.kind: event`, `event.action` = verb, `event.outcome` =
//!   `success`/`failure` from an `allow`/`forbid` decision;
//! - `user.name`/`user.id` from the user, `user_agent.original`,
//!   `source.ip` and `client.ip` from `sourceIPs` (when all are IPs),
//!   `related.ip`/`related.user`;
//! - `orchestrator.*` from the object reference, and
//!   `container.image.name` from the pod spec's images;
//! - `@timestamp` from `stageTimestamp` (else `requestReceivedTimestamp`,
//!   else v1beta1's `timestamp`) at millisecond precision;
//! - `event.dataset` and `data_stream.dataset`: `kubernetes.audit_logs`.
//!
//! Not written: `event.original` (the integration keeps it only with the
//! `preserve_original_event` tag) and `event.ingested` (set by
//! Elasticsearch when it indexes).

use crate::envelope::Unwrapped;
use serde_json::{Map, Value, json};
use std::net::IpAddr;

/// Every field of a raw event that [`to_ecs`] reads (besides removing the
/// objects' `metadata`): a projection must keep these.
pub const MAPPING_INPUTS: &[&str] = &[
    "kind",
    "apiVersion",
    "verb",
    "annotations",
    "user.username",
    "user.uid",
    "userAgent",
    "sourceIPs",
    "objectRef.namespace",
    "objectRef.name",
    "objectRef.resource",
    "requestObject.spec.containers.image",
    "stageTimestamp",
    "requestReceivedTimestamp",
    "timestamp",
];

/// The dataset Elastic's rules filter on (`data_stream.dataset` or `event.dataset`).
pub const DATASET: &str = "kubernetes.audit_logs";

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn get_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Removes `""`, null, `{}` and `[]` everywhere below `v`; true when `v`
/// itself is empty afterwards.
fn prune(v: &mut Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(items) => {
            items.retain_mut(|x| !prune(x));
            items.is_empty()
        }
        Value::Object(map) => {
            map.retain(|_, x| !prune(x));
            map.is_empty()
        }
        _ => false,
    }
}

fn insert_path(root: &mut Map<String, Value>, path: &[&str], v: Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = root;
    for p in parents {
        let slot = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        cur = slot.as_object_mut().expect("object");
    }
    cur.insert(last.to_string(), v);
}

/// Event time in epoch nanoseconds, if the event carries one.
pub fn event_time_ns(audit: &Value) -> Option<i64> {
    ["stageTimestamp", "requestReceivedTimestamp", "timestamp"]
        .iter()
        .find_map(|k| audit.get(*k).and_then(Value::as_str))
        .and_then(sensor_rules::date::parse_timestamp_ns)
}

fn millis(ns: i64) -> String {
    let full = sensor_rules::date::format_ns(ns - ns.rem_euclid(1_000_000));
    // `YYYY-MM-DDTHH:MM:SS.mmm` is 23 characters.
    format!("{}Z", &full[..23])
}

/// Maps one unwrapped audit event to its ECS document.
pub fn to_ecs(u: Unwrapped, ecs_version: &str) -> Value {
    let mut audit = match u.event {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("event".into(), other);
            m
        }
    };
    for (k, v) in u.extra {
        audit.entry(k).or_insert(v);
    }
    for obj in ["requestObject", "responseObject"] {
        if let Some(Value::Object(o)) = audit.get_mut(obj) {
            o.remove("metadata");
        }
    }
    if let Some(Value::Object(ann)) = audit.get_mut("annotations") {
        let old = std::mem::take(ann);
        *ann = old
            .into_iter()
            .map(|(k, v)| (k.replace('.', "_"), v))
            .collect();
    }
    let mut audit = Value::Object(audit);
    prune(&mut audit);

    let mut doc = Map::new();
    if let Some(ns) = event_time_ns(&audit) {
        doc.insert("@timestamp".into(), json!(millis(ns)));
    }
    let mut event = Map::new();
    event.insert("kind".into(), json!("event"));
    event.insert("dataset".into(), json!(DATASET));
    event.insert("module".into(), json!("kubernetes"));
    if let Some(verb) = get_str(&audit, &["verb"]) {
        event.insert("action".into(), json!(verb));
    }
    match get_str(&audit, &["annotations", "authorization_k8s_io/decision"]) {
        Some("allow") => {
            event.insert("outcome".into(), json!("success"));
        }
        Some("forbid") => {
            event.insert("outcome".into(), json!("failure"));
        }
        _ => {}
    }
    doc.insert("event".into(), Value::Object(event));

    let username = get_str(&audit, &["user", "username"]).map(str::to_string);
    let uid = get_str(&audit, &["user", "uid"]).map(str::to_string);
    if let Some(n) = &username {
        insert_path(&mut doc, &["user", "name"], json!(n));
    }
    if let Some(id) = &uid {
        insert_path(&mut doc, &["user", "id"], json!(id));
    }
    if let Some(ua) = get_str(&audit, &["userAgent"]) {
        insert_path(&mut doc, &["user_agent", "original"], json!(ua));
    }
    if let Some(Value::Array(ips)) = audit.get("sourceIPs") {
        // The pipeline's `convert` to ip fails (and is skipped) on any non-IP.
        let parsed: Option<Vec<String>> = ips
            .iter()
            .map(|v| {
                v.as_str()
                    .and_then(|s| s.parse::<IpAddr>().ok())
                    .map(|ip| ip.to_string())
            })
            .collect();
        if let Some(ips) = parsed.filter(|v| !v.is_empty()) {
            insert_path(&mut doc, &["source", "ip"], json!(ips));
            insert_path(&mut doc, &["client", "ip"], json!(ips));
            insert_path(&mut doc, &["related", "ip"], json!(ips));
        }
    }
    let related_users: Vec<&String> = uid.iter().chain(username.iter()).collect();
    if !related_users.is_empty() {
        let mut users: Vec<&String> = Vec::new();
        for u in related_users {
            if !users.contains(&u) {
                users.push(u);
            }
        }
        insert_path(&mut doc, &["related", "user"], json!(users));
    }
    let mut orch = Map::new();
    if let Some(v) = get_str(&audit, &["apiVersion"]) {
        orch.insert("api_version".into(), json!(v));
    }
    if let Some(v) = get_str(&audit, &["objectRef", "namespace"]) {
        orch.insert("namespace".into(), json!(v));
    }
    let mut resource = Map::new();
    if let Some(v) = get_str(&audit, &["objectRef", "name"]) {
        resource.insert("name".into(), json!(v));
    }
    if let Some(v) = get_str(&audit, &["objectRef", "resource"]) {
        resource.insert("type".into(), json!(v));
    }
    if !resource.is_empty() {
        orch.insert("resource".into(), Value::Object(resource));
    }
    if !orch.is_empty() {
        orch.insert("type".into(), json!("kubernetes"));
        doc.insert("orchestrator".into(), Value::Object(orch));
    }
    if let Some(Value::Array(containers)) = get(&audit, &["requestObject", "spec", "containers"]) {
        let images: Vec<&str> = containers
            .iter()
            .filter_map(|c| c.get("image").and_then(Value::as_str))
            .collect();
        if !images.is_empty() {
            insert_path(&mut doc, &["container", "image", "name"], json!(images));
        }
    }
    doc.insert(
        "data_stream".into(),
        json!({"type": "logs", "dataset": DATASET, "namespace": "default"}),
    );
    doc.insert("ecs".into(), json!({"version": ecs_version}));
    insert_path(&mut doc, &["kubernetes", "audit"], audit);
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::unwrap_text;

    fn map(line: &str) -> Value {
        let mut u = unwrap_text(line).unwrap();
        to_ecs(u.remove(0), "8.11.0")
    }

    // The first case of the integration's test-audit.log, with the fields
    // its -expected.json shows.
    const GET_PODS: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"abcde12345","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"get","user":{"username":"system:serviceaccounts:default:default","uid":"12345678","groups":["system:authenticated"]},"sourceIPs":["67.43.156.1"],"userAgent":"kubectl/v1.26.1","objectRef":{"resource":"pods","namespace":"default","name":"my-pod","apiGroup":"","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2025-03-04T06:22:18.819232Z","stageTimestamp":"2025-03-04T06:22:18.822532Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#;

    #[test]
    fn ecs_fields_follow_the_integration() {
        let d = map(GET_PODS);
        assert_eq!(d["event"]["action"], "get");
        assert_eq!(d["event"]["kind"], "event");
        assert_eq!(d["event"]["outcome"], "success");
        assert_eq!(d["user"]["name"], "system:serviceaccounts:default:default");
        assert_eq!(d["user"]["id"], "12345678");
        assert_eq!(d["user_agent"]["original"], "kubectl/v1.26.1");
        assert_eq!(d["source"]["ip"], json!(["67.43.156.1"]));
        assert_eq!(d["client"]["ip"], json!(["67.43.156.1"]));
        assert_eq!(d["related"]["ip"], json!(["67.43.156.1"]));
        assert_eq!(
            d["related"]["user"],
            json!(["12345678", "system:serviceaccounts:default:default"])
        );
        assert_eq!(d["event"]["dataset"], DATASET);
        assert_eq!(d["data_stream"]["dataset"], DATASET);
        assert_eq!(d["@timestamp"], "2025-03-04T06:22:18.822Z");
    }

    #[test]
    fn annotations_are_dedotted_and_empty_values_dropped() {
        let d = map(GET_PODS);
        let a = &d["kubernetes"]["audit"];
        assert_eq!(
            a["annotations"],
            json!({"authorization_k8s_io/decision": "allow"})
        );
        assert_eq!(a["responseStatus"], json!({"code": 200}));
        assert!(a["objectRef"].get("apiGroup").is_none());
        assert_eq!(a["verb"], "get");
    }

    #[test]
    fn orchestrator_fields_come_from_the_object_reference() {
        let d = map(GET_PODS);
        assert_eq!(
            d["orchestrator"],
            json!({"api_version": "audit.k8s.io/v1", "namespace": "default",
                   "resource": {"name": "my-pod", "type": "pods"}, "type": "kubernetes"})
        );
    }

    #[test]
    fn forbid_is_a_failure_and_object_metadata_is_removed() {
        let line = r#"{"kind":"Event","verb":"create","annotations":{"authorization.k8s.io/decision":"forbid"},"requestObject":{"metadata":{"name":"p"},"spec":{"containers":[{"image":"busybox:1.36"}]}}}"#;
        let d = map(line);
        assert_eq!(d["event"]["outcome"], "failure");
        assert!(
            d["kubernetes"]["audit"]["requestObject"]
                .get("metadata")
                .is_none()
        );
        assert_eq!(d["container"]["image"]["name"], json!(["busybox:1.36"]));
    }

    #[test]
    fn source_ips_are_written_only_when_all_are_ips() {
        let d = map(r#"{"kind":"Event","sourceIPs":["10.0.0.1","nope"]}"#);
        assert!(d.get("source").is_none());
        assert_eq!(
            d["kubernetes"]["audit"]["sourceIPs"],
            json!(["10.0.0.1", "nope"])
        );
    }

    #[test]
    fn aks_metadata_lands_under_kubernetes_audit() {
        let rec = r#"{"category":"kube-audit","properties":{"log":"{\"kind\":\"Event\",\"verb\":\"update\",\"stageTimestamp\":\"2025-10-07T16:19:19.647762Z\"}","pod":"kube-apiserver-1"}}"#;
        let d = map(rec);
        assert_eq!(
            d["kubernetes"]["audit"]["aks_metadata"]["pod"],
            "kube-apiserver-1"
        );
        assert_eq!(d["@timestamp"], "2025-10-07T16:19:19.647Z");
    }
}
