//! Small helpers shared by the subcommands: where things are, running
//! commands with a visible trace, and formatting durations.

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};

/// The workspace root (xtask lives one level below it).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
}

/// Cargo's target directory, honouring CARGO_TARGET_DIR like cargo does.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

/// A `cargo` command in the workspace root, using the same cargo that runs
/// xtask (so `cargo +toolchain xtask` stays consistent).
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root());
    cmd
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Fails with a message saying what to do when not running as root.
pub fn require_root(what: &str) -> Result<()> {
    if !is_root() {
        bail!(
            "{what} needs root (BPF, apt, qemu payloads); re-run as root, e.g. `sudo -E cargo xtask ...`"
        );
    }
    Ok(())
}

/// Renders a command line for progress output.
pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.is_empty() || a.contains([' ', '"', '\'', '$']) {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Runs a command with inherited stdio; fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    println!("  $ {}", show(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    check(cmd, status)
}

pub fn check(cmd: &Command, status: ExitStatus) -> Result<()> {
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout; stderr is passed through.
pub fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    check(cmd, out.status)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command quietly and returns stdout if it exits 0, None otherwise
/// (including when the program does not exist). For "is it there?" checks.
pub fn probe<S: AsRef<OsStr>>(program: S, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Totals from libtest's `test result:` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
    }

    /// Parses one libtest summary line, e.g.
    /// `test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; ...`.
    pub fn parse_line(line: &str) -> Option<Counts> {
        let rest = line.trim().strip_prefix("test result: ")?;
        let rest = rest.split_once(". ")?.1;
        let mut c = Counts::default();
        for part in rest.split(';') {
            let mut it = part.split_whitespace();
            let (Some(n), Some(what)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => c.passed = n,
                "failed" => c.failed = n,
                "ignored" => c.ignored = n,
                _ => {}
            }
        }
        Some(c)
    }
}

/// Runs a test command, echoing its stdout live while summing libtest's
/// result lines. Returns the exit status with the counts so a caller can
/// report both.
pub fn run_counting(cmd: &mut Command) -> Result<(ExitStatus, Counts)> {
    println!("  $ {}", show(cmd));
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    let mut counts = Counts::default();
    let stdout = child.stdout.take().expect("piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap_or_default();
        println!("{line}");
        if let Some(c) = Counts::parse_line(&line) {
            counts.add(c);
        }
    }
    Ok((child.wait()?, counts))
}

pub fn fmt_dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_summary() {
        let c = Counts::parse_line(
            "test result: ok. 12 passed; 3 failed; 1 ignored; 0 measured; 4 filtered out; finished in 0.01s",
        )
        .unwrap();
        assert_eq!(
            c,
            Counts {
                passed: 12,
                failed: 3,
                ignored: 1
            }
        );
        assert!(Counts::parse_line("running 3 tests").is_none());
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_dur(Duration::from_millis(3400)), "3.4s");
        assert_eq!(fmt_dur(Duration::from_secs(62)), "1m02s");
    }
}
