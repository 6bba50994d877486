//! `sensor-agent audit`: the Kubernetes API server's audit stream as a
//! second source, into the same engine and the same NDJSON output as the
//! kernel pipeline.
//!
//! sources (webhook, log file, stdin; see [`crate::source`]) → envelopes
//! unwrapped ([`envelope`]) → ECS as Elastic's integration maps it
//! ([`ecs`]), both in the `sensor-audit` crate → [`crate::sink::Sink`]
//! (rules, then output).

pub mod tail;
pub mod webhook;

use std::{
    io::{self, BufRead, Write},
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context;
use serde_json::Value;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};
use tracing::{error, info, warn};

use crate::{
    cli::{AuditArgs, AuditRunArgs},
    detect::Detector,
    enrich::host::HostInfo,
    metrics::{self, Metrics},
    output::{
        ecs::ECS_VERSION,
        ndjson::{Lines, NdjsonWriter},
    },
    sink::Sink,
    source::{Batch, Source},
};
use sensor_audit::{Projection, Unwrapped};
pub use sensor_audit::{ecs, envelope};

/// One record from a source: the text of one audit event, `EventList` or
/// envelope, parsed by the consumer (so rules can parse only what they read).
pub type Item = String;

/// The record one line of text is (none for a blank line).
pub fn parse_line(line: &str) -> Vec<Item> {
    if line.trim().is_empty() {
        return Vec::new();
    }
    vec![line.to_string()]
}

/// This node's ECS `host` object, stamped on every audit document as
/// Elastic Agent's host metadata does (rules test `host.os.type`).
fn host() -> &'static Value {
    static HOST: OnceLock<Value> = OnceLock::new();
    HOST.get_or_init(|| HostInfo::detect().to_ecs())
}

/// One unwrapped event → its ECS document, with the node's `host`.
pub fn map_event(u: Unwrapped) -> Value {
    let mut doc = ecs::to_ecs(u, ECS_VERSION);
    if let Value::Object(m) = &mut doc {
        m.insert("host".into(), host().clone());
    }
    doc
}

/// One line of raw audit text → its ECS documents.
pub fn map_line(line: &str) -> Result<Vec<Value>, String> {
    let events = envelope::unwrap_text(line).map_err(|e| e.to_string())?;
    Ok(events.into_iter().map(map_event).collect())
}

/// The rule-test mapper for `"format": "k8s-audit"` examples.
pub fn test_mapper(format: &str, raw: &Value) -> Result<Vec<Value>, String> {
    if format != "k8s-audit" {
        return Err(format!(
            "unknown example format \"{format}\" (known: k8s-audit)"
        ));
    }
    let events = envelope::unwrap_value(raw.clone()).map_err(|e| e.to_string())?;
    Ok(events.into_iter().map(map_event).collect())
}

fn open_input(input: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(if input == Path::new("-") {
        Box::new(io::BufReader::new(io::stdin()))
    } else {
        let f =
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
        Box::new(io::BufReader::new(f))
    })
}

/// `sensor-agent audit map FILE`: the ECS documents, no rules. A line that
/// is not an audit event is reported on stderr with its number; the
/// result is false when any was.
pub fn map_file(input: &Path, out: &mut dyn Write) -> anyhow::Result<bool> {
    let reader = open_input(input)?;
    let mut bad = 0u64;
    let mut docs = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", input.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match map_line(&line) {
            Ok(ds) => {
                for d in ds {
                    docs += 1;
                    serde_json::to_writer(&mut *out, &d)?;
                    out.write_all(b"\n")?;
                }
            }
            Err(e) => {
                bad += 1;
                eprintln!("{}:{}: not an audit event: {e}", input.display(), i + 1);
            }
        }
    }
    out.flush()?;
    info!(documents = docs, bad_lines = bad, "audit map done");
    Ok(bad == 0)
}

/// `sensor-agent replay --format k8s-audit`.
pub fn replay(
    rules: &Path,
    input: &Path,
    config: sensor_rules::engine::EngineConfig,
    state_dir: Option<&Path>,
    out: &mut dyn Write,
) -> anyhow::Result<sensor_rules::cli::ReplaySummary> {
    let mut detector = Detector::load(rules, config)?;
    if let Some(dir) = state_dir {
        detector.restore_state(dir)?;
    }
    let reader = open_input(input)?;
    let summary = sensor_rules::cli::replay_mapped(
        detector.engine_mut(),
        reader,
        &mut map_line,
        out,
        &mut io::stderr(),
    )
    .context("writing alerts")?;
    if let Some(dir) = state_dir {
        detector.save_state(dir)?;
    }
    detector.log_notices();
    info!(
        events = summary.events,
        alerts = summary.alerts,
        bad_lines = summary.bad_lines,
        "replay done"
    );
    Ok(summary)
}

