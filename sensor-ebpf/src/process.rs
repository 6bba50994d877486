//! The process family: exec, fork and exit at the scheduler tracepoints.

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_smp_processor_id, bpf_probe_read_kernel_str_bytes,
        generated::{bpf_probe_read_kernel, bpf_probe_read_kernel_str, bpf_probe_read_user},
    },
    macros::{btf_tracepoint, map, raw_tracepoint},
    maps::{Array, PerCpuArray, ProgramArray},
    programs::{BtfTracePointContext, RawTracePointContext},
};
use aya_log_ebpf::{debug, trace};
use sensor_common::{
    CGROUP_DEPTH, CGROUP_V2_DEFAULT, DROP_EXEC, DROP_EXIT, DROP_FORK, DROP_SCRATCH,
    EXEC_ARGS_READ_FAILED, EXEC_ARGS_TRUNCATED, EXEC_CWD_TRUNCATED, EXEC_ENV_TRUNCATED,
    EXEC_EXE_LAYER_UNKNOWN, EXEC_EXE_OVERLAY, EXEC_EXE_TRUNCATED, EXEC_EXE_UNLINKED,
    EXEC_EXE_UPPER, EXEC_FD0_CHR, EXEC_FD2_CHR, EXEC_FILENAME_TRUNCATED, EXEC_SCRATCH_BYTES,
    EventKind, ExecHeader, ExitEvent, ForkEvent, MAX_ARGS_BYTES, MAX_CWD_BYTES, MAX_ENV_BYTES,
    MAX_EXE_BYTES, MAX_FILENAME_BYTES, OFFSET_UNKNOWN,
};

use crate::{
    EVENTS, configured, count_drop,
    path::{self, Names},
    rd, rd_ptr,
    task::fill_task_ids,
    wakeup_flags,
};

/// One exec record assembled per CPU. A plain array indexed by CPU rather
/// than a per-CPU map: per-CPU values are capped at 32 KiB. The agent sizes
/// it to the number of possible CPUs; programs run with migration disabled.
#[map]
static SCRATCH: Array<[u8; EXEC_SCRATCH_BYTES]> = Array::with_max_entries(256, 0);

/// Dentry name pointers collected by the executable walk, per CPU.
#[map]
static NAME_PTRS: PerCpuArray<Names> = PerCpuArray::with_max_entries(1, 0);

const HDR: usize = size_of::<ExecHeader>();
const S_IFMT: u16 = 0o170000;
const S_IFCHR: u16 = 0o020000;

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

/// The working-directory part of the exec record, entered by a tail call
/// from the exec program: a second path walk inlined there took the
/// verifier past its 1M-instruction limit at every walk depth (measured on
/// 6.18). One array per program type (raw_tp, tp_btf).
#[map]
static EXEC_CWD_RAW: ProgramArray = ProgramArray::with_max_entries(1, 0);
#[map]
static EXEC_CWD_BTF: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[inline(always)]
fn handle_exec<C: EbpfContext>(ctx: &C, task: u64, bprm: u64, cwd: &ProgramArray) {
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
    h._pad = 0;
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
    let exe_len = exe_path(base, exe_start, rd_ptr(bprm, cfg!(offsets.bprm_file)), h);
    h.exe_len = exe_len as u32;

    exe_provenance(rd_ptr(bprm, cfg!(offsets.bprm_file)), h);

    let env_start = exe_start + exe_len;
    let env_len = copy_env(base, env_start, mm, h);
    h.env_len = env_len as u32;

    // The working directory, here rather than a readlink of
    // /proc/<pid>/cwd per exec in user space (13 % of the agent's CPU in an
    // exec storm, `perf`, 2026-12-07), is walked by the program entered
    // next, which sends the record.
    h.cwd_len = 0;
    unsafe { cwd.tail_call(ctx, 0) };
    // Not entered (no program in the array): sent without it; user space
    // then reads /proc.
    h.flags |= EXEC_CWD_TRUNCATED;
    send_exec(ctx, base);
}

