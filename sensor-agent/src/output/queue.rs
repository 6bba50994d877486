//! A bounded queue between the pipeline and stdout, so a stalled reader
//! of the output costs events, never alerts, and never stops the ring
//! reader (whose stall would make the kernel drop records blindly).
//!
//! The pipeline appends whole lines to a chunk and hands full chunks (and
//! every flush) to a writer thread. A line is refused (shed) when the bytes
//! queued and not yet written would pass the line's class limit: events
//! at `event_bytes`, alerts only at the separate, larger `alert_bytes`.

use std::{
    collections::VecDeque,
    io::{self, Write},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
};

use super::ndjson::{LineClass, Lines};

/// Chunk size handed to the writer: large enough that a busy pipeline
/// takes the lock rarely, small enough to keep write latency low.
const CHUNK_BYTES: usize = 64 * 1024;

/// Written chunks kept for reuse. The rest are freed, so a burst in which
/// the writer fell behind (up to the 64 MiB alert limit) does not stay
/// resident as spares afterwards.
const SPARE_CHUNKS: usize = 4;

/// Where each class of line starts being shed.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    /// Events are shed once this many bytes wait to be written.
    pub event_bytes: u64,
    /// Alerts are shed only once this many bytes wait.
    pub alert_bytes: u64,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            event_bytes: 8 << 20,
            alert_bytes: 64 << 20,
        }
    }
}

#[derive(Default)]
struct State {
    chunks: VecDeque<Vec<u8>>,
    /// Written chunks handed back for reuse (no allocation per chunk).
    spare: Vec<Vec<u8>>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Bytes handed to the writer and not yet written.
    queued: AtomicU64,
    /// The writer stopped on an error (EPIPE: the reader went away).
    failed: AtomicBool,
    error: Mutex<Option<io::Error>>,
}

/// The pipeline's end of the queue.
pub struct QueuedLines {
    shared: Arc<Shared>,
    chunk: Vec<u8>,
    limits: QueueLimits,
    writer: Option<JoinHandle<()>>,
}

impl QueuedLines {
    /// Starts the writer thread on `out`.
    pub fn spawn<W: Write + Send + 'static>(out: W, limits: QueueLimits) -> io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            queued: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        });
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("output".into())
                .spawn(move || write_loop(&shared, out))?
        };
        Ok(Self {
            shared,
            chunk: Vec::with_capacity(CHUNK_BYTES),
            limits,
            writer: Some(writer),
        })
    }

    /// Bytes accepted and not yet written (the chunk being filled too).
    pub fn queued_bytes(&self) -> u64 {
        self.shared.queued.load(Ordering::Relaxed) + self.chunk.len() as u64
    }

    fn error(&self) -> io::Error {
        match &*self.shared.error.lock().expect("no panics hold it") {
            Some(e) => io::Error::new(e.kind(), e.to_string()),
            None => io::Error::other("output writer stopped"),
        }
    }

    fn hand_over(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        let mut state = self.shared.state.lock().expect("no panics hold it");
        let next = state
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(CHUNK_BYTES));
        let full = std::mem::replace(&mut self.chunk, next);
        self.shared
            .queued
            .fetch_add(full.len() as u64, Ordering::Relaxed);
        state.chunks.push_back(full);
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Hands over what is left, lets the writer write everything, and
    /// waits for it (at shutdown; blocks while the reader is stopped).
    pub fn finish(&mut self) -> io::Result<()> {
        self.hand_over();
        self.shared.state.lock().expect("no panics hold it").closed = true;
        self.shared.wake.notify_one();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(self.error());
        }
        Ok(())
    }
}

impl Drop for QueuedLines {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

impl Lines for QueuedLines {
    fn put(&mut self, line: &[u8], class: LineClass) -> io::Result<bool> {
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(self.error());
        }
        let limit = match class {
            LineClass::Event(_) => self.limits.event_bytes,
            LineClass::Alert => self.limits.alert_bytes,
        };
        if self.queued_bytes() + line.len() as u64 > limit {
            return Ok(false);
        }
        // A line that does not fit starts the next chunk, so a chunk's
        // buffer never grows (doubles) past CHUNK_BYTES for one line.
        if self.chunk.len() + line.len() > self.chunk.capacity() {
            self.hand_over();
        }
        self.chunk.extend_from_slice(line);
        if self.chunk.len() >= CHUNK_BYTES {
            self.hand_over();
        }
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.shared.failed.load(Ordering::Relaxed) {
            return Err(self.error());
        }
        self.hand_over();
        Ok(())
    }
}

