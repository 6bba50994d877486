//! Kernel programs of the sensor.
//!
//! Exec is captured at `sched_process_exec` (tp_btf, with a raw_tp twin the
//! agent falls back to), new processes at `sched_process_fork` and leavers at
//! `sched_process_exit`. There are no CO-RE relocations for Rust eBPF, so every
//! struct field is read at an offset the agent resolved from the running
//! kernel's BTF and installed in `SENSOR_CONFIG` before load.
#![no_std]
#![no_main]

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_smp_processor_id, bpf_ktime_get_boot_ns,
        bpf_probe_read_kernel_str_bytes,
        generated::{bpf_probe_read_kernel, bpf_probe_read_kernel_str, bpf_probe_read_user},
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::{Array, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use aya_log_ebpf::{debug, trace};
use sensor_common::{
    CGROUP_DEPTH, CGROUP_V2_DEFAULT, CONFIG_MAGIC, DROP_COUNTERS, DROP_EXEC, DROP_EXIT, DROP_FORK,
    DROP_SCRATCH, EXEC_ARGS_READ_FAILED, EXEC_ARGS_TRUNCATED, EXEC_ENV_TRUNCATED,
    EXEC_EXE_TRUNCATED, EXEC_FD0_CHR, EXEC_FD2_CHR, EXEC_FILENAME_TRUNCATED, EXEC_SCRATCH_BYTES,
    EventKind, ExecHeader, ExitEvent, ForkEvent, MAX_ARGS_BYTES, MAX_COMPONENT_BYTES,
    MAX_ENV_BYTES, MAX_EXE_BYTES, MAX_EXE_COMPONENTS, MAX_FILENAME_BYTES, READER_ASLEEP,
    RING_BYTES, SensorConfig, TaskIds,
};

/// Filled in by the agent before load (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
static SENSOR_CONFIG: SensorConfig = unsafe { core::mem::zeroed() };

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_COUNTERS, 0);

/// One exec record assembled per CPU. A plain array indexed by CPU rather
/// than a per-CPU map: per-CPU values are capped at 32 KiB. The agent sizes
/// it to the number of possible CPUs; programs run with migration disabled.
#[map]
static SCRATCH: Array<[u8; EXEC_SCRATCH_BYTES]> = Array::with_max_entries(256, 0);

/// Dentry name pointers collected by the executable walk, per CPU; the
/// last slot holds their count.
#[map]
static NAME_PTRS: PerCpuArray<[u64; MAX_EXE_COMPONENTS + 1]> = PerCpuArray::with_max_entries(1, 0);

/// Whether the agent sleeps waiting for a wake-up (`READER_ASLEEP`) or
/// polls the ring on its own timer (0); written by the agent only.
#[map]
static READER: Array<u32> = Array::with_max_entries(1, 0);

const HDR: usize = size_of::<ExecHeader>();
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// Ring-buffer flags for a record: wake the agent only when it sleeps. A
/// wake-up is an irq_work (a self-IPI, a VM exit on virtual machines) on
/// the CPU of the process being traced, measured at 5-20 µs per record
/// here, several times the program's own cost; a busy agent polls instead.
#[inline(always)]
fn wakeup_flags() -> u64 {
    match READER.get(0) {
        Some(&READER_ASLEEP) => BPF_RB_FORCE_WAKEUP,
        _ => BPF_RB_NO_WAKEUP,
    }
}
const S_IFMT: u16 = 0o170000;
const S_IFCHR: u16 = 0o020000;

/// Reads one config field; volatile so the compiler cannot fold the zeroes
/// it sees at build time (the verifier sees the real, frozen values).
#[allow(unused_macros)]
macro_rules! cfg {
    ($($field:ident).+) => {
        {
            #[allow(unused_unsafe)]
            unsafe { core::ptr::read_volatile(&SENSOR_CONFIG.$($field).+) }
        }
    };
}

/// Reads a `T` at `base + off` in kernel memory; zero when unreadable.
///
/// Branch-free on purpose: the helper zeroes the destination on failure, and
/// a `match` on its result would double the verifier's states at every read.
#[inline(always)]
fn rd<T: Copy>(base: u64, off: u32) -> T {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    unsafe {
        bpf_probe_read_kernel(
            v.as_mut_ptr() as *mut _,
            size_of::<T>() as u32,
            (base + off as u64) as *const _,
        );
        v.assume_init()
    }
}

