//! Attaching the file hooks to the syscall tracepoints, and telling the
//! name-based program where each syscall's arguments are.

use anyhow::{Context, anyhow};
use aya::{
    Ebpf,
    maps::{HashMap, ProgramArray},
    programs::{Lsm, TracePoint},
};
use sensor_common::file::{ARG_NONE, FILE_SYSCALLS_MAP, FileAction, SyscallShape};
use tracing::{debug, info, warn};

use super::loader::{AttachMode, verifier_detail};

/// The file programs, by what they hook (for `--bpf-stats`).
pub(crate) const PROGRAMS: &[(&str, &str)] = &[
    ("file opens (sys_exit_open*)", "sensor_file_open"),
    ("file opens (lsm/file_open)", "sensor_lsm_file_open"),
    ("file operations (sys_enter_*)", "sensor_file_named"),
    ("file operations (sys_exit_*)", "sensor_file_named_exit"),
];

/// The opens: one program at the exit of each.
const OPEN_EXITS: &[&str] = &["openat", "openat2", "open", "creat"];

const N: u32 = ARG_NONE;

/// `(syscall, number, action, [dfd, path, dfd2, path2, mode, fd])`: indexes
/// into the tracepoint's arguments (its `format` file lists them), in the
/// signature's order. The numbers are this build's architecture's.
const NAMED: &[(&str, libc::c_long, FileAction, [u32; 6])] = &[
    (
        "unlink",
        libc::SYS_unlink,
        FileAction::Delete,
        [N, 0, N, N, N, N],
    ),
    (
        "unlinkat",
        libc::SYS_unlinkat,
        FileAction::Delete,
        [0, 1, N, N, N, N],
    ),
    (
        "rmdir",
        libc::SYS_rmdir,
        FileAction::Delete,
        [N, 0, N, N, N, N],
    ),
    (
        "rename",
        libc::SYS_rename,
        FileAction::Rename,
        [N, 0, N, 1, N, N],
    ),
    (
        "renameat",
        libc::SYS_renameat,
        FileAction::Rename,
        [0, 1, 2, 3, N, N],
    ),
    (
        "renameat2",
        libc::SYS_renameat2,
        FileAction::Rename,
        [0, 1, 2, 3, N, N],
    ),
    (
        "chmod",
        libc::SYS_chmod,
        FileAction::Chmod,
        [N, 0, N, N, 1, N],
    ),
    (
        "fchmodat",
        libc::SYS_fchmodat,
        FileAction::Chmod,
        [0, 1, N, N, 2, N],
    ),
    (
        "fchmodat2",
        libc::SYS_fchmodat2,
        FileAction::Chmod,
        [0, 1, N, N, 2, N],
    ),
    (
        "fchmod",
        libc::SYS_fchmod,
        FileAction::Chmod,
        [N, N, N, N, 1, 0],
    ),
    // The new name is what a link, symlink or node creates.
    (
        "link",
        libc::SYS_link,
        FileAction::Create,
        [N, 1, N, N, N, N],
    ),
    (
        "linkat",
        libc::SYS_linkat,
        FileAction::Create,
        [2, 3, N, N, N, N],
    ),
    (
        "symlink",
        libc::SYS_symlink,
        FileAction::Create,
        [N, 1, N, N, N, N],
    ),
    (
        "symlinkat",
        libc::SYS_symlinkat,
        FileAction::Create,
        [1, 2, N, N, N, N],
    ),
    (
        "mknod",
        libc::SYS_mknod,
        FileAction::Create,
        [N, 0, N, N, 1, N],
    ),
    (
        "mknodat",
        libc::SYS_mknodat,
        FileAction::Create,
        [0, 1, N, N, 2, N],
    ),
];

fn shape(action: FileAction, a: [u32; 6]) -> SyscallShape {
    SyscallShape {
        action: action as u32,
        dfd: a[0],
        path: a[1],
        dfd2: a[2],
        path2: a[3],
        mode: a[4],
        fd: a[5],
    }
}

/// True when `dir` is a mounted tracefs (an unmounted mount point is empty).
fn populated(dir: &str) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// Where tracefs is mounted (after `ensure_tracefs`).
fn tracefs() -> &'static str {
    if populated("/sys/kernel/tracing") {
        "/sys/kernel/tracing"
    } else {
        "/sys/kernel/debug/tracing"
    }
}

