//! `cargo xtask run`: set up, build the release agent and run it as root
//! with the shipped rules. NDJSON goes to stdout, logs to stderr.

use std::{ffi::OsString, os::unix::process::CommandExt, process::Command};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{
    build,
    setup::{self, Profile},
    util,
};

#[derive(Args)]
pub struct RunArgs {
    /// Arguments for `sensor-agent run` (default: `--rules rules/`).
    #[arg(last = true)]
    pub agent_args: Vec<OsString>,
}

pub fn run(args: &RunArgs) -> Result<()> {
    util::require_root("the sensor (loading eBPF programs)")?;
    setup::ensure(Profile::Build)?;
    let bin = build::agent(true)?;
    let mut cmd = Command::new(&bin);
    cmd.current_dir(util::root()).arg("run");
    if args.agent_args.is_empty() {
        cmd.arg("--rules").arg(util::root().join("rules"));
    } else {
        cmd.args(&args.agent_args);
    }
    eprintln!(
        "xtask: {} (Ctrl-C stops it and prints the summary)",
        util::show(&cmd)
    );
    // Ctrl-C reaches the whole process group. The agent handles it (detach,
    // summary); xtask ignores it so it waits for that summary and reports the
    // agent's exit status instead of returning the prompt first. The child
    // gets the default disposition back before exec.
    // SAFETY: signal() with SIG_IGN/SIG_DFL has no preconditions and is
    // async-signal-safe, so it is allowed between fork and exec.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    if !status.success() {
        bail!("sensor-agent exited with {status}");
    }
    Ok(())
}
