//! Kernel capture: resolve offsets from BTF, load and attach the eBPF
//! programs, and hand out the ring buffer and drop counters.

pub mod btf;
pub mod cgroup;
pub mod file_hooks;
pub mod file_watch;
pub mod loader;
pub mod offsets;
pub mod reader;

pub use loader::{
    AttachMode, CaptureOptions, DropCounts, ProgramStats, ReaderState, Sensor, enable_program_stats,
};

/// `sensor-agent offsets`: what this kernel's BTF resolves to, for support.
pub fn print_offsets(out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let btf = btf::Btf::from_sys_fs()?;
    let (config, hierarchy) = loader::resolve_config(&btf, &CaptureOptions::default())?;
    writeln!(
        out,
        "cgroup hierarchy: {hierarchy} (subsys index {})",
        config.cgroup_subsys_idx
    )?;
    writeln!(out, "{:#?}", config.offsets)?;
    Ok(())
}
