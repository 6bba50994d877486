//! The interface between an input and the shared [`crate::sink::Sink`].
//!
//! A source reads records from somewhere (an HTTPS endpoint, a log file,
//! stdin) and sends them in [`Batch`]es over a bounded channel to the one
//! task that maps, evaluates and writes them. Each batch carries an
//! acknowledgement, run once its documents are written and flushed, which
//! is when a file source may persist its offset. A new source implements
//! [`Source`]; the engine and the output do not change.
//!
//! The kernel pipeline is the other source. It drives its sink directly
//! from the ring reader, with no channel between, because there one queue
//! hop per exec would cost more than the rest of the path (see `run`).

use std::{future::Future, pin::Pin};

use tokio::sync::{mpsc, watch};

/// Called when a batch's documents are written and flushed.
pub type Ack = Box<dyn FnOnce() + Send>;

/// Records from one read of a source.
pub struct Batch<T> {
    pub items: Vec<T>,
    /// Where they came from, for messages (`webhook`, a file path, `stdin`).
    pub origin: String,
    pub ack: Option<Ack>,
}

impl<T> Batch<T> {
    pub fn new(items: Vec<T>, origin: impl Into<String>) -> Self {
        Batch {
            items,
            origin: origin.into(),
            ack: None,
        }
    }

    pub fn with_ack(mut self, ack: Ack) -> Self {
        self.ack = Some(ack);
        self
    }
}

pub type SourceFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// An input of records of type `T`.
pub trait Source<T>: Send {
    /// What the start-up log calls it.
    fn describe(&self) -> String;

    /// Reads until the input ends or `stop` turns true, sending batches
    /// to `tx`. Returning drops the sender; when every source has
    /// returned, the consumer drains the channel and stops.
    fn run(
        self: Box<Self>,
        tx: mpsc::Sender<Batch<T>>,
        stop: watch::Receiver<bool>,
    ) -> SourceFuture;
}
