//! Resolves every kernel struct offset the eBPF programs read from the
//! running kernel's BTF. Fields renamed across kernel versions list each
//! name they have had; a field that resolves under none of them stops
//! start-up with a message naming it.

use sensor_common::KernelOffsets;

use super::btf::{Btf, BtfError};

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot resolve kernel field {field} from BTF (tried: {tried}): {source}. \
     This kernel's layout is not supported yet; please report the kernel version (uname -r)."
)]
pub struct OffsetError {
    pub field: &'static str,
    pub tried: String,
    #[source]
    pub source: BtfError,
}

/// First of `paths` that resolves in `strukt`.
fn offset(
    btf: &Btf,
    field: &'static str,
    strukt: &str,
    paths: &[&str],
) -> Result<u32, OffsetError> {
    let mut last = None;
    for p in paths {
        match btf.member_offset(strukt, p) {
            Ok(o) => return Ok(o),
            Err(e) => last = Some(e),
        }
    }
    Err(OffsetError {
        field,
        tried: paths
            .iter()
            .map(|p| format!("{strukt}.{p}"))
            .collect::<Vec<_>>()
            .join(", "),
        source: last.expect("at least one path"),
    })
}

fn enum_u32(btf: &Btf, field: &'static str, name: &str) -> Result<u32, OffsetError> {
    btf.enum_value(name)
        .map(|v| v as u32)
        .map_err(|source| OffsetError {
            field,
            tried: name.to_string(),
            source,
        })
}

fn size(btf: &Btf, field: &'static str, strukt: &str) -> Result<u32, OffsetError> {
    btf.struct_size(strukt).map_err(|source| OffsetError {
        field,
        tried: strukt.to_string(),
        source,
    })
}

