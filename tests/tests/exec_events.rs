//! Issue 2: an exec of a program with a unique argument list shows up with
//! the exact args, executable, pid and parent pid.

use std::process::{Command, Stdio};

use sensor_tests::*;

#[test]
fn exec_reports_exact_args_executable_pid_and_ppid() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let marker = unique_marker("exact");
    let args = [marker.as_str(), "two words", "", "tab\there", "--flag=x"];
    let pid = run(Command::new("/bin/echo").args(args).stdout(Stdio::null()));
    let v = agent.wait_for("the marked echo", EVENT_TIMEOUT, exec_with_arg(&marker));
    let p = &v["process"];

    let mut expected = vec!["/bin/echo"];
    expected.extend(args);
    assert_eq!(p["args"], serde_json::json!(expected));
    assert_eq!(p["args_count"], expected.len());
    assert_eq!(p["command_line"], expected.join(" "));
    assert_eq!(p["Ext"]["args_truncated"], false);
    let argv_bytes: usize = expected.iter().map(|a| a.len() + 1).sum();
    assert_eq!(p["Ext"]["args_original_bytes"], argv_bytes);
    let executable = canonical("/bin/echo");
    assert_eq!(p["executable"], executable);
    // The resolved file's name: `busybox` where /bin/echo is an applet link.
    assert_eq!(p["name"], executable.rsplit('/').next().unwrap());
    assert_eq!(p["pid"], pid);
    assert_eq!(p["parent"]["pid"], std::process::id());
    // SAFETY: no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(p["user"]["id"], euid.to_string());
    // Top-level user, as Defend for Containers writes it, named from the
    // host's passwd.
    assert_eq!(v["user"]["id"], euid.to_string());
    assert_eq!(v["user"]["Ext"]["real"]["id"], euid.to_string());
    if euid == 0 {
        assert_eq!(v["user"]["name"], "root", "{v}");
    }
    assert_eq!(v["event"]["kind"], "event");
    assert_eq!(v["event"]["category"], serde_json::json!(["process"]));
    assert_eq!(v["event"]["type"], serde_json::json!(["start"]));
    assert!(
        v.get("container").is_none(),
        "host process with container.*: {v}"
    );
    let ts = v["@timestamp"].as_str().unwrap();
    assert!(
        ts.len() == 30 && ts.ends_with('Z') && ts.as_bytes()[19] == b'.',
        "@timestamp not RFC 3339 with ns: {ts}"
    );
    agent.stop();
}

#[test]
fn working_directory_of_a_running_process_is_reported() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // Alive long enough for the agent to read its cwd.
    let mut child = Command::new("/bin/sleep")
        .arg("3")
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    let v = agent.wait_for("the sleep", EVENT_TIMEOUT, exec_of_pid(child.id()));
    child.wait().unwrap();
    assert_eq!(
        v["process"]["working_directory"],
        std::fs::canonicalize(dir.path())
            .unwrap()
            .to_string_lossy()
            .as_ref()
    );
    agent.stop();
}

#[test]
fn working_directory_of_a_process_that_exits_at_once_comes_from_the_kernel() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let marker = unique_marker("cwd");
    // Gone before user space could read /proc/<pid>/cwd: only the exec
    // record can say where it ran.
    run(Command::new("/bin/true")
        .arg(&marker)
        .current_dir(dir.path()));
    let v = agent.wait_for("the marked true", EVENT_TIMEOUT, exec_with_arg(&marker));
    assert_eq!(
        v["process"]["working_directory"],
        canonical(dir.path().to_str().unwrap()),
        "{v}"
    );
    agent.stop();
}

