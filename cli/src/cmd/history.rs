//! `pipetape runs bisect`, `runs flaky` and `runs export-metrics`: questions across the run
//! history, from the catalog and, with a remote configured, the remote's index objects (no log
//! is read).

use std::io::Write;

use clap::Args;
use pipetape_replayer::analysis::diff::Thresholds;
use pipetape_replayer::analysis::history::{self, Point, Scope, Sources, Verdict};
use pipetape_replayer::analysis::metrics::{MetricKey, Unit};
use pipetape_store::time::format_duration;

use super::{CmdError, CmdResult, Ctx, TextOrJson};
use crate::output::Out;

#[derive(Debug, Args)]
pub struct BisectArgs {
    /// The metric, named as `replay diff` names it: `gate:NAME`, `step:STAGE/NAME`,
    /// `ready:KIND/NAMESPACE/NAME`, `helm:NAMESPACE/RELEASE`, `test:SUITE/CASE`,
    /// `restarts:KIND/NAMESPACE/NAME`, `warnings:REASON/KIND/NAMESPACE/NAME`.
    metric: String,
    #[command(flatten)]
    scope: ScopeArgs,
    /// Relative floor of the green range: 0.5 means up to +50% over its median.
    #[arg(long, default_value_t = 0.5)]
    min_increase: f64,
    /// Absolute floor of the green range for durations (e.g. 10s).
    #[arg(long, default_value = "10s")]
    min_delta: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct FlakyArgs {
    #[command(flatten)]
    scope: ScopeArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Args)]
struct ScopeArgs {
    /// Only runs of this pipeline (default: the newest run's).
    #[arg(long)]
    pipeline: Option<String>,
    /// Only runs with this branch label.
    #[arg(long)]
    branch: Option<String>,
    /// The newest N runs (bisect: default all; flaky: default 30).
    #[arg(long, value_name = "N")]
    last: Option<usize>,
}

impl ScopeArgs {
    fn scope(&self, src: Sources, last: usize) -> Result<Scope, CmdError> {
        let pipeline = match &self.pipeline {
            Some(p) => Some(p.clone()),
            None => history::runs(
                src,
                &Scope {
                    last: 1,
                    ..Scope::default()
                },
            )
            .map_err(|e| CmdError::input(e.to_string()))?
            .last()
            .map(|r| r.pipeline().to_string()),
        };
        Ok(Scope {
            pipeline,
            branch: self.branch.clone(),
            last: self.last.unwrap_or(last),
        })
    }

    fn describe(scope: &Scope, n: usize) -> String {
        format!(
            "{n} run{} of {}{}",
            if n == 1 { "" } else { "s" },
            scope.pipeline.as_deref().unwrap_or("any pipeline"),
            scope
                .branch
                .as_deref()
                .map(|b| format!(" on {b}"))
                .unwrap_or_default()
        )
    }
}

fn when(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Seconds => format_duration((v.max(0.0) * 1e9) as u64),
        Unit::Count => format!("{}", v.round() as i64),
    }
}

