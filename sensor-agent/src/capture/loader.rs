//! Loads the embedded eBPF object with the resolved configuration and
//! attaches each hook: tp_btf first, raw_tp when tp_btf will not load.

use anyhow::{Context, anyhow};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData, PerCpuArray, ProgramArray, RingBuf},
    programs::{BtfTracePoint, RawTracePoint},
};
use sensor_common::{
    CGROUP_V2_DEFAULT, CONFIG_GLOBAL, CONFIG_MAGIC, DROP_COUNTERS, DROP_EXEC, DROP_EXIT, DROP_FORK,
    DROP_SCRATCH, DROPS_MAP, EVENTS_MAP, KernelOffsets, MAX_ARGS_BYTES, READER_ASLEEP, READER_MAP,
    SensorConfig,
};
use tracing::{debug, info, warn};

use crate::kind::{Kind, PerKind};

use super::{
    btf::Btf,
    cgroup::{self, CgroupHierarchy},
    offsets,
};

/// The compiled kernel programs, built by build.rs through aya-build.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sensor"));

/// Drops the embedded object's pages from the agent's resident set once the
/// programs are loaded: 2.2 MB of rodata read once at start-up, which would
/// otherwise stay in RSS for the agent's lifetime. The mapping is private,
/// read-only and file-backed, so a later read (none is made) would fault the
/// same bytes back in from the binary.
pub fn release_object_pages() {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => return,
    };
    let start = EBPF_OBJECT.as_ptr() as usize;
    let first = start.div_ceil(page) * page;
    let last = (start + EBPF_OBJECT.len()) / page * page;
    if last <= first {
        return;
    }
    // SAFETY: the range lies inside EBPF_OBJECT's pages, which are never
    // written; MADV_DONTNEED on a private file mapping only unmaps them.
    let rc = unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            last - first,
            libc::MADV_DONTNEED,
        )
    };
    if rc != 0 {
        debug!(error = %std::io::Error::last_os_error(), "madvise of the eBPF object's pages");
    }
}

#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// argv bytes captured per exec (capped at the ABI maximum).
    pub max_args_bytes: u32,
    /// Environment bytes captured per exec (0: none).
    pub max_env_bytes: u32,
    /// aya-log level of the kernel programs' diagnostics (0: off, 4:
    /// debug, 5: trace), fixed at load so the verifier drops what is off.
    pub kernel_log_level: u8,
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub ring_bytes: u32,
    /// `None` picks automatically from /proc/cgroups.
    pub cgroup: Option<CgroupHierarchy>,
    /// Attach the tp_btf programs (raw_tp when they will not load) instead
    /// of the raw_tp ones. Both read the same fields through the same
    /// offsets at the same cost; tp_btf needs aya's own parse of the kernel
    /// BTF, which raised the start-up peak from 32 to 46 MiB (VmHWM).
    pub tp_btf: bool,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            max_args_bytes: MAX_ARGS_BYTES as u32,
            max_env_bytes: 0,
            kernel_log_level: 0,
            ring_bytes: sensor_common::RING_BYTES,
            cgroup: None,
            tp_btf: false,
        }
    }
}

/// How a hook ended up attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    TpBtf,
    RawTp,
    /// A perf-event tracepoint (the syscall tracepoints of the file hooks).
    Tracepoint,
    /// A BPF LSM hook (file opens, where the kernel runs BPF LSM).
    Lsm,
}

/// Events lost in the kernel because the ring buffer was full, per kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub by_kind: PerKind<u64>,
    /// Exec records lost because the scratch buffer lookup failed.
    pub scratch: u64,
}

impl DropCounts {
    pub fn total(&self) -> u64 {
        self.by_kind.iter().map(|(_, n)| n).sum::<u64>() + self.scratch
    }
}

/// Tells the kernel programs whether the agent sleeps until woken (they
/// then wake it) or polls the ring on its own timer (they do not).
pub struct ReaderState(Array<MapData, u32>);

