//! `pipetape replay report --html FILE` and `pipetape replay export -o DIR`: the run as one
//! self-contained HTML page, and as the classic CI artifacts (plain files).

use std::path::{Component, Path, PathBuf};

use clap::Args;
use pipetape_replayer::analysis::baseline::{self, BaselineError, Spec};
use pipetape_replayer::analysis::diff::{BaselineRun, Report, Thresholds};
use pipetape_replayer::analysis::metrics;
use pipetape_replayer::render::html::{self, Input};
use pipetape_replayer::time::offset;
use pipetape_replayer::Loaded;

use super::{CmdError, CmdResult, Ctx};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// Write the report to FILE (one self-contained HTML file).
    #[arg(long, value_name = "FILE", required = true)]
    html: PathBuf,
    /// Overlay a baseline: last-green (default; skipped with a note when there is none),
    /// green:N, a run id, a .ptape path, or none.
    #[arg(long, value_name = "B")]
    baseline: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// The directory to write (created if needed; files in it are replaced).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        required_unless_present = "otlp"
    )]
    output: Option<PathBuf>,
    /// Send the run as an OpenTelemetry trace to this OTLP/HTTP endpoint (a collector's base
    /// URL such as http://localhost:4318, or a full .../v1/traces URL); with no URL, where
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT says. Timestamps and
    /// ids are the recorded ones: the spans land at the run's real time, in the trace its
    /// steps saw as TRACEPARENT.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    otlp: Option<String>,
    /// Baseline of the report.html inside (as for `replay report`).
    #[arg(long, value_name = "B")]
    baseline: Option<String>,
}

/// Formats of `replay summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// GitHub-flavoured Markdown (for $GITHUB_STEP_SUMMARY, GitLab, anything that renders it).
    Markdown,
    /// The same Markdown as a Buildkite annotation: when buildkite-agent is on PATH inside a
    /// Buildkite job, pipetape runs `buildkite-agent annotate` itself (style by severity,
    /// context pipetape-PIPELINE); elsewhere it prints the Markdown.
    Buildkite,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// Compare with: last-green (default; skipped with a note when there is none), green:N, a
    /// run id, a .ptape path, or none.
    #[arg(long, value_name = "B")]
    baseline: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "markdown")]
    output: SummaryFormat,
    /// The most bytes to write (GitHub and Buildkite refuse more than 1 MiB); whole rows and
    /// items past it are left out, and the summary says how many.
    #[arg(long, value_name = "N", default_value_t = pipetape_replayer::render::summary::BUDGET)]
    max_bytes: usize,
}

fn bad(e: impl std::fmt::Display) -> CmdError {
    CmdError::input(e.to_string())
}

/// Loads a run: `lazy` leaves its lines in the log, read when quoted (the report and the
/// summary quote tails); export writes every line, and reads them all at once.
fn load(ctx: &Ctx, run: &str, lazy: bool) -> Result<(Loaded, String, PathBuf), CmdError> {
    let r = ctx.resolve(run)?;
    let l = if lazy {
        pipetape_replayer::load_lazy_cached(&r.path, 48 << 20)
    } else {
        pipetape_replayer::load(&r.path)
    }
    .map_err(bad)?;
    for d in &l.damage {
        ctx.warn(format!(
            "{}: {d}; using what was readable",
            r.path.display()
        ));
    }
    let run_ref = r
        .entry
        .as_ref()
        .map(|e| e.id.clone())
        .unwrap_or_else(|| r.path.display().to_string());
    Ok((l, run_ref, r.path))
}

