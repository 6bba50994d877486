//! `cargo xtask vm-test`: boot real distribution kernels in QEMU (TCG) with
//! an initramfs holding the agent and the kernel-tier end-to-end tests, and
//! read the guest's verdict from the serial console.
//!
//! Guest protocol (see initramfs.rs and the payload scripts below): the guest
//! prints `VMTEST-KERNEL: <uname -r>` once /init runs, then
//! `VMTEST-RESULT: PASS|FAIL <n> passed, <m> failed`, then powers off.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::{
    build, e2e,
    initramfs::{self, Cpio},
    kernels::{self, Kernel},
    setup::{self, Profile},
    util::{self, Counts, fmt_dur},
};

/// A guest's whole run under TCG: 10–13 minutes measured for 5.10 and 6.1
/// with two guests at once, and 15 when the host was busy besides.
pub const GUEST_TIMEOUT_SECS: u64 = 1200;

/// One test binary in a guest: the longest took 3m38s (file_events, 6.19,
/// two guests at once), so 7 minutes means it is stuck.
const BINARY_LIMIT_SECS: u64 = 420;

#[derive(Args, Clone)]
pub struct VmTestArgs {
    /// Kernel to boot: a .deb, a vmlinuz/bzImage, or a Debian series label
    /// (5.10, 6.1, 6.12, 6.19). Repeat for several. Default: all four,
    /// booted two at a time.
    #[arg(long = "kernel", value_name = "DEB|VMLINUZ|SERIES")]
    pub kernels: Vec<String>,

    /// What the guest runs: `e2e` (the kernel-tier end-to-end tests),
    /// `smoke` (BTF, mounts, `sensor-agent offsets` and one captured exec),
    /// or `auto` (e2e when the sensor-tests crate has kernel-tier tests).
    #[arg(long, value_enum, default_value = "auto")]
    pub payload: PayloadKind,

    /// Test-name substrings to skip in the guest (libtest `--skip`). The
    /// guest has no container runtime, so container tests are skipped.
    #[arg(long = "skip", value_name = "SUBSTRING", default_values = ["container"])]
    pub skips: Vec<String>,

    /// Run only the guest tests whose names contain this (libtest's
    /// filter), to iterate on one test without the whole tier.
    #[arg(long, value_name = "SUBSTRING")]
    pub only: Option<String>,

    /// Seconds before a guest is declared hung and QEMU is killed.
    #[arg(long, default_value_t = GUEST_TIMEOUT_SECS)]
    pub timeout_secs: u64,

    /// Try KVM instead of TCG (hangs on some hosts, so never the default).
    #[arg(long)]
    pub kvm: bool,

    /// Also run the end-to-end tests on the host kernel (all tiers).
    #[arg(long)]
    pub host: bool,

    /// Do not echo the guest console (it is always saved to
    /// target/vm-test/<kernel>/console.log).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum PayloadKind {
    Auto,
    Smoke,
    E2e,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Pass,
    Fail(String),
}

#[derive(Clone, Debug)]
pub struct VmResult {
    pub kernel: String,
    pub outcome: Outcome,
    pub counts: Counts,
    /// From QEMU start to the guest's first line from /init.
    pub boot: Option<Duration>,
    pub total: Duration,
    pub log: PathBuf,
    /// Why the guest was booted a second time, if it was.
    pub retried: Option<String>,
}

pub fn run(args: &VmTestArgs) -> Result<()> {
    util::require_root("vm-test (the host tier and the payload build)")?;
    setup::ensure(Profile::Test)?;
    let mut results = Vec::new();
    if args.host {
        let start = Instant::now();
        let (ok, counts) = e2e::e2e_host()?;
        results.push(VmResult {
            kernel: format!("host {}", host_kernel()),
            outcome: if ok {
                Outcome::Pass
            } else {
                Outcome::Fail("tests failed".into())
            },
            counts,
            boot: None,
            total: start.elapsed(),
            log: PathBuf::from("-"),
            retried: None,
        });
    }
    results.extend(matrix(args)?);
    print_table(&results);
    let failed: Vec<_> = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
        .map(|r| r.kernel.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("vm-test failed on: {}", failed.join(", "));
    }
    Ok(())
}

