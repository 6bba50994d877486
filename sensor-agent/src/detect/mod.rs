//! Detection: the agent's thin adapter over `sensor_rules` (EQL engine, rule
//! loader, alerts). The logic lives in `sensor_rules` so it builds, tests and
//! fuzzes without the eBPF toolchain; this module only adds `anyhow` context,
//! file/stdin handling and the live-pipeline [`Detector`].

use anyhow::Context;
use sensor_rules::Rule;
pub use sensor_rules::cli::ReplaySummary;
use sensor_rules::engine::{Engine, EngineConfig, EngineStats};
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
    sensor_rules::cli::test_with(dir, Some(&crate::audit::test_mapper), out)
        .with_context(|| format!("testing rules in {}", dir.display()))
}

/// `sensor-agent replay --rules DIR FILE`: evaluates recorded ECS NDJSON
/// (`-` = stdin) through the same engine as `run` (sequences and
/// suppression on event time) and writes the alert lines to `out`. Bad
/// input lines are reported on stderr with their line number and skipped.
pub fn replay(
    rules_dir: &Path,
    input: &Path,
    config: EngineConfig,
    out: &mut dyn Write,
) -> anyhow::Result<ReplaySummary> {
    let mut detector = Detector::load(rules_dir, config)?;
    let mut diag = io::stderr();
    let summary = if input == Path::new("-") {
        sensor_rules::cli::replay(&mut detector.engine, io::stdin().lock(), out, &mut diag)
    } else {
        let file = File::open(input).with_context(|| format!("opening {}", input.display()))?;
        sensor_rules::cli::replay(&mut detector.engine, BufReader::new(file), out, &mut diag)
    }
    .context("writing alerts")?;
    detector.log_notices();
    tracing::info!(
        events = summary.events,
        alerts = summary.alerts,
        bad_lines = summary.bad_lines,
        sequences = summary.engine.sequences,
        suppressed = summary.engine.suppressed,
        capped = summary.engine.capped,
        "replay done"
    );
    Ok(summary)
}

pub mod watch;

/// How often `run` and `audit` save the new_terms store (when it changed).
pub const STATE_SAVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The new_terms store's file in the state directory.
pub const NEW_TERMS_FILE: &str = "new_terms.json";

/// The live pipeline's rule engine: single-event rules, sequence state
/// and suppression (see `sensor_rules::engine`).
#[derive(Debug)]
pub struct Detector {
    engine: Engine,
}

impl Detector {
    /// Loads `dir`. Declined rules and files with errors are logged (with
    /// file, position and reason) and left out; the rest run.
    pub fn load(dir: &Path, config: EngineConfig) -> anyhow::Result<Detector> {
        let report = sensor_rules::loader::load_dir(dir)
            .with_context(|| format!("reading rules from {}", dir.display()))?;
        for d in &report.declined {
            tracing::warn!("{d}");
        }
        for e in &report.errors {
            tracing::error!("rule not loaded: {e}");
        }
        tracing::info!(
            loaded = report.rules.len(),
            sequences = report.rules.iter().filter(|r| r.is_sequence()).count(),
            declined = report.declined.len(),
            errors = report.errors.len(),
            "rules loaded"
        );
        Ok(Detector::from_rules(report.rules, config))
    }

    /// Re-reads `dir` and swaps the new set in (see
    /// `sensor_rules::engine::Engine::reload`). A set with any error is
    /// refused, each error logged as `file:line:col`, and the rules loaded
    /// before stay in force.
    pub fn reload(&mut self, dir: &Path) -> anyhow::Result<sensor_rules::engine::Reloaded> {
        let report = sensor_rules::loader::load_dir(dir)
            .with_context(|| format!("reading rules from {}", dir.display()))?;
        if !report.errors.is_empty() {
            for e in &report.errors {
                tracing::error!("rule reload: {e}");
            }
            anyhow::bail!(
                "rule reload refused: {} file(s) in {} have errors (above); the {} rules \
                 loaded before stay in force",
                report.errors.len(),
                dir.display(),
                self.engine.rules().len()
            );
        }
        for d in &report.declined {
            tracing::warn!("{d}");
        }
        let loaded = report.rules.len();
        let r = self.engine.reload(report.rules);
        tracing::info!(
            loaded,
            kept = r.kept,
            changed = r.changed,
            added = r.added,
            removed = r.removed,
            declined = report.declined.len(),
            partials_dropped = r.partials_dropped,
            "rules reloaded"
        );
        Ok(r)
    }

