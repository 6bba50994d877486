//! Issue 2: a process that existed before the agent started still gets its
//! parent and session leader filled in (from the /proc seed) when it execs
//! a child.

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sensor_tests::*;

#[test]
fn child_of_a_process_started_before_the_agent_has_parent_and_session_leader_from_proc() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let marker = unique_marker("seed-child");
    // `exit 0` after the echo keeps sh from exec'ing it in place: the echo
    // is a forked child.
    let script = format!("read x; /bin/echo {marker}; exit 0");
    let mut parent_cmd = Command::new("/bin/sh");
    parent_cmd
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    new_session(&mut parent_cmd, None);
    let mut parent = parent_cmd.spawn().unwrap();
    let ppid = parent.id();
    // Wait until the parent runs sh (not our own image).
    let sh = canonical("/bin/sh");
    let deadline = Instant::now() + Duration::from_secs(10);
    let exe = || {
        std::fs::read_link(format!("/proc/{ppid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    };
    while exe().as_deref() != Some(sh.as_str()) {
        assert!(Instant::now() < deadline, "parent never exec'd sh");
        std::thread::sleep(Duration::from_millis(10));
    }

    let agent = Agent::start(&[]);
    parent.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let v = agent.wait_for(
        "the seeded parent's child",
        EVENT_TIMEOUT,
        exec_with_arg(&marker),
    );
    parent.wait().unwrap();

    let p = &v["process"];
    let expected_parent_args = serde_json::json!(["/bin/sh", "-c", script]);
    let parent_obj = &p["parent"];
    assert_eq!(parent_obj["pid"], ppid);
    assert_eq!(parent_obj["args"], expected_parent_args);
    assert_eq!(parent_obj["executable"], sh);
    assert!(
        parent_obj["entity_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(parent_obj["start"].is_string());

    let session = &p["session_leader"];
    assert_eq!(session["pid"], ppid);
    assert_eq!(session["args"], expected_parent_args);
    assert_eq!(session["entity_id"], parent_obj["entity_id"]);
    agent.stop();
}

#[test]
fn entity_id_from_the_proc_seed_matches_the_kernel_exec_event_of_the_same_process() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let child_marker = unique_marker("seed-eid-child");
    let exec_marker = unique_marker("seed-eid-exec");
    // The echo of child_marker is forked; the last one replaces sh itself.
    let script = format!("read x; /bin/echo {child_marker}; exec /bin/echo {exec_marker}");
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut sh = cmd.spawn().unwrap();
    let pid = sh.id();
    let want = canonical("/bin/sh");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
        .as_deref()
        != Some(want.as_str())
    {
        assert!(Instant::now() < deadline, "sh never started");
        std::thread::sleep(Duration::from_millis(10));
    }

    let agent = Agent::start(&[]);
    sh.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let child = agent.wait_for(
        "the forked echo",
        EVENT_TIMEOUT,
        exec_with_arg(&child_marker),
    );
    let replaced = agent.wait_for(
        "sh exec'ing echo",
        EVENT_TIMEOUT,
        exec_with_arg(&exec_marker),
    );
    sh.wait().unwrap();
    assert_eq!(child["process"]["parent"]["pid"], pid);
    assert_eq!(replaced["process"]["pid"], pid);
    // Seed (clock ticks from /proc) and kernel (ns) agree on the identity.
    let seeded_id = &child["process"]["parent"]["entity_id"];
    assert!(seeded_id.is_string());
    assert_eq!(&replaced["process"]["entity_id"], seeded_id);
    agent.stop();
}
