//! `sensor-agent run`: the live loop around the [`Pipeline`].
//!
//! One task drains the ring buffer (see `capture::reader` for when) and
//! pushes every record through the pipeline in order, so events and their alerts leave in kernel
//! order with no queue between stages to overflow; output is flushed after
//! each drain. Timers report drops and publish metrics; SIGINT/SIGTERM
//! detach and print a summary.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use sensor_rules::engine::EngineStats;
use sensor_rules::watch::{Actions, WatchSet};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{error, info, warn};

use crate::{
    capture::{
        CaptureOptions, DropCounts, Sensor,
        cgroup::CgroupHierarchy,
        file_hooks::FileHookWay,
        file_watch::{FileScope, FileStats, FileWatch},
        reader::RingReader,
    },
    cli::{FileHooksArg, FileScopeArg, RunArgs},
    detect::{
        Detector,
        watch::{self, RulesWatch},
    },
    enrich::{
        container::{CgroupResolver, DEFAULT_CGROUP_CACHE},
        host::{BootClock, HostInfo},
        metadata::{MetadataCache, MetadataConfig},
        proctable::{ProcessTable, TableConfig},
        users::UserNames,
    },
    kind::Kind,
    metrics::{self, Metrics},
    output::{
        ecs::EcsBuilder,
        ndjson::{self, NdjsonWriter, OutputError},
        queue::{QueueLimits, QueuedLines},
    },
    pipeline::{MAINTENANCE_INTERVAL, Pipeline, Selection, Totals},
};

/// How often the metrics endpoint's counters are brought up to date (and
/// the health heartbeat renewed).
const METRICS_INTERVAL: Duration = Duration::from_secs(1);
/// Records handled before the loop flushes and checks signals and timers,
/// so a sustained storm cannot starve them.
const BATCH: usize = 4096;

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
        // No variable wanted: no environment is read at all.
        max_env_bytes: if args.env_vars.iter().all(String::is_empty) {
            0
        } else {
            args.max_env_bytes
        },
        ring_bytes: args.ring_buffer_mib << 20,
        cgroup,
        tp_btf: args.tp_btf,
        kernel_log_level: kernel_log_level(),
    })
}

/// What the file hooks report: the rules' watch set plus `--file-watch`
/// and `--file-watch-read`, within `--file-actions` and `--file-scope`.
/// The hooks are attached the first time the set is not empty. Returns
/// the set installed.
fn update_file_watch(
    args: &RunArgs,
    detector: Option<&Detector>,
    sensor: &mut Sensor,
    file_watch: &mut Option<FileWatch>,
) -> Option<WatchSet> {
    if args.no_file_hooks {
        return None;
    }
    let mut set = detector.map(Detector::watch_set).unwrap_or_default();
    for p in &args.file_watch {
        set.add(p.clone(), Actions::WRITES);
    }
    for p in &args.file_watch_read {
        set.add(p.clone(), Actions::OPEN_READ);
    }
    if set.is_empty() && file_watch.is_none() {
        info!(
            "file watch set empty: no file rule and no --file-watch; no file record leaves the kernel"
        );
        return None;
    }
    if file_watch.is_none() {
        let way = match args.file_hooks {
            FileHooksArg::Auto => FileHookWay::Auto,
            FileHooksArg::Lsm => FileHookWay::Lsm,
            FileHooksArg::Tracepoint => FileHookWay::Tracepoint,
        };
        match sensor.attach_file_hooks(way) {
            Ok(fw) => *file_watch = Some(fw),
            Err(e) => {
                warn!("file hooks not attached ({e:#}); `file where` rules cannot fire");
                return None;
            }
        }
    }
    let fw = file_watch.as_mut()?;
    let scope = FileScope {
        actions: args.file_actions.iter().fold(Actions::NONE, |a, b| a | *b),
        host: args.file_scope.contains(&FileScopeArg::Host),
        containers: args.file_scope.contains(&FileScopeArg::Container),
    };
    match fw.install(&set, scope) {
        Ok(()) if set.is_empty() => {
            info!(
                "file watch set empty: no file rule and no --file-watch; no file record leaves the kernel"
            )
        }
        Ok(()) => info!(
            patterns = set.patterns.len(),
            every_file = %set.all,
            actions = %set.actions(),
            "file watch set installed"
        ),
        Err(e) => {
            error!("cannot install the file watch set: {e:#}");
            return None;
        }
    }
    Some(set)
}

