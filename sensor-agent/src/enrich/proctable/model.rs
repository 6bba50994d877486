//! What the table holds per process: its image, identity and leaders, and
//! the view of one process that an event carries.

use std::sync::Arc;

use crate::{decode::Tty, enrich::container::ContainerRef, output::ecs::Rendered};

/// How the user or workload entered the system (ECS `entry_meta.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryType {
    Init,
    Sshd,
    Terminal,
    Container,
    Unknown,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "init",
            Self::Sshd => "sshd",
            Self::Terminal => "terminal",
            Self::Container => "container",
            Self::Unknown => "unknown",
        }
    }
}

/// What a process is running: shared between a parent and its forked
/// children until they exec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    /// See [`process_name`].
    pub name: String,
    /// Absolute path when known.
    pub executable: Option<String>,
    /// Empty when unknown (a fork of a process the table never saw).
    pub args: Vec<String>,
    pub command_line: String,
    /// Stored args were cut (kernel capture limit, or the table's own cap).
    pub args_truncated: bool,
}

/// ECS `process.name`: the basename of the executable the kernel ran
/// (symlinks resolved, as Elastic's own sensors report it: a busybox applet
/// is `busybox`, its applet name is `process.args[0]`), else of the path
/// given to execve, else `comm`.
pub fn process_name(executable: Option<&str>, filename: &str, comm: &str) -> String {
    [executable.unwrap_or(""), filename]
        .into_iter()
        .map(basename)
        .find(|b| !b.is_empty())
        .unwrap_or(comm)
        .to_string()
}

impl Image {
    pub(super) fn new(
        name: String,
        executable: Option<String>,
        args: Vec<String>,
        truncated: bool,
    ) -> Self {
        Self {
            name,
            executable,
            command_line: args.join(" "),
            args,
            args_truncated: truncated,
        }
    }

    /// A copy whose args fit in `max` bytes (counting one NUL per arg, as
    /// the kernel does), or `None` if this one already fits.
    pub(super) fn capped(&self, max: usize) -> Option<Self> {
        let mut used = 0;
        for (i, a) in self.args.iter().enumerate() {
            if used + a.len() + 1 > max {
                let mut args = self.args[..i].to_vec();
                let room = max.saturating_sub(used + 1);
                if room > 0 {
                    args.push(a[..floor_char_boundary(a, room)].to_string());
                }
                return Some(Self {
                    command_line: args.join(" "),
                    args,
                    args_truncated: true,
                    ..self.clone()
                });
            }
            used += a.len() + 1;
        }
        None
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// One process as the table knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// tgid, global pid namespace.
    pub pid: u32,
    pub ppid: u32,
    pub sid: u32,
    pub pgid: u32,
    /// tgid inside its own pid namespace.
    pub ns_tgid: u32,
    pub pidns_inum: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// CLOCK_BOOTTIME ns; tick precision for processes seeded from /proc.
    pub start_boottime_ns: u64,
    /// Start in clock ticks (`/proc/<pid>/stat` field 22): the identity
    /// that tells a reused pid apart.
    pub start_ticks: u64,
    pub entity_id: Arc<str>,
    pub image: Arc<Image>,
    pub interactive: bool,
    pub tty: Option<Tty>,
    /// The container the process runs in, as its cgroup names it.
    pub container: Option<Arc<ContainerRef>>,
    pub working_directory: Option<Arc<str>>,
    /// Its JSON as a parent and as another process's leader, once written.
    pub rendered: Rendered<2>,
}

impl ProcessInfo {
    /// The id of its container; `None` on the host.
    pub fn container_id(&self) -> Option<&str> {
        self.container.as_deref().map(|c| c.id.as_str())
    }
}

/// The entry leader of a process and how it entered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryLeader {
    /// The leader as it was when it became one.
    pub leader: Arc<ProcessInfo>,
    pub kind: EntryType,
    /// Its JSON as another process's entry leader, once written (shared
    /// by the processes that inherit it).
    pub rendered: Arc<Rendered<1>>,
}

/// A relative (parent, session or group leader) by pid, with its details
/// when the table knows the process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relative {
    pub pid: u32,
    /// Computable without the table entry when the start time is known
    /// (the kernel sends the parent's), so rules can still join on it.
    pub entity_id: Option<Arc<str>>,
    pub start_boottime_ns: Option<u64>,
    pub info: Option<Arc<ProcessInfo>>,
}

impl Relative {
    pub(super) fn known(info: &Arc<ProcessInfo>) -> Self {
        Self {
            pid: info.pid,
            entity_id: Some(info.entity_id.clone()),
            start_boottime_ns: Some(info.start_boottime_ns),
            info: Some(info.clone()),
        }
    }
}

/// A snapshot of a process and its relatives, taken when its event was
/// processed; what the ECS builder turns into `process.*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessView {
    pub process: Arc<ProcessInfo>,
    /// `None` only for pid 1 and the kernel's own tasks (ppid 0).
    pub parent: Option<Relative>,
    pub session_leader: Option<Relative>,
    pub group_leader: Option<Relative>,
    pub entry_leader: Option<EntryLeader>,
}

impl ProcessView {
    /// ECS `process.entry_leader.same_as_process`.
    pub fn entry_leader_is_self(&self) -> bool {
        self.entry_leader
            .as_ref()
            .is_some_and(|e| same_process(&e.leader, &self.process))
    }
}

/// One process (its pid and start), whichever snapshot of it.
pub fn same_process(a: &ProcessInfo, b: &ProcessInfo) -> bool {
    a.pid == b.pid && a.start_ticks == b.start_ticks
}
