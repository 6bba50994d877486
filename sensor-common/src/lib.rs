//! The ABI shared by the kernel programs (`sensor-ebpf`) and the agent.
//!
//! Everything here is `#[repr(C)]` and plain data: the kernel writes these
//! bytes into the ring buffer and user space reads them back with the same
//! layout. Keep it tiny; logic belongs on either side, not here.
#![no_std]

pub mod file;

/// Upper bound on captured argv bytes. A power of two so the kernel side can
/// bound lengths with a mask the verifier understands.
pub const MAX_ARGS_BYTES: usize = 32 * 1024;
/// Upper bound on the captured execve path argument (bytes, incl. NUL).
pub const MAX_FILENAME_BYTES: usize = 4096;
/// Upper bound on the resolved executable path (its components, leaf first).
pub const MAX_EXE_BYTES: usize = 4096;
/// Most bytes of the environment block captured per exec (allow-listed
/// variables are picked from it in user space).
pub const MAX_ENV_BYTES: usize = 4096;
/// Longest single path component the walk copies (NAME_MAX + NUL).
pub const MAX_COMPONENT_BYTES: usize = 256;
/// Dentries (plus mount crossings) the executable walk visits at most.
pub const MAX_EXE_COMPONENTS: usize = 32;
/// Bytes kept per cgroup path component.
pub const CGROUP_NAME_BYTES: usize = 128;
/// Cgroup path components captured, leaf first.
pub const CGROUP_DEPTH: usize = 4;
/// `task_struct.comm` length.
pub const COMM_BYTES: usize = 16;
/// `tty_struct.name` length.
pub const TTY_NAME_BYTES: usize = 64;

/// The first `u32` of every ring-buffer record says which struct follows.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Exec = 1,
    Fork = 2,
    Exit = 3,
    /// A [`file::FileHeader`].
    File = 4,
    /// A [`file::FileResult`].
    FileResult = 5,
}

impl EventKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Exec),
            2 => Some(Self::Fork),
            3 => Some(Self::Exit),
            4 => Some(Self::File),
            5 => Some(Self::FileResult),
            _ => None,
        }
    }
}

/// The events ring buffer's default size: about 8 000 execs, several
/// seconds of a busy node. The agent may resize it at load time.
pub const RING_BYTES: u32 = 8 << 20;

/// `ExecHeader::flags`: argv was cut at the capture limit.
pub const EXEC_ARGS_TRUNCATED: u32 = 1 << 0;
/// `ExecHeader::flags`: the executable path was cut at `MAX_FILENAME_BYTES`.
pub const EXEC_FILENAME_TRUNCATED: u32 = 1 << 1;
/// `ExecHeader::flags`: reading argv from user memory failed.
pub const EXEC_ARGS_READ_FAILED: u32 = 1 << 2;
/// `ExecHeader::flags`: fd 0 is a character device (its rdev is meaningful).
pub const EXEC_FD0_CHR: u32 = 1 << 3;
/// `ExecHeader::flags`: fd 2 is a character device.
pub const EXEC_FD2_CHR: u32 = 1 << 4;
/// `ExecHeader::flags`: the resolved executable path is incomplete (too
/// deep or too long); user space falls back to the execve path.
pub const EXEC_EXE_TRUNCATED: u32 = 1 << 6;
/// `ExecHeader::flags`: the environment block was cut at `max_env_bytes`.
pub const EXEC_ENV_TRUNCATED: u32 = 1 << 7;
/// `ExecHeader::flags`: the executable has no name left (`i_nlink == 0`):
/// deleted after it was opened, or an anonymous file (memfd).
pub const EXEC_EXE_UNLINKED: u32 = 1 << 8;
/// `ExecHeader::flags`: the executable is on an overlayfs (a container's
/// root file system).
pub const EXEC_EXE_OVERLAY: u32 = 1 << 9;
/// `ExecHeader::flags`: on overlayfs, the executable is in the upper
/// (writable) layer: written or modified since the container started.
pub const EXEC_EXE_UPPER: u32 = 1 << 10;
/// `ExecHeader::flags`: whether the file is in the upper layer could not be
/// read (the overlay module's BTF was not available at start).
pub const EXEC_EXE_LAYER_UNKNOWN: u32 = 1 << 11;
/// `KernelOffsets` value of a field this kernel's BTF does not have.
pub const OFFSET_UNKNOWN: u32 = u32::MAX;

