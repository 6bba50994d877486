//! Decode: raw ring-buffer records (the `sensor-common` ABI) → owned Rust
//! records. Nothing here touches the kernel, so it is unit-tested with
//! hand-built byte buffers.

pub mod encode;
mod file;

pub use file::{FileRecord, FileResultRecord, normalise};

use sensor_common::{
    CGROUP_DEPTH, EXEC_ARGS_READ_FAILED, EXEC_ARGS_TRUNCATED, EXEC_ENV_TRUNCATED,
    EXEC_EXE_LAYER_UNKNOWN, EXEC_EXE_OVERLAY, EXEC_EXE_TRUNCATED, EXEC_EXE_UNLINKED,
    EXEC_EXE_UPPER, EXEC_FD0_CHR, EXEC_FD2_CHR, EXEC_FILENAME_TRUNCATED, EventKind, ExecHeader,
    ExitEvent, ForkEvent, TaskIds,
};

/// Identity of a task as captured in the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskInfo {
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub sid: u32,
    pub pgid: u32,
    /// tgid inside the task's own pid namespace.
    pub ns_tgid: u32,
    pub pidns_inum: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// ns since boot, same clock as /proc/<pid>/stat starttime.
    pub start_boottime_ns: u64,
    pub parent_start_boottime_ns: u64,
    /// CLOCK_BOOTTIME ns when the event was captured.
    pub ktime_ns: u64,
    pub comm: String,
}

/// Device number split the way ECS reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CharDevice {
    pub major: u32,
    pub minor: u32,
}

