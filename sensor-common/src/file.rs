//! File activity: the record the file hooks write, and the maps through
//! which user space tells them what to watch.

use crate::TaskIds;

/// Bytes of one resolved path (root first, `/`-separated, no NUL).
pub const FILE_PATH_BYTES: usize = 4096;
/// Path bytes an LPM-trie watch key holds: prefixes and exact paths up to
/// this long can be watched (the trie's own limit).
pub const WATCH_PATH_BYTES: usize = 256;
/// Bytes of a watched file name key (NUL-padded); longer names cannot be
/// watched by name.
pub const WATCH_NAME_BYTES: usize = 64;
/// Bytes of a watched extension key (without the dot, NUL-padded).
pub const WATCH_EXT_BYTES: usize = 16;

/// What happened to the file. The discriminant is also the action's bit in
/// every watch mask (`1 << action`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileAction {
    /// An open that created the file (`O_CREAT` on a missing path, `creat`).
    Create = 1,
    /// An open of an existing file with write intent (`O_WRONLY`, `O_RDWR`,
    /// `O_TRUNC`, `O_APPEND`).
    OpenWrite = 2,
    /// A read-only open: reported only for paths watched for reads.
    OpenRead = 3,
    /// A rename; the record carries the old and the new path.
    Rename = 4,
    /// `unlink`, `unlinkat`, `rmdir`.
    Delete = 5,
    /// `chmod`, `fchmod`, `fchmodat`: the record carries the new mode.
    Chmod = 6,
}

impl FileAction {
    pub const ALL: [FileAction; 6] = [
        FileAction::Create,
        FileAction::OpenWrite,
        FileAction::OpenRead,
        FileAction::Rename,
        FileAction::Delete,
        FileAction::Chmod,
    ];

    pub fn from_u32(v: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|a| *a as u32 == v)
    }

    pub const fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// Every action but reads: what a watch with no action constraint covers.
pub const WRITE_ACTIONS: u32 = FileAction::Create.bit()
    | FileAction::OpenWrite.bit()
    | FileAction::Rename.bit()
    | FileAction::Delete.bit()
    | FileAction::Chmod.bit();

/// `FileHeader::flags`: the path walk stopped before the namespace root
/// (too deep or too long); `path` then holds the components it reached,
/// and is not absolute.
pub const FILE_PATH_TRUNCATED: u32 = 1 << 0;
/// `FileHeader::flags`: the second path (rename target) was cut.
pub const FILE_PATH2_TRUNCATED: u32 = 1 << 1;
/// `FileHeader::flags`: the acting process is in a child pid namespace
/// (a container).
pub const FILE_IN_CONTAINER: u32 = 1 << 2;

/// `FileHeader::flags`: the operation was seen at syscall entry; its
/// outcome follows in a [`FileResult`] of the same thread, and only a
/// success makes it an event.
pub const FILE_PENDING: u32 = 1 << 3;
/// `FileHeader::flags`: the path came from the syscall's string argument
/// (joined to the resolved directory it is relative to) and has dot
/// segments or doubled slashes, so the kernel could not match it against
/// path prefixes; user space normalises it.
pub const FILE_PATH_UNNORMALISED: u32 = 1 << 4;

/// A file record. In the ring buffer it is followed by `path_len` bytes of
/// the resolved path, then `path2_len` bytes of the second path (the new
/// name of a rename; empty otherwise).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FileHeader {
    pub kind: u32,
    /// A [`FileAction`].
    pub action: u32,
    pub flags: u32,
    /// The syscall the record came from (its tracepoint's `__syscall_nr`).
    pub syscall: u32,
    pub ids: TaskIds,
    /// `inode.i_ino` of the file (after the operation).
    pub ino: u64,
    /// `inode.i_mode`: type and permission bits (for chmod, the new mode).
    pub mode: u32,
    /// `file.f_flags` of an open (0 for the other actions).
    pub open_flags: u32,
    pub path_len: u32,
    pub path2_len: u32,
}

/// Byte size of the per-CPU scratch a file record is assembled in.
pub const FILE_SCRATCH_BYTES: usize =
    core::mem::size_of::<FileHeader>() + 2 * FILE_PATH_BYTES + crate::MAX_COMPONENT_BYTES;

