//! Notices changes to the rules directory, so `run` reloads the rules
//! without a restart: a file written, added, removed or renamed, and the
//! symlink swap Kubernetes does when a mounted ConfigMap changes (it
//! renames `..data_tmp` over `..data` in the directory watched here).

use std::{path::Path, time::Duration};

use futures_util::StreamExt;
use inotify::{EventStream, Inotify, WatchMask};

/// Changes closer together than this are one reload: an editor or a
/// ConfigMap update touches several entries at once.
pub const SETTLE: Duration = Duration::from_millis(300);

pub struct RulesWatch {
    events: EventStream<Vec<u8>>,
}

impl RulesWatch {
    pub fn new(dir: &Path) -> std::io::Result<RulesWatch> {
        let inotify = Inotify::init()?;
        inotify.watches().add(
            dir,
            WatchMask::CREATE
                | WatchMask::DELETE
                | WatchMask::MOVED_TO
                | WatchMask::MOVED_FROM
                | WatchMask::CLOSE_WRITE
                | WatchMask::ATTRIB
                | WatchMask::DELETE_SELF
                | WatchMask::MOVE_SELF,
        )?;
        Ok(RulesWatch {
            events: inotify.into_event_stream(vec![0; 4096])?,
        })
    }

    /// Waits for the next change (returns at once, forever, if the watch
    /// broke: the caller then reloads and sees the error).
    pub async fn changed(&mut self) -> std::io::Result<()> {
        match self.events.next().await {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e),
            None => Err(std::io::Error::other("the inotify stream ended")),
        }
    }
}
