//! `sensor-agent run`: the live loop around the [`Pipeline`].
//!
//! One task drains the ring buffer and pushes every record through the
//! pipeline in order, so events and their alerts leave in kernel order with
//! no queue between stages to overflow. Timers flush output, report drops
//! and publish metrics; SIGINT/SIGTERM detach and print a summary.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};
use tracing::{error, info, warn};

use crate::{
    capture::{CaptureOptions, DropCounts, Sensor, cgroup::CgroupHierarchy},
    cli::RunArgs,
    detect::Detector,
    enrich::{
        container::{CgroupResolver, DEFAULT_CGROUP_CACHE},
        host::{BootClock, HostInfo},
        metadata::{MetadataCache, MetadataConfig},
        proctable::{ProcessTable, TableConfig},
    },
    metrics::{self, Metrics},
    output::{
        ecs::EcsBuilder,
        ndjson::{NdjsonWriter, OutputError},
    },
    pipeline::{MAINTENANCE_INTERVAL, Pipeline, Selection, Totals},
};

/// Records handled before the loop flushes and checks signals and timers,
/// so a sustained storm cannot starve them.
const BATCH: usize = 4096;
/// How often buffered lines are flushed when the ring is quiet.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

fn capture_options(args: &RunArgs) -> anyhow::Result<CaptureOptions> {
    let cgroup = match args.cgroup_hierarchy.as_str() {
        "auto" => None,
        "v2" => Some(CgroupHierarchy::V2),
        c if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') => {
            Some(CgroupHierarchy::V1(c.to_string()))
        }
        other => anyhow::bail!(
            "--cgroup-hierarchy `{other}`: use auto, v2, or a v1 controller name such as memory"
        ),
    };
    Ok(CaptureOptions {
        max_args_bytes: args.max_args_bytes,
        ring_bytes: args.ring_buffer_mib << 20,
        cgroup,
        force_raw_tp: args.force_raw_tp,
    })
}

