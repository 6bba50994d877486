//! Reading the ring buffer without making the traced processes pay for it.
//!
//! A kernel wake-up per record costs the process that exec'd an IPI on its
//! own CPU (5-20 µs per record measured on this project's VMs). So while
//! records keep coming the agent polls the ring every 2 ms and the
//! programs never wake it; after a quiet spell it tells them it sleeps
//! (`READER` map) and waits for the wake-up the next record then sends. It
//! stays asleep, woken per record, while records only trickle in (one
//! command's fork, exec and exit), and polls again when a burst starts.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    time::{Interval, MissedTickBehavior},
};

use super::loader::ReaderState;

/// How often a busy reader drains the ring by default: the most a record
/// waits (`--poll-interval-ms`).
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Empty polls in a row before the reader goes to sleep.
const IDLE_POLLS: u32 = 25;
/// While asleep, drain this often anyway: a record committed in the instant
/// between the program's check of `READER` and the reader falling asleep
/// sends no wake-up.
const BACKSTOP: Duration = Duration::from_millis(100);
/// An asleep reader stays asleep (woken per record) for a trickle, such as
/// the fork, exec and exit of one command, and polls again once more than
/// this many records arrive within [`BURST_WINDOW`].
const BURST_RECORDS: usize = 16;
const BURST_WINDOW: Duration = Duration::from_millis(10);

pub struct RingReader {
    ring: AsyncFd<RingBuf<MapData>>,
    state: ReaderState,
    poll: PollTimer,
    backstop: Interval,
    asleep: bool,
    idle_polls: u32,
    /// Records read while asleep since `window_start`.
    window_records: usize,
    window_start: Instant,
    /// Drain once more without waiting (a full batch, or just fell asleep).
    again: bool,
}

impl RingReader {
    pub fn new(
        ring: RingBuf<MapData>,
        mut state: ReaderState,
        poll_interval: Duration,
    ) -> anyhow::Result<Self> {
        // SAFETY: the RingBuf owns its map fd and keeps it open for as long
        // as the AsyncFd (which owns the RingBuf) lives.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("cannot poll the ring buffer: {e}"))?;
        state.set_asleep(false)?;
        let poll = PollTimer::new(poll_interval)
            .map_err(|e| anyhow::anyhow!("cannot create the ring's poll timer: {e}"))?;
        poll.arm()?;
        let mut backstop = tokio::time::interval(BACKSTOP);
        backstop.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Ok(Self {
            ring,
            state,
            poll,
            backstop,
            asleep: false,
            idle_polls: 0,
            window_records: 0,
            window_start: Instant::now(),
            again: false,
        })
    }

    /// Waits until records may be there: the next poll tick while busy, the
    /// kernel's wake-up (or the backstop) while asleep.
    pub async fn ready(&mut self) -> std::io::Result<()> {
        if std::mem::take(&mut self.again) {
            return Ok(());
        }
        if !self.asleep {
            return self.poll.tick().await;
        }
        tokio::select! {
            guard = self.ring.readable_mut() => {
                // Cleared before the drain that follows: a record after that
                // drain sends a new wake-up, so none is lost.
                guard?.clear_ready();
            }
            _ = self.backstop.tick() => {}
        }
        Ok(())
    }

    /// Hands up to `max` records to `f` in ring order; returns how many,
    /// then adjusts polling to what it found.
    pub fn drain<E>(
        &mut self,
        max: usize,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut n = 0;
        let ring = self.ring.get_mut();
        while n < max {
            let Some(item) = ring.next() else { break };
            n += 1;
            f(&item)?;
        }
        if let Err(e) = self.settle(n, max) {
            tracing::warn!("{e:#}; staying in polling mode");
            self.asleep = false;
        }
        Ok(n)
    }

    /// Whatever is left in the ring (at shutdown).
    pub fn drain_all<E>(&mut self, mut f: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            f(&item)?;
        }
        Ok(())
    }

    /// Whether the reader currently waits for wake-ups (for tests/metrics).
    pub fn asleep(&self) -> bool {
        self.asleep
    }

    fn settle(&mut self, n: usize, max: usize) -> anyhow::Result<()> {
        if n == max {
            self.again = true;
        }
        if n > 0 {
            self.idle_polls = 0;
            if self.asleep {
                let now = Instant::now();
                if now.duration_since(self.window_start) > BURST_WINDOW {
                    (self.window_start, self.window_records) = (now, 0);
                }
                self.window_records += n;
                if self.window_records > BURST_RECORDS {
                    self.state.set_asleep(false)?;
                    self.asleep = false;
                    self.poll.arm()?;
                }
            }
            return Ok(());
        }
        if self.asleep {
            return Ok(());
        }
        self.idle_polls += 1;
        if self.idle_polls >= IDLE_POLLS {
            self.state.set_asleep(true)?;
            self.asleep = true;
            self.poll.disarm()?;
            // Records committed before the programs saw the flag sent no
            // wake-up: look once more before waiting.
            self.again = true;
            self.backstop.reset();
        }
        Ok(())
    }
}

/// The busy reader's poll clock: a periodic timerfd.
///
/// Not tokio's `Interval`: it re-arms its timer after every tick, and a
/// timer due before the time driver's next wake-up makes tokio unpark its
/// own driver, an eventfd write and a second `epoll_wait` per tick (strace
/// at 1 000 execs/s: 961 `epoll_wait` and 489 eventfd writes per second).
/// With a periodic timerfd, a tick is one `epoll_wait` and the `read` that
/// re-arms it. Three libc calls, so no crate for them.
struct PollTimer {
    fd: AsyncFd<OwnedFd>,
    period: Duration,
}

impl PollTimer {
    fn new(period: Duration) -> io::Result<Self> {
        // SAFETY: plain syscall; the fd it returns is owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the AsyncFd owns the OwnedFd, so the fd stays open while
        // it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(Self { fd, period })
    }

    /// Ticks every period from one period from now.
    fn arm(&self) -> io::Result<()> {
        self.set(self.period)
    }

    /// No ticks until armed again (an asleep reader waits for the kernel).
    fn disarm(&self) -> io::Result<()> {
        self.set(Duration::ZERO)
    }

    fn set(&self, period: Duration) -> io::Result<()> {
        let ts = libc::timespec {
            tv_sec: period.as_secs() as libc::time_t,
            tv_nsec: period.subsec_nanos() as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: ts,
            it_value: ts,
        };
        // SAFETY: the fd is a timerfd we own; `spec` outlives the call.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    async fn tick(&mut self) -> io::Result<()> {
        let mut guard = self.fd.readable_mut().await?;
        // The read re-arms a periodic timerfd: the kernel starts the next
        // period only when the expiry count is read.
        let mut expiries = [0u8; 8];
        // SAFETY: reads 8 bytes into a buffer of 8 from our own fd.
        let n = unsafe {
            libc::read(
                guard.get_inner().as_raw_fd(),
                expiries.as_mut_ptr().cast(),
                8,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
        }
        guard.clear_ready();
        Ok(())
    }
}
