//! `cargo xtask build`: the agent binary, with the eBPF object embedded
//! (sensor-agent's build script compiles sensor-ebpf via aya-build, which is
//! why the nightly rust-src and bpf-linker checks run first).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::{
    setup::{self, Profile},
    util,
};

#[derive(Args)]
pub struct BuildArgs {
    /// Optimised build (what `run`, the VM tests and the image use).
    #[arg(long)]
    pub release: bool,
}

/// Builds the agent and returns the path of the binary.
pub fn run(args: &BuildArgs) -> Result<PathBuf> {
    setup::ensure(Profile::Build)?;
    agent(args.release)
}

/// Builds the agent without the setup check (for callers that ran it).
pub fn agent(release: bool) -> Result<PathBuf> {
    let mut cmd = util::cargo();
    cmd.args([
        "build",
        "--package",
        "sensor-agent",
        "--bin",
        "sensor-agent",
    ]);
    if release {
        cmd.arg("--release");
    }
    util::run(&mut cmd)?;
    let bin = agent_path(release);
    if !bin.exists() {
        bail!("cargo build succeeded but {} is missing", bin.display());
    }
    Ok(bin)
}

pub fn agent_path(release: bool) -> PathBuf {
    util::target_dir()
        .join(if release { "release" } else { "debug" })
        .join("sensor-agent")
}