/// The exec record's second part: the working directory, then the send.
#[inline(always)]
fn handle_exec_cwd<C: EbpfContext>(ctx: &C, task: u64) {
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(buf) = SCRATCH.get_ptr_mut(cpu) else {
        count_drop(DROP_SCRATCH);
        return;
    };
    let base = buf as *mut u8;
    // SAFETY: the exec program just assembled this CPU's record, and a
    // tracepoint program does not nest on one CPU.
    let h = unsafe { &mut *(base as *mut ExecHeader) };
    // Walked into the scratch's last region, at a constant offset, then
    // moved behind the record's other parts: written at their variable
    // end directly, the walk took the verifier 386 k instructions (0.5 s
    // here, tens of seconds in an emulated guest).
    let cwd_len = cwd_path(base, CWD_AT as u64, task, h);
    let start = record_len(h);
    if cwd_len > 0 && cwd_len <= MAX_CWD_BYTES as u64 && start < CWD_AT as u64 {
        // Forward and dst below src: an overlap copies right.
        unsafe {
            bpf_probe_read_kernel(
                base.add(start as usize) as *mut _,
                cwd_len as u32,
                base.add(CWD_AT) as *const _,
            )
        };
    }
    h.cwd_len = cwd_len as u32;
    send_exec(ctx, base);
}

/// Where the working directory is walked into: past the longest argv,
/// execve path, executable and environment, so it never overlaps them.
const CWD_AT: usize = HDR + MAX_ARGS_BYTES + MAX_FILENAME_BYTES + MAX_EXE_BYTES + MAX_ENV_BYTES;
const _: () = assert!(CWD_AT + MAX_CWD_BYTES == EXEC_SCRATCH_BYTES);

/// Bytes of the record assembled so far, each part bounded for the
/// verifier (the lengths are read back from map memory).
#[inline(always)]
fn record_len(h: &ExecHeader) -> u64 {
    let part = |len: u32, max: usize| u64::from(len).min(max as u64);
    HDR as u64
        + part(h.args_len, MAX_ARGS_BYTES)
        + part(h.filename_len, MAX_FILENAME_BYTES)
        + part(h.exe_len, MAX_EXE_BYTES)
        + part(h.env_len, MAX_ENV_BYTES)
        + part(h.cwd_len, MAX_CWD_BYTES)
}

