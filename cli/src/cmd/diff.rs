//! `pipetape replay diff [BASELINE] [RUN]`: what got slower or broke against green runs.

use std::io::Write;

use clap::{Args, ValueEnum};
use pipetape_replayer::analysis::baseline::{self, BaselineError, Spec};
use pipetape_replayer::analysis::diff::Thresholds;
use pipetape_replayer::render::diff as render;

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
    /// GitHub Actions workflow commands: at most 10 error and 10 warning annotations (the
    /// most likely causes), a notice for the rest, which go to $GITHUB_STEP_SUMMARY when set.
    Github,
    /// GitLab Code Quality JSON (for `artifacts:reports:codequality`): one issue per
    /// regression, with a severity and a fingerprint stable across runs.
    Codequality,
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
    /// With -o codequality: the file each issue points at (the findings are about the
    /// pipeline, not a line of code).
    #[arg(long, value_name = "PATH", default_value = ".gitlab-ci.yml")]
    codequality_path: String,
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

    let resolved = ctx.resolve(&a.run)?;
    let (store, remote) = ctx.history()?;
    let req = baseline::Request {
        run: &resolved.path,
        loaded: None,
        spec,
        thresholds: th,
        force: a.force,
        logs: !a.no_logs,
    };
    let done = baseline::diff(
        baseline::History {
            store: store.as_ref(),
            remote: remote.as_ref(),
        },
        &req,
    )
    .map_err(|e| match e {
        BaselineError::Replayer(e) => bad_input(e),
        e => bad_input(e),
    })?;
    for w in &done.warnings {
        ctx.warn(w);
    }
    let report = done.report;
    let mut out = Out::new();
    match a.output {
        DiffFormat::Text => out.write_all(render::text(&report).as_bytes())?,
        DiffFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        DiffFormat::Junit => out.write_all(render::junit(&report).as_bytes())?,
        DiffFormat::Codequality => {
            out.write_all(render::codequality(&report, &a.codequality_path).as_bytes())?
        }
        DiffFormat::Github => {
            out.write_all(render::github(&report).as_bytes())?;
            // GitHub shows ten annotations of a level per step: the rest go to the job
            // summary, when the step has one.
            let rest = render::github_left_out(&report);
            if let (false, Some(path)) = (rest.is_empty(), std::env::var_os("GITHUB_STEP_SUMMARY"))
            {
                let written = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(rest.as_bytes()));
                if let Err(e) = written {
                    ctx.warn(format!(
                        "{}: cannot append to the job summary (GITHUB_STEP_SUMMARY): {e}",
                        std::path::Path::new(&path).display()
                    ));
                }
            }
        }
    }
    out.flush()?;
    Ok(if a.fail_on_regression && !report.regressions.is_empty() {
        1
    } else {
        0
    })
}
