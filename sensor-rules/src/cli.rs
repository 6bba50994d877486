//! The logic behind `rules check`, `rules test` and `replay`, writing
//! human-readable reports (check/test) or alert NDJSON (replay) to `out`.

use crate::engine::{Engine, EngineStats};
use crate::loader::load_dir;
use crate::ruleset::RuleSet;
use crate::testing::{Expect, Mapper, run_rule_tests};
use serde_json::Value;
use std::io::{self, BufRead, Write};
use std::path::Path;

/// Loads `dir` and reports every loaded, declined and failed file. Returns
/// false when any file failed to load.
pub fn check(dir: &Path, out: &mut dyn Write) -> io::Result<bool> {
    let report = load_dir(dir)?;
    for rule in &report.rules {
        let kind = if rule.is_sequence() {
            " (sequence)"
        } else {
            ""
        };
        writeln!(
            out,
            "loaded   {}: {}{kind}",
            rule.meta.file.display(),
            rule.meta.name
        )?;
    }
    for d in &report.declined {
        writeln!(out, "declined {d}")?;
    }
    for e in &report.errors {
        writeln!(out, "error    {e}")?;
    }
    let sequences = report.rules.iter().filter(|r| r.is_sequence()).count();
    let loaded = report.rules.len();
    let watch = crate::watch::WatchSet::from_rules(&report.rules);
    if watch.is_empty() {
        writeln!(
            out,
            "file watch set: empty (no file record leaves the kernel)"
        )?;
    } else {
        write!(out, "file watch set (what the kernel reports):\n{watch}")?;
    }
    let (keyed, always) = RuleSet::from_rules(report.rules).index_stats();
    writeln!(
        out,
        "{loaded} loaded ({sequences} sequences; {keyed} queries and stages indexed by key, {always} checked on every event), {} declined, {} errors",
        report.declined.len(),
        report.errors.len()
    )?;
    Ok(report.errors.is_empty())
}

/// Runs the shipped example events. Returns false on any failure or problem.
pub fn test(dir: &Path, out: &mut dyn Write) -> io::Result<bool> {
    test_with(dir, None, out)
}

/// [`test`], with a mapper for examples in a raw source format.
pub fn test_with(dir: &Path, mapper: Option<Mapper>, out: &mut dyn Write) -> io::Result<bool> {
    let report = run_rule_tests(dir, mapper)?;
    for rt in &report.rules {
        let status = if rt.passed() { "ok  " } else { "FAIL" };
        writeln!(
            out,
            "{status} {} ({} examples: {} match, {} no_match) [{}]",
            rt.rule_name,
            rt.cases,
            rt.expect_match,
            rt.expect_no_match,
            rt.file.display()
        )?;
        for f in &rt.failures {
            let want = if f.expect == Expect::Match {
                "match"
            } else {
                "no match"
            };
            writeln!(
                out,
                "     {}:{}: expected {want}: {}",
                rt.tests_file.display(),
                f.line,
                f.note
            )?;
        }
        for p in &rt.problems {
            writeln!(out, "     {p}")?;
        }
    }
    for d in &report.declined {
        writeln!(out, "skip {d}")?;
    }
    for e in &report.load_errors {
        writeln!(out, "FAIL {e}")?;
    }
    let passed = report.rules.iter().filter(|r| r.passed()).count();
    let failed = report.rules.len() - passed + report.load_errors.len();
    writeln!(out, "rules test: {passed} passed, {failed} failed")?;
    Ok(report.passed())
}

/// Counts from one replay run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub events: u64,
    pub alerts: u64,
    pub bad_lines: u64,
    /// The engine's own counters (suppressed, sequences, ...).
    pub engine: EngineStats,
}

fn write_alerts(out: &mut dyn Write, alerts: &mut Vec<Value>) -> io::Result<()> {
    for alert in alerts.drain(..) {
        serde_json::to_writer(&mut *out, &alert)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Evaluates each NDJSON event from `input` through `engine` and writes the
/// alerts to `out`; at the end the engine is finished, so held sequences and
/// suppression counts are written too. A line that is not a JSON object is
/// reported on `diag` with its line number and skipped; invalid UTF-8 is
/// replaced, never fatal. Only I/O errors on `out` stop it.
pub fn replay(
    engine: &mut Engine,
    input: impl BufRead,
    out: &mut dyn Write,
    diag: &mut dyn Write,
) -> io::Result<ReplaySummary> {
    replay_mapped(engine, input, &mut ecs_line, out, diag)
}

/// One NDJSON line of ECS: a JSON object.
fn ecs_line(line: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str(line) {
        Ok(v @ Value::Object(_)) => Ok(vec![v]),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// [`replay`] over lines of any format: `map` turns one line into the ECS
/// documents it holds, or says why it cannot.
pub fn replay_mapped(
    engine: &mut Engine,
    mut input: impl BufRead,
    map: &mut dyn FnMut(&str) -> Result<Vec<Value>, String>,
    out: &mut dyn Write,
    diag: &mut dyn Write,
) -> io::Result<ReplaySummary> {
    let mut s = ReplaySummary::default();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut alerts = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        let docs = match map(&line) {
            Ok(d) => d,
            Err(e) => {
                s.bad_lines += 1;
                let _ = writeln!(diag, "line {line_no}: skipped: {e}");
                continue;
            }
        };
        for event in docs {
            s.events += 1;
            engine.process(&event, &mut || event.clone(), &mut alerts);
            s.alerts += alerts.len() as u64;
            write_alerts(out, &mut alerts)?;
        }
    }
    engine.finish(&mut alerts);
    s.alerts += alerts.len() as u64;
    write_alerts(out, &mut alerts)?;
    s.engine = engine.stats();
    out.flush()?;
    Ok(s)
}
