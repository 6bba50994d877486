//! Kernel programs of the sensor, one module per hook family:
//!
//! - [`process`]: exec at `sched_process_exec`, new processes at
//!   `sched_process_fork`, leavers at `sched_process_exit` (raw_tp, with
//!   tp_btf twins);
//! - [`file`]: file activity at the syscall tracepoints, filtered here by
//!   the watch set user space derives from the loaded rules.
//!
//! [`task`] and [`path`] are the readers they share. There are no CO-RE
//! relocations for Rust eBPF, so every struct field is read at an offset
//! the agent resolved from the running kernel's BTF and installed in
//! `SENSOR_CONFIG` before load.
#![no_std]
// `atomic_xadd` (see `file::xadd`): the BPF target has no atomic RMW types.
#![allow(internal_features)]
#![feature(core_intrinsics)]
#![no_main]

use aya_ebpf::{
    helpers::generated::bpf_probe_read_kernel,
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
};
use sensor_common::{CONFIG_MAGIC, DROP_COUNTERS, READER_ASLEEP, RING_BYTES, SensorConfig};

/// Filled in by the agent before load (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
static SENSOR_CONFIG: SensorConfig = unsafe { core::mem::zeroed() };

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(RING_BYTES, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_COUNTERS, 0);

/// Whether the agent sleeps waiting for a wake-up (`READER_ASLEEP`) or
/// polls the ring on its own timer (0); written by the agent only.
#[map]
static READER: Array<u32> = Array::with_max_entries(1, 0);

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;

/// Ring-buffer flags for a record: wake the agent only when it sleeps. A
/// wake-up is an irq_work (a self-IPI, a VM exit on virtual machines) on
/// the CPU of the process being traced, measured at 5-20 µs per record
/// here, several times the program's own cost; a busy agent polls instead.
#[inline(always)]
fn wakeup_flags() -> u64 {
    match READER.get(0) {
        Some(&READER_ASLEEP) => BPF_RB_FORCE_WAKEUP,
        _ => BPF_RB_NO_WAKEUP,
    }
}

/// Reads one config field; volatile so the compiler cannot fold the zeroes
/// it sees at build time (the verifier sees the real, frozen values).
macro_rules! cfg {
    ($($field:ident).+) => {
        {
            #[allow(unused_unsafe)]
            unsafe { core::ptr::read_volatile(&crate::SENSOR_CONFIG.$($field).+) }
        }
    };
}

mod file;
mod path;
mod process;
mod task;

/// Reads a `T` at `base + off` in kernel memory; zero when unreadable.
///
/// Branch-free on purpose: the helper zeroes the destination on failure, and
/// a `match` on its result would double the verifier's states at every read.
#[inline(always)]
fn rd<T: Copy>(base: u64, off: u32) -> T {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    unsafe {
        bpf_probe_read_kernel(
            v.as_mut_ptr() as *mut _,
            size_of::<T>() as u32,
            (base + off as u64) as *const _,
        );
        v.assume_init()
    }
}

#[inline(always)]
fn rd_ptr(base: u64, off: u32) -> u64 {
    rd::<u64>(base, off)
}

#[inline(always)]
fn count_drop(idx: u32) {
    if let Some(c) = DROPS.get_ptr_mut(idx) {
        unsafe { *c += 1 };
    }
}

/// Returns `v` as the verifier sees a value read from memory: any u64.
/// Called before a loop on values that differ between the paths leading
/// to it, so the loop is verified once instead of once per path; and
/// before a mask LLVM would otherwise drop as redundant.
#[inline(always)]
fn launder(slot: &mut u64, v: u64) -> u64 {
    unsafe {
        core::ptr::write_volatile(slot, v);
        core::ptr::read_volatile(slot)
    }
}

#[inline(always)]
fn configured() -> bool {
    cfg!(magic) == CONFIG_MAGIC
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
