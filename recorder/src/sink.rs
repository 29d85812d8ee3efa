//! The sink: where records go (masked first, then appended to the log) and what the person
//! watching is told, through the caller's [`Console`]. A recording failure never stops the
//! pipeline.

use std::sync::{Arc, Mutex};

use pipetape_store::mask::Masker;
use pipetape_store::model::*;
use pipetape_store::writer::{LogAppender, OutputBatch};
use pipetape_store::Source;

use crate::console::Console;

/// Where records go, and what the console shows. Masking happens here, before anything is
/// recorded or shown.
#[derive(Clone)]
pub struct Sink {
    appender: Option<LogAppender>,
    pub(crate) masker: Arc<Masker>,
    pub(crate) console: Arc<dyn Console>,
    warned: Arc<Mutex<bool>>,
}

impl Sink {
    /// A sink over `appender` (`None` when the log could not even be created: nothing is
    /// recorded, the pipeline still runs), masking secrets with `masker` everywhere, telling
    /// `console` what happens.
    pub fn new(
        appender: Option<LogAppender>,
        masker: Arc<Masker>,
        console: Arc<dyn Console>,
    ) -> Sink {
        let warned = appender.is_none();
        Sink {
            appender,
            masker,
            console,
            warned: Arc::new(Mutex::new(warned)),
        }
    }

    pub(crate) fn step_running(&self, label: &str, on: bool) {
        self.console.running(label, on);
    }

    /// Replaces every secret in `s` with `***` (no copy when there is nothing to mask).
    pub fn mask<'a>(&self, s: &'a str) -> std::borrow::Cow<'a, str> {
        self.masker.mask(s)
    }

    /// The masker, shared with the cluster observers.
    pub fn masker(&self) -> &Arc<Masker> {
        &self.masker
    }

    /// Records a body. A failure to record is reported once, loudly, and never propagates.
    pub async fn record(&self, source: Source, body: impl Into<Body>) {
        let Some(a) = &self.appender else { return };
        let mut body = body.into();
        // Step output is masked line by line as it is read (with its stream's state).
        if !matches!(body, Body::StepOutput(_)) {
            pipetape_store::mask::redact_body(&self.masker, &mut body);
        }
        if a.append_async(source, body).await.is_err() {
            self.warn_once("the log writer has stopped");
        }
        // The flag is lock-free; the details are read only once something failed.
        if a.has_failed() {
            if let Some(e) = a.health().first_error {
                self.warn_once(&e);
            }
        }
    }

    /// The times a record made now gets (wall ns, mono ns); (0, 0) when not recording.
    pub(crate) fn now(&self) -> (i64, u64) {
        self.appender.as_ref().map_or((0, 0), LogAppender::now)
    }

    /// Records a step's output lines, stamped with [`Sink::now`] as they were read and already
    /// masked (step output is masked line by line as it is read), as one message to the
    /// writer.
    pub(crate) async fn record_output(&self, batch: OutputBatch) {
        let Some(a) = &self.appender else { return };
        if a.append_output_async(batch).await.is_err() {
            self.warn_once("the log writer has stopped");
        }
        if a.has_failed() {
            if let Some(e) = a.health().first_error {
                self.warn_once(&e);
            }
        }
    }

    pub(crate) fn warn_once(&self, what: &str) {
        let mut w = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if !*w {
            *w = true;
            self.console.warn(&format!(
                "recording failed ({what}); the pipeline goes on, the run will be marked incomplete"
            ));
        }
    }

    /// True when recording has failed at some point.
    pub fn recording_failed(&self) -> bool {
        let h = self
            .appender
            .as_ref()
            .map(|a| a.health())
            .unwrap_or_default();
        h.first_error.is_some()
            || h.dropped_records > 0
            || *self.warned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The appender's first error, if any.
    pub fn recording_error(&self) -> Option<String> {
        self.appender.as_ref().and_then(|a| a.health().first_error)
    }

    /// The appender, when recording.
    pub fn appender(&self) -> Option<LogAppender> {
        self.appender.clone()
    }

    /// Waits until everything recorded so far is on disk.
    pub fn flush(&self) {
        if let Some(a) = &self.appender {
            if let Err(e) = a.flush() {
                self.warn_once(&e.to_string());
            }
        }
    }

    /// Shows several lines of one step (masked already).
    pub(crate) fn print_lines(&self, prefix: &str, lines: &[&str], stderr: bool) {
        if !lines.is_empty() {
            self.console.step_lines(prefix, lines, stderr);
        }
    }

    /// Shows one line of a step.
    pub(crate) fn print(&self, prefix: &str, line: &str, stderr: bool) {
        self.console.step_lines(prefix, &[line], stderr);
    }

    /// Shows a line about the run.
    pub(crate) fn banner(&self, text: &str) {
        self.console.banner(text);
    }
}
