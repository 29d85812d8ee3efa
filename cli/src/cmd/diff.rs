//! `pipetape replay diff [BASELINE] [RUN]`: what got slower or broke against green runs.

use std::collections::HashSet;
use std::io::Write;

use clap::{Args, ValueEnum};
use pipetape_replayer::baseline::{self, BaselineError, Spec};
use pipetape_replayer::diff::{self, render, Thresholds};
use pipetape_replayer::metrics;
use pipetape_store::model::Body;

use super::{CmdError, CmdResult, Ctx};
use crate::output::Out;

/// Output formats of `replay diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// A ranked report for people.
    Text,
    /// The report as JSON (with `schema_version`).
    Json,
    /// JUnit XML, one failed test case per regression, for CI dashboards.
    Junit,
    /// GitHub Actions workflow commands (annotations).
    Github,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The baseline: last-green (the newest passed run of the same pipeline and branch),
    /// green:N (median of the last N green runs), a run id or prefix, or a .ptape path.
    #[arg(default_value = "last-green")]
    baseline: String,
    /// The run to examine: id, id prefix, last, last-red, or a .ptape path.
    #[arg(default_value = "last")]
    run: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: DiffFormat,
    /// Exit 1 when a regression is found (0 otherwise).
    #[arg(long)]
    fail_on_regression: bool,
    /// Compare with a baseline of another pipeline.
    #[arg(long)]
    force: bool,
    /// Relative floor: a value must exceed the baseline by this many percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 50.0)]
    min_increase: f64,
    /// Absolute floor for durations (e.g. 10s, 1m).
    #[arg(long, value_name = "D", default_value = "10s")]
    min_delta: String,
    /// Absolute floor for counts (warnings, restarts).
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    min_count: f64,
    /// With green:N, a value must also exceed median + K × spread of the baseline runs.
    #[arg(long, value_name = "K", default_value_t = 3.0)]
    spread: f64,
    /// Do not read log lines and step output for evidence (faster on very large runs).
    #[arg(long)]
    no_logs: bool,
}

fn bad_input(e: impl std::fmt::Display) -> CmdError {
    CmdError::input(e.to_string())
}

pub fn diff(ctx: &Ctx, a: DiffArgs) -> CmdResult {
    let min_delta = pipetape_replayer::time::parse_duration(&a.min_delta)
        .map_err(|e| CmdError::input(format!("--min-delta: {e}")))?;
    for (flag, v) in [
        ("--min-increase", a.min_increase),
        ("--min-count", a.min_count),
        ("--spread", a.spread),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(CmdError::input(format!(
                "{flag} {v}: expected a number ≥ 0"
            )));
        }
    }
    let th = Thresholds {
        rel: a.min_increase / 100.0,
        abs_s: min_delta as f64 / 1e9,
        abs_count: a.min_count,
        spread_k: a.spread,
    };
    let spec = Spec::parse(&a.baseline).map_err(bad_input)?;

    // The run: state lane first (metrics and most evidence).
    let resolved = ctx.resolve(&a.run)?;
    let loaded = pipetape_replayer::load_state(&resolved.path).map_err(bad_input)?;
    for d in &loaded.damage {
        ctx.warn(format!(
            "{}: {d}; comparing what was readable",
            resolved.path.display()
        ));
    }
    let run_metrics = metrics::extract(&loaded.model);
    let store = ctx.store().ok();
    let selected =
        baseline::select(store.as_ref(), &run_metrics, &spec, a.force).map_err(|e| match e {
            BaselineError::Replayer(e) => bad_input(e),
            e => bad_input(e),
        })?;
    for n in &selected.notes {
        if n.contains("damaged") {
            ctx.warn(n);
        }
    }
    let mut report = diff::compare(&run_metrics, Some(&loaded.model), &selected.runs, th);

    // Evidence from the bulk lane: the output of regressed steps and the logs of the pods of
    // regressed workloads, read only when a finding needs them.
    if !a.no_logs && !report.regressions.is_empty() {
        let steps = diff::steps_to_diff(&report);
        let namespaces: HashSet<String> = report
            .regressions
            .iter()
            .filter_map(|f| {
                let (fam, rest) = f.metric.split_once(':')?;
                if !matches!(fam, "ready" | "restarts" | "warnings") {
                    return None;
                }
                let parts: Vec<&str> = rest.split('/').collect();
                let n = parts.len();
                (n >= 3).then(|| parts[n - 2].to_string())
            })
            .collect();
        let keep = |b: &Body| match b {
            Body::StepOutput(o) => steps.contains(&(o.stage.clone(), o.step.clone())),
            Body::PodLog(l) => namespaces.contains(&l.namespace),
            _ => false,
        };
        let full = pipetape_replayer::load_filtered(&resolved.path, &keep).map_err(bad_input)?;
        report = diff::compare(&run_metrics, Some(&full.model), &selected.runs, th);
        if !steps.is_empty() {
            if let Some(base_log) = selected.runs.first().and_then(|b| b.log.clone()) {
                let keep_steps = |b: &Body| match b {
                    Body::StepOutput(o) => steps.contains(&(o.stage.clone(), o.step.clone())),
                    _ => false,
                };
                match pipetape_replayer::load_filtered(&base_log, &keep_steps) {
                    Ok(base) => {
                        let lines = |m: &pipetape_replayer::fold::RunModel| {
                            m.step_output
                                .iter()
                                .map(|(k, v)| {
                                    (k.clone(), v.iter().map(|(_, l, _)| l.to_string()).collect())
                                })
                                .collect()
                        };
                        diff::attach_output_diffs(
                            &mut report,
                            &lines(&full.model),
                            &lines(&base.model),
                        );
                    }
                    Err(e) => report.notes.push(format!(
                        "baseline log {} unreadable for output diffs: {e}",
                        base_log.display()
                    )),
                }
            }
        }
    }
    report.baseline_description = selected.description;
    report.notes.extend(selected.notes);
    if !loaded.closed && loaded.model.info.outcome.is_none() {
        report.notes.push(
            "this run has no end: still being recorded, or the recorder was killed; what it had not reached yet shows as not run".into(),
        );
    }

    let mut out = Out::new();
    match a.output {
        DiffFormat::Text => out.write_all(render::text(&report).as_bytes())?,
        DiffFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        DiffFormat::Junit => out.write_all(render::junit(&report).as_bytes())?,
        DiffFormat::Github => out.write_all(render::github(&report).as_bytes())?,
    }
    out.flush()?;
    Ok(if a.fail_on_regression && !report.regressions.is_empty() {
        1
    } else {
        0
    })
}
