//! NDJSON writer: one JSON object per line, buffered, flushed at least
//! every `flush_interval` so a pipe reader sees lines promptly.
//!
//! Each document is serialised into a scratch buffer first and handed to
//! the output whole, so a line is never interleaved or half-written by
//! this writer. serde_json escapes newlines, quotes and control
//! characters, so one document can never span two lines.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    os::fd::AsFd,
    time::{Duration, Instant},
};

use serde::Serialize;

/// Flush at least this often while lines are pending (alerts are flushed
/// at once by the caller).
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(10);
const BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The reading end of stdout is gone (EPIPE): nobody consumes events
    /// any more. The pipeline decides whether to stop.
    #[error("output reader went away (broken pipe)")]
    ReaderGone,
    #[error("writing output failed: {0}")]
    Io(#[source] io::Error),
    /// Only JSON objects are valid lines of the event stream.
    #[error("refusing to write a JSON {0} as an event line")]
    NotAnObject(&'static str),
}

impl From<io::Error> for OutputError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Self::ReaderGone
        } else {
            Self::Io(e)
        }
    }
}

/// What a line is, for a destination that may shed lines under pressure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineClass {
    /// An event of this kind (`exec`, `fork`, `end`, ...): shed first.
    Event(&'static str),
    /// An alert: shed only past its own, larger limit.
    Alert,
}

/// Where whole lines go: a buffered writer (takes every line), or the
/// bounded queue in front of stdout (`super::queue`).
pub trait Lines {
    /// Takes one whole line, newline included; `false` when it was shed.
    fn put(&mut self, line: &[u8], class: LineClass) -> io::Result<bool>;
    fn flush(&mut self) -> io::Result<()>;
}

impl<W: Write> Lines for BufWriter<W> {
    fn put(&mut self, line: &[u8], _: LineClass) -> io::Result<bool> {
        self.write_all(line)?;
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        Write::flush(self)
    }
}

pub struct NdjsonWriter<O: Lines> {
    out: O,
    scratch: Vec<u8>,
    flush_interval: Duration,
    last_flush: Instant,
    /// Lines accepted since the last flush.
    pending: usize,
    lines: u64,
    bytes: u64,
    /// Lines shed by the destination, per event kind (`alert` for alerts).
    shed: Vec<(&'static str, u64)>,
}

impl NdjsonWriter<BufWriter<File>> {
    /// Writes to stdout through its own buffer. A dup of fd 1 is used
    /// because `std::io::Stdout` is line-buffered (a write syscall per
    /// event) and its lock is not `Send`.
    pub fn stdout() -> io::Result<Self> {
        Ok(Self::new(stdout_file()?))
    }
}

/// A dup of fd 1 (see [`NdjsonWriter::stdout`]).
pub fn stdout_file() -> io::Result<File> {
    Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
}

impl<W: Write> NdjsonWriter<BufWriter<W>> {
    pub fn new(out: W) -> Self {
        Self::with_flush_interval(out, DEFAULT_FLUSH_INTERVAL)
    }

    pub fn with_flush_interval(out: W, flush_interval: Duration) -> Self {
        Self::over(BufWriter::with_capacity(BUFFER_BYTES, out), flush_interval)
    }

    pub fn get_ref(&self) -> &W {
        self.out.get_ref()
    }
}

impl<O: Lines> NdjsonWriter<O> {
    /// Writes lines to `out` (for instance a [`super::queue::QueuedLines`]).
    pub fn over(out: O, flush_interval: Duration) -> Self {
        Self {
            out,
            scratch: Vec::with_capacity(4096),
            flush_interval,
            last_flush: Instant::now(),
            pending: 0,
            lines: 0,
            bytes: 0,
            shed: Vec::new(),
        }
    }

    pub fn destination(&mut self) -> &mut O {
        &mut self.out
    }

    /// Appends one alert (or other document never shed before alerts) as
    /// one line; flushes when the interval is due.
    pub fn write<T: Serialize + ?Sized>(&mut self, doc: &T) -> Result<(), OutputError> {
        self.write_as(doc, LineClass::Alert)
    }

    /// Appends one event of `kind`: the first to be shed under pressure.
    pub fn write_event<T: Serialize + ?Sized>(
        &mut self,
        doc: &T,
        kind: &'static str,
    ) -> Result<(), OutputError> {
        self.write_as(doc, LineClass::Event(kind))
    }

