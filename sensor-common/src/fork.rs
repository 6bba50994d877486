//! A fork record (`sched_process_fork`).

use crate::TaskIds;

/// A new process (not a thread) from `sched_process_fork`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ForkEvent {
    pub kind: u32,
    pub _pad: u32,
    /// The child; its `ppid` is the forking process.
    pub child: TaskIds,
}