/// Identity fields read from a `task_struct`, shared by every event kind.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TaskIds {
    /// Thread id (kernel `pid`), global namespace.
    pub pid: u32,
    /// Process id (kernel `tgid`), global namespace.
    pub tgid: u32,
    /// `real_parent->tgid`.
    pub ppid: u32,
    /// Session id (global).
    pub sid: u32,
    /// Process-group id (global).
    pub pgid: u32,
    /// tgid as seen inside the task's own pid namespace.
    pub ns_tgid: u32,
    /// Inode number of the task's pid namespace.
    pub pidns_inum: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub _pad: u32,
    /// `task->start_boottime` (ns since boot, like /proc/<pid>/stat field 22).
    pub start_boottime_ns: u64,
    /// `real_parent->start_boottime`.
    pub parent_start_boottime_ns: u64,
    /// `bpf_ktime_get_boot_ns()` when the event was captured.
    pub ktime_ns: u64,
    pub comm: [u8; COMM_BYTES],
}

/// A `sched_process_exec` record. In the ring buffer it is followed by
/// `args_len` bytes of NUL-separated argv, then `filename_len` bytes of the
/// execve path argument (no NUL), then `exe_len` bytes of the executable's
/// resolved path as NUL-terminated components, leaf first, then `env_len`
/// bytes of the NUL-separated environment block. Only the bytes actually
/// used are sent.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExecHeader {
    pub kind: u32,
    pub flags: u32,
    pub ids: TaskIds,
    /// Controlling tty device: 0 when the task has none.
    pub tty_major: u32,
    pub tty_minor: u32,
    /// Kernel-internal dev_t (`major << 20 | minor`) of fd 0 and fd 2.
    pub fd0_rdev: u32,
    pub fd2_rdev: u32,
    pub cgroup_id: u64,
    /// Bytes of argv that follow.
    pub args_len: u32,
    /// `mm->arg_end - mm->arg_start`: the true argv size before truncation.
    pub args_size: u32,
    /// Bytes of execve path that follow `args`.
    pub filename_len: u32,
    /// Bytes of resolved-path components that follow the execve path.
    pub exe_len: u32,
    /// Bytes of the environment block that follow the path components.
    pub env_len: u32,
    /// `mm->env_end - mm->env_start`: the block's size before any cut.
    pub env_size: u32,
    pub tty_name: [u8; TTY_NAME_BYTES],
    /// Names of the cgroup kernfs nodes from the leaf upwards; an empty
    /// name ends the list early (the root has no name).
    pub cgroup_names: [[u8; CGROUP_NAME_BYTES]; CGROUP_DEPTH],
}

/// A new process (not a thread) from `sched_process_fork`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    pub kind: u32,
    pub _pad: u32,
    /// The child; its `ppid` is the forking process.
    pub child: TaskIds,
}

/// A process leaving (its last thread exited), from `sched_process_exit`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub kind: u32,
    /// `task->exit_code` (wait status encoding).
    pub exit_code: u32,
    pub ids: TaskIds,
}

/// Byte size of the per-CPU scratch record the kernel assembles an exec in.
pub const EXEC_SCRATCH_BYTES: usize = core::mem::size_of::<ExecHeader>()
    + MAX_ARGS_BYTES
    + MAX_FILENAME_BYTES
    + MAX_EXE_BYTES
    + MAX_ENV_BYTES;

