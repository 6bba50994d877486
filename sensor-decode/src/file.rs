//! File records (`sensor_common::file`).

use sensor_common::file::{
    FILE_IN_CONTAINER, FILE_PATH_TRUNCATED, FILE_PATH2_TRUNCATED, FileAction, FileHeader,
};

use crate::{DecodeError, TaskInfo, read_pod, task_info};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub task: TaskInfo,
    pub action: FileAction,
    /// The resolved path as the acting process sees it. When `truncated`,
    /// the walk stopped short of the root and this is the part it reached
    /// (the leaf side), not an absolute path.
    pub path: String,
    pub truncated: bool,
    /// The second path of a rename (the new name).
    pub path2: Option<String>,
    pub path2_truncated: bool,
    pub ino: u64,
    /// `i_mode`: file type and permission bits.
    pub mode: u32,
    pub open_flags: u32,
    pub syscall: u32,
    /// The acting process is in a child pid namespace.
    pub in_container: bool,
}

pub(crate) fn decode_file(bytes: &[u8]) -> Result<FileRecord, DecodeError> {
    let h: FileHeader = read_pod(bytes)?;
    let payload = &bytes[size_of::<FileHeader>()..];
    let (n1, n2) = (h.path_len as usize, h.path2_len as usize);
    if n1 + n2 > payload.len() {
        return Err(DecodeError::PayloadLength {
            claimed: n1 + n2,
            actual: payload.len(),
        });
    }
    let action = FileAction::from_u32(h.action).ok_or(DecodeError::UnknownFileAction(h.action))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let truncated = h.flags & FILE_PATH_TRUNCATED != 0;
    let mut path = text(&payload[..n1]);
    if truncated {
        // The walk writes what it reached as `/a/b`; it is not absolute.
        path = path.trim_start_matches('/').to_string();
    }
    Ok(FileRecord {
        task: task_info(&h.ids),
        action,
        path,
        truncated,
        path2: (n2 > 0).then(|| text(&payload[n1..n1 + n2])),
        path2_truncated: h.flags & FILE_PATH2_TRUNCATED != 0,
        ino: h.ino,
        mode: h.mode,
        open_flags: h.open_flags,
        syscall: h.syscall,
        in_container: h.flags & FILE_IN_CONTAINER != 0,
    })
}
