//! `cargo xtask`: the project's one entry point for setting up a machine,
//! building, running, testing (including the VM kernel matrix),
//! benchmarking and generating the deployment manifests.
//!
//! This file only parses the command line; each subcommand lives in its own
//! module.

mod bench;
mod build;
mod deploy;
mod e2e;
mod initramfs;
mod kernels;
mod run;
mod setup;
mod test;
mod util;
mod vm;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, run, test and ship the eBPF process sensor.",
    after_help = "Fresh Debian/Ubuntu machine, as root: `cargo xtask run` runs the sensor with the \
                  shipped rules, `cargo xtask test` runs the whole suite. Both install whatever is \
                  missing first."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need (apt packages, nightly
    /// rust-src, bpf-linker, podman config, the manifest validator).
    /// Idempotent: each step checks first and only installs what is missing.
    Setup(setup::SetupArgs),
    /// Check the toolchain, then build the agent (its build script compiles
    /// the eBPF object).
    Build(build::BuildArgs),
    /// Set up, build the release agent and run it as root with the shipped
    /// rules; NDJSON goes to stdout. Arguments after `--` replace the default
    /// agent arguments.
    Run(run::RunArgs),
    /// The whole suite (what CI runs): setup, fmt, clippy, unit tests, rule
    /// checks, manifest checks, end-to-end tests on this kernel, then the VM
    /// kernel matrix.
    Test(test::TestArgs),
    /// Boot real distribution kernels in QEMU with an initramfs holding the
    /// agent and the kernel-tier end-to-end tests; fails if any guest fails.
    VmTest(vm::VmTestArgs),
    /// Measure overhead, latency, memory and CPU against baselines; writes
    /// target/bench/results.md.
    Bench(bench::BenchArgs),
    /// Regenerate deploy/rules-configmap.yaml from rules/*.toml (or, with
    /// --check, fail if it is out of date).
    DeployManifests(deploy::ManifestArgs),
    /// Validate deploy/*.yaml against the Kubernetes OpenAPI schema
    /// (kubernetes-validate from PyPI, installed by setup).
    ValidateManifests,
    /// Internal: the exec-storm driver used by `bench` (fork+exec a command
    /// N times and print the wall time).
    #[command(hide = true)]
    ExecStorm(bench::StormArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup(a) => setup::run(&a),
        Cmd::Build(a) => build::run(&a).map(|_: PathBuf| ()),
        Cmd::Run(a) => run::run(&a),
        Cmd::Test(a) => test::run(&a),
        Cmd::VmTest(a) => vm::run(&a),
        Cmd::Bench(a) => bench::run(&a),
        Cmd::DeployManifests(a) => deploy::manifests(&a),
        Cmd::ValidateManifests => deploy::validate(),
        Cmd::ExecStorm(a) => bench::exec_storm_cmd(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
