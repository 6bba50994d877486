//! unlink, rename, chmod, link, symlink and mknod, at their entry: at exit
//! a deleted or renamed file is no longer where it was. There is no
//! `struct file` to walk (but for fchmod), so the path is the resolved
//! directory it is relative to (the dirfd's file, or the cwd) joined with
//! the syscall's name. The record is marked pending; the exit sends the
//! return value, and user space reports only what succeeded.
//!
//! One program for all of them, attached to each syscall's tracepoint:
//! user space writes where each one's arguments are (`FILE_SYSCALLS`,
//! keyed by syscall number, which it knows for its architecture).

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task,
        generated::{bpf_probe_read_user, bpf_probe_read_user_str},
    },
    macros::{map, tracepoint},
    maps::{HashMap, LruHashMap, ProgramArray},
    programs::TracePointContext,
};
use sensor_common::{
    EventKind,
    file::{
        ARG_NONE, FILE_PATH_BYTES, FILE_PATH_TRUNCATED, FILE_PATH_UNNORMALISED,
        FILE_PATH2_TRUNCATED, FILE_PENDING, FILE_SCRATCH_BYTES, FILTER_ENABLED, FSTAT_DROPPED,
        FSTAT_EMITTED, FSTAT_SEEN, FSTAT_TRUNCATED, FSTAT_UNWATCHED, FileHeader, FileResult,
        SyscallShape,
    },
};

use super::{
    HDR, RECORD_BYTES, Scratch, fd_file, filter, in_scope, load_name_key, name_watched,
    names_watched, path_of, path_watched, paths_watched, scratch, stat, tp_field,
    watched_everywhere,
};
use crate::{EVENTS, configured, launder, path, rd_ptr, task::fill_task_ids, wakeup_flags};

#[map]
static FILE_SYSCALLS: HashMap<u32, SyscallShape> = HashMap::with_max_entries(64, 0);

/// Threads inside a reported syscall, until its exit sends the outcome.
/// LRU: an exit that never comes (the agent started mid-syscall) ages out.
#[map]
static PENDING: LruHashMap<u64, u32> = LruHashMap::with_max_entries(8192, 0);

const AT_FDCWD: i32 = -100;
/// Bytes of the syscall's name argument copied; the resolved directory
/// takes at most the rest of the path's room.
const NAME_BYTES: usize = 2048;
const DIR_BYTES: usize = FILE_PATH_BYTES - NAME_BYTES;
/// Leading `./` dropped from a relative name, at most.
const MAX_DOT_SLASH: usize = 4;
/// Bytes at the end of the name scanned for its last component and for
/// dot segments; a longer name counts as not normalised.
const SCAN_BYTES: usize = 512;

/// Tracepoint argument `i` (they start at byte 16, 8 bytes each).
#[inline(always)]
fn arg(ctx: &TracePointContext, i: u32) -> u64 {
    if i == ARG_NONE {
        return 0;
    }
    unsafe { ctx.read_at::<u64>(16 + 8 * (i & 7) as usize) }.unwrap_or(0)
}

#[inline(always)]
fn byte(s: &Scratch, i: u64) -> u8 {
    s.record[(i as usize) & (RECORD_BYTES - 1)]
}

/// `.`, `..` or an empty component follows a slash (or starts the name).
#[inline(always)]
fn dot_segment(s: &Scratch, i: u64) -> bool {
    let (a, b, c) = (byte(s, i), byte(s, i + 1), byte(s, i + 2));
    a == b'/' || (a == b'.' && (b == b'/' || b == 0 || (b == b'.' && (c == b'/' || c == 0))))
}

/// Finds the name's last component (`s.leaf`) and whether the name has
/// dot segments or doubled slashes, which the kernel cannot normalise.
#[inline(always)]
fn scan_name(s: &mut Scratch, start: u64, len: u64) -> bool {
    let start = launder(&mut s.tmp[0], start);
    let len = launder(&mut s.tmp[2], len);
    if start > FILE_SCRATCH_BYTES as u64 || len > FILE_PATH_BYTES as u64 {
        return true;
    }
    let (from, n) = if len > SCAN_BYTES as u64 {
        (start + len - SCAN_BYTES as u64, SCAN_BYTES as u64)
    } else {
        (start, len)
    };
    unsafe {
        core::ptr::write_volatile(&mut s.leaf, from);
        core::ptr::write_volatile(&mut s.unsure, u64::from(len > SCAN_BYTES as u64));
    }
    if byte(s, start) == b'.' && dot_segment(s, start) {
        unsafe { core::ptr::write_volatile(&mut s.unsure, 1) };
    }
    for k in 0..SCAN_BYTES as u64 {
        if k >= n {
            break;
        }
        let i = from + k;
        if byte(s, i) == b'/' {
            unsafe { core::ptr::write_volatile(&mut s.leaf, i + 1) };
            if dot_segment(s, i + 1) {
                unsafe { core::ptr::write_volatile(&mut s.unsure, 1) };
            }
        }
    }
    let leaf = unsafe { core::ptr::read_volatile(&s.leaf) };
    // A trailing slash leaves no name to match on.
    leaf >= start + len || unsafe { core::ptr::read_volatile(&s.unsure) } != 0
}