/// Builds everything user space needs before the first record: host
/// context, the process table seeded from /proc, the metadata cache.
fn pipeline(
    args: &RunArgs,
    sensor: &Sensor,
    detector: Option<Detector>,
    metrics: Arc<Metrics>,
) -> anyhow::Result<Pipeline> {
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
    let env_vars: Vec<String> = args
        .env_vars
        .iter()
        .filter(|v| !v.is_empty())
        .cloned()
        .collect();
    let ecs = EcsBuilder::new(&host, BootClock::measure()).with_env_vars(&env_vars);
    let mut p = Pipeline::new(
        table,
        cgroups,
        Some(metadata),
        ecs,
        detector,
        Selection::new(&args.events, args.alerts_only),
        metrics,
    )
    // The host's passwd through init's root (right in a hostPID DaemonSet
    // and on the host), else our own (on the host, where init's root may
    // be out of reach).
    .with_user_names(UserNames::new(
        std::path::Path::new("/proc"),
        &[
            std::path::Path::new("/proc/1/root"),
            std::path::Path::new("/"),
        ],
    ));
    // After attaching: a process started meanwhile is in /proc or in the
    // ring, never in neither.
    let seeded = p.seed_from_proc();
    info!(processes = seeded, "process table seeded from /proc");
    Ok(p)
}

