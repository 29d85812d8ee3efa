//! `pipetape archive`: export a run to a .ptape file, import one, verify one, print one.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use pipetape_store::compact::CompactOptions;
use pipetape_store::mask::{self as masking, LineState, MaskConfig, Masker};
use pipetape_store::model::Body;
use pipetape_store::reader::{LogReader, Recovery};
use pipetape_store::writer::{LogWriter, WriterOptions};

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
    /// List where secrets appear in a log (record seq, kind, field, rule), with the detectors
    /// pipetape masks with by default: exit 1 when any is found, 0 when clean.
    Scan(ScanArgs),
    /// Rewrite a finished log in its archive form (higher zstd level, long window, bigger
    /// frames): the same records, a smaller file. In place (atomically: a crash leaves the
    /// original) or to -o FILE. `pipetape run` does this when a run ends.
    Compact(CompactArgs),
    /// Write a copy of a log with its secrets masked (a new log, verified; the original is
    /// left untouched), for a log that must be shared after the fact.
    Redact(RedactArgs),
}

/// What `scan` and `redact` look for.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Also find this literal value (repeatable; e.g. a token you know leaked).
    #[arg(long = "mask", value_name = "VALUE")]
    masks: Vec<String>,
    /// Only these built-in rules (repeatable; names as `archive scan` prints them, e.g.
    /// github-token, jwt, k8s-env-value). Default: all.
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<String>,
    /// Also find matches of this regular expression (repeatable; a capture group marks only
    /// the group).
    #[arg(long = "pattern", value_name = "REGEX")]
    patterns: Vec<String>,
}

impl DetectArgs {
    fn masker(&self) -> Result<Masker, CmdError> {
        let known: Vec<&str> = pipetape_store::mask::DEFAULT_RULES
            .iter()
            .map(|(n, _)| *n)
            .chain([
                pipetape_store::mask::RULE_ENV_VALUE,
                pipetape_store::mask::RULE_LAST_APPLIED,
            ])
            .collect();
        for r in &self.rules {
            if !known.contains(&r.as_str()) {
                return Err(CmdError::input(format!(
                    "--rule {r}: no such rule; rules are: {}",
                    known.join(", ")
                )));
            }
        }
        let cfg = MaskConfig {
            defaults: true,
            only_rules: self.rules.clone(),
            values: self
                .masks
                .iter()
                .map(|v| ("mask".to_string(), v.clone()))
                .collect(),
            patterns: self
                .patterns
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("pattern-{}", i + 1), p.clone()))
                .collect(),
            allow: Vec::new(),
        };
        Masker::new(&cfg).map_err(|e| CmdError::input(format!("--pattern: {e}")))
    }
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    run: String,
    #[command(flatten)]
    detect: DetectArgs,
    /// Output format: text, or json (one object per finding: seq, kind, field, rule).
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: TextOrJson,
}

#[derive(Debug, Args)]
pub struct RedactArgs {
    /// The .ptape file (or a run in the store).
    file: String,
    /// Where to write the redacted copy (must not exist).
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: PathBuf,
    #[command(flatten)]
    detect: DetectArgs,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The run: id, id prefix, last, last-green, last-red, or a .ptape path.
    run: String,
    /// Write the compacted log to FILE (must not exist) and leave the original as it is.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// zstd level (1-19; higher is smaller and slower).
    #[arg(long, default_value_t = CompactOptions::default().level,
          value_parser = clap::value_parser!(i32).range(1..=19))]
    level: i32,
    /// zstd window as a power of two (10-27; long-distance matching above 23).
    #[arg(long, default_value_t = CompactOptions::default().window_log,
          value_parser = clap::value_parser!(u32).range(10..=27))]
    window_log: u32,
    /// Keep records as the live log encodes them (format version 1, which earlier pipetape
    /// builds read) instead of column-coding them (format version 2, about a third smaller).
    #[arg(long)]
    no_columns: bool,
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
            if let Err(e) = pipetape_replayer::analysis::metrics::store_metrics(&store, &rep.entry)
            {
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
        ArchiveCmd::Scan(a) => scan(ctx, a),
        ArchiveCmd::Redact(a) => redact(ctx, a),
        ArchiveCmd::Compact(a) => compact(ctx, a),
    }
}

