//! Exit records.

use sensor_common::ExitEvent;

use crate::{DecodeError, TaskInfo, read_pod, task_info};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitRecord {
    pub task: TaskInfo,
    pub exit_code: u32,
}

pub(crate) fn decode_exit(bytes: &[u8]) -> Result<ExitRecord, DecodeError> {
    let ev: ExitEvent = read_pod(bytes)?;
    Ok(ExitRecord {
        task: task_info(&ev.ids),
        exit_code: ev.exit_code,
    })
}
