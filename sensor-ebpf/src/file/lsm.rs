//! The BPF LSM way in, where the kernel runs BPF LSM programs (booted with
//! `lsm=...,bpf`): `file_open` is called with the `struct file` itself,
//! after the open's permission checks and before the fd exists, so no fd
//! lookup and no syscall string is involved. The same filter and record
//! as the tracepoint (`open::report_open`); user space picks one of them.
//!
//! The name-based operations stay on the syscall tracepoints for now.

use aya_ebpf::{helpers::bpf_get_current_task, macros::lsm, programs::LsmContext};
use sensor_common::file::{FILTER_ENABLED, FSTAT_SEEN};

use super::{filter, open::report_open, stat};
use crate::configured;

/// `security_file_open(struct file *file)`. Returns 0: the sensor watches,
/// it never refuses an open.
#[lsm(hook = "file_open")]
pub fn sensor_lsm_file_open(ctx: LsmContext) -> i32 {
    if configured() && filter(FILTER_ENABLED) != 0 {
        stat(FSTAT_SEEN);
        let file = ctx.arg::<*const u8>(0) as u64;
        if file != 0 {
            // No syscall here: an open by exec or by the kernel counts too.
            report_open(unsafe { bpf_get_current_task() }, file, 0);
        }
    }
    0
}