fn tracepoint_exists(tp: &str) -> bool {
    std::path::Path::new(&format!("{}/events/syscalls/{tp}", tracefs())).exists()
}

fn load<'a>(ebpf: &'a mut Ebpf, prog: &str) -> anyhow::Result<&'a mut TracePoint> {
    let p: &mut TracePoint = ebpf
        .program_mut(prog)
        .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
        .try_into()?;
    let t = std::time::Instant::now();
    p.load().map_err(verifier_detail)?;
    // The verifier's time is most of the start-up in an emulated guest
    // (the name-based program took ~2 min on 5.10 and 6.1 under TCG).
    debug!(
        program = prog,
        verify_ms = t.elapsed().as_millis() as u64,
        verified_insns = p.info().ok().and_then(|i| i.verified_instruction_count()),
        "file program loaded"
    );
    Ok(p)
}

/// How the opens are hooked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileHookWay {
    /// BPF LSM's `file_open` where the kernel runs BPF LSM programs, else
    /// the syscall tracepoints.
    Auto,
    /// BPF LSM only; an error when the kernel does not run it.
    Lsm,
    /// The syscall tracepoints only.
    Tracepoint,
}

/// The active LSMs (`/sys/kernel/security/lsm`), mounting securityfs when
/// it is not (an attached BPF LSM program that the kernel does not run
/// would see nothing, so the list is the only reliable test).
fn active_lsms() -> Option<String> {
    const LSM: &str = "/sys/kernel/security/lsm";
    if let Ok(s) = std::fs::read_to_string(LSM) {
        return Some(s);
    }
    match mount_pseudo(c"securityfs", c"/sys/kernel/security") {
        Ok(()) => info!("mounted securityfs at /sys/kernel/security to read the active LSMs"),
        Err(e) => debug!("securityfs not mounted and not mountable ({e})"),
    }
    std::fs::read_to_string(LSM).ok()
}

/// BPF LSM is active here: the kernel's BTF, which its programs load
/// against (read once, for all of them).
fn lsm_ready() -> anyhow::Result<aya::Btf> {
    let lsms = active_lsms().unwrap_or_default();
    if !lsms.trim().split(',').any(|l| l == "bpf") {
        return Err(anyhow!(
            "BPF LSM is not active (/sys/kernel/security/lsm: {:?}): boot with \
             `lsm=...,bpf` (CONFIG_BPF_LSM=y), or use --file-hooks tracepoint",
            lsms.trim()
        ));
    }
    aya::Btf::from_sys_fs().context("reading /sys/kernel/btf/vmlinux")
}

/// Loads and attaches the LSM `file_open` program.
fn attach_lsm_open(ebpf: &mut Ebpf, btf: &aya::Btf) -> anyhow::Result<()> {
    let p: &mut Lsm = ebpf
        .program_mut("sensor_lsm_file_open")
        .ok_or_else(|| anyhow!("program sensor_lsm_file_open missing from the object"))?
        .try_into()?;
    p.load("file_open", btf).map_err(verifier_detail)?;
    p.attach()?;
    Ok(())
}

/// The BPF LSM path hooks, their programs, and the syscalls whose entry
/// tracepoint each replaces. `path_mknod` is left out: an `O_CREAT` open
/// calls it too, so mknod stays at its tracepoint.
const LSM_PATH_HOOKS: &[(&str, &str, &[&str])] = &[
    (
        "path_unlink",
        "sensor_lsm_path_unlink",
        &["unlink", "unlinkat"],
    ),
    ("path_rmdir", "sensor_lsm_path_rmdir", &["rmdir"]),
    (
        "path_rename",
        "sensor_lsm_path_rename",
        &["rename", "renameat", "renameat2"],
    ),
    (
        "path_chmod",
        "sensor_lsm_path_chmod",
        &["chmod", "fchmodat", "fchmodat2", "fchmod"],
    ),
    ("path_link", "sensor_lsm_path_link", &["link", "linkat"]),
    (
        "path_symlink",
        "sensor_lsm_path_symlink",
        &["symlink", "symlinkat"],
    ),
];

