//! `pipetape bench`: the log-format benchmark on a synthetic full-stack run.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use pipetape_testkit::bench::{self, log::BenchOptions};

use super::bench_goals::{compaction, goals, write_compaction_report, write_goals};
use super::{CmdResult, Ctx, TextOrJson};
use crate::output::{self, Out};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Records in the synthetic run.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Keep the generated log at FILE (try the other commands on a big run).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// zstd compression level.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=19))]
    level: i32,
    /// Which measurements: the log format, the replayer (fold, state --at, serve), or both.
    #[arg(long, value_enum, default_value = "all")]
    suite: Suite,
    /// Size of the audit log the import suite generates, MiB.
    #[arg(long, default_value_t = 1024)]
    import_mb: u64,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Append, size, read, seek, recovery, writer memory.
    Log,
    /// Fold, state --at, serve list latency (on the log the log suite writes).
    Replay,
    /// Recorder overhead: a step printing 1,000,000 lines through `pipetape run` vs alone.
    Recorder,
    /// `replay diff` of two --records runs, and against green:10, with metrics from the catalog.
    Diff,
    /// The cluster observers under a busy cluster: 250 pods and 10,250 Events served live at
    /// 60x and recorded; CPU per 10,000 changes, peak RSS, lag from served to recorded.
    Observe,
    /// Shared history on a loopback S3 server (moto, started here unless --remote is given):
    /// 1,000 runs in the remote, last-green and green:10 cold and warm, a diff against green:10,
    /// a push of a --records log, prune over 10,000 index objects. Not part of `all`.
    Remote,
    /// Across history: a catalog of 10,000 runs × 200 metrics, then `runs bisect` and
    /// `runs flaky` over all of them (target ≤ 1 s each). Not part of `all`.
    History,
    /// `pipetape import` of an audit log of --import-mb MiB (real samples repeated and shifted):
    /// records/s, MB/s, peak RSS against a tenth of the input, .ptape size against gzip. Not
    /// part of `all`.
    Import,
    /// All of them (but remote, history and import).
    All,
}

