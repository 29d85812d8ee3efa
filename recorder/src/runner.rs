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
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipetape_store::mask::LineState;
use pipetape_store::model::*;
use pipetape_store::writer::OutputBatch;
use pipetape_store::Source;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::spec::{Pipeline, Step};

pub use crate::gates::probe_detail;
use crate::gates::run_gate;
pub use crate::signals::{
    forward_signals, forward_signals_and_aborts, Interrupt, SignalsAndAborts,
};
pub use crate::sink::Sink;

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
    /// The observers' client and stores, which gates read instead of watching again.
    pub shared: Option<crate::observe::Cluster>,
    /// The run's trace: each step's and gate's command gets its span as `TRACEPARENT`.
    pub trace: Option<pipetape_store::trace::RunTrace>,
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
pub(crate) struct StepResult {
    pub(crate) ok: bool,
    pub(crate) exit_code: i32,
    pub(crate) what: String,
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
    sink.console.group(Some(&label));
    let started = Instant::now();
    sink.step_running(&label, true);
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .envs(env)
        .envs(&s.env)
        .envs(opts.trace.as_ref().map(|t| {
            (
                "TRACEPARENT",
                t.traceparent(pipetape_store::trace::SpanOf::Step(stage, &s.name, attempt)),
            )
        }))
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
        sink.console.group(None);
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
            Arc::from(stage),
            Arc::from(s.name.as_str()),
            label.clone(),
            sink.clone(),
        ))
    });
    let err = child.stderr.take().map(|o| {
        tokio::spawn(pump(
            o,
            Stream::Stderr,
            Arc::from(stage),
            Arc::from(s.name.as_str()),
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
    stage: Arc<str>,
    step: Arc<str>,
    label: String,
    sink: Sink,
) {
    let echo = sink.console.echoes();
    let mut r = BufReader::with_capacity(64 << 10, r);
    let mut buf = Vec::with_capacity(256);
    let mut mask_state = LineState::default();
    // Bytes at the head of the reader's buffer known to hold nothing to mask: one pass over
    // each chunk read, so most lines skip the masker.
    let mut clean = 0usize;
    // Lines read from one buffer fill go to the writer as one batch, each stamped when read,
    // their text in one buffer: no allocation per line.
    let mut batch = OutputBatch::new(Source::Step, stage, step, stream);
    // Lines are stamped when the read that brought them in returned: lines that came in one
    // read arrived together (and one clock read per read, not per line, is measurably cheaper).
    let mut stamp = sink.now();
    let show = |batch: &OutputBatch| {
        if echo {
            let lines: Vec<&str> = batch.lines().collect();
            sink.print_lines(&label, &lines, stream == Stream::Stderr);
        }
    };
    loop {
        buf.clear();
        if clean == 0 {
            if let Ok(chunk) = r.fill_buf().await {
                clean = sink.masker.first_candidate(chunk).unwrap_or(chunk.len());
            }
        }
        let buffered = r.buffer().len();
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => {
                show(&batch);
                sink.record_output(batch).await;
                return;
            }
            Ok(_) => {
                let read = buf.len();
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                // Valid UTF-8 (nearly every line) is checked with SIMD; the rest is converted
                // lossily.
                let text = match simdutf8::basic::from_utf8(&buf) {
                    Ok(s) => std::borrow::Cow::Borrowed(s),
                    Err(_) => String::from_utf8_lossy(&buf),
                };
                // More than was buffered: the line needed a read of its own.
                if read > buffered {
                    stamp = sink.now();
                }
                let (wall_ns, mono_ns) = stamp;
                if read <= clean && !mask_state.in_block() {
                    batch.push(wall_ns, mono_ns, &text);
                } else {
                    batch.push(
                        wall_ns,
                        mono_ns,
                        &sink.masker.mask_line(&text, &mut mask_state),
                    );
                }
                clean = clean.saturating_sub(read);
                // Shown and recorded together: when the reader has no more buffered (the step
                // is between writes) or the batch is full.
                if r.buffer().is_empty() || batch.len() >= 256 {
                    show(&batch);
                    let next = batch.empty_like();
                    sink.record_output(std::mem::replace(&mut batch, next))
                        .await;
                }
            }
        }
    }
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

/// `850ms`, `90.0s`, `5m00s`, `1h02m`: [`pipetape_store::time::format_duration`].
pub fn humanize(d: Duration) -> String {
    pipetape_store::time::format_duration(d.as_nanos() as u64)
}