/// Compacts a log just written (by `run`, `record`, `import`) in place, with the best level
/// expected to finish within `budget`. A log too big for any level is kept as written, and
/// says so; a failure leaves it as written (compaction replaces it only once the copy is
/// whole) and is a warning. `records_bytes` is the log's bytes of records when its writer
/// reported them; otherwise they are counted from the log.
pub fn compact_finished(
    ctx: &Ctx,
    log: &std::path::Path,
    budget: std::time::Duration,
    records_bytes: Option<u64>,
) -> Option<pipetape_store::compact::Compacted> {
    let kept = |e: &dyn std::fmt::Display| {
        ctx.warn(format!(
            "could not compact the log (it is kept as written): {e}"
        ))
    };
    // The writer that closed the log knows its size; otherwise it is read once.
    let input = match records_bytes.map_or_else(|| pipetape_store::compact::records_bytes(log), Ok)
    {
        Ok(n) => n,
        Err(e) => {
            kept(&e);
            return None;
        }
    };
    let Some(opts) = CompactOptions::within(input, budget) else {
        if !ctx.quiet {
            eprintln!(
                "pipetape: the log ({} of records) is kept as written: compacting it would take longer than {}; `pipetape archive compact` makes it smaller",
                output::bytes(input),
                output::duration(budget.as_nanos() as u64)
            );
        }
        return None;
    };
    match pipetape_store::compact::compact(log, &opts) {
        Ok(c) => {
            tracing::debug!(
                level = opts.level,
                before = c.bytes_before,
                after = c.bytes_after,
                millis = c.millis,
                "compacted the log"
            );
            Some(c)
        }
        Err(e) => {
            kept(&e);
            None
        }
    }
}