/// The diff against the requested (or default) baseline, made as `replay diff` makes it:
/// `Ok(Err(reason))` when there is none.
fn baseline_for(
    ctx: &Ctx,
    l: &Loaded,
    path: &Path,
    spec: Option<&str>,
) -> Result<Result<(Report, Vec<BaselineRun>), String>, CmdError> {
    if spec == Some("none") {
        return Ok(Err("not requested (--baseline none)".into()));
    }
    let explicit = spec.is_some();
    let spec = Spec::parse(spec.unwrap_or("last-green")).map_err(bad)?;
    let (store, remote) = ctx.history()?;
    let history = baseline::History {
        store: store.as_ref(),
        remote: remote.as_ref(),
    };
    let req = baseline::Request {
        run: path,
        loaded: Some(l),
        spec,
        thresholds: Thresholds::default(),
        force: false,
        logs: true,
    };
    match baseline::diff(history, &req) {
        Ok(done) => Ok(Ok((done.report, done.baselines))),
        Err(e @ (BaselineError::NoGreen { .. } | BaselineError::Itself(_))) if !explicit => {
            Ok(Err(e.to_string()))
        }
        Err(e) => Err(bad(e)),
    }
}

fn render(
    ctx: &Ctx,
    l: &Loaded,
    path: &Path,
    run_ref: &str,
    spec: Option<&str>,
) -> Result<String, CmdError> {
    let base = baseline_for(ctx, l, path, spec)?;
    let damage: Vec<String> = l.damage.iter().map(|d| d.to_string()).collect();
    let (baseline, why) = match &base {
        Ok((r, runs)) => (Some((r, runs.as_slice())), None),
        Err(why) => (None, Some(why.clone())),
    };
    Ok(html::html(&Input {
        model: &l.model,
        damage: &damage,
        run_ref,
        baseline,
        no_baseline_reason: why,
    }))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CmdError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| bad(format!("{}: cannot create directory: {e}", dir.display())))?;
    }
    // Write beside, then rename: a reader never sees half a file.
    let tmp = path.with_extension("pipetape-tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            bad(format!("{}: cannot write: {e}", path.display()))
        })
}

