//! Issue 9: file activity from the real kernel hooks (syscall tracepoints)
//! on the host. The test process does each operation itself through libc,
//! so the acting process is known (`process.pid` is ours) and no tool has
//! to exist on the guest kernels' initramfs. Needs root and BPF.

use std::{
    ffi::CString,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use sensor_tests::*;
use serde_json::Value;

/// A fresh directory under /tmp, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = PathBuf::from(format!("/tmp/{}", unique_marker(tag)));
        std::fs::create_dir_all(&p).unwrap();
        // The kernel reports resolved paths (/tmp may be a symlink).
        Dir(PathBuf::from(canonical(p.to_str().unwrap())))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn watch(&self) -> String {
        format!("{}/*", self.0.display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// In the emulated guests (`SENSOR_E2E_STORM` is set only there) each
/// agent start with file hooks spends most of a minute verifying the file
/// programs, so only the tests marked `guest` run there: one per program
/// (an open, a name-based operation). The host run has them all.
fn host_only(test: &str) -> bool {
    if std::env::var_os("SENSOR_E2E_STORM").is_some() {
        eprintln!(
            "SKIPPED in the emulated guest (file-program verification time): {test}; run on the host"
        );
        return true;
    }
    false
}

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn file_agent(watch: &[&str]) -> Agent {
    let mut args = vec!["--events", "file"];
    for w in watch {
        args.extend(["--file-watch", w]);
    }
    Agent::start(&args)
}

fn file_event<'a>(action: &'a str, path: &'a Path) -> impl Fn(&Value) -> bool + 'a {
    move |v| {
        v["event"]["category"][0] == "file"
            && v["event"]["action"] == action
            && v["file"]["path"].as_str() == path.to_str()
    }
}

fn by_us(v: &Value) -> bool {
    v["process"]["pid"].as_u64() == Some(u64::from(std::process::id()))
}

#[test]
fn file_created_under_a_watched_prefix_is_a_creation_by_the_process_that_created_it() {
    if !require_root_and_bpf() {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-create");
    let agent = file_agent(&[&dir.watch()]);
    let p = dir.path("new.txt");
    std::fs::write(&p, b"x").unwrap();
    let v = agent.wait_for("creation", EVENT_TIMEOUT, file_event("creation", &p));
    assert!(by_us(&v), "{v}");
    assert_eq!(v["event"]["type"][0], "creation");
    assert_eq!(v["file"]["name"], "new.txt");
    assert_eq!(v["file"]["directory"].as_str(), dir.0.to_str());
    assert_eq!(v["file"]["extension"], "txt");
    assert_eq!(v["file"]["type"], "file");
    assert!(v["file"]["inode"].as_str().is_some(), "{v}");
    assert!(v["process"]["parent"]["pid"].as_u64().is_some(), "{v}");
    agent.stop();
}

#[test]
fn opening_an_existing_file_for_append_is_an_open_with_type_change() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("opening_an_existing_file_for_append_is_an_open_with_type_change") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-open");
    let p = dir.path("log");
    std::fs::write(&p, b"x").unwrap();
    let agent = file_agent(&[&dir.watch()]);
    std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    let v = agent.wait_for("open for append", EVENT_TIMEOUT, file_event("open", &p));
    assert_eq!(v["event"]["type"][0], "change");
    assert!(by_us(&v), "{v}");
    agent.stop();
}

#[test]
fn rename_across_directories_reports_the_new_path_and_the_original() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("rename_across_directories_reports_the_new_path_and_the_original") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-rename");
    std::fs::create_dir(dir.path("a")).unwrap();
    std::fs::create_dir(dir.path("b")).unwrap();
    let (from, to) = (dir.path("a/f"), dir.path("b/g"));
    std::fs::write(&from, b"x").unwrap();
    let agent = file_agent(&[&dir.watch()]);
    std::fs::rename(&from, &to).unwrap();
    let v = agent.wait_for("rename", EVENT_TIMEOUT, file_event("rename", &to));
    assert_eq!(v["file"]["Ext"]["original"]["path"].as_str(), from.to_str());
    assert_eq!(v["file"]["Ext"]["original"]["name"], "f");
    assert_eq!(v["event"]["type"][0], "change");
    agent.stop();
}

#[test]
fn relative_paths_with_a_dirfd_are_reported_absolute() {
    if !require_root_and_bpf() {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-dirfd");
    let agent = file_agent(&[&dir.watch()]);
    let p = dir.path("rel");
    // SAFETY: plain syscalls on paths and fds this test owns.
    unsafe {
        let dfd = libc::open(c(&dir.0).as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        assert!(dfd >= 0);
        let fd = libc::openat(dfd, c"rel".as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
        assert!(fd >= 0);
        libc::close(fd);
        assert_eq!(libc::fchmodat(dfd, c"rel".as_ptr(), 0o600, 0), 0);
        assert_eq!(libc::unlinkat(dfd, c"rel".as_ptr(), 0), 0);
        libc::close(dfd);
    }
    agent.wait_for("openat creation", EVENT_TIMEOUT, file_event("creation", &p));
    let chmod = agent.wait_for(
        "fchmodat",
        EVENT_TIMEOUT,
        file_event("permission_change", &p),
    );
    assert_eq!(chmod["file"]["mode"], "0600");
    let del = agent.wait_for("unlinkat", EVENT_TIMEOUT, file_event("deletion", &p));
    assert_eq!(del["event"]["type"][0], "deletion");
    assert!(by_us(&del), "{del}");
    agent.stop();
}

#[test]
fn a_name_with_dot_segments_is_reported_normalised() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("a_name_with_dot_segments_is_reported_normalised") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-dots");
    std::fs::create_dir(dir.path("sub")).unwrap();
    let p = dir.path("victim");
    std::fs::write(&p, b"x").unwrap();
    let agent = file_agent(&[&dir.watch()]);
    let dotted = dir.path("sub/.././victim");
    std::fs::remove_file(&dotted).unwrap();
    agent.wait_for(
        "normalised deletion",
        EVENT_TIMEOUT,
        file_event("deletion", &p),
    );
    agent.stop();
}

/// Directories `watched/` (holding `y`) and `other/` (holding `x`), and an
/// agent watching `watched/*`: (dir, other/x, watched/y, agent).
fn watched_and_other_dir(tag: &str) -> (Dir, PathBuf, PathBuf, Agent) {
    let dir = Dir::new(tag);
    std::fs::create_dir(dir.path("watched")).unwrap();
    std::fs::create_dir(dir.path("other")).unwrap();
    let (outside, inside) = (dir.path("other/x"), dir.path("watched/y"));
    std::fs::write(&outside, b"x").unwrap();
    std::fs::write(&inside, b"y").unwrap();
    let watch = format!("{}/*", dir.path("watched").display());
    let agent = file_agent(&[&watch]);
    (dir, outside, inside, agent)
}

/// A dotted name reaches user space (the kernel cannot match it) but
/// leads outside the watched directory: it is checked there and dropped,
/// while the watched deletion after it is reported.
#[test]
fn a_dotted_name_leading_outside_the_watch_is_not_reported() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("a_dotted_name_leading_outside_the_watch_is_not_reported") {
        return;
    }
    let _g = serial();
    let (dir, outside, inside, agent) = watched_and_other_dir("file-dots-out");
    std::fs::remove_file(dir.path("watched/../other/x")).unwrap();
    std::fs::remove_file(dir.path("other/../watched/y")).unwrap();
    agent.wait_for(
        "watched deletion",
        EVENT_TIMEOUT,
        file_event("deletion", &inside),
    );
    let done = agent.stop();
    let outside_seen = done
        .events
        .iter()
        .any(|v| v["file"]["path"].as_str() == outside.to_str());
    assert!(!outside_seen, "a deletion outside the watch was reported");
    assert_eq!(
        done.summary.get("file_outside_watch"),
        Some(&1),
        "{:?}",
        done.summary
    );
}

#[test]
fn a_leading_dot_slash_is_matched_in_the_kernel() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("a_leading_dot_slash_is_matched_in_the_kernel") {
        return;
    }
    let _g = serial();
    let (dir, outside, inside, agent) = watched_and_other_dir("file-dot-slash");
    // As tar does it: relative to the working directory, behind `./`.
    for (cwd, name) in [("other", "./x"), ("watched", "././y")] {
        let st = std::process::Command::new("chmod")
            .args(["0750", name])
            .current_dir(dir.path(cwd))
            .status()
            .unwrap();
        assert!(st.success());
    }
    agent.wait_for(
        "watched chmod",
        EVENT_TIMEOUT,
        file_event("permission_change", &inside),
    );
    let done = agent.stop();
    assert!(
        !done
            .events
            .iter()
            .any(|v| v["file"]["path"].as_str() == outside.to_str()),
        "a chmod outside the watch was reported"
    );
    // Decided in the kernel: nothing was left to user space to drop.
    assert_eq!(
        done.summary.get("file_outside_watch"),
        Some(&0),
        "{:?}",
        done.summary
    );
}

#[test]
fn open_through_a_symlink_reports_the_target_path() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("open_through_a_symlink_reports_the_target_path") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-symlink");
    let other = Dir::new("file-symlink-src");
    let target = dir.path("target");
    std::fs::write(&target, b"x").unwrap();
    let link = other.path("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let agent = file_agent(&[&dir.watch()]);
    std::fs::OpenOptions::new().write(true).open(&link).unwrap();
    agent.wait_for(
        "write via symlink",
        EVENT_TIMEOUT,
        file_event("open", &target),
    );
    agent.stop();
}

#[test]
fn a_write_through_a_bind_mount_reports_the_path_the_process_used() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("a_write_through_a_bind_mount_reports_the_path_the_process_used") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-bind-src");
    let mnt = Dir::new("file-bind-dst");
    std::fs::write(dir.path("f"), b"x").unwrap();
    // SAFETY: a bind mount of our own directories, undone below.
    let rc = unsafe {
        libc::mount(
            c(&dir.0).as_ptr(),
            c(&mnt.0).as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let agent = file_agent(&[&mnt.watch()]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(mnt.path("f"))
        .unwrap();
    let via = mnt.path("f");
    agent.wait_for(
        "write via bind mount",
        EVENT_TIMEOUT,
        file_event("open", &via),
    );
    agent.stop();
    // SAFETY: unmounting what this test mounted.
    unsafe { libc::umount2(c(&mnt.0).as_ptr(), libc::MNT_DETACH) };
}

#[test]
fn a_path_deeper_than_the_walk_limit_is_flagged_truncated_with_the_right_name() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("a_path_deeper_than_the_walk_limit_is_flagged_truncated_with_the_right_name") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-deep");
    let mut deep = dir.0.clone();
    for i in 0..24 {
        deep.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    let name = unique_marker("deep-leaf");
    let agent = file_agent(&[&format!("name:{name}")]);
    std::fs::write(deep.join(&name), b"x").unwrap();
    let v = agent.wait_for("deep creation", EVENT_TIMEOUT, |v| {
        v["event"]["category"][0] == "file" && v["file"]["name"].as_str() == Some(&name)
    });
    assert_eq!(v["file"]["Ext"]["path_truncated"], true, "{v}");
    let path = v["file"]["path"].as_str().unwrap();
    assert!(!path.starts_with('/'), "a cut path is not absolute: {path}");
    assert!(
        deep.join(&name).to_str().unwrap().ends_with(path),
        "{path} is not a tail of the real path"
    );
    agent.stop();
}

#[test]
fn a_failed_unlink_is_not_an_event() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("a_failed_unlink_is_not_an_event") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-fail");
    let agent = file_agent(&[&dir.watch()]);
    let missing = dir.path("missing");
    assert!(std::fs::remove_file(&missing).is_err());
    let marker = dir.path("after");
    std::fs::write(&marker, b"x").unwrap();
    agent.wait_for(
        "later creation",
        EVENT_TIMEOUT,
        file_event("creation", &marker),
    );
    let done = agent.stop();
    assert!(
        !done.events.iter().any(file_event("deletion", &missing)),
        "a failed unlink was reported"
    );
    assert!(done.summary["file_failed"] >= 1, "{:?}", done.summary);
}

#[test]
fn a_read_of_a_watched_name_is_an_access_event_and_other_reads_are_not() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("a_read_of_a_watched_name_is_an_access_event_and_other_reads_are_not") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-read");
    let secret = dir.path("secret-token");
    let other = dir.path("other");
    std::fs::write(&secret, b"x").unwrap();
    std::fs::write(&other, b"x").unwrap();
    let agent = Agent::start(&[
        "--events",
        "file",
        "--file-watch",
        &dir.watch(),
        "--file-watch-read",
        "name:secret-token",
    ]);
    std::fs::read(&other).unwrap();
    std::fs::read(&secret).unwrap();
    let v = agent.wait_for("read", EVENT_TIMEOUT, file_event("access", &secret));
    assert_eq!(v["event"]["type"][0], "access");
    let done = agent.stop();
    assert!(!done.events.iter().any(file_event("access", &other)));
}

#[test]
fn unwatched_read_only_opens_never_leave_the_kernel() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("unwatched_read_only_opens_never_leave_the_kernel") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-unwatched");
    let p = dir.path("hot");
    std::fs::write(&p, b"x").unwrap();
    // Something is watched (so the hooks run), but not this file's reads.
    let agent = file_agent(&[&dir.watch()]);
    const OPENS: usize = 200_000;
    let path = c(&p);
    for _ in 0..OPENS {
        // SAFETY: open/close of a file this test owns.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            assert!(fd >= 0);
            libc::close(fd);
        }
    }
    let marker = dir.path("done");
    std::fs::write(&marker, b"x").unwrap();
    agent.wait_for("marker", EVENT_TIMEOUT, file_event("creation", &marker));
    let done = agent.stop();
    let ours = done
        .events
        .iter()
        .filter(|v| v["file"]["path"].as_str() == p.to_str())
        .count();
    assert_eq!(ours, 0, "unwatched reads were reported");
    let s = &done.summary;
    eprintln!("kernel file counters after {OPENS} unwatched opens: {s:?}");
    assert!(s["file_unwatched"] >= OPENS as u64, "{s:?}");
    assert!(
        s["file_emitted"] < 100,
        "records left the kernel for unwatched opens: {s:?}"
    );
}