#[test]
fn working_directory_deeper_than_the_kernel_walk_is_read_from_proc() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let top = tempfile::tempdir().unwrap();
    // Past the walk's 16 steps (the exec record says it was cut).
    let deep = (0..20).fold(top.path().to_path_buf(), |p, i| p.join(format!("d{i}")));
    std::fs::create_dir_all(&deep).unwrap();
    let mut child = Command::new("/bin/sleep")
        .arg("3")
        .current_dir(&deep)
        .spawn()
        .unwrap();
    let v = agent.wait_for("the sleep", EVENT_TIMEOUT, exec_of_pid(child.id()));
    child.wait().unwrap();
    assert_eq!(
        v["process"]["working_directory"],
        canonical(deep.to_str().unwrap()),
        "{v}"
    );
    agent.stop();
}

#[test]
fn tp_btf_hooks_report_the_same_exec_fields() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&["--tp-btf"]);
    let marker = unique_marker("tp-btf");
    let dir = tempfile::tempdir().unwrap();
    let pid = run(Command::new("/bin/echo")
        .args([marker.as_str(), "x y"])
        .current_dir(dir.path())
        .stdout(Stdio::null()));
    let v = agent.wait_for("the marked echo", EVENT_TIMEOUT, exec_with_arg(&marker));
    let p = &v["process"];
    assert_eq!(p["args"], serde_json::json!(["/bin/echo", marker, "x y"]));
    assert_eq!(p["executable"], canonical("/bin/echo"));
    assert_eq!(p["pid"], pid);
    assert_eq!(p["parent"]["pid"], std::process::id());
    assert_eq!(p["Ext"]["args_truncated"], false);
    assert_eq!(
        p["working_directory"],
        canonical(dir.path().to_str().unwrap())
    );
    let done = agent.stop();
    for hook in [
        "sched_process_exec",
        "sched_process_fork",
        "sched_process_exit",
    ] {
        assert!(
            done.stderr
                .iter()
                .any(|l| l.contains("attached") && l.contains(hook) && l.contains("TpBtf")),
            "{hook} not attached as tp_btf:\n{}",
            done.stderr.join("\n")
        );
    }
}

#[test]
fn allow_listed_environment_variables_are_read_in_the_kernel_at_exec() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let marker = unique_marker("env");
    let histfile = format!("/dev/null-{marker}");
    run(Command::new("/bin/true")
        .arg(&marker)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HISTFILE", &histfile)
        .env("LD_LIBRARY_PATH", "/tmp/lib")
        .env("SECRET_TOKEN", "not-for-the-log"));
    let v = agent.wait_for("the marked exec", EVENT_TIMEOUT, exec_with_arg(&marker));
    let mut vars: Vec<&str> = v["process"]["env_vars"]
        .as_array()
        .unwrap_or_else(|| panic!("no process.env_vars: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    vars.sort_unstable();
    let expected = format!("HISTFILE={histfile}");
    assert_eq!(
        vars,
        [expected.as_str(), "LD_LIBRARY_PATH=/tmp/lib"],
        "only allow-listed ones"
    );
    assert!(v["process"]["Ext"].get("env_vars_truncated").is_none());
    agent.stop();
}

#[test]
fn kernel_side_log_is_off_by_default_and_on_with_sensor_ebpf_trace() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let quiet = Agent::start(&[]);
    let done = quiet.stop();
    assert!(
        !done
            .stderr
            .iter()
            .any(|l| l.contains("kernel-side logging on")),
        "kernel logging must be off by default"
    );

    let agent = Agent::start(&["--log-level", "info,sensor_ebpf=trace"]);
    let marker = unique_marker("klog");
    run(Command::new("/bin/true")
        .arg(&marker)
        .env("SENSOR_TEST_PADDING", "x".repeat(6000)));
    let line = agent.wait_stderr("environment block of", 1, EVENT_TIMEOUT);
    assert!(line.contains("sensor_ebpf"), "{line}");
    assert!(line.contains("cut at 4096"), "{line}");
    agent.stop();
}