/// Writes the path this pass reports at `record[at..]`: with `file_fd`,
/// that file's own path (fchmod); else `name` as given when absolute, or
/// joined to the resolved directory `dfd` names (the cwd for `AT_FDCWD`
/// or `ARG_NONE`). Returns the length and the flags to set.
///
/// Every way in shares one walk and one scan (the choices are made on
/// pointers first), so each is verified once: inlined three times, this
/// program took 962 210 verified instructions (1.2 s on this machine,
/// about 2 minutes in an emulated guest).
#[inline(always)]
fn compose(
    s: &mut Scratch,
    task: u64,
    dfd: Option<i32>,
    file_fd: Option<u64>,
    name: u64,
    at: u64,
) -> Option<(u64, u32)> {
    let at = launder(&mut s.tmp[2], at);
    if at > (HDR + FILE_PATH_BYTES) as u64 {
        return None;
    }
    let whole = file_fd.is_some();
    let mut name = name;
    let mut first = 0u8;
    if !whole {
        // A leading `./` names the same file without it: dropped here, a
        // relative name stays one the kernel can match (tar chmods every
        // file it extracts as `./dir/file`; those records used to go to
        // user space only to be dropped there).
        for _ in 0..MAX_DOT_SLASH {
            // With something after it: `./` alone is the directory itself.
            let mut three = [0u8; 3];
            unsafe { bpf_probe_read_user(three.as_mut_ptr() as *mut _, 3, name as *const _) };
            if three[..2] != *b"./" || three[2] == 0 {
                break;
            }
            name += 2;
        }
        unsafe { bpf_probe_read_user(&mut first as *mut u8 as *mut _, 1, name as *const _) };
    }
    let base = s.record.as_mut_ptr();
    let mut flags = 0;
    let mut len: u64 = 0;
    if whole || first != b'/' {
        let fd = file_fd.or(match dfd {
            Some(fd) if fd != AT_FDCWD => Some(fd as u32 as u64),
            _ => None,
        });
        let p = match fd {
            Some(fd) => fd_file(task, fd) + cfg!(offsets.file_f_path) as u64,
            None => rd_ptr(task, cfg!(offsets.task_fs)) + cfg!(offsets.fs_pwd) as u64,
        };
        let (dentry, mnt) = path_of(p);
        // Live across the walk only through memory (one verifier state).
        unsafe {
            core::ptr::write_volatile(&mut s.tmp[4], u64::from(whole));
            core::ptr::write_volatile(
                &mut s.tmp[5],
                if whole { FILE_PATH_BYTES } else { DIR_BYTES } as u64,
            );
        }
        let complete = path::collect::<false>(&mut s.names, dentry, mnt);
        unsafe { core::ptr::write_volatile(&mut s.complete, u64::from(complete)) };
        let room = unsafe { core::ptr::read_volatile(&s.tmp[5]) };
        let dir = path::write_root_first(base, at, FILE_SCRATCH_BYTES, room, &s.names)?;
        if unsafe { core::ptr::read_volatile(&s.complete) } == 0 {
            flags |= FILE_PATH_TRUNCATED;
        }
        if unsafe { core::ptr::read_volatile(&s.tmp[4]) } != 0 {
            unsafe {
                core::ptr::write_volatile(&mut s.tmp[3], dir);
                core::ptr::write_volatile(&mut s.tmp[1], flags as u64);
            }
            // Only for its leaf: a path the kernel resolved is normal.
            scan_name(s, at, dir);
            let total = unsafe { core::ptr::read_volatile(&s.tmp[3]) };
            let flags = unsafe { core::ptr::read_volatile(&s.tmp[1]) } as u32;
            return Some((total, flags));
        }
        len = if dir == 1 { 0 } else { dir }; // the root: no second slash
        let off = (at + len) as usize & (RECORD_BYTES - 1);
        if off >= FILE_SCRATCH_BYTES {
            return None;
        }
        unsafe { *base.add(off) = b'/' };
        len += 1;
    }
    let off = ((at + len) as usize & (RECORD_BYTES - 1)) as u64;
    if off > (FILE_SCRATCH_BYTES - NAME_BYTES) as u64 {
        return None;
    }
    let r = unsafe {
        bpf_probe_read_user_str(
            base.add(off as usize) as *mut _,
            NAME_BYTES as u32,
            name as *const _,
        )
    };
    if r <= 1 {
        return None;
    }
    // Everything live across the scan goes through memory, so the scan
    // loop is verified once, not once per way of reaching it.
    unsafe {
        core::ptr::write_volatile(&mut s.tmp[3], len + (r - 1) as u64);
        core::ptr::write_volatile(&mut s.tmp[1], flags as u64);
    }
    let unnormalised = scan_name(s, off, (r - 1) as u64);
    let total = unsafe { core::ptr::read_volatile(&s.tmp[3]) };
    let flags = unsafe { core::ptr::read_volatile(&s.tmp[1]) } as u32;
    let flags = if unnormalised {
        flags | FILE_PATH_UNNORMALISED
    } else {
        flags
    };
    Some((total, flags))
}