#[test]
fn with_no_file_rule_and_no_watch_no_file_record_leaves_the_kernel() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("with_no_file_rule_and_no_watch_no_file_record_leaves_the_kernel") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-none");
    let agent = Agent::start(&["--events", "file"]);
    agent.wait_stderr("file watch set empty", 1, Duration::from_secs(5));
    for i in 0..100 {
        std::fs::write(dir.path(&format!("f{i}")), b"x").unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let done = agent.stop();
    assert_eq!(done.summary["file_emitted"], 0, "{:?}", done.summary);
    assert_eq!(done.summary["file"], 0);
}

#[test]
fn file_storm_every_creation_is_an_event_or_a_counted_drop() {
    if !require_root_and_bpf() {
        return;
    }
    if host_only("file_storm_every_creation_is_an_event_or_a_counted_drop") {
        return;
    }
    let _g = serial();
    let dir = Dir::new("file-storm");
    let agent = file_agent(&[&dir.watch()]);
    let n: usize = std::env::var("SENSOR_E2E_STORM")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(10_000, |s: usize| s.max(2_000) * 2);
    for i in 0..n {
        std::fs::File::create(dir.path(&format!("s{i}"))).unwrap();
    }
    let ours = |v: &Value| {
        v["event"]["action"] == "creation" && v["file"]["directory"].as_str() == dir.0.to_str()
    };
    agent.settle(n, ours);
    let done = agent.stop();
    let seen = done.events.iter().filter(|v| ours(v)).count() as u64;
    let s = &done.summary;
    let accounted = seen + s["file_drops"] + s["file_shed"];
    eprintln!("file storm: {n} creations, {seen} events, summary {s:?}");
    assert_eq!(accounted, n as u64, "{s:?}");
}

