//! `sensor-agent run`: the live pipeline.
//!
//! One task drains the ring buffer and pushes every record through
//! decode → enrich → detect → output in order, so events and their alerts
//! leave in kernel order with no queue between stages to overflow.

use std::time::Duration;

use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};
use tracing::{info, warn};

use crate::{
    capture::{CaptureOptions, DropCounts, Sensor, cgroup::CgroupHierarchy},
    cli::RunArgs,
    decode::{self, Record},
};

/// Counters reported at exit and on the metrics endpoint.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub exec: u64,
    pub fork: u64,
    pub exit: u64,
    pub decode_errors: u64,
    pub alerts: u64,
}

impl Totals {
    pub fn events(&self) -> u64 {
        self.exec + self.fork + self.exit
    }
}

fn capture_options(args: &RunArgs) -> anyhow::Result<CaptureOptions> {
    let cgroup = match args.cgroup_hierarchy.as_str() {
        "auto" => None,
        "v2" => Some(CgroupHierarchy::V2),
        c if c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') => {
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

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let opts = capture_options(&args)?;
    let mut sensor = Sensor::load(&opts)?;
    let ring = sensor.take_ring()?;
    // SAFETY: the RingBuf owns its map fd and keeps it open for as long as
    // the AsyncFd (which owns the RingBuf) lives.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| anyhow::anyhow!("cannot poll the ring buffer: {e}"))?;

    let mut totals = Totals::default();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(args.drop_report_secs.max(1)));
    let mut reported = DropCounts::default();

    info!(
        cgroup = %sensor.cgroup,
        hooks = ?sensor.modes,
        "sensor ready: capturing exec/fork/exit"
    );
    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                let rb = guard.get_inner_mut();
                while let Some(item) = rb.next() {
                    handle(&item, &mut totals, &mut out);
                }
                guard.clear_ready();
                std::io::Write::flush(&mut out)?;
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = tick.tick() => {
                let drops = sensor.drops()?;
                if drops.total() > reported.total() {
                    warn!(?drops, "ring buffer full: events were dropped in the kernel");
                    reported = drops;
                }
            }
        }
    }
    // Whatever the kernel wrote before the signal still counts.
    let rb = ring.get_mut();
    while let Some(item) = rb.next() {
        handle(&item, &mut totals, &mut out);
    }
    std::io::Write::flush(&mut out)?;
    let drops = sensor.drops()?;
    eprintln!(
        "sensor stopped: events={} exec={} fork={} exit={} alerts={} drops={} exec_drops={} decode_errors={}",
        totals.events(),
        totals.exec,
        totals.fork,
        totals.exit,
        totals.alerts,
        drops.total(),
        drops.exec,
        totals.decode_errors,
    );
    Ok(())
}

fn handle(bytes: &[u8], totals: &mut Totals, out: &mut impl std::io::Write) {
    match decode::decode(bytes) {
        Ok(Record::Exec(e)) => {
            totals.exec += 1;
            let v = serde_json::json!({
                "event": {"action": "exec"},
                "process": {
                    "pid": e.task.tgid, "ppid": e.task.ppid, "args": e.args,
                    "args_truncated": e.args_truncated, "args_original_bytes": e.args_original_bytes,
                    "executable": e.filename, "exe": e.exe_path, "interactive": e.interactive,
                    "tty": e.tty.as_ref().map(|t| serde_json::json!({"major": t.device.major, "minor": t.device.minor, "name": t.name})),
                    "sid": e.task.sid, "pgid": e.task.pgid, "vpid": e.task.ns_tgid, "pidns": e.task.pidns_inum,
                    "uid": e.task.uid, "euid": e.task.euid, "start": e.task.start_boottime_ns, "comm": e.task.comm,
                },
                "cgroup": {"id": e.cgroup_id, "leaf_first": e.cgroup_leaf_first},
            });
            let _ = writeln!(out, "{v}");
        }
        Ok(Record::Fork(_)) => totals.fork += 1,
        Ok(Record::Exit(_)) => totals.exit += 1,
        Err(e) => {
            totals.decode_errors += 1;
            warn!("undecodable record skipped: {e}");
        }
    }
}
