//! The inverse of decode: ring-buffer records laid out exactly as the kernel
//! program writes them. For unit tests, benchmarks and fuzzing of everything
//! after the ring buffer, which then run without a kernel.

use sensor_common::{
    CGROUP_DEPTH, CGROUP_NAME_BYTES, COMM_BYTES, EXEC_ARGS_TRUNCATED, EXEC_CWD_TRUNCATED,
    EXEC_FD0_CHR, EXEC_FD2_CHR, EventKind, ExecHeader, ExitEvent, ForkEvent, TaskIds,
};

/// Nanoseconds per clock tick at the usual USER_HZ of 100.
const TICK_NS: u64 = 10_000_000;

fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for the integer-only #[repr(C)] ABI structs.
    unsafe { std::mem::zeroed() }
}

fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: reading the bytes of a plain #[repr(C)] value.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn copy_cut(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&src[..n]);
}

/// Task identity of process `pid` (its own session and group leader unless
/// changed), started at tick `pid` so start times are distinct and ordered.
pub fn task(pid: u32, ppid: u32, comm: &str) -> TaskIds {
    let mut t: TaskIds = zeroed();
    t.pid = pid;
    t.tgid = pid;
    t.ppid = ppid;
    t.sid = pid;
    t.pgid = pid;
    t.ns_tgid = pid;
    t.start_boottime_ns = u64::from(pid) * TICK_NS;
    t.parent_start_boottime_ns = u64::from(ppid) * TICK_NS;
    t.ktime_ns = u64::from(pid) * TICK_NS + 1;
    copy_cut(&mut t.comm[..COMM_BYTES], comm.as_bytes());
    t
}

/// What an exec record says.
#[derive(Clone, Debug)]
pub struct Exec<'a> {
    pub task: TaskIds,
    pub filename: &'a str,
    pub args: &'a [&'a str],
    /// cgroup kernfs names, leaf first.
    pub cgroup: &'a [&'a str],
    /// A pts (136:minor) as the controlling tty, on fd 0 and fd 2.
    pub pts: Option<u32>,
    /// argv bytes kept; the rest is cut and flagged as the kernel does.
    pub max_args: usize,
    /// Environment entries (`K=V`), as captured.
    pub env: &'a [&'a str],
    /// The working directory the kernel resolved (`None`: walk cut).
    pub cwd: Option<&'a str>,
}

