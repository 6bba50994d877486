//! Seeding the table from `/proc` at start-up.

use super::*;

impl ProcessTable {
    /// Loads every process already running from /proc, so the events of
    /// processes that predate the agent still have parents and leaders.
    /// `container_of` maps a `/proc/<pid>/cgroup` text to its container.
    /// Returns how many were loaded.
    pub fn seed_from_proc(&mut self, container_of: &dyn Fn(&str) -> Option<ContainerRef>) -> usize {
        let Ok(dir) = std::fs::read_dir(&self.cfg.proc_root) else {
            return 0;
        };
        let mut procs: Vec<ProcessInfo> = dir
            .filter_map(|d| d.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| self.read_proc(pid, container_of))
            .collect();
        // Parents start before their children: insert in start order so each
        // entry-leader decision sees its parent's.
        procs.sort_by_key(|p| (p.start_ticks, p.pid));
        let n = procs.len();
        for p in procs {
            let p = Arc::new(p);
            let parent = self
                .find(p.ppid, None)
                .filter(|e| e.info.start_ticks <= p.start_ticks);
            let session = (p.sid != p.pid)
                .then(|| self.find_leader(p.sid, p.start_ticks))
                .flatten();
            let group = (p.pgid != p.pid)
                .then(|| self.find_leader(p.pgid, p.start_ticks))
                .flatten();
            let entry = evaluate_entry(&p, None, parent, session, group);
            self.insert(p, Some(entry));
        }
        self.stats.seeded += n as u64;
        n
    }

    fn read_proc(
        &self,
        pid: u32,
        container_of: &dyn Fn(&str) -> Option<ContainerRef>,
    ) -> Option<ProcessInfo> {
        let dir = self.cfg.proc_root.join(pid.to_string());
        let proc = procfs::process::Process::new_with_root(dir.clone()).ok()?;
        let stat = proc.stat().ok()?;
        if stat.flags & PF_KTHREAD != 0 {
            return None;
        }
        let status = proc.status().ok()?;
        // Raw bytes: procfs's cmdline() drops empty args and rejects
        // invalid UTF-8; the kernel path keeps both (lossily).
        let raw_args = std::fs::read(dir.join("cmdline")).unwrap_or_default();
        let args = split_args(&raw_args);
        let link = |name: &str| {
            std::fs::read_link(dir.join(name))
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        };
        let executable = link("exe");
        let pidns_inum = link("ns/pid")
            .and_then(|s| s.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok())
            .unwrap_or(0);
        let tty = (stat.tty_nr != 0).then(|| {
            let (major, minor) = stat.tty_nr();
            let device = CharDevice {
                major: major as u32,
                minor: minor as u32,
            };
            Tty {
                device,
                name: tty_name(device),
            }
        });
        let fd_dev = |fd: &str| {
            let m = std::fs::metadata(dir.join("fd").join(fd)).ok()?;
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_char_device().then(|| CharDevice {
                major: libc::major(m.rdev()),
                minor: libc::minor(m.rdev()),
            })
        };
        let interactive = tty.as_ref().is_some_and(|t| {
            [fd_dev("0"), fd_dev("2")]
                .iter()
                .all(|d| d.is_some_and(|d| d == t.device || d == TTYAUX))
        });
        let container = std::fs::read_to_string(dir.join("cgroup"))
            .ok()
            .and_then(|c| container_of(&c))
            .map(Arc::new);
        let ns_tgid = status
            .nstgid
            .as_ref()
            .and_then(|v| v.last().copied())
            .unwrap_or(stat.pid) as u32;
        let truncated = false;
        let name = process_name(executable.as_deref(), "", &stat.comm);
        let image = Image::new(name, executable, args, truncated);
        let image = image.capped(self.cfg.stored_args_bytes).unwrap_or(image);
        Some(ProcessInfo {
            pid: stat.pid as u32,
            ppid: stat.ppid as u32,
            sid: stat.session as u32,
            pgid: stat.pgrp as u32,
            ns_tgid,
            pidns_inum,
            uid: status.ruid,
            euid: status.euid,
            gid: status.rgid,
            egid: status.egid,
            start_boottime_ns: stat.starttime.saturating_mul(self.ns_per_tick),
            start_ticks: stat.starttime,
            entity_id: self.entity(stat.pid as u32, stat.starttime),
            image: Arc::new(image),
            interactive,
            tty,
            container,
            working_directory: link("cwd").map(Arc::from),
            rendered: Default::default(),
        })
    }
}
