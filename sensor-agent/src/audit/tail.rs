//! Audit log files, as the API server's `--audit-log-path` writes them (one
//! JSON event per line), followed like `tail -F`, and stdin.
//!
//! - Rotation by rename (the API server's own `--audit-log-maxsize`, or
//!   logrotate's default): the old file is read to its end, then the new
//!   one from its start. Rotation by truncation (`copytruncate`): reading
//!   restarts at 0 (lines written between logrotate's copy and its
//!   truncate are lost, as with any reader: prefer rename).
//! - The offset of the last line whose documents were written is saved
//!   (with the file's device and inode) in the state directory after each
//!   batch, so a restart resumes where output stopped: no gap and no
//!   duplicate. If the file was rotated while the agent was down, the old
//!   file is found by its inode in the same directory and finished first.
//!
//! Polled every 200 ms rather than watched with inotify: one `fstat` and
//! one `read` per poll, and it works the same on every filesystem.

use std::{
    fs::File,
    io::{BufRead, Read, Seek, SeekFrom},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::{Item, parse_line};
use crate::source::{Batch, Source, SourceFuture};

const POLL: Duration = Duration::from_millis(200);
/// Lines per batch at most.
const BATCH_LINES: usize = 1024;
const READ_CHUNK: usize = 1 << 20;

/// Which file and how far its written lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    path: PathBuf,
    #[serde(flatten)]
    pos: Position,
}

/// A followed audit log file.
pub struct FileTail {
    pub path: PathBuf,
    /// Where the offset is saved; `None` reads from the start every time.
    pub state_file: Option<PathBuf>,
}

/// Standard input, one event (or envelope) per line, until EOF.
pub struct Stdin;

fn save(state: &Path, path: &Path, pos: Position) {
    let saved = Saved {
        path: path.to_path_buf(),
        pos,
    };
    let tmp = state.with_extension("tmp");
    let res = serde_json::to_vec(&saved)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|()| std::fs::rename(&tmp, state));
    if let Err(e) = res {
        warn!(
            "cannot save the audit log offset to {}: {e}",
            state.display()
        );
    }
}

fn load(state: &Path, path: &Path) -> Option<Position> {
    let bytes = std::fs::read(state).ok()?;
    match serde_json::from_slice::<Saved>(&bytes) {
        Ok(s) if s.path == path => Some(s.pos),
        Ok(s) => {
            info!(
                "saved offset is for {}, not {}: reading from the start",
                s.path.display(),
                path.display()
            );
            None
        }
        Err(e) => {
            warn!(
                "{}: unreadable offset state ({e}): reading from the start",
                state.display()
            );
            None
        }
    }
}

fn identity(f: &File) -> std::io::Result<(u64, u64, u64)> {
    let m = f.metadata()?;
    Ok((m.dev(), m.ino(), m.len()))
}

/// The file in `dir` with this device and inode (a rotated log).
fn find_by_inode(dir: &Path, dev: u64, ino: u64) -> Option<PathBuf> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let m = e.metadata().ok()?;
        (m.is_file() && m.dev() == dev && m.ino() == ino).then(|| e.path())
    })
}

/// One open file being read: complete lines go out, a partial one waits.
struct Reader {
    file: File,
    dev: u64,
    ino: u64,
    /// Offset just past the last complete line handed out.
    done: u64,
    partial: Vec<u8>,
}

impl Reader {
    fn open(path: &Path, from: u64) -> std::io::Result<Reader> {
        let mut file = File::open(path)?;
        let (dev, ino, len) = identity(&file)?;
        let from = if from > len { 0 } else { from };
        file.seek(SeekFrom::Start(from))?;
        Ok(Reader {
            file,
            dev,
            ino,
            done: from,
            partial: Vec::new(),
        })
    }

    /// Reads what is there; returns complete lines (and the partial one at
    /// the end when `final_read`, the file being rotated away).
    fn read_lines(&mut self, final_read: bool) -> std::io::Result<Vec<String>> {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut lines = Vec::new();
        loop {
            let n = self.file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let mut start = 0;
            for (i, b) in buf[..n].iter().enumerate() {
                if *b == b'\n' {
                    self.partial.extend_from_slice(&buf[start..i]);
                    self.done += self.partial.len() as u64 + 1;
                    lines.push(String::from_utf8_lossy(&self.partial).into_owned());
                    self.partial.clear();
                    start = i + 1;
                }
            }
            self.partial.extend_from_slice(&buf[start..n]);
            if lines.len() >= BATCH_LINES {
                break;
            }
        }
        if final_read && !self.partial.is_empty() {
            self.done += self.partial.len() as u64;
            lines.push(String::from_utf8_lossy(&self.partial).into_owned());
            self.partial.clear();
        }
        Ok(lines)
    }

