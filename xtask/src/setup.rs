//! `cargo xtask setup`: installs what the project needs on a fresh Debian
//! (bookworm) machine, idempotently. Every step checks first and prints one
//! line; nothing is downloaded except through apt, rustup, cargo and pip by
//! name.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::util::{self, probe};

/// Debian packages, grouped by what needs them. This is the one list to
/// extend when the project needs another package.
pub const APT_PACKAGES: &[(Profile, &str, &str)] = &[
    // bpf-linker links against LLVM 22, the LLVM of the nightly that builds the eBPF crate.
    (Profile::Build, "llvm-22-dev", "bpf-linker"),
    (Profile::Build, "libpolly-22-dev", "bpf-linker"),
    (Profile::Build, "libzstd-dev", "bpf-linker"),
    (Profile::Build, "zlib1g-dev", "bpf-linker"),
    (Profile::Build, "gcc", "host linker"),
    // Real containers in the end-to-end tests (podman + runc; crun refuses
    // hybrid cgroups) and containerd for the CRI path.
    (Profile::Test, "podman", "container tests"),
    (Profile::Test, "runc", "container tests"),
    (
        Profile::Test,
        "busybox-static",
        "container rootfs and VM initramfs",
    ),
    (Profile::Test, "containerd", "container tests"),
    // A real curl binary in the test containers (sequence rules).
    (Profile::Test, "curl", "container tests"),
    // The VM kernel matrix.
    (Profile::Test, "cpio", "VM initramfs inspection"),
    (Profile::Test, "qemu-system-x86", "VM kernel matrix"),
    // Baselines for `cargo xtask bench`.
    (Profile::Test, "bpftrace", "bench baseline"),
    (Profile::Test, "libbpf-tools", "bench baseline"),
    // `script` gives tests a real pty (util-linux/bsdutils).
    (Profile::Test, "util-linux", "pty tests"),
    (Profile::Test, "bsdutils", "pty tests (script)"),
    // kubernetes-validate (PyPI) checks deploy/ against the OpenAPI schema.
    (Profile::Test, "python3-pip", "manifest validator"),
];

/// bpf-linker release line known to build with llvm-22 here.
const BPF_LINKER_SERIES: &str = "0.13.";
const BPF_LINKER_VERSION_REQ: &str = "~0.13";

/// kubernetes-validate bundles the Kubernetes OpenAPI schemas, so the
/// validation runs offline once installed.
const VALIDATOR_REQ: &str = "kubernetes-validate>=1.28,<2";

const CONTAINERS_CONF: &str = "/etc/containers/containers.conf";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Profile {
    /// What building the agent needs (also what the Containerfile uses).
    Build,
    /// Everything: build plus tests, VMs, benchmarks and the validator.
    Test,
}

#[derive(Args)]
pub struct SetupArgs {
    /// How much to install.
    #[arg(long, value_enum, default_value = "test")]
    pub only: Profile,
}

pub fn run(args: &SetupArgs) -> Result<()> {
    ensure(args.only)
}

/// Installs whatever `profile` needs and is missing.
pub fn ensure(profile: Profile) -> Result<()> {
    apt_packages(profile)?;
    nightly_rust_src()?;
    if profile == Profile::Test {
        lint_components()?;
    }
    bpf_linker()?;
    if profile == Profile::Test {
        containers_conf()?;
        validator()?;
    }
    Ok(())
}

fn apt_packages(profile: Profile) -> Result<()> {
    let wanted: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(p, _, _)| *p <= profile)
        .map(|(_, name, _)| *name)
        .collect();
    let missing = missing_packages(&wanted)?;
    if missing.is_empty() {
        println!("setup: apt packages present ({})", wanted.len());
        return Ok(());
    }
    println!("setup: installing apt packages: {}", missing.join(" "));
    util::require_root("installing apt packages")?;
    util::run(Command::new("apt-get").args(["update", "-q"]))?;
    util::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn missing_packages(wanted: &[&str]) -> Result<Vec<String>> {
    // dpkg-query exits non-zero when a name is unknown, yet still prints the
    // known ones, so read stdout regardless of the status.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Status}\\n"])
        .args(wanted)
        .stderr(Stdio::null())
        .output()
        .context("dpkg-query not found: setup supports Debian/Ubuntu machines only")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_suffix(" installed"))
        .collect();
    Ok(wanted
        .iter()
        .filter(|w| !installed.contains(w))
        .map(|w| w.to_string())
        .collect())
}

