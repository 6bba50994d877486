//! `rules check`, `rules test` and `replay` logic.

use sensor_rules::cli::{check, replay, test};
use sensor_rules::engine::{Engine, EngineConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn run(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<bool>) -> (bool, String) {
    let mut out = Vec::new();
    let ok = f(&mut out).unwrap();
    (ok, String::from_utf8(out).unwrap())
}

#[test]
fn check_lists_loaded_declined_and_succeeds_without_errors() {
    let (ok, text) = run(|o| check(&fixture("rules"), o));
    assert!(ok, "{text}");
    assert!(
        text.contains("loaded   ") && text.contains("Fixture Package Install In Container"),
        "{text}"
    );
    assert!(
        text.contains("declined") && text.contains("ES|QL rules are not supported"),
        "{text}"
    );
    assert!(
        text.contains("4 loaded (1 sequences;") && text.contains("3 declined, 0 errors"),
        "{text}"
    );
}

#[test]
fn check_fails_and_prints_positions_on_errors() {
    let (ok, text) = run(|o| check(&fixture("bad"), o));
    assert!(!ok);
    assert!(
        text.contains("eql_error_triple_quoted.toml:14:27:"),
        "{text}"
    );
    assert!(text.contains("3 errors"), "{text}");
}

#[test]
fn test_command_reports_pass_and_fail() {
    let (ok, text) = run(|o| test(&fixture("rules"), o));
    assert!(ok, "{text}");
    assert!(text.contains("4 passed, 0 failed"), "{text}");
    let (ok, text) = run(|o| test(&fixture("failing"), o));
    assert!(!ok);
    assert!(
        text.contains("wrong_expectation.ndjson:2: expected match"),
        "{text}"
    );
    assert!(text.contains("0 passed, 2 failed"), "{text}");
}

#[test]
fn replay_prints_one_alert_per_matching_event_and_skips_bad_lines() {
    let rules = sensor_rules::loader::load_dir(&fixture("rules"))
        .unwrap()
        .rules;
    let mut engine = Engine::new(rules, EngineConfig::unsuppressed());
    let good = r#"{"event":{"category":["process"],"type":["start"],"action":"exec"},"host":{"os":{"type":"linux"}},"process":{"name":"apt-get","args":["apt-get","install","curl"]},"container":{"id":"c1"}}"#;
    let benign = r#"{"event":{"category":["process"],"type":["start"],"action":"exec"},"process":{"name":"ls","args":["ls"]}}"#;
    let mut input = Vec::new();
    input.extend_from_slice(format!("{good}\n{{not json\n\n[1,2]\n{benign}\n").as_bytes());
    input.extend_from_slice(b"\xff\xfe garbage\n");
    input.extend_from_slice(good.as_bytes()); // last line without newline
    let (mut out, mut diag) = (Vec::new(), Vec::new());
    let s = replay(&mut engine, &input[..], &mut out, &mut diag).unwrap();
    assert_eq!((s.events, s.alerts, s.bad_lines), (3, 2, 3));
    let diag = String::from_utf8(diag).unwrap();
    assert!(
        diag.contains("line 2: skipped")
            && diag.contains("line 4: skipped")
            && diag.contains("line 6: skipped"),
        "{diag}"
    );
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|a| a["event"]["kind"] == "alert" && a["container"]["id"] == "c1")
    );
}