/// Start-up parses the kernel's BTF (tens of MiB, freed right after) and
/// reads the embedded eBPF object; hand those pages back now, so the
/// resident size is the steady state's.
fn release_startup_memory() {
    crate::capture::loader::release_object_pages();
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Start-up parses the kernel's BTF twice (ours, then aya's for the LSM
/// hooks), each a few MiB of vectors grown by doubling. glibc's dynamic mmap
/// threshold moves those onto the brk heap after the first free, where they
/// stay resident until the trim: a fixed threshold gives them back on free.
/// Measured here: start-up VmHWM 35 944 kB with the dynamic threshold,
/// 30 416 kB with this.
fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes glibc's allocation policy.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    tune_allocator();
    let opts = capture_options(&args)?;
    // Rules first: a bad rules directory fails before any kernel work.
    let engine_config = args.engine.config();
    let mut detector = args
        .rules
        .as_deref()
        .map(|dir| Detector::load(dir, engine_config))
        .transpose()?;
    // new_terms rules remember their terms across restarts when given a place.
    let state_dir = args.engine.state_dir.clone();
    if let (Some(d), Some(dir)) = (detector.as_mut(), &state_dir) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        d.restore_state(dir)?;
    }
    let metrics = Arc::new(Metrics::new());
    if let Some(addr) = args.metrics_addr {
        metrics::serve(addr, metrics.clone())?;
    }
    let _stats = args
        .bpf_stats
        .then(crate::capture::enable_program_stats)
        .transpose()?;
    let mut sensor = Sensor::load(&opts)?;
    if let Some(logger) = sensor.take_kernel_logger(opts.kernel_log_level)? {
        spawn_kernel_log(logger)?;
    }
    let mut file_watch = None;
    let watch = update_file_watch(&args, detector.as_ref(), &mut sensor, &mut file_watch);
    let mut pipeline = pipeline(&args, &sensor, detector, metrics.clone())?;
    if let Some(w) = watch {
        pipeline.set_file_watch(w);
    }
    release_startup_memory();
    let ring = sensor.take_ring()?;
    let mut reader = RingReader::new(
        ring,
        sensor.take_reader_state()?,
        Duration::from_millis(args.poll_interval_ms),
    )?;
    let queue = QueuedLines::spawn(
        ndjson::stdout_file().context("cannot write to stdout")?,
        queue_limits(&args)?,
    )
    .context("cannot start the output thread")?;
    let mut out = NdjsonWriter::over(queue, ndjson::DEFAULT_FLUSH_INTERVAL);

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sighup = signal(SignalKind::hangup())?;
    // The rules directory is watched for changes; SIGHUP reloads too.
    let mut watch = match &args.rules {
        Some(dir) => match RulesWatch::new(dir) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(
                    "cannot watch {} for changes ({e}); send SIGHUP to reload the rules",
                    dir.display()
                );
                None
            }
        },
        None => None,
    };
    let mut reload_at: Option<tokio::time::Instant> = None;
    let mut report = tokio::time::interval(Duration::from_secs(args.drop_report_secs.max(1)));
    let mut publish = tokio::time::interval(METRICS_INTERVAL);
    let mut maintain = tokio::time::interval(MAINTENANCE_INTERVAL);
    let mut save = tokio::time::interval(crate::detect::STATE_SAVE_INTERVAL);
    maintain.tick().await;
    let mut reported = DropCounts::default();

    info!(
        cgroup = %sensor.cgroup,
        hooks = ?sensor.modes,
        rules = args.rules.as_ref().map(|_| "on").unwrap_or("off"),
        "sensor ready: capturing exec/fork/exit{}",
        if file_watch.is_some() { " and watched file activity" } else { "" }
    );
    let result: Result<(), OutputError> = loop {
        tokio::select! {
            ready = reader.ready() => {
                if let Err(e) = ready {
                    error!("cannot wait on the ring buffer: {e}");
                    break Ok(());
                }
                let alerts = pipeline.totals().alerts;
                if let Err(e) = reader.drain(BATCH, |rec| pipeline.handle(rec, &mut out)) {
                    break Err(e);
                }
                // Alerts leave at once; events within the flush interval, or
                // before the reader sleeps, so none is held back while idle.
                let flushed = if pipeline.totals().alerts > alerts || reader.asleep() {
                    out.flush()
                } else {
                    out.flush_if_due().map(|_| ())
                };
                if let Err(e) = flushed {
                    break Err(e);
                }
            }
            _ = sigterm.recv() => break Ok(()),
            _ = sigint.recv() => break Ok(()),
            // Reloads run between two drains: no record is evaluated twice
            // or skipped across the swap.
            _ = sighup.recv() => reload_rules(&args, &mut pipeline, &mut sensor, &mut file_watch),
            changed = async { watch.as_mut().expect("guarded").changed().await }, if watch.is_some() => {
                if let Err(e) = changed {
                    warn!("rules directory watch failed ({e}); send SIGHUP to reload the rules");
                    watch = None;
                }
                reload_at = Some(tokio::time::Instant::now() + watch::SETTLE);
            }
            _ = tokio::time::sleep_until(reload_at.unwrap_or_else(tokio::time::Instant::now)), if reload_at.is_some() => {
                reload_at = None;
                reload_rules(&args, &mut pipeline, &mut sensor, &mut file_watch);
            }
            _ = report.tick() => {
                let drops = match all_drops(&sensor, file_watch.as_ref()) {
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
                        exec = drops.by_kind[Kind::Exec],
                        fork = drops.by_kind[Kind::Fork],
                        exit = drops.by_kind[Kind::Exit],
                        file = drops.by_kind[Kind::File],
                        scratch = drops.scratch,
                        "ring buffer full: events were dropped in the kernel \
                         (raise --ring-buffer-mib or lower the output cost)"
                    );
                    reported = drops;
                }
            }
            _ = publish.tick() => {
                let drops = all_drops(&sensor, file_watch.as_ref()).map(|d| d.total()).unwrap_or(0);
                pipeline.publish_metrics(drops);
                metrics.set_shed(out.shed());
                // Event time is the wall clock here: due windows close on an idle node too.
                if let Err(e) = pipeline
                    .advance(wall_clock_ns(), &mut out)
                    .and_then(|()| out.flush())
                {
                    break Err(e);
                }
            }
            _ = save.tick() => {
                if let (Some(d), Some(dir)) = (pipeline.detector_mut(), &state_dir) {
                    d.save_state(dir).unwrap_or_else(|e| warn!("{e:#}"));
                }
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
        let _ = reader.drain_all(|rec| pipeline.handle(rec, &mut out));
        // Held sequences and suppression counts are written, never lost.
        let _ = pipeline.finish(&mut out);
    }
    if let (Some(d), Some(dir)) = (pipeline.detector_mut(), &state_dir) {
        d.save_state(dir).unwrap_or_else(|e| warn!("{e:#}"));
    }
    // Waits for the writer thread: everything accepted is written.
    let flushed = out
        .flush()
        .and_then(|()| out.destination().finish().map_err(OutputError::from));
    let drops = all_drops(&sensor, file_watch.as_ref())?;
    pipeline.publish_metrics(drops.total());
    metrics.set_shed(out.shed());
    let file_stats = file_watch
        .as_ref()
        .map(|fw| fw.stats().unwrap_or_default())
        .unwrap_or_default();
    print_summary(
        &pipeline.totals(),
        &pipeline.engine_stats().unwrap_or_default(),
        &drops,
        &file_stats,
        &out,
    );
    if args.bpf_stats {
        for s in sensor.program_stats() {
            eprintln!(
                "kernel program {}: runs={} time_ns={} ns_per_run={}",
                s.hook,
                s.runs,
                s.run_time.as_nanos(),
                s.run_time.as_nanos() / u128::from(s.runs.max(1))
            );
        }
    }
    drop(sensor);
    match (result, flushed) {
        (Err(OutputError::ReaderGone), _) | (Ok(()), Err(OutputError::ReaderGone)) => {
            anyhow::bail!("stdout was closed by its reader; nothing consumes the events")
        }
        (Err(e), _) | (Ok(()), Err(e)) => Err(e).context("writing events"),
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn wall_clock_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// SIGHUP or a change to the rules directory: swap in the new set, or keep
/// the old one if the new one has an error (logged with `file:line:col`).
fn reload_rules(
    args: &RunArgs,
    pipeline: &mut Pipeline,
    sensor: &mut Sensor,
    file_watch: &mut Option<FileWatch>,
) {
    let (Some(dir), Some(detector)) = (&args.rules, pipeline.detector_mut()) else {
        info!("reload requested, but no --rules directory is loaded");
        return;
    };
    match detector.reload(dir) {
        // The kernel filter follows the new rules.
        Ok(_) => {
            if let Some(w) = update_file_watch(args, Some(detector), sensor, file_watch) {
                pipeline.set_file_watch(w);
            }
        }
        Err(e) => error!("{e:#}"),
    }
}

/// The aya-log level for the kernel programs: what `--log-level` enables
/// for the `sensor_ebpf` target, counting only debug and trace (the kernel
/// side logs nothing above debug), so it is off unless asked for.
fn kernel_log_level() -> u8 {
    if tracing::enabled!(target: "sensor_ebpf", tracing::Level::TRACE) {
        5
    } else if tracing::enabled!(target: "sensor_ebpf", tracing::Level::DEBUG) {
        4
    } else {
        0
    }
}

/// Forwards the kernel programs' log records into our log as they come.
fn spawn_kernel_log(logger: aya_log::EbpfLogger<&'static dyn log::Log>) -> anyhow::Result<()> {
    // SAFETY: the logger owns its ring buffer's fd and keeps it open for as
    // long as the AsyncFd (which owns the logger) lives.
    let mut fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE)
    }
    .context("cannot poll the kernel programs' log")?;
    info!("kernel-side logging on (target sensor_ebpf)");
    tokio::spawn(async move {
        loop {
            match fd.readable_mut().await {
                Ok(mut guard) => {
                    guard.get_inner_mut().flush();
                    guard.clear_ready();
                }
                Err(e) => {
                    warn!("kernel log reader stopped: {e}");
                    break;
                }
            }
        }
    });
    Ok(())
}