/// Resolves the full offset table, or names the first field that fails.
pub fn resolve(btf: &Btf) -> Result<KernelOffsets, OffsetError> {
    Ok(KernelOffsets {
        task_pid: offset(btf, "task_struct.pid", "task_struct", &["pid"])?,
        task_tgid: offset(btf, "task_struct.tgid", "task_struct", &["tgid"])?,
        task_real_parent: offset(
            btf,
            "task_struct.real_parent",
            "task_struct",
            &["real_parent"],
        )?,
        // start_boottime (5.5+) is the clock /proc/<pid>/stat reports.
        task_start_boottime: offset(
            btf,
            "task_struct.start_boottime",
            "task_struct",
            &["start_boottime", "real_start_time"],
        )?,
        task_mm: offset(btf, "task_struct.mm", "task_struct", &["mm"])?,
        task_signal: offset(btf, "task_struct.signal", "task_struct", &["signal"])?,
        task_files: offset(btf, "task_struct.files", "task_struct", &["files"])?,
        task_cred: offset(btf, "task_struct.cred", "task_struct", &["cred"])?,
        task_cgroups: offset(btf, "task_struct.cgroups", "task_struct", &["cgroups"])?,
        task_comm: offset(btf, "task_struct.comm", "task_struct", &["comm"])?,
        task_exit_code: offset(btf, "task_struct.exit_code", "task_struct", &["exit_code"])?,
        task_fs: offset(btf, "task_struct.fs", "task_struct", &["fs"])?,
        fs_pwd: offset(btf, "fs_struct.pwd", "fs_struct", &["pwd"])?,

        mm_arg_start: offset(btf, "mm_struct.arg_start", "mm_struct", &["arg_start"])?,
        mm_arg_end: offset(btf, "mm_struct.arg_end", "mm_struct", &["arg_end"])?,
        mm_env_start: offset(btf, "mm_struct.env_start", "mm_struct", &["env_start"])?,
        mm_env_end: offset(btf, "mm_struct.env_end", "mm_struct", &["env_end"])?,

        signal_tty: offset(btf, "signal_struct.tty", "signal_struct", &["tty"])?,
        signal_live: offset(btf, "signal_struct.live", "signal_struct", &["live"])?,
        signal_pids: offset(btf, "signal_struct.pids", "signal_struct", &["pids"])?,

        pid_level: offset(btf, "pid.level", "pid", &["level"])?,
        pid_numbers: offset(btf, "pid.numbers", "pid", &["numbers"])?,
        upid_size: size(btf, "sizeof(struct upid)", "upid")?,
        upid_nr: offset(btf, "upid.nr", "upid", &["nr"])?,
        upid_ns: offset(btf, "upid.ns", "upid", &["ns"])?,
        // ns_common was reshaped in 6.18; inum may sit in a nested struct.
        pidns_inum: offset(
            btf,
            "pid_namespace.ns.inum",
            "pid_namespace",
            &["ns.inum", "ns.__ns_inum", "ns.ns_id.inum"],
        )?,

        cred_uid: offset(btf, "cred.uid", "cred", &["uid"])?,
        cred_euid: offset(btf, "cred.euid", "cred", &["euid"])?,
        cred_gid: offset(btf, "cred.gid", "cred", &["gid"])?,
        cred_egid: offset(btf, "cred.egid", "cred", &["egid"])?,

        tty_driver: offset(btf, "tty_struct.driver", "tty_struct", &["driver"])?,
        tty_index: offset(btf, "tty_struct.index", "tty_struct", &["index"])?,
        tty_name: offset(btf, "tty_struct.name", "tty_struct", &["name"])?,
        tty_driver_major: offset(btf, "tty_driver.major", "tty_driver", &["major"])?,
        tty_driver_minor_start: offset(
            btf,
            "tty_driver.minor_start",
            "tty_driver",
            &["minor_start"],
        )?,

        files_fdt: offset(btf, "files_struct.fdt", "files_struct", &["fdt"])?,
        fdtable_fd: offset(btf, "fdtable.fd", "fdtable", &["fd"])?,
        file_inode: offset(btf, "file.f_inode", "file", &["f_inode"])?,
        file_f_flags: offset(btf, "file.f_flags", "file", &["f_flags"])?,
        file_f_mode: offset(btf, "file.f_mode", "file", &["f_mode"])?,
        inode_ino: offset(btf, "inode.i_ino", "inode", &["i_ino"])?,
        inode_nlink: offset(btf, "inode.i_nlink", "inode", &["i_nlink", "__i_nlink"])?,
        inode_sb: offset(btf, "inode.i_sb", "inode", &["i_sb"])?,
        sb_magic: offset(btf, "super_block.s_magic", "super_block", &["s_magic"])?,
        ovl_vfs_inode: sensor_common::OFFSET_UNKNOWN,
        ovl_upperdentry: sensor_common::OFFSET_UNKNOWN,
        inode_rdev: offset(btf, "inode.i_rdev", "inode", &["i_rdev"])?,
        inode_mode: offset(btf, "inode.i_mode", "inode", &["i_mode"])?,

        css_set_dfl_cgrp: offset(btf, "css_set.dfl_cgrp", "css_set", &["dfl_cgrp"])?,
        css_set_subsys: offset(btf, "css_set.subsys", "css_set", &["subsys"])?,
        css_cgroup: offset(
            btf,
            "cgroup_subsys_state.cgroup",
            "cgroup_subsys_state",
            &["cgroup"],
        )?,
        cgroup_kn: offset(btf, "cgroup.kn", "cgroup", &["kn"])?,
        kn_name: offset(btf, "kernfs_node.name", "kernfs_node", &["name"])?,
        // Renamed to __parent in 6.15 when it became RCU-protected.
        kn_parent: offset(
            btf,
            "kernfs_node.parent",
            "kernfs_node",
            &["__parent", "parent"],
        )?,

        bprm_filename: offset(btf, "linux_binprm.filename", "linux_binprm", &["filename"])?,
        bprm_file: offset(btf, "linux_binprm.file", "linux_binprm", &["file"])?,

        file_f_path: offset(btf, "file.f_path", "file", &["f_path"])?,
        path_mnt: offset(btf, "path.mnt", "path", &["mnt"])?,
        path_dentry: offset(btf, "path.dentry", "path", &["dentry"])?,
        dentry_parent: offset(btf, "dentry.d_parent", "dentry", &["d_parent"])?,
        dentry_name: offset(btf, "dentry.d_name.name", "dentry", &["d_name.name"])?,
        dentry_name_len: offset(btf, "dentry.d_name.len", "dentry", &["d_name.len"])?,
        vfsmount_mnt_root: offset(btf, "vfsmount.mnt_root", "vfsmount", &["mnt_root"])?,
        mount_mnt: offset(btf, "mount.mnt", "mount", &["mnt"])?,
        mount_parent: offset(btf, "mount.mnt_parent", "mount", &["mnt_parent"])?,
        mount_mountpoint: offset(btf, "mount.mnt_mountpoint", "mount", &["mnt_mountpoint"])?,

        pidtype_tgid: enum_u32(btf, "PIDTYPE_TGID", "PIDTYPE_TGID")?,
        pidtype_pgid: enum_u32(btf, "PIDTYPE_PGID", "PIDTYPE_PGID")?,
        pidtype_sid: enum_u32(btf, "PIDTYPE_SID", "PIDTYPE_SID")?,
    })
}

