//! [`LogAppender`]: a [`LogWriter`] on a thread of its own, fed through a channel, so async and
//! multi-threaded callers never block on compression or fsync; the thread cuts frames on time
//! when records arrive slowly and reports its first failure ([`AppenderHealth`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{now_ns, LogFile, LogWriter, OutputBatch, WriterStats};
use crate::error::{Error, Result};
use crate::model::{Body, Source};

enum Msg {
    Record {
        wall_ns: i64,
        mono_ns: u64,
        source: Source,
        body: Body,
    },
    /// A step's output lines, stamped when read.
    Output(OutputBatch),
    Flush(flume::Sender<Result<(), String>>),
}

/// Health of a [`LogAppender`]: the first error the writer thread hit, if any.
#[derive(Debug, Clone, Default)]
pub struct AppenderHealth {
    /// The first write error, in words.
    pub first_error: Option<String>,
    /// Write failures so far.
    pub failures: u64,
    /// Records dropped so far.
    pub dropped_records: u64,
}

/// A handle that appends to a log running on its own thread. Cloneable; `append` is cheap and
/// never blocks on disk (only, briefly, when the queue is full); `append_async` awaits room
/// instead of blocking. Records are stamped when they are appended.
#[derive(Clone)]
pub struct LogAppender {
    tx: flume::Sender<Msg>,
    start: Instant,
    start_wall_ns: i64,
    health: Arc<Mutex<AppenderHealth>>,
    failed: Arc<std::sync::atomic::AtomicBool>,
}

/// Owns the writer thread; [`AppenderThread::close`] waits for it to write the index.
pub struct AppenderThread {
    thread: Option<std::thread::JoinHandle<Result<WriterStats>>>,
    tx: Option<flume::Sender<Msg>>,
}

impl LogAppender {
    /// Moves `writer` onto a thread. `start` is the instant monotonic offsets count from.
    pub fn spawn<F: LogFile + 'static>(
        writer: LogWriter<F>,
        start: Instant,
    ) -> (LogAppender, AppenderThread) {
        let (tx, rx) = flume::bounded::<Msg>(16 * 1024);
        let health = Arc::new(Mutex::new(AppenderHealth::default()));
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h2, f2) = (health.clone(), failed.clone());
        let thread = std::thread::Builder::new()
            .name("pipetape-writer".into())
            .spawn(move || writer_loop(writer, rx, h2, f2))
            .expect("spawn writer thread");
        (
            LogAppender {
                tx: tx.clone(),
                start,
                start_wall_ns: now_ns() - start.elapsed().as_nanos() as i64,
                health,
                failed,
            },
            AppenderThread {
                thread: Some(thread),
                tx: Some(tx),
            },
        )
    }

    fn stamp(&self, source: Source, body: Body) -> Msg {
        let (wall_ns, mono_ns) = self.now();
        Msg::Record {
            wall_ns,
            mono_ns,
            source,
            body,
        }
    }

    /// The times a record appended now gets: (wall ns since the epoch, mono ns since the
    /// start), from one clock read (wall is the start's wall time plus the monotonic offset).
    pub fn now(&self) -> (i64, u64) {
        let mono_ns = self.start.elapsed().as_nanos() as u64;
        (self.start_wall_ns.wrapping_add(mono_ns as i64), mono_ns)
    }

    /// Appends a step's output lines (see [`OutputBatch`]) as one message. Waits, without
    /// blocking, for room.
    pub async fn append_output_async(&self, batch: OutputBatch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.tx
            .send_async(Msg::Output(batch))
            .await
            .map_err(|_| Error::Usage("the log writer has stopped".into()))
    }

    /// Appends a record from synchronous code. Fails only when the writer thread is gone.
    pub fn append(&self, source: Source, body: impl Into<Body>) -> Result<()> {
        self.tx
            .send(self.stamp(source, body.into()))
            .map_err(|_| Error::Usage("the log writer has stopped".into()))
    }

    /// Appends a record from async code, waiting (not blocking) while the queue is full.
    pub async fn append_async(&self, source: Source, body: impl Into<Body>) -> Result<()> {
        self.tx
            .send_async(self.stamp(source, body.into()))
            .await
            .map_err(|_| Error::Usage("the log writer has stopped".into()))
    }

    /// Waits until everything appended so far is written and fsync'd.
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = flume::bounded(1);
        self.tx
            .send(Msg::Flush(tx))
            .map_err(|_| Error::Usage("the log writer has stopped".into()))?;
        rx.recv()
            .map_err(|_| Error::Usage("the log writer has stopped".into()))?
            .map_err(Error::Usage)
    }

    /// True once the writer has failed to write or had to drop records (cheap: no lock).
    pub fn has_failed(&self) -> bool {
        self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Write failures so far (the recorder reports them and marks the run incomplete).
    pub fn health(&self) -> AppenderHealth {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// The instant monotonic offsets count from.
    pub fn start(&self) -> Instant {
        self.start
    }
}

impl AppenderThread {
    /// Stops accepting records once every [`LogAppender`] clone is dropped, writes the rest,
    /// the index and the trailer. Call after dropping (or while holding no) appenders.
    pub fn close(mut self) -> Result<WriterStats> {
        self.tx.take();
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Usage("the log writer thread panicked".into())),
            None => Err(Error::Usage("the log writer was already closed".into())),
        }
    }
}

fn writer_loop<F: LogFile>(
    mut w: LogWriter<F>,
    rx: flume::Receiver<Msg>,
    health: Arc<Mutex<AppenderHealth>>,
    failed: Arc<std::sync::atomic::AtomicBool>,
) -> Result<WriterStats> {
    let note = |w: &LogWriter<F>, e: &Error| {
        failed.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut h) = health.lock() {
            if h.first_error.is_none() {
                h.first_error = Some(e.to_string());
            }
            h.failures = w.stats().write_failures;
            h.dropped_records = w.stats().dropped_records;
        }
    };
    loop {
        let msg = match w.next_deadline() {
            Some(d) => match rx.recv_deadline(d) {
                Ok(m) => Some(m),
                Err(flume::RecvTimeoutError::Timeout) => None,
                Err(flume::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
        };
        match msg {
            Some(Msg::Record {
                wall_ns,
                mono_ns,
                source,
                body,
            }) => {
                if let Err(e) = w.append(wall_ns, mono_ns, source, body) {
                    note(&w, &e);
                }
            }
            Some(Msg::Output(batch)) => {
                if let Err(e) = w.append_output(&batch) {
                    note(&w, &e);
                }
            }
            Some(Msg::Flush(reply)) => {
                let r = w.flush().map_err(|e| {
                    note(&w, &e);
                    e.to_string()
                });
                let _ = reply.send(r);
            }
            None => {
                if let Err(e) = w.flush_if_due() {
                    note(&w, &e);
                }
            }
        }
    }
    let r = w.finish();
    if let Err(e) = &r {
        note(&w, e);
    }
    r.map(|()| w.stats().clone())
}