/// Builds everything user space needs before the first record: rules first
/// (a bad rules directory fails before any kernel work), host context, the
/// process table seeded from /proc.
fn pipeline(args: &RunArgs, sensor: &Sensor, metrics: Arc<Metrics>) -> anyhow::Result<Pipeline> {
    let detector = args.rules.as_deref().map(Detector::load).transpose()?;
    let host = HostInfo::detect();
    let table = ProcessTable::new(TableConfig {
        // entity_id must differ across nodes; the hostname stands in when
        // the node has no machine id.
        host_id: host.id.clone().unwrap_or_else(|| host.hostname.clone()),
        ..TableConfig::default()
    });
    let cgroups = CgroupResolver::new(DEFAULT_CGROUP_CACHE, sensor.cgroup == CgroupHierarchy::V2);
    let metadata = MetadataCache::new(MetadataConfig {
        cri_sockets: args.cri_sockets.clone(),
        ..MetadataConfig::default()
    });
    let ecs = EcsBuilder::new(&host, BootClock::measure());
    let mut p = Pipeline::new(
        table,
        cgroups,
        Some(metadata),
        ecs,
        detector,
        Selection::new(&args.events, args.alerts_only),
        metrics,
    );
    // After attaching: a process started meanwhile is in /proc or in the
    // ring, never in neither.
    let seeded = p.seed_from_proc();
    info!(processes = seeded, "process table seeded from /proc");
    Ok(p)
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let opts = capture_options(&args)?;
    if let Some(dir) = &args.rules
        && !dir.is_dir()
    {
        anyhow::bail!(
            "--rules {}: not a directory of .toml rule files",
            dir.display()
        );
    }
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = args.metrics_addr {
        metrics::serve(addr, metrics.clone())?;
    }
    let mut sensor = Sensor::load(&opts)?;
    let mut pipeline = pipeline(&args, &sensor, metrics.clone())?;
    let ring = sensor.take_ring()?;
    // SAFETY: the RingBuf owns its map fd and keeps it open for as long as
    // the AsyncFd (which owns the RingBuf) lives.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .context("cannot poll the ring buffer")?;
    let mut out = NdjsonWriter::stdout().context("cannot write to stdout")?;

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut flush = tokio::time::interval(FLUSH_INTERVAL);
    let mut report = tokio::time::interval(Duration::from_secs(args.drop_report_secs.max(1)));
    let mut maintain = tokio::time::interval(MAINTENANCE_INTERVAL);
    maintain.tick().await;
    let mut reported = DropCounts::default();

    info!(
        cgroup = %sensor.cgroup,
        hooks = ?sensor.modes,
        rules = args.rules.as_ref().map(|_| "on").unwrap_or("off"),
        "sensor ready: capturing exec/fork/exit"
    );
    let result: Result<(), OutputError> = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                let rb = guard.get_inner_mut();
                let mut handled = 0;
                let mut failed = None;
                while handled < BATCH {
                    let Some(item) = rb.next() else { break };
                    handled += 1;
                    if let Err(e) = pipeline.handle(&item, &mut out) {
                        failed = Some(e);
                        break;
                    }
                }
                // A full batch may leave records behind: stay ready.
                if handled < BATCH {
                    guard.clear_ready();
                }
                if let Some(e) = failed {
                    break Err(e);
                }
                if let Err(e) = out.flush() {
                    break Err(e);
                }
            }
            _ = sigterm.recv() => break Ok(()),
            _ = sigint.recv() => break Ok(()),
            _ = flush.tick() => {
                if let Err(e) = out.flush_if_due() {
                    break Err(e);
                }
            }
            _ = report.tick() => {
                let drops = match sensor.drops() {
                    Ok(d) => d,
                    Err(e) => {
                        warn!("cannot read the drop counters: {e:#}");
                        continue;
                    }
                };
                if drops.total() > reported.total() {
                    warn!(
                        new = drops.total() - reported.total(),
                        total = drops.total(),
                        exec = drops.exec,
                        fork = drops.fork,
                        exit = drops.exit,
                        scratch = drops.scratch,
                        "ring buffer full: events were dropped in the kernel \
                         (raise --ring-buffer-mib or lower the output cost)"
                    );
                    reported = drops;
                }
                pipeline.publish_metrics(drops.total());
            }
            _ = maintain.tick() => {
                let pruned = pipeline.maintain(BootClock::measure());
                if pruned > 0 {
                    info!(pruned, "process table: dropped entries whose exit was lost");
                }
            }
        }
    };
    if let Err(e) = &result {
        error!("stopping: {e}");
    }
    // Whatever the kernel wrote before the signal still counts.
    if result.is_ok() {
        let rb = ring.get_mut();
        while let Some(item) = rb.next() {
            if pipeline.handle(&item, &mut out).is_err() {
                break;
            }
        }
    }
    let flushed = out.flush();
    let drops = sensor.drops()?;
    pipeline.publish_metrics(drops.total());
    print_summary(&pipeline.totals(), &drops, out.lines());
    drop(sensor);
    match (result, flushed) {
        (Err(OutputError::ReaderGone), _) | (Ok(()), Err(OutputError::ReaderGone)) => {
            anyhow::bail!("stdout was closed by its reader; nothing consumes the events")
        }
        (Err(e), _) | (Ok(()), Err(e)) => Err(e).context("writing events"),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// The line tests and operators read at exit (`key=value` pairs).
fn print_summary(t: &Totals, drops: &DropCounts, lines: u64) {
    eprintln!(
        "sensor stopped: events={} exec={} fork={} exit={} alerts={} lines={} drops={} \
         exec_drops={} fork_drops={} exit_drops={} decode_errors={} enrichment_misses={}",
        t.events(),
        t.exec,
        t.fork,
        t.exit,
        t.alerts,
        lines,
        drops.total(),
        drops.exec,
        drops.fork,
        drops.exit,
        t.decode_errors,
        t.enrichment_misses,
    );
}
