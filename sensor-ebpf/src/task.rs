//! Reading a task's identity: ids, namespaces and credentials.

use aya_ebpf::helpers::bpf_ktime_get_boot_ns;
use sensor_common::TaskIds;

use crate::{rd, rd_ptr};

/// `nr` of `pid->numbers[level]`, plus that level's namespace pointer.
#[inline(always)]
fn upid(pid: u64, level: u32) -> (u32, u64) {
    if pid == 0 {
        return (0, 0);
    }
    let at = cfg!(offsets.pid_numbers) + level * cfg!(offsets.upid_size);
    (
        rd::<u32>(pid, at + cfg!(offsets.upid_nr)),
        rd_ptr(pid, at + cfg!(offsets.upid_ns)),
    )
}

/// `signal->pids[kind]`.
#[inline(always)]
fn signal_pid(signal: u64, kind: u32) -> u64 {
    rd_ptr(signal, cfg!(offsets.signal_pids) + kind * 8)
}

#[inline(always)]
pub(crate) fn fill_task_ids(task: u64, ids: &mut TaskIds) {
    let parent = rd_ptr(task, cfg!(offsets.task_real_parent));
    let signal = rd_ptr(task, cfg!(offsets.task_signal));
    let cred = rd_ptr(task, cfg!(offsets.task_cred));

    ids._pad = 0;
    ids.pid = rd(task, cfg!(offsets.task_pid));
    ids.tgid = rd(task, cfg!(offsets.task_tgid));
    ids.ppid = rd(parent, cfg!(offsets.task_tgid));
    ids.start_boottime_ns = rd(task, cfg!(offsets.task_start_boottime));
    ids.parent_start_boottime_ns = rd(parent, cfg!(offsets.task_start_boottime));
    ids.sid = upid(signal_pid(signal, cfg!(offsets.pidtype_sid)), 0).0;
    ids.pgid = upid(signal_pid(signal, cfg!(offsets.pidtype_pgid)), 0).0;

    // The tgid as the process's own pid namespace numbers it, and that
    // namespace's inode: the deepest level of its struct pid.
    let tgid_pid = signal_pid(signal, cfg!(offsets.pidtype_tgid));
    let level: u32 = rd(tgid_pid, cfg!(offsets.pid_level));
    let (ns_tgid, ns) = upid(tgid_pid, level & 31);
    ids.ns_tgid = ns_tgid;
    ids.pidns_inum = rd(ns, cfg!(offsets.pidns_inum));

    ids.uid = rd(cred, cfg!(offsets.cred_uid));
    ids.euid = rd(cred, cfg!(offsets.cred_euid));
    ids.gid = rd(cred, cfg!(offsets.cred_gid));
    ids.egid = rd(cred, cfg!(offsets.cred_egid));
    ids.ktime_ns = unsafe { bpf_ktime_get_boot_ns() };
    ids.comm = rd(task, cfg!(offsets.task_comm));
}

/// Nesting level of the task's pid namespace: 0 on the host, more inside
/// a container (or any other pid namespace).
#[inline(always)]
pub(crate) fn pid_ns_level(task: u64) -> u32 {
    let signal = rd_ptr(task, cfg!(offsets.task_signal));
    let tgid_pid = signal_pid(signal, cfg!(offsets.pidtype_tgid));
    rd(tgid_pid, cfg!(offsets.pid_level))
}