pub fn run(ctx: &Ctx, a: BenchArgs) -> CmdResult {
    if a.suite == Suite::Remote {
        return super::bench_remote::run(ctx, a.records, a.seed, a.output == TextOrJson::Json);
    }
    if a.suite == Suite::Diff {
        return diff_suite(ctx, &a);
    }
    if a.suite == Suite::Import {
        return super::bench_import::run(ctx, a.import_mb, a.output == TextOrJson::Json);
    }
    if a.suite == Suite::History {
        return history_suite(ctx, &a);
    }
    if a.suite == Suite::Observe {
        return observe_suite(ctx, &a);
    }
    if a.suite == Suite::Recorder {
        let rep = recorder(ctx, a.output == TextOrJson::Json)?;
        let mut out = Out::new();
        if a.output == TextOrJson::Json {
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "recorder": rep }))?;
            writeln!(out)?;
        } else {
            write_recorder_report(&mut out, &rep)?;
        }
        out.flush()?;
        return Ok(0);
    }
    // The replay suite reads the log the log suite writes: keep it until both are done.
    let tmp = std::env::temp_dir().join(format!("pipetape-bench-{}.ptape", std::process::id()));
    let keep = a.out.is_some();
    let path = a.out.clone().unwrap_or_else(|| tmp.clone());
    let opts = BenchOptions {
        records: a.records.max(100),
        out: Some(path.clone()),
        seed: a.seed,
        level: a.level,
    };
    let quiet = ctx.quiet || a.output == TextOrJson::Json;
    let rep = bench::log::run(&opts, |phase| {
        if !quiet {
            eprintln!("bench: {phase}...");
        }
    });
    let replay = match (&rep, a.suite) {
        (Ok(_), Suite::Replay | Suite::All) => {
            if !quiet {
                eprintln!("bench: replay (fold, state --at, serve)...");
            }
            Some(pipetape_testkit::bench::replay::run(&path, a.seed))
        }
        _ => None,
    };
    // `replay serve` of the same log, as a user starts it: its own peak RSS.
    let serve = match &replay {
        Some(Ok(r)) => r.biggest_log.as_ref().map(|(ns, pod, c, _)| {
            if !quiet {
                eprintln!("bench: replay serve (a child process, kubectl logs of {ns}/{pod})...");
            }
            super::bench_serve::serve_child(&path, (ns, pod, c))
        }),
        _ => None,
    };
    let compaction = match (&rep, a.suite) {
        (Ok(_), Suite::Log | Suite::All) => {
            if !quiet {
                eprintln!("bench: compaction (archive compact at the level run would pick)...");
            }
            Some(compaction(&path))
        }
        _ => None,
    };
    if !keep {
        let _ = std::fs::remove_file(&tmp);
    }
    let rep = rep?;
    let replay = replay
        .transpose()
        .map_err(|e| super::CmdError::input(e.to_string()))?;
    let serve = serve.transpose()?;
    let compaction = compaction
        .transpose()
        .map_err(|e| super::CmdError::input(format!("compaction: {e}")))?;
    // The observers last: their suite holds two folded runs and a zstd -19 encoder in this
    // process, which would count in the other suites' peak RSS.
    let (recorder_rep, diff_rep, observe_rep) = if a.suite == Suite::All {
        (
            Some(recorder(ctx, quiet)?),
            Some(diff_report(ctx, &a)?),
            Some(observe_report(ctx, &a)?),
        )
    } else {
        (None, None, None)
    };
    let goals = (a.suite == Suite::All).then(|| {
        goals(
            &rep,
            compaction.as_ref(),
            replay.as_ref(),
            serve.as_ref(),
            recorder_rep.as_ref(),
            diff_rep.as_ref(),
            observe_rep.as_ref(),
        )
    });
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        let mut v = serde_json::to_value(&rep)?;
        if let Some(r) = &recorder_rep {
            v["recorder"] = serde_json::to_value(r)?;
        }
        if let Some(c) = &compaction {
            v["compaction"] = serde_json::to_value(c)?;
        }
        if let Some(r) = &diff_rep {
            v["diff"] = serde_json::to_value(r)?;
        }
        if let Some(r) = &observe_rep {
            v["observe"] = serde_json::to_value(r)?;
        }
        if let Some(g) = &goals {
            v["goals"] = serde_json::to_value(g)?;
        }
        if a.suite == Suite::Replay {
            v = serde_json::json!({"records": rep.records});
        }
        if let Some(r) = &replay {
            v["replay"] = serde_json::to_value(r)?;
        }
        if let Some(s) = &serve {
            v["serve"] = serde_json::to_value(s)?;
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
    if a.suite != Suite::Replay {
        write_log_report(&mut out, &rep, &opts)?;
    }
    if let Some(c) = &compaction {
        write_compaction_report(&mut out, c, &rep)?;
    }
    if let Some(r) = &replay {
        write_replay_report(&mut out, r, serve.as_ref())?;
    }
    if let Some(r) = &recorder_rep {
        write_recorder_report(&mut out, r)?;
    }
    if let Some(r) = &diff_rep {
        write_diff_report(&mut out, r)?;
    }
    if let Some(r) = &observe_rep {
        write_observe_report(&mut out, r)?;
    }
    if let Some(g) = &goals {
        write_goals(&mut out, g)?;
    }
    out.flush()?;
    Ok(0)
}