pub fn host_kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Builds the payload once and boots every kernel with it.
pub fn matrix(args: &VmTestArgs) -> Result<Vec<VmResult>> {
    let (kernels, initrd) = prepare(args)?;
    Ok(boot_all(&kernels, &initrd, args))
}

/// Guests booted at once. A TCG guest spends much of its time waiting
/// (boot, sleeps in the tests), so two overlap well on two host cores.
pub const PARALLEL_GUESTS: usize = 2;

/// Boots the kernels [`PARALLEL_GUESTS`] at a time; results keep the order
/// of `kernels`.
pub fn boot_all(kernels: &[Kernel], initrd: &Path, args: &VmTestArgs) -> Vec<VmResult> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_GUESTS.min(kernels.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(k) = kernels.get(i) else { break };
                    let r = boot(k, initrd, args);
                    results.lock().expect("no panics hold it").push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("no panics hold it");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Resolves (downloads) the kernels and builds the initramfs.
pub fn prepare(args: &VmTestArgs) -> Result<(Vec<Kernel>, PathBuf)> {
    let kernels = if args.kernels.is_empty() {
        kernels::DEFAULT_MATRIX
            .iter()
            .map(kernels::from_series)
            .collect::<Result<Vec<_>>>()?
    } else {
        args.kernels
            .iter()
            .map(|k| kernels::resolve(k))
            .collect::<Result<Vec<_>>>()?
    };
    let initrd = build_initrd(args)?;
    Ok((kernels, initrd))
}

fn vm_dir() -> PathBuf {
    util::target_dir().join("vm-test")
}

/// The kernel-tier test executables of sensor-tests, built in release mode
/// (sharing the release agent's dependencies).
pub fn e2e_binaries() -> Result<Vec<PathBuf>> {
    let out = util::capture(util::cargo().args([
        "test",
        "--release",
        "--package",
        "sensor-tests",
        "--no-run",
        "--message-format=json",
    ]))?;
    let mut bins = Vec::new();
    for line in out.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["profile"]["test"] == true
            && let Some(exe) = msg["executable"].as_str()
            // The audit source is user space only (HTTPS, files): the host
            // run covers it, and the guests have no curl.
            && msg["target"]["name"].as_str() != Some("audit_source")
        {
            bins.push(PathBuf::from(exe));
        }
    }
    Ok(bins)
}

impl VmTestArgs {
    /// libtest's arguments that choose the guest's tests: `--skip`s, then
    /// the `--only` filter.
    fn test_filters(&self) -> Vec<String> {
        let skips = self.skips.iter().flat_map(|s| ["--skip".into(), s.clone()]);
        skips.chain(self.only.clone()).collect()
    }
}

/// How many tests a binary would run with the guest's filters.
fn count_tests(bin: &Path, filters: &[String]) -> Result<usize> {
    let mut cmd = Command::new(bin);
    cmd.args(["--list", "--format", "terse"]).args(filters);
    let out = util::capture(&mut cmd)?;
    Ok(out.lines().filter(|l| l.ends_with(": test")).count())
}

