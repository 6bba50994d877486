//! File records (`sensor_common::file`).

use sensor_common::file::{
    FILE_IN_CONTAINER, FILE_PATH_TRUNCATED, FILE_PATH_UNNORMALISED, FILE_PATH2_TRUNCATED,
    FILE_PENDING, FileAction, FileHeader, FileResult,
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
    /// Seen at syscall entry: an event only once its [`FileResultRecord`]
    /// says the syscall succeeded.
    pub pending: bool,
    /// The kernel could not match the name (dot segments): normalised
    /// here, so user space checks it against the watch set.
    pub normalised: bool,
}

/// The outcome of a pending file operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileResultRecord {
    pub tid: u32,
    pub ret: i64,
}

pub(crate) fn decode_result(bytes: &[u8]) -> Result<FileResultRecord, DecodeError> {
    let r: FileResult = read_pod(bytes)?;
    Ok(FileResultRecord {
        tid: r.tid,
        ret: r.ret,
    })
}

/// Resolves `.` and `..` components and doubled slashes lexically, the
/// way the kernel walks a name (`..` of the root is the root). Symlinks in
/// the name are not followed: the kernel side had only the string.
pub fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut out = String::with_capacity(path.len());
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
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
    let unnormalised = h.flags & FILE_PATH_UNNORMALISED != 0;
    let mut path = text(&payload[..n1]);
    if truncated {
        // The walk writes what it reached as `/a/b`; it is not absolute.
        path = path.trim_start_matches('/').to_string();
    } else if unnormalised {
        path = normalise(&path);
    }
    let path2 = (n2 > 0).then(|| {
        let p = text(&payload[n1..n1 + n2]);
        if unnormalised { normalise(&p) } else { p }
    });
    Ok(FileRecord {
        task: task_info(&h.ids),
        action,
        path,
        truncated,
        path2,
        path2_truncated: h.flags & FILE_PATH2_TRUNCATED != 0,
        ino: h.ino,
        mode: h.mode,
        open_flags: h.open_flags,
        syscall: h.syscall,
        in_container: h.flags & FILE_IN_CONTAINER != 0,
        pending: h.flags & FILE_PENDING != 0,
        normalised: unnormalised,
    })
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn normalise_resolves_dot_segments_and_double_slashes() {
        assert_eq!(
            normalise("/tmp/a/../etc//cron.d/./job"),
            "/tmp/etc/cron.d/job"
        );
        assert_eq!(normalise("/../etc/passwd"), "/etc/passwd");
        assert_eq!(normalise("/"), "/");
    }
}
