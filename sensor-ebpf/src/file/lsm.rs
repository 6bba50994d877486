//! The BPF LSM way in, where the kernel runs BPF LSM programs (booted with
//! `lsm=...,bpf`). The hooks hand over the kernel's own resolved objects,
//! so no fd lookup, no dirfd and no syscall string is involved:
//!
//! - `file_open` gets the `struct file`, after the open's permission checks
//!   (the same filter and record as the tracepoint, `open::report_open`);
//! - `path_unlink`, `path_rmdir`, `path_rename`, `path_chmod`, `path_link`
//!   and `path_symlink` get the directory's `struct path` and the dentry
//!   (a negative one for what is being created), walked like an open's.
//!   The record is pending, as at the syscall tracepoints: the exit of the
//!   syscall (`named::sensor_file_named_exit`) says whether it succeeded.
//!
//! `path_mknod` is not hooked: an `O_CREAT` open calls it too, which
//! would report each creation twice. mknod stays at its tracepoint.
//!
//! Each hook returns 0: the sensor watches, it never refuses.

use aya_ebpf::{helpers::bpf_get_current_task, macros::lsm, programs::LsmContext};
use sensor_common::file::{
    FILE_PATH_BYTES, FILE_PATH_TRUNCATED, FILE_PATH2_TRUNCATED, FILE_SCRATCH_BYTES, FILTER_ENABLED,
    FSTAT_SEEN, FSTAT_UNWATCHED, FileAction,
};

use super::{
    HDR, Held, Scratch, filter, in_scope, load_name_key, name_watched, named::emit, names_watched,
    open::report_open, path_of, path_watched, paths_watched, stat, watched_everywhere,
};
use crate::{configured, launder, path, rd_ptr};

/// `security_file_open(struct file *file)`.
#[lsm(hook = "file_open")]
pub fn sensor_lsm_file_open(ctx: LsmContext) -> i32 {
    if configured() && filter(FILTER_ENABLED) != 0 {
        stat(FSTAT_SEEN);
        let file = ctx.arg::<*const u8>(0) as u64;
        if file != 0 {
            // No syscall here: an open by exec or by the kernel counts too.
            if let Some(held) = Held::take() {
                report_open(&mut *held.0, unsafe { bpf_get_current_task() }, file, 0);
            }
        }
    }
    0
}

/// Writes the path of `(dentry, vfsmnt)` at `at` in the record and returns
/// its length. `s.complete` says whether the walk reached the root,
/// `s.by_path` whether the name or the path is watched for `bit` (both in
/// memory: see `Scratch`).
#[inline(always)]
fn one_name(s: &mut Scratch, at: u64, dentry: u64, vfsmnt: u64, bit: u32) -> Option<u64> {
    let mut watched = watched_everywhere(bit);
    if !watched && names_watched(bit) {
        let name = rd_ptr(dentry, cfg!(offsets.dentry_name));
        watched = load_name_key(s, name as *const u8) && name_watched(s, bit);
    }
    unsafe {
        core::ptr::write_volatile(&mut s.by_path, u64::from(watched));
        let complete = path::collect::<false>(&mut s.names, dentry, vfsmnt);
        core::ptr::write_volatile(&mut s.complete, u64::from(complete));
    }
    let at = launder(&mut s.tmp[2], at);
    let len = path::write_root_first(
        s.record.as_mut_ptr(),
        at,
        FILE_SCRATCH_BYTES,
        FILE_PATH_BYTES as u64,
        &s.names,
    )?;
    let watched = unsafe { core::ptr::read_volatile(&s.by_path) } != 0
        || (paths_watched(bit) && path_watched(s, at, len, bit));
    unsafe { core::ptr::write_volatile(&mut s.by_path, u64::from(watched)) };
    Some(len)
}