/// Sends this CPU's exec record, then logs what its walks had to cut.
#[inline(always)]
fn send_exec<C: EbpfContext>(ctx: &C, base: *mut u8) {
    let h = unsafe { &*(base as *const ExecHeader) };
    let total = record_len(h);
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
    if flags & EXEC_CWD_TRUNCATED != 0 {
        debug!(
            ctx,
            target: "sensor_ebpf",
            "exec of pid {}: working directory walk cut (depth {}); /proc is read",
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

/// `statfs.f_type` of overlayfs (include/uapi/linux/magic.h).
const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;

/// Where the executable comes from: a file without a name (deleted, or a
/// memfd), or a container's overlay, and then whether from its upper
/// (writable) layer: written or changed since the container started.
#[inline(always)]
fn exe_provenance(file: u64, h: &mut ExecHeader) {
    let inode = rd_ptr(file, cfg!(offsets.file_inode));
    if inode == 0 {
        return;
    }
    if rd::<u32>(inode, cfg!(offsets.inode_nlink)) == 0 {
        h.flags |= EXEC_EXE_UNLINKED;
    }
    let sb = rd_ptr(inode, cfg!(offsets.inode_sb));
    if rd::<u64>(sb, cfg!(offsets.sb_magic)) != OVERLAYFS_SUPER_MAGIC {
        return;
    }
    h.flags |= EXEC_EXE_OVERLAY;
    let (vfs_inode, upper) = (cfg!(offsets.ovl_vfs_inode), cfg!(offsets.ovl_upperdentry));
    if vfs_inode == OFFSET_UNKNOWN || upper == OFFSET_UNKNOWN {
        h.flags |= EXEC_EXE_LAYER_UNKNOWN;
        return;
    }
    // The VFS inode is embedded in overlayfs' own inode.
    let ovl = inode - vfs_inode as u64;
    if rd_ptr(ovl, upper) != 0 {
        h.flags |= EXEC_EXE_UPPER;
    }
}

/// Writes the executable's resolved path (root first) at `base + start`;
/// returns its length, 0 (and `EXEC_EXE_TRUNCATED`) when the walk did not
/// reach the root or the path did not fit.
#[inline(always)]
fn exe_path(base: *mut u8, start: u64, file: u64, h: &mut ExecHeader) -> u64 {
    let Some(names) = NAME_PTRS.get_ptr_mut(0) else {
        return 0;
    };
    let names = unsafe { &mut *names };
    if file == 0 {
        h.flags |= EXEC_EXE_TRUNCATED;
        return 0;
    }
    let f_path = file + cfg!(offsets.file_f_path) as u64;
    let dentry = rd_ptr(f_path, cfg!(offsets.path_dentry));
    let vfsmnt = rd_ptr(f_path, cfg!(offsets.path_mnt));
    if !path::collect::<true>(names, dentry, vfsmnt) {
        h.flags |= EXEC_EXE_TRUNCATED;
        return 0;
    }
    match path::write_root_first(base, start, EXEC_SCRATCH_BYTES, MAX_EXE_BYTES as u64, names) {
        Some(len) => len,
        None => {
            h.flags |= EXEC_EXE_TRUNCATED;
            0
        }
    }
}

/// Writes the task's working directory (root first) at `base + start`;
/// returns its length, 0 (and `EXEC_CWD_TRUNCATED`) when the walk did not
/// reach the root or the path did not fit.
#[inline(always)]
fn cwd_path(base: *mut u8, start: u64, task: u64, h: &mut ExecHeader) -> u64 {
    let Some(names) = NAME_PTRS.get_ptr_mut(0) else {
        h.flags |= EXEC_CWD_TRUNCATED;
        return 0;
    };
    let names = unsafe { &mut *names };
    let fs = rd_ptr(task, cfg!(offsets.task_fs));
    if fs == 0 {
        h.flags |= EXEC_CWD_TRUNCATED;
        return 0;
    }
    let pwd = fs + cfg!(offsets.fs_pwd) as u64;
    let dentry = rd_ptr(pwd, cfg!(offsets.path_dentry));
    let vfsmnt = rd_ptr(pwd, cfg!(offsets.path_mnt));
    if !path::collect::<false>(names, dentry, vfsmnt) {
        h.flags |= EXEC_CWD_TRUNCATED;
        return 0;
    }
    match path::write_root_first(base, start, EXEC_SCRATCH_BYTES, MAX_CWD_BYTES as u64, names) {
        Some(len) => len,
        None => {
            h.flags |= EXEC_CWD_TRUNCATED;
            0
        }
    }
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
    handle_exec(&ctx, ctx.arg::<u64>(0), ctx.arg::<u64>(2), &EXEC_CWD_BTF);
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sensor_exec_raw(ctx: RawTracePointContext) -> i32 {
    handle_exec(&ctx, ctx.arg::<u64>(0), ctx.arg::<u64>(2), &EXEC_CWD_RAW);
    0
}

/// Entered from `sensor_exec` (loaded for the same hook, never attached).
#[btf_tracepoint(function = "sched_process_exec")]
pub fn sensor_exec_cwd(ctx: BtfTracePointContext) -> i32 {
    handle_exec_cwd(&ctx, ctx.arg::<u64>(0));
    0
}

/// Entered from `sensor_exec_raw` (loaded, never attached).
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sensor_exec_cwd_raw(ctx: RawTracePointContext) -> i32 {
    handle_exec_cwd(&ctx, ctx.arg::<u64>(0));
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