/// Whether BPF LSM is active here (`/sys/kernel/security/lsm` lists
/// `bpf`); says loudly that `test` did not run when it is not.
fn bpf_lsm_listed(test: &str) -> bool {
    let lsm_list = "/sys/kernel/security/lsm";
    if !Path::new(lsm_list).exists() {
        // A bare guest has securityfs unmounted; the agent mounts it too.
        let _ = std::process::Command::new("mount")
            .args(["-t", "securityfs", "securityfs", "/sys/kernel/security"])
            .status();
    }
    let lsms = std::fs::read_to_string(lsm_list).unwrap_or_default();
    if lsms.trim().split(',').any(|l| l == "bpf") {
        return true;
    }
    eprintln!(
        "SKIPPED: BPF LSM is not active here ({lsm_list}: {:?}) — {test} did NOT run",
        lsms.trim()
    );
    false
}

/// A file agent with `--file-hooks way` and `args`; None, said loudly,
/// where `way` is `lsm` and the kernel refuses BPF LSM programs. Listed is
/// not allowed: this machine's kernel lists bpf and refuses every BPF LSM
/// program (EPERM at load, with no verifier log); the agent says so and
/// runs without them.
fn agent_at(test: &str, way: &str, args: &[&str]) -> Option<Agent> {
    let mut all = vec!["--events", "file", "--file-hooks", way];
    all.extend_from_slice(args);
    let agent = Agent::start(&all);
    if way != "lsm" {
        return Some(agent);
    }
    let refused = agent
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("file hooks not attached") && l.contains("Operation not permitted"));
    if let Some(refused) = refused {
        agent.stop();
        eprintln!(
            "SKIPPED: BPF LSM is active but this kernel refuses its programs — \
             {test} did NOT run: {refused}"
        );
        return None;
    }
    Some(agent)
}

