//! `pipetape run PIPELINE.yaml`: run a pipeline with every action recorded. The exit code is
//! the pipeline's; 125 means pipetape itself failed (an invalid pipeline file, or a recording
//! failure with --strict-recording).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use pipetape_recorder::record::{record, Recording, Work};
use pipetape_recorder::runner::{self, RunOptions};

use crate::console::Terminal;
use pipetape_recorder::session::{default_labels, git_history, SessionInfo};
use pipetape_recorder::spec::Pipeline;
use pipetape_store::mask::{MaskConfig, Masker};
use pipetape_store::model::RunInputs;

use super::{parse_label, CmdError, CmdResult, Ctx};
use crate::output;

/// Exit code when pipetape itself fails (like `docker run` and `timeout`).
pub const EXIT_PIPETAPE: u8 = 125;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file (YAML; see docs/pipeline.md).
    pipeline: PathBuf,
    /// A label for the run (repeatable). branch, commit and ci_url default from the CI
    /// variables (GITHUB_REF_NAME, GITHUB_SHA, ...) or git.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Run only this stage (repeatable); `finally` steps always run.
    #[arg(long, value_name = "STAGE")]
    only: Vec<String>,
    /// Skip this stage (repeatable).
    #[arg(long, value_name = "STAGE")]
    skip: Vec<String>,
    /// Check the pipeline and print the plan without running anything.
    #[arg(long)]
    dry_run: bool,
    /// Fail (exit 125) if anything could not be recorded, instead of going on.
    #[arg(long)]
    strict_recording: bool,
    /// Mask only what the pipeline declares (`secret_env`, `mask`, `masks.patterns`): not the
    /// values of environment variables named like secrets, token shapes or Kubernetes objects'
    /// secret env values. For the rare false positive prefer `masks.allow`.
    #[arg(long)]
    no_default_masks: bool,
    /// Keep the log as it was recorded (zstd level 1, 64 KiB frames) instead of compacting it
    /// when the run ends (`archive compact`: the same records in a smaller file).
    #[arg(long)]
    pub no_compact: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub trace: TraceArgs,
}

/// Where the run goes as an OpenTelemetry trace when it ends (shared by `run` and `record`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "OpenTelemetry")]
pub struct TraceArgs {
    /// When the run ends, send it as a trace to this OTLP/HTTP endpoint (a collector's base URL
    /// such as http://localhost:4318, or a full .../v1/traces URL). Without it, the standard
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is used when set
    /// (with OTEL_EXPORTER_OTLP_HEADERS and _TIMEOUT). A failed export is a warning; the
    /// pipeline's exit code stands. Steps get TRACEPARENT either way.
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
}

/// Where a run's trace goes: `Some(Some(url))` for `--otlp URL`, `Some(None)` for the standard
/// OTEL_EXPORTER_OTLP_* variables, `None` for nowhere (neither set, or OpenTelemetry disabled
/// with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none).
pub fn otlp_target(
    flag: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Option<String>> {
    if let Some(u) = flag.filter(|u| !u.trim().is_empty()) {
        return Some(Some(u.trim().to_string()));
    }
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return None;
    }
    (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || set("OTEL_EXPORTER_OTLP_ENDPOINT").is_some())
    .then_some(None)
}

/// Sends run `m` as a trace to `target` (see [`otlp_target`]); says where it went. Errors are
/// for the caller to report (a warning after a run, an error for `replay export`).
pub fn send_trace(
    ctx: &Ctx,
    m: &pipetape_replayer::analysis::fold::RunModel,
    target: Option<&str>,
) -> Result<(), String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if target.is_none() {
        let proto = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
        if proto.as_deref().is_some_and(|p| p.trim() == "grpc") {
            return Err("OTEL_EXPORTER_OTLP_PROTOCOL is grpc, and pipetape sends OTLP over HTTP only: set it to http/protobuf and point the endpoint at the collector's OTLP/HTTP port (4318)".into());
        }
    }
    let where_ = target
        .map(pipetape_replayer::otlp::traces_url)
        .or_else(|| env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| {
            env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|u| pipetape_replayer::otlp::traces_url(&u))
        })
        .unwrap_or_default();
    let trace = pipetape_replayer::otlp::trace(m);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let sent = rt
        .block_on(pipetape_replayer::otlp::send(
            trace,
            target,
            std::time::Duration::from_secs(30),
        ))
        .map_err(|e| format!("{where_}: {e}"))?;
    if !ctx.quiet {
        let tid = pipetape_store::trace::RunTrace::new(&m.info.run_id, &m.info.labels).trace_id;
        eprintln!(
            "pipetape: run {} sent to {where_} as trace {} ({} spans)",
            m.info.run_id,
            pipetape_store::trace::hex(&tid),
            sent.spans
        );
    }
    Ok(())
}

