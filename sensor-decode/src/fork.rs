//! Fork records.

use sensor_common::ForkEvent;

use crate::{DecodeError, TaskInfo, read_pod, task_info};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkRecord {
    /// The new process; `child.ppid` is the forking process.
    pub child: TaskInfo,
}

pub(crate) fn decode_fork(bytes: &[u8]) -> Result<ForkRecord, DecodeError> {
    let ev: ForkEvent = read_pod(bytes)?;
    Ok(ForkRecord {
        child: task_info(&ev.child),
    })
}
