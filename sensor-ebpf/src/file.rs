//! The file family: opens (creation, write intent, watched reads) at the
//! syscall exit tracepoints, where the returned fd names the opened
//! `struct file`. The path is walked from that file's dentry, never taken
//! from the syscall's string argument (relative, dirfd-relative, or
//! rewritten by another thread after the check).
//!
//! Filtering happens here: an operation no watch covers costs the fd
//! lookup, the flag test and at most two hash lookups on the leaf name,
//! and never reaches the ring. Only actions that some path prefix is
//! watched for pay for the walk before the filter decides.

use aya_ebpf::{
    helpers::{
        bpf_get_current_task,
        generated::{bpf_probe_read_kernel, bpf_probe_read_kernel_str},
    },
    macros::{map, tracepoint},
    maps::{Array, HashMap, LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::TracePointContext,
};
use sensor_common::{
    EventKind,
    file::{
        FILE_IN_CONTAINER, FILE_PATH_BYTES, FILE_PATH_TRUNCATED, FILE_SCRATCH_BYTES, FILTER_ALL,
        FILTER_ENABLED, FILTER_EXTS, FILTER_NAMES, FILTER_PATHS, FILTER_SCOPE, FILTER_SLOTS,
        FSTAT_DROPPED, FSTAT_EMITTED, FSTAT_SEEN, FSTAT_SLOTS, FSTAT_TRUNCATED, FSTAT_UNWATCHED,
        FileAction, FileHeader, SCOPE_CONTAINER, SCOPE_HOST, WATCH_EXT_BYTES, WATCH_NAME_BYTES,
        WATCH_PATH_BYTES,
    },
};

use crate::{
    EVENTS, configured,
    path::{self, Names},
    rd, rd_ptr,
    task::{fill_task_ids, pid_ns_level},
    wakeup_flags,
};

#[map]
static FILE_FILTER: Array<u32> = Array::with_max_entries(FILTER_SLOTS, 0);

#[map]
static WATCH_PATHS: LpmTrie<[u8; WATCH_PATH_BYTES], u32> = LpmTrie::with_max_entries(4096, 0);

#[map]
static WATCH_NAMES: HashMap<[u8; WATCH_NAME_BYTES], u32> = HashMap::with_max_entries(4096, 0);

#[map]
static WATCH_EXTS: HashMap<[u8; WATCH_EXT_BYTES], u32> = HashMap::with_max_entries(1024, 0);

#[map]
static FILE_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(FSTAT_SLOTS, 0);

/// Everything one file record is assembled in, per CPU. The u64-aligned
/// parts come first (the keys are zeroed a word at a time).
#[repr(C)]
struct Scratch {
    names: Names,
    name_key: [u64; WATCH_NAME_BYTES / 8],
    ext_key: [u64; WATCH_EXT_BYTES / 8],
    /// Index of the name's last dot, through memory (see `leaf_watched`).
    dot: u64,
    path_key: Key<[u8; WATCH_PATH_BYTES]>,
    record: [u8; FILE_SCRATCH_BYTES],
}

#[map]
static FILE_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

const HDR: usize = size_of::<FileHeader>();
/// `file.f_mode`: this open created the file (include/linux/fs.h, 4.19+).
const FMODE_CREATED: u32 = 0x10_0000;
const O_WRONLY: u32 = 0o1;
const O_RDWR: u32 = 0o2;
const O_TRUNC: u32 = 0o1000;
const O_APPEND: u32 = 0o2000;

#[inline(always)]
fn filter(slot: u32) -> u32 {
    FILE_FILTER.get(slot).copied().unwrap_or(0)
}

#[inline(always)]
fn stat(slot: u32) {
    if let Some(c) = FILE_STATS.get_ptr_mut(slot) {
        unsafe { *c += 1 };
    }
}

/// The opened file behind `fd` in the current task.
#[inline(always)]
fn fd_file(task: u64, fd: u64) -> u64 {
    let files = rd_ptr(task, cfg!(offsets.task_files));
    let fdt = rd_ptr(files, cfg!(offsets.files_fdt));
    let fds = rd_ptr(fdt, cfg!(offsets.fdtable_fd));
    rd_ptr(fds + fd * 8, 0)
}

#[inline(always)]
fn handle_open_exit(ctx: &TracePointContext) {
    if !configured() {
        return;
    }
    let enabled = filter(FILTER_ENABLED);
    if enabled == 0 {
        return;
    }
    stat(FSTAT_SEEN);
    // sys_exit_* layout: common header (8), __syscall_nr (8), ret (16).
    let ret: i64 = unsafe { ctx.read_at(16) }.unwrap_or(-1);
    if ret < 0 {
        return; // nothing was opened
    }
    let syscall: i32 = unsafe { ctx.read_at(8) }.unwrap_or(0);
    let task = unsafe { bpf_get_current_task() };
    let file = fd_file(task, ret as u64);
    if file == 0 {
        return;
    }
    let f_flags: u32 = rd(file, cfg!(offsets.file_f_flags));
    let f_mode: u32 = rd(file, cfg!(offsets.file_f_mode));
    let action = if f_mode & FMODE_CREATED != 0 {
        FileAction::Create
    } else if f_flags & (O_WRONLY | O_RDWR | O_TRUNC | O_APPEND) != 0 {
        FileAction::OpenWrite
    } else {
        FileAction::OpenRead
    };
    let bit = action.bit();
    if enabled & bit == 0 {
        stat(FSTAT_UNWATCHED);
        return;
    }
    let in_container = pid_ns_level(task) != 0;
    let scope = if in_container {
        SCOPE_CONTAINER
    } else {
        SCOPE_HOST
    };
    if filter(FILTER_SCOPE) & scope == 0 {
        stat(FSTAT_UNWATCHED);
        return;
    }
    let Some(s) = FILE_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let s = unsafe { &mut *s };
    let f_path = file + cfg!(offsets.file_f_path) as u64;
    let dentry = rd_ptr(f_path, cfg!(offsets.path_dentry));
    let vfsmnt = rd_ptr(f_path, cfg!(offsets.path_mnt));

    let mut watched = filter(FILTER_ALL) & bit != 0;
    if !watched && (filter(FILTER_NAMES) | filter(FILTER_EXTS)) & bit != 0 {
        watched = leaf_watched(s, dentry, bit);
    }
    let by_path = !watched && filter(FILTER_PATHS) & bit != 0;
    if !watched && !by_path {
        stat(FSTAT_UNWATCHED);
        return;
    }

    let complete = path::collect(&mut s.names, dentry, vfsmnt);
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
    if by_path && !path_watched(s, len, bit) {
        stat(FSTAT_UNWATCHED);
        return;
    }

    let inode = rd_ptr(file, cfg!(offsets.file_inode));
    let h = unsafe { &mut *(base as *mut FileHeader) };
    h.kind = EventKind::File as u32;
    h.action = action as u32;
    h.flags = 0;
    if !complete {
        h.flags |= FILE_PATH_TRUNCATED;
        stat(FSTAT_TRUNCATED);
    }
    if in_container {
        h.flags |= FILE_IN_CONTAINER;
    }
    h.syscall = syscall as u32;
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

/// Whether the file's own name, or its extension, is watched for `bit`.
/// The keys stay in map memory (borrowed), not copied to the 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
#[inline(always)]
fn leaf_watched(s: &mut Scratch, dentry: u64, bit: u32) -> bool {
    for w in s.name_key.iter_mut() {
        unsafe { core::ptr::write_volatile(w, 0) };
    }
    let name = rd_ptr(dentry, cfg!(offsets.dentry_name));
    let r = unsafe {
        bpf_probe_read_kernel_str(
            s.name_key.as_mut_ptr() as *mut _,
            WATCH_NAME_BYTES as u32,
            name as *const _,
        )
    };
    if r <= 1 {
        return false;
    }
    let key = unsafe { &*(s.name_key.as_ptr() as *const [u8; WATCH_NAME_BYTES]) };
    if filter(FILTER_NAMES) & bit != 0
        && let Some(m) = unsafe { WATCH_NAMES.get(key) }
        && m & bit != 0
    {
        return true;
    }
    if filter(FILTER_EXTS) & bit == 0 {
        return false;
    }
    // The extension follows the last dot (not a leading one). The dot's
    // index goes through memory: tracked exactly, each position it could
    // hold would be a verifier state of its own (1M-instruction limit).
    unsafe { core::ptr::write_volatile(&mut s.dot, 0) };
    // Index loops with explicit bounds are the shape the verifier accepts.
    #[allow(clippy::needless_range_loop)]
    for i in 1..WATCH_NAME_BYTES {
        let c = key[i];
        if c == 0 {
            break;
        }
        if c == b'.' {
            unsafe { core::ptr::write_volatile(&mut s.dot, i as u64) };
        }
    }
    let dot = unsafe { core::ptr::read_volatile(&s.dot) } as usize;
    if dot == 0 || dot >= WATCH_NAME_BYTES - 1 {
        return false;
    }
    for w in s.ext_key.iter_mut() {
        unsafe { core::ptr::write_volatile(w, 0) };
    }
    let ext = unsafe { &mut *(s.ext_key.as_mut_ptr() as *mut [u8; WATCH_EXT_BYTES]) };
    #[allow(clippy::needless_range_loop)]
    for j in 0..WATCH_EXT_BYTES - 1 {
        let i = dot + 1 + j;
        if i >= WATCH_NAME_BYTES {
            break;
        }
        let c = key[i & (WATCH_NAME_BYTES - 1)];
        if c == 0 {
            break;
        }
        ext[j] = c;
    }
    matches!(unsafe { WATCH_EXTS.get(&*ext) }, Some(m) if m & bit != 0)
}

/// Whether the walked path (at `record[HDR..]`, NUL after `len` bytes)
/// falls under a watched prefix or is a watched exact path (stored with
/// its NUL, so it cannot match a longer path).
#[inline(always)]
fn path_watched(s: &mut Scratch, len: u64, bit: u32) -> bool {
    let src = unsafe { s.record.as_ptr().add(HDR) };
    unsafe {
        bpf_probe_read_kernel(
            s.path_key.data.as_mut_ptr() as *mut _,
            WATCH_PATH_BYTES as u32,
            src as *const _,
        )
    };
    let bytes = if len + 1 > WATCH_PATH_BYTES as u64 {
        WATCH_PATH_BYTES as u32
    } else {
        len as u32 + 1
    };
    s.path_key.prefix_len = bytes * 8;
    matches!(WATCH_PATHS.get(&s.path_key), Some(m) if m & bit != 0)
}

macro_rules! open_exit {
    ($($prog:ident),+) => {$(
        #[tracepoint]
        pub fn $prog(ctx: TracePointContext) -> u32 {
            handle_open_exit(&ctx);
            0
        }
    )+};
}

// One program per syscall: the agent attaches each to the tracepoint of
// its name (`syscalls/sys_exit_openat`, ...).
open_exit!(
    sys_exit_openat,
    sys_exit_openat2,
    sys_exit_open,
    sys_exit_creat
);
