//! Issue 12: a stalled reader of stdout costs events, never alerts. The
//! reader (`cat`) is SIGSTOPped for 10 s while an exec storm with 20
//! alert-raising execs runs; afterwards every alert is in its output, and
//! each exec and end record is either a written line or a counted shed.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use sensor_tests::*;

const ALERTS: usize = 20;
const STALL: Duration = Duration::from_secs(10);

fn storm_size() -> usize {
    std::env::var("SENSOR_E2E_STORM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

fn rule(marker: &str) -> String {
    format!(
        "[rule]\nname = \"shed test {marker}\"\nrule_id = \"shed-{marker}\"\nrisk_score = 73\n\
         severity = \"high\"\ntype = \"eql\"\ndescription = \"test\"\n\
         query = '''process where event.action == \"exec\" and process.args == \"{marker}\"'''\n"
    )
}

#[test]
fn a_stopped_stdout_reader_costs_events_never_alerts() {
    if !require_root_and_bpf() {
        return;
    }
    let _serial = serial();
    let marker = unique_marker("shed-alert");
    let dir = std::env::temp_dir().join(unique_marker("shed-rules"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("shed.toml"), rule(&marker)).unwrap();
    let out_path = dir.join("out.ndjson");

    let mut reader = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .unwrap();
    let mut agent = Command::new(agent_bin())
        .arg("run")
        .arg("--rules")
        .arg(&dir)
        .args(["--suppress-window", "0", "--output-queue-mib", "1"])
        .stdin(Stdio::null())
        .stdout(reader.stdin.take().unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = agent.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("sensor ready") {
                let _ = tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("agent never reported it was ready");

    // SAFETY: plain kill(2) on children we own.
    unsafe { libc::kill(reader.id() as i32, libc::SIGSTOP) };
    let stopped = Instant::now();
    let n = storm_size();
    let every = n / ALERTS;
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do \
           if [ $((i % {every})) -eq 0 ]; then /bin/true {marker} $i; else /bin/true shed-storm; fi; \
           i=$((i+1)); done"
    );
    assert!(
        Command::new("/bin/sh")
            .args(["-c", &script])
            .status()
            .unwrap()
            .success()
    );
    let stormed = stopped.elapsed();
    std::thread::sleep(STALL.saturating_sub(stormed));
    // SAFETY: as above.
    unsafe { libc::kill(reader.id() as i32, libc::SIGCONT) };
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: as above.
    unsafe { libc::kill(agent.id() as i32, libc::SIGINT) };
    assert!(wait_within(&mut agent, EXIT_TIMEOUT, "the agent, after SIGINT").success());
    assert!(wait_within(&mut reader, EXIT_TIMEOUT, "the resumed reader").success());
    let stderr = err_thread.join().unwrap();
    let summary_line = stderr
        .iter()
        .rev()
        .find(|l| l.contains("sensor stopped"))
        .expect("no summary line");
    let summary = parse_summary(summary_line);

    let text = std::fs::read(&out_path).unwrap();
    let mut docs = Vec::new();
    for raw in text.split_inclusive(|&b| b == b'\n') {
        docs.push(check_line(raw).unwrap_or_else(|e| panic!("bad output line: {e}")));
    }
    let action = |a: &str| {
        docs.iter()
            .filter(|v| v["event"]["kind"] == "event" && v["event"]["action"] == a)
            .count() as u64
    };
    let alerts: Vec<_> = docs
        .iter()
        .filter(|v| v["event"]["kind"] == "alert" && v["rule"]["id"] == format!("shed-{marker}"))
        .collect();

    eprintln!(
        "storm of {n} execs took {stormed:?} with the reader stopped; summary: {summary_line}"
    );
    assert!(
        summary["exec_shed"] > 0,
        "the stall shed no events, so it tested nothing: {summary_line}"
    );
    assert_eq!(alerts.len(), ALERTS, "every alert survives the stall");
    assert_eq!(summary["alerts_shed"], 0);
    assert_eq!(
        docs.len() as u64,
        summary["lines"],
        "every accepted line was written"
    );
    assert_eq!(
        action("exec") + summary["exec_shed"],
        summary["exec"],
        "each exec record is a written event or a counted shed"
    );
    assert_eq!(
        action("end") + summary["end_shed"],
        summary["exit"],
        "each exit record is a written event or a counted shed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