fn compact(ctx: &Ctx, a: CompactArgs) -> CmdResult {
    let r = ctx.resolve(&a.run)?;
    let opts = CompactOptions {
        level: a.level,
        window_log: a.window_log,
        columns: !a.no_columns,
        ..CompactOptions::default()
    };
    let c = match &a.output {
        Some(out) => pipetape_store::compact::compact_to(&r.path, out, &opts)?,
        None => {
            let c = pipetape_store::compact::compact(&r.path, &opts)?;
            // The catalog keeps the file's size.
            if let Some(mut e) = r.entry.clone() {
                e.bytes = c.bytes_after;
                ctx.store()?.catalog()?.put(&e)?;
            }
            c
        }
    };
    if !ctx.quiet {
        crate::say!(
            "Compacted {}{}: {} -> {} ({:.2}x), {} records, {} frames -> {}, {:.1} s",
            r.path.display(),
            a.output
                .as_ref()
                .map(|o| format!(" to {}", o.display()))
                .unwrap_or_default(),
            output::bytes(c.bytes_before),
            output::bytes(c.bytes_after),
            c.bytes_after as f64 / c.bytes_before.max(1) as f64,
            c.records,
            c.frames_before,
            c.frames_after,
            c.millis as f64 / 1e3
        );
    }
    Ok(exit::OK)
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
    // The stream table is checked against the records' own, built as they are read.
    let mut rebuild = reader
        .streams()
        .map(|_| pipetape_store::streams::Rebuild::default());
    for rec in it.by_ref() {
        // Tolerant: errors are reported as damage, not yielded.
        let rec = rec?;
        records += 1;
        if let Some(rb) = rebuild.as_mut() {
            rb.push_record(reader.frames(), &rec);
        }
        finished |= matches!(rec.body, pipetape_store::Body::RunFinished(_));
        *kinds.entry(rec.body.kind()).or_default() += 1;
    }
    let mut damage = reader.damage().to_vec();
    damage.extend(it.damage());
    damage.sort_by_key(|d| d.offset);
    let h = reader.header();
    // A damaged log's records cannot vouch for its table: only the table's own damage counts.
    let table_problem = match (reader.stream_table_error(), reader.streams(), rebuild) {
        (Some(e), ..) => Some(e.to_string()),
        (None, Some(t), Some(rb)) if damage.is_empty() => {
            pipetape_store::streams::difference(t, &rb.finish())
                .map(|d| format!("the stream table disagrees with the records: {d}"))
        }
        _ => None,
    };
    let table_state = match (&table_problem, reader.streams()) {
        (Some(_), _) => "damaged",
        (None, Some(_)) => "ok",
        (None, None) => "absent",
    };
    let ok = damage.is_empty() && table_problem.is_none();
    if a.output == TextOrJson::Json {
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({
                "path": path, "ok": ok, "run_id": h.run_id.to_string(), "format_version": h.version,
                "records": records, "frames": reader.frames().len(), "bytes": reader.len(),
                "closed": reader.is_closed(), "finished": finished, "unknown_kinds_skipped": it.unknown_skipped(),
                "kinds": kinds,
                "stream_table": table_state, "stream_table_problem": table_problem,
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
        if let Some(p) = &table_problem {
            writeln!(
                out,
                "  stream table: {p} (no record is lost; readers walk the bulk lane instead)"
            )?;
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

/// Line streams (step output, pod logs) are masked with a state per stream, so a private key
/// printed over many lines is found from its BEGIN line to its END line.
#[derive(Default)]
struct Streams(std::collections::HashMap<(String, String, String, String), LineState>);

impl Streams {
    /// The stream's line and its state, for the bodies that are lines of a stream.
    fn line<'a>(&mut self, body: &'a mut Body) -> Option<(&'a mut String, &mut LineState)> {
        let (key, line) = match body {
            Body::StepOutput(o) => (
                (
                    o.stage.clone(),
                    o.step.clone(),
                    format!("{:?}", o.stream),
                    String::new(),
                ),
                &mut o.line,
            ),
            Body::PodLog(l) => (
                (
                    l.namespace.clone(),
                    l.pod.clone(),
                    l.container.clone(),
                    l.previous.to_string(),
                ),
                &mut l.line,
            ),
            _ => return None,
        };
        Some((line, self.0.entry(key).or_default()))
    }
}

fn scan(ctx: &Ctx, a: ScanArgs) -> CmdResult {
    let masker = a.detect.masker()?;
    let r = ctx.resolve(&a.run)?;
    let reader = LogReader::open(&r.path, Recovery::Tolerant)?;
    for d in reader.damage() {
        ctx.warn(format!(
            "{}: {d}; scanning what was readable",
            r.path.display()
        ));
    }
    let mut out = Out::new();
    let mut streams = Streams::default();
    let mut found = 0u64;
    let mut by_rule: std::collections::BTreeMap<String, u64> = Default::default();
    let mut it = reader.records();
    for rec in it.by_ref() {
        let mut rec = rec?;
        let kind = rec.body.kind();
        let findings: Vec<masking::Finding> = match streams.line(&mut rec.body) {
            Some((line, st)) => masker
                .line_hits(line, st)
                .0
                .into_iter()
                .map(|h| masking::Finding {
                    field: "line".into(),
                    rule: h.rule,
                })
                .collect(),
            None => masking::scan_body(&masker, &rec.body),
        };
        for f in findings {
            found += 1;
            *by_rule.entry(f.rule.clone()).or_default() += 1;
            match a.output {
                TextOrJson::Json => {
                    serde_json::to_writer(
                        &mut out,
                        &serde_json::json!({"seq": rec.seq, "kind": kind, "field": f.field, "rule": f.rule}),
                    )?;
                    out.write_all(b"\n")?;
                }
                TextOrJson::Text => writeln!(
                    out,
                    "{:>7}  {:<13}  {:<40}  {}",
                    rec.seq, kind, f.field, f.rule
                )?,
            }
        }
    }
    out.flush()?;
    for d in &it.damage() {
        ctx.warn(format!(
            "{}: {d}; scanning what was readable",
            r.path.display()
        ));
    }
    if a.output == TextOrJson::Text && !ctx.quiet {
        if found == 0 {
            eprintln!("No secrets found in {}.", r.path.display());
        } else {
            let rules: Vec<String> = by_rule.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            eprintln!(
                "{found} secret{} found in {}: {}. `pipetape archive redact` writes a masked copy.",
                if found == 1 { "" } else { "s" },
                r.path.display(),
                rules.join(", ")
            );
        }
    }
    Ok(if found > 0 { 1 } else { exit::OK })
}

fn redact(ctx: &Ctx, a: RedactArgs) -> CmdResult {
    let masker = a.detect.masker()?;
    let r = ctx.resolve(&a.file)?;
    if a.output.exists() {
        return Err(CmdError::input(format!(
            "{}: already exists; redact writes a new file",
            a.output.display()
        )));
    }
    let reader = LogReader::open(&r.path, Recovery::Tolerant)?;
    for d in reader.damage() {
        ctx.warn(format!(
            "{}: {d}; the copy holds what was readable",
            r.path.display()
        ));
    }
    let h = *reader.header();
    let tmp = a.output.with_extension("ptape.partial");
    let _ = std::fs::remove_file(&tmp);
    let mut w = LogWriter::create_at(&tmp, h.run_id, h.created_ns, WriterOptions::default())?;
    let mut streams = Streams::default();
    let (mut records, mut changed) = (0u64, 0u64);
    let mut it = reader.records();
    let written = (|| -> Result<(), CmdError> {
        for rec in it.by_ref() {
            let mut rec = rec?;
            let did = match streams.line(&mut rec.body) {
                Some((line, st)) => match masker.mask_line(line, st) {
                    std::borrow::Cow::Owned(x) => {
                        *line = x;
                        true
                    }
                    std::borrow::Cow::Borrowed(_) => false,
                },
                None => masking::redact_body(&masker, &mut rec.body),
            };
            changed += u64::from(did);
            records += 1;
            w.append_record(&rec)?;
        }
        w.close()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    for d in &it.damage() {
        ctx.warn(format!(
            "{}: {d}; the copy holds what was readable",
            r.path.display()
        ));
    }
    // Verify the copy before it takes its name: whole, every record there.
    let check = LogReader::open(&tmp, Recovery::Strict)?;
    let mut n = 0u64;
    for rec in check.records() {
        rec?;
        n += 1;
    }
    if n != records {
        let _ = std::fs::remove_file(&tmp);
        return Err(CmdError::with_code(
            exit::DAMAGED,
            format!("the redacted copy reads back {n} records of {records}; nothing was written"),
        ));
    }
    std::fs::rename(&tmp, &a.output)
        .map_err(|e| CmdError::input(format!("{}: cannot write: {e}", a.output.display())))?;
    if !ctx.quiet {
        let rules: Vec<String> = masker
            .counts()
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        crate::say!(
            "Wrote {} ({records} records, {changed} with secrets masked{}); {} is unchanged",
            a.output.display(),
            if rules.is_empty() {
                String::new()
            } else {
                format!(": {}", rules.join(", "))
            },
            r.path.display()
        );
    }
    Ok(exit::OK)
}
