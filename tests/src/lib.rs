//! Helpers shared by the end-to-end tests: run the real agent against the
//! real kernel, read its NDJSON, drive real processes (and ptys).
//!
//! Every stdout line the agent writes is checked to be exactly one JSON
//! object; any other line fails the test that owns the agent.

pub mod ecs_schema;

use std::{
    collections::HashMap,
    ffi::CStr,
    fs::File,
    io::{BufRead, BufReader},
    os::{fd::FromRawFd, unix::fs::MetadataExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;

/// How long the agent may take to load and attach before it says ready:
/// 120 s, or `SENSOR_E2E_READY_SECS` (the emulated guests set it; there the
/// verifier alone takes about a minute for the file programs).
pub fn ready_timeout() -> Duration {
    let secs = std::env::var("SENSOR_E2E_READY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}
/// Default wait for one expected event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// True when this test can run. Otherwise prints a loud SKIPPED line
/// (never a silent pass) and the caller returns.
pub fn require_root_and_bpf() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    if root && btf {
        return true;
    }
    eprintln!(
        "SKIPPED: needs root and BPF (euid 0: {root}, /sys/kernel/btf/vmlinux: {btf}) — \
         this end-to-end test did NOT run"
    );
    false
}

/// Tests in one binary share the kernel and the process table view; run
/// their agents one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_path_buf()
}

/// The agent binary: `SENSOR_AGENT_BIN`, else release then debug under
/// `CARGO_TARGET_DIR` or the workspace `target/`.
pub fn agent_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SENSOR_AGENT_BIN") {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "SENSOR_AGENT_BIN={} does not exist",
            p.display()
        );
        return p;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_relative() {
                workspace_root().join(t)
            } else {
                t
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    let candidates = [
        target.join("release/sensor-agent"),
        target.join("debug/sensor-agent"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no sensor-agent binary at {candidates:?}; build it with \
                 `cargo build --release -p sensor-agent` or set SENSOR_AGENT_BIN"
            )
        })
}

/// A marker unique to this test run, for finding our own events among
/// everything else the node executes.
pub fn unique_marker(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e-{tag}-{}-{nanos}", std::process::id())
}

/// The path the kernel reports for an executable (symlinks resolved).
pub fn canonical(path: &str) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|e| panic!("canonicalize {path}: {e}"))
        .to_string_lossy()
        .into_owned()
}

#[derive(Default)]
struct Shared {
    events: Vec<Value>,
    bad_lines: Vec<String>,
    stderr: Vec<String>,
    ready: bool,
    stdout_closed: bool,
    stderr_closed: bool,
}

type SharedState = Arc<(Mutex<Shared>, Condvar)>;

/// A running `sensor-agent run`.
pub struct Agent {
    child: Child,
    state: SharedState,
    readers: Vec<JoinHandle<()>>,
}

/// What the agent left behind after SIGTERM.
pub struct Finished {
    pub events: Vec<Value>,
    pub stderr: Vec<String>,
    /// `key=<number>` pairs of the final summary line (`events=`, `drops=`...).
    pub summary: HashMap<String, u64>,
}

/// Parses the `key=<u64>` pairs of a summary line.
pub fn parse_summary(line: &str) -> HashMap<String, u64> {
    line.split_whitespace()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            Some((k.to_string(), v.trim_end_matches(',').parse().ok()?))
        })
        .collect()
}

/// Checks one stdout line: exactly one JSON object, newline-terminated,
/// whose fields are ECS 9.4's or its documented extensions.
pub fn check_line(raw: &[u8]) -> Result<Value, String> {
    let Some(body) = raw.strip_suffix(b"\n") else {
        return Err("line not terminated by a newline".into());
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => {
            let bad = ecs_schema::violations(&v);
            if bad.is_empty() {
                Ok(v)
            } else {
                Err(format!("not ECS 9.4: {}", bad.join("; ")))
            }
        }
        Ok(other) => Err(format!("not a JSON object: {other}")),
        Err(e) => Err(format!("invalid JSON ({e})")),
    }
}

fn preview(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let cut: String = s.chars().take(300).collect();
    format!("{cut}… ({} bytes)", raw.len())
}