/// Loads and attaches every LSM path hook, or none: a partial set would
/// leave a syscall with neither way in.
fn attach_lsm_paths(
    ebpf: &mut Ebpf,
    btf: &aya::Btf,
) -> anyhow::Result<Vec<(&'static str, &'static [&'static str])>> {
    let mut links = Vec::new();
    for &(hook, prog, _) in LSM_PATH_HOOKS {
        let p: &mut Lsm = ebpf
            .program_mut(prog)
            .ok_or_else(|| anyhow!("program {prog} missing from the object"))?
            .try_into()?;
        let t = std::time::Instant::now();
        if let Err(e) = p.load(hook, btf).map_err(verifier_detail) {
            return Err(detach_all(ebpf, links, e));
        }
        debug!(
            program = prog,
            verify_ms = t.elapsed().as_millis() as u64,
            verified_insns = p.info().ok().and_then(|i| i.verified_instruction_count()),
            "file program loaded"
        );
        match p.attach() {
            Ok(link) => links.push((prog, link)),
            Err(e) => return Err(detach_all(ebpf, links, e.into())),
        }
    }
    Ok(LSM_PATH_HOOKS.iter().map(|&(h, _, s)| (h, s)).collect())
}

/// Undoes a partial [`attach_lsm_paths`], returning its error.
fn detach_all(
    ebpf: &mut Ebpf,
    links: Vec<(&str, aya::programs::lsm::LsmLinkId)>,
    e: anyhow::Error,
) -> anyhow::Error {
    for (prog, link) in links {
        if let Some(p) = ebpf.program_mut(prog)
            && let Ok(p) = <&mut Lsm>::try_from(p)
        {
            let _ = p.detach(link);
        }
    }
    e
}

/// Attaches every file hook this kernel has; a missing syscall tracepoint
/// (openat2 before 5.6, fchmodat2 before 6.6) is skipped with a note.
/// Returns the attached hooks.
pub(crate) fn attach(
    ebpf: &mut Ebpf,
    way: FileHookWay,
) -> anyhow::Result<Vec<(&'static str, AttachMode)>> {
    ensure_tracefs()?;
    let mut modes = Vec::new();
    let btf = match way {
        FileHookWay::Tracepoint => None,
        FileHookWay::Lsm => Some(lsm_ready()?),
        FileHookWay::Auto => match lsm_ready() {
            Ok(btf) => Some(btf),
            Err(e) => {
                info!("file hooks at the syscall tracepoints: {e:#}");
                None
            }
        },
    };
    let lsm = match &btf {
        None => false,
        Some(btf) => match attach_lsm_open(ebpf, btf) {
            Ok(()) => true,
            Err(e) if way == FileHookWay::Lsm => return Err(e),
            Err(e) => {
                // Expected where BPF LSM is listed but refused (this
                // project's dev machine): the tracepoints report the same.
                info!(
                    "BPF LSM file_open not attached ({e:#}); file hooks at the syscall tracepoints"
                );
                false
            }
        },
    };
    if lsm {
        modes.push(("file_open", AttachMode::Lsm));
    } else {
        let open = load(ebpf, "sensor_file_open")?;
        for name in OPEN_EXITS {
            let tp = format!("sys_exit_{name}");
            match open.attach("syscalls", &tp) {
                Ok(_) => modes.push((*name, AttachMode::Tracepoint)),
                Err(e) => info!("file hook {tp} not attached ({e}); this kernel may not have it"),
            }
        }
    }
    let mut shapes = Vec::new();
    for &(name, nr, action, args) in NAMED {
        // Only syscalls this kernel has a tracepoint for.
        match tracepoint_exists(&format!("sys_enter_{name}")) {
            true => shapes.push((name, nr as u32, shape(action, args))),
            false => info!("file hook sys_enter_{name} not attached: no such tracepoint here"),
        }
    }
    {
        let mut map: HashMap<_, u32, SyscallShape> = HashMap::try_from(
            ebpf.map_mut(FILE_SYSCALLS_MAP)
                .ok_or_else(|| anyhow!("no {FILE_SYSCALLS_MAP} map"))?,
        )?;
        for (_, id, s) in &shapes {
            map.insert(id, s, 0)?;
        }
    }
    let covered = if let Some(btf) = btf.as_ref().filter(|_| lsm) {
        match attach_lsm_paths(ebpf, btf) {
            Ok(hooks) => {
                modes.extend(hooks.iter().map(|(h, _)| (*h, AttachMode::Lsm)));
                hooks.iter().flat_map(|(_, s)| s.iter().copied()).collect()
            }
            Err(e) => {
                warn!(
                    "BPF LSM path hooks not attached ({e:#}); unlink, rename, chmod and link at the syscall tracepoints"
                );
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    // The opens work without the rest: a kernel whose verifier refuses the
    // name-based program still reports creations, writes and reads.
    if let Err(e) = attach_named(ebpf, &shapes, &covered, &mut modes) {
        warn!(
            "file hooks for unlink/rename/chmod/link not attached ({e:#}); opens are still reported"
        );
    }
    Ok(modes)
}

/// The syscall tracepoints are attached through tracefs, which is not
/// always mounted (a node may have debugfs only, or neither): mount it at
/// its standard place when no mounted copy is found.
fn ensure_tracefs() -> anyhow::Result<()> {
    if populated("/sys/kernel/tracing") || populated("/sys/kernel/debug/tracing") {
        return Ok(());
    }
    mount_pseudo(c"tracefs", c"/sys/kernel/tracing").map_err(|err| {
        anyhow!(
            "tracefs is not mounted and mounting it at /sys/kernel/tracing failed ({err}). \
             The file hooks need it: mount it (`mount -t tracefs nodev /sys/kernel/tracing`, \
             or a hostPath mount in the DaemonSet), or run with --no-file-hooks"
        )
    })?;
    info!("mounted tracefs at /sys/kernel/tracing for the file hooks");
    Ok(())
}

/// Mounts the pseudo filesystem `fstype` at `target`.
fn mount_pseudo(fstype: &std::ffi::CStr, target: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: every argument is a NUL-terminated string; no data pointer.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn attach_named(
    ebpf: &mut Ebpf,
    shapes: &[(&'static str, u32, SyscallShape)],
    covered: &[&'static str],
    modes: &mut Vec<(&'static str, AttachMode)>,
) -> anyhow::Result<()> {
    // The syscalls an LSM hook covers still need their exit: it says
    // whether the operation succeeded.
    let mut exits: Vec<&'static str> = shapes
        .iter()
        .map(|(n, ..)| *n)
        .filter(|n| covered.contains(n))
        .collect();
    let rest: Vec<&'static str> = shapes
        .iter()
        .map(|(n, ..)| *n)
        .filter(|n| !covered.contains(n))
        .collect();
    if !rest.is_empty() {
        match attach_named_enter(ebpf, &rest) {
            Ok(attached) => {
                for name in attached {
                    exits.push(name);
                    modes.push((name, AttachMode::Tracepoint));
                }
            }
            Err(e) => {
                warn!("file hooks for {rest:?} not attached ({e:#}); opens are still reported")
            }
        }
    }
    let exit = load(ebpf, "sensor_file_named_exit")?;
    for name in exits {
        exit.attach("syscalls", &format!("sys_exit_{name}"))
            .with_context(|| format!("attaching sys_exit_{name}"))?;
    }
    Ok(())
}

/// The name-based program at the entry of each syscall in `names`.
fn attach_named_enter(
    ebpf: &mut Ebpf,
    names: &[&'static str],
) -> anyhow::Result<Vec<&'static str>> {
    let enter = load(ebpf, "sensor_file_named")?;
    let fd = enter.fd()?.try_clone()?;
    // A rename's second name is composed by the program entered again.
    let mut again: ProgramArray<_> = ProgramArray::try_from(
        ebpf.map_mut("NAMED_AGAIN")
            .ok_or_else(|| anyhow!("no NAMED_AGAIN map"))?,
    )?;
    again.set(0, &fd, 0)?;
    let enter: &mut TracePoint = ebpf
        .program_mut("sensor_file_named")
        .ok_or_else(|| anyhow!("program sensor_file_named missing"))?
        .try_into()?;
    let mut attached = Vec::new();
    for name in names {
        match enter.attach("syscalls", &format!("sys_enter_{name}")) {
            Ok(_) => attached.push(*name),
            Err(e) => warn!("file hook sys_enter_{name} not attached: {e}"),
        }
    }
    Ok(attached)
}
