//! The programs' run-time configuration: kernel struct offsets resolved
//! from BTF, and the capture limits.

/// `KernelOffsets` value of a field this kernel's BTF does not have.
pub const OFFSET_UNKNOWN: u32 = u32::MAX;

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
    /// `dentry.d_name.len`.
    pub dentry_name_len: u32,
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