fn nightly_rust_src() -> Result<()> {
    if probe("rustup", &["--version"]).is_none() {
        bail!(
            "rustup not found: the eBPF crate builds with a rustup-managed nightly; install rustup \
             (https://rustup.rs or your distribution's package) and re-run"
        );
    }
    let toolchains = probe("rustup", &["toolchain", "list"]).unwrap_or_default();
    if !toolchains.lines().any(|l| l.starts_with("nightly")) {
        println!("setup: installing the nightly toolchain (for the eBPF crate)");
        util::run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    let comps = probe(
        "rustup",
        &["component", "list", "--toolchain", "nightly", "--installed"],
    )
    .unwrap_or_default();
    if comps.lines().any(|l| l.trim() == "rust-src") {
        println!("setup: nightly rust-src present");
        return Ok(());
    }
    println!("setup: installing nightly rust-src");
    util::run(Command::new("rustup").args([
        "component",
        "add",
        "rust-src",
        "--toolchain",
        "nightly",
    ]))
}

fn lint_components() -> Result<()> {
    let have = |sub: &str| {
        util::cargo()
            .args([sub, "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if have("clippy") && have("fmt") {
        println!("setup: clippy and rustfmt present");
        return Ok(());
    }
    println!("setup: installing clippy and rustfmt");
    util::run(Command::new("rustup").args(["component", "add", "clippy", "rustfmt"]))
}

fn bpf_linker() -> Result<()> {
    let version = probe("bpf-linker", &["--version"]).unwrap_or_default();
    let version = version.trim();
    if let Some(v) = version.strip_prefix("bpf-linker ")
        && v.starts_with(BPF_LINKER_SERIES)
    {
        println!("setup: bpf-linker {v} present");
        return Ok(());
    }
    if version.is_empty() {
        println!(
            "setup: installing bpf-linker {BPF_LINKER_VERSION_REQ} (builds against llvm-22, ~1-2 min)"
        );
    } else {
        println!("setup: replacing `{version}` with bpf-linker {BPF_LINKER_VERSION_REQ}");
    }
    util::run(
        util::cargo()
            .args(["install", "bpf-linker", "--version", BPF_LINKER_VERSION_REQ])
            .args(["--no-default-features", "--features", "llvm-22", "--force"])
            .env("LLVM_PREFIX", "/usr/lib/llvm-22")
            // Its own target dir: the workspace's may hold a different profile,
            // and CI's fresh clone should not carry linker objects around.
            .env(
                "CARGO_TARGET_DIR",
                util::target_dir().join("bpf-linker-build"),
            ),
    )
}

fn containers_conf() -> Result<()> {
    let path = std::path::Path::new(CONTAINERS_CONF);
    if path.exists() {
        println!("setup: {CONTAINERS_CONF} present");
        return Ok(());
    }
    println!("setup: writing {CONTAINERS_CONF} (default_ulimits = [], no CAP_SYS_RESOURCE here)");
    util::require_root("writing /etc/containers/containers.conf")?;
    std::fs::create_dir_all(path.parent().expect("has parent"))?;
    // Podman's default rlimits need CAP_SYS_RESOURCE, which sandboxed VMs
    // like CI's lack; an empty list makes containers inherit ours.
    std::fs::write(path, "[containers]\ndefault_ulimits = []\n")
        .with_context(|| format!("writing {CONTAINERS_CONF}"))
}

/// Where pip installs kubernetes-validate: inside the target dir, so the
/// system Python stays untouched (Debian marks it externally managed) and a
/// fresh clone gets its own copy.
pub fn validator_dir() -> PathBuf {
    util::target_dir().join("tools").join("python")
}

/// A `python3` command that can import kubernetes_validate.
pub fn validator_python() -> Command {
    let mut cmd = Command::new("python3");
    cmd.env("PYTHONPATH", validator_dir());
    cmd
}

fn validator_present() -> bool {
    validator_python()
        .args(["-c", "import kubernetes_validate"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn validator() -> Result<()> {
    if validator_present() {
        println!("setup: kubernetes-validate present");
        return Ok(());
    }
    println!(
        "setup: installing {VALIDATOR_REQ} with pip into {}",
        validator_dir().display()
    );
    util::run(
        Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--upgrade", "--target"])
            .arg(validator_dir())
            .arg(VALIDATOR_REQ),
    )?;
    if !validator_present() {
        bail!("kubernetes-validate installed but `import kubernetes_validate` still fails");
    }
    Ok(())
}
