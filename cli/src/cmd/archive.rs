//! `pipetape archive`: export a run to a .ptape file, import one, verify one, print one.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use pipetape_store::reader::{LogReader, Recovery};

use super::{exit, CmdError, CmdResult, Ctx, TextOrJson};
use crate::output::{self, Out};

#[derive(Debug, Subcommand)]
pub enum ArchiveCmd {
    /// Copy a run's log to a file (the CI artifact).
    Export(ExportArgs),
    /// Add a .ptape file to the store and catalog (e.g. a downloaded CI artifact).
    Import(ImportArgs),
    /// Check a .ptape file: exit 0 when whole, 1 with the byte offset and reason when damaged.
    Verify(VerifyArgs),
    /// Print every record of a run (one JSON object per line with -o json).
    Cat(CatArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    run: String,
    /// Where to write the .ptape file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The .ptape file.
    file: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The .ptape file (or a run in the store).
    file: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    run: String,
    /// Output format: text (one line per record) or json (JSON lines: seq, time, mono_ns,
    /// source, kind, body).
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

pub fn run(ctx: &Ctx, cmd: ArchiveCmd) -> CmdResult {
    match cmd {
        ArchiveCmd::Export(a) => {
            let r = ctx.resolve(&a.run)?;
            // Refuse to export something that is not a log at all.
            LogReader::open(&r.path, Recovery::Tolerant)?;
            let store_or_none = ctx.store().ok();
            let n = match store_or_none {
                Some(s) => s.export(&r, &a.output)?,
                None => std::fs::copy(&r.path, &a.output).map_err(|e| {
                    CmdError::input(format!("{}: cannot write: {e}", a.output.display()))
                })?,
            };
            if !ctx.quiet {
                crate::say!(
                    "Exported {} to {} ({})",
                    r.path.display(),
                    a.output.display(),
                    output::bytes(n)
                );
            }
            Ok(exit::OK)
        }
        ArchiveCmd::Import(a) => {
            if !a.file.is_file() {
                return Err(CmdError::input(format!(
                    "{}: no such file",
                    a.file.display()
                )));
            }
            let store = ctx.store()?;
            let rep = store.import(&a.file)?;
            if let Err(e) = pipetape_replayer::metrics::store_metrics(&store, &rep.entry) {
                ctx.warn(format!("could not compute the run's metrics: {e}"));
            }
            if rep.entry.damaged {
                ctx.warn(format!(
                    "{}: the log is damaged; readers will skip the damage",
                    a.file.display()
                ));
            }
            if !ctx.quiet {
                crate::say!(
                    "{} run {} ({}, {}, {} records)",
                    if rep.copied {
                        "Imported"
                    } else {
                        "Already imported:"
                    },
                    rep.entry.id,
                    rep.entry.pipeline,
                    rep.entry.outcome,
                    rep.entry.records
                );
            }
            Ok(exit::OK)
        }
        ArchiveCmd::Verify(a) => verify(ctx, a),
        ArchiveCmd::Cat(a) => cat(ctx, a),
    }
}

fn verify(ctx: &Ctx, a: VerifyArgs) -> CmdResult {
    let r = ctx.resolve(&a.file)?;
    let path = r.path;
    let mut out = Out::new();
    let reader = match LogReader::open(&path, Recovery::Tolerant) {
        Ok(r) => r,
        Err(e @ pipetape_store::Error::Io { .. }) => return Err(e.into()),
        Err(e) => {
            if a.output == TextOrJson::Json {
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({"path": path, "ok": false, "error": e.to_string()}),
                )?;
                writeln!(out)?;
            } else {
                writeln!(out, "DAMAGED: {e}")?;
            }
            out.flush()?;
            return Ok(exit::DAMAGED);
        }
    };
    let mut it = reader.records();
    let mut records = 0u64;
    let mut kinds = std::collections::BTreeMap::<&'static str, u64>::new();
    let mut finished = false;
    for rec in it.by_ref() {
        // Tolerant: errors are reported as damage, not yielded.
        let rec = rec?;
        records += 1;
        finished |= matches!(rec.body, pipetape_store::Body::RunFinished(_));
        *kinds.entry(rec.body.kind()).or_default() += 1;
    }
    let mut damage = reader.damage().to_vec();
    damage.extend(it.damage());
    damage.sort_by_key(|d| d.offset);
    let h = reader.header();
    let ok = damage.is_empty();
    if a.output == TextOrJson::Json {
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "path": path, "ok": ok, "run_id": h.run_id.to_string(), "format_version": h.version,
                "records": records, "frames": reader.frames().len(), "bytes": reader.len(),
                "closed": reader.is_closed(), "finished": finished, "unknown_kinds_skipped": it.unknown_skipped(),
                "kinds": kinds,
                "damage": damage.iter().map(|d| serde_json::json!({
                    "offset": d.offset, "kind": d.kind.as_str(), "bytes": d.bytes, "records": d.records, "what": d.what,
                })).collect::<Vec<_>>(),
            }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{}: {} - run {}, format v{}, {} records in {} frames, {}",
            path.display(),
            if ok { "OK" } else { "DAMAGED" },
            h.run_id,
            h.version,
            records,
            reader.frames().len(),
            output::bytes(reader.len())
        )?;
        for d in &damage {
            writeln!(out, "  {d}")?;
        }
        if !reader.is_closed() {
            writeln!(out, "  note: not closed (no index or trailer): the recorder was still running or was killed; every whole frame is readable")?;
        } else if !finished {
            writeln!(out, "  note: closed without a run_finished record")?;
        }
        if it.unknown_skipped() > 0 {
            writeln!(out, "  note: {} records of kinds this pipetape does not know were skipped (written by a newer version)", it.unknown_skipped())?;
        }
    }
    out.flush()?;
    Ok(if ok { exit::OK } else { exit::DAMAGED })
}

fn cat(ctx: &Ctx, a: CatArgs) -> CmdResult {
    let r = ctx.resolve(&a.run)?;
    let reader = LogReader::open(&r.path, Recovery::Tolerant)?;
    for d in reader.damage() {
        ctx.warn(format!("{}: {d}", r.path.display()));
    }
    let mut out = Out::new();
    let mut it = reader.records();
    for rec in it.by_ref() {
        let rec = rec?;
        match a.output {
            TextOrJson::Json => {
                serde_json::to_writer(&mut out, &rec.to_json())?;
                out.write_all(b"\n")?;
            }
            TextOrJson::Text => {
                writeln!(
                    out,
                    "{:>7}  {:>9}  {:<6}  {:<13}  {}",
                    rec.seq,
                    format!("+{}", output::duration(rec.mono_ns)),
                    rec.source.as_str(),
                    rec.body.kind(),
                    rec.body.summary()
                )?;
            }
        }
    }
    out.flush()?;
    for d in &it.damage() {
        ctx.warn(format!("{}: {d}", r.path.display()));
    }
    if it.unknown_skipped() > 0 {
        ctx.warn(format!(
            "{} records of kinds this pipetape does not know were skipped",
            it.unknown_skipped()
        ));
    }
    Ok(exit::OK)
}