impl Agent {
    /// Starts `sensor-agent run <extra>` and waits until it reports
    /// `sensor ready` on stderr.
    pub fn start(extra: &[&str]) -> Agent {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        Agent::start_with(&args, "sensor ready")
    }

    /// Starts `sensor-agent <args>` and waits until stderr shows `ready`.
    pub fn start_with(args: &[&str], ready: &str) -> Agent {
        let bin = agent_bin();
        let ready = ready.to_string();
        let mut child = Command::new(&bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let state: SharedState = Arc::default();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let s = state.clone();
        let out_reader = std::thread::spawn(move || {
            let mut r = BufReader::with_capacity(1 << 20, stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let checked = check_line(&buf);
                        let (lock, cv) = &*s;
                        let mut st = lock.lock().unwrap();
                        match checked {
                            Ok(v) => st.events.push(v),
                            Err(why) => st.bad_lines.push(format!("{why}: {}", preview(&buf))),
                        }
                        cv.notify_all();
                    }
                }
            }
            let (lock, cv) = &*s;
            lock.lock().unwrap().stdout_closed = true;
            cv.notify_all();
        });
        let s = state.clone();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (lock, cv) = &*s;
                let mut st = lock.lock().unwrap();
                if line.contains(&ready) {
                    st.ready = true;
                }
                st.stderr.push(line);
                cv.notify_all();
            }
            let (lock, cv) = &*s;
            lock.lock().unwrap().stderr_closed = true;
            cv.notify_all();
        });
        let mut agent = Agent {
            child,
            state,
            readers: vec![out_reader, err_reader],
        };
        agent.wait_ready();
        agent
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + ready_timeout();
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap();
        while !st.ready {
            if st.stderr_closed || Instant::now() > deadline {
                let stderr = st.stderr.join("\n");
                drop(st);
                let _ = self.child.kill();
                panic!("agent never reported it was ready; stderr:\n{stderr}");
            }
            st = cv.wait_timeout(st, Duration::from_millis(200)).unwrap().0;
        }
    }

    fn assert_clean(st: &Shared) {
        assert!(
            st.bad_lines.is_empty(),
            "{} stdout line(s) were not exactly one JSON object, first: {}",
            st.bad_lines.len(),
            st.bad_lines[0]
        );
    }

    /// Waits for the first event matching `pred`; panics after `timeout`
    /// (or if a bad stdout line shows up) with context.
    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap();
        let mut checked = 0;
        loop {
            Self::assert_clean(&st);
            if let Some(v) = st.events[checked..].iter().find(|v| pred(v)) {
                return v.clone();
            }
            checked = st.events.len();
            if Instant::now() > deadline || st.stdout_closed {
                let tail: Vec<&String> = st.stderr.iter().rev().take(20).collect();
                panic!(
                    "no event for {what} within {timeout:?} ({} events seen); agent stderr tail: {tail:#?}",
                    st.events.len()
                );
            }
            st = cv.wait_timeout(st, Duration::from_millis(200)).unwrap().0;
        }
    }

    /// Waits for the `nth` (from 1) stderr line containing `needle` and
    /// returns it; panics after `timeout` with the stderr tail.
    pub fn wait_stderr(&self, needle: &str, nth: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.state;
        let mut st = lock.lock().unwrap();
        loop {
            if let Some(l) = st.stderr.iter().filter(|l| l.contains(needle)).nth(nth - 1) {
                return l.clone();
            }
            if Instant::now() > deadline || st.stderr_closed {
                let tail: Vec<&String> = st.stderr.iter().rev().take(20).collect();
                panic!("no stderr line #{nth} with {needle:?} within {timeout:?}; tail: {tail:#?}");
            }
            st = cv.wait_timeout(st, Duration::from_millis(200)).unwrap().0;
        }
    }

    /// Lets the agent drain after a storm: returns once `n` events match
    /// `pred`, or when none arrived for 3 s.
    pub fn settle(&self, n: usize, pred: impl Fn(&Value) -> bool) {
        let (mut last, mut since) = (0, Instant::now());
        while last < n && since.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(200));
            let c = self.count(&pred);
            if c != last {
                (last, since) = (c, Instant::now());
            }
        }
    }

    /// The stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.state.0.lock().unwrap().stderr.clone()
    }

    /// Sends `sig` to the agent (e.g. SIGSTOP/SIGCONT to stall its reader).
    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child by pid.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// How many events so far match `pred`.
    pub fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        let st = self.state.0.lock().unwrap();
        Self::assert_clean(&st);
        st.events.iter().filter(|v| pred(v)).count()
    }

    /// SIGTERM, wait for exit, collect everything. Fails on any bad line
    /// or an exit that was not clean.
    pub fn stop(mut self) -> Finished {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_within(&mut self.child, EXIT_TIMEOUT, "the agent, after SIGTERM");
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        let st = std::mem::take(&mut *self.state.0.lock().unwrap());
        Self::assert_clean(&st);
        assert!(
            status.success(),
            "agent exited with {status}; stderr:\n{}",
            st.stderr.join("\n")
        );
        let summary = st
            .stderr
            .iter()
            .rev()
            .find(|l| l.contains("stopped: events="))
            .map(|l| parse_summary(l))
            .unwrap_or_else(|| {
                panic!(
                    "no final `events=<n> drops=<n>` summary on stderr:\n{}",
                    st.stderr.join("\n")
                )
            });
        Finished {
            events: st.events,
            stderr: st.stderr,
            summary,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // A panicking test must not leave an attached agent behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Panics if two of `docs` have the same `process.pid` (`what` happened twice).
pub fn assert_unique_pids(docs: &[&Value], what: &str) {
    let mut pids: Vec<u64> = docs
        .iter()
        .map(|v| v["process"]["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), docs.len(), "{what}");
}

/// `event.action == "exec"`.
pub fn is_exec(v: &Value) -> bool {
    v["event"]["action"] == "exec"
}

/// An exec event whose argv contains `marker`.
pub fn exec_with_arg(marker: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v| {
        is_exec(v)
            && v["process"]["args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == marker))
    }
}

/// An exec event of process `pid`.
pub fn exec_of_pid(pid: u32) -> impl Fn(&Value) -> bool {
    move |v| is_exec(v) && v["process"]["pid"] == pid
}

/// A pseudo-terminal pair; the slave's device numbers are what the agent
/// must report.
pub struct Pty {
    pub master: File,
    pub slave: File,
    pub slave_path: PathBuf,
    pub major: u32,
    pub minor: u32,
}

impl Pty {
    pub fn open() -> Pty {
        // SAFETY: plain libc pty calls; every fd returned is owned by one File.
        unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            assert_eq!(libc::grantpt(m), 0);
            assert_eq!(libc::unlockpt(m), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
            let slave_path = PathBuf::from(CStr::from_ptr(name.as_ptr()).to_str().unwrap());
            let master = File::from_raw_fd(m);
            let slave = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags_noctty()
                .open(&slave_path)
                .unwrap();
            let rdev = std::fs::metadata(&slave_path).unwrap().rdev();
            Pty {
                master,
                slave,
                slave_path,
                major: libc::major(rdev),
                minor: libc::minor(rdev),
            }
        }
    }

    /// The kernel's tty name, e.g. `pts3`.
    pub fn kernel_name(&self) -> String {
        format!(
            "pts{}",
            self.slave_path.file_name().unwrap().to_string_lossy()
        )
    }

    pub fn slave_stdio(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().unwrap())
    }
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        // The test process itself must not acquire the pty as its tty.
        self.custom_flags(libc::O_NOCTTY)
    }
}

/// Makes the child a new session leader with `ctty_fd` (a pty slave) as
/// its controlling terminal, or with no controlling terminal when `None`.
pub fn new_session(cmd: &mut Command, ctty_fd: Option<i32>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = ctty_fd
                && libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// How long a signalled agent (or a reader we resumed) may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits for `child` to exit; past `within` it is killed and the test fails
/// naming `what`, so a process that never exits fails one test instead of
/// hanging the whole run.
pub fn wait_within(child: &mut Child, within: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cmd` to completion, failing the test if it cannot start.
pub fn run(cmd: &mut Command) -> u32 {
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id();
    child.wait().unwrap();
    pid
}