    fn write_as<T: Serialize + ?Sized>(
        &mut self,
        doc: &T,
        class: LineClass,
    ) -> Result<(), OutputError> {
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, doc).map_err(io::Error::from)?;
        let kind = match self.scratch.first() {
            Some(b'{') => None,
            Some(b'[') => Some("array"),
            Some(b'"') => Some("string"),
            Some(b'n') => Some("null"),
            Some(b't' | b'f') => Some("boolean"),
            _ => Some("number"),
        };
        if let Some(kind) = kind {
            return Err(OutputError::NotAnObject(kind));
        }
        self.scratch.push(b'\n');
        if !self.out.put(&self.scratch, class)? {
            let kind = match class {
                LineClass::Event(k) => k,
                LineClass::Alert => "alert",
            };
            match self.shed.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => self.shed.push((kind, 1)),
            }
            return Ok(());
        }
        self.lines += 1;
        self.bytes += self.scratch.len() as u64;
        self.pending += 1;
        // Reading the clock per line was 2 % of the agent's CPU in an exec
        // storm; callers flush after each batch, this bounds a long one.
        if self.pending.is_multiple_of(32) {
            self.flush_if_due()?;
        }
        Ok(())
    }

    /// Flushes if lines are pending and the interval has passed. Call it
    /// from a timer too, so a quiet period never strands buffered lines.
    pub fn flush_if_due(&mut self) -> Result<bool, OutputError> {
        if self.pending > 0 && self.last_flush.elapsed() >= self.flush_interval {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Flushes everything buffered (end of a batch, shutdown).
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush()?;
        self.pending = 0;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Lines written (accepted into the buffer) so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes of those lines, newlines included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Lines shed so far, per kind (`alert` for alerts).
    pub fn shed(&self) -> &[(&'static str, u64)] {
        &self.shed
    }

    /// Lines of `kind` shed so far.
    pub fn shed_of(&self, kind: &str) -> u64 {
        self.shed
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, os::fd::FromRawFd, rc::Rc};

    use serde_json::{Value, json};

    use super::*;

    /// Records every write call, so tests can see when data left the buffer.
    #[derive(Clone, Default)]
    struct Sink(Rc<RefCell<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_document_is_exactly_one_line() {
        let sink = Sink::default();
        let mut w = NdjsonWriter::new(sink.clone());
        let hostile = json!({"process": {"args": ["a\nb", "\"q\"", "\\", "\u{1}\u{7f}", "\u{fffd}", "\u{2028}"]}});
        w.write(&hostile).unwrap();
        w.write(&json!({"n": 2})).unwrap();
        w.flush().unwrap();
        let out = sink.0.borrow().clone();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2);
        assert!(text.ends_with('\n'));
        assert_eq!(serde_json::from_str::<Value>(lines[0]).unwrap(), hostile);
        assert_eq!(w.lines(), 2);
        assert_eq!(w.bytes(), text.len() as u64);
    }

    #[test]
    fn non_objects_are_refused() {
        let mut w = NdjsonWriter::new(Sink::default());
        assert!(matches!(
            w.write(&json!([1])),
            Err(OutputError::NotAnObject("array"))
        ));
        assert!(matches!(
            w.write(&json!("x")),
            Err(OutputError::NotAnObject("string"))
        ));
        assert_eq!(w.lines(), 0);
    }

    #[test]
    fn lines_stay_buffered_until_the_flush_interval_passes() {
        let sink = Sink::default();
        let mut w = NdjsonWriter::with_flush_interval(sink.clone(), Duration::from_millis(50));
        w.write(&json!({"a": 1})).unwrap();
        assert!(sink.0.borrow().is_empty(), "written before the interval");
        assert!(!w.flush_if_due().unwrap());
        std::thread::sleep(Duration::from_millis(60));
        assert!(w.flush_if_due().unwrap());
        assert_eq!(&*sink.0.borrow(), b"{\"a\":1}\n");
        // Nothing pending: no flush needed.
        std::thread::sleep(Duration::from_millis(60));
        assert!(!w.flush_if_due().unwrap());
    }

    #[test]
    fn a_long_batch_flushes_itself_once_the_interval_passed() {
        let sink = Sink::default();
        let mut w = NdjsonWriter::with_flush_interval(sink.clone(), Duration::from_millis(20));
        w.write(&json!({"a": 1})).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        for _ in 0..30 {
            w.write(&json!({"b": 2})).unwrap();
        }
        assert!(
            sink.0.borrow().is_empty(),
            "the clock is read every 32 lines"
        );
        w.write(&json!({"c": 3})).unwrap();
        assert_eq!(sink.0.borrow().iter().filter(|&&b| b == b'\n').count(), 32);
    }

    #[test]
    fn closed_pipe_reader_is_reported_as_reader_gone() {
        let mut fds = [0; 2];
        // SAFETY: pipe fills two fds; each is then owned by exactly one File.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (r, wr) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        drop(r);
        let mut w = NdjsonWriter::new(wr);
        w.write(&json!({"a": 1})).unwrap();
        // Rust ignores SIGPIPE by default, so the write fails with EPIPE.
        assert!(matches!(w.flush(), Err(OutputError::ReaderGone)));
    }

    #[test]
    fn pipe_reader_sees_the_line_after_a_flush() {
        use std::io::{BufRead, BufReader};
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (r, wr) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let mut w = NdjsonWriter::new(wr);
        w.write(&json!({"event": {"action": "exec"}})).unwrap();
        w.flush().unwrap();
        let mut line = String::new();
        BufReader::new(r).read_line(&mut line).unwrap();
        assert_eq!(line, "{\"event\":{\"action\":\"exec\"}}\n");
    }
}