impl ReaderState {
    pub fn set_asleep(&mut self, asleep: bool) -> anyhow::Result<()> {
        let v = if asleep { READER_ASLEEP } else { 0 };
        self.0
            .set(0, v, 0)
            .context("cannot update the reader-state map")
    }
}

/// Kernel-side cost of one hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramStats {
    pub hook: &'static str,
    pub run_time: std::time::Duration,
    pub runs: u64,
}

/// Turns on the kernel's per-program run-time accounting (BPF_ENABLE_STATS)
/// for as long as the returned fd lives. It costs two clock reads per
/// program run, so it is opt-in.
pub fn enable_program_stats() -> anyhow::Result<std::os::fd::OwnedFd> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .map_err(|e| anyhow!("cannot enable BPF run-time statistics: {e}"))
}

/// The loaded, attached programs. Dropping it detaches everything.
pub struct Sensor {
    ebpf: Ebpf,
    pub modes: Vec<(&'static str, AttachMode)>,
    pub cgroup: CgroupHierarchy,
    pub offsets: KernelOffsets,
}

/// Executable-path walk depths to try, deepest first. Verifier limits vary
/// by kernel; 0 (no walk: the execve path is reported) always loads.
const EXE_WALK_DEPTHS: &[u32] = &[16, 8, 0];

const HOOKS: &[(&str, &str, &str)] = &[
    // (tracepoint, tp_btf program, raw_tp program)
    ("sched_process_exec", "sensor_exec", "sensor_exec_raw"),
    ("sched_process_fork", "sensor_fork", "sensor_fork_raw"),
    ("sched_process_exit", "sensor_exit", "sensor_exit_raw"),
];

/// The program attached for `hook` in `mode` (the process hooks).
fn program_of(hook: &'static str, mode: AttachMode) -> Option<&'static str> {
    HOOKS
        .iter()
        .find(|(tp, ..)| *tp == hook)
        .map(|&(_, btf, raw)| if mode == AttachMode::TpBtf { btf } else { raw })
}

/// Builds the configuration global from the running kernel's BTF.
pub fn resolve_config(
    btf: &Btf,
    opts: &CaptureOptions,
) -> anyhow::Result<(SensorConfig, CgroupHierarchy)> {
    let mut offsets = offsets::resolve(btf)?;
    match offsets::overlay(btf) {
        Some((vfs_inode, upper)) => {
            offsets.ovl_vfs_inode = vfs_inode;
            offsets.ovl_upperdentry = upper;
        }
        None => info!(
            "overlayfs layout unknown (no ovl_inode in the kernel's BTF, no /sys/kernel/btf/overlay): \
             exec events will not say whether a container binary was written after the container started"
        ),
    }
    let hierarchy = opts.cgroup.clone().unwrap_or_else(cgroup::detect);
    let cgroup_subsys_idx = match &hierarchy {
        CgroupHierarchy::V2 => CGROUP_V2_DEFAULT,
        CgroupHierarchy::V1(c) => offsets::cgroup_subsys_index(btf, c)
            .with_context(|| format!("cgroup controller `{c}` is not known to this kernel"))?,
    };
    Ok((
        SensorConfig {
            offsets,
            cgroup_subsys_idx,
            max_args_bytes: opts.max_args_bytes.min(MAX_ARGS_BYTES as u32),
            max_env_bytes: opts.max_env_bytes.min(sensor_common::MAX_ENV_BYTES as u32),
            magic: CONFIG_MAGIC,
            exe_walk_depth: EXE_WALK_DEPTHS[0],
        },
        hierarchy,
    ))
}

impl Sensor {
    /// Resolves offsets, loads the object and attaches every hook.
    pub fn load(opts: &CaptureOptions) -> anyhow::Result<Self> {
        raise_memlock_limit();
        // Our parse is dropped before aya parses the same BTF: the two
        // together were the start-up peak.
        let (mut config, hierarchy) = resolve_config(&Btf::from_sys_fs()?, opts)?;
        // aya's own parse of the kernel BTF is needed only to load tp_btf
        // programs: the raw_tp ones (the default) read the same fields
        // through our offsets, and the object has no CO-RE relocations.
        let aya_btf = if opts.tp_btf {
            Some(aya::Btf::from_sys_fs().context("cannot load kernel BTF for tp_btf programs")?)
        } else {
            None
        };
        let cpus =
            aya::util::nr_cpus().map_err(|(what, e)| anyhow!("cannot count CPUs ({what}): {e}"))?;

        let mut depths = EXE_WALK_DEPTHS.iter().peekable();
        loop {
            let depth = *depths.next().expect("non-empty");
            config.exe_walk_depth = depth;
            match load_and_attach(&config, opts, aya_btf.as_ref(), cpus as u32) {
                Ok((ebpf, modes)) => {
                    info!(
                        exe_walk_depth = depth,
                        "kernel programs verified and attached"
                    );
                    return Ok(Self {
                        ebpf,
                        modes,
                        cgroup: hierarchy,
                        offsets: config.offsets,
                    });
                }
                Err(e) => match depths.peek() {
                    Some(next) => warn!(
                        "{e:#}\nretrying with a shorter executable-path walk ({depth} -> {next} steps)"
                    ),
                    None => return Err(e),
                },
            }
        }
    }

    /// Takes the ring buffer out (once).
    pub fn take_ring(&mut self) -> anyhow::Result<RingBuf<MapData>> {
        let map = self
            .ebpf
            .take_map(EVENTS_MAP)
            .ok_or_else(|| anyhow!("ring buffer already taken"))?;
        Ok(RingBuf::try_from(map)?)
    }

    /// The reader of the kernel programs' aya-log records, when their
    /// logging is on (`kernel_log_level` > 0); once.
    pub fn take_kernel_logger(
        &mut self,
        level: u8,
    ) -> anyhow::Result<Option<aya_log::EbpfLogger<&'static dyn log::Log>>> {
        if level == 0 {
            return Ok(None);
        }
        Ok(Some(
            aya_log::EbpfLogger::init(&mut self.ebpf)
                .context("cannot read the kernel programs' log")?,
        ))
    }

    /// Loads and attaches the file programs and hands out their watch maps
    /// (once). Done only when something is watched: under emulation their
    /// verification is most of the agent's start-up.
    pub fn attach_file_hooks(
        &mut self,
        way: super::file_hooks::FileHookWay,
    ) -> anyhow::Result<super::file_watch::FileWatch> {
        let file = super::file_hooks::attach(&mut self.ebpf, way)?;
        info!(hooks = ?file, "file hooks attached");
        self.modes.extend(file);
        super::file_watch::FileWatch::take(&mut self.ebpf)
    }

    /// Takes the reader-state flag out (once).
    pub fn take_reader_state(&mut self) -> anyhow::Result<ReaderState> {
        let map = self
            .ebpf
            .take_map(READER_MAP)
            .ok_or_else(|| anyhow!("no {READER_MAP} map (or already taken)"))?;
        Ok(ReaderState(Array::try_from(map)?))
    }

    /// Time the kernel spent in each attached program and how often it ran
    /// (zero unless [`enable_program_stats`] is in force).
    pub fn program_stats(&self) -> Vec<ProgramStats> {
        let stats = |hook: &'static str, prog: &str| {
            let info = self.ebpf.program(prog)?.info().ok()?;
            Some(ProgramStats {
                hook,
                run_time: info.run_time(),
                runs: info.run_count(),
            })
        };
        let process = self
            .modes
            .iter()
            .filter_map(|&(hook, mode)| stats(hook, program_of(hook, mode)?));
        // The file programs are each attached to several tracepoints.
        let file = super::file_hooks::PROGRAMS
            .iter()
            .filter(|_| {
                self.modes
                    .iter()
                    .any(|(_, m)| matches!(m, AttachMode::Tracepoint | AttachMode::Lsm))
            })
            .filter_map(|&(hook, prog)| stats(hook, prog));
        process.chain(file).collect()
    }