/// Counters for the exit summary.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    events: u64,
    bad: u64,
    batches: u64,
}

fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// How long sources get to finish after SIGTERM before the queue is drained anyway.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// `sensor-agent audit`: runs the configured sources until SIGTERM/SIGINT
/// (or, for a file or stdin given alone, until it ends), then drains.
pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    let a: AuditRunArgs = args.run;
    if a.webhook_listen.is_none() && a.audit_log_path.is_none() {
        anyhow::bail!(
            "nothing to read: give --webhook-listen ADDR (with --tls-cert and --tls-key) \
             and/or --audit-log-path FILE (`-` for stdin)"
        );
    }
    let state_dir = a
        .engine
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    std::fs::create_dir_all(&state_dir).with_context(|| {
        format!(
            "cannot create the state directory {} (give --state-dir a writable directory)",
            state_dir.display()
        )
    })?;
    let detector = a
        .rules
        .as_deref()
        .map(|dir| Detector::load(dir, a.engine.config()))
        .transpose()?;
    let mut detector = detector;
    if let Some(d) = detector.as_mut() {
        d.restore_state(&state_dir)?;
    }
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = a.metrics_addr {
        metrics::serve(addr, metrics.clone())?;
    }
    let (tx, mut rx) = mpsc::channel::<Batch<Item>>(a.queue_batches.max(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sources: Vec<Box<dyn Source<Item>>> = Vec::new();
    if let Some(addr) = a.webhook_listen {
        let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) else {
            anyhow::bail!("--webhook-listen needs --tls-cert and --tls-key (PEM files)");
        };
        let tls = webhook::tls_config(cert, key, a.client_ca.as_deref())?;
        sources.push(Box::new(
            webhook::Webhook::bind(addr, tls, a.max_body_bytes, metrics.clone()).await?,
        ));
    }
    match a.audit_log_path.as_deref() {
        Some(p) if p == Path::new("-") => sources.push(Box::new(tail::Stdin)),
        Some(p) => sources.push(Box::new(tail::FileTail {
            path: p.to_path_buf(),
            state_file: Some(state_dir.join("audit-offsets.json")),
        })),
        None => {}
    }
    let mut tasks = tokio::task::JoinSet::new();
    for s in sources {
        info!("reading {}", s.describe());
        tasks.spawn(s.run(tx.clone(), stop_rx.clone()));
    }
    drop(tx);
    // Alerts only: each event is parsed only as far as the rules read it,
    // and in full only for an alert (the host part is projected once).
    let projection = match (&detector, a.alerts_only) {
        (Some(d), true) => {
            let host = d.fields().project(&serde_json::json!({"host": host()}));
            Some((Projection::new(d.fields()), host["host"].clone()))
        }
        _ => None,
    };
    let how = How {
        alerts_only: a.alerts_only,
        metrics: metrics.clone(),
        projection,
    };
    let mut sink = Sink::new(detector, metrics.clone());
    let mut out = NdjsonWriter::stdout().context("cannot write to stdout")?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_save = std::time::Instant::now();
    let mut totals = Totals::default();
    let mut stop_at: Option<std::time::Instant> = None;
    info!(
        rules = a.rules.as_ref().map(|_| "on").unwrap_or("off"),
        state = %state_dir.display(),
        "audit source ready"
    );
    let result: anyhow::Result<()> = loop {
        tokio::select! {
            batch = rx.recv() => {
                let Some(batch) = batch else { break Ok(()) };
                if let Err(e) = how.batch(batch, &mut sink, &mut out, &mut totals) {
                    break Err(e);
                }
            }
            r = tasks.join_next(), if !tasks.is_empty() => {
                match r {
                    Some(Ok(Err(e))) => error!("audit source stopped: {e:#}"),
                    Some(Err(e)) if !e.is_cancelled() => error!("audit source failed: {e}"),
                    _ => {}
                }
            }
            _ = sigterm.recv(), if stop_at.is_none() => {
                stop_at = Some(std::time::Instant::now());
                let _ = stop_tx.send(true);
            }
            _ = sigint.recv(), if stop_at.is_none() => {
                stop_at = Some(std::time::Instant::now());
                let _ = stop_tx.send(true);
            }
            _ = tick.tick() => {
                if let Err(e) = sink.close(Some(wall_clock_ns()), &mut out).and_then(|()| out.flush()) {
                    break Err(e.into());
                }
                if let Some(e) = sink.engine_stats() {
                    metrics.set_engine(&e);
                }
                metrics.beat();
                if last_save.elapsed() >= crate::detect::STATE_SAVE_INTERVAL {
                    last_save = std::time::Instant::now();
                    if let Some(d) = sink.detector_mut() {
                        d.save_state(&state_dir).unwrap_or_else(|e| warn!("{e:#}"));
                    }
                }
                if stop_at.is_some_and(|t| t.elapsed() > STOP_GRACE) {
                    // stdin blocks in read(2) and cannot be told to stop.
                    warn!("audit sources did not stop in time; draining what was accepted");
                    tasks.abort_all();
                    break Ok(());
                }
            }
        }
    };
    // What sources accepted before they stopped is still written.
    while let Ok(batch) = rx.try_recv() {
        if let Err(e) = how.batch(batch, &mut sink, &mut out, &mut totals) {
            error!("{e:#}");
            break;
        }
    }
    let _ = sink.close(None, &mut out);
    let flushed = out.flush();
    if let Some(d) = sink.detector_mut() {
        d.save_state(&state_dir).unwrap_or_else(|e| warn!("{e:#}"));
    }
    let e = sink.engine_stats().unwrap_or_default();
    eprintln!(
        "audit source stopped: events={} bad_records={} batches={} rejected_batches={} alerts={} \
         alerts_suppressed={} new_terms={} lines={}",
        totals.events,
        totals.bad,
        totals.batches,
        metrics.audit_batches_rejected.get(),
        sink.alerts(),
        e.suppressed,
        e.new_terms,
        out.lines(),
    );
    result?;
    flushed.context("writing events")?;
    Ok(())
}

