//! The file family, at the syscall tracepoints (this machine has no
//! kprobes, fentry or BPF LSM):
//!
//! - [`open`]: opens at their exit, where the returned fd names the opened
//!   `struct file` and the path is walked from its dentry;
//! - [`named`]: unlink, rename, chmod, link, symlink and mknod at their
//!   entry (the file may be gone at exit), the path joined from the
//!   resolved directory and the syscall's name, and reported once the
//!   exit says it succeeded.
//!
//! Filtering happens here: an operation no watch covers costs a few map
//! lookups on its leaf name and never reaches the ring. Only actions that
//! some path prefix is watched for pay for the full walk before deciding.

mod lsm;
mod named;
mod open;

use aya_ebpf::{
    EbpfContext,
    helpers::generated::{bpf_probe_read_kernel, bpf_probe_read_kernel_str},
    macros::map,
    maps::{Array, HashMap, LpmTrie, PerCpuArray, lpm_trie::Key},
    programs::TracePointContext,
};
use sensor_common::file::{
    FILE_IN_CONTAINER, FILE_SCRATCH_BYTES, FILTER_ALL, FILTER_ENABLED, FILTER_EXTS, FILTER_NAMES,
    FILTER_PATHS, FILTER_SCOPE, FILTER_SLOTS, FSTAT_DROPPED, FSTAT_SLOTS, FileHeader,
    NAME_HINT_SLOTS, SCOPE_CONTAINER, SCOPE_HOST, WATCH_EXT_BYTES, WATCH_NAME_BYTES,
    WATCH_PATH_BYTES, name_hint,
};

use crate::{path::Names, rd, rd_ptr, task::pid_ns_level};

#[map]
static FILE_FILTER: Array<u32> = Array::with_max_entries(FILTER_SLOTS, 0);

#[map]
static WATCH_PATHS: LpmTrie<[u8; WATCH_PATH_BYTES], u32> = LpmTrie::with_max_entries(4096, 0);

#[map]
static WATCH_NAMES: HashMap<[u8; WATCH_NAME_BYTES], u32> = HashMap::with_max_entries(4096, 0);

#[map]
static WATCH_EXTS: HashMap<[u8; WATCH_EXT_BYTES], u32> = HashMap::with_max_entries(1024, 0);

#[map]
static NAME_HINTS: Array<u32> = Array::with_max_entries(NAME_HINT_SLOTS, 0);

#[map]
static FILE_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(FSTAT_SLOTS, 0);

/// Everything one file record is assembled in, per CPU. The u64-aligned
/// parts come first (the keys are zeroed a word at a time).
#[repr(C)]
struct Scratch {
    /// Programs holding this scratch (see [`Held`]).
    busy: u64,
    names: Names,
    name_key: [u64; WATCH_NAME_BYTES / 8],
    ext_key: [u64; WATCH_EXT_BYTES / 8],
    /// Indexes found by byte scans, through memory: tracked exactly, each
    /// value they could hold would be a verifier state of its own (which
    /// passed the 1M-instruction limit).
    dot: u64,
    leaf: u64,
    unsure: u64,
    /// Values passed through memory before a loop (see [`launder`]).
    tmp: [u64; 6],
    /// A rename's first pass, kept for its second (see `named`).
    again: u64,
    second: u64,
    /// `FILE_IN_CONTAINER` or 0, from [`in_scope`].
    where_flag: u64,
    /// Per-record values that stay live across a walk; in registers, each
    /// value they can hold is a verifier state of its own.
    complete: u64,
    by_path: u64,
    first_len: u64,
    first_flags: u64,
    first_watched: u64,
    /// The opened file's inode, kept across the walk.
    inode: u64,
    path_key: Key<[u8; WATCH_PATH_BYTES]>,
    /// The head of the opened `struct file` (see [`FileHead`]).
    file_head: [u64; FILE_HEAD_BYTES / 8],
    /// A dentry's `d_name` length and name pointer, read together.
    qstr: [u64; 2],
    /// A power of two, so byte scans index it with a mask: LLVM merges
    /// compare-based bounds checks in ways the verifier cannot follow.
    record: [u8; RECORD_BYTES],
}