/// Offsets of every kernel struct field the programs read, in bytes. There
/// are no CO-RE relocations for Rust eBPF, so user space resolves these from
/// the running kernel's BTF and installs them as the read-only global
/// `SENSOR_CONFIG` before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_start_boottime: u32,
    pub task_mm: u32,
    pub task_signal: u32,
    pub task_files: u32,
    pub task_cred: u32,
    pub task_cgroups: u32,
    pub task_comm: u32,
    pub task_exit_code: u32,
    pub task_fs: u32,
    /// `fs_struct.pwd`: the cwd a relative path starts from.
    pub fs_pwd: u32,

    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub mm_env_start: u32,
    pub mm_env_end: u32,

    pub signal_tty: u32,
    /// `signal_struct.live`: threads still running (atomic_t counter).
    pub signal_live: u32,
    /// `signal_struct.pids[]`: array of `struct pid *` indexed by pid type.
    pub signal_pids: u32,

    pub pid_level: u32,
    pub pid_numbers: u32,
    /// `sizeof(struct upid)`.
    pub upid_size: u32,
    pub upid_nr: u32,
    pub upid_ns: u32,
    /// `pid_namespace.ns.inum` (nested through `ns_common`).
    pub pidns_inum: u32,

    pub cred_uid: u32,
    pub cred_euid: u32,
    pub cred_gid: u32,
    pub cred_egid: u32,

    pub tty_driver: u32,
    pub tty_index: u32,
    pub tty_name: u32,
    pub tty_driver_major: u32,
    pub tty_driver_minor_start: u32,

    pub files_fdt: u32,
    pub fdtable_fd: u32,
    pub file_inode: u32,
    pub file_f_flags: u32,
    pub file_f_mode: u32,
    pub inode_ino: u32,
    pub inode_nlink: u32,
    pub inode_sb: u32,
    pub sb_magic: u32,
    /// `ovl_inode.vfs_inode` and `ovl_inode.__upperdentry`, from the
    /// overlay module's BTF; `OFFSET_UNKNOWN` when it was not available.
    pub ovl_vfs_inode: u32,
    pub ovl_upperdentry: u32,
    pub inode_rdev: u32,
    pub inode_mode: u32,

    pub css_set_dfl_cgrp: u32,
    pub css_set_subsys: u32,
    pub css_cgroup: u32,
    pub cgroup_kn: u32,
    pub kn_name: u32,
    pub kn_parent: u32,

    pub bprm_filename: u32,
    pub bprm_file: u32,

    /// For the executable path walk (d_path without the helper, which
    /// tracing programs may not call).
    pub file_f_path: u32,
    pub path_mnt: u32,
    pub path_dentry: u32,
    pub dentry_parent: u32,
    /// `dentry.d_name.name`.
    pub dentry_name: u32,
    pub vfsmount_mnt_root: u32,
    /// `mount.mnt`: the embedded vfsmount, to step back to its `struct mount`.
    pub mount_mnt: u32,
    pub mount_parent: u32,
    pub mount_mountpoint: u32,

    /// `PIDTYPE_TGID` / `PIDTYPE_PGID` / `PIDTYPE_SID` from the kernel's
    /// `enum pid_type`.
    pub pidtype_tgid: u32,
    pub pidtype_pgid: u32,
    pub pidtype_sid: u32,
}

/// Run-time configuration of the kernel programs. Installed as a global
/// (`SENSOR_CONFIG`) by user space before load.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SensorConfig {
    pub offsets: KernelOffsets,
    /// Index into `css_set.subsys[]` of the v1 controller whose hierarchy
    /// names containers, or `u32::MAX` to use the v2 default hierarchy.
    pub cgroup_subsys_idx: u32,
    /// argv bytes to capture (≤ `MAX_ARGS_BYTES`).
    pub max_args_bytes: u32,
    /// Environment bytes to capture (≤ `MAX_ENV_BYTES`; 0: none).
    pub max_env_bytes: u32,
    /// Set to `CONFIG_MAGIC` by user space; programs emit nothing until it is.
    pub magic: u32,
    /// Steps the executable-path walk may take (≤ `MAX_EXE_COMPONENTS`; 0
    /// disables it). The verifier reads it as a constant, so a smaller value
    /// is also a cheaper program: the agent lowers it if a kernel's verifier
    /// refuses the deeper walk.
    pub exe_walk_depth: u32,
}

pub const CONFIG_MAGIC: u32 = 0x5e45_0c0f;
/// `cgroup_subsys_idx` value selecting the cgroup v2 default hierarchy.
pub const CGROUP_V2_DEFAULT: u32 = u32::MAX;

/// Name of the per-CPU counter array of failed ring-buffer reserves.
pub const DROPS_MAP: &str = "DROPS";
/// Name of the ring buffer map.
pub const EVENTS_MAP: &str = "EVENTS";
/// Name of the config global.
pub const CONFIG_GLOBAL: &str = "SENSOR_CONFIG";
/// The one-entry array in which the agent says whether it sleeps.
pub const READER_MAP: &str = "READER";
/// `READER[0]` while the agent waits for a wake-up instead of polling.
pub const READER_ASLEEP: u32 = 1;

/// Index of each counter in the per-CPU `DROPS` array.
pub const DROP_EXEC: u32 = 0;
pub const DROP_FORK: u32 = 1;
pub const DROP_EXIT: u32 = 2;
/// Exec records lost because the scratch buffer lookup failed (never expected).
pub const DROP_SCRATCH: u32 = 3;
pub const DROP_COUNTERS: u32 = 4;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain-old-data with no padding holes the kernel could read
    // uninitialised; every field is an integer.
    unsafe impl aya::Pod for super::SensorConfig {}
    // SAFETY: as above, integers only.
    unsafe impl aya::Pod for super::file::SyscallShape {}
}