/// The default `--state-dir` of the audit source (a hostPath in the DaemonSet).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/sensor-agent";

/// Maps, evaluates and writes one batch, then acknowledges it.
struct Consumer<'a, O: Lines> {
    sink: &'a mut Sink,
    out: &'a mut NdjsonWriter<O>,
    totals: &'a mut Totals,
    how: &'a How,
}

/// How records are consumed (the same for every batch).
struct How {
    alerts_only: bool,
    metrics: Arc<Metrics>,
    /// With rules and no events written: parse only what the rules read
    /// (and the rules' part of the host object).
    projection: Option<(Projection, Value)>,
}

impl How {
    fn batch<O: Lines>(
        &self,
        batch: Batch<Item>,
        sink: &mut Sink,
        out: &mut NdjsonWriter<O>,
        totals: &mut Totals,
    ) -> anyhow::Result<()> {
        Consumer {
            sink,
            out,
            totals,
            how: self,
        }
        .batch(batch)
    }
}

impl<O: Lines> Consumer<'_, O> {
    fn batch(&mut self, batch: Batch<Item>) -> anyhow::Result<()> {
        self.totals.batches += 1;
        for text in &batch.items {
            if let Err(e) = self.record(text) {
                match e {
                    RecordError::Bad(e) => {
                        self.totals.bad += 1;
                        self.how.metrics.audit_bad_records.inc();
                        warn!(origin = %batch.origin, "skipped a record that is not an audit event: {e}");
                    }
                    RecordError::Output(e) => return Err(e.into()),
                }
            }
        }
        self.out.flush()?;
        if let Some(ack) = batch.ack {
            ack();
        }
        Ok(())
    }

    fn record(&mut self, text: &str) -> Result<(), RecordError> {
        if let Some((projection, host)) = &self.how.projection {
            let views = projection
                .map_line(text, ECS_VERSION)
                .map_err(|e| RecordError::Bad(e.to_string()))?;
            let mut full: Option<Vec<Value>> = None;
            for (i, mut view) in views.into_iter().enumerate() {
                self.totals.events += 1;
                self.how.metrics.audit_events.inc();
                if let (Value::Object(m), false) = (&mut view, host.is_null()) {
                    m.insert("host".into(), host.clone());
                }
                let mut build = || {
                    let docs = full.get_or_insert_with(|| map_line(text).unwrap_or_default());
                    docs.get(i).cloned().unwrap_or(Value::Null)
                };
                self.sink
                    .evaluate_view(&view, &mut build, self.out)
                    .map_err(RecordError::Output)?;
            }
            return Ok(());
        }
        let docs = map_line(text).map_err(RecordError::Bad)?;
        for doc in docs {
            self.totals.events += 1;
            self.how.metrics.audit_events.inc();
            self.sink
                .emit_value(&doc, (!self.how.alerts_only).then_some("audit"), self.out)
                .map_err(RecordError::Output)?;
        }
        Ok(())
    }
}

enum RecordError {
    Bad(String),
    Output(crate::output::ndjson::OutputError),
}

/// Exposed for tests: the ECS document of one raw event.
pub fn map_value(raw: Value) -> Result<Vec<Value>, String> {
    test_mapper("k8s-audit", &raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shared_fixture_maps_without_error() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/k8s-audit");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                for line in std::fs::read_to_string(&p).unwrap().lines() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let docs = map_line(line).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    assert!(!docs.is_empty());
                    n += 1;
                }
            }
        }
        assert!(
            n >= 40,
            "only {n} fixture events found in {}",
            dir.display()
        );
    }
}
