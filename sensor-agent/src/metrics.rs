//! Self-metrics: Prometheus text at `/metrics`, liveness at `/healthz`.
//!
//! Served from a plain thread with tiny_http so a stalled scrape can never
//! hold up the event loop.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tracing::{info, warn};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabel {
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

/// Every counter the agent exports. Cheap to update from the hot loop.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub events: Family<ActionLabel, Counter>,
    pub output_shed: Family<KindLabel, Counter>,
    pub ringbuf_drops: Counter,
    pub alerts: Family<RuleLabel, Counter>,
    pub decode_errors: Counter,
    pub enrichment_misses: Counter,
    pub rule_eval_seconds: Histogram,
    pub process_table_size: Gauge,
    pub alerts_suppressed: Counter,
    pub alerts_capped: Counter,
    pub sequences_matched: Counter,
    pub sequence_partials: Gauge,
    pub sequence_partials_evicted: Counter,
    pub sequence_partials_expired: Counter,
    pub new_terms_evicted: Counter,
    pub audit_events: Counter,
    pub audit_bad_records: Counter,
    pub audit_batches_rejected: Counter,
    /// Unix seconds of the last ring-buffer poll; /healthz fails when stale.
    heartbeat: AtomicU64,
}

/// /healthz fails when the event loop has not polled for this long.
const STALE_AFTER: Duration = Duration::from_secs(30);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self {
            registry: Mutex::new(Registry::with_prefix("sensor")),
            events: Family::default(),
            output_shed: Family::default(),
            ringbuf_drops: Counter::default(),
            alerts: Family::default(),
            decode_errors: Counter::default(),
            enrichment_misses: Counter::default(),
            // 1 µs .. ~16 ms in powers of two: rule evaluation is sub-µs to µs.
            rule_eval_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(1e-6, 2.0, 15),
            ),
            process_table_size: Gauge::default(),
            alerts_suppressed: Counter::default(),
            alerts_capped: Counter::default(),
            sequences_matched: Counter::default(),
            sequence_partials: Gauge::default(),
            sequence_partials_evicted: Counter::default(),
            sequence_partials_expired: Counter::default(),
            new_terms_evicted: Counter::default(),
            audit_events: Counter::default(),
            audit_bad_records: Counter::default(),
            audit_batches_rejected: Counter::default(),
            heartbeat: AtomicU64::new(now_secs()),
        };
        {
            let mut r = m.registry.lock().unwrap();
            r.register(
                "events",
                "Process events written, by action",
                m.events.clone(),
            );
            r.register(
                "output_shed",
                "Lines not written because the output queue was full (a stalled reader), by kind",
                m.output_shed.clone(),
            );
            r.register(
                "ringbuf_drops",
                "Events lost in the kernel because the ring buffer was full",
                m.ringbuf_drops.clone(),
            );
            r.register("alerts", "Alerts written, by rule name", m.alerts.clone());
            r.register(
                "decode_errors",
                "Ring-buffer records that could not be decoded",
                m.decode_errors.clone(),
            );
            r.register(
                "enrichment_misses",
                "Container metadata look-ups not yet answered when the event was written",
                m.enrichment_misses.clone(),
            );
            r.register(
                "rule_eval_seconds",
                "Time to evaluate all rules against one event (one event in 16 is timed)",
                m.rule_eval_seconds.clone(),
            );
            r.register(
                "process_table_size",
                "Processes tracked in the process table",
                m.process_table_size.clone(),
            );
            for (name, help, c) in [
                (
                    "alerts_suppressed",
                    "Alerts folded into an open suppression window (counted in its count alert)",
                    &m.alerts_suppressed,
                ),
                (
                    "alerts_capped",
                    "Alerts not written because one (rule, container) passed its rate cap",
                    &m.alerts_capped,
                ),
                (
                    "sequences_matched",
                    "EQL sequences matched",
                    &m.sequences_matched,
                ),
                (
                    "sequence_partials_evicted",
                    "Partial sequences evicted because a rule reached its state cap",
                    &m.sequence_partials_evicted,
                ),
                (
                    "sequence_partials_expired",
                    "Partial sequences dropped at maxspan (or the horizon)",
                    &m.sequence_partials_expired,
                ),
                (
                    "new_terms_evicted",
                    "Term combinations a new_terms rule forgot at its cap",
                    &m.new_terms_evicted,
                ),
                (
                    "audit_events",
                    "Kubernetes audit events read (webhook, log file or stdin)",
                    &m.audit_events,
                ),
                (
                    "audit_bad_records",
                    "Audit records that were not JSON audit events (skipped, logged)",
                    &m.audit_bad_records,
                ),
                (
                    "audit_batches_rejected",
                    "Webhook batches answered 503 because the queue was full (the API server retries)",
                    &m.audit_batches_rejected,
                ),
            ] {
                r.register(name, help, c.clone());
            }
            r.register(
                "sequence_partials",
                "Partial sequences held, over all rules",
                m.sequence_partials.clone(),
            );
        }
        m
    }

    /// Adds `n` events of `action` (the pipeline publishes deltas).
    pub fn events_by(&self, action: &str, n: u64) {
        self.events
            .get_or_create(&ActionLabel {
                action: action.to_string(),
            })
            .inc_by(n);
    }

    /// Brings `sensor_output_shed_total{kind}` up to the writer's totals.
    pub fn set_shed(&self, shed: &[(&'static str, u64)]) {
        for (kind, n) in shed {
            let c = self.output_shed.get_or_create(&KindLabel {
                kind: kind.to_string(),
            });
            let was = c.get();
            if *n > was {
                c.inc_by(n - was);
            }
        }
    }

    pub fn alert(&self, rule: &str) {
        self.alerts
            .get_or_create(&RuleLabel {
                rule: rule.to_string(),
            })
            .inc();
    }

    /// Brings the engine's counters up to its totals.
    pub fn set_engine(&self, e: &sensor_rules::engine::EngineStats) {
        for (c, total) in [
            (&self.alerts_suppressed, e.suppressed),
            (&self.alerts_capped, e.capped),
            (&self.sequences_matched, e.sequences),
            (&self.sequence_partials_evicted, e.partials_evicted),
            (&self.sequence_partials_expired, e.partials_expired),
            (&self.new_terms_evicted, e.new_terms_evicted),
        ] {
            let now = c.get();
            if total > now {
                c.inc_by(total - now);
            }
        }
        self.sequence_partials.set(e.partials as i64);
    }

    pub fn beat(&self) {
        self.heartbeat.store(now_secs(), Ordering::Relaxed);
    }

    pub fn healthy(&self) -> bool {
        now_secs().saturating_sub(self.heartbeat.load(Ordering::Relaxed)) < STALE_AFTER.as_secs()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        encode(&mut s, &self.registry.lock().unwrap()).expect("writing to a String cannot fail");
        s
    }
}

/// Serves `/metrics` and `/healthz` on `addr` from a background thread.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for metrics: {e}"))?;
    info!(%addr, "serving /metrics and /healthz");
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                let (code, body, ctype) = match req.url() {
                    "/metrics" => (
                        200,
                        metrics.render(),
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                    "/healthz" if metrics.healthy() => (200, "ok\n".to_string(), "text/plain"),
                    "/healthz" => (503, "event loop stalled\n".to_string(), "text/plain"),
                    _ => (404, "try /metrics or /healthz\n".to_string(), "text/plain"),
                };
                let header =
                    tiny_http::Header::from_bytes("Content-Type", ctype).expect("static header");
                let resp = tiny_http::Response::from_string(body)
                    .with_status_code(code)
                    .with_header(header);
                if let Err(e) = req.respond(resp) {
                    warn!("metrics response failed: {e}");
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric() {
        let m = Metrics::new();
        m.events_by("exec", 1);
        m.alert("Some Rule");
        m.rule_eval_seconds.observe(2e-6);
        let text = m.render();
        for name in [
            "sensor_events_total{action=\"exec\"} 1",
            "sensor_alerts_total{rule=\"Some Rule\"} 1",
            "sensor_ringbuf_drops_total",
            "sensor_decode_errors_total",
            "sensor_enrichment_misses_total",
            "sensor_rule_eval_seconds_bucket",
            "sensor_process_table_size",
        ] {
            assert!(text.contains(name), "missing {name} in:\n{text}");
        }
    }

    #[test]
    fn served_over_http_on_loopback() {
        let m = Arc::new(Metrics::new());
        m.events_by("fork", 1);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        serve(addr, m).unwrap();
        let get = |path: &str| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).unwrap();
            body
        };
        let metrics = get("/metrics");
        assert!(
            metrics.starts_with("HTTP/1.0 200") || metrics.starts_with("HTTP/1.1 200"),
            "{metrics}"
        );
        assert!(metrics.contains("sensor_events_total{action=\"fork\"} 1"));
        assert!(get("/healthz").contains("ok"));
    }
}
