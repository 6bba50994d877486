//! One ring-buffer record in, its NDJSON lines out:
//! decode → enrich (process tree, container, host) → detect → output.
//!
//! Kept free of the kernel and of tokio's I/O so it is unit-tested with
//! hand-built records; `run` feeds it from the ring buffer.

use std::{collections::HashMap, sync::Arc, time::Duration};

use sensor_rules::{
    engine::EngineStats,
    watch::{Actions, WatchSet},
};
use tracing::warn;

use crate::{
    decode::{self, FileRecord, Record},
    detect::Detector,
    enrich::{
        container::{CgroupResolver, ContainerRef, container_id_from_proc_cgroup},
        host::BootClock,
        metadata::{ContainerContext, MetadataCache},
        proctable::{ProcessTable, ProcessView},
        users::UserNames,
    },
    kind::{Kind, PerKind},
    metrics::Metrics,
    output::{
        ecs::{EcsBuilder, EcsDoc},
        ndjson::{Lines, NdjsonWriter, OutputError},
    },
    sink::Sink,
};

/// Counters for the exit summary (and, as deltas, the metrics endpoint).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Records handled, by kind (file: operations reported).
    pub by_kind: PerKind<u64>,
    /// File operations seen at syscall entry whose syscall then failed.
    pub file_failed: u64,
    /// Pending file operations given up on (their exit never came).
    pub file_unresolved: u64,
    /// File operations whose name the kernel could not match (dot
    /// segments) and that, normalised here, no watch covers.
    pub file_outside_watch: u64,
    pub decode_errors: u64,
    pub alerts: u64,
    /// Container events written before their runtime metadata was known.
    pub enrichment_misses: u64,
}

impl Totals {
    pub fn events(&self) -> u64 {
        self.by_kind.iter().map(|(_, n)| n).sum()
    }

    pub fn of(&self, k: Kind) -> u64 {
        self.by_kind[k]
    }
}

/// Which documents go to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    written: PerKind<bool>,
    /// Write alerts only, no events.
    pub alerts_only: bool,
}

impl Selection {
    pub fn new(kinds: &[Kind], alerts_only: bool) -> Self {
        Self {
            written: PerKind::from_fn(|k| kinds.contains(&k)),
            alerts_only,
        }
    }

    /// The kind's name when its events are written, `None` otherwise.
    fn writes(&self, kind: Kind) -> Option<&'static str> {
        (self.written[kind] && !self.alerts_only).then_some(kind.name())
    }
}

impl Default for Selection {
    fn default() -> Self {
        Self::new(&Kind::ALL, false)
    }
}

pub struct Pipeline {
    table: ProcessTable,
    cgroups: CgroupResolver,
    metadata: Option<Arc<MetadataCache>>,
    ecs: EcsBuilder,
    sink: Sink,
    users: Option<UserNames>,
    select: Selection,
    metrics: Arc<Metrics>,
    totals: Totals,
    published: Totals,
    /// File operations seen at entry, by thread, until their exit.
    pending: HashMap<u32, FileRecord>,
    /// What the kernel watches, for the paths it could not match itself.
    watch: Option<WatchSet>,
}

/// Threads inside a reported file syscall at once; a thread has one at a
/// time, so this bounds only what lost exits leave behind.
const MAX_PENDING_FILE_OPS: usize = 8192;

