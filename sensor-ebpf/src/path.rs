//! The one path reader: d_path without the helper (tracing programs may not
//! call it), for the executable of an exec and the file of a file event.
//!
//! It climbs dentries and crosses mounts up to the root of the acting
//! task's mount namespace, so a path reads as the task sees it (the
//! container's view inside a container). Two passes keep the verifier's
//! work linear: the first only collects name pointers into fixed slots,
//! the second copies strings root first with one bounded cursor.

use aya_ebpf::helpers::generated::bpf_probe_read_kernel_str;
use sensor_common::{MAX_COMPONENT_BYTES, MAX_EXE_COMPONENTS};

use crate::{launder, rd_ptr};

/// Name pointers of one walk, leaf first; the last slot holds their count.
pub(crate) type Names = [u64; MAX_EXE_COMPONENTS + 1];

/// Collects the component names from `(dentry, vfsmnt)` up to the
/// namespace root into `names`; with `PSEUDO`, a pseudo file's own name. Returns whether the root was reached
/// within `cfg.exe_walk_depth` steps; the count is stored either way.
#[inline(always)]
pub(crate) fn collect<const PSEUDO: bool>(
    names: &mut Names,
    mut dentry: u64,
    mut vfsmnt: u64,
) -> bool {
    let mount_mnt = cfg!(offsets.mount_mnt) as u64;
    let depth = cfg!(exe_walk_depth) as usize;
    let mut n: usize = 0;
    let mut complete = false;
    for step in 0..MAX_EXE_COMPONENTS {
        if step >= depth || dentry == 0 || vfsmnt == 0 || n >= MAX_EXE_COMPONENTS {
            break;
        }
        let mnt_root = rd_ptr(vfsmnt, cfg!(offsets.vfsmount_mnt_root));
        let parent = rd_ptr(dentry, cfg!(offsets.dentry_parent));
        if PSEUDO && dentry == parent && dentry != mnt_root {
            // A pseudo file's dentry (memfd, pipe, anonymous inode) is its
            // own parent off any mount's root: its name is the whole path.
            // Only the exec walk asks (a memfd run as a program); the file
            // programs cannot afford the verifier states it adds.
            names[n] = rd_ptr(dentry, cfg!(offsets.dentry_name));
            n += 1;
            complete = true;
            break;
        }
        if dentry == mnt_root || dentry == parent {
            let mnt = vfsmnt - mount_mnt;
            let mnt_parent = rd_ptr(mnt, cfg!(offsets.mount_parent));
            if mnt_parent == mnt || mnt_parent == 0 {
                complete = true; // the namespace root
                break;
            }
            dentry = rd_ptr(mnt, cfg!(offsets.mount_mountpoint));
            vfsmnt = mnt_parent + mount_mnt;
        } else {
            names[n] = rd_ptr(dentry, cfg!(offsets.dentry_name));
            n += 1;
            dentry = parent;
        }
    }
    // Round-trip the count through map memory: the verifier then checks the
    // copy loop once for an unknown n, instead of once per exact n it could
    // have from the walk (which blew past the 1M-instruction limit).
    unsafe { core::ptr::write_volatile(&mut names[MAX_EXE_COMPONENTS], n as u64) };
    complete
}

/// Writes the collected components root first (`/usr/bin/true`) at
/// `base + start`, where the buffer is `cap` bytes long, using at most
/// `max_len` bytes. A NUL follows the path. Returns the path's length
/// (without the NUL), or `None` when a name was unreadable or the path did
/// not fit.
#[inline(always)]
pub(crate) fn write_root_first(
    base: *mut u8,
    start: u64,
    cap: usize,
    max_len: u64,
    names: &Names,
) -> Option<u64> {
    let n = unsafe { core::ptr::read_volatile(&names[MAX_EXE_COMPONENTS]) } as usize;
    if n == 0 {
        // Masked, not only compared: 5.10's and 6.1's verifiers forgot the
        // bound of `start`, spilled to the stack before its check, here.
        let mut slot = 0;
        let start = launder(&mut slot, start) & (cap.next_power_of_two() as u64 - 1);
        // The root itself.
        if start + 2 > cap as u64 {
            return None;
        }
        unsafe {
            *base.add(start as usize) = b'/';
            *base.add(start as usize + 1) = 0;
        }
        return Some(1);
    }
    let mut pos: u64 = 0;
    for i in 0..MAX_EXE_COMPONENTS {
        if i >= n {
            break;
        }
        let off = start + pos;
        if off > (cap - MAX_COMPONENT_BYTES - 1) as u64
            || pos > max_len.saturating_sub(MAX_COMPONENT_BYTES as u64 + 1)
        {
            return None;
        }
        // Leaf first in `names`, so the root's child is the last one.
        let name = names[(n - 1 - i) & (MAX_EXE_COMPONENTS - 1)];
        unsafe { *base.add(off as usize) = b'/' };
        let r = unsafe {
            bpf_probe_read_kernel_str(
                base.add(off as usize + 1) as *mut _,
                MAX_COMPONENT_BYTES as u32,
                name as *const _,
            )
        };
        if r <= 0 {
            return None;
        }
        pos += r as u64; // '/' plus the name, whose NUL the next '/' overwrites
    }
    if pos > max_len {
        return None;
    }
    Some(pos)
}