/// Runs the ELF in `fd` (`fexecve`) in a child with `argv`; waits for it.
/// False (with a loud SKIPPED line) when this kernel refuses the exec
/// itself with ENOENT, as the 5.10 guest does; any other failure fails.
fn fexecve_child(fd: i32, argv: &[&str]) -> bool {
    let args: Vec<std::ffi::CString> = argv
        .iter()
        .map(|a| std::ffi::CString::new(*a).unwrap())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let env: [*const libc::c_char; 1] = [std::ptr::null()];
    // SAFETY: the child only calls fexecve and _exit (async-signal-safe);
    // every pointer was built before the fork.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            libc::fexecve(fd, ptrs.as_ptr(), env.as_ptr());
            // The exit status carries why it failed.
            libc::_exit(*libc::__errno_location() & 0xff);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        let errno = libc::WEXITSTATUS(status);
        assert!(
            status == 0 || errno == libc::ENOENT,
            "the child's fexecve failed: {}",
            std::io::Error::from_raw_os_error(errno)
        );
        if status != 0 {
            eprintln!(
                "SKIPPED: fexecve fails on this kernel ({}, wait status {status}) — \
                 this end-to-end test did NOT run",
                std::io::Error::from_raw_os_error(errno)
            );
            return false;
        }
        true
    }
}

/// `/bin/true`'s bytes (a busybox applet on the test kernels' guests,
/// which runs as `true` from its argv[0]).
fn true_image() -> Vec<u8> {
    std::fs::read(std::fs::canonicalize("/bin/true").unwrap()).unwrap()
}

#[test]
fn a_program_run_from_a_memfd_says_so() {
    if !require_root_and_bpf() {
        return;
    }
    let _g = serial();
    let agent = Agent::start(&["--events", "exec"]);
    let marker = unique_marker("memfd");
    // SAFETY: a memfd this test creates, writes and closes.
    let fd = unsafe { libc::memfd_create(c"sensor-test".as_ptr(), 0) };
    assert!(fd >= 0);
    let image = true_image();
    // SAFETY: writing our own buffer to our own fd.
    let n = unsafe { libc::write(fd, image.as_ptr().cast(), image.len()) };
    assert_eq!(n as usize, image.len());
    let ran = fexecve_child(fd, &["true", &marker]);
    // SAFETY: closing our own fd.
    unsafe { libc::close(fd) };
    if !ran {
        agent.stop();
        return;
    }
    let v = agent.wait_for("memfd exec", EVENT_TIMEOUT, exec_with_arg(&marker));
    assert_eq!(v["process"]["Ext"]["executable"]["memfd"], true, "{v}");
    assert_eq!(v["process"]["executable"], "/memfd:sensor-test", "{v}");
    agent.stop();
}

#[test]
fn a_program_run_from_a_deleted_file_says_so() {
    if !require_root_and_bpf() {
        return;
    }
    let _g = serial();
    let agent = Agent::start(&["--events", "exec"]);
    let marker = unique_marker("deleted");
    let path = format!("/tmp/{marker}");
    std::fs::write(&path, true_image()).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    if !fexecve_child(std::os::fd::AsRawFd::as_raw_fd(&file), &["true", &marker]) {
        agent.stop();
        return;
    }
    let v = agent.wait_for("deleted exec", EVENT_TIMEOUT, exec_with_arg(&marker));
    assert_eq!(v["process"]["Ext"]["executable"]["deleted"], true, "{v}");
    assert!(v["process"]["Ext"]["executable"]["memfd"].is_null(), "{v}");
    agent.stop();
}

#[test]
fn a_program_on_the_hosts_own_file_system_has_no_drift_fields() {
    if !require_root_and_bpf() {
        return;
    }
    let _g = serial();
    let agent = Agent::start(&["--events", "exec"]);
    let marker = unique_marker("plain");
    std::process::Command::new("/bin/true")
        .arg(&marker)
        .status()
        .unwrap();
    let v = agent.wait_for("plain exec", EVENT_TIMEOUT, exec_with_arg(&marker));
    assert!(v["process"]["Ext"]["executable"].is_null(), "{v}");
    agent.stop();
}
