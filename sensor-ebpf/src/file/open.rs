//! Opens, at the exit of open, openat, openat2 and creat: the returned fd
//! names the opened `struct file`, whose dentry the path is walked from.

use aya_ebpf::{helpers::bpf_get_current_task, macros::tracepoint, programs::TracePointContext};
use sensor_common::{
    EventKind,
    file::{
        FILE_PATH_BYTES, FILE_PATH_TRUNCATED, FILE_SCRATCH_BYTES, FSTAT_DROPPED, FSTAT_EMITTED,
        FSTAT_SEEN, FSTAT_TRUNCATED, FSTAT_UNWATCHED, FileAction, FileHeader,
    },
};

use super::{
    FileHead, HDR, Scratch, action_on, both_scopes, dentry_name, fd_file, filter, in_scope,
    load_name_key, name_may_be_watched, name_watched, names_watched, path_watched, paths_watched,
    scratch, stat, tp_field, watched_everywhere,
};
use crate::{EVENTS, configured, path, rd, task::fill_task_ids, wakeup_flags};

/// `file.f_mode`: this open created the file (include/linux/fs.h, 4.19+).
const FMODE_CREATED: u32 = 0x10_0000;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;

#[inline(always)]
fn handle_open_exit(ctx: &TracePointContext) {
    if !configured() || filter(sensor_common::file::FILTER_ENABLED) == 0 {
        return;
    }
    stat(FSTAT_SEEN);
    // sys_exit_* layout: common header (8), __syscall_nr (8), ret (16).
    let ret: i64 = tp_field(ctx, 16);
    if ret < 0 {
        return; // nothing was opened
    }
    let syscall: i32 = tp_field(ctx, 8);
    let task = unsafe { bpf_get_current_task() };
    let file = fd_file(task, ret as u64);
    if file == 0 {
        return;
    }
    if let Some(s) = scratch() {
        report_open(s, task, file, syscall as u32);
    }
}

/// Filters and reports the open of `file` by `task` (the tracepoint's
/// fd lookup, or the LSM hook's own argument), assembled in `s`. An
/// unwatched open costs the file's head, its name's length and first
/// byte, and a hint lookup: the scope (three reads) is checked first only
/// when it filters.
#[inline(always)]
pub(super) fn report_open(s: &mut Scratch, task: u64, file: u64, syscall: u32) {
    let head = FileHead::read(s, file);
    let f_flags: u32 = head.field(s, cfg!(offsets.file_f_flags));
    let f_mode: u32 = head.field(s, cfg!(offsets.file_f_mode));
    let action = if f_mode & FMODE_CREATED != 0 {
        FileAction::Create
    } else if f_flags & (O_WRONLY | O_RDWR | O_TRUNC | O_APPEND) != 0 {
        FileAction::OpenWrite
    } else {
        FileAction::OpenRead
    };
    let bit = action.bit();
    if !action_on(bit) || (!both_scopes() && in_scope(task, bit).is_none()) {
        stat(FSTAT_UNWATCHED);
        return;
    }
    let (dentry, vfsmnt) = head.path(s);

    let mut watched = watched_everywhere(bit);
    if !watched && names_watched(bit) {
        let (len, name) = dentry_name(s, dentry);
        // The hints first: copying and hashing the name was most of an
        // unwatched open's cost (`--bpf-stats`).
        watched = name_may_be_watched(len, name, bit)
            && load_name_key(s, name as *const u8)
            && name_watched(s, bit);
    }
    let by_path = !watched && paths_watched(bit);
    if !watched && !by_path {
        stat(FSTAT_UNWATCHED);
        return;
    }
    let Some(where_flag) = in_scope(task, bit) else {
        stat(FSTAT_UNWATCHED);
        return;
    };
    unsafe { core::ptr::write_volatile(&mut s.where_flag, where_flag as u64) };
    let inode: u64 = head.field(s, cfg!(offsets.file_inode));
    unsafe { core::ptr::write_volatile(&mut s.inode, inode) };

    unsafe {
        core::ptr::write_volatile(&mut s.by_path, u64::from(by_path));
        let complete = path::collect::<false>(&mut s.names, dentry, vfsmnt);
        core::ptr::write_volatile(&mut s.complete, u64::from(complete));
    }
    let base = s.record.as_mut_ptr();
    let Some(len) = path::write_root_first(
        base,
        HDR as u64,
        FILE_SCRATCH_BYTES,
        FILE_PATH_BYTES as u64,
        &s.names,
    ) else {
        stat(FSTAT_UNWATCHED);
        return;
    };
    let by_path = unsafe { core::ptr::read_volatile(&s.by_path) } != 0;
    if by_path && !path_watched(s, HDR as u64, len, bit) {
        stat(FSTAT_UNWATCHED);
        return;
    }

    let inode = unsafe { core::ptr::read_volatile(&s.inode) };
    let h = unsafe { &mut *(base as *mut FileHeader) };
    h.kind = EventKind::File as u32;
    h.action = action as u32;
    h.flags = unsafe { core::ptr::read_volatile(&s.where_flag) } as u32;
    if unsafe { core::ptr::read_volatile(&s.complete) } == 0 {
        h.flags |= FILE_PATH_TRUNCATED;
        stat(FSTAT_TRUNCATED);
    }
    h.syscall = syscall;
    fill_task_ids(task, &mut h.ids);
    h.ino = rd(inode, cfg!(offsets.inode_ino));
    h.mode = rd::<u16>(inode, cfg!(offsets.inode_mode)) as u32;
    h.open_flags = f_flags;
    h.path_len = len as u32;
    h.path2_len = 0;
    let total = HDR as u64 + len;
    if total > FILE_SCRATCH_BYTES as u64 {
        return;
    }
    let record = unsafe { core::slice::from_raw_parts(base as *const u8, total as usize) };
    if EVENTS.output::<[u8]>(record, wakeup_flags()).is_err() {
        stat(FSTAT_DROPPED);
    } else {
        stat(FSTAT_EMITTED);
    }
}

/// Attached to `syscalls/sys_exit_{open,openat,openat2,creat}`: one
/// program, verified once.
#[tracepoint]
pub fn sensor_file_open(ctx: TracePointContext) -> u32 {
    handle_open_exit(&ctx);
    0
}