/// After a run: its trace to the OTLP endpoint, if one is configured. A warning on failure.
fn trace_after_run(ctx: &Ctx, log: &std::path::Path, flag: Option<&str>) {
    let env = |k: &str| std::env::var(k).ok();
    let Some(target) = otlp_target(flag, &env) else {
        return;
    };
    let res = pipetape_replayer::load(log)
        .map_err(|e| e.to_string())
        .and_then(|l| send_trace(ctx, &l.model, target.as_deref()));
    if let Err(e) = res {
        ctx.warn(format!("the run was not exported as a trace: {e}"));
    }
}

/// Options of the cluster observers (shared by `run` and `record`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cluster observation")]
pub struct ClusterArgs {
    /// Kubeconfig of the cluster to observe (default: $KUBECONFIG, else ~/.kube/config). The
    /// observers wait for the API, so a pipeline may create the cluster itself.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Observe only this namespace (repeatable; cluster-scoped kinds are always observed).
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Also watch this resource (plural or plural.group; repeatable).
    #[arg(long = "observe", value_name = "RESOURCE")]
    pub observe: Vec<String>,
    /// Pod logs: at most this many bytes per container instance (0: no pod logs).
    #[arg(long, value_name = "BYTES", default_value_t = pipetape_recorder::observe::DEFAULT_LOG_BYTES)]
    pub pod_log_bytes: u64,
    /// Pod logs: at most this many lines per second per container.
    #[arg(long, value_name = "N", default_value_t = pipetape_recorder::observe::DEFAULT_LOG_LINES_PER_S)]
    pub pod_log_rate: u32,
    /// Do not observe any cluster.
    #[arg(long, conflicts_with_all = ["kubeconfig", "context", "namespaces", "observe"])]
    pub no_cluster: bool,
}

impl ClusterArgs {
    /// The observers' options, `None` with --no-cluster.
    pub fn options(
        &self,
        masker: &Arc<Masker>,
    ) -> Option<pipetape_recorder::observe::ObserveOptions> {
        (!self.no_cluster).then(|| pipetape_recorder::observe::ObserveOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespaces: self.namespaces.clone(),
            extra: self.observe.clone(),
            log_bytes: self.pod_log_bytes,
            log_lines_per_s: self.pod_log_rate,
            masker: masker.clone(),
            ..Default::default()
        })
    }
}

fn fatal(msg: impl Into<String>) -> CmdError {
    CmdError::with_code(EXIT_PIPETAPE, msg)
}

/// `--no-default-masks`: only what was declared is masked.
pub fn no_defaults(c: &mut MaskConfig) {
    c.defaults = false;
    c.values.retain(|(n, _)| !n.starts_with("env:"));
}

