//! The projected fast path decides exactly as the fully mapped documents
//! do: the same alerts from the same rules, over the vendored Falco audit
//! events and the shipped rules (and Elastic's Kubernetes rules when
//! ELASTIC_DETECTION_RULES points at a detection-rules checkout).

use std::path::{Path, PathBuf};

use sensor_audit::{Projection, map_line};
use sensor_rules::engine::{Engine, EngineConfig};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures/k8s-audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for p in files {
        lines.extend(
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    // Envelopes too: an EventList of two events and an export line.
    let first = lines[0].clone();
    lines.push(format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{first},{first}]}}"#
    ));
    lines.push(format!("2026-12-02T10:00:00.000Z {first}"));
    lines
}

fn alerts(dir: &Path, projected: bool) -> Vec<(String, String)> {
    let report = sensor_rules::loader::load_dir(dir).unwrap();
    let mut engine = Engine::new(report.rules, EngineConfig::unsuppressed());
    let projection = Projection::new(engine.fields());
    let mut out = Vec::new();
    for line in fixture_lines() {
        let Ok(full) = map_line(&line, "8.11.0") else {
            continue;
        };
        let views = if projected {
            projection.map_line(&line, "8.11.0").unwrap()
        } else {
            full.clone()
        };
        assert_eq!(views.len(), full.len(), "{line}");
        for (view, doc) in views.iter().zip(&full) {
            engine.process(view, &mut || doc.clone(), &mut out);
        }
    }
    engine.finish(&mut out);
    out.iter()
        .map(|a: &Value| {
            (
                a["rule"]["name"].as_str().unwrap().to_string(),
                a["kubernetes"]["audit"]["auditID"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn projected_documents_raise_the_same_alerts_as_full_ones_with_the_shipped_rules() {
    let dir = root().join("rules");
    let full = alerts(&dir, false);
    assert!(!full.is_empty(), "the fixtures raise alerts");
    assert_eq!(alerts(&dir, true), full);
}

#[test]
#[ignore = "needs ELASTIC_DETECTION_RULES (Elastic License files, not committed)"]
fn projected_documents_raise_the_same_alerts_with_elastics_kubernetes_rules() {
    let checkout = std::env::var_os("ELASTIC_DETECTION_RULES")
        .expect("set ELASTIC_DETECTION_RULES to a clone of github.com/elastic/detection-rules");
    let dir = PathBuf::from(checkout).join("rules/integrations/kubernetes");
    let full = alerts(&dir, false);
    assert!(!full.is_empty());
    assert_eq!(alerts(&dir, true), full);
}

#[test]
fn a_projection_keeps_only_what_the_mapping_and_rules_read() {
    let engine = Engine::new(Vec::new(), EngineConfig::unsuppressed());
    let p = Projection::new(engine.fields());
    let line = r#"{"kind":"Event","verb":"get","responseObject":{"big":[1,2,3]},"requestObject":{"spec":{"containers":[{"image":"x","env":[{"name":"A"}]}]}}}"#;
    let d = &p.map_line(line, "8.11.0").unwrap()[0];
    let audit = &d["kubernetes"]["audit"];
    assert!(audit.get("responseObject").is_none());
    assert_eq!(
        audit["requestObject"]["spec"]["containers"][0],
        serde_json::json!({"image": "x"})
    );
    assert_eq!(d["event"]["action"], "get");
}