impl Pipeline {
    pub fn new(
        table: ProcessTable,
        cgroups: CgroupResolver,
        metadata: Option<Arc<MetadataCache>>,
        ecs: EcsBuilder,
        detector: Option<Detector>,
        select: Selection,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            table,
            cgroups,
            metadata,
            ecs,
            sink: Sink::new(detector, metrics.clone()),
            users: None,
            select,
            metrics,
            totals: Totals::default(),
            published: Totals::default(),
            pending: HashMap::new(),
            watch: None,
        }
    }

    /// The watch set the kernel filters by (after each change).
    pub fn set_file_watch(&mut self, set: WatchSet) {
        self.watch = Some(set);
    }

    /// Resolve `user.name` through these passwd files.
    pub fn with_user_names(mut self, users: UserNames) -> Self {
        self.users = Some(users);
        self
    }

    pub fn totals(&self) -> Totals {
        Totals {
            alerts: self.sink.alerts(),
            ..self.totals
        }
    }

    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    /// The rule engine's counters (suppressed, sequences, ...), if rules run.
    pub fn engine_stats(&self) -> Option<EngineStats> {
        self.sink.engine_stats()
    }

    pub fn detector_mut(&mut self) -> Option<&mut Detector> {
        self.sink.detector_mut()
    }

    /// Event time is `now_ns` (wall clock, on a timer): closes suppression
    /// windows and writes sequences held by a trailing missing stage, so an
    /// idle node still gets its count alerts.
    pub fn advance<O: Lines>(
        &mut self,
        now_ns: i64,
        out: &mut NdjsonWriter<O>,
    ) -> Result<(), OutputError> {
        self.sink.close(Some(now_ns), out)
    }

    /// The agent stops: every open window closes with its count alert.
    pub fn finish<O: Lines>(&mut self, out: &mut NdjsonWriter<O>) -> Result<(), OutputError> {
        self.sink.close(None, out)
    }

    /// Loads the processes already running, with their container ids.
    pub fn seed_from_proc(&mut self) -> usize {
        self.table.seed_from_proc(&container_id_from_proc_cgroup)
    }

    /// Periodic upkeep: re-measure the boot→wall clock (NTP steps), drop
    /// table entries whose exit was lost.
    pub fn maintain(&mut self, clock: BootClock) -> usize {
        self.ecs.set_clock(clock);
        self.table.prune()
    }

    /// Decodes one record and writes its event and alert lines. A record
    /// that does not decode is counted and skipped; only output errors stop.
    pub fn handle<O: Lines>(
        &mut self,
        bytes: &[u8],
        out: &mut NdjsonWriter<O>,
    ) -> Result<(), OutputError> {
        match decode::decode(bytes) {
            Ok(Record::Exec(mut rec)) => {
                // Once: every later pass over the block sees the kept few.
                rec.retain_env(|n| self.ecs.keeps_env(n));
                self.totals.by_kind[Kind::Exec] += 1;
                let container = self
                    .cgroups
                    .resolve(rec.cgroup_id, &rec.cgroup_leaf_first)
                    .cloned();
                let ctx = container.as_ref().map(|c| self.context(c));
                let view = self.table.on_exec(&rec, container);
                let name = self.user_name(&view);
                let doc = self
                    .ecs
                    .exec(&rec, &view, ctx.as_ref())
                    .with_user_name(name.as_deref());
                emit(&mut self.sink, self.select, doc, Kind::Exec, out)
            }
            Ok(Record::Fork(rec)) => {
                self.totals.by_kind[Kind::Fork] += 1;
                // Kernel threads are not tracked and not reported.
                let Some(view) = self.table.on_fork(&rec) else {
                    return Ok(());
                };
                let ctx = self.context_of(&view);
                let name = self.user_name(&view);
                let doc = self
                    .ecs
                    .fork(&rec, &view, ctx.as_ref())
                    .with_user_name(name.as_deref());
                emit(&mut self.sink, self.select, doc, Kind::Fork, out)
            }
            Ok(Record::Exit(rec)) => {
                self.totals.by_kind[Kind::Exit] += 1;
                let view = self.table.on_exit(&rec);
                let ctx = self.context_of(&view);
                let name = self.user_name(&view);
                let doc = self
                    .ecs
                    .end(&rec, &view, ctx.as_ref())
                    .with_user_name(name.as_deref());
                emit(&mut self.sink, self.select, doc, Kind::Exit, out)
            }
            // Seen at syscall entry: an event once its exit says it worked.
            Ok(Record::File(rec)) if rec.pending => {
                if self.pending.len() >= MAX_PENDING_FILE_OPS {
                    // Exits lost (or never sent): start over rather than grow.
                    self.totals.file_unresolved += self.pending.len() as u64;
                    self.pending.clear();
                }
                self.pending.insert(rec.task.pid, rec);
                Ok(())
            }
            Ok(Record::File(rec)) => self.file_event(&rec, out),
            Ok(Record::FileResult(r)) => match self.pending.remove(&r.tid) {
                Some(rec) if r.ret >= 0 => self.file_event(&rec, out),
                Some(_) => {
                    self.totals.file_failed += 1;
                    Ok(())
                }
                None => Ok(()),
            },
            Err(e) => {
                self.totals.decode_errors += 1;
                warn!("undecodable ring-buffer record skipped: {e}");
                Ok(())
            }
        }
    }

    fn file_event<O: Lines>(
        &mut self,
        rec: &FileRecord,
        out: &mut NdjsonWriter<O>,
    ) -> Result<(), OutputError> {
        if rec.normalised
            && let Some(w) = &self.watch
        {
            let action = Actions(rec.action.bit());
            let covered = |p: &str| w.covers(p, action);
            if !covered(&rec.path) && !rec.path2.as_deref().is_some_and(covered) {
                self.totals.file_outside_watch += 1;
                return Ok(());
            }
        }
        self.totals.by_kind[Kind::File] += 1;
        let view = self.table.on_activity(&rec.task);
        let ctx = self.context_of(&view);
        let name = self.user_name(&view);
        let doc = self
            .ecs
            .file(rec, &view, ctx.as_ref())
            .with_user_name(name.as_deref());
        emit(&mut self.sink, self.select, doc, Kind::File, out)
    }

    fn context(&mut self, c: &Arc<ContainerRef>) -> ContainerContext {
        let Some(m) = &self.metadata else {
            return ContainerContext {
                container: c.clone(),
                meta: None,
            };
        };
        let ctx = m.context(c);
        if ctx.meta().name.is_none() {
            self.totals.enrichment_misses += 1;
        }
        ctx
    }

    fn user_name(&mut self, view: &ProcessView) -> Option<Arc<str>> {
        let p = &view.process;
        self.users.as_mut()?.name(p.euid, p.pid, p.container_id())
    }

    /// The context of a fork/exit, from the container its process is in.
    fn context_of(&mut self, view: &ProcessView) -> Option<ContainerContext> {
        let c = view.process.container.clone()?;
        Some(self.context(&c))
    }

    /// Adds what changed since the last call to the metrics counters.
    pub fn publish_metrics(&mut self, kernel_drops: u64) {
        let m = &self.metrics;
        let (now, was) = (self.totals(), self.published);
        for (k, n) in now.by_kind.iter() {
            let delta = n - was.by_kind[k];
            if delta > 0 {
                m.events_by(k.name(), delta);
            }
        }
        m.decode_errors
            .inc_by(now.decode_errors - was.decode_errors);
        m.enrichment_misses
            .inc_by(now.enrichment_misses - was.enrichment_misses);
        let reported = m.ringbuf_drops.get();
        if kernel_drops > reported {
            m.ringbuf_drops.inc_by(kernel_drops - reported);
        }
        m.process_table_size.set(self.table.len() as i64);
        if let Some(e) = self.engine_stats() {
            m.set_engine(&e);
        }
        m.beat();
        self.published = now;
    }
}

