//! `pipetape run PIPELINE.yaml`: run a pipeline with every action recorded. The exit code is
//! the pipeline's; 125 means pipetape itself failed (an invalid pipeline file, or a recording
//! failure with --strict-recording).

use std::path::PathBuf;

use clap::Args;
use pipetape_recorder::runner::{self, Interrupt, RunOptions, Terminal};
use pipetape_recorder::session::{default_labels, Session, SessionInfo};
use pipetape_recorder::spec::Pipeline;

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
}

fn fatal(msg: impl Into<String>) -> CmdError {
    CmdError::with_code(EXIT_PIPETAPE, msg)
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
    let mut masks: Vec<String> = p
        .secret_env
        .iter()
        .filter_map(|n| std::env::var(n).ok().or_else(|| p.env.get(n).cloned()))
        .collect();
    masks.extend(p.mask.iter().cloned());
    let term = Terminal {
        echo: !ctx.quiet,
        github: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
        live: std::io::IsTerminal::is_terminal(&std::io::stdout())
            && std::env::var("GITHUB_ACTIONS").is_err()
            && std::env::var("CI").is_err(),
    };
    let store_dir = ctx
        .store
        .clone()
        .unwrap_or_else(pipetape_store::store::default_store_dir);
    let info = SessionInfo {
        pipeline: p.name.clone(),
        labels,
        command: Vec::new(),
    };
    let opts = RunOptions {
        only: a.only.clone(),
        skip: a.skip.clone(),
        base_dir,
        masks: masks.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| fatal(format!("cannot start the runtime: {e}")))?;
    let finished = rt.block_on(async {
        let session = Session::start(&store_dir, info, masks, term);
        for w in &session.warnings {
            eprintln!(
                "pipetape: WARNING: {w}; the pipeline runs anyway and the run is not recorded"
            );
        }
        if a.strict_recording && !session.warnings.is_empty() {
            return Err(fatal(
                "recording failed and --strict-recording is set; nothing was run",
            ));
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        let signals = tokio::spawn(async move {
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
                eprintln!(
                    "pipetape: {} received: stopping the running steps, then running `finally`",
                    if which == Interrupt::Int {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    }
                );
                let _ = tx.send(Some(which));
            }
        });
        let end = runner::run(&p, &opts, session.sink(), rx).await;
        signals.abort();
        Ok(session.finish(&end))
    })?;
    if !ctx.quiet {
        let id = finished
            .log_path
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "-".into());
        eprintln!(
            "pipetape: run {id} {} in {} (exit {}){}",
            finished.outcome,
            output::duration(finished.elapsed.as_nanos() as u64),
            finished.exit_code,
            finished
                .log_path
                .as_ref()
                .map(|p| format!("; log {}", p.display()))
                .unwrap_or_default()
        );
    }
    if finished.recording_failed {
        eprintln!(
            "pipetape: WARNING: the run is incomplete: {}",
            finished
                .recording_error
                .clone()
                .unwrap_or_else(|| "records were lost".into())
        );
        if a.strict_recording {
            return Err(fatal("recording failed and --strict-recording is set"));
        }
    }
    Ok(finished.exit_code.clamp(0, 255) as u8)
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