pub fn report(ctx: &Ctx, a: ReportArgs) -> CmdResult {
    let (l, run_ref, path) = load(ctx, &a.run, true)?;
    let html = render(ctx, &l, &path, &run_ref, a.baseline.as_deref())?;
    write_file(&a.html, html.as_bytes())?;
    if !ctx.quiet {
        crate::say!(
            "Wrote {} ({} KiB){}",
            a.html.display(),
            html.len().div_ceil(1024),
            if l.model.info.outcome.is_none() {
                "; the run is in progress"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

/// The summary of `path` (already loaded as `l`) against `spec`, at most `max` bytes, and its
/// Buildkite style.
pub fn summary_of(
    ctx: &Ctx,
    l: &Loaded,
    path: &Path,
    run_ref: &str,
    spec: Option<&str>,
    max: usize,
) -> Result<(String, &'static str), CmdError> {
    use pipetape_replayer::render::summary;
    let base = baseline_for(ctx, l, path, spec)?;
    let (baseline, why) = match &base {
        Ok((r, runs)) => (Some((r, runs.as_slice())), None),
        Err(why) => (None, Some(why.clone())),
    };
    let input = Input {
        model: &l.model,
        damage: &[],
        run_ref,
        baseline,
        no_baseline_reason: why,
    };
    Ok((
        summary::markdown(&input, max),
        summary::buildkite_style(&input),
    ))
}

pub fn summary(ctx: &Ctx, a: SummaryArgs) -> CmdResult {
    use std::io::Write;
    let limit = pipetape_replayer::render::summary::SYSTEM_LIMIT;
    if a.max_bytes < 4096 || a.max_bytes > limit {
        return Err(bad(format!(
            "--max-bytes {}: expected 4096 to {limit} (GitHub and Buildkite refuse more than 1 MiB)",
            a.max_bytes
        )));
    }
    let (l, run_ref, path) = load(ctx, &a.run, true)?;
    let (md, style) = summary_of(ctx, &l, &path, &run_ref, a.baseline.as_deref(), a.max_bytes)?;
    if a.output == SummaryFormat::Buildkite && std::env::var("BUILDKITE").as_deref() == Ok("true") {
        let context = format!("pipetape-{}", safe(&l.model.info.pipeline));
        let spawned = std::process::Command::new("buildkite-agent")
            .args(["annotate", "--style", style, "--context", &context])
            .stdin(std::process::Stdio::piped())
            .spawn();
        if let Ok(mut child) = spawned {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(md.as_bytes());
            }
            let status = child
                .wait()
                .map_err(|e| bad(format!("buildkite-agent: {e}")))?;
            if status.success() {
                if !ctx.quiet {
                    eprintln!("pipetape: annotated the build ({style}, context {context})");
                }
                return Ok(0);
            }
            ctx.warn(format!(
                "buildkite-agent annotate exited with {status}; the summary follows on stdout"
            ));
        }
    }
    let mut out = crate::output::Out::new();
    out.write_all(md.as_bytes())?;
    out.flush()?;
    Ok(0)
}

/// A path component safe to join: no separators, not `.` or `..`, not empty.
fn safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect();
    match s.as_str() {
        "" | "." | ".." => "_".into(),
        _ => s,
    }
}

/// An artifact's recorded path made relative and free of `..`.
fn safe_rel(path: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        if let Component::Normal(x) = c {
            out.push(safe(&x.to_string_lossy()));
        }
    }
    if out.as_os_str().is_empty() {
        out.push("artifact");
    }
    out
}

pub fn export(ctx: &Ctx, a: ExportArgs) -> CmdResult {
    if let Some(o) = a.output.as_ref().filter(|o| o.is_file()) {
        return Err(bad(format!(
            "{}: is a file; export writes a directory",
            o.display()
        )));
    }
    let target = match &a.otlp {
        Some(u) => {
            let env = |k: &str| std::env::var(k).ok();
            Some(super::run::otlp_target(Some(u), &env).ok_or_else(|| {
                bad("--otlp without a URL sends where OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT says, and neither is set (or OTEL_SDK_DISABLED=true / OTEL_TRACES_EXPORTER=none)")
            })?)
        }
        None => None,
    };
    // Files of every log line read them all: at once. A trace alone quotes none.
    let (l, run_ref, path) = load(ctx, &a.run, a.output.is_none())?;
    if let Some(dir) = &a.output {
        export_files(ctx, (&l, &run_ref, &path), dir, a.baseline.as_deref())?;
    }
    if let Some(t) = target {
        super::run::send_trace(ctx, &l.model, t.as_deref()).map_err(|e| {
            CmdError::with_code(1, format!("the collector did not take the trace: {e}"))
        })?;
    }
    Ok(0)
}

/// The files of `replay export -o DIR`.
fn export_files(
    ctx: &Ctx,
    (l, run_ref, path): (&pipetape_replayer::Loaded, &str, &std::path::Path),
    dir: &std::path::Path,
    baseline: Option<&str>,
) -> Result<(), CmdError> {
    let m = &l.model;
    let mut files = 0usize;

    // timeline.txt
    let mut t = Vec::new();
    pipetape_replayer::render::timeline::write(&mut t, m)?;
    write_file(&dir.join("timeline.txt"), &t)?;
    files += 1;

    // events.txt, like `kubectl get events -A` (sorted by time; LAST SEEN from the run's start).
    let mut evs: Vec<&pipetape_replayer::analysis::fold::EventEntry> = m.events.iter().collect();
    evs.sort_by_key(|e| (e.mono_ns, e.seq));
    let rows: Vec<Vec<String>> = evs
        .iter()
        .map(|e| {
            let ev = &e.event;
            vec![
                ev.involved.namespace.clone(),
                offset(e.mono_ns),
                ev.type_.clone(),
                ev.reason.clone(),
                format!("{}/{}", ev.involved.kind.to_lowercase(), ev.involved.name),
                ev.message.replace('\n', " "),
            ]
        })
        .collect();
    let table = if rows.is_empty() {
        "No events were recorded.\n".to_string()
    } else {
        crate::output::table(
            &[
                "NAMESPACE",
                "LAST SEEN",
                "TYPE",
                "REASON",
                "OBJECT",
                "MESSAGE",
            ],
            &rows,
        )
    };
    write_file(&dir.join("events.txt"), table.as_bytes())?;
    files += 1;

    // helm-status.json: each release's last status and its history.
    // The status is the highest revision's (see ReleaseHistory::current).
    let releases: Vec<serde_json::Value> = m
        .helm_releases()
        .values()
        .filter_map(|rel| {
            let (_, current) = rel.current()?;
            let mut v = serde_json::to_value(current).unwrap_or_default();
            v["history"] = rel
                .history
                .iter()
                .map(|(t, h)| {
                    serde_json::json!({"at": offset(*t), "revision": h.revision, "status": h.status, "description": h.description})
                })
                .collect();
            Some(v)
        })
        .collect();
    let mut j = serde_json::to_vec_pretty(&releases)?;
    j.push(b'\n');
    write_file(&dir.join("helm-status.json"), &j)?;
    files += 1;

    // pods/NS/POD/CONTAINER.log (and CONTAINER.previous.log)
    // Every followed line of a container (all its instances), and its last terminated
    // instance's log as `kubectl logs --previous` gives it at the end of the run.
    let containers: std::collections::BTreeSet<(&str, &str, &str)> = m
        .logs
        .keys()
        .map(|k| (k.namespace.as_str(), k.pod.as_str(), k.container.as_str()))
        .collect();
    for (ns, pod, container) in containers {
        let pod_dir = dir.join("pods").join(safe(ns)).join(safe(pod));
        let current = pipetape_replayer::analysis::fold::LogKey {
            namespace: ns.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
            previous: false,
        };
        let unreadable = |e: pipetape_replayer::Error| {
            CmdError::input(format!("the log of {ns}/{pod} {container}: {e}"))
        };
        let followed = match m.logs.get(&current) {
            Some(l) => Some(
                l.read()
                    .map_err(unreadable)?
                    .iter()
                    .map(|(_, s, _)| s.to_string())
                    .collect::<Vec<_>>(),
            ),
            None => None,
        };
        let texts = [
            followed,
            m.previous_log(ns, pod, container, m.info.end_ns)
                .map_err(unreadable)?
                .map(|l| l.iter().map(|(_, s, _)| s.to_string()).collect())
                .filter(|l: &Vec<String>| !l.is_empty()),
        ];
        for (lines, suffix) in texts.iter().zip(["", ".previous"]) {
            let Some(lines) = lines else { continue };
            let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
            for l in lines {
                text.push_str(l);
                text.push('\n');
            }
            write_file(
                &pod_dir.join(format!("{}{suffix}.log", safe(container))),
                text.as_bytes(),
            )?;
            files += 1;
        }
    }

    // Captured artifacts; JUnit reports also under junit/.
    for (_, art) in &m.artifacts {
        let rel = safe_rel(&art.path);
        write_file(&dir.join("artifacts").join(&rel), &art.data)?;
        files += 1;
        if metrics::looks_like_junit(&art.path, &art.media_type, &art.data) {
            let base = rel
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| "junit.xml".into());
            write_file(&dir.join("junit").join(base), &art.data)?;
            files += 1;
        }
        if art.truncated {
            ctx.warn(format!(
                "artifact {} was cut at {} of {} bytes when recorded",
                art.path,
                art.data.len(),
                art.size
            ));
        }
    }

    // report.html
    let html = render(ctx, l, path, run_ref, baseline)?;
    write_file(&dir.join("report.html"), html.as_bytes())?;
    files += 1;

    if !ctx.quiet {
        crate::say!(
            "Exported run {} to {} ({files} files: timeline.txt, events.txt, helm-status.json, {} container logs, {} artifacts, report.html)",
            m.info.run_id,
            dir.display(),
            m.logs.len(),
            m.artifacts.len()
        );
    }
    Ok(())
}