    /// Sums the per-CPU drop counters.
    pub fn drops(&self) -> anyhow::Result<DropCounts> {
        let map = self
            .ebpf
            .map(DROPS_MAP)
            .ok_or_else(|| anyhow!("no {DROPS_MAP} map"))?;
        let arr = PerCpuArray::<_, u64>::try_from(map)?;
        let mut sums = [0u64; DROP_COUNTERS as usize];
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum = arr.get(&(i as u32), 0)?.iter().sum();
        }
        let mut d = DropCounts {
            scratch: sums[DROP_SCRATCH as usize],
            ..DropCounts::default()
        };
        for (kind, idx) in [
            (Kind::Exec, DROP_EXEC),
            (Kind::Fork, DROP_FORK),
            (Kind::Exit, DROP_EXIT),
        ] {
            d.by_kind[kind] = sums[idx as usize];
        }
        // File drops are counted with the other file counters (FileWatch).
        Ok(d)
    }
}

fn load_and_attach(
    config: &SensorConfig,
    opts: &CaptureOptions,
    aya_btf: Option<&aya::Btf>,
    cpus: u32,
) -> anyhow::Result<(Ebpf, Vec<(&'static str, AttachMode)>)> {
    let mut ebpf = EbpfLoader::new()
        .btf(aya_btf)
        .override_global(CONFIG_GLOBAL, config, true)
        .override_global(aya_log::LEVEL, &opts.kernel_log_level, true)
        .map_max_entries("SCRATCH", cpus)
        .map_max_entries(EVENTS_MAP, opts.ring_bytes)
        .load(EBPF_OBJECT)
        .map_err(|e| anyhow!(e))
        .context(
            "loading the eBPF object failed. The agent needs root (or CAP_BPF + CAP_PERFMON) \
             and a kernel with BPF ring buffers (5.8+)",
        )?;
    let mut modes = Vec::new();
    for &(tp, btf_prog, raw_prog) in HOOKS {
        let mode = if let Some(aya_btf) = aya_btf {
            if tp == EXEC_HOOK {
                load_exec_cwd(&mut ebpf, AttachMode::TpBtf, Some(aya_btf));
            }
            match attach_btf(&mut ebpf, tp, btf_prog, aya_btf) {
                Ok(()) => AttachMode::TpBtf,
                Err(e) => {
                    warn!("tp_btf/{tp} unavailable ({e:#}); falling back to raw_tp");
                    if tp == EXEC_HOOK {
                        load_exec_cwd(&mut ebpf, AttachMode::RawTp, None);
                    }
                    attach_raw(&mut ebpf, tp, raw_prog).with_context(|| {
                        format!("neither tp_btf nor raw_tp could attach to {tp}")
                    })?;
                    AttachMode::RawTp
                }
            }
        } else {
            if tp == EXEC_HOOK {
                load_exec_cwd(&mut ebpf, AttachMode::RawTp, None);
            }
            attach_raw(&mut ebpf, tp, raw_prog)?;
            AttachMode::RawTp
        };
        info!(hook = tp, mode = ?mode, "attached");
        modes.push((tp, mode));
    }
    Ok((ebpf, modes))
}

const EXEC_HOOK: &str = "sched_process_exec";

/// Loads the exec record's working-directory program for `mode` and puts
/// it where the exec program enters it. Without it the exec records go
/// out with no working directory and user space reads /proc, so a failure
/// here is a warning.
fn load_exec_cwd(ebpf: &mut Ebpf, mode: AttachMode, btf: Option<&aya::Btf>) {
    let (prog, map) = match mode {
        AttachMode::TpBtf => ("sensor_exec_cwd", "EXEC_CWD_BTF"),
        _ => ("sensor_exec_cwd_raw", "EXEC_CWD_RAW"),
    };
    let loaded = (|| -> anyhow::Result<()> {
        let fd = match (mode, btf) {
            (AttachMode::TpBtf, Some(btf)) => {
                let p: &mut BtfTracePoint = ebpf
                    .program_mut(prog)
                    .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
                    .try_into()?;
                p.load(EXEC_HOOK, btf).map_err(verifier_detail)?;
                p.fd()?.try_clone()?
            }
            _ => {
                let p: &mut RawTracePoint = ebpf
                    .program_mut(prog)
                    .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
                    .try_into()?;
                let t = std::time::Instant::now();
                p.load().map_err(verifier_detail)?;
                debug!(
                    program = prog,
                    verify_ms = t.elapsed().as_millis() as u64,
                    verified_insns = p.info().ok().and_then(|i| i.verified_instruction_count()),
                    "program loaded"
                );
                p.fd()?.try_clone()?
            }
        };
        let mut array: ProgramArray<_> =
            ProgramArray::try_from(ebpf.map_mut(map).ok_or_else(|| anyhow!("no {map} map"))?)?;
        array.set(0, &fd, 0)?;
        Ok(())
    })();
    if let Err(e) = loaded {
        warn!(
            "{e:#}\nexec working directories are read from /proc/<pid>/cwd instead of the kernel"
        );
    }
}

fn attach_btf(ebpf: &mut Ebpf, tp: &str, prog: &str, btf: &aya::Btf) -> anyhow::Result<()> {
    let p: &mut BtfTracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
        .try_into()?;
    p.load(tp, btf).map_err(verifier_detail)?;
    p.attach()?;
    Ok(())
}

fn attach_raw(ebpf: &mut Ebpf, tp: &str, prog: &str) -> anyhow::Result<()> {
    let p: &mut RawTracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
        .try_into()?;
    let t = std::time::Instant::now();
    p.load().map_err(verifier_detail)?;
    // The verifier's time is most of the start-up in an emulated guest.
    debug!(
        program = prog,
        verify_ms = t.elapsed().as_millis() as u64,
        verified_insns = p.info().ok().and_then(|i| i.verified_instruction_count()),
        "program loaded"
    );
    p.attach(tp)?;
    Ok(())
}

/// Keeps the verifier log (its tail says why) in the error.
pub(crate) fn verifier_detail(e: aya::programs::ProgramError) -> anyhow::Error {
    match &e {
        aya::programs::ProgramError::LoadError { verifier_log, .. } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            anyhow!("{e}; verifier log tail:\n{}", tail.join("\n"))
        }
        _ => anyhow!(e),
    }
}

/// Before 5.11 BPF maps are charged to RLIMIT_MEMLOCK (64 KiB by default
/// on 5.10), which the 8 MiB ring buffer exceeds; from 5.11 on they are
/// charged to the memory cgroup and the limit does not matter.
fn raise_memlock_limit() {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes a valid rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut cur) } == 0
        && cur.rlim_cur == libc::RLIM_INFINITY
    {
        return;
    }
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0 {
        return;
    }
    let err = std::io::Error::last_os_error();
    if kernel_before(5, 11) {
        warn!(
            "cannot raise RLIMIT_MEMLOCK ({err}); this kernel charges BPF maps to it, so \
             loading may fail: grant CAP_SYS_RESOURCE or run with `ulimit -l unlimited`"
        );
    } else {
        tracing::debug!(
            "RLIMIT_MEMLOCK stays as it is ({err}); this kernel does not charge BPF maps to it"
        );
    }
}

/// Whether the running kernel is older than `major.minor`.
fn kernel_before(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) < (major, minor)
}