/// Evaluates `doc` and writes its output form when its kind is selected
/// (a free function: `doc` borrows the builder while the sink is mutated).
fn emit<O: Lines>(
    sink: &mut Sink,
    select: Selection,
    doc: EcsDoc<'_>,
    kind: Kind,
    out: &mut NdjsonWriter<O>,
) -> Result<(), OutputError> {
    let written = doc.written();
    sink.emit(
        &doc,
        &doc.index_view(),
        select.writes(kind).map(|k| (&written, k)),
        out,
    )
}

/// How often `run` does [`Pipeline::maintain`].
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use sensor_rules::loader::{FileOutcome, load_str};
    use serde_json::Value;
    use serde_json::json;

    use super::*;
    use crate::{
        decode::encode::{self, Exec},
        enrich::{
            host::{HostInfo, Uname},
            proctable::TableConfig,
        },
    };

    const POD_ID: &str = "2f1b3d4c5a6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";

    fn pipeline(detector: Option<Detector>, select: Selection) -> Pipeline {
        let host = HostInfo::from_parts(
            Uname {
                nodename: "node".into(),
                release: "6.18".into(),
                machine: "x86_64".into(),
            },
            None,
            &Default::default(),
        );
        let table = ProcessTable::new(TableConfig {
            proc_root: PathBuf::from("/nonexistent"),
            read_cwd: false,
            clock_ticks_per_sec: 100,
            ..TableConfig::default()
        });
        Pipeline::new(
            table,
            CgroupResolver::default(),
            None,
            EcsBuilder::new(&host, BootClock::from_offset_ns(0)),
            detector,
            select,
            Arc::new(Metrics::new()),
        )
    }

    fn exec_record(pid: u32, args: &[&str], cgroup: &[&str], tty: bool) -> Vec<u8> {
        let filename = format!("/usr/bin/{}", args[0]);
        let mut e = Exec::new(encode::task(pid, 1, args[0]), &filename, args);
        e.cgroup = cgroup;
        e.pts = tty.then_some(3);
        e.record()
    }

    fn lines(p: &mut Pipeline, records: &[Vec<u8>]) -> Vec<Value> {
        let mut out = NdjsonWriter::new(Vec::new());
        for r in records {
            p.handle(r, &mut out).unwrap();
        }
        out.flush().unwrap();
        String::from_utf8(out.get_ref().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn curl_rule() -> Detector {
        let text = "[rule]\nname = \"curl in container\"\nrule_id = \"r1\"\nrisk_score = 47\n\
                    severity = \"medium\"\ntype = \"eql\"\nquery = '''process where \
                    event.action == \"exec\" and process.name == \"curl\" and \
                    process.interactive == true and container.id like \"*\"'''\n";
        let FileOutcome::Loaded(rule) = load_str(text, std::path::Path::new("curl.toml")) else {
            panic!("test rule did not load");
        };
        Detector::from_rules(
            vec![*rule],
            sensor_rules::engine::EngineConfig::unsuppressed(),
        )
    }

    fn libpod() -> String {
        format!("libpod-{POD_ID}")
    }

    #[test]
    fn exec_record_becomes_one_ecs_exec_line_with_container_context() {
        let mut p = pipeline(None, Selection::default());
        let cg = libpod();
        let out = lines(
            &mut p,
            &[exec_record(
                100,
                &["curl", "-k"],
                &[&cg, "libpod_parent"],
                true,
            )],
        );
        assert_eq!(out.len(), 1);
        let v = &out[0];
        assert_eq!(v["event"]["action"], "exec");
        assert_eq!(v["process"]["args"], json!(["curl", "-k"]));
        assert_eq!(v["process"]["interactive"], true);
        assert_eq!(v["container"]["id"], POD_ID);
        assert_eq!(v["container"]["runtime"], "podman");
        assert_eq!(p.totals().of(Kind::Exec), 1);
    }

    #[test]
    fn matching_exec_writes_the_event_then_its_alert() {
        let mut p = pipeline(Some(curl_rule()), Selection::default());
        let cg = libpod();
        let out = lines(
            &mut p,
            &[
                exec_record(100, &["curl", "x"], &[&cg], true),
                exec_record(101, &["curl", "x"], &[&cg], false),
                exec_record(102, &["curl", "x"], &[], true),
            ],
        );
        let kinds: Vec<&str> = out
            .iter()
            .map(|v| v["event"]["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["event", "alert", "event", "event"]);
        assert_eq!(out[1]["rule"]["id"], "r1");
        assert_eq!(out[1]["process"]["pid"], 100);
        assert_eq!(p.totals().alerts, 1);
    }

    #[test]
    fn alerts_only_writes_no_events() {
        let mut p = pipeline(Some(curl_rule()), Selection::new(&[Kind::Exec], true));
        let cg = libpod();
        let out = lines(
            &mut p,
            &[
                exec_record(100, &["curl", "x"], &[&cg], true),
                exec_record(101, &["ls"], &[&cg], true),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["event"]["kind"], "alert");
    }

    #[test]
    fn fork_and_exit_of_a_container_process_carry_its_container() {
        let mut p = pipeline(None, Selection::default());
        let cg = libpod();
        let child = encode::task(200, 100, "sh");
        let out = lines(
            &mut p,
            &[
                exec_record(100, &["sh"], &[&cg], false),
                encode::fork(child),
                encode::exit(child, 3 << 8),
            ],
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[1]["event"]["action"], "fork");
        assert_eq!(out[1]["process"]["parent"]["pid"], 100);
        assert_eq!(out[2]["event"]["action"], "end");
        assert_eq!(out[2]["process"]["exit_code"], 3);
        for v in &out[1..] {
            assert_eq!(v["container"]["id"], POD_ID);
            assert_eq!(v["container"]["runtime"], "podman");
        }
    }

    #[test]
    fn undecodable_record_is_counted_and_the_next_one_still_written() {
        let mut p = pipeline(None, Selection::default());
        let out = lines(
            &mut p,
            &[
                vec![9, 0, 0, 0],
                vec![1],
                exec_record(5, &["ls"], &[], false),
            ],
        );
        assert_eq!(out.len(), 1);
        assert_eq!(p.totals().decode_errors, 2);
    }

    #[test]
    fn deselected_kinds_are_tracked_but_not_written() {
        let mut p = pipeline(None, Selection::new(&[Kind::Fork], false));
        let out = lines(&mut p, &[exec_record(7, &["ls"], &[], false)]);
        assert!(out.is_empty());
        assert_eq!(p.table().get(7).unwrap().image.name, "ls");
    }

    #[test]
    fn metrics_receive_counter_deltas() {
        let m = Arc::new(Metrics::new());
        let mut p = pipeline(None, Selection::default());
        p.metrics = m.clone();
        lines(&mut p, &[exec_record(7, &["ls"], &[], false)]);
        p.publish_metrics(3);
        p.publish_metrics(3);
        let text = m.render();
        assert!(
            text.contains("sensor_events_total{action=\"exec\"} 1"),
            "{text}"
        );
        assert!(text.contains("sensor_ringbuf_drops_total 3"), "{text}");
        assert!(text.contains("sensor_process_table_size 1"), "{text}");
    }
}