pub fn run(ctx: &Ctx, a: RunArgs) -> CmdResult {
    let p = Pipeline::load(&a.pipeline).map_err(|e| fatal(e.to_string()))?;
    let stages = p.stage_names();
    for s in a.only.iter().chain(&a.skip) {
        if !stages.contains(&s.as_str()) {
            return Err(fatal(format!(
                "{}: no stage '{s}'; stages are: {}",
                a.pipeline.display(),
                stages.join(", ")
            )));
        }
    }
    let base_dir = a
        .pipeline
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    if a.dry_run {
        print_plan(&p, &a);
        return Ok(0);
    }
    let mut labels = default_labels(&base_dir, &|k| std::env::var(k).ok());
    labels.extend(a.labels.iter().cloned());
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut mask_cfg = p.mask_config(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if a.no_default_masks {
        no_defaults(&mut mask_cfg);
    }
    let masker = Arc::new(Masker::new(&mask_cfg).map_err(|e| fatal(e.to_string()))?);
    let recording = Recording {
        store_dir: ctx.store_dir(),
        info: SessionInfo {
            pipeline: p.name.clone(),
            labels,
            command: Vec::new(),
            inputs: RunInputs {
                pipeline_path: a.pipeline.display().to_string(),
                pipeline: std::fs::read_to_string(&a.pipeline).unwrap_or_default(),
                commits: git_history(&base_dir),
            },
        },
        masker: masker.clone(),
        cluster: a.cluster.options(&masker),
        run: RunOptions {
            only: a.only.clone(),
            skip: a.skip.clone(),
            base_dir,
            ..Default::default()
        },
        strict: a.strict_recording,
    };
    record_work(
        ctx,
        recording,
        Work::Pipeline(Box::new(p)),
        &a.cluster,
        &a.trace,
        !a.no_compact,
    )
}

/// Records `work` on a runtime of its own, says how it ended, stores its metrics and pushes it
/// (shared by `run` and `record`).
pub fn record_work(
    ctx: &Ctx,
    rec: Recording,
    work: Work,
    cluster: &ClusterArgs,
    trace: &TraceArgs,
    compact: bool,
) -> CmdResult {
    let strict = rec.strict;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fatal(format!("cannot start the runtime: {e}")))?;
    let console = crate::console::TerminalConsole::new(terminal(ctx), ctx.quiet);
    let recorded = rt
        .block_on(record(rec, work, console))
        .map_err(|e| fatal(e.to_string()))?;
    if let Some(st) = &recorded.cluster {
        if !st.connected && (cluster.kubeconfig.is_some() || cluster.context.is_some()) {
            ctx.warn(format!(
                "the cluster was never reachable, nothing was observed: {}",
                st.last_error.clone().unwrap_or_default()
            ));
        }
    }
    let mut finished = recorded.finished;
    let hold = finished.catalog_hold.take();
    if compact && !finished.recording_failed {
        if let Some(log) = &finished.log_path {
            compact_after_run(ctx, log, finished.elapsed, finished.records_bytes);
        }
    }
    report_end(ctx, &finished, strict, trace.otlp.as_deref(), hold)?;
    Ok(finished.exit_code.clamp(0, 255) as u8)
}

/// How output reaches this terminal: echoed unless -q, grouped on GitHub Actions, a live
/// status line on an interactive terminal outside CI.
pub fn terminal(ctx: &Ctx) -> Terminal {
    let github = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    Terminal {
        echo: !ctx.quiet,
        github,
        live: std::io::IsTerminal::is_terminal(&std::io::stdout())
            && !github
            && std::env::var("CI").is_err(),
    }
}

/// Says how the run ended and whether it was fully recorded; 125 for a recording failure
/// under --strict-recording.
/// Compacts the finished log with the best level expected to take at most 5% of the run (at
/// least 1 s): the recorder must not make a fast run slow at its end. Keeps the catalog's
/// size right.
fn compact_after_run(
    ctx: &Ctx,
    log: &std::path::Path,
    elapsed: std::time::Duration,
    records_bytes: Option<u64>,
) {
    let budget = (elapsed / 20).max(std::time::Duration::from_secs(1));
    let Some(c) = super::archive::compact_finished(ctx, log, budget, records_bytes) else {
        return;
    };
    let id = log
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Ok(store) = ctx.store() {
        if let Some(mut e) = store.catalog().ok().and_then(|c| c.get(&id).ok().flatten()) {
            e.bytes = c.bytes_after;
            if let Err(err) = store.catalog().and_then(|cat| cat.put(&e)) {
                ctx.warn(format!(
                    "could not update the catalog after compaction: {err}"
                ));
            }
        }
    }
}

/// Stores the run's metrics in the catalog so later diffs need not re-read this log. A failure
/// here costs only speed later (the metrics are computed from the log when needed): warn.
fn store_metrics(ctx: &Ctx, f: &pipetape_recorder::session::Finished) {
    let Some(id) = f
        .log_path
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
    else {
        return;
    };
    let stored = ctx.store().ok().and_then(|store| {
        let entry = store.catalog().ok()?.get(&id).ok()??;
        Some(pipetape_replayer::analysis::metrics::store_metrics(&store, &entry).map(|_| ()))
    });
    if let Some(Err(e)) = stored {
        ctx.warn(format!("could not store the run's metrics: {e}"));
    }
}

/// On GitHub Actions ($GITHUB_STEP_SUMMARY set), the run's summary against its last green run
/// goes on the job's page. A failure is a warning: the pipeline's exit code stands.
fn job_summary(ctx: &Ctx, log: &std::path::Path, summary: &std::path::Path) {
    use std::io::Write;
    let res = (|| -> Result<(), CmdError> {
        let l = pipetape_replayer::load(log).map_err(|e| CmdError::input(e.to_string()))?;
        let id = log
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (md, _) = super::report::summary_of(
            ctx,
            &l,
            log,
            &id,
            None,
            pipetape_replayer::render::summary::BUDGET,
        )?;
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(summary)
            .and_then(|mut f| f.write_all(md.as_bytes()))
            .map_err(|e| CmdError::input(format!("{}: {e}", summary.display())))
    })();
    if let Err(e) = res {
        ctx.warn(format!(
            "could not write the job summary (GITHUB_STEP_SUMMARY): {}",
            e.message()
        ));
    }
}