/// Whether the path just composed at `record[at..]` is watched for `bit`.
#[inline(always)]
fn composed_watched(s: &mut Scratch, at: u64, len: u64, flags: u32, bit: u32) -> bool {
    let at = launder(&mut s.tmp[2], at);
    let len = launder(&mut s.tmp[3], len);
    if watched_everywhere(bit) {
        return true;
    }
    let unsure = flags & FILE_PATH_UNNORMALISED != 0;
    if names_watched(bit) && !unsure {
        let leaf = unsafe { core::ptr::read_volatile(&s.leaf) } as usize & (RECORD_BYTES - 1);
        if leaf < FILE_SCRATCH_BYTES - 1 {
            let p = unsafe { s.record.as_ptr().add(leaf) };
            if load_name_key(s, p) && name_watched(s, bit) {
                return true;
            }
        }
    }
    // A name the kernel could not normalise goes to user space, which
    // normalises it and applies the same watch set.
    (unsure && (paths_watched(bit) || names_watched(bit)))
        || (paths_watched(bit) && path_watched(s, at, len, bit))
}

/// The same program, entered again for a rename's new name: a second
/// inlined copy of the walk would double the verifier's work.
#[map]
static NAMED_AGAIN: ProgramArray = ProgramArray::with_max_entries(1, 0);

#[inline(always)]
fn handle_named_enter(ctx: &TracePointContext) {
    if !configured() || filter(FILTER_ENABLED) == 0 {
        return;
    }
    let Some(s) = scratch() else {
        return;
    };
    // Set only just before this program enters itself again, on this CPU
    // (a tracepoint program does not nest on one CPU).
    let second = unsafe { core::ptr::read_volatile(&s.again) } != 0;
    unsafe { core::ptr::write_volatile(&mut s.again, 0) };
    if !second {
        stat(FSTAT_SEEN);
    }
    // The BPF context of a syscall tracepoint is not the trace record:
    // its first 8 bytes are a pointer, then the syscall number, then the
    // arguments (kernel/trace/trace_syscalls.c, `syscall_tp_t`).
    let nr: i32 = tp_field(ctx, 8);
    let Some(shape) = (unsafe { FILE_SYSCALLS.get(nr as u32) }) else {
        return;
    };
    let shape = *shape;
    let bit = 1u32 << (shape.action & 31);
    let task = unsafe { bpf_get_current_task() };
    let Some(where_flag) = in_scope(task, bit) else {
        stat(FSTAT_UNWATCHED);
        return;
    };
    unsafe { core::ptr::write_volatile(&mut s.where_flag, where_flag as u64) };
    let dfd = |i: u32| (i != ARG_NONE).then(|| arg(ctx, i) as i32);

    // This pass's name: the first, or (second pass) a rename's new name,
    // written after the first.
    let (dfd_arg, path_arg, file_fd, at) = if second {
        let first_len = unsafe { core::ptr::read_volatile(&s.first_len) };
        (shape.dfd2, shape.path2, None, HDR as u64 + first_len)
    } else {
        let file_fd = (shape.fd != ARG_NONE).then(|| arg(ctx, shape.fd) as u32 as u64);
        (shape.dfd, shape.path, file_fd, HDR as u64)
    };
    // Through memory, so both passes reach the walk in one verifier state.
    let at = launder(&mut s.tmp[2], at);
    unsafe { core::ptr::write_volatile(&mut s.second, u64::from(second)) };
    let composed = compose(s, task, dfd(dfd_arg), file_fd, arg(ctx, path_arg), at);
    let second = unsafe { core::ptr::read_volatile(&s.second) } != 0;
    let (len, flags, watched) = match composed {
        Some((len, flags)) => (len, flags, composed_watched(s, at, len, flags, bit)),
        None if second => (0, 0, false), // the first name alone
        None => return,
    };
    if !second && shape.path2 != ARG_NONE {
        unsafe {
            core::ptr::write_volatile(&mut s.first_len, len);
            core::ptr::write_volatile(&mut s.first_flags, flags as u64);
            core::ptr::write_volatile(&mut s.first_watched, u64::from(watched));
            core::ptr::write_volatile(&mut s.again, 1);
        }
        unsafe { NAMED_AGAIN.tail_call(ctx, 0) };
        // Not entered (no program in the array): report the first name.
        unsafe { core::ptr::write_volatile(&mut s.again, 0) };
    }
    let (len1, len2, flags, watched) = if second {
        let first_flags = unsafe { core::ptr::read_volatile(&s.first_flags) } as u32;
        let mut f = first_flags | (flags & FILE_PATH_UNNORMALISED);
        if flags & FILE_PATH_TRUNCATED != 0 {
            f |= FILE_PATH2_TRUNCATED;
        }
        let first_watched = unsafe { core::ptr::read_volatile(&s.first_watched) } != 0;
        let first_len = unsafe { core::ptr::read_volatile(&s.first_len) };
        (first_len, len, f, first_watched || watched)
    } else {
        (len, 0, flags, watched)
    };
    if !watched {
        stat(FSTAT_UNWATCHED);
        return;
    }
    let mode = if shape.mode == ARG_NONE {
        0
    } else {
        arg(ctx, shape.mode) as u32
    };
    let flags = flags | unsafe { core::ptr::read_volatile(&s.where_flag) } as u32;
    emit(s, task, shape.action, nr as u32, flags, mode, len1, len2);
}

