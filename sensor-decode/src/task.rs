//! The task identity every record carries, and its terminal.

use sensor_common::TaskIds;

use crate::c_str_lossy;

/// Identity of a task as captured in the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskInfo {
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub sid: u32,
    pub pgid: u32,
    /// tgid inside the task's own pid namespace.
    pub ns_tgid: u32,
    pub pidns_inum: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// ns since boot, same clock as /proc/<pid>/stat starttime.
    pub start_boottime_ns: u64,
    pub parent_start_boottime_ns: u64,
    /// CLOCK_BOOTTIME ns when the event was captured.
    pub ktime_ns: u64,
    pub comm: String,
}

/// Device number split the way ECS reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CharDevice {
    pub major: u32,
    pub minor: u32,
}

impl CharDevice {
    /// Splits a kernel-internal dev_t (`major << 20 | minor`).
    pub fn from_kernel_dev(dev: u32) -> Self {
        Self {
            major: dev >> 20,
            minor: dev & ((1 << 20) - 1),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tty {
    pub device: CharDevice,
    /// e.g. `pts0`, as the kernel names it.
    pub name: String,
}

/// The tty major used by `/dev/tty` (the caller's controlling terminal).
const TTYAUX_MAJOR: u32 = 5;

/// ECS `process.interactive`: stdin and stderr are the controlling tty.
/// `/dev/tty` (5:0) is an alias for the controlling tty, so it counts too.
pub fn is_interactive(tty: Option<&Tty>, fd0: Option<CharDevice>, fd2: Option<CharDevice>) -> bool {
    let Some(tty) = tty else { return false };
    let is_ctty = |fd: Option<CharDevice>| match fd {
        Some(d) => d == tty.device || (d.major == TTYAUX_MAJOR && d.minor == 0),
        None => false,
    };
    is_ctty(fd0) && is_ctty(fd2)
}

pub(crate) fn task_info(ids: &TaskIds) -> TaskInfo {
    TaskInfo {
        pid: ids.pid,
        tgid: ids.tgid,
        ppid: ids.ppid,
        sid: ids.sid,
        pgid: ids.pgid,
        ns_tgid: ids.ns_tgid,
        pidns_inum: ids.pidns_inum,
        uid: ids.uid,
        euid: ids.euid,
        gid: ids.gid,
        egid: ids.egid,
        start_boottime_ns: ids.start_boottime_ns,
        parent_start_boottime_ns: ids.parent_start_boottime_ns,
        ktime_ns: ids.ktime_ns,
        comm: c_str_lossy(&ids.comm),
    }
}
