//! Signals: SIGINT and SIGTERM are forwarded to the running steps and end the run as
//! cancelled; an `abort_on` rule ends it as failed.

use std::sync::Arc;

use crate::console::Console;

use tokio::sync::watch;

/// A signal asked the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT (Ctrl-C): exit 130.
    Int,
    /// SIGTERM: exit 143.
    Term,
    /// An `abort_on` rule matched an observation: the run fails (exit 1).
    Abort,
}

impl Interrupt {
    /// The exit code pipetape returns.
    pub fn exit_code(self) -> i32 {
        match self {
            Interrupt::Int => 130,
            Interrupt::Term => 143,
            Interrupt::Abort => 1,
        }
    }

    pub(crate) fn signal(self) -> nix::sys::signal::Signal {
        match self {
            Interrupt::Int => nix::sys::signal::Signal::SIGINT,
            Interrupt::Term | Interrupt::Abort => nix::sys::signal::Signal::SIGTERM,
        }
    }
}

/// Listens for SIGINT and SIGTERM and reports them on the returned channel (every signal, so
/// a second one reaches `finally` steps). Call from inside a tokio runtime; the returned task
/// handle stops the listening when aborted.
pub fn forward_signals(
    console: Arc<dyn Console>,
) -> (
    watch::Receiver<Option<Interrupt>>,
    tokio::task::JoinHandle<()>,
) {
    let (_, rx, task) = forward_signals_and_aborts(console);
    (rx, task)
}

/// The interrupt channel's sender (for `abort_on`), its receiver, and the signal listener.
pub type SignalsAndAborts = (
    std::sync::Arc<watch::Sender<Option<Interrupt>>>,
    watch::Receiver<Option<Interrupt>>,
    tokio::task::JoinHandle<()>,
);

/// Like [`forward_signals`], and also returns the sender, so `abort_on` rules can interrupt the
/// run the same way.
pub fn forward_signals_and_aborts(console: Arc<dyn Console>) -> SignalsAndAborts {
    let (tx, rx) = watch::channel(None);
    let tx = std::sync::Arc::new(tx);
    let tx2 = tx.clone();
    let task = tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let which = tokio::select! {
                _ = int.recv() => Interrupt::Int,
                _ = term.recv() => Interrupt::Term,
            };
            let name = if which == Interrupt::Int {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            console.notice(&format!(
                "{name} received: stopping the running steps, then running `finally`"
            ));
            let _ = tx.send(Some(which));
        }
    });
    (tx2, rx, task)
}
