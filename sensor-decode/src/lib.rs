//! Decode: raw ring-buffer records (the `sensor-common` ABI) → owned Rust
//! records. Nothing here touches the kernel, so it is unit-tested with
//! hand-built byte buffers.

pub mod encode;
mod exec;
mod exit;
mod file;
mod fork;
mod task;

pub use exec::{ExeOrigin, ExecRecord, split_args};
pub use exit::ExitRecord;
pub use file::{FileRecord, FileResultRecord, normalise};
pub use fork::ForkRecord;
pub(crate) use task::task_info;
pub use task::{CharDevice, TaskInfo, Tty, is_interactive};

use sensor_common::EventKind;

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

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let kind: u32 = read_pod(bytes)?;
    match EventKind::from_u32(kind) {
        Some(EventKind::Exec) => exec::decode_exec(bytes).map(Record::Exec),
        Some(EventKind::Fork) => fork::decode_fork(bytes).map(Record::Fork),
        Some(EventKind::Exit) => exit::decode_exit(bytes).map(Record::Exit),
        Some(EventKind::File) => file::decode_file(bytes).map(Record::File),
        Some(EventKind::FileResult) => file::decode_result(bytes).map(Record::FileResult),
        None => Err(DecodeError::UnknownKind(kind)),
    }
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
            cwd: None,
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
