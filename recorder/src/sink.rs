//! The sink: where records go (masked first, then appended to the log) and what the terminal
//! shows (step lines, the live status line, GitHub's `::group::` markers). A recording failure
//! never stops the pipeline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipetape_store::mask::Masker;
use pipetape_store::model::*;
use pipetape_store::writer::LogAppender;
use pipetape_store::Source;

use crate::runner::humanize;

/// Where records go, and what the terminal shows. Masking happens here, before anything is
/// recorded or printed.
#[derive(Clone)]
pub struct Sink {
    appender: Option<LogAppender>,
    pub(crate) masker: Arc<Masker>,
    pub(crate) term: Terminal,
    warned: Arc<Mutex<bool>>,
    live: Arc<LiveView>,
}

/// The live view: which steps run, since when, and whether the status line is on screen. It
/// holds no recording state, so the ticker that redraws it cannot keep the log open.
#[derive(Default)]
struct LiveView(Mutex<Live>);

#[derive(Default)]
struct Live {
    running: BTreeMap<String, Instant>,
    shown: bool,
}

impl LiveView {
    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn redraw(&self) {
        use std::io::Write;
        let mut l = self.lock();
        let mut out = std::io::stdout().lock();
        if l.shown {
            let _ = out.write_all(b"\r\x1b[2K");
            l.shown = false;
        }
        if !l.running.is_empty() {
            let now = Instant::now();
            let r: Vec<(String, Duration)> = l
                .running
                .iter()
                .map(|(k, v)| (k.clone(), now - *v))
                .collect();
            let _ = write!(out, "\x1b[2m{}\x1b[0m", status_line(&r));
            l.shown = true;
        }
        let _ = out.flush();
    }

    /// Prints a line under the status line (clearing and redrawing it).
    pub(crate) fn print(&self, text: &str) {
        use std::io::Write;
        {
            let mut l = self.lock();
            let mut out = std::io::stdout().lock();
            if l.shown {
                let _ = out.write_all(b"\r\x1b[2K");
                l.shown = false;
            }
            let _ = writeln!(out, "{text}");
        }
        self.redraw();
    }
}

/// The status line: running steps with their elapsed time, longest-running first.
pub fn status_line(running: &[(String, Duration)]) -> String {
    let mut r: Vec<&(String, Duration)> = running.iter().collect();
    r.sort_by_key(|x| std::cmp::Reverse(x.1));
    let parts: Vec<String> = r
        .iter()
        .map(|(l, d)| format!("{l} {}", humanize(*d)))
        .collect();
    format!("running: {}", parts.join(" · "))
}

/// How output reaches the terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Terminal {
    /// Print step output (prefixed with `[stage/step]`).
    pub echo: bool,
    /// Wrap each step's output in `::group::` / `::endgroup::` (GitHub Actions).
    pub github: bool,
    /// Keep a status line of running steps and their elapsed time (an interactive terminal).
    pub live: bool,
}

impl Sink {
    /// A sink over `appender` (`None` when the log could not even be created: nothing is
    /// recorded, the pipeline still runs), masking secrets with `masker` everywhere.
    pub fn new(appender: Option<LogAppender>, masker: Arc<Masker>, term: Terminal) -> Sink {
        let warned = appender.is_none();
        let sink = Sink {
            appender,
            masker,
            term,
            warned: Arc::new(Mutex::new(warned)),
            live: Arc::default(),
        };
        if term.live && term.echo {
            // Redraw the status line every second while the sink lives.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let view = Arc::downgrade(&sink.live);
                rt.spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        match view.upgrade() {
                            Some(v) => v.redraw(),
                            None => return,
                        }
                    }
                });
            }
        }
        sink
    }

    pub(crate) fn step_running(&self, label: &str, on: bool) {
        if !self.term.live {
            return;
        }
        {
            let mut l = self.live.lock();
            if on {
                l.running.insert(label.to_string(), Instant::now());
            } else {
                l.running.remove(label);
            }
        }
        // Redraw now, so nothing printed after the last step lands on a stale status line.
        self.live.redraw();
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

    pub(crate) fn warn_once(&self, what: &str) {
        let mut w = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if !*w {
            *w = true;
            eprintln!(
                "pipetape: WARNING: recording failed ({what}); the pipeline goes on, the run will be marked incomplete"
            );
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

    /// Prints several lines of one step in one write.
    pub(crate) fn print_lines(&self, prefix: &str, lines: &[String], stderr: bool) {
        if !self.term.echo || lines.is_empty() {
            return;
        }
        if self.term.live {
            for l in lines {
                self.print(prefix, l, stderr);
            }
            return;
        }
        use std::io::Write;
        let mut text =
            String::with_capacity(lines.iter().map(|l| l.len() + prefix.len() + 4).sum());
        for l in lines {
            text.push('[');
            text.push_str(prefix);
            text.push_str("] ");
            text.push_str(l);
            text.push('\n');
        }
        let _ = if stderr {
            std::io::stderr().write_all(text.as_bytes())
        } else {
            std::io::stdout().lock().write_all(text.as_bytes())
        };
    }

    pub(crate) fn print(&self, prefix: &str, line: &str, stderr: bool) {
        if !self.term.echo {
            return;
        }
        use std::io::Write;
        if self.term.live {
            // Clear the status line, print, draw it again (all on the terminal's stdout).
            self.live.print(&format!("[{prefix}] {line}"));
            return;
        }
        let text = format!("[{prefix}] {line}\n");
        // A closed terminal must not stop the pipeline.
        let _ = if stderr {
            std::io::stderr().write_all(text.as_bytes())
        } else {
            std::io::stdout().write_all(text.as_bytes())
        };
    }

    pub(crate) fn banner(&self, text: &str) {
        if self.term.echo {
            if self.term.live {
                self.live.print(text);
                return;
            }
            use std::io::Write;
            let _ = writeln!(std::io::stdout(), "{text}");
        }
    }
}