fn recorder(
    ctx: &Ctx,
    quiet: bool,
) -> Result<pipetape_testkit::bench::recorder::RecorderReport, super::CmdError> {
    if !(quiet || ctx.quiet) {
        eprintln!(
            "bench: recorder overhead (1,000,000 lines, {} runs each)...",
            pipetape_testkit::bench::recorder::RUNS
        );
    }
    let exe = std::env::current_exe()
        .map_err(|e| super::CmdError::input(format!("cannot find pipetape's own binary: {e}")))?;
    let dir = std::env::temp_dir().join(format!("pipetape-bench-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let r = pipetape_testkit::bench::recorder::run(&exe, &dir, 1_000_000);
    let _ = std::fs::remove_dir_all(&dir);
    r.map_err(|e| super::CmdError::input(format!("recorder benchmark: {e}")))
}

fn write_recorder_report(
    out: &mut Out,
    r: &pipetape_testkit::bench::recorder::RecorderReport,
) -> std::io::Result<()> {
    writeln!(
        out,
        "recorder: a step printing {} lines of ~100 bytes",
        r.lines
    )?;
    let runs = pipetape_testkit::bench::recorder::RUNS;
    writeln!(
        out,
        "  alone           {:>9.2} s   (output to /dev/null, median of {runs})",
        r.baseline_s
    )?;
    writeln!(
        out,
        "  piped to cat    {:>9.2} s   ({:.2}x: the step | cat, what a pipe and a reader doing nothing cost)",
        r.piped_s, r.pipe_ratio
    )?;
    writeln!(
        out,
        "  pipetape run    {:>9.2} s   (recorded, terminal output to /dev/null, median of {runs})",
        r.recorded_s
    )?;
    writeln!(
        out,
        "  no default masks{:>9.2} s   (pipetape run --no-default-masks, median of {runs})",
        r.masks_off_s
    )?;
    writeln!(
        out,
        "  lines recorded  {:>9}     {}",
        r.lines_recorded,
        if r.in_order {
            "all, in order"
        } else {
            "LOST OR REORDERED"
        }
    )?;
    writeln!(out, "targets:")?;
    writeln!(
        out,
        "  {:<4} {:<26} {:<50} measured {:.2}",
        if r.overhead_ratio <= 1.3 {
            "MET"
        } else {
            "MISS"
        },
        "overhead_ratio",
        "<= 1.3x the wall time",
        r.overhead_ratio
    )?;
    writeln!(
        out,
        "  {:<4} {:<26} {:<50} measured {:.2}",
        if r.masks_cost_ratio <= 1.1 {
            "MET"
        } else {
            "MISS"
        },
        "masks_cost_ratio",
        "default masks <= 1.1x the run without them",
        r.masks_cost_ratio
    )?;
    writeln!(
        out,
        "  {:<4} {:<26} {:<50} measured {}",
        if r.in_order { "MET" } else { "MISS" },
        "lines_in_order",
        "no line lost or reordered",
        r.in_order
    )?;
    Ok(())
}

fn write_replay_report(
    out: &mut Out,
    r: &pipetape_testkit::bench::replay::ReplayReport,
    serve: Option<&super::bench_serve::ServeReport>,
) -> std::io::Result<()> {
    writeln!(out, "replay: {} records", r.fold_records)?;
    writeln!(
        out,
        "  fold            {:>9.0} ms   model holds {}, process peak RSS {} (every line in memory)",
        r.fold_ms,
        output::bytes(r.fold_model_rss_bytes.max(0) as u64),
        output::bytes(r.fold_peak_rss_bytes)
    )?;
    writeln!(
        out,
        "  fold, lazy      {:>9.0} ms   model holds {}, peak RSS {} (lines left in the log: serve, step, logs)",
        r.lazy_fold_ms,
        output::bytes(r.lazy_model_rss_bytes.max(0) as u64),
        output::bytes(r.lazy_peak_rss_bytes)
    )?;
    if let Some((ns, pod, c, n)) = &r.biggest_log {
        writeln!(
            out,
            "  read one log    {:>9.1} ms   {n} lines of {ns}/{pod} {c}, from the frames that hold them",
            r.biggest_log_read_ms
        )?;
    }
    if let Some(s) = serve {
        writeln!(
            out,
            "  replay serve    {:>9.0} ms   to ready; peak RSS {}; kubectl logs of {} ({} lines) {:.0} ms",
            s.ready_ms,
            output::bytes(s.peak_rss_bytes),
            s.container,
            s.log_lines,
            s.log_ms
        )?;
    }
    writeln!(
        out,
        "  object graph    {:>9.1} ms   {} links (built on demand: replay why, the diff's chains)",
        r.graph_ms, r.graph_links
    )?;
    writeln!(
        out,
        "  state --at      {:>9.1} ms median, {:.1} ms worst (open, fold lane 0, query)",
        r.state_at_ms, r.state_at_max_ms
    )?;
    writeln!(
        out,
        "  serve list      {:>9.1} ms for {} pods as JSON, {:.1} ms as a Table",
        r.serve_list_ms, r.serve_pods, r.serve_table_ms
    )?;
    writeln!(out, "targets:")?;
    let t = |out: &mut Out, met: bool, name: &str, target: &str, v: String| {
        writeln!(
            out,
            "  {:<4} {:<26} {:<50} measured {v}",
            if met { "MET" } else { "MISS" },
            name,
            target
        )
    };
    t(
        out,
        r.fold_ms <= 1000.0,
        "fold_ms",
        "<= 1000 ms",
        format!("{:.0}", r.fold_ms),
    )?;
    t(
        out,
        r.graph_ms <= r.fold_ms * 0.1,
        "graph_ms",
        "<= 10% of the fold",
        format!(
            "{:.1} ({:.1}%)",
            r.graph_ms,
            100.0 * r.graph_ms / r.fold_ms.max(1e-9)
        ),
    )?;
    t(
        out,
        r.fold_peak_rss_bytes <= 200 << 20,
        "fold_peak_rss_bytes",
        "<= 200 MiB",
        output::bytes(r.fold_peak_rss_bytes),
    )?;
    t(
        out,
        r.state_at_ms <= 100.0,
        "state_at_ms",
        "<= 100 ms",
        format!("{:.1}", r.state_at_ms),
    )?;
    Ok(())
}

fn write_log_report(
    out: &mut Out,
    rep: &pipetape_testkit::bench::log::BenchReport,
    opts: &BenchOptions,
) -> std::io::Result<()> {
    let mb = |b: u64| output::bytes(b);
    writeln!(
        out,
        "pipetape bench: {} records (synthetic full-stack run, seed {}, zstd level {})",
        rep.records, opts.seed, opts.level
    )?;
    writeln!(
        out,
        "  append          {:>12.0} records/s   {:.1} MB/s msgpack input, {:.1} MB/s as JSON",
        rep.append_records_per_s, rep.append_input_mb_per_s, rep.append_json_mb_per_s
    )?;
    writeln!(
        out,
        "  on disk         {:>12}   {:.1} bytes/record",
        mb(rep.file_bytes),
        rep.bytes_per_record
    )?;
    writeln!(
        out,
        "  vs JSON lines   {:>12}   ratio {:.4} (1/{:.1})",
        mb(rep.json_bytes),
        rep.size_vs_json,
        1.0 / rep.size_vs_json
    )?;
    writeln!(
        out,
        "  vs JSON+gzip-6  {:>12}   ratio {:.3}",
        mb(rep.json_gzip_bytes),
        rep.size_vs_json_gzip
    )?;
    writeln!(
        out,
        "  vs zstd floor   {:>12}   ratio {:.3}",
        mb(rep.zstd_floor_bytes),
        rep.size_vs_zstd_floor
    )?;
    writeln!(
        out,
        "  read            {:>12.0} records/s   median of 3 passes ({:.0} to {:.0})",
        rep.read_records_per_s, rep.read_records_per_s_min, rep.read_records_per_s_max
    )?;
    writeln!(
        out,
        "  seek to time    {:>9.2} ms median, {:.2} ms worst (open + first record)",
        rep.seek_ms, rep.seek_max_ms
    )?;
    writeln!(
        out,
        "  recover         {:>9.2} ms to reopen a crashed copy ({} records kept, {} bytes dropped)",
        rep.recover_ms, rep.recovered_records, rep.recover_dropped_bytes
    )?;
    writeln!(
        out,
        "  writer memory   {:>12} growth over the second half of the append phase",
        format!("{:+} KiB", rep.writer_rss_growth_bytes / 1024)
    )?;
    writeln!(out, "  peak RSS        {:>12}", mb(rep.peak_rss_bytes))?;
    writeln!(out, "targets:")?;
    for t in &rep.targets {
        writeln!(
            out,
            "  {:<4} {:<26} {:<50} measured {}",
            if t.met { "MET" } else { "MISS" },
            t.name,
            t.target,
            fmt_num(t.value)
        )?;
    }
    Ok(())
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn diff_suite(ctx: &Ctx, a: &BenchArgs) -> CmdResult {
    let r = diff_report(ctx, a)?;
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "diff": r }))?;
        writeln!(out)?;
    } else {
        write_diff_report(&mut out, &r)?;
    }
    out.flush()?;
    Ok(0)
}

