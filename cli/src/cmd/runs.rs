//! `pipetape runs`: list, show, mark and reindex the runs in the catalog.

use std::collections::BTreeMap;
use std::io::Write;

use clap::{Args, Subcommand};
use pipetape_store::catalog::{ListFilter, RunEntry};
use pipetape_store::model::Outcome;
use pipetape_store::reader::{LogReader, Recovery};

use super::{parse_label, CmdError, CmdResult, Ctx, ListFormat, TextOrJson};
use crate::output::{self, Out};

#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// List runs, newest first, with outcome and headline figures (the remote's with --remote).
    List(ListArgs),
    /// Show one run: labels, timing, outcome, log integrity and summary metrics.
    Show(ShowArgs),
    /// Set a run's outcome after the fact (e.g. runs imported from elsewhere).
    Mark(MarkArgs),
    /// Rebuild the catalog from the run logs in the store.
    Reindex,
    /// Send runs to the remote (--remote / PIPETAPE_REMOTE): one run, or every run it lacks.
    Push(super::remote::PushArgs),
    /// Fetch runs from the remote into the local store.
    Pull(super::remote::PullArgs),
    /// Remove old runs (from the remote with --remote), never the newest green ones.
    Prune(super::remote::PruneArgs),
    /// The first run where a metric left its green range and stayed out, and what changed then
    /// (the catalog's runs and, with a remote, the remote's).
    Bisect(super::history::BisectArgs),
    /// Steps, gates, tests and readiness that flip across the last runs, most first (the
    /// catalog's runs and, with a remote, the remote's).
    Flaky(super::history::FlakyArgs),
    /// Every run's metrics as one Parquet file (one row per run and metric, with labels and
    /// inputs), for DuckDB, Trino/Athena, ClickHouse or Spark; with a remote, its runs too.
    ExportMetrics(super::history::ExportArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs of this pipeline.
    #[arg(long)]
    pipeline: Option<String>,
    /// Only runs with this label (repeatable; all must match).
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Only runs with this outcome.
    #[arg(long, value_parser = ["passed", "failed", "cancelled", "incomplete"])]
    outcome: Option<String>,
    /// At most this many runs (default: all; with --remote, the newest 100).
    #[arg(short = 'n', long, value_name = "N")]
    limit: Option<usize>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: ListFormat,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    run: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    /// The run: id, id prefix, last, last-green or last-red.
    run: String,
    /// The outcome to record.
    #[arg(long, value_parser = ["passed", "failed"])]
    outcome: String,
}

pub fn run(ctx: &Ctx, cmd: RunsCmd) -> CmdResult {
    match cmd {
        RunsCmd::List(a) => list(ctx, a),
        RunsCmd::Show(a) => show(ctx, a),
        RunsCmd::Mark(a) => mark(ctx, a),
        RunsCmd::Reindex => reindex(ctx),
        RunsCmd::Push(a) => super::remote::push(ctx, a),
        RunsCmd::Pull(a) => super::remote::pull(ctx, a),
        RunsCmd::Prune(a) => super::remote::prune(ctx, a),
        RunsCmd::Bisect(a) => super::history::bisect(ctx, a),
        RunsCmd::Flaky(a) => super::history::flaky(ctx, a),
        RunsCmd::ExportMetrics(a) => super::history::export_metrics(ctx, a),
    }
}