impl<'a> Exec<'a> {
    pub fn new(task: TaskIds, filename: &'a str, args: &'a [&'a str]) -> Self {
        Self {
            task,
            filename,
            args,
            cgroup: &[],
            pts: None,
            max_args: sensor_common::MAX_ARGS_BYTES,
            env: &[],
            cwd: None,
        }
    }

    pub fn record(&self) -> Vec<u8> {
        let mut h: ExecHeader = zeroed();
        h.kind = EventKind::Exec as u32;
        h.ids = self.task;
        let mut argv = Vec::new();
        for a in self.args {
            argv.extend_from_slice(a.as_bytes());
            argv.push(0);
        }
        h.args_size = argv.len() as u32;
        if argv.len() > self.max_args {
            argv.truncate(self.max_args);
            h.flags |= EXEC_ARGS_TRUNCATED;
        }
        h.args_len = argv.len() as u32;
        h.filename_len = self.filename.len() as u32;
        if let Some(minor) = self.pts {
            let dev = (136 << 20) | minor;
            h.tty_major = 136;
            h.tty_minor = minor;
            copy_cut(&mut h.tty_name, format!("pts{minor}").as_bytes());
            h.flags |= EXEC_FD0_CHR | EXEC_FD2_CHR;
            h.fd0_rdev = dev;
            h.fd2_rdev = dev;
        }
        for (slot, name) in h
            .cgroup_names
            .iter_mut()
            .zip(self.cgroup)
            .take(CGROUP_DEPTH)
        {
            copy_cut(&mut slot[..CGROUP_NAME_BYTES], name.as_bytes());
        }
        let mut env = Vec::new();
        for v in self.env {
            env.extend_from_slice(v.as_bytes());
            env.push(0);
        }
        h.env_len = env.len() as u32;
        h.env_size = env.len() as u32;
        match self.cwd {
            Some(cwd) => h.cwd_len = cwd.len() as u32,
            None => h.flags |= EXEC_CWD_TRUNCATED,
        }
        let mut out = bytes_of(&h);
        out.extend_from_slice(&argv);
        out.extend_from_slice(self.filename.as_bytes());
        out.extend_from_slice(&env);
        out.extend_from_slice(self.cwd.unwrap_or_default().as_bytes());
        out
    }
}

/// A fork record: `child` is the new process.
pub fn fork(child: TaskIds) -> Vec<u8> {
    let mut ev: ForkEvent = zeroed();
    ev.kind = EventKind::Fork as u32;
    ev.child = child;
    bytes_of(&ev)
}

/// An exit record with a wait status (`code << 8` for a normal exit).
pub fn exit(task: TaskIds, wait_status: u32) -> Vec<u8> {
    let mut ev: ExitEvent = zeroed();
    ev.kind = EventKind::Exit as u32;
    ev.exit_code = wait_status;
    ev.ids = task;
    bytes_of(&ev)
}

#[cfg(test)]
mod tests {
    #[test]
    fn allow_listed_environment_variables_are_picked_from_the_block() {
        let t = task(9, 1, "sh");
        let mut e = Exec::new(t, "/bin/sh", &["sh"]);
        e.env = &[
            "PATH=/bin",
            "LD_PRELOAD=/tmp/x.so",
            "HISTFILE=/dev/null",
            "LD_PRELOADX=no",
        ];
        let Ok(Record::Exec(r)) = decode(&e.record()) else {
            panic!("exec did not decode")
        };
        let keep = |n: &[u8]| [&b"LD_PRELOAD"[..], b"HISTFILE"].contains(&n);
        let vars: Vec<String> = r.env_vars(keep).collect();
        assert_eq!(vars, ["LD_PRELOAD=/tmp/x.so", "HISTFILE=/dev/null"]);
        assert!(!r.env_truncated);
        let mut kept = r.clone();
        kept.retain_env(keep);
        assert_eq!(kept.env, b"LD_PRELOAD=/tmp/x.so\0HISTFILE=/dev/null\0");
        assert_eq!(kept.env_vars(|_| true).count(), 2);
    }

    use super::*;
    use crate::{Record, decode};

    #[test]
    fn encoded_exec_decodes_to_what_it_says() {
        let mut e = Exec::new(task(7, 1, "curl"), "/usr/bin/curl", &["curl", "-k"]);
        e.cgroup = &["libpod-x", "libpod_parent"];
        e.pts = Some(3);
        let Ok(Record::Exec(r)) = decode(&e.record()) else {
            panic!("not an exec");
        };
        assert_eq!(r.args, ["curl", "-k"]);
        assert_eq!(r.filename, "/usr/bin/curl");
        assert_eq!(r.task.comm, "curl");
        assert_eq!(r.cgroup_leaf_first, ["libpod-x", "libpod_parent"]);
        assert!(r.interactive);
        assert!(!r.args_truncated);
    }

    #[test]
    fn the_kernel_working_directory_follows_the_environment() {
        let mut e = Exec::new(task(7, 1, "ls"), "/bin/ls", &["ls"]);
        e.env = &["HISTFILE=/dev/null"];
        e.cwd = Some("/srv/app");
        let Ok(Record::Exec(r)) = decode(&e.record()) else {
            panic!("not an exec");
        };
        assert_eq!(r.cwd.as_deref(), Some("/srv/app"));
        assert_eq!(r.env, b"HISTFILE=/dev/null\0");
    }

    #[test]
    fn a_cut_working_directory_walk_decodes_as_unknown() {
        let mut e = Exec::new(task(7, 1, "ls"), "/bin/ls", &["ls"]);
        e.cwd = None;
        let Ok(Record::Exec(r)) = decode(&e.record()) else {
            panic!("not an exec");
        };
        assert_eq!(r.cwd, None);
    }

    #[test]
    fn encoded_exec_over_the_limit_is_cut_and_flagged() {
        let mut e = Exec::new(task(7, 1, "echo"), "/bin/echo", &["echo", "abcdef"]);
        e.max_args = 8;
        let Ok(Record::Exec(r)) = decode(&e.record()) else {
            panic!("not an exec");
        };
        assert!(r.args_truncated);
        assert_eq!(r.args_original_bytes, 12);
        assert_eq!(r.args, ["echo", "abc"]);
    }
}
