//! The process table: the process tree behind the ECS `process.parent`,
//! `session_leader`, `group_leader` and `entry_leader` fields.
//!
//! Keyed by tgid; every entry also carries its start time in clock ticks so
//! a reused pid is never mistaken for the process that held it before.
//! Seeded from `/proc` at start-up, then kept current by fork/exec/exit
//! records from the kernel.
//!
//! # Memory bound
//! At most `capacity` live entries plus `exited_capacity` recently exited
//! ones. Each entry is ~300 bytes of fixed fields plus its image (name,
//! executable, args), whose stored args are cut at `stored_args_bytes`;
//! forked children share their parent's image until they exec. So the table
//! holds at most `(capacity + exited_capacity) × (300 + stored_args_bytes +
//! 2 × PATH_MAX)` bytes; with the defaults (65 536 + 4 096 entries, 4 KiB
//! args) that is a hard ceiling of ~860 MiB and, on a node with 2 000
//! processes, ~10 MiB in practice. When full, the oldest inserted entry is
//! evicted; [`ProcessTable::prune`] drops entries whose pid vanished from
//! `/proc` (exit events lost to ring-buffer overflow).

use std::{collections::VecDeque, os::unix::fs::MetadataExt, path::PathBuf, sync::Arc};

use super::container::ContainerRef;
use crate::decode::{CharDevice, ExecRecord, ExitRecord, ForkRecord, TaskInfo, Tty, split_args};

pub const DEFAULT_CAPACITY: usize = 65_536;
pub const DEFAULT_EXITED_CAPACITY: usize = 4_096;
/// Stale `order` pairs tolerated before compacting, whatever the live count.
const ORDER_SLACK: usize = 1_024;
pub const DEFAULT_STORED_ARGS_BYTES: usize = 4_096;

/// `PF_KTHREAD` in /proc/<pid>/stat flags: kernel threads never exec.
const PF_KTHREAD: u32 = 0x0020_0000;
/// Kernel threads are children of kthreadd, always pid 2.
const KTHREADD_PID: u32 = 2;
/// `/dev/tty`: an alias for the caller's controlling terminal.
const TTYAUX: CharDevice = CharDevice { major: 5, minor: 0 };

mod entry_leader;
mod ids;
mod model;
mod seed;

use entry_leader::evaluate_entry;
pub use ids::entity_id;
pub(crate) use ids::fnv1a_128;
use ids::tty_name;
pub use model::*;

/// Maps keyed by pid: hashed with foldhash, not SipHash (the table is
/// probed several times per record; pids are not chosen by an attacker
/// to collide, and a collision costs a probe, not correctness).
type PidMap<V> = foldhash::HashMap<u32, V>;

#[derive(Clone, Debug)]
struct Entry {
    info: Arc<ProcessInfo>,
    entry: Option<EntryLeader>,
    /// Insertion order, for capacity eviction.
    seq: u64,
}

/// Tuning and environment of a [`ProcessTable`].
#[derive(Clone, Debug)]
pub struct TableConfig {
    pub capacity: usize,
    pub exited_capacity: usize,
    /// Args kept per stored entry (the event's own args are never cut here).
    pub stored_args_bytes: usize,
    /// Where procfs is mounted (tests point it elsewhere).
    pub proc_root: PathBuf,
    /// Read `/proc/<pid>/cwd` on exec for `process.working_directory`.
    pub read_cwd: bool,
    /// Mixed into every entity_id (ECS `host.id`), so ids from different
    /// hosts never collide.
    pub host_id: String,
    /// `sysconf(_SC_CLK_TCK)`: the unit of /proc start times.
    pub clock_ticks_per_sec: u64,
}

impl Default for TableConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            exited_capacity: DEFAULT_EXITED_CAPACITY,
            stored_args_bytes: DEFAULT_STORED_ARGS_BYTES,
            proc_root: PathBuf::from("/proc"),
            read_cwd: true,
            host_id: String::new(),
            clock_ticks_per_sec: procfs::ticks_per_second().max(1),
        }
    }
}

/// Counters for self-metrics and the exit summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Entries dropped to stay within `capacity`.
    pub evicted_for_capacity: u64,
    /// Entries dropped by [`ProcessTable::prune`] (pid gone from /proc).
    pub pruned: u64,
    /// Events whose parent the table did not know.
    pub parent_misses: u64,
    /// Processes loaded from /proc at start-up.
    pub seeded: u64,
}

pub struct ProcessTable {
    cfg: TableConfig,
    ns_per_tick: u64,
    live: PidMap<Entry>,
    order: VecDeque<(u32, u64)>,
    next_seq: u64,
    exited: ExitedCache,
    stats: TableStats,
}

/// Recently exited processes, indexed by pid so a look-up costs a hash
/// probe (it runs for every parent and leader not alive any more), and
/// evicted oldest first.
#[derive(Default)]
struct ExitedCache {
    /// (pid, seq) in exit order, oldest at the front.
    order: VecDeque<(u32, u64)>,
    /// Per pid, oldest first (a pid can be reused while an earlier holder
    /// is still cached).
    by_pid: PidMap<Vec<Entry>>,
}