    fn position(&self) -> Position {
        Position {
            dev: self.dev,
            ino: self.ino,
            offset: self.done,
        }
    }
}

impl FileTail {
    fn send(&self, tx: &mpsc::Sender<Batch<Item>>, lines: Vec<String>, pos: Position) -> bool {
        if lines.is_empty() {
            return true;
        }
        let items: Vec<Item> = lines.iter().flat_map(|l| parse_line(l)).collect();
        let mut batch = Batch::new(items, self.path.display().to_string());
        if let Some(state) = &self.state_file {
            let (state, path) = (state.clone(), self.path.clone());
            batch = batch.with_ack(Box::new(move || save(&state, &path, pos)));
        }
        tx.blocking_send(batch).is_ok()
    }

    fn follow(
        self,
        tx: mpsc::Sender<Batch<Item>>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let saved = self.state_file.as_deref().and_then(|s| load(s, &self.path));
        // Wait for the file to exist (the API server may start after us).
        let mut waited = false;
        let mut reader = loop {
            match Reader::open(&self.path, 0) {
                Ok(r) => break r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !waited {
                        info!(path = %self.path.display(), "waiting for the audit log to appear");
                        waited = true;
                    }
                    if *stop.borrow() {
                        return Ok(());
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) => anyhow::bail!("cannot open {}: {e}", self.path.display()),
            }
        };
        if let Some(s) = saved {
            if (s.dev, s.ino) == (reader.dev, reader.ino) {
                reader = Reader::open(&self.path, s.offset)?;
                info!(path = %self.path.display(), offset = reader.done, "resuming the audit log");
            } else {
                let dir = self.path.parent().unwrap_or(Path::new("."));
                match find_by_inode(dir, s.dev, s.ino) {
                    Some(old) => {
                        info!(rotated = %old.display(), offset = s.offset, "finishing the log rotated while stopped");
                        let mut r = Reader::open(&old, s.offset)?;
                        loop {
                            let lines = r.read_lines(true)?;
                            if lines.is_empty() {
                                break;
                            }
                            if !self.send(&tx, lines, r.position()) {
                                return Ok(());
                            }
                        }
                    }
                    None => warn!(
                        path = %self.path.display(),
                        "the file read before the restart is gone (rotated and removed): \
                         its unread lines are lost; reading the current file from the start"
                    ),
                }
            }
        }
        loop {
            let lines = reader.read_lines(false)?;
            let got = !lines.is_empty();
            if !self.send(&tx, lines, reader.position()) {
                return Ok(());
            }
            // Stop at a batch boundary: what was sent is written and acknowledged.
            if *stop.borrow() {
                return Ok(());
            }
            if got {
                continue;
            }
            match std::fs::metadata(&self.path) {
                Ok(m) if (m.dev(), m.ino()) != (reader.dev, reader.ino) => {
                    // Renamed away: what the old file still has, then the new one.
                    let rest = reader.read_lines(true)?;
                    if !self.send(&tx, rest, reader.position()) {
                        return Ok(());
                    }
                    match Reader::open(&self.path, 0) {
                        Ok(r) => {
                            info!(path = %self.path.display(), "audit log rotated: following the new file");
                            reader = r;
                        }
                        Err(e) => warn!("cannot open the new {}: {e}", self.path.display()),
                    }
                }
                Ok(m) if m.len() < reader.done => {
                    info!(path = %self.path.display(), "audit log truncated: reading from the start");
                    reader = Reader::open(&self.path, 0)?;
                }
                _ => {}
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Source<Item> for FileTail {
    fn describe(&self) -> String {
        format!("audit log {}", self.path.display())
    }

    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<Batch<Item>>,
        stop: watch::Receiver<bool>,
    ) -> SourceFuture {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || self.follow(tx, stop))
                .await
                .map_err(|e| anyhow::anyhow!("audit log reader failed: {e}"))?
        })
    }
}

impl Source<Item> for Stdin {
    fn describe(&self) -> String {
        "audit events on stdin".into()
    }

    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<Batch<Item>>,
        _stop: watch::Receiver<bool>,
    ) -> SourceFuture {
        Box::pin(async move {
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let stdin = std::io::stdin();
                let mut lines = Vec::new();
                for line in stdin.lock().lines() {
                    lines.extend(parse_line(&line?));
                    if lines.len() >= BATCH_LINES
                        && tx
                            .blocking_send(Batch::new(std::mem::take(&mut lines), "stdin"))
                            .is_err()
                    {
                        return Ok(());
                    }
                }
                let _ = tx.blocking_send(Batch::new(lines, "stdin"));
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("stdin reader failed: {e}"))?
        })
    }
}
