//! Runs a [`Pipeline`]: stages in order, steps in order or in parallel, each step a shell in its
//! own process group, its output captured line by line into the log (masked) and streamed to
//! the terminal with the step's name; timeouts kill the whole group; retries back off;
//! `finally` steps always run; SIGINT/SIGTERM are forwarded and the run ends as cancelled.
//!
//! Start at [`run`]. Everything recorded goes through a [`Sink`], which never lets a recording
//! failure stop the pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipetape_store::mask::{LineState, Masker};
use pipetape_store::model::*;
use pipetape_store::writer::LogAppender;
use pipetape_store::Source;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::spec::{Gate, Pipeline, Step};

/// Where records go, and what the terminal shows. Masking happens here, before anything is
/// recorded or printed.
#[derive(Clone)]
pub struct Sink {
    appender: Option<LogAppender>,
    masker: Arc<Masker>,
    term: Terminal,
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
    fn print(&self, text: &str) {
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

    fn step_running(&self, label: &str, on: bool) {
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

    fn warn_once(&self, what: &str) {
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
    fn print_lines(&self, prefix: &str, lines: &[String], stderr: bool) {
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

    fn print(&self, prefix: &str, line: &str, stderr: bool) {
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

    fn banner(&self, text: &str) {
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

    fn signal(self) -> nix::sys::signal::Signal {
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
    announce: bool,
) -> (
    watch::Receiver<Option<Interrupt>>,
    tokio::task::JoinHandle<()>,
) {
    let (_, rx, task) = forward_signals_and_aborts(announce);
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
pub fn forward_signals_and_aborts(announce: bool) -> SignalsAndAborts {
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
            if announce {
                let name = if which == Interrupt::Int {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                eprintln!(
                    "pipetape: {name} received: stopping the running steps, then running `finally`"
                );
            }
            let _ = tx.send(Some(which));
        }
    });
    (tx2, rx, task)
}

/// The last lines of a probe's output, with its exit code: `exit 1: line | line`.
pub fn probe_detail(code: &str, stdout: &[u8], stderr: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(stderr));
    let tail: Vec<&str> = text
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "exit {code}{}{}",
        if tail.is_empty() { "" } else { ": " },
        tail.join(" | ")
    )
}

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run only these stages (empty: all).
    pub only: Vec<String>,
    /// Skip these stages.
    pub skip: Vec<String>,
    /// Directory that relative workdirs and artifact globs are resolved against.
    pub base_dir: PathBuf,
    /// The cluster `condition` and `none` gates watch (`None`: no cluster, they fail).
    pub cluster: Option<crate::observe::ObserveOptions>,
    /// Where `abort_on` rules learn the running stage and leave their reason.
    pub abort: Option<crate::observe::Abort>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    /// Outcome.
    pub outcome: Outcome,
    /// The exit code for pipetape: 0, the failing step's code, 124 for a timeout, 130/143.
    pub exit_code: i32,
    /// Why, one line.
    pub reason: Option<String>,
}

/// Result of one step.
#[derive(Debug, Clone)]
struct StepResult {
    ok: bool,
    exit_code: i32,
    what: String,
}

/// Runs a pipeline to its end (including `finally`), recording through `sink`. `interrupt`
/// turns `Some` when a signal arrives.
pub async fn run(
    p: &Pipeline,
    opts: &RunOptions,
    sink: &Sink,
    interrupt: watch::Receiver<Option<Interrupt>>,
) -> RunEnd {
    let env: BTreeMap<String, String> = p.env.clone();
    let mut failure: Option<StepResult> = None;
    for stage in &p.stages {
        let selected = (opts.only.is_empty() || opts.only.contains(&stage.name))
            && !opts.skip.contains(&stage.name);
        let interrupted = interrupt.borrow().is_some();
        if !selected || failure.is_some() || interrupted {
            record_skipped(sink, &stage.name, &stage.steps).await;
            continue;
        }
        sink.banner(&format!("== stage {}", stage.name));
        if let Some(a) = &opts.abort {
            a.set_stage(Some(&stage.name));
        }
        let results: Vec<StepResult> = if stage.parallel && stage.steps.len() > 1 {
            let mut set = tokio::task::JoinSet::new();
            for (i, s) in stage.steps.iter().enumerate() {
                let (s, sink, env, opts, intr, stage_name) = (
                    s.clone(),
                    sink.clone(),
                    env.clone(),
                    opts.clone(),
                    interrupt.clone(),
                    stage.name.clone(),
                );
                set.spawn(
                    async move { (i, run_step(&stage_name, &s, &env, &opts, &sink, intr).await) },
                );
            }
            let mut out: Vec<(usize, StepResult)> = Vec::new();
            while let Some(r) = set.join_next().await {
                if let Ok(x) = r {
                    out.push(x);
                }
            }
            out.sort_by_key(|x| x.0);
            out.into_iter().map(|x| x.1).collect()
        } else {
            let mut out = Vec::new();
            for s in &stage.steps {
                let r = run_step(&stage.name, s, &env, opts, sink, interrupt.clone()).await;
                let stop = !r.ok && !s.continue_on_error;
                out.push(r);
                if stop || interrupt.borrow().is_some() {
                    break;
                }
            }
            // Steps after a failure in a sequential stage are skipped.
            record_skipped(sink, &stage.name, &stage.steps[out.len()..]).await;
            out
        };
        for (r, s) in results.iter().zip(&stage.steps) {
            if !r.ok && !s.continue_on_error && failure.is_none() {
                failure = Some(r.clone());
            }
        }
    }
    if let Some(a) = &opts.abort {
        a.set_stage(None);
    }
    let cancelled = *interrupt.borrow();
    if !p.finally.is_empty() {
        sink.banner("== finally");
        // finally runs even after an interrupt; a second interrupt is forwarded to it.
        let (tx, rx) = watch::channel(None);
        let mut intr = interrupt.clone();
        let forward = tokio::spawn(async move {
            let first = *intr.borrow();
            while intr.changed().await.is_ok() {
                let now = *intr.borrow();
                if now != first || first.is_none() {
                    let _ = tx.send(now);
                }
            }
        });
        for s in &p.finally {
            let r = run_step("finally", s, &env, opts, sink, rx.clone()).await;
            if !r.ok && failure.is_none() && cancelled.is_none() && !s.continue_on_error {
                failure = Some(r);
            }
        }
        forward.abort();
    }
    capture_artifacts(p, opts, sink).await;
    match (cancelled, failure) {
        (Some(Interrupt::Abort), _) => RunEnd {
            outcome: Outcome::Failed,
            exit_code: 1,
            reason: Some(
                opts.abort
                    .as_ref()
                    .and_then(|a| a.reason())
                    .unwrap_or_else(|| "aborted by an abort_on rule".into()),
            ),
        },
        (Some(i), _) => RunEnd {
            outcome: Outcome::Cancelled,
            exit_code: i.exit_code(),
            reason: Some(format!(
                "interrupted by {}",
                if i == Interrupt::Int {
                    "SIGINT"
                } else {
                    "SIGTERM"
                }
            )),
        },
        (None, Some(f)) => RunEnd {
            outcome: Outcome::Failed,
            exit_code: if f.exit_code == 0 { 1 } else { f.exit_code },
            reason: Some(f.what),
        },
        (None, None) => RunEnd {
            outcome: Outcome::Passed,
            exit_code: 0,
            reason: None,
        },
    }
}

/// Records `steps` of `stage` as skipped (left out by --only/--skip, or after a failure).
async fn record_skipped(sink: &Sink, stage: &str, steps: &[Step]) {
    for s in steps {
        let body = StepFinished {
            stage: stage.to_string(),
            step: s.name.clone(),
            attempt: 0,
            status: StepStatus::Skipped,
            exit_code: None,
            duration_ns: 0,
        };
        sink.record(Source::Runner, body).await;
    }
}

/// Runs a single step outside any pipeline (wrap mode's script), with the same capture,
/// masking, timeout and signal handling as pipeline steps.
pub async fn run_single(
    s: &Step,
    opts: &RunOptions,
    sink: &Sink,
    interrupt: watch::Receiver<Option<Interrupt>>,
) -> RunEnd {
    let r = run_step("", s, &BTreeMap::new(), opts, sink, interrupt.clone()).await;
    if let Some(i) = *interrupt.borrow() {
        return RunEnd {
            outcome: Outcome::Cancelled,
            exit_code: i.exit_code(),
            reason: Some("interrupted".into()),
        };
    }
    if r.ok {
        RunEnd {
            outcome: Outcome::Passed,
            exit_code: 0,
            reason: None,
        }
    } else {
        RunEnd {
            outcome: Outcome::Failed,
            exit_code: if r.exit_code == 0 { 1 } else { r.exit_code },
            reason: Some(r.what),
        }
    }
}

async fn run_step(
    stage: &str,
    s: &Step,
    env: &BTreeMap<String, String>,
    opts: &RunOptions,
    sink: &Sink,
    interrupt: watch::Receiver<Option<Interrupt>>,
) -> StepResult {
    if let Some(g) = &s.gate {
        return run_gate(stage, s, g, env, opts, sink, interrupt).await;
    }
    let cmd = s.run.clone().unwrap_or_default();
    let mut attempt = 1u32;
    loop {
        let r = run_command(stage, s, &cmd, attempt, env, opts, sink, interrupt.clone()).await;
        if r.ok || attempt > s.retries || interrupt.borrow().is_some() {
            return r;
        }
        let wait = s
            .backoff
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(Duration::from_secs(300));
        sink.record(
            Source::Runner,
            Note {
                level: Level::Warning,
                text: format!(
                    "step {stage}/{} failed (attempt {attempt}); retrying in {:.1}s",
                    s.name,
                    wait.as_secs_f64()
                ),
            },
        )
        .await;
        let mut intr = interrupt.clone();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = intr.wait_for(|x| x.is_some()) => return r,
        }
        attempt += 1;
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_command(
    stage: &str,
    s: &Step,
    cmd: &str,
    attempt: u32,
    env: &BTreeMap<String, String>,
    opts: &RunOptions,
    sink: &Sink,
    mut interrupt: watch::Receiver<Option<Interrupt>>,
) -> StepResult {
    let label = if stage.is_empty() {
        s.name.clone()
    } else {
        format!("{stage}/{}", s.name)
    };
    sink.record(
        Source::Runner,
        StepStarted {
            stage: stage.into(),
            step: s.name.clone(),
            attempt,
            command: Some(sink.mask(cmd).into_owned()),
        },
    )
    .await;
    if sink.term.github {
        sink.banner(&format!("::group::{label}"));
    }
    let started = Instant::now();
    sink.step_running(&label, true);
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .envs(env)
        .envs(&s.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c.process_group(0);
    if let Some(w) = &s.workdir {
        c.current_dir(if w.is_absolute() {
            w.clone()
        } else {
            opts.base_dir.join(w)
        });
    } else if !opts.base_dir.as_os_str().is_empty() {
        c.current_dir(&opts.base_dir);
    }
    let label_done = label.clone();
    let finish = |status: StepStatus, code: Option<i32>, what: String| async move {
        sink.step_running(&label_done, false);
        sink.record(
            Source::Runner,
            StepFinished {
                stage: stage.into(),
                step: s.name.clone(),
                attempt,
                status,
                exit_code: code,
                duration_ns: started.elapsed().as_nanos() as u64,
            },
        )
        .await;
        if sink.term.github {
            sink.banner("::endgroup::");
        }
        StepResult {
            ok: status == StepStatus::Passed,
            exit_code: code.unwrap_or(1),
            what,
        }
    };
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            let line = format!("pipetape: cannot start the step: {e}");
            sink.print(&label, &line, true);
            sink.record(
                Source::Step,
                StepOutput {
                    stage: stage.into(),
                    step: s.name.clone(),
                    stream: Stream::Stderr,
                    line,
                },
            )
            .await;
            return finish(
                StepStatus::Failed,
                Some(127),
                format!("step {label} could not start: {e}"),
            )
            .await;
        }
    };
    let pgid = child.id().map(|p| nix::unistd::Pid::from_raw(p as i32));
    let out = child.stdout.take().map(|o| {
        tokio::spawn(pump(
            o,
            Stream::Stdout,
            stage.to_string(),
            s.name.clone(),
            label.clone(),
            sink.clone(),
        ))
    });
    let err = child.stderr.take().map(|o| {
        tokio::spawn(pump(
            o,
            Stream::Stderr,
            stage.to_string(),
            s.name.clone(),
            label.clone(),
            sink.clone(),
        ))
    });
    let deadline = s.timeout.map(|t| tokio::time::Instant::now() + t);
    let timeout = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    enum Ended {
        Exited(std::io::Result<std::process::ExitStatus>),
        TimedOut,
        Interrupted(Interrupt),
    }
    let ended = tokio::select! {
        st = child.wait() => Ended::Exited(st),
        _ = timeout => Ended::TimedOut,
        i = interrupt.wait_for(|x| x.is_some()) => Ended::Interrupted(i.ok().and_then(|x| *x).unwrap_or(Interrupt::Term)),
    };
    let result = match ended {
        Ended::Exited(st) => Ok(st),
        Ended::TimedOut => {
            stop_group(pgid, nix::sys::signal::Signal::SIGTERM, &mut child).await;
            Err(None)
        }
        Ended::Interrupted(i) => {
            stop_group(pgid, i.signal(), &mut child).await;
            Err(Some(i))
        }
    };
    // The pipes close when every process of the group has exited (or was killed).
    for h in [out, err].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
    }
    match result {
        Ok(Ok(st)) => {
            use std::os::unix::process::ExitStatusExt;
            let code = st.code().or_else(|| st.signal().map(|s| 128 + s));
            if st.success() {
                finish(StepStatus::Passed, Some(0), String::new()).await
            } else {
                let code = code.unwrap_or(1);
                finish(
                    StepStatus::Failed,
                    Some(code),
                    format!("step {label} failed (exit {code})"),
                )
                .await
            }
        }
        Ok(Err(e)) => finish(StepStatus::Failed, None, format!("step {label}: {e}")).await,
        Err(None) => {
            let t = s.timeout.unwrap_or_default();
            finish(
                StepStatus::TimedOut,
                Some(124),
                format!("step {label} timed out after {}", humanize(t)),
            )
            .await
        }
        Err(Some(i)) => {
            finish(
                StepStatus::Cancelled,
                Some(i.exit_code()),
                format!("step {label} interrupted"),
            )
            .await
        }
    }
}

/// Sends `sig` to the step's process group, then SIGKILL after a 5 s grace period.
async fn stop_group(
    pgid: Option<nix::unistd::Pid>,
    sig: nix::sys::signal::Signal,
    child: &mut tokio::process::Child,
) {
    if let Some(p) = pgid {
        let _ = nix::sys::signal::killpg(p, sig);
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        if let Some(p) = pgid {
            let _ = nix::sys::signal::killpg(p, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = child.wait().await;
    } else if let Some(p) = pgid {
        // The shell is gone; anything it left in its group goes too.
        let _ = nix::sys::signal::killpg(p, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Reads a stream line by line (invalid UTF-8 replaced), masks, records and prints each line.
/// Terminal output is written once per chunk read, not once per line.
async fn pump(
    r: impl AsyncRead + Unpin,
    stream: Stream,
    stage: String,
    step: String,
    label: String,
    sink: Sink,
) {
    let mut r = BufReader::with_capacity(64 << 10, r);
    let mut buf = Vec::with_capacity(256);
    let mut pending: Vec<String> = Vec::new();
    let mut mask_state = LineState::default();
    // Bytes at the head of the reader's buffer known to hold nothing to mask: one pass over
    // each chunk read, so most lines skip the masker.
    let mut clean = 0usize;
    loop {
        buf.clear();
        if clean == 0 {
            if let Ok(chunk) = r.fill_buf().await {
                clean = sink.masker.first_candidate(chunk).unwrap_or(chunk.len());
            }
        }
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => {
                sink.print_lines(&label, &pending, stream == Stream::Stderr);
                return;
            }
            Ok(_) => {
                let read = buf.len();
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                let text = String::from_utf8_lossy(&buf);
                let line = if read <= clean && !mask_state.in_block() {
                    text.into_owned()
                } else {
                    sink.masker.mask_line(&text, &mut mask_state).into_owned()
                };
                clean = clean.saturating_sub(read);
                if sink.term.echo {
                    pending.push(line.clone());
                }
                sink.record(
                    Source::Step,
                    StepOutput {
                        stage: stage.clone(),
                        step: step.clone(),
                        stream,
                        line,
                    },
                )
                .await;
                if r.buffer().is_empty() || pending.len() >= 1024 {
                    sink.print_lines(&label, &pending, stream == Stream::Stderr);
                    pending.clear();
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_gate(
    stage: &str,
    s: &Step,
    g: &Gate,
    env: &BTreeMap<String, String>,
    opts: &RunOptions,
    sink: &Sink,
    mut interrupt: watch::Receiver<Option<Interrupt>>,
) -> StepResult {
    if let Some(ig) = &g.images {
        return run_images_gate(stage, s, g, ig, opts, sink).await;
    }
    if let Some((og, none)) = g
        .condition
        .as_ref()
        .map(|o| (o, false))
        .or(g.none.as_ref().map(|o| (o, true)))
    {
        return run_object_gate(stage, s, g, og, none, opts, sink, interrupt).await;
    }
    let (kind, what) = match (&g.command, &g.http) {
        (Some(c), _) => ("command", sink.mask(c).into_owned()),
        (_, Some(u)) => ("http", sink.mask(u).into_owned()),
        _ => ("command", String::new()),
    };
    let label = format!("{stage}/{}", s.name);
    sink.record(
        Source::Gate,
        GateStarted {
            stage: stage.into(),
            gate: s.name.clone(),
            gate_kind: kind.into(),
            description: what.clone(),
            timeout_ns: Some(g.timeout.as_nanos() as u64),
        },
    )
    .await;
    sink.banner(&format!(
        "[{label}] waiting for {kind} gate: {what} (timeout {})",
        humanize(g.timeout)
    ));
    let started = Instant::now();
    sink.step_running(&label, true);
    let deadline = started + g.timeout;
    let mut attempt = 0u32;
    let mut last: String;
    loop {
        attempt += 1;
        let (ok, detail) = match (&g.command, &g.http) {
            (Some(c), _) => probe_command(c, env, s, opts, deadline).await,
            (_, Some(u)) => probe_http(u, g.insecure, deadline).await,
            _ => (false, "no probe".into()),
        };
        let detail = sink.mask(&detail).into_owned();
        last = detail.clone();
        sink.record(
            Source::Gate,
            GateProbe {
                gate: s.name.clone(),
                attempt,
                ok,
                detail,
            },
        )
        .await;
        if ok {
            let d = started.elapsed();
            sink.record(
                Source::Gate,
                GatePassed {
                    gate: s.name.clone(),
                    duration_ns: d.as_nanos() as u64,
                    probes: attempt,
                },
            )
            .await;
            sink.banner(&format!(
                "[{label}] gate passed after {} ({attempt} probes)",
                humanize(d)
            ));
            return StepResult {
                ok: true,
                exit_code: 0,
                what: String::new(),
            };
        }
        let now = Instant::now();
        if now >= deadline || interrupt.borrow().is_some() {
            break;
        }
        let wait = g.interval.min(deadline - now);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = interrupt.wait_for(|x| x.is_some()) => break,
        }
    }
    let d = started.elapsed();
    sink.step_running(&label, false);
    let reason = if interrupt.borrow().is_some() {
        "interrupted".to_string()
    } else {
        format!("timed out after {} ({attempt} probes)", humanize(g.timeout))
    };
    sink.record(
        Source::Gate,
        GateFailed {
            gate: s.name.clone(),
            duration_ns: d.as_nanos() as u64,
            reason: reason.clone(),
            blockers: Vec::new(),
            last_probe: Some(last.clone()),
        },
    )
    .await;
    sink.banner(&format!(
        "[{label}] gate FAILED: {reason}; last probe: {last}"
    ));
    StepResult {
        ok: false,
        exit_code: 1,
        what: format!("gate {} failed: {reason}", s.name),
    }
}

/// An `images` gate: one check of the pods' images against the allowed patterns.
async fn run_images_gate(
    stage: &str,
    s: &Step,
    g: &Gate,
    ig: &crate::observe::ImagesGate,
    opts: &RunOptions,
    sink: &Sink,
) -> StepResult {
    let label = format!("{stage}/{}", s.name);
    let what = format!("every pod image from {}", ig.allowed.join(", "));
    sink.record(
        Source::Gate,
        GateStarted {
            stage: stage.into(),
            gate: s.name.clone(),
            gate_kind: "images".into(),
            description: what.clone(),
            timeout_ns: Some(g.timeout.as_nanos() as u64),
        },
    )
    .await;
    sink.banner(&format!("[{label}] checking images gate: {what}"));
    let started = Instant::now();
    let outcome = match &opts.cluster {
        Some(c) => tokio::time::timeout(g.timeout, crate::observe::images_gate(c, ig))
            .await
            .unwrap_or_else(|_| crate::observe::GateOutcome {
                ok: false,
                probes: 1,
                last: format!("no answer from the cluster within {}", humanize(g.timeout)),
                blockers: Vec::new(),
                error: Some(format!(
                    "no answer from the cluster within {}",
                    humanize(g.timeout)
                )),
            }),
        None => crate::observe::GateOutcome {
            ok: false,
            probes: 0,
            last: "no cluster to check (--no-cluster)".into(),
            blockers: Vec::new(),
            error: Some("no cluster to check (--no-cluster)".into()),
        },
    };
    sink.record(
        Source::Gate,
        GateProbe {
            gate: s.name.clone(),
            attempt: 1,
            ok: outcome.ok,
            detail: outcome.last.clone(),
        },
    )
    .await;
    let d = started.elapsed();
    if outcome.ok {
        sink.record(
            Source::Gate,
            GatePassed {
                gate: s.name.clone(),
                duration_ns: d.as_nanos() as u64,
                probes: 1,
            },
        )
        .await;
        sink.banner(&format!("[{label}] gate passed: {}", outcome.last));
        return StepResult {
            ok: true,
            exit_code: 0,
            what: String::new(),
        };
    }
    let reason = outcome
        .error
        .clone()
        .unwrap_or_else(|| outcome.last.clone());
    sink.record(
        Source::Gate,
        GateFailed {
            gate: s.name.clone(),
            duration_ns: d.as_nanos() as u64,
            reason: reason.clone(),
            blockers: outcome.blockers.clone(),
            last_probe: Some(outcome.last.clone()),
        },
    )
    .await;
    let mut msg = format!("[{label}] gate FAILED: {reason}");
    for b in outcome.blockers.iter().take(10) {
        msg.push_str(&format!(
            "\n[{label}]   pod {}/{}: {}",
            b.namespace, b.name, b.message
        ));
    }
    sink.banner(&msg);
    StepResult {
        ok: false,
        exit_code: 1,
        what: format!("gate {} failed: {reason}", s.name),
    }
}

/// A `condition` or `none` gate: watches the objects and passes the moment the verdict turns;
/// on timeout records the objects in the way with their conditions.
#[allow(clippy::too_many_arguments)]
async fn run_object_gate(
    stage: &str,
    s: &Step,
    g: &Gate,
    og: &crate::observe::ObjectGate,
    none: bool,
    opts: &RunOptions,
    sink: &Sink,
    mut interrupt: watch::Receiver<Option<Interrupt>>,
) -> StepResult {
    let kind = if none { "none" } else { "condition" };
    let what = og.describe(none);
    let label = format!("{stage}/{}", s.name);
    sink.record(
        Source::Gate,
        GateStarted {
            stage: stage.into(),
            gate: s.name.clone(),
            gate_kind: kind.into(),
            description: what.clone(),
            timeout_ns: Some(g.timeout.as_nanos() as u64),
        },
    )
    .await;
    sink.banner(&format!(
        "[{label}] waiting for {kind} gate: {what} (timeout {})",
        humanize(g.timeout)
    ));
    sink.step_running(&label, true);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + g.timeout;
    let outcome = match &opts.cluster {
        None => crate::observe::GateOutcome {
            ok: false,
            probes: 0,
            last: "no cluster to watch (--no-cluster)".into(),
            blockers: Vec::new(),
            error: Some("no cluster to watch (--no-cluster)".into()),
        },
        Some(cluster) => {
            // Probes are recorded the moment the verdict changes (the appender is a channel).
            let appender = sink.appender();
            let gate = s.name.clone();
            crate::observe::object_gate(
                cluster,
                og,
                none,
                deadline,
                async move {
                    let _ = interrupt.wait_for(|x| x.is_some()).await;
                },
                |attempt, ok, detail| {
                    if let Some(a) = &appender {
                        let _ = a.append(
                            Source::Gate,
                            GateProbe {
                                gate: gate.clone(),
                                attempt,
                                ok,
                                detail: detail.to_string(),
                            },
                        );
                    }
                },
            )
            .await
        }
    };
    sink.step_running(&label, false);
    let d = started.elapsed();
    if outcome.ok {
        sink.record(
            Source::Gate,
            GatePassed {
                gate: s.name.clone(),
                duration_ns: d.as_nanos() as u64,
                probes: outcome.probes,
            },
        )
        .await;
        sink.banner(&format!(
            "[{label}] gate passed after {}: {}",
            humanize(d),
            outcome.last
        ));
        return StepResult {
            ok: true,
            exit_code: 0,
            what: String::new(),
        };
    }
    let reason = match (&outcome.error, outcome.last.as_str()) {
        (Some(e), _) => e.clone(),
        (None, "interrupted") => "interrupted".into(),
        (None, last) => format!("timed out after {}: {last}", humanize(g.timeout)),
    };
    sink.record(
        Source::Gate,
        GateFailed {
            gate: s.name.clone(),
            duration_ns: d.as_nanos() as u64,
            reason: reason.clone(),
            blockers: outcome.blockers.clone(),
            last_probe: Some(outcome.last.clone()),
        },
    )
    .await;
    let mut msg = format!("[{label}] gate FAILED: {reason}");
    for b in outcome.blockers.iter().take(5) {
        msg.push_str(&format!(
            "\n[{label}]   blocked by {} {}/{}: {}",
            b.kind, b.namespace, b.name, b.message
        ));
        for c in b.conditions.iter().filter(|c| c.status != "True").take(2) {
            msg.push_str(&format!(
                " ({}={} {}: {})",
                c.type_, c.status, c.reason, c.message
            ));
        }
    }
    sink.banner(&msg);
    StepResult {
        ok: false,
        exit_code: 1,
        what: format!("gate {} failed: {reason}", s.name),
    }
}

/// Runs a probe command once; detail is the exit code and the last lines of its output.
async fn probe_command(
    cmd: &str,
    env: &BTreeMap<String, String>,
    s: &Step,
    opts: &RunOptions,
    deadline: Instant,
) -> (bool, String) {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .envs(env)
        .envs(&s.env)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    c.process_group(0);
    if !opts.base_dir.as_os_str().is_empty() {
        c.current_dir(&opts.base_dir);
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    match tokio::time::timeout(left, c.output()).await {
        Ok(Ok(o)) => {
            let code = o
                .status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "signal".into());
            (
                o.status.success(),
                probe_detail(&code, &o.stdout, &o.stderr),
            )
        }
        Ok(Err(e)) => (false, format!("cannot run the probe: {e}")),
        Err(_) => (false, "the probe ran past the gate's timeout".into()),
    }
}

/// GETs a URL once; passes on 2xx. The request runs on a blocking thread (ureq, rustls).
async fn probe_http(url: &str, insecure: bool, deadline: Instant) -> (bool, String) {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100))
        .min(Duration::from_secs(10));
    let url = url.to_string();
    let res = tokio::task::spawn_blocking(move || {
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(insecure)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(left))
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent("pipetape")
            .build()
            .into();
        match agent.get(&url).call() {
            Ok(resp) => {
                let st = resp.status();
                (
                    st.is_success(),
                    format!(
                        "HTTP {} {}",
                        st.as_u16(),
                        st.canonical_reason().unwrap_or("")
                    ),
                )
            }
            Err(e) => (false, format!("{url}: {e}")),
        }
    })
    .await;
    res.unwrap_or_else(|e| (false, format!("the probe failed: {e}")))
}

async fn capture_artifacts(p: &Pipeline, opts: &RunOptions, sink: &Sink) {
    for a in &p.artifacts {
        let pattern = if Path::new(&a.path).is_absolute() {
            a.path.clone()
        } else {
            opts.base_dir.join(&a.path).to_string_lossy().into_owned()
        };
        let paths = match glob::glob(&pattern) {
            Ok(p) => p,
            Err(e) => {
                sink.record(
                    Source::Runner,
                    Note {
                        level: Level::Warning,
                        text: format!("artifact pattern '{}': {e}", a.path),
                    },
                )
                .await;
                continue;
            }
        };
        let mut found = 0;
        for path in paths.flatten().filter(|p| p.is_file()) {
            found += 1;
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let mut data = Vec::new();
            if let Ok(f) = std::fs::File::open(&path) {
                use std::io::Read;
                let _ = f.take(a.max_bytes).read_to_end(&mut data);
            }
            let truncated = size > data.len() as u64;
            let media_type = match path.extension().and_then(|e| e.to_str()) {
                Some("xml") => "application/xml",
                Some("json") => "application/json",
                Some("txt" | "log") => "text/plain",
                Some("html") => "text/html",
                _ => "application/octet-stream",
            };
            let rel = path
                .strip_prefix(&opts.base_dir)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Masking applies to text artifacts too.
            if let Ok(text) = std::str::from_utf8(&data) {
                let masked = sink.mask(text);
                if masked != text {
                    data = masked.into_owned().into_bytes();
                }
            }
            sink.record(
                Source::Runner,
                Artifact {
                    name,
                    path: rel,
                    media_type: media_type.into(),
                    size,
                    truncated,
                    data,
                },
            )
            .await;
        }
        if found == 0 {
            sink.record(
                Source::Runner,
                Note {
                    level: Level::Warning,
                    text: format!("artifact pattern '{}' matched no file", a.path),
                },
            )
            .await;
        }
    }
}

/// `90s`, `5m`, `1h2m`.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_lists_the_longest_running_first() {
        let r = vec![
            ("test/unit".to_string(), Duration::from_secs(3)),
            ("build/images".to_string(), Duration::from_secs(75)),
        ];
        assert_eq!(
            status_line(&r),
            "running: build/images 1m15s · test/unit 3.0s"
        );
    }
}