fn write_loop(shared: &Shared, mut out: impl Write) {
    let mut batch = VecDeque::new();
    loop {
        {
            let mut state = shared.state.lock().expect("no panics hold it");
            while state.chunks.is_empty() && !state.closed {
                state = shared.wake.wait(state).expect("no panics hold it");
            }
            if state.chunks.is_empty() {
                return;
            }
            std::mem::swap(&mut batch, &mut state.chunks);
        }
        while let Some(mut chunk) = batch.pop_front() {
            if let Err(e) = out.write_all(&chunk) {
                *shared.error.lock().expect("no panics hold it") = Some(e);
                shared.failed.store(true, Ordering::Relaxed);
                return;
            }
            shared
                .queued
                .fetch_sub(chunk.len() as u64, Ordering::Relaxed);
            chunk.clear();
            let mut state = shared.state.lock().expect("no panics hold it");
            if state.spare.len() < SPARE_CHUNKS && chunk.capacity() <= CHUNK_BYTES {
                state.spare.push(chunk);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, pipe};

    use super::*;

    const LIMITS: QueueLimits = QueueLimits {
        event_bytes: 4096,
        alert_bytes: 16384,
    };

    #[test]
    fn lines_reach_the_output_in_order() {
        let (mut rd, wr) = pipe().unwrap();
        let mut q = QueuedLines::spawn(wr, LIMITS).unwrap();
        assert!(q.put(b"a\n", LineClass::Event("exec")).unwrap());
        assert!(q.put(b"b\n", LineClass::Alert).unwrap());
        q.finish().unwrap();
        drop(q);
        let mut s = String::new();
        rd.read_to_string(&mut s).unwrap();
        assert_eq!(s, "a\nb\n");
    }

    #[test]
    fn after_a_backlog_only_a_few_chunk_buffers_stay_allocated() {
        // 2 MiB queued while nobody reads, then drained.
        let (mut rd, wr) = pipe().unwrap();
        let limits = QueueLimits {
            event_bytes: 4 << 20,
            alert_bytes: 4 << 20,
        };
        let mut q = QueuedLines::spawn(wr, limits).unwrap();
        let mut line = vec![b'x'; 999];
        line.push(b'\n');
        for _ in 0..2048 {
            assert!(q.put(&line, LineClass::Event("exec")).unwrap());
        }
        q.flush().unwrap();
        let shared = q.shared.clone();
        let reader = std::thread::spawn(move || {
            let mut n = 0;
            let mut buf = vec![0; 1 << 16];
            while let Ok(k) = rd.read(&mut buf) {
                if k == 0 {
                    break;
                }
                n += k;
            }
            n
        });
        q.finish().unwrap();
        drop(q);
        assert_eq!(reader.join().unwrap(), 2048 * 1000);
        let state = shared.state.lock().unwrap();
        assert!(
            state.spare.len() <= SPARE_CHUNKS,
            "{} spares",
            state.spare.len()
        );
        assert!(state.spare.iter().all(|c| c.capacity() <= CHUNK_BYTES));
    }

    #[test]
    fn a_stalled_reader_sheds_events_first_and_alerts_only_past_their_limit() {
        // Nobody reads: the pipe (64 KiB) and then the queue fill up.
        let (rd, wr) = pipe().unwrap();
        let mut q = QueuedLines::spawn(wr, LIMITS).unwrap();
        let line = [b'x'; 1023];
        let mut line = line.to_vec();
        line.push(b'\n');
        let mut events_taken = 0;
        for _ in 0..200 {
            if q.put(&line, LineClass::Event("exec")).unwrap() {
                events_taken += 1;
            }
            q.flush().unwrap();
        }
        // Give the writer time to block in write(2) on the full pipe.
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(events_taken < 200, "events were shed");
        let queued = q.queued_bytes();
        assert!(queued <= LIMITS.event_bytes, "{queued}");
        let mut alerts_taken = 0;
        for _ in 0..20 {
            if q.put(&line, LineClass::Alert).unwrap() {
                alerts_taken += 1;
            }
        }
        assert!(
            alerts_taken >= 10,
            "alerts have their own room: {alerts_taken}"
        );
        assert!(q.queued_bytes() <= LIMITS.alert_bytes);
        drop(rd);
        assert!(q.finish().is_err(), "the reader went away");
    }

    #[test]
    fn a_gone_reader_is_reported_on_the_next_flush() {
        let (rd, wr) = pipe().unwrap();
        drop(rd);
        let mut q = QueuedLines::spawn(wr, LIMITS).unwrap();
        q.put(b"a\n", LineClass::Event("exec")).unwrap();
        q.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let e = q.flush().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
