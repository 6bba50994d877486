//! Exec records: argv, the execve path, the resolved executable, the
//! environment block, the tty and the cgroup.

use sensor_common::{
    CGROUP_DEPTH, EXEC_ARGS_READ_FAILED, EXEC_ARGS_TRUNCATED, EXEC_CWD_TRUNCATED,
    EXEC_ENV_TRUNCATED, EXEC_EXE_LAYER_UNKNOWN, EXEC_EXE_OVERLAY, EXEC_EXE_TRUNCATED,
    EXEC_EXE_UNLINKED, EXEC_EXE_UPPER, EXEC_FD0_CHR, EXEC_FD2_CHR, EXEC_FILENAME_TRUNCATED,
    ExecHeader,
};

use crate::{
    CharDevice, DecodeError, TaskInfo, Tty, c_str_lossy, is_interactive, read_pod, task_info,
};

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
    /// The working directory, resolved in the kernel from the task's
    /// `fs->pwd`; `None` when the walk was incomplete.
    pub cwd: Option<String>,
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
            // memchr: a byte loop here was 4 % of the agent's CPU per exec.
            let end = memchr::memchr(0, &env[r..]).map_or(env.len(), |i| r + i);
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
    memchr::memchr(b'=', entry).map_or(entry, |i| &entry[..i])
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

pub(crate) fn decode_exec(bytes: &[u8]) -> Result<ExecRecord, DecodeError> {
    let h: ExecHeader = read_pod(bytes)?;
    let payload = &bytes[size_of::<ExecHeader>()..];
    let args_len = h.args_len as usize;
    let filename_len = h.filename_len as usize;
    let exe_len = h.exe_len as usize;
    let env_len = h.env_len as usize;
    let cwd_len = h.cwd_len as usize;
    let claimed = args_len + filename_len + exe_len + env_len + cwd_len;
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
        env: payload[exe_end..exe_end + env_len].to_vec(),
        env_truncated: h.flags & EXEC_ENV_TRUNCATED != 0,
        origin: ExeOrigin {
            unlinked: h.flags & EXEC_EXE_UNLINKED != 0,
            upper_layer: (h.flags & EXEC_EXE_OVERLAY != 0 && h.flags & EXEC_EXE_LAYER_UNKNOWN == 0)
                .then_some(h.flags & EXEC_EXE_UPPER != 0),
        },
        cwd: (h.flags & EXEC_CWD_TRUNCATED == 0 && cwd_len > 0)
            .then(|| String::from_utf8_lossy(&payload[exe_end + env_len..claimed]).into_owned()),
    })
}