/// Every action (creation, write, read of a watched name, rename across
/// directories, chmod, link, symlink, unlink, rmdir), seen by an agent at
/// BPF LSM's hooks (`file_open`, `path_*`) and by one at the syscall
/// tracepoints: the same actions, paths, original paths and modes.
/// Needs a kernel running BPF LSM (the VM guests are booted with
/// `lsm=...,bpf`); elsewhere it skips loudly.
#[test]
fn lsm_and_tracepoint_hooks_report_the_same_events() {
    const TEST: &str = "lsm_and_tracepoint_hooks_report_the_same_events";
    if !require_root_and_bpf() || !bpf_lsm_listed(TEST) {
        return;
    }
    let _g = serial();
    let seen = |way: &str| {
        let dir = Dir::new(&format!("file-way-{way}"));
        let read_watch = dir.path("token");
        let watch = dir.watch();
        let args = [
            "--file-watch",
            &watch,
            "--file-watch-read",
            read_watch.to_str().unwrap(),
        ];
        let agent = agent_at(TEST, way, &args)?;
        let p = dir.path("a.txt");
        std::fs::write(&p, b"1").unwrap();
        std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::fs::write(&read_watch, b"t").unwrap();
        let _ = std::fs::read(&read_watch).unwrap();
        std::fs::create_dir(dir.path("sub")).unwrap();
        let moved = dir.path("sub/b.txt");
        std::fs::rename(&p, &moved).unwrap();
        std::fs::set_permissions(&moved, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::hard_link(&moved, dir.path("c.txt")).unwrap();
        std::os::unix::fs::symlink("sub/b.txt", dir.path("d.lnk")).unwrap();
        std::fs::remove_file(dir.path("c.txt")).unwrap();
        std::fs::remove_file(dir.path("d.lnk")).unwrap();
        std::fs::remove_file(&moved).unwrap();
        let sub = dir.path("sub");
        std::fs::remove_dir(&sub).unwrap();
        agent.wait_for("rmdir", EVENT_TIMEOUT, file_event("deletion", &sub));
        let done = agent.stop();
        let rel = |v: &Value| {
            let path = v.as_str().unwrap_or("");
            path.strip_prefix(dir.0.to_str().unwrap())
                .unwrap_or(path)
                .to_string()
        };
        let mut out: Vec<(String, String, String, String)> = done
            .events
            .iter()
            .filter(|v| v["event"]["category"][0] == "file" && by_us(v))
            .map(|v| {
                (
                    v["event"]["action"].as_str().unwrap_or("").to_string(),
                    rel(&v["file"]["path"]),
                    rel(&v["file"]["Ext"]["original"]["path"]),
                    // The new mode of a chmod (an open's is the inode's).
                    if v["event"]["action"] == "permission_change" {
                        v["file"]["mode"].to_string()
                    } else {
                        String::new()
                    },
                )
            })
            .collect();
        out.sort();
        Some(out)
    };
    let Some(lsm) = seen("lsm") else {
        return;
    };
    let tp = seen("tracepoint").unwrap();
    eprintln!("LSM way: {lsm:?}");
    for action in [
        "creation",
        "open",
        "access",
        "rename",
        "permission_change",
        "deletion",
    ] {
        assert!(
            lsm.iter().any(|e| e.0 == action),
            "the LSM way saw no {action}: {lsm:?}"
        );
    }
    assert_eq!(lsm, tp, "LSM and tracepoints must report the same events");
}

/// The kernel's preemption mode, where it can preempt kernel code
/// (`full`, `lazy`, or a static `PREEMPT`/`PREEMPT_RT` build); None where
/// it cannot (`none`, `voluntary`).
fn kernel_preemption() -> Option<String> {
    let dynamic = "/sys/kernel/debug/sched/preempt";
    if !Path::new(dynamic).exists() {
        // Quiet: "already mounted" is the usual answer.
        let _ = std::process::Command::new("mount")
            .args(["-t", "debugfs", "debugfs", "/sys/kernel/debug"])
            .stderr(std::process::Stdio::null())
            .status();
    }
    // "none voluntary (full) lazy": the mode in parentheses.
    if let Ok(modes) = std::fs::read_to_string(dynamic) {
        let mode = modes
            .split_whitespace()
            .find_map(|m| m.strip_prefix('(')?.strip_suffix(')'))
            .unwrap_or_default()
            .to_string();
        return matches!(mode.as_str(), "full" | "lazy").then_some(mode);
    }
    let version = std::fs::read_to_string("/proc/sys/kernel/version").unwrap_or_default();
    version
        .split_whitespace()
        .find(|w| matches!(*w, "PREEMPT" | "PREEMPT_RT" | "PREEMPT_LAZY"))
        .map(str::to_string)
}

/// Pins the calling thread to CPU 0.
fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is valid; the calls take our own thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// Creations on a CPU that preempts kernel code, at hook `way` (`lsm` or
/// `tracepoint`): two workers create files on CPU 0 while a real-time
/// thread there wakes every 200 µs to create its own, preempting them
/// mid-syscall. Each creation must be reported once, with its own path,
/// or be counted as a drop. Skips loudly where the kernel does not
/// preempt kernel code, or (`lsm`) does not run BPF LSM.
fn creations_on_a_preempted_cpu(test: &str, way: &str) {
    if !require_root_and_bpf() || (way == "lsm" && !bpf_lsm_listed(test)) {
        return;
    }
    let Some(mode) = kernel_preemption() else {
        eprintln!(
            "SKIPPED: this kernel does not preempt kernel code (preemption none or voluntary), \
             so file programs cannot interleave on a CPU — {test} did NOT run"
        );
        return;
    };
    eprintln!("kernel preemption: {mode}");
    let _g = serial();
    let dir = Dir::new(&format!("file-preempt-{way}"));
    // Deep, so each walk takes longer and is more often preempted.
    let deep = dir.path("p/q/r/s/t/u/v/w");
    std::fs::create_dir_all(&deep).unwrap();
    let watch = format!("{}/*", deep.display());
    let Some(agent) = agent_at(test, way, &["--file-watch", &watch]) else {
        return;
    };
    let run_for = Duration::from_secs(3);
    let worker = |tag: &'static str, realtime: bool| {
        let deep = deep.clone();
        std::thread::spawn(move || {
            pin_to_cpu0();
            if realtime {
                let p = libc::sched_param { sched_priority: 1 };
                // SAFETY: our own thread, a valid parameter.
                let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) };
                assert_eq!(rc, 0, "SCHED_FIFO: {}", std::io::Error::last_os_error());
            }
            let start = std::time::Instant::now();
            let mut made = Vec::new();
            let mut i = 0u64;
            while start.elapsed() < run_for {
                // Names of varied lengths, so an overwrite shows.
                let p = deep.join(format!("{tag}{i}{}", "x".repeat((i % 7) as usize)));
                std::fs::File::create(&p).unwrap();
                made.push(p.to_string_lossy().into_owned());
                i += 1;
                if realtime {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            made
        })
    };
    let threads = [worker("a", false), worker("b", false), worker("rt", true)];
    let made: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let created = made.len();
    let made: std::collections::HashSet<String> = made.into_iter().collect();
    let ours = |v: &Value| v["event"]["category"][0] == "file" && by_us(v);
    agent.settle(created, ours);
    let done = agent.stop();
    let paths: Vec<&str> = done
        .events
        .iter()
        .filter(|v| ours(v))
        .map(|v| v["file"]["path"].as_str().unwrap_or(""))
        .collect();
    let foreign: Vec<&&str> = paths.iter().filter(|p| !made.contains(**p)).collect();
    let unique: std::collections::HashSet<&&str> = paths.iter().collect();
    let s = &done.summary;
    eprintln!(
        "{way}: {created} creations on CPU 0 ({mode}): {} events, {} distinct, summary {s:?}",
        paths.len(),
        unique.len()
    );
    assert!(
        foreign.is_empty(),
        "{} event(s) with a path nobody created, first: {:?}",
        foreign.len(),
        foreign.first()
    );
    assert_eq!(unique.len(), paths.len(), "a creation was reported twice");
    assert_eq!(
        paths.len() as u64 + s["file_drops"] + s["file_shed"],
        created as u64,
        "every creation is an event or a counted drop: {s:?}"
    );
}

/// BPF LSM programs run with migration off but preemption on: another
/// task's file program runs on the same CPU in the middle of a walk. (A
/// shared per-CPU scratch once reported a symlink in CI as
/// `/dev/null\0ile-way-lsm-...`.) Runs where BPF LSM is active and the
/// kernel preempts kernel code (the 6.19 guest).
#[test]
fn preempted_lsm_walks_report_each_creation_once_with_its_own_path() {
    creations_on_a_preempted_cpu(
        "preempted_lsm_walks_report_each_creation_once_with_its_own_path",
        "lsm",
    );
}

/// The syscall tracepoints run their BPF programs with preemption off,
/// also on kernels that preempt kernel code; the same load shows it.
#[test]
fn preempted_tasks_at_the_tracepoints_report_each_creation_once_with_its_own_path() {
    creations_on_a_preempted_cpu(
        "preempted_tasks_at_the_tracepoints_report_each_creation_once_with_its_own_path",
        "tracepoint",
    );
}
