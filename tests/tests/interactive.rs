//! Issue 2: `process.interactive` is true only when stdin and stderr are
//! the controlling terminal, and the tty's device numbers are reported.

use std::process::{Command, Stdio};

use sensor_tests::*;

/// Runs `/bin/echo <marker>` in a new session, returns the exec event.
fn exec_in_session(
    agent: &Agent,
    cmd: &mut Command,
    ctty: Option<i32>,
    marker: &str,
) -> serde_json::Value {
    new_session(cmd, ctty);
    run(cmd.arg(marker));
    agent.wait_for(marker, EVENT_TIMEOUT, exec_with_arg(marker))
}

#[test]
fn exec_under_a_pty_is_interactive_with_the_pty_device() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let pty = Pty::open();
    let marker = unique_marker("pty");
    let mut cmd = Command::new("/bin/echo");
    cmd.stdin(pty.slave_stdio())
        .stdout(pty.slave_stdio())
        .stderr(pty.slave_stdio());
    let v = exec_in_session(&agent, &mut cmd, Some(0), &marker);
    let p = &v["process"];
    assert_eq!(p["interactive"], true, "{p}");
    assert_eq!(p["tty"]["char_device"]["major"], pty.major);
    assert_eq!(p["tty"]["char_device"]["minor"], pty.minor);
    assert_eq!(p["tty"]["name"], pty.kernel_name());
    drop(pty.master);
    agent.stop();
}

#[test]
fn exec_without_a_pty_is_not_interactive() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let marker = unique_marker("nopty");
    let mut cmd = Command::new("/bin/echo");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // New session without a controlling tty, whatever the test runner has.
    let v = exec_in_session(&agent, &mut cmd, None, &marker);
    assert_eq!(v["process"]["interactive"], false);
    assert!(v["process"].get("tty").is_none(), "tty without a ctty: {v}");
    agent.stop();
}

#[test]
fn exec_under_a_pty_with_stdin_from_dev_null_is_not_interactive() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let pty = Pty::open();
    let marker = unique_marker("pty-null-stdin");
    let mut cmd = Command::new("/bin/echo");
    cmd.stdin(Stdio::null())
        .stdout(pty.slave_stdio())
        .stderr(pty.slave_stdio());
    // stderr alone on the controlling tty is not enough.
    let v = exec_in_session(&agent, &mut cmd, Some(2), &marker);
    let p = &v["process"];
    assert_eq!(p["interactive"], false, "{p}");
    assert_eq!(p["tty"]["char_device"]["major"], pty.major);
    assert_eq!(p["tty"]["char_device"]["minor"], pty.minor);
    drop(pty.master);
    agent.stop();
}

#[test]
fn exec_under_a_pty_with_stderr_elsewhere_is_not_interactive() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let agent = Agent::start(&[]);
    let pty = Pty::open();
    let marker = unique_marker("pty-null-stderr");
    let mut cmd = Command::new("/bin/echo");
    cmd.stdin(pty.slave_stdio())
        .stdout(pty.slave_stdio())
        .stderr(Stdio::null());
    let v = exec_in_session(&agent, &mut cmd, Some(0), &marker);
    assert_eq!(v["process"]["interactive"], false);
    assert_eq!(v["process"]["tty"]["char_device"]["minor"], pty.minor);
    drop(pty.master);
    agent.stop();
}
