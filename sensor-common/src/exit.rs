//! An exit record (`sched_process_exit`).

use crate::TaskIds;

/// A process leaving (its last thread exited), from `sched_process_exit`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExitEvent {
    pub kind: u32,
    /// `task->exit_code` (wait status encoding).
    pub exit_code: u32,
    pub ids: TaskIds,
}