const RECORD_BYTES: usize = FILE_SCRATCH_BYTES.next_power_of_two();

/// Several per CPU: preempted LSM programs may be holding some (see
/// [`Held`]). With three threads creating files on one CPU of the 6.19
/// guest, one of them real-time, two lost 53 of 6 199 creations to both
/// being held; four lost none of 11 568. About 17 KiB each.
#[map]
static FILE_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(SCRATCH_SLOTS, 0);
const SCRATCH_SLOTS: u32 = 4;

/// The scratch of a program that runs with preemption off (the syscall
/// tracepoints: `perf_syscall_enter`/`exit` disable it around BPF, also
/// since syscall tracepoints may fault; a PREEMPT_RT kernel does not, and
/// would need [`Held`] here too): the first one no preempted LSM program
/// holds. Nothing else runs on this CPU until it returns, so it need not
/// be marked, and a tail call into the same program finds the same one.
#[inline(always)]
fn scratch() -> Option<&'static mut Scratch> {
    for slot in 0..SCRATCH_SLOTS {
        let s = FILE_SCRATCH.get_ptr_mut(slot)?;
        if unsafe { core::ptr::read_volatile(&(*s).busy) } == 0 {
            return Some(unsafe { &mut *s });
        }
    }
    stat(FSTAT_DROPPED);
    None
}

