//! The ABI shared by the kernel programs (`sensor-ebpf`) and the agent.
//!
//! Everything here is `#[repr(C)]` and plain data: the kernel writes these
//! bytes into the ring buffer and user space reads them back with the same
//! layout. Keep it tiny; logic belongs on either side, not here.
#![no_std]

mod config;
mod exec;
mod exit;
pub mod file;
mod fork;
mod task;

pub use config::*;
pub use exec::*;
pub use exit::*;
pub use fork::*;
pub use task::*;

/// The first `u32` of every ring-buffer record says which struct follows.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Exec = 1,
    Fork = 2,
    Exit = 3,
    /// A [`file::FileHeader`].
    File = 4,
    /// A [`file::FileResult`].
    FileResult = 5,
}

impl EventKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Self::Exec),
            2 => Some(Self::Fork),
            3 => Some(Self::Exit),
            4 => Some(Self::File),
            5 => Some(Self::FileResult),
            _ => None,
        }
    }
}

/// The events ring buffer's default size: about 8 000 execs, several
/// seconds of a busy node. The agent may resize it at load time.
pub const RING_BYTES: u32 = 8 << 20;

/// Name of the per-CPU counter array of failed ring-buffer reserves.
pub const DROPS_MAP: &str = "DROPS";
/// Name of the ring buffer map.
pub const EVENTS_MAP: &str = "EVENTS";
/// Name of the config global.
pub const CONFIG_GLOBAL: &str = "SENSOR_CONFIG";
/// The one-entry array in which the agent says whether it sleeps.
pub const READER_MAP: &str = "READER";
/// `READER[0]` while the agent waits for a wake-up instead of polling.
pub const READER_ASLEEP: u32 = 1;

/// Index of each counter in the per-CPU `DROPS` array.
pub const DROP_EXEC: u32 = 0;
pub const DROP_FORK: u32 = 1;
pub const DROP_EXIT: u32 = 2;
/// Exec records lost because the scratch buffer lookup failed (never expected).
pub const DROP_SCRATCH: u32 = 3;
pub const DROP_COUNTERS: u32 = 4;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain-old-data with no padding holes the kernel could read
    // uninitialised; every field is an integer.
    unsafe impl aya::Pod for super::SensorConfig {}
    // SAFETY: as above, integers only.
    unsafe impl aya::Pod for super::file::SyscallShape {}
}
