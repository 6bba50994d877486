//! The identity every record carries, read from a `task_struct`.

/// `task_struct.comm` length.
pub const COMM_BYTES: usize = 16;

/// Identity fields read from a `task_struct`, shared by every event kind.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskIds {
    /// Thread id (kernel `pid`), global namespace.
    pub pid: u32,
    /// Process id (kernel `tgid`), global namespace.
    pub tgid: u32,
    /// `real_parent->tgid`.
    pub ppid: u32,
    /// Session id (global).
    pub sid: u32,
    /// Process-group id (global).
    pub pgid: u32,
    /// tgid as seen inside the task's own pid namespace.
    pub ns_tgid: u32,
    /// Inode number of the task's pid namespace.
    pub pidns_inum: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub _pad: u32,
    /// `task->start_boottime` (ns since boot, like /proc/<pid>/stat field 22).
    pub start_boottime_ns: u64,
    /// `real_parent->start_boottime`.
    pub parent_start_boottime_ns: u64,
    /// `bpf_ktime_get_boot_ns()` when the event was captured.
    pub ktime_ns: u64,
    pub comm: [u8; COMM_BYTES],
}