/// Sends the record assembled in `s` (header, first path, second path),
/// marked pending until the syscall's exit says how it went.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn emit(
    s: &mut Scratch,
    task: u64,
    action: u32,
    nr: u32,
    flags: u32,
    mode: u32,
    len: u64,
    len2: u64,
) {
    if flags & (FILE_PATH_TRUNCATED | FILE_PATH2_TRUNCATED) != 0 {
        stat(FSTAT_TRUNCATED);
    }
    let base = s.record.as_mut_ptr();
    let h = unsafe { &mut *(base as *mut FileHeader) };
    h.kind = EventKind::File as u32;
    h.action = action;
    h.flags = flags | FILE_PENDING;
    h.syscall = nr;
    fill_task_ids(task, &mut h.ids);
    h.ino = 0;
    h.mode = mode;
    h.open_flags = 0;
    h.path_len = len as u32;
    h.path2_len = len2 as u32;
    let total = HDR as u64 + len + len2;
    if total > FILE_SCRATCH_BYTES as u64 {
        return;
    }
    let record = unsafe { core::slice::from_raw_parts(base as *const u8, total as usize) };
    if EVENTS.output::<[u8]>(record, wakeup_flags()).is_err() {
        stat(FSTAT_DROPPED);
        return;
    }
    stat(FSTAT_EMITTED);
    let id = bpf_get_current_pid_tgid();
    let _ = PENDING.insert(id, 1, 0);
}

#[inline(always)]
fn handle_named_exit(ctx: &TracePointContext) {
    if !configured() {
        return;
    }
    let id = bpf_get_current_pid_tgid();
    if unsafe { PENDING.get(id) }.is_none() {
        return;
    }
    let _ = PENDING.remove(id);
    let ret: i64 = tp_field(ctx, 16);
    match EVENTS.reserve::<FileResult>(0) {
        Some(mut entry) => {
            let r = entry.as_mut_ptr();
            unsafe {
                (*r).kind = EventKind::FileResult as u32;
                (*r).tid = id as u32;
                (*r).ret = ret;
            }
            entry.submit(wakeup_flags());
        }
        None => stat(FSTAT_DROPPED),
    }
}

/// Attached to `syscalls/sys_enter_*` of every syscall in `FILE_SYSCALLS`.
#[tracepoint]
pub fn sensor_file_named(ctx: TracePointContext) -> u32 {
    handle_named_enter(&ctx);
    0
}

/// Attached to the matching `syscalls/sys_exit_*`.
#[tracepoint]
pub fn sensor_file_named_exit(ctx: TracePointContext) -> u32 {
    handle_named_exit(&ctx);
    0
}