fn build_initrd(args: &VmTestArgs) -> Result<PathBuf> {
    let agent = build::agent(true)?;
    let mut kind = args.payload;
    let mut tests = Vec::new();
    if kind != PayloadKind::Smoke {
        for bin in e2e_binaries()? {
            let n = count_tests(&bin, &args.test_filters())?;
            if n > 0 {
                println!(
                    "vm-test: payload test binary {} ({n} kernel-tier tests)",
                    bin.display()
                );
                tests.push(bin);
            }
        }
        if tests.is_empty() {
            if kind == PayloadKind::E2e {
                bail!(
                    "--payload e2e: sensor-tests has no tests left after {:?}",
                    args.test_filters()
                );
            }
            println!("vm-test: sensor-tests has no kernel-tier tests yet; using the smoke payload");
            kind = PayloadKind::Smoke;
        } else {
            kind = PayloadKind::E2e;
        }
    }

    let mut cpio = Cpio::new();
    initramfs::base(&mut cpio)?;
    let base = cpio.finish_gz()?;

    let mut cpio = Cpio::new();
    cpio.binary("/sensor-agent", &agent)?;
    // Tests that locate the rules through a compile-time path find them at
    // the same absolute path; /rules is the short form the env var names.
    let rules = util::root().join("rules");
    add_tree(&mut cpio, &rules, "/rules")?;
    add_tree(&mut cpio, &rules, &rules.to_string_lossy())?;
    // `script` gives tests a real pty; busybox has no equivalent.
    cpio.binary("/usr/bin/script", Path::new("/usr/bin/script"))?;
    let run_sh = match kind {
        PayloadKind::E2e => {
            for bin in &tests {
                let name = bin.file_name().unwrap_or_default().to_string_lossy();
                cpio.binary(&format!("/tests/{name}"), bin)?;
            }
            e2e_script(&args.test_filters())
        }
        _ => SMOKE.to_string(),
    };
    cpio.file("/payload/run.sh", 0o755, run_sh.as_bytes());
    let payload = cpio.finish_gz()?;

    // The kernel unpacks concatenated archives in order; the payload comes
    // second so it can replace busybox links (e.g. /usr/bin/script).
    let dir = vm_dir();
    std::fs::create_dir_all(&dir)?;
    let initrd = dir.join("initrd.gz");
    let mut f = std::fs::File::create(&initrd)?;
    f.write_all(&base)?;
    f.write_all(&payload)?;
    println!(
        "vm-test: initramfs {} ({:.1} MiB, {:?} payload)",
        initrd.display(),
        (base.len() + payload.len()) as f64 / (1 << 20) as f64,
        kind
    );
    Ok(initrd)
}

fn add_tree(cpio: &mut Cpio, host: &Path, guest: &str) -> Result<()> {
    for entry in std::fs::read_dir(host).with_context(|| format!("reading {}", host.display()))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let g = format!("{guest}/{name}");
        if path.is_dir() {
            add_tree(cpio, &path, &g)?;
        } else {
            let data = std::fs::read(&path)?;
            cpio.file(&g, 0o644, &data);
        }
    }
    Ok(())
}