    /// What the loaded rules can match on a file event (the kernel filter).
    pub fn watch_set(&self) -> sensor_rules::watch::WatchSet {
        sensor_rules::watch::WatchSet::from_rules(self.engine.rules().rules())
    }

    pub fn from_rules(rules: Vec<Rule>, config: EngineConfig) -> Detector {
        Detector {
            engine: Engine::new(rules, config),
        }
    }

    /// Appends the alert lines for one ECS event to `out`. `index` answers
    /// the rule index's fields and the event time; rules read the rest
    /// captured onto their fields (no JSON tree), and only when a rule may
    /// match. The whole tree is built only for an event that raised an
    /// alert or that a sequence keeps.
    pub fn evaluate_indexed<T: Serialize + ?Sized>(
        &mut self,
        event: &T,
        index: &dyn sensor_rules::Document,
        out: &mut Vec<Value>,
    ) {
        self.engine.process_typed_indexed(
            event,
            index,
            &mut || serde_json::to_value(event).unwrap_or(Value::Null),
            out,
        );
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Restores the new_terms store from `dir` (a missing store is a fresh start).
    pub fn restore_state(&mut self, dir: &Path) -> anyhow::Result<()> {
        self.engine
            .load_new_terms(&dir.join(NEW_TERMS_FILE))
            .map_err(|e| anyhow::anyhow!("new_terms state: {e}"))
    }

    /// Saves the new_terms store into `dir` if it changed.
    pub fn save_state(&mut self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(NEW_TERMS_FILE);
        self.engine
            .save_new_terms(&path)
            .map(|_| ())
            .with_context(|| format!("saving the new_terms state to {}", path.display()))
    }

    /// [`Detector::evaluate_indexed`] for a document that is already a JSON tree:
    /// rules read it as it is, with no projection.
    pub fn evaluate_value(&mut self, doc: &Value, out: &mut Vec<Value>) {
        self.engine.process(doc, &mut || doc.clone(), out);
    }

    /// Evaluates `view` (a document holding at least every field the rules
    /// read, see [`Detector::fields`]); `full` builds the whole document,
    /// only for an alert or a sequence stage.
    pub fn evaluate_view(
        &mut self,
        view: &Value,
        full: &mut dyn FnMut() -> Value,
        out: &mut Vec<Value>,
    ) {
        self.engine.process(view, full, out);
    }

    /// Every field the rules read.
    pub fn fields(&self) -> &sensor_rules::FieldSet {
        self.engine.fields()
    }

    /// Event time reached `now_ns` with no event: closes what is due.
    pub fn advance(&mut self, now_ns: i64, out: &mut Vec<Value>) {
        self.engine.advance(now_ns, out);
    }

    /// The stream ends: held sequences and suppression counts are written.
    pub fn finish(&mut self, out: &mut Vec<Value>) {
        self.engine.finish(out);
    }

    pub fn stats(&self) -> EngineStats {
        self.engine.stats()
    }

    /// Logs what the engine had to say once (state caps reached, ...).
    pub fn log_notices(&mut self) {
        for n in self.engine.take_notices() {
            tracing::warn!("{n}");
        }
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
        let mut d = Detector::load(dir.path(), EngineConfig::unsuppressed()).unwrap();
        let ev = json!({"event": {"category": ["process"]}, "process": {"name": "curl"}});
        let mut alerts = Vec::new();
        d.evaluate_value(&ev, &mut alerts);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["event"]["kind"], "alert");
        alerts.clear();
        d.evaluate_value(
            &json!({"event": {"category": ["process"]}, "process": {"name": "ls"}}),
            &mut alerts,
        );
        assert!(alerts.is_empty());
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
        let s = replay(dir.path(), &input, EngineConfig::default(), &mut out).unwrap();
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
