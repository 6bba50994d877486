//! `cargo xtask test`: the project's whole test suite, and what `.ci/run`
//! calls. Stages run in order with a progress line and duration each; a
//! failed stage does not stop independent later ones (so one run shows every
//! problem), but stages that need the release build are skipped when it
//! fails. Exits non-zero if any stage failed.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use clap::Args;

use crate::{
    build, deploy,
    e2e::e2e_host,
    setup::{self, Profile},
    util::{self, Counts, fmt_dur},
    vm::{self, Outcome, PayloadKind, VmTestArgs},
};

#[derive(Args)]
pub struct TestArgs {
    /// Skip the VM kernel matrix (it is the slowest stage).
    #[arg(long)]
    pub no_vm: bool,

    /// Kernels for the VM matrix (default: Debian 5.10, 6.1, 6.12 and 6.19); see
    /// `cargo xtask vm-test --help`.
    #[arg(long = "kernel", value_name = "DEB|VMLINUZ|SERIES")]
    pub kernels: Vec<String>,
}

enum Status {
    Pass,
    Fail(String),
    Skipped(String),
}

struct Stage {
    name: String,
    status: Status,
    time: Duration,
    counts: Option<Counts>,
}

#[derive(Default)]
struct Suite {
    stages: Vec<Stage>,
}

impl Suite {
    /// Runs one stage. `f` records the test counts it saw (kept even when
    /// the stage fails).
    fn stage(&mut self, name: &str, f: impl FnOnce(&mut Option<Counts>) -> Result<()>) -> bool {
        let n = self.stages.len() + 1;
        println!("\n==> [{n}] {name}");
        let start = Instant::now();
        let mut counts = None;
        let status = match f(&mut counts) {
            Ok(()) => Status::Pass,
            Err(e) => Status::Fail(format!("{e:#}")),
        };
        let time = start.elapsed();
        let ok = matches!(status, Status::Pass);
        match &status {
            Status::Pass => println!("<== [{n}] {name}: ok ({})", fmt_dur(time)),
            Status::Fail(why) => println!("<== [{n}] {name}: FAILED ({}): {why}", fmt_dur(time)),
            Status::Skipped(_) => {}
        }
        self.stages.push(Stage {
            name: name.into(),
            status,
            time,
            counts,
        });
        ok
    }

    /// Records a stage that ran elsewhere (the VM guests run in parallel).
    fn record(&mut self, name: &str, status: Status, time: Duration, counts: Option<Counts>) {
        self.stages.push(Stage {
            name: name.into(),
            status,
            time,
            counts,
        });
    }

    fn skip(&mut self, name: &str, why: &str) {
        println!("\n==> {name}: skipped ({why})");
        self.stages.push(Stage {
            name: name.into(),
            status: Status::Skipped(why.into()),
            time: Duration::ZERO,
            counts: None,
        });
    }

    fn summary(&self, total: Duration) -> bool {
        println!(
            "\n{:<40} {:<8} {:>9} {:>7}",
            "stage", "result", "time", "tests"
        );
        let mut counts = Counts::default();
        let mut ok = true;
        for s in &self.stages {
            let result = match &s.status {
                Status::Pass => "ok",
                Status::Fail(_) => {
                    ok = false;
                    "FAILED"
                }
                Status::Skipped(_) => "skipped",
            };
            let tests = s
                .counts
                .map(|c| format!("{}/{}", c.passed, c.passed + c.failed))
                .unwrap_or_default();
            if let Some(c) = s.counts {
                counts.add(c);
            }
            println!(
                "{:<40} {:<8} {:>9} {:>7}",
                s.name,
                result,
                fmt_dur(s.time),
                tests
            );
        }
        for s in &self.stages {
            match &s.status {
                Status::Fail(why) => println!("  {}: {why}", s.name),
                Status::Skipped(why) => println!("  {}: skipped: {why}", s.name),
                Status::Pass => {}
            }
        }
        println!("total time {}", fmt_dur(total));
        // libtest-style closing line over every test counted above.
        println!("tests: {} passed, {} failed", counts.passed, counts.failed);
        ok
    }
}

/// Runs a cargo test command, records its counts, and turns a non-zero exit
/// (failed tests or a build error) into an error.
fn counted(cmd: &mut Command, out: &mut Option<Counts>) -> Result<()> {
    let (status, counts) = util::run_counting(cmd)?;
    *out = Some(counts);
    if !status.success() {
        bail!(
            "{status}: {} passed, {} failed (a build error shows above if both are 0)",
            counts.passed,
            counts.failed
        );
    }
    Ok(())
}