pub fn report_end(
    ctx: &Ctx,
    f: &pipetape_recorder::session::Finished,
    strict: bool,
    otlp: Option<&str>,
    catalog_hold: Option<std::sync::Arc<pipetape_store::catalog::CatalogHold>>,
) -> Result<(), CmdError> {
    if !ctx.quiet {
        let id = f
            .log_path
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "-".into());
        let log = f
            .log_path
            .as_ref()
            .map(|p| format!("; log {}", p.display()))
            .unwrap_or_default();
        eprintln!(
            "pipetape: run {id} {} in {} (exit {}){log}",
            f.outcome,
            output::duration(f.elapsed.as_nanos() as u64),
            f.exit_code
        );
    }
    store_metrics(ctx, f);
    // The catalog's updates are done: other pipetape processes may open it during the push.
    drop(catalog_hold);
    if let Some(id) = f
        .log_path
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
    {
        super::remote::push_after_run(ctx, &id);
    }
    if let (Some(summary), Some(log)) = (std::env::var_os("GITHUB_STEP_SUMMARY"), &f.log_path) {
        job_summary(ctx, log, std::path::Path::new(&summary));
    }
    if let Some(log) = &f.log_path {
        trace_after_run(ctx, log, otlp);
    }
    if f.recording_failed {
        eprintln!(
            "pipetape: WARNING: the run is incomplete: {}",
            f.recording_error
                .clone()
                .unwrap_or_else(|| "records were lost".into())
        );
        if strict {
            return Err(fatal("recording failed and --strict-recording is set"));
        }
    }
    Ok(())
}

fn print_plan(p: &Pipeline, a: &RunArgs) {
    crate::say!("Pipeline {} ({}): plan", p.name, a.pipeline.display());
    let show = |s: &pipetape_recorder::spec::Step| {
        let what = match (&s.run, &s.gate) {
            (Some(r), _) => {
                let mut lines = r.trim().lines();
                let first = lines.next().unwrap_or_default();
                let more = lines.count();
                if more > 0 {
                    format!("run: {first} (+{more} lines)")
                } else {
                    format!("run: {first}")
                }
            }
            (_, Some(g)) => match (&g.command, &g.http) {
                (Some(c), _) => format!(
                    "gate (command, every {}, timeout {}): {c}",
                    runner::humanize(g.interval),
                    runner::humanize(g.timeout)
                ),
                (_, Some(u)) => format!(
                    "gate (http, every {}, timeout {}): {u}",
                    runner::humanize(g.interval),
                    runner::humanize(g.timeout)
                ),
                _ => "gate".into(),
            },
            _ => String::new(),
        };
        let mut extra = Vec::new();
        if let Some(t) = s.timeout {
            extra.push(format!("timeout {}", runner::humanize(t)));
        }
        if s.retries > 0 {
            extra.push(format!("{} retries", s.retries));
        }
        if s.continue_on_error {
            extra.push("continue on error".into());
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!(" [{}]", extra.join(", "))
        };
        format!("{}: {what}{extra}", s.name)
    };
    for st in &p.stages {
        let on = (a.only.is_empty() || a.only.contains(&st.name)) && !a.skip.contains(&st.name);
        crate::say!(
            "  stage {}{}{}",
            st.name,
            if st.parallel { " (parallel)" } else { "" },
            if on { "" } else { "  -- skipped" }
        );
        for s in &st.steps {
            crate::say!("    {}", show(s));
        }
    }
    if !p.finally.is_empty() {
        crate::say!("  finally");
        for s in &p.finally {
            crate::say!("    {}", show(s));
        }
    }
    for art in &p.artifacts {
        crate::say!(
            "  artifacts: {} (up to {} each)",
            art.path,
            output::bytes(art.max_bytes)
        );
    }
    if !p.secret_env.is_empty() {
        let names: Vec<String> = p.secret_env.iter().map(|n| format!("${n}")).collect();
        crate::say!("  masked: {}", names.join(", "));
    }
}