fn diff_report(
    ctx: &Ctx,
    a: &BenchArgs,
) -> Result<pipetape_testkit::bench::replay::DiffBenchReport, super::CmdError> {
    let quiet = ctx.quiet || a.output == TextOrJson::Json;
    if !quiet {
        eprintln!(
            "bench: diff (writing and importing 11 runs of {} records)...",
            a.records
        );
    }
    let dir = std::env::temp_dir().join(format!("pipetape-bench-diff-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let r = pipetape_testkit::bench::replay::diff(&dir, a.records.max(100), a.seed);
    let _ = std::fs::remove_dir_all(&dir);
    r.map_err(|e| super::CmdError::input(e.to_string()))
}

fn write_diff_report(
    out: &mut Out,
    r: &pipetape_testkit::bench::replay::DiffBenchReport,
) -> std::io::Result<()> {
    {
        let mib = |b: f64| b / (1024.0 * 1024.0);
        writeln!(
            out,
            "replay diff ({} records per run, {} runs in the catalog)",
            r.records_per_run, r.runs
        )?;
        writeln!(
            out,
            "  two runs, baseline metrics from the catalog   {:>8.0} ms   (target <= 1000 ms)",
            r.two_runs_ms
        )?;
        writeln!(
            out,
            "    the same with --no-logs                     {:>8.0} ms",
            r.two_runs_no_logs_ms
        )?;
        writeln!(
            out,
            "  two runs, baseline log re-read                {:>8.0} ms   (target <= 2000 ms)",
            r.two_runs_reread_ms
        )?;
        writeln!(
            out,
            "  against green:10 from the catalog             {:>8.0} ms",
            r.green10_ms
        )?;
        writeln!(
            out,
            "  regressions reported                          {:>8}",
            r.regressions
        )?;
        writeln!(
            out,
            "  memory held by one diff                       {:>8.1} MiB",
            mib(r.diff_rss_bytes as f64)
        )?;
        writeln!(
            out,
            "  peak RSS of the process                       {:>8.1} MiB",
            mib(r.peak_rss_bytes as f64)
        )?;
    }
    Ok(())
}

fn history_suite(ctx: &Ctx, a: &BenchArgs) -> CmdResult {
    let quiet = ctx.quiet || a.output == TextOrJson::Json;
    let runs = 10_000;
    if !quiet {
        eprintln!("bench: history (a catalog of {runs} runs × 200 metrics)...");
    }
    let dir = std::env::temp_dir().join(format!("pipetape-bench-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let r = pipetape_testkit::bench::history::run(&dir, runs, a.seed);
    let _ = std::fs::remove_dir_all(&dir);
    let r = r.map_err(|e| super::CmdError::input(e.to_string()))?;
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "history": r }))?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "history: {} runs × {} metrics in the catalog ({} on disk, written in {:.1} s)",
            r.runs,
            r.metrics_per_run,
            output::bytes(r.catalog_bytes),
            r.build_ms / 1e3
        )?;
        let met = |ok: bool| if ok { "MET " } else { "MISS" };
        writeln!(
            out,
            "  {} runs bisect over every run   {:>8.0} ms   (target <= 1000 ms; found run {}, planted {})",
            met(r.bisect_ms <= 1000.0),
            r.bisect_ms,
            r.bisect_found,
            r.runs * 7 / 10 + 1
        )?;
        writeln!(
            out,
            "  {} runs flaky over every run    {:>8.0} ms   (target <= 1000 ms; {} flaky, 1 planted)",
            met(r.flaky_ms <= 1000.0),
            r.flaky_ms,
            r.flaky_found
        )?;
        writeln!(
            out,
            "       runs export-metrics          {:>8.0} ms   ({} rows, {} of Parquet)",
            r.export_ms,
            r.export_rows,
            output::bytes(r.export_bytes)
        )?;
        writeln!(
            out,
            "  shared history: the first {} runs pushed to a file:// remote ({} of index objects), read from an empty catalog:",
            r.remote_runs,
            output::bytes(r.remote_index_bytes)
        )?;
        writeln!(
            out,
            "       runs bisect, first question   {:>8.0} ms   (reads every index object, keeps its series in the catalog)\n       runs bisect, again            {:>8.0} ms\n       runs flaky, after it          {:>8.0} ms",
            r.remote_bisect_cold_ms, r.remote_bisect_warm_ms, r.remote_flaky_ms
        )?;
    }
    out.flush()?;
    Ok(0)
}