/// Runs each test binary serially (the tests share the kernel's BPF state)
/// with libtest's `filters`, and sums libtest's result lines.
fn e2e_script(filters: &[String]) -> String {
    let skip_args: String = filters
        .iter()
        .map(|s| format!(" '{}'", s.replace('\'', "")))
        .collect();
    let limit = BINARY_LIMIT_SECS;
    format!(
        r#"#!/bin/sh
set -o pipefail
export SENSOR_AGENT_BIN=/sensor-agent SENSOR_RULES_DIR=/rules SENSOR_TEST_TIER=kernel RUST_BACKTRACE=1
# Execs are several times slower under TCG; a smaller storm still checks
# that every exec is an event or a counted drop.
export SENSOR_E2E_STORM=2000
# Verifying the file programs takes about a minute under TCG.
export SENSOR_E2E_READY_SECS=300
# Past the limit a test binary is stuck: the guest shows where, kills it
# and goes on, so one hang does not cost the whole guest's verdict.
limit={limit}
# Where a stuck test binary waits: libtest's last test line, every task,
# the kernel stacks of the tests and the agent, and the blocked tasks.
hung() {{
  echo "VMTEST-HUNG: $1 still running after ${{limit}}s; last test started: $(grep '^test ' /tmp/test.out | tail -n 1)"
  ps -o pid,ppid,stat,time,args 2>/dev/null || ps
  for d in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' < $d/cmdline 2>/dev/null)
    case "$cmd" in
      */tests/*|*sensor-agent*) echo "--- kernel stack of ${{d#/proc/}}: $cmd"; cat $d/stack 2>/dev/null;;
    esac
  done
  echo w > /proc/sysrq-trigger
  dmesg | tail -n 80
}}
pass=0; fail=0; broken=""
for t in /tests/*; do
  echo "VMTEST-RUN: $t"
  : > /tmp/test.out
  "$t" --test-threads=1{skip_args} >> /tmp/test.out 2>&1 &
  tpid=$!
  tail -n +1 -f /tmp/test.out &
  lpid=$!
  waited=0; stuck=""
  while kill -0 $tpid 2>/dev/null; do
    if [ $waited -ge $limit ]; then
      hung "$t"
      stuck="hung ${{limit}}s at: $(grep '^test ' /tmp/test.out | tail -n 1)"
      killall -KILL sensor-agent 2>/dev/null; kill -KILL $tpid; break
    fi
    sleep 1; waited=$((waited + 1))
  done
  wait $tpid
  rc=$?
  # busybox tail -f looks for new output once a second: after 2 s it has
  # copied the binary's last lines to the console.
  sleep 2; kill $lpid 2>/dev/null
  line=$(grep '^test result:' /tmp/test.out | tail -n 1)
  p=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p')
  f=$(echo "$line" | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
  # A killed binary printed no summary: count what it finished.
  [ -z "$line" ] && p=$(grep -c ' \.\.\. ok$' /tmp/test.out) && f=$(grep -c ' \.\.\. FAILED$' /tmp/test.out)
  pass=$((pass + ${{p:-0}})); fail=$((fail + ${{f:-0}}))
  if [ -n "$stuck" ]; then broken="$broken $t($stuck)"
  elif [ "$rc" != 0 ] || [ -z "$line" ]; then broken="$broken $t(rc=$rc)"; fi
done
if [ -n "$broken" ]; then
  dmesg | tail -n 30
  echo "VMTEST-RESULT: FAIL $pass passed, $fail failed (failing:$broken)"
else
  echo "VMTEST-RESULT: PASS $pass passed, $fail failed"
fi
"#
    )
}

/// Used until the end-to-end tests exist, and by `--payload smoke`: checks
/// the kernel features the sensor needs, that the agent resolves its BTF
/// offsets, and that it captures one exec.
const SMOKE: &str = r#"#!/bin/sh
pass=0; fail=0
check() {
  if eval "$2"; then echo "ok: $1"; pass=$((pass + 1)); else echo "FAIL: $1"; fail=$((fail + 1)); fi
}
check "kernel BTF at /sys/kernel/btf/vmlinux" '[ -s /sys/kernel/btf/vmlinux ]'
check "bpffs mounted" 'grep -q " /sys/fs/bpf bpf " /proc/mounts'
check "cgroup v2 mounted" '[ -f /sys/fs/cgroup/cgroup.controllers ]'
check "pty available" '[ -c /dev/ptmx ] && script -qc true /dev/null'
check "sensor-agent resolves offsets from this kernel's BTF" '/sensor-agent offsets > /tmp/offsets.txt 2>&1 || { cat /tmp/offsets.txt; false; }'
captured() {
  /sensor-agent run --events exec > /tmp/events.ndjson 2> /tmp/agent.err &
  apid=$!
  i=0
  while [ $i -lt 180 ]; do
    /bin/busybox true vmtest-marker-$i
    if grep -q vmtest-marker /tmp/events.ndjson; then break; fi
    if ! kill -0 $apid 2>/dev/null; then break; fi
    sleep 1; i=$((i + 1))
  done
  kill -INT $apid 2>/dev/null; wait $apid
  # How each hook attached (raw_tp, or tp_btf with --tp-btf), the path-walk
  # depth the verifier took, and the final summary.
  grep -E "attached|verified|falling back|retrying" /tmp/agent.err | sed 's/^/agent: /'
  echo "agent: $(tail -n 1 /tmp/agent.err)"
  grep -q vmtest-marker /tmp/events.ndjson || { tail -n 20 /tmp/agent.err; false; }
}
check "sensor-agent run captures an exec" captured
if [ $fail = 0 ]; then r=PASS; else r=FAIL; fi
echo "VMTEST-RESULT: $r $pass passed, $fail failed"
"#;

/// Boots one kernel and waits for the verdict (or the timeout).
pub fn boot(kernel: &Kernel, initrd: &Path, args: &VmTestArgs) -> VmResult {
    let start = Instant::now();
    let dir = vm_dir().join(sanitize(&kernel.name));
    let log = dir.join("console.log");
    let mut result = VmResult {
        kernel: kernel.name.clone(),
        outcome: Outcome::Fail("did not start".into()),
        counts: Counts::default(),
        boot: None,
        total: Duration::ZERO,
        log: log.clone(),
        retried: None,
    };
    println!(
        "==> vm-test {}: booting {} ({}, timeout {}s)",
        kernel.name,
        kernel.vmlinuz.display(),
        if args.kvm { "KVM" } else { "TCG" },
        args.timeout_secs
    );
    let attempt = |result: &mut VmResult, start: Instant| match boot_inner(
        kernel, initrd, args, &dir, &log, start,
    ) {
        Ok((outcome, counts, boot)) => {
            result.outcome = outcome;
            result.counts = counts;
            result.boot = boot;
        }
        Err(e) => result.outcome = Outcome::Fail(format!("{e:#}")),
    };
    attempt(&mut result, start);
    // A TCG guest once panicked patching a static key in inet_ehashfn, with
    // nothing of ours on the stack (CI, 6.12.118, 2026-12). Such a panic is
    // the emulator's, so the guest boots once more; a panic whose oops names
    // a BPF program is ours and fails at once.
    if let Outcome::Fail(why) = result.outcome.clone() {
        let console = std::fs::read_to_string(&log).unwrap_or_default();
        match classify_panic(&console) {
            Some(Panic::Elsewhere(at)) => {
                let kept = dir.join("console.panic.log");
                let _ = std::fs::rename(&log, &kept);
                println!(
                    "!!! vm-test {}: guest kernel panic outside the sensor's programs ({at}); \
                     booting it once more (first console: {})",
                    kernel.name,
                    kept.display()
                );
                result.retried = Some(format!(
                    "first boot: {why}; kernel panic at {at}, no BPF on the stack (console: {})",
                    kept.display()
                ));
                attempt(&mut result, Instant::now());
            }
            Some(Panic::InBpf(at)) => {
                result.outcome = Outcome::Fail(format!("{why}; kernel panic in BPF code ({at})"));
            }
            None => {}
        }
    }
    result.total = start.elapsed();
    let verdict = match &result.outcome {
        Outcome::Pass => "PASS".to_string(),
        Outcome::Fail(why) => format!("FAIL: {why}"),
    };
    println!(
        "<== vm-test {}: {verdict} ({} passed, {} failed) in {} (console log: {})",
        kernel.name,
        result.counts.passed,
        result.counts.failed,
        fmt_dur(result.total),
        log.display()
    );
    result
}

type BootOutcome = (Outcome, Counts, Option<Duration>);

fn boot_inner(
    kernel: &Kernel,
    initrd: &Path,
    args: &VmTestArgs,
    dir: &Path,
    log: &Path,
    start: Instant,
) -> Result<BootOutcome> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Command::new("qemu-system-x86_64");
    if args.kvm {
        cmd.args(["-accel", "kvm", "-cpu", "host"]);
    } else {
        cmd.args(["-accel", "tcg", "-cpu", "max"]);
    }
    cmd.args(["-m", "2G", "-smp", "2", "-nographic", "-no-reboot"])
        .arg("-kernel")
        .arg(&kernel.vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        // bpf in the LSM list, so the file opens take the BPF LSM way.
        .args([
            "-append",
            "console=ttyS0 panic=-1 quiet lsm=lockdown,capability,landlock,yama,apparmor,bpf",
        ])
        // No stdin: CI has none, and a tty stdin would be put in raw mode.
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    println!("  $ {}", util::show(&cmd));
    let mut child = cmd
        .spawn()
        .context("cannot start qemu-system-x86_64 (cargo xtask setup installs qemu-system-x86)")?;

    // One thread copies the console to the log (and the terminal) and
    // forwards the lines that matter; stderr joins the same log.
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let mut logf = std::fs::File::create(log)?;
    let echo = !args.quiet;
    let tag = kernel.name.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            let _ = writeln!(logf, "{line}");
            if echo {
                println!("[{tag}] {line}");
            }
            // Firmware screen-clearing escapes can precede the first line.
            if let Some(at) = line.find("VMTEST-") {
                let _ = tx.send((Instant::now(), line[at..].to_string()));
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });

    let deadline = start + Duration::from_secs(args.timeout_secs);
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = reader.join();
    let qemu_err = err_reader.join().unwrap_or_default();

    let mut boot = None;
    let mut verdict = None;
    for (at, line) in rx.try_iter() {
        if line.starts_with("VMTEST-KERNEL:") && boot.is_none() {
            boot = Some(at - start);
        }
        if let Some(rest) = line.strip_prefix("VMTEST-RESULT:") {
            verdict = Some(rest.trim().to_string());
        }
    }
    if timed_out {
        let console = std::fs::read_to_string(log).unwrap_or_default();
        return Ok((
            Outcome::Fail(format!(
                "timed out after {}s{}",
                args.timeout_secs,
                where_stuck(&console)
            )),
            Counts::default(),
            boot,
        ));
    }
    let Some(verdict) = verdict else {
        let why = if boot.is_none() {
            format!(
                "guest never reached /init (qemu {}{})",
                status.map(|s| s.to_string()).unwrap_or_default(),
                if qemu_err.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", qemu_err.trim())
                }
            )
        } else {
            "guest printed no VMTEST-RESULT line (payload crashed?)".into()
        };
        return Ok((Outcome::Fail(why), Counts::default(), boot));
    };
    let (outcome, counts) = parse_verdict(&verdict);
    Ok((outcome, counts, boot))
}

/// Where a guest that timed out was: the test binary it ran and libtest's
/// last test line, so a hang in CI names its test without the console log.
fn where_stuck(console: &str) -> String {
    let Some(at) = console.rfind("VMTEST-RUN: ") else {
        return " before the first test binary started".into();
    };
    let run = &console[at..];
    let binary = run.lines().next().unwrap_or_default().trim();
    match run
        .lines()
        .rev()
        .find(|l| l.starts_with("test ") && !l.starts_with("test result:"))
    {
        Some(test) => format!(" in {binary}, last test line: {}", test.trim()),
        None => format!(" in {binary}, before its first test"),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Panic {
    /// The oops names a BPF program or helper: the sensor's doing.
    InBpf(String),
    /// Nothing of BPF in the oops.
    Elsewhere(String),
}

/// Reads a guest console for a kernel panic and where it happened (the
/// oops's `RIP:` line).
fn classify_panic(console: &str) -> Option<Panic> {
    let panic_at = console.find("Kernel panic - not syncing")?;
    // The oops runs from its first "BUG:"/"Oops:"/"invalid opcode" (or the
    // first call trace) to the panic line.
    let head = &console[..panic_at];
    let oops_start = [
        "BUG:",
        "Oops:",
        "invalid opcode",
        "general protection",
        "Call Trace:",
    ]
    .iter()
    .filter_map(|m| head.find(m))
    .min()
    .unwrap_or(0);
    let oops = &head[oops_start..];
    let at = oops
        .lines()
        .rev()
        .find_map(|l| {
            l.split_once("RIP: 0010:")
                .map(|(_, r)| r.trim().to_string())
        })
        .unwrap_or_else(|| "unknown RIP".into());
    if oops.contains("bpf_prog_") || oops.contains("bpf_trace_run") || oops.contains(" bpf_") {
        Some(Panic::InBpf(at))
    } else {
        Some(Panic::Elsewhere(at))
    }
}

/// Parses `PASS 5 passed, 0 failed` / `FAIL 3 passed, 1 failed (...)`.
fn parse_verdict(v: &str) -> (Outcome, Counts) {
    let mut counts = Counts::default();
    let words: Vec<&str> = v.split_whitespace().collect();
    for pair in words.windows(2) {
        let n = pair[0].parse().unwrap_or(0);
        match pair[1].trim_end_matches([',', ';']) {
            "passed" => counts.passed = n,
            "failed" => counts.failed = n,
            _ => {}
        }
    }
    let outcome = if words.first() == Some(&"PASS") && counts.failed == 0 {
        Outcome::Pass
    } else {
        Outcome::Fail(v.to_string())
    };
    (outcome, counts)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn print_table(results: &[VmResult]) {
    println!();
    println!(
        "{:<34} {:<6} {:>7} {:>7} {:>8} {:>8}",
        "kernel", "result", "passed", "failed", "boot", "total"
    );
    for r in results {
        println!(
            "{:<34} {:<6} {:>7} {:>7} {:>8} {:>8}",
            r.kernel,
            match r.outcome {
                Outcome::Pass => "PASS",
                Outcome::Fail(_) => "FAIL",
            },
            r.counts.passed,
            r.counts.failed,
            r.boot.map(fmt_dur).unwrap_or_else(|| "-".into()),
            fmt_dur(r.total)
        );
    }
    for r in results {
        if let Outcome::Fail(why) = &r.outcome {
            println!("  {}: {why} (log: {})", r.kernel, r.log.display());
        }
        if let Some(why) = &r.retried {
            println!("  {}: booted twice; {why}", r.kernel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let (o, c) = parse_verdict("PASS 5 passed, 0 failed");
        assert!(matches!(o, Outcome::Pass));
        assert_eq!((c.passed, c.failed), (5, 0));
        let (o, c) = parse_verdict("FAIL 3 passed, 1 failed (failing: /tests/e2e(rc=101))");
        assert!(matches!(o, Outcome::Fail(_)));
        assert_eq!((c.passed, c.failed), (3, 1));
        let (o, _) = parse_verdict("PASS 3 passed, 2 failed");
        assert!(matches!(o, Outcome::Fail(_)), "failures override PASS");
    }

    #[test]
    fn the_guest_e2e_script_parses_as_sh() {
        let script = e2e_script(&["container".into()]);
        let mut sh = Command::new("sh")
            .arg("-n")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        sh.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(sh.wait().unwrap().success(), "sh -n rejected:\n{script}");
        assert!(script.contains("limit=420"), "{script}");
    }

    #[test]
    fn a_timed_out_guest_names_the_binary_and_the_test_it_was_in() {
        let console = "VMTEST-RUN: /tests/a\ntest one ... ok\ntest result: ok. 1 passed\n\
                       VMTEST-RUN: /tests/b\ntest two ... ok\ntest three ... \n[ 9.1] audit: x\n";
        assert_eq!(
            where_stuck(console),
            " in VMTEST-RUN: /tests/b, last test line: test three ..."
        );
        assert_eq!(
            where_stuck("VMTEST-RUN: /tests/b\nrunning 2 tests\n"),
            " in VMTEST-RUN: /tests/b, before its first test"
        );
        assert_eq!(
            where_stuck("[ 1.0] booting\n"),
            " before the first test binary started"
        );
    }

    const OOPS_ELSEWHERE: &str = "\
[  362.35] Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
[  362.35] RIP: 0010:inet_ehashfn+0x33/0x110
[  362.35] Call Trace:
[  362.35]  __inet_lookup_established+0x4c/0x1a0
[  362.35]  tcp_v4_rcv+0x8a3/0x1050
[  362.35] RIP: 0010:inet_ehashfn+0x33/0x110
[  362.35] Kernel panic - not syncing: Fatal exception in interrupt
";

    #[test]
    fn a_panic_with_no_bpf_on_the_stack_is_the_emulators() {
        assert_eq!(
            classify_panic(OOPS_ELSEWHERE),
            Some(Panic::Elsewhere("inet_ehashfn+0x33/0x110".into()))
        );
    }

    #[test]
    fn a_panic_in_a_bpf_program_is_ours() {
        let oops = OOPS_ELSEWHERE.replace(
            "tcp_v4_rcv+0x8a3/0x1050",
            "bpf_prog_6deef7357e7b4530_sensor_exec+0x2f/0x9a0",
        );
        assert!(matches!(classify_panic(&oops), Some(Panic::InBpf(_))));
    }

    #[test]
    fn a_console_without_a_panic_is_not_retried() {
        assert_eq!(
            classify_panic("VMTEST-RUN: /tests/x\ntest a ... ok\n"),
            None
        );
    }

    #[test]
    fn e2e_script_quotes_filters() {
        let args = VmTestArgs {
            kernels: vec![],
            payload: PayloadKind::Auto,
            skips: vec!["container".into(), "it's".into()],
            only: Some("lsm".into()),
            timeout_secs: 1,
            kvm: false,
            host: false,
            quiet: true,
        };
        let s = e2e_script(&args.test_filters());
        assert!(s.contains("--test-threads=1 '--skip' 'container' '--skip' 'its' 'lsm'"));
    }
}