fn list(ctx: &Ctx, a: ListArgs) -> CmdResult {
    if ctx.remote_flag {
        return super::remote::list(
            ctx,
            super::remote::RemoteListing {
                pipeline: a.pipeline,
                labels: a.labels,
                outcome: a.outcome.as_deref().and_then(Outcome::parse),
                limit: a.limit,
                output: a.output,
            },
            table,
        );
    }
    let store = ctx.store()?;
    let filter = ListFilter {
        pipeline: a.pipeline,
        labels: a.labels.into_iter().collect::<BTreeMap<_, _>>(),
        outcome: a.outcome.as_deref().and_then(Outcome::parse),
    };
    let mut runs = store.catalog()?.list(&filter)?;
    if let Some(n) = a.limit {
        runs.truncate(n);
    }
    let mut out = Out::new();
    match a.output {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &runs)?;
            writeln!(out)?;
        }
        ListFormat::Table => {
            if runs.is_empty() {
                if !ctx.quiet {
                    eprintln!(
                        "No runs in {}. Record one with `pipetape run`, or `pipetape archive import FILE`.",
                        store.root().display()
                    );
                }
                return Ok(0);
            }
            out.write_all(table(&runs).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// The runs as `runs list` shows them (local or remote).
fn table(runs: &[RunEntry]) -> String {
    let rows: Vec<Vec<String>> = runs.iter().map(row).collect();
    output::table(
        &[
            "RUN", "PIPELINE", "BRANCH", "OUTCOME", "STARTED", "DURATION", "STEPS", "GATES",
            "TESTS", "WARNINGS", "RESTARTS",
        ],
        &rows,
    )
}

fn row(e: &RunEntry) -> Vec<String> {
    let m = |k: &str| e.metrics.get(k).copied().unwrap_or(0.0) as u64;
    let frac = |total: &str, failed: &str| {
        if m(total) == 0 {
            "-".to_string()
        } else if m(failed) > 0 {
            format!("{}/{} failed", m(failed), m(total))
        } else {
            m(total).to_string()
        }
    };
    let mut outcome = e.outcome.to_string();
    if e.outcome_overridden {
        outcome.push('*');
    }
    if e.damaged {
        outcome.push_str(" (damaged)");
    }
    vec![
        e.id.clone(),
        e.pipeline.clone(),
        e.branch().unwrap_or("-").to_string(),
        outcome,
        output::time(e.started_ns),
        e.duration_s()
            .map(|d| output::duration((d * 1e9) as u64))
            .unwrap_or_else(|| "-".into()),
        frac("steps", "steps_failed"),
        frac("gates", "gates_failed"),
        match (m("tests"), m("tests_failed")) {
            (0, _) => "-".to_string(),
            (t, 0) => format!("{t} passed"),
            (t, f) => format!("{f}/{t} failed"),
        },
        m("warnings").to_string(),
        m("restarts").to_string(),
    ]
}

fn show(ctx: &Ctx, a: ShowArgs) -> CmdResult {
    let resolved = ctx.resolve(&a.run)?;
    let entry = match resolved.entry {
        Some(e) => e,
        None => pipetape_store::store::summarize_log(&resolved.path)?,
    };
    let reader = LogReader::open(&entry.log_path, Recovery::Tolerant)
        .or_else(|_| LogReader::open(&resolved.path, Recovery::Tolerant))?;
    // The cluster's clock against the recorder's, estimated from objects created during the
    // run (state lane only: cheap).
    let skew_s = pipetape_replayer::load_state(&entry.log_path)
        .or_else(|_| pipetape_replayer::load_state(&resolved.path))
        .map(|l| l.model.info.clock_skew_ns as f64 / 1e9)
        .unwrap_or(0.0);
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        let mut v = serde_json::to_value(&entry)?;
        v["clock_skew_s"] = serde_json::json!(skew_s);
        v["log"] = serde_json::json!({
            "closed": reader.is_closed(),
            "frames": reader.frames().len(),
            "damage": reader.damage().iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
    writeln!(out, "Run:       {}", entry.id)?;
    writeln!(out, "Pipeline:  {}", entry.pipeline)?;
    let mut outcome = entry.outcome.to_string();
    if entry.outcome_overridden {
        outcome.push_str(" (set by `runs mark`)");
    }
    writeln!(out, "Outcome:   {outcome}")?;
    if let Some(c) = entry.exit_code {
        writeln!(out, "Exit code: {c}")?;
    }
    if let Some(r) = &entry.reason {
        writeln!(out, "Reason:    {r}")?;
    }
    writeln!(out, "Started:   {}", output::time(entry.started_ns))?;
    match entry.ended_ns {
        Some(e) => writeln!(
            out,
            "Ended:     {} (took {})",
            output::time(e),
            output::duration((e - entry.started_ns).max(0) as u64)
        )?,
        None => writeln!(out, "Ended:     - (no end recorded)")?,
    }
    if !entry.labels.is_empty() {
        writeln!(out, "Labels:")?;
        for (k, v) in &entry.labels {
            writeln!(out, "  {k}={v}")?;
        }
    }
    writeln!(out, "Log:       {}", entry.log_path.display())?;
    if skew_s.abs() >= 1.0 {
        writeln!(
            out,
            "Clock:     the cluster's clock was {} {} the recorder's (estimated from objects created during the run); times read from objects are corrected by it",
            output::duration((skew_s.abs() * 1e9) as u64),
            if skew_s > 0.0 { "ahead of" } else { "behind" }
        )?;
    }
    writeln!(
        out,
        "           {} records, {} frames, {}, {}",
        entry.records,
        reader.frames().len(),
        output::bytes(entry.bytes),
        if reader.is_closed() {
            "closed"
        } else {
            "not closed (no index: still running, or the recorder was killed)"
        }
    )?;
    for d in reader.damage() {
        writeln!(out, "  damage:  {d}")?;
    }
    if !entry.tool_version.is_empty() {
        writeln!(out, "Recorder:  pipetape {}", entry.tool_version)?;
    }
    if !entry.metrics.is_empty() {
        writeln!(out, "Metrics:")?;
        for (k, v) in &entry.metrics {
            if v.fract() == 0.0 {
                writeln!(out, "  {k:<24} {}", *v as i64)?;
            } else {
                writeln!(out, "  {k:<24} {v:.3}")?;
            }
        }
    }
    out.flush()?;
    Ok(0)
}

fn mark(ctx: &Ctx, a: MarkArgs) -> CmdResult {
    let store = ctx.store()?;
    let remote = ctx.remote(&store)?;
    let found =
        pipetape_store::remote::resolve(&store, remote.as_ref(), &a.run, &Default::default())?;
    for w in &found.warnings {
        ctx.warn(w);
    }
    let id = found.run.entry.map(|e| e.id).ok_or_else(|| {
        CmdError::input("runs mark needs a run in the catalog; import the file first")
    })?;
    let outcome = Outcome::parse(&a.outcome).ok_or_else(|| CmdError::input("bad outcome"))?;
    let local = !found.from_remote;
    if local {
        store.mark(&id, outcome)?;
    }
    // The remote learns it too (a new mark object; the newest wins), so other runners see it.
    let in_remote = super::remote::mark_remote(ctx, &store, &id, outcome)?;
    if !ctx.quiet {
        let wher = match (local, in_remote) {
            (true, true) => " (here and in the remote)",
            (false, true) => " (in the remote)",
            _ => "",
        };
        crate::say!("{id}: outcome set to {outcome}{wher}");
    }
    Ok(0)
}

fn reindex(ctx: &Ctx) -> CmdResult {
    let store = ctx.store()?;
    let rep = store.reindex()?;
    for (p, why) in &rep.damaged {
        ctx.warn(format!("{}: {why}", p.display()));
    }
    for (p, why) in &rep.unreadable {
        ctx.warn(format!("{}: not indexed: {why}", p.display()));
    }
    if !ctx.quiet {
        crate::say!(
            "Reindexed {} runs from {}",
            rep.runs,
            store.runs_dir().display()
        );
    }
    Ok(0)
}