/// Figures of the observer benchmark.
#[derive(Debug, serde::Serialize)]
pub(super) struct ObserveReport {
    pods: usize,
    events: usize,
    changes_served: usize,
    changes_recorded: usize,
    speed: f64,
    recorder_cpu_s: f64,
    pub(super) cpu_s_per_10k_changes: f64,
    recorder_peak_rss_bytes: u64,
    lag_p50_ms: f64,
    lag_p99_ms: f64,
    lag_max_ms: f64,
    /// The log as recorded (`record --no-compact`) against general compressors.
    pub(super) sizes: pipetape_testkit::bench::log::VsGeneral,
    compacted_level: i32,
    compacted_bytes: u64,
}

impl ObserveReport {
    pub(super) fn compacted_vs(&self, general: u64) -> f64 {
        self.compacted_bytes as f64 / general.max(1) as f64
    }
}

fn observe_suite(ctx: &Ctx, a: &BenchArgs) -> CmdResult {
    let r = observe_report(ctx, a)?;
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "observe": r }))?;
        writeln!(out)?;
    } else {
        write_observe_report(&mut out, &r)?;
    }
    out.flush()?;
    Ok(0)
}

fn observe_report(ctx: &Ctx, a: &BenchArgs) -> Result<ObserveReport, super::CmdError> {
    use std::process::{Command, Stdio};
    let quiet = ctx.quiet || a.output == TextOrJson::Json;
    let (pods, per_pod, duration_s, speed) = (250usize, 41usize, 600.0f64, 60.0f64);
    let dir = std::env::temp_dir().join(format!("pipetape-bench-observe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let bad = |e: String| super::CmdError::input(e);
    let result = (|| -> Result<ObserveReport, super::CmdError> {
        let (recs, start) =
            pipetape_testkit::bench::replay::busy_cluster(pods, per_pod, duration_s);
        let log = dir.join("busy.ptape");
        pipetape_testkit::scenario::write_log(&log, pipetape_store::RunId::random(), start, &recs)
            .map_err(|e| bad(e.to_string()))?;
        let served = pipetape_replayer::load(&log)
            .map_err(|e| bad(e.to_string()))?
            .model;
        let changes_served: usize = served
            .objects
            .values()
            .map(|h| h.versions.len())
            .sum::<usize>()
            + served.events.len();
        if !quiet {
            eprintln!(
                "bench: observe ({pods} pods, {} events, {changes_served} changes served at {speed}x)...",
                served.events.len()
            );
        }
        let me = std::env::current_exe().map_err(|e| bad(e.to_string()))?;
        let kc = dir.join("kubeconfig");
        let server = super::demo::serve(&log, &kc, speed)?;
        // The served clock's zero: serve dates its kubeconfig with it.
        let epoch = std::fs::metadata(&kc)?
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let store = dir.join("store");
        let secs = format!("{:.1}", duration_s / speed + 3.0);
        let usage_before =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
                .map_err(|e| bad(e.to_string()))?;
        let child = Command::new(&me)
            .arg("--store")
            .arg(&store)
            .args([
                "-q",
                "record",
                "--no-compact",
                "--name",
                "busy",
                "--kubeconfig",
            ])
            .arg(&kc)
            .args(["--", "sleep", &secs])
            .stdout(Stdio::null())
            .spawn()?;
        // The child's own peak (getrusage's children figure is the largest child's so far).
        let (ok, rss) =
            super::bench_import::wait_with_peak(nix::unistd::Pid::from_raw(child.id() as i32))?;
        let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
            .map_err(|e| bad(e.to_string()))?;
        drop(server);
        if !ok {
            return Err(bad("the recorder failed".into()));
        }
        let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        let cpu = tv(usage.user_time()) + tv(usage.system_time())
            - tv(usage_before.user_time())
            - tv(usage_before.system_time());
        let st = pipetape_store::store::Store::open(&store).map_err(|e| bad(e.to_string()))?;
        let run = st
            .resolve("last", &Default::default())
            .map_err(|e| bad(e.to_string()))?;
        let rec = pipetape_replayer::load(&run.path)
            .map_err(|e| bad(e.to_string()))?
            .model;
        // Lag: when each change was appended by the recorder minus when serve served it.
        let served_at = |mono: u64| epoch + (mono as f64 / speed) as i64;
        let rec_at = |mono: u64| rec.info.started_ns + mono as i64;
        let mut lags: Vec<f64> = Vec::new();
        let mut recorded = 0usize;
        for (k, h) in &served.objects {
            if let Some(r) = rec.objects.get(k) {
                recorded += r.versions.len().min(h.versions.len());
                for (s, r) in h.versions.iter().zip(&r.versions) {
                    lags.push((rec_at(r.mono_ns) - served_at(s.mono_ns)) as f64 / 1e6);
                }
            }
        }
        let by_name: std::collections::HashMap<(&str, &str), u64> = rec
            .events
            .iter()
            .map(|e| {
                (
                    (e.event.namespace.as_str(), e.event.name.as_str()),
                    e.mono_ns,
                )
            })
            .collect();
        for e in &served.events {
            if let Some(t) = by_name.get(&(e.event.namespace.as_str(), e.event.name.as_str())) {
                recorded += 1;
                lags.push((rec_at(*t) - served_at(e.mono_ns)) as f64 / 1e6);
            }
        }
        // The recorded log against general compressors, as recorded and compacted as `record`
        // compacts it when it ends (after the CPU figure: compaction is not observation).
        if !quiet {
            eprintln!("bench: observe: the recorded log against gzip -6 and zstd -19 --long...");
        }
        let sizes =
            pipetape_testkit::bench::log::vs_general(&run.path).map_err(|e| bad(e.to_string()))?;
        let input =
            pipetape_store::compact::records_bytes(&run.path).map_err(|e| bad(e.to_string()))?;
        let budget = std::time::Duration::from_secs_f64((duration_s / speed / 20.0).max(1.0));
        let copts =
            pipetape_store::compact::CompactOptions::within(input, budget).unwrap_or_default();
        let compacted =
            pipetape_store::compact::compact(&run.path, &copts).map_err(|e| bad(e.to_string()))?;
        lags.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            lags.get(((lags.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or(0.0)
        };
        Ok(ObserveReport {
            pods,
            events: served.events.len(),
            changes_served,
            changes_recorded: recorded,
            speed,
            recorder_cpu_s: cpu,
            cpu_s_per_10k_changes: cpu / (recorded.max(1) as f64) * 10_000.0,
            recorder_peak_rss_bytes: rss,
            lag_p50_ms: pct(0.5),
            lag_p99_ms: pct(0.99),
            lag_max_ms: lags.last().copied().unwrap_or(0.0),
            sizes,
            compacted_level: copts.level,
            compacted_bytes: compacted.bytes_after,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn write_observe_report(out: &mut Out, r: &ObserveReport) -> std::io::Result<()> {
    {
        writeln!(
            out,
            "cluster observers ({} pods, {} events served live at {}x)",
            r.pods, r.events, r.speed
        )?;
        writeln!(
            out,
            "  changes recorded / served                  {:>6} / {}",
            r.changes_recorded, r.changes_served
        )?;
        writeln!(
            out,
            "  recorder CPU                               {:>8.2} s",
            r.recorder_cpu_s
        )?;
        writeln!(
            out,
            "  CPU per 10,000 changes                     {:>8.2} s    (target <= 0.5 s)",
            r.cpu_s_per_10k_changes
        )?;
        writeln!(
            out,
            "  recorder peak RSS                          {:>8.1} MiB  (target <= 150 MiB)",
            r.recorder_peak_rss_bytes as f64 / 1048576.0
        )?;
        writeln!(out, "  lag served -> appended, p50 / p99 / max    {:>5.0} / {:.0} / {:.0} ms (target <= 1000 ms; frames reach disk within 250 ms more)", r.lag_p50_ms, r.lag_p99_ms, r.lag_max_ms)?;
        let z = &r.sizes;
        writeln!(
            out,
            "  recorded log, {} records ({:.0} bytes/record as JSON): {} as recorded, {} compacted (level {})",
            z.records,
            z.json_bytes as f64 / z.records.max(1) as f64,
            output::bytes(z.log_bytes),
            output::bytes(r.compacted_bytes),
            r.compacted_level
        )?;
        writeln!(
            out,
            "    vs its JSON + gzip -6 ({})          ratio {:.3} as recorded, {:.3} compacted",
            output::bytes(z.json_gzip_bytes),
            z.vs_gzip(),
            r.compacted_vs(z.json_gzip_bytes)
        )?;
        writeln!(
            out,
            "    vs its JSON + zstd -19 --long ({})  ratio {:.3} as recorded, {:.3} compacted",
            output::bytes(z.json_zstd19_bytes),
            z.vs_zstd19(),
            r.compacted_vs(z.json_zstd19_bytes)
        )?;
    }
    Ok(())
}
