//! `file.*` and the event categorisation of file events, in the shape
//! Elastic Defend for Containers writes them (so its `file where` rules
//! match unmodified).

use sensor_common::file::FileAction;
use serde::{Serialize, Serializer, ser::SerializeMap};

use crate::decode::FileRecord;

pub const FILE_DATASET: &str = "sensor.file";

/// `event.action` and `event.type` of a file action. A read-only open is
/// `access`, not `open`: Defend for Containers reports only opens with
/// write intent as `open`, and its rules rely on that.
pub fn action_and_type(a: FileAction) -> (&'static str, &'static str) {
    match a {
        FileAction::Create => ("creation", "creation"),
        FileAction::OpenWrite => ("open", "change"),
        FileAction::OpenRead => ("access", "access"),
        FileAction::Rename => ("rename", "change"),
        FileAction::Delete => ("deletion", "deletion"),
        FileAction::Chmod => ("permission_change", "change"),
    }
}

/// `file.*` of one record.
pub struct FileObj<'a>(pub &'a FileRecord);

const S_IFMT: u32 = 0o170000;

fn file_type(mode: u32) -> Option<&'static str> {
    Some(match mode & S_IFMT {
        0o100000 => "file",
        0o040000 => "dir",
        0o120000 => "symlink",
        0o020000 => "char_device",
        0o060000 => "block_device",
        0o010000 => "fifo",
        0o140000 => "socket",
        _ => return None,
    })
}

/// `(directory, name)` of a path; the directory of `/x` is `/`.
fn split(path: &str) -> (Option<&str>, &str) {
    match path.rfind('/') {
        Some(0) => (Some("/"), &path[1..]),
        Some(i) => (Some(&path[..i]), &path[i + 1..]),
        None => (None, path),
    }
}

/// What follows the last dot of a name, unless the dot leads it.
fn extension(name: &str) -> Option<&str> {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => Some(&name[i + 1..]),
        _ => None,
    }
}

impl Serialize for FileObj<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        // A rename is reported under its new name, with the old one in
        // `file.Ext.original` (as Elastic Endpoint writes renames).
        let (path, original) = match (&r.action, &r.path2) {
            (FileAction::Rename, Some(new)) => (new.as_str(), Some(r.path.as_str())),
            _ => (r.path.as_str(), None),
        };
        let (dir, name) = split(path);
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("path", path)?;
        if !name.is_empty() {
            m.serialize_entry("name", name)?;
        }
        if let Some(d) = dir.filter(|_| !r.truncated) {
            m.serialize_entry("directory", d)?;
        }
        if let Some(e) = extension(name) {
            m.serialize_entry("extension", e)?;
        }
        if r.ino != 0 {
            m.serialize_entry("inode", &itoa::Buffer::new().format(r.ino))?;
        }
        if r.mode != 0 {
            m.serialize_entry("mode", &format!("{:04o}", r.mode & 0o7777))?;
            if let Some(t) = file_type(r.mode) {
                m.serialize_entry("type", t)?;
            }
        }
        if r.truncated || original.is_some() {
            m.serialize_entry("Ext", &FileExt { r, original })?;
        }
        m.end()
    }
}

struct FileExt<'a> {
    r: &'a FileRecord,
    original: Option<&'a str>,
}

impl Serialize for FileExt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.r.truncated {
            // The walk stopped short of the root: `path` is the part it
            // reached (leaf side), not an absolute path.
            m.serialize_entry("path_truncated", &true)?;
        }
        if let Some(o) = self.original {
            let (_, name) = split(o);
            m.serialize_entry("original", &Original { path: o, name })?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Original<'a> {
    path: &'a str,
    name: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_splits_into_directory_and_name() {
        assert_eq!(split("/etc/cron.d/job"), (Some("/etc/cron.d"), "job"));
        assert_eq!(split("/init"), (Some("/"), "init"));
    }

    #[test]
    fn extension_skips_a_leading_dot_and_a_trailing_one() {
        assert_eq!(extension("unit.service"), Some("service"));
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("x."), None);
        assert_eq!(extension("a.tar.gz"), Some("gz"));
    }

    #[test]
    fn mode_gives_the_ecs_file_type() {
        assert_eq!(file_type(0o100644), Some("file"));
        assert_eq!(file_type(0o040755), Some("dir"));
        assert_eq!(file_type(0o120777), Some("symlink"));
    }
}