pub fn bisect(ctx: &Ctx, a: BisectArgs) -> CmdResult {
    let metric: MetricKey = a.metric.parse().map_err(|e| {
        CmdError::input(format!(
            "'{}': {e}; metrics are named as replay diff names them (gate:NAME, step:STAGE/NAME, ready:KIND/NS/NAME, ...)",
            a.metric
        ))
    })?;
    let min_delta = pipetape_replayer::time::parse_duration(&a.min_delta)
        .map_err(|e| CmdError::input(format!("--min-delta: {e}")))?;
    let th = Thresholds {
        rel: a.min_increase,
        abs_s: min_delta as f64 / 1e9,
        ..Thresholds::default()
    };
    let store = ctx.store()?;
    let remote = ctx.remote(&store)?;
    let src = Sources {
        store: &store,
        remote: remote.as_ref(),
    };
    let scope = a.scope.scope(src, 0)?;
    let b =
        history::bisect(src, &scope, &metric, &th).map_err(|e| CmdError::input(e.to_string()))?;
    if b.verdict == Verdict::NoData {
        return Err(CmdError::input(format!(
            "no run among the {} has {}; `replay diff -o json` lists a run's metric names",
            ScopeArgs::describe(&scope, b.runs),
            b.metric
        )));
    }
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &b)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
    let unit = match metric.family() {
        pipetape_replayer::analysis::metrics::Family::Restarts
        | pipetape_replayer::analysis::metrics::Family::Warnings => Unit::Count,
        _ => Unit::Seconds,
    };
    let point = |p: &Point| {
        format!(
            "#{} {} ({}): {}{}",
            p.number,
            p.run,
            when(p.started_ns),
            if p.status.is_empty() {
                String::new()
            } else {
                format!("{}, ", p.status)
            },
            value(unit, p.value)
        )
    };
    writeln!(
        out,
        "{} over {} ({} have it)",
        b.metric,
        ScopeArgs::describe(&scope, b.runs),
        b.with_metric
    )?;
    if let Some((median, upper)) = b.range {
        writeln!(
            out,
            "Green range: median {}, up to {}",
            value(unit, median),
            value(unit, upper)
        )?;
    }
    match &b.verdict {
        Verdict::Started { first, before } => {
            let since = b.points.len()
                - b.points
                    .iter()
                    .position(|p| p.run == first.run)
                    .unwrap_or(0);
            if since == 1 {
                writeln!(out, "Left it in the newest run, {}.", point(first))?;
            } else {
                writeln!(
                    out,
                    "Left it at {} and stayed out in all {since} runs since.",
                    point(first)
                )?;
            }
            if let Some(p) = before {
                writeln!(out, "The run before: {}", point(p))?;
            }
        }
        Verdict::Intermittent {
            first,
            before,
            out: n,
            of,
        } => {
            writeln!(
                out,
                "Intermittent: out of it from {} on, in {n} of the {of} runs since, not in all (a flake, or a regression that does not always show).",
                point(first)
            )?;
            if let Some(p) = before {
                writeln!(out, "The run before: {}", point(p))?;
            }
        }
        Verdict::InRange { outliers } if outliers.is_empty() => {
            writeln!(out, "In its green range in every run.")?;
        }
        Verdict::InRange { outliers } => {
            writeln!(
                out,
                "In its green range but for {} isolated run{}:",
                outliers.len(),
                if outliers.len() == 1 { "" } else { "s" }
            )?;
            for p in outliers.iter().take(10) {
                writeln!(out, "    {}", point(p))?;
            }
        }
        Verdict::NoData => {}
    }
    if matches!(
        b.verdict,
        Verdict::Started { .. } | Verdict::Intermittent { .. }
    ) {
        if let (Some(x), Some(y)) = &b.commit {
            if x != y {
                writeln!(
                    out,
                    "Commit {} → {}",
                    pipetape_store::model::short_id(x),
                    pipetape_store::model::short_id(y)
                )?;
            }
        }
        if b.changes.is_empty() {
            let other = if b.commit.0 != b.commit.1 {
                "other "
            } else {
                ""
            };
            writeln!(out, "No {other}input changed between the two runs (pipeline file, charts and values, images and digests, CRDs, node versions).")?;
        } else {
            writeln!(out, "What changed between the two runs:")?;
            for c in &b.changes {
                let v =
                    |x: &Option<String>| pipetape_replayer::render::diff::input_value(x.as_deref());
                writeln!(out, "    {}: {} → {}", c.what, v(&c.before), v(&c.after))?;
            }
        }
        if b.not_reached > 0 {
            writeln!(
                out,
                "({} input{} of the run before not reached by the first run out: it stopped before them)",
                b.not_reached,
                if b.not_reached == 1 { "" } else { "s" }
            )?;
        }
    }
    out.flush()?;
    Ok(0)
}

