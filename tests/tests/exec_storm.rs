//! Issue 2: under an exec storm every exec is either an event on stdout or
//! a drop the agent counted — nothing unaccounted.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sensor_tests::*;

fn storm_size() -> usize {
    std::env::var("SENSOR_E2E_STORM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000)
}

/// Runs `n` execs of `/bin/true <marker> <pad>` from a shell loop.
fn storm(n: usize, marker: &str, pad: &str) -> Duration {
    let script =
        format!("i=0; while [ $i -lt {n} ]; do /bin/true {marker} {pad}; i=$((i+1)); done");
    let started = Instant::now();
    let status = Command::new("/bin/sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    started.elapsed()
}

/// Asserts every one of the `n` marked execs is an event or a counted
/// drop; returns (seen, drops).
fn assert_accounted(agent: Agent, n: usize, marker: &str, storm_time: Duration) -> (usize, u64) {
    let ours = |v: &serde_json::Value| exec_with_arg(marker)(v);
    agent.settle(n, ours);
    let done = agent.stop();
    let seen: Vec<&serde_json::Value> = done.events.iter().filter(|v| ours(v)).collect();
    assert_unique_pids(&seen, "an exec was reported twice");
    assert!(
        done.summary.contains_key("events") && done.summary.contains_key("drops"),
        "summary lacks events=/drops=: {:?}",
        done.summary
    );
    // Exec-specific counters when the agent reports them; the totals bound
    // them otherwise.
    let drops = done
        .summary
        .get("exec_drops")
        .or(done.summary.get("drops"))
        .copied()
        .unwrap();
    eprintln!(
        "exec storm: {n} execs in {storm_time:?}; events on stdout {}; drops counted {drops}; summary {:?}",
        seen.len(),
        done.summary
    );
    // Events the output queue shed (the test's reader fell behind the
    // drain after a stall) are counted too.
    let shed = done.summary.get("exec_shed").copied().unwrap_or(0);
    assert!(seen.len() <= n);
    assert!(
        seen.len() as u64 + drops + shed >= n as u64,
        "{} execs unaccounted: {} seen, {drops} drops counted, {shed} shed",
        n as u64 - seen.len() as u64 - drops - shed,
        seen.len()
    );
    if let Some(&exec_total) = done.summary.get("exec") {
        let exec_lines = done.events.iter().filter(|v| is_exec(v)).count() as u64;
        assert_eq!(
            exec_lines + shed,
            exec_total,
            "agent decoded {exec_total} execs but wrote {exec_lines} exec lines and shed {shed}"
        );
    }
    (seen.len(), drops)
}

#[test]
fn exec_storm_every_exec_is_an_event_or_a_counted_drop() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let n = storm_size();
    let agent = Agent::start(&[]);
    let marker = unique_marker("storm");
    let took = storm(n, &marker, "");
    assert_accounted(agent, n, &marker, took);
}

#[test]
fn exec_storm_while_the_agent_is_stalled_counts_every_lost_exec_as_a_drop() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let n = storm_size();
    // A 1 MiB ring holds far fewer than n exec records (plus their fork
    // and exit records), so stalling the reader forces kernel drops.
    let agent = Agent::start(&["--ring-buffer-mib", "1"]);
    let marker = unique_marker("stalled-storm");
    let pad = "p".repeat(512);
    agent.signal(libc::SIGSTOP);
    let took = storm(n, &marker, &pad);
    agent.signal(libc::SIGCONT);
    let (seen, drops) = assert_accounted(agent, n, &marker, took);
    assert!(
        drops > 0,
        "a stalled 1 MiB ring dropped nothing ({seen} seen)"
    );
    assert!(seen < n);
}