impl ExitedCache {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }

    fn push(&mut self, e: Entry, capacity: usize) {
        self.order.push_back((e.info.pid, e.seq));
        // Most pids hold one entry: a default Vec would reserve four
        // (192 bytes more per exited process, 0.7 MiB at the default 4 096).
        self.by_pid
            .entry(e.info.pid)
            .or_insert_with(|| Vec::with_capacity(1))
            .push(e);
        while self.order.len() > capacity {
            let Some((pid, seq)) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.by_pid.get_mut(&pid) {
                v.retain(|e| e.seq != seq);
                if v.is_empty() {
                    self.by_pid.remove(&pid);
                }
            }
        }
    }

    /// The newest cached holder of `pid` that satisfies `pred`.
    fn find(&self, pid: u32, pred: impl Fn(&Entry) -> bool) -> Option<&Entry> {
        self.by_pid.get(&pid)?.iter().rev().find(|e| pred(e))
    }
}

impl ProcessTable {
    pub fn new(cfg: TableConfig) -> Self {
        let ns_per_tick = 1_000_000_000 / cfg.clock_ticks_per_sec.max(1);
        Self {
            cfg,
            ns_per_tick,
            live: PidMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
            exited: ExitedCache::default(),
            stats: TableStats::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn stats(&self) -> TableStats {
        self.stats
    }

    /// Clock ticks of a CLOCK_BOOTTIME ns value, as /proc reports start times.
    pub fn ticks(&self, boot_ns: u64) -> u64 {
        boot_ns / self.ns_per_tick
    }

    /// The live entry for `pid` (tests and diagnostics).
    pub fn get(&self, pid: u32) -> Option<Arc<ProcessInfo>> {
        self.live.get(&pid).map(|e| e.info.clone())
    }

    fn entity(&self, pid: u32, ticks: u64) -> Arc<str> {
        entity_id(&self.cfg.host_id, pid, ticks).into()
    }

    /// Finds `pid`. With `start_ticks`, an exact match wins; failing that,
    /// a process that started no later is accepted (a thread's start time
    /// may stand in for its process's), newest first.
    fn find(&self, pid: u32, start_ticks: Option<u64>) -> Option<&Entry> {
        let fits = |e: &&Entry, exact: bool| {
            e.info.pid == pid
                && match start_ticks {
                    None => true,
                    Some(t) if exact => e.info.start_ticks == t,
                    Some(t) => e.info.start_ticks <= t,
                }
        };
        for exact in [true, false] {
            if let Some(e) = self.live.get(&pid).filter(|e| fits(e, exact)) {
                return Some(e);
            }
            if let Some(e) = self.exited.find(pid, |e| fits(&e, exact)) {
                return Some(e);
            }
            if start_ticks.is_none() {
                break;
            }
        }
        None
    }

    /// A leader (session or group) of a process that started at `ticks`: it
    /// must have started no later than its member.
    fn find_leader(&self, pid: u32, ticks: u64) -> Option<&Entry> {
        self.find(pid, Some(ticks))
    }

    fn relative(&self, pid: u32, entry: Option<&Entry>, start_ns: Option<u64>) -> Option<Relative> {
        if pid == 0 {
            return None;
        }
        Some(match entry {
            Some(e) => Relative::known(&e.info),
            None => Relative {
                pid,
                entity_id: start_ns.map(|ns| self.entity(pid, self.ticks(ns))),
                start_boottime_ns: start_ns,
                info: None,
            },
        })
    }

    fn insert(&mut self, info: Arc<ProcessInfo>, entry: Option<EntryLeader>) {
        let pid = info.pid;
        if !self.live.contains_key(&pid) {
            self.make_room();
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.live.insert(pid, Entry { info, entry, seq });
        self.order.push_back((pid, seq));
        // `order` keeps stale pairs of exited and replaced entries; compact
        // it so it stays proportional to the live table, not to its
        // capacity (at 2 × 65 536 it grew to 4 MiB on a host with a few
        // hundred processes).
        let bound = 2 * self.live.len().max(ORDER_SLACK);
        if self.order.len() > bound {
            let live = &self.live;
            self.order
                .retain(|(p, s)| live.get(p).is_some_and(|e| e.seq == *s));
            self.order.shrink_to(bound);
        }
    }

    fn make_room(&mut self) {
        while self.live.len() >= self.cfg.capacity.max(1) {
            let Some((pid, seq)) = self.order.pop_front() else {
                break;
            };
            if self.live.get(&pid).is_some_and(|e| e.seq == seq) {
                self.live.remove(&pid);
                self.stats.evicted_for_capacity += 1;
            }
        }
    }

    fn view(
        &self,
        info: Arc<ProcessInfo>,
        entry: Option<EntryLeader>,
        parent_start_ns: Option<u64>,
    ) -> ProcessView {
        let ticks = info.start_ticks;
        let parent = self.find(info.ppid, parent_start_ns.map(|ns| self.ticks(ns)));
        let leader = |pid: u32| -> Option<Relative> {
            if pid == info.pid {
                return Some(Relative::known(&info));
            }
            self.relative(pid, self.find_leader(pid, ticks), None)
        };
        ProcessView {
            parent: self.relative(info.ppid, parent, parent_start_ns),
            session_leader: leader(info.sid),
            group_leader: leader(info.pgid),
            entry_leader: entry,
            process: info,
        }
    }

    fn ids_from_task(&self, t: &TaskInfo, image: Arc<Image>) -> ProcessInfo {
        let start_ticks = self.ticks(t.start_boottime_ns);
        ProcessInfo {
            pid: t.tgid,
            ppid: t.ppid,
            sid: t.sid,
            pgid: t.pgid,
            ns_tgid: t.ns_tgid,
            pidns_inum: t.pidns_inum,
            uid: t.uid,
            euid: t.euid,
            gid: t.gid,
            egid: t.egid,
            start_boottime_ns: t.start_boottime_ns,
            start_ticks,
            entity_id: self.entity(t.tgid, start_ticks),
            image,
            interactive: false,
            tty: None,
            container: None,
            working_directory: None,
            rendered: Default::default(),
        }
    }

    fn read_cwd(&self, pid: u32) -> Option<Arc<str>> {
        if !self.cfg.read_cwd {
            return None;
        }
        let p = std::fs::read_link(self.cfg.proc_root.join(pid.to_string()).join("cwd")).ok()?;
        Some(p.to_string_lossy().into())
    }

    /// A new process: it runs its parent's image (and keeps its tty,
    /// container and entry leader) until it execs. Returns `None` for
    /// kernel threads, which the table does not track.
    pub fn on_fork(&mut self, rec: &ForkRecord) -> Option<ProcessView> {
        let c = &rec.child;
        if c.tgid == KTHREADD_PID || c.ppid == KTHREADD_PID {
            return None;
        }
        let parent_ticks = self.ticks(c.parent_start_boottime_ns);
        let parent = self.find(c.ppid, Some(parent_ticks)).cloned();
        if parent.is_none() {
            self.stats.parent_misses += 1;
        }
        let image = parent.as_ref().map_or_else(
            || Arc::new(Image::new(c.comm.clone(), None, Vec::new(), false)),
            |p| p.info.image.clone(),
        );
        let mut info = self.ids_from_task(c, image);
        if let Some(p) = &parent {
            info.interactive = p.info.interactive;
            info.tty = p.info.tty.clone();
            info.container = p.info.container.clone();
            info.working_directory = p.info.working_directory.clone();
        }
        let info = Arc::new(info);
        let entry = match parent.as_ref().and_then(|p| p.entry.clone()) {
            Some(e) => e,
            None => {
                let session = self.find_leader(info.sid, info.start_ticks);
                let group = self.find_leader(info.pgid, info.start_ticks);
                evaluate_entry(&info, None, parent.as_ref(), session, group)
            }
        };
        self.insert(info.clone(), Some(entry.clone()));
        Some(self.view(info, Some(entry), Some(c.parent_start_boottime_ns)))
    }

    /// A process replaced its image. `container` comes from the cgroup
    /// resolver. The returned view carries the full argv of the record;
    /// the stored copy is cut at `stored_args_bytes`.
    pub fn on_exec(
        &mut self,
        rec: &ExecRecord,
        container: Option<Arc<ContainerRef>>,
    ) -> ProcessView {
        let t = &rec.task;
        let executable = rec.exe_path.clone().or_else(|| {
            // The execve path names the file only when absolute.
            rec.filename.starts_with('/').then(|| rec.filename.clone())
        });
        let image = Arc::new(Image::new(
            process_name(executable.as_deref(), &rec.filename, &t.comm),
            executable,
            rec.args.clone(),
            rec.args_truncated,
        ));
        let stored_image = image
            .capped(self.cfg.stored_args_bytes)
            .map_or_else(|| image.clone(), Arc::new);
        let mut info = self.ids_from_task(t, image);
        info.interactive = rec.interactive;
        info.tty = rec.tty.clone();
        info.container = container;
        info.working_directory = match &rec.cwd {
            Some(cwd) => Some(cwd.as_str().into()),
            // The kernel's walk was cut (a very deep directory).
            None => self.read_cwd(t.tgid),
        };
        let full = Arc::new(info);
        let stored = if Arc::ptr_eq(&full.image, &stored_image) {
            full.clone()
        } else {
            Arc::new(ProcessInfo {
                image: stored_image,
                ..(*full).clone()
            })
        };

        let parent = self.find(t.ppid, Some(self.ticks(t.parent_start_boottime_ns)));
        let parent_missed = parent.is_none() && t.ppid != 0;
        let session = (t.sid != t.tgid)
            .then(|| self.find_leader(t.sid, stored.start_ticks))
            .flatten();
        let group = (t.pgid != t.tgid)
            .then(|| self.find_leader(t.pgid, stored.start_ticks))
            .flatten();
        let previous = self
            .live
            .get(&t.tgid)
            .filter(|e| e.info.start_ticks == stored.start_ticks);
        let entry = evaluate_entry(&stored, previous, parent, session, group);
        self.stats.parent_misses += u64::from(parent_missed);
        self.insert(stored, Some(entry.clone()));
        self.view(full, Some(entry), Some(t.parent_start_boottime_ns))
    }

    /// The acting process of an event that changes nothing in the table
    /// (a file operation): its entry, with the credentials it acts with now
    /// (a setuid since its exec shows here), or what the record says when
    /// the table does not know it.
    pub fn on_activity(&self, t: &TaskInfo) -> ProcessView {
        let parent_ns = Some(t.parent_start_boottime_ns);
        match self.find(t.tgid, Some(self.ticks(t.start_boottime_ns))) {
            Some(e) => {
                let mut info = e.info.clone();
                if (info.uid, info.euid, info.gid, info.egid) != (t.uid, t.euid, t.gid, t.egid) {
                    info = Arc::new(ProcessInfo {
                        uid: t.uid,
                        euid: t.euid,
                        gid: t.gid,
                        egid: t.egid,
                        ..(*info).clone()
                    });
                }
                self.view(info, e.entry.clone(), parent_ns)
            }
            None => {
                let image = Arc::new(Image::new(t.comm.clone(), None, Vec::new(), false));
                self.view(Arc::new(self.ids_from_task(t, image)), None, parent_ns)
            }
        }
    }

    /// A process ended. It moves to the recently-exited cache so events
    /// of its children still processed after this find it.
    pub fn on_exit(&mut self, rec: &ExitRecord) -> ProcessView {
        let t = &rec.task;
        let ticks = self.ticks(t.start_boottime_ns);
        let found = self
            .live
            .get(&t.tgid)
            .is_some_and(|e| e.info.start_ticks <= ticks);
        let (info, entry) = if found {
            let mut e = self.live.remove(&t.tgid).expect("checked above");
            let out = (e.info.clone(), e.entry.clone());
            // The cached copy drops its renderings (a parent's JSON): few
            // events name a process after it ended. Measured: 1 MiB less
            // heap after 10 000 `sh -c` running two children each.
            if !e.info.rendered.is_empty() {
                e.info = Arc::new((*e.info).clone());
            }
            self.exited.push(e, self.cfg.exited_capacity);
            out
        } else {
            let image = Arc::new(Image::new(t.comm.clone(), None, Vec::new(), false));
            (Arc::new(self.ids_from_task(t, image)), None)
        };
        self.view(info, entry, Some(t.parent_start_boottime_ns))
    }

    /// Drops live entries whose pid no longer exists in /proc (their exit
    /// was lost, e.g. to ring-buffer overflow). Returns how many went.
    pub fn prune(&mut self) -> usize {
        let root = self.cfg.proc_root.clone();
        let before = self.live.len();
        self.live
            .retain(|pid, _| root.join(pid.to_string()).exists());
        let gone = before - self.live.len();
        self.stats.pruned += gone as u64;
        let live = &self.live;
        self.order
            .retain(|(p, s)| live.get(p).is_some_and(|e| e.seq == *s));
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode::fixtures::exec, enrich::container::test_container};

    const HOST: &str = "0123456789abcdef0123456789abcdef";
    const TICK_NS: u64 = 10_000_000;

    fn cfg() -> TableConfig {
        TableConfig {
            capacity: 1000,
            exited_capacity: 8,
            stored_args_bytes: 64,
            proc_root: PathBuf::from("/nonexistent-proc"),
            read_cwd: false,
            host_id: HOST.into(),
            clock_ticks_per_sec: 100,
        }
    }

    fn table() -> ProcessTable {
        ProcessTable::new(cfg())
    }

    /// A task started at `start` ticks whose parent started at `pstart`.
    fn task(pid: u32, ppid: u32, sid: u32, start: u64, pstart: u64) -> TaskInfo {
        TaskInfo {
            pid,
            tgid: pid,
            ppid,
            sid,
            pgid: sid,
            ns_tgid: pid,
            pidns_inum: 4026531836,
            uid: 1000,
            euid: 1000,
            gid: 1000,
            egid: 1000,
            start_boottime_ns: start * TICK_NS + 1234,
            parent_start_boottime_ns: pstart * TICK_NS + 99,
            ktime_ns: start * TICK_NS + 5000,
            comm: "comm".into(),
        }
    }

    fn pts(minor: u32) -> Tty {
        Tty {
            device: CharDevice { major: 136, minor },
            name: format!("pts{minor}"),
        }
    }

    fn fork(t: &mut ProcessTable, child: TaskInfo) -> ProcessView {
        t.on_fork(&ForkRecord { child })
            .expect("not a kernel thread")
    }

    fn end(t: &mut ProcessTable, task: TaskInfo) -> ProcessView {
        t.on_exit(&ExitRecord { task, exit_code: 0 })
    }

    /// A process under init that execs `/bin/x` and ends.
    fn short_lived(t: &mut ProcessTable, pid: u32) {
        t.on_exec(&exec(task(pid, 1, pid, 5, 1), "/bin/x", &["x"]), None);
        end(t, task(pid, 1, pid, 5, 1));
    }

    /// pid 1 (init) and a shell session under it.
    fn with_init(t: &mut ProcessTable) {
        t.on_exec(
            &exec(task(1, 0, 1, 1, 0), "/sbin/init", &["/sbin/init"]),
            None,
        );
    }

    #[test]
    fn entity_id_is_the_same_from_proc_ticks_and_kernel_nanoseconds() {
        let t = table();
        let ns = 123_456 * TICK_NS + 9_999_999;
        assert_eq!(t.ticks(ns), 123_456);
        assert_eq!(
            entity_id(HOST, 42, t.ticks(ns)),
            entity_id(HOST, 42, 123_456)
        );
        assert_ne!(entity_id(HOST, 42, 123_456), entity_id(HOST, 42, 123_457));
        assert_ne!(entity_id(HOST, 42, 1), entity_id(HOST, 43, 1));
        assert_ne!(entity_id(HOST, 42, 1), entity_id("other-host", 42, 1));
        assert_eq!(entity_id(HOST, 42, 1).len(), 32);
    }

    #[test]
    fn exec_view_has_parent_session_and_group_leaders() {
        let mut t = table();
        with_init(&mut t);
        t.on_exec(
            &exec(task(100, 1, 100, 10, 1), "/usr/bin/bash", &["bash"]),
            None,
        );
        let mut child = task(200, 100, 100, 20, 10);
        child.pgid = 200;
        fork(&mut t, child.clone());
        let v = t.on_exec(&exec(child, "/usr/bin/ls", &["ls", "-l"]), None);
        assert_eq!(v.process.image.name, "ls");
        assert_eq!(v.process.image.command_line, "ls -l");
        let parent = v.parent.as_ref().unwrap();
        assert_eq!(parent.pid, 100);
        assert_eq!(parent.info.as_ref().unwrap().image.name, "bash");
        assert_eq!(
            parent.entity_id.as_deref(),
            Some(&*entity_id(HOST, 100, 10))
        );
        let session = v.session_leader.as_ref().unwrap();
        assert_eq!(
            session.info.as_ref().unwrap().image.executable.as_deref(),
            Some("/usr/bin/bash")
        );
        let group = v.group_leader.as_ref().unwrap();
        assert!(Arc::ptr_eq(group.info.as_ref().unwrap(), &v.process));
    }

    #[test]
    fn forked_child_inherits_parent_image_tty_and_container_until_exec() {
        let mut t = table();
        let mut rec = exec(task(300, 1, 300, 5, 1), "/usr/bin/bash", &["bash", "-i"]);
        rec.tty = Some(pts(3));
        rec.interactive = true;
        t.on_exec(&rec, test_container(&"c".repeat(64)));
        let v = fork(&mut t, task(301, 300, 300, 6, 5));
        assert_eq!(v.process.image.args, ["bash", "-i"]);
        assert!(v.process.interactive);
        assert_eq!(v.process.tty, Some(pts(3)));
        assert_eq!(v.process.container_id(), Some(&*"c".repeat(64)));
        assert_eq!(v.parent.unwrap().pid, 300);
        assert_ne!(v.process.entity_id, t.get(300).unwrap().entity_id);
    }

    #[test]
    fn reused_pid_is_not_mistaken_for_the_old_parent() {
        let mut t = table();
        t.on_exec(
            &exec(task(400, 1, 400, 5, 1), "/usr/bin/old", &["old"]),
            None,
        );
        // The exit of 400 was lost; pid 400 now belongs to a newer process.
        t.on_exec(
            &exec(task(400, 1, 400, 50, 1), "/usr/bin/new", &["new"]),
            None,
        );
        let v = t.on_exec(
            &exec(task(401, 400, 400, 60, 50), "/usr/bin/kid", &["kid"]),
            None,
        );
        let p = v.parent.unwrap();
        assert_eq!(p.info.unwrap().image.name, "new");
        assert_eq!(p.entity_id.as_deref(), Some(&*entity_id(HOST, 400, 50)));
    }

    #[test]
    fn unknown_parent_still_gets_pid_and_entity_id() {
        let mut t = table();
        let v = t.on_exec(&exec(task(500, 499, 500, 9, 7), "/usr/bin/x", &["x"]), None);
        let p = v.parent.unwrap();
        assert_eq!(p.pid, 499);
        assert!(p.info.is_none());
        assert_eq!(p.entity_id.as_deref(), Some(&*entity_id(HOST, 499, 7)));
        assert_eq!(t.stats().parent_misses, 1);
    }

    #[test]
    fn exit_evicts_but_recently_exited_parent_is_still_found() {
        let mut t = table();
        t.on_exec(&exec(task(600, 1, 600, 5, 1), "/usr/bin/sh", &["sh"]), None);
        fork(&mut t, task(601, 600, 600, 6, 5));
        let ended = end(&mut t, task(600, 1, 600, 5, 1));
        assert_eq!(ended.process.image.name, "sh");
        assert!(t.get(600).is_none());
        let v = t.on_exec(
            &exec(task(601, 600, 600, 6, 5), "/usr/bin/cat", &["cat"]),
            None,
        );
        assert_eq!(v.parent.unwrap().info.unwrap().image.name, "sh");
        assert_eq!(v.session_leader.unwrap().info.unwrap().image.name, "sh");
    }

    #[test]
    fn eviction_order_follows_the_live_processes_not_the_capacity() {
        let mut t = ProcessTable::new(TableConfig {
            capacity: 65_536,
            ..cfg()
        });
        for pid in 1_000..21_000 {
            short_lived(&mut t, pid);
        }
        assert_eq!(t.len(), 0);
        assert!(t.order.len() <= 2 * ORDER_SLACK);
        assert!(t.order.capacity() <= 4 * ORDER_SLACK);
    }

    #[test]
    fn recently_exited_cache_is_bounded() {
        let mut t = table();
        for pid in 700..720 {
            short_lived(&mut t, pid);
        }
        assert_eq!(t.exited.len(), 8);
        assert!(t.find(700, None).is_none());
        assert!(t.find(719, None).is_some());
    }

    #[test]
    fn table_evicts_oldest_entries_beyond_capacity() {
        let mut t = ProcessTable::new(TableConfig {
            capacity: 4,
            ..cfg()
        });
        for pid in 10..20 {
            t.on_exec(&exec(task(pid, 1, pid, 5, 1), "/bin/x", &["x"]), None);
        }
        assert_eq!(t.len(), 4);
        assert!(t.get(19).is_some() && t.get(16).is_some());
        assert!(t.get(15).is_none());
        assert_eq!(t.stats().evicted_for_capacity, 6);
        assert!(t.order.len() <= 2 * 16);
    }

    #[test]
    fn stored_args_are_capped_but_the_event_keeps_all_of_them() {
        let mut t = table();
        let long = "y".repeat(100);
        let v = t.on_exec(
            &exec(task(800, 1, 800, 5, 1), "/bin/p", &["p", &long]),
            None,
        );
        assert_eq!(v.process.image.args, ["p", long.as_str()]);
        assert!(!v.process.image.args_truncated);
        let stored = t.get(800).unwrap();
        assert!(stored.image.args_truncated);
        assert_eq!(stored.image.args[0], "p");
        let kept: usize = stored.image.args.iter().map(|a| a.len() + 1).sum();
        assert!(kept <= 64, "{kept}");
        assert!(long.starts_with(&stored.image.args[1]));
    }

    #[test]
    fn prune_drops_pids_that_vanished_from_proc() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("900")).unwrap();
        let mut t = ProcessTable::new(TableConfig {
            proc_root: dir.path().to_path_buf(),
            ..cfg()
        });
        t.on_exec(&exec(task(900, 1, 900, 5, 1), "/bin/a", &["a"]), None);
        t.on_exec(&exec(task(901, 1, 901, 5, 1), "/bin/b", &["b"]), None);
        assert_eq!(t.prune(), 1);
        assert!(t.get(900).is_some());
        assert!(t.get(901).is_none());
        assert_eq!(t.stats().pruned, 1);
    }

    #[test]
    fn kernel_threads_are_not_tracked() {
        let mut t = table();
        assert!(
            t.on_fork(&ForkRecord {
                child: task(1000, 2, 0, 5, 1)
            })
            .is_none()
        );
        assert!(t.is_empty());
    }

    #[test]
    fn pid_1_is_the_init_entry_leader() {
        let mut t = table();
        let v = t.on_exec(
            &exec(task(1, 0, 1, 1, 0), "/sbin/init", &["/sbin/init"]),
            None,
        );
        assert_eq!(v.entry_leader.as_ref().unwrap().kind, EntryType::Init);
        assert!(v.entry_leader_is_self());
        assert!(v.parent.is_none());
    }

    #[test]
    fn service_session_started_by_init_is_its_own_init_entry_leader() {
        let mut t = table();
        with_init(&mut t);
        let v = t.on_exec(
            &exec(task(50, 1, 50, 3, 1), "/usr/sbin/cron", &["cron"]),
            None,
        );
        let e = v.entry_leader.as_ref().unwrap();
        assert_eq!(e.kind, EntryType::Init);
        assert!(v.entry_leader_is_self());
        // A child without its own session inherits it.
        let kid = t.on_exec(&exec(task(51, 50, 50, 4, 3), "/bin/sh", &["sh"]), None);
        assert_eq!(kid.entry_leader.as_ref().unwrap().leader.pid, 50);
        assert!(!kid.entry_leader_is_self());
    }

    #[test]
    fn child_of_sshd_is_an_sshd_entry_leader() {
        let mut t = table();
        with_init(&mut t);
        t.on_exec(
            &exec(task(60, 1, 60, 3, 1), "/usr/sbin/sshd", &["sshd", "-D"]),
            None,
        );
        fork(&mut t, task(61, 60, 61, 4, 3));
        let mut shell = exec(task(62, 61, 62, 5, 4), "/usr/bin/bash", &["-bash"]);
        shell.tty = Some(pts(0));
        let v = t.on_exec(&shell, None);
        assert_eq!(v.entry_leader.as_ref().unwrap().kind, EntryType::Sshd);
        assert!(v.entry_leader_is_self());
        let cmd = t.on_exec(&exec(task(63, 62, 62, 6, 5), "/usr/bin/id", &["id"]), None);
        let e = cmd.entry_leader.unwrap();
        assert_eq!((e.leader.pid, e.kind), (62, EntryType::Sshd));
    }

    #[test]
    fn session_leader_on_a_pty_started_by_script_is_a_terminal_entry_leader() {
        let mut t = table();
        with_init(&mut t);
        t.on_exec(
            &exec(
                task(70, 1, 1, 3, 1),
                "/usr/bin/script",
                &["script", "-qc", "sh"],
            ),
            None,
        );
        let mut sh = exec(task(71, 70, 71, 4, 3), "/usr/bin/dash", &["sh", "-c", "sh"]);
        sh.tty = Some(pts(4));
        let v = t.on_exec(&sh, None);
        assert_eq!(v.entry_leader.as_ref().unwrap().kind, EntryType::Terminal);
        assert!(v.entry_leader_is_self());
    }

    #[test]
    fn session_leader_on_a_virtual_console_is_a_terminal_entry_leader() {
        let mut t = table();
        with_init(&mut t);
        let mut sh = exec(task(72, 1, 72, 4, 1), "/usr/bin/bash", &["-bash"]);
        sh.tty = Some(Tty {
            device: CharDevice { major: 4, minor: 1 },
            name: "tty1".into(),
        });
        let v = t.on_exec(&sh, None);
        assert_eq!(v.entry_leader.unwrap().kind, EntryType::Terminal);
    }

    #[test]
    fn session_leader_on_a_tty_without_a_terminal_parent_inherits() {
        let mut t = table();
        with_init(&mut t);
        t.on_exec(
            &exec(task(73, 1, 1, 3, 1), "/usr/bin/python3", &["python3"]),
            None,
        );
        let mut sh = exec(task(74, 73, 74, 4, 3), "/usr/bin/bash", &["bash"]);
        sh.tty = Some(pts(5));
        let v = t.on_exec(&sh, None);
        let e = v.entry_leader.unwrap();
        // python3 (not a session leader) inherited init's entry.
        assert_eq!((e.leader.pid, e.kind), (1, EntryType::Init));
    }

    #[test]
    fn container_init_is_a_container_entry_leader() {
        let mut t = table();
        with_init(&mut t);
        t.on_exec(
            &exec(task(80, 1, 80, 3, 1), "/usr/bin/conmon", &["conmon"]),
            None,
        );
        let mut init = task(81, 80, 81, 4, 3);
        init.ns_tgid = 1;
        init.pidns_inum = 4026532000;
        let v = t.on_exec(
            &exec(init, "/bin/sh", &["sh"]),
            test_container(&"a".repeat(64)),
        );
        assert_eq!(v.entry_leader.as_ref().unwrap().kind, EntryType::Container);
        assert!(v.entry_leader_is_self());
    }

    #[test]
    fn runtime_exec_into_a_container_is_a_container_entry_leader() {
        let mut t = table();
        with_init(&mut t);
        let cid = "b".repeat(64);
        // The container's init, then `runc exec` (host) starting a shell in it.
        let mut init = task(90, 1, 90, 3, 1);
        init.ns_tgid = 1;
        init.pidns_inum = 4026532001;
        t.on_exec(
            &exec(init, "/bin/sleep", &["sleep", "inf"]),
            test_container(&cid),
        );
        t.on_exec(
            &exec(task(91, 1, 91, 5, 1), "/usr/bin/runc", &["runc", "exec"]),
            None,
        );
        let mut sh = task(92, 91, 92, 6, 5);
        sh.ns_tgid = 7;
        sh.pidns_inum = 4026532001;
        let v = t.on_exec(&exec(sh, "/bin/sh", &["sh"]), test_container(&cid));
        let e = v.entry_leader.as_ref().unwrap();
        assert_eq!((e.leader.pid, e.kind), (92, EntryType::Container));
        assert!(v.entry_leader_is_self());
        // Commands typed in that shell are not entry leaders themselves.
        let mut ls = task(93, 92, 92, 7, 6);
        ls.ns_tgid = 8;
        ls.pidns_inum = 4026532001;
        let v = t.on_exec(&exec(ls, "/bin/ls", &["ls"]), test_container(&cid));
        let e = v.entry_leader.as_ref().unwrap();
        assert_eq!((e.leader.pid, e.kind), (92, EntryType::Container));
        assert!(!v.entry_leader_is_self());
    }

    #[test]
    fn process_in_another_pid_namespace_than_its_parent_enters_the_container() {
        let mut t = table();
        let cid = "d".repeat(64);
        let mut p = task(95, 1, 95, 3, 1);
        p.ns_tgid = 3;
        p.pidns_inum = 4026532002;
        t.on_exec(&exec(p, "/bin/sh", &["sh"]), test_container(&cid));
        let mut kid = task(96, 95, 95, 4, 3);
        kid.ns_tgid = 1;
        kid.pidns_inum = 4026532003;
        let v = t.on_exec(&exec(kid, "/bin/sh", &["sh"]), test_container(&cid));
        assert!(v.entry_leader_is_self());
        assert_eq!(v.entry_leader.unwrap().kind, EntryType::Container);
    }

    #[test]
    fn orphan_without_any_known_relative_is_an_unknown_entry_leader() {
        let mut t = table();
        let v = t.on_exec(&exec(task(97, 96, 97, 3, 2), "/bin/x", &["x"]), None);
        assert_eq!(v.entry_leader.as_ref().unwrap().kind, EntryType::Unknown);
        assert!(v.entry_leader_is_self());
    }

    #[test]
    fn entry_leader_survives_the_leader_exiting() {
        let mut t = table();
        with_init(&mut t);
        t.on_exec(
            &exec(task(60, 1, 60, 3, 1), "/usr/sbin/sshd", &["sshd"]),
            None,
        );
        t.on_exec(
            &exec(task(62, 60, 62, 5, 3), "/usr/bin/bash", &["bash"]),
            None,
        );
        fork(&mut t, task(63, 62, 62, 6, 5));
        for _ in 0..20 {
            // Push the leader out of the small exited cache too.
            end(&mut t, task(62, 60, 62, 5, 3));
        }
        let v = t.on_exec(
            &exec(task(63, 1, 62, 6, 1), "/bin/nohup-job", &["job"]),
            None,
        );
        let e = v.entry_leader.unwrap();
        assert_eq!((e.leader.pid, e.kind), (62, EntryType::Sshd));
        assert_eq!(e.leader.image.name, "bash");
    }

    #[test]
    fn seed_from_proc_loads_this_test_process_with_its_real_identity() {
        let mut t = ProcessTable::new(TableConfig {
            proc_root: PathBuf::from("/proc"),
            read_cwd: true,
            stored_args_bytes: 1 << 20,
            ..cfg()
        });
        let seen_cgroup = std::cell::Cell::new(false);
        let n = t.seed_from_proc(&|cg| {
            seen_cgroup.set(true);
            assert!(cg.contains("::") || cg.contains(':'), "{cg}");
            None
        });
        assert!(n > 1);
        assert!(seen_cgroup.get());
        let me = std::process::id();
        let p = t.get(me).expect("this process was seeded");
        let stat = procfs::process::Process::myself().unwrap().stat().unwrap();
        assert_eq!(p.ppid, stat.ppid as u32);
        assert_eq!(p.sid, stat.session as u32);
        assert_eq!(p.start_ticks, stat.starttime);
        assert_eq!(p.entity_id, entity_id(HOST, me, stat.starttime).into());
        let args: Vec<String> = std::env::args().collect();
        assert_eq!(p.image.args, args);
        assert_eq!(
            p.image.executable.as_deref().map(PathBuf::from),
            Some(std::env::current_exe().unwrap())
        );
        assert_eq!(
            p.working_directory.as_deref().map(PathBuf::from),
            Some(std::env::current_dir().unwrap())
        );
        assert_eq!(p.euid, unsafe { libc::geteuid() });
        // Kernel threads (kthreadd's children) are left out.
        assert!(t.get(KTHREADD_PID).is_none());
    }

    #[test]
    fn seeded_container_process_gets_its_id_from_the_cgroup_closure() {
        let mut t = ProcessTable::new(TableConfig {
            proc_root: PathBuf::from("/proc"),
            ..cfg()
        });
        let me = std::process::id();
        let my_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let ctr = test_container(&"f".repeat(64)).unwrap();
        t.seed_from_proc(&|cg| (cg == my_cgroup).then(|| (*ctr).clone()));
        assert_eq!(t.get(me).unwrap().container_id(), Some(&*"f".repeat(64)));
    }

    #[test]
    fn child_of_a_seeded_process_finds_parent_and_session_leader() {
        use std::os::unix::process::CommandExt;
        // A real session leader that exists before the seed.
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            })
        };
        let mut leader = cmd.spawn().unwrap();
        let pid = leader.id();
        // Wait until the exec has happened, so /proc shows sleep.
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        while std::fs::read_link(format!("/proc/{pid}/exe")).ok() == Some(exe.clone()) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut t = ProcessTable::new(TableConfig {
            proc_root: PathBuf::from("/proc"),
            ..cfg()
        });
        t.seed_from_proc(&|_| None);
        let seeded = t.get(pid).expect("leader seeded");
        assert_eq!(seeded.sid, pid);
        assert_eq!(seeded.image.args, ["sleep", "30"]);
        // A kernel exec record for a child of it, with ns-precision times.
        let mut kid = task(u32::MAX - 1, pid, pid, seeded.start_ticks + 1, 0);
        kid.parent_start_boottime_ns = seeded.start_ticks * TICK_NS + 7_654_321;
        let v = t.on_exec(&exec(kid, "/bin/true", &["true"]), None);
        leader.kill().unwrap();
        leader.wait().unwrap();
        let parent = v.parent.unwrap();
        assert_eq!(parent.entity_id, Some(seeded.entity_id.clone()));
        assert_eq!(parent.info.unwrap().image.args, ["sleep", "30"]);
        let session = v.session_leader.unwrap();
        assert_eq!(session.pid, pid);
        assert_eq!(session.info.unwrap().entity_id, seeded.entity_id);
    }

    #[test]
    fn process_name_is_the_basename_of_the_resolved_executable() {
        // busybox applets are symlinks to /bin/busybox.
        assert_eq!(
            process_name(Some("/bin/busybox"), "/bin/wget", "wget"),
            "busybox"
        );
        assert_eq!(
            process_name(Some("/usr/bin/python3.11"), "/usr/bin/python3", "python3"),
            "python3.11"
        );
    }

    #[test]
    fn process_name_falls_back_to_the_execve_path_then_comm() {
        assert_eq!(
            process_name(None, "./a-very-long-program-name", "a-very-long-pro"),
            "a-very-long-program-name"
        );
        assert_eq!(process_name(None, "", "kworker"), "kworker");
    }

    #[test]
    fn tty_names_follow_the_kernel_naming() {
        assert_eq!(
            tty_name(CharDevice {
                major: 136,
                minor: 2
            }),
            "pts2"
        );
        assert_eq!(
            tty_name(CharDevice {
                major: 137,
                minor: 1
            }),
            "pts257"
        );
        assert_eq!(tty_name(CharDevice { major: 4, minor: 1 }), "tty1");
        assert_eq!(
            tty_name(CharDevice {
                major: 4,
                minor: 64
            }),
            "ttyS0"
        );
    }
}
