//! An exec record (`sched_process_exec`): the header, its flags and the
//! variable-length parts that follow it.

use crate::TaskIds;

/// Upper bound on captured argv bytes. A power of two so the kernel side can
/// bound lengths with a mask the verifier understands.
pub const MAX_ARGS_BYTES: usize = 32 * 1024;
/// Upper bound on the captured execve path argument (bytes, incl. NUL).
pub const MAX_FILENAME_BYTES: usize = 4096;
/// Upper bound on the resolved executable path.
pub const MAX_EXE_BYTES: usize = 4096;
/// Upper bound on the working directory's path.
pub const MAX_CWD_BYTES: usize = 4096;
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
/// `tty_struct.name` length.
pub const TTY_NAME_BYTES: usize = 64;

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
/// `ExecHeader::flags`: the working directory's walk did not reach the
/// root or the path did not fit; user space reads `/proc/<pid>/cwd`.
pub const EXEC_CWD_TRUNCATED: u32 = 1 << 12;

/// A `sched_process_exec` record. In the ring buffer it is followed by
/// `args_len` bytes of NUL-separated argv, then `filename_len` bytes of the
/// execve path argument (no NUL), then `exe_len` bytes of the executable's
/// resolved path, then `env_len` bytes of the NUL-separated environment
/// block, then `cwd_len` bytes of the working directory's path (paths
/// root first, as the task sees them). Only the bytes actually used are
/// sent.
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
    /// Bytes of the working directory's path that follow the environment.
    pub cwd_len: u32,
    pub _pad: u32,
    pub tty_name: [u8; TTY_NAME_BYTES],
    /// Names of the cgroup kernfs nodes from the leaf upwards; an empty
    /// name ends the list early (the root has no name).
    pub cgroup_names: [[u8; CGROUP_NAME_BYTES]; CGROUP_DEPTH],
}

/// Byte size of the per-CPU scratch record the kernel assembles an exec in.
pub const EXEC_SCRATCH_BYTES: usize = core::mem::size_of::<ExecHeader>()
    + MAX_ARGS_BYTES
    + MAX_FILENAME_BYTES
    + MAX_EXE_BYTES
    + MAX_ENV_BYTES
    + MAX_CWD_BYTES;
