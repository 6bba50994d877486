//! `cargo xtask bench`: side-by-side measurements on this machine, written to
//! target/bench/results.md.
//!
//! - exec storm (N × `/bin/true`, N × a short shell pipeline) with no sensor,
//!   with a bpftrace one-liner on `sched_process_exec`, and with the agent
//!   and the full shipped rule set writing to a file: wall time, ratios,
//!   events seen, drops;
//! - exec→alert latency over many matching execs;
//! - agent RSS after many short-lived processes, CPU seconds per 10 000 execs;
//! - the rule engine's criterion bench (`cargo bench -p sensor-rules`).
//!
//! The workload is driven from Rust (fork+exec via std::process::Command)
//! rather than a shell loop, so the baseline does not include a shell's own
//! per-iteration work.

use std::{
    fmt::Write as _,
    fs::File,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

mod file;

use crate::{
    build,
    setup::{self, Profile},
    util::{self, fmt_dur},
};

#[derive(Args)]
pub struct BenchArgs {
    /// Iterations of each exec-storm workload.
    #[arg(long, default_value_t = 20_000)]
    pub execs: u32,
    /// Short-lived processes before the agent's RSS is read.
    #[arg(long, default_value_t = 100_000)]
    pub rss_execs: u32,
    /// Matching execs for the exec→alert latency.
    #[arg(long, default_value_t = 10_000)]
    pub latency_execs: u32,
    /// Repetitions of each storm; the median wall time is reported.
    #[arg(long, default_value_t = 1)]
    pub reps: u32,
    /// Skip `cargo bench -p sensor-rules`.
    #[arg(long)]
    pub skip_criterion: bool,
    /// Which part to run.
    #[arg(long, value_enum, default_value = "all")]
    pub only: Part,
    /// open+close of an unwatched file, per sensor.
    #[arg(long, default_value_t = 1_000_000)]
    pub opens: u32,
    /// Files in the tar extracted inside a container.
    #[arg(long, default_value_t = 20_000)]
    pub tar_files: u32,
    /// Watched writes asked for, per second.
    #[arg(long, default_value_t = 50_000)]
    pub write_rate: u32,
    /// For how long the watched writes run.
    #[arg(long, default_value_t = 5)]
    pub write_secs: u32,
}

/// The parts of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Part {
    All,
    /// Exec storms, latency, CPU, memory, sequences, audit, criterion.
    Exec,
    /// Opens, a tar in a container, watched writes.
    File,
}

#[derive(Args)]
pub struct StormArgs {
    /// How many iterations.
    #[arg(long, default_value_t = 20_000)]
    pub count: u32,
    #[arg(long, value_enum, default_value = "true")]
    pub workload: Workload,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// fork+exec of /bin/true.
    True,
    /// `/bin/sh -c 'echo x | /bin/cat >/dev/null'`: two execs (sh, cat) and
    /// an extra fork per iteration.
    Pipeline,
    /// `/bin/true xtask-latency-probe`, matched by the bench rule.
    Probe,
    /// `/bin/sh -c '/bin/true xtask-seq-a; /bin/true xtask-seq-b'`: the two
    /// stages of the bench sequence rule, from one parent.
    SeqProbe,
}

impl Workload {
    fn command(self) -> Command {
        match self {
            Workload::True => Command::new("/bin/true"),
            Workload::Pipeline => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", "echo x | /bin/cat >/dev/null"]);
                c
            }
            Workload::Probe => {
                let mut c = Command::new("/bin/true");
                c.arg(PROBE_ARG);
                c
            }
            Workload::SeqProbe => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", "/bin/true xtask-seq-a; /bin/true xtask-seq-b"]);
                c
            }
        }
    }

    fn label(self) -> &'static str {
        match self {
            Workload::True => "/bin/true",
            Workload::Pipeline => "sh -c 'echo x \\| cat'",
            Workload::Probe => "/bin/true (probe)",
            Workload::SeqProbe => "sh -c 'true a; true b' (sequence probe)",
        }
    }
}

const PROBE_ARG: &str = "xtask-latency-probe";
/// bpftrace doing the same hook as the agent's exec program.
const BPFTRACE_EXECS: &str = "tracepoint:sched:sched_process_exec { @n = count(); }";
/// The CPU baseline: the same hook, every exec handed to user space and
/// written as one short line (pid, ppid, comm, filename).
const BPFTRACE_PRINT_EXECS: &str = "tracepoint:sched:sched_process_exec { \
    printf(\"%d %d %s %s\\n\", pid, curtask->real_parent->tgid, comm, str(args->filename)); }";
/// Argument of the execs that check the agent is capturing.
const READY_MARKER: &str = "xtask-bench-ready";