pub fn run(args: &TestArgs) -> Result<()> {
    util::require_root("the test suite (end-to-end tests load eBPF programs)")?;
    let start = Instant::now();
    let mut suite = Suite::default();

    if !suite.stage("setup", |_| setup::ensure(Profile::Test)) {
        suite.summary(start.elapsed());
        bail!("setup failed; nothing else can run");
    }
    suite.stage("cargo fmt --check", |_| {
        util::run(util::cargo().args(["fmt", "--all", "--", "--check"]))
            .map_err(|e| e.context("formatting differs: run `cargo fmt --all`"))
    });
    suite.stage("clippy (host crates)", |_| {
        util::run(util::cargo().args([
            "clippy",
            "--workspace",
            "--exclude",
            "sensor-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        Ok(())
    });
    suite.stage("clippy (sensor-ebpf, bpfel)", |_| {
        // The kernel crate is no_std for bpfel-unknown-none only; check it
        // the way aya-build compiles it, in its own target dir so the host
        // builds' locks and caches are not disturbed.
        util::run(
            Command::new("cargo")
                .current_dir(util::root())
                .args([
                    "+nightly",
                    "clippy",
                    "--package",
                    "sensor-ebpf",
                    "--target",
                    "bpfel-unknown-none",
                    "-Z",
                    "build-std=core",
                    "--",
                    "-D",
                    "warnings",
                ])
                .env("CARGO_TARGET_DIR", util::target_dir().join("ebpf-check"))
                .env_remove("RUSTUP_TOOLCHAIN"),
        )?;
        Ok(())
    });
    suite.stage("unit tests (cargo test --workspace)", |c| {
        counted(
            util::cargo().args([
                "test",
                "--workspace",
                "--no-fail-fast",
                "--exclude",
                "sensor-ebpf",
                "--exclude",
                "sensor-tests",
            ]),
            c,
        )
    });
    suite.stage("deploy manifests up to date + schema", |_| {
        deploy::check_up_to_date()?;
        deploy::validate()
    });
    let built = suite.stage("release build (sensor-agent)", |_| {
        build::agent(true).map(|_| ())
    });
    if built {
        let agent = build::agent_path(true);
        let rules = util::root().join("rules");
        suite.stage("sensor-agent rules check rules/", |_| {
            util::run(Command::new(&agent).args(["rules", "check"]).arg(&rules))
        });
        suite.stage("sensor-agent rules test rules/", |_| {
            util::run(Command::new(&agent).args(["rules", "test"]).arg(&rules))
        });
        suite.stage(
            &format!("end-to-end tests (host {})", vm::host_kernel()),
            |c| {
                let (ok, counts) = e2e_host()?;
                *c = Some(counts);
                if !ok {
                    bail!("{} passed, {} failed", counts.passed, counts.failed);
                }
                Ok(())
            },
        );
    } else {
        for s in ["rules check", "rules test", "end-to-end tests", "vm-test"] {
            suite.skip(s, "release build failed");
        }
    }

    if built && !args.no_vm {
        let vm_args = VmTestArgs {
            kernels: args.kernels.clone(),
            payload: PayloadKind::Auto,
            skips: vec!["container".into()],
            only: None,
            timeout_secs: crate::vm::GUEST_TIMEOUT_SECS,
            kvm: false,
            host: false,
            quiet: false,
        };
        let mut prepared = None;
        suite.stage("vm-test: kernels and initramfs", |_| {
            prepared = Some(vm::prepare(&vm_args)?);
            Ok(())
        });
        let mut results = Vec::new();
        if let Some((kernels, initrd)) = &prepared {
            println!(
                "\n==> vm-test: {} kernels, {} at a time",
                kernels.len(),
                vm::PARALLEL_GUESTS
            );
            results = vm::boot_all(kernels, initrd, &vm_args);
            for r in &results {
                let status = match &r.outcome {
                    Outcome::Pass => Status::Pass,
                    Outcome::Fail(why) => Status::Fail(format!("{why} (log: {})", r.log.display())),
                };
                suite.record(
                    &format!("vm-test {}", r.kernel),
                    status,
                    r.total,
                    Some(r.counts),
                );
            }
        }
        if !results.is_empty() {
            vm::print_table(&results);
        }
    } else if args.no_vm {
        suite.skip("vm-test", "--no-vm");
    }

    if !suite.summary(start.elapsed()) {
        bail!("some stages failed (see the table above)");
    }
    Ok(())
}
