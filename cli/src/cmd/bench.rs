//! `pipetape bench`: the log-format benchmark on a synthetic full-stack run.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use pipetape_store::bench::{self, BenchOptions};

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
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

pub fn run(ctx: &Ctx, a: BenchArgs) -> CmdResult {
    let opts = BenchOptions {
        records: a.records.max(100),
        out: a.out,
        seed: a.seed,
        level: a.level,
    };
    let quiet = ctx.quiet || a.output == TextOrJson::Json;
    let rep = bench::run(&opts, |phase| {
        if !quiet {
            eprintln!("bench: {phase}...");
        }
    })?;
    let mut out = Out::new();
    if a.output == TextOrJson::Json {
        serde_json::to_writer_pretty(&mut out, &rep)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(0);
    }
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
    out.flush()?;
    Ok(0)
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}
