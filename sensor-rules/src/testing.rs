//! Runs the example events shipped with rules: `tests/<rule-file-stem>.ndjson`
//! beside the rule files, one `{"expect": "match"|"no_match", "note": "...",
//! "event": {...}}` per line, each evaluated against that file's rule only.
//! A sequence's example gives its events in order: `"events": [{...}, ...]`;
//! it matches when the rule raised an alert by the end of them (suppression
//! off, so every match counts). `"history": [...]` gives events fed first
//! whose alerts do not count (a new_terms rule's terms seen before).
//! `"format": "k8s-audit"` says the events are raw source records that a
//! [`Mapper`] turns into ECS first (the agent supplies it).

use crate::engine::{Engine, EngineConfig};
use crate::loader::{self, Declined, FileOutcome, LoadError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Match,
    NoMatch,
}

#[derive(Deserialize)]
struct Case {
    expect: Expect,
    #[serde(default)]
    note: String,
    #[serde(default)]
    event: Option<serde_json::Value>,
    #[serde(default)]
    events: Vec<serde_json::Value>,
    #[serde(default)]
    history: Vec<serde_json::Value>,
    #[serde(default)]
    format: Option<String>,
}

/// Turns a raw record of a named format (`k8s-audit`) into ECS documents.
pub type Mapper<'a> =
    &'a dyn Fn(&str, &serde_json::Value) -> Result<Vec<serde_json::Value>, String>;

/// Does `rule` raise an alert over `events`, fed in order to a fresh engine
/// after `history` (whose alerts do not count)?
pub fn raises_alert(
    rule: &crate::Rule,
    history: &[serde_json::Value],
    events: &[serde_json::Value],
) -> bool {
    let mut engine = Engine::new(vec![rule.clone()], EngineConfig::unsuppressed());
    let mut alerts = Vec::new();
    for ev in history {
        engine.process(ev, &mut || ev.clone(), &mut alerts);
    }
    alerts.clear();
    for ev in events {
        engine.process(ev, &mut || ev.clone(), &mut alerts);
    }
    engine.finish(&mut alerts);
    !alerts.is_empty()
}

fn map_all(
    mapper: Option<Mapper>,
    format: Option<&str>,
    events: Vec<serde_json::Value>,
) -> Result<Vec<serde_json::Value>, String> {
    let Some(format) = format else {
        return Ok(events);
    };
    let Some(mapper) = mapper else {
        return Err(format!(
            "format \"{format}\" needs the agent's mapping: run `sensor-agent rules test`"
        ));
    };
    let mut out = Vec::new();
    for ev in &events {
        out.extend(mapper(format, ev)?);
    }
    Ok(out)
}

/// An example whose outcome differed from its `expect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure {
    pub line: usize,
    pub expect: Expect,
    pub note: String,
}

/// Results for one rule file.
#[derive(Debug, Clone, Default)]
pub struct RuleTests {
    pub file: PathBuf,
    pub rule_name: String,
    pub tests_file: PathBuf,
    pub cases: usize,
    /// Examples expected to match (true positives).
    pub expect_match: usize,
    /// Examples expected not to match (false-positive guards).
    pub expect_no_match: usize,
    pub failures: Vec<CaseFailure>,
    /// Missing or malformed test files, unreadable lines, missing TP/FP examples.
    pub problems: Vec<String>,
}

impl RuleTests {
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.problems.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct TestReport {
    pub rules: Vec<RuleTests>,
    pub load_errors: Vec<LoadError>,
    pub declined: Vec<Declined>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.load_errors.is_empty() && self.rules.iter().all(RuleTests::passed)
    }
}

/// The examples file for a rule file: `<dir>/tests/<stem>.ndjson`.
pub fn tests_path(rule_file: &Path) -> PathBuf {
    let dir = rule_file.parent().unwrap_or(Path::new("."));
    let stem = rule_file.file_stem().unwrap_or_default();
    dir.join("tests").join(stem).with_extension("ndjson")
}

pub fn run_rule_tests(rules_dir: &Path, mapper: Option<Mapper>) -> std::io::Result<TestReport> {
    let mut report = TestReport::default();
    for file in loader::rule_files(rules_dir)? {
        let rule = match loader::load_file(&file) {
            FileOutcome::Loaded(r) => r,
            FileOutcome::Declined(d) => {
                report.declined.push(d);
                continue;
            }
            FileOutcome::Error(e) => {
                report.load_errors.push(e);
                continue;
            }
        };
        let tests_file = tests_path(&file);
        let mut rt = RuleTests {
            file,
            rule_name: rule.meta.name.clone(),
            tests_file,
            ..RuleTests::default()
        };
        match std::fs::read(&rt.tests_file) {
            Err(e) => rt
                .problems
                .push(format!("no examples at {}: {e}", rt.tests_file.display())),
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let case: Case = match serde_json::from_str(line) {
                        Ok(c) => c,
                        Err(e) => {
                            rt.problems.push(format!(
                                "{}:{}: bad example line: {e}",
                                rt.tests_file.display(),
                                i + 1
                            ));
                            continue;
                        }
                    };
                    let events: Vec<serde_json::Value> =
                        case.event.into_iter().chain(case.events).collect();
                    let format = case.format.as_deref();
                    let mapped = map_all(mapper, format, events)
                        .and_then(|e| Ok((e, map_all(mapper, format, case.history)?)));
                    let (events, history) = match mapped {
                        Ok(x) => x,
                        Err(e) => {
                            rt.problems
                                .push(format!("{}:{}: {e}", rt.tests_file.display(), i + 1));
                            continue;
                        }
                    };
                    if events.is_empty() {
                        rt.problems.push(format!(
                            "{}:{}: example has neither \"event\" nor \"events\"",
                            rt.tests_file.display(),
                            i + 1
                        ));
                        continue;
                    }
                    rt.cases += 1;
                    match case.expect {
                        Expect::Match => rt.expect_match += 1,
                        Expect::NoMatch => rt.expect_no_match += 1,
                    }
                    if raises_alert(&rule, &history, &events) != (case.expect == Expect::Match) {
                        rt.failures.push(CaseFailure {
                            line: i + 1,
                            expect: case.expect,
                            note: case.note,
                        });
                    }
                }
                if rt.expect_match == 0 {
                    rt.problems
                        .push("no true-positive example (expect \"match\")".into());
                }
                if rt.expect_no_match == 0 {
                    rt.problems
                        .push("no false-positive example (expect \"no_match\")".into());
                }
            }
        }
        report.rules.push(rt);
    }
    Ok(report)
}
