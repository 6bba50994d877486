//! RuleSet indexing, alerts and the shipped-example test runner.

use sensor_rules::alert::build_alert;
use sensor_rules::testing::{Expect, run_rule_tests};
use sensor_rules::{Rule, RuleSet};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn r(id: &str, q: &str) -> Rule {
    Rule::from_eql(id, id, q).unwrap()
}

fn exec(name: &str, args: &[&str]) -> Value {
    json!({"event": {"category": ["process"], "type": ["start"], "action": "exec"},
           "process": {"name": name, "args": args}})
}

fn names(rules: &[&Rule]) -> Vec<String> {
    rules.iter().map(|r| r.meta.rule_id.clone()).collect()
}

#[test]
fn index_files_rules_under_required_process_names() {
    let set = RuleSet::from_rules(vec![
        r(
            "curl",
            r#"process where process.name == "curl" and process.args == "-k""#,
        ),
        r(
            "shells",
            r#"process where process.name in~ ("SH", "bash") or process.name : "dash""#,
        ),
        r("anything", r#"process where process.args : "*secret*""#),
        r("action", r#"process where event.action == "fork""#),
    ]);
    assert_eq!(set.index_stats(), (3, 1));
}

#[test]
fn ruleset_finds_exactly_the_matching_rules() {
    let set = RuleSet::from_rules(vec![
        r(
            "curl",
            r#"process where process.name == "curl" and process.args == "-k""#,
        ),
        r(
            "shells",
            r#"process where process.name in~ ("SH", "bash") or process.name : "dash""#,
        ),
        r("anything", r#"process where process.args : "*secret*""#),
    ]);
    assert_eq!(
        names(&set.matching(&exec("curl", &["curl", "-k"]))),
        ["curl"]
    );
    assert_eq!(
        names(&set.matching(&exec("Sh", &["sh", "/secret"]))),
        ["shells", "anything"]
    );
    assert_eq!(names(&set.matching(&exec("DASH", &[]))), ["shells"]);
    assert!(set.matching(&exec("wget", &["-k"])).is_empty());
}

#[test]
fn case_sensitive_rule_reached_through_folded_key_still_checks_case() {
    let set = RuleSet::from_rules(vec![r("curl", r#"process where process.name == "curl""#)]);
    assert!(set.matching(&exec("CURL", &[])).is_empty());
    assert_eq!(set.matching(&exec("curl", &[])).len(), 1);
}

#[test]
fn each_rule_matches_once_in_load_order() {
    let set = RuleSet::from_rules(vec![
        r("b", r#"any where process.name in ("x", "y")"#),
        r("a", r#"process where process.name == "x""#),
    ]);
    // Two key values in the event must not yield a rule twice.
    let ev =
        json!({"event": {"category": ["process", "process"]}, "process": {"name": ["x", "y"]}});
    assert_eq!(names(&set.matching(&ev)), ["b", "a"]);
}

#[test]
fn category_index_skips_other_categories() {
    let set = RuleSet::from_rules(vec![r("net", r#"network where process.name == "curl""#)]);
    assert!(set.matching(&exec("curl", &[])).is_empty());
}

#[test]
fn flattened_event_reaches_indexed_rule() {
    let set = RuleSet::from_rules(vec![r("curl", r#"process where process.name == "curl""#)]);
    let ev = json!({"event.category": "process", "process.name": "curl"});
    assert_eq!(set.matching(&ev).len(), 1);
}

fn loaded_rule() -> Rule {
    let report = sensor_rules::loader::load_dir(&fixture("rules")).unwrap();
    report.rules[0].clone()
}

#[test]
fn alert_has_kind_alert_and_rule_fields() {
    let rule = loaded_rule();
    let ev = exec("apt-get", &["apt-get", "install", "curl"]);
    let a = build_alert(&rule, &ev);
    assert_eq!(a["event"]["kind"], "alert");
    assert_eq!(a["event"]["severity"], 21);
    assert_eq!(a["event"]["risk_score"], 21.0);
    assert_eq!(a["rule"]["id"], "00000000-0000-4000-8000-000000000001");
    assert_eq!(a["rule"]["uuid"], a["rule"]["id"]);
    assert_eq!(a["rule"]["name"], "Fixture Package Install In Container");
    assert_eq!(a["rule"]["reference"], "https://example.invalid/one");
    assert_eq!(a["rule"]["ruleset"], "sensor");
    assert_eq!(a["rule"]["version"], "2026/02/03");
    assert_eq!(a["rule"]["license"], "Apache-2.0");
    assert_eq!(a["rule"]["author"], json!(["Fixture Author"]));
    assert_eq!(a["kibana"]["alert"]["severity"], "low");
    assert_eq!(a["kibana"]["alert"]["risk_score"], 21);
    assert_eq!(a["tags"], json!(["Domain: Container", "OS: Linux"]));
    assert_eq!(a["rule"].get("severity"), None, "ECS has no rule.severity");
    assert_eq!(a["kibana"]["alert"]["rule"]["rule_id"], a["rule"]["id"]);
}

#[test]
fn alert_keeps_all_triggering_event_fields() {
    let rule = loaded_rule();
    let mut ev = exec("apt-get", &["apt-get", "install", "curl"]);
    ev["container"] = json!({"id": "abc", "name": "web"});
    ev["@timestamp"] = json!("2026-11-22T19:40:00Z");
    let a = build_alert(&rule, &ev);
    assert_eq!(a["process"], ev["process"]);
    assert_eq!(a["container"], ev["container"]);
    assert_eq!(a["@timestamp"], ev["@timestamp"]);
    assert_eq!(a["event"]["category"], json!(["process"]));
    assert_eq!(a["event"]["action"], "exec");
}

#[test]
fn alert_threat_comes_from_the_rule() {
    let a = build_alert(&loaded_rule(), &exec("x", &[]));
    assert_eq!(a["threat"][0]["framework"], "MITRE ATT&CK");
    assert_eq!(a["threat"][0]["tactic"]["id"], "TA0002");
    assert_eq!(a["threat"][0]["technique"][0]["id"], "T1059");
    assert_eq!(
        a["threat"][0]["technique"][0]["subtechnique"][0]["id"],
        "T1059.004"
    );
}

#[test]
fn rule_tests_pass_for_correct_examples() {
    let report = run_rule_tests(&fixture("rules"), None).unwrap();
    assert!(report.passed(), "{report:?}");
    assert_eq!(report.rules.len(), 4);
    for rt in &report.rules {
        assert!(
            rt.expect_match >= 1 && rt.expect_no_match >= 1 && rt.failures.is_empty(),
            "{}: {rt:?}",
            rt.rule_name
        );
    }
    assert_eq!(report.declined.len(), 3);
}

#[test]
fn rule_tests_report_failures_and_missing_examples() {
    let report = run_rule_tests(&fixture("failing"), None).unwrap();
    assert!(!report.passed());
    let no_ex = report
        .rules
        .iter()
        .find(|r| r.rule_name == "Fixture without examples")
        .unwrap();
    assert!(
        no_ex.problems[0].contains("no examples"),
        "{:?}",
        no_ex.problems
    );
    let wrong = report
        .rules
        .iter()
        .find(|r| r.rule_name == "Fixture curl only")
        .unwrap();
    assert_eq!(wrong.failures.len(), 1);
    assert_eq!(wrong.failures[0].line, 2);
    assert_eq!(wrong.failures[0].expect, Expect::Match);
    assert!(
        wrong
            .problems
            .iter()
            .any(|p| p.contains("no false-positive example")),
        "{:?}",
        wrong.problems
    );
}

/// Every example event shipped with the rules, as (file, line, event).
fn shipped_examples() -> Vec<(String, usize, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/tests");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line).unwrap();
            let events = v["events"].as_array().cloned().unwrap_or_default();
            for ev in std::iter::once(v["event"].clone()).chain(events) {
                if !ev.is_null() {
                    out.push((path.display().to_string(), i + 1, ev));
                }
            }
        }
    }
    out
}

#[test]
fn projection_and_capture_onto_the_rules_fields_match_like_the_full_document() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let rules = RuleSet::from_rules(sensor_rules::loader::load_dir(&dir).unwrap().rules);
    let fields = rules.fields();
    let plan = rules.plan();
    let mut cap = sensor_rules::Captured::default();
    let examples = shipped_examples();
    assert!(examples.len() > 50, "only {} examples", examples.len());
    let mut matched = 0;
    for (file, line, event) in &examples {
        let (mut full, mut projected, mut captured) = (Vec::new(), Vec::new(), Vec::new());
        rules.matched(event, &mut full);
        rules.matched(&fields.project(event), &mut projected);
        plan.capture(event, &mut cap);
        rules.matched(&plan.doc(&cap), &mut captured);
        assert_eq!(projected, full, "{file}:{line}");
        assert_eq!(captured, full, "{file}:{line} captured");
        matched += usize::from(!full.is_empty());
    }
    assert!(matched > 20, "only {matched} examples match anything");
}

#[test]
fn fields_include_every_field_a_query_reads_and_the_index_keys() {
    let set = RuleSet::from_rules(vec![r(
        "a",
        r#"process where length(process.command_line) > 3 and not process.parent.name in ("x") and ?user.id == null"#,
    )]);
    let doc = json!({"event": {"category": ["process"], "action": "exec", "type": ["start"], "id": "i"},
                     "process": {"name": "n", "command_line": "long", "pid": 1,
                                 "parent": {"name": "p", "pid": 2}},
                     "user": {"id": "0", "name": "root"}, "host": {"name": "h"}});
    assert_eq!(
        set.fields().project(&doc),
        json!({"event": {"category": ["process"], "action": "exec", "type": ["start"]},
               "process": {"name": "n", "command_line": "long", "parent": {"name": "p"}},
               "user": {"id": "0"}})
    );
}

#[test]
fn a_typed_event_raises_the_alerts_its_json_raises_sequences_included() {
    use sensor_rules::engine::{Engine, EngineConfig};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let rules = || sensor_rules::loader::load_dir(&dir).unwrap().rules;
    let (mut json, mut typed) = (
        Engine::new(rules(), EngineConfig::unsuppressed()),
        Engine::new(rules(), EngineConfig::unsuppressed()),
    );
    let ids = |alerts: &[Value]| -> Vec<String> {
        alerts
            .iter()
            .map(|a| format!("{}", a["rule"]["id"]))
            .collect()
    };
    let mut alerts = 0;
    for (file, line, event) in shipped_examples() {
        let ts = sensor_rules::date::parse_timestamp_ns(event["@timestamp"].as_str().unwrap_or(""));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        json.process(&event, &mut || event.clone(), &mut a);
        typed.process_typed(&event, ts, &mut || event.clone(), &mut b);
        assert_eq!(ids(&b), ids(&a), "{file}:{line}");
        alerts += a.len();
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    json.finish(&mut a);
    typed.finish(&mut b);
    assert_eq!(ids(&b), ids(&a), "at the end");
    assert!(alerts > 20, "only {alerts} alerts");
    assert!(json.stats().sequences > 0, "no sequence completed");
}

#[test]
fn the_index_lets_through_every_rule_that_matches_a_shipped_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let set = RuleSet::from_rules(sensor_rules::loader::load_dir(&dir).unwrap().rules);
    for (file, line, event) in shipped_examples() {
        let direct: Vec<&Rule> = set.rules().iter().filter(|r| r.matches(&event)).collect();
        assert_eq!(
            names(&set.matching(&event)),
            names(&direct),
            "{file}:{line}"
        );
    }
}

#[test]
fn a_query_testing_container_id_is_no_candidate_for_a_host_event() {
    let set = RuleSet::from_rules(vec![
        r(
            "in_container",
            r#"process where event.action == "exec" and container.id like "*""#,
        ),
        r(
            "not_null",
            r#"process where event.action == "exec" and container.id != null"#,
        ),
        r(
            "either",
            r#"process where event.action == "exec" and (container.id : "a*" or container.id == "b")"#,
        ),
        r(
            "host_too",
            r#"process where event.action == "exec" and (container.id like "*" or process.name == "sh")"#,
        ),
        r(
            "absent",
            r#"process where event.action == "exec" and container.id == null"#,
        ),
    ]);
    let host = exec("sh", &["sh"]);
    let mut cand = Vec::new();
    set.candidates(&host, &mut cand);
    assert_eq!(cand, [3, 4]);
    assert_eq!(names(&set.matching(&host)), ["host_too", "absent"]);
    let mut in_pod = exec("sh", &["sh"]);
    in_pod["container"] = json!({"id": "abc"});
    set.candidates(&in_pod, &mut cand);
    assert_eq!(cand, [0, 1, 2, 3, 4]);
}

#[test]
fn a_sequence_stage_is_no_candidate_for_an_event_missing_its_join_key() {
    let set = RuleSet::from_rules(vec![
        r(
            "seq",
            r#"sequence by container.id [process where process.name == "curl"] [process where event.action == "exec"]"#,
        ),
        r(
            "optional",
            r#"sequence by ?container.id [process where process.name == "curl"] [process where event.action == "exec"]"#,
        ),
    ]);
    let mut cand = Vec::new();
    set.candidates(&exec("curl", &["curl"]), &mut cand);
    // Both stages of `optional` only: `seq` joins on a container id.
    assert_eq!(cand, [2, 3]);
    let mut in_pod = exec("curl", &["curl"]);
    in_pod["container"] = json!({"id": "abc"});
    set.candidates(&in_pod, &mut cand);
    assert_eq!(cand, [0, 1, 2, 3]);
}