/// Filters and reports a path operation on `(dentry, vfsmnt)`, and for a
/// rename its new name `(dentry2, vfsmnt2)` (0 otherwise).
#[inline(always)]
fn report_path(
    action: FileAction,
    dentry: u64,
    vfsmnt: u64,
    dentry2: u64,
    vfsmnt2: u64,
    mode: u32,
) {
    if !configured() || filter(FILTER_ENABLED) == 0 {
        return;
    }
    stat(FSTAT_SEEN);
    let task = unsafe { bpf_get_current_task() };
    let bit = action.bit();
    let Some(where_flag) = in_scope(task, bit) else {
        stat(FSTAT_UNWATCHED);
        return;
    };
    // Nothing watched for this action: no walk.
    if !watched_everywhere(bit) && !names_watched(bit) && !paths_watched(bit) {
        stat(FSTAT_UNWATCHED);
        return;
    }
    let Some(held) = Held::take() else {
        return;
    };
    let s = &mut *held.0;
    unsafe { core::ptr::write_volatile(&mut s.where_flag, where_flag as u64) };
    if dentry == 0 || vfsmnt == 0 {
        return;
    }
    let Some(len1) = one_name(s, HDR as u64, dentry, vfsmnt, bit) else {
        stat(FSTAT_UNWATCHED);
        return;
    };
    let mut flags = 0;
    if unsafe { core::ptr::read_volatile(&s.complete) } == 0 {
        flags |= FILE_PATH_TRUNCATED;
    }
    let mut watched = unsafe { core::ptr::read_volatile(&s.by_path) } != 0;
    let mut len2 = 0;
    unsafe {
        core::ptr::write_volatile(&mut s.first_len, len1);
        core::ptr::write_volatile(&mut s.first_flags, flags as u64);
        core::ptr::write_volatile(&mut s.first_watched, u64::from(watched));
    }
    if dentry2 != 0 && vfsmnt2 != 0 {
        let second = one_name(s, HDR as u64 + len1, dentry2, vfsmnt2, bit);
        flags = unsafe { core::ptr::read_volatile(&s.first_flags) } as u32;
        watched = unsafe { core::ptr::read_volatile(&s.first_watched) } != 0;
        if let Some(l) = second {
            len2 = l;
            watched |= unsafe { core::ptr::read_volatile(&s.by_path) } != 0;
            if unsafe { core::ptr::read_volatile(&s.complete) } == 0 {
                flags |= FILE_PATH2_TRUNCATED;
            }
        }
    }
    if !watched {
        stat(FSTAT_UNWATCHED);
        return;
    }
    let len1 = unsafe { core::ptr::read_volatile(&s.first_len) };
    let flags = flags | unsafe { core::ptr::read_volatile(&s.where_flag) } as u32;
    emit(s, task, action as u32, 0, flags, mode, len1, len2);
}

/// `(dentry, vfsmnt)` of the `struct path *` in argument `i`.
#[inline(always)]
fn path_arg(ctx: &LsmContext, i: usize) -> (u64, u64) {
    let p = ctx.arg::<*const u8>(i) as u64;
    if p == 0 { (0, 0) } else { path_of(p) }
}

/// A dentry argument under the mount of the directory path in `dir`.
#[inline(always)]
fn in_dir(ctx: &LsmContext, dir: usize, dentry: usize) -> (u64, u64) {
    let (_, mnt) = path_arg(ctx, dir);
    (ctx.arg::<*const u8>(dentry) as u64, mnt)
}

/// `security_path_unlink(const struct path *dir, struct dentry *dentry)`.
#[lsm(hook = "path_unlink")]
pub fn sensor_lsm_path_unlink(ctx: LsmContext) -> i32 {
    let (d, m) = in_dir(&ctx, 0, 1);
    report_path(FileAction::Delete, d, m, 0, 0, 0);
    0
}

/// `security_path_rmdir(const struct path *dir, struct dentry *dentry)`.
#[lsm(hook = "path_rmdir")]
pub fn sensor_lsm_path_rmdir(ctx: LsmContext) -> i32 {
    let (d, m) = in_dir(&ctx, 0, 1);
    report_path(FileAction::Delete, d, m, 0, 0, 0);
    0
}

/// `security_path_rename(const struct path *old_dir, struct dentry
/// *old_dentry, const struct path *new_dir, struct dentry *new_dentry, ...)`.
#[lsm(hook = "path_rename")]
pub fn sensor_lsm_path_rename(ctx: LsmContext) -> i32 {
    let (d, m) = in_dir(&ctx, 0, 1);
    let (d2, m2) = in_dir(&ctx, 2, 3);
    report_path(FileAction::Rename, d, m, d2, m2, 0);
    0
}

/// `security_path_chmod(const struct path *path, umode_t mode)`.
#[lsm(hook = "path_chmod")]
pub fn sensor_lsm_path_chmod(ctx: LsmContext) -> i32 {
    let (d, m) = path_arg(&ctx, 0);
    let mode = ctx.arg::<u64>(1) as u32 & 0xffff;
    report_path(FileAction::Chmod, d, m, 0, 0, mode);
    0
}

/// `security_path_link(struct dentry *old_dentry, const struct path
/// *new_dir, struct dentry *new_dentry)`: the new name is what is created.
#[lsm(hook = "path_link")]
pub fn sensor_lsm_path_link(ctx: LsmContext) -> i32 {
    let (d, m) = in_dir(&ctx, 1, 2);
    report_path(FileAction::Create, d, m, 0, 0, 0);
    0
}

/// `security_path_symlink(const struct path *dir, struct dentry *dentry,
/// const char *old_name)`.
#[lsm(hook = "path_symlink")]
pub fn sensor_lsm_path_symlink(ctx: LsmContext) -> i32 {
    let (d, m) = in_dir(&ctx, 0, 1);
    report_path(FileAction::Create, d, m, 0, 0, 0);
    0
}