/// The one-row array of watch masks (`FILE_FILTER[i]`), written by user
/// space at start and at every rule reload.
pub const FILE_FILTER_MAP: &str = "FILE_FILTER";
/// Actions reported at all.
pub const FILTER_ENABLED: u32 = 0;
/// Bit 0: host processes; bit 1: container processes.
pub const FILTER_SCOPE: u32 = 1;
/// Actions for which every path is watched.
pub const FILTER_ALL: u32 = 2;
/// Actions that some path prefix or exact path is watched for: only these
/// pay for the full walk before the filter decides.
pub const FILTER_PATHS: u32 = 3;
/// Actions some file name is watched for.
pub const FILTER_NAMES: u32 = 4;
/// Actions some extension is watched for.
pub const FILTER_EXTS: u32 = 5;
pub const FILTER_SLOTS: u32 = 6;

pub const SCOPE_HOST: u32 = 1 << 0;
pub const SCOPE_CONTAINER: u32 = 1 << 1;

/// LPM trie of watched path prefixes (and exact paths, stored with their
/// terminating NUL); value: the actions watched.
pub const WATCH_PATHS_MAP: &str = "WATCH_PATHS";
/// Hash of watched file names (NUL-padded to `WATCH_NAME_BYTES`).
pub const WATCH_NAMES_MAP: &str = "WATCH_NAMES";
/// Hash of watched extensions (NUL-padded to `WATCH_EXT_BYTES`).
pub const WATCH_EXTS_MAP: &str = "WATCH_EXTS";
/// The actions some watched name of a given length and first byte is
/// watched for, indexed by [`name_hint`]: one array read tells most
/// names apart from every watched one, before the name is copied and
/// hashed.
pub const NAME_HINTS_MAP: &str = "NAME_HINTS";
/// Name lengths told apart by the hints (longer ones share the last).
pub const NAME_HINT_LENS: u32 = WATCH_NAME_BYTES as u32;
pub const NAME_HINT_SLOTS: u32 = NAME_HINT_LENS * 256;

/// The [`NAME_HINTS_MAP`] slot of a name of `len` bytes starting with `first`.
#[inline(always)]
pub fn name_hint(len: u32, first: u8) -> u32 {
    let len = if len >= NAME_HINT_LENS {
        NAME_HINT_LENS - 1
    } else {
        len
    };
    (len << 8) | first as u32
}

/// Per-CPU counters of the file hooks, indexed by these.
pub const FILE_STATS_MAP: &str = "FILE_STATS";
/// Hook runs while file capture is on.
pub const FSTAT_SEEN: u32 = 0;
/// Operations not watched: dropped in the kernel.
pub const FSTAT_UNWATCHED: u32 = 1;
/// Records written to the ring.
pub const FSTAT_EMITTED: u32 = 2;
/// Records lost: to a full ring, or with every scratch of the CPU held
/// by preempted BPF LSM programs.
pub const FSTAT_DROPPED: u32 = 3;
/// Records whose path walk was cut.
pub const FSTAT_TRUNCATED: u32 = 4;
pub const FSTAT_SLOTS: u32 = 5;

/// The outcome of a pending operation (`FILE_PENDING`), from the
/// syscall's exit tracepoint.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FileResult {
    pub kind: u32,
    /// Thread id (kernel `pid`) of the caller.
    pub tid: u32,
    /// The syscall's return value (0 on success, `-errno` otherwise).
    pub ret: i64,
}

/// Where a name-based syscall's arguments are (indexes into the
/// tracepoint's arguments), written per syscall number by user space.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallShape {
    /// A [`FileAction`].
    pub action: u32,
    /// Directory fd the path is relative to (`ARG_NONE`: the cwd).
    pub dfd: u32,
    /// The path string (`ARG_NONE` when `fd` names the file instead).
    pub path: u32,
    /// The second path's directory fd and string (rename's new name).
    pub dfd2: u32,
    pub path2: u32,
    /// The new mode (chmod) or the created node's mode (mknod).
    pub mode: u32,
    /// An fd naming the file itself (fchmod).
    pub fd: u32,
}

pub const ARG_NONE: u32 = u32::MAX;

/// Syscall number → [`SyscallShape`] of the name-based file syscalls.
pub const FILE_SYSCALLS_MAP: &str = "FILE_SYSCALLS";
