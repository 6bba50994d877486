//! Detection: the agent's thin adapter over `sensor_rules` (EQL engine, rule
//! loader, alerts). The logic lives in `sensor_rules` so it builds, tests and
//! fuzzes without the eBPF toolchain; this module only adds `anyhow` context,
//! file/stdin handling and the live-pipeline [`Detector`].

use anyhow::Context;
pub use sensor_rules::cli::ReplaySummary;
use sensor_rules::{FieldSet, RuleSet, alert::build_alert};
use serde::Serialize;
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;

/// `sensor-agent rules check DIR`: prints loaded, declined and failed rule
/// files with reasons (`file:line:col` for errors). `Ok(false)` on any error.
pub fn rules_check(dir: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    sensor_rules::cli::check(dir, out)
        .with_context(|| format!("checking rules in {}", dir.display()))
}

/// `sensor-agent rules test DIR`: runs each rule's `tests/<stem>.ndjson`
/// examples. `Ok(false)` on any failing example or missing TP/FP example.
pub fn rules_test(dir: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    sensor_rules::cli::test(dir, out).with_context(|| format!("testing rules in {}", dir.display()))
}

/// `sensor-agent replay --rules DIR FILE`: evaluates recorded ECS NDJSON
/// (`-` = stdin) and writes one alert line per (rule, event) match to `out`.
/// Bad input lines are reported on stderr with their line number and skipped.
pub fn replay(
    rules_dir: &Path,
    input: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<ReplaySummary> {
    let detector = Detector::load(rules_dir)?;
    let mut diag = io::stderr();
    let summary = if input == Path::new("-") {
        sensor_rules::cli::replay(&detector.rules, io::stdin().lock(), out, &mut diag)
    } else {
        let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
        sensor_rules::cli::replay(&detector.rules, BufReader::new(file), out, &mut diag)
    }
    .context("writing alerts")?;
    tracing::info!(
        events = summary.events,
        alerts = summary.alerts,
        bad_lines = summary.bad_lines,
        "replay done"
    );
    Ok(summary)
}

/// A loaded rule set for the live pipeline. Read-only after loading, so it
/// can be shared (e.g. in an `Arc`) between threads.
#[derive(Debug, Clone)]
pub struct Detector {
    rules: RuleSet,
    /// What the rules read: events are projected onto it for evaluation.
    fields: FieldSet,
}

impl Detector {
    /// Loads `dir`. Declined rules and files with errors are logged (with
    /// file, position and reason) and left out; the rest run.
    pub fn load(dir: &Path) -> anyhow::Result<Detector> {
        let report = RuleSet::load_dir(dir)
            .with_context(|| format!("reading rules from {}", dir.display()))?;
        for d in &report.declined {
            tracing::warn!("{d}");
        }
        for e in &report.errors {
            tracing::error!("rule not loaded: {e}");
        }
        tracing::info!(
            loaded = report.rules.len(),
            declined = report.declined.len(),
            errors = report.errors.len(),
            "rules loaded"
        );
        Ok(Detector::from_ruleset(report.rules))
    }

    pub fn from_ruleset(rules: RuleSet) -> Detector {
        Detector {
            fields: rules.fields(),
            rules,
        }
    }

    /// The alert lines for one ECS event: one per matching rule. Rules run
    /// on the projection of `event` onto the fields they read; only an
    /// event that raised an alert is turned into a whole JSON tree.
    pub fn evaluate<T: Serialize + ?Sized>(&self, event: &T) -> Vec<Value> {
        let view = self.fields.project(event);
        let matched = self.rules.matching(&view);
        if matched.is_empty() {
            return Vec::new();
        }
        let full = match serde_json::to_value(event) {
            Ok(v) => v,
            Err(_) => return Vec::new(),
        };
        matched.into_iter().map(|r| build_alert(r, &full)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULE: &str = "[rule]\nname = \"curl\"\nrule_id = \"r1\"\nrisk_score = 47\nseverity = \"medium\"\ntype = \"eql\"\nquery = 'process where process.name == \"curl\"'\n";

    fn rules_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("curl.toml"), RULE).unwrap();
        dir
    }

    #[test]
    fn detector_emits_one_alert_per_matching_rule() {
        let dir = rules_dir();
        let d = Detector::load(dir.path()).unwrap();
        let ev = json!({"event": {"category": ["process"]}, "process": {"name": "curl"}});
        let alerts = d.evaluate(&ev);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["event"]["kind"], "alert");
        assert!(
            d.evaluate(&json!({"event": {"category": ["process"]}, "process": {"name": "ls"}}))
                .is_empty()
        );
    }

    #[test]
    fn replay_reads_a_file_and_skips_bad_lines() {
        let dir = rules_dir();
        let input = dir.path().join("events.ndjson");
        std::fs::write(
            &input,
            "{\"event\":{\"category\":[\"process\"]},\"process\":{\"name\":\"curl\"}}\nnot json\n",
        )
        .unwrap();
        let mut out = Vec::new();
        let s = replay(dir.path(), &input, &mut out).unwrap();
        assert_eq!((s.events, s.alerts, s.bad_lines), (1, 1, 1));
    }

    #[test]
    fn rules_check_is_false_on_errors() {
        let dir = rules_dir();
        std::fs::write(dir.path().join("bad.toml"), "[rule]\nname = = 1\n").unwrap();
        let mut out = Vec::new();
        assert!(!rules_check(dir.path(), &mut out).unwrap());
    }
}