impl CharDevice {
    /// Splits a kernel-internal dev_t (`major << 20 | minor`).
    pub fn from_kernel_dev(dev: u32) -> Self {
        Self {
            major: dev >> 20,
            minor: dev & ((1 << 20) - 1),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tty {
    pub device: CharDevice,
    /// e.g. `pts0`, as the kernel names it.
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRecord {
    pub task: TaskInfo,
    /// argv, lossily converted to UTF-8 (invalid bytes become U+FFFD).
    pub args: Vec<String>,
    /// argv was cut at the kernel capture limit.
    pub args_truncated: bool,
    /// argv size in the kernel before any cut.
    pub args_original_bytes: u32,
    /// Reading argv from the process failed (args then holds `comm` only).
    pub args_read_failed: bool,
    /// The path passed to execve (may be relative).
    pub filename: String,
    pub filename_truncated: bool,
    /// The executable's absolute path, resolved in the kernel from the
    /// opened file (symlinks resolved); `None` when the walk was incomplete.
    pub exe_path: Option<String>,
    /// The controlling terminal, if any.
    pub tty: Option<Tty>,
    /// stdin and stderr are both the controlling terminal (ECS
    /// `process.interactive`).
    pub interactive: bool,
    /// cgroup v2 id (`bpf_get_current_cgroup_id`).
    pub cgroup_id: u64,
    /// cgroup path components, leaf first, from the hierarchy the agent
    /// chose (v1 controller on hybrid hosts, v2 otherwise).
    pub cgroup_leaf_first: Vec<String>,
    /// The environment block as captured (`K=V` NUL-separated; empty when
    /// capture is off). Kept raw: only allow-listed variables are ever
    /// written, so splitting all of them would be wasted work.
    pub env: Vec<u8>,
    /// The block was cut at the capture limit (variables past it are missed).
    pub env_truncated: bool,
    /// Where the executable came from (container drift).
    pub origin: ExeOrigin,
}

/// Where an exec's executable came from, as the kernel saw its file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExeOrigin {
    /// The file had no name left: deleted after it was opened, or a memfd.
    pub unlinked: bool,
    /// On an overlayfs: `Some(true)` from the upper (writable) layer, that
    /// is written or changed since the container started; `Some(false)`
    /// from an image layer. `None` off overlayfs or when unknown.
    pub upper_layer: Option<bool>,
}

impl ExecRecord {
    /// `K=V` entries of the environment block whose name `keep` accepts.
    pub fn env_vars<'a>(
        &'a self,
        keep: impl Fn(&[u8]) -> bool + 'a,
    ) -> impl Iterator<Item = String> + 'a {
        self.env
            .split(|&b| b == 0)
            .filter(move |v| !v.is_empty() && keep(env_name(v)))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Drops every environment entry `keep` refuses, in place: done once
    /// after decode, so later passes over the block (the rules' view, the
    /// written line) see the few kept entries only.
    pub fn retain_env(&mut self, keep: impl Fn(&[u8]) -> bool) {
        let mut w = 0;
        let mut r = 0;
        let env = &mut self.env;
        while r < env.len() {
            let end = env[r..]
                .iter()
                .position(|&b| b == 0)
                .map_or(env.len(), |i| r + i);
            if end > r && keep(env_name(&env[r..end])) {
                env.copy_within(r..end, w);
                w += end - r;
                if w < env.len() {
                    env[w] = 0;
                    w += 1;
                }
            }
            r = end + 1;
        }
        env.truncate(w);
    }
}

/// The name of a `NAME=value` environment entry.
fn env_name(entry: &[u8]) -> &[u8] {
    entry.split(|&b| b == b'=').next().unwrap_or_default()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkRecord {
    /// The new process; `child.ppid` is the forking process.
    pub child: TaskInfo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitRecord {
    pub task: TaskInfo,
    pub exit_code: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Exec(ExecRecord),
    Fork(ForkRecord),
    Exit(ExitRecord),
    File(FileRecord),
    FileResult(FileResultRecord),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is too short for its header")]
    Short(usize),
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("unknown file action {0}")]
    UnknownFileAction(u32),
    #[error("record claims {claimed} payload bytes but carries {actual}")]
    PayloadLength { claimed: usize, actual: usize },
}

/// The tty major used by `/dev/tty` (the caller's controlling terminal).
const TTYAUX_MAJOR: u32 = 5;

/// ECS `process.interactive`: stdin and stderr are the controlling tty.
/// `/dev/tty` (5:0) is an alias for the controlling tty, so it counts too.
pub fn is_interactive(tty: Option<&Tty>, fd0: Option<CharDevice>, fd2: Option<CharDevice>) -> bool {
    let Some(tty) = tty else { return false };
    let is_ctty = |fd: Option<CharDevice>| match fd {
        Some(d) => d == tty.device || (d.major == TTYAUX_MAJOR && d.minor == 0),
        None => false,
    };
    is_ctty(fd0) && is_ctty(fd2)
}

pub(crate) fn read_pod<T: Copy>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: length checked above; T is a #[repr(C)] integer-only ABI struct,
    // so any bit pattern is valid, and read_unaligned copes with alignment.
    Ok(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn c_str_lossy(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

pub(crate) fn task_info(ids: &TaskIds) -> TaskInfo {
    TaskInfo {
        pid: ids.pid,
        tgid: ids.tgid,
        ppid: ids.ppid,
        sid: ids.sid,
        pgid: ids.pgid,
        ns_tgid: ids.ns_tgid,
        pidns_inum: ids.pidns_inum,
        uid: ids.uid,
        euid: ids.euid,
        gid: ids.gid,
        egid: ids.egid,
        start_boottime_ns: ids.start_boottime_ns,
        parent_start_boottime_ns: ids.parent_start_boottime_ns,
        ktime_ns: ids.ktime_ns,
        comm: c_str_lossy(&ids.comm),
    }
}

/// Splits the kernel's NUL-separated argv. A trailing NUL ends the last
/// argument; a cut argv has none, and its last (partial) argument is kept.
pub fn split_args(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let kind: u32 = read_pod(bytes)?;
    match EventKind::from_u32(kind) {
        Some(EventKind::Exec) => decode_exec(bytes).map(Record::Exec),
        Some(EventKind::Fork) => {
            let ev: ForkEvent = read_pod(bytes)?;
            Ok(Record::Fork(ForkRecord {
                child: task_info(&ev.child),
            }))
        }
        Some(EventKind::Exit) => {
            let ev: ExitEvent = read_pod(bytes)?;
            Ok(Record::Exit(ExitRecord {
                task: task_info(&ev.ids),
                exit_code: ev.exit_code,
            }))
        }
        Some(EventKind::File) => file::decode_file(bytes).map(Record::File),
        Some(EventKind::FileResult) => file::decode_result(bytes).map(Record::FileResult),
        None => Err(DecodeError::UnknownKind(kind)),
    }
}

fn decode_exec(bytes: &[u8]) -> Result<ExecRecord, DecodeError> {
    let h: ExecHeader = read_pod(bytes)?;
    let payload = &bytes[size_of::<ExecHeader>()..];
    let args_len = h.args_len as usize;
    let filename_len = h.filename_len as usize;
    let exe_len = h.exe_len as usize;
    let env_len = h.env_len as usize;
    let claimed = args_len + filename_len + exe_len + env_len;
    if claimed > payload.len() {
        return Err(DecodeError::PayloadLength {
            claimed,
            actual: payload.len(),
        });
    }
    let task = task_info(&h.ids);
    let args_read_failed = h.flags & EXEC_ARGS_READ_FAILED != 0;
    let mut args = split_args(&payload[..args_len]);
    if args.is_empty() && args_read_failed {
        args.push(task.comm.clone());
    }
    let filename = c_str_lossy(&payload[args_len..args_len + filename_len]);
    let exe_end = args_len + filename_len + exe_len;
    let exe_raw = &payload[args_len + filename_len..exe_end];
    let exe_path = (h.flags & EXEC_EXE_TRUNCATED == 0 && !exe_raw.is_empty())
        .then(|| String::from_utf8_lossy(exe_raw).into_owned());
    let tty = (h.tty_major != 0 || h.tty_minor != 0).then(|| Tty {
        device: CharDevice {
            major: h.tty_major,
            minor: h.tty_minor,
        },
        name: c_str_lossy(&h.tty_name),
    });
    let fd =
        |flag: u32, rdev: u32| (h.flags & flag != 0).then(|| CharDevice::from_kernel_dev(rdev));
    let interactive = is_interactive(
        tty.as_ref(),
        fd(EXEC_FD0_CHR, h.fd0_rdev),
        fd(EXEC_FD2_CHR, h.fd2_rdev),
    );
    let cgroup_leaf_first = h
        .cgroup_names
        .iter()
        .take(CGROUP_DEPTH)
        .map(|n| c_str_lossy(n))
        .take_while(|n| !n.is_empty())
        .collect();
    Ok(ExecRecord {
        task,
        args,
        args_truncated: h.flags & EXEC_ARGS_TRUNCATED != 0,
        args_original_bytes: h.args_size,
        args_read_failed,
        filename,
        filename_truncated: h.flags & EXEC_FILENAME_TRUNCATED != 0,
        exe_path,
        tty,
        interactive,
        cgroup_id: h.cgroup_id,
        cgroup_leaf_first,
        env: payload[exe_end..claimed].to_vec(),
        env_truncated: h.flags & EXEC_ENV_TRUNCATED != 0,
        origin: ExeOrigin {
            unlinked: h.flags & EXEC_EXE_UNLINKED != 0,
            upper_layer: (h.flags & EXEC_EXE_OVERLAY != 0 && h.flags & EXEC_EXE_LAYER_UNKNOWN == 0)
                .then_some(h.flags & EXEC_EXE_UPPER != 0),
        },
    })
}

/// Record builders for the unit tests of the stages after decode (used by
/// sensor-agent's tests, so not behind `cfg(test)`).
pub mod fixtures {
    use super::{ExecRecord, TaskInfo};

    /// An exec of `exe` with `args` as the kernel reports it for a host
    /// process: executable path resolved, no tty, root cgroup.
    pub fn exec(task: TaskInfo, exe: &str, args: &[&str]) -> ExecRecord {
        ExecRecord {
            task,
            args: args.iter().map(|s| s.to_string()).collect(),
            args_truncated: false,
            args_original_bytes: args.iter().map(|a| a.len() as u32 + 1).sum(),
            args_read_failed: false,
            filename: exe.into(),
            filename_truncated: false,
            exe_path: Some(exe.into()),
            tty: None,
            interactive: false,
            cgroup_id: 0,
            cgroup_leaf_first: Vec::new(),
            env: Vec::new(),
            env_truncated: false,
            origin: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PTS0: CharDevice = CharDevice {
        major: 136,
        minor: 0,
    };

    fn tty() -> Tty {
        Tty {
            device: PTS0,
            name: "pts0".into(),
        }
    }

    #[test]
    fn interactive_when_stdin_and_stderr_are_the_controlling_tty() {
        assert!(is_interactive(Some(&tty()), Some(PTS0), Some(PTS0)));
    }

    #[test]
    fn not_interactive_when_stdin_is_not_the_tty() {
        let null = CharDevice { major: 1, minor: 3 };
        assert!(!is_interactive(Some(&tty()), Some(null), Some(PTS0)));
    }

    #[test]
    fn not_interactive_without_a_controlling_tty() {
        assert!(!is_interactive(None, Some(PTS0), Some(PTS0)));
    }

    #[test]
    fn dev_tty_alias_counts_as_the_controlling_tty() {
        let dev_tty = CharDevice { major: 5, minor: 0 };
        assert!(is_interactive(Some(&tty()), Some(dev_tty), Some(PTS0)));
    }

    #[test]
    fn kernel_dev_t_splits_into_major_and_minor() {
        assert_eq!(
            CharDevice::from_kernel_dev((136 << 20) | 7),
            CharDevice {
                major: 136,
                minor: 7
            }
        );
    }

    #[test]
    fn split_args_keeps_empty_and_partial_arguments() {
        assert_eq!(split_args(b"a\0\0b\0"), vec!["a", "", "b"]);
        assert_eq!(split_args(b"a\0bc"), vec!["a", "bc"]);
        assert!(split_args(b"").is_empty());
    }

    #[test]
    fn split_args_replaces_invalid_utf8() {
        assert_eq!(split_args(b"x\xff\0"), vec!["x\u{fffd}"]);
    }

    #[test]
    fn decode_rejects_unknown_kind_and_short_records() {
        assert_eq!(decode(&[9, 0, 0, 0]), Err(DecodeError::UnknownKind(9)));
        assert_eq!(decode(&[1, 0]), Err(DecodeError::Short(2)));
        assert!(matches!(decode(&[1, 0, 0, 0]), Err(DecodeError::Short(4))));
    }
}