/// Runs `count` fork+execs back to back and returns the wall time.
pub fn storm(workload: Workload, count: u32) -> Result<Duration> {
    let start = Instant::now();
    for _ in 0..count {
        let status = workload
            .command()
            .stdin(Stdio::null())
            .status()
            .context("exec storm: spawn failed")?;
        if !status.success() {
            bail!("exec storm: {} exited with {status}", workload.label());
        }
    }
    Ok(start.elapsed())
}

pub fn exec_storm_cmd(args: &StormArgs) -> Result<()> {
    let d = storm(args.workload, args.count)?;
    println!(
        "elapsed_secs={:.3} count={} per_exec_us={:.1}",
        d.as_secs_f64(),
        args.count,
        d.as_secs_f64() * 1e6 / args.count as f64
    );
    Ok(())
}

fn bench_dir() -> PathBuf {
    util::target_dir().join("bench")
}

/// A sensor running in the background for one measurement.
struct Running {
    child: Child,
    stderr_log: PathBuf,
    name: &'static str,
}

impl Running {
    /// SIGINT (both tools print their summary on it), then wait.
    fn stop(mut self) -> Result<String> {
        // SAFETY: kill(2) on the pid of a child we own.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("{} did not stop within 60 s of SIGINT", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(std::fs::read_to_string(&self.stderr_log).unwrap_or_default())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// bpftrace resolves tracepoints through tracefs, which minimal hosts (and
/// containers) may not have mounted.
fn ensure_tracefs() -> Result<()> {
    let dir = Path::new("/sys/kernel/tracing");
    if dir.join("events").is_dir() {
        return Ok(());
    }
    println!(
        "bench: mounting tracefs at {} (bpftrace needs it)",
        dir.display()
    );
    util::run(
        Command::new("mount")
            .args(["-t", "tracefs", "tracefs"])
            .arg(dir),
    )
}

/// Starts `bpftrace -e program`, its stdout to the returned file.
fn start_bpftrace(program: &str) -> Result<(Running, PathBuf)> {
    ensure_tracefs()?;
    let out = bench_dir().join("bpftrace.out");
    let err = bench_dir().join("bpftrace.err");
    let child = Command::new("bpftrace")
        .args(["-e", program])
        .stdout(File::create(&out)?)
        .stderr(File::create(&err)?)
        .spawn()
        .context("cannot start bpftrace (cargo xtask setup installs it)")?;
    let mut running = Running {
        child,
        stderr_log: err.clone(),
        name: "bpftrace",
    };
    // bpftrace prints "Attaching 1 probe..." before it attaches; give the
    // attach a moment after that line.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&out).is_ok_and(|s| s.contains("Attaching")) {
        if let Some(status) = running.child.try_wait()? {
            bail!(
                "bpftrace exited ({status}): {}",
                std::fs::read_to_string(&err).unwrap_or_default().trim()
            );
        }
        if Instant::now() > deadline {
            let _ = running.stop();
            bail!("bpftrace did not attach within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(1));
    Ok((running, out))
}

/// Where the agent's NDJSON goes during a measurement.
enum AgentOut<'a> {
    /// Straight to a file (the "emitting to a file" configuration).
    File(&'a Path),
    /// Through a pipe that xtask drains and drops, for long runs whose
    /// output would fill the disk.
    Discard,
}

/// Starts the agent with `rules` and waits until it has demonstrably
/// captured an exec (program loaded and attached, rules compiled).
fn start_agent(agent: &Path, rules: &Path, out: AgentOut) -> Result<Running> {
    start_agent_with(agent, rules, out, &[])
}

/// [`start_agent`] with extra `sensor-agent run` arguments.
fn start_agent_with(agent: &Path, rules: &Path, out: AgentOut, extra: &[&str]) -> Result<Running> {
    let err = bench_dir().join("agent.err");
    let marker = READY_MARKER;
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut cmd = Command::new(agent);
    cmd.arg("run")
        .arg("--rules")
        .arg(rules)
        .args(extra)
        .stderr(File::create(&err)?);
    match out {
        AgentOut::File(p) => cmd.stdout(File::create(p)?),
        AgentOut::Discard => cmd.stdout(Stdio::piped()),
    };
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", agent.display()))?;
    if let Some(stdout) = child.stdout.take() {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains(marker) {
                    seen.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    let mut running = Running {
        child,
        stderr_log: err.clone(),
        name: "sensor-agent",
    };
    let ready = || match out {
        AgentOut::File(p) => std::fs::read_to_string(p).is_ok_and(|s| s.contains(marker)),
        AgentOut::Discard => seen.load(std::sync::atomic::Ordering::Relaxed),
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        Command::new("/bin/true").arg(marker).status()?;
        std::thread::sleep(Duration::from_millis(200));
        if ready() {
            return Ok(running);
        }
        if let Some(status) = running.child.try_wait()? {
            bail!(
                "sensor-agent exited ({status}) before capturing anything:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            let _ = running.stop();
            bail!("sensor-agent captured no exec within 120 s");
        }
    }
}

/// `key=value` pairs from the agent's final stderr summary
/// (`sensor stopped: events=<n> ... drops=<n> ...`).
fn summary_field(stderr: &str, key: &str) -> Option<u64> {
    let line = stderr.lines().rev().find(|l| l.contains("events="))?;
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
}

/// Exec events in the agent's output that the storm started: children of
/// this process, plus (for the pipeline) the children of those shells.
fn count_workload_execs(out: &Path) -> Result<u64> {
    let me = std::process::id() as u64;
    let mut shells = std::collections::HashSet::new();
    let mut n = 0;
    for line in BufReader::new(File::open(out)?).lines() {
        let line = line?;
        // The readiness probes are children of this process too.
        if !line.contains("\"exec\"") || line.contains(READY_MARKER) {
            continue;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v["event"]["action"] != "exec" || v["event"]["kind"] == "alert" {
            continue;
        }
        // ECS `process.parent.pid`; the raw capture format says `ppid`.
        let p = &v["process"];
        let ppid = p["parent"]["pid"]
            .as_u64()
            .or(p["ppid"].as_u64())
            .unwrap_or(0);
        let pid = v["process"]["pid"].as_u64().unwrap_or(0);
        if ppid == me {
            n += 1;
            shells.insert(pid);
        } else if shells.contains(&ppid) {
            n += 1;
        }
    }
    Ok(n)
}

/// How much longer `a` took than `b`, in percent.
fn pct(a: Duration, b: Duration) -> f64 {
    (a.as_secs_f64() / b.as_secs_f64() - 1.0) * 100.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct StormRow {
    workload: Workload,
    none: Duration,
    bpftrace: Duration,
    agent: Duration,
    bpftrace_seen: Option<u64>,
    agent_seen: u64,
    expected: u64,
    agent_events: Option<u64>,
    drops: Option<u64>,
}

fn storm_row(workload: Workload, args: &BenchArgs, agent: &Path, rules: &Path) -> Result<StormRow> {
    let n = args.execs;
    let reps = args.reps.max(1);
    let mut none = Vec::new();
    let mut bpf = Vec::new();
    let mut ag = Vec::new();
    let mut bpftrace_seen = None;
    let mut agent_seen = 0;
    let mut agent_events = None;
    let mut drops = None;
    // Warm the page cache and the allocator so the first measured
    // configuration is not penalised for going first.
    storm(workload, n.min(1000))?;
    for rep in 0..reps {
        println!(
            "bench: {} × {n} (rep {}/{reps}): no sensor",
            workload.label(),
            rep + 1
        );
        none.push(storm(workload, n)?);

        println!("bench: {} × {n}: bpftrace", workload.label());
        let (bt, bt_out) = start_bpftrace(BPFTRACE_EXECS)?;
        bpf.push(storm(workload, n)?);
        bt.stop()?;
        // "@n: 20012" is printed on exit (the count includes other execs).
        bpftrace_seen = std::fs::read_to_string(&bt_out)?
            .lines()
            .find_map(|l| l.strip_prefix("@n: ").and_then(|v| v.trim().parse().ok()));

        println!("bench: {} × {n}: sensor-agent", workload.label());
        let out = bench_dir().join("agent-storm.ndjson");
        let running = start_agent(agent, rules, AgentOut::File(&out))?;
        ag.push(storm(workload, n)?);
        let stderr = running.stop()?;
        agent_events = summary_field(&stderr, "events");
        drops = summary_field(&stderr, "drops");
        agent_seen = count_workload_execs(&out)?;
        // The full event stream is large; only the counts are kept.
        let _ = std::fs::remove_file(&out);
    }
    let per_iter = if workload == Workload::Pipeline { 2 } else { 1 };
    Ok(StormRow {
        workload,
        none: median(none),
        bpftrace: median(bpf),
        agent: median(ag),
        bpftrace_seen,
        agent_seen,
        expected: n as u64 * per_iter,
        agent_events,
        drops,
    })
}

/// Parses RFC 3339 UTC (`2026-11-22T20:41:11.123456789Z`) to Unix ns.
fn parse_rfc3339_ns(s: &str) -> Option<i128> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let frac_ns: i64 = format!("{frac:0<9}")[..9].parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs as i128 * 1_000_000_000 + frac_ns as i128)
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

struct Latency {
    alerts: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    source: &'static str,
}

const PROBE_RULE_ID: &str = "6d1f5b0e-0000-4000-8000-00000000beef";
const SEQ_PROBE_RULE_ID: &str = "6d1f5b0e-0000-4000-8000-00000000cafe";

/// A bench rule file around `query`.
fn bench_rule(name: &str, rule_id: &str, query: &str) -> String {
    format!(
        "[metadata]\ncreation_date = \"2026/11/22\"\nmaturity = \"development\"\n\
         updated_date = \"2026/12/01\"\n\n[rule]\nauthor = [\"xtask bench\"]\n\
         description = \"Benchmark probe of `cargo xtask bench`.\"\nname = \"{name}\"\n\
         risk_score = 21\nrule_id = \"{rule_id}\"\nseverity = \"low\"\ntype = \"eql\"\n\
         language = \"eql\"\nlicense = \"Apache-2.0\"\nquery = \'\'\'\n{query}\n\'\'\'\n"
    )
}

/// The bench rules: one cheap query that matches the probe exec, evaluated
/// alongside every shipped rule (the shipped ones need container context,
/// which host execs do not have), and a two-stage sequence whose last
/// stage's exec is timed to the sequence alert.
fn probe_rules() -> [(&'static str, String); 2] {
    [
        (
            "xtask_bench_probe.toml",
            bench_rule(
                "xtask bench latency probe",
                PROBE_RULE_ID,
                r#"process where event.type == "start" and process.name == "true" and process.args == "xtask-latency-probe""#,
            ),
        ),
        (
            "xtask_bench_seq_probe.toml",
            bench_rule(
                "xtask bench sequence probe",
                SEQ_PROBE_RULE_ID,
                r#"sequence by process.parent.entity_id with maxspan=5s
  [process where event.type == "start" and process.name == "true" and process.args == "xtask-seq-a"]
  [process where event.type == "start" and process.name == "true" and process.args == "xtask-seq-b"]"#,
            ),
        ),
    ]
}

/// Which alert lines a latency run measures, from the @timestamp they carry
/// (for a sequence: the building block of its last stage).
fn measured_alert(v: &serde_json::Value, workload: Workload) -> bool {
    if v["event"]["kind"] != "alert" {
        return false;
    }
    match workload {
        Workload::SeqProbe => {
            v["rule"]["id"] == SEQ_PROBE_RULE_ID && v["kibana"]["alert"]["group"]["index"] == 1
        }
        _ => v["rule"]["id"] == PROBE_RULE_ID,
    }
}

/// How the probe execs of a latency run are spaced.
#[derive(Clone, Copy)]
enum Pace {
    /// Back to back: the agent polls the ring.
    Storm,
    /// One exec, then this pause: the agent falls asleep between execs and
    /// the kernel has to wake it.
    Spaced(Duration),
}

fn latency(
    agent: &Path,
    rules: &Path,
    count: u32,
    pace: Pace,
    workload: Workload,
) -> Result<Latency> {
    let out = bench_dir().join("agent-latency.ndjson");
    let err = bench_dir().join("agent-latency.err");
    let mut child = Command::new(agent)
        .arg("run")
        .arg("--rules")
        .arg(rules)
        .arg("--alerts-only")
        // Every probe alert is measured: none may be folded or capped.
        .args(["--suppress-window", "0", "--alert-rate-cap", "0"])
        .stdout(Stdio::piped())
        .stderr(File::create(&err)?)
        .spawn()?;
    // Each alert line is stamped with the moment it is read from the pipe:
    // the fallback "written" time when the alert carries no event.ingested.
    let stdout = child.stdout.take().expect("piped");
    let lines: Arc<Mutex<Vec<(i128, String)>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let out_path = out.clone();
    let reader = std::thread::spawn(move || -> Result<()> {
        let mut f = File::create(out_path)?;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            let t = now_ns();
            writeln!(f, "{line}")?;
            sink.lock().expect("lock").push((t, line));
        }
        Ok(())
    });
    let running = Running {
        child,
        stderr_log: err,
        name: "sensor-agent",
    };
    // Warm up until the first probe alert arrives (program loaded, rules
    // compiled), then measure.
    let deadline = Instant::now() + Duration::from_secs(120);
    let is_alert = |l: &str| {
        serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| measured_alert(&v, workload))
    };
    while !lines.lock().expect("lock").iter().any(|(_, l)| is_alert(l)) {
        if Instant::now() > deadline {
            let stderr = running.stop()?;
            bail!(
                "no alert for the probe rule within 120 s (does the agent evaluate --rules \
                 yet?); agent stderr ends:\n{}",
                stderr.lines().rev().take(5).collect::<Vec<_>>().join("\n")
            );
        }
        workload.command().status()?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let warm = lines.lock().expect("lock").len();
    match pace {
        Pace::Storm => {
            storm(workload, count)?;
        }
        Pace::Spaced(gap) => {
            for _ in 0..count {
                storm(workload, 1)?;
                std::thread::sleep(gap);
            }
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    running.stop()?;
    reader.join().expect("reader thread")?;

    let mut source = "event.ingested − @timestamp";
    let mut ms = Vec::new();
    for (read_at, line) in lines.lock().expect("lock").iter().skip(warm) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if !measured_alert(&v, workload) {
            continue;
        }
        let Some(exec) = v["@timestamp"].as_str().and_then(parse_rfc3339_ns) else {
            continue;
        };
        let written = match v["event"]["ingested"].as_str().and_then(parse_rfc3339_ns) {
            Some(t) => t,
            None => {
                source = "time read by bench − @timestamp";
                *read_at
            }
        };
        ms.push((written - exec) as f64 / 1e6);
    }
    if ms.is_empty() {
        bail!("the latency run produced no alerts after warm-up");
    }
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    Ok(Latency {
        alerts: ms.len(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: *ms.last().expect("non-empty"),
        source,
    })
}

struct Resources {
    execs: u32,
    vm_hwm_kib: u64,
    vm_rss_kib: u64,
    /// Of the RSS: the BPF maps mapped into the agent (the ring buffer,
    /// whose data pages the kernel maps twice).
    bpf_map_kib: u64,
    cpu_secs: f64,
}

/// Resident KiB of the agent's BPF-map mappings (`anon_inode:bpf-map`).
fn bpf_map_rss_kib(pid: u32) -> u64 {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return 0;
    };
    let mut in_map = false;
    let mut kib = 0;
    for line in smaps.lines() {
        if line
            .split_whitespace()
            .next()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            in_map = line.ends_with("anon_inode:bpf-map");
        } else if in_map && let Some(v) = line.strip_prefix("Rss:") {
            kib += v
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .unwrap_or(0);
        }
    }
    kib
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// utime + stime of a process in seconds.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised comm (which may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 here.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

fn resources(agent: &Path, rules: &Path, execs: u32) -> Result<Resources> {
    // The output is drained and dropped: 100 000 processes would otherwise
    // leave a file of several hundred MB.
    let running = start_agent(agent, rules, AgentOut::Discard)?;
    let pid = running.pid();
    let cpu0 = cpu_secs(pid).unwrap_or(0.0);
    storm(Workload::True, execs)?;
    std::thread::sleep(Duration::from_secs(1));
    let cpu1 = cpu_secs(pid).unwrap_or(0.0);
    let hwm = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
    let rss = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    let bpf_map_kib = bpf_map_rss_kib(pid);
    running.stop()?;
    Ok(Resources {
        execs,
        vm_hwm_kib: hwm,
        vm_rss_kib: rss,
        bpf_map_kib,
        cpu_secs: (cpu1 - cpu0) * 10_000.0 / execs as f64,
    })
}

/// CPU and bytes written per exec, in one configuration.
struct CpuRow {
    label: String,
    execs: u32,
    rate: f64,
    cpu_us: f64,
    bytes: f64,
}

impl CpuRow {
    /// The table line, with the CPU as a multiple of `base`'s.
    fn markdown(&self, base: Option<&CpuRow>) -> String {
        let ratio = base
            .filter(|b| b.cpu_us > 0.0)
            .map_or("baseline".into(), |b| {
                format!("{:.2}×", self.cpu_us / b.cpu_us)
            });
        format!(
            "| {} | {} | {:.0} | {:.1} µs | {ratio} | {:.0} |",
            self.label, self.execs, self.rate, self.cpu_us, self.bytes
        )
    }
}

/// `execs` fork+exec of `/bin/true`, back to back or one every `interval`.
fn paced_storm(execs: u32, interval: Option<Duration>) -> Result<Duration> {
    let start = Instant::now();
    for i in 0..execs {
        if let Some(iv) = interval {
            let due = start + iv * i;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let status = Command::new("/bin/true").stdin(Stdio::null()).status()?;
        if !status.success() {
            bail!("exec storm: /bin/true exited with {status}");
        }
    }
    Ok(start.elapsed())
}

/// The agent's utime+stime over a storm, with NDJSON to a file (as the
/// issue that set the targets measured it).
fn cpu_row(
    agent: &Path,
    rules: &Path,
    events: &str,
    execs: u32,
    interval: Option<Duration>,
) -> Result<CpuRow> {
    let out = bench_dir().join("cpu.ndjson");
    let running = start_agent_with(agent, rules, AgentOut::File(&out), &["--events", events])?;
    std::thread::sleep(Duration::from_millis(500));
    let row = cpu_over_storm(
        running,
        &out,
        format!("agent, --events {events}"),
        execs,
        interval,
    );
    let _ = std::fs::remove_file(&out);
    row
}

/// The same storm under [`BPFTRACE_PRINT_EXECS`]: what handing every exec
/// to user space costs a minimal tool.
fn bpftrace_cpu_row(execs: u32, interval: Option<Duration>) -> Result<CpuRow> {
    let (running, out) = start_bpftrace(BPFTRACE_PRINT_EXECS)?;
    cpu_over_storm(
        running,
        &out,
        "bpftrace printf one-liner".into(),
        execs,
        interval,
    )
}

/// utime+stime of `running` and the bytes it wrote to `out` over a storm
/// of `execs`, then stops it.
fn cpu_over_storm(
    running: Running,
    out: &Path,
    who: String,
    execs: u32,
    interval: Option<Duration>,
) -> Result<CpuRow> {
    let pid = running.pid();
    let bytes0 = std::fs::metadata(out).map_or(0, |m| m.len());
    let cpu0 = cpu_secs(pid).unwrap_or(0.0);
    let took = paced_storm(execs, interval)?;
    std::thread::sleep(Duration::from_secs(1));
    let cpu1 = cpu_secs(pid).unwrap_or(0.0);
    running.stop()?;
    let bytes1 = std::fs::metadata(out).map_or(0, |m| m.len());
    Ok(CpuRow {
        label: format!(
            "{who}, {}",
            match interval {
                Some(iv) => format!("one exec every {} µs", iv.as_micros()),
                None => "back to back".into(),
            }
        ),
        execs,
        rate: execs as f64 / took.as_secs_f64(),
        cpu_us: (cpu1 - cpu0) * 1e6 / execs as f64,
        bytes: bytes1.saturating_sub(bytes0) as f64 / execs as f64,
    })
}

/// Wall time of one `/bin/true` storm per CPU, all at once: the overhead
/// of the sensor when every CPU is busy.
fn saturated_storm(execs: u32) -> Result<Duration> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(|| paced_storm(execs / n, None)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("storm thread"))
            .collect::<Result<Vec<_>>>()
    })?;
    Ok(start.elapsed())
}

/// The saturated storm with no sensor, bpftrace's printf one-liner and the
/// agent (all kinds written), taking turns `reps` times: one run each gave
/// +18 % and then −0.4 % on this VM, so the median is reported.
fn saturated(md: &mut String, agent: &Path, rules: &Path, execs: u32, reps: u32) -> Result<()> {
    println!("bench: every CPU saturated by exec storms, {reps} rounds of none / bpftrace / agent");
    paced_storm(500, None)?;
    let sat_out = bench_dir().join("saturated.ndjson");
    let (mut none, mut bt, mut with) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        none.push(saturated_storm(execs)?);
        let (running, _) = start_bpftrace(BPFTRACE_PRINT_EXECS)?;
        bt.push(saturated_storm(execs)?);
        running.stop()?;
        let running = start_agent(agent, rules, AgentOut::File(&sat_out))?;
        with.push(saturated_storm(execs)?);
        running.stop()?;
        let _ = std::fs::remove_file(&sat_out);
    }
    let (none, bt, with) = (median(none), median(bt), median(with));
    writeln!(
        md,
        "\n{execs} execs split over one storm per CPU (median of {reps}): no sensor {}, \
         bpftrace printf {} ({:+.1} %), agent with all kinds written {}: **{:+.1} %** vs none, \
         {:+.1} % vs bpftrace",
        fmt_dur(none),
        fmt_dur(bt),
        pct(bt, none),
        fmt_dur(with),
        pct(with, none),
        pct(with, bt),
    )?;
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "?".into());
    let mem = proc_meminfo_gib();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{nproc} × {cpu}, {mem:.1} GiB RAM, kernel {}",
        crate::vm::host_kernel()
    )
}

fn proc_meminfo_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / (1024.0 * 1024.0)
}

/// The criterion benches (the rule engine alone, and the agent's whole
/// user-space pipeline), keeping criterion's result lines (a bench name is
/// printed on the `time:` line, or on the line before when long).
fn criterion() -> Result<Vec<String>> {
    let out = util::capture(util::cargo().args([
        "bench",
        "--package",
        "sensor-rules",
        "--bench",
        "throughput",
        "--package",
        "sensor-agent",
        "--bench",
        "pipeline",
    ]))?;
    let lines: Vec<&str> = out.lines().collect();
    let mut keep = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("time:") && i > 0 {
            keep.push(lines[i - 1].trim_end().to_string());
        }
        if line.contains("time:") || line.contains("thrpt:") {
            keep.push(line.trim_end().to_string());
        }
    }
    Ok(keep)
}

pub fn run(args: &BenchArgs) -> Result<()> {
    util::require_root("bench (bpftrace and the agent load eBPF programs)")?;
    setup::ensure(Profile::Test)?;
    let agent = build::agent(true)?;
    std::fs::create_dir_all(bench_dir())?;
    // Full shipped rule set plus the latency probe rule.
    let rules = bench_dir().join("rules");
    let _ = std::fs::remove_dir_all(&rules);
    std::fs::create_dir_all(&rules)?;
    for e in std::fs::read_dir(util::root().join("rules"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "toml") {
            std::fs::copy(&p, rules.join(p.file_name().expect("file")))?;
        }
    }
    for (file, text) in probe_rules() {
        std::fs::write(rules.join(file), text)?;
    }

    let started = Instant::now();
    let mut md = String::new();
    writeln!(md, "# Benchmark results\n")?;
    writeln!(md, "Machine: {}  ", machine())?;
    writeln!(
        md,
        "Command: `cargo xtask bench --only {} --execs {} --rss-execs {} --latency-execs {} --reps {} \
         --opens {} --tar-files {} --write-rate {} --write-secs {}`\n",
        format!("{:?}", args.only).to_lowercase(),
        args.execs,
        args.rss_execs,
        args.latency_execs,
        args.reps,
        args.opens,
        args.tar_files,
        args.write_rate,
        args.write_secs
    )?;
    if args.only != Part::Exec {
        file::section(&mut md, args, &agent, &rules)?;
    }
    if args.only != Part::File {
        exec_parts(&mut md, args, &agent, &rules)?;
    }
    writeln!(md, "\nTotal bench time: {}", fmt_dur(started.elapsed()))?;

    let path = bench_dir().join("results.md");
    std::fs::write(&path, &md)?;
    println!("\n{md}\nbench: wrote {}", path.display());
    Ok(())
}

/// Exec storms, latency, CPU per exec, resources, sequences, the audit
/// source and the criterion benches.
fn exec_parts(md: &mut String, args: &BenchArgs, agent: &Path, rules: &Path) -> Result<()> {
    let mut rows = Vec::new();
    for w in [Workload::True, Workload::Pipeline] {
        rows.push(storm_row(w, args, agent, rules)?);
    }
    writeln!(
        md,
        "## Exec storm ({} iterations each, median of {})\n",
        args.execs,
        args.reps.max(1)
    )?;
    writeln!(
        md,
        "| workload | no sensor | bpftrace | sensor-agent | overhead vs none | vs bpftrace | execs expected | execs in agent output | agent events total | agent drops | bpftrace @n |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for r in &rows {
        writeln!(
            md,
            "| {} | {} | {} | {} | {:+.1}% | {:+.1}% | {} | {} | {} | {} | {} |",
            r.workload.label(),
            fmt_dur(r.none),
            fmt_dur(r.bpftrace),
            fmt_dur(r.agent),
            pct(r.agent, r.none),
            pct(r.agent, r.bpftrace),
            r.expected,
            r.agent_seen,
            opt(r.agent_events),
            opt(r.drops),
            opt(r.bpftrace_seen),
        )?;
    }

    writeln!(md, "\n## Exec → alert latency\n")?;
    writeln!(
        md,
        "| probe execs | alerts | p50 | p99 | max | measured as |\n|---|---|---|---|---|---|"
    )?;
    let spaced = (args.latency_execs / 20).max(10);
    for (label, count, pace, workload) in [
        (
            "back to back",
            args.latency_execs,
            Pace::Storm,
            Workload::Probe,
        ),
        (
            "one every 200 ms (agent asleep, woken by the kernel)",
            spaced,
            Pace::Spaced(Duration::from_millis(200)),
            Workload::Probe,
        ),
        (
            "sequences: last stage's exec → sequence alert, back to back",
            spaced * 4,
            Pace::Storm,
            Workload::SeqProbe,
        ),
    ] {
        println!("bench: exec→alert latency over {count} probe execs, {label}");
        match latency(agent, rules, count, pace, workload) {
            Ok(l) => writeln!(
                md,
                "| {count} {label} | {} | {:.3} ms | {:.3} ms | {:.3} ms | {} |",
                l.alerts, l.p50_ms, l.p99_ms, l.max_ms, l.source
            )?,
            Err(e) => writeln!(md, "| {count} {label} | not measured: {e:#} | | | | |")?,
        }
    }

    writeln!(
        md,
        "\n## CPU per exec\n\nutime+stime over fork+exec of `/bin/true`: the agent with the shipped \
         rules, NDJSON to a file (each exec is a fork, an exec and an exit record), and, as the \
         baseline, bpftrace printing one line per exec to a file \
         (`{BPFTRACE_PRINT_EXECS}`).\n"
    )?;
    writeln!(
        md,
        "| configuration | execs | execs/s | CPU per exec | vs bpftrace, same pacing | bytes written per exec |\n|---|---|---|---|---|---|"
    )?;
    let cpu_execs = args.execs.min(10_000);
    for interval in [None, Some(Duration::from_millis(1))] {
        println!("bench: bpftrace printf CPU, interval {interval:?}");
        let base = bpftrace_cpu_row(cpu_execs, interval)?;
        writeln!(md, "{}", base.markdown(None))?;
        for events in ["exec", "exec,fork,exit"] {
            println!("bench: agent CPU, --events {events}, interval {interval:?}");
            let r = cpu_row(agent, rules, events, cpu_execs, interval)?;
            writeln!(md, "{}", r.markdown(Some(&base)))?;
        }
    }
    saturated(md, agent, rules, args.execs.min(10_000), args.reps.max(3))?;

    println!("bench: agent RSS and CPU over {} execs", args.rss_execs);
    let r = resources(agent, rules, args.rss_execs)?;
    writeln!(md, "\n## Agent resources\n")?;
    writeln!(
        md,
        "| short-lived processes | VmHWM | VmRSS after | of which BPF maps (ring buffer) | CPU s per 10 000 execs |\n|---|---|---|---|---|"
    )?;
    writeln!(
        md,
        "| {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.2} |",
        r.execs,
        r.vm_hwm_kib as f64 / 1024.0,
        r.vm_rss_kib as f64 / 1024.0,
        r.bpf_map_kib as f64 / 1024.0,
        r.cpu_secs
    )?;

    println!("bench: memory of 100 000 pending partial sequences");
    writeln!(
        md,
        "\n## Sequence state\n\n100 000 pending partial sequences, each started by an exec \
         document (`cargo run --release -p sensor-rules --example partials_memory`):\n"
    )?;
    example_block(md, "sensor-rules", "partials_memory")?;

    println!("bench: Kubernetes audit events through the mapping and the rules");
    writeln!(
        md,
        "\n## Kubernetes audit source\n\nRaw audit events (the vendored Falco samples) parsed, unwrapped, mapped to ECS \
         and evaluated against the shipped rules, on one core \
         (`cargo run --release -p sensor-audit --example audit_throughput`):\n"
    )?;
    example_block(md, "sensor-audit", "audit_throughput")?;

    writeln!(
        md,
        "\n## Rule engine and pipeline, one core (criterion: `cargo bench -p sensor-rules -p sensor-agent`)\n\n\
         `eql_events/N`: ECS events through N rules; `engine_events/*`: the whole engine \
         (index, sequence state, suppression) with the shipped rules plus 10 sequence rules; `pipeline/*`: kernel-layout records through \
         decode → process table → ECS → rules → NDJSON.\n"
    )?;
    if args.skip_criterion {
        writeln!(md, "skipped (--skip-criterion)")?;
    } else {
        match criterion() {
            Ok(lines) if !lines.is_empty() => {
                writeln!(md, "```")?;
                for l in lines {
                    writeln!(md, "{l}")?;
                }
                writeln!(md, "```")?;
            }
            Ok(_) => writeln!(md, "sensor-rules has no criterion benches yet")?,
            Err(e) => writeln!(md, "failed: {e:#}")?,
        }
    }
    Ok(())
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

/// Runs `cargo run --release -p <package> --example <example>` and writes
/// what it printed as a code block (or why it failed).
fn example_block(md: &mut String, package: &str, example: &str) -> Result<()> {
    match util::capture(util::cargo().args([
        "run",
        "--release",
        "--quiet",
        "--package",
        package,
        "--example",
        example,
    ])) {
        Ok(line) => writeln!(md, "```\n{}\n```", line.trim())?,
        Err(e) => writeln!(md, "failed: {e:#}")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_rules_are_valid_rule_files() {
        for (file, text) in probe_rules() {
            let outcome = sensor_rules::loader::load_str(&text, Path::new(file));
            assert!(
                matches!(outcome, sensor_rules::loader::FileOutcome::Loaded(_)),
                "{file}: {outcome:?}"
            );
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("2000-03-01T00:00:01.5Z"),
            Some((951_868_800 + 1) * 1_000_000_000 + 500_000_000)
        );
        assert_eq!(parse_rfc3339_ns("garbage"), None);
    }

    #[test]
    fn agent_summary() {
        let s = "INFO x\nsensor stopped: events=120 exec=40 fork=40 exit=40 alerts=0 drops=3 exec_drops=1 decode_errors=0\n";
        assert_eq!(summary_field(s, "events"), Some(120));
        assert_eq!(summary_field(s, "drops"), Some(3));
        assert_eq!(summary_field(s, "nope"), None);
    }

    #[test]
    fn storm_runs() {
        let d = storm(Workload::True, 3).unwrap();
        assert!(d > Duration::ZERO);
    }
}
