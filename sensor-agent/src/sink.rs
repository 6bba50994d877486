//! The one place documents end up, whichever source they came from: the
//! rule engine first (alerts), then the NDJSON output. The kernel pipeline
//! and the audit source each hand their ECS documents to a [`Sink`].

use std::{sync::Arc, time::Instant};

use sensor_rules::engine::EngineStats;
use serde::Serialize;
use serde_json::Value;

use crate::{
    detect::Detector,
    metrics::Metrics,
    output::ndjson::{Lines, NdjsonWriter, OutputError},
};

/// Evaluations per timed one (`sensor_rule_eval_seconds` is a sample).
pub const TIMING_SAMPLE: u64 = 16;

/// Detect and output: a document's alerts, then its lines.
pub struct Sink {
    evaluated: u64,
    detector: Option<Detector>,
    metrics: Arc<Metrics>,
    alerts: u64,
    /// Alert documents of the document at hand (reused).
    pending: Vec<Value>,
}

impl Sink {
    pub fn new(detector: Option<Detector>, metrics: Arc<Metrics>) -> Sink {
        Sink {
            evaluated: 0,
            detector,
            metrics,
            alerts: 0,
            pending: Vec::new(),
        }
    }

    /// Alert lines written so far.
    pub fn alerts(&self) -> u64 {
        self.alerts
    }

    pub fn detector_mut(&mut self) -> Option<&mut Detector> {
        self.detector.as_mut()
    }

    /// The rule engine's counters, if rules run.
    pub fn engine_stats(&self) -> Option<EngineStats> {
        self.detector.as_ref().map(Detector::stats)
    }

    /// Runs `eval` on the detector (if rules run). One evaluation in
    /// [`TIMING_SAMPLE`] is timed for the metrics' histogram: two clock
    /// reads per event were measurable in an exec storm.
    fn detect(&mut self, eval: impl FnOnce(&mut Detector, &mut Vec<Value>)) {
        if let Some(detector) = &mut self.detector {
            self.evaluated += 1;
            if !self.evaluated.is_multiple_of(TIMING_SAMPLE) {
                eval(detector, &mut self.pending);
                return;
            }
            let started = Instant::now();
            eval(detector, &mut self.pending);
            self.metrics
                .rule_eval_seconds
                .observe(started.elapsed().as_secs_f64());
        }
    }

    /// Evaluates `doc` (`index` answers the rule index's fields and its
    /// time; the rest is captured only if a rule may match), then writes
    /// `written` (its output form, with its kind) followed by its alerts.
    pub fn emit<T: Serialize + ?Sized, U: Serialize + ?Sized, O: Lines>(
        &mut self,
        doc: &T,
        index: &dyn sensor_rules::Document,
        written: Option<(&U, &'static str)>,
        out: &mut NdjsonWriter<O>,
    ) -> Result<(), OutputError> {
        self.detect(|d, pending| d.evaluate_indexed(doc, index, pending));
        if let Some((w, kind)) = written {
            out.write_event(w, kind)?;
        }
        self.write_pending(out)
    }

    /// [`Sink::emit`] for a JSON tree: rules read it directly.
    pub fn emit_value<O: Lines>(
        &mut self,
        doc: &Value,
        write: Option<&'static str>,
        out: &mut NdjsonWriter<O>,
    ) -> Result<(), OutputError> {
        self.detect(|d, pending| d.evaluate_value(doc, pending));
        if let Some(kind) = write {
            out.write_event(doc, kind)?;
        }
        self.write_pending(out)
    }

    /// Evaluates a view of a document that is not written (alerts only);
    /// `full` builds the document for an alert.
    pub fn evaluate_view<O: Lines>(
        &mut self,
        view: &Value,
        full: &mut dyn FnMut() -> Value,
        out: &mut NdjsonWriter<O>,
    ) -> Result<(), OutputError> {
        self.detect(|d, pending| d.evaluate_view(view, full, pending));
        self.write_pending(out)
    }

    fn write_pending<O: Lines>(&mut self, out: &mut NdjsonWriter<O>) -> Result<(), OutputError> {
        for alert in self.pending.drain(..) {
            self.alerts += 1;
            self.metrics
                .alert(alert["rule"]["name"].as_str().unwrap_or(""));
            out.write(&alert)?;
        }
        Ok(())
    }

    /// Writes what the engine closes at event time `now_ns` (or, with
    /// `None`, everything still open: the stream ends).
    pub fn close<O: Lines>(
        &mut self,
        now_ns: Option<i64>,
        out: &mut NdjsonWriter<O>,
    ) -> Result<(), OutputError> {
        if let Some(detector) = &mut self.detector {
            match now_ns {
                Some(ns) => detector.advance(ns, &mut self.pending),
                None => detector.finish(&mut self.pending),
            }
            detector.log_notices();
        }
        self.write_pending(out)
    }
}
