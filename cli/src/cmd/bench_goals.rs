//! The compaction figure and the table of performance goals (issue 17) that `pipetape bench`
//! ends with.

use std::io::Write;

use pipetape_store::reader::{LogReader, Recovery};

use super::bench::ObserveReport;
use crate::output::{self, Out};

/// The log suite's run compacted as `pipetape run` would compact it when it ends.
#[derive(Debug, serde::Serialize)]
pub(super) struct CompactionReport {
    /// Bytes of records (before compression).
    records_bytes: u64,
    /// The run's duration, seconds (what the level is chosen for).
    run_s: f64,
    level: i32,
    before_bytes: u64,
    after_bytes: u64,
    millis: u64,
    /// Records read back from the compacted log equal the live log's.
    same_records: bool,
}

pub(super) fn compaction(path: &std::path::Path) -> pipetape_store::Result<CompactionReport> {
    use pipetape_store::compact::{self, CompactOptions};
    let input = compact::records_bytes(path)?;
    let run_ns = LogReader::open(path, Recovery::Tolerant)?.max_mono_ns();
    let budget =
        (std::time::Duration::from_nanos(run_ns) / 20).max(std::time::Duration::from_secs(1));
    let opts = CompactOptions::within(input, budget).unwrap_or(CompactOptions {
        level: 6,
        ..CompactOptions::default()
    });
    let out = compact::compacting_path(path);
    let _ = std::fs::remove_file(&out);
    let c = compact::compact_to(path, &out, &opts);
    let same = c.as_ref().ok().map(|_| -> pipetape_store::Result<bool> {
        let (a, b) = (
            LogReader::open(path, Recovery::Strict)?,
            LogReader::open(&out, Recovery::Strict)?,
        );
        let mut n = 0u64;
        for (x, y) in a.records().zip(b.records()) {
            if x? != y? {
                return Ok(false);
            }
            n += 1;
        }
        Ok(n == a.record_count() && n == b.record_count())
    });
    let _ = std::fs::remove_file(&out);
    let c = c?;
    Ok(CompactionReport {
        records_bytes: input,
        run_s: run_ns as f64 / 1e9,
        level: opts.level,
        before_bytes: c.bytes_before,
        after_bytes: c.bytes_after,
        millis: c.millis,
        same_records: same.transpose()?.unwrap_or(false),
    })
}

pub(super) fn write_compaction_report(
    out: &mut Out,
    c: &CompactionReport,
    rep: &pipetape_testkit::bench::log::BenchReport,
) -> std::io::Result<()> {
    writeln!(
        out,
        "compaction: the run above ({} of records, {:.0} s long) as `pipetape run` compacts it",
        output::bytes(c.records_bytes),
        c.run_s
    )?;
    writeln!(
        out,
        "  level {:<2}        {:>9.1} s   {} -> {} ({:.3}x), records {}",
        c.level,
        c.millis as f64 / 1e3,
        output::bytes(c.before_bytes),
        output::bytes(c.after_bytes),
        c.after_bytes as f64 / c.before_bytes.max(1) as f64,
        if c.same_records {
            "identical"
        } else {
            "DIFFERENT"
        }
    )?;
    writeln!(
        out,
        "  vs JSON+gzip-6  {:>12}   ratio {:.3}",
        output::bytes(rep.json_gzip_bytes),
        c.after_bytes as f64 / rep.json_gzip_bytes.max(1) as f64
    )
}

/// One figure of the performance goals (issue 17's table).
#[derive(Debug, serde::Serialize)]
pub(super) struct Goal {
    figure: &'static str,
    goal: &'static str,
    measured: String,
    met: bool,
}

pub(super) fn goals(
    log: &pipetape_testkit::bench::log::BenchReport,
    compaction: Option<&CompactionReport>,
    replay: Option<&pipetape_testkit::bench::replay::ReplayReport>,
    serve: Option<&super::bench_serve::ServeReport>,
    recorder: Option<&pipetape_testkit::bench::recorder::RecorderReport>,
    diff: Option<&pipetape_testkit::bench::replay::DiffBenchReport>,
    observe: Option<&ObserveReport>,
) -> Vec<Goal> {
    let mut g = Vec::new();
    if let Some(r) = recorder {
        g.push(Goal {
            figure: "pipetape run of a step printing 1M lines, vs the step alone",
            goal: "<= 1.3x",
            measured: format!(
                "{:.2}x (the step | cat: {:.2}x)",
                r.overhead_ratio, r.pipe_ratio
            ),
            met: r.overhead_ratio <= 1.3,
        });
    }
    if let Some(o) = observe {
        g.push(Goal {
            figure: "recorder CPU on a busy cluster, per 10,000 changes",
            goal: "<= 0.3 CPU-s",
            measured: format!("{:.2} CPU-s", o.cpu_s_per_10k_changes),
            met: o.cpu_s_per_10k_changes <= 0.3,
        });
    }
    if let Some(c) = compaction {
        let v = c.after_bytes as f64 / log.json_gzip_bytes.max(1) as f64;
        g.push(Goal {
            figure: "log-heavy synthetic run, compacted, vs JSON lines + gzip -6",
            goal: "<= 0.45",
            measured: format!("{v:.3} (live log {:.3})", log.size_vs_json_gzip),
            met: v <= 0.45,
        });
    }
    if let Some(o) = observe {
        let (gz, z) = (
            o.compacted_vs(o.sizes.json_gzip_bytes),
            o.compacted_vs(o.sizes.json_zstd19_bytes),
        );
        g.push(Goal {
            figure: "run recorded by the observers (object-heavy), compacted, vs JSON + gzip -6",
            goal: "<= 0.45",
            measured: format!("{gz:.3}"),
            met: gz <= 0.45,
        });
        g.push(Goal {
            figure: "the same vs zstd -19 --long of that JSON",
            goal: "<= 0.8",
            measured: format!("{z:.3}"),
            met: z <= 0.8,
        });
    }
    if let (Some(r), Some(s)) = (replay, serve) {
        g.push(Goal {
            figure: "replay serve peak RSS (its own process, after kubectl logs)",
            goal: "<= 150 MB",
            measured: format!(
                "{:.0} MB for {} records",
                s.peak_rss_bytes as f64 / 1e6,
                r.fold_records
            ),
            met: s.peak_rss_bytes as f64 <= 150e6,
        });
    }
    if let Some(d) = diff {
        g.push(Goal {
            figure: "replay diff of two runs with log evidence",
            goal: "<= 300 ms",
            measured: format!(
                "{:.0} ms ({} records per run)",
                d.two_runs_ms, d.records_per_run
            ),
            met: d.two_runs_ms <= 300.0,
        });
    }
    g.push(Goal {
        figure: "read, records per second",
        goal: ">= 4,000,000",
        measured: format!("{:.0}", log.read_records_per_s),
        met: log.read_records_per_s >= 4e6,
    });
    g
}

pub(super) fn write_goals(out: &mut Out, goals: &[Goal]) -> std::io::Result<()> {
    writeln!(out, "performance goals (issue 17):")?;
    for g in goals {
        writeln!(
            out,
            "  {:<4} {:<68} {:<13} measured {}",
            if g.met { "MET" } else { "MISS" },
            g.figure,
            g.goal,
            g.measured
        )?;
    }
    Ok(())
}