/// A scratch held by a BPF LSM program, released when dropped.
///
/// LSM programs run with migration off but preemption on: on a kernel
/// that preempts kernel code (the 6.19 guest's is `lazy`) another task's
/// file program can run on this CPU in the middle of a walk. Sharing one
/// scratch, it wrote its own path over the record being built (CI, once:
/// a symlink reported as `/dev/null\0ile-way-lsm-...`; 109 of 4 593
/// events in `preempted_lsm_walks_report_each_creation_once_with_its_own_path`).
/// The count is raised and lowered with atomic adds (`BPF_XADD`:
/// fetch-and-add needs 5.12, and 5.10 is in the matrix) and read back:
/// only a program that reads 1 holds the slot. One that finds every slot
/// taken loses its record, counted as dropped.
struct Held(&'static mut Scratch);

impl Held {
    #[inline(always)]
    fn take() -> Option<Self> {
        for slot in 0..SCRATCH_SLOTS {
            let s = FILE_SCRATCH.get_ptr_mut(slot)?;
            let busy = unsafe { &raw mut (*s).busy };
            xadd(busy, 1);
            if unsafe { core::ptr::read_volatile(busy) } == 1 {
                return Some(Self(unsafe { &mut *s }));
            }
            xadd(busy, u64::MAX);
        }
        stat(FSTAT_DROPPED);
        None
    }
}

impl Drop for Held {
    #[inline(always)]
    fn drop(&mut self) {
        xadd(&raw mut self.0.busy, u64::MAX);
    }
}

const HDR: usize = size_of::<FileHeader>();

/// Bytes of `struct file` read at once from its start. `f_mode`,
/// `f_flags`, `f_path` and `f_inode` lie within them from 5.10 to 6.19 (a
/// field beyond would be read on its own). One read instead of five: each
/// `bpf_probe_read_kernel` cost ~50 ns of an unwatched open's ~800 here
/// (`--bpf-stats`).
const FILE_HEAD_BYTES: usize = 128;

/// The fields of one `struct file`, from a single read of its head.
struct FileHead {
    file: u64,
}

impl FileHead {
    #[inline(always)]
    fn read(s: &mut Scratch, file: u64) -> Self {
        unsafe {
            bpf_probe_read_kernel(
                s.file_head.as_mut_ptr() as *mut _,
                FILE_HEAD_BYTES as u32,
                file as *const _,
            )
        };
        Self { file }
    }

    /// The field at `off`. The offsets are constants the verifier knows
    /// (frozen config), so the branch not taken is pruned.
    #[inline(always)]
    fn field<T: Copy>(&self, s: &Scratch, off: u32) -> T {
        let off = off as usize;
        if off + size_of::<T>() <= FILE_HEAD_BYTES {
            // Masked to an aligned slot in bounds for the verifier.
            let at = off & (FILE_HEAD_BYTES - 1) & !(size_of::<T>() - 1);
            unsafe { *((s.file_head.as_ptr() as *const u8).add(at) as *const T) }
        } else {
            rd(self.file, off as u32)
        }
    }

    /// `(dentry, vfsmount)` of its `f_path`.
    #[inline(always)]
    fn path(&self, s: &Scratch) -> (u64, u64) {
        let p = cfg!(offsets.file_f_path);
        (
            self.field(s, p + cfg!(offsets.path_dentry)),
            self.field(s, p + cfg!(offsets.path_mnt)),
        )
    }
}

/// `(d_name.len, d_name.name)` of `dentry`, in one read of the 16 aligned
/// bytes that hold both (they share its `struct qstr`).
#[inline(always)]
fn dentry_name(s: &mut Scratch, dentry: u64) -> (u32, u64) {
    let (len_at, name_at) = (cfg!(offsets.dentry_name_len), cfg!(offsets.dentry_name));
    let lo = len_at & !7;
    if name_at < lo || name_at - lo > 8 {
        return (rd(dentry, len_at), rd_ptr(dentry, name_at));
    }
    unsafe {
        bpf_probe_read_kernel(
            s.qstr.as_mut_ptr() as *mut _,
            16,
            (dentry + lo as u64) as *const _,
        )
    };
    // Both fields are naturally aligned in the dentry, so in the copy too.
    let base = s.qstr.as_ptr() as *const u8;
    let (len_rel, name_rel) = (((len_at - lo) & 4) as usize, ((name_at - lo) & 8) as usize);
    unsafe {
        (
            *(base.add(len_rel) as *const u32),
            *(base.add(name_rel) as *const u64),
        )
    }
}

/// A field of a syscall tracepoint's record, read directly: the context
/// is readable memory for tracepoint programs, with no helper call.
#[inline(always)]
fn tp_field<T: Copy>(ctx: &TracePointContext, off: usize) -> T {
    unsafe { *((ctx.as_ptr() as *const u8).add(off) as *const T) }
}

#[inline(always)]
fn filter(slot: u32) -> u32 {
    FILE_FILTER.get(slot).copied().unwrap_or(0)
}

/// Adds `v` to `*p` atomically, discarding the old value: `BPF_XADD`,
/// which every kernel has. (`AtomicU64::fetch_add` does not exist on the
/// BPF target, and a used result would need 5.12's fetch-and-add.)
#[inline(always)]
fn xadd(p: *mut u64, v: u64) {
    let _ = unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            p, v,
        )
    };
}

/// Counts one at `slot`. Atomic: a preempted LSM program's increment
/// must not overwrite the counts made while it waited (see [`Held`]).
#[inline(always)]
fn stat(slot: u32) {
    if let Some(c) = FILE_STATS.get_ptr_mut(slot) {
        xadd(c, 1);
    }
}

const _: () = assert!(SCOPE_HOST << 1 == SCOPE_CONTAINER);

/// The action `bit` is on and the acting task is in scope; returns the
/// record flag for where it runs (`FILE_IN_CONTAINER` or 0). Branch-free,
/// and kept in memory by the callers: a known 0 or 1 in a register would
/// have the verifier walk everything after twice.
#[inline(always)]
fn in_scope(task: u64, bit: u32) -> Option<u32> {
    if !action_on(bit) {
        return None;
    }
    let c = u32::from(pid_ns_level(task) != 0);
    (filter(FILTER_SCOPE) & (SCOPE_HOST << c) != 0).then_some(c * FILE_IN_CONTAINER)
}

