//! Issue 12: rules reload without a restart, on SIGHUP and on a change to
//! the rules directory (the symlink swap of a mounted ConfigMap included);
//! a broken set leaves the old one in force; no event is lost or evaluated
//! twice across reloads.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use sensor_tests::*;

const WAIT: Duration = Duration::from_secs(30);

fn rule(id: &str, marker: &str) -> String {
    format!(
        "[rule]\nname = \"{id}\"\nrule_id = \"{id}\"\nrisk_score = 21\nseverity = \"low\"\n\
         type = \"eql\"\ndescription = \"reload test\"\n\
         query = '''process where event.action == \"exec\" and process.args == \"{marker}\"'''\n"
    )
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique_marker(tag));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start(dir: &Path) -> Agent {
    Agent::start(&[
        "--rules",
        dir.to_str().unwrap(),
        "--suppress-window",
        "0",
        "--alert-rate-cap",
        "0",
        "--events",
        "exec",
    ])
}

fn alert_of(id: &str, marker: &str) -> impl Fn(&serde_json::Value) -> bool {
    let (id, marker) = (id.to_string(), marker.to_string());
    move |v| {
        v["event"]["kind"] == "alert"
            && v["rule"]["id"] == id.as_str()
            && v["process"]["args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == marker.as_str()))
    }
}

fn run_true(marker: &str) {
    assert!(
        Command::new("/bin/true")
            .arg(marker)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn sighup_loads_a_new_rule_and_a_broken_set_keeps_the_old_one() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let dir = temp_dir("reload-hup");
    let (a, b) = (unique_marker("reload-a"), unique_marker("reload-b"));
    std::fs::write(dir.join("a.toml"), rule("rule-a", &a)).unwrap();
    let agent = start(&dir);
    run_true(&a);
    agent.wait_for("rule a's alert", WAIT, alert_of("rule-a", &a));

    std::fs::write(dir.join("b.toml"), rule("rule-b", &b)).unwrap();
    agent.signal(libc::SIGHUP);
    let line = agent.wait_stderr("rules reloaded", 1, WAIT);
    assert!(line.contains("loaded=2"), "{line}");
    run_true(&b);
    agent.wait_for(
        "rule b's alert after the reload",
        WAIT,
        alert_of("rule-b", &b),
    );

    std::fs::write(
        dir.join("c.toml"),
        "[rule]\nname = \"c\"\nquery = '''process where ((('''\n",
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    let refused = agent.wait_stderr("rule reload refused", 1, WAIT);
    assert!(refused.contains("stay in force"), "{refused}");
    let why = agent.wait_stderr("c.toml:", 1, WAIT);
    assert!(
        why.contains("rule reload"),
        "the error names the file and position: {why}"
    );
    // The loaded set is still in force: rule b fires again.
    let before = agent.count(alert_of("rule-b", &b));
    run_true(&b);
    let deadline = std::time::Instant::now() + WAIT;
    while agent.count(alert_of("rule-b", &b)) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "rule b stopped firing after a refused reload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_configmap_symlink_swap_reloads_the_rules_without_a_signal() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let dir = temp_dir("reload-cm");
    let (one, two) = (unique_marker("cm-one"), unique_marker("cm-two"));
    // The layout the kubelet gives a mounted ConfigMap.
    let v1 = dir.join("..2026_12_02_00_00_00.000000001");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(v1.join("r.toml"), rule("cm-rule", &one)).unwrap();
    std::os::unix::fs::symlink(v1.file_name().unwrap(), dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/r.toml", dir.join("r.toml")).unwrap();
    let agent = start(&dir);
    run_true(&one);
    agent.wait_for("the first version's alert", WAIT, alert_of("cm-rule", &one));

    let v2 = dir.join("..2026_12_02_00_01_00.000000002");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(v2.join("r.toml"), rule("cm-rule", &two)).unwrap();
    std::os::unix::fs::symlink(v2.file_name().unwrap(), dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    let line = agent.wait_stderr("rules reloaded", 1, WAIT);
    assert!(line.contains("changed=1"), "{line}");
    run_true(&two);
    agent.wait_for(
        "the second version's alert",
        WAIT,
        alert_of("cm-rule", &two),
    );
    run_true(&one);
    std::thread::sleep(Duration::from_secs(1));
    let done = agent.stop();
    assert_eq!(
        done.events
            .iter()
            .filter(|v| alert_of("cm-rule", &one)(v))
            .count(),
        1,
        "the first version no longer fires"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_event_is_lost_or_evaluated_twice_across_reloads() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let dir = temp_dir("reload-storm");
    let marker = unique_marker("reload-storm");
    std::fs::write(dir.join("s.toml"), rule("storm", &marker)).unwrap();
    let agent = start(&dir);
    let n: usize = std::env::var("SENSOR_E2E_STORM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let script = format!("i=0; while [ $i -lt {n} ]; do /bin/true {marker} $i; i=$((i+1)); done");
    let mut storm = Command::new("/bin/sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let mut reloads = 0;
    while storm.try_wait().unwrap().is_none() {
        agent.signal(libc::SIGHUP);
        reloads += 1;
        agent.wait_stderr("rules reloaded", reloads, WAIT);
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(storm.wait().unwrap().success());
    assert!(reloads >= 3, "the storm outlasted only {reloads} reloads");
    let ours = exec_with_arg(&marker);
    agent.settle(n, &ours);
    let done = agent.stop();
    let events: Vec<_> = done
        .events
        .iter()
        .filter(|v| v["event"]["kind"] == "event" && ours(v))
        .collect();
    let alerts: Vec<_> = done
        .events
        .iter()
        .filter(|v| alert_of("storm", &marker)(v))
        .collect();
    let drops = done.summary["exec_drops"] as usize;
    eprintln!(
        "{n} execs, {reloads} reloads: {} events, {} alerts, {drops} kernel drops",
        events.len(),
        alerts.len()
    );
    assert_unique_pids(&alerts, "an event was evaluated twice");
    assert_eq!(
        alerts.len(),
        events.len(),
        "each event raised exactly one alert"
    );
    assert_eq!(
        events.len() + drops,
        n,
        "every exec is an event or a counted drop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