fn queue_limits(args: &RunArgs) -> anyhow::Result<QueueLimits> {
    if args.alert_queue_mib < args.output_queue_mib {
        anyhow::bail!(
            "--alert-queue-mib {} is below --output-queue-mib {}: alerts would be shed before events",
            args.alert_queue_mib,
            args.output_queue_mib
        );
    }
    Ok(QueueLimits {
        event_bytes: args.output_queue_mib << 20,
        alert_bytes: args.alert_queue_mib << 20,
    })
}

/// The line tests and operators read at exit (`key=value` pairs; per kind
/// `<kind>=`, `<kind>_shed=` and `<kind>_drops=`).
fn print_summary<O: ndjson::Lines>(
    t: &Totals,
    e: &EngineStats,
    drops: &DropCounts,
    file: &FileStats,
    out: &NdjsonWriter<O>,
) {
    let shed: u64 = out.shed().iter().map(|(_, n)| n).sum();
    let mut f: Vec<(String, u64)> = vec![("events".into(), t.events())];
    f.extend(Kind::ALL.map(|k| (k.summary_name().to_string(), t.of(k))));
    f.extend([
        ("alerts".into(), t.alerts),
        ("alerts_suppressed".into(), e.suppressed),
        ("alerts_capped".into(), e.capped),
        ("sequences".into(), e.sequences),
        ("lines".into(), out.lines()),
        ("shed".into(), shed),
    ]);
    f.extend(Kind::ALL.map(|k| (format!("{}_shed", k.name()), out.shed_of(k.name()))));
    f.extend([
        ("alerts_shed".into(), out.shed_of("alert")),
        ("drops".into(), drops.total()),
    ]);
    f.extend(Kind::ALL.map(|k| (format!("{}_drops", k.summary_name()), drops.by_kind[k])));
    f.extend([
        ("file_seen".into(), file.seen),
        ("file_unwatched".into(), file.unwatched),
        ("file_emitted".into(), file.emitted),
        ("file_truncated".into(), file.truncated),
        ("file_failed".into(), t.file_failed),
        ("file_outside_watch".into(), t.file_outside_watch),
        ("decode_errors".into(), t.decode_errors),
        ("enrichment_misses".into(), t.enrichment_misses),
    ]);
    let line: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("sensor stopped: {}", line.join(" "));
}

/// The kernel's drop counters, the file hooks' included.
fn all_drops(sensor: &Sensor, file_watch: Option<&FileWatch>) -> anyhow::Result<DropCounts> {
    let mut d = sensor.drops()?;
    if let Some(fw) = file_watch {
        d.by_kind[Kind::File] = fw.stats()?.dropped;
    }
    Ok(d)
}