/// Whether action `bit` is on at all.
#[inline(always)]
fn action_on(bit: u32) -> bool {
    filter(FILTER_ENABLED) & bit != 0
}

/// Whether both host and container activity is in scope, so [`in_scope`]
/// can wait until a record is to be sent.
#[inline(always)]
fn both_scopes() -> bool {
    filter(FILTER_SCOPE) & (SCOPE_HOST | SCOPE_CONTAINER) == SCOPE_HOST | SCOPE_CONTAINER
}

/// The opened file behind `fd` in `task`.
#[inline(always)]
fn fd_file(task: u64, fd: u64) -> u64 {
    let files = rd_ptr(task, cfg!(offsets.task_files));
    let fdt = rd_ptr(files, cfg!(offsets.files_fdt));
    let fds = rd_ptr(fdt, cfg!(offsets.fdtable_fd));
    rd_ptr(fds + fd * 8, 0)
}

/// `(dentry, vfsmount)` of a `struct path` at `path`.
#[inline(always)]
fn path_of(path: u64) -> (u64, u64) {
    (
        rd_ptr(path, cfg!(offsets.path_dentry)),
        rd_ptr(path, cfg!(offsets.path_mnt)),
    )
}

/// Zeroes the name key and copies a NUL-terminated name into it; false
/// when the name is empty or unreadable.
#[inline(always)]
fn load_name_key(s: &mut Scratch, name: *const u8) -> bool {
    for w in s.name_key.iter_mut() {
        unsafe { core::ptr::write_volatile(w, 0) };
    }
    let r = unsafe {
        bpf_probe_read_kernel_str(
            s.name_key.as_mut_ptr() as *mut _,
            WATCH_NAME_BYTES as u32,
            name as *const _,
        )
    };
    r > 1
}

/// Whether the name in the name key, or its extension, is watched for
/// `bit`. The keys stay in map memory (borrowed), not copied to the
/// 512-byte stack.
#[allow(clippy::needless_borrows_for_generic_args)]
#[inline(always)]
fn name_watched(s: &mut Scratch, bit: u32) -> bool {
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
    // The extension follows the last dot (not a leading one).
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

/// Whether the path at `record[at..]` (a NUL after `len` bytes) falls
/// under a watched prefix or is a watched exact path (stored with its NUL,
/// so it cannot match a longer path).
#[inline(always)]
fn path_watched(s: &mut Scratch, at: u64, len: u64, bit: u32) -> bool {
    // Masked, not only compared: 5.10's verifier keeps no signed bound
    // from an unsigned compare on a value read back from memory.
    let at = (at as usize) & (RECORD_BYTES - 1);
    if at > FILE_SCRATCH_BYTES - WATCH_PATH_BYTES {
        return false;
    }
    let src = unsafe { s.record.as_ptr().add(at) };
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

/// Whether `bit` is watched for every file.
#[inline(always)]
fn watched_everywhere(bit: u32) -> bool {
    filter(FILTER_ALL) & bit != 0
}

/// Whether a name of `len` bytes at `name` may be one watched for `bit`:
/// its length and first byte against the hints. With an extension watched
/// for `bit`, the name must be read anyway.
#[inline(always)]
fn name_may_be_watched(len: u32, name: u64, bit: u32) -> bool {
    if filter(FILTER_EXTS) & bit != 0 {
        return true;
    }
    let first: u8 = rd(name, 0);
    NAME_HINTS
        .get(name_hint(len, first))
        .is_some_and(|m| m & bit != 0)
}

/// Whether some name or extension is watched for `bit`.
#[inline(always)]
fn names_watched(bit: u32) -> bool {
    (filter(FILTER_NAMES) | filter(FILTER_EXTS)) & bit != 0
}

/// Whether some prefix or exact path is watched for `bit`.
#[inline(always)]
fn paths_watched(bit: u32) -> bool {
    filter(FILTER_PATHS) & bit != 0
}