pub fn flaky(ctx: &Ctx, a: FlakyArgs) -> CmdResult {
    let store = ctx.store()?;
    let remote = ctx.remote(&store)?;
    let src = Sources {
        store: &store,
        remote: remote.as_ref(),
    };
    let scope = a.scope.scope(src, 30)?;
    let (n, list) = history::flaky(src, &scope).map_err(|e| CmdError::input(e.to_string()))?;
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({"runs": n, "flaky": list}))?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
    if list.is_empty() {
        writeln!(
            out,
            "Nothing flipped over the last {}: no step, gate, test or readiness went bad and came back, and no step needed a retry.",
            ScopeArgs::describe(&scope, n)
        )?;
        out.flush()?;
        return Ok(0);
    }
    writeln!(
        out,
        "Flaky over the last {}, most first:",
        ScopeArgs::describe(&scope, n)
    )?;
    writeln!(
        out,
        "{:>5}  {:>5}  {:>11}  {:>7}  METRIC",
        "RATE", "FLIPS", "SAME INPUTS", "RETRIED"
    )?;
    for f in &list {
        writeln!(
            out,
            "{:>4.0}%  {:>5}  {:>11}  {:>7}  {}",
            f.rate * 100.0,
            f.flips,
            f.same_inputs,
            f.retried,
            f.metric
        )?;
        let shown: Vec<&str> = f.flipped_in.iter().take(8).map(String::as_str).collect();
        let more = f.flipped_in.len().saturating_sub(8);
        writeln!(
            out,
            "{:>36}in {}{}",
            "",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )?;
    }
    out.flush()?;
    Ok(0)
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only runs started since: a date (2026-11-01), an RFC 3339 time, or a time ago (30d,
    /// 12h, 90m).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// Only runs of this pipeline (default: every pipeline).
    #[arg(long)]
    pipeline: Option<String>,
    /// Only runs with this branch label.
    #[arg(long)]
    branch: Option<String>,
    /// The Parquet file to write (replaced whole, never half-written).
    #[arg(short = 'o', long = "output", value_name = "FILE.parquet")]
    out: std::path::PathBuf,
}

/// A time as ns since the epoch, saturating past 2262.
fn ns_i64(t: jiff::Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_nanosecond() > 0 {
        i64::MAX
    } else {
        i64::MIN
    })
}

/// `--since`: ns since the epoch.
fn since_ns(s: &str) -> Result<i64, CmdError> {
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    if let Some(days) = s.strip_suffix('d').and_then(|d| d.parse::<u64>().ok()) {
        return Ok(now - (days as i64) * 86_400_000_000_000);
    }
    if let Ok(ns) = pipetape_replayer::time::parse_duration(s) {
        return Ok(now - ns as i64);
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        if let Ok(z) = d.to_zoned(jiff::tz::TimeZone::UTC) {
            return Ok(ns_i64(z.timestamp()));
        }
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(ns_i64(t));
    }
    Err(CmdError::input(format!(
        "--since '{s}': expected a date (2026-11-01), an RFC 3339 time, or a time ago (30d, 12h)"
    )))
}

pub fn export_metrics(ctx: &Ctx, a: ExportArgs) -> CmdResult {
    let since = a.since.as_deref().map(since_ns).transpose()?;
    let scope = Scope {
        pipeline: a.pipeline.clone(),
        branch: a.branch.clone(),
        last: 0,
    };
    let store = ctx.store()?;
    let remote = ctx.remote(&store)?;
    let src = Sources {
        store: &store,
        remote: remote.as_ref(),
    };
    let ierr = |e: pipetape_replayer::Error| CmdError::input(e.to_string());
    let mut runs = history::runs(src, &scope).map_err(ierr)?;
    if let Some(s) = since {
        runs.retain(|r| r.started_ns() >= s);
    }
    let sets = history::sets_of(src, &runs).map_err(ierr)?;
    // Written beside the target and renamed over it: never a half-written file.
    let mut partial = a.out.clone().into_os_string();
    partial.push(format!(".partial-{}", std::process::id()));
    let partial = std::path::PathBuf::from(partial);
    let file = std::fs::File::create(&partial)
        .map_err(|e| CmdError::input(format!("{}: cannot write: {e}", a.out.display())))?;
    let written = pipetape_replayer::analysis::parquet::write(&file, sets)
        .map_err(ierr)
        .and_then(|rows| {
            file.sync_all()
                .and_then(|_| std::fs::rename(&partial, &a.out))
                .map_err(|e| CmdError::input(format!("{}: {e}", a.out.display())))?;
            Ok(rows)
        });
    let rows = match written {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let bytes = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    if !ctx.quiet {
        eprintln!(
            "Wrote {rows} rows ({} runs × their metrics) to {} ({})",
            runs.len(),
            a.out.display(),
            crate::output::bytes(bytes)
        );
    }
    Ok(0)
}