/// Index of a v1 controller in `css_set.subsys[]` (`<name>_cgrp_id`).
pub fn cgroup_subsys_index(btf: &Btf, controller: &str) -> Result<u32, BtfError> {
    btf.enum_value(&format!("{controller}_cgrp_id"))
        .map(|v| v as u32)
}

/// Where overlayfs keeps its inode's upper dentry, from the kernel's BTF
/// when overlayfs is built in, else from the overlay module's split BTF
/// (`/sys/kernel/btf/overlay`, present once the module is loaded). `None`
/// when neither has it: exec events then say the layer is unknown.
pub fn overlay(vmlinux: &Btf) -> Option<(u32, u32)> {
    let read = |btf: &Btf| {
        Some((
            btf.member_offset("ovl_inode", "vfs_inode").ok()?,
            btf.member_offset("ovl_inode", "__upperdentry").ok()?,
        ))
    };
    if let Some(o) = read(vmlinux) {
        return Some(o);
    }
    let data = std::fs::read("/sys/kernel/btf/overlay").ok()?;
    read(&Btf::parse_split(vmlinux, &data).ok()?)
}

#[cfg(test)]
mod tests {
    //! These read the running kernel's BTF: they need /sys/kernel/btf/vmlinux
    //! (any BTF-enabled kernel, no root) and skip loudly without it.
    use super::*;

    fn kernel_btf() -> Option<Btf> {
        match Btf::from_sys_fs() {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("SKIPPED: needs kernel BTF at {}: {e}", Btf::VMLINUX);
                None
            }
        }
    }

    #[test]
    fn every_required_field_resolves_on_the_running_kernel() {
        let Some(btf) = kernel_btf() else { return };
        let o = resolve(&btf).unwrap();
        // pid and tgid are adjacent ints in every kernel since 2.6.
        assert_eq!(o.task_tgid, o.task_pid + 4);
        assert!(o.mm_arg_end > o.mm_arg_start);
        assert_eq!(o.upid_size, 16);
    }

    #[test]
    fn offsets_inside_anonymous_members_are_found() {
        let Some(btf) = kernel_btf() else { return };
        // mm_struct keeps its fields inside an anonymous struct since 5.x;
        // the offset must include that struct's position (non-zero here).
        let arg_start = btf.member_offset("mm_struct", "arg_start").unwrap();
        assert!(arg_start > 0);
        assert!(arg_start < btf.struct_size("mm_struct").unwrap());
    }

    #[test]
    fn renamed_kernfs_parent_resolves_under_either_name() {
        let Some(btf) = kernel_btf() else { return };
        let new = btf.member_offset("kernfs_node", "__parent");
        let old = btf.member_offset("kernfs_node", "parent");
        assert!(
            new.is_ok() != old.is_ok(),
            "exactly one name exists on a given kernel"
        );
        let o = resolve(&btf).unwrap();
        assert_eq!(o.kn_parent, new.or(old).unwrap());
    }

    #[test]
    fn nested_pid_namespace_inum_resolves() {
        let Some(btf) = kernel_btf() else { return };
        let o = resolve(&btf).unwrap();
        let ns = btf.member_offset("pid_namespace", "ns").unwrap();
        assert!(o.pidns_inum >= ns, "inum lies inside pid_namespace.ns");
    }

    #[test]
    fn missing_field_names_the_field_and_every_name_tried() {
        let Some(btf) = kernel_btf() else { return };
        let err = offset(&btf, "task_struct.nope", "task_struct", &["nope", "__nope"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("task_struct.nope"), "{msg}");
        assert!(msg.contains("task_struct.__nope"), "{msg}");
    }

    #[test]
    fn pid_type_enum_values_match_the_kernel_abi() {
        let Some(btf) = kernel_btf() else { return };
        let o = resolve(&btf).unwrap();
        assert_eq!((o.pidtype_tgid, o.pidtype_pgid, o.pidtype_sid), (1, 2, 3));
    }

    #[test]
    fn v1_controller_ids_resolve_from_the_enum() {
        let Some(btf) = kernel_btf() else { return };
        assert!(
            cgroup_subsys_index(&btf, "memory").is_ok()
                || cgroup_subsys_index(&btf, "pids").is_ok()
        );
        assert!(cgroup_subsys_index(&btf, "no_such_controller").is_err());
    }

    #[test]
    fn malformed_btf_is_rejected() {
        assert!(Btf::parse(b"not btf at all, definitely not").is_err());
    }
}