#[inline(always)]
fn rd_ptr(base: u64, off: u32) -> u64 {
    rd::<u64>(base, off)
}

#[inline(always)]
fn count_drop(idx: u32) {
    if let Some(c) = DROPS.get_ptr_mut(idx) {
        unsafe { *c += 1 };
    }
}

#[inline(always)]
fn configured() -> bool {
    cfg!(magic) == CONFIG_MAGIC
}

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
fn fill_task_ids(task: u64, ids: &mut TaskIds) {
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

/// `(i_rdev, is a char device)` of the file at `fd` (0..=2 always exist:
/// the smallest fd table has 64 slots).
#[inline(always)]
fn fd_rdev(files: u64, fd: u32) -> (u32, bool) {
    let fdt = rd_ptr(files, cfg!(offsets.files_fdt));
    let fds = rd_ptr(fdt, cfg!(offsets.fdtable_fd));
    let file = rd_ptr(fds, fd * 8);
    let inode = rd_ptr(file, cfg!(offsets.file_inode));
    if inode == 0 {
        return (0, false);
    }
    let mode: u16 = rd(inode, cfg!(offsets.inode_mode));
    (
        rd(inode, cfg!(offsets.inode_rdev)),
        mode & S_IFMT == S_IFCHR,
    )
}

#[inline(always)]
fn fill_tty(task: u64, h: &mut ExecHeader) {
    let signal = rd_ptr(task, cfg!(offsets.task_signal));
    let tty = rd_ptr(signal, cfg!(offsets.signal_tty));
    if tty != 0 {
        let driver = rd_ptr(tty, cfg!(offsets.tty_driver));
        let major: i32 = rd(driver, cfg!(offsets.tty_driver_major));
        let minor_start: i32 = rd(driver, cfg!(offsets.tty_driver_minor_start));
        let index: i32 = rd(tty, cfg!(offsets.tty_index));
        h.tty_major = major as u32;
        h.tty_minor = (minor_start + index) as u32;
        let name = tty + cfg!(offsets.tty_name) as u64;
        let _ = unsafe { bpf_probe_read_kernel_str_bytes(name as *const u8, &mut h.tty_name) };
    }
    let files = rd_ptr(task, cfg!(offsets.task_files));
    let (rdev0, chr0) = fd_rdev(files, 0);
    let (rdev2, chr2) = fd_rdev(files, 2);
    h.fd0_rdev = rdev0;
    h.fd2_rdev = rdev2;
    if chr0 {
        h.flags |= EXEC_FD0_CHR;
    }
    if chr2 {
        h.flags |= EXEC_FD2_CHR;
    }
}

#[inline(always)]
fn fill_cgroup(task: u64, h: &mut ExecHeader) {
    h.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    let css_set = rd_ptr(task, cfg!(offsets.task_cgroups));
    let idx = cfg!(cgroup_subsys_idx);
    let cgroup = if idx == CGROUP_V2_DEFAULT {
        rd_ptr(css_set, cfg!(offsets.css_set_dfl_cgrp))
    } else {
        let css = rd_ptr(css_set, cfg!(offsets.css_set_subsys) + (idx & 63) * 8);
        rd_ptr(css, cfg!(offsets.css_cgroup))
    };
    let mut kn = rd_ptr(cgroup, cfg!(offsets.cgroup_kn));
    for i in 0..CGROUP_DEPTH {
        if kn == 0 {
            break;
        }
        let name = rd_ptr(kn, cfg!(offsets.kn_name));
        if name != 0 {
            let _ = unsafe {
                bpf_probe_read_kernel_str_bytes(name as *const u8, &mut h.cgroup_names[i])
            };
        }
        kn = rd_ptr(kn, cfg!(offsets.kn_parent));
    }
}

#[inline(always)]
fn handle_exec<C: EbpfContext>(ctx: &C, task: u64, bprm: u64) {
    if !configured() {
        return;
    }
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(buf) = SCRATCH.get_ptr_mut(cpu) else {
        count_drop(DROP_SCRATCH);
        return;
    };
    let base = buf as *mut u8;
    // SAFETY: the scratch value starts with room for an ExecHeader and is
    // only touched by this CPU while this program runs.
    let h = unsafe { &mut *(base as *mut ExecHeader) };
    // Field by field, not `*h = zeroed()`: that compiles to a byte-wise
    // memset loop the verifier walks 700 times. Strings only need their
    // first byte cleared; every number below is assigned.
    h.kind = EventKind::Exec as u32;
    h.flags = 0;
    h.tty_major = 0;
    h.tty_minor = 0;
    h.fd0_rdev = 0;
    h.fd2_rdev = 0;
    h.env_size = 0;
    h.tty_name[0] = 0;
    for name in h.cgroup_names.iter_mut() {
        name[0] = 0;
    }
    fill_task_ids(task, &mut h.ids);
    fill_tty(task, h);
    fill_cgroup(task, h);

    // argv lives in the new process's user memory, just written by exec.
    let mm = rd_ptr(task, cfg!(offsets.task_mm));
    let arg_start: u64 = rd(mm, cfg!(offsets.mm_arg_start));
    let arg_end: u64 = rd(mm, cfg!(offsets.mm_arg_end));
    let size = arg_end.saturating_sub(arg_start);
    h.args_size = size as u32;
    let mut limit = cfg!(max_args_bytes) as u64;
    if limit > MAX_ARGS_BYTES as u64 {
        limit = MAX_ARGS_BYTES as u64;
    }
    let mut len = size;
    if len > limit {
        len = limit;
        h.flags |= EXEC_ARGS_TRUNCATED;
    }
    if len > MAX_ARGS_BYTES as u64 {
        return; // unreachable; tells the verifier the bound
    }
    let args_dst = unsafe { base.add(HDR) };
    let ok =
        unsafe { bpf_probe_read_user(args_dst as *mut _, len as u32, arg_start as *const _) } == 0;
    if !ok {
        h.flags |= EXEC_ARGS_READ_FAILED;
        len = 0;
    }
    h.args_len = len as u32;

    // The path handed to execve, kept in the kernel's copy in bprm.
    let filename = rd_ptr(bprm, cfg!(offsets.bprm_filename));
    let mut flen: u64 = 0;
    if filename != 0 && len <= MAX_ARGS_BYTES as u64 {
        let dst = unsafe { base.add(HDR + len as usize) };
        let r = unsafe {
            bpf_probe_read_kernel_str(
                dst as *mut _,
                MAX_FILENAME_BYTES as u32,
                filename as *const _,
            )
        };
        if r > 0 {
            flen = (r - 1) as u64; // without the NUL
            if r as usize == MAX_FILENAME_BYTES {
                h.flags |= EXEC_FILENAME_TRUNCATED;
            }
        }
    }
    if flen > MAX_FILENAME_BYTES as u64 {
        flen = 0;
    }
    h.filename_len = flen as u32;

    let exe_start = HDR as u64 + len + flen;
    let exe_len = walk_exe_path(base, exe_start, rd_ptr(bprm, cfg!(offsets.bprm_file)), h);
    h.exe_len = exe_len as u32;

    let env_start = exe_start + exe_len;
    let env_len = copy_env(base, env_start, mm, h);
    h.env_len = env_len as u32;

    let total = env_start + env_len;
    if total > EXEC_SCRATCH_BYTES as u64 {
        return;
    }
    let record = unsafe { core::slice::from_raw_parts(base as *const u8, total as usize) };
    if EVENTS.output::<[u8]>(record, wakeup_flags()).is_err() {
        count_drop(DROP_EXEC);
    }
    // Last, with the header re-read from map memory: every path through
    // the walks reaches this point in the same state, so the verifier
    // checks the logging code once, not once per path (which passed its
    // 1M-instruction limit).
    log_exec_diagnostics(ctx, base as *const ExecHeader);
}

/// The kernel side's own diagnostics, through aya-log (target
/// `sensor_ebpf`). The agent sets `AYA_LOG_LEVEL` before load from its
/// `--log-level`; it is 0 unless `sensor_ebpf=debug` (or trace) is asked
/// for, and the verifier then drops these branches as dead code.
#[inline(always)]
fn log_exec_diagnostics<C: EbpfContext>(ctx: &C, h: *const ExecHeader) {
    // SAFETY: `h` points at this CPU's scratch header, written above.
    let (flags, pid, env_size) = unsafe {
        (
            core::ptr::read_volatile(&(*h).flags),
            core::ptr::read_volatile(&(*h).ids.tgid),
            core::ptr::read_volatile(&(*h).env_size),
        )
    };
    if flags & EXEC_ARGS_READ_FAILED != 0 {
        debug!(ctx, target: "sensor_ebpf", "exec of pid {}: reading argv from user memory failed", pid);
    }
    if flags & EXEC_EXE_TRUNCATED != 0 {
        debug!(
            ctx,
            target: "sensor_ebpf",
            "exec of pid {}: executable path walk cut (depth {}); the execve path is used",
            pid,
            cfg!(exe_walk_depth)
        );
    }
    if flags & EXEC_ENV_TRUNCATED != 0 {
        trace!(
            ctx,
            target: "sensor_ebpf",
            "exec of pid {}: environment block of {} bytes cut at {}",
            pid,
            env_size,
            cfg!(max_env_bytes)
        );
    }
}

/// Copies up to `max_env_bytes` of the new image's environment block to
/// `base + at`; returns the bytes copied (0 when off or unreadable). The
/// allow-listed variables are picked out in user space.
#[inline(always)]
fn copy_env(base: *mut u8, at: u64, mm: u64, h: &mut ExecHeader) -> u64 {
    let mut limit = cfg!(max_env_bytes) as u64;
    if limit == 0 || mm == 0 {
        return 0;
    }
    if limit > MAX_ENV_BYTES as u64 {
        limit = MAX_ENV_BYTES as u64;
    }
    let start: u64 = rd(mm, cfg!(offsets.mm_env_start));
    let end: u64 = rd(mm, cfg!(offsets.mm_env_end));
    let size = end.saturating_sub(start);
    h.env_size = size as u32;
    let mut len = size;
    if len > limit {
        len = limit;
        h.flags |= EXEC_ENV_TRUNCATED;
    }
    if len == 0 || len > MAX_ENV_BYTES as u64 || at > (EXEC_SCRATCH_BYTES - MAX_ENV_BYTES) as u64 {
        return 0;
    }
    let dst = unsafe { base.add(at as usize) };
    if unsafe { bpf_probe_read_user(dst as *mut _, len as u32, start as *const _) } != 0 {
        return 0;
    }
    len
}

/// Writes the executable's path components (leaf first, NUL-terminated) at
/// `base + start`, climbing dentries and crossing mounts up to the mount
/// namespace root, as d_path does. Returns the bytes written.
///
/// Two passes keep the verifier's work linear: the first only collects name
/// pointers (fixed slots), the second copies strings with one bounded cursor.
#[inline(always)]
fn walk_exe_path(base: *mut u8, start: u64, file: u64, h: &mut ExecHeader) -> u64 {
    let Some(names) = NAME_PTRS.get_ptr_mut(0) else {
        return 0;
    };
    let names = unsafe { &mut *names };
    let f_path = file + cfg!(offsets.file_f_path) as u64;
    let mut dentry = if file == 0 {
        0
    } else {
        rd_ptr(f_path, cfg!(offsets.path_dentry))
    };
    let mut vfsmnt = if file == 0 {
        0
    } else {
        rd_ptr(f_path, cfg!(offsets.path_mnt))
    };
    let mount_mnt = cfg!(offsets.mount_mnt) as u64;
    let depth = cfg!(exe_walk_depth) as usize;
    let mut n: usize = 0;
    let mut complete = false;
    for step in 0..MAX_EXE_COMPONENTS {
        if step >= depth || dentry == 0 || vfsmnt == 0 || n >= MAX_EXE_COMPONENTS {
            break;
        }
        let mnt_root = rd_ptr(vfsmnt, cfg!(offsets.vfsmount_mnt_root));
        let parent = rd_ptr(dentry, cfg!(offsets.dentry_parent));
        if dentry == mnt_root || dentry == parent {
            let mnt = vfsmnt - mount_mnt;
            let mnt_parent = rd_ptr(mnt, cfg!(offsets.mount_parent));
            if mnt_parent == mnt || mnt_parent == 0 {
                complete = true; // the namespace root
                break;
            }
            dentry = rd_ptr(mnt, cfg!(offsets.mount_mountpoint));
            vfsmnt = mnt_parent + mount_mnt;
        } else {
            names[n] = rd_ptr(dentry, cfg!(offsets.dentry_name));
            n += 1;
            dentry = parent;
        }
    }
    if !complete {
        h.flags |= EXEC_EXE_TRUNCATED;
        return 0;
    }
    // Round-trip the count through map memory: the verifier then checks the
    // copy loop once for an unknown n, instead of once per exact n it could
    // have from the walk (which blew past the 1M-instruction limit).
    unsafe { core::ptr::write_volatile(&mut names[MAX_EXE_COMPONENTS], n as u64) };
    let n = unsafe { core::ptr::read_volatile(&names[MAX_EXE_COMPONENTS]) } as usize;
    let mut pos: u64 = 0;
    // An index loop with an explicit bound is the shape the verifier accepts.
    #[allow(clippy::needless_range_loop)]
    for i in 0..MAX_EXE_COMPONENTS {
        if i >= n {
            break;
        }
        let off = start + pos;
        if off > (EXEC_SCRATCH_BYTES - MAX_COMPONENT_BYTES) as u64
            || pos > (MAX_EXE_BYTES - MAX_COMPONENT_BYTES) as u64
        {
            h.flags |= EXEC_EXE_TRUNCATED;
            return 0;
        }
        let r = unsafe {
            bpf_probe_read_kernel_str(
                base.add(off as usize) as *mut _,
                MAX_COMPONENT_BYTES as u32,
                names[i] as *const _,
            )
        };
        if r <= 0 {
            h.flags |= EXEC_EXE_TRUNCATED;
            return 0;
        }
        pos += r as u64;
    }
    if pos > MAX_EXE_BYTES as u64 {
        return 0;
    }
    pos
}

#[inline(always)]
fn handle_fork(child: u64) {
    if !configured() {
        return;
    }
    let pid: u32 = rd(child, cfg!(offsets.task_pid));
    let tgid: u32 = rd(child, cfg!(offsets.task_tgid));
    if pid != tgid {
        return; // a new thread, not a new process
    }
    match EVENTS.reserve::<ForkEvent>(0) {
        Some(mut entry) => {
            let ev = entry.as_mut_ptr();
            unsafe {
                (*ev).kind = EventKind::Fork as u32;
                (*ev)._pad = 0;
                fill_task_ids(child, &mut (*ev).child);
            }
            entry.submit(wakeup_flags());
        }
        None => count_drop(DROP_FORK),
    }
}

#[inline(always)]
fn handle_exit(task: u64) {
    if !configured() {
        return;
    }
    // do_exit() has already decremented signal->live when this fires: zero
    // means this was the last thread, so the process is gone (whichever
    // thread, leader or not, exits last).
    let signal = rd_ptr(task, cfg!(offsets.task_signal));
    let live: i32 = rd(signal, cfg!(offsets.signal_live));
    if live != 0 {
        return;
    }
    match EVENTS.reserve::<ExitEvent>(0) {
        Some(mut entry) => {
            let ev = entry.as_mut_ptr();
            unsafe {
                (*ev).kind = EventKind::Exit as u32;
                (*ev).exit_code = rd(task, cfg!(offsets.task_exit_code));
                fill_task_ids(task, &mut (*ev).ids);
            }
            entry.submit(wakeup_flags());
        }
        None => count_drop(DROP_EXIT),
    }
}

// sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sensor_exec(ctx: BtfTracePointContext) -> i32 {
    handle_exec(&ctx, ctx.arg::<u64>(0), ctx.arg::<u64>(2));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sensor_exec_raw(ctx: RawTracePointContext) -> i32 {
    handle_exec(&ctx, ctx.arg::<u64>(0), ctx.arg::<u64>(2));
    0
}

// sched_process_fork(struct task_struct *parent, struct task_struct *child)
#[btf_tracepoint(function = "sched_process_fork")]
pub fn sensor_fork(ctx: BtfTracePointContext) -> i32 {
    handle_fork(ctx.arg::<u64>(1));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sensor_fork_raw(ctx: RawTracePointContext) -> i32 {
    handle_fork(ctx.arg::<u64>(1));
    0
}

// sched_process_exit(struct task_struct *p, ...)
#[btf_tracepoint(function = "sched_process_exit")]
pub fn sensor_exit(ctx: BtfTracePointContext) -> i32 {
    handle_exit(ctx.arg::<u64>(0));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sensor_exit_raw(ctx: RawTracePointContext) -> i32 {
    handle_exit(ctx.arg::<u64>(0));
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
